/* alsa_client: what ALSA programs do with a PCM, one scenario per run, for
 * tests/alsa/test_alsa.c (which starts the daemon and judges the tap).
 *
 *   alsa_client PCM poll SECONDS        non-blocking playback driven only by
 *                                       poll() wake-ups (440 Hz at 0.3)
 *   alsa_client PCM delay RATE SECONDS  steady playback of silence with a
 *                                       click every 0.5 s; snd_pcm_delay just
 *                                       before each click is written
 *   alsa_client PCM drain FRAMES        FRAMES of 440 Hz at 0.5 (not a
 *                                       whole number of periods), then drain
 *   alsa_client PCM drop                2 s of 440 Hz into a 1 s buffer, then
 *                                       drop; prepare and 0.5 s of 880 Hz
 *   alsa_client PCM pause               1 s of 440 Hz, pause 1 s, resume,
 *                                       1 s more
 *   alsa_client PCM xrun                0.5 s of 440 Hz, an underrun
 *                                       (-EPIPE), prepare, 0.5 s of 880 Hz
 *   alsa_client PCM xrun-capture FILE   capture, an overrun (-EPIPE),
 *                                       prepare, then 0.5 s into FILE (WAV)
 *
 * Each prints "ok ..." / "FAIL ..." lines and "key=value" lines with what it
 * measured (CLOCK_MONOTONIC seconds), and exits 0 when every check passed.
 * Waiting is on the PCM's poll descriptors with deadlines; the only sleep
 * is the pause test's one second of pause (pacing its own audio). */
#include <alsa/asoundlib.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <sndfile.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "verify.h"

#define CHANNELS 2

static int failures;
static const char *pcm_name;


static void die(const char *what, int err)
{
    printf("FAIL %s: %s\n", what, snd_strerror(err));
    exit(1);
}

struct setup {
    snd_pcm_stream_t dir;
    snd_pcm_format_t format;
    unsigned rate;
    snd_pcm_uframes_t period, buffer;   /* asked for; the PCM's values after open */
    int mode;                            /* SND_PCM_NONBLOCK or 0 */
};

static snd_pcm_t *open_pcm(struct setup *s)
{
    snd_pcm_t *pcm;
    int err = snd_pcm_open(&pcm, pcm_name, s->dir, s->mode);
    if (err < 0)
        die("snd_pcm_open", err);
    snd_pcm_hw_params_t *hw;
    snd_pcm_hw_params_alloca(&hw);
    unsigned rate = s->rate;
    if ((err = snd_pcm_hw_params_any(pcm, hw)) < 0 ||
        (err = snd_pcm_hw_params_set_access(pcm, hw, SND_PCM_ACCESS_RW_INTERLEAVED)) < 0 ||
        (err = snd_pcm_hw_params_set_format(pcm, hw, s->format)) < 0 ||
        (err = snd_pcm_hw_params_set_channels(pcm, hw, CHANNELS)) < 0 ||
        (err = snd_pcm_hw_params_set_rate(pcm, hw, rate, 0)) < 0 ||
        (err = snd_pcm_hw_params_set_period_size_near(pcm, hw, &s->period, NULL)) < 0 ||
        (err = snd_pcm_hw_params_set_buffer_size_near(pcm, hw, &s->buffer)) < 0 ||
        (err = snd_pcm_hw_params(pcm, hw)) < 0)
        die("hw_params", err);
    snd_pcm_hw_params_get_period_size(hw, &s->period, NULL);
    snd_pcm_hw_params_get_buffer_size(hw, &s->buffer);
    snd_pcm_sw_params_t *sw;
    snd_pcm_sw_params_alloca(&sw);
    snd_pcm_sw_params_current(pcm, sw);
    /* Playback starts once the buffer is full (what aplay does). */
    snd_pcm_sw_params_set_start_threshold(pcm, sw, s->dir == SND_PCM_STREAM_PLAYBACK ? s->buffer : 1);
    snd_pcm_sw_params_set_avail_min(pcm, sw, s->period);
    if ((err = snd_pcm_sw_params(pcm, sw)) < 0)
        die("sw_params", err);
    printf("setup rate=%u period=%lu buffer=%lu\n", s->rate, (unsigned long)s->period,
           (unsigned long)s->buffer);
    return pcm;
}

/* A sine for the frames [pos, pos + n) of a stream, S16 or float. */
static void sine(void *buf, snd_pcm_format_t format, long pos, long n, double hz, double amp,
                 unsigned rate)
{
    for (long i = 0; i < n; i++) {
        double v = amp * sin(2 * M_PI * hz * (double)(pos + i) / rate);
        for (int c = 0; c < CHANNELS; c++) {
            if (format == SND_PCM_FORMAT_FLOAT_LE)
                ((float *)buf)[i * CHANNELS + c] = (float)v;
            else
                ((short *)buf)[i * CHANNELS + c] = (short)lrint(v * 32767);
        }
    }
}

/* Write all n frames (blocking PCM). */
static void write_all(snd_pcm_t *pcm, const short *buf, long n, const char *what)
{
    while (n > 0) {
        snd_pcm_sframes_t w = snd_pcm_writei(pcm, buf, (snd_pcm_uframes_t)n);
        if (w < 0)
            die(what, (int)w);
        buf += w * CHANNELS;
        n -= w;
    }
}

/* Play `seconds` of a tone from a blocking PCM, one period per write. */
static void play_tone(snd_pcm_t *pcm, struct setup *s, double hz, double amp, double seconds)
{
    long total = lrint(seconds * s->rate);
    short *buf = malloc(s->period * CHANNELS * sizeof(*buf));
    for (long done = 0; done < total;) {
        long n = total - done < (long)s->period ? total - done : (long)s->period;
        sine(buf, SND_PCM_FORMAT_S16_LE, done, n, hz, amp, s->rate);
        write_all(pcm, buf, n, "snd_pcm_writei");
        done += n;
    }
    free(buf);
}

/* Wait on the PCM's poll descriptors, at most `timeout` s; the revents
 * alsa-lib makes of them (0: woken, but nothing to do), or -1 on timeout. */
static int wait_pcm(snd_pcm_t *pcm, double timeout)
{
    struct pollfd fds[8];
    int n = snd_pcm_poll_descriptors(pcm, fds, 8);
    if (n <= 0)
        die("snd_pcm_poll_descriptors", n < 0 ? n : -EINVAL);
    int r = poll(fds, (nfds_t)n, (int)(timeout * 1000));
    if (r <= 0)
        return -1;
    unsigned short revents = 0;
    int err = snd_pcm_poll_descriptors_revents(pcm, fds, (unsigned)n, &revents);
    if (err < 0)
        die("snd_pcm_poll_descriptors_revents", err);
    return revents;
}

/* ---- poll: non-blocking, event-driven playback -------------------------- */

static int run_poll(double seconds)
{
    struct setup s = { SND_PCM_STREAM_PLAYBACK, SND_PCM_FORMAT_S16_LE, 48000, 1024, 4096, SND_PCM_NONBLOCK };
    snd_pcm_t *pcm = open_pcm(&s);
    long total = lrint(seconds * s.rate), pos = 0;
    short *buf = malloc(s.buffer * CHANNELS * sizeof(*buf));
    long wakeups = 0, spurious = 0, eagain = 0, epipe = 0, xrun_state = 0, writes = 0, timeouts = 0;
    long fill_writes = 0;

    /* Fill the buffer: non-blocking writes until -EAGAIN; playback starts
     * at the start threshold (a full buffer). */
    for (;;) {
        sine(buf, s.format, pos, (long)s.period, 440, 0.3, s.rate);
        snd_pcm_sframes_t w = snd_pcm_writei(pcm, buf, s.period);
        if (w == -EAGAIN)
            break;
        if (w < 0)
            die("filling the buffer", (int)w);
        pos += w;
        fill_writes++;
        if (fill_writes > 64)
            break;
    }
    VERIFY(pos == (long)s.buffer, "non-blocking writes filled the buffer and then said -EAGAIN (%ld of %lu frames)",
           pos, (unsigned long)s.buffer);
    VERIFY(snd_pcm_state(pcm) == SND_PCM_STATE_RUNNING, "running once the buffer is full (state %s)",
           snd_pcm_state_name(snd_pcm_state(pcm)));
    double t0 = now();
    while (pos < total) {
        int revents = wait_pcm(pcm, 1.0);
        if (revents < 0) {
            timeouts++;
            printf("FAIL poll() slept 1 s with the buffer draining (at frame %ld)\n", pos);
            break;
        }
        wakeups++;
        if (revents & POLLERR)
            printf("note POLLERR at frame %ld, state %s\n", pos, snd_pcm_state_name(snd_pcm_state(pcm)));
        if (snd_pcm_state(pcm) == SND_PCM_STATE_XRUN)
            xrun_state++;
        if (!(revents & POLLOUT)) {
            spurious++;
            continue;
        }
        snd_pcm_sframes_t avail = snd_pcm_avail_update(pcm);
        if (avail < 0) {
            epipe += avail == -EPIPE;
            printf("FAIL snd_pcm_avail_update: %s at frame %ld\n", snd_strerror((int)avail), pos);
            break;
        }
        long n = avail;
        if (n > total - pos)
            n = total - pos;
        if (n == 0)
            continue;
        sine(buf, s.format, pos, n, 440, 0.3, s.rate);
        snd_pcm_sframes_t w = snd_pcm_writei(pcm, buf, (snd_pcm_uframes_t)n);
        writes++;
        if (w == -EAGAIN) {
            eagain++;
            continue;
        }
        if (w < 0) {
            epipe += w == -EPIPE;
            printf("FAIL snd_pcm_writei: %s at frame %ld\n", snd_strerror((int)w), pos);
            break;
        }
        pos += w;
    }
    double t1 = now();
    if (snd_pcm_state(pcm) == SND_PCM_STATE_XRUN)
        xrun_state++;
    snd_pcm_nonblock(pcm, 0);
    int err = snd_pcm_drain(pcm);
    double expected = (double)(total - (long)s.buffer) / (double)s.period;
    printf("poll frames=%ld wakeups=%ld spurious=%ld writes=%ld eagain=%ld epipe=%ld xrun_state=%ld "
           "seconds=%.3f expected_wakeups=%.0f\n",
           pos, wakeups, spurious, writes, eagain, epipe, xrun_state, t1 - t0, expected);
    VERIFY(pos == total && timeouts == 0, "%.1f s written, every write from a poll() wake-up (%ld frames)",
           seconds, pos);
    VERIFY_TIMING(epipe == 0 && xrun_state == 0, "no underrun: no -EPIPE, state never XRUN (%ld, %ld)", epipe, xrun_state);
    /* A wake-up with nothing to do (the poll descriptor still readable
     * right after a write) is allowed, as with alsa-plugins' jack PCM; a
     * busy loop is not. */
    VERIFY_TIMING(wakeups <= 3 * expected + 20, "no busy loop: %ld wake-ups (%ld without POLLOUT) for %.0f periods",
           wakeups, spurious, expected);
    VERIFY(err == 0, "snd_pcm_drain: %s", snd_strerror(err));
    snd_pcm_close(pcm);
    free(buf);
    return failures != 0;
}

/* ---- delay: snd_pcm_delay against where the clicks land ----------------- */

#define CLICK_FRAMES_MS 10

static int run_delay(unsigned rate, double seconds)
{
    struct setup s = { SND_PCM_STREAM_PLAYBACK, SND_PCM_FORMAT_FLOAT_LE, rate, 1024, 4096, 0 };
    snd_pcm_t *pcm = open_pcm(&s);
    long total = lrint(seconds * rate), click_len = (long)rate * CLICK_FRAMES_MS / 1000;
    float *buf = calloc(s.period * CHANNELS, sizeof(*buf));
    int k = 0;
    double lat_min = INFINITY, lat_max = 0;
    for (long pos = 0; pos < total; pos += (long)s.period) {
        /* Clicks on channel 0 every 0.5 s from 1 s on: a step to 0.5 for
         * 10 ms (its rising edge is the instant; resampling keeps the
         * half-height crossing where it was). */
        long next_click = (long)rate + (long)k * (long)rate / 2;
        long at = next_click - pos;
        memset(buf, 0, s.period * CHANNELS * sizeof(*buf));
        for (long i = 0; i < (long)s.period; i++) {
            long p = pos + i, c = (p - (long)rate) % ((long)rate / 2);
            if (p >= (long)rate && c >= 0 && c < click_len && p < total - (long)rate / 4)
                buf[i * CHANNELS] = 0.5f;
        }
        if (at >= 0 && at < (long)s.period && next_click < total - (long)rate / 4) {
            /* The click's first frame is `at` frames after the next frame
             * written: it reaches the DAC delay + at frames from now. */
            snd_pcm_sframes_t delay = 0, avail;
            double t0 = now();
            int err = snd_pcm_delay(pcm, &delay);
            double t1 = now();
            avail = snd_pcm_avail(pcm);
            if (err < 0 || avail < 0)
                die("snd_pcm_delay / snd_pcm_avail", err < 0 ? err : (int)avail);
            long queued = (long)s.buffer - avail;
            double lat = (double)(delay - queued) / rate;
            if (k > 0) {   /* the first one may come before the stream's first block */
                lat_min = fmin(lat_min, lat);
                lat_max = fmax(lat_max, lat);
            }
            printf("click k=%d frame=%ld time=%.6f delay=%ld queued=%ld beyond=%.6f state=%s\n", k,
                   next_click, (t0 + t1) / 2 + (double)(delay + at) / rate, (long)delay, queued, lat,
                   snd_pcm_state_name(snd_pcm_state(pcm)));
            k++;
        }
        long n = total - pos < (long)s.period ? total - pos : (long)s.period;
        for (float *b = buf; n > 0;) {
            snd_pcm_sframes_t w = snd_pcm_writei(pcm, b, (snd_pcm_uframes_t)n);
            if (w < 0)
                die("snd_pcm_writei", (int)w);
            b += w * CHANNELS;
            n -= w;
        }
    }
    int err = snd_pcm_drain(pcm);
    VERIFY(err == 0, "snd_pcm_drain: %s", snd_strerror(err));
    VERIFY(k >= 3, "%d clicks written", k);
    /* delay - (buffer - avail): what the plugin adds for the stream (its
     * ring, the library, the card) -- positive, and steady while playing. */
    VERIFY_TIMING(lat_min > 0 && lat_max - lat_min <= (double)s.period / rate,
           "delay - frames queued in ALSA (the stream's latency) is positive and steady: "
           "%.2f..%.2f ms (a period is %.2f ms)", lat_min * 1e3, lat_max * 1e3, 1e3 * s.period / rate);
    snd_pcm_close(pcm);
    free(buf);
    return failures != 0;
}

/* ---- drain: FRAMES, not a whole number of periods ----------------------- */

static int run_drain(long frames)
{
    struct setup s = { SND_PCM_STREAM_PLAYBACK, SND_PCM_FORMAT_S16_LE, 48000, 1024, 8192, 0 };
    snd_pcm_t *pcm = open_pcm(&s);
    play_tone(pcm, &s, 440, 0.5, (double)frames / s.rate);
    double t0 = now();
    int err = snd_pcm_drain(pcm);
    double t1 = now();
    printf("drain frames=%ld seconds=%.3f\n", frames, t1 - t0);
    VERIFY(err == 0, "snd_pcm_drain: %s", snd_strerror(err));
    VERIFY(t1 - t0 < (double)s.buffer / s.rate + 1.0, "drain returned in %.3f s", t1 - t0);
    VERIFY(snd_pcm_state(pcm) == SND_PCM_STATE_SETUP, "state after drain: %s",
           snd_pcm_state_name(snd_pcm_state(pcm)));
    snd_pcm_close(pcm);
    return failures != 0;
}

/* ---- drop: the buffered second is not played ----------------------------- */

static int run_drop(void)
{
    struct setup s = { SND_PCM_STREAM_PLAYBACK, SND_PCM_FORMAT_S16_LE, 48000, 1200, 48000, 0 };
    snd_pcm_t *pcm = open_pcm(&s);
    play_tone(pcm, &s, 440, 0.5, 2.0);
    snd_pcm_sframes_t delay = 0;
    int err = snd_pcm_delay(pcm, &delay);
    snd_pcm_sframes_t avail = snd_pcm_avail(pcm);
    double t0 = now();
    int derr = snd_pcm_drop(pcm);
    double t1 = now();
    if (err < 0)
        die("snd_pcm_delay", err);
    printf("drop written=%ld delay=%ld queued=%ld drop_ms=%.3f period=%lu\n", 2L * s.rate, (long)delay,
           (long)s.buffer - (long)avail, (t1 - t0) * 1e3, (unsigned long)s.period);
    VERIFY(derr == 0, "snd_pcm_drop: %s", snd_strerror(derr));
    VERIFY_TIMING(t1 - t0 < 0.1, "snd_pcm_drop returned at once (%.1f ms)", (t1 - t0) * 1e3);
    VERIFY(snd_pcm_state(pcm) == SND_PCM_STATE_SETUP, "state after drop: %s", snd_pcm_state_name(snd_pcm_state(pcm)));
    err = snd_pcm_prepare(pcm);
    VERIFY(err == 0, "snd_pcm_prepare after drop: %s", snd_strerror(err));
    play_tone(pcm, &s, 880, 0.5, 0.5);
    err = snd_pcm_drain(pcm);
    VERIFY(err == 0, "0.5 s of 880 Hz after drop + prepare, drained: %s", snd_strerror(err));
    snd_pcm_close(pcm);
    return failures != 0;
}

/* ---- pause: hw_ptr stands, nothing lost ---------------------------------- */

static int run_pause(void)
{
    struct setup s = { SND_PCM_STREAM_PLAYBACK, SND_PCM_FORMAT_S16_LE, 48000, 1024, 8192, 0 };
    snd_pcm_t *pcm = open_pcm(&s);
    snd_pcm_hw_params_t *hw;
    snd_pcm_hw_params_alloca(&hw);
    snd_pcm_hw_params_current(pcm, hw);
    VERIFY(snd_pcm_hw_params_can_pause(hw), "the PCM says it can pause");
    play_tone(pcm, &s, 440, 0.5, 1.0);
    snd_pcm_sframes_t delay = 0;
    snd_pcm_delay(pcm, &delay);
    double t0 = now();
    int err = snd_pcm_pause(pcm, 1);
    VERIFY(err == 0, "snd_pcm_pause(1): %s", snd_strerror(err));
    VERIFY(snd_pcm_state(pcm) == SND_PCM_STATE_PAUSED, "state: %s", snd_pcm_state_name(snd_pcm_state(pcm)));
    snd_pcm_sframes_t a0 = snd_pcm_avail(pcm);
    /* One second of pause: this test's own audio, paced by the clock. */
    struct timespec one = { 1, 0 };
    nanosleep(&one, NULL);
    snd_pcm_sframes_t a1 = snd_pcm_avail(pcm);
    VERIFY(a0 == a1, "paused, nothing is consumed (avail %ld, then %ld)", (long)a0, (long)a1);
    double t1 = now();
    err = snd_pcm_pause(pcm, 0);
    VERIFY(err == 0, "snd_pcm_pause(0): %s", snd_strerror(err));
    VERIFY(snd_pcm_state(pcm) == SND_PCM_STATE_RUNNING, "state after resume: %s",
           snd_pcm_state_name(snd_pcm_state(pcm)));
    play_tone(pcm, &s, 440, 0.5, 1.0);
    err = snd_pcm_drain(pcm);
    VERIFY(err == 0, "snd_pcm_drain: %s", snd_strerror(err));
    printf("pause seconds=%.6f delay=%ld period=%lu\n", t1 - t0, (long)delay, (unsigned long)s.period);
    snd_pcm_close(pcm);
    return failures != 0;
}

/* ---- xrun: -EPIPE, and prepare recovers ---------------------------------- */

/* Wait (on the PCM's descriptors, at most `timeout` s) until snd_pcm_avail
 * reports the xrun. */
static snd_pcm_sframes_t wait_xrun(snd_pcm_t *pcm, double timeout)
{
    double deadline = now() + timeout;
    snd_pcm_sframes_t a;
    while ((a = snd_pcm_avail(pcm)) >= 0 && now() < deadline)
        wait_pcm(pcm, deadline - now());
    return a;
}

static int run_xrun(void)
{
    struct setup s = { SND_PCM_STREAM_PLAYBACK, SND_PCM_FORMAT_S16_LE, 48000, 1024, 4096, 0 };
    snd_pcm_t *pcm = open_pcm(&s);
    play_tone(pcm, &s, 440, 0.5, 0.5);
    /* Stop writing: the buffer (85 ms) runs dry. */
    snd_pcm_sframes_t a = wait_xrun(pcm, 3.0);
    VERIFY(a == -EPIPE, "the buffer ran dry: snd_pcm_avail says %s", a < 0 ? snd_strerror((int)a) : "no error");
    VERIFY(snd_pcm_state(pcm) == SND_PCM_STATE_XRUN, "state: %s", snd_pcm_state_name(snd_pcm_state(pcm)));
    short buf[256 * CHANNELS] = { 0 };
    snd_pcm_sframes_t w = snd_pcm_writei(pcm, buf, 256);
    VERIFY(w == -EPIPE, "snd_pcm_writei after the underrun: %s", w < 0 ? snd_strerror((int)w) : "wrote");
    int err = snd_pcm_prepare(pcm);
    VERIFY(err == 0, "snd_pcm_prepare: %s", snd_strerror(err));
    VERIFY(snd_pcm_state(pcm) == SND_PCM_STATE_PREPARED, "state after prepare: %s",
           snd_pcm_state_name(snd_pcm_state(pcm)));
    play_tone(pcm, &s, 880, 0.5, 0.5);
    err = snd_pcm_drain(pcm);
    VERIFY(err == 0, "0.5 s of 880 Hz after the recovery, drained: %s", snd_strerror(err));
    snd_pcm_close(pcm);
    return failures != 0;
}

static int run_xrun_capture(const char *path)
{
    struct setup s = { SND_PCM_STREAM_CAPTURE, SND_PCM_FORMAT_S16_LE, 48000, 1024, 4096, 0 };
    snd_pcm_t *pcm = open_pcm(&s);
    short *buf = malloc(48000 * CHANNELS * sizeof(*buf));
    int err = snd_pcm_start(pcm);
    VERIFY(err == 0, "snd_pcm_start (capture): %s", snd_strerror(err));
    /* A reader held up for longer than the buffer (85 ms: a sanitizer on a
     * busy machine) overruns inside this read, and readi returns what it had.
     * That overrun is not the one under test: recover and read again. */
    snd_pcm_sframes_t r = 0;
    for (int take = 1; take <= 3; take++) {
        r = snd_pcm_readi(pcm, buf, 4800);
        if (r == 4800)
            break;
        printf("info read 0.1 s, take %d: %ld (%s): overran before the test's own overrun; again\n",
               take, (long)r, snd_pcm_state_name(snd_pcm_state(pcm)));
        if (snd_pcm_prepare(pcm) < 0 || snd_pcm_start(pcm) < 0)
            break;
    }
    VERIFY(r == 4800, "read 0.1 s: %ld", (long)r);
    /* Stop reading: the buffer (85 ms) fills. */
    snd_pcm_sframes_t a = wait_xrun(pcm, 3.0);
    VERIFY(a == -EPIPE, "the buffer overflowed: snd_pcm_avail says %s", a < 0 ? snd_strerror((int)a) : "no error");
    r = snd_pcm_readi(pcm, buf, 1024);
    VERIFY(r == -EPIPE, "snd_pcm_readi after the overrun: %s", r < 0 ? snd_strerror((int)r) : "read");
    err = snd_pcm_prepare(pcm);
    VERIFY(err == 0, "snd_pcm_prepare: %s", snd_strerror(err));
    err = snd_pcm_start(pcm);
    VERIFY(err == 0, "snd_pcm_start again: %s", snd_strerror(err));
    long got = 0;
    while (got < 24000) {
        r = snd_pcm_readi(pcm, buf + got * CHANNELS, (snd_pcm_uframes_t)(24000 - got));
        if (r < 0) {
            VERIFY(false, "snd_pcm_readi after the recovery: %s", snd_strerror((int)r));
            break;
        }
        got += r;
    }
    SF_INFO info = { .samplerate = 48000, .channels = CHANNELS, .format = SF_FORMAT_WAV | SF_FORMAT_PCM_16 };
    SNDFILE *f = sf_open(path, SFM_WRITE, &info);
    if (f) {
        sf_writef_short(f, buf, got);
        sf_close(f);
    }
    VERIFY(f && got == 24000, "0.5 s recorded after the recovery into %s", path);
    snd_pcm_close(pcm);
    free(buf);
    return failures != 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    keep_plugin_loaded();
    if (argc < 3) {
        fprintf(stderr, "usage: alsa_client PCM poll|delay|drain|drop|pause|xrun|xrun-capture [ARGS]\n");
        return 2;
    }
    pcm_name = argv[1];
    const char *mode = argv[2];
    if (!strcmp(mode, "poll") && argc == 4)
        return run_poll(atof(argv[3]));
    if (!strcmp(mode, "delay") && argc == 5)
        return run_delay((unsigned)atoi(argv[3]), atof(argv[4]));
    if (!strcmp(mode, "drain") && argc == 4)
        return run_drain(atol(argv[3]));
    if (!strcmp(mode, "drop"))
        return run_drop();
    if (!strcmp(mode, "pause"))
        return run_pause();
    if (!strcmp(mode, "xrun"))
        return run_xrun();
    if (!strcmp(mode, "xrun-capture") && argc == 4)
        return run_xrun_capture(argv[3]);
    fprintf(stderr, "alsa_client: bad arguments\n");
    return 2;
}
