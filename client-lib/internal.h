/* What the parts of libsoundcard share inside the library. */
#ifndef SC_CLIENT_INTERNAL_H
#define SC_CLIENT_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "fdpass.h"
#include "message.h"
#include "shm.h"
#include "soundcard/soundcard.h"

struct sc_client {
    int fd;
    pthread_mutex_t lock;      /* one request/reply exchange at a time; a reconnect holds it throughout */
    int64_t next_id;
    bool broken;               /* the connection failed: every call fails now (until a reconnect) */
    struct msg_framer *framer;
    int fds[FDPASS_MAX_FDS * 2];
    int nfds;                  /* descriptors received, not yet claimed */
    uint32_t id, rate, period, channels;  /* from hello: written under lock by a reconnect */
    char socket_path[108];
    char name[MSG_MAX_NAME];   /* the hello name, said again on a reconnect */
    /* Connections made so far (1 after sc_client_open).  A stream opened on
     * an earlier one belongs to a daemon that is gone: it must be reopened,
     * and its id never sent to the new daemon. */
    _Atomic uint64_t generation;
    _Atomic double reconnect_timeout;  /* seconds; 0: off (sc_client_set_reconnect) */
};

/* Float frames at the application's rate on their way between the
 * application's buffers and a ring (through the resampler). */
struct fifo {
    float *data;
    uint32_t frames, capacity;
};

enum stream_end { STREAM_END_NONE, STREAM_END_COMPLETE, STREAM_END_ABORT, STREAM_END_ERROR };

/* watch.c: the thread that ends a futex sleep when the daemon hangs up. */
struct stream_watch {
    pthread_t thread;
    bool running;              /* started and not yet joined */
    int epoll_fd, stop_fd;     /* the stream's pipe and connection; ours to stop it */
    _Atomic bool hung_up;      /* it saw a hang-up (or could watch no more) */
};

struct sc_stream {
    sc_client *client;
    uint32_t id;
    /* The connection the stream lives on: its generation and our own dup of
     * its socket, which hangs up when that daemon goes (even once the client
     * has moved on to a new connection). */
    uint64_t generation;
    int conn_fd;
    cJSON *open_request;                /* stream.open as sent: sent again by a reopen */
    _Atomic float gain;                 /* the last sc_stream_set_gain: applied again by a reopen */
    /* A reopen swaps id, generation and mapping under it: calls that may
     * come from another thread than the reader/writer (get_stats, latency,
     * set_gain) read them under it.  The reopen itself happens only in the
     * calls that move audio or start it, the thread that owns the stream. */
    pthread_mutex_t swap_lock;
    struct shm_layout layout;
    struct shm_header *shm;
    int memfd;
    int wake_fd;                        /* the daemon's wake-up pipe, read end */
    int quit_fd;                        /* an eventfd of our own: wakes our callback thread to leave */
    int wait_fd;                        /* epoll set of wake_fd, conn_fd and quit_fd (-1: not made yet) */
    bool wake_futex;                    /* the daemon wakes us through shm->wake, not the pipe */
    _Atomic uint32_t wake_seen;         /* shm->wake.seq when the last wait returned */
    struct stream_watch watch;          /* futex streams, from the first wait on */
    float *play_ring, *capture_ring;
    uint32_t play_write, capture_read;  /* our own ring indices: the truth */
    uint32_t play_target;               /* card frames of playback we keep queued */
    sc_format format;
    size_t sample_bytes;
    double app_rate, card_rate;
    unsigned long blocksize;            /* app frames per callback / wake */
    struct resampler *out_rs, *in_rs;
    struct fifo out_fifo, in_fifo;
    float *out_scratch;                 /* the output resampler's card-rate frames */
    _Atomic uint64_t latency_bits[2];   /* callback mode: input, output latency (double) */
    _Atomic bool active;

    /* Callback mode. */
    sc_callback callback;
    void *userdata;
    void (*finished)(void *userdata);
    pthread_t thread;
    /* Atomic: the callback thread may read them (stats, latency) while the
     * application's thread sets them around pthread_create. */
    _Atomic bool thread_started;
    _Atomic bool realtime;              /* the callback thread got SCHED_FIFO */
    _Atomic bool quit;                  /* asked to leave by stop/abort/close */
    enum stream_end ended;              /* why the thread left on its own */
    uint64_t seen_underruns, seen_overruns;
    void *cb_in, *cb_out;               /* one block in the application's format */
};

/* client.c: $name as seconds in (0, most], else 0.  Anything else is
 * ignored, not an error: no function prints, and a typo leaves it off. */
double sc__env_seconds(const char *name, double most);

/* Record what went wrong in this thread, return err (for `return fail(…)`). */
int sc__fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Send `request` (consumed; "id" is added) and wait for its reply.  On an ok
 * reply returns 0 with *reply set (caller deletes) and, if fds is not NULL,
 * up to *nfds descriptors received with it.  Error replies return their SC_E…
 * code with the daemon's message recorded; *reply is still set when the
 * caller wants it (raw != NULL). */
int sc__call(sc_client *c, cJSON *request, cJSON **reply, int *fds, int *nfds, char **raw);
/* sc__call for a stream: only on connection *generation (0: the current
 * one), else SC_EDISCONNECTED without sending anything, so a stale stream id
 * never reaches a new daemon.  With conn_fd, on success *conn_fd is a dup of
 * the connection and *generation its generation (stream.open). */
int sc__stream_call(sc_client *c, uint64_t *generation, int *conn_fd, cJSON *request, cJSON **reply,
                    int *fds, int *nfds);
/* client.c: the connection of generation `seen` was lost: unless the client
 * has moved past it already, connect and hello again, retrying until
 * `deadline` (CLOCK_MONOTONIC seconds).  *generation: the connection now. */
int sc__client_reconnect(sc_client *c, uint64_t seen, double deadline, uint64_t *generation);
/* client.c: with reconnect on, reconnect now if the connection is known
 * lost (before an op whose request depends on the card: stream.open). */
int sc__client_check(sc_client *c);
double sc__monotonic(void);

int sc__error_from_code(const char *code);

/* stream.c: a control op on the stream ("stream.stop"…). */
int sc__stream_control(sc_stream *s, const char *op);
/* stream.c: end a running stream: play out what is queued (drain) or drop
 * it, tell the daemon, reset the pipeline, then call `finished` once. */
int sc__end_stream(sc_stream *s, bool drain);
/* stream.c: sleep until the daemon signals progress (or stop/abort asks the
 * callback thread to leave); fails when the daemon is gone. */
int sc__wait_for_progress(sc_stream *s);
/* stream.c: end a futex sleep in sc__wait_for_progress from another thread
 * of ours, as a wake-up from the daemon would. */
void sc__wake_waiter(sc_stream *s);
/* watch.c: start the hang-up watcher of a futex stream (if it cannot, the
 * waits time out to look for themselves), and stop it before the stream's
 * descriptors and mapping go.  Covers: it runs and saw no hang-up yet, so a
 * futex sleep needs no timeout. */
void sc__watch_start(sc_stream *s);
void sc__watch_stop(sc_stream *s);
bool sc__watch_covers(sc_stream *s);
/* stream.c: the time info of the next block (DESIGN: from the shm timing record). */
void sc__time_info(sc_stream *s, sc_time_info *t);
/* stream.c: the latencies a time info implies (0 for a missing direction). */
void sc__latency_from(sc_stream *s, const sc_time_info *t, double *input, double *output);

/* callback.c */
int sc__callback_start(sc_stream *s);
/* Ask the thread to leave and join it; returns the end it reached itself
 * (STREAM_END_NONE when it was asked to leave). */
enum stream_end sc__callback_join(sc_stream *s);

#endif
