/* A stream as the loop thread sees it: its engine part, its shared memory
 * and wake-up pipe, its name and owner. */
#ifndef SC_DAEMON_STREAM_H
#define SC_DAEMON_STREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "engine.h"
#include "message.h"

struct session;

struct stream {
    struct engine_stream rt;   /* first: the engine hands back &rt */
    uint32_t id;
    char name[MSG_MAX_NAME];
    struct session *owner;     /* NULL once its client has gone */
    struct stream *next;       /* server's list */
    struct stream *owner_next; /* owner's list */
    int memfd;
    int wake_read_fd;          /* the wake-up pipe's read end, until sent to the client */
    bool removing;             /* ENGINE_CMD_REMOVE submitted: invisible to ops */
    int callback_realtime;     /* owner's report: -1 no callback thread, 0 normal, 1 SCHED_FIFO */
};

struct stream_request {
    const char *name;
    uint32_t input_channels, output_channels;
    uint32_t buffer_frames;    /* 0: default */
    uint32_t wake_frames;      /* 0: one card period */
    bool wake_futex;           /* wake through the shm's futex word, not the pipe */
    uint32_t rate, period;     /* the card's */
};

/* Create the memfd (sealed) and the wake-up pipe.  Returns NULL with
 * errno-style *error set when the system refuses. */
struct stream *stream_create(uint32_t id, const struct stream_request *req, int *error);
/* The client has its copies (memfd, pipe's read end): the daemon keeps only
 * the write end, which no client ever holds. */
void stream_sent(struct stream *st);
void stream_destroy(struct stream *st);

static inline struct stream *stream_from_rt(struct engine_stream *rt)
{
    return (struct stream *)rt;
}

const char *stream_state_name(uint32_t state);

#endif
