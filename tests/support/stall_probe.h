/* Evidence that the machine stalled, not our code: one SCHED_FIFO thread
 * per CPU, pinned there, at the lowest realtime priority (below soundcard's
 * callbacks, 60, and card, 70, so it never preempts them: stall_probe.c
 * says why), each sleeping 1 ms at a time and keeping the worst lateness
 * it has seen.  No normal thread can delay it, and ours only by the
 * microseconds they run; a hypervisor or the kernel can.  A test whose streams underran asks it
 * before deciding to measure again (docs/timing.md). */
#ifndef SC_TESTS_STALL_PROBE_H
#define SC_TESTS_STALL_PROBE_H

struct stall_probe;

/* Why this build has no probe (ThreadSanitizer's: stall_probe.c), or NULL. */
const char *stall_probe_unavailable(void);

/* NULL when realtime scheduling or threads are refused, or the build has
 * no probe: then there is no such evidence, and the caller decides
 * without it. */
struct stall_probe *stall_probe_start(void);
/* The worst lateness of any CPU's thread since the start, in seconds. */
double stall_probe_worst(struct stall_probe *p);
void stall_probe_stop(struct stall_probe *p);

/* Wait, at most `deadline` seconds, for a whole second in which no probe
 * thread was `late` seconds late: a stall seldom comes alone, and what is
 * measured right after one would stall again.  Returns the seconds waited,
 * or -1 at the deadline (or without realtime scheduling: nothing to ask). */
double stall_probe_wait_quiet(double late, double deadline);

#endif
