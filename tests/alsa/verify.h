/* What the ALSA test programs (alsa_client, pa_client) share: a check that
 * prints ok/FAIL and counts failures (the program defines `failures`), the
 * same for timing, which ThreadSanitizer only notes, the clock, and keeping
 * the plugin loaded in sanitizer builds. */
#ifndef SC_TEST_ALSA_VERIFY_H
#define SC_TEST_ALSA_VERIFY_H

#include <dlfcn.h>
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

/* Sanitizer builds ($SC_ALSA_PLUGIN set): keep the plugin loaded for good,
 * so that LeakSanitizer sees what its statics hold (alsa-lib unloads it at
 * close). */
static inline void keep_plugin_loaded(void)
{
    const char *plugin = getenv("SC_ALSA_PLUGIN");
    if (plugin && *plugin && !dlopen(plugin, RTLD_NOW | RTLD_NODELETE))
        fprintf(stderr, "cannot load %s: %s\n", plugin, dlerror());
}

#endif
