/* Bad input of every kind gets the right error code (or, for framing
 * errors, a disconnect of that client alone) and the daemon keeps serving
 * everyone else. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <soundcard/soundcard.h>

#include "harness.h"

struct conn {
    int fd;
    char buf[1 << 17];
    size_t used;
};

static void conn_open(struct conn *c, const char *path)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    c->used = 0;
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        perror("connect");
        exit(1);
    }
}

static void conn_send(struct conn *c, const char *text)
{
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t n = send(c->fd, text + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            return;  /* the daemon may already have cut us off */
        off += (size_t)n;
    }
}

/* The next line within `timeout` s, parsed; NULL on EOF or timeout
 * (*eof tells which). */
static cJSON *conn_read(struct conn *c, double timeout, bool *eof)
{
    double deadline = now_seconds() + timeout;
    *eof = false;
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->used);
        if (nl) {
            cJSON *msg = cJSON_ParseWithLength(c->buf, (size_t)(nl - c->buf));
            c->used -= (size_t)(nl + 1 - c->buf);
            memmove(c->buf, nl + 1, c->used);
            return msg;
        }
        double left = deadline - now_seconds();
        struct pollfd p = { .fd = c->fd, .events = POLLIN };
        if (left <= 0 || poll(&p, 1, (int)(left * 1000) + 1) <= 0)
            return NULL;
        ssize_t n = recv(c->fd, c->buf + c->used, sizeof(c->buf) - c->used, 0);
        if (n <= 0) {
            *eof = true;
            return NULL;
        }
        c->used += (size_t)n;
    }
}

static const char *error_code(cJSON *reply)
{
    cJSON *e = cJSON_GetObjectItemCaseSensitive(reply, "error");
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "code"));
}

/* Send one line, expect an error reply with `code`; returns the reply. */
static void expect_error(struct conn *c, const char *line, const char *code)
{
    conn_send(c, line);
    bool eof;
    cJSON *reply = conn_read(c, 5, &eof);
    const char *got = error_code(reply);
    CHECK(got && strcmp(got, code) == 0, "%.80s -> expected %s, got %s", line, code, got ? got : "(no reply)");
    cJSON *e = cJSON_GetObjectItemCaseSensitive(reply, "error");
    const char *msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "message"));
    CHECK(msg && msg[0], "%.80s: error without a message", line);
    cJSON_Delete(reply);
}

static cJSON *expect_ok(struct conn *c, const char *line)
{
    conn_send(c, line);
    bool eof;
    cJSON *reply = conn_read(c, 5, &eof);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "ok")), "%.80s -> not ok: %s", line,
          reply ? cJSON_PrintUnformatted(reply) : "(no reply)");
    return reply;
}

/* Another client is still served normally. */
static void check_others_served(struct daemon *d, const char *after)
{
    sc_client *c;
    int err = sc_client_open(&c, d->socket_path, "bystander");
    CHECK(err == 0, "after %s: bystander cannot connect: %s", after, sc_last_error());
    if (err)
        return;
    sc_server_info info;
    CHECK(sc_get_server_info(c, &info) == 0 && info.samplerate == 48000,
          "after %s: server.info failed: %s", after, sc_last_error());
    sc_client_close(c);
}

static void expect_disconnect(struct conn *c, const char *what)
{
    bool eof = false;
    cJSON *msg;
    double deadline = now_seconds() + 5;
    while ((msg = conn_read(c, deadline - now_seconds(), &eof)))
        cJSON_Delete(msg);
    CHECK(eof, "%s: the daemon did not close the connection within 5 s", what);
}

int main(void)
{
    struct daemon d;
    char config[256];
    snprintf(config, sizeof(config), "/tmp/sc-bad-input-%d.json", (int)getpid());
    FILE *f = fopen(config, "w");
    fprintf(f, "{\"hello-timeout-ms\": 300, \"max-streams-per-client\": 3}\n");
    fclose(f);
    const char *args[] = { "--config", config, NULL };
    daemon_start(&d, args, 10);
    unlink(config);

    struct conn a;
    conn_open(&a, d.socket_path);
    expect_error(&a, "{\"id\":1,\"op\":\"server.info\"}\n", "invalid_state");  /* before hello */
    expect_error(&a, "{\"id\":2,\"op\":\"hello\",\"protocol\":2}\n", "unsupported_version");
    cJSON_Delete(expect_ok(&a, "{\"id\":3,\"op\":\"hello\",\"protocol\":1,\"name\":\"attacker\"}\n"));
    expect_error(&a, "{\"id\":4,\"op\":\"hello\",\"protocol\":1}\n", "invalid_state");
    expect_error(&a, "{\"id\":5,\"op\":\n", "bad_request");
    expect_error(&a, "not json at all\n", "bad_request");
    expect_error(&a, "\n", "bad_request");
    expect_error(&a, "[1,2,3]\n", "bad_request");
    expect_error(&a, "{\"id\":6,\"op\":\"stream.dance\"}\n", "unknown_op");
    expect_error(&a, "{\"id\":7,\"op\":\"stream.open\",\"output_channels\":\"2\"}\n", "bad_request");
    expect_error(&a, "{\"id\":8,\"op\":\"stream.open\",\"output_channels\":2.5}\n", "bad_request");
    expect_error(&a, "{\"id\":9,\"op\":\"stream.open\",\"output_channels\":3}\n", "bad_request");
    expect_error(&a, "{\"id\":10,\"op\":\"stream.start\",\"stream\":424242}\n", "not_found");
    expect_error(&a, "{\"id\":11,\"op\":\"stream.close\",\"stream\":\"x\"}\n", "bad_request");
    expect_error(&a, "{\"id\":12,\"op\":\"stream.set\",\"stream\":1,\"gain\":\"loud\"}\n", "bad_request");
    expect_error(&a, "{\"id\":13,\"op\":\"stats\",\"x\":[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]}\n", "bad_request");
    check_others_served(&d, "malformed requests");

    /* Stream limit: 3 per client, the 4th is refused with `limit`. */
    int first_stream = -1;
    for (int i = 0; i < 3; i++) {
        cJSON *r = expect_ok(&a, "{\"id\":20,\"op\":\"stream.open\",\"output_channels\":2}\n");
        if (i == 0)
            first_stream = (int)json_number(r, "stream");
        cJSON_Delete(r);
    }
    expect_error(&a, "{\"id\":21,\"op\":\"stream.open\",\"output_channels\":2}\n", "limit");

    /* A closed stream no longer counts, even before the RT thread has let
     * go of it (stream.close is answered at once): open/close in a tight
     * loop on one connection never meets the limit. */
    struct conn loop;
    conn_open(&loop, d.socket_path);
    cJSON_Delete(expect_ok(&loop, "{\"id\":1,\"op\":\"hello\",\"protocol\":1,\"name\":\"churner\"}\n"));
    for (int i = 0; i < 100; i++) {
        cJSON *r = expect_ok(&loop, "{\"id\":2,\"op\":\"stream.open\",\"output_channels\":2}\n");
        char close_line[96];
        snprintf(close_line, sizeof(close_line), "{\"id\":3,\"op\":\"stream.close\",\"stream\":%d}\n",
                 (int)json_number(r, "stream"));
        cJSON_Delete(r);
        cJSON_Delete(expect_ok(&loop, close_line));
    }
    close(loop.fd);

    /* Another client may not drive those streams. */
    struct conn b;
    conn_open(&b, d.socket_path);
    cJSON_Delete(expect_ok(&b, "{\"id\":1,\"op\":\"hello\",\"protocol\":1,\"name\":\"other\"}\n"));
    char line[128];
    snprintf(line, sizeof(line), "{\"id\":2,\"op\":\"stream.start\",\"stream\":%d}\n", first_stream);
    expect_error(&b, line, "denied");
    close(b.fd);

    /* Framing: a line over 64 KiB is answered with `limit` and cut off. */
    size_t big = 70 * 1024;
    char *huge = malloc(big + 2);
    memset(huge, 'x', big);
    huge[big] = '\n';
    huge[big + 1] = '\0';
    conn_send(&a, huge);
    free(huge);
    bool eof;
    cJSON *reply = conn_read(&a, 5, &eof);
    CHECK(error_code(reply) && strcmp(error_code(reply), "limit") == 0, "oversized line: expected limit");
    cJSON_Delete(reply);
    expect_disconnect(&a, "oversized line");
    close(a.fd);
    check_others_served(&d, "an oversized line");

    /* Its three streams went with it. */
    cJSON *stats = stats_snapshot(d.socket_path);
    CHECK(stats && cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(stats, "clients")) == 1,
          "the attacker's session is still listed");
    cJSON_Delete(stats);

    /* Saying nothing: cut off after the hello deadline. */
    struct conn silent;
    conn_open(&silent, d.socket_path);
    reply = conn_read(&silent, 5, &eof);
    CHECK(error_code(reply) && strcmp(error_code(reply), "invalid_state") == 0,
          "silent client: expected invalid_state before the cut");
    cJSON_Delete(reply);
    expect_disconnect(&silent, "silent client");
    close(silent.fd);

    /* Random bytes. */
    struct conn noise;
    conn_open(&noise, d.socket_path);
    unsigned seed = 12345;
    char bytes[4096];
    for (size_t i = 0; i < sizeof(bytes) - 1; i++)
        bytes[i] = (char)(1 + rand_r(&seed) % 255);
    bytes[sizeof(bytes) - 1] = '\0';
    conn_send(&noise, bytes);
    conn_send(&noise, "\n");
    reply = conn_read(&noise, 5, &eof);
    CHECK(reply && error_code(reply), "random bytes: expected an error reply");
    cJSON_Delete(reply);
    close(noise.fd);
    check_others_served(&d, "random bytes");

    CHECK(kill(d.pid, 0) == 0, "the daemon died");
    const char *log = slurp(d.log_path);
    CHECK(strstr(log, "unknown_op") != NULL, "the daemon did not log the unknown op");
    CHECK(daemon_stop(&d, 10) == 0, "the daemon did not stop cleanly");
    return harness_finish("bad_input");
}
