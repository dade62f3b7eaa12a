/* rel_fuzzer: one hostile client of soundcardd, for reliability.socket_fuzz.
 *
 *   rel_fuzzer SEED SECONDS VICTIM_STREAM HELLO_TIMEOUT_MS REPLY_TIMEOUT_S FIRST
 *
 * Connects to $SOUNDCARD_SOCKET again and again until SECONDS have passed,
 * each time for one episode (the first of kind FIRST, 0..5, so that a few
 * processes together run every kind; then random): a chat (hundreds of pipelined lines: random
 * text, random bytes with NULs, truncated JSON, nesting thousands deep,
 * wrong types, bogus ids, unknown ops, bogus stream ids, the victim's stream
 * and other clients' streams,
 * lines near 64 KiB, valid requests split in pieces, valid stream ops on its
 * own streams), a stream-heavy chat ending in a disconnect with streams open,
 * a line over 64 KiB, requests before hello (sometimes waiting out the hello
 * deadline), bursts of random bytes with newlines, or half a line and a
 * disconnect.
 *
 * Every line it sends must get exactly one reply, of the code it must get:
 * `bad_request` with "id":null for what is not a request, `bad_request`
 * with its id for a field broken, `unknown_op`, `not_found` for a stream
 * that does not exist, `denied` for another client's stream, `invalid_state`
 * before hello, `limit` and then the end of the connection for a line over
 * 64 KiB, `ok` for valid requests (own stream ops: ok or a code the state
 * explains).  Replies are checked for form (JSON object, id, ok, error code
 * and message); events are counted.  The daemon must take its data and
 * answer within REPLY_TIMEOUT_S, and close the connection only where the
 * protocol says so.
 *
 * It runs at nice 10: the victims of reliability.socket_fuzz (normal
 * priority, 20 ms of latency) are to measure how well the daemon isolates
 * them, not how 24 busy processes share two cores with them.
 *
 * Prints one summary line; exits 1 after printing every broken rule (the
 * first ten) to stderr with the seed. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#define WINDOW 32           /* requests in flight at most */
#define MAX_LINE 65536      /* the protocol's line limit, '\n' included */
#define MAX_DEPTH 16        /* the protocol's nesting limit, the request object included */
#define MAX_OWN_STREAMS 16  /* the daemon's default max-streams-per-client */
#define ANY_STREAM_STATE "ok|invalid_state|not_found|limit"

static struct {
    uint64_t seed;
    double seconds, hello_timeout, reply_timeout;
    uint32_t victim;
    const char *socket;
} cfg;

enum episode { E_CHAT, E_STREAMS, E_OVERSIZE, E_NOHELLO, E_RAW, E_HALF, E_COUNT };
static const char *const episode_names[E_COUNT] = {"chat", "streams", "oversize", "nohello", "raw", "half"};

static struct {
    long episodes[E_COUNT];
    long lines, replies, events, opened, cut, hello_timeouts;
} totals;

static int failures;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((format(printf, 1, 2)))
static void fail(const char *fmt, ...)
{
    if (++failures > 10)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "rel_fuzzer seed %" PRIu64 ": FAIL: ", cfg.seed);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- randomness (splitmix64: the seed decides every line) ---- */

static uint64_t rng;

static uint64_t rnd(void)
{
    uint64_t z = (rng += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static uint64_t below(uint64_t n)
{
    return n ? rnd() % n : 0;
}

static bool chance(unsigned percent)
{
    return below(100) < percent;
}

static const char *pick(const char *const *list, size_t n)
{
    return list[below(n)];
}
#define PICK(list) pick(list, sizeof(list) / sizeof(list[0]))

/* ---- what a request must get back ---- */

enum learn { LEARN_NONE, LEARN_OPEN, LEARN_CLOSE };

struct expect {
    const char *codes;  /* "ok", "bad_request", "ok|limit"... */
    char what[80];      /* the start of the line, for messages */
    bool pending;
    enum learn learn;
    uint32_t stream;    /* LEARN_CLOSE: which */
};

/* One connection and what it waits for.  Requests with an id are found by
 * id (ids run from base_id up); replies with "id":null come in the order of
 * the lines that had no usable id (the daemon answers those at once). */
struct conn {
    int fd;
    bool eof;
    bool hello_sent;      /* lines after it are answered as after hello */
    bool hello_timed_out; /* the daemon said no hello in time */
    double opened;
    char in[1 << 18];
    size_t used;
    int64_t base_id, next_id;
    struct expect *by_id;
    size_t by_id_cap;
    struct expect *nulls;
    size_t nulls_head, nulls_tail, nulls_cap;
    long outstanding;
    long opening;         /* stream.open requests not answered yet */
    uint32_t own[MAX_OWN_STREAMS];
    int nown;
};

static void describe(struct expect *e, const char *line, size_t len)
{
    size_t n = 0;
    for (; n < len && n < sizeof e->what - 1; n++)
        e->what[n] = (line[n] >= 0x20 && line[n] < 0x7f) ? line[n] : '?';
    e->what[n] = '\0';
}

static struct expect *expect_id(struct conn *c, int64_t id)
{
    size_t i = (size_t)(id - c->base_id);
    if (i >= c->by_id_cap) {
        size_t cap = c->by_id_cap ? c->by_id_cap : 1024;
        while (cap <= i)
            cap *= 2;
        c->by_id = realloc(c->by_id, cap * sizeof *c->by_id);
        memset(c->by_id + c->by_id_cap, 0, (cap - c->by_id_cap) * sizeof *c->by_id);
        c->by_id_cap = cap;
    }
    return &c->by_id[i];
}

static struct expect *expect_null(struct conn *c)
{
    if (c->nulls_tail == c->nulls_cap) {
        c->nulls_cap = c->nulls_cap ? c->nulls_cap * 2 : 1024;
        c->nulls = realloc(c->nulls, c->nulls_cap * sizeof *c->nulls);
    }
    struct expect *e = &c->nulls[c->nulls_tail++];
    memset(e, 0, sizeof *e);
    return e;
}

static bool code_in(const char *codes, const char *code)
{
    size_t n = strlen(code);
    for (const char *p = codes; p; p = strchr(p, '|'), p = p ? p + 1 : NULL)
        if (strncmp(p, code, n) == 0 && (p[n] == '|' || p[n] == '\0'))
            return true;
    return false;
}

static void own_remove(struct conn *c, uint32_t stream)
{
    for (int i = 0; i < c->nown; i++)
        if (c->own[i] == stream)
            c->own[i] = c->own[--c->nown];
}

static void check_answer(struct conn *c, struct expect *e, const char *code, cJSON *msg, const char *text)
{
    if (!code_in(e->codes, code))
        fail("'%s': expected %s, got: %.300s", e->what, e->codes, text);
    e->pending = false;
    c->outstanding--;
    c->opening -= e->learn == LEARN_OPEN;
    double stream = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(msg, "stream"));
    if (strcmp(code, "ok") == 0 && e->learn == LEARN_OPEN && c->nown < MAX_OWN_STREAMS && stream >= 0) {
        c->own[c->nown++] = (uint32_t)stream;
        totals.opened++;
    } else if (strcmp(code, "ok") == 0 && e->learn == LEARN_CLOSE) {
        own_remove(c, e->stream);
    }
}

static const char *const error_codes[] = {"bad_request", "unsupported_version", "unknown_op", "not_found",
                                          "invalid_state", "limit", "denied", "backend", "internal"};

static void on_reply(struct conn *c, char *text, size_t len)
{
    cJSON *msg = cJSON_ParseWithLength(text, len);
    cJSON *event = cJSON_GetObjectItemCaseSensitive(msg, "event");
    cJSON *id = cJSON_GetObjectItemCaseSensitive(msg, "id");
    cJSON *ok = cJSON_GetObjectItemCaseSensitive(msg, "ok");
    if (!cJSON_IsObject(msg)) {
        fail("a line from the daemon is not a JSON object: %.300s", text);
    } else if (event) {
        if (!cJSON_IsString(event))
            fail("event without a name: %.300s", text);
        totals.events++;
    } else if (!(cJSON_IsNull(id) || cJSON_IsNumber(id)) || !cJSON_IsBool(ok)) {
        fail("reply without id and ok: %.300s", text);
    } else {
        totals.replies++;
        const char *code = "ok", *message = "";
        if (cJSON_IsFalse(ok)) {
            cJSON *error = cJSON_GetObjectItemCaseSensitive(msg, "error");
            code = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(error, "code"));
            message = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(error, "message"));
            bool known = false;
            for (size_t i = 0; code && i < sizeof error_codes / sizeof error_codes[0]; i++)
                known |= strcmp(code, error_codes[i]) == 0;
            if (!known || !message || !message[0]) {
                fail("error reply without a known code and a message: %.300s", text);
                code = "?";
            }
        }
        if (cJSON_IsNull(id) && !c->hello_sent && strcmp(code, "invalid_state") == 0 &&
            strncmp(message, "no 'hello' within", 17) == 0) {
            c->hello_timed_out = true; /* the connection ends next */
        } else if (cJSON_IsNull(id)) {
            if (c->nulls_head == c->nulls_tail)
                fail("a reply with id null that no line waits for: %.300s", text);
            else
                check_answer(c, &c->nulls[c->nulls_head++], code, msg, text);
        } else {
            int64_t n = (int64_t)id->valuedouble;
            struct expect *e = n >= c->base_id && n < c->next_id ? expect_id(c, n) : NULL;
            if (!e || !e->pending)
                fail("a reply for id %" PRId64 " that no request waits for: %.300s", n, text);
            else
                check_answer(c, e, code, msg, text);
        }
    }
    cJSON_Delete(msg);
}

/* ---- the connection: send and receive with deadlines ---- */

static bool conn_open(struct conn *c)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", cfg.socket);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        fail("cannot connect to %s: %s", cfg.socket, strerror(errno));
        if (c->fd >= 0)
            close(c->fd);
        return false;
    }
    fcntl(c->fd, F_SETFL, O_NONBLOCK);
    c->eof = c->hello_sent = c->hello_timed_out = false;
    c->opened = now();
    c->used = 0;
    /* Ids from anywhere in 0..2^53, the top of the range included. */
    c->base_id = chance(10) ? (INT64_C(1) << 53) - 100000 : (int64_t)below(1000000);
    c->next_id = c->base_id;
    if (c->by_id)
        memset(c->by_id, 0, c->by_id_cap * sizeof *c->by_id);
    c->nulls_head = c->nulls_tail = 0;
    c->outstanding = c->opening = 0;
    c->nown = 0;
    return true;
}

static void conn_close(struct conn *c)
{
    close(c->fd);
    c->fd = -1;
}

/* Reads what has arrived, without waiting, and handles each line. */
static void take_input(struct conn *c)
{
    while (!c->eof) {
        ssize_t n = recv(c->fd, c->in + c->used, sizeof c->in - c->used, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            c->eof = true; /* closed (or reset after it closed with our bytes unread) */
            return;
        }
        c->used += (size_t)n;
        char *start = c->in, *nl;
        while ((nl = memchr(start, '\n', c->used - (size_t)(start - c->in)))) {
            *nl = '\0';
            on_reply(c, start, (size_t)(nl - start));
            start = nl + 1;
        }
        c->used -= (size_t)(start - c->in);
        memmove(c->in, start, c->used);
        if (c->used == sizeof c->in) {
            fail("a line from the daemon longer than %zu bytes", sizeof c->in);
            c->eof = true;
        }
    }
}

static int ms_until(double deadline)
{
    double left = deadline - now();
    return left <= 0 ? 0 : (int)(left * 1000) + 1;
}

/* Sends all of `data`, reading replies meanwhile.  False if the connection
 * ended first (or the daemon took nothing for REPLY_TIMEOUT_S: a failure). */
static bool send_all(struct conn *c, const char *data, size_t len, size_t piece)
{
    size_t off = 0;
    double deadline = now() + cfg.reply_timeout;
    while (off < len && !c->eof) {
        struct pollfd p = {.fd = c->fd, .events = POLLIN | POLLOUT};
        if (poll(&p, 1, ms_until(deadline)) == 0) {
            fail("the daemon took no data for %g s (%zu of %zu bytes sent)", cfg.reply_timeout, off, len);
            return false;
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR))
            take_input(c);
        if (!(p.revents & POLLOUT) || c->eof)
            continue;
        size_t n = len - off < piece ? len - off : piece;
        ssize_t sent = send(c->fd, data + off, n, MSG_NOSIGNAL);
        if (sent > 0) {
            off += (size_t)sent;
            deadline = now() + cfg.reply_timeout;
            if (piece < 64)
                sched_yield(); /* let the daemon read the pieces apart */
        } else if (sent < 0 && errno != EAGAIN && errno != EINTR) {
            take_input(c); /* what it said before it closed */
            c->eof = true;
        }
    }
    return off == len;
}

/* Waits until at most `target` requests are unanswered.  False if the
 * connection ended first or the daemon did not answer in time. */
static bool wait_replies(struct conn *c, long target)
{
    double deadline = now() + cfg.reply_timeout;
    long before = c->outstanding;
    while (c->outstanding > target && !c->eof) {
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (poll(&p, 1, ms_until(deadline)) == 0) {
            fail("%ld replies missing after %g s", c->outstanding, cfg.reply_timeout);
            return false;
        }
        take_input(c);
        if (c->outstanding < before)
            deadline = now() + cfg.reply_timeout, before = c->outstanding;
    }
    return c->outstanding <= target;
}

/* Waits for the daemon to close the connection. */
static bool wait_eof(struct conn *c, double timeout)
{
    double deadline = now() + timeout;
    while (!c->eof) {
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (poll(&p, 1, ms_until(deadline)) == 0)
            return false;
        take_input(c);
    }
    return true;
}

/* ---- lines ---- */

struct line {
    char *buf;
    size_t len, cap;
    int64_t id;        /* the id its reply must carry; -1: null */
    const char *codes; /* what the reply may say */
    bool request;      /* a well-formed request: before hello, invalid_state */
    enum learn learn;
    uint32_t stream;
    size_t piece;      /* send in pieces of this many bytes */
};

__attribute__((format(printf, 2, 3)))
static void put(struct line *l, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(l->buf + l->len, l->cap - l->len, fmt, ap);
        va_end(ap);
        if ((size_t)n < l->cap - l->len) {
            l->len += (size_t)n;
            return;
        }
        l->cap = 2 * l->cap + (size_t)n;
        l->buf = realloc(l->buf, l->cap);
    }
}

static void put_repeated(struct line *l, char ch, size_t n)
{
    if (l->len + n + 1 > l->cap) {
        l->cap = l->len + n + 4096;
        l->buf = realloc(l->buf, l->cap);
    }
    memset(l->buf + l->len, ch, n);
    l->len += n;
    l->buf[l->len] = '\0';
}

static void line_start(struct line *l, int64_t id, const char *codes)
{
    l->len = 0;
    l->id = id;
    l->codes = codes;
    l->request = false;
    l->learn = LEARN_NONE;
    l->piece = SIZE_MAX;
}

static void put_id_op(struct line *l, int64_t id, const char *op)
{
    /* Members in either order, sometimes with space around. */
    const char *sp = chance(20) ? " " : "";
    if (chance(20))
        put(l, "%s{\"op\":\"%s\",%s\"id\":%" PRId64, sp, op, sp, id);
    else
        put(l, "%s{\"id\":%" PRId64 ",%s\"op\":\"%s\"", sp, id, sp, op);
}

static void put_end(struct line *l)
{
    if (chance(10))
        put(l, ",\"x-later\":[1,{\"y\":null},\"z\"]"); /* unknown members are ignored */
    put(l, "}%s", chance(10) ? " \r" : "");
}

static const char *const query_ops[] = {"server.info", "devices.list", "stats", "subscribe"};
static const char *const stream_ops[] = {"stream.start", "stream.stop", "stream.abort", "stream.close"};

/* A valid request: `op` with valid fields (stream ops on `stream`). */
static void valid_request(struct conn *c, struct line *l, const char *op, uint32_t stream, const char *codes)
{
    line_start(l, c->next_id++, codes);
    l->request = true;
    put_id_op(l, l->id, op);
    if (strcmp(op, "hello") == 0) {
        put(l, ",\"protocol\":1");
        if (chance(70))
            put(l, ",\"name\":\"fuzz-%u \\u00e9\\\"\"", (unsigned)below(1000));
    } else if (strcmp(op, "stream.open") == 0) {
        unsigned in = (unsigned)below(3), out = (unsigned)below(3);
        put(l, ",\"output_channels\":%u,\"input_channels\":%u", in || out ? out : 2, in);
        if (chance(50))
            put(l, ",\"buffer_frames\":%u", 64u << below(9));
        if (chance(30))
            put(l, ",\"wake_frames\":%u", 16u << below(8));
        if (chance(30))
            put(l, ",\"device\":%d", chance(50) ? -1 : 0);
        if (chance(50))
            put(l, ",\"name\":\"fuzz-stream-%u\"", (unsigned)below(1000));
        l->learn = LEARN_OPEN;
    } else if (strcmp(op, "stream.set") == 0) {
        put(l, ",\"stream\":%u", stream);
        bool gain = chance(60), mute = chance(40);
        if (gain || !mute)
            put(l, ",\"gain\":%g", (double)below(1601) / 100);
        if (mute)
            put(l, ",\"mute\":%s", chance(50) ? "true" : "false");
    } else if (strncmp(op, "stream.", 7) == 0) {
        put(l, ",\"stream\":%u", stream);
    } else if (strcmp(op, "subscribe") == 0 && chance(70)) {
        static const char *const sets[] = {"\"clients\"", "\"streams\"", "\"server\""};
        put(l, ",\"events\":[");
        for (unsigned i = 0, n = (unsigned)below(4); i < n; i++)
            put(l, "%s%s", i ? "," : "", PICK(sets));
        put(l, "]");
    }
    put_end(l);
}

/* A field of the wrong type or out of range; `base` makes the rest valid;
 * "" as a bad value leaves the field out. */
static const struct bad_field {
    const char *op, *base, *field;
    const char *bad[9];
} bad_fields[] = {
    {"hello", "", "protocol", {"\"1\"", "true", "null", "[1]", "1.5", "-1", "2147483648", ""}},
    {"hello", "\"protocol\":1,", "name",
     {"7", "null", "\"a\\u0001b\"", "\"\\u007f\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"",
      "\"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn\"", "[\"x\"]"}},
    {"stream.open", "\"output_channels\":2,", "device", {"\"0\"", "-2", "0.5", "2147483648", "false", "null"}},
    {"stream.open", "\"output_channels\":2,", "input_channels",
     {"65", "-1", "\"1\"", "1.5", "null", "[]", "1e999"}},
    {"stream.open", "\"input_channels\":1,", "output_channels",
     {"65", "-1", "\"2\"", "2.5", "null", "{}", "-1e999"}},
    {"stream.open", "\"input_channels\":0,", "output_channels", {"0", ""}},
    {"stream.open", "\"output_channels\":2,", "buffer_frames", {"0", "1048577", "\"64\"", "true", "64.5"}},
    {"stream.open", "\"output_channels\":2,", "wake_frames", {"0", "1048577", "-5", "{}"}},
    {"stream.open", "\"output_channels\":2,", "name", {"1", "\"\\u0085\"", "\"a\\tb\"", "false"}},
    {"stream.start", "", "stream", {"-1", "4294967296", "\"1\"", "1.5", "null", "{}", ""}},
    {"stream.stop", "", "stream", {"-1", "4294967296", "true", ""}},
    {"stream.abort", "", "stream", {"-0.5", "1e10", "[1]", ""}},
    {"stream.close", "", "stream", {"-1", "\"\"", "null", ""}},
    {"stream.set", "\"gain\":1,", "stream", {"-1", "4294967296", "\"1\"", ""}},
    {"stream.set", "\"stream\":1,", "gain", {"-0.1", "16.01", "1e999", "\"1\"", "null", "true", ""}},
    {"stream.set", "\"stream\":1,", "mute", {"1", "0", "\"true\"", "null"}},
    {"stream.set", "\"stream\":1,", "callback_realtime", {"1", "null", "\"yes\""}},
    {"subscribe", "", "events", {"\"clients\"", "[\"bogus\"]", "[1]", "[null]", "{}", "7", "[\"clients\",\"x\"]"}},
};

static void wrong_field(struct conn *c, struct line *l)
{
    const struct bad_field *b = &bad_fields[below(sizeof bad_fields / sizeof bad_fields[0])];
    size_t n = 0;
    while (b->bad[n])
        n++;
    const char *bad = b->bad[below(n)];
    line_start(l, c->next_id++, "bad_request");
    put_id_op(l, l->id, b->op);
    put(l, ",%s", b->base);
    if (bad[0])
        put(l, "\"%s\":%s", b->field, bad);
    else
        put(l, "\"x-not-%s\":0", b->field);
    put_end(l);
}

/* A valid request but for its id: no usable id, so "id":null. */
static void bogus_id(struct conn *c, struct line *l)
{
    static const char *const ids[] = {"-1", "\"7\"", "1.5", "9007199254740994", "1e300", "true",
                                      "null", "[]", "{}", "-0.5"};
    const char *op = PICK(query_ops);
    line_start(l, -1, "bad_request");
    if (chance(20))
        put(l, "{\"op\":\"%s\"", op);
    else
        put(l, "{\"id\":%s,\"op\":\"%s\"", PICK(ids), op);
    put_end(l);
    (void)c;
}

static void unknown_op(struct conn *c, struct line *l)
{
    static const char *const names[] = {"\"stream.dance\"", "\"\"", "\"HELLO\"", "\"stats \"", "\"server.info.x\"",
                                        "\"stream\"", "\"\\u0000\"", "\"st\\u0061ts\\u0000\""};
    static const char *const not_strings[] = {"7", "null", "[]", "{}", "true"};
    bool string = chance(70);
    line_start(l, c->next_id++, string ? "unknown_op" : "bad_request");
    if (chance(10)) {
        put(l, "{\"id\":%" PRId64, l->id); /* no op at all */
        l->codes = "bad_request";
    } else {
        put(l, "{\"id\":%" PRId64 ",\"op\":%s", l->id, string ? PICK(names) : PICK(not_strings));
    }
    put_end(l);
}

/* Nesting deeper than 16 (and once in a while exactly 16, which is fine). */
static void deep(struct conn *c, struct line *l, size_t max_depth)
{
    size_t d = MAX_DEPTH + below(max_depth - MAX_DEPTH + 1);
    switch (below(4)) {
    case 0:
        line_start(l, -1, "bad_request");
        put(l, "{\"id\":%" PRId64 ",\"op\":\"stats\",\"x\":", c->next_id);
        put_repeated(l, '[', d);
        put_repeated(l, ']', d);
        put(l, "}");
        break;
    case 1:
        line_start(l, -1, "bad_request");
        put_repeated(l, chance(50) ? '[' : '{', d + 1);
        break;
    case 2:
        line_start(l, -1, "bad_request");
        for (size_t i = 0; i < d; i++)
            put(l, "{\"a\":");
        put(l, "1");
        put_repeated(l, '}', d);
        break;
    default:
        line_start(l, c->next_id++, "ok");
        l->request = true;
        put(l, "{\"id\":%" PRId64 ",\"op\":\"stats\",\"x\":", l->id);
        put_repeated(l, '[', MAX_DEPTH - 1);
        put_repeated(l, ']', MAX_DEPTH - 1);
        put(l, "}");
        break;
    }
}

/* Printable junk, or random bytes with NULs (never '\n'): not JSON. */
static void junk(struct line *l, bool binary)
{
    line_start(l, -1, "bad_request");
    size_t n = binary ? 1 + below(400) : below(200);
    put_repeated(l, ' ', n);
    for (size_t i = 0; i < n; i++) {
        char ch = binary ? (char)below(256) : (char)(0x20 + below(0x5f));
        l->buf[i] = ch == '\n' ? '\0' : ch;
    }
    if (binary)
        l->buf[below(n)] = '\0';
}

/* A valid request cut short: never valid JSON (the closing '}' is gone). */
static void truncated(struct conn *c, struct line *l)
{
    valid_request(c, l, PICK(query_ops), 1, "bad_request");
    size_t end = l->len;
    while (end > 0 && l->buf[end - 1] != '}')
        end--;
    l->len = end > 1 ? 1 + below(end - 1) : 0;
    l->buf[l->len] = '\0';
    l->id = -1;
    l->request = false;
}

/* A legal line near the limit: up to 65535 bytes and its '\n'. */
static void big(struct conn *c, struct line *l)
{
    size_t total = chance(30) ? MAX_LINE : MAX_LINE - below(MAX_LINE / 2);
    line_start(l, c->next_id++, "ok");
    l->request = true;
    put(l, "{\"id\":%" PRId64 ",\"op\":\"server.info\",\"pad\":\"", l->id);
    put_repeated(l, 'p', total - 1 - l->len - 2);
    put(l, "\"}");
}

/* A stream op on a stream that is not there, or on the victim's. */
static void foreign_stream(struct conn *c, struct line *l)
{
    bool victim = chance(40);
    uint32_t stream = victim ? cfg.victim : 100000000u + (uint32_t)below(4000000000u);
    if (chance(20)) {
        valid_request(c, l, "stream.set", stream, victim ? "ok" : "not_found");
        if (victim) {
            /* Only its owner reports its callback thread: nobody else may. */
            l->len = 0;
            put_id_op(l, l->id, "stream.set");
            put(l, ",\"stream\":%u,\"callback_realtime\":%s}", stream, chance(50) ? "true" : "false");
            l->codes = "denied";
        }
    } else {
        valid_request(c, l, PICK(stream_ops), stream, victim ? "denied" : "not_found");
    }
}

/* start/stop/abort/close on a low stream id that is not its own: another
 * client's (denied, whatever state it is in) or a closed one (not_found).
 * While an open of its own is unanswered, any new id might be its own. */
static void neighbour_stream(struct conn *c, struct line *l)
{
    uint32_t stream;
    bool own;
    do {
        stream = c->opening ? 100000000u + (uint32_t)below(1000000) : 1 + (uint32_t)below(2000);
        own = false;
        for (int i = 0; i < c->nown; i++)
            own |= c->own[i] == stream;
    } while (own);
    valid_request(c, l, PICK(stream_ops), stream, "denied|not_found");
}

/* Valid stream ops on streams of its own: open, start, stop, set, close. */
static void own_stream(struct conn *c, struct line *l)
{
    if (c->nown == 0 || chance(20)) {
        valid_request(c, l, "stream.open", 0, "ok|limit");
        return;
    }
    uint32_t stream = c->own[below((uint64_t)c->nown)];
    static const char *const ops[] = {"stream.start", "stream.start", "stream.stop", "stream.abort",
                                      "stream.set", "stream.close"};
    const char *op = PICK(ops);
    valid_request(c, l, op, stream, ANY_STREAM_STATE);
    if (strcmp(op, "stream.close") == 0) {
        l->learn = LEARN_CLOSE;
        l->stream = stream;
    }
}

enum kind { K_TEXT, K_BINARY, K_TRUNCATED, K_DEEP, K_WRONG, K_BOGUS_ID, K_UNKNOWN_OP, K_FOREIGN,
            K_NEIGHBOUR, K_QUERY, K_HELLO, K_OWN, K_BIG, K_SPLIT, K_COUNT };

/* Weights per episode: a chat of everything, or mostly stream ops. */
static const unsigned chat_weights[K_COUNT] = {10, 8, 10, 5, 12, 6, 4, 6, 4, 8, 2, 12, 1, 3};
static const unsigned stream_weights[K_COUNT] = {2, 2, 2, 1, 4, 1, 1, 6, 10, 4, 0, 40, 0, 2};

static enum kind pick_kind(const unsigned *weights)
{
    unsigned sum = 0;
    for (int k = 0; k < K_COUNT; k++)
        sum += weights[k];
    unsigned r = (unsigned)below(sum);
    int k = 0;
    while (r >= weights[k])
        r -= weights[k++];
    return (enum kind)k;
}

static void generate(struct conn *c, struct line *l, const unsigned *weights, size_t max_depth)
{
    switch (pick_kind(weights)) {
    case K_TEXT: junk(l, false); break;
    case K_BINARY: junk(l, true); break;
    case K_TRUNCATED: truncated(c, l); break;
    case K_DEEP: deep(c, l, max_depth); break;
    case K_WRONG: wrong_field(c, l); break;
    case K_BOGUS_ID: bogus_id(c, l); break;
    case K_UNKNOWN_OP: unknown_op(c, l); break;
    case K_FOREIGN: foreign_stream(c, l); break;
    case K_NEIGHBOUR: neighbour_stream(c, l); break;
    case K_QUERY: valid_request(c, l, PICK(query_ops), 0, "ok"); break;
    case K_HELLO:
        if (c->hello_sent && chance(50)) {
            valid_request(c, l, "hello", 0, "invalid_state"); /* a second hello */
        } else {
            line_start(l, c->next_id++, "unsupported_version");
            put(l, "{\"id\":%" PRId64 ",\"op\":\"hello\",\"protocol\":%u}", l->id, 2 + (unsigned)below(100));
        }
        break;
    case K_OWN: own_stream(c, l); break;
    case K_BIG: big(c, l); break;
    default:
        valid_request(c, l, PICK(query_ops), 0, "ok");
        l->piece = 1 + below(7);
        break;
    }
}

/* Registers what the line must get back, then sends it with its '\n'. */
static bool send_line(struct conn *c, struct line *l)
{
    if (l->request && !c->hello_sent)
        l->codes = "invalid_state";
    struct expect *e = l->id >= 0 ? expect_id(c, l->id) : expect_null(c);
    memset(e, 0, sizeof *e);
    e->codes = l->codes;
    e->pending = true;
    e->learn = l->learn;
    e->stream = l->stream;
    describe(e, l->buf, l->len);
    c->outstanding++;
    c->opening += l->learn == LEARN_OPEN;
    totals.lines++;
    put(l, "\n");
    return send_all(c, l->buf, l->len, l->piece);
}

static bool say_hello(struct conn *c, struct line *l)
{
    valid_request(c, l, "hello", 0, "ok");
    c->hello_sent = true;
    return send_line(c, l);
}

/* `n` lines, at most WINDOW unanswered; then every reply.  The connection
 * must stay up throughout. */
static bool chat(struct conn *c, struct line *l, long n, const unsigned *weights, size_t max_depth)
{
    for (long i = 0; i < n; i++) {
        if (!wait_replies(c, WINDOW - 1))
            break;
        generate(c, l, weights, max_depth);
        if (!send_line(c, l))
            break;
    }
    wait_replies(c, 0);
    if (c->eof && !c->hello_timed_out)
        fail("the daemon closed a connection that broke no framing rule (%ld replies missing)", c->outstanding);
    return !c->eof && c->outstanding == 0;
}

/* ---- episodes ---- */

/* `first`: the process's first episode, which runs every variant's
 * slowest branch (waiting out the hello deadline). */
static void episode(struct conn *c, struct line *l, enum episode kind, bool first, size_t max_depth)
{
    if (!conn_open(c))
        return;
    totals.episodes[kind]++;
    switch (kind) {
    case E_CHAT:
    case E_STREAMS:
        if (say_hello(c, l) && chat(c, l, 100 + (long)below(kind == E_CHAT ? 700 : 300),
                                    kind == E_CHAT ? chat_weights : stream_weights, max_depth) &&
            chance(30)) {
            valid_request(c, l, "stream.open", 0, ""); /* half a request, then gone */
            send_all(c, l->buf, below(l->len), SIZE_MAX);
        }
        break; /* E_STREAMS: its streams are still open when it goes */
    case E_OVERSIZE:
        if (!say_hello(c, l) || !chat(c, l, (long)below(20), chat_weights, max_depth))
            break;
        line_start(l, -1, "limit");
        size_t size = MAX_LINE + below(3 * MAX_LINE);
        if (chance(30))
            put(l, "{\"id\":%" PRId64 ",\"op\":\"stats\",\"pad\":\"", c->next_id);
        put_repeated(l, 'x', size - l->len);
        if (chance(30))
            for (size_t i = 0; i < size; i += 1 + below(64))
                l->buf[i] = (char)(0x20 + below(0x5f));
        send_line(c, l); /* may fail: the daemon stops reading at 64 KiB */
        if (!wait_eof(c, cfg.reply_timeout))
            fail("a line of %zu bytes: the connection was not closed within %g s", size, cfg.reply_timeout);
        else if (c->outstanding != 0)
            fail("a line of %zu bytes: closed without the 'limit' reply", size);
        totals.cut += c->eof;
        break;
    case E_NOHELLO:
        chat(c, l, 1 + (long)below(30), chat_weights, max_depth);
        if (!c->eof && (first || chance(30))) {
            /* Say nothing more: cut off at the hello deadline, not before. */
            bool closed = wait_eof(c, cfg.hello_timeout + cfg.reply_timeout);
            double after = now() - c->opened;
            if (!closed || !c->hello_timed_out || after < 0.9 * cfg.hello_timeout)
                fail("no hello: expected invalid_state and the end of the connection after %g s; "
                     "got %s after %.2f s", cfg.hello_timeout, closed ? "the end" : "nothing", after);
        }
        totals.hello_timeouts += c->hello_timed_out;
        break;
    case E_RAW:
        if (!say_hello(c, l) || !wait_replies(c, 0))
            break;
        for (int burst = 0, bursts = 1 + (int)below(8); burst < bursts && !c->eof; burst++) {
            /* Random bytes; every '\n' ends a line that gets a bad_request. */
            line_start(l, -1, "bad_request");
            size_t n = 1 + below(32768), every = (size_t)1 << (3 + below(8));
            put_repeated(l, ' ', n);
            for (size_t i = 0; i < n; i++) {
                char ch = (char)below(256);
                l->buf[i] = below(every) == 0 ? '\n' : ch == '\n' ? ' ' : ch;
            }
            l->buf[n - 1] = '\n';
            for (size_t i = 0; i < n; i++) {
                if (l->buf[i] == '\n') {
                    struct expect *e = expect_null(c);
                    e->codes = "bad_request";
                    e->pending = true;
                    snprintf(e->what, sizeof e->what, "random bytes (burst %d)", burst);
                    c->outstanding++;
                    totals.lines++;
                }
            }
            send_all(c, l->buf, n, SIZE_MAX);
        }
        if (chance(50) && !wait_replies(c, 0) && c->eof)
            fail("the daemon closed a connection sending random bytes in lines under 64 KiB");
        break;
    default: /* E_HALF */
        if (chance(70) && say_hello(c, l))
            chat(c, l, (long)below(10), chat_weights, max_depth);
        valid_request(c, l, PICK(query_ops), 0, "");
        if (chance(80))
            send_all(c, l->buf, below(l->len), SIZE_MAX);
        break;
    }
    conn_close(c);
}

int main(int argc, char **argv)
{
    cfg.socket = getenv("SOUNDCARD_SOCKET");
    if (argc != 7 || !cfg.socket) {
        fprintf(stderr, "usage: SOUNDCARD_SOCKET=PATH rel_fuzzer SEED SECONDS VICTIM_STREAM "
                        "HELLO_TIMEOUT_MS REPLY_TIMEOUT_S FIRST\n");
        return 2;
    }
    cfg.seed = strtoull(argv[1], NULL, 10);
    cfg.seconds = atof(argv[2]);
    cfg.victim = (uint32_t)strtoul(argv[3], NULL, 10);
    cfg.hello_timeout = atof(argv[4]) / 1000;
    cfg.reply_timeout = atof(argv[5]);
    rng = cfg.seed;
    if (nice(10) == -1)
        perror("rel_fuzzer: nice");

    static struct conn c;
    struct line l = {.cap = 1 << 16};
    l.buf = malloc(l.cap);
    size_t max_depth = 5000;
    double end = now() + cfg.seconds;
    episode(&c, &l, (enum episode)(atoi(argv[6]) % E_COUNT), true, max_depth);
    while (now() < end && failures == 0) {
        static const unsigned weights[E_COUNT] = {50, 12, 6, 10, 10, 12};
        unsigned r = (unsigned)below(100);
        int kind = 0;
        while (r >= weights[kind])
            r -= weights[kind++];
        episode(&c, &l, (enum episode)kind, false, max_depth);
    }
    free(l.buf);
    free(c.by_id);
    free(c.nulls);

    printf("rel_fuzzer seed=%" PRIu64 ":", cfg.seed);
    for (int k = 0; k < E_COUNT; k++)
        printf(" %s=%ld", episode_names[k], totals.episodes[k]);
    printf(" lines=%ld replies=%ld events=%ld opened=%ld cut=%ld hello_timeouts=%ld failures=%d\n",
           totals.lines, totals.replies, totals.events, totals.opened, totals.cut, totals.hello_timeouts,
           failures);
    return failures ? 1 : 0;
}
