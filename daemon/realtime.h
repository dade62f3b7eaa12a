/* Realtime scheduling for the thread that runs the engine. */
#ifndef SC_DAEMON_REALTIME_H
#define SC_DAEMON_REALTIME_H

#include <pthread.h>
#include <stdbool.h>

/* Create a thread running SCHED_FIFO at `priority` from its first
 * instruction.  Returns false, creating nothing, when the system refuses. */
bool realtime_create_thread(pthread_t *thread, int priority, void *(*fn)(void *), void *arg);

#endif
