/* libFuzzer target: what soundcardd does with the bytes one client sends.
 *
 * The input is the byte stream of one connection.  It goes through the line
 * framer the way session.c drives it (space, receive, commit, take lines),
 * twice: in small pseudo-random reads (a line split across many reads) and in
 * reads as large as the framer takes.  Both must hand out exactly the lines
 * that splitting the stream at '\n' gives, and fail (line too long) exactly
 * when a line reaches MSG_MAX_LINE bytes.  Now and then the input is repeated
 * past MSG_MAX_LINE so the long-line paths run too.
 *
 * Every line is then handled as session.c handles it: the depth check and
 * msg_parse_request (from an exact-size heap copy, so a read past the line
 * shows under ASan -- inside cJSON only when it is compiled in, see
 * README.md -- and in place in the framer, which must agree), then the
 * reply built with msg_reply_ok or msg_reply_error.  The reply must be one
 * compact JSON line with the right id, ok and error code.  A request that
 * validates must hold only values inside PROTOCOL.md's ranges, and written
 * back out as canonical JSON it must parse to the same struct.
 *
 * Any broken rule aborts, which libFuzzer reports as a crash with the input;
 * ASan, LeakSanitizer and UBSan report the rest. */
#include "message.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REQUIRE(cond, ...)                                                           \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "fuzz_message: %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                            \
            fputc('\n', stderr);                                                     \
            abort();                                                                 \
        }                                                                            \
    } while (0)

#define MAX_ID (INT64_C(1) << 53)

/* ---- the reply the daemon would send ------------------------------------ */

static bool printable_ascii(const char *s)
{
    for (; *s; s++)
        if (*s < 0x20 || *s > 0x7e)
            return false;
    return true;
}

/* `text` is one compact line: {"id":ID,"ok":BOOL...}\n with nothing after. */
static cJSON *parse_reply(const char *text, int64_t id, bool ok)
{
    REQUIRE(text, "no reply (out of memory?)");
    size_t n = strlen(text);
    REQUIRE(n >= 2 && n <= MSG_MAX_LINE && text[n - 1] == '\n' && !memchr(text, '\n', n - 1),
            "a reply must be one line of at most %u bytes: %.200s", MSG_MAX_LINE, text);
    char head[64];
    if (id < 0)
        snprintf(head, sizeof head, "{\"id\":null,\"ok\":%s", ok ? "true" : "false");
    else
        snprintf(head, sizeof head, "{\"id\":%" PRId64 ",\"ok\":%s", id, ok ? "true" : "false");
    REQUIRE(strncmp(text, head, strlen(head)) == 0, "reply starts '%.80s', expected '%s'", text, head);
    const char *end = NULL;
    cJSON *reply = cJSON_ParseWithLengthOpts(text, n - 1, &end, false);
    REQUIRE(reply && cJSON_IsObject(reply) && end == text + n - 1, "reply is not one JSON object: %.200s",
            text);
    return reply;
}

static void check_error_reply(int64_t id, const struct msg_error *err)
{
    REQUIRE(err->message[0] && printable_ascii(err->message),
            "error %s: its message must be non-empty printable ASCII: '%s'",
            msg_error_code_name(err->code), err->message);
    char *text = msg_reply_error(id, err->code, err->message);
    cJSON *reply = parse_reply(text, id, false);
    cJSON *e = cJSON_GetObjectItemCaseSensitive(reply, "error");
    const char *code = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "code"));
    const char *message = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "message"));
    REQUIRE(code && msg_error_code_from_name(code) == err->code, "error code %s went out as %s",
            msg_error_code_name(err->code), code ? code : "(none)");
    REQUIRE(message && strcmp(message, err->message) == 0, "error message '%s' went out as '%s'",
            err->message, message ? message : "(none)");
    cJSON_Delete(reply);
    free(text);
}

/* The names a client gives are shown to everyone else in replies and
 * events: they must come back out of the JSON writer unchanged. */
static void check_name_echo(const char *name)
{
    cJSON *fields = cJSON_CreateObject();
    cJSON_AddStringToObject(fields, "name", name);
    char *text = msg_event("client.added", fields);
    REQUIRE(text && text[strlen(text) - 1] == '\n', "event line");
    cJSON *event = cJSON_Parse(text);
    const char *echoed = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(event, "name"));
    REQUIRE(echoed && strcmp(echoed, name) == 0, "name '%s' went out as '%s'", name,
            echoed ? echoed : "(none)");
    cJSON_Delete(event);
    free(text);
}

static void check_ok_reply(const struct msg_request *req)
{
    cJSON *fields = cJSON_CreateObject();
    cJSON_AddStringToObject(fields, "op", msg_op_name(req->op));
    char *text = msg_reply_ok(req->id, fields);
    cJSON *reply = parse_reply(text, req->id, true);
    const char *op = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(reply, "op"));
    REQUIRE(op && strcmp(op, msg_op_name(req->op)) == 0, "reply fields were not moved in");
    cJSON_Delete(reply);
    free(text);
    if (req->op == MSG_OP_HELLO)
        check_name_echo(req->u.hello.name);
    else if (req->op == MSG_OP_STREAM_OPEN)
        check_name_echo(req->u.open.name);
}

/* ---- what a valid request may hold -------------------------------------- */

static void check_name(const char *name)
{
    REQUIRE(memchr(name, '\0', MSG_MAX_NAME), "name not terminated within %d bytes", MSG_MAX_NAME);
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        REQUIRE(*p >= 0x20 && *p != 0x7f, "name holds control byte 0x%02x", *p);
}

static void check_ranges(const struct msg_request *r)
{
    REQUIRE(r->id >= 0 && r->id <= MAX_ID, "id %" PRId64, r->id);
    REQUIRE((unsigned)r->op < MSG_OP_COUNT, "op %d", (int)r->op);
    switch (r->op) {
    case MSG_OP_HELLO:
        REQUIRE(r->u.hello.protocol == MSG_PROTOCOL_VERSION, "protocol %" PRId64, r->u.hello.protocol);
        check_name(r->u.hello.name);
        break;
    case MSG_OP_STREAM_OPEN:
        check_name(r->u.open.name);
        REQUIRE(r->u.open.device >= -1, "device %d", r->u.open.device);
        REQUIRE(r->u.open.input_channels <= MSG_MAX_CHANNELS &&
                    r->u.open.output_channels <= MSG_MAX_CHANNELS &&
                    (r->u.open.input_channels || r->u.open.output_channels),
                "channels %u in, %u out", r->u.open.input_channels, r->u.open.output_channels);
        REQUIRE(r->u.open.buffer_frames <= MSG_MAX_BUFFER_FRAMES &&
                    r->u.open.wake_frames <= MSG_MAX_BUFFER_FRAMES,
                "buffer %u, wake %u frames", r->u.open.buffer_frames, r->u.open.wake_frames);
        break;
    case MSG_OP_STREAM_SET:
        REQUIRE(r->u.set.has_gain || r->u.set.has_mute || r->u.set.has_callback_realtime,
                "stream.set without a field");
        REQUIRE(!r->u.set.has_gain || (isfinite(r->u.set.gain) && r->u.set.gain >= 0 &&
                                       r->u.set.gain <= MSG_MAX_GAIN),
                "gain %g", r->u.set.gain);
        break;
    case MSG_OP_SUBSCRIBE:
        REQUIRE((r->u.subscribe.events & ~(uint32_t)MSG_EVENT_ALL) == 0, "events 0x%x",
                r->u.subscribe.events);
        break;
    default:
        break;
    }
}

/* ---- the request written back out ---------------------------------------- */

struct text {
    char buf[1024];
    size_t len;
};

__attribute__((format(printf, 2, 3)))
static void put(struct text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->len, sizeof t->buf - t->len, fmt, ap);
    va_end(ap);
    REQUIRE(n >= 0 && (size_t)n < sizeof t->buf - t->len, "canonical request too long");
    t->len += (size_t)n;
}

/* A valid name has no control characters: only '"' and '\' need escaping. */
static void put_name(struct text *t, const char *field, const char *name)
{
    if (!name[0])
        return; /* absent and "" mean the same */
    put(t, ",\"%s\":\"", field);
    for (; *name; name++)
        put(t, "%s%c", (*name == '"' || *name == '\\') ? "\\" : "", *name);
    put(t, "\"");
}

static void canonical(const struct msg_request *r, struct text *t)
{
    t->len = 0;
    put(t, "{\"id\":%" PRId64 ",\"op\":\"%s\"", r->id, msg_op_name(r->op));
    switch (r->op) {
    case MSG_OP_HELLO:
        put(t, ",\"protocol\":%" PRId64, r->u.hello.protocol);
        put_name(t, "name", r->u.hello.name);
        break;
    case MSG_OP_STREAM_OPEN:
        put_name(t, "name", r->u.open.name);
        put(t, ",\"device\":%d,\"input_channels\":%u,\"output_channels\":%u", r->u.open.device,
            r->u.open.input_channels, r->u.open.output_channels);
        if (r->u.open.buffer_frames)
            put(t, ",\"buffer_frames\":%u", r->u.open.buffer_frames);
        if (r->u.open.wake_frames)
            put(t, ",\"wake_frames\":%u", r->u.open.wake_frames);
        if (r->u.open.wake_futex)
            put(t, ",\"wakeup\":\"futex\"");
        break;
    case MSG_OP_STREAM_START:
    case MSG_OP_STREAM_STOP:
    case MSG_OP_STREAM_ABORT:
    case MSG_OP_STREAM_CLOSE:
        put(t, ",\"stream\":%u", r->u.stream.stream);
        break;
    case MSG_OP_STREAM_SET:
        put(t, ",\"stream\":%u", r->u.set.stream);
        if (r->u.set.has_gain)
            put(t, ",\"gain\":%.9g", (double)r->u.set.gain);
        if (r->u.set.has_mute)
            put(t, ",\"mute\":%s", r->u.set.mute ? "true" : "false");
        if (r->u.set.has_callback_realtime)
            put(t, ",\"callback_realtime\":%s", r->u.set.callback_realtime ? "true" : "false");
        break;
    case MSG_OP_SUBSCRIBE: {
        static const char *const sets[] = {"clients", "streams", "server"};
        put(t, ",\"events\":[");
        for (unsigned i = 0, n = 0; i < 3; i++)
            if (r->u.subscribe.events & (1u << i))
                put(t, "%s\"%s\"", n++ ? "," : "", sets[i]);
        put(t, "]");
        break;
    }
    default:
        break;
    }
    put(t, "}");
}

/* Parse from an exact-size heap copy: nothing readable after the line. */
static enum msg_error_code parse_copy(const char *line, size_t len, struct msg_request *req,
                                      struct msg_error *err)
{
    char *copy = malloc(len ? len : 1);
    REQUIRE(copy, "out of memory");
    memcpy(copy, line, len);
    enum msg_error_code code = msg_parse_request(copy, len, req, err);
    free(copy);
    return code;
}

static void check_round_trip(const struct msg_request *req)
{
    struct text t;
    canonical(req, &t);
    struct msg_request again;
    struct msg_error err;
    enum msg_error_code code = parse_copy(t.buf, t.len, &again, &err);
    REQUIRE(code == MSG_OK, "canonical form '%s' rejected: %s", t.buf, err.message);
    REQUIRE(memcmp(&again, req, sizeof again) == 0, "canonical form '%s' parses to another request",
            t.buf);
}

/* ---- one line, as session.c's handle_line sees it ------------------------- */

static void handle_line(char *line, size_t len)
{
    struct msg_request req, in_place;
    struct msg_error err, in_place_err;
    enum msg_error_code code = parse_copy(line, len, &req, &err);
    REQUIRE(code == err.code && (unsigned)code < MSG_ERR_COUNT, "returned %d, err.code %d", (int)code,
            (int)err.code);

    /* The daemon parses in place, with the framer's NUL after the line. */
    enum msg_error_code code2 = msg_parse_request(line, len, &in_place, &in_place_err);
    REQUIRE(code2 == code && strcmp(in_place_err.message, err.message) == 0 &&
                memcmp(&in_place, &req, sizeof req) == 0,
            "in place: %s '%s'; from a copy: %s '%s'", msg_error_code_name(code2),
            in_place_err.message, msg_error_code_name(code), err.message);

    if (!msg_depth_ok(line, len, MSG_MAX_DEPTH))
        REQUIRE(code == MSG_ERR_BAD_REQUEST && req.id == -1, "a too deep line got %s with id %" PRId64,
                msg_error_code_name(code), req.id);
    REQUIRE(req.id >= -1 && req.id <= MAX_ID, "id %" PRId64, req.id);

    if (code == MSG_OK) {
        check_ranges(&req);
        check_round_trip(&req);
        check_ok_reply(&req);
    } else {
        check_error_reply(req.id, &err);
    }
}

/* ---- the framer, driven as session.c's on_readable drives it ------------- */

static uint64_t next_random(uint64_t *state)
{
    /* xorshift64*: deterministic per input, so a crash reproduces. */
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * UINT64_C(2685821657736338717);
}

static uint64_t hash(const uint8_t *data, size_t len)
{
    uint64_t h = UINT64_C(1469598103934665603);
    for (size_t i = 0; i < len; i++)
        h = (h ^ data[i]) * UINT64_C(1099511628211);
    return h | 1;
}

static void check_framer_state(const struct msg_framer *f)
{
    REQUIRE(f->consumed <= f->scanned && f->scanned <= f->used && f->used <= sizeof f->buf,
            "framer state consumed %zu scanned %zu used %zu", f->consumed, f->scanned, f->used);
}

/* Feeds `stream` through a framer in reads of at most `max_read` bytes
 * (0: pseudo-random sizes from `seed`), checking every line against the
 * stream split at '\n'.  Lines that start before `handle_below` go to
 * handle_line. */
static void run_framer(const uint8_t *stream, size_t len, size_t max_read, uint64_t seed,
                       size_t handle_below)
{
    struct msg_framer *f = malloc(sizeof *f); /* on the heap: ASan sees its edges */
    REQUIRE(f, "out of memory");
    msg_framer_init(f);
    size_t fed = 0;  /* bytes of the stream given to the framer */
    size_t next = 0; /* where the next line starts */
    size_t clean = 0; /* stream[next, clean) holds no '\n' (scanned once) */
    for (;;) {
        size_t room;
        char *space = msg_framer_space(f, &room);
        check_framer_state(f);
        REQUIRE(room == sizeof f->buf - (fed - next), "room %zu with %zu bytes pending", room,
                fed - next);
        size_t want = max_read;
        if (!want) {
            bool small = next_random(&seed) & 3; /* mostly a few bytes, sometimes a lot */
            want = 1 + next_random(&seed) % (small ? 16 : 4096);
        }
        size_t n = len - fed < want ? len - fed : want;
        n = n < room ? n : room;
        memcpy(space, stream + fed, n);
        msg_framer_commit(f, n);
        fed += n;

        char *line;
        size_t line_len;
        int r;
        while ((r = msg_framer_next(f, &line, &line_len)) == 1) {
            check_framer_state(f);
            const uint8_t *nl = memchr(stream + clean, '\n', fed - clean);
            REQUIRE(nl, "a line before its '\\n' arrived");
            size_t expected = (size_t)(nl - (stream + next));
            REQUIRE(line_len == expected && memcmp(line, stream + next, line_len) == 0 &&
                        line[line_len] == '\0',
                    "line at byte %zu: %zu bytes, expected %zu", next, line_len, expected);
            REQUIRE(line_len < MSG_MAX_LINE, "a line of %zu bytes was accepted", line_len);
            if (next < handle_below)
                handle_line(line, line_len);
            next += line_len + 1;
            clean = next;
        }
        if (r < 0) {
            /* The connection is closed now: the pending line must be too long. */
            REQUIRE(r == -EMSGSIZE, "framer error %d", r);
            REQUIRE(fed - next >= MSG_MAX_LINE && !memchr(stream + next, '\n', MSG_MAX_LINE),
                    "'line too long' with %zu bytes pending", fed - next);
            REQUIRE(msg_framer_next(f, &line, &line_len) == -EMSGSIZE, "the framing error must stay");
            break;
        }
        REQUIRE(r == 0 && !memchr(stream + clean, '\n', fed - clean) && fed - next < MSG_MAX_LINE,
                "no line handed out with %zu bytes pending", fed - next);
        clean = fed;
        if (fed == len)
            break;
    }
    free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint64_t seed = hash(data, size);
    /* One input in sixteen is repeated past MSG_MAX_LINE: long lines. */
    size_t reps = (seed >> 8) % 16 == 0 ? (MSG_MAX_LINE + MSG_MAX_LINE / 2) / size + 1 : 1;
    uint8_t *stream = malloc(size * reps);
    REQUIRE(stream, "out of memory");
    for (size_t i = 0; i < reps; i++)
        memcpy(stream + i * size, data, size);
    /* Lines are handled from the first copy only: the repeats are there for
     * the framer, and parsing thousands of copies would slow the search. */
    run_framer(stream, size * reps, 0, seed, size);
    run_framer(stream, size * reps, MSG_MAX_LINE, seed, 0);
    free(stream);
    return 0;
}
