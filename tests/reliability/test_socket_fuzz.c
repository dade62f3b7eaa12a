/* Hostile clients on the control socket: the daemon and everyone else go on.
 *
 * soundcardd --hello-timeout-ms 2000; two victims play throughout:
 * rel_client callback at 20 ms of latency (its callback thread runs
 * SCHED_FIFO: any stall of the daemon's RT cycle shows there), and
 * rel_client tone, blocking writes from a thread at normal priority, at
 * 100 ms (it shares two cores with the daemon's loop thread, busy with the
 * flood, and whatever else runs: 20 ms there measures the scheduler).
 * Then 24 rel_fuzzer processes (SC_SOAK: 32) hammer the socket for 8 s
 * (SC_SOAK: 60 s): thousands of lines each of random text and bytes with
 * NULs, truncated JSON, nesting thousands deep, wrong types, bogus ids and
 * stream ids, the victims' stream ids, lines near and over 64 KiB, requests
 * before hello, half lines and disconnects, valid stream ops of their own.
 * Each rel_fuzzer checks that every line got exactly the reply it must get
 * (see rel_fuzzer.c) and exits 0 only then.
 *
 * Meanwhile, every 100 ms a probe connects, says hello and asks server.info:
 * both are answered within 2 s, well-formed, and the daemon's PID is alive.
 * Afterwards:
 *   - every rel_fuzzer exited 0;
 *   - the victims ran with 0 underruns (daemon's stats and their own);
 *   - stats list only the victims' two clients and the probe, and the
 *     daemon's open descriptors and stream memfd mappings are back to the
 *     counts before the fuzzers (within 5 s);
 *   - server.info is answered; the daemon stops cleanly (exit 0; under ASan
 *     LeakSanitizer has checked it at exit);
 *   - its log holds at most 50 error replies a second of its life, and says
 *     how many it did not log: a flood of bad lines does not flood the log.
 *
 * Seed: SC_FUZZ_SEED, else the clock; printed first.  rel_fuzzer i runs
 * seed + i, so a failing fuzzer's lines can be replayed.  Under a sanitizer
 * (SC_SANITIZED) the daemon has 30 s instead of 10 s to answer a line and
 * the probe 5 s instead of 2 s (printed): the properties are the same. */
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "daemon_watch.h"

#define FUZZERS 24
#define SOAK_FUZZERS 32
#define HELLO_TIMEOUT_MS "2000"
#define ERROR_LOGS_PER_SECOND 50  /* daemon/session.c */

struct probe_result {
    bool ok;
    double seconds;
    char why[256];
};

/* hello + server.info on a fresh connection, each answered within
 * `timeout` s: the daemon is alive and serving. */
static struct probe_result probe(const char *socket_path, double timeout)
{
    struct probe_result r = {.ok = false};
    double start = now_seconds(), deadline = start + timeout;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", socket_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        snprintf(r.why, sizeof(r.why), "cannot connect: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return r;
    }
    const char *req = "{\"id\":1,\"op\":\"hello\",\"protocol\":1,\"name\":\"fuzz-probe\"}\n"
                      "{\"id\":2,\"op\":\"server.info\"}\n";
    if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
        snprintf(r.why, sizeof(r.why), "cannot send: %s", strerror(errno));
        close(fd);
        return r;
    }
    static char buf[1 << 16];
    size_t used = 0;
    int replies = 0;
    while (replies < 2) {
        char *nl = memchr(buf, '\n', used);
        if (nl) {
            *nl = '\0';
            cJSON *msg = cJSON_Parse(buf);
            cJSON *id = cJSON_GetObjectItemCaseSensitive(msg, "id");
            bool ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(msg, "ok"));
            if (cJSON_IsNumber(id) && id->valuedouble == 2) {
                ok = ok && json_number(msg, "rate") > 0 && json_number(msg, "clients") >= 1 &&
                     strcmp(json_string(msg, "state"), "running") == 0 && json_string(msg, "version")[0];
            }
            if (!cJSON_IsNumber(id) || id->valuedouble != replies + 1 || !ok) {
                snprintf(r.why, sizeof(r.why), "reply %d is not a well-formed ok: %.200s", replies + 1, buf);
                cJSON_Delete(msg);
                close(fd);
                return r;
            }
            cJSON_Delete(msg);
            replies++;
            used -= (size_t)(nl + 1 - buf);
            memmove(buf, nl + 1, used);
            continue;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        double left = deadline - now_seconds();
        ssize_t n = left > 0 && poll(&p, 1, (int)(left * 1000) + 1) > 0
                        ? recv(fd, buf + used, sizeof(buf) - 1 - used, 0) : -2;
        if (n <= 0) {
            snprintf(r.why, sizeof(r.why), "%s after %d of 2 replies",
                     n == -2 ? "no answer in time" : "connection closed", replies);
            close(fd);
            return r;
        }
        used += (size_t)n;
    }
    close(fd);
    r.ok = true;
    r.seconds = now_seconds() - start;
    return r;
}

/* After a pass: the daemon's temp dir goes (its verbose log of every bad
 * line is tens of MiB).  After a failure it stays, for reading. */
static void remove_temp_dir(const char *dir)
{
    DIR *d = opendir(dir);
    char path[512];
    for (struct dirent *e; d && (e = readdir(d));) {
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (e->d_name[0] != '.' || (e->d_name[1] && strcmp(e->d_name, "..") != 0))
            unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

/* The number after " key=" in a rel_fuzzer summary line, 0 if absent. */
static long summary_number(const char *summary, const char *key)
{
    char pattern[32];
    snprintf(pattern, sizeof(pattern), " %s=", key);
    const char *at = strstr(summary, pattern);
    return at ? atol(at + strlen(pattern)) : 0;
}

/* Lines of the daemon's log that record an error reply ("client N (NAME):
 * CODE: message"), and lines that say how many were not logged. */
static void count_error_logs(const char *path, long *logged, long *summaries)
{
    static const char *const codes[] = {"bad_request", "unsupported_version", "unknown_op", "not_found",
                                        "invalid_state", "limit", "denied", "backend", "internal"};
    FILE *f = fopen(path, "r");
    char line[4096];
    *logged = *summaries = 0;
    while (f && fgets(line, sizeof(line), f)) {
        *summaries += strstr(line, " error replies not logged ") != NULL;
        const char *after = strstr(line, "): ");
        for (size_t i = 0; after && i < sizeof(codes) / sizeof(codes[0]); i++) {
            size_t n = strlen(codes[i]);
            if (strncmp(after + 3, codes[i], n) == 0 && after[3 + n] == ':') {
                ++*logged;
                break;
            }
        }
    }
    if (f)
        fclose(f);
}

/* No client but the victims' and the stats probe, no stream but theirs. */
static bool only_victims(cJSON *stats, void *ctx)
{
    (void)ctx;
    return cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(stats, "clients")) == 3 &&
           stats_count_streams(stats, "") == 2 && stats_count_streams(stats, "victim-") == 2;
}

static void fuzz_beside_victims(void)
{
    bool long_run = soak();
    int fuzzers = long_run ? SOAK_FUZZERS : FUZZERS;
    double seconds = long_run ? 60 : 8;
    double reply_timeout = 10, probe_timeout = 2;
    if (getenv("SC_SANITIZED")) {
        reply_timeout = 30;
        probe_timeout = 5;
        printf("note: sanitizer build (SC_SANITIZED=%s): %g s for a reply instead of 10 s, %g s for the "
               "probe instead of 2 s\n", getenv("SC_SANITIZED"), reply_timeout, probe_timeout);
    }
    const char *seed_env = getenv("SC_FUZZ_SEED");
    uint64_t seed = seed_env && *seed_env ? strtoull(seed_env, NULL, 10)
                                          : (uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid();
    printf("seed %" PRIu64 " (SC_FUZZ_SEED=%" PRIu64 " replays these lines; rel_fuzzer i runs seed + i)\n",
           seed, seed);
    printf("== %d fuzzers for %g s against two victims ==\n", fuzzers, seconds);
    fflush(stdout);

    struct daemon d;
    double started = now_seconds();
    daemon_start(&d, (const char *const[]){"--hello-timeout-ms", HELLO_TIMEOUT_MS, NULL}, 10);
    struct victim v[2] = {{.name = "victim-tone", .hz = 440}, {.name = "victim-callback", .hz = 660}};
    victims_start(&d, &v[1], 1, "callback");
    snprintf(v[0].out, sizeof(v[0].out), "%s", daemon_path(&d, v[0].name));
    const char *tone[] = {harness_bin("rel_client"), "tone", "--name", v[0].name, "--freq", "440", "--amp", "0.1",
                          "--latency", "0.1", "--blocksize", "256", NULL};
    v[0].pid = spawn_client(&d, tone, v[0].out);
    const char *names[] = {v[0].name, v[1].name, NULL};
    if (!wait_for_stats(d.socket_path, all_running, names, 10)) {
        fprintf(stderr, "the victims did not start running within 10 s; daemon log:\n%s\n", slurp(d.log_path));
        exit(1);
    }
    cJSON *stats = stats_snapshot(d.socket_path);
    double victim_stream = json_number(stats_find_stream(stats, "victim-tone"), "id");
    cJSON_Delete(stats);
    int fds_before = settled_fd_count(d.pid), maps_before = proc_stream_maps(d.pid);
    printf("info before: %d descriptors, %d stream mappings; the victim's stream is %.0f\n", fds_before,
           maps_before, victim_stream);

    pid_t pids[SOAK_FUZZERS];
    char outs[SOAK_FUZZERS][256];
    char secs[32], victim_s[32], reply_s[32];
    snprintf(secs, sizeof(secs), "%g", seconds);
    snprintf(victim_s, sizeof(victim_s), "%.0f", victim_stream);
    snprintf(reply_s, sizeof(reply_s), "%g", reply_timeout);
    for (int i = 0; i < fuzzers; i++) {
        char seed_s[32], name[32];
        snprintf(seed_s, sizeof(seed_s), "%" PRIu64, seed + (uint64_t)i);
        snprintf(name, sizeof(name), "fuzzer-%d.out", i);
        snprintf(outs[i], sizeof(outs[i]), "%s", daemon_path(&d, name));
        char first[16];
        snprintf(first, sizeof(first), "%d", i);
        const char *argv[] = {harness_bin("rel_fuzzer"), seed_s, secs, victim_s, HELLO_TIMEOUT_MS, reply_s,
                              first, NULL};
        pids[i] = spawn_client(&d, argv, outs[i]);
    }

    /* While they run: the daemon answers a newcomer within probe_timeout. */
    int probes = 0, failed_probes = 0;
    double slowest = 0, end = now_seconds() + seconds, halfway = now_seconds() + seconds / 2;
    bool checked_halfway = false;
    while (now_seconds() < end) {
        struct probe_result r = probe(d.socket_path, probe_timeout);
        probes++;
        if (!r.ok && failed_probes++ < 5)
            printf("FAIL probe %d: %s\n", probes, r.why);
        slowest = r.ok && r.seconds > slowest ? r.seconds : slowest;
        if (kill(d.pid, 0) != 0)
            break;
        if (!checked_halfway && now_seconds() > halfway) {
            victims_check(&d, v, 2, "halfway through the fuzzing");
            checked_halfway = true;
        }
        sleep_seconds(0.1);
    }
    VERIFY(kill(d.pid, 0) == 0, "soundcardd (pid %d) is alive after %g s of fuzzing", (int)d.pid, seconds);
    VERIFY(failed_probes == 0, "%d probes (hello + server.info) during the fuzzing: %d failed, the slowest "
           "answered in %.3f s (limit %g s)", probes, failed_probes, slowest, probe_timeout);

    /* Every fuzzer: every line got its reply; together they ran everything. */
    enum { CHAT, STREAMS, OVERSIZE, NOHELLO, RAW, HALF, LINES, REPLIES, EVENTS, OPENED, CUT, HELLO_TIMEOUTS,
           N_COUNTED };
    static const char *const counted[N_COUNTED] = {"chat", "streams", "oversize", "nohello", "raw", "half",
                                                   "lines", "replies", "events", "opened", "cut",
                                                   "hello_timeouts"};
    long sum[N_COUNTED] = {0};
    int fuzzer_failures = 0;
    for (int i = 0; i < fuzzers; i++) {
        int rc = wait_child(pids[i], reply_timeout * 2 + 30);
        const char *out = slurp(outs[i]);
        for (int k = 0; k < N_COUNTED; k++)
            sum[k] += summary_number(out, counted[k]);
        if (rc != 0 && fuzzer_failures++ < 5)
            printf("FAIL rel_fuzzer %d (seed %" PRIu64 ") exit %d: %s", i, seed + (uint64_t)i, rc,
                   out[0] ? out : "(no summary)\n");
    }
    printf("info all fuzzers:");
    for (int k = 0; k < N_COUNTED; k++)
        printf(" %s=%ld", counted[k], sum[k]);
    printf("\n");
    VERIFY(fuzzer_failures == 0, "%d fuzzers sent %ld lines; every line got the reply it must get (%d "
           "fuzzers found otherwise: their errors are above)", fuzzers, sum[LINES], fuzzer_failures);
    VERIFY(sum[LINES] >= 1000L * fuzzers, "the fuzzers sent thousands of lines each (%ld in all)", sum[LINES]);
    VERIFY(sum[CHAT] && sum[STREAMS] && sum[OVERSIZE] && sum[NOHELLO] && sum[RAW] && sum[HALF] && sum[OPENED] &&
               sum[CUT] && sum[HELLO_TIMEOUTS],
           "every kind of episode ran, streams were opened, lines over 64 KiB were cut off (%ld) and "
           "silent clients timed out (%ld)", sum[CUT], sum[HELLO_TIMEOUTS]);

    /* Everything they held is given back; the victims never noticed. */
    victims_check(&d, v, 2, "after the fuzzing");
    VERIFY(wait_for_stats(d.socket_path, only_victims, NULL, 5),
           "within 5 s stats list only the victims' clients and streams and the probe");
    bool back = wait_resources(d.pid, fds_before, maps_before, 5);
    VERIFY(back, "within 5 s the daemon's descriptors and stream mappings are back to %d and %d (now %d, %d)",
           fds_before, maps_before, proc_fd_count(d.pid), proc_stream_maps(d.pid));
    struct probe_result last = probe(d.socket_path, probe_timeout);
    VERIFY(last.ok, "after the fuzzing, hello + server.info answered (%s)", last.ok ? "ok" : last.why);
    victims_stop(v, 2);
    VERIFY(daemon_stop(&d, 10) == 0, "soundcardd stops cleanly (exit 0)");
    long logged, summaries;
    count_error_logs(d.log_path, &logged, &summaries);
    double lived = now_seconds() - started;
    VERIFY(logged <= ERROR_LOGS_PER_SECOND * ((long)lived + 1) && summaries > 0,
           "the log holds %ld error replies (of %ld replies) in %.1f s (at most %d a second) and %ld lines "
           "counting those not logged", logged, sum[REPLIES], lived, ERROR_LOGS_PER_SECOND, summaries);
    if (harness_failures == 0)
        remove_temp_dir(d.dir);
    else
        printf("the daemon's log and the fuzzers' summaries: %s\n", d.dir);
}

int main(void)
{
    return beside_victims("socket_fuzz", fuzz_beside_victims);
}
