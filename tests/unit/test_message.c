/* Unit test of protocol/message.c: request validation, depth check, reply and
 * event builders, line framer.  Exits non-zero if any check fails. */
#include "message.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (cond) {                                                        \
            passed++;                                                      \
        } else {                                                           \
            failed++;                                                      \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                  \
            fputc('\n', stderr);                                           \
        }                                                                  \
    } while (0)

/* Parse from an exact-size heap copy with no NUL after it, so a read past
 * `len` shows up under ASan. */
static enum msg_error_code parse(const char *line, size_t len, struct msg_request *req,
                                 struct msg_error *err)
{
    char *copy = malloc(len ? len : 1);
    if (!copy)
        abort();
    memcpy(copy, line, len);
    enum msg_error_code code = msg_parse_request(copy, len, req, err);
    free(copy);
    return code;
}

static void expect_bad(const char *what, const char *line, size_t len, enum msg_error_code code,
                       const char *substr, int64_t id)
{
    struct msg_request req;
    struct msg_error err;
    enum msg_error_code got = parse(line, len, &req, &err);
    CHECK(got == code, "[%s] code %s, expected %s (message '%s')", what, msg_error_code_name(got),
          msg_error_code_name(code), err.message);
    CHECK(err.code == got, "[%s] err.code %d differs from the return %d", what, err.code, got);
    CHECK(strstr(err.message, substr) != NULL, "[%s] message '%s' lacks '%s'", what, err.message,
          substr);
    CHECK(req.id == id, "[%s] id %lld, expected %lld", what, (long long)req.id, (long long)id);
}

#define BR MSG_ERR_BAD_REQUEST

static const struct {
    const char *what, *line;
    enum msg_error_code code;
    const char *substr;
    int64_t id;
} bad[] = {
    {"malformed JSON", "{\"id\":1,\"op\":", BR, "invalid JSON", -1},
    {"malformed JSON 2", "{\"id\":1 \"op\":\"stats\"}", BR, "invalid JSON", -1},
    {"trailing text", "{\"id\":1,\"op\":\"stats\"} {}", BR, "unexpected text", -1},
    {"empty line", "", BR, "empty line", -1},
    {"whitespace only", "   ", BR, "invalid JSON", -1},
    {"top-level array", "[1,2]", BR, "JSON object", -1},
    {"top-level string", "\"hello\"", BR, "JSON object", -1},
    {"top-level number", "42", BR, "JSON object", -1},
    {"top-level null", "null", BR, "JSON object", -1},
    {"missing id", "{\"op\":\"stats\"}", BR, "field 'id' is required", -1},
    {"id -1", "{\"id\":-1,\"op\":\"stats\"}", BR, "field 'id' must be an integer 0..9007199254740992", -1},
    {"id 1.5", "{\"id\":1.5,\"op\":\"stats\"}", BR, "field 'id' must be an integer", -1},
    {"id string", "{\"id\":\"7\",\"op\":\"stats\"}", BR, "field 'id' must be an integer", -1},
    {"id 2^53+2", "{\"id\":9007199254740994,\"op\":\"stats\"}", BR, "field 'id'", -1},
    {"id 1e300", "{\"id\":1e300,\"op\":\"stats\"}", BR, "field 'id'", -1},
    {"id null", "{\"id\":null,\"op\":\"stats\"}", BR, "field 'id'", -1},
    {"id true", "{\"id\":true,\"op\":\"stats\"}", BR, "field 'id'", -1},
    {"missing op", "{\"id\":3}", BR, "field 'op' is required", 3},
    {"op not a string", "{\"id\":3,\"op\":5}", BR, "field 'op' must be a string", 3},
    {"op null", "{\"id\":3,\"op\":null}", BR, "field 'op' must be a string", 3},
    {"unknown op", "{\"id\":4,\"op\":\"dance\"}", MSG_ERR_UNKNOWN_OP, "unknown op 'dance'", 4},
    {"op case", "{\"id\":4,\"op\":\"Stats\"}", MSG_ERR_UNKNOWN_OP, "unknown op 'Stats'", 4},
    {"unknown op echo is plain", "{\"id\":4,\"op\":\"a\\nb\\u00e9\"}", MSG_ERR_UNKNOWN_OP,
     "unknown op 'a?b?" "?'", 4}, /* split: ??' is a trigraph */
    {"hello without protocol", "{\"id\":5,\"op\":\"hello\"}", BR, "field 'protocol' is required", 5},
    {"hello protocol 2", "{\"id\":5,\"op\":\"hello\",\"protocol\":2}", MSG_ERR_UNSUPPORTED_VERSION,
     "field 'protocol'", 5},
    {"hello protocol 0", "{\"id\":5,\"op\":\"hello\",\"protocol\":0}", MSG_ERR_UNSUPPORTED_VERSION,
     "version 0", 5},
    {"hello protocol \"1\"", "{\"id\":5,\"op\":\"hello\",\"protocol\":\"1\"}", BR,
     "field 'protocol' must be an integer", 5},
    {"hello protocol 1.5", "{\"id\":5,\"op\":\"hello\",\"protocol\":1.5}", BR,
     "field 'protocol' must be an integer", 5},
    {"hello protocol -1", "{\"id\":5,\"op\":\"hello\",\"protocol\":-1}", BR,
     "field 'protocol' must be an integer", 5},
    {"name not a string", "{\"id\":6,\"op\":\"hello\",\"protocol\":1,\"name\":7}", BR,
     "field 'name' must be a string of at most 63 bytes", 6},
    {"name null", "{\"id\":6,\"op\":\"hello\",\"protocol\":1,\"name\":null}", BR, "field 'name'", 6},
    {"name control char", "{\"id\":6,\"op\":\"hello\",\"protocol\":1,\"name\":\"a\\u0001b\"}", BR,
     "field 'name' must be UTF-8 text without control characters", 6},
    {"name tab", "{\"id\":6,\"op\":\"hello\",\"protocol\":1,\"name\":\"a\\tb\"}", BR, "control", 6},
    {"name DEL", "{\"id\":6,\"op\":\"hello\",\"protocol\":1,\"name\":\"a\x7f\"}", BR, "control", 6},
    {"name C1 control", "{\"id\":6,\"op\":\"hello\",\"protocol\":1,\"name\":\"a\\u0085\"}", BR,
     "control", 6},
    {"name bad UTF-8", "{\"id\":6,\"op\":\"hello\",\"protocol\":1,\"name\":\"a\xff\"}", BR, "UTF-8", 6},
    {"name overlong UTF-8", "{\"id\":6,\"op\":\"hello\",\"protocol\":1,\"name\":\"\xc0\xaf\"}", BR,
     "UTF-8", 6},
    {"name truncated UTF-8", "{\"id\":6,\"op\":\"hello\",\"protocol\":1,\"name\":\"\xe2\x82\"}", BR,
     "UTF-8", 6},
    {"open without channels", "{\"id\":7,\"op\":\"stream.open\"}", BR,
     "fields 'input_channels' and 'output_channels' must not both be 0", 7},
    {"open channels both 0",
     "{\"id\":7,\"op\":\"stream.open\",\"input_channels\":0,\"output_channels\":0}", BR,
     "must not both be 0", 7},
    {"open channels 65", "{\"id\":7,\"op\":\"stream.open\",\"output_channels\":65}", BR,
     "field 'output_channels' must be an integer 0..64", 7},
    {"open channels -1", "{\"id\":7,\"op\":\"stream.open\",\"input_channels\":-1}", BR,
     "field 'input_channels' must be an integer 0..64", 7},
    {"open channels 2.5", "{\"id\":7,\"op\":\"stream.open\",\"output_channels\":2.5}", BR,
     "field 'output_channels' must be an integer 0..64", 7},
    {"open channels \"2\"", "{\"id\":7,\"op\":\"stream.open\",\"output_channels\":\"2\"}", BR,
     "field 'output_channels' must be an integer", 7},
    {"open channels true", "{\"id\":7,\"op\":\"stream.open\",\"output_channels\":true}", BR,
     "field 'output_channels' must be an integer", 7},
    {"open buffer_frames 0",
     "{\"id\":7,\"op\":\"stream.open\",\"output_channels\":2,\"buffer_frames\":0}", BR,
     "field 'buffer_frames' must be an integer 1..1048576", 7},
    {"open buffer_frames 2^20+1",
     "{\"id\":7,\"op\":\"stream.open\",\"output_channels\":2,\"buffer_frames\":1048577}", BR,
     "field 'buffer_frames' must be an integer 1..1048576", 7},
    {"open wake_frames 0",
     "{\"id\":7,\"op\":\"stream.open\",\"output_channels\":2,\"wake_frames\":0}", BR,
     "field 'wake_frames' must be an integer 1..1048576", 7},
    {"open wake_frames null",
     "{\"id\":7,\"op\":\"stream.open\",\"output_channels\":2,\"wake_frames\":null}", BR,
     "field 'wake_frames'", 7},
    {"open wakeup bogus",
     "{\"id\":7,\"op\":\"stream.open\",\"output_channels\":2,\"wakeup\":\"eventfd\"}", BR,
     "field 'wakeup' must be \"pipe\" or \"futex\"", 7},
    {"open wakeup 1",
     "{\"id\":7,\"op\":\"stream.open\",\"output_channels\":2,\"wakeup\":1}", BR,
     "field 'wakeup'", 7},
    {"open device -2", "{\"id\":7,\"op\":\"stream.open\",\"output_channels\":2,\"device\":-2}", BR,
     "field 'device' must be an integer -1..", 7},
    {"open device 1.5", "{\"id\":7,\"op\":\"stream.open\",\"output_channels\":2,\"device\":1.5}", BR,
     "field 'device'", 7},
    {"open name not a string",
     "{\"id\":7,\"op\":\"stream.open\",\"output_channels\":2,\"name\":[\"x\"]}", BR,
     "field 'name' must be a string", 7},
    {"start without stream", "{\"id\":8,\"op\":\"stream.start\"}", BR,
     "field 'stream' is required: an integer 0..4294967295", 8},
    {"stop stream \"3\"", "{\"id\":8,\"op\":\"stream.stop\",\"stream\":\"3\"}", BR,
     "field 'stream' must be an integer 0..4294967295", 8},
    {"abort stream -1", "{\"id\":8,\"op\":\"stream.abort\",\"stream\":-1}", BR,
     "field 'stream' must be an integer 0..4294967295", 8},
    {"close stream 2^32", "{\"id\":8,\"op\":\"stream.close\",\"stream\":4294967296}", BR,
     "field 'stream' must be an integer", 8},
    {"close stream 0.5", "{\"id\":8,\"op\":\"stream.close\",\"stream\":0.5}", BR,
     "field 'stream' must be an integer", 8},
    {"set without stream", "{\"id\":9,\"op\":\"stream.set\",\"gain\":1}", BR,
     "field 'stream' is required", 9},
    {"set neither gain nor mute", "{\"id\":9,\"op\":\"stream.set\",\"stream\":1}", BR,
     "needs field 'gain', 'mute' or 'callback_realtime'", 9},
    {"set gain -0.1", "{\"id\":9,\"op\":\"stream.set\",\"stream\":1,\"gain\":-0.1}", BR,
     "field 'gain' must be a finite number 0..16", 9},
    {"set gain 17", "{\"id\":9,\"op\":\"stream.set\",\"stream\":1,\"gain\":17}", BR,
     "field 'gain' must be a finite number 0..16", 9},
    {"set gain 16.000001", "{\"id\":9,\"op\":\"stream.set\",\"stream\":1,\"gain\":16.000001}", BR,
     "field 'gain'", 9},
    {"set gain string", "{\"id\":9,\"op\":\"stream.set\",\"stream\":1,\"gain\":\"1\"}", BR,
     "field 'gain' must be a finite number", 9},
    {"set gain infinite", "{\"id\":9,\"op\":\"stream.set\",\"stream\":1,\"gain\":1e999}", BR,
     "field 'gain' must be a finite number", 9},
    {"set mute 1", "{\"id\":9,\"op\":\"stream.set\",\"stream\":1,\"mute\":1}", BR,
     "field 'mute' must be true or false", 9},
    {"set mute \"true\"", "{\"id\":9,\"op\":\"stream.set\",\"stream\":1,\"mute\":\"true\"}", BR,
     "field 'mute' must be true or false", 9},
    {"subscribe events not an array", "{\"id\":10,\"op\":\"subscribe\",\"events\":\"clients\"}", BR,
     "field 'events' must be an array", 10},
    {"subscribe events object", "{\"id\":10,\"op\":\"subscribe\",\"events\":{}}", BR,
     "field 'events' must be an array", 10},
    {"subscribe unknown name",
     "{\"id\":10,\"op\":\"subscribe\",\"events\":[\"clients\",\"bogus\"]}", BR,
     "unknown event set 'bogus'", 10},
    {"subscribe non-string", "{\"id\":10,\"op\":\"subscribe\",\"events\":[1]}", BR,
     "field 'events' must hold only the strings", 10},
};

static void test_bad_inputs(void)
{
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_bad(bad[i].what, bad[i].line, strlen(bad[i].line), bad[i].code, bad[i].substr,
                   bad[i].id);

    char line[256];
    snprintf(line, sizeof line, "{\"id\":11,\"op\":\"hello\",\"protocol\":1,\"name\":\"%s\"}",
             "0123456789012345678901234567890123456789012345678901234567890123");
    expect_bad("name 64 bytes", line, strlen(line), BR, "at most 63 bytes", 11);

    /* A NUL byte inside the line ends nothing: it is trailing garbage. */
    static const char nul[] = "{\"id\":12,\"op\":\"stats\"}\0x";
    expect_bad("NUL after the object", nul, sizeof nul - 1, BR, "unexpected text", -1);

    /* 17 levels, as arrays and as objects. */
    char deep[512] = "";
    for (int i = 0; i < 17; i++)
        strcat(deep, "[");
    for (int i = 0; i < 17; i++)
        strcat(deep, "]");
    expect_bad("17 nested arrays", deep, strlen(deep), BR, "nested deeper than 16", -1);
    strcpy(deep, "{\"id\":13,\"op\":\"stats\",\"a\":");
    for (int i = 0; i < 16; i++)
        strcat(deep, "{\"a\":");
    strcat(deep, "1");
    for (int i = 0; i < 17; i++)
        strcat(deep, "}");
    expect_bad("17 nested objects", deep, strlen(deep), BR, "nested deeper than 16", -1);

    /* MSG_MAX_LINE bytes without the '\n' is one too many. */
    size_t n = MSG_MAX_LINE;
    char *big = malloc(n);
    if (!big)
        abort();
    memset(big, ' ', n);
    memcpy(big, "{\"id\":14,\"op\":\"stats\"}", 22);
    expect_bad("line of MSG_MAX_LINE bytes", big, n, MSG_ERR_LIMIT, "longer than 65535", -1);
    /* One byte less is fine (trailing whitespace is allowed). */
    struct msg_request req;
    struct msg_error err;
    CHECK(parse(big, n - 1, &req, &err) == MSG_OK, "longest line: %s", err.message);
    CHECK(req.id == 14 && req.op == MSG_OP_STATS, "longest line fields");
    free(big);
}

static enum msg_error_code ok_parse(const char *line, struct msg_request *req)
{
    struct msg_error err;
    enum msg_error_code code = parse(line, strlen(line), req, &err);
    CHECK(code == MSG_OK, "'%s' rejected: %s %s", line, msg_error_code_name(code), err.message);
    return code;
}

static void test_valid_ops(void)
{
    struct msg_request r;

    if (ok_parse("{\"id\":0,\"op\":\"hello\",\"protocol\":1}", &r) == MSG_OK)
        CHECK(r.id == 0 && r.op == MSG_OP_HELLO && r.u.hello.protocol == 1 &&
                  r.u.hello.name[0] == '\0', "hello defaults");
    if (ok_parse("{\"op\":\"hello\",\"name\":\"caf\xc3\xa9 \xf0\x9f\x8e\xb5\",\"protocol\":1.0,"
                 "\"id\":9007199254740992,\"future\":{\"x\":[1,2]}}", &r) == MSG_OK)
        CHECK(r.id == (INT64_C(1) << 53) && r.op == MSG_OP_HELLO &&
                  strcmp(r.u.hello.name, "caf\xc3\xa9 \xf0\x9f\x8e\xb5") == 0,
              "hello with name, big id, extra field: id %lld name '%s'", (long long)r.id,
              r.u.hello.name);
    char line[256];
    snprintf(line, sizeof line, "{\"id\":1,\"op\":\"hello\",\"protocol\":1,\"name\":\"%s\"}",
             "012345678901234567890123456789012345678901234567890123456789012");
    if (ok_parse(line, &r) == MSG_OK)
        CHECK(strlen(r.u.hello.name) == 63, "63-byte name kept whole");

    if (ok_parse(" {\"id\":2,\"op\":\"server.info\"} \r", &r) == MSG_OK)
        CHECK(r.id == 2 && r.op == MSG_OP_SERVER_INFO, "server.info (with spaces and CR)");
    if (ok_parse("{\"id\":3,\"op\":\"devices.list\"}", &r) == MSG_OK)
        CHECK(r.id == 3 && r.op == MSG_OP_DEVICES_LIST, "devices.list");
    if (ok_parse("{\"id\":4,\"op\":\"stats\"}", &r) == MSG_OK)
        CHECK(r.id == 4 && r.op == MSG_OP_STATS, "stats");
    if (ok_parse("{\"id\":1e3,\"op\":\"stats\"}", &r) == MSG_OK)
        CHECK(r.id == 1000, "id 1e3 is the integer 1000");

    if (ok_parse("{\"id\":5,\"op\":\"stream.open\",\"output_channels\":2}", &r) == MSG_OK)
        CHECK(r.op == MSG_OP_STREAM_OPEN && r.u.open.name[0] == '\0' && r.u.open.device == -1 &&
                  r.u.open.input_channels == 0 && r.u.open.output_channels == 2 &&
                  r.u.open.buffer_frames == 0 && r.u.open.wake_frames == 0 && !r.u.open.wake_futex,
              "stream.open defaults (the wake-up pipe)");
    if (ok_parse("{\"id\":6,\"op\":\"stream.open\",\"name\":\"rec\",\"device\":3,"
                 "\"input_channels\":64,\"output_channels\":0,\"buffer_frames\":1048576,"
                 "\"wake_frames\":1,\"wakeup\":\"futex\"}", &r) == MSG_OK)
        CHECK(strcmp(r.u.open.name, "rec") == 0 && r.u.open.device == 3 &&
                  r.u.open.input_channels == 64 && r.u.open.output_channels == 0 &&
                  r.u.open.buffer_frames == 1048576 && r.u.open.wake_frames == 1 && r.u.open.wake_futex,
              "stream.open all fields");
    if (ok_parse("{\"id\":6,\"op\":\"stream.open\",\"output_channels\":1,\"wakeup\":\"pipe\"}", &r) == MSG_OK)
        CHECK(!r.u.open.wake_futex, "stream.open wakeup pipe");
    if (ok_parse("{\"id\":6,\"op\":\"stream.open\",\"device\":-1,\"input_channels\":1}", &r) ==
        MSG_OK)
        CHECK(r.u.open.device == -1 && r.u.open.input_channels == 1, "stream.open device -1");

    static const struct {
        const char *name;
        enum msg_op op;
    } stream_ops[] = {
        {"stream.start", MSG_OP_STREAM_START},
        {"stream.stop", MSG_OP_STREAM_STOP},
        {"stream.abort", MSG_OP_STREAM_ABORT},
        {"stream.close", MSG_OP_STREAM_CLOSE},
    };
    for (size_t i = 0; i < 4; i++) {
        snprintf(line, sizeof line, "{\"id\":7,\"op\":\"%s\",\"stream\":%s}", stream_ops[i].name,
                 i % 2 ? "0" : "4294967295");
        if (ok_parse(line, &r) == MSG_OK)
            CHECK(r.op == stream_ops[i].op && r.u.stream.stream == (i % 2 ? 0u : 4294967295u),
                  "%s", stream_ops[i].name);
    }

    if (ok_parse("{\"id\":8,\"op\":\"stream.set\",\"stream\":3,\"gain\":0.5}", &r) == MSG_OK)
        CHECK(r.op == MSG_OP_STREAM_SET && r.u.set.stream == 3 && r.u.set.has_gain &&
                  r.u.set.gain == 0.5f && !r.u.set.has_mute, "stream.set gain");
    if (ok_parse("{\"id\":8,\"op\":\"stream.set\",\"stream\":3,\"mute\":true}", &r) == MSG_OK)
        CHECK(!r.u.set.has_gain && r.u.set.has_mute && r.u.set.mute, "stream.set mute");
    if (ok_parse("{\"id\":8,\"op\":\"stream.set\",\"stream\":3,\"gain\":16,\"mute\":false}", &r) ==
        MSG_OK)
        CHECK(r.u.set.has_gain && r.u.set.gain == 16.0f && r.u.set.has_mute && !r.u.set.mute,
              "stream.set both");
    if (ok_parse("{\"id\":8,\"op\":\"stream.set\",\"stream\":3,\"gain\":0}", &r) == MSG_OK)
        CHECK(r.u.set.has_gain && r.u.set.gain == 0.0f, "stream.set gain 0");

    if (ok_parse("{\"id\":9,\"op\":\"subscribe\"}", &r) == MSG_OK)
        CHECK(r.op == MSG_OP_SUBSCRIBE && r.u.subscribe.events == MSG_EVENT_ALL,
              "subscribe defaults to all");
    if (ok_parse("{\"id\":9,\"op\":\"subscribe\",\"events\":[\"streams\"]}", &r) == MSG_OK)
        CHECK(r.u.subscribe.events == MSG_EVENT_STREAMS, "subscribe streams");
    if (ok_parse("{\"id\":9,\"op\":\"subscribe\",\"events\":[\"server\",\"clients\",\"server\"]}",
                 &r) == MSG_OK)
        CHECK(r.u.subscribe.events == (MSG_EVENT_SERVER | MSG_EVENT_CLIENTS), "subscribe two");
    if (ok_parse("{\"id\":9,\"op\":\"subscribe\",\"events\":[]}", &r) == MSG_OK)
        CHECK(r.u.subscribe.events == 0, "subscribe to nothing");
}

static void test_depth(void)
{
    char text[256];
    const char *strings = "[\"[[[[[[[[[[[[[[[[[[[[\",\"\\\"[[[[[[[[[[[[[[[[[[[[\\\"\",\"\\\\\",[[1]]]";
    CHECK(msg_depth_ok(strings, strlen(strings), 3), "brackets in strings counted");
    CHECK(!msg_depth_ok(strings, strlen(strings), 2), "brackets after strings not counted");
    /* An escaped backslash does not escape the quote after it. */
    const char *bs = "[\"\\\\\",[[[]]]]";
    CHECK(msg_depth_ok(bs, strlen(bs), 4) && !msg_depth_ok(bs, strlen(bs), 3),
          "escaped backslash");
    /* Closers that go below zero do not earn credit for later openers. */
    const char *neg = "]]]][[";
    CHECK(!msg_depth_ok(neg, strlen(neg), 1), "negative depth");
    /* The length bounds the scan. */
    CHECK(msg_depth_ok("[[[", 2, 2), "length bounds the scan");

    for (int depth = 16; depth <= 17; depth++) {
        int n = 0;
        for (int i = 0; i < depth; i++)
            text[n++] = i % 2 ? '{' : '[';
        for (int i = depth - 1; i >= 0; i--)
            text[n++] = i % 2 ? '}' : ']';
        CHECK(msg_depth_ok(text, (size_t)n, MSG_MAX_DEPTH) == (depth == 16), "depth %d", depth);
    }

    /* Through the parser: 16 levels (request object included) is accepted. */
    strcpy(text, "{\"id\":1,\"op\":\"stats\",\"x\":");
    for (int i = 0; i < 15; i++)
        strcat(text, "[");
    for (int i = 0; i < 15; i++)
        strcat(text, "]");
    strcat(text, "}");
    struct msg_request r;
    if (ok_parse(text, &r) == MSG_OK)
        CHECK(r.op == MSG_OP_STATS, "16 levels parse");
}

/* Checks the line shape and returns it parsed (caller deletes). */
static cJSON *check_line(const char *what, char *line)
{
    CHECK(line != NULL, "[%s] no line", what);
    if (!line)
        return NULL;
    size_t n = strlen(line);
    CHECK(n > 0 && line[n - 1] == '\n', "[%s] ends with newline: %s", what, line);
    CHECK(strchr(line, '\n') == line + n - 1, "[%s] one newline only: %s", what, line);
    cJSON *json = cJSON_Parse(line);
    CHECK(cJSON_IsObject(json), "[%s] parses back: %s", what, line);
    return json;
}

static void test_builders(void)
{
    cJSON *f = cJSON_CreateObject();
    cJSON_AddNumberToObject(f, "stream", 3);
    cJSON_AddStringToObject(f, "state", "running");
    char *line = msg_reply_ok(7, f);
    cJSON *j = check_line("reply_ok", line);
    CHECK(line && strcmp(line, "{\"id\":7,\"ok\":true,\"stream\":3,\"state\":\"running\"}\n") == 0,
          "reply_ok text: %s", line);
    CHECK(j && cJSON_GetObjectItem(j, "id")->valuedouble == 7 &&
              cJSON_IsTrue(cJSON_GetObjectItem(j, "ok")), "reply_ok values");
    cJSON_Delete(j);
    free(line);

    line = msg_reply_ok(-1, NULL);
    j = check_line("reply_ok null id", line);
    CHECK(line && strcmp(line, "{\"id\":null,\"ok\":true}\n") == 0, "null id: %s", line);
    cJSON_Delete(j);
    free(line);

    line = msg_reply_ok(INT64_C(9007199254740992), cJSON_CreateObject());
    j = check_line("reply_ok big id", line);
    CHECK(line && strstr(line, "\"id\":9007199254740992,") != NULL, "big id digits: %s", line);
    CHECK(j && cJSON_GetObjectItem(j, "id")->valuedouble == 9007199254740992.0, "big id value");
    cJSON_Delete(j);
    free(line);

    line = msg_reply_error(5, MSG_ERR_NOT_FOUND, "no stream 3\nat all");
    j = check_line("reply_error", line);
    CHECK(line && strcmp(line, "{\"id\":5,\"ok\":false,\"error\":{\"code\":\"not_found\","
                               "\"message\":\"no stream 3\\nat all\"}}\n") == 0,
          "reply_error text: %s", line);
    cJSON_Delete(j);
    free(line);

    line = msg_reply_error(-1, MSG_ERR_LIMIT, "line longer than 65535 bytes");
    j = check_line("reply_error null id", line);
    CHECK(j && cJSON_IsNull(cJSON_GetObjectItem(j, "id")) &&
              cJSON_IsFalse(cJSON_GetObjectItem(j, "ok")) &&
              strcmp(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "code")->valuestring,
                     "limit") == 0, "reply_error null id: %s", line);
    cJSON_Delete(j);
    free(line);

    line = msg_reply_error(INT64_C(9007199254740992), MSG_ERR_INTERNAL, NULL);
    j = check_line("reply_error big id", line);
    CHECK(line && strstr(line, "\"id\":9007199254740992,") != NULL, "error big id: %s", line);
    cJSON_Delete(j);
    free(line);

    f = cJSON_CreateObject();
    cJSON_AddNumberToObject(f, "stream", 4);
    cJSON_AddStringToObject(f, "state", "stopped");
    line = msg_event("stream.state", f);
    j = check_line("event", line);
    CHECK(line && strcmp(line, "{\"event\":\"stream.state\",\"stream\":4,\"state\":\"stopped\"}\n") ==
                      0, "event text: %s", line);
    cJSON_Delete(j);
    free(line);

    line = msg_event("client.removed", NULL);
    j = check_line("event without fields", line);
    CHECK(line && strcmp(line, "{\"event\":\"client.removed\"}\n") == 0, "event: %s", line);
    cJSON_Delete(j);
    free(line);

    /* Fields that are not an object cannot be moved in; they are still freed. */
    f = cJSON_CreateArray();
    cJSON_AddItemToArray(f, cJSON_CreateNumber(1));
    CHECK(msg_reply_ok(1, f) == NULL, "array fields rejected");
    CHECK(msg_event(NULL, cJSON_CreateObject()) == NULL, "event without name");

    static const char *const codes[MSG_ERR_COUNT] = {
        "ok", "bad_request", "unsupported_version", "unknown_op", "not_found",
        "invalid_state", "limit", "denied", "backend", "internal"};
    for (int c = 0; c < MSG_ERR_COUNT; c++) {
        CHECK(strcmp(msg_error_code_name((enum msg_error_code)c), codes[c]) == 0, "code %d", c);
        if (c != MSG_OK)
            CHECK(msg_error_code_from_name(codes[c]) == (enum msg_error_code)c, "from_name %s", codes[c]);
    }
    CHECK(msg_error_code_from_name("ok") == MSG_ERR_INTERNAL, "from_name ok");
    CHECK(msg_error_code_from_name("nope") == MSG_ERR_INTERNAL, "from_name unknown");
    CHECK(msg_error_code_from_name(NULL) == MSG_ERR_INTERNAL, "from_name NULL");
    static const char *const opnames[MSG_OP_COUNT] = {
        "hello", "server.info", "devices.list", "stream.open", "stream.start", "stream.stop",
        "stream.abort", "stream.close", "stream.set", "stats", "subscribe"};
    for (int o = 0; o < MSG_OP_COUNT; o++)
        CHECK(strcmp(msg_op_name((enum msg_op)o), opnames[o]) == 0, "op %d", o);
}

static struct msg_framer fr;

static void feed(const char *bytes, size_t n)
{
    size_t room;
    char *space = msg_framer_space(&fr, &room);
    CHECK(room >= n, "room %zu for %zu bytes", room, n);
    memcpy(space, bytes, n);
    msg_framer_commit(&fr, n);
}

static void test_framer(void)
{
    char *line;
    size_t len;

    msg_framer_init(&fr);
    feed("{\"a\":1}\n\nxy\n", 12);
    CHECK(msg_framer_next(&fr, &line, &len) == 1 && len == 7 && strcmp(line, "{\"a\":1}") == 0,
          "first of three lines");
    CHECK(msg_framer_next(&fr, &line, &len) == 1 && len == 0 && line[0] == '\0', "empty line");
    CHECK(msg_framer_next(&fr, &line, &len) == 1 && len == 2 && strcmp(line, "xy") == 0,
          "third line");
    CHECK(msg_framer_next(&fr, &line, &len) == 0, "no more lines");

    feed("{\"id\":", 6);
    CHECK(msg_framer_next(&fr, &line, &len) == 0, "split 1/3");
    feed("1,\"op\"", 6);
    CHECK(msg_framer_next(&fr, &line, &len) == 0, "split 2/3");
    feed(":\"stats\"}\r\nnext", 15);
    CHECK(msg_framer_next(&fr, &line, &len) == 1 && len == 22 &&
              strcmp(line, "{\"id\":1,\"op\":\"stats\"}\r") == 0, "split 3/3, CR kept: %s", line);
    CHECK(msg_framer_next(&fr, &line, &len) == 0, "partial tail waits");
    feed("\n", 1);
    CHECK(msg_framer_next(&fr, &line, &len) == 1 && strcmp(line, "next") == 0, "tail completes");

    /* MSG_MAX_LINE - 1 bytes and the '\n', received in odd-sized pieces. */
    static char big[MSG_MAX_LINE + 8];
    memset(big, 'x', sizeof big);
    big[MSG_MAX_LINE - 1] = '\n';
    msg_framer_init(&fr);
    for (size_t off = 0; off < MSG_MAX_LINE; off += 1000)
        feed(big + off, MSG_MAX_LINE - off < 1000 ? MSG_MAX_LINE - off : 1000);
    CHECK(msg_framer_next(&fr, &line, &len) == 1 && len == MSG_MAX_LINE - 1 &&
              line[len] == '\0', "longest line accepted");
    CHECK(msg_framer_next(&fr, &line, &len) == 0, "nothing after the longest line");

    /* MSG_MAX_LINE bytes without '\n': an error that stays. */
    msg_framer_init(&fr);
    big[MSG_MAX_LINE - 1] = 'x';
    feed(big, MSG_MAX_LINE - 1);
    CHECK(msg_framer_next(&fr, &line, &len) == 0, "one byte short is still pending");
    feed(big, 1);
    CHECK(msg_framer_next(&fr, &line, &len) == -EMSGSIZE, "over-long line");
    CHECK(msg_framer_next(&fr, &line, &len) == -EMSGSIZE, "over-long line, again");
    size_t room = 1;
    msg_framer_space(&fr, &room);
    CHECK(room == 0, "no space after an over-long line");
    msg_framer_commit(&fr, 0);
    CHECK(msg_framer_next(&fr, &line, &len) == -EMSGSIZE, "still over-long");

    /* A consumed line's room is reclaimed for the long line behind it. */
    msg_framer_init(&fr);
    feed("ab\n", 3);
    feed(big, MSG_MAX_LINE - 3);
    CHECK(msg_framer_next(&fr, &line, &len) == 1 && strcmp(line, "ab") == 0, "short line first");
    CHECK(msg_framer_next(&fr, &line, &len) == 0, "long line pending, buffer full but not over");
    char *space = msg_framer_space(&fr, &room);
    CHECK(room == 3 && space == fr.buf + MSG_MAX_LINE - 3, "compacted: room %zu", room);
    feed("yy\n", 3);
    CHECK(msg_framer_next(&fr, &line, &len) == 1 && len == MSG_MAX_LINE - 1 &&
              line == fr.buf && line[0] == 'x' && line[len - 1] == 'y',
          "long line after compaction");
    CHECK(msg_framer_next(&fr, &line, &len) == 0, "drained");
    msg_framer_space(&fr, &room);
    CHECK(room == MSG_MAX_LINE, "all room back: %zu", room);
}

int main(void)
{
    test_bad_inputs();
    test_valid_ops();
    test_depth();
    test_builders();
    test_framer();
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
