/* One client connection: a small state machine (waiting for hello, ready,
 * closing), a line framer on the way in and a bounded queue on the way out.
 * A client that breaks the framing or does not read its replies is cut off;
 * nobody else notices. */
#ifndef SC_DAEMON_SESSION_H
#define SC_DAEMON_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "access.h"
#include "message.h"

struct server;
struct stream;
struct outbound;

enum session_state { SESSION_AWAIT_HELLO, SESSION_READY, SESSION_CLOSED };

struct session {
    struct server *server;
    struct session *next;
    uint32_t id;
    int fd;
    enum session_state state;
    uv_poll_t poll;
    uv_timer_t hello_timer;
    int open_handles;           /* freed when both handles have closed */
    int poll_events;
    struct peer peer;           /* who connected (SO_PEERCRED) */
    char denied[192];           /* why the allow lists refuse it; "" when admitted */
    char name[MSG_MAX_NAME];
    uint32_t events;            /* subscribed enum msg_event_mask */
    struct stream *streams;     /* its open streams */
    uint32_t nstreams;
    struct outbound *out_head, *out_tail;
    size_t out_bytes;
    struct msg_framer framer;
};

/* Take over an accepted connection. */
void session_accept(struct server *server, int fd);
/* Queue a line (consumed) with descriptors to pass (duplicated here). */
void session_send(struct session *s, char *line, const int *fds, int nfds);
void session_reply_ok(struct session *s, int64_t id, cJSON *fields);
void session_reply_error(struct session *s, int64_t id, enum msg_error_code code,
                         const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Disconnect: its streams are removed, its memory freed once libuv is done. */
void session_close(struct session *s, const char *why);

#endif
