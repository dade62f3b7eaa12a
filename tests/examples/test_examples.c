/* The examples (examples/) and the soundcard tool's callback and
 * rate-conversion commands, each run as a real client process against its
 * own soundcardd on the dummy card, and judged by what the card played
 * (--tap) or what was recorded, not by what the client says it did.
 *
 *   test_examples CASE        CTest runs each case as its own test
 *
 * The card: 48000 Hz, 2 channels, 256-frame periods; `--capture sine:700`
 * makes its input a 700 Hz sine at 0.5 on every channel. */
#include <math.h>
#include <stdbool.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "wavfile.h"

#define RATE 48000.0
#define CAPTURE_HZ 700.0
#define CAPTURE_AMP 0.5     /* the dummy card's sine source */
#define TONE_HZ 440.0
#define TONE_AMP 0.2        /* soundcard tone's and start_stop's default level */
#define ONSET 0.01          /* a tap sample above this is sound */
#define CLIENT_TIMEOUT 30.0

/* One daemon, one client, the daemon's tap. */
struct run {
    struct daemon d;
    char out[256];          /* the client's stdout and stderr */
    char tap[256];
    int status;             /* the client's exit status */
    double first, last;     /* where the tap has sound, seconds */
    double card_skipped;    /* wall-clock time the card skipped in xruns while the client ran */
};

/* Start soundcardd (`capture`: its input, NULL for silence) with a tap, run
 * argv (argv[0] a name in the build's bin dir) to its end, stop the daemon
 * so the tap is complete, and find where the tap has sound. */
static void run_client(struct run *r, const char *capture, const char *const *argv)
{
    const char *daemon_args[] = { "--tap", "@/tap.wav", capture ? "--capture" : NULL, capture, NULL };
    daemon_start(&r->d, daemon_args, 10);
    snprintf(r->out, sizeof r->out, "%s", daemon_path(&r->d, "client.out"));
    snprintf(r->tap, sizeof r->tap, "%s", daemon_path(&r->d, "tap.wav"));

    const char *full[16] = { 0 };
    char bin[512];
    snprintf(bin, sizeof bin, "%s", harness_bin(argv[0]));
    full[0] = bin;
    for (int i = 1; argv[i] && i < 15; i++)
        full[i] = argv[i];
    /* A card xrun skips the time it lost (the card's clock falls behind the
     * wall clock), so a client that runs for a wall-clock time is in the
     * tap for that much less; how much, the card's cycles tell. */
    const double wall0 = now_seconds(), card0 = card_seconds(&r->d), xruns0 = card_xruns(&r->d);
    /* spawn_client sends stdout to the file; stderr goes to ours, for the log. */
    r->status = wait_child(spawn_client(&r->d, full, r->out), CLIENT_TIMEOUT);
    const double card1 = card_seconds(&r->d), wall1 = now_seconds(), xruns1 = card_xruns(&r->d);
    r->card_skipped = xruns1 > xruns0 ? (wall1 - wall0) - (card1 - card0) : 0;
    printf("%s: exit %d: %s", argv[0], r->status, slurp(r->out));
    printf("card: %.0f xruns while it ran, %.3f s of wall-clock time skipped\n", xruns1 - xruns0,
           r->card_skipped);
    CHECK(r->status == 0, "%s exited with %d (-1: hung, killed after %.0f s)", argv[0], r->status,
          CLIENT_TIMEOUT);
    CHECK(daemon_stop(&r->d, 10) == 0, "soundcardd did not stop cleanly");

    int rate;
    long frames;
    CHECK(wav_extent(r->tap, ONSET, &rate, &frames, &r->first, &r->last) == 0, "cannot read %s", r->tap);
    CHECK(rate == (int)RATE, "the tap is at %d Hz", rate);
    printf("tap: sound from %.6f to %.6f s (%.0f frames)\n", r->first, r->last,
           (r->last - r->first) * RATE);
}

/* The client's output has `needle`. */
static void expect_output(struct run *r, const char *needle)
{
    CHECK(strstr(slurp(r->out), needle) != NULL, "the output lacks '%s': %s", needle, slurp(r->out));
}

/* wavcheck FILE ARGS...: every block of the window has the tones asked for. */
static void wavcheck(struct run *r, const char *file, const char *const *args, const char *what)
{
    const char *argv[32] = { harness_bin("wavcheck"), file };
    int n = 2;
    for (; *args && n < 31; args++)
        argv[n++] = *args;
    int rc = wait_child(spawn_client(&r->d, argv, NULL), 30);
    CHECK(rc == 0, "wavcheck: %s (exit %d)", what, rc);
}

/* The tap's sound holds `hz` at `amp` on both channels, margin inside its
 * ends, and nothing at `absent_hz` (0: no such check). */
static void expect_tap_tone(struct run *r, double hz, double amp, double absent_hz, const char *block_ms)
{
    char from[32], to[32], expect[64], absent[32];
    snprintf(from, sizeof from, "%.6f", r->first + 0.05);
    snprintf(to, sizeof to, "%.6f", r->last - 0.05);
    snprintf(expect, sizeof expect, "%g:%g", hz, amp);
    snprintf(absent, sizeof absent, "%g", absent_hz);
    static const char *const channels[] = { "0", "1" };
    for (int c = 0; c < 2; c++) {
        const char *args[] = { "--from", from, "--to", to, "--channel", channels[c], "--block-ms", block_ms,
                               "--expect", expect, "--tolerance", "0.02",
                               absent_hz > 0 ? "--absent" : NULL, absent, NULL };
        wavcheck(r, r->tap, args, expect);
    }
}

/* The tap's sound lasts `seconds`, within one period of a `hz` tone (the
 * onset threshold is crossed within a sample or two of either end). */
static void expect_tap_duration(struct run *r, double seconds, double hz)
{
    double tolerance = 1.0 / hz;
    CHECK(fabs(r->last - r->first - seconds) <= tolerance,
          "the tap has %.6f s of sound, expected %.6f ± %.6f s", r->last - r->first, seconds, tolerance);
}

/* The tap has `seconds` of sound, and at most 0.1 s more: the drain plays
 * what was queued, a few periods.  A client that ran `seconds` by the wall
 * clock (not by frames) is in it for less the time the card skipped. */
static void expect_run_length(struct run *r, double seconds, bool wall_clock)
{
    const double skipped = wall_clock ? r->card_skipped : 0;
    const double heard = r->last - r->first, least = seconds - 0.01 - skipped;
    CHECK(heard > least && heard < seconds + 0.1,
          "the tap has %.3f s of sound, expected %g s (more than %.3f: the card skipped %.3f s)", heard,
          seconds, least, skipped);
}

/* ---- the examples ------------------------------------------------------- */

/* Read/write and callback loopback: the card's input comes back out, whole,
 * for the time asked, without an underrun. */
static void loopback_example(const char *name, const char *label, bool wall_clock)
{
    struct run r;
    run_client(&r, "sine:700", (const char *const[]){ name, "--seconds", "2", NULL });
    char stats[64];
    snprintf(stats, sizeof stats, "%s: frames=", label);
    expect_output(&r, stats);
    expect_output(&r, " underruns=0 overruns=0");
    expect_run_length(&r, 2, wall_clock);
    expect_tap_tone(&r, CAPTURE_HZ, CAPTURE_AMP, 0, "50");
}

static void test_loopback_rw(void)
{
    loopback_example("loopback_rw", "loopback-rw", false);      /* counts its blocks */
}

static void test_loopback_callback(void)
{
    loopback_example("loopback_callback", "loopback-callback", true);   /* sleeps 2 s */
}

/* The context-manager example: its callback plays exactly the time asked,
 * and `finished` ran once. */
static void test_start_stop(void)
{
    struct run r;
    run_client(&r, NULL, (const char *const[]){ "start_stop", "--seconds", "1", NULL });
    expect_output(&r, "start-stop: played=48000 frames (1.000 s) finished=1 underruns=0");
    expect_tap_duration(&r, 1.0, TONE_HZ);
    expect_tap_tone(&r, TONE_HZ, TONE_AMP, 0, "50");
}

/* ---- the tool ----------------------------------------------------------- */

/* tone --callback: exactly round(seconds * rate) frames of tone, from a
 * stream that completes itself. */
static void test_tone_callback(void)
{
    struct run r;
    run_client(&r, NULL, (const char *const[]){ "soundcard", "tone", "--callback", "--seconds", "1", NULL });
    expect_output(&r, "tone 440 Hz: frames=");
    expect_output(&r, " underruns=0 overruns=0 clipped=0");
    expect_tap_duration(&r, 1.0, TONE_HZ);
    expect_tap_tone(&r, TONE_HZ, TONE_AMP, 0, "50");
}

/* loopback: the capture sine passes through, and the stats line carries a
 * round trip the dummy card makes plausible: at least a period each way,
 * at most the card's and the stream's buffers (and the resamplers', when
 * `rate` is not the card's). */
static void cli_loopback(const char *rate)
{
    struct run r;
    run_client(&r, "sine:700", (const char *const[]){ "soundcard", "loopback", "--seconds", "2",
                                                      rate ? "--rate" : NULL, rate, NULL });
    expect_output(&r, "loopback: frames=");
    expect_output(&r, " underruns=0 overruns=0 clipped=0 round-trip=");
    const char *rt = strstr(slurp(r.out), "round-trip=");
    double ms = rt ? strtod(rt + strlen("round-trip="), NULL) : -1;
    /* SOUNDCARD_LATENCY (CMakeLists.txt sets it) adds to the stream's budget. */
    const char *least = getenv("SOUNDCARD_LATENCY");
    double most = (rate ? 100 : 50) + (least ? 1000 * atof(least) : 0);
    CHECK(ms >= 2 * 1000 * 256 / RATE && ms <= most, "round-trip %.2f ms is not plausible (%g..%g)", ms,
          2 * 1000.0 * 256 / RATE, most);
    expect_run_length(&r, 2, true);     /* loopback --seconds runs by the wall clock */
    expect_tap_tone(&r, CAPTURE_HZ, CAPTURE_AMP, 0, "50");
}

static void test_cli_loopback(void)
{
    cli_loopback(NULL);
}

static void test_cli_loopback_44100(void)
{
    cli_loopback("44100");
}

/* play of a 44100 Hz file: 1 s of 1000 Hz at 0.3, mono.  The library
 * converts it, so the card plays 1000 Hz, not 1088 Hz (44.1 kHz samples at
 * 48 kHz). */
static void play_44100(struct run *r)
{
    char wav[64];
    snprintf(wav, sizeof wav, "/tmp/sc-play44k-%d.wav", (int)getpid());
    SF_INFO info = { .samplerate = 44100, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_FLOAT };
    SNDFILE *f = sf_open(wav, SFM_WRITE, &info);
    if (!f) {
        fprintf(stderr, "cannot write %s: %s\n", wav, sf_strerror(NULL));
        exit(1);
    }
    static float buf[44100];
    for (int i = 0; i < 44100; i++)
        buf[i] = (float)(0.3 * sin(2 * M_PI * 1000.0 * i / 44100));
    CHECK(sf_writef_float(f, buf, 44100) == 44100, "short write to %s", wav);
    sf_close(f);
    run_client(r, NULL, (const char *const[]){ "soundcard", "play", wav, NULL });
    unlink(wav);
    expect_output(r, " underruns=0 overruns=0 clipped=0");
}

static void test_play_44100(void)
{
    struct run r;
    play_44100(&r);
    expect_tap_tone(&r, 1000.0, 0.3, 1000.0 * RATE / 44100, "100");
}

/* ... and all of it is heard: 1 s, not 0.92 s (played unconverted) nor
 * less by what the resampler still held when the file ended. */
static void test_play_44100_length(void)
{
    struct run r;
    play_44100(&r);
    expect_tap_duration(&r, 1.0, 1000.0);
}

/* rec --rate 44100: a 44100 Hz file of exactly the time asked, holding the
 * card's 700 Hz (not 643 Hz: 48 kHz samples labelled 44.1 kHz). */
static void test_rec_44100(void)
{
    struct run r;
    char wav[256];
    snprintf(wav, sizeof wav, "/tmp/sc-rec44k-%d.wav", (int)getpid());
    run_client(&r, "sine:700", (const char *const[]){ "soundcard", "rec", wav, "--rate", "44100",
                                                      "--seconds", "1", "--float", NULL });
    expect_output(&r, " overruns=0 ");
    int rate;
    long frames;
    double first, last;
    CHECK(wav_extent(wav, ONSET, &rate, &frames, &first, &last) == 0, "cannot read %s", wav);
    CHECK(rate == 44100 && frames == 44100, "recorded %ld frames at %d Hz, expected 44100 at 44100",
          frames, rate);
    const char *args[] = { "--block-ms", "100", "--expect", "700:0.5", "--tolerance", "0.02",
                           "--absent", "643.125", NULL };
    wavcheck(&r, wav, args, "the recording is not 700 Hz at 0.5");
    unlink(wav);
}

static const struct {
    const char *name;
    void (*run)(void);
} cases[] = {
    { "loopback_rw", test_loopback_rw },
    { "loopback_callback", test_loopback_callback },
    { "start_stop", test_start_stop },
    { "tone_callback", test_tone_callback },
    { "cli_loopback", test_cli_loopback },
    { "cli_loopback_44100", test_cli_loopback_44100 },
    { "play_44100", test_play_44100 },
    { "play_44100_length", test_play_44100_length },
    { "rec_44100", test_rec_44100 },
};

int main(int argc, char **argv)
{
    for (size_t i = 0; argc == 2 && i < sizeof cases / sizeof cases[0]; i++) {
        if (strcmp(argv[1], cases[i].name) == 0) {
            cases[i].run();
            return harness_finish(argv[1]);
        }
    }
    fprintf(stderr, "usage: test_examples CASE; cases:");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        fprintf(stderr, " %s", cases[i].name);
    fprintf(stderr, "\n");
    return 2;
}
