/* attempt.h forgets a failure only when the machine stalled, never in the
 * last attempt, nor (attempt_begin_stallable) when a check that no stall
 * can fail failed too.  A stall is made by stopping this process (SIGSTOP
 * from a child, 60 ms): its probe threads stop with it, as a stalled
 * virtual CPU stops them, and nothing else on the machine is disturbed. */
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "attempt.h"
#include "harness.h"
#include "stall_probe.h"

static int own_failures;  /* harness_failures is what attempt.h works on */

#define EXPECT(cond, ...)                                                                    \
    do {                                                                                     \
        bool expect_ok_ = (cond);                                                            \
        printf("%s ", expect_ok_ ? "ok  " : "FAIL");                                          \
        printf(__VA_ARGS__);                                                                 \
        printf("\n");                                                                        \
        fflush(stdout);                                                                      \
        own_failures += !expect_ok_;                                                         \
    } while (0)

static void stall(void)
{
    pid_t self = getpid(), child = fork();
    if (child == 0) {
        struct timespec ms60 = { 0, 60 * 1000 * 1000 };
        kill(self, SIGSTOP);
        nanosleep(&ms60, NULL);
        kill(self, SIGCONT);
        _exit(0);
    }
    waitpid(child, NULL, 0);
}

static void a_check_fails(void)
{
    harness_failures++;
}

static void a_stallable_check_fails(void)  /* what VERIFY_STALLABLE counts */
{
    attempt_stallable_failures++;
    harness_failures++;
}

int main(void)
{
    struct stall_probe *p = stall_probe_start();
    if (!p) {
        printf("skip: realtime scheduling refused, so there is no stall probe to test\n");
        return 0;
    }
    stall_probe_stop(p);

    struct attempt a;
    /* A budget of 2 s: nothing on this machine stalls for a second by itself. */
    attempt_begin(&a, "passes", 2.0, NULL);
    EXPECT(!attempt_again(&a) && harness_failures == 0, "an attempt that passed is not run again");

    attempt_begin(&a, "fails, no stall", 2.0, NULL);
    a_check_fails();
    EXPECT(!attempt_again(&a) && harness_failures == 1,
           "a failure without a stall stands (harness_failures %d, want 1)", harness_failures);

    attempt_begin(&a, "fails in a stall", 0.02, NULL);
    stall();
    EXPECT(attempt_stalled(&a), "a 60 ms stop of the process is a stall for a 20 ms budget");
    a_check_fails();
    EXPECT(attempt_again(&a) && a.number == 2 && harness_failures == 1,
           "a failure in a stall is forgotten and measured again (attempt %d, harness_failures %d)", a.number,
           harness_failures);
    EXPECT(!attempt_stalled(&a), "the next attempt starts with no stall seen");
    stall();
    a_check_fails();
    EXPECT(attempt_again(&a) && a.number == 3 && harness_failures == 1, "and again (attempt %d)", a.number);
    stall();
    a_check_fails();
    EXPECT(!attempt_again(&a) && harness_failures == 2,
           "the third failure stands though the machine stalled (harness_failures %d, want 2)", harness_failures);

    attempt_begin(&a, "stalls, then passes", 0.02, NULL);
    stall();
    EXPECT(!attempt_again(&a) && harness_failures == 2, "a stall without a failure changes nothing");

    /* Beside the victims, only their underruns may be a stall's doing. */
    attempt_begin_stallable(&a, "victims underran in a stall", 0.02, NULL);
    stall();
    a_stallable_check_fails();
    EXPECT(attempt_again(&a) && harness_failures == 2, "a stallable failure in a stall is measured again");
    stall();
    a_stallable_check_fails();
    a_check_fails();
    EXPECT(!attempt_again(&a) && harness_failures == 4,
           "beside another failed check it stands (harness_failures %d, want 4)", harness_failures);

    printf("%s\n", own_failures ? "support.attempt: checks failed" : "support.attempt: all checks passed");
    return own_failures != 0;
}
