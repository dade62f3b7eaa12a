/* What the reliability tests watch while hostile clients do their worst:
 * the daemon's resources (from /proc: open descriptors, resident memory, the
 * stream memfds it still maps) and the victims, steady tone clients
 * (rel_client tone) that must never underrun and whose tones must stay in
 * the tap. */
#ifndef SC_TEST_DAEMON_WATCH_H
#define SC_TEST_DAEMON_WATCH_H

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../integration/audio_check.h"  /* VERIFY, env_number */
#include "attempt.h"
#include "harness.h"

/* ---- the build and the run ---- */

static inline bool soak(void)
{
    const char *s = getenv("SC_SOAK");
    return s && *s && strcmp(s, "0") != 0;
}

static inline void sleep_seconds(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - (time_t)s) * 1e9) };
    while (nanosleep(&ts, &ts) < 0)
        ;
}

/* Whether a line of the file at `path` contains `text` (slurp() reads only
 * the first 64 KiB; a verbose daemon's log under churn is longer). */
static inline bool file_has_line(const char *path, const char *text)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    bool found = false;
    while (f && !found && fgets(line, sizeof(line), f))
        found = strstr(line, text) != NULL;
    if (f)
        fclose(f);
    return found;
}

/* ---- the daemon's resources ---- */

/* Open descriptors of `pid` (entries of /proc/PID/fd), -1 if unreadable. */
static inline int proc_fd_count(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *dir = opendir(path);
    if (!dir)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(dir));)
        n += e->d_name[0] != '.';
    closedir(dir);
    return n;
}

/* VmRSS of `pid` in KiB, -1 if unreadable. */
static inline long proc_rss_kib(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    const char *rss = strstr(slurp(path), "VmRSS:");
    return rss ? strtol(rss + 6, NULL, 10) : -1;
}

/* Stream memfds (protocol/shm.c names them soundcard-stream-ID) that `pid`
 * still has mapped: lines of /proc/PID/maps, one per mapping. */
static inline int proc_stream_maps(pid_t pid)
{
    char path[64], line[512];
    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int n = 0;
    while (fgets(line, sizeof(line), f))
        n += strstr(line, "memfd:soundcard-stream-") != NULL;
    fclose(f);
    return n;
}

/* The descriptor count once it has stayed the same for 100 ms (at most 2 s):
 * a connection that just closed (a stats probe) leaves the daemon's fd open
 * until libuv's close callback runs. */
static inline int settled_fd_count(pid_t pid)
{
    double deadline = now_seconds() + 2;
    int n = proc_fd_count(pid);
    for (int same = 0; same < 10 && now_seconds() < deadline; ) {
        sleep_seconds(0.01);
        int m = proc_fd_count(pid);
        same = m == n ? same + 1 : 0;
        n = m;
    }
    return n;
}

/* The daemon frees a stream's memory after the RT thread lets go of it, a
 * period or so after its session went: wait for the counts to come back. */
static inline bool wait_resources(pid_t pid, int fds, int maps, double timeout)
{
    double deadline = now_seconds() + timeout;
    for (;;) {
        if (proc_fd_count(pid) == fds && proc_stream_maps(pid) == maps)
            return true;
        if (now_seconds() > deadline)
            return false;
        sleep_seconds(0.01);
    }
}

/* ---- stats ---- */

static inline const char *json_string(cJSON *obj, const char *key)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, key));
    return s ? s : "";
}

/* Streams in a stats reply whose name starts with `prefix`. */
static inline int stats_count_streams(cJSON *stats, const char *prefix)
{
    int n = 0;
    cJSON *client, *stream;
    cJSON_ArrayForEach(client, cJSON_GetObjectItemCaseSensitive(stats, "clients"))
        cJSON_ArrayForEach(stream, cJSON_GetObjectItemCaseSensitive(client, "streams"))
            n += strncmp(json_string(stream, "name"), prefix, strlen(prefix)) == 0;
    return n;
}

/* Clients in a stats reply named `name`. */
static inline int stats_count_clients(cJSON *stats, const char *name)
{
    int n = 0;
    cJSON *client;
    cJSON_ArrayForEach(client, cJSON_GetObjectItemCaseSensitive(stats, "clients"))
        n += strcmp(json_string(client, "name"), name) == 0;
    return n;
}

/* The stream is running and the card has played frames of it. */
static inline bool stream_running(cJSON *stats, const char *name)
{
    cJSON *st = stats_find_stream(stats, name);
    return st && strcmp(json_string(st, "state"), "running") == 0 && json_number(st, "frames") > 0;
}

static inline bool all_running(cJSON *stats, void *ctx)
{
    for (const char *const *name = ctx; *name; name++)
        if (!stream_running(stats, *name))
            return false;
    return true;
}

/* Wait until the card has run `seconds` (card time), at most `timeout` s.
 * The tap's ring (tap.c) holds 5.5 s: until it has been written through
 * once, its pages still become resident, which is not a leak. */
static inline bool wait_card_seconds(struct daemon *d, double seconds, double timeout)
{
    double deadline = now_seconds() + timeout;
    while (card_seconds(d) < seconds) {
        if (now_seconds() > deadline)
            return false;
        sleep_seconds(0.05);
    }
    return true;
}

#define TAP_WARM_SECONDS 6.0

/* ---- victims: steady tones that must never underrun ---- */

#define VICTIM_AMP 0.1

struct victim {
    char name[32];
    double hz;
    pid_t pid;
    char out[256];   /* its stdout: the counters it prints at SIGTERM */
};

/* The victims' latency: 20 ms, 100 ms under AddressSanitizer (it slows the
 * client's own side; the property checked, 0 underruns, stays).  50 ms
 * was enough until a machine where a system call costs 1 us: there a
 * callback victim underran once at 50 ms beside socket_fuzz under ASan. */
static inline const char *victim_latency(void)
{
    static bool said;
    if (!sanitized("address"))
        return "0.02";
    if (!said)
        printf("note: AddressSanitizer build (SC_SANITIZED=%s): the victims run at latency 100 ms instead of 20 ms\n",
               getenv("SC_SANITIZED"));
    said = true;
    return "0.1";
}

/* Start rel_client `mode` as each victim, blocksize 256, and wait until all
 * of them run.  The tests use callback mode: its thread runs SCHED_FIFO when
 * the system allows it (stats say "callback":"realtime"), so an underrun is
 * the daemon's doing, not the load other programs put on the machine. */
static inline void victims_start(struct daemon *d, struct victim *v, int n, const char *mode)
{
    const char *names[9] = { NULL };
    for (int i = 0; i < n && i < 8; i++) {
        char freq[32];
        snprintf(freq, sizeof(freq), "%g", v[i].hz);
        snprintf(v[i].out, sizeof(v[i].out), "%s", daemon_path(d, v[i].name));
        const char *argv[] = { harness_bin("rel_client"), mode, "--name", v[i].name, "--freq", freq,
                               "--amp", "0.1", "--latency", victim_latency(), "--blocksize", "256", NULL };
        v[i].pid = spawn_client(d, argv, v[i].out);
        names[i] = v[i].name;
    }
    if (!wait_for_stats(d->socket_path, all_running, names, 10)) {
        fprintf(stderr, "the victims did not start running within 10 s; daemon log:\n%s\n",
                slurp(d->log_path));
        exit(1);
    }
    /* A callback stream starts with its latency's worth of primed silence:
     * from a quarter second of card time on, their tones are in the tap. */
    wait_card_seconds(d, card_seconds(d) + 0.25, 10);
}

/* Every victim is in stats with 0 underruns; prints their counters. */
static inline void victims_check(struct daemon *d, struct victim *v, int n, const char *when)
{
    cJSON *stats = stats_snapshot(d->socket_path);
    for (int i = 0; i < n; i++) {
        cJSON *st = stats_find_stream(stats, v[i].name);
        VERIFY(st && stream_running(stats, v[i].name), "%s: victim %s runs (%s)", when, v[i].name,
               st ? json_string(st, "state") : "missing from stats");
        VERIFY_STALLABLE(json_number(st, "underruns") == 0,
                         "%s: victim %s has 0 underruns (frames %.0f, underruns %.0f, callback thread %s)", when,
                         v[i].name, json_number(st, "frames"), json_number(st, "underruns"),
                         json_string(st, "callback"));
    }
    cJSON_Delete(stats);
}

/* SIGTERM each victim; each must exit 0 having seen 0 underruns itself. */
static inline void victims_stop(struct victim *v, int n)
{
    for (int i = 0; i < n; i++)
        kill(v[i].pid, SIGTERM);
    for (int i = 0; i < n; i++) {
        int rc = wait_child(v[i].pid, 10);
        const char *out = slurp(v[i].out);
        VERIFY(rc == 0, "victim %s stopped: exit %d", v[i].name, rc);
        VERIFY_STALLABLE(strstr(out, " underruns=0 "), "victim %s saw 0 underruns itself: %s", v[i].name,
                         out[0] ? out : "(nothing printed)\n");
    }
}

/* wavcheck: every victim's tone at its amplitude (±10 %) in every 50 ms
 * block of [from, to] s of the tap, every sample finite and in [-1, 1]. */
static inline void victims_check_tap(struct daemon *d, struct victim *v, int n, double from, double to)
{
    char from_s[32], to_s[32], expect[8][32];
    snprintf(from_s, sizeof(from_s), "%.3f", from);
    snprintf(to_s, sizeof(to_s), "%.3f", to);
    const char *argv[32] = { harness_bin("wavcheck"), daemon_path(d, "tap.wav"), "--from", from_s, "--to", to_s,
                             "--block-ms", "50", "--tolerance", "0.1" };
    int argc = 10;
    for (int i = 0; i < n && i < 8; i++) {
        snprintf(expect[i], sizeof(expect[i]), "%g:%g", v[i].hz, VICTIM_AMP);
        argv[argc++] = "--expect";
        argv[argc++] = expect[i];
    }
    argv[argc] = NULL;
    fflush(stdout);
    pid_t pid = spawn_process(argv, NULL, NULL, NULL);
    int rc = wait_child(pid, 60);
    VERIFY_STALLABLE(rc == 0,
                     "tap [%s, %s] s: every victim's tone at %g ±10%% in every 50 ms block (wavcheck exit %d)",
                     from_s, to_s, VICTIM_AMP, rc);
}

/* A test whose victims underrun while the machine stalls (their 20 ms
 * budget is below this machine's stalls: docs/timing.md) runs again, up to
 * three times, when those were its only failures (attempt.h); a failure
 * of any other check stands.  Returns the exit code. */
static inline int beside_victims(const char *name, void (*test)(void))
{
    struct attempt a;
    attempt_begin_stallable(&a, name, atof(victim_latency()), NULL);
    do
        test();
    while (attempt_again(&a));
    return harness_finish(name);
}

#endif
