/* Test-only fault injection for the dummy card (--dummy-fault KIND:MS), so
 * the reliability suite can make a card misbehave the way hardware does and
 * check that the daemon reports it and recovers.  Each SIGUSR1 the daemon
 * receives triggers the fault once:
 *   stall:MS  the card thread stops for MS ms (a stuck driver): the periods
 *             in between are lost, one xrun; past the card watchdog's limit
 *             (a second) the card also counts as lost and is reopened.
 *   hang:MS   the same, but a stop does not end it (a driver stuck in a
 *             call): the lost card's stop waits MS ms, on a thread of its
 *             own, while the daemon serves its clients.
 *   fail:MS   the card dies (its thread ends, alive() says so) and cannot be
 *             opened again for MS ms (an unplugged USB device). */
#ifndef SC_DAEMON_FAULT_H
#define SC_DAEMON_FAULT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

enum fault_kind { FAULT_NONE, FAULT_STALL, FAULT_HANG, FAULT_FAIL };

struct backend_fault {
    enum fault_kind kind;
    uint32_t ms;
    _Atomic uint32_t triggered;             /* SIGUSR1s so far; the card thread acts on new ones */
    _Atomic int64_t unavailable_until_ns;   /* fail: CLOCK_MONOTONIC until which open is refused */
};

/* "" leaves f at FAULT_NONE.  -1 with a reason in err for a bad spec. */
int fault_parse(struct backend_fault *f, const char *spec, char *err, size_t err_len);
/* Trigger f on every SIGUSR1 (nothing for FAULT_NONE).  fault_disarm closes
 * the signal handle (before the loop closes). */
void fault_arm(struct backend_fault *f, uv_loop_t *loop);
void fault_disarm(void);

/* The time now, for comparing with unavailable_until_ns. */
int64_t fault_now_ns(void);

#endif
