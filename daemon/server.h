/* The loop thread: the listening socket, the sessions, signals and the
 * engine's notes, all on one libuv loop. */
#ifndef SC_DAEMON_SERVER_H
#define SC_DAEMON_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "backend.h"
#include "options.h"

struct session;
struct stream;
struct engine;
struct tap;
typedef struct cJSON cJSON;

struct server {
    uv_loop_t loop;
    struct options opts;
    int argc;                 /* the command line, parsed again on SIGHUP */
    char **argv;
    uint32_t reloads;         /* successful SIGHUP reloads */
    char socket_path[108];
    int listen_fd;
    bool unlink_socket;       /* we created the socket file (not socket-activated) */
    dev_t socket_dev;         /* the file we created: removed at exit only if still ours */
    ino_t socket_ino;
    int lock_fd;              /* the path's lock (server.c): held while we own the path */
    uv_poll_t listen_poll;
    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t service_timer; /* sd_notify STATUS= and WATCHDOG=1 */
    uint64_t watchdog_usec;   /* 0: systemd watches nothing */
    uint64_t watchdog_cycles; /* engine cycles at the last WATCHDOG=1 */
    char status[256];         /* the last STATUS= sent */
    uv_async_t engine_async;

    const struct backend_ops *backend_ops;
    struct backend *backend;  /* NULL while the card is away (card.c) */
    struct backend *card_going;  /* lost, and card_stopper still stopping it */
    pthread_t card_stopper;
    bool card_stopper_runs;   /* card_stopper was started and not yet joined */
    _Atomic bool card_gone;   /* card_stopper has stopped and closed card_going */
    uv_async_t card_stopped;  /* card_stopper says so */
    bool card_slow_logged;    /* that it takes long was said */
    struct backend_info card; /* what it opened, kept while it is away */
    uv_timer_t card_timer;
    char card_message[256];
    uint64_t card_cycles_seen;  /* engine cycles at the last check */
    int64_t card_progress_ns;   /* when they last advanced */
    struct engine *engine;
    uint32_t engine_capacity; /* streams it can hold: fixed at start */
    /* Written once by the thread that runs the cycle, before its first one. */
    _Atomic bool rt_thread_setup;
    _Atomic int rt_priority_got;
    bool rt_checked;
    struct tap *tap;

    struct session *sessions;
    uint32_t nsessions;
    struct stream *streams;   /* every open stream, all clients */
    uint32_t nstreams;
    uint32_t next_client_id, next_stream_id;
    int64_t started_ns;
    bool stopping;
};

/* Open the card, the engine and the socket. Returns 0 or -1 with one line
 * saying why in err. */
int server_init(struct server *s, const struct options *opts, int argc, char **argv, char *err,
                size_t err_len);
/* Run until SIGTERM/SIGINT. */
void server_run(struct server *s);
void server_cleanup(struct server *s);

/* Send an event to every session subscribed to `mask`; consumes fields. */
void server_broadcast(struct server *s, uint32_t mask, const char *name, cJSON *fields);
struct stream *server_find_stream(struct server *s, uint32_t id);
int64_t server_now_ns(void);

#endif
