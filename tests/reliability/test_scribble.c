/* Scribbled shared memory: a client that writes garbage over its stream's
 * memfd hurts nobody but itself.
 *
 * soundcardd --tap; two victims (rel_client callback, blocksize 256, latency
 * 20 ms, 440 and 660 Hz) play throughout.  Two rel_scribbler
 * processes run at once for 5 s (SC_SOAK: 60 s): a full-duplex stereo stream
 * at gain 1 and a play-only mono stream at gain 16, each scribbling its header
 * and rings thousands of times (random bytes, hostile indices, NaN/Inf/huge
 * samples, punched holes).  Checked:
 *   - each scribbler found its seals holding (ftruncate shrink and grow,
 *     fallocate, F_ADD_SEALS: EPERM) and scribbled more than 1000 rounds;
 *   - every 100 ms meanwhile: server.info answers, and the scribblers'
 *     stats are sane: every counter a finite number >= 0, their state a state
 *     name, capacity and channels as they were when opened (the daemon's own
 *     copies, not the scribbled header's); their samples reached the mix
 *     (clipped > 0);
 *   - the victims run with 0 underruns, before, during and after, and their
 *     tones are in every 50 ms of the tap once the scribblers are gone;
 *   - afterwards the daemon's descriptors and stream memfd mappings are back;
 *   - the whole tap, read with libsndfile, holds no NaN or Inf and no sample
 *     beyond [-1, 1].
 *
 * Then, on a daemon of its own at a 64-frame period, `rel_scribbler --attack
 * wakefd` goes for the stream's wake-up descriptor: it clears O_NONBLOCK,
 * tries to write into it and never reads it, until the pipe is full.  When
 * that descriptor was an eventfd (one open file description with the
 * daemon's), this blocked the RT thread for good and hung soundcardd.
 * Checked: the descriptor refuses the write, the pipe fills, `soundcard
 * status` answers within 5 s meanwhile, the card goes on cycling and the
 * victims keep 0 underruns.  The same for `--attack futex`: 256 threads
 * wait on the attacker's futex word, which it keeps marked as slept on and
 * scribbles, so the RT thread's FUTEX_WAKE meets hundreds of waiters every
 * period (it wakes at most 2). */
#include <math.h>
#include <sndfile.h>
#include <sys/wait.h>

#include "daemon_watch.h"

#define SCRIBBLERS 2

struct scribbler {
    const char *name, *layout, *gain, *seed;
    pid_t pid;
    int status;              /* exit status once it ended, -1 before */
    char out[256];
    double capacity, in, out_channels;  /* as first seen in stats */
    double clipped;
    int snapshots, insane;
};

/* ---- stats of a stream that scribbles over its own header ---- */

static bool finite_count(cJSON *stream, const char *key)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(stream, key);
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble >= 0;
}

/* Whether one scribbler's entry in stats is sane; says why not (once). */
static void check_sane(struct scribbler *s, cJSON *st)
{
    static const char *const counters[] = { "frames", "underruns", "overruns", "clipped", "peak", "wakeups",
                                            "gain", "capacity", "input_channels", "output_channels" };
    static const char *const states[] = { "stopped", "starting", "running", "draining" };
    char why[160] = "";
    for (size_t i = 0; i < sizeof(counters) / sizeof(*counters) && !why[0]; i++)
        if (!finite_count(st, counters[i]))
            snprintf(why, sizeof(why), "'%s' is not a finite number >= 0", counters[i]);
    bool known = false;
    for (size_t i = 0; i < 4; i++)
        known |= strcmp(json_string(st, "state"), states[i]) == 0;
    if (!why[0] && !known)
        snprintf(why, sizeof(why), "state '%s'", json_string(st, "state"));
    if (s->snapshots == 0) {
        s->capacity = json_number(st, "capacity");
        s->in = json_number(st, "input_channels");
        s->out_channels = json_number(st, "output_channels");
    }
    if (!why[0] && (json_number(st, "capacity") != s->capacity || json_number(st, "input_channels") != s->in ||
                    json_number(st, "output_channels") != s->out_channels))
        snprintf(why, sizeof(why), "geometry changed to capacity %.0f, %.0f in, %.0f out",
                 json_number(st, "capacity"), json_number(st, "input_channels"), json_number(st, "output_channels"));
    if (why[0] && s->insane++ == 0) {
        char *text = cJSON_PrintUnformatted(st);
        fprintf(stderr, "%s: insane stats (%s): %s\n", s->name, why, text);
        free(text);
    }
    double clipped = json_number(st, "clipped");
    s->clipped = clipped > s->clipped ? clipped : s->clipped;
    s->snapshots++;
}

/* ---- the tap ---- */

/* Every sample of the tap: how many are not finite or beyond [-1, 1]. */
static long tap_bad_samples(const char *path, long *frames, double *peak, double *first_bad)
{
    SF_INFO info = { 0 };
    SNDFILE *f = sf_open(path, SFM_READ, &info);
    if (!f)
        return -1;
    float buf[8192];
    long bad = 0, pos = 0;
    sf_count_t n;
    *peak = 0;
    *first_bad = -1;
    while ((n = sf_readf_float(f, buf, 8192 / info.channels)) > 0) {
        for (sf_count_t i = 0; i < n * info.channels; i++) {
            double x = buf[i];
            if (!isfinite(x) || fabs(x) > 1.0) {
                if (bad++ == 0)
                    *first_bad = (double)(pos + i / info.channels) / info.samplerate;
            } else if (fabs(x) > *peak) {
                *peak = fabs(x);
            }
        }
        pos += (long)n;
    }
    *frames = pos;
    sf_close(f);
    return bad;
}

/* ---- the run ---- */

static void scribblers_start(struct daemon *d, struct scribbler *s, double seconds)
{
    char secs[32];
    snprintf(secs, sizeof(secs), "%g", seconds);
    for (int i = 0; i < SCRIBBLERS; i++) {
        snprintf(s[i].out, sizeof(s[i].out), "%s", daemon_path(d, s[i].name));
        const char *argv[] = { harness_bin("rel_scribbler"), "--name", s[i].name, "--layout", s[i].layout,
                               "--seconds", secs, "--gain", s[i].gain, "--seed", s[i].seed, NULL };
        s[i].pid = spawn_client(d, argv, s[i].out);
        s[i].status = -1;
    }
}

static bool scribblers_running(struct scribbler *s)
{
    bool running = false;
    for (int i = 0; i < SCRIBBLERS; i++) {
        int status;
        if (s[i].status < 0 && waitpid(s[i].pid, &status, WNOHANG) == s[i].pid)
            s[i].status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        running |= s[i].status < 0;
    }
    return running;
}

/* Every 100 ms until both scribblers end: the daemon answers, the
 * scribblers' stats are sane, the victims do not underrun. */
static void watch(struct daemon *d, struct scribbler *s, struct victim *v, double timeout)
{
    int probes = 0, unanswered = 0;
    double victim_underruns = 0, deadline = now_seconds() + timeout;
    while (scribblers_running(s) && now_seconds() < deadline) {
        cJSON *info = request_once(d->socket_path, "{\"op\":\"server.info\"}");
        unanswered += !info;
        cJSON_Delete(info);
        cJSON *stats = stats_snapshot(d->socket_path);
        unanswered += !stats;
        for (int i = 0; i < SCRIBBLERS; i++) {
            cJSON *st = stats_find_stream(stats, s[i].name);
            if (st)
                check_sane(&s[i], st);
        }
        for (int i = 0; i < 2; i++)
            victim_underruns += json_number(stats_find_stream(stats, v[i].name), "underruns");
        cJSON_Delete(stats);
        probes++;
        sleep_seconds(0.1);
    }
    for (int i = 0; i < SCRIBBLERS; i++) {
        if (s[i].status < 0) {
            s[i].status = wait_child(s[i].pid, 1);
            VERIFY(0, "%s still running %.0f s after it should have ended (killed)", s[i].name, timeout);
        }
    }
    VERIFY(unanswered == 0, "the daemon answered server.info and stats %d times while scribbled at (%d unanswered)",
           probes, unanswered);
    VERIFY_STALLABLE(victim_underruns == 0, "the victims had 0 underruns in all %d snapshots (summed: %.0f)",
                     probes, victim_underruns);
}

static void check_scribbler(struct scribbler *s)
{
    const char *out = slurp(s->out);
    const char *rounds = strstr(out, "rounds=");
    long n = rounds ? strtol(rounds + 7, NULL, 10) : 0;
    int refused = 0;
    for (const char *p = out; (p = strstr(p, "refused (EPERM)")); p++)
        refused++;
    VERIFY(s->status == 0 && refused == 6, "%s (%s, gain %s): exit %d, %d of 6 seal checks refused with EPERM",
           s->name, s->layout, s->gain, s->status, refused);
    VERIFY(n > 1000, "%s: %ld scribble rounds (> 1000): %s", s->name, n, rounds ? rounds : out);
    VERIFY(s->snapshots > 0 && s->insane == 0, "%s: its stats sane in %d of %d snapshots", s->name,
           s->snapshots - s->insane, s->snapshots);
    VERIFY(s->clipped > 0, "%s: its scribbled samples reached the mix (clipped %.0f)", s->name, s->clipped);
}

/* An attack on the wake-up (`rel_scribbler --attack KIND`), probed from
 * other processes with deadlines: if the daemon hangs, this fails instead
 * of hanging too.  `sign` is the attacker's line that says the attack is
 * on. */
static void wake_attack(const char *kind, const char *what, const char *sign)
{
    printf("== a client %s beside 2 victims (64-frame period) ==\n", what);
    struct daemon d;
    daemon_start(&d, (const char *const[]){ "--period", "64", NULL }, 10);
    struct victim v[2] = { { .name = "victim-1", .hz = 440 }, { .name = "victim-2", .hz = 660 } };
    victims_start(&d, v, 2, "callback");
    const char *attack[] = { harness_bin("rel_scribbler"), "--name", "attacker", "--attack", kind,
                             "--layout", "mono", "--seconds", "10", NULL };
    const char *status[] = { harness_bin("soundcard"), "status", NULL };
    char out[256];
    snprintf(out, sizeof(out), "%s", daemon_path(&d, "attacker"));
    pid_t attacker = spawn_client(&d, attack, out);
    bool on = false;
    for (double end = now_seconds() + 15; !on && now_seconds() < end; sleep_seconds(0.1))
        on = file_has_line(out, sign);
    double card = card_seconds(&d);
    int rc = wait_child(spawn_client(&d, status, NULL), 5);
    VERIFY(on, "%s attack: the attacker said \"%s\" within 15 s: %s", kind, sign, slurp(out));
    VERIFY(rc == 0, "%s attack: `soundcard status` answered within 5 s while a client %s (exit %d; -1: no "
           "answer, killed)", kind, what, rc);
    VERIFY(wait_card_seconds(&d, card + 1, 5), "%s attack: the card cycles on meanwhile", kind);
    int arc = wait_child(attacker, 15);
    VERIFY(arc == 0, "%s attack: the attacker carried it out (exit %d): %s", kind, arc, slurp(out));
    printf("%s", slurp(out));
    if (rc != 0) {   /* the daemon may hang: do not wait for it */
        victims_stop(v, 2);
        kill(d.pid, SIGKILL);
        wait_child(d.pid, 5);
        return;
    }
    char after[64];
    snprintf(after, sizeof(after), "after the %s attack", kind);
    victims_check(&d, v, 2, after);
    victims_stop(v, 2);
    CHECK(daemon_stop(&d, 10) == 0, "%s attack: soundcardd did not stop cleanly (exit status above)", kind);
}

static void scribble_beside_victims(void)
{
    const double seconds = soak() ? 60 : 5;
    printf("== two clients scribble over their shared memory for %g s beside 2 victims ==\n", seconds);
    struct daemon d;
    daemon_start(&d, (const char *const[]){ "--tap", "@/tap.wav", NULL }, 10);
    struct victim v[2] = { { .name = "victim-1", .hz = 440 }, { .name = "victim-2", .hz = 660 } };
    victims_start(&d, v, 2, "callback");
    const int fds0 = settled_fd_count(d.pid), maps0 = proc_stream_maps(d.pid);

    struct scribbler s[SCRIBBLERS] = {
        { .name = "scribbler-duplex", .layout = "duplex", .gain = "1", .seed = "1" },
        { .name = "scribbler-mono", .layout = "mono", .gain = "16", .seed = "2" },
    };
    scribblers_start(&d, s, seconds);
    watch(&d, s, v, seconds + 30);
    for (int i = 0; i < SCRIBBLERS; i++)
        check_scribbler(&s[i]);
    for (int i = 0; i < SCRIBBLERS; i++)
        printf("%s", slurp(s[i].out));

    CHECK(kill(d.pid, 0) == 0, "soundcardd died");
    VERIFY(wait_resources(d.pid, fds0, maps0, 5), "the daemon's descriptors back to %d (%d), stream memfds mapped "
           "back to %d (%d)", fds0, proc_fd_count(d.pid), maps0, proc_stream_maps(d.pid));
    victims_check(&d, v, 2, "after the scribblers");
    double clean_from = card_seconds(&d);
    wait_card_seconds(&d, clean_from + 1, 10);
    double clean_to = card_seconds(&d);
    victims_stop(v, 2);
    CHECK(daemon_stop(&d, 10) == 0, "soundcardd did not stop cleanly (exit status above)");

    long frames;
    double peak, first_bad;
    long bad = tap_bad_samples(daemon_path(&d, "tap.wav"), &frames, &peak, &first_bad);
    VERIFY(bad == 0 && frames > 48000 * seconds, "the tap (%.1f s) has %ld samples that are NaN, Inf or beyond "
           "[-1, 1] (first at %.3f s); peak of the rest %.3f", frames / 48000.0, bad, first_bad, peak);
    victims_check_tap(&d, v, 2, clean_from, clean_to);
    wake_attack("wakefd", "blocks and fills its wake-up pipe", "pipe full");
    wake_attack("futex", "has 256 threads wait on its futex word and scribbles it", "futex attack:");
}

int main(void)
{
    return beside_victims("reliability.scribble", scribble_beside_victims);
}
