#include "server.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "card.h"
#include "engine.h"
#include "log.h"
#include "memlock.h"
#include "ops.h"
#include "service.h"
#include "session.h"
#include "stream.h"
#include "tap.h"

int64_t server_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct stream *server_find_stream(struct server *s, uint32_t id)
{
    for (struct stream *st = s->streams; st; st = st->next)
        if (st->id == id && !st->removing)
            return st;
    return NULL;
}

void server_broadcast(struct server *s, uint32_t mask, const char *name, cJSON *fields)
{
    for (struct session *c = s->sessions, *next; c; c = next) {
        next = c->next;  /* sending may close c */
        if ((c->events & mask) && c->state == SESSION_READY)
            session_send(c, msg_event(name, cJSON_Duplicate(fields, 1)), NULL, 0);
    }
    cJSON_Delete(fields);
}

static void notify_loop(void *ctx)
{
    uv_async_send(ctx);
}

static void on_engine_notes(uv_async_t *async)
{
    struct server *s = async->data;
    struct engine_note note;
    while (engine_next_note(s->engine, &note))
        ops_engine_note(s, &note);
}

static void on_listen_readable(uv_poll_t *handle, int status, int events)
{
    struct server *s = handle->data;
    (void)events;
    if (status < 0)
        return;
    for (;;) {
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR)
                log_warn("accept: %s", strerror(errno));
            return;
        }
        session_accept(s, fd);
    }
}

/* mkdir -p of the socket's directory; the last level `last_mode` (private
 * to the user unless others may connect) when we create it. */
static int make_parent_dirs(const char *path, mode_t last_mode)
{
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(dir, last_mode) < 0 && errno != EEXIST ? -1 : 0;
}

/* The socket systemd passed (socket activation): it owns the path and the
 * modes.  Our path is whatever it bound, for the logs. */
static int take_activated_socket(struct server *s, char *err, size_t err_len)
{
    int fd = SD_LISTEN_FDS_START;
    if (sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) <= 0) {
        snprintf(err, err_len, "the socket systemd passed (fd %d) is not a listening Unix stream socket", fd);
        return -1;
    }
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags | O_NONBLOCK);   /* the accept loop runs until EAGAIN */
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    struct sockaddr_un addr;
    socklen_t len = sizeof(addr);
    if (getsockname(fd, (struct sockaddr *)&addr, &len) == 0 && len > sizeof(sa_family_t) && addr.sun_path[0])
        snprintf(s->socket_path, sizeof(s->socket_path), "%.*s", (int)(len - sizeof(sa_family_t)), addr.sun_path);
    s->listen_fd = fd;
    s->unlink_socket = false;
    return 0;
}

/* Who may open the socket file: with --socket-group the group (0660); with
 * allow lists anybody, since the daemon checks each peer (0666); otherwise
 * the daemon's user alone (0600).  The daemon's checks apply regardless. */
static int set_socket_access(struct server *s, char *err, size_t err_len)
{
    const struct options *o = &s->opts;
    mode_t mode = 0600;
    if (o->socket_group[0]) {
        struct group *g = getgrnam(o->socket_group);
        char *end;
        unsigned long gid = g ? g->gr_gid : strtoul(o->socket_group, &end, 10);
        if (chown(s->socket_path, (uid_t)-1, (gid_t)gid) < 0) {
            snprintf(err, err_len, "socket-group %s: cannot give %s to it: %s", o->socket_group,
                     s->socket_path, strerror(errno));
            return -1;
        }
        mode = 0660;
    } else if (o->allow_uids.n || o->allow_gids.n) {
        mode = 0666;
    }
    if (chmod(s->socket_path, mode) < 0) {
        snprintf(err, err_len, "chmod %s: %s", s->socket_path, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- the socket path: one daemon per path, stale files reclaimed ----
 *
 * A daemon killed with SIGKILL leaves its socket file behind.  The next one
 * must remove it, but never the file of a daemon that still serves, not even
 * when two start at once on a stale path (each would see "nobody answers",
 * one would bind, the other unlink that fresh file and bind its own).  So
 * whoever touches the path first holds a lock: a Unix socket bound to an
 * abstract name derived from the path.  The kernel frees the name when the
 * process dies, however it dies, and it leaves no file anywhere. */

#define LOCK_PREFIX "soundcardd:"

static uint64_t fnv1a(const char *text)
{
    uint64_t h = 14695981039346656037ull;
    for (; *text; text++)
        h = (h ^ (unsigned char)*text) * 1099511628211ull;
    return h;
}

/* The lock's abstract name (after the leading NUL): the socket's canonical
 * path, so other spellings of it (relative, through a symlinked directory)
 * meet on the same lock; a hash of it when too long to fit. */
static size_t lock_name(const char *socket_path, char *name, size_t len)
{
    char dir[PATH_MAX], real[PATH_MAX], canonical[PATH_MAX + 128];
    snprintf(dir, sizeof(dir), "%s", socket_path);
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : socket_path;
    if (slash)
        *slash = '\0';
    if (realpath(slash ? (dir[0] ? dir : "/") : ".", real))
        snprintf(canonical, sizeof(canonical), "%s/%s", strcmp(real, "/") ? real : "", base);
    else
        snprintf(canonical, sizeof(canonical), "%s", socket_path);
    int n = snprintf(name, len, LOCK_PREFIX "%s", canonical);
    if (n < 0 || (size_t)n >= len)
        n = snprintf(name, len, LOCK_PREFIX "#%016llx", (unsigned long long)fnv1a(canonical));
    return (size_t)n;
}

static int take_path_lock(struct server *s, char *err, size_t err_len)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    size_t n = lock_name(s->socket_path, addr.sun_path + 1, sizeof(addr.sun_path) - 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, err_len, "socket: %s", strerror(errno));
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&addr, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n)) < 0) {
        if (errno == EADDRINUSE)
            snprintf(err, err_len, "another soundcardd already serves %s (or is starting on it)",
                     s->socket_path);
        else
            snprintf(err, err_len, "cannot take the lock of %s: %s", s->socket_path, strerror(errno));
        close(fd);
        return -1;
    }
    s->lock_fd = fd;
    return 0;
}

/* With the lock held: a socket file nobody answers on is left from a crash:
 * remove it.  One that answers belongs to a live server (a daemon that holds
 * no lock of ours: an older one, or one in another network namespace):
 * leave it alone.  Anything that is not a socket is not ours to remove. */
static int reclaim_stale_socket(struct server *s, const struct sockaddr_un *addr, char *err, size_t err_len)
{
    struct stat st;
    if (lstat(s->socket_path, &st) < 0)
        return 0;
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, err_len, "%s exists and is not a socket", s->socket_path);
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, err_len, "socket: %s", strerror(errno));
        return -1;
    }
    int rc = connect(fd, (const struct sockaddr *)addr, sizeof(*addr));
    int e = errno;
    close(fd);
    if (rc == 0 || e == EAGAIN) {  /* EAGAIN: it listens, its backlog is full */
        snprintf(err, err_len, "another soundcardd is already listening on %s", s->socket_path);
        return -1;
    }
    if (e == ECONNREFUSED && unlink(s->socket_path) == 0)
        log_info("removed the stale socket %s (nobody listened on it)", s->socket_path);
    return 0;
}

/* Before anything else is opened (the card, the tap file): make the
 * directory, take the path's lock, reclaim a stale socket.  A second
 * daemon on a live path stops here with one line and touches nothing. */
static int claim_socket_path(struct server *s, char *err, size_t err_len)
{
    if (sd_listen_fds(0) >= 1)
        return 0;  /* socket activation: systemd owns the path */
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    if (strlen(s->socket_path) >= sizeof(addr.sun_path)) {
        snprintf(err, err_len, "socket path too long: %s", s->socket_path);
        return -1;
    }
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", s->socket_path);
    bool shared = s->opts.socket_group[0] || s->opts.allow_uids.n || s->opts.allow_gids.n;
    if (make_parent_dirs(s->socket_path, shared ? 0755 : 0700) < 0) {
        snprintf(err, err_len, "cannot create the directory of %s: %s", s->socket_path, strerror(errno));
        return -1;
    }
    if (take_path_lock(s, err, err_len) < 0)
        return -1;
    return reclaim_stale_socket(s, &addr, err, err_len);
}

static int open_listen_socket(struct server *s, char *err, size_t err_len)
{
    if (sd_listen_fds(1) >= 1)
        return take_activated_socket(s, err, err_len);
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", s->socket_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 128) < 0) {
        snprintf(err, err_len, "cannot listen on %s: %s", s->socket_path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    s->listen_fd = fd;
    s->unlink_socket = true;
    struct stat st;
    if (stat(s->socket_path, &st) == 0) {
        s->socket_dev = st.st_dev;
        s->socket_ino = st.st_ino;
    }
    return set_socket_access(s, err, err_len);
}

static void on_signal(uv_signal_t *handle, int signum);

int server_init(struct server *s, const struct options *opts, int argc, char **argv, char *err,
                size_t err_len)
{
    memset(s, 0, sizeof(*s));
    s->opts = *opts;
    s->argc = argc;
    s->argv = argv;
    memlock_enable(opts->rt_priority > 0);
    s->listen_fd = -1;
    s->lock_fd = -1;
    s->started_ns = server_now_ns();
    options_socket_path(opts, s->socket_path, sizeof(s->socket_path));

    if (claim_socket_path(s, err, err_len) < 0)
        return -1;
    if (card_open(s, err, err_len) < 0)
        return -1;

    if (opts->tap[0]) {
        s->tap = tap_open(opts->tap, s->card.rate, s->card.channels, err, err_len);
        if (!s->tap)
            return -1;
    }
    uv_loop_init(&s->loop);
    /* Before the socket exists: a SIGTERM from a client that connected
     * early stops us cleanly (the file removed), not by default action. */
    uv_signal_init(&s->loop, &s->sigterm);
    uv_signal_init(&s->loop, &s->sigint);
    s->sigterm.data = s->sigint.data = s;
    uv_signal_start(&s->sigterm, on_signal, SIGTERM);
    uv_signal_start(&s->sigint, on_signal, SIGINT);
    uv_async_init(&s->loop, &s->engine_async, on_engine_notes);
    s->engine_async.data = s;
    s->engine_capacity = opts->limits.clients * opts->limits.streams_per_client;
    struct engine_config ec = {
        .rate = s->card.rate,
        .period = s->card.period,
        .channels = s->card.channels,
        .max_streams = s->engine_capacity,
        .tap = s->tap,
        .notify = notify_loop,
        .notify_ctx = &s->engine_async,
    };
    s->engine = engine_create(&ec);
    if (!s->engine) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    engine_lock_memory(s->engine, memlock_region);
    if (open_listen_socket(s, err, err_len) < 0)
        return -1;
    uv_poll_init(&s->loop, &s->listen_poll, s->listen_fd);
    s->listen_poll.data = s;
    uv_poll_start(&s->listen_poll, UV_READABLE, on_listen_readable);

    if (card_start(s, err, err_len) < 0)
        return -1;
    card_watch(s);
    return 0;
}

static void shut_down(struct server *s)
{
    if (s->stopping)
        return;
    s->stopping = true;
    log_info("stopping");
    service_stopping(s);
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "state", "stopping");
    cJSON_AddStringToObject(ev, "message", "soundcardd is shutting down");
    server_broadcast(s, MSG_EVENT_SERVER, "server.state", ev);
    while (s->sessions)
        session_close(s->sessions, "server stopping");
    /* With the card stopped no RT thread runs: this thread drains the
     * engine's queue itself, so every stream is freed. */
    card_close(s);
    engine_set_offline(s->engine, true);
    engine_run_commands_offline(s->engine);
    on_engine_notes(&s->engine_async);
    card_unwatch(s);
    uv_close((uv_handle_t *)&s->listen_poll, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->engine_async, NULL);
}

static void on_signal(uv_signal_t *handle, int signum)
{
    log_info("signal %d", signum);
    shut_down(handle->data);
}

void server_run(struct server *s)
{
    log_info("listening on %s: %s backend, device '%s', %u Hz, %u frames, %u channels; config %s",
             s->socket_path, s->backend_ops->name, s->card.device, s->card.rate, s->card.period,
             s->card.channels, s->opts.config_path[0] ? s->opts.config_path : "(none)");
    service_ready(s);
    uv_run(&s->loop, UV_RUN_DEFAULT);
}

void server_cleanup(struct server *s)
{
    card_close(s);
    if (s->engine) {
        /* Streams still in the engine (init failed half-way) are ours now. */
        uv_loop_close(&s->loop);
        engine_destroy(s->engine);
    }
    tap_close(s->tap);
    if (s->listen_fd >= 0 && s->unlink_socket) {
        /* Only our own file: the lock kept other daemons off the path, but
         * somebody may have replaced it by hand. */
        struct stat st;
        if (stat(s->socket_path, &st) == 0 && st.st_dev == s->socket_dev && st.st_ino == s->socket_ino)
            unlink(s->socket_path);
        close(s->listen_fd);
    }
    if (s->lock_fd >= 0)  /* last: the path is free for the next daemon once the file is gone */
        close(s->lock_fd);
}
