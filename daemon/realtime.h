/* Realtime scheduling for the thread that runs the engine. */
#ifndef SC_DAEMON_REALTIME_H
#define SC_DAEMON_REALTIME_H

#include <pthread.h>
#include <stdbool.h>

/* Create a thread running SCHED_FIFO at `priority` from its first
 * instruction.  Returns false, creating nothing, when the system refuses. */
bool realtime_create_thread(pthread_t *thread, int priority, void *(*fn)(void *), void *arg);

/* Called once on the thread that runs the engine, before its first cycle
 * (PortAudio and JACK own that thread): ask for SCHED_FIFO at `priority`
 * if it does not run realtime already, and fault in its stack.  Returns the
 * realtime priority the thread has, 0 for none. */
int realtime_setup_engine_thread(int priority);

#endif
