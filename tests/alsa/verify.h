/* What the ALSA test programs (alsa_client, pa_client) share: a check that
 * prints ok/FAIL and counts failures (the program defines `failures`), the
 * same for timing, which ThreadSanitizer only notes, and the clock. */
#ifndef SC_TEST_ALSA_VERIFY_H
#define SC_TEST_ALSA_VERIFY_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define VERIFY(cond, ...)                                                                    \
    do {                                                                                     \
        bool ok_ = (cond);                                                                   \
        printf("%s ", ok_ ? "ok  " : "FAIL");                                                 \
        printf(__VA_ARGS__);                                                                 \
        printf("\n");                                                                        \
        fflush(stdout);                                                                      \
        failures += !ok_;                                                                    \
    } while (0)

/* Under ThreadSanitizer (SC_SANITIZED=thread) a failed check of timing is a
 * note, not a failure: see tests/alsa/rig.h. */
static inline bool slow(void)
{
    const char *s = getenv("SC_SANITIZED");
    return s && strstr(s, "thread");
}

#define VERIFY_TIMING(cond, ...)                                                             \
    do {                                                                                     \
        bool t_ok_ = (cond);                                                                 \
        if (!t_ok_ && slow()) {                                                              \
            printf("note: relaxed under ThreadSanitizer: " __VA_ARGS__);                    \
            printf("\n");                                                                    \
        } else {                                                                             \
            VERIFY(t_ok_, __VA_ARGS__);                                                      \
        }                                                                                    \
    } while (0)

static inline double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

#endif
