#include "proc_tasks.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The first line of a small /proc file, "" if unreadable. */
static void read_line(const char *path, char *buf, size_t size)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    fclose(f);
}

bool proc_task(pid_t pid, int tid, struct task *t)
{
    char path[128], stat[512];
    t->tid = tid;
    snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)pid, tid);
    read_line(path, stat, sizeof stat);
    const char *open = strchr(stat, '('), *close = strrchr(stat, ')');
    long minflt, majflt, utime, stime;
    /* After the name: state ppid pgrp session tty tpgid flags minflt
     * cminflt majflt cmajflt utime stime. */
    if (!open || !close ||
        sscanf(close + 1, " %c %*d %*d %*d %*d %*d %*u %ld %*u %ld %*u %ld %ld", &t->state, &minflt, &majflt,
               &utime, &stime) != 5)
        return false;
    snprintf(t->name, sizeof t->name, "%.*s", (int)(close - open - 1), open + 1);
    t->faults = minflt + majflt;
    t->major_faults = majflt;
    t->ticks = utime + stime;
    snprintf(path, sizeof path, "/proc/%d/task/%d/wchan", (int)pid, tid);
    read_line(path, t->wchan, sizeof t->wchan);
    return true;
}

int proc_tasks(pid_t pid, struct task *out, int max)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *dir = opendir(path);
    int n = 0;
    struct dirent *e;
    while (dir && n < max && (e = readdir(dir)))
        if (e->d_name[0] != '.' && proc_task(pid, atoi(e->d_name), &out[n]))
            n++;
    if (dir)
        closedir(dir);
    return n;
}

int proc_find_thread(pid_t pid, const char *name)
{
    struct task all[64];
    int n = proc_tasks(pid, all, 64);
    for (int i = 0; i < n; i++)
        if (strcmp(all[i].name, name) == 0)
            return all[i].tid;
    return 0;
}
