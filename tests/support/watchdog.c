#include "watchdog.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "proc_tasks.h"

#define MAX_TASKS 64

/* Each thread of `who`: its state, where it sleeps and how much of a CPU it
 * used since `before`, `seconds` ago; the most any one used. */
static double report_tasks(const char *who, pid_t pid, const struct task *before, int n_before, double seconds)
{
    struct task now[MAX_TASKS];
    int n = proc_tasks(pid, now, MAX_TASKS);
    double busiest = 0;
    for (int i = 0; i < n; i++) {
        long ticks = now[i].ticks;
        for (int j = 0; j < n_before; j++)
            if (before[j].tid == now[i].tid)
                ticks -= before[j].ticks;
        double cpu = 100.0 * ticks / sysconf(_SC_CLK_TCK) / seconds;
        busiest = cpu > busiest ? cpu : busiest;
        fprintf(stderr, "  %s %d/%d %s: state %c, %.0f %% CPU, in %s\n", who, (int)pid, now[i].tid, now[i].name,
                now[i].state, cpu, now[i].wchan[0] ? now[i].wchan : "?");
    }
    return busiest;
}

/* A daemon thread in the tracing stop in `first` and still in it now. */
static bool held_by_tracer(const struct task *first, int n_first, pid_t daemon)
{
    for (int i = 0; i < n_first; i++) {
        struct task later;
        if (first[i].state == 't' && proc_task(daemon, first[i].tid, &later) && later.state == 't')
            return true;
    }
    return false;
}

/* Called with the lock held, the phase overdue: say what everyone does over
 * one second.  true if the tracer held a daemon thread stopped all along
 * while none of ours was busy. */
static bool report_stall(struct watchdog *w)
{
    struct task daemon[MAX_TASKS], self[MAX_TASKS], tracer[4];
    int nd = proc_tasks(w->daemon, daemon, MAX_TASKS), ns = proc_tasks(getpid(), self, MAX_TASKS);
    int nt = w->tracer > 0 ? proc_tasks(w->tracer, tracer, 4) : 0;
    struct timespec second;
    clock_gettime(CLOCK_MONOTONIC, &second);
    second.tv_sec += 1;
    while (pthread_cond_timedwait(&w->moved, &w->lock, &second) != ETIMEDOUT) {
    }
    fprintf(stderr, "watchdog: still %s after its deadline; over the next second:\n", w->phase);
    double busiest = report_tasks("daemon", w->daemon, daemon, nd, 1.0);
    double ours = report_tasks("test", getpid(), self, ns, 1.0);
    busiest = ours > busiest ? ours : busiest;
    if (w->tracer > 0)
        report_tasks("tracer", w->tracer, tracer, nt, 1.0);
    return w->tracer > 0 && busiest < 50 && held_by_tracer(daemon, nd, w->daemon);
}

void print_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[512];
    while (f && fgets(line, sizeof line, f))
        fputs(line, stderr);
    if (f)
        fclose(f);
}

static void *watchdog_main(void *arg)
{
    struct watchdog *w = arg;
    pthread_mutex_lock(&w->lock);
    while (!w->done) {
        double left = w->deadline - now_seconds();
        if (left > 0) {
            struct timespec until;
            clock_gettime(CLOCK_MONOTONIC, &until);
            until.tv_sec += (time_t)left;
            until.tv_nsec += (long)((left - (time_t)left) * 1e9);
            if (until.tv_nsec >= 1000000000L)
                until.tv_sec++, until.tv_nsec -= 1000000000L;
            pthread_cond_timedwait(&w->moved, &w->lock, &until);
            continue;  /* a new phase, done, or time: look again */
        }
        unsigned generation = w->generation;
        bool tracer_holds_it = report_stall(w);
        if (w->done || w->generation != generation)
            continue;  /* it moved on during that second */
        if (tracer_holds_it && !w->killed_tracer) {
            fprintf(stderr, "watchdog: the tracer (pid %d) holds a daemon thread stopped and does not let it go "
                            "on: tracer killed, to see whether the test goes on without it\n", (int)w->tracer);
            kill(w->tracer, SIGKILL);
            w->killed_tracer = true;
            w->deadline = now_seconds() + 10;
            continue;
        }
        fprintf(stderr, "watchdog: giving up; the daemon's log (%s):\n", w->daemon_log);
        print_file(w->daemon_log);
        _exit(1);   /* the daemon and tracer die with us (PR_SET_PDEATHSIG) */
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

void watchdog_start(struct watchdog *w, pid_t daemon, const char *daemon_log)
{
    *w = (struct watchdog){ .daemon = daemon, .daemon_log = daemon_log, .phase = "starting",
                            .deadline = now_seconds() + 15 };
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->moved, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&w->lock, NULL);
    pthread_create(&w->thread, NULL, watchdog_main, w);
}

void watch_phase(struct watchdog *w, const char *phase, double seconds)
{
    pthread_mutex_lock(&w->lock);
    w->phase = phase;
    w->deadline = now_seconds() + seconds;
    w->generation++;
    pthread_cond_broadcast(&w->moved);
    pthread_mutex_unlock(&w->lock);
}

bool watch_tracer(struct watchdog *w, pid_t tracer)
{
    pthread_mutex_lock(&w->lock);
    w->tracer = tracer;
    bool killed = w->killed_tracer;
    pthread_mutex_unlock(&w->lock);
    return killed;
}

void watchdog_stop(struct watchdog *w)
{
    pthread_mutex_lock(&w->lock);
    w->done = true;
    pthread_cond_broadcast(&w->moved);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
}
