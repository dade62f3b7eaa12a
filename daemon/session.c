#include "session.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "fdpass.h"
#include "log.h"
#include "ops.h"
#include "server.h"
#include "stream.h"

/* A queued line: sent from `sent` on; fds go with its first byte. */
struct outbound {
    struct outbound *next;
    size_t len, sent;
    int fds[FDPASS_MAX_FDS];
    int nfds;
    char data[];
};

static void free_outbound(struct outbound *o)
{
    for (int i = 0; i < o->nfds; i++)
        close(o->fds[i]);
    free(o);
}

static void on_poll(uv_poll_t *handle, int status, int events);

static void set_poll_events(struct session *s, int events)
{
    if (s->state == SESSION_CLOSED || events == s->poll_events)
        return;
    s->poll_events = events;
    uv_poll_start(&s->poll, events, on_poll);
}

/* Write as much of the queue as the socket takes. */
static void flush(struct session *s)
{
    while (s->out_head) {
        struct outbound *o = s->out_head;
        ssize_t n = fdpass_send(s->fd, o->data + o->sent, o->len - o->sent, o->fds,
                                o->sent == 0 ? o->nfds : 0);
        if (n == -EAGAIN)
            break;
        if (n < 0) {
            session_close(s, strerror((int)-n));
            return;
        }
        if (o->sent == 0) {
            for (int i = 0; i < o->nfds; i++)
                close(o->fds[i]);
            o->nfds = 0;
        }
        o->sent += (size_t)n;
        s->out_bytes -= (size_t)n;
        if (o->sent < o->len)
            break;
        s->out_head = o->next;
        if (!s->out_head)
            s->out_tail = NULL;
        free_outbound(o);
    }
    set_poll_events(s, UV_READABLE | (s->out_head ? UV_WRITABLE : 0));
}

void session_send(struct session *s, char *line, const int *fds, int nfds)
{
    if (s->state == SESSION_CLOSED || !line) {
        free(line);
        return;
    }
    size_t len = strlen(line);
    if (s->out_bytes + len > s->server->opts.limits.outbound_bytes) {
        free(line);
        session_close(s, "it does not read its socket (outbound queue limit reached)");
        return;
    }
    struct outbound *o = malloc(sizeof(*o) + len);
    if (!o) {
        free(line);
        session_close(s, "out of memory");
        return;
    }
    *o = (struct outbound){ .len = len };
    memcpy(o->data, line, len);
    free(line);
    for (int i = 0; i < nfds && i < FDPASS_MAX_FDS; i++) {
        o->fds[o->nfds] = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);
        if (o->fds[o->nfds] >= 0)
            o->nfds++;
    }
    if (s->out_tail)
        s->out_tail->next = o;
    else
        s->out_head = o;
    s->out_tail = o;
    s->out_bytes += len;
    if (s->out_head == o)
        flush(s);
}

void session_reply_ok(struct session *s, int64_t id, cJSON *fields)
{
    session_send(s, msg_reply_ok(id, fields), NULL, 0);
}

/* Clients that send garbage in a loop must not flood the log (the journal,
 * a file) with one line per bad request: at most ERROR_LOGS_PER_SECOND error
 * replies are logged each second, all clients together.  The rest are
 * counted, and the count goes out with the next one logged.  The loop
 * thread alone calls this. */
#define ERROR_LOGS_PER_SECOND 50

static bool error_log_allowed(struct server *server, unsigned *not_logged)
{
    static uint64_t window_start;
    static unsigned logged, skipped;
    uint64_t now = uv_now(&server->loop);
    if (now - window_start >= 1000) {
        window_start = now;
        logged = 0;
    }
    if (logged >= ERROR_LOGS_PER_SECOND) {
        skipped++;
        return false;
    }
    logged++;
    *not_logged = skipped;
    skipped = 0;
    return true;
}

void session_reply_error(struct session *s, int64_t id, enum msg_error_code code, const char *fmt, ...)
{
    char message[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    unsigned not_logged;
    if (error_log_allowed(s->server, &not_logged)) {
        if (not_logged)
            log_info("%u error replies not logged (more than %d a second)", not_logged,
                     ERROR_LOGS_PER_SECOND);
        log_info("client %u (%s): %s: %s", s->id, s->name, msg_error_code_name(code), message);
    }
    session_send(s, msg_reply_error(id, code, message), NULL, 0);
}

static void handle_line(struct session *s, char *line, size_t len)
{
    if (len > s->server->opts.limits.message_bytes) {
        session_reply_error(s, -1, MSG_ERR_LIMIT, "line of %zu bytes exceeds the limit of %u", len,
                            s->server->opts.limits.message_bytes);
        return;
    }
    struct msg_request req;
    struct msg_error err;
    enum msg_error_code parsed = msg_parse_request(line, len, &req, &err);
    if (s->denied[0]) {
        /* Its first request, whatever it is, learns why; then it is cut off. */
        session_reply_error(s, req.id, MSG_ERR_DENIED, "%s", s->denied);
        flush(s);
        session_close(s, "denied by the allow lists");
        return;
    }
    if (parsed != MSG_OK) {
        session_reply_error(s, req.id, err.code, "%s", err.message);
        return;
    }
    if (s->state == SESSION_AWAIT_HELLO && req.op != MSG_OP_HELLO) {
        session_reply_error(s, req.id, MSG_ERR_INVALID_STATE, "'hello' must be the first request");
        return;
    }
    ops_dispatch(s, &req);
}

static void on_readable(struct session *s)
{
    /* A bounded number of reads per wakeup keeps one chatty client from
     * starving the others. */
    for (int round = 0; round < 16 && s->state != SESSION_CLOSED; round++) {
        size_t room;
        char *space = msg_framer_space(&s->framer, &room);
        ssize_t n = room ? recv(s->fd, space, room, 0) : 0;
        if (room && n == 0) {
            session_close(s, "disconnected");
            return;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            session_close(s, strerror(errno));
            return;
        }
        msg_framer_commit(&s->framer, (size_t)n);
        char *line;
        size_t len;
        int r;
        while (s->state != SESSION_CLOSED && (r = msg_framer_next(&s->framer, &line, &len)) == 1)
            handle_line(s, line, len);
        if (r < 0 && s->state != SESSION_CLOSED) {
            session_reply_error(s, -1, MSG_ERR_LIMIT, "line longer than %u bytes", MSG_MAX_LINE);
            flush(s);
            session_close(s, "framing error (line too long)");
            return;
        }
    }
}

static void on_poll(uv_poll_t *handle, int status, int events)
{
    struct session *s = handle->data;
    if (status < 0) {
        session_close(s, uv_strerror(status));
        return;
    }
    if (events & UV_WRITABLE)
        flush(s);
    if ((events & UV_READABLE) && s->state != SESSION_CLOSED)
        on_readable(s);
}

static void on_hello_timeout(uv_timer_t *timer)
{
    struct session *s = timer->data;
    if (s->state != SESSION_AWAIT_HELLO)
        return;
    session_reply_error(s, -1, MSG_ERR_INVALID_STATE, "no 'hello' within %u ms",
                        s->server->opts.limits.hello_timeout_ms);
    flush(s);
    session_close(s, "no hello in time");
}

static void on_handle_closed(uv_handle_t *handle)
{
    struct session *s = handle->data;
    if (--s->open_handles > 0)
        return;
    close(s->fd);
    free(s);
}

void session_accept(struct server *server, int fd)
{
    if (server->nsessions >= server->opts.limits.clients) {
        char *line = msg_reply_error(-1, MSG_ERR_LIMIT, "too many clients");
        if (line)
            (void)!write(fd, line, strlen(line));
        free(line);
        close(fd);
        log_warn("refused a client: limit of %u clients reached", server->opts.limits.clients);
        return;
    }
    struct session *s = calloc(1, sizeof(*s));
    if (!s) {
        close(fd);
        return;
    }
    s->server = server;
    s->fd = fd;
    s->id = ++server->next_client_id;
    snprintf(s->name, sizeof(s->name), "client-%u", s->id);
    access_read_peer(fd, &s->peer);
    access_admits(&server->opts, &s->peer, s->denied, sizeof(s->denied));
    msg_framer_init(&s->framer);
    uv_poll_init(&server->loop, &s->poll, fd);
    uv_timer_init(&server->loop, &s->hello_timer);
    s->poll.data = s;
    s->hello_timer.data = s;
    s->open_handles = 2;
    s->poll_events = UV_READABLE;
    uv_poll_start(&s->poll, UV_READABLE, on_poll);
    uv_timer_start(&s->hello_timer, on_hello_timeout, server->opts.limits.hello_timeout_ms, 0);
    s->next = server->sessions;
    server->sessions = s;
    server->nsessions++;
    if (s->denied[0])
        log_warn("client %u (pid %d): %s", s->id, (int)s->peer.cred.pid, s->denied);
    else
        log_debug("client %u connected (pid %d uid %d)", s->id, (int)s->peer.cred.pid,
                  (int)s->peer.cred.uid);
}

void session_close(struct session *s, const char *why)
{
    if (s->state == SESSION_CLOSED)
        return;
    bool said_hello = s->state == SESSION_READY;
    s->state = SESSION_CLOSED;
    struct server *server = s->server;
    log_info("client %u (%s) gone: %s", s->id, s->name, why);
    for (struct session **p = &server->sessions; *p; p = &(*p)->next) {
        if (*p == s) {
            *p = s->next;
            break;
        }
    }
    server->nsessions--;
    /* Streams already being removed just lose their owner; the rest are
     * removed now.  Either way the REMOVED note frees them. */
    for (struct stream *st = s->streams, *next; st; st = next) {
        next = st->owner_next;
        if (!st->removing)
            ops_remove_stream(server, st, -1);
        st->owner = NULL;
        st->owner_next = NULL;
    }
    s->streams = NULL;
    while (s->out_head) {
        struct outbound *o = s->out_head;
        s->out_head = o->next;
        free_outbound(o);
    }
    uv_close((uv_handle_t *)&s->poll, on_handle_closed);
    uv_close((uv_handle_t *)&s->hello_timer, on_handle_closed);
    if (said_hello) {
        cJSON *fields = cJSON_CreateObject();
        cJSON_AddNumberToObject(fields, "client", s->id);
        server_broadcast(server, MSG_EVENT_CLIENTS, "client.removed", fields);
    }
}
