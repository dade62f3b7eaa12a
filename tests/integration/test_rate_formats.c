/* Rate conversion, sample formats and channel counts, end to end through a
 * real soundcardd (card: 48000 Hz, 2 channels).
 *
 *  - Output streams at 44100, 22050, 96000 and 8000 Hz (callback and
 *    blocking mode, mono and stereo) play a 1000 Hz tone: the card's tap
 *    holds 1000 Hz at the level written, nothing at the frequency a missing
 *    or wrong conversion would give (1000 * 48000 / rate), for as long as the
 *    stream played, a mono stream on both card channels and a stereo stream's
 *    channels each on its own.
 *  - Capture at 44100 Hz from --capture sine:700 reads 700 Hz.
 *  - Every sample format through --capture loopback: what a full-duplex
 *    callback stream writes comes back within the format's quantisation, at
 *    blocksize 256 and at 100 (whose blocks straddle the rings' wrap).
 *  - Integer formats saturate: reading back a float writer's ±1.5 gives the
 *    integer's max and min.
 *
 * Streams that convert rates run in a child process with a deadline, so a
 * stream that stalls fails the test instead of hanging it. */
#include <math.h>
#include <sndfile.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <soundcard/soundcard.h>

#include "audio_check.h"
#include "harness.h"
#include "wavfile.h"

#define TONE_HZ 1000.0
#define TONE_AMP 0.5
#define RIGHT_HZ 750.0   /* a stereo stream's right channel */
#define RIGHT_AMP 0.3
#define PLAY_SECONDS 1.5

/* ---- output at other rates ---- */

struct tone_cb {
    double rate;
    int channels;
    double phase_l, phase_r;
    long wanted;
    _Atomic long frames;
    _Atomic long wrong_frames;
    unsigned long block;
};

static void tone_fill(float *out, unsigned long frames, int channels, double rate, double *pl, double *pr)
{
    for (unsigned long i = 0; i < frames; i++) {
        out[i * (unsigned long)channels] = (float)(TONE_AMP * sin(*pl));
        *pl = fmod(*pl + 2 * M_PI * TONE_HZ / rate, 2 * M_PI);
        if (channels == 2) {
            out[i * 2 + 1] = (float)(RIGHT_AMP * sin(*pr));
            *pr = fmod(*pr + 2 * M_PI * RIGHT_HZ / rate, 2 * M_PI);
        }
    }
}

static int tone_callback(const void *input, void *output, unsigned long frames, const sc_time_info *time,
                         unsigned status, void *userdata)
{
    (void)input, (void)time, (void)status;
    struct tone_cb *t = userdata;
    if (t->block == 0)
        t->block = frames;
    if (frames != t->block)
        atomic_fetch_add(&t->wrong_frames, 1);
    long done = atomic_load(&t->frames);
    if (done >= t->wanted) {
        memset(output, 0, frames * (unsigned long)t->channels * sizeof(float));
    } else {
        tone_fill(output, frames, t->channels, t->rate, &t->phase_l, &t->phase_r);
        /* The block that reaches `wanted` is cut there: exactly `wanted` frames of tone. */
        if (done + (long)frames > t->wanted)
            memset((float *)output + (size_t)(t->wanted - done) * (size_t)t->channels, 0,
                   (size_t)(done + (long)frames - t->wanted) * (size_t)t->channels * sizeof(float));
    }
    atomic_store(&t->frames, done + (long)frames);
    wakeup_notify();
    return done + (long)frames >= t->wanted ? SC_COMPLETE : SC_CONTINUE;
}

static bool tone_done(void *ctx)
{
    struct tone_cb *t = ctx;
    return atomic_load(&t->frames) >= t->wanted;
}

/* The child: play PLAY_SECONDS of tone at `rate`, then drain.  Exit 0 when
 * all went well. */
static int play_child(struct daemon *d, double rate, int channels, bool callback, double latency)
{
    wakeup_init();
    sc_client *client;
    if (sc_client_open(&client, d->socket_path, "rate-player") < 0) {
        fprintf(stderr, "connect: %s\n", sc_last_error());
        return 1;
    }
    static struct tone_cb t;
    t.rate = rate;
    t.channels = channels;
    t.wanted = (long)(PLAY_SECONDS * rate);
    sc_stream_params p;
    sc_stream_params_init(&p);
    p.name = "rate-player";
    p.output_channels = channels;
    p.samplerate = rate;
    p.latency = latency;
    if (callback) {
        p.callback = tone_callback;
        p.userdata = &t;
    }
    sc_stream *s;
    if (sc_stream_open(client, &p, &s) < 0) {
        fprintf(stderr, "open at %g Hz: %s\n", rate, sc_last_error());
        return 1;
    }
    int fails = 0;
    if (sc_stream_start(s) < 0) {
        fprintf(stderr, "start: %s\n", sc_last_error());
        return 1;
    }
    if (callback) {
        if (!wakeup_wait_until(tone_done, &t, PLAY_SECONDS + 3)) {
            fprintf(stderr, "the callback produced only %ld of %ld frames in %.1f s\n",
                    atomic_load(&t.frames), t.wanted, PLAY_SECONDS + 3);
            fails++;
        }
        if (atomic_load(&t.wrong_frames)) {
            fprintf(stderr, "%ld calls had another size than %lu\n", atomic_load(&t.wrong_frames), t.block);
            fails++;
        }
        /* SC_COMPLETE drains; stop waits for that. */
    } else {
        float buf[2 * 1000];
        for (long done = 0; done < t.wanted;) {
            unsigned long n = t.wanted - done < 1000 ? (unsigned long)(t.wanted - done) : 1000;
            tone_fill(buf, n, channels, rate, &t.phase_l, &t.phase_r);
            long w = sc_stream_write(s, buf, n);
            if (w != (long)n) {
                fprintf(stderr, "write: %ld: %s\n", w, sc_last_error());
                fails++;
                break;
            }
            done += w;
        }
    }
    if (sc_stream_stop(s) < 0) {
        fprintf(stderr, "stop: %s\n", sc_last_error());
        fails++;
    }
    sc_stream_stats st;
    sc_stream_get_stats(s, &st);
    printf("info   player at %g Hz: %llu card frames, %llu underruns\n", rate,
           (unsigned long long)st.frames, (unsigned long long)st.underruns);
    if (st.underruns) {
        fprintf(stderr, "the player underran %llu times\n", (unsigned long long)st.underruns);
        fails++;
    }
    sc_stream_close(s);
    sc_client_close(client);
    return fails ? 1 : 0;
}

static pid_t fork_child(int (*body)(void *), void *arg)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0)
        _exit(body(arg));
    return pid;
}

struct play_args {
    struct daemon *d;
    double rate, latency;
    int channels;
    bool callback;
};

static int play_body(void *arg)
{
    struct play_args *a = arg;
    int rc = play_child(a->d, a->rate, a->channels, a->callback, a->latency);
    fflush(stdout);
    return rc;
}

static bool wavcheck(struct daemon *d, const char *path, const char *const *args)
{
    const char *argv[32] = { harness_bin("wavcheck"), path };
    int n = 2;
    for (const char *const *a = args; *a && n < 31; a++)
        argv[n++] = *a;
    argv[n] = NULL;
    fflush(stdout);
    pid_t w = spawn_client(d, argv, NULL);
    return wait_child(w, 30) == 0;
}

static void test_output_rate(double rate, int channels, bool callback)
{
    double wrong = TONE_HZ * 48000 / rate, wrong_r = RIGHT_HZ * 48000 / rate;
    printf("== output at %.0f Hz, %d channel%s, %s mode ==\n", rate, channels, channels == 1 ? "" : "s",
           callback ? "callback" : "blocking");
    struct daemon d;
    daemon_start(&d, (const char *const[]){ "--tap", "@/tap.wav", NULL }, 10);
    struct play_args a = { &d, rate, 0.1, channels, callback };
    pid_t child = fork_child(play_body, &a);
    int rc = wait_child(child, PLAY_SECONDS + 10);
    VERIFY(rc == 0, "%.0f Hz: the player played %.1f s and drained with no underrun (exit %d%s)", rate,
           PLAY_SECONDS, rc, rc == -1 ? ": killed at the deadline, the stream stalled" : "");
    CHECK(daemon_stop(&d, 10) == 0, "soundcardd did not stop cleanly");

    const char *tap = daemon_path(&d, "tap.wav");
    int tap_rate;
    long frames;
    double first, last;
    if (wav_extent(tap, 0.01, &tap_rate, &frames, &first, &last) < 0 || first < 0) {
        VERIFY(0, "%.0f Hz: the tap holds sound", rate);
        return;
    }
    double dur = last - first;
    VERIFY(fabs(dur - PLAY_SECONDS) <= 0.02,
           "%.0f Hz: %.0f frames at %.0f Hz last %.4f s in the 48000 Hz tap (want %.1f s ± 20 ms)", rate,
           PLAY_SECONDS * rate, rate, dur, PLAY_SECONDS);
    char from[32], to[32], expect_l[32], expect_r[32], absent[32], absent_r[32], absent_other[32];
    snprintf(from, sizeof(from), "%.3f", first + 0.1);
    snprintf(to, sizeof(to), "%.3f", last - 0.1);
    snprintf(expect_l, sizeof(expect_l), "%g:%g", TONE_HZ, TONE_AMP);
    snprintf(expect_r, sizeof(expect_r), "%g:%g", RIGHT_HZ, RIGHT_AMP);
    snprintf(absent, sizeof(absent), "%.2f", wrong);
    snprintf(absent_r, sizeof(absent_r), "%.2f", wrong_r);
    for (int ch = 0; ch < 2; ch++) {
        char channel[8];
        snprintf(channel, sizeof(channel), "%d", ch);
        bool right = channels == 2 && ch == 1;
        snprintf(absent_other, sizeof(absent_other), "%g", right ? TONE_HZ : RIGHT_HZ);
        const char *args[] = { "--from", from, "--to", to, "--block-ms", "100", "--channel", channel,
                               "--tolerance", "0.03", "--expect", right ? expect_r : expect_l,
                               "--absent", right ? absent_r : absent, "--absent", absent_other, NULL };
        bool ok = wavcheck(&d, tap, args);
        VERIFY(ok, "%.0f Hz: tap channel %d holds %g Hz at %g (±3%% in every 100 ms block), nothing at "
               "%s Hz (the wrongly scaled frequency) or %g Hz", rate, ch, right ? RIGHT_HZ : TONE_HZ,
               right ? RIGHT_AMP : TONE_AMP, right ? absent_r : absent, right ? TONE_HZ : RIGHT_HZ);
    }
}

/* ---- capture at 44100 Hz ---- */

struct capture_args {
    struct daemon *d;
    const char *path;
};

static int capture_body(void *arg)
{
    struct capture_args *a = arg;
    sc_client *client;
    if (sc_client_open(&client, a->d->socket_path, "rate-recorder") < 0)
        return 1;
    sc_stream_params p;
    sc_stream_params_init(&p);
    p.name = "rate-recorder";
    p.input_channels = 2;
    p.samplerate = 44100;
    p.latency = 0.05;
    sc_stream *s;
    if (sc_stream_open(client, &p, &s) < 0 || sc_stream_start(s) < 0) {
        fprintf(stderr, "open/start the 44100 Hz input: %s\n", sc_last_error());
        return 1;
    }
    SF_INFO info = { .samplerate = 44100, .channels = 2, .format = SF_FORMAT_WAV | SF_FORMAT_FLOAT };
    SNDFILE *f = sf_open(a->path, SFM_WRITE, &info);
    float buf[2 * 441];
    int rc = 0;
    for (int i = 0; i < 150 && f; i++) {  /* 1.5 s */
        long n = sc_stream_read(s, buf, 441);
        if (n != 441) {
            fprintf(stderr, "read: %ld: %s\n", n, sc_last_error());
            rc = 1;
            break;
        }
        sf_writef_float(f, buf, n);
    }
    if (f)
        sf_close(f);
    sc_stream_stats st;
    sc_stream_get_stats(s, &st);
    printf("info   recorder at 44100 Hz: %llu card frames, %llu overruns\n", (unsigned long long)st.frames,
           (unsigned long long)st.overruns);
    sc_stream_close(s);
    sc_client_close(client);
    fflush(stdout);
    return rc || !f || st.overruns ? 1 : 0;
}

static void test_capture_rate(void)
{
    printf("== capture at 44100 Hz from --capture sine:700 ==\n");
    struct daemon d;
    daemon_start(&d, (const char *const[]){ "--capture", "sine:700", NULL }, 10);
    char path[256];
    snprintf(path, sizeof(path), "%s", daemon_path(&d, "rec44100.wav"));
    struct capture_args a = { &d, path };
    int rc = wait_child(fork_child(capture_body, &a), 20);
    VERIFY(rc == 0, "44100 Hz capture: 1.5 s read, no overrun (exit %d)", rc);
    for (int ch = 0; ch < 2 && rc == 0; ch++) {
        char channel[8];
        snprintf(channel, sizeof(channel), "%d", ch);
        /* 700 * 44100 / 48000 and 700 * 48000 / 44100: a missing or inverted conversion. */
        const char *args[] = { "--from", "0.2", "--block-ms", "100", "--channel", channel, "--tolerance",
                               "0.03", "--expect", "700:0.5", "--absent", "643.13", "--absent", "761.90",
                               NULL };
        VERIFY(wavcheck(&d, path, args),
               "44100 Hz capture, channel %d: 700 Hz at 0.5 (±3%%), nothing at 643.1 or 761.9 Hz", ch);
    }
    CHECK(daemon_stop(&d, 10) == 0, "soundcardd did not stop cleanly");
}

/* ---- sample formats through the loopback ---- */

static const char *format_name(sc_format f)
{
    static const char *const names[] = { "SC_FLOAT32", "SC_INT32", "SC_INT24", "SC_INT16", "SC_INT8", "SC_UINT8" };
    return names[f];
}

static size_t format_bytes(sc_format f)
{
    static const size_t bytes[] = { 4, 4, 3, 2, 1, 1 };
    return bytes[f];
}

/* The test's own decoding: a sample as a number in the format's units
 * (integers as integers, float as float). */
static double sample_value(sc_format f, const unsigned char *p)
{
    switch (f) {
    case SC_FLOAT32: { float v; memcpy(&v, p, 4); return v; }
    case SC_INT32: { int32_t v; memcpy(&v, p, 4); return v; }
    case SC_INT24: return (double)((int32_t)((uint32_t)p[0] << 8 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 24) >> 8);
    case SC_INT16: { int16_t v; memcpy(&v, p, 2); return v; }
    case SC_INT8: return (int8_t)p[0];
    case SC_UINT8: return p[0];
    }
    return 0;
}

/* The format's full scale (1 for float) and its zero. */
static double full_scale(sc_format f)
{
    static const double scale[] = { 1.0, 2147483648.0, 8388608.0, 32768.0, 128.0, 128.0 };
    return scale[f];
}

static double zero_value(sc_format f)
{
    return f == SC_UINT8 ? 128 : 0;
}

static void put_sample(sc_format f, unsigned char *p, double v)
{
    switch (f) {
    case SC_FLOAT32: { float x = (float)v; memcpy(p, &x, 4); break; }
    case SC_INT32: { int32_t x = (int32_t)v; memcpy(p, &x, 4); break; }
    case SC_INT24: { int32_t x = (int32_t)v; p[0] = (uint8_t)x; p[1] = (uint8_t)(x >> 8); p[2] = (uint8_t)(x >> 16); break; }
    case SC_INT16: { int16_t x = (int16_t)v; memcpy(p, &x, 2); break; }
    case SC_INT8: p[0] = (uint8_t)(int8_t)v; break;
    case SC_UINT8: p[0] = (uint8_t)v; break;
    }
}

#define SIGNAL_FRAMES 9600
#define WARMUP_FRAMES 4800
#define RECORD_FRAMES (WARMUP_FRAMES + SIGNAL_FRAMES + 24000)

struct fmt_loop {
    sc_format format;
    int channels;
    unsigned char *sent, *got;   /* SIGNAL_FRAMES sent, RECORD_FRAMES received */
    long out_pos, in_pos;        /* callback thread */
    _Atomic long recorded;
};

static int fmt_callback(const void *input, void *output, unsigned long frames, const sc_time_info *time,
                        unsigned status, void *userdata)
{
    (void)time, (void)status;
    struct fmt_loop *l = userdata;
    size_t fb = format_bytes(l->format) * (size_t)l->channels;
    unsigned char *out = output;
    for (unsigned long i = 0; i < frames; i++, l->out_pos++) {
        long k = l->out_pos - WARMUP_FRAMES;
        if (k >= 0 && k < SIGNAL_FRAMES)
            memcpy(out + i * fb, l->sent + (size_t)k * fb, fb);
        else
            for (int c = 0; c < l->channels; c++)
                put_sample(l->format, out + i * fb + (size_t)c * format_bytes(l->format), zero_value(l->format));
    }
    long n = RECORD_FRAMES - l->in_pos < (long)frames ? RECORD_FRAMES - l->in_pos : (long)frames;
    if (n > 0) {
        memcpy(l->got + (size_t)l->in_pos * fb, input, (size_t)n * fb);
        l->in_pos += n;
    }
    atomic_store(&l->recorded, l->in_pos);
    wakeup_notify();
    return SC_CONTINUE;
}

static bool fmt_recorded(void *ctx)
{
    return atomic_load(&((struct fmt_loop *)ctx)->recorded) >= RECORD_FRAMES;
}

static void test_format(sc_client *client, sc_format format, int channels, unsigned long blocksize)
{
    const char *name = format_name(format);
    static struct fmt_loop l;
    size_t bytes = format_bytes(format);
    size_t fb = bytes * (size_t)channels;
    free(l.sent);
    free(l.got);
    memset(&l, 0, sizeof(l));
    l.format = format;
    l.channels = channels;
    l.sent = malloc((size_t)SIGNAL_FRAMES * fb);
    l.got = calloc((size_t)RECORD_FRAMES, fb);
    /* Random full-scale samples, with the extremes in the first frames. */
    double scale = full_scale(format), zero = zero_value(format);
    double lo = format == SC_FLOAT32 ? -1.0 : zero - scale, hi = format == SC_FLOAT32 ? 1.0 : zero + scale - 1;
    uint32_t seed = 777u + (uint32_t)format;
    for (long i = 0; i < SIGNAL_FRAMES; i++) {
        for (int c = 0; c < channels; c++) {
            noise_next(&seed);
            double u = seed / 4294967296.0;  /* [0, 1), all 32 bits */
            double v = format == SC_FLOAT32 ? lo + u * (hi - lo) : floor(lo + u * (hi - lo + 1));
            if (i < 4)
                v = (i + c) % 2 ? hi : lo;
            put_sample(format, l.sent + (size_t)i * fb + (size_t)c * bytes, v);
        }
    }
    sc_stream_params p;
    sc_stream_params_init(&p);
    p.name = name;
    p.input_channels = channels;
    p.output_channels = channels;
    p.format = format;
    p.blocksize = blocksize;
    p.latency = 0.05;
    p.callback = fmt_callback;
    p.userdata = &l;
    sc_stream *s;
    if (sc_stream_open(client, &p, &s) < 0) {
        VERIFY(0, "%s: open a %d-channel duplex stream, blocksize %lu: %s", name, channels, blocksize,
               sc_last_error());
        return;
    }
    CHECK(sc_stream_start(s) == 0, "start: %s", sc_last_error());
    bool ok = wakeup_wait_until(fmt_recorded, &l, 10);
    sc_stream_stats st;
    sc_stream_get_stats(s, &st);
    CHECK(sc_stream_abort(s) == 0, "abort: %s", sc_last_error());
    CHECK(sc_stream_close(s) == 0, "close: %s", sc_last_error());
    if (!ok) {
        VERIFY(0, "%s: recorded %ld of %d frames in 10 s", name, atomic_load(&l.recorded), RECORD_FRAMES);
        return;
    }
    VERIFY(st.underruns == 0 && st.overruns == 0, "%s, %d ch, blocksize %lu: no underrun or overrun (%llu, %llu)",
           name, channels, blocksize, (unsigned long long)st.underruns, (unsigned long long)st.overruns);

    /* Align by cross-correlation of channel 0 (as floats), then compare every sample. */
    enum { REF = 1024 };
    float *ref = malloc(REF * sizeof(float)), *sig = malloc(RECORD_FRAMES * sizeof(float));
    for (long i = 0; i < REF; i++)
        ref[i] = (float)((sample_value(format, l.sent + (size_t)i * fb) - zero) / scale);
    for (long i = 0; i < RECORD_FRAMES; i++)
        sig[i] = (float)((sample_value(format, l.got + (size_t)i * fb) - zero) / scale);
    long lag;
    double ratio;
    xcorr_delay(ref, REF, sig, RECORD_FRAMES, &lag, &ratio);
    free(ref);
    free(sig);
    long delay = lag - WARMUP_FRAMES;
    if (lag < 0 || lag + SIGNAL_FRAMES > RECORD_FRAMES) {
        VERIFY(0, "%s: the written signal is not in the input (peak at %ld)", name, lag);
        return;
    }
    double worst = 0;
    long worst_at = -1;
    for (long i = 0; i < SIGNAL_FRAMES; i++)
        for (int c = 0; c < channels; c++) {
            double a = sample_value(format, l.sent + (size_t)i * fb + (size_t)c * bytes);
            double b = sample_value(format, l.got + (size_t)(lag + i) * fb + (size_t)c * bytes);
            if (fabs(a - b) > worst) {
                worst = fabs(a - b);
                worst_at = i;
            }
        }
    /* Quantisation: one LSB for 8-, 16- and 24-bit samples (through
     * float32, whose 24-bit mantissa holds them exactly); float32's own
     * precision for 32-bit integers (2^7 LSB) and for floats. */
    double tolerance = format == SC_FLOAT32 ? 1.0 / (1 << 24) : format == SC_INT32 ? 128 : 1;
    VERIFY(worst <= tolerance,
           "%s, %d ch, blocksize %lu: %d frames came back (delay %ld frames, peak %.1fx) with at most %g %s "
           "error (tolerance %g)%s", name, channels, blocksize, SIGNAL_FRAMES, delay, ratio, worst,
           format == SC_FLOAT32 ? "absolute" : "LSB", tolerance, worst_at >= 0 ? "" : ", bit-exact");
    if (worst_at >= 0 && worst > tolerance)
        printf("info %s: worst at frame %ld\n", name, worst_at);
}

static void test_formats(void)
{
    printf("== sample formats through --capture loopback ==\n");
    struct daemon d;
    daemon_start(&d, (const char *const[]){ "--capture", "loopback", NULL }, 10);
    sc_client *client;
    if (sc_client_open(&client, d.socket_path, "formats") < 0) {
        CHECK(0, "connect: %s", sc_last_error());
        daemon_stop(&d, 10);
        return;
    }
    for (sc_format f = SC_FLOAT32; f <= SC_UINT8; f++)
        test_format(client, f, 2, 256);
    test_format(client, SC_INT16, 1, 256);  /* mono out on both card channels, mono in from channel 0 */
    /* A block that does not divide the ring's (power-of-two) capacity
     * straddles its wrap now and then: float32 at the card's rate gets the
     * ring in place, and such blocks through the stream's block buffer;
     * int16 goes through the FIFO. */
    test_format(client, SC_FLOAT32, 2, 100);
    test_format(client, SC_INT16, 2, 100);
    sc_client_close(client);
    CHECK(daemon_stop(&d, 10) == 0, "soundcardd did not stop cleanly");
}

/* ---- integer formats saturate ---- */

#define CLIP_READERS 5
#define CLIP_RECORD 48000

struct clip_reader {
    sc_format format;
    unsigned char *got;
    long pos;
    _Atomic long recorded;
};

static int clip_callback(const void *input, void *output, unsigned long frames, const sc_time_info *time,
                         unsigned status, void *userdata)
{
    (void)output, (void)time, (void)status;
    struct clip_reader *r = userdata;
    size_t fb = 2 * format_bytes(r->format);
    long n = CLIP_RECORD - r->pos < (long)frames ? CLIP_RECORD - r->pos : (long)frames;
    if (n > 0) {
        memcpy(r->got + (size_t)r->pos * fb, input, (size_t)n * fb);
        r->pos += n;
    }
    atomic_store(&r->recorded, r->pos);
    wakeup_notify();
    return SC_CONTINUE;
}

static bool clip_all_recorded(void *ctx)
{
    struct clip_reader *r = ctx;
    for (int i = 0; i < CLIP_READERS; i++)
        if (atomic_load(&r[i].recorded) < CLIP_RECORD)
            return false;
    return true;
}

static bool writer_clipped(cJSON *stats, void *ctx)
{
    (void)ctx;
    return json_number(stats_find_stream(stats, "clip-writer"), "clipped") > 0;
}

static void test_saturation(void)
{
    printf("== integer formats saturate (a float writer sends +1.5 left, -1.5 right) ==\n");
    struct daemon d;
    daemon_start(&d, (const char *const[]){ "--capture", "loopback", NULL }, 10);
    sc_client *client;
    if (sc_client_open(&client, d.socket_path, "saturation") < 0) {
        CHECK(0, "connect: %s", sc_last_error());
        daemon_stop(&d, 10);
        return;
    }
    static struct clip_reader r[CLIP_READERS];
    sc_stream *in[CLIP_READERS] = { 0 };
    for (int i = 0; i < CLIP_READERS; i++) {
        r[i].format = (sc_format)(SC_INT32 + i);
        r[i].got = calloc(CLIP_RECORD, 2 * format_bytes(r[i].format));
        sc_stream_params p;
        sc_stream_params_init(&p);
        p.name = format_name(r[i].format);
        p.input_channels = 2;
        p.format = r[i].format;
        p.blocksize = 256;
        p.latency = 0.05;
        p.callback = clip_callback;
        p.userdata = &r[i];
        CHECK(sc_stream_open(client, &p, &in[i]) == 0, "open %s reader: %s", p.name, sc_last_error());
    }
    sc_stream_params p;
    sc_stream_params_init(&p);
    p.name = "clip-writer";
    p.output_channels = 2;
    p.latency = 0.05;
    sc_stream *w;
    CHECK(sc_stream_open(client, &p, &w) == 0, "open the writer: %s", sc_last_error());
    for (int i = 0; i < CLIP_READERS; i++)
        if (in[i])
            CHECK(sc_stream_start(in[i]) == 0, "start: %s", sc_last_error());
    CHECK(sc_stream_start(w) == 0, "start the writer: %s", sc_last_error());
    static float block[2 * 480];
    for (int i = 0; i < 480; i++) {
        block[2 * i] = 1.5f;
        block[2 * i + 1] = -1.5f;
    }
    for (int i = 0; i < 50; i++)  /* 0.5 s */
        CHECK(sc_stream_write(w, block, 480) == 480, "write: %s", sc_last_error());
    CHECK(sc_stream_stop(w) == 0, "stop the writer: %s", sc_last_error());
    VERIFY(wait_for_stats(d.socket_path, writer_clipped, NULL, 5), "the daemon counted the writer's samples as clipped");
    VERIFY(wakeup_wait_until(clip_all_recorded, r, 10), "the readers recorded 1 s each");
    for (int i = 0; i < CLIP_READERS; i++)
        if (in[i])
            sc_stream_close(in[i]);
    sc_stream_close(w);
    sc_client_close(client);
    CHECK(daemon_stop(&d, 10) == 0, "soundcardd did not stop cleanly");

    for (int i = 0; i < CLIP_READERS; i++) {
        sc_format f = r[i].format;
        double scale = full_scale(f), zero = zero_value(f), max = zero + scale - 1, min = zero - scale;
        long at_limits = 0, silent = 0, other = 0;
        size_t bytes = format_bytes(f);
        for (long k = 0; k < atomic_load(&r[i].recorded); k++) {
            double a = sample_value(f, r[i].got + (size_t)k * 2 * bytes);
            double b = sample_value(f, r[i].got + (size_t)k * 2 * bytes + bytes);
            if (a == max && b == min)
                at_limits++;
            else if (a == zero && b == zero)
                silent++;
            else
                other++;
        }
        VERIFY(at_limits == 24000 && other == 0,
               "%s: %ld frames read (%.0f, %.0f) = (max, min), %ld silent, %ld anything else (want 24000 "
               "at the limits, 0 else)", format_name(f), at_limits, max, min, silent, other);
        free(r[i].got);
    }
}

int main(void)
{
    wakeup_init();
    test_output_rate(44100, 1, true);
    test_output_rate(22050, 2, true);
    test_output_rate(96000, 2, false);
    test_output_rate(8000, 1, false);
    test_capture_rate();
    test_formats();
    test_saturation();
    return harness_finish("rate_formats");
}
