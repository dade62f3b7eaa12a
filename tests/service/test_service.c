/* soundcardd as a service (issue 7), one mode per CTest case:
 *
 *   activation  systemd-socket-activate owns the socket; the first client's
 *               connection, made before soundcardd exists, is served.
 *   notify      READY=1 once the socket accepts connections (with STATUS=),
 *               WATCHDOG=1 while the card runs, RELOADING=1/READY=1 around
 *               SIGHUP, STOPPING=1 on SIGTERM.
 *   access      modes of the socket and its directory; clients running as
 *               `nobody` denied or admitted by the allow lists (uid, primary
 *               and supplementary groups); per-uid stream and memory limits.
 *   config      every bad config file gives one line naming the field and
 *               the daemon does not start; flags override the file; the
 *               default path under $XDG_CONFIG_HOME.
 *   reload      SIGHUP changes a limit live, says what needs a restart, and
 *               keeps the old configuration when the new one is bad.
 *   realtime    as root: SCHED_FIFO 70 and locked memory; as `nobody` with
 *               RLIMIT_RTPRIO and RLIMIT_MEMLOCK 0: one warning line each,
 *               and server.info says what it got.
 *
 * access and realtime change uids, so they need root; elsewhere they are
 * skipped (exit 77). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <soundcard/soundcard.h>

#include "harness.h"

#define SKIP 77

/* ---- small helpers ------------------------------------------------------ */

static int connect_unix(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
        return fd;
    if (fd >= 0)
        close(fd);
    return -1;
}

/* Reply lines (JSON) read from fd until `n` arrived or the deadline passed;
 * returns how many, into lines[]. */
static int read_lines(int fd, cJSON **lines, int n, double timeout)
{
    static char buf[65536];
    size_t len = 0;
    int got = 0;
    double deadline = now_seconds() + timeout;
    while (got < n) {
        char *nl = memchr(buf, '\n', len);
        if (nl) {
            *nl = '\0';
            lines[got++] = cJSON_Parse(buf);
            size_t used = (size_t)(nl + 1 - buf);
            memmove(buf, nl + 1, len - used);
            len -= used;
            continue;
        }
        double left = deadline - now_seconds();
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (left <= 0 || poll(&p, 1, (int)(left * 1000) + 1) <= 0)
            break;
        ssize_t r = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    return got;
}

static bool reply_ok(cJSON *reply)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "ok"));
}

static const char *jstring(cJSON *obj, const char *key)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, key));
    return s ? s : "";
}

/* server.info over a fresh connection (root is always admitted). */
static cJSON *server_info(const char *socket_path)
{
    return request_once(socket_path, "{\"op\":\"server.info\"}");
}

static double limit_of(cJSON *info, const char *name)
{
    return json_number(cJSON_GetObjectItemCaseSensitive(info, "limits"), name);
}

static int count_substr(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

static sc_stream_params output_params(const char *name, double latency)
{
    sc_stream_params p;
    sc_stream_params_init(&p);
    p.name = name;
    p.output_channels = 2;
    p.latency = latency;
    return p;
}

/* ---- a piece of the test run as another user ---------------------------- */

struct identity {
    uid_t uid;
    gid_t gid;
    int ngroups;
    gid_t groups[4];
};

static bool lookup_nobody(struct identity *id)
{
    struct passwd *pw = getpwnam("nobody");
    if (!pw)
        return false;
    *id = (struct identity){ .uid = pw->pw_uid, .gid = pw->pw_gid };
    return true;
}

static void become(const struct identity *id)
{
    if (setgroups((size_t)id->ngroups, id->groups) < 0 || setresgid(id->gid, id->gid, id->gid) < 0 ||
        setresuid(id->uid, id->uid, id->uid) < 0) {
        fprintf(stderr, "cannot become uid %u: %s\n", (unsigned)id->uid, strerror(errno));
        _exit(126);
    }
}

/* Run fn(ctx, out) in a child as `id`; its one-line result (or "") into out.
 * `hold` keeps the child (and what it opened) alive until release_child. */
struct child {
    pid_t pid;
    int release_fd;
};

static struct child run_as(const struct identity *id, void (*fn)(void *ctx, char *out, size_t len),
                           void *ctx, char *out, size_t len, bool hold)
{
    int result[2], release[2];
    if (pipe2(result, O_CLOEXEC) < 0 || pipe2(release, O_CLOEXEC) < 0) {
        perror("pipe");
        exit(1);
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(result[0]);
        close(release[1]);
        become(id);
        char line[512] = "";
        fn(ctx, line, sizeof(line));
        (void)!write(result[1], line, strlen(line) + 1);
        close(result[1]);
        if (hold) {
            char c;
            (void)!read(release[0], &c, 1);  /* until the parent closes it */
        }
        _exit(0);
    }
    close(result[1]);
    close(release[0]);
    out[0] = '\0';
    struct pollfd p = { .fd = result[0], .events = POLLIN };
    if (poll(&p, 1, 15000) > 0) {
        ssize_t n = read(result[0], out, len - 1);
        out[n > 0 ? n : 0] = '\0';
    }
    close(result[0]);
    struct child c = { pid, release[1] };
    if (!hold) {
        close(release[1]);
        c.release_fd = -1;
        CHECK(wait_child(pid, 10) == 0, "the child running as uid %u failed", (unsigned)id->uid);
    }
    return c;
}

static void release_child(struct child *c)
{
    close(c->release_fd);
    CHECK(wait_child(c->pid, 10) == 0, "the holding child failed");
}

/* Child bodies: write "ok ..." or "error CODE: message". */
static const char *g_socket;

static void try_connect(void *ctx, char *out, size_t len)
{
    (void)ctx;
    sc_client *c;
    int err = sc_client_open(&c, g_socket, "other-user");
    if (err < 0) {
        snprintf(out, len, "error %d: %s", err, sc_last_error());
        return;
    }
    sc_server_info si;
    err = sc_get_server_info(c, &si);
    snprintf(out, len, err < 0 ? "error %d: server.info: %s" : "ok pid %d", err < 0 ? err : (int)getpid(),
             err < 0 ? sc_last_error() : "");
    sc_client_close(c);
}

/* Two clients, up to three streams: with max-streams-per-uid 2 the third
 * is refused.  Holds them until released. */
static void open_three_streams(void *ctx, char *out, size_t len)
{
    (void)ctx;
    static sc_client *a, *b;
    static sc_stream *s[3];
    if (sc_client_open(&a, g_socket, "uid-a") < 0 || sc_client_open(&b, g_socket, "uid-b") < 0) {
        snprintf(out, len, "error: connect: %s", sc_last_error());
        return;
    }
    sc_stream_params p = output_params("uid-stream", 0);
    int e0 = sc_stream_open(a, &p, &s[0]);
    int e1 = sc_stream_open(b, &p, &s[1]);
    int e2 = sc_stream_open(b, &p, &s[2]);
    snprintf(out, len, "opened %d %d %d: %s", e0, e1, e2, e2 < 0 ? sc_last_error() : "");
}

static void open_big_stream(void *ctx, char *out, size_t len)
{
    double latency = *(double *)ctx;
    sc_client *c;
    sc_stream *s;
    if (sc_client_open(&c, g_socket, "big") < 0) {
        snprintf(out, len, "error: connect: %s", sc_last_error());
        return;
    }
    sc_stream_params p = output_params("big", latency);
    int err = sc_stream_open(c, &p, &s);
    snprintf(out, len, "%d: %s", err, err < 0 ? sc_last_error() : "opened");
    if (err == 0)
        sc_stream_close(s);
    sc_client_close(c);
}

/* ---- activation ---------------------------------------------------------- */

static bool find_in_path(const char *name, char *out, size_t len)
{
    const char *dirs[] = { "/usr/bin", "/bin", "/usr/local/bin" };
    for (size_t i = 0; i < 3; i++) {
        snprintf(out, len, "%s/%s", dirs[i], name);
        if (access(out, X_OK) == 0)
            return true;
    }
    return false;
}

static int test_activation(void)
{
    char activate[256];
    if (!find_in_path("systemd-socket-activate", activate, sizeof(activate))) {
        printf("SKIP: systemd-socket-activate is not installed\n");
        return SKIP;
    }
    char dir[] = "/tmp/sc-activate-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char sock[128], log[128], status_out[128];
    snprintf(sock, sizeof(sock), "%s/socket", dir);
    snprintf(log, sizeof(log), "%s/log", dir);
    snprintf(status_out, sizeof(status_out), "%s/status.out", dir);
    const char *argv[] = { activate, "-l", sock, harness_bin("soundcardd"), "--verbose", NULL };
    pid_t pid = spawn_process(argv, NULL, NULL, log);

    /* systemd-socket-activate listens first; soundcardd does not exist yet. */
    double deadline = now_seconds() + 10;
    int fd = -1;
    while (fd < 0 && now_seconds() < deadline) {
        struct stat st;
        if (stat(sock, &st) == 0 && S_ISSOCK(st.st_mode))
            fd = connect_unix(sock);
        else
            poll(NULL, 0, 20);
    }
    CHECK(fd >= 0, "no socket at %s within 10 s; log:\n%s", sock, slurp(log));
    if (fd < 0)
        return harness_finish("service.activation");
    const char *req = "{\"id\":1,\"op\":\"hello\",\"protocol\":1,\"name\":\"first\"}\n"
                      "{\"id\":2,\"op\":\"server.info\"}\n";
    CHECK(write(fd, req, strlen(req)) == (ssize_t)strlen(req), "write: %s", strerror(errno));
    cJSON *replies[2] = { NULL, NULL };
    int n = read_lines(fd, replies, 2, 15);
    CHECK(n == 2 && reply_ok(replies[0]) && reply_ok(replies[1]),
          "the first connection (made before soundcardd ran) got %d ok replies; log:\n%s", n, slurp(log));
    if (n == 2) {
        CHECK(strcmp(jstring(replies[1], "state"), "running") == 0, "state '%s'", jstring(replies[1], "state"));
        printf("first connection served: hello ok, server.info state %s\n", jstring(replies[1], "state"));
    }
    cJSON_Delete(replies[0]);
    cJSON_Delete(replies[1]);
    close(fd);

    /* The listener exec()ed soundcardd in place: same PID. */
    char exe[512] = "", link[64];
    snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
    ssize_t len = readlink(link, exe, sizeof(exe) - 1);
    exe[len > 0 ? len : 0] = '\0';
    CHECK(strstr(exe, "/soundcardd") != NULL, "pid %d runs '%s', not soundcardd", (int)pid, exe);

    char env[160];
    snprintf(env, sizeof(env), "SOUNDCARD_SOCKET=%s", sock);
    const char *status[] = { harness_bin("soundcard"), "status", NULL };
    pid_t st = spawn_process(status, (const char *const[]){ env, NULL }, status_out, NULL);
    CHECK(wait_child(st, 10) == 0, "soundcard status failed:\n%s", slurp(status_out));
    CHECK(strstr(slurp(status_out), "backend dummy") != NULL, "status says:\n%s", slurp(status_out));
    char listening[200];
    snprintf(listening, sizeof(listening), "listening on %s", sock);
    CHECK(strstr(slurp(log), listening) != NULL, "the log does not name the activated socket:\n%s", slurp(log));

    kill(pid, SIGTERM);
    CHECK(wait_child(pid, 10) == 0, "soundcardd did not stop cleanly:\n%s", slurp(log));
    struct stat sst;
    CHECK(stat(sock, &sst) == 0, "the socket file belongs to the activator and must stay");
    unlink(sock);
    unlink(log);
    unlink(status_out);
    rmdir(dir);
    return harness_finish("service.activation");
}

/* ---- notify ------------------------------------------------------------- */

static int test_notify(void)
{
    struct daemon d;
    /* 400 ms: soundcardd pings every 200 ms while cycles run. */
    daemon_start_watched(&d, NULL, (const char *const[]){ "WATCHDOG_USEC=400000", NULL }, 10);

    /* READY=1 means the socket answers now, with no retry. */
    int fd = connect_unix(d.socket_path);
    CHECK(fd >= 0, "READY=1 was sent but %s refuses connections: %s", d.socket_path, strerror(errno));
    const char *hello = "{\"id\":1,\"op\":\"hello\",\"protocol\":1}\n";
    cJSON *reply = NULL;
    if (fd >= 0 && write(fd, hello, strlen(hello)) == (ssize_t)strlen(hello))
        read_lines(fd, &reply, 1, 5);
    CHECK(reply && reply_ok(reply), "hello right after READY=1 was not answered");
    cJSON_Delete(reply);
    if (fd >= 0)
        close(fd);

    const char *ready = daemon_notify_last(&d, "READY=1");
    printf("ready message: %s\n", ready);
    CHECK(strstr(ready, "STATUS=dummy running: 48000 Hz, 256 frames, 2 ch;") != NULL,
          "READY=1 came without the STATUS= summary: '%s'", ready);

    CHECK(daemon_wait_notify(&d, "WATCHDOG=1", 3, 5), "%d WATCHDOG=1 in 5 s (want 3)",
          daemon_notify_count(&d, "WATCHDOG=1"));
    printf("watchdog pings: %d\n", daemon_notify_count(&d, "WATCHDOG=1"));
    CHECK(strstr(slurp(d.log_path), "systemd watchdog: WATCHDOG=1 every 200 ms") != NULL,
          "the log does not say how often it pings:\n%s", slurp(d.log_path));

    kill(d.pid, SIGHUP);
    CHECK(daemon_wait_notify(&d, "RELOADING=1", 1, 5), "no RELOADING=1 after SIGHUP");
    CHECK(daemon_wait_notify(&d, "READY=1", 2, 5), "no READY=1 after the reload");

    kill(d.pid, SIGTERM);
    CHECK(daemon_wait_notify(&d, "STOPPING=1", 1, 5), "no STOPPING=1 after SIGTERM");
    CHECK(daemon_stop(&d, 10) == 0, "soundcardd did not exit cleanly");
    return harness_finish("service.notify");
}

/* ---- access ------------------------------------------------------------- */

static mode_t mode_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_mode & 07777 : (mode_t)-1;
}

static gid_t group_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_gid : (gid_t)-1;
}

/* A group `nobody` is not in: created for the test when the machine has
 * none (audio exists on Debian). */
static bool pick_group(const struct identity *nobody, gid_t *gid, char *name, size_t len)
{
    struct group *g = getgrnam("audio");
    if (!g || g->gr_gid == nobody->gid)
        return false;
    *gid = g->gr_gid;
    snprintf(name, len, "%s", g->gr_name);
    return true;
}

static void open_up(struct daemon *d)
{
    /* What a careless admin might do: the files let anybody in.  The
     * daemon's own check must still refuse. */
    chmod(d->dir, 0755);
    chmod(d->socket_path, 0666);
}

static int test_access(void)
{
    struct identity nobody, audio_member;
    gid_t audio;
    char audio_name[64];
    if (geteuid() != 0 || !lookup_nobody(&nobody) || !pick_group(&nobody, &audio, audio_name, sizeof(audio_name))) {
        printf("SKIP: needs root, a user 'nobody' and a group 'audio'\n");
        return SKIP;
    }
    audio_member = nobody;
    audio_member.ngroups = 1;
    audio_member.groups[0] = audio;
    char out[512];

    /* 1. The default policy: the daemon's own user (and root) only. */
    struct daemon d;
    const char *sub[] = { "--socket", "@/private/socket", NULL };
    daemon_start(&d, sub, 10);
    char sock[128], subdir[128];
    snprintf(sock, sizeof(sock), "%s/private/socket", d.dir);
    snprintf(subdir, sizeof(subdir), "%s/private", d.dir);
    printf("default: dir %o, socket %o\n", mode_of(subdir), mode_of(sock));
    CHECK(mode_of(subdir) == 0700, "the socket's directory is %o, want 0700", mode_of(subdir));
    CHECK(mode_of(sock) == 0600, "the socket is %o, want 0600", mode_of(sock));
    g_socket = sock;
    chmod(d.dir, 0755);
    run_as(&nobody, try_connect, NULL, out, sizeof(out), false);
    printf("nobody, default policy, private dir: %s\n", out);
    CHECK(strstr(out, "Permission denied") != NULL, "nobody got in through a 0700 directory: %s", out);
    chmod(subdir, 0755);
    chmod(sock, 0666);
    run_as(&nobody, try_connect, NULL, out, sizeof(out), false);
    printf("nobody, default policy, files opened up: %s\n", out);
    CHECK(strstr(out, "uid 65534 is not this daemon's user") != NULL || strstr(out, "is not this daemon's user"),
          "nobody was not denied by the daemon: %s", out);
    char code[32];
    snprintf(code, sizeof(code), "error %d:", SC_EDENIED);
    CHECK(strncmp(out, code, strlen(code)) == 0, "want SC_EDENIED (%d): %s", SC_EDENIED, out);
    CHECK(strstr(slurp(d.log_path), "not this daemon's user") != NULL, "the log does not say who was denied");
    sc_client *root;
    CHECK(sc_client_open(&root, sock, "root") == 0, "root was refused: %s", sc_last_error());
    sc_client_close(root);
    CHECK(daemon_stop(&d, 10) == 0, "soundcardd failed");

    /* 2. allow-uid nobody: the socket is open to all (0666), the daemon checks. */
    const char *by_uid[] = { "--allow-uid", "nobody", "--max-streams-per-uid", "2", NULL };
    daemon_start(&d, by_uid, 10);
    g_socket = d.socket_path;
    chmod(d.dir, 0755);
    CHECK(mode_of(d.socket_path) == 0666, "with allow lists the socket is %o, want 0666", mode_of(d.socket_path));
    run_as(&nobody, try_connect, NULL, out, sizeof(out), false);
    printf("nobody, allow-uid nobody: %s\n", out);
    CHECK(strncmp(out, "ok", 2) == 0, "nobody was refused: %s", out);

    /* Per-uid streams: nobody's third stream is refused while root's first
     * is not. */
    struct child holder = run_as(&nobody, open_three_streams, NULL, out, sizeof(out), true);
    printf("nobody opens three streams: %s\n", out);
    CHECK(strncmp(out, "opened 0 0 ", 11) == 0 && strstr(out, "max-streams-per-uid"),
          "want the third refused for max-streams-per-uid: %s", out);
    cJSON *stats = stats_snapshot(d.socket_path);
    cJSON *client;
    int nobody_clients = 0;
    cJSON_ArrayForEach(client, cJSON_GetObjectItemCaseSensitive(stats, "clients"))
    {
        if (json_number(client, "uid") == nobody.uid) {
            nobody_clients++;
            CHECK(json_number(client, "pid") == holder.pid, "stats pid %.0f, the client is %d",
                  json_number(client, "pid"), (int)holder.pid);
            CHECK(json_number(client, "gid") == nobody.gid, "stats gid %.0f", json_number(client, "gid"));
        }
    }
    CHECK(nobody_clients == 2, "stats show %d clients of uid %u, want 2", nobody_clients, (unsigned)nobody.uid);
    cJSON_Delete(stats);
    sc_stream *mine = NULL;
    sc_stream_params p = output_params("root-stream", 0);
    CHECK(sc_client_open(&root, d.socket_path, "root") == 0 && sc_stream_open(root, &p, &mine) == 0,
          "root could not open a stream while nobody held its quota: %s", sc_last_error());
    sc_stream_close(mine);
    sc_client_close(root);
    release_child(&holder);
    CHECK(daemon_stop(&d, 10) == 0, "soundcardd failed");

    /* 3. allow-gid audio: by the primary group no, by a supplementary yes;
     * --socket-group makes the socket 0660 with that group. */
    const char *by_gid[] = { "--allow-gid", audio_name, "--socket-group", audio_name, "--max-memory-per-uid", "1",
                             NULL };
    daemon_start(&d, by_gid, 10);
    g_socket = d.socket_path;
    chmod(d.dir, 0755);
    CHECK(mode_of(d.socket_path) == 0660 && group_of(d.socket_path) == audio,
          "socket mode %o group %d, want 0660 group %s", mode_of(d.socket_path), (int)group_of(d.socket_path),
          audio_name);
    open_up(&d);
    run_as(&nobody, try_connect, NULL, out, sizeof(out), false);
    printf("nobody (not in %s), allow-gid %s: %s\n", audio_name, audio_name, out);
    CHECK(strncmp(out, code, strlen(code)) == 0 && strstr(out, "allow-gid"), "want denied: %s", out);
    run_as(&audio_member, try_connect, NULL, out, sizeof(out), false);
    printf("nobody with supplementary group %s: %s\n", audio_name, out);
    CHECK(strncmp(out, "ok", 2) == 0, "a member of %s was refused: %s", audio_name, out);

    /* Per-uid memory: 1 MiB; a 5 s stereo ring (MiBs) is refused, a 50 ms
     * one (KiBs) is not. */
    double latency = 5.0;
    run_as(&audio_member, open_big_stream, &latency, out, sizeof(out), false);
    printf("a 5 s stream under a 1 MiB limit: %s\n", out);
    CHECK(strstr(out, "max-memory-per-uid") != NULL, "want a memory limit error: %s", out);
    latency = 0.05;
    run_as(&audio_member, open_big_stream, &latency, out, sizeof(out), false);
    CHECK(strstr(out, "opened") != NULL, "a small stream was refused: %s", out);
    CHECK(daemon_stop(&d, 10) == 0, "soundcardd failed");
    return harness_finish("service.access");
}

/* ---- config ------------------------------------------------------------- */

struct bad_config {
    const char *text;       /* NULL: the file does not exist */
    const char *expect;     /* in the one error line */
};

static int test_config(void)
{
    static const struct bad_config cases[] = {
        { "{", "not a JSON object" },
        { "[1, 2]", "not a JSON object" },
        { "{\"ratee\": 48000}", "field ratee: no such setting" },
        { "{\"rate\": \"fast\"}", "field rate: 'fast' is not a whole number in 8000..384000" },
        { "{\"rate\": 48000.5}", "field rate: must be a string, whole number, bool or list" },
        { "{\"rate\": {\"hz\": 48000}}", "field rate: must be a string, whole number, bool or list" },
        { "{\"period\": 1000}", "period: 1000 is not a power of two" },
        { "{\"channels\": 0}", "field channels: '0' is not a whole number in 1..64" },
        { "{\"max-clients\": 100000}", "field max-clients: '100000' is not a whole number in 1..4096" },
        { "{\"verbose\": \"maybe\"}", "field verbose: 'maybe' is not true or false" },
        { "{\"allow-uid\": [\"no-such-user-sc\"]}", "field allow-uid: no user 'no-such-user-sc'" },
        { "{\"allow-gid\": [[1]]}", "field allow-gid: must be a string" },
        { "{\"socket-group\": \"no-such-group-sc\"}", "field socket-group: no group 'no-such-group-sc'" },
        { "{\"config\": \"/etc/other.json\"}", "a config file cannot name another" },
        { "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", "not a JSON object" },
        { NULL, "No such file or directory" },
    };
    char dir[] = "/tmp/sc-config-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char conf[128], sock[128], err[128];
    snprintf(conf, sizeof(conf), "%s/soundcardd.json", dir);
    snprintf(sock, sizeof(sock), "%s/socket", dir);
    snprintf(err, sizeof(err), "%s/stderr", dir);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unlink(conf);
        if (cases[i].text)
            write_file(conf, cases[i].text);
        unlink(err);
        const char *argv[] = { harness_bin("soundcardd"), "--config", conf, "--socket", sock, NULL };
        int rc = wait_child(spawn_process(argv, NULL, NULL, err), 10);
        const char *text = slurp(err);
        printf("%-40.40s -> exit %d: %s", cases[i].text ? cases[i].text : "(missing file)", rc, text);
        CHECK(rc == 2, "exit %d, want 2", rc);
        CHECK(count_substr(text, "\n") == 1 && strncmp(text, "soundcardd: config ", 19) == 0,
              "want one line 'soundcardd: config FILE: ...': %s", text);
        CHECK(strstr(text, cases[i].expect) != NULL, "the line lacks '%s'", cases[i].expect);
        CHECK(access(sock, F_OK) != 0, "a socket was created although the config is bad");
    }

    /* Flags override the file; the file overrides the defaults. */
    write_file(conf, "{\"rate\": 44100, \"period\": 128, \"max-clients\": 7, \"allow-uid\": [0, \"root\"]}");
    struct daemon d;
    const char *with_flag[] = { "--config", conf, "--rate", "32000", NULL };
    daemon_start(&d, with_flag, 10);
    cJSON *info = server_info(d.socket_path);
    CHECK(json_number(info, "rate") == 32000 && json_number(info, "period") == 128 &&
              limit_of(info, "clients") == 7,
          "rate %.0f period %.0f clients %.0f: want 32000 (flag), 128 and 7 (file)", json_number(info, "rate"),
          json_number(info, "period"), limit_of(info, "clients"));
    CHECK(strcmp(jstring(info, "config"), conf) == 0, "server.info config '%s'", jstring(info, "config"));
    cJSON_Delete(info);
    CHECK(daemon_stop(&d, 10) == 0, "soundcardd failed");

    /* The default path: $XDG_CONFIG_HOME/soundcard/soundcardd.json. */
    char xdg[128], xdg_conf[160], env[160];
    snprintf(xdg, sizeof(xdg), "%s/xdg", dir);
    snprintf(xdg_conf, sizeof(xdg_conf), "%s/soundcard", xdg);
    mkdir(xdg, 0700);
    mkdir(xdg_conf, 0700);
    snprintf(xdg_conf, sizeof(xdg_conf), "%s/soundcard/soundcardd.json", xdg);
    write_file(xdg_conf, "{\"rate\": 22050}");
    snprintf(env, sizeof(env), "XDG_CONFIG_HOME=%s", xdg);
    daemon_start_watched(&d, NULL, (const char *const[]){ env, NULL }, 10);
    info = server_info(d.socket_path);
    CHECK(json_number(info, "rate") == 22050 && strcmp(jstring(info, "config"), xdg_conf) == 0,
          "rate %.0f from '%s': want 22050 from %s", json_number(info, "rate"), jstring(info, "config"), xdg_conf);
    cJSON_Delete(info);
    CHECK(daemon_stop(&d, 10) == 0, "soundcardd failed");

    unlink(xdg_conf);
    snprintf(xdg_conf, sizeof(xdg_conf), "%s/soundcard", xdg);
    rmdir(xdg_conf);
    rmdir(xdg);
    unlink(conf);
    unlink(err);
    rmdir(dir);
    return harness_finish("service.config");
}

/* ---- reload ------------------------------------------------------------- */

static int test_reload(void)
{
    char dir[] = "/tmp/sc-reload-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char conf[128];
    snprintf(conf, sizeof(conf), "%s/soundcardd.json", dir);
    write_file(conf, "{\"max-streams-per-client\": 1}");
    struct daemon d;
    daemon_start_watched(&d, (const char *const[]){ "--config", conf, NULL }, NULL, 10);

    sc_client *c;
    sc_stream *s1 = NULL, *s2 = NULL;
    sc_stream_params p = output_params("reload", 0);
    CHECK(sc_client_open(&c, d.socket_path, "reloader") == 0, "connect: %s", sc_last_error());
    CHECK(sc_stream_open(c, &p, &s1) == 0, "the first stream: %s", sc_last_error());
    int err = sc_stream_open(c, &p, &s2);
    CHECK(err == SC_ELIMIT, "a second stream under max-streams-per-client 1: %d %s", err, sc_last_error());

    /* Raise the limit and change the rate: the limit applies at once, the
     * rate after a restart. */
    write_file(conf, "{\"max-streams-per-client\": 2, \"rate\": 44100}");
    kill(d.pid, SIGHUP);
    CHECK(daemon_wait_notify(&d, "READY=1", 2, 5), "the reload did not finish (READY=1)");
    cJSON *info = server_info(d.socket_path);
    CHECK(limit_of(info, "streams_per_client") == 2 && json_number(info, "reloads") == 1 &&
              json_number(info, "rate") == 48000,
          "after reload: streams_per_client %.0f reloads %.0f rate %.0f", limit_of(info, "streams_per_client"),
          json_number(info, "reloads"), json_number(info, "rate"));
    cJSON_Delete(info);
    CHECK(sc_stream_open(c, &p, &s2) == 0, "the second stream after the reload: %s", sc_last_error());
    CHECK(strstr(slurp(d.log_path), "reload: rate changed; it takes effect when soundcardd restarts") != NULL,
          "the log does not say the rate needs a restart:\n%s", slurp(d.log_path));
    CHECK(strstr(slurp(d.log_path), "reload: max-streams-per-client changed") != NULL,
          "the log does not say what changed");

    /* A bad file: logged, the configuration in use stays. */
    write_file(conf, "{\"max-streams-per-client\": \"lots\"}");
    kill(d.pid, SIGHUP);
    CHECK(daemon_wait_notify(&d, "READY=1", 3, 5), "the failed reload did not finish (READY=1)");
    info = server_info(d.socket_path);
    CHECK(limit_of(info, "streams_per_client") == 2 && json_number(info, "reloads") == 1,
          "a bad reload changed things: streams_per_client %.0f reloads %.0f", limit_of(info, "streams_per_client"),
          json_number(info, "reloads"));
    cJSON_Delete(info);
    CHECK(strstr(slurp(d.log_path),
                 "field max-streams-per-client: 'lots' is not a whole number in 1..256; keeping the configuration in use"),
          "the log does not say the reload failed and why:\n%s", slurp(d.log_path));
    sc_stream_close(s1);
    sc_stream_close(s2);
    sc_client_close(c);
    CHECK(daemon_stop(&d, 10) == 0, "soundcardd failed");
    unlink(conf);
    rmdir(dir);
    return harness_finish("service.reload");
}

/* ---- realtime ----------------------------------------------------------- */

static void check_rt(const char *socket_path, bool realtime, int priority, bool locked, const char *what)
{
    cJSON *info = server_info(socket_path);
    bool rt = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(info, "realtime"));
    bool ml = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(info, "memory_locked"));
    printf("%s: realtime %d, rt_priority %.0f, memory_locked %d\n", what, rt, json_number(info, "rt_priority"), ml);
    CHECK(info && rt == realtime && json_number(info, "rt_priority") == priority && ml == locked,
          "%s: want realtime %d priority %d memory_locked %d", what, realtime, priority, locked);
    cJSON_Delete(info);
}

static bool rt_thread_seen(const char *socket_path)
{
    /* The RT thread reports what it got before its first cycle; a stats
     * snapshot with cycles > 0 means that happened. */
    double deadline = now_seconds() + 5;
    while (now_seconds() < deadline) {
        cJSON *stats = stats_snapshot(socket_path);
        double cycles = json_number(cJSON_GetObjectItemCaseSensitive(stats, "server"), "cycles");
        cJSON_Delete(stats);
        if (cycles > 0)
            return true;
        poll(NULL, 0, 20);
    }
    return false;
}

/* What this machine lets root have (a container may withhold CAP_SYS_NICE
 * or CAP_IPC_LOCK): the daemon must report the same. */
static bool can_fifo(void)
{
    struct sched_param rt = { .sched_priority = 1 }, normal = { .sched_priority = 0 };
    if (sched_setscheduler(0, SCHED_FIFO, &rt) != 0)
        return false;
    sched_setscheduler(0, SCHED_OTHER, &normal);
    return true;
}

static bool can_mlock(void)
{
    static char page[4096];
    if (syscall(SYS_mlock, page, sizeof(page)) != 0)  /* not the sanitizers' no-op mlock() */
        return false;
    syscall(SYS_munlock, page, sizeof(page));
    return true;
}

/* A copy of soundcardd that `nobody` can run whatever the build tree's
 * permissions (it links no library of ours). */
static bool copy_binary(const char *from, const char *to)
{
    int in = open(from, O_RDONLY | O_CLOEXEC), out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    char buf[65536];
    ssize_t n;
    bool ok = in >= 0 && out >= 0;
    while (ok && (n = read(in, buf, sizeof(buf))) > 0)
        ok = write(out, buf, (size_t)n) == n;
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return ok;
}

static int test_realtime(void)
{
    struct identity nobody;
    if (geteuid() != 0 || !lookup_nobody(&nobody)) {
        printf("SKIP: needs root and a user 'nobody'\n");
        return SKIP;
    }
    bool fifo = can_fifo(), lockable = can_mlock();
    printf("this machine lets root have: SCHED_FIFO %s, mlock %s\n", fifo ? "yes" : "no", lockable ? "yes" : "no");
    struct daemon d;
    daemon_start(&d, NULL, 10);
    CHECK(rt_thread_seen(d.socket_path), "no cycles");
    check_rt(d.socket_path, fifo, fifo ? 70 : 0, lockable, "root, --realtime 70 (default)");
    CHECK(daemon_stop(&d, 10) == 0, "soundcardd failed");

    daemon_start(&d, (const char *const[]){ "--realtime", "0", NULL }, 10);
    CHECK(rt_thread_seen(d.socket_path), "no cycles");
    check_rt(d.socket_path, false, 0, false, "root, --realtime 0");
    CHECK(strstr(slurp(d.log_path), "warning") == NULL, "--realtime 0 warned:\n%s", slurp(d.log_path));
    CHECK(daemon_stop(&d, 10) == 0, "soundcardd failed");

    /* As nobody, with no RT priority and no lockable memory allowed. */
    char dir[] = "/tmp/sc-rt-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    (void)!chown(dir, nobody.uid, nobody.gid);
    char sock[100], log[100], notify_path[100], binary[100];
    snprintf(binary, sizeof(binary), "%s/soundcardd", dir);
    CHECK(copy_binary(harness_bin("soundcardd"), binary), "cannot copy soundcardd: %s", strerror(errno));
    snprintf(sock, sizeof(sock), "%s/socket", dir);
    snprintf(log, sizeof(log), "%s/log", dir);
    snprintf(notify_path, sizeof(notify_path), "%s/notify", dir);
    int notify = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", notify_path);
    CHECK(bind(notify, (struct sockaddr *)&addr, sizeof(addr)) == 0, "bind: %s", strerror(errno));
    chmod(notify_path, 0666);
    int logfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit zero = { 0, 0 };
        setrlimit(RLIMIT_RTPRIO, &zero);
        setrlimit(RLIMIT_MEMLOCK, &zero);
        become(&nobody);
        dup2(logfd, 2);
        char env[160];
        snprintf(env, sizeof(env), "NOTIFY_SOCKET=%s", notify_path);
        putenv(env);
        execl(binary, "soundcardd", "--socket", sock, "--allow-uid", "0", (char *)NULL);
        _exit(127);
    }
    struct pollfd p = { .fd = notify, .events = POLLIN };
    char msg[256] = "";
    ssize_t n = poll(&p, 1, 10000) > 0 ? recv(notify, msg, sizeof(msg) - 1, 0) : -1;
    msg[n > 0 ? n : 0] = '\0';
    CHECK(strstr(msg, "READY=1") != NULL, "soundcardd as nobody did not get ready:\n%s", slurp(log));
    CHECK(rt_thread_seen(sock), "no cycles");
    /* Streams' memory is locked too: three of them, still one warning. */
    sc_client *c;
    sc_stream *s[3] = { NULL, NULL, NULL };
    sc_stream_params sp = output_params("unlocked", 0);
    CHECK(sc_client_open(&c, sock, "rt-probe") == 0, "connect: %s", sc_last_error());
    for (int i = 0; i < 3; i++)
        CHECK(sc_stream_open(c, &sp, &s[i]) == 0, "stream %d: %s", i, sc_last_error());
    check_rt(sock, false, 0, false, "nobody, RLIMIT_RTPRIO 0, RLIMIT_MEMLOCK 0");
    /* The card timer reports the RT thread's result within 0.5 s. */
    double deadline = now_seconds() + 5;
    while (!strstr(slurp(log), "not granted") && now_seconds() < deadline)
        poll(NULL, 0, 20);
    const char *text = slurp(log);
    printf("log:\n%s", text);
    CHECK(count_substr(text, "realtime priority 70 not granted") == 1, "want one realtime warning");
    CHECK(count_substr(text, "cannot lock audio memory in RAM") == 1, "want one memory warning");
    for (int i = 0; i < 3; i++)
        sc_stream_close(s[i]);
    sc_client_close(c);
    kill(pid, SIGTERM);
    CHECK(wait_child(pid, 10) == 0, "soundcardd as nobody did not stop cleanly:\n%s", slurp(log));
    close(notify);
    close(logfd);
    unlink(notify_path);
    unlink(log);
    unlink(binary);
    rmdir(dir);
    return harness_finish("service.realtime");
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "activation") == 0)
        return test_activation();
    if (strcmp(mode, "notify") == 0)
        return test_notify();
    if (strcmp(mode, "access") == 0)
        return test_access();
    if (strcmp(mode, "config") == 0)
        return test_config();
    if (strcmp(mode, "reload") == 0)
        return test_reload();
    if (strcmp(mode, "realtime") == 0)
        return test_realtime();
    fprintf(stderr, "usage: test_service activation|notify|access|config|reload|realtime\n");
    return 2;
}
