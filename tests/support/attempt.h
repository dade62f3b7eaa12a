/* A timing check measured again when the machine, not soundcard, failed it.
 *
 * The virtual machines this runs on stop a vCPU for 5-30 ms now and then,
 * often several times within a few seconds (docs/timing.md).  A stream
 * whose latency budget is below that underruns then, and no code of ours
 * can prevent it.  An attempt watches for that evidence while it runs: the
 * stall probe (a realtime thread on each CPU) late by half the budget, or the
 * card's own thread xrunning.  When the attempt's checks failed and there
 * is such evidence, its failures are forgotten (it says so), it waits for a
 * quiet second, and the caller runs it again, up to three times in all.
 * Without the evidence one failure fails the test; so does the third
 * stalled attempt.
 *
 *     struct attempt a;
 *     attempt_begin(&a, "duplex", 0.02, &d);
 *     do {
 *         ... open, run, check with VERIFY/CHECK ...
 *     } while (attempt_again(&a));
 */
#ifndef SC_TESTS_ATTEMPT_H
#define SC_TESTS_ATTEMPT_H

#include <stdbool.h>

#include "harness.h"

#define ATTEMPTS 3

/* Failed checks that a stall of the machine can fail (underruns, gaps in
 * the sound), as against checks of state (descriptors, replies, exits):
 * VERIFY_STALLABLE counts them here as well as in harness_failures. */
extern int attempt_stallable_failures;
#define VERIFY_STALLABLE(cond, ...)                                                          \
    do {                                                                                     \
        bool stallable_ok_ = (cond);                                                         \
        attempt_stallable_failures += !stallable_ok_;                                        \
        VERIFY(stallable_ok_, __VA_ARGS__);                                                  \
    } while (0)

struct stall_probe;

struct attempt {
    const char *what;
    double budget;               /* the streams' latency budget, seconds */
    struct daemon *card;         /* whose xruns count as evidence, or NULL */
    int number;                  /* 1 .. ATTEMPTS */
    bool only_stallable;         /* run again only when every failure was VERIFY_STALLABLE's */
    int failures_before;         /* harness_failures when this attempt began */
    int stallable_before;
    double xruns_before;
    double noted_xruns;          /* attempt_note_card_xruns */
    struct stall_probe *probe;
};

/* Begins the first attempt.  `card` may be NULL (a case that starts its
 * own daemon, or stops it before its checks: then only the probe counts). */
void attempt_begin(struct attempt *a, const char *what, double budget, struct daemon *card);
/* The same for a test that checks state as well as timing (the reliability
 * victims beside a crash, a fuzzer): a failure of any other check stands. */
void attempt_begin_stallable(struct attempt *a, const char *what, double budget, struct daemon *card);
/* Ends the current attempt; true when the caller should run it again (the
 * next attempt has begun).  The card, if any, must still be running. */
bool attempt_again(struct attempt *a);
/* Card xruns of a daemon the attempt could not watch (started and stopped
 * inside it), seen by the caller: evidence for the current attempt. */
void attempt_note_card_xruns(double xruns);
/* Before measuring again: wait (10 s at most) for a second in which the
 * stall probe was never `late` seconds late, and say how it went. */
void attempt_wait_quiet(const char *what, double late);
/* Whether the current attempt has seen the machine stall so far. */
bool attempt_stalled(struct attempt *a);

#endif
