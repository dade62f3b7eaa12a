#include "realtime.h"

#include <pthread.h>
#include <sched.h>

bool realtime_create_thread(pthread_t *thread, int priority, void *(*fn)(void *), void *arg)
{
    if (priority <= 0)
        return false;
    int max = sched_get_priority_max(SCHED_FIFO);
    struct sched_param param = { .sched_priority = priority > max ? max : priority };
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
    pthread_attr_setschedpolicy(&attr, SCHED_FIFO);
    pthread_attr_setschedparam(&attr, &param);
    bool ok = pthread_create(thread, &attr, fn, arg) == 0;
    pthread_attr_destroy(&attr);
    return ok;
}

/* Stack the engine cycle may use, touched once so the first cycles after a
 * quiet spell do not take page faults. */
#define PREFAULT_STACK_BYTES (64 * 1024)

static void prefault_stack(void)
{
    volatile char stack[PREFAULT_STACK_BYTES];
    for (size_t i = 0; i < sizeof(stack); i += 4096)
        stack[i] = 0;
}

int realtime_setup_engine_thread(int priority)
{
    prefault_stack();
    int policy;
    struct sched_param param;
    if (pthread_getschedparam(pthread_self(), &policy, &param) != 0)
        return 0;
    if (policy == SCHED_FIFO || policy == SCHED_RR)
        return param.sched_priority;
    if (priority <= 0)
        return 0;
    int max = sched_get_priority_max(SCHED_FIFO);
    param.sched_priority = priority > max ? max : priority;
    if (pthread_setschedparam(pthread_self(), SCHED_FIFO, &param) != 0)
        return 0;
    return param.sched_priority;
}
