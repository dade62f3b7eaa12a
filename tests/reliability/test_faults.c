/* Backend faults: the dummy card is told to stall or fail (--dummy-fault,
 * triggered by SIGUSR1).  The daemon must report it (log, server.xrun /
 * server.state events, server.info xruns), the clients must see it in their
 * callback status flags, and the sound must come back on its own. */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../integration/audio_check.h"
#include "attempt.h"
#include "harness.h"
#include "soundcard/soundcard.h"

#define RATE 48000
#define TONE_HZ 440.0
#define TONE_AMP 0.5

/* A full-duplex callback stream playing a tone, counting what its status
 * flags said. */
struct tone_client {
    sc_client *client;
    sc_stream *stream;
    double phase;
    _Atomic unsigned long callbacks, underflows, overflows;
};

static int tone_callback(const void *input, void *output, unsigned long frames,
                         const sc_time_info *time, unsigned status, void *userdata)
{
    (void)input;
    (void)time;
    struct tone_client *t = userdata;
    float *out = output;
    for (unsigned long i = 0; i < frames; i++) {
        float v = (float)(TONE_AMP * sin(t->phase));
        out[2 * i] = out[2 * i + 1] = v;
        t->phase += 2 * M_PI * TONE_HZ / RATE;
    }
    t->phase = fmod(t->phase, 2 * M_PI);
    if (status & SC_OUTPUT_UNDERFLOW)
        atomic_fetch_add(&t->underflows, 1);
    if (status & SC_INPUT_OVERFLOW)
        atomic_fetch_add(&t->overflows, 1);
    atomic_fetch_add(&t->callbacks, 1);
    wakeup_notify();
    return SC_CONTINUE;
}

struct count_at_least {
    _Atomic unsigned long *counter;
    unsigned long n;
};

static bool reached(void *ctx)
{
    struct count_at_least *c = ctx;
    return atomic_load(c->counter) >= c->n;
}

/* Until the callback thread has bumped `counter` to `at_least`. */
static bool wait_until(_Atomic unsigned long *counter, unsigned long at_least, double timeout)
{
    return wakeup_wait_until(reached, &(struct count_at_least){ counter, at_least }, timeout);
}

static void tone_start(struct tone_client *t, struct daemon *d)
{
    memset(t, 0, sizeof(*t));
    int err = sc_client_open(&t->client, d->socket_path, "faults");
    if (err < 0) {
        fprintf(stderr, "FAIL: sc_client_open: %s\n", sc_strerror(err));
        exit(1);
    }
    sc_stream_params p;
    sc_stream_params_init(&p);
    p.input_channels = 2;
    p.output_channels = 2;
    p.samplerate = RATE;
    p.blocksize = 256;
    p.callback = tone_callback;
    p.userdata = t;
    p.name = "tone";
    err = sc_stream_open(t->client, &p, &t->stream);
    if (err == 0)
        err = sc_stream_start(t->stream);
    if (err < 0) {
        fprintf(stderr, "FAIL: tone stream: %s: %s\n", sc_strerror(err), sc_last_error());
        exit(1);
    }
    CHECK(wait_until(&t->callbacks, 100, 10), "the tone stream was not called back 100 times");
}

static void tone_stop(struct tone_client *t)
{
    sc_stream_close(t->stream);
    sc_client_close(t->client);
}

/* A connection subscribed to the server's events. */
static int subscribe(struct daemon *d)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", d->socket_path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        fprintf(stderr, "FAIL: connect %s: %s\n", d->socket_path, strerror(errno));
        exit(1);
    }
    const char *hello = "{\"id\":1,\"op\":\"hello\",\"protocol\":1,\"name\":\"watcher\"}\n"
                        "{\"id\":2,\"op\":\"subscribe\",\"events\":[\"server\"]}\n";
    CHECK(write(fd, hello, strlen(hello)) == (ssize_t)strlen(hello), "subscribe: short write");
    return fd;
}

/* Read lines until one holds `text`, at most `timeout` seconds. */
static bool wait_line(int fd, const char *text, double timeout)
{
    static char buf[65536];
    static size_t used;
    double end = now_seconds() + timeout;
    for (;;) {
        char *nl;
        while ((nl = memchr(buf, '\n', used))) {
            *nl = '\0';
            bool found = strstr(buf, text) != NULL;
            size_t line = (size_t)(nl + 1 - buf);
            memmove(buf, nl + 1, used - line);
            used -= line;
            if (found)
                return true;
        }
        int left = (int)((end - now_seconds()) * 1000);
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (left <= 0 || poll(&p, 1, left) <= 0)
            return false;
        ssize_t n = read(fd, buf + used, sizeof(buf) - used);
        if (n <= 0)
            return false;
        used += (size_t)n;
    }
}

static const char *server_state(struct daemon *d)
{
    static char state[32];
    cJSON *info = request_once(d->socket_path, "{\"op\":\"server.info\"}");
    cJSON *st = info ? cJSON_GetObjectItemCaseSensitive(info, "state") : NULL;
    snprintf(state, sizeof(state), "%s", cJSON_IsString(st) ? st->valuestring : "?");
    cJSON_Delete(info);
    return state;
}

/* The last second the tone played (by the tap) holds it at its level in
 * every 50 ms block: the sound came back and stayed. */
static void check_tone_at_end(struct daemon *d, const char *what)
{
    char out[256];
    snprintf(out, sizeof(out), "%s", daemon_path(d, "onset.txt"));
    const char *tap = daemon_path(d, "tap.wav");
    const char *onset[] = { harness_bin("wavcheck"), tap, "--onset", NULL };
    CHECK(wait_child(spawn_client(d, onset, out), 30) == 0, "%s: wavcheck --onset failed", what);
    double first = -1, last = -1;
    sscanf(slurp(out), "first=%lf last=%lf", &first, &last);
    CHECK(last - first > 2.0, "%s: the tap holds only %.2f s of tone", what, last - first);
    char from[32], to[32];
    snprintf(from, sizeof(from), "%.3f", last - 1.1);
    snprintf(to, sizeof(to), "%.3f", last - 0.1);
    const char *check[] = { harness_bin("wavcheck"), tap, "--from", from, "--to", to, "--expect", "440:0.5",
                            NULL };
    VERIFY_STALLABLE(wait_child(spawn_client(d, check, NULL), 30) == 0,
                     "%s: the tone came back at 440 Hz, 0.5 in the tap's last second", what);
}

static void start_faulty(struct daemon *d, const char *fault, const char *period)
{
    const char *args[] = { "--dummy-fault", fault, "--tap", "@/tap.wav", "--capture", "sine:1000",
                           "--period", period, NULL };
    daemon_start(d, args, 10);
}

/* A stall shorter than the card's buffer (70 ms of the dummy card's four
 * 1024-frame periods, 85 ms): no xrun, and the missed periods are made up
 * at a pace the stream follows, so a stream with a budget of two periods
 * (43 ms) does not underrun.  Run back to back, as they once were, they
 * emptied its ring: 1 and 2 underruns in two runs. */
static void test_short_stall(void)
{
    struct daemon d;
    start_faulty(&d, "stall:70", "1024");
    struct tone_client t;
    tone_start(&t, &d);
    kill(d.pid, SIGUSR1);
    unsigned long after = atomic_load(&t.callbacks);
    CHECK(wait_until(&t.callbacks, after + 3 * RATE / 256, 10), "short stall: the stream was not called back");
    sc_stream_stats st = { 0 };
    CHECK(sc_stream_get_stats(t.stream, &st) == 0, "short stall: stats: %s", sc_last_error());
    printf("short stall: %.0f xruns, %llu underruns, %lu underflow and %lu overflow callbacks\n", card_xruns(&d),
           (unsigned long long)st.underruns, atomic_load(&t.underflows), atomic_load(&t.overflows));
    CHECK(strstr(slurp(d.log_path), "injecting a stall of 70 ms"), "short stall: the log says no stall was injected");
    double xruns = card_xruns(&d);
    VERIFY_STALLABLE(xruns == 0, "short stall: 70 ms inside an 85 ms card buffer counted %.0f xruns", xruns);
    VERIFY_STALLABLE(st.underruns == 0 && atomic_load(&t.underflows) == 0 && atomic_load(&t.overflows) == 0,
                     "short stall: the stream did not underrun (%llu underruns, %lu underflow callbacks, %lu "
                     "overflow callbacks)", (unsigned long long)st.underruns, atomic_load(&t.underflows),
                     atomic_load(&t.overflows));
    CHECK(daemon_stop(&d, 10) == 0, "short stall: the daemon did not stop cleanly");
    tone_stop(&t);
}

/* A short stall: periods are lost (one xrun), nothing else changes.  A
 * card that xran before the fault was stalled by this machine (its
 * SCHED_FIFO thread woken more than four periods late, docs/timing.md):
 * then the case starts again, up to three times, so that what it sees
 * after the fault is the fault's. */
static void test_stall(void)
{
    struct daemon d;
    struct tone_client t;
    int events;
    for (int attempt = 1;; attempt++) {
        start_faulty(&d, "stall:300", "256");
        tone_start(&t, &d);
        events = subscribe(&d);
        CHECK(wait_line(events, "\"id\":2", 5), "stall: subscribe not answered");
        double early = card_xruns(&d);
        if (early == 0 || attempt == 3)
            break;
        printf("stall: the card xran %.0f times before any fault (the machine stalled): starting again\n", early);
        close(events);
        CHECK(daemon_stop(&d, 10) == 0, "stall: the daemon did not stop cleanly");
        tone_stop(&t);
    }
    CHECK(card_xruns(&d) == 0, "stall: xruns before any fault");
    CHECK(atomic_load(&t.underflows) == 0 && atomic_load(&t.overflows) == 0,
          "stall: status flags set before any fault");

    kill(d.pid, SIGUSR1);
    CHECK(wait_line(events, "\"server.xrun\"", 3), "stall: no server.xrun event within 3 s");
    CHECK(card_xruns(&d) >= 1, "stall: server.info reports %.0f xruns", card_xruns(&d));
    CHECK(wait_until(&t.underflows, 1, 2), "stall: no callback saw SC_OUTPUT_UNDERFLOW");
    CHECK(wait_until(&t.overflows, 1, 2), "stall: no callback saw SC_INPUT_OVERFLOW");
    CHECK(strcmp(server_state(&d), "running") == 0, "stall: the card is %s", server_state(&d));
    unsigned long after = atomic_load(&t.callbacks);
    CHECK(wait_until(&t.callbacks, after + 2 * RATE / 256, 5), "stall: the stream was not called back after it");
    printf("stall: %.0f xrun(s); %lu underflow and %lu overflow callbacks\n", card_xruns(&d),
           atomic_load(&t.underflows), atomic_load(&t.overflows));
    const char *log = slurp(d.log_path);
    CHECK(strstr(log, "injecting a stall of 300 ms") && strstr(log, "xrun"),
          "stall: the log says nothing of the stall and the xrun");
    /* ... and how late the card's thread woke: the stall, and what its
     * end's wake-up took. */
    const char *woke = strstr(log, "its thread woke ");
    double late_ms = woke ? atof(woke + strlen("its thread woke ")) : -1;
    CHECK(late_ms >= 300 && late_ms < 400, "stall: the log has the card's thread %.1f ms late, not 300: %s",
          late_ms, woke ? woke : "(no such line)");
    close(events);
    CHECK(daemon_stop(&d, 10) == 0, "stall: the daemon did not stop cleanly");
    tone_stop(&t);
    check_tone_at_end(&d, "stall");
}

/* The card dies and stays away, or stalls past the watchdog's limit: the
 * streams are kept, told, and play again when it is back.  A stalled card's
 * thread stays stuck for `stuck_ms`: the loss is told long before, and the
 * daemon answers meanwhile (its loop thread does not wait for the stuck one). */
static void test_lost(const char *fault, const char *how, double stuck_ms)
{
    struct daemon d;
    start_faulty(&d, fault, "256");
    struct tone_client t;
    tone_start(&t, &d);
    int events = subscribe(&d);
    CHECK(wait_line(events, "\"id\":2", 5), "%s: subscribe not answered", fault);

    const double fault_at = now_seconds();
    kill(d.pid, SIGUSR1);
    CHECK(wait_line(events, "\"state\":\"lost\"", 4), "%s: no server.state lost event within 4 s", fault);
    double lost_at = now_seconds();
    if (stuck_ms > 0) {
        CHECK(lost_at - fault_at < stuck_ms / 1000 - 1, "%s: the loss was told %.2f s after the fault: not before "
              "the stuck card thread came back", fault, lost_at - fault_at);
        cJSON *info = request_once(d.socket_path, "{\"op\":\"server.info\"}");
        const double took = now_seconds() - lost_at;
        const char *state = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(info, "state"));
        printf("%s: lost %.2f s after the fault; server.info answered in %.3f s: %s\n", fault, lost_at - fault_at,
               took, state ? state : "(no state)");
        CHECK(took < 0.5 && state && strcmp(state, "lost") == 0,
              "%s: while the card thread was stuck, server.info took %.2f s and said %s", fault, took,
              state ? state : "nothing");
        cJSON_Delete(info);
        /* PortAudio is not thread-safe: no backend call beside the stop. */
        sc_client *c = NULL;
        char *reply = NULL;
        int err = sc_client_open(&c, d.socket_path, "devices") == 0
                      ? sc_client_request(c, "{\"op\":\"devices.list\"}", &reply) : -1;
        CHECK(err != 0 && reply && strstr(reply, "\"backend\"") && strstr(reply, "still being closed"),
              "%s: devices.list while the lost card's thread was stuck: %s", fault, reply ? reply : sc_last_error());
        free(reply);
        sc_client_close(c);
    }
    CHECK(wait_line(events, "\"state\":\"running\"", 6), "%s: no server.state running event within 6 s", fault);
    printf("%s: the card was away %.2f s after it was reported lost\n", fault, now_seconds() - lost_at);
    CHECK(card_xruns(&d) >= 1, "%s: server.info reports %.0f xruns", fault, card_xruns(&d));
    CHECK(wait_until(&t.underflows, 1, 3), "%s: no callback saw SC_OUTPUT_UNDERFLOW", fault);
    CHECK(wait_until(&t.overflows, 1, 3), "%s: no callback saw SC_INPUT_OVERFLOW", fault);
    unsigned long after = atomic_load(&t.callbacks);
    CHECK(wait_until(&t.callbacks, after + 2 * RATE / 256, 5), "%s: the stream was not called back after it",
          fault);
    const char *log = slurp(d.log_path);
    CHECK(strstr(log, how) && strstr(log, "is back"), "%s: the log does not say the card %s and came back",
          fault, how);
    CHECK(stuck_ms == 0 || (strstr(log, "thread has not stopped yet") && strstr(log, "thread has stopped")),
          "%s: the log does not say the card's thread was slow to stop, then stopped", fault);
    close(events);
    CHECK(daemon_stop(&d, 10) == 0, "%s: the daemon did not stop cleanly", fault);
    tone_stop(&t);
    check_tone_at_end(&d, fault);
}

static void expect_refused(const char *const *argv, const char *needle)
{
    char err[] = "/tmp/sc-faults-XXXXXX";
    int fd = mkstemp(err);
    close(fd);
    pid_t p = spawn_process(argv, NULL, NULL, err);
    int status = wait_child(p, 10);
    const char *text = slurp(err);
    CHECK(status == 2 && strstr(text, needle), "%s %s: exit %d, said: %s", argv[1], argv[2], status, text);
    unlink(err);
}

static void test_lost_failed(void)
{
    test_lost("fail:1500", "went away", 0);
}

static void test_lost_stalled(void)
{
    test_lost("stall:2500", "stopped running its cycle", 0);
}

static void test_lost_hung(void)
{
    test_lost("hang:4000", "stopped running its cycle", 4000);
}

/* The tone asks for the lowest latency, two periods: a stall of this
 * machine longer than that is an underrun or a dip in its tone after the
 * fault.  A case whose only failures were such checks, while the stall
 * probe saw the machine stall, runs again (attempt.h).  The faults the
 * daemon injects stop its card thread, not the machine: the probe, in
 * this process, does not see them. */
static void run_case(const char *what, double period, void (*test)(void))
{
    struct attempt a;
    attempt_begin_stallable(&a, what, 2 * period / RATE, NULL);
    do
        test();
    while (attempt_again(&a));
}

int main(void)
{
    wakeup_init();
    run_case("short stall", 1024, test_short_stall);
    run_case("stall", 256, test_stall);
    run_case("fail:1500", 256, test_lost_failed);
    run_case("stall:2500", 256, test_lost_stalled);
    run_case("hang:4000", 256, test_lost_hung);

    const char *bad_spec[] = { harness_bin("soundcardd"), "--dummy-fault", "explode:5", "--socket",
                               "/tmp/sc-faults-never.sock", NULL };
    expect_refused(bad_spec, "dummy-fault: 'explode:5' is not stall:MS, hang:MS or fail:MS");
    const char *not_dummy[] = { harness_bin("soundcardd"), "--backend", "jack", "--dummy-fault", "fail:10",
                                "--socket", "/tmp/sc-faults-never.sock", NULL };
    expect_refused(not_dummy, "only the dummy backend");
    return harness_finish("faults");
}
