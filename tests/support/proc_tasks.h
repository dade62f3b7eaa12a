/* The threads of a process, read from /proc/PID/task.  Safe on any thread
 * (no shared buffer), so a watchdog thread may use it beside the test. */
#ifndef SC_TEST_PROC_TASKS_H
#define SC_TEST_PROC_TASKS_H

#include <stdbool.h>
#include <sys/types.h>

struct task {
    int tid;
    char name[20];
    char state;       /* R, S, D, t (tracing stop), ... */
    long ticks;       /* user + system CPU, in clock ticks */
    long faults;      /* page faults so far, minor + major */
    long major_faults; /* of those, the ones that waited for a disk */
    char wchan[48];   /* the kernel function it sleeps in */
};

/* Every thread of process pid, at most max; how many. */
int proc_tasks(pid_t pid, struct task *out, int max);

/* The task id of pid's thread called `name`, or 0. */
int proc_find_thread(pid_t pid, const char *name);

/* One thread of pid; false if it is gone. */
bool proc_task(pid_t pid, int tid, struct task *out);

#endif
