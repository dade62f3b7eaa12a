#include "stall_probe.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

/* The lowest realtime priority, below every thread of ours.  At 90, above
 * them, it made the stalls it was there to see: each time it preempted the
 * card thread (70), the scheduler pushed the card thread to the other CPU,
 * and waking that idle virtual CPU took 1-3 ms, again and again (perf
 * sched_switch: 27 ms without a period, 10 us of work per wake-up); 5 of 17
 * alsa.delay attempts had a card xrun with the probe 5-10 ms late, 0 of 8
 * at priority 1.  Below ours, our threads can delay it only by what they
 * run, microseconds a period. */
#define PROBE_PRIORITY 1
#define PROBE_INTERVAL_NS 1000000L
#define MAX_PROBES 64

/* ThreadSanitizer's runtime takes its own spin locks on atomic accesses
 * (StaticSpinMutex in its internal allocator, which waits with
 * sched_yield).  A probe thread, pinned to its CPU at priority 1, that
 * holds one while soundcard's callback threads (60) spin for it on both
 * CPUs never runs again: yielding lets only equal priorities run.  A TSan
 * run of integration.tiny_blocks hung so for good, gdb showed (two
 * callback threads in LockSlow, the probe in PopulateFreeList, all
 * runnable).  Such a build has no probe. */
#if defined(__SANITIZE_THREAD__)
#define PROBE_UNAVAILABLE "ThreadSanitizer"
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PROBE_UNAVAILABLE "ThreadSanitizer"
#endif
#endif

struct probe_thread {
    pthread_t thread;
    _Atomic long worst_ns;
    _Atomic bool *stop;
};

struct stall_probe {
    _Atomic bool stop;
    int count;
    struct probe_thread threads[MAX_PROBES];
};

static long ns_between(const struct timespec *a, const struct timespec *b)
{
    return (b->tv_sec - a->tv_sec) * 1000000000L + (b->tv_nsec - a->tv_nsec);
}

static void *probe_main(void *arg)
{
    struct probe_thread *t = arg;
    struct timespec due, now;
    clock_gettime(CLOCK_MONOTONIC, &due);
    while (!atomic_load(t->stop)) {
        due.tv_nsec += PROBE_INTERVAL_NS;
        if (due.tv_nsec >= 1000000000L) {
            due.tv_nsec -= 1000000000L;
            due.tv_sec++;
        }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, NULL);
        clock_gettime(CLOCK_MONOTONIC, &now);
        long late = ns_between(&due, &now);
        if (late > atomic_load(&t->worst_ns))
            atomic_store(&t->worst_ns, late);
        if (late > PROBE_INTERVAL_NS)
            due = now;  /* a stall is counted once, not as a backlog */
    }
    return NULL;
}

static bool start_on(struct probe_thread *t, int cpu)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    struct sched_param param = { .sched_priority = PROBE_PRIORITY };
    bool ok = pthread_attr_setaffinity_np(&attr, sizeof(set), &set) == 0 &&
              pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED) == 0 &&
              pthread_attr_setschedpolicy(&attr, SCHED_FIFO) == 0 &&
              pthread_attr_setschedparam(&attr, &param) == 0 &&
              pthread_create(&t->thread, &attr, probe_main, t) == 0;
    pthread_attr_destroy(&attr);
    return ok;
}

const char *stall_probe_unavailable(void)
{
#ifdef PROBE_UNAVAILABLE
    return "no stall probe under " PROBE_UNAVAILABLE " (its spin locks and a pinned SCHED_FIFO thread livelock)";
#else
    return NULL;
#endif
}

struct stall_probe *stall_probe_start(void)
{
    if (stall_probe_unavailable())
        return NULL;
    struct stall_probe *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) {
        free(p);
        return NULL;
    }
    for (int cpu = 0; cpu < CPU_SETSIZE && p->count < MAX_PROBES; cpu++) {
        if (!CPU_ISSET(cpu, &allowed))
            continue;
        struct probe_thread *t = &p->threads[p->count];
        t->stop = &p->stop;
        if (!start_on(t, cpu)) {
            stall_probe_stop(p);
            return NULL;
        }
        p->count++;
    }
    return p;
}

double stall_probe_worst(struct stall_probe *p)
{
    long worst = 0;
    for (int i = 0; p && i < p->count; i++) {
        long w = atomic_load(&p->threads[i].worst_ns);
        worst = w > worst ? w : worst;
    }
    return worst / 1e9;
}

void stall_probe_stop(struct stall_probe *p)
{
    if (!p)
        return;
    atomic_store(&p->stop, true);
    for (int i = 0; i < p->count; i++)
        pthread_join(p->threads[i].thread, NULL);
    free(p);
}

double stall_probe_wait_quiet(double late, double deadline)
{
    struct timespec t0, now, second = { 1, 0 };
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct stall_probe *p = stall_probe_start();
        if (!p)
            return -1;
        while (nanosleep(&second, &second) < 0)
            ;
        second.tv_sec = 1;
        double worst = stall_probe_worst(p);
        stall_probe_stop(p);
        clock_gettime(CLOCK_MONOTONIC, &now);
        double waited = ns_between(&t0, &now) / 1e9;
        if (worst < late)
            return waited;
        if (waited >= deadline)
            return -1;
    }
}
