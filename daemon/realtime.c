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
