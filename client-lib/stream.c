/* Streams in blocking read/write mode: the client side of the shm rings.
 * The library keeps its own ring index as the truth and publishes it; it
 * waits on the stream's eventfd, which the daemon writes every wake_frames
 * frames of progress, and watches the socket so a dead daemon ends the wait
 * with an error instead of a hang. */
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

struct sc_stream {
    sc_client *client;
    uint32_t id;
    struct shm_layout layout;
    struct shm_header *shm;
    int memfd, eventfd;
    float *play_ring, *capture_ring;
    uint32_t play_write, capture_read;  /* our own indices: the truth */
    uint32_t play_target;              /* playback fill we keep: the latency budget */
    sc_format format;
    size_t sample_bytes;
    unsigned long blocksize;
    bool active;
};

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
    if (p->callback)
        return sc__fail(SC_EUNSUPPORTED, "callback streams are not supported yet: use blocking read/write");
    if (p->input_channels < 0 || p->output_channels < 0 || p->input_channels > 64 ||
        p->output_channels > 64 || (p->input_channels == 0 && p->output_channels == 0))
        return sc__fail(-EINVAL, "channels must be 0..64 and not both 0 (got %d in, %d out)",
                        p->input_channels, p->output_channels);
    if (convert_sample_bytes(p->format) == 0)
        return sc__fail(-EINVAL, "unknown sample format %d", (int)p->format);
    if (p->samplerate != 0 && p->samplerate != c->rate)
        return sc__fail(SC_EUNSUPPORTED, "samplerate %.0f Hz differs from the card's %u Hz: rate "
                        "conversion is not supported yet", p->samplerate, c->rate);
    if (!(p->latency >= 0 && p->latency < 60))
        return sc__fail(-EINVAL, "latency must be 0..60 seconds (got %g)", p->latency);
    if (p->blocksize > (1ul << 18))
        return sc__fail(-EINVAL, "blocksize %lu is too large (at most 262144)", p->blocksize);
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
    shm_unmap(s->shm, &s->layout);
    if (s->memfd >= 0)
        close(s->memfd);
    if (s->eventfd >= 0)
        close(s->eventfd);
    free(s);
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
    s->blocksize = p->blocksize;

    /* Latency is this stream's own: the playback fill it keeps.  At least two
     * periods (one playing, one queued) and one block. */
    uint32_t latency = (uint32_t)lround(p->latency * c->rate);
    uint32_t target = latency > 2 * c->period ? latency : 2 * c->period;
    if (target < p->blocksize)
        target = (uint32_t)p->blocksize;
    uint32_t wake = p->blocksize ? (uint32_t)p->blocksize : c->period;

    cJSON *req = cJSON_CreateObject(), *reply;
    cJSON_AddStringToObject(req, "op", "stream.open");
    cJSON_AddStringToObject(req, "name", p->name ? p->name : program_invocation_short_name);
    cJSON_AddNumberToObject(req, "device", p->device);
    cJSON_AddNumberToObject(req, "input_channels", p->input_channels);
    cJSON_AddNumberToObject(req, "output_channels", p->output_channels);
    cJSON_AddNumberToObject(req, "buffer_frames", target + wake);
    cJSON_AddNumberToObject(req, "wake_frames", wake);
    int fds[2], nfds = 2;
    err = sc__call(c, req, &reply, fds, &nfds, NULL);
    if (err < 0) {
        free(s);
        return err;
    }
    err = attach(s, reply, fds);
    cJSON_Delete(reply);
    if (err < 0) {
        stream_free(s);
        return err;
    }
    s->play_target = target < s->layout.capacity ? target : s->layout.capacity;
    *out = s;
    return 0;
}

static int control(sc_stream *s, const char *op)
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
    if (s->active)
        return sc__fail(SC_EINVALSTATE, "stream %u is already running", s->id);
    int err = control(s, "stream.start");
    if (err == 0)
        s->active = true;
    return err;
}

int sc_stream_stop(sc_stream *s)
{
    int err = control(s, "stream.stop");  /* replies once drained */
    if (err == 0)
        s->active = false;
    return err;
}

int sc_stream_abort(sc_stream *s)
{
    int err = control(s, "stream.abort");
    if (err == 0) {
        s->active = false;
        if (s->play_ring)  /* the daemon dropped what was queued */
            s->play_write = ring_load_read(&s->shm->play);
    }
    return err;
}

int sc_stream_close(sc_stream *s)
{
    if (!s)
        return 0;
    int err = control(s, "stream.close");
    stream_free(s);
    return err;
}

int sc_stream_is_active(sc_stream *s)
{
    return s->active;
}

long sc_stream_write_available(sc_stream *s)
{
    if (!s->play_ring)
        return sc__fail(-EINVAL, "stream %u has no output", s->id);
    uint32_t fill = ring_fill(s->play_write, ring_load_read(&s->shm->play), s->layout.capacity);
    return fill < s->play_target ? (long)(s->play_target - fill) : 0;
}

long sc_stream_read_available(sc_stream *s)
{
    if (!s->capture_ring)
        return sc__fail(-EINVAL, "stream %u has no input", s->id);
    return ring_fill(ring_load_write(&s->shm->capture), s->capture_read, s->layout.capacity);
}

/* Sleep until the daemon signals progress on this stream; fails if the
 * connection to the daemon is gone. */
static int wait_for_progress(sc_stream *s)
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

/* The blocking transfer both ways: convert between the caller's buffer and
 * the ring, at most two runs per pass (split at the wrap), and wait for the
 * daemon's progress when the ring is full (playback) or empty (capture). */
static long transfer(sc_stream *s, void *buf, unsigned long frames, bool playback)
{
    float *ring = playback ? s->play_ring : s->capture_ring;
    if (!ring)
        return sc__fail(-EINVAL, "stream %u has no %s", s->id, playback ? "output" : "input");
    const uint32_t channels = playback ? s->layout.output_channels : s->layout.input_channels;
    const uint32_t cap = s->layout.capacity;
    uint32_t *own_index = playback ? &s->play_write : &s->capture_read;
    _Atomic uint32_t *published = playback ? &s->shm->play.write_index : &s->shm->capture.read_index;
    char *app = buf;
    unsigned long done = 0;
    while (done < frames) {
        long ready = playback ? sc_stream_write_available(s) : sc_stream_read_available(s);
        if (ready == 0) {
            /* A stopped stream makes no progress: return what fit. */
            if (!s->active)
                return done ? (long)done
                            : sc__fail(SC_ESTOPPED, "stream %u is not running and its buffer is %s",
                                       s->id, playback ? "full" : "empty");
            int err = wait_for_progress(s);
            if (err < 0)
                return err;
            continue;
        }
        uint32_t n = (uint32_t)((unsigned long)ready < frames - done ? (unsigned long)ready : frames - done);
        for (uint32_t copied = 0; copied < n;) {
            uint32_t offset;
            uint32_t run = ring_segment(cap, *own_index + copied, n - copied, &offset);
            float *r = ring + (size_t)offset * channels;
            char *a = app + (done + copied) * channels * s->sample_bytes;
            size_t samples = (size_t)run * channels;
            if (playback)
                convert_to_float(r, a, s->format, samples);
            else
                convert_from_float(a, r, s->format, samples);
            copied += run;
        }
        *own_index += n;
        ring_publish(published, *own_index);
        done += n;
    }
    return (long)done;
}

long sc_stream_write(sc_stream *s, const void *buf, unsigned long frames)
{
    return transfer(s, (void *)buf, frames, true);
}

long sc_stream_read(sc_stream *s, void *buf, unsigned long frames)
{
    return transfer(s, buf, frames, false);
}

double sc_stream_time(sc_stream *s)
{
    (void)s;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int sc_stream_latency(sc_stream *s, double *input, double *output)
{
    /* From the timing record: how long until the next frame we write is
     * heard, and how long ago the next frame we read was captured. */
    struct shm_timing_snapshot t;
    if (shm_timing_read(&s->shm->timing, &t) < 0)
        return sc__fail(-EAGAIN, "the stream's timing record is being rewritten; try again");
    double now = sc_stream_time(s), rate = s->layout.rate;
    if (output)
        *output = s->play_ring && t.period_time_ns
                      ? t.dac_time_ns / 1e9 + (int32_t)(s->play_write - t.play_index) / rate - now
                      : 0.0;
    if (input)
        *input = s->capture_ring && t.period_time_ns
                     ? now - (t.adc_time_ns / 1e9 + (int32_t)(s->capture_read - t.capture_index) / rate)
                     : 0.0;
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
    return 0;
}
