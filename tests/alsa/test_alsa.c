/* The ALSA plugin `soundcard` from the programs' side (issue 11).
 *
 *   test_alsa MODE
 *
 * Each mode starts its own soundcardd (dummy card, 48000 Hz, period 256,
 * --tap, --capture sine:700) and gives the ALSA programs it runs a private
 * HOME whose ~/.asoundrc includes the build tree's 50-soundcard.conf
 * ($SC_ALSA_CONF, naming the plugin just built) and points pcm.soundcard
 * and ctl.soundcard at the daemon's socket.  What the card played is judged
 * from the tap (wavcheck, and tap.h).
 *
 *   mix        aplay -D soundcard (440 Hz, 44100 Hz S16_LE, 3 s) beside a
 *              native `soundcard tone` at 1000 Hz: both at their level in
 *              every 50 ms block of the overlap, no gap, 0 underruns
 *   formats    aplay of S16_LE, S32_LE, S24_3LE, FLOAT_LE, U8; 8000, 44100,
 *              48000, 96000, 192000 Hz; mono; left/right kept apart
 *   record     arecord -D soundcard in five formats/rates/channel counts
 *              gets the 700 Hz input at 0.5 from its first block
 *   portaudio  PortAudio's ALSA host API: device "soundcard", blocking play
 *              (48000 and 44100 Hz), blocking record, a full-duplex callback
 *   poll       non-blocking playback driven only by poll() for 10 s: no
 *              -EPIPE, never XRUN, no gap in the tap
 *   delay      snd_pcm_delay before each click is written predicts when the
 *              tap has it, within one period (48000, 44100, latency_ms 100)
 *   nodaemon   no daemon: aplay, arecord, amixer and a PortAudio program
 *              fail at once, naming the socket they tried
 *   drain      exactly 1.000 s (aplay at 48000 and 44100 Hz, alsa-lib with a
 *              partial last period) is 1.000 s in the tap; a 0.1 s file too
 *   drop       drop with 1 s buffered: it is not played; prepare recovers
 *   pause      pause 1 s and resume: a 1 s hole, nothing lost
 *   xrun       an underrun is -EPIPE and prepare recovers; a capture
 *              overrun the same
 *   lost       soundcardd stops (SIGTERM) or dies (SIGKILL) under aplay and
 *              arecord: both end with an error within 3 s, not a hang
 *   config     aplay -L lists soundcard; ctl.soundcard opens; soundcard
 *              made the default device; a PCM of one's own (socket, name,
 *              latency_ms); an unknown option is refused */
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <soundcard/soundcard.h>

#include "audio_check.h"
#include "harness.h"
#include "rig.h"
#include "tap.h"
#include "wavfile.h"

/* ------------------------------------------------------------------ */
/* mix: aplay beside a native client                                  */

static bool native_running(cJSON *stats, void *ctx)
{
    (void)ctx;
    return json_number(stats_find_stream(stats, "native"), "frames") > RATE / 10;
}

static void mode_mix(void)
{
    struct daemon d;
    up(&d);
    sox((const char *const[]){ "-n", "-r", "44100", "-b", "16", "-e", "signed", "-c", "2", path_in("a440.wav"),
                               "synth", "3", "sine", "440", "vol", "0.25", NULL });
    const char *tone[] = { harness_bin("soundcard"), "tone", "--freq", "1000", "--seconds", "5", "--gain",
                           "0.25", "--name", "native", NULL };
    pid_t native = spawn_client(&d, tone, path_in("native.out"));
    CHECK(wait_for_stats(d.socket_path, native_running, NULL, 10), "the native tone did not start");
    struct watch w;
    const char *aplay[] = { which("aplay"), "-D", "soundcard", path_in("a440.wav"), NULL };
    int rc = watch_child(&d, start("aplay", aplay), "alsa", 30, &w);
    printf("%s", output_of("aplay", "err"));
    CHECK(rc == 0, "aplay exit %d", rc);
    printf("aplay's stream \"alsa\": ran %s, frames %.0f, underruns %.0f\n", w.seen ? "yes" : "no", w.frames,
           w.underruns);
    SOUND_CHECK(w.seen && w.underruns == 0, "aplay's stream: seen running %d, underruns %.0f", w.seen, w.underruns);
    CHECK(wait_child(native, 30) == 0, "the native tone failed: %s", slurp(path_in("native.out")));
    printf("native: %s", slurp(path_in("native.out")));
    SOUND_CHECK(strstr(slurp(path_in("native.out")), "underruns=0 "), "the native client underran");
    CHECK(daemon_stop(&d, 15) == 0, "soundcardd did not stop cleanly");

    double s, e;
    if (!tone_span(tap_of(&d), 0, 440, 0.125, &s, &e)) {
        CHECK(false, "no 440 Hz in the tap");
        return;
    }
    printf("tap: 440 Hz from %.2f s to %.2f s\n", s, e);
    SOUND_CHECK(fabs(e - s - 3.0) <= 0.03, "aplay's 3 s lasted %.3f s in the tap", e - s);
    for (int ch = 0; ch < 2; ch++)
        SOUND_CHECK(tone_in(tap_of(&d), ch, s + 0.03, e - 0.03,
                      (const char *const[]){ "440:0.25", "1000:0.25", "-700", NULL }),
              "channel %d: both tones, at 0.25 each, in every 50 ms block of the overlap", ch);
    if (s > 0.35)
        SOUND_CHECK(tone_in(tap_of(&d), 0, s - 0.3, s - 0.02, (const char *const[]){ "1000:0.25", "-440", NULL }),
              "the native tone alone before aplay");
}

/* ------------------------------------------------------------------ */
/* formats, rates, channels                                           */

struct fmt_case {
    const char *alsa, *enc, *bits;
    const char *rate, *channels;
    double hz, hz_right;   /* hz_right: a stereo file with another tone on the right */
};

static void mode_formats(void)
{
    static const struct fmt_case cases[] = {
        { "S16_LE", "signed", "16", "48000", "2", 300, 0 },
        { "S32_LE", "signed", "32", "48000", "2", 600, 0 },
        { "S24_3LE", "signed", "24", "48000", "2", 900, 0 },
        { "FLOAT_LE", "floating-point", "32", "48000", "2", 1200, 0 },
        { "U8", "unsigned", "8", "48000", "2", 1500, 0 },
        { "S16_LE", "signed", "16", "8000", "2", 1800, 0 },
        { "S16_LE", "signed", "16", "44100", "2", 2100, 0 },
        { "S16_LE", "signed", "16", "96000", "2", 2400, 0 },
        { "FLOAT_LE", "floating-point", "32", "192000", "2", 2700, 0 },
        { "S16_LE", "signed", "16", "48000", "1", 3000, 0 },
        { "S24_3LE", "signed", "24", "22050", "2", 3300, 3900 },
    };
    const int n = (int)(sizeof(cases) / sizeof(cases[0]));
    struct daemon d;
    up(&d);
    for (int i = 0; i < n; i++) {
        const struct fmt_case *c = &cases[i];
        char file[64], hz[16], hz2[16];
        snprintf(file, sizeof(file), "case%d.raw", i);
        snprintf(hz, sizeof(hz), "%.0f", c->hz);
        snprintf(hz2, sizeof(hz2), "%.0f", c->hz_right);
        const char *args[32] = { "-n", "-t", "raw", "-r", c->rate, "-e", c->enc, "-b", c->bits, "-c",
                                 c->channels, "-L", path_in(file), "synth", "1", "sine", hz };
        int k = 17;
        if (c->hz_right > 0) {   /* two synths: one per channel */
            args[k++] = "sine";
            args[k++] = hz2;
        }
        args[k++] = "vol";
        args[k++] = "0.5";
        args[k] = NULL;
        sox(args);
        const char *aplay[] = { which("aplay"), "-q", "-D", "soundcard", "-t", "raw", "-f", c->alsa,
                                "-r", c->rate, "-c", c->channels, path_in(file), NULL };
        CHECK(run("aplay", aplay, 20) == 0, "aplay -f %s -r %s -c %s failed", c->alsa, c->rate, c->channels);
    }
    CHECK(daemon_stop(&d, 15) == 0, "soundcardd did not stop cleanly");

    for (int i = 0; i < n; i++) {
        const struct fmt_case *c = &cases[i];
        double s, e;
        printf("-- %s, %s Hz, %s channel(s): %.0f Hz%s\n", c->alsa, c->rate, c->channels, c->hz,
               c->hz_right > 0 ? " left, another tone right" : "");
        if (!tone_span(tap_of(&d), 0, c->hz, 0.25, &s, &e)) {
            CHECK(false, "%s at %s Hz: no %.0f Hz in the tap", c->alsa, c->rate, c->hz);
            continue;
        }
        printf("tap: %.0f Hz from %.2f s to %.2f s\n", c->hz, s, e);
        SOUND_CHECK(fabs(e - s - 1.0) <= 0.03, "%s at %s Hz: 1 s of sound lasted %.3f s", c->alsa, c->rate, e - s);
        char expect[32], absent[32], expect_r[32], absent_r[32];
        snprintf(expect, sizeof(expect), "%.0f:0.5", c->hz);
        snprintf(absent, sizeof(absent), "-%.0f", c->hz_right);
        snprintf(expect_r, sizeof(expect_r), "%.0f:0.5", c->hz_right);
        snprintf(absent_r, sizeof(absent_r), "-%.0f", c->hz);
        if (c->hz_right > 0) {
            SOUND_CHECK(tone_in(tap_of(&d), 0, s + 0.03, e - 0.03, (const char *const[]){ expect, absent, NULL }),
                  "%s at %s Hz: the left channel has the left tone only", c->alsa, c->rate);
            SOUND_CHECK(tone_in(tap_of(&d), 1, s + 0.03, e - 0.03, (const char *const[]){ expect_r, absent_r, NULL }),
                  "%s at %s Hz: the right channel has the right tone only", c->alsa, c->rate);
        } else {
            for (int ch = 0; ch < 2; ch++)   /* mono: heard on both channels */
                SOUND_CHECK(tone_in(tap_of(&d), ch, s + 0.03, e - 0.03, (const char *const[]){ expect, NULL }),
                      "%s at %s Hz, %s channel(s): %.0f Hz at 0.5 on channel %d", c->alsa, c->rate,
                      c->channels, c->hz, ch);
        }
    }
}

/* ------------------------------------------------------------------ */
/* record                                                             */

static void mode_record(void)
{
    static const char *const cases[][3] = {
        { "S16_LE", "44100", "2" }, { "FLOAT_LE", "48000", "2" }, { "S32_LE", "96000", "1" },
        { "S24_3LE", "22050", "2" }, { "U8", "8000", "1" },
    };
    struct daemon d;
    up(&d);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char file[64];
        snprintf(file, sizeof(file), "rec%zu.wav", i);
        const char *arecord[] = { which("arecord"), "-D", "soundcard", "-f", cases[i][0], "-r", cases[i][1],
                                  "-c", cases[i][2], "-d", "2", path_in(file), NULL };
        if (run("arecord", arecord, 20) != 0) {
            CHECK(false, "arecord -f %s -r %s -c %s failed", cases[i][0], cases[i][1], cases[i][2]);
            continue;
        }
        printf("%s", output_of("arecord", "err"));
        int rate;
        long frames;
        double first, last;
        CHECK(wav_extent(path_in(file), 0.01, &rate, &frames, &first, &last) == 0, "cannot read %s", file);
        CHECK(rate == atoi(cases[i][1]) && frames == 2L * rate, "%s: %ld frames at %d Hz, expected 2 s at %s",
              file, frames, rate, cases[i][1]);
        /* libsoundcard's callback capture through its resampler starts with
         * the resampler's delay as zeros (5 ms at 44100 Hz, 32 ms at 8000). */
        printf("%s: the sound starts %.2f ms into the recording\n", file, first * 1e3);
        SOUND_CHECK(first >= 0 && first < 0.04, "%s: the recording starts with %.4f s of silence", file, first);
        for (int ch = 0; ch < atoi(cases[i][2]); ch++)
            SOUND_CHECK(tone_in(path_in(file), ch, 0.05, 2.0, (const char *const[]){ "700:0.5", NULL }),
                  "arecord -f %s -r %s -c %s: 700 Hz at 0.5 on channel %d", cases[i][0], cases[i][1],
                  cases[i][2], ch);
    }
    CHECK(daemon_stop(&d, 15) == 0, "soundcardd did not stop cleanly");
}

/* ------------------------------------------------------------------ */
/* PortAudio                                                          */

static void mode_portaudio(void)
{
    struct daemon d;
    up(&d);
    const char *pa = harness_bin("pa_client");
    CHECK(run("pa", (const char *const[]){ pa, "list", NULL }, 30) == 0, "pa_client list failed");
    CHECK(run("pa", (const char *const[]){ pa, "play", "440", "1.5", "48000", NULL }, 30) == 0,
          "PortAudio: blocking playback at 48000 Hz failed");
    CHECK(run("pa", (const char *const[]){ pa, "play", "660", "1.5", "44100", NULL }, 30) == 0,
          "PortAudio: blocking playback at 44100 Hz failed");
    CHECK(run("pa", (const char *const[]){ pa, "rec", path_in("pa_rec.wav"), "1.5", "44100", NULL }, 30) == 0,
          "PortAudio: blocking recording failed");
    CHECK(run("pa", (const char *const[]){ pa, "duplex", "880", "2", path_in("pa_duplex.wav"), NULL }, 30) == 0,
          "PortAudio: the full-duplex callback stream failed");
    CHECK(daemon_stop(&d, 15) == 0, "soundcardd did not stop cleanly");

    static const double tones[][2] = { { 440, 1.5 }, { 660, 1.5 }, { 880, 2.0 } };
    for (int i = 0; i < 3; i++) {
        double s, e;
        if (!tone_span(tap_of(&d), 0, tones[i][0], 0.15, &s, &e)) {
            CHECK(false, "PortAudio's %.0f Hz is not in the tap", tones[i][0]);
            continue;
        }
        printf("tap: %.0f Hz from %.2f s to %.2f s\n", tones[i][0], s, e);
        /* The full-duplex callback stream (880 Hz) ends with paComplete, and
         * PortAudio 19.6's ALSA host API then drops what ALSA still holds
         * instead of draining: its output latency (it asks for the high
         * one, 0.035 s here) and the period in flight, 0.050 s measured. */
        double slack = i == 2 ? 0.07 : 0.03;
        AUDIO_CHECK(fabs(e - s - tones[i][1]) <= slack, "PortAudio's %.1f s of %.0f Hz lasted %.3f s", tones[i][1],
              tones[i][0], e - s);
        char expect[32];
        snprintf(expect, sizeof(expect), "%.0f:0.3", tones[i][0]);
        for (int ch = 0; ch < 2; ch++)
            AUDIO_CHECK(tone_in(tap_of(&d), ch, s + 0.03, e - 0.03, (const char *const[]){ expect, NULL }),
                  "PortAudio's %.0f Hz at 0.3 on channel %d, no gap", tones[i][0], ch);
    }
    for (int ch = 0; ch < 2; ch++) {
        AUDIO_CHECK(tone_in(path_in("pa_rec.wav"), ch, 0.05, 1.5, (const char *const[]){ "700:0.5", NULL }),
              "PortAudio's recording: 700 Hz at 0.5 on channel %d", ch);
        AUDIO_CHECK(tone_in(path_in("pa_duplex.wav"), ch, 0.05, 2.0, (const char *const[]){ "700:0.5", "-880", NULL }),
              "PortAudio's full-duplex input: 700 Hz at 0.5 on channel %d", ch);
    }
}

/* ------------------------------------------------------------------ */
/* poll                                                               */

static void mode_poll(void)
{
    struct daemon d;
    up(&d);
    struct watch w;
    const char *argv[] = { harness_bin("alsa_client"), "soundcard", "poll", "10", NULL };
    int rc = watch_child(&d, start("client", argv), "alsa", 40, &w);
    printf("%s", output_of("client", "out"));
    CHECK(rc == 0, "alsa_client poll: exit %d: %s", rc, output_of("client", "err"));
    printf("its stream: ran %s, frames %.0f, underruns %.0f\n", w.seen ? "yes" : "no", w.frames, w.underruns);
    AUDIO_CHECK(w.seen && w.underruns == 0, "the daemon counted no underrun of the stream (%.0f)", w.underruns);
    CHECK(daemon_stop(&d, 15) == 0, "soundcardd did not stop cleanly");
    double s, e;
    if (!tone_span(tap_of(&d), 0, 440, 0.15, &s, &e)) {
        CHECK(false, "no 440 Hz in the tap");
        return;
    }
    printf("tap: 440 Hz from %.2f s to %.2f s\n", s, e);
    AUDIO_CHECK(fabs(e - s - 10.0) <= 0.03, "10 s of playback lasted %.3f s", e - s);
    AUDIO_CHECK(tone_in(tap_of(&d), 0, s + 0.03, e - 0.03, (const char *const[]){ "440:0.3", NULL }),
          "440 Hz at 0.3 in every 50 ms block: no gap");
}

/* ------------------------------------------------------------------ */
/* delay                                                              */

/* The reference: a native callback stream that clicks on channel 1 at the
 * start of a block every 94 blocks (0.501 s) and keeps that block's output_dac_time.  Its
 * clicks relate tap frames to CLOCK_MONOTONIC (integration.latency checks
 * that libsoundcard's DAC times are exact on the dummy card). */
#define REF_MAX 512
struct ref {
    long pos;
    double dac[REF_MAX];
    _Atomic int n;
};

static int ref_callback(const void *in, void *out, unsigned long frames, const sc_time_info *t, unsigned st,
                        void *userdata)
{
    struct ref *r = userdata;
    (void)in, (void)st;
    float *o = out;
    long every = 94 * CARD_PERIOD, len = RATE / 100;   /* about 0.5 s, on a block boundary */
    for (unsigned long i = 0; i < frames; i++) {
        long p = r->pos + (long)i;
        o[2 * i + 1] = p >= every && p % every < len ? 0.5f : 0.0f;
    }
    if (r->pos >= every && r->pos % every == 0) {
        int n = atomic_load(&r->n);
        if (n < REF_MAX) {
            r->dac[n] = t->output_dac_time;
            atomic_store(&r->n, n + 1);
        }
    }
    r->pos += (long)frames;
    return SC_CONTINUE;
}

static void mode_delay(void)
{
    struct daemon d;
    daemon_start(&d, rig_daemon_args, 20);
    snprintf(dir, sizeof(dir), "%s", d.dir);
    char extra[512];
    snprintf(extra, sizeof(extra), "pcm.lat100 { type soundcard socket \"%s\" name \"lat100\" latency_ms 100 }\n",
             d.socket_path);
    asoundrc(d.socket_path, extra);

    static struct ref ref;
    ref = (struct ref){ 0 };  /* a fresh time base for each attempt */
    sc_client *c = NULL;
    sc_stream *s = NULL;
    sc_stream_params p;
    sc_stream_params_init(&p);
    p.name = "reference";
    p.output_channels = 2;
    p.blocksize = CARD_PERIOD;
    /* 50 ms, above this machine's stalls: its clicks are only a time base,
     * and an underrun would shift the ones after it (a CI run: 31.7 ms). */
    p.latency = 0.05;
    p.callback = ref_callback;
    p.userdata = &ref;
    if (sc_client_open(&c, d.socket_path, "reference") < 0 || sc_stream_open(c, &p, &s) < 0 ||
        sc_stream_start(s) < 0) {
        CHECK(false, "the reference stream: %s", sc_last_error());
        exit(harness_finish("alsa.delay"));
    }

    static const char *const cases[][3] = { { "soundcard", "48000", "1024" },
                                            { "soundcard", "44100", "1024" },
                                            { "lat100", "48000", "1024" } };
    static char all[16384];
    size_t used = 0;
    for (int i = 0; i < 3; i++) {
        const char *argv[] = { harness_bin("alsa_client"), cases[i][0], "delay", cases[i][1], "4", NULL };
        CHECK(run("client", argv, 30) == 0, "alsa_client %s delay %s failed", cases[i][0], cases[i][1]);
        used += (size_t)snprintf(all + used, sizeof(all) - used, "%s", output_of("client", "out"));
    }
    sc_stream_stats ref_stats = { 0 };
    sc_stream_get_stats(s, &ref_stats);
    printf("reference: %llu underruns\n", (unsigned long long)ref_stats.underruns);
    /* A card xrun skips the time it lost in the tap, so the time base
     * steps (a run here: 34.3 ms from click 16 on, with the stall probe
     * only 8 ms late): evidence of a stall for this attempt. */
    double xruns = card_xruns(&d);
    printf("the card xran %.0f times\n", xruns);
    /* How late its thread woke (the daemon logs it), beside the stall
     * probe's lateness (attempt.c prints it): a card late well beyond the
     * probe is a delay of ours, not the machine's. */
    const char *log_line = slurp(d.log_path);
    while (*log_line) {
        size_t len = strcspn(log_line, "\n");
        if (memmem(log_line, len, "periods were lost", strlen("periods were lost")))
            printf("  %.*s\n", (int)len, log_line);
        log_line += len + (log_line[len] == '\n');
    }
    attempt_note_card_xruns(xruns);
    /* Stopped, not aborted: every click whose DAC time was kept plays (its
     * 50 ms queue would be dropped, and with it a click now and then). */
    sc_stream_stop(s);
    sc_stream_close(s);
    sc_client_close(c);
    CHECK(daemon_stop(&d, 15) == 0, "soundcardd did not stop cleanly");

    long frames;
    int rate;
    float *alsa = tap_channel(tap_of(&d), 0, &frames, &rate);
    float *refch = tap_channel(tap_of(&d), 1, &frames, &rate);
    if (!alsa || !refch) {
        CHECK(false, "cannot read the tap");
        return;
    }
    static long ref_at[REF_MAX], alsa_at[256];
    int nref = rising_edges(refch, frames, 0.25f, RATE / 10, ref_at, REF_MAX);
    int nalsa = rising_edges(alsa, frames, 0.25f, RATE / 10, alsa_at, 256);
    int nref_times = atomic_load(&ref.n);
    printf("reference: %d clicks in the tap, %d DAC times; ALSA: %d clicks in the tap\n", nref, nref_times,
           nalsa);
    SOUND_CHECK(nref == nref_times && nref > 10, "every reference click is in the tap (%d, %d)", nref, nref_times);
    /* tap frame -> CLOCK_MONOTONIC: dac time of a reference click minus its
     * frame; constant while the card keeps time. */
    double spread = 0, off0 = nref > 0 ? ref.dac[0] - (double)ref_at[0] / RATE : 0;
    for (int i = 0; i < nref && i < nref_times; i++)
        spread = fmax(spread, fabs(ref.dac[i] - (double)ref_at[i] / RATE - off0));
    printf("reference: tap frame 0 is at %.6f s (CLOCK_MONOTONIC), within %.3f ms for every click\n", off0,
           spread * 1e3);
    SOUND_CHECK(spread < 0.5e-3, "the reference clicks keep one time base (spread %.3f ms)", spread * 1e3);

    /* Each ALSA click: where snd_pcm_delay said, against where it is. */
    int k = 0;
    double worst = 0;
    for (const char *line = strstr(all, "setup "); line; line = strstr(line + 1, "setup ")) {
        double srate = field(line, "setup ", "rate"), period = field(line, "setup ", "period");
        const char *next = strstr(line + 1, "setup ");
        for (const char *cl = strstr(line, "click "); cl && (!next || cl < next); cl = strstr(cl + 1, "click ")) {
            double predicted = field(cl, "click ", "time");
            if (k >= nalsa) {
                SOUND_CHECK(false, "click %d (predicted at %.6f) is not in the tap", k, predicted);
                k++;
                continue;
            }
            /* the time base of the nearest reference click before it */
            double off = off0;
            for (int i = 0; i < nref && i < nref_times && ref_at[i] <= alsa_at[k]; i++)
                off = ref.dac[i] - (double)ref_at[i] / RATE;
            double actual = (double)alsa_at[k] / RATE + off, err = actual - predicted;
            printf("click %2d at %.0f Hz: heard at %.6f, snd_pcm_delay said %.6f: %+7.2f ms (period %.2f ms)\n", k,
                   srate, actual, predicted, err * 1e3, 1e3 * period / srate);
            printf("          delay=%.0f frames: queued in ALSA %.0f + the stream's %.2f ms\n",
                   field(cl, "click ", "delay"), field(cl, "click ", "queued"), field(cl, "click ", "beyond") * 1e3);
            AUDIO_CHECK(fabs(err) <= period / srate, "click %d: snd_pcm_delay off by %.2f ms, more than a period", k,
                  err * 1e3);
            worst = fmax(worst, fabs(err));
            k++;
        }
    }
    AUDIO_CHECK(k == nalsa && k >= 9, "%d clicks written, %d in the tap", k, nalsa);
    printf("snd_pcm_delay: worst error %.2f ms over %d clicks\n", worst * 1e3, k);
    free(alsa);
    free(refch);
}

/* ------------------------------------------------------------------ */
/* no daemon                                                          */

static double timed_run(const char *name, const char *const *argv, int *rc)
{
    double t0 = now_seconds();
    *rc = wait_child(start(name, argv), 20);
    double t = now_seconds() - t0;
    printf("exit %d after %.3f s; stderr:\n%s", *rc, t, output_of(name, "err"));
    return t;
}

static void refused(const char *name, const char *const *argv, const char *socket_path)
{
    int rc;
    double t = timed_run(name, argv, &rc);
    CHECK(rc != 0 && rc != -1, "%s: exit %d without a daemon", name, rc);
    CHECK(t < 2.0, "%s gave up after %.3f s (not at once)", name, t);
    CHECK(strstr(output_of(name, "err"), socket_path), "%s's message does not name %s", name, socket_path);
}

static void mode_nodaemon(void)
{
    snprintf(dir, sizeof(dir), "/tmp/sc-alsa-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(1);
    }
    sox((const char *const[]){ "-n", "-r", "48000", "-b", "16", "-c", "2", path_in("a.wav"), "synth", "1", "sine",
                               "440", "vol", "0.5", NULL });
    const char *aplay[] = { which("aplay"), "-D", "soundcard", path_in("a.wav"), NULL };
    const char *arecord[] = { which("arecord"), "-D", "soundcard", "-f", "S16_LE", "-r", "44100", "-c", "2", "-d",
                              "1", path_in("r.wav"), NULL };
    const char *amixer[] = { which("amixer"), "-D", "soundcard", "info", NULL };

    /* 1. pcm.soundcard.socket names a path where nothing is. */
    char sock[256];
    snprintf(sock, sizeof(sock), "%s", path_in("socket"));
    asoundrc(sock, NULL);
    refused("aplay", aplay, sock);
    refused("arecord", arecord, sock);
    refused("amixer", amixer, sock);
    /* PortAudio probes the PCM and leaves it out of its list, quickly. */
    int rc;
    double t = timed_run("pa", (const char *const[]){ harness_bin("pa_client"), "play", "440", "1", "48000", NULL },
                         &rc);
    printf("%s", output_of("pa", "out"));
    CHECK(rc == 1 && t < 5.0, "a PortAudio program: exit %d after %.3f s (expected 1: no device soundcard)", rc, t);

    /* 2. A socket file nobody listens on (a daemon that was killed). */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    memcpy(addr.sun_path, sock, strlen(sock) < sizeof(addr.sun_path) ? strlen(sock) + 1 : 0);
    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0, "bind %s: %s", sock, strerror(errno));
    close(fd);
    refused("aplay", aplay, sock);

    /* 3. No socket option: the default rule, $SOUNDCARD_SOCKET first. */
    asoundrc(NULL, NULL);
    char env_sock[256];
    snprintf(env_sock, sizeof(env_sock), "%s", path_in("env-socket"));
    setenv("SOUNDCARD_SOCKET", env_sock, 1);
    refused("aplay", aplay, env_sock);
    /* ... then $XDG_RUNTIME_DIR/soundcard/socket. */
    unsetenv("SOUNDCARD_SOCKET");
    char xdg_sock[256];
    snprintf(xdg_sock, sizeof(xdg_sock), "%s/soundcard/socket", dir);
    refused("aplay", aplay, xdg_sock);
}

/* ------------------------------------------------------------------ */
/* drain                                                              */

static void mode_drain(void)
{
    struct daemon d;
    up(&d);
    sox((const char *const[]){ "-n", "-r", "48000", "-b", "16", "-c", "2", path_in("one48.wav"), "synth", "1",
                               "sine", "440", "vol", "0.5", NULL });
    sox((const char *const[]){ "-n", "-r", "44100", "-b", "16", "-c", "2", path_in("one44.wav"), "synth", "1",
                               "sine", "660", "vol", "0.5", NULL });
    sox((const char *const[]){ "-n", "-r", "48000", "-b", "16", "-c", "2", path_in("short.wav"), "synth", "0.1",
                               "sine", "880", "vol", "0.5", NULL });
    const char *files[] = { "one48.wav", "one44.wav", "short.wav" };
    for (int i = 0; i < 3; i++) {
        const char *aplay[] = { which("aplay"), "-D", "soundcard", "--period-size=1024", "--buffer-size=8192",
                                path_in(files[i]), NULL };
        CHECK(run("aplay", aplay, 20) == 0, "aplay %s failed", files[i]);
        printf("%s", output_of("aplay", "err"));
    }
    /* alsa-lib directly: 48000 frames are 46 periods and 896 frames. */
    CHECK(run("client", (const char *const[]){ harness_bin("alsa_client"), "soundcard", "drain", "48000", NULL },
              20) == 0,
          "alsa_client drain failed");
    CHECK(daemon_stop(&d, 15) == 0, "soundcardd did not stop cleanly");

    struct segment seg[8];
    int n = segments(tap_of(&d), 0.002, seg, 8);
    SOUND_CHECK(n == 4, "4 sounds in the tap, found %d", n);
    static const long expect[] = { 48000, 48000, 4800, 48000 };
    static const char *what[] = { "aplay, 1.000 s at 48000 Hz", "aplay, 1.000 s at 44100 Hz",
                                  "aplay, 0.100 s (less than its start threshold)",
                                  "alsa-lib, 48000 frames (not whole periods)" };
    for (int i = 0; i < n && i < 4; i++) {
        long len = seg[i].end - seg[i].start;
        printf("%s: %ld frames in the tap (%+ld)\n", what[i], len, len - expect[i]);
        SOUND_CHECK(labs(len - expect[i]) <= CARD_PERIOD, "%s: %ld frames in the tap, expected %ld ± %d", what[i], len,
              expect[i], CARD_PERIOD);
    }
    double s, e;
    if (tone_span(tap_of(&d), 0, 660, 0.25, &s, &e))
        SOUND_CHECK(tone_in(tap_of(&d), 0, s + 0.03, e - 0.03, (const char *const[]){ "660:0.5", NULL }),
              "the 44100 Hz file at its level, no gap");
}

/* ------------------------------------------------------------------ */
/* drop, pause, xrun                                                  */

static const char *client(const char *mode, const char *arg)
{
    const char *argv[] = { harness_bin("alsa_client"), "soundcard", mode, arg, NULL };
    CHECK(run("client", argv, 30) == 0, "alsa_client %s failed", mode);
    return output_of("client", "out");
}

static void mode_drop(void)
{
    struct daemon d;
    up(&d);
    const char *out = client("drop", NULL);
    double written = field(out, "drop ", "written"), delay = field(out, "drop ", "delay"),
           queued = field(out, "drop ", "queued"), period = field(out, "drop ", "period");
    CHECK(daemon_stop(&d, 15) == 0, "soundcardd did not stop cleanly");
    struct segment seg[8];
    int n = segments(tap_of(&d), 0.002, seg, 8);
    AUDIO_CHECK(n == 2, "2 sounds (before the drop, after prepare), found %d", n);
    if (n < 2 || isnan(delay))
        return;
    /* Played before the drop: what had reached the DAC, written - delay.
     * The frames already past ALSA's buffer (delay - queued) go at once
     * too, to within a card period or two. */
    long heard = seg[0].end - seg[0].start, expect = lrint(written - delay);
    printf("before the drop: %ld frames heard, %ld written, delay %.0f (queued in ALSA %.0f): expected %ld (%+ld)\n",
           heard, (long)written, delay, queued, expect, heard - expect);
    AUDIO_CHECK(labs(heard - expect) <= (long)period + 2 * CARD_PERIOD,
          "drop: %ld frames played, snd_pcm_delay said %ld would be", heard, expect);
    AUDIO_CHECK(written - heard > 0.9 * RATE, "the second buffered at the drop was not played (%ld of %ld frames were)",
          heard, (long)written);
    long after = seg[1].end - seg[1].start;
    AUDIO_CHECK(labs(after - RATE / 2) <= CARD_PERIOD, "after prepare: %ld frames, expected %d", after, RATE / 2);
}

static void mode_pause(void)
{
    struct daemon d;
    up(&d);
    const char *out = client("pause", NULL);
    double paused = field(out, "pause ", "seconds"), period = field(out, "pause ", "period");
    CHECK(daemon_stop(&d, 15) == 0, "soundcardd did not stop cleanly");
    struct segment seg[8];
    int n = segments(tap_of(&d), 0.2, seg, 8);
    AUDIO_CHECK(n == 2, "2 sounds around the pause, found %d", n);
    if (n != 2 || isnan(paused))
        return;
    long total = (seg[0].end - seg[0].start) + (seg[1].end - seg[1].start);
    double hole = (double)(seg[1].start - seg[0].end) / RATE;
    printf("pause: %ld frames of tone in all (%+ld), a hole of %.4f s for a pause of %.4f s\n", total,
           total - 2L * RATE, hole, paused);
    AUDIO_CHECK(labs(total - 2L * RATE) <= 2 * CARD_PERIOD, "nothing lost or repeated: %ld frames, expected %d", total,
          2 * RATE);
    AUDIO_CHECK(fabs(hole - paused) <= (period + 2 * CARD_PERIOD) / RATE, "the hole (%.4f s) is the pause (%.4f s)", hole,
          paused);
}

static void mode_xrun(void)
{
    struct daemon d;
    up(&d);
    client("xrun", NULL);
    client("xrun-capture", path_in("xrun.wav"));
    CHECK(daemon_stop(&d, 15) == 0, "soundcardd did not stop cleanly");
    struct segment seg[8];
    int n = segments(tap_of(&d), 0.002, seg, 8);
    AUDIO_CHECK(n == 2, "2 sounds (before the underrun, after prepare), found %d", n);
    for (int i = 0; i < n && i < 2; i++) {
        long len = seg[i].end - seg[i].start;
        AUDIO_CHECK(labs(len - RATE / 2) <= CARD_PERIOD, "sound %d: %ld frames, expected %d (every frame written)", i,
              len, RATE / 2);
    }
    double s, e;
    if (tone_span(tap_of(&d), 0, 880, 0.25, &s, &e))
        AUDIO_CHECK(tone_in(tap_of(&d), 0, s + 0.03, e - 0.03, (const char *const[]){ "880:0.5", NULL }),
              "880 Hz after the recovery, at its level, no gap");
    AUDIO_CHECK(tone_in(path_in("xrun.wav"), 0, 0, 0.5, (const char *const[]){ "700:0.5", NULL }),
          "capture after the overrun and prepare: 700 Hz at 0.5");
}

/* ------------------------------------------------------------------ */
/* lost: the daemon goes away under a playing and a recording program */

static bool alsa_running(cJSON *stats, void *ctx)
{
    cJSON *s = stats_find_stream(stats, ctx);
    const char *state = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(s, "state"));
    return state && strcmp(state, "running") == 0 && json_number(s, "frames") > RATE / 10;
}

static void mode_lost(void)
{
    static const int signals[] = { SIGTERM, SIGKILL };
    for (int i = 0; i < 2; i++) {
        struct daemon d;
        up(&d);
        sox((const char *const[]){ "-n", "-r", "48000", "-b", "16", "-c", "2", path_in("long.wav"), "synth", "10",
                                   "sine", "440", "vol", "0.3", NULL });
        char extra[256];
        snprintf(extra, sizeof(extra), "pcm.rec { type soundcard socket \"%s\" name \"rec\" }\n", d.socket_path);
        asoundrc(d.socket_path, extra);
        pid_t aplay = start("aplay", (const char *const[]){ which("aplay"), "-D", "soundcard", path_in("long.wav"),
                                                            NULL });
        pid_t arecord = start("arecord", (const char *const[]){ which("arecord"), "-D", "rec", "-f", "S16_LE", "-r",
                                                                "48000", "-c", "2", "-d", "10", path_in("r.wav"),
                                                                NULL });
        bool both = wait_for_stats(d.socket_path, alsa_running, "alsa", 10) &&
                    wait_for_stats(d.socket_path, alsa_running, "rec", 10);
        CHECK(both, "aplay and arecord did not start playing and recording");
        printf("soundcardd gets %s while aplay plays and arecord records\n", strsignal(signals[i]));
        double t0 = now_seconds();
        kill(d.pid, signals[i]);
        int rc = wait_child(d.pid, 10);
        d.pid = 0;
        printf("soundcardd exit %d\n", rc);
        int rc_play = wait_child(aplay, 5);
        double t_play = now_seconds() - t0;
        int rc_rec = wait_child(arecord, 5);
        double t_rec = now_seconds() - t0;
        printf("aplay: exit %d after %.3f s; stderr:\n%s", rc_play, t_play, output_of("aplay", "err"));
        printf("arecord: exit %d after %.3f s; stderr:\n%s", rc_rec, t_rec, output_of("arecord", "err"));
        CHECK(rc_play > 0 && t_play < 3, "%s: aplay ends with an error (exit %d, %.1f s), not a hang",
              strsignal(signals[i]), rc_play, t_play);
        CHECK(rc_rec > 0 && t_rec < 3, "%s: arecord ends with an error (exit %d, %.1f s), not a hang",
              strsignal(signals[i]), rc_rec, t_rec);
    }
}

/* ------------------------------------------------------------------ */
/* config                                                             */

static void mode_config(void)
{
    struct daemon d;
    up(&d);
    sox((const char *const[]){ "-n", "-r", "48000", "-b", "16", "-c", "2", path_in("a.wav"), "synth", "1", "sine",
                               "440", "vol", "0.5", NULL });

    CHECK(run("aplay", (const char *const[]){ which("aplay"), "-L", NULL }, 10) == 0, "aplay -L failed");
    CHECK(strstr(output_of("aplay", "out"), "\nsoundcard\n    soundcard daemon (soundcardd)\n"),
          "aplay -L lists soundcard with its description");
    CHECK(run("amixer", (const char *const[]){ which("amixer"), "-D", "soundcard", "info", NULL }, 10) == 0 &&
              strstr(output_of("amixer", "out"), "soundcardd"),
          "amixer -D soundcard info: ctl.soundcard opens");

    /* soundcard as the default device, the way docs/alsa.md says. */
    asoundrc(d.socket_path, "pcm.!default soundcard\nctl.!default soundcard\n");
    struct watch w;
    int rc = watch_child(&d, start("aplay", (const char *const[]){ which("aplay"), path_in("a.wav"), NULL }),
                         "alsa", 20, &w);
    CHECK(rc == 0 && w.seen, "aplay without -D plays through soundcardd (exit %d, stream seen %d): %s", rc, w.seen,
          output_of("aplay", "err"));
    CHECK(run("amixer", (const char *const[]){ which("amixer"), "info", NULL }, 10) == 0 &&
              strstr(output_of("amixer", "out"), "soundcardd"),
          "amixer without -D opens ctl.soundcard");

    /* A device of one's own, with every option. */
    char extra[512];
    snprintf(extra, sizeof(extra),
             "pcm.mine { type soundcard socket \"%s\" name \"mine\" latency_ms 40 }\n"
             "pcm.bad { type soundcard socket \"%s\" colour \"red\" }\n",
             d.socket_path, d.socket_path);
    asoundrc(NULL, extra);
    rc = watch_child(&d, start("aplay", (const char *const[]){ which("aplay"), "-D", "mine", path_in("a.wav"), NULL }),
                     "mine", 20, &w);
    CHECK(rc == 0 && w.seen, "aplay -D mine plays as stream \"mine\" (exit %d, seen %d): %s", rc, w.seen,
          output_of("aplay", "err"));
    rc = run("aplay", (const char *const[]){ which("aplay"), "-D", "bad", path_in("a.wav"), NULL }, 10);
    CHECK(rc != 0 && strstr(output_of("aplay", "err"), "colour"), "an unknown option is refused, by name: %s",
          output_of("aplay", "err"));
    CHECK(daemon_stop(&d, 15) == 0, "soundcardd did not stop cleanly");
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    static const struct {
        const char *name;
        void (*run)(void);
    } modes[] = {
        { "mix", mode_mix },           { "formats", mode_formats }, { "record", mode_record },
        { "portaudio", mode_portaudio }, { "poll", mode_poll },     { "delay", mode_delay },
        { "nodaemon", mode_nodaemon }, { "drain", mode_drain },     { "drop", mode_drop },
        { "pause", mode_pause },       { "xrun", mode_xrun },       { "lost", mode_lost },
        { "config", mode_config },
    };
    const char *sanitized = getenv("SC_SANITIZED");
    rig_slow = sanitized && strstr(sanitized, "thread");
    /* TSan builds: the suppressions, for the processes started from here. */
    const char *supp = getenv("SC_TSAN_SUPPRESSIONS"), *tsan = getenv("TSAN_OPTIONS");
    if (supp && *supp) {
        static char options[1024];
        snprintf(options, sizeof(options), "%s%ssuppressions=%s", tsan ? tsan : "", tsan && *tsan ? ":" : "", supp);
        setenv("TSAN_OPTIONS", options, 1);
    }
    for (size_t i = 0; argc == 2 && i < sizeof(modes) / sizeof(modes[0]); i++) {
        if (strcmp(argv[1], modes[i].name) == 0) {
            char name[64];
            snprintf(name, sizeof(name), "alsa.%s", modes[i].name);
            /* The ALSA programs feed their streams a period (1024 frames,
             * 21 ms) at a time: a stall of the machine longer than that is
             * a gap in the tap.  A mode whose only failures were such checks
             * (AUDIO_CHECK), while the stall probe saw it, runs again
             * (attempt.h).  Each daemon stops before its tap is read, so
             * only the probe counts. */
            struct attempt a;
            attempt_begin_stallable(&a, name, 1024.0 / RATE, NULL);
            do
                modes[i].run();
            while (attempt_again(&a));
            if (harness_failures)
                fprintf(stderr, "files kept in %s\n", dir);
            else if (dir[0])
                nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
            return harness_finish(name);
        }
    }
    fprintf(stderr, "usage: test_alsa mix|formats|record|portaudio|poll|delay|nodaemon|drain|drop|pause|xrun|lost|config\n");
    return 2;
}
