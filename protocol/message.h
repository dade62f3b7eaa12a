/* Control messages: JSON objects, one per '\n'-terminated line.
 *
 * This module is what both sides share about the wire format: the line
 * framer with its size limit, the nesting-depth check (run before cJSON ever
 * sees the text, so a deep line cannot recurse), and the validation of every
 * request field into a typed struct.  The daemon acts only on a validated
 * struct msg_request, never on raw JSON.  PROTOCOL.md is the reference. */
#ifndef SC_PROTOCOL_MESSAGE_H
#define SC_PROTOCOL_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define MSG_PROTOCOL_VERSION 1
#define MSG_MAX_LINE (64u * 1024u)  /* bytes, including the '\n' */
#define MSG_MAX_DEPTH 16
#define MSG_MAX_NAME 64             /* bytes of a client or stream name, with NUL */
#define MSG_MAX_CHANNELS 64
#define MSG_MAX_BUFFER_FRAMES (1u << 20)
#define MSG_MAX_GAIN 16.0

enum msg_op {
    MSG_OP_HELLO,
    MSG_OP_SERVER_INFO,
    MSG_OP_DEVICES_LIST,
    MSG_OP_STREAM_OPEN,
    MSG_OP_STREAM_START,
    MSG_OP_STREAM_STOP,
    MSG_OP_STREAM_ABORT,
    MSG_OP_STREAM_CLOSE,
    MSG_OP_STREAM_SET,
    MSG_OP_STATS,
    MSG_OP_SUBSCRIBE,
    MSG_OP_COUNT
};

enum msg_error_code {
    MSG_OK = 0,
    MSG_ERR_BAD_REQUEST,
    MSG_ERR_UNSUPPORTED_VERSION,
    MSG_ERR_UNKNOWN_OP,
    MSG_ERR_NOT_FOUND,
    MSG_ERR_INVALID_STATE,
    MSG_ERR_LIMIT,
    MSG_ERR_DENIED,
    MSG_ERR_BACKEND,
    MSG_ERR_INTERNAL,
    MSG_ERR_COUNT
};

struct msg_error {
    enum msg_error_code code;
    char message[160];   /* names the field and what was wrong with it */
};

/* Events a client may subscribe to (bit mask). */
enum msg_event_mask {
    MSG_EVENT_CLIENTS = 1u << 0,  /* client.added, client.removed */
    MSG_EVENT_STREAMS = 1u << 1,  /* stream.added, stream.removed, stream.state */
    MSG_EVENT_SERVER = 1u << 2,   /* server.state (backend errors, xruns) */
    MSG_EVENT_ALL = 7u
};

struct msg_request {
    int64_t id;          /* 0 .. 2^53; -1 when the line had no usable id */
    enum msg_op op;
    union {
        struct {
            int64_t protocol;
            char name[MSG_MAX_NAME];
        } hello;
        struct {
            char name[MSG_MAX_NAME];
            int32_t device;            /* -1: default */
            uint32_t input_channels;   /* 0..MSG_MAX_CHANNELS */
            uint32_t output_channels;  /* 0..MSG_MAX_CHANNELS, not both 0 */
            uint32_t buffer_frames;    /* 1..MSG_MAX_BUFFER_FRAMES; 0 when absent */
            uint32_t wake_frames;      /* 1..MSG_MAX_BUFFER_FRAMES; 0 when absent */
            bool wake_futex;           /* "wakeup":"futex"; the pipe when absent */
        } open;
        struct {
            uint32_t stream;
        } stream;                      /* start, stop, abort, close */
        struct {
            uint32_t stream;
            bool has_gain, has_mute, has_callback_realtime;
            float gain;                /* 0..MSG_MAX_GAIN, finite */
            bool mute;
            bool callback_realtime;    /* owner's report: its callback thread is SCHED_FIFO */
        } set;
        struct {
            uint32_t events;           /* enum msg_event_mask; all when absent */
        } subscribe;
    } u;
};

const char *msg_op_name(enum msg_op op);
const char *msg_error_code_name(enum msg_error_code code);
/* The code named by `name` ("not_found"…), or MSG_ERR_INTERNAL if unknown. */
enum msg_error_code msg_error_code_from_name(const char *name);

/* True when the JSON text's bracket nesting (outside strings) stays within
 * max_depth.  Runs before parsing so cJSON never recurses deeply. */
bool msg_depth_ok(const char *text, size_t len, int max_depth);

/* Parse and validate one request line (without its '\n').  Returns MSG_OK with
 * *req filled, or an error code with err->message naming the cause; req->id
 * is set whenever the line had a valid id, so the error reply can carry it. */
enum msg_error_code msg_parse_request(const char *line, size_t len, struct msg_request *req,
                                      struct msg_error *err);

/* Reply and event builders.  They return a malloc'ed '\n'-terminated line
 * (caller frees) or NULL on allocation failure.  `fields` (may be NULL) is
 * consumed: its members are moved into the message. */
char *msg_reply_ok(int64_t id, cJSON *fields);
char *msg_reply_error(int64_t id, enum msg_error_code code, const char *message);
char *msg_event(const char *name, cJSON *fields);

/* Line framer: collects bytes from a stream socket and hands out complete
 * lines.  A line longer than MSG_MAX_LINE is a framing error: the connection
 * cannot be resynchronised and must be closed. */
struct msg_framer {
    char buf[MSG_MAX_LINE];
    size_t used;     /* bytes in buf */
    size_t scanned;  /* bytes of buf known to hold no '\n' */
    size_t consumed; /* bytes of buf already handed out as lines */
};

void msg_framer_init(struct msg_framer *f);
/* Space to receive into and how much of it there is (0: the framer is full,
 * which msg_framer_next reports as an over-long line). */
char *msg_framer_space(struct msg_framer *f, size_t *len);
void msg_framer_commit(struct msg_framer *f, size_t len);
/* Next complete line: returns 1 with *line and *len set (the '\n' replaced by
 * NUL, not counted in len), 0 when no complete line is buffered, -EMSGSIZE
 * when a line exceeds MSG_MAX_LINE. */
int msg_framer_next(struct msg_framer *f, char **line, size_t *len);

#endif
