/* Keeping what the RT thread touches in RAM: the engine's tables, the
 * backends' period buffers and every stream's shared memory are mlock()ed
 * (not mlockall: under a small RLIMIT_MEMLOCK, MCL_FUTURE would make every
 * later allocation fail).  Loop thread only. */
#ifndef SC_DAEMON_MEMLOCK_H
#define SC_DAEMON_MEMLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Off (--realtime 0): nothing is locked and nothing is reported missing. */
void memlock_enable(bool on);
/* mlock the region; the first refusal logs one warning line.  0 or -errno. */
int memlock_region(const void *addr, size_t len);
/* True while every region asked for so far was locked (and locking is on). */
bool memlock_complete(void);

#endif
