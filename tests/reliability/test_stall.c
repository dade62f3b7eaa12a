/* Stalled clients: a client that stops reading its socket is cut off, one
 * that stops writing audio underruns alone; nobody else notices either.
 *
 * soundcardd --max-outbound-bytes 65536 --tap; two victims (rel_client
 * callback, blocksize 256, latency 20 ms, 440 and 660 Hz) play throughout.
 *
 * (a) This process connects as "stalled", says hello, subscribes to every
 *     event and stops reading.  Two rel_client churn processes make events
 *     (client.added, stream.added, stream.removed, client.removed, over and
 *     over).  Once the daemon has queued 64 KiB for "stalled" beyond what
 *     the socket holds, it cuts it off: the session leaves stats, the log
 *     says why, and reading the socket now gives what was sent, then EOF.
 * (b) A third callback client ("staller", 1000 Hz) is SIGSTOPped: its underrun
 *     counter rises.  After SIGCONT it plays again: a second of its frames
 *     without one more underrun, and its tone back in the tap.
 * Throughout, both victims run with 0 underruns and their tones are in every
 * 50 ms of the tap.  SC_SOAK: (a) three times, (b) for 10 s instead of 1. */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "daemon_watch.h"

#define OUTBOUND_LIMIT "65536"

/* ---- (a) a client that does not read ---- */

static int connect_to(const char *path)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        perror("connect");
        exit(1);
    }
    return fd;
}

/* Send a request and read until its reply line: true if it says ok. */
static bool request(int fd, const char *line)
{
    if (send(fd, line, strlen(line), MSG_NOSIGNAL) != (ssize_t)strlen(line))
        return false;
    char reply[4096];
    size_t used = 0;
    while (used < sizeof(reply) - 1) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 5000) <= 0 || recv(fd, reply + used, 1, 0) != 1)
            return false;
        if (reply[used++] == '\n')
            break;
    }
    reply[used] = '\0';
    return strstr(reply, "\"ok\":true") != NULL;
}

/* Read everything until EOF, at most `timeout` s: bytes read, or -1 if the
 * connection was still open at the deadline. */
static long read_to_eof(int fd, double timeout)
{
    double deadline = now_seconds() + timeout;
    long total = 0;
    char buf[65536];
    for (;;) {
        double left = deadline - now_seconds();
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (left <= 0 || poll(&p, 1, (int)(left * 1000) + 1) <= 0)
            return -1;
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n == 0)
            return total;
        if (n < 0)
            return -1;
        total += n;
    }
}

static bool stalled_gone(cJSON *stats, void *ctx)
{
    (void)ctx;
    return stats_count_clients(stats, "stalled") == 0;
}

static void stall_reader(struct daemon *d, struct victim *v, int round)
{
    int fd = connect_to(d->socket_path);
    VERIFY(request(fd, "{\"id\":1,\"op\":\"hello\",\"protocol\":1,\"name\":\"stalled\"}\n") &&
               request(fd, "{\"id\":2,\"op\":\"subscribe\"}\n"),
           "(a) round %d: 'stalled' said hello and subscribed to every event, then stops reading", round);

    pid_t churners[2];
    char outs[2][256];
    for (int i = 0; i < 2; i++) {
        char name[32];
        snprintf(name, sizeof(name), "churn-%d", i);
        snprintf(outs[i], sizeof(outs[i]), "%s", daemon_path(d, name));
        const char *argv[] = { harness_bin("rel_client"), "churn", "--name", name, "--cycles", "0", NULL };
        churners[i] = spawn_client(d, argv, outs[i]);
    }
    double t0 = now_seconds();
    bool cut = wait_for_stats(d->socket_path, stalled_gone, NULL, 60);
    double took = now_seconds() - t0;
    VERIFY(cut, "(a) round %d: 'stalled' cut off while the events kept coming, after %.2f s", round, took);
    for (int i = 0; i < 2; i++)
        kill(churners[i], SIGTERM);
    for (int i = 0; i < 2; i++) {
        int rc = wait_child(churners[i], 10);
        VERIFY(rc == 0 && strstr(slurp(outs[i]), "cycles="), "(a) churn-%d: exit %d, %s", i, rc,
               slurp(outs[i]));
    }
    const char *why = "(stalled) gone: it does not read its socket (outbound queue limit reached)";
    VERIFY(file_has_line(d->log_path, why), "(a) the daemon's log says: client N %s", why);
    long got = read_to_eof(fd, 5);
    VERIFY(got > 0, "(a) round %d: reading now, 'stalled' gets the %ld bytes the socket held, then EOF", round,
           got);
    close(fd);
    victims_check(d, v, 2, "(a) after the cut");
}

/* ---- (b) a client that stops writing audio ---- */

struct progress {
    const char *name;
    double frames, underruns;  /* wait until at least these */
};

static bool progressed(cJSON *stats, void *ctx)
{
    struct progress *p = ctx;
    cJSON *st = stats_find_stream(stats, p->name);
    return st && json_number(st, "frames") >= p->frames && json_number(st, "underruns") >= p->underruns;
}

static double stream_number(struct daemon *d, const char *name, const char *key)
{
    cJSON *stats = stats_snapshot(d->socket_path);
    double x = json_number(stats_find_stream(stats, name), key);
    cJSON_Delete(stats);
    return x;
}

/* Returns the card time from which the staller plays steadily again. */
static double stall_writer(struct daemon *d, struct victim *v, struct victim *staller, double stop_seconds)
{
    victims_start(d, staller, 1, "callback");
    kill(staller->pid, SIGSTOP);
    /* The card runs 48000 / 256 periods a second: each one it has nothing of
     * the stopped client's is an underrun. */
    struct progress p = { staller->name, 0, 0.9 * stop_seconds * 48000 / 256 };
    bool underran = wait_for_stats(d->socket_path, progressed, &p, stop_seconds + 10);
    VERIFY(underran, "(b) 'staller' SIGSTOPped: its underruns rose to %.0f (>= %.0f)",
           stream_number(d, staller->name, "underruns"), p.underruns);
    victims_check(d, v, 2, "(b) while 'staller' is stopped");

    kill(staller->pid, SIGCONT);
    p.frames = stream_number(d, staller->name, "frames") + 24000;
    p.underruns = 0;
    VERIFY(wait_for_stats(d->socket_path, progressed, &p, 10), "(b) after SIGCONT 'staller' plays again: "
           "half a second of frames within 10 s");
    double steady_from = card_seconds(d);
    double underruns = stream_number(d, staller->name, "underruns");
    p.frames = stream_number(d, staller->name, "frames") + 48000;
    bool played = wait_for_stats(d->socket_path, progressed, &p, 10);
    double after = stream_number(d, staller->name, "underruns");
    VERIFY(played, "(b) then it plays a second of frames within 10 s");
    VERIFY_STALLABLE(after == underruns, "(b) that second without another underrun (%.0f, then %.0f)", underruns,
                     after);
    victims_check(d, v, 2, "(b) after SIGCONT");
    return steady_from;
}

static void stall_beside_victims(void)
{
    const int rounds = soak() ? 3 : 1;
    const double stop_seconds = soak() ? 10 : 1;
    printf("== stalled clients: one that does not read its socket (max-outbound-bytes " OUTBOUND_LIMIT
           "), one SIGSTOPped for %g s ==\n", stop_seconds);
    struct daemon d;
    daemon_start(&d, (const char *const[]){ "--max-outbound-bytes", OUTBOUND_LIMIT, "--tap", "@/tap.wav", NULL }, 10);
    struct victim v[3] = { { .name = "victim-1", .hz = 440 }, { .name = "victim-2", .hz = 660 },
                           { .name = "staller", .hz = 1000 } };
    victims_start(&d, v, 2, "callback");
    double tap_from = card_seconds(&d);

    for (int round = 0; round < rounds; round++)
        stall_reader(&d, v, round);
    double steady_from = stall_writer(&d, v, &v[2], stop_seconds);
    double tap_to = card_seconds(&d);

    kill(v[2].pid, SIGTERM);
    int rc = wait_child(v[2].pid, 10);
    VERIFY(rc == 0, "'staller' stopped: exit %d, its own counters: %s", rc, slurp(v[2].out));
    victims_stop(v, 2);
    CHECK(daemon_stop(&d, 10) == 0, "soundcardd did not stop cleanly (exit status above)");
    victims_check_tap(&d, v, 2, tap_from, tap_to);
    victims_check_tap(&d, v, 3, steady_from, tap_to);
}

int main(void)
{
    return beside_victims("reliability.stall", stall_beside_victims);
}
