/* reliability.restart: soundcardd killed (SIGKILL) or stopped (SIGTERM)
 * under its clients, and started again on the same socket path.
 *
 *   lost       without reconnect, a blocking writer and a blocking reader
 *              (one client, rel_writer) get SC_EDISCONNECTED, with a message
 *              naming the socket, within 1 s of the kill; sc_client_open
 *              says SC_ENOSERVER while no daemon runs and works once one is
 *              back; nothing new in /dev/shm, and the socket directory holds
 *              the stale socket after SIGKILL (reclaimed by the next daemon,
 *              which logs it) and nothing after SIGTERM.
 *   reconnect  with auto-reconnect (SOUNDCARD_RECONNECT in one run,
 *              sc_client_set_reconnect in the other) the same kind of client
 *              goes on by itself: each stream reopens exactly once per
 *              restart, the new daemon sees one client with all its streams
 *              running, the reader hears the NEW daemon's capture tone
 *              (another frequency), the writers finish without an error and
 *              their tones (distinct frequencies) fill the new daemon's tap
 *              at their level, block after block.
 *   client     in this process: sc_client_set_reconnect refuses bad values;
 *              with reconnect on sc_get_server_info and sc_stream_open work
 *              across a restart (off: SC_EDISCONNECTED); a gain set while
 *              the daemon is gone reaches the new one; a callback stream
 *              ends (finished runs) and starts again on the new daemon; a
 *              daemon that does not come back ends a blocked write after the
 *              timeout with SC_EDISCONNECTED naming the socket; close is 0.
 *   live       a second soundcardd on a served path exits non-zero with one
 *              line; the first keeps serving on the same socket file (inode).
 *   race       three daemons started at once on a stale path: exactly one
 *              serves (the socket's peer), the others exit with one line.
 *   not-socket a regular file at the path is refused, not removed.
 *
 * Arguments (for a quick run by hand): the parts to run, by the names above
 * (default: all).
 *
 * SC_SOAK=1: the reconnect client lives through ten restarts (alternating
 * SIGKILL and SIGTERM) and the race runs 100 rounds (10 otherwise).  Sanitizer builds
 * (SC_SANITIZED) allow 2 s instead of 1 s for the error to arrive, and say so. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <soundcard/soundcard.h>

#include "harness.h"

#define AMP 0.2
#define OLD_CAPTURE_HZ 440
#define NEW_CAPTURE_HZ 660

static char run_dir[64];      /* the socket's own directory: compared before/after */
static char socket_path[108];
static double error_bound = 1.0;

/* ---- a rel_writer and what it says (its stdout through a pipe) ---- */

struct writer {
    pid_t pid;
    int fd;
    char out[1 << 18];
    size_t len;
    bool eof;
};

static void writer_start(struct writer *w, const char *const *args, const char *reconnect_env)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        perror("pipe2");
        exit(1);
    }
    /* The child opens its stdout by name: our write end, left open across
     * exec only for that moment. */
    fcntl(p[1], F_SETFD, 0);
    char out_path[64], err_path[256], sock_env[200];
    snprintf(out_path, sizeof(out_path), "/proc/self/fd/%d", p[1]);
    snprintf(err_path, sizeof(err_path), "%s/../writer.err", run_dir);
    snprintf(sock_env, sizeof(sock_env), "SOUNDCARD_SOCKET=%s", socket_path);
    const char *argv[32] = { harness_bin("rel_writer") };
    for (int i = 0; args[i] && i < 30; i++)
        argv[i + 1] = args[i];
    const char *env[] = { sock_env, reconnect_env, NULL };
    memset(w, 0, sizeof(*w));
    w->pid = spawn_process(argv, env, out_path, err_path);
    close(p[1]);
    w->fd = p[0];
}

/* Read what arrived, waiting at most until `deadline`; false at EOF. */
static bool writer_pump(struct writer *w, double deadline)
{
    if (w->eof)
        return false;
    double left = deadline - now_seconds();
    struct pollfd p = { .fd = w->fd, .events = POLLIN };
    if (poll(&p, 1, left > 0 ? (int)(left * 1000) + 1 : 0) <= 0)
        return true;
    ssize_t n = read(w->fd, w->out + w->len, sizeof(w->out) - 1 - w->len);
    if (n <= 0) {
        w->eof = true;
        return false;
    }
    w->len += (size_t)n;
    w->out[w->len] = '\0';
    return true;
}

/* The index-th complete line starting with `prefix` after line `from`
 * (NULL if none yet); *line_no gets its line number. */
static const char *writer_line(struct writer *w, const char *prefix, int from, int index, int *line_no)
{
    static char copy[1024];
    int no = 0;
    for (const char *l = w->out; *l; no++) {
        const char *end = strchr(l, '\n');
        if (!end)
            break;
        if (no > from && strncmp(l, prefix, strlen(prefix)) == 0 && index-- == 0) {
            snprintf(copy, sizeof(copy), "%.*s", (int)(end - l), l);
            if (line_no)
                *line_no = no;
            return copy;
        }
        l = end + 1;
    }
    return NULL;
}

static int writer_count(struct writer *w, const char *prefix, int from)
{
    int n = 0;
    while (writer_line(w, prefix, from, n, NULL))
        n++;
    return n;
}

/* Wait until `count` lines start with `prefix` (after line `from`). */
static bool writer_wait(struct writer *w, const char *prefix, int from, int count, double timeout)
{
    double deadline = now_seconds() + timeout;
    while (writer_count(w, prefix, from) < count)
        if (!writer_pump(w, deadline) || now_seconds() > deadline)
            return writer_count(w, prefix, from) >= count;
    return true;
}

/* Its exit status once its stdout closed (-1: still running at the deadline);
 * what it said is printed when that is not `expected`. */
static int writer_finish(struct writer *w, double timeout, int expected)
{
    double deadline = now_seconds() + timeout;
    while (writer_pump(w, deadline) && now_seconds() < deadline)
        ;
    close(w->fd);
    int rc = wait_child(w->pid, w->eof ? 5 : 0.1);
    if (rc != expected)
        fprintf(stderr, "rel_writer said:\n%s\n", w->out);
    return rc;
}

/* ---- the daemon on our socket path ---- */

static void start_daemon_on_path(struct daemon *d, int capture_hz)
{
    char capture[32];
    snprintf(capture, sizeof(capture), "sine:%d", capture_hz);
    daemon_start(d, (const char *const[]){ "--socket", socket_path, "--capture", capture, "--tap",
                                           "@/tap.wav", NULL },
                 20);
    snprintf(d->socket_path, sizeof(d->socket_path), "%s", socket_path);
}

/* Stop it with `sig` (SIGTERM or SIGKILL) and reap it; its exit status. */
static int end_daemon(struct daemon *d, int sig, double *t_kill)
{
    *t_kill = now_seconds();
    kill(d->pid, sig);
    int rc = wait_child(d->pid, 20);
    d->pid = 0;
    return rc;
}

/* ---- listings ---- */

/* Sorted names in a directory, one per line ("" for none or missing). */
static void listing(const char *dir, char *out, size_t len)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (strcmp(names[i]->d_name, ".") && strcmp(names[i]->d_name, "..")) {
            size_t used = strlen(out);
            snprintf(out + used, len - used, "%s\n", names[i]->d_name);
        }
        free(names[i]);
    }
    if (n >= 0)
        free(names);
}

static char shm_before[1 << 16];

/* Entries of /dev/shm now that were not there before.  JACK's own files
 * (jack*) belong to JACK servers of other tests running on this machine
 * and are left out, with a note. */
static void check_shm_unchanged(const char *what)
{
    char now[1 << 16];
    listing("/dev/shm", now, sizeof(now));
    char extra[4096] = "";
    for (char *l = now, *end; (end = strchr(l, '\n')); l = end + 1) {
        char name[300];
        snprintf(name, sizeof(name), "\n%.*s\n", (int)(end - l), l);
        char before[sizeof(shm_before) + 2];
        snprintf(before, sizeof(before), "\n%s", shm_before);
        if (strstr(before, name))
            continue;
        if (strncmp(name + 1, "jack", 4) == 0) {
            printf("note: %s: /dev/shm/%.*s appeared (a JACK server's, not ours)\n", what, (int)(end - l), l);
            continue;
        }
        size_t used = strlen(extra);
        snprintf(extra + used, sizeof(extra) - used, "%.*s ", (int)(end - l), l);
    }
    CHECK(extra[0] == '\0', "%s: new files in /dev/shm: %s", what, extra);
}

/* While it runs, the daemon holds no /dev/shm file: its stream memory is
 * memfds only (they vanish with the last descriptor). */
static void check_no_shm_files(pid_t pid, const char *what)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    const char *maps = slurp(path);
    CHECK(maps[0] && !strstr(maps, "/dev/shm/"), "%s: soundcardd maps a /dev/shm file:\n%s", what, maps);
    CHECK(strstr(maps, "/memfd:") != NULL, "%s: soundcardd maps no memfd while streams are open", what);
}

/* ---- the socket ---- */

/* Connect to the socket: its listener's pid (SO_PEERCRED), or -errno. */
static int socket_peer(void)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", socket_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    struct ucred cred;
    socklen_t len = sizeof(cred);
    int rc = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 ? cred.pid : -errno;
    close(fd);
    return rc;
}

static ino_t socket_inode(void)
{
    struct stat st;
    return stat(socket_path, &st) == 0 && S_ISSOCK(st.st_mode) ? st.st_ino : 0;
}

/* sc_client_open on the path: its result, with the library's message. */
static int try_open(char *why, size_t len)
{
    sc_client *c;
    int err = sc_client_open(&c, socket_path, "restart-probe");
    snprintf(why, len, "%s", err < 0 ? sc_last_error() : "");
    if (err == 0) {
        sc_server_info info;
        err = sc_get_server_info(c, &info);
        sc_client_close(c);
    }
    return err;
}

static const char *signame(int sig)
{
    return sig == SIGKILL ? "SIGKILL" : "SIGTERM";
}

/* ---- lost: no reconnect ---- */

/* "error NAME T CODE CALL: MESSAGE" said in time, with the right code and
 * a message naming the socket. */
static void check_error_line(const char *line, double t_kill, const char *what)
{
    char name[64];
    double t;
    long code;
    int at = 0;
    if (!line || sscanf(line, "error %63s %lf %ld %n", name, &t, &code, &at) < 3) {
        CHECK(0, "%s: no error line (got '%s')", what, line ? line : "");
        return;
    }
    const char *message = line + at;
    printf("info %s: %s returned %.3f s after the kill: %s\n", what, name, t - t_kill, message);
    CHECK(code == SC_EDISCONNECTED, "%s: %s failed with %ld (%s), not SC_EDISCONNECTED (%d)", what, name, code,
          sc_strerror((int)code), SC_EDISCONNECTED);
    CHECK(t - t_kill < error_bound, "%s: %s waited %.3f s after the kill (at most %g s)", what, name, t - t_kill,
          error_bound);
    CHECK(strstr(message, socket_path) != NULL, "%s: the message does not name the socket %s: %s", what,
          socket_path, message);
}

static void test_lost(int sig)
{
    char what[64], before[4096], after[4096], why[512], lines[160];
    snprintf(what, sizeof(what), "lost/%s", signame(sig));
    printf("== %s: blocking writer and reader without reconnect ==\n", what);
    struct daemon d;
    start_daemon_on_path(&d, OLD_CAPTURE_HZ);
    listing(run_dir, before, sizeof(before));
    CHECK(strcmp(before, "socket\n") == 0, "%s: the socket directory holds the socket alone:\n%s", what, before);

    struct writer w;
    const char *args[] = { "--play", "1000", "--record", "--listen", "440", "--seconds", "60", NULL };
    writer_start(&w, args, "SOUNDCARD_RECONNECT=0");
    bool flowing = writer_wait(&w, "played ", -1, 1, 10) && writer_wait(&w, "heard ", -1, 1, 10);
    CHECK(flowing, "%s: the writer and reader did not get going:\n%s", what, w.out);
    check_no_shm_files(d.pid, what);

    double t_kill;
    int rc = end_daemon(&d, sig, &t_kill);
    CHECK(rc == (sig == SIGKILL ? 128 + SIGKILL : 0), "%s: soundcardd exited with %d", what, rc);
    writer_wait(&w, "error ", -1, 2, 10);
    check_error_line(writer_line(&w, "error rel-writer-1000 ", -1, 0, NULL), t_kill, what);
    check_error_line(writer_line(&w, "error rel-writer-rec ", -1, 0, NULL), t_kill, what);
    rc = writer_finish(&w, 10, 3);
    CHECK(rc == 3, "%s: rel_writer exit status %d (3: its streams ended with errors)", what, rc);

    /* While none runs: SC_ENOSERVER, at once, naming the path. */
    double t0 = now_seconds();
    int err = try_open(why, sizeof(why));
    CHECK(err == SC_ENOSERVER && strstr(why, socket_path) && now_seconds() - t0 < 1,
          "%s: sc_client_open with no daemon: %d (%s) after %.3f s, want SC_ENOSERVER naming %s", what, err, why,
          now_seconds() - t0, socket_path);
    listing(run_dir, after, sizeof(after));
    if (sig == SIGKILL) {
        CHECK(strcmp(after, "socket\n") == 0, "%s: after SIGKILL the socket directory holds the stale socket "
              "alone:\n%s", what, after);
        CHECK(socket_peer() == -ECONNREFUSED, "%s: the stale socket refuses connections (%d)", what,
              socket_peer());
    } else {
        CHECK(after[0] == '\0', "%s: after SIGTERM the socket directory is empty:\n%s", what, after);
    }
    check_shm_unchanged(what);

    /* Back: sc_client_open works again; a stale socket was reclaimed. */
    struct daemon d2;
    start_daemon_on_path(&d2, OLD_CAPTURE_HZ);
    err = try_open(why, sizeof(why));
    CHECK(err == 0, "%s: sc_client_open after the restart: %d (%s)", what, err, why);
    snprintf(lines, sizeof(lines), "removed the stale socket %s", socket_path);
    bool reclaimed = strstr(slurp(d2.log_path), lines) != NULL;
    CHECK(reclaimed == (sig == SIGKILL), "%s: the new daemon %s the stale socket; its log:\n%s", what,
          reclaimed ? "says it removed" : "does not say it removed", slurp(d2.log_path));
    CHECK(daemon_stop(&d2, 20) == 0, "%s: the new soundcardd did not stop cleanly", what);
    listing(run_dir, after, sizeof(after));
    CHECK(after[0] == '\0', "%s: the stopped daemon left its socket directory empty:\n%s", what, after);
}

/* ---- reconnect ---- */

struct client_check {
    pid_t pid;
    int streams;
    char names[256];  /* the stream names it must have, space-separated */
    char seen[512];   /* what the last snapshot showed, for the failure message */
};

/* One client with that pid, with exactly the named streams, all running. */
static bool one_client_all_running(cJSON *stats, void *ctx)
{
    struct client_check *c = ctx;
    int clients = 0, running = 0, streams = 0;
    cJSON *client, *stream;
    c->seen[0] = '\0';
    cJSON_ArrayForEach(client, cJSON_GetObjectItemCaseSensitive(stats, "clients"))
    {
        if (json_number(client, "pid") != c->pid)
            continue;
        clients++;
        cJSON_ArrayForEach(stream, cJSON_GetObjectItemCaseSensitive(client, "streams"))
        {
            const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(stream, "name"));
            const char *state = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(stream, "state"));
            size_t used = strlen(c->seen);
            snprintf(c->seen + used, sizeof(c->seen) - used, "%s:%s ", name ? name : "?", state ? state : "?");
            char word[80];
            snprintf(word, sizeof(word), " %s ", name ? name : "");
            char names[260];
            snprintf(names, sizeof(names), " %s ", c->names);
            streams++;
            running += strstr(names, word) && state && strcmp(state, "running") == 0;
        }
    }
    return clients == 1 && streams == c->streams && running == c->streams;
}

/* The level of hz in a "heard" line (" HZ:LEVEL"), -1 if absent. */
static double heard_level(const char *line, int hz)
{
    char key[16];
    snprintf(key, sizeof(key), " %d:", hz);
    const char *at = strstr(line, key);
    return at ? atof(at + strlen(key)) : -1;
}

/* After reopen line `from`, the reader's blocks (all but the first, which
 * may straddle the restart) hear `hz` at the capture level and not `old_hz`. */
static void check_heard(struct writer *w, int from, int hz, int old_hz, const char *what)
{
    bool ok = writer_wait(w, "heard ", from, 3, 10);
    for (int i = 1; ok && i < 3; i++) {
        const char *line = writer_line(w, "heard ", from, i, NULL);
        double level = heard_level(line, hz), old_level = heard_level(line, old_hz);
        ok = level > 0.45 && level < 0.55 && old_level >= 0 && old_level < 0.05;
        CHECK(ok, "%s: the reader hears the new daemon's %d Hz (0.5) and not %d Hz: %s", what, hz, old_hz, line);
    }
    CHECK(ok, "%s: the reader went on after the restart (3 blocks):\n%s", what, w->out);
}

/* The tap of the last daemon: each tone at AMP in every 100 ms block
 * while the writers played into it, for at least `min_seconds`. */
static void check_tap(struct daemon *d, const int *hz, int n, double min_seconds, const char *what)
{
    const char *tap = daemon_path(d, "tap.wav");
    char out[256];
    snprintf(out, sizeof(out), "%s", daemon_path(d, "onset.txt"));
    const char *onset[] = { harness_bin("wavcheck"), tap, "--onset", NULL };
    CHECK(wait_child(spawn_client(d, onset, out), 30) == 0, "%s: wavcheck --onset %s failed", what, tap);
    double first = -1, last = -1;
    sscanf(slurp(out), "first=%lf last=%lf", &first, &last);
    printf("info %s: the new daemon's tap has sound from %.3f to %.3f s\n", what, first, last);
    CHECK(first >= 0 && last - first >= min_seconds, "%s: the tap holds %.3f s of the writers (at least %g s)",
          what, last - first, min_seconds);
    if (first < 0)
        return;
    char from[32], to[32], expect[4][32];
    snprintf(from, sizeof(from), "%.3f", first + 0.2);
    snprintf(to, sizeof(to), "%.3f", last - 0.2);
    const char *args[24] = { harness_bin("wavcheck"), tap, "--from", from, "--to", to, "--block-ms", "100",
                             "--tolerance", "0.1" };
    int argc = 10;
    for (int i = 0; i < n && i < 4; i++) {
        snprintf(expect[i], sizeof(expect[i]), "%d:%g", hz[i], AMP);
        args[argc++] = "--expect";
        args[argc++] = expect[i];
    }
    args[argc] = NULL;
    fflush(stdout);
    CHECK(wait_child(spawn_client(d, args, NULL), 60) == 0,
          "%s: the tap [%s, %s] s holds every writer's tone at %g (±10%%) in every 100 ms block", what, from, to,
          AMP);
}

static void test_reconnect(const char *what, bool via_env, const int *hz, int nplay, int restarts)
{
    printf("== %s: %d playback stream(s) and a reader on one client, reconnect by %s, %d restart(s) ==\n", what,
           nplay, via_env ? "SOUNDCARD_RECONNECT" : "sc_client_set_reconnect", restarts);
    struct daemon d;
    start_daemon_on_path(&d, OLD_CAPTURE_HZ);
    double seconds = 3.0 + 2.5 * restarts;
    char secs[32], freq[4][16];
    snprintf(secs, sizeof(secs), "%g", seconds);
    const char *args[32] = { "--record", "--listen", "440", "--listen", "660", "--seconds", secs };
    int argc = 7;
    for (int i = 0; i < nplay; i++) {
        snprintf(freq[i], sizeof(freq[i]), "%d", hz[i]);
        args[argc++] = "--play";
        args[argc++] = freq[i];
    }
    if (!via_env) {
        args[argc++] = "--reconnect";
        args[argc++] = "10";
    }
    args[argc] = NULL;
    struct writer w;
    writer_start(&w, args, via_env ? "SOUNDCARD_RECONNECT=10" : "SOUNDCARD_RECONNECT=0");
    int nstreams = nplay + 1;
    struct client_check cc = { .pid = w.pid, .streams = nstreams, .names = "rel-writer-rec" };
    for (int i = 0; i < nplay; i++) {
        size_t used = strlen(cc.names);
        snprintf(cc.names + used, sizeof(cc.names) - used, " rel-writer-%d", hz[i]);
    }
    bool flowing = writer_wait(&w, "played ", -1, nplay, 10) && writer_wait(&w, "heard ", -1, 1, 10);
    CHECK(flowing, "%s: the writers and the reader did not get going:\n%s", what, w.out);

    int failures = harness_failures;
    for (int k = 1; k <= restarts && flowing; k++) {
        int sig = k % 2 ? (via_env ? SIGKILL : SIGTERM) : (via_env ? SIGTERM : SIGKILL);
        int old_hz = k % 2 ? OLD_CAPTURE_HZ : NEW_CAPTURE_HZ, new_hz = k % 2 ? NEW_CAPTURE_HZ : OLD_CAPTURE_HZ;
        char step[96];
        snprintf(step, sizeof(step), "%s restart %d (%s)", what, k, signame(sig));
        /* Let it play into this daemon a little first. */
        int played = writer_count(&w, "played ", -1);
        writer_wait(&w, "played ", -1, played + nplay, 10);
        int mark = 0;
        writer_line(&w, "", -1, writer_count(&w, "", -1) - 1, &mark);

        double t_kill;
        int rc = end_daemon(&d, sig, &t_kill);
        CHECK(rc == (sig == SIGKILL ? 128 + SIGKILL : 0), "%s: soundcardd exited with %d", step, rc);
        check_shm_unchanged(step);
        start_daemon_on_path(&d, new_hz);
        double t_ready = now_seconds();
        bool reopened = writer_wait(&w, "reopened ", mark, nstreams, 10);
        double t_reopened = now_seconds();
        CHECK(reopened, "%s: every stream reopened (%d of %d):\n%s", step, writer_count(&w, "reopened ", mark),
              nstreams, w.out);
        printf("info %s: daemon down %.3f s, streams reopened %.3f s after the new one was ready\n", step,
               t_ready - t_kill, t_reopened - t_ready);
        CHECK(wait_for_stats(socket_path, one_client_all_running, &cc, 10),
              "%s: the new daemon has one client of pid %d with its %d streams (%s) running; it shows: %s", step,
              (int)w.pid, nstreams, cc.names, cc.seen);
        check_no_shm_files(d.pid, step);
        int rec_line = -1;
        writer_line(&w, "reopened rel-writer-rec ", mark, 0, &rec_line);
        check_heard(&w, rec_line, new_hz, old_hz, step);
        CHECK(writer_count(&w, "error ", -1) == 0, "%s: no call failed:\n%s", step, w.out);
        if (harness_failures > failures) {
            restarts = k;  /* what follows counts the restarts made */
            break;
        }
    }
    int rc = writer_finish(&w, seconds + 30, 0);
    CHECK(rc == 0, "%s: rel_writer exit status %d (0: every stream played and read its %s s)", what, rc, secs);
    CHECK(writer_count(&w, "done ", -1) == nstreams, "%s: every stream finished:\n%s", what, w.out);
    CHECK(writer_count(&w, "reopened ", -1) == nstreams * restarts,
          "%s: each stream reopened exactly once per restart (%d lines for %d streams, %d restarts):\n%s", what,
          writer_count(&w, "reopened ", -1), nstreams, restarts, w.out);
    CHECK(daemon_stop(&d, 20) == 0, "%s: the last soundcardd did not stop cleanly", what);
    check_tap(&d, hz, nplay, 1.5, what);
    check_shm_unchanged(what);
}

/* ---- in this process: client calls, the timeout ---- */

static int silence(const void *input, void *output, unsigned long frames, const sc_time_info *time,
                   unsigned status, void *userdata)
{
    (void)input, (void)output, (void)frames, (void)time, (void)status, (void)userdata;
    return SC_CONTINUE;  /* the output starts zeroed */
}

static void finished(void *userdata)
{
    uint64_t one = 1;
    (void)!write(*(int *)userdata, &one, sizeof(one));
}

/* A mono output stream named `name` (callback mode when finished_fd is not NULL). */
static sc_stream *open_output(sc_client *c, const char *name, int *finished_fd, const char *what)
{
    sc_stream_params p;
    sc_stream_params_init(&p);
    p.name = name;
    p.output_channels = 1;
    if (finished_fd) {
        p.callback = silence;
        p.finished = finished;
        p.userdata = finished_fd;
    }
    sc_stream *s = NULL;
    int err = sc_stream_open(c, &p, &s);
    CHECK(err == 0, "%s: sc_stream_open %s: %d (%s)", what, name, err, sc_last_error());
    if (s && (err = sc_stream_start(s)) < 0)
        CHECK(0, "%s: sc_stream_start %s: %d (%s)", what, name, err, sc_last_error());
    return s;
}

/* Blocks of silence into s until a write fails or `timeout` passes; the
 * failure, or 0. */
static long write_until_error(sc_stream *s, double timeout, double *t_error)
{
    static float block[480];
    double deadline = now_seconds() + timeout;
    long n = 0;
    while (now_seconds() < deadline && (n = sc_stream_write(s, block, 480)) == 480)
        ;
    *t_error = now_seconds();
    return n < 0 ? n : 0;
}

struct stream_check {
    const char *name;
    double gain;
};

/* The stream is there, running, at its gain. */
static bool stream_running(cJSON *stats, void *ctx)
{
    struct stream_check *c = ctx;
    cJSON *st = stats_find_stream(stats, c->name);
    const char *state = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(st, "state"));
    return state && strcmp(state, "running") == 0 && fabs(json_number(st, "gain") - c->gain) < 1e-3;
}

static void test_client_calls(void)
{
    const char *what = "client";
    printf("== %s: sc_client_set_reconnect's values; client calls, the gain and a callback stream across a "
           "restart; the timeout ==\n", what);
    struct daemon d;
    start_daemon_on_path(&d, OLD_CAPTURE_HZ);
    sc_client *on, *off;
    if (sc_client_open(&on, socket_path, "restart-on") < 0 || sc_client_open(&off, socket_path, "restart-off") < 0) {
        CHECK(0, "%s: sc_client_open: %s", what, sc_last_error());
        daemon_stop(&d, 20);
        return;
    }
    CHECK(sc_client_set_reconnect(on, -1) == -EINVAL && sc_client_set_reconnect(on, 0.0 / 0.0) == -EINVAL &&
              sc_client_set_reconnect(on, 1.0 / 0.0) == -EINVAL,
          "%s: a negative, NaN or infinite timeout is -EINVAL", what);
    CHECK(sc_client_set_reconnect(on, 10) == 0 && sc_client_set_reconnect(off, 0) == 0,
          "%s: sc_client_set_reconnect 10 and 0", what);
    double t_kill;
    end_daemon(&d, SIGKILL, &t_kill);
    start_daemon_on_path(&d, OLD_CAPTURE_HZ);

    /* Questions are asked again on the new daemon; stream.open reconnects first. */
    sc_server_info info;
    int err = sc_get_server_info(on, &info);
    CHECK(err == 0, "%s: sc_get_server_info with reconnect on, after a restart: %d (%s)", what, err, sc_last_error());
    err = sc_get_server_info(off, &info);
    CHECK(err == SC_EDISCONNECTED, "%s: sc_get_server_info with reconnect off, after a restart: %d, want "
          "SC_EDISCONNECTED", what, err);
    end_daemon(&d, SIGKILL, &t_kill);
    start_daemon_on_path(&d, OLD_CAPTURE_HZ);
    sc_stream *s = open_output(on, "restart-probe-out", NULL, what);
    int done_fd = eventfd(0, EFD_CLOEXEC);
    sc_stream *cb = open_output(on, "restart-probe-cb", &done_fd, what);

    /* The gain set while the daemon is gone is 0 and reaches the new one;
     * the callback stream ends (finished runs) and starts again there. */
    end_daemon(&d, SIGKILL, &t_kill);
    struct pollfd p = { .fd = done_fd, .events = POLLIN };
    CHECK(poll(&p, 1, (int)(error_bound * 1000)) == 1, "%s: the callback stream's finished ran within %g s of the "
          "kill", what, error_bound);
    CHECK(s && sc_stream_set_gain(s, 0.5f) == 0, "%s: sc_stream_set_gain with the daemon gone: %s", what,
          sc_last_error());
    start_daemon_on_path(&d, OLD_CAPTURE_HZ);
    static float block[480];
    CHECK(s && sc_stream_write(s, block, 480) == 480, "%s: the write goes on after the restart: %s", what,
          sc_last_error());
    CHECK(wait_for_stats(socket_path, stream_running, &(struct stream_check){ "restart-probe-out", 0.5 }, 10),
          "%s: the new daemon runs restart-probe-out at gain 0.5", what);
    CHECK(cb && sc_stream_start(cb) == 0, "%s: sc_stream_start of the ended callback stream on the new daemon: %s",
          what, sc_last_error());
    CHECK(wait_for_stats(socket_path, stream_running, &(struct stream_check){ "restart-probe-cb", 1.0 }, 10),
          "%s: the new daemon runs restart-probe-cb", what);
    CHECK(!cb || sc_stream_close(cb) == 0, "%s: sc_stream_close of the callback stream: %s", what, sc_last_error());
    close(done_fd);

    /* A daemon that does not come back: the blocked write gives up after
     * the timeout, naming the socket. */
    CHECK(sc_client_set_reconnect(on, 0.5) == 0, "%s: sc_client_set_reconnect 0.5", what);
    double t_error = 0;
    end_daemon(&d, SIGKILL, &t_kill);
    long werr = s ? write_until_error(s, 10, &t_error) : 0;
    printf("info %s: with a 0.5 s timeout and no daemon, sc_stream_write failed %.3f s after the kill: %s\n",
           what, t_error - t_kill, sc_last_error());
    CHECK(werr == SC_EDISCONNECTED && t_error - t_kill >= 0.45 && t_error - t_kill < 0.5 + error_bound,
          "%s: the write fails with SC_EDISCONNECTED (%ld) after the 0.5 s timeout (%.3f s)", what, werr,
          t_error - t_kill);
    CHECK(strstr(sc_last_error(), socket_path) != NULL, "%s: the message names the socket: %s", what,
          sc_last_error());
    CHECK(!s || sc_stream_close(s) == 0, "%s: sc_stream_close of a stream whose daemon is gone is 0 with reconnect "
          "on: %s", what, sc_last_error());
    sc_client_close(on);
    sc_client_close(off);
    unlink(socket_path);  /* SIGKILL left it */
}

/* ---- two daemons on one path ---- */

/* soundcardd on our path with stderr to `err_path` (not waited for). */
static pid_t spawn_daemon(const char *err_path)
{
    unlink(err_path);
    const char *argv[] = { harness_bin("soundcardd"), "--socket", socket_path, NULL };
    return spawn_process(argv, NULL, NULL, err_path);
}

/* What a daemon that must not start said: one line naming the path. */
static void check_refusal(int rc, const char *err_path, const char *word, const char *what)
{
    const char *text = slurp(err_path);
    const char *nl = strchr(text, '\n');
    CHECK(rc != 0 && rc < 128, "%s: the second soundcardd exited with %d (non-zero, not by a signal)", what, rc);
    CHECK(nl && nl[1] == '\0' && strstr(text, word) && strstr(text, socket_path),
          "%s: the second soundcardd said one line with '%s' and the path: %s", what, word, text);
}

static void test_live(void)
{
    const char *what = "live";
    printf("== %s: a second soundcardd on a served socket ==\n", what);
    struct daemon d;
    start_daemon_on_path(&d, OLD_CAPTURE_HZ);
    ino_t ino = socket_inode();
    char err_path[256], why[512];
    snprintf(err_path, sizeof(err_path), "%s", daemon_path(&d, "second.err"));
    int rc = wait_child(spawn_daemon(err_path), 20);
    check_refusal(rc, err_path, "already", what);
    CHECK(ino != 0 && socket_inode() == ino, "%s: the socket file is still the first daemon's (inode %lu, now %lu)",
          what, (unsigned long)ino, (unsigned long)socket_inode());
    CHECK(socket_peer() == d.pid, "%s: the socket is served by the first daemon (pid %d; peer %d)", what,
          (int)d.pid, socket_peer());
    int err = try_open(why, sizeof(why));
    CHECK(err == 0, "%s: the first daemon still serves clients: %d (%s)", what, err, why);
    CHECK(daemon_stop(&d, 20) == 0, "%s: the first soundcardd did not stop cleanly", what);
}

/* A daemon that is alive but does not answer (SIGSTOP): sc_client_open
 * gives up after its hello timeout (5 s) with SC_ENOSERVER instead of
 * hanging, and works again once the daemon runs. */
static void test_stopped(void)
{
    const char *what = "stopped";
    printf("== %s: sc_client_open on a soundcardd that does not answer ==\n", what);
    struct daemon d;
    start_daemon_on_path(&d, OLD_CAPTURE_HZ);
    char why[512];
    kill(d.pid, SIGSTOP);
    double t0 = now_seconds();
    int err = try_open(why, sizeof(why));
    double took = now_seconds() - t0;
    kill(d.pid, SIGCONT);
    CHECK(err == SC_ENOSERVER && strstr(why, "did not answer hello") && strstr(why, socket_path),
          "%s: expected SC_ENOSERVER naming the socket, got %d (%s)", what, err, why);
    CHECK(took > 4.5 && took < 5.0 + error_bound, "%s: gave up after %.2f s (the hello timeout is 5 s)", what,
          took);
    printf("%s: sc_client_open gave up after %.2f s: %s\n", what, took, why);
    err = try_open(why, sizeof(why));
    CHECK(err == 0, "%s: after SIGCONT the daemon serves again: %d (%s)", what, err, why);
    CHECK(daemon_stop(&d, 20) == 0, "%s: soundcardd did not stop cleanly", what);
}

/* A socket file nobody listens on, as SIGKILL leaves one. */
static void make_stale_socket(void)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", socket_path);
    mkdir(run_dir, 0700);
    unlink(socket_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
        perror("bind stale socket");
    close(fd);
}

/* Where a process that should have exited is stuck: each thread's name,
 * kernel wait channel and kernel stack, before it is killed. */
static void dump_stuck(pid_t pid)
{
    char path[320];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    struct dirent **tasks;
    int n = scandir(path, &tasks, NULL, alphasort);
    for (int i = 0; i < n; i++) {
        if (tasks[i]->d_name[0] != '.') {
            char base[300];
            snprintf(base, sizeof(base), "/proc/%d/task/%.32s/", (int)pid, tasks[i]->d_name);
            const char *names[] = { "comm", "wchan", "syscall", "stack" };
            for (int k = 0; k < 4; k++) {
                snprintf(path, sizeof(path), "%s%s", base, names[k]);
                fprintf(stderr, "  task %s %s: %s\n", tasks[i]->d_name, names[k], slurp(path));
            }
        }
        free(tasks[i]);
    }
    if (n >= 0)
        free(tasks);
}

/* SIGTERM, and its exit status within `timeout` s (-1, after a dump of
 * where it is stuck and SIGKILL, when it did not exit). */
static int terminate(pid_t pid, double timeout)
{
    int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
    kill(pid, SIGTERM);
    struct pollfd p = { .fd = pfd, .events = POLLIN };
    if (pfd >= 0 && poll(&p, 1, (int)(timeout * 1000)) == 0) {
        fprintf(stderr, "pid %d did not exit within %g s of SIGTERM:\n", (int)pid, timeout);
        dump_stuck(pid);
    }
    if (pfd >= 0)
        close(pfd);
    return wait_child(pid, 0.1);
}

#define RACERS 3

static void test_race(int rounds)
{
    printf("== race: %d daemons started at once on a stale socket, %d round(s) ==\n", RACERS, rounds);
    int failures = harness_failures;
    for (int round = 1; round <= rounds && harness_failures == failures; round++) {
        char what[32];
        snprintf(what, sizeof(what), "race %d", round);
        make_stale_socket();
        pid_t pid[RACERS];
        int pidfd[RACERS], status[RACERS];
        char err_path[RACERS][256];
        for (int i = 0; i < RACERS; i++) {
            snprintf(err_path[i], sizeof(err_path[i]), "%s/../racer%d.err", run_dir, i);
            pid[i] = spawn_daemon(err_path[i]);
            pidfd[i] = (int)syscall(SYS_pidfd_open, pid[i], 0);
            status[i] = -1;
        }
        /* All but one exit; the one left must be the socket's listener. */
        double deadline = now_seconds() + 20;
        int exited = 0;
        while (exited < RACERS - 1 && now_seconds() < deadline) {
            struct pollfd p[RACERS];
            for (int i = 0; i < RACERS; i++)
                p[i] = (struct pollfd){ .fd = status[i] < 0 ? pidfd[i] : -1, .events = POLLIN };
            if (poll(p, RACERS, 100) <= 0)
                continue;
            for (int i = 0; i < RACERS; i++)
                if (p[i].revents) {
                    status[i] = wait_child(pid[i], 1);
                    exited++;
                }
        }
        int alive = -1;
        for (int i = 0; i < RACERS; i++) {
            if (status[i] < 0)
                alive = alive == -1 ? i : -2;
            else
                check_refusal(status[i], err_path[i], "already", what);
        }
        CHECK(alive >= 0, "%s: exactly one of the %d daemons keeps running (%d exited)", what, RACERS, exited);
        int peer = -1;
        while (alive >= 0 && (peer = socket_peer()) != pid[alive] && now_seconds() < deadline) {
            struct timespec ts = { 0, 10 * 1000 * 1000 };
            nanosleep(&ts, NULL);
        }
        CHECK(alive >= 0 && peer == pid[alive], "%s: the socket is served by the one left running (pid %d; peer %d)",
              what, alive >= 0 ? (int)pid[alive] : -1, peer);
        for (int i = 0; i < RACERS; i++) {
            if (status[i] < 0) {
                int rc = terminate(pid[i], 20);
                CHECK(rc == 0, "%s: the serving daemon stopped cleanly on SIGTERM (%d); it said:\n%s", what, rc,
                      slurp(err_path[i]));
            }
            close(pidfd[i]);
        }
        char after[4096];
        listing(run_dir, after, sizeof(after));
        CHECK(after[0] == '\0', "%s: nothing left in the socket directory:\n%s", what, after);
    }
}

static void test_not_socket(void)
{
    const char *what = "not-socket";
    printf("== %s: a regular file where the socket goes ==\n", what);
    mkdir(run_dir, 0700);
    unlink(socket_path);
    FILE *f = fopen(socket_path, "w");
    if (f)
        fclose(f);
    char err_path[256];
    snprintf(err_path, sizeof(err_path), "%s/../not-socket.err", run_dir);
    int rc = wait_child(spawn_daemon(err_path), 20);
    check_refusal(rc, err_path, "not a socket", what);
    struct stat st;
    CHECK(stat(socket_path, &st) == 0 && S_ISREG(st.st_mode), "%s: the file is still there", what);
    unlink(socket_path);
}

/* Whether part `name` runs: all of them, or those named on the command line. */
static bool wanted(int argc, char **argv, const char *name)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return true;
    return argc < 2;
}

int main(int argc, char **argv)
{
    bool soak = getenv("SC_SOAK") && atoi(getenv("SC_SOAK"));
    const char *sanitizers = getenv("SC_SANITIZED");
    if (sanitizers && *sanitizers) {
        error_bound = 2.0;
        printf("note: sanitizer build (SC_SANITIZED=%s): the error may arrive up to %g s after the kill "
               "instead of 1 s\n", sanitizers, error_bound);
    }
    char dir[] = "/tmp/sc-restart-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    harness_remember_temp_dir(dir);
    snprintf(run_dir, sizeof(run_dir), "%s/run", dir);
    snprintf(socket_path, sizeof(socket_path), "%s/socket", run_dir);
    listing("/dev/shm", shm_before, sizeof(shm_before));

    if (wanted(argc, argv, "lost")) {
        test_lost(SIGKILL);
        test_lost(SIGTERM);
    }
    if (wanted(argc, argv, "reconnect")) {
        test_reconnect("reconnect/env", true, (const int[]){ 1000 }, 1, soak ? 10 : 1);
        test_reconnect("reconnect/api", false, (const int[]){ 700, 1300 }, 2, soak ? 10 : 1);
    }
    if (wanted(argc, argv, "client"))
        test_client_calls();
    if (wanted(argc, argv, "live"))
        test_live();
    if (wanted(argc, argv, "stopped"))
        test_stopped();
    if (wanted(argc, argv, "race"))
        test_race(soak ? 100 : 10);
    if (wanted(argc, argv, "not-socket"))
        test_not_socket();
    return harness_finish("restart");  /* removes dir when all passed */
}
