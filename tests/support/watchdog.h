/* A deadline on every phase of a test that drives a daemon.
 *
 * A daemon whose engine stops answering leaves the library's requests
 * waiting for ever, and a test killed at CTest's timeout says nothing of
 * why.  The watchdog thread holds the current phase's deadline; when one
 * passes it prints every thread of the daemon, of the test and of a tracer
 * (state, CPU over one second, the kernel function it waits in), then the
 * daemon's log, and exits 1 well before CTest's timeout.
 *
 * A tracer (strace) can hold a thread in its tracing stop: if a daemon
 * thread sat in that stop all along and none was busy, the tracer, not the
 * daemon, stopped it.  The watchdog then kills the tracer once and gives
 * the phase 10 s more; watch_tracer tells the test it did. */
#ifndef SC_TEST_WATCHDOG_H
#define SC_TEST_WATCHDOG_H

#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>

struct watchdog {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t moved;   /* a new phase, or done */
    const char *phase;      /* what the test is doing */
    double deadline;        /* by when it must have done it */
    unsigned generation;    /* one per phase */
    bool done;
    pid_t daemon, tracer;   /* tracer: while it runs, else 0 */
    const char *daemon_log;
    bool killed_tracer;
};

/* Watches daemon; the first phase is "starting", 15 s. */
void watchdog_start(struct watchdog *w, pid_t daemon, const char *daemon_log);

/* From now on the test is `phase`, which takes at most `seconds`. */
void watch_phase(struct watchdog *w, const char *phase, double seconds);

/* The tracer's pid (0: none from now on).  Whether the watchdog killed the
 * one it had. */
bool watch_tracer(struct watchdog *w, pid_t tracer);

void watchdog_stop(struct watchdog *w);

/* A file, line by line, to stderr (the daemon's log). */
void print_file(const char *path);

#endif
