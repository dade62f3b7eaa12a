/* Control messages: line framing, depth check, request validation, reply and
 * event building.  PROTOCOL.md is the reference for every rule checked here. */
#include "message.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ID (INT64_C(1) << 53) /* largest integer a double holds exactly */

/* ---- names ------------------------------------------------------------- */

static const char *const error_names[MSG_ERR_COUNT] = {
    [MSG_OK] = "ok",
    [MSG_ERR_BAD_REQUEST] = "bad_request",
    [MSG_ERR_UNSUPPORTED_VERSION] = "unsupported_version",
    [MSG_ERR_UNKNOWN_OP] = "unknown_op",
    [MSG_ERR_NOT_FOUND] = "not_found",
    [MSG_ERR_INVALID_STATE] = "invalid_state",
    [MSG_ERR_LIMIT] = "limit",
    [MSG_ERR_DENIED] = "denied",
    [MSG_ERR_BACKEND] = "backend",
    [MSG_ERR_INTERNAL] = "internal",
};

const char *msg_error_code_name(enum msg_error_code code)
{
    /* Used to build wire messages: never hand out a name that is not a code. */
    if ((unsigned)code >= MSG_ERR_COUNT)
        return error_names[MSG_ERR_INTERNAL];
    return error_names[code];
}

enum msg_error_code msg_error_code_from_name(const char *name)
{
    /* Only error codes: an error object saying "ok" must not read as success. */
    for (int c = MSG_ERR_BAD_REQUEST; name && c < MSG_ERR_COUNT; c++)
        if (strcmp(name, error_names[c]) == 0)
            return (enum msg_error_code)c;
    return MSG_ERR_INTERNAL;
}

/* ---- errors ------------------------------------------------------------ */

__attribute__((format(printf, 3, 4)))
static enum msg_error_code fail(struct msg_error *err, enum msg_error_code code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    err->code = code;
    return code;
}

/* Client text echoed in an error message: short and plain ASCII, so the reply
 * stays readable and valid UTF-8 whatever the client sent. */
static const char *echo(char out[40], const char *s)
{
    size_t i = 0;
    for (; s[i] && i < 32; i++)
        out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    strcpy(out + i, s[i] ? "..." : "");
    return out;
}

/* ---- depth ------------------------------------------------------------- */

bool msg_depth_ok(const char *text, size_t len, int max_depth)
{
    int depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\')
                i++; /* the escaped character cannot end the string */
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max_depth)
                return false;
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
    }
    return true;
}

/* ---- field validators ---------------------------------------------------
 * Each returns 1 (present and valid, *out set), 0 (absent and optional,
 * *out untouched so the caller's default stands) or -1 (err filled). */

static int get_int(const cJSON *obj, const char *field, bool required, int64_t lo, int64_t hi,
                   int64_t *out, struct msg_error *err)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, field);
    if (!item && !required)
        return 0;
    if (!item) {
        fail(err, MSG_ERR_BAD_REQUEST, "field '%s' is required: an integer %" PRId64 "..%" PRId64,
             field, lo, hi);
        return -1;
    }
    /* Range first: converting an out-of-range double to int64_t is undefined. */
    double d = cJSON_IsNumber(item) ? item->valuedouble : NAN;
    if (!(d >= (double)lo && d <= (double)hi) || d != (double)(int64_t)d) {
        fail(err, MSG_ERR_BAD_REQUEST, "field '%s' must be an integer %" PRId64 "..%" PRId64,
             field, lo, hi);
        return -1;
    }
    *out = (int64_t)d;
    return 1;
}

static int get_number(const cJSON *obj, const char *field, double lo, double hi, double *out,
                      struct msg_error *err)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, field);
    if (!item)
        return 0;
    /* cJSON turns 1e999 into infinity: the range test rejects it. */
    double d = cJSON_IsNumber(item) ? item->valuedouble : NAN;
    if (!(isfinite(d) && d >= lo && d <= hi)) {
        fail(err, MSG_ERR_BAD_REQUEST, "field '%s' must be a finite number %g..%g", field, lo, hi);
        return -1;
    }
    *out = d;
    return 1;
}

static int get_bool(const cJSON *obj, const char *field, bool *out, struct msg_error *err)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, field);
    if (!item)
        return 0;
    if (!cJSON_IsBool(item)) {
        fail(err, MSG_ERR_BAD_REQUEST, "field '%s' must be true or false", field);
        return -1;
    }
    *out = cJSON_IsTrue(item);
    return 1;
}

/* Names are shown to other clients (stats, events), so they must be clean
 * UTF-8 text: one client must not be able to break another's JSON decoder or
 * terminal.  Rejects bad sequences, overlongs, surrogates, C0, DEL and C1. */
static bool name_text_ok(const unsigned char *s)
{
    static const uint32_t min_cp[4] = {0, 0x80, 0x800, 0x10000};
    while (*s) {
        uint32_t cp;
        int more;
        if (*s < 0x80)
            cp = *s, more = 0;
        else if ((*s & 0xe0) == 0xc0)
            cp = *s & 0x1fu, more = 1;
        else if ((*s & 0xf0) == 0xe0)
            cp = *s & 0x0fu, more = 2;
        else if ((*s & 0xf8) == 0xf0)
            cp = *s & 0x07u, more = 3;
        else
            return false;
        s++;
        for (int i = 0; i < more; i++, s++) {
            if ((*s & 0xc0) != 0x80) /* also stops at the terminating NUL */
                return false;
            cp = cp << 6 | (*s & 0x3fu);
        }
        if (cp < min_cp[more] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
            return false;
    }
    return true;
}

static int get_name(const cJSON *obj, const char *field, char out[MSG_MAX_NAME],
                    struct msg_error *err)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, field);
    if (!item)
        return 0;
    if (!cJSON_IsString(item) || strlen(item->valuestring) > MSG_MAX_NAME - 1) {
        fail(err, MSG_ERR_BAD_REQUEST, "field '%s' must be a string of at most %d bytes", field,
             MSG_MAX_NAME - 1);
        return -1;
    }
    if (!name_text_ok((const unsigned char *)item->valuestring)) {
        fail(err, MSG_ERR_BAD_REQUEST, "field '%s' must be UTF-8 text without control characters",
             field);
        return -1;
    }
    strcpy(out, item->valuestring);
    return 1;
}

/* ---- per-op validators -------------------------------------------------- */

typedef enum msg_error_code (*op_validator)(const cJSON *obj, struct msg_request *req,
                                            struct msg_error *err);

static enum msg_error_code check_hello(const cJSON *obj, struct msg_request *req,
                                       struct msg_error *err)
{
    int64_t protocol;
    if (get_int(obj, "protocol", true, 0, INT32_MAX, &protocol, err) < 0)
        return err->code;
    if (protocol != MSG_PROTOCOL_VERSION)
        return fail(err, MSG_ERR_UNSUPPORTED_VERSION,
                    "field 'protocol': version %" PRId64 " is not supported (this server speaks %d)",
                    protocol, MSG_PROTOCOL_VERSION);
    req->u.hello.protocol = protocol;
    if (get_name(obj, "name", req->u.hello.name, err) < 0)
        return err->code;
    return MSG_OK;
}

static enum msg_error_code check_open(const cJSON *obj, struct msg_request *req,
                                      struct msg_error *err)
{
    int64_t device = -1, in = 0, out = 0, buffer = 0, wake = 0;
    if (get_name(obj, "name", req->u.open.name, err) < 0 ||
        get_int(obj, "device", false, -1, INT32_MAX, &device, err) < 0 ||
        get_int(obj, "input_channels", false, 0, MSG_MAX_CHANNELS, &in, err) < 0 ||
        get_int(obj, "output_channels", false, 0, MSG_MAX_CHANNELS, &out, err) < 0 ||
        get_int(obj, "buffer_frames", false, 1, MSG_MAX_BUFFER_FRAMES, &buffer, err) < 0 ||
        get_int(obj, "wake_frames", false, 1, MSG_MAX_BUFFER_FRAMES, &wake, err) < 0)
        return err->code;
    if (in == 0 && out == 0)
        return fail(err, MSG_ERR_BAD_REQUEST,
                    "fields 'input_channels' and 'output_channels' must not both be 0");
    const cJSON *wakeup = cJSON_GetObjectItemCaseSensitive(obj, "wakeup");
    if (wakeup && !(cJSON_IsString(wakeup) && (strcmp(wakeup->valuestring, "pipe") == 0 ||
                                               strcmp(wakeup->valuestring, "futex") == 0)))
        return fail(err, MSG_ERR_BAD_REQUEST, "field 'wakeup' must be \"pipe\" or \"futex\"");
    req->u.open.wake_futex = wakeup && strcmp(wakeup->valuestring, "futex") == 0;
    req->u.open.device = (int32_t)device;
    req->u.open.input_channels = (uint32_t)in;
    req->u.open.output_channels = (uint32_t)out;
    req->u.open.buffer_frames = (uint32_t)buffer;
    req->u.open.wake_frames = (uint32_t)wake;
    return MSG_OK;
}

static int get_stream(const cJSON *obj, uint32_t *out, struct msg_error *err)
{
    int64_t stream;
    if (get_int(obj, "stream", true, 0, UINT32_MAX, &stream, err) < 0)
        return -1;
    *out = (uint32_t)stream;
    return 1;
}

static enum msg_error_code check_stream(const cJSON *obj, struct msg_request *req,
                                        struct msg_error *err)
{
    return get_stream(obj, &req->u.stream.stream, err) < 0 ? err->code : MSG_OK;
}

static enum msg_error_code check_set(const cJSON *obj, struct msg_request *req,
                                     struct msg_error *err)
{
    double gain = 0;
    if (get_stream(obj, &req->u.set.stream, err) < 0)
        return err->code;
    int has_gain = get_number(obj, "gain", 0.0, MSG_MAX_GAIN, &gain, err);
    if (has_gain < 0)
        return err->code;
    int has_mute = get_bool(obj, "mute", &req->u.set.mute, err);
    if (has_mute < 0)
        return err->code;
    int has_rt = get_bool(obj, "callback_realtime", &req->u.set.callback_realtime, err);
    if (has_rt < 0)
        return err->code;
    if (!has_gain && !has_mute && !has_rt)
        return fail(err, MSG_ERR_BAD_REQUEST,
                    "stream.set needs field 'gain', 'mute' or 'callback_realtime'");
    req->u.set.has_gain = has_gain;
    req->u.set.has_mute = has_mute;
    req->u.set.has_callback_realtime = has_rt;
    req->u.set.gain = (float)gain;
    return MSG_OK;
}

static const struct {
    const char *name;
    uint32_t bit;
} event_sets[] = {
    {"clients", MSG_EVENT_CLIENTS},
    {"streams", MSG_EVENT_STREAMS},
    {"server", MSG_EVENT_SERVER},
};

static enum msg_error_code check_subscribe(const cJSON *obj, struct msg_request *req,
                                           struct msg_error *err)
{
    const cJSON *events = cJSON_GetObjectItemCaseSensitive(obj, "events");
    if (!events) {
        req->u.subscribe.events = MSG_EVENT_ALL;
        return MSG_OK;
    }
    if (!cJSON_IsArray(events))
        return fail(err, MSG_ERR_BAD_REQUEST,
                    "field 'events' must be an array of \"clients\", \"streams\", \"server\"");
    /* An empty array is valid: it unsubscribes from everything. */
    uint32_t mask = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, events) {
        if (!cJSON_IsString(e))
            return fail(err, MSG_ERR_BAD_REQUEST,
                        "field 'events' must hold only the strings \"clients\", \"streams\", \"server\"");
        size_t i = 0;
        while (i < sizeof event_sets / sizeof event_sets[0] && strcmp(e->valuestring, event_sets[i].name))
            i++;
        if (i == sizeof event_sets / sizeof event_sets[0]) {
            char shown[40];
            return fail(err, MSG_ERR_BAD_REQUEST,
                        "field 'events': unknown event set '%s' (known: clients, streams, server)",
                        echo(shown, e->valuestring));
        }
        mask |= event_sets[i].bit;
    }
    req->u.subscribe.events = mask;
    return MSG_OK;
}

/* Indexed by enum msg_op; ops without fields have no validator. */
static const struct {
    const char *name;
    op_validator check;
} ops[MSG_OP_COUNT] = {
    [MSG_OP_HELLO] = {"hello", check_hello},
    [MSG_OP_SERVER_INFO] = {"server.info", NULL},
    [MSG_OP_DEVICES_LIST] = {"devices.list", NULL},
    [MSG_OP_STREAM_OPEN] = {"stream.open", check_open},
    [MSG_OP_STREAM_START] = {"stream.start", check_stream},
    [MSG_OP_STREAM_STOP] = {"stream.stop", check_stream},
    [MSG_OP_STREAM_ABORT] = {"stream.abort", check_stream},
    [MSG_OP_STREAM_CLOSE] = {"stream.close", check_stream},
    [MSG_OP_STREAM_SET] = {"stream.set", check_set},
    [MSG_OP_STATS] = {"stats", NULL},
    [MSG_OP_SUBSCRIBE] = {"subscribe", check_subscribe},
};

const char *msg_op_name(enum msg_op op)
{
    return (unsigned)op < MSG_OP_COUNT ? ops[op].name : "unknown";
}

/* ---- request ------------------------------------------------------------ */

static enum msg_error_code check_request(const cJSON *root, struct msg_request *req,
                                         struct msg_error *err)
{
    if (!cJSON_IsObject(root))
        return fail(err, MSG_ERR_BAD_REQUEST, "a request must be a JSON object");
    int64_t id;
    if (get_int(root, "id", true, 0, MAX_ID, &id, err) < 0)
        return err->code;
    req->id = id;

    const cJSON *op = cJSON_GetObjectItemCaseSensitive(root, "op");
    if (!op)
        return fail(err, MSG_ERR_BAD_REQUEST, "field 'op' is required: a string");
    if (!cJSON_IsString(op))
        return fail(err, MSG_ERR_BAD_REQUEST, "field 'op' must be a string");
    int i = 0;
    while (i < MSG_OP_COUNT && strcmp(op->valuestring, ops[i].name) != 0)
        i++;
    if (i == MSG_OP_COUNT) {
        char shown[40];
        return fail(err, MSG_ERR_UNKNOWN_OP, "field 'op': unknown op '%s'",
                    echo(shown, op->valuestring));
    }
    req->op = (enum msg_op)i;
    return ops[i].check ? ops[i].check(root, req, err) : MSG_OK;
}

static bool is_json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* cJSON ends a string at U+0000: "stats\u0000x" would read as the op
 * "stats" and a name would lose its tail unseen.  Returns NULL when the text
 * has no \u0000 escape, else a malloc'ed copy in which each one is \u0001:
 * a control character that every check rejects (a name, an op, an event
 * set), in the same number of bytes.  *failed: out of memory. */
static char *without_nul_escapes(const char *text, size_t len, bool *failed)
{
    char *copy = NULL;
    bool in_string = false;
    *failed = false;
    for (size_t i = 0; i < len; i++) {
        if (!in_string) {
            in_string = text[i] == '"';
        } else if (text[i] == '"') {
            in_string = false;
        } else if (text[i] == '\\') {
            if (len - i >= 6 && memcmp(text + i + 1, "u0000", 5) == 0) {
                if (!copy) {
                    if (!(copy = malloc(len))) {
                        *failed = true;
                        return NULL;
                    }
                    memcpy(copy, text, len);
                }
                copy[i + 5] = '1';
            }
            i++; /* the escaped character cannot end the string */
        }
    }
    return copy;
}

/* The JSON text of a line, its depth checked: parsed and validated. */
static enum msg_error_code parse_text(const char *line, size_t len, struct msg_request *req,
                                      struct msg_error *err)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(line, len, &end, false);
    if (!root) {
        size_t at = (end && end >= line && end <= line + len) ? (size_t)(end - line) : 0;
        return fail(err, MSG_ERR_BAD_REQUEST, "invalid JSON near byte %zu", at);
    }
    /* The line's length, not a NUL, ends the text: anything after the value
     * other than whitespace (a second value, a NUL byte) is an error. */
    for (const char *p = end; p < line + len; p++) {
        if (!is_json_space(*p)) {
            cJSON_Delete(root);
            return fail(err, MSG_ERR_BAD_REQUEST, "invalid JSON: unexpected text at byte %zu",
                        (size_t)(p - line));
        }
    }
    enum msg_error_code code = check_request(root, req, err);
    cJSON_Delete(root);
    return code;
}

enum msg_error_code msg_parse_request(const char *line, size_t len, struct msg_request *req,
                                      struct msg_error *err)
{
    memset(req, 0, sizeof *req);
    req->id = -1;
    err->code = MSG_OK;
    err->message[0] = '\0';

    if (len > MSG_MAX_LINE - 1)
        return fail(err, MSG_ERR_LIMIT, "line longer than %u bytes", MSG_MAX_LINE - 1);
    if (len == 0)
        return fail(err, MSG_ERR_BAD_REQUEST, "empty line: a request is a JSON object");
    /* Before cJSON: its parser recurses once per nesting level. */
    if (!msg_depth_ok(line, len, MSG_MAX_DEPTH))
        return fail(err, MSG_ERR_BAD_REQUEST, "JSON nested deeper than %d levels", MSG_MAX_DEPTH);
    bool no_memory;
    char *patched = without_nul_escapes(line, len, &no_memory);
    if (no_memory)
        return fail(err, MSG_ERR_INTERNAL, "out of memory");
    enum msg_error_code code = parse_text(patched ? patched : line, len, req, err);
    free(patched);
    return code;
}

/* ---- replies and events ------------------------------------------------- */

/* Adds `item` (may be NULL after a failed create) or frees it on failure. */
static bool add(cJSON *obj, const char *name, cJSON *item)
{
    if (item && cJSON_AddItemToObject(obj, name, item))
        return true;
    cJSON_Delete(item);
    return false;
}

/* cJSON prints 2^53 as 9.00719925474099e+15, which is another number: ids
 * go out as raw decimal digits. */
static cJSON *id_item(int64_t id)
{
    if (id < 0)
        return cJSON_CreateNull();
    char digits[24];
    snprintf(digits, sizeof digits, "%" PRId64, id);
    return cJSON_CreateRaw(digits);
}

/* Consumes `msg` and `fields`: moves the members of `fields`, in order, after
 * those of `msg` and prints the result as one malloc'ed line (free()able
 * whatever allocator hooks cJSON was given).  `ok` false: a step before
 * failed, return NULL. */
static char *finish(cJSON *msg, bool ok, cJSON *fields)
{
    cJSON *item;
    while (ok && fields && (item = fields->child) != NULL) {
        cJSON_DetachItemViaPointer(fields, item);
        ok = add(msg, item->string, item); /* no name: fields was not an object */
    }
    cJSON_Delete(fields);
    char *text = ok ? cJSON_PrintUnformatted(msg) : NULL;
    cJSON_Delete(msg);
    if (!text)
        return NULL;
    size_t n = strlen(text);
    char *line = malloc(n + 2);
    if (line) {
        memcpy(line, text, n);
        line[n] = '\n';
        line[n + 1] = '\0';
    }
    cJSON_free(text);
    return line;
}

char *msg_reply_ok(int64_t id, cJSON *fields)
{
    cJSON *msg = cJSON_CreateObject();
    return finish(msg, msg && add(msg, "id", id_item(id)) && add(msg, "ok", cJSON_CreateTrue()),
                  fields);
}

char *msg_reply_error(int64_t id, enum msg_error_code code, const char *message)
{
    cJSON *fields = cJSON_CreateObject();
    cJSON *error = cJSON_AddObjectToObject(fields, "error"); /* NULL if fields is */
    bool ok = error && add(error, "code", cJSON_CreateString(msg_error_code_name(code))) &&
              add(error, "message", cJSON_CreateString(message ? message : ""));
    cJSON *msg = cJSON_CreateObject();
    return finish(msg, ok && msg && add(msg, "id", id_item(id)) &&
                           add(msg, "ok", cJSON_CreateFalse()), fields);
}

char *msg_event(const char *name, cJSON *fields)
{
    cJSON *msg = cJSON_CreateObject();
    return finish(msg, msg && name && add(msg, "event", cJSON_CreateString(name)), fields);
}

/* ---- framer -------------------------------------------------------------- */

void msg_framer_init(struct msg_framer *f)
{
    f->used = 0;
    f->scanned = 0;
    f->consumed = 0;
}

char *msg_framer_space(struct msg_framer *f, size_t *len)
{
    /* Lines handed out before this call are no longer needed: reclaim their
     * room so a long line behind them can still fit. */
    if (f->consumed > 0) {
        memmove(f->buf, f->buf + f->consumed, f->used - f->consumed);
        f->used -= f->consumed;
        f->scanned -= f->consumed;
        f->consumed = 0;
    }
    *len = sizeof f->buf - f->used;
    return f->buf + f->used;
}

void msg_framer_commit(struct msg_framer *f, size_t len)
{
    size_t room = sizeof f->buf - f->used;
    f->used += len < room ? len : room;
}

int msg_framer_next(struct msg_framer *f, char **line, size_t *len)
{
    char *nl = NULL;
    if (f->scanned < f->used)
        nl = memchr(f->buf + f->scanned, '\n', f->used - f->scanned);
    if (!nl) {
        f->scanned = f->used;
        /* A full buffer holding one unfinished line stays full: the error
         * repeats on every call, as the connection cannot recover. */
        return f->used - f->consumed >= sizeof f->buf ? -EMSGSIZE : 0;
    }
    *nl = '\0';
    *line = f->buf + f->consumed;
    *len = (size_t)(nl - *line);
    f->consumed = (size_t)(nl - f->buf) + 1;
    f->scanned = f->consumed;
    return 1;
}
