#include "attempt.h"

#include <stdio.h>

#include "stall_probe.h"

/* How long a retry waits for the machine to settle. */
#define QUIET_DEADLINE 10.0

int attempt_stallable_failures;

/* The attempt now running, for attempt_note_card_xruns. */
static struct attempt *current;

static void attempt_start(struct attempt *a)
{
    a->failures_before = harness_failures;
    a->stallable_before = attempt_stallable_failures;
    a->xruns_before = a->card ? card_xruns(a->card) : 0;
    a->probe = stall_probe_start();
    a->noted_xruns = 0;
    current = a;
}

void attempt_note_card_xruns(double xruns)
{
    if (current && xruns > 0)
        current->noted_xruns += xruns;
}

void attempt_begin(struct attempt *a, const char *what, double budget, struct daemon *card)
{
    *a = (struct attempt){ .what = what, .budget = budget, .card = card, .number = 1 };
    attempt_start(a);
}

void attempt_begin_stallable(struct attempt *a, const char *what, double budget, struct daemon *card)
{
    attempt_begin(a, what, budget, card);
    a->only_stallable = true;
}

static double card_xruns_since(struct attempt *a)
{
    if (!a->card)
        return 0;
    double now = card_xruns(a->card);
    return now >= 0 && a->xruns_before >= 0 ? now - a->xruns_before : 0;
}

/* The evidence so far: the probe's worst lateness and the card's xruns. */
static bool evidence(struct attempt *a, double *late, double *xruns)
{
    *late = stall_probe_worst(a->probe);
    *xruns = a->noted_xruns + card_xruns_since(a);
    return *xruns > 0 || *late >= a->budget / 2;
}

bool attempt_stalled(struct attempt *a)
{
    double late, xruns;
    return evidence(a, &late, &xruns);
}

void attempt_wait_quiet(const char *what, double late)
{
    if (stall_probe_unavailable()) {
        printf("info %s: %s: no wait for a quiet second\n", what, stall_probe_unavailable());
        return;
    }
    double waited = stall_probe_wait_quiet(late, QUIET_DEADLINE);
    if (waited >= 0)
        printf("info %s: after %.0f s the machine had a quiet second\n", what, waited);
    else
        printf("info %s: no quiet second in %.0f s\n", what, QUIET_DEADLINE);
}

bool attempt_again(struct attempt *a)
{
    double late, xruns;
    bool stalled = evidence(a, &late, &xruns);
    current = NULL;
    bool probed = a->probe != NULL;
    stall_probe_stop(a->probe);
    a->probe = NULL;
    int failed = harness_failures - a->failures_before;
    if (!failed)
        return false;
    char no_probe[160] = "";
    if (!probed)
        snprintf(no_probe, sizeof no_probe, "not running (%s), ",
                 stall_probe_unavailable() ? stall_probe_unavailable() : "no realtime scheduling");
    printf("info %s: attempt %d of %d: %d check(s) failed; stall probe %s%.1f ms late, card xruns %.0f "
           "(budget %.1f ms: a stall is half of it)\n", a->what, a->number, ATTEMPTS, failed, no_probe,
           1000 * late, xruns, 1000 * a->budget);
    int unstallable = failed - (attempt_stallable_failures - a->stallable_before);
    if (a->only_stallable && unstallable > 0) {
        printf("info %s: %d of them no stall can fail: the failures stand\n", a->what, unstallable);
        return false;
    }
    if (!stalled || a->number == ATTEMPTS) {
        printf("info %s: %s: the failures stand\n", a->what,
               stalled ? "the machine stalled in every attempt" : "the machine did not stall");
        return false;
    }
    harness_failures = a->failures_before;
    attempt_stallable_failures = a->stallable_before;
    printf("info %s: the machine stalled: those failures are forgotten; measuring again\n", a->what);
    attempt_wait_quiet(a->what, a->budget / 2);
    a->number++;
    attempt_start(a);
    return true;
}
