/* Streams: opening (the latency budget, the wake threshold, the shm
 * mapping), control, the blocking read/write mode and the clock.  The
 * library keeps its own ring index as the truth and publishes it; it waits on
 * the stream's eventfd, which the daemon writes every wake_frames frames of
 * progress, and watches the socket so a dead daemon ends a wait with an error
 * instead of a hang.  Callback mode lives in callback.c, the conversions in
 * pipeline.c. */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "convert.h"
#include "internal.h"
#include "pipeline.h"

void sc_stream_params_init(sc_stream_params *p)
{
    memset(p, 0, sizeof(*p));
    p->device = -1;
    p->format = SC_FLOAT32;  /* channels stay 0: the caller says which directions it wants */
}

static double number(cJSON *obj, const char *key)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? v->valuedouble : -1.0;
}

static int check_params(sc_client *c, const sc_stream_params *p)
{
    if (p->input_channels < 0 || p->output_channels < 0 || p->input_channels > (int)c->channels ||
        p->output_channels > (int)c->channels || (p->input_channels == 0 && p->output_channels == 0))
        return sc__fail(-EINVAL, "channels must be 0..%u (the card's) and not both 0 (got %d in, %d out)",
                        c->channels, p->input_channels, p->output_channels);
    if (convert_sample_bytes(p->format) == 0)
        return sc__fail(-EINVAL, "unknown sample format %d", (int)p->format);
    if (p->samplerate != 0 && !(p->samplerate >= 1000 && p->samplerate <= 768000))
        return sc__fail(-EINVAL, "samplerate %g Hz is outside 1000..768000", p->samplerate);
    if (!(p->latency >= 0 && p->latency <= 10))
        return sc__fail(-EINVAL, "latency must be 0..10 seconds (got %g)", p->latency);
    if (p->blocksize > (1ul << 16))
        return sc__fail(-EINVAL, "blocksize %lu is too large (at most 65536)", p->blocksize);
    return 0;
}

/* Parse the stream.open reply and map the memfd. */
static int attach(sc_stream *s, cJSON *reply, const int fds[2])
{
    cJSON *shm = cJSON_GetObjectItemCaseSensitive(reply, "shm");
    double id = number(reply, "stream"), cap = number(shm, "capacity");
    double in = number(shm, "input_channels"), out = number(shm, "output_channels");
    s->memfd = fds[0];
    s->eventfd = fds[1];
    if (id < 0 || cap <= 0 || in < 0 || out < 0 ||
        shm_layout_compute(&s->layout, s->client->rate, s->client->period, (uint32_t)cap,
                           (uint32_t)in, (uint32_t)out) < 0 ||
        s->layout.play_offset != (uint64_t)number(shm, "play_offset") ||
        s->layout.capture_offset != (uint64_t)number(shm, "capture_offset") ||
        s->layout.total_size != (uint64_t)number(shm, "size"))
        return sc__fail(SC_EPROTOCOL, "the stream.open reply describes an unexpected layout");
    s->id = (uint32_t)id;
    int err = shm_map(s->memfd, &s->layout, &s->shm);
    if (err < 0)
        return sc__fail(SC_EPROTOCOL, "cannot map the stream's memory: %s", strerror(-err));
    s->play_ring = shm_play_ring(s->shm, &s->layout);
    s->capture_ring = shm_capture_ring(s->shm, &s->layout);
    return 0;
}

static void stream_free(sc_stream *s)
{
    pipeline_free(s);
    shm_unmap(s->shm, &s->layout);
    if (s->memfd >= 0)
        close(s->memfd);
    if (s->eventfd >= 0)
        close(s->eventfd);
    free(s->cb_in);
    free(s->cb_out);
    free(s);
}

/* The latency budget, in card frames: what the stream keeps queued (and, for
 * capture, may hold) beyond what the card itself buffers.  At least two
 * periods (one playing, one queued), and a block plus a period, so the
 * client can always hand over a whole block before the ring runs dry. */
static uint32_t latency_target(const sc_stream_params *p, uint32_t period, double card_rate,
                               uint32_t block_card, bool resampling)
{
    uint32_t target = (uint32_t)lround(p->latency * card_rate);
    /* A resampler gives its output in bursts, not a block per block (at
     * 8000 -> 48000 Hz it holds back well over a period): one more block
     * and period of budget cover that (measured: no underrun from 8000 to
     * 96000 Hz with blocks of 16 to 1024 frames). */
    uint32_t floor_frames = block_card + period + (resampling ? block_card + period : 0);
    if (target < 2 * period)
        target = 2 * period;
    if (target < floor_frames)
        target = floor_frames;
    return target;
}

int sc_stream_open(sc_client *c, const sc_stream_params *p, sc_stream **out)
{
    *out = NULL;
    int err = check_params(c, p);
    if (err < 0)
        return err;
    sc_stream *s = calloc(1, sizeof(*s));
    if (!s)
        return sc__fail(-ENOMEM, "out of memory");
    s->client = c;
    s->memfd = s->eventfd = -1;
    s->format = p->format;
    s->sample_bytes = convert_sample_bytes(p->format);
    s->card_rate = c->rate;
    s->app_rate = p->samplerate ? p->samplerate : c->rate;
    s->callback = p->callback;
    s->userdata = p->userdata;
    s->finished = p->finished;

    /* A block (callback size, or the blocking mode's wake interval) in card
     * frames.  With no blocksize: a period, or half the latency when that is
     * longer, so a relaxed stream is not woken every period. */
    double ratio = s->card_rate / s->app_rate;
    uint32_t block_card = p->blocksize ? (uint32_t)ceil(p->blocksize * ratio) : c->period;
    if (!p->blocksize && p->latency * s->card_rate / 2 > block_card)
        block_card = (uint32_t)(p->latency * s->card_rate / 2);
    s->blocksize = p->blocksize ? p->blocksize : (unsigned long)floor(block_card / ratio);
    if (s->blocksize == 0)
        s->blocksize = 1;
    uint32_t target = latency_target(p, c->period, s->card_rate, block_card, s->app_rate != s->card_rate);

    cJSON *req = cJSON_CreateObject(), *reply;
    cJSON_AddStringToObject(req, "op", "stream.open");
    cJSON_AddStringToObject(req, "name", p->name ? p->name : program_invocation_short_name);
    cJSON_AddNumberToObject(req, "device", p->device);
    cJSON_AddNumberToObject(req, "input_channels", p->input_channels);
    cJSON_AddNumberToObject(req, "output_channels", p->output_channels);
    cJSON_AddNumberToObject(req, "buffer_frames", target + block_card + c->period);
    cJSON_AddNumberToObject(req, "wake_frames", block_card);
    int fds[2], nfds = 2;
    err = sc__call(c, req, &reply, fds, &nfds, NULL);
    if (err < 0) {
        free(s);
        return err;
    }
    err = attach(s, reply, fds);
    cJSON_Delete(reply);
    if (!err)
        err = pipeline_init(s);
    if (!err && s->callback) {
        s->cb_in = calloc(s->blocksize * (size_t)p->input_channels + 1, s->sample_bytes);
        s->cb_out = calloc(s->blocksize * (size_t)p->output_channels + 1, s->sample_bytes);
        if (!s->cb_in || !s->cb_out)
            err = sc__fail(-ENOMEM, "out of memory");
    }
    if (err < 0) {
        sc__stream_control(s, "stream.close");
        stream_free(s);
        return err;
    }
    s->play_target = target < s->layout.capacity ? target : s->layout.capacity;
    *out = s;
    return 0;
}

int sc__stream_control(sc_stream *s, const char *op)
{
    cJSON *req = cJSON_CreateObject(), *reply;
    cJSON_AddStringToObject(req, "op", op);
    cJSON_AddNumberToObject(req, "stream", s->id);
    int err = sc__call(s->client, req, &reply, NULL, NULL, NULL);
    cJSON_Delete(reply);
    return err;
}

int sc_stream_start(sc_stream *s)
{
    if (atomic_load(&s->active))
        return sc__fail(SC_EINVALSTATE, "stream %u is already running", s->id);
    if (s->capture_ring) {
        /* Input captured while the stream was stopped is stale: a started
         * stream hears from now on. */
        s->capture_read = ring_load_write(&s->shm->capture);
        ring_publish(&s->shm->capture.read_index, s->capture_read);
    }
    if (s->callback) {
        sc__callback_join(s);  /* a thread that ended itself (complete/abort) */
        if (s->play_ring)
            pipeline_out_prime(s);
        if (s->capture_ring)
            pipeline_in_prime(s);
    }
    int err = sc__stream_control(s, "stream.start");
    if (err < 0)
        return err;
    atomic_store(&s->active, true);
    if (s->callback && (err = sc__callback_start(s)) < 0) {
        sc__stream_control(s, "stream.abort");
        atomic_store(&s->active, false);
    }
    return err;
}

int sc__end_stream(sc_stream *s, bool drain)
{
    if (drain && s->play_ring) {
        /* What the application queued, and the resampler's tail, still go
         * to the ring first. */
        for (;;) {
            bool all_out = pipeline_out_pump(s) == 0 && pipeline_out_flush(s);
            if (all_out || !atomic_load(&s->active) || atomic_load(&s->quit))
                break;
            if (sc__wait_for_progress(s) < 0)
                break;
        }
    }
    int err = sc__stream_control(s, drain ? "stream.stop" : "stream.abort");
    bool was_active = atomic_exchange(&s->active, false);
    if (!drain && s->play_ring)  /* the daemon dropped what was queued */
        s->play_write = ring_load_read(&s->shm->play);
    pipeline_reset(s);  /* a restart begins with empty FIFOs and fresh resamplers */
    if (s->callback && was_active && s->finished)
        s->finished(s->userdata);
    return err;
}

/* Stop (drain) or abort from the application.  A callback stream's thread
 * leaves first; if the callback itself ended the stream, all has happened. */
static int end_stream(sc_stream *s, bool drain)
{
    if (s->callback && s->thread_started) {
        if (sc__callback_join(s) != STREAM_END_NONE)
            return 0;
        atomic_store(&s->quit, false);  /* the drain below may wait */
    } else if (s->callback && !atomic_load(&s->active)) {
        return 0;
    }
    return sc__end_stream(s, drain);
}

int sc_stream_stop(sc_stream *s)
{
    return end_stream(s, true);
}

int sc_stream_abort(sc_stream *s)
{
    return end_stream(s, false);
}

int sc_stream_close(sc_stream *s)
{
    if (!s)
        return 0;
    if (atomic_load(&s->active) || s->thread_started)
        end_stream(s, false);
    int err = sc__stream_control(s, "stream.close");
    stream_free(s);
    return err;
}

int sc_stream_is_active(sc_stream *s)
{
    return atomic_load(&s->active);
}

long sc_stream_write_available(sc_stream *s)
{
    if (!s->play_ring)
        return sc__fail(-EINVAL, "stream %u has no output", s->id);
    return pipeline_out_room(s);
}

long sc_stream_read_available(sc_stream *s)
{
    if (!s->capture_ring)
        return sc__fail(-EINVAL, "stream %u has no input", s->id);
    return pipeline_in_ready(s);
}

int sc__wait_for_progress(sc_stream *s)
{
    struct pollfd p[2] = {
        { .fd = s->eventfd, .events = POLLIN },
        { .fd = s->client->fd, .events = POLLRDHUP },
    };
    for (;;) {
        int n = poll(p, 2, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return sc__fail(-errno, "poll: %s", strerror(errno));
        if (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR))
            return sc__fail(SC_EDISCONNECTED, "soundcardd at %s went away", s->client->socket_path);
        if (p[0].revents & POLLIN) {
            uint64_t count;
            (void)!read(s->eventfd, &count, sizeof(count));
            return 0;
        }
    }
}

/* A stream that is not running makes no progress: a blocking call returns
 * what it moved, or says why it cannot move anything. */
static long stopped(sc_stream *s, unsigned long done, const char *what)
{
    return done ? (long)done
                : sc__fail(SC_ESTOPPED, "stream %u is not running and its buffer is %s", s->id, what);
}

long sc_stream_write(sc_stream *s, const void *buf, unsigned long frames)
{
    if (!s->play_ring)
        return sc__fail(-EINVAL, "stream %u has no output", s->id);
    if (s->callback)
        return sc__fail(SC_EINVALSTATE, "stream %u is a callback stream: its callback writes", s->id);
    const char *app = buf;
    size_t frame_bytes = s->layout.output_channels * s->sample_bytes;
    unsigned long done = 0;
    for (;;) {
        uint32_t n = pipeline_out_space(s);
        if (n > frames - done)
            n = (uint32_t)(frames - done);
        pipeline_out_push(s, app + done * frame_bytes, n);
        done += n;
        uint32_t queued = pipeline_out_pump(s);
        if (done == frames && queued == 0)
            return (long)done;
        if (!atomic_load(&s->active)) {
            if (n == 0)
                return stopped(s, done, "full");
            continue;
        }
        if (pipeline_out_space(s) == 0 || done == frames) {
            int err = sc__wait_for_progress(s);
            if (err < 0)
                return err;
        }
    }
}

long sc_stream_read(sc_stream *s, void *buf, unsigned long frames)
{
    if (!s->capture_ring)
        return sc__fail(-EINVAL, "stream %u has no input", s->id);
    if (s->callback)
        return sc__fail(SC_EINVALSTATE, "stream %u is a callback stream: its callback reads", s->id);
    char *app = buf;
    size_t frame_bytes = s->layout.input_channels * s->sample_bytes;
    unsigned long done = 0;
    while (done < frames) {
        pipeline_in_pump(s);
        uint32_t want = frames - done > UINT32_MAX ? UINT32_MAX : (uint32_t)(frames - done);
        uint32_t n = pipeline_in_take(s, app + done * frame_bytes, want);
        done += n;
        if (done == frames)
            break;
        if (!atomic_load(&s->active)) {
            if (n == 0)
                return stopped(s, done, "empty");
            continue;
        }
        if (n == 0) {
            int err = sc__wait_for_progress(s);
            if (err < 0)
                return err;
        }
    }
    return (long)done;
}

static double monotonic_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

double sc_stream_time(sc_stream *s)
{
    (void)s;
    return monotonic_now();
}

/* The time info, from the daemon's timing record of the current period:
 * the frame at ring index i reaches the DAC at
 *   dac_time + (i - play_index) / card_rate,
 * and the next frame the application writes sits behind play_write plus
 * what the FIFO and the resampler still hold.  Capture mirrors it: the next
 * frame the application reads entered the ADC at
 *   adc_time + (capture_read - capture_index - held) / card_rate. */
void sc__time_info(sc_stream *s, sc_time_info *t)
{
    struct shm_timing_snapshot snap;
    t->current_time = monotonic_now();
    t->input_adc_time = t->output_dac_time = 0;
    if (shm_timing_read(&s->shm->timing, &snap) < 0 || snap.period_time_ns == 0)
        return;
    if (s->play_ring) {
        double ahead = (int32_t)(s->play_write - snap.play_index) + pipeline_out_pending(s);
        t->output_dac_time = snap.dac_time_ns / 1e9 + ahead / s->card_rate;
    }
    if (s->capture_ring) {
        double behind = (int32_t)(snap.capture_index - s->capture_read) + pipeline_in_pending(s);
        t->input_adc_time = snap.adc_time_ns / 1e9 - behind / s->card_rate;
    }
}

void sc__latency_from(sc_stream *s, const sc_time_info *t, double *input, double *output)
{
    *output = s->play_ring && t->output_dac_time ? t->output_dac_time - t->current_time : 0.0;
    *input = s->capture_ring && t->input_adc_time ? t->current_time - t->input_adc_time : 0.0;
}

int sc_stream_latency(sc_stream *s, double *input, double *output)
{
    double in, out;
    if (s->callback && s->thread_started) {
        /* The callback thread owns the pipeline: use what it last saw. */
        union { uint64_t u; double d; } a, b;
        a.u = atomic_load(&s->latency_bits[0]);
        b.u = atomic_load(&s->latency_bits[1]);
        in = a.d;
        out = b.d;
    } else {
        sc_time_info t;
        sc__time_info(s, &t);
        sc__latency_from(s, &t, &in, &out);
    }
    if (input)
        *input = in;
    if (output)
        *output = out;
    return 0;
}

int sc_stream_set_gain(sc_stream *s, float gain)
{
    if (!(gain >= 0.0f && gain <= 16.0f))
        return sc__fail(-EINVAL, "gain must be 0..16 (got %g)", gain);
    cJSON *req = cJSON_CreateObject(), *reply;
    cJSON_AddStringToObject(req, "op", "stream.set");
    cJSON_AddNumberToObject(req, "stream", s->id);
    cJSON_AddNumberToObject(req, "gain", gain);
    int err = sc__call(s->client, req, &reply, NULL, NULL, NULL);
    cJSON_Delete(reply);
    return err;
}

int sc_stream_get_stats(sc_stream *s, sc_stream_stats *out)
{
    struct shm_counters *c = &s->shm->counters;
    out->frames = atomic_load_explicit(&c->frames, memory_order_relaxed);
    out->underruns = atomic_load_explicit(&c->underruns, memory_order_relaxed);
    out->overruns = atomic_load_explicit(&c->overruns, memory_order_relaxed);
    out->clipped = atomic_load_explicit(&c->clipped, memory_order_relaxed);
    uint32_t bits = atomic_load_explicit(&c->peak_bits, memory_order_relaxed);
    memcpy(&out->peak, &bits, sizeof(out->peak));
    out->id = s->id;
    out->callback_realtime = s->callback ? (s->realtime ? 1 : 0) : -1;
    return 0;
}
