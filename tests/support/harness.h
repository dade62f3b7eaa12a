/* What the integration tests share: a real soundcardd on a temp socket,
 * started and stopped by PID; child processes with deadlines; assertions. */
#ifndef SC_TEST_HARNESS_H
#define SC_TEST_HARNESS_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

struct notify_watch;

struct daemon {
    pid_t pid;
    char dir[64];         /* private temp dir: socket, notify socket, files */
    char socket_path[108];
    char log_path[128];
    struct notify_watch *notify;  /* daemon_start_watched: every sd_notify message */
    double card_rate, card_period;  /* card_seconds: from server.info, at its first call */
};

extern int harness_failures;

#define CHECK(cond, ...)                                                                     \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                  \
            fprintf(stderr, __VA_ARGS__);                                                    \
            fprintf(stderr, "\n");                                                           \
            harness_failures++;                                                              \
        }                                                                                    \
    } while (0)

/* The build's binaries (soundcardd, soundcard, wavcheck) live in the
 * directory named by $SC_BIN_DIR (set by CTest). */
const char *harness_bin(const char *name);

/* Start soundcardd with extra arguments (NULL-terminated; one starting with
 * '@' names a file in the daemon's temp dir: "@/tap.wav") and wait for its
 * sd_notify READY=1, at most `timeout` seconds.  Exits the test on failure. */
void daemon_start(struct daemon *d, const char *const *extra_args, double timeout);
/* The same, with NAME=VALUE entries added to its environment, and a thread
 * that goes on reading its sd_notify messages (as systemd would: an unread
 * notify socket would block the daemon once its queue is full). */
void daemon_start_watched(struct daemon *d, const char *const *extra_args,
                          const char *const *extra_env, double timeout);
/* How many messages containing `text` ("WATCHDOG=1", "STOPPING=1") it sent
 * so far; daemon_wait_notify waits until there are at least `count`. */
int daemon_notify_count(struct daemon *d, const char *text);
bool daemon_wait_notify(struct daemon *d, const char *text, int count, double timeout);
/* The newest message containing `text` (a static copy, "" if none). */
const char *daemon_notify_last(struct daemon *d, const char *text);
/* SIGTERM, wait at most `timeout` seconds; returns its exit status (or -1
 * if it had to be killed).  Prints its log on failure. */
int daemon_stop(struct daemon *d, double timeout);
/* A path inside the daemon's temp dir. */
const char *daemon_path(struct daemon *d, const char *name);

/* fork+exec argv with NAME=VALUE entries added to the environment; stdout
 * and stderr to files when not NULL. */
pid_t spawn_process(const char *const *argv, const char *const *extra_env, const char *out_path,
                    const char *err_path);
/* posix_spawn argv with SOUNDCARD_SOCKET pointing at d; stdout to out_path
 * when not NULL. */
pid_t spawn_client(struct daemon *d, const char *const *argv, const char *out_path);
/* Wait for pid at most `timeout` seconds; exit status, or -1 after killing it. */
int wait_child(pid_t pid, double timeout);

/* The `stats` op over a fresh connection; NULL on failure. */
cJSON *stats_snapshot(const char *socket_path);
/* Any request (without id) over a fresh connection: its ok reply, or NULL. */
cJSON *request_once(const char *socket_path, const char *request);
/* The stream named `name` in a stats reply, or NULL. */
cJSON *stats_find_stream(cJSON *stats, const char *name);
double json_number(cJSON *obj, const char *key);
/* Where the card is now, in seconds of card time: the tap's clock (the tap
 * records every period from the first; a card xrun skips the lost time, so
 * card time falls behind the wall clock), or -1. */
double card_seconds(struct daemon *d);
/* The card's xruns so far (server.info), or -1 when the daemon does not answer. */
double card_xruns(struct daemon *d);
/* Take stats snapshots every 20 ms until `done(stats, ctx)` is true or
 * `timeout` seconds pass; returns whether it became true. */
bool wait_for_stats(const char *socket_path, bool (*done)(cJSON *stats, void *ctx), void *ctx,
                    double timeout);

double now_seconds(void);
/* Read a whole small file into a static buffer ("" if missing). */
const char *slurp(const char *path);

/* A temp dir of the test's own that harness_finish removes when every check
 * passed (the daemons' dirs are remembered by daemon_start). */
void harness_remember_temp_dir(const char *dir);
int harness_finish(const char *name);

#endif
