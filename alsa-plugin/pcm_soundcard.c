/* The ALSA PCM plugin `soundcard`: any ALSA program (aplay, mpv, PortAudio's
 * ALSA host API...) plays and records through soundcardd, as one client
 * stream per PCM, next to native clients.
 *
 * An snd_pcm_ioplug with mmap_rw: ALSA keeps the application's ring buffer.
 * libsoundcard's callback thread moves one period at a time between that
 * buffer and the stream (the library converts format and rate) and advances
 * hw_ptr; a pipe is the poll descriptor, readable once avail >= avail_min.
 * This is the shape of alsa-plugins' JACK plugin, with soundcardd in JACK's
 * place.  Only libsoundcard's public API is used.
 *
 *   pcm.soundcard { type soundcard  [socket PATH]  [name NAME]  [latency_ms N] }
 */
#include <alsa/asoundlib.h>
#include <alsa/pcm_external.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <soundcard/soundcard.h>

#define MIN_PERIOD_FRAMES 16
#define MAX_BUFFER_BYTES (4u << 20)

struct sc_pcm {
    snd_pcm_ioplug_t io;
    char *socket_path;        /* NULL: libsoundcard's default rule */
    char *name;
    double extra_latency;     /* seconds of buffering inside libsoundcard */
    int card_channels;
    sc_client *client;
    sc_stream *stream;
    int wake[2];              /* pipe: [0] is the poll descriptor */

    /* Shared with the callback thread. */
    _Atomic snd_pcm_uframes_t hw_ptr;
    _Atomic bool xrun;
    _Atomic bool paused;
    _Atomic bool ending;      /* we are stopping the stream: its end is no loss */
    _Atomic bool lost;        /* the stream ended on its own: soundcardd went away */
    /* CLOCK_MONOTONIC seconds (as double bits) when the edge of the last
     * block meets the converter: the DAC for the end of the last block
     * played, the ADC for the end of the last block captured. */
    _Atomic uint64_t block_edge_bits;
    snd_pcm_uframes_t boundary;
    snd_pcm_uframes_t min_avail;
    snd_pcm_channel_area_t *stream_areas;   /* describe the library's block */
};

static const char *plugin_socket(const struct sc_pcm *p)
{
    return p->socket_path ? p->socket_path : sc_default_socket_path();
}

/* ---- the poll descriptor ------------------------------------------------ */

/* Called on the callback thread after each block: wake a poller once a
 * period can be transferred (or, draining, whenever something moved). */
static void wake_if_ready(struct sc_pcm *p)
{
    snd_pcm_ioplug_t *io = &p->io;
    snd_pcm_uframes_t avail = snd_pcm_ioplug_avail(io, atomic_load(&p->hw_ptr), io->appl_ptr);
    if (avail >= p->min_avail || io->state == SND_PCM_STATE_DRAINING || atomic_load(&p->xrun)) {
        char byte = 0;
        (void)!write(p->wake[1], &byte, 1);  /* non-blocking; a full pipe is awake enough */
    }
}

/* Empty the pipe while there is nothing to do, so poll() blocks.  The pipe
 * is emptied before avail is looked at: a block the callback thread takes in
 * between then leaves its byte in the pipe (emptying after the check could
 * swallow that byte, and the application would sleep through its wake-up
 * until alsa-lib's poll timeout). */
static bool block_if_not_ready(struct sc_pcm *p)
{
    snd_pcm_ioplug_t *io = &p->io;
    bool moving = io->state == SND_PCM_STATE_RUNNING || io->state == SND_PCM_STATE_DRAINING ||
                  (io->state == SND_PCM_STATE_PREPARED && io->stream == SND_PCM_STREAM_CAPTURE);
    if (!moving || atomic_load(&p->xrun) || atomic_load(&p->lost))
        return false;
    char buf[64];
    while (read(p->wake[0], buf, sizeof(buf)) > 0)
        ;
    snd_pcm_uframes_t avail = snd_pcm_ioplug_avail(io, atomic_load(&p->hw_ptr), io->appl_ptr);
    if (avail >= p->min_avail || atomic_load(&p->xrun) || atomic_load(&p->lost)) {
        char byte = 0;
        (void)!write(p->wake[1], &byte, 1);  /* ready after all: poll() must not block */
        return false;
    }
    return true;
}

static int sc_poll_revents(snd_pcm_ioplug_t *io, struct pollfd *pfds, unsigned int nfds,
                           unsigned short *revents)
{
    struct sc_pcm *p = io->private_data;
    if (nfds != 1)
        return -EINVAL;
    *revents = pfds[0].revents & ~(POLLIN | POLLOUT);
    if ((pfds[0].revents & POLLIN) && !block_if_not_ready(p))
        *revents |= io->stream == SND_PCM_STREAM_PLAYBACK ? POLLOUT : POLLIN;
    return 0;
}

/* ---- the block callback (libsoundcard's thread) ------------------------- */

static void store_block_edge(struct sc_pcm *p, const sc_time_info *t, unsigned long frames)
{
    double edge = p->io.stream == SND_PCM_STREAM_PLAYBACK ? t->output_dac_time : t->input_adc_time;
    union { double d; uint64_t u; } v = { .d = edge + (double)frames / p->io.rate };
    atomic_store(&p->block_edge_bits, v.u);
}

static double monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int on_block(const void *input, void *output, unsigned long frames, const sc_time_info *time,
                    unsigned status, void *userdata)
{
    struct sc_pcm *p = userdata;
    snd_pcm_ioplug_t *io = &p->io;
    (void)status;
    store_block_edge(p, time, frames);
    if (atomic_load(&p->paused) || atomic_load(&p->xrun))
        return SC_CONTINUE;  /* output stays silent; hw_ptr stands */
    snd_pcm_state_t state = io->state;
    if (state != SND_PCM_STATE_RUNNING && state != SND_PCM_STATE_DRAINING)
        return SC_CONTINUE;
    snd_pcm_uframes_t hw = atomic_load(&p->hw_ptr);
    const snd_pcm_channel_area_t *areas = snd_pcm_ioplug_mmap_areas(io);
    snd_pcm_uframes_t offset = hw % io->buffer_size, xfer;
    for (unsigned c = 0; c < io->channels; c++)
        p->stream_areas[c].addr = io->stream == SND_PCM_STREAM_PLAYBACK ? output : (void *)input;
    if (io->stream == SND_PCM_STREAM_PLAYBACK) {
        snd_pcm_uframes_t queued = snd_pcm_ioplug_hw_avail(io, hw, io->appl_ptr);
        xfer = queued < frames ? queued : frames;
        snd_pcm_areas_copy_wrap(p->stream_areas, 0, frames, areas, offset, io->buffer_size,
                                io->channels, xfer, io->format);
    } else {
        snd_pcm_uframes_t room = snd_pcm_ioplug_hw_avail(io, hw, io->appl_ptr);
        xfer = room < frames ? room : frames;
        snd_pcm_areas_copy_wrap(areas, offset, io->buffer_size, p->stream_areas, 0, frames,
                                io->channels, xfer, io->format);
    }
    hw += xfer;
    if (hw >= p->boundary)
        hw -= p->boundary;
    atomic_store(&p->hw_ptr, hw);
    /* The application was late: an underrun (or, capturing, an overrun)
     * it will see as -EPIPE.  Draining, running dry is the goal. */
    if (xfer < frames && state == SND_PCM_STATE_RUNNING)
        atomic_store(&p->xrun, true);
    wake_if_ready(p);
    return SC_CONTINUE;
}

/* ---- ioplug callbacks --------------------------------------------------- */

/* The stream ended: by our stop, drain or drop, or on its own when
 * soundcardd went away; then the application hears -ENODEV, not silence. */
static void on_finished(void *userdata)
{
    struct sc_pcm *p = userdata;
    if (atomic_load(&p->ending))
        return;
    atomic_store(&p->lost, true);
    char byte = 0;
    (void)!write(p->wake[1], &byte, 1);
}

static void close_stream(struct sc_pcm *p)
{
    atomic_store(&p->ending, true);
    if (p->stream) {
        sc_stream_close(p->stream);
        p->stream = NULL;
    }
}

static sc_format sc_format_of(snd_pcm_format_t format)
{
    switch (format) {
    case SND_PCM_FORMAT_S16_LE:
        return SC_INT16;
    case SND_PCM_FORMAT_S32_LE:
        return SC_INT32;
    case SND_PCM_FORMAT_S24_3LE:
        return SC_INT24;
    case SND_PCM_FORMAT_U8:
        return SC_UINT8;
    default:
        return SC_FLOAT32;
    }
}

static int sc_hw_params(snd_pcm_ioplug_t *io, snd_pcm_hw_params_t *params)
{
    struct sc_pcm *p = io->private_data;
    (void)params;
    close_stream(p);
    free(p->stream_areas);
    p->stream_areas = calloc(io->channels, sizeof(*p->stream_areas));
    if (!p->stream_areas)
        return -ENOMEM;
    unsigned bits = (unsigned)snd_pcm_format_physical_width(io->format);
    for (unsigned c = 0; c < io->channels; c++)
        p->stream_areas[c] = (snd_pcm_channel_area_t){ NULL, c * bits, io->channels * bits };

    sc_stream_params sp;
    sc_stream_params_init(&sp);
    sp.name = p->name;
    if (io->stream == SND_PCM_STREAM_PLAYBACK)
        sp.output_channels = (int)io->channels;
    else
        sp.input_channels = (int)io->channels;
    sp.format = sc_format_of(io->format);
    sp.samplerate = io->rate;
    sp.blocksize = io->period_size;
    sp.latency = p->extra_latency;
    sp.callback = on_block;
    sp.finished = on_finished;
    sp.userdata = p;
    int err = sc_stream_open(p->client, &sp, &p->stream);
    if (err < 0) {
        SNDERR("soundcard: cannot open a stream on soundcardd at %s: %s", plugin_socket(p), sc_last_error());
        p->stream = NULL;
        return err == SC_ELIMIT ? -EBUSY : -EIO;
    }
    return 0;
}

static int sc_hw_free(snd_pcm_ioplug_t *io)
{
    close_stream(io->private_data);
    return 0;
}

static int sc_sw_params(snd_pcm_ioplug_t *io, snd_pcm_sw_params_t *params)
{
    struct sc_pcm *p = io->private_data;
    snd_pcm_sw_params_get_avail_min(params, &p->min_avail);
    snd_pcm_sw_params_get_boundary(params, &p->boundary);
    return 0;
}

static int sc_prepare(snd_pcm_ioplug_t *io)
{
    struct sc_pcm *p = io->private_data;
    if (!p->stream)
        return -EBADFD;
    if (atomic_load(&p->lost))
        return -ENODEV;
    /* After an xrun the stream still runs (silence, while the state is not
     * RUNNING): what was written before it plays out, as on a real card.
     * hw_ptr first: the callback leaves it alone while xrun is set. */
    atomic_store(&p->hw_ptr, 0);
    atomic_store(&p->xrun, false);
    atomic_store(&p->paused, false);
    snd_pcm_sw_params_t *sw;
    snd_pcm_sw_params_alloca(&sw);
    if (snd_pcm_sw_params_current(io->pcm, sw) == 0) {
        snd_pcm_sw_params_get_avail_min(sw, &p->min_avail);
        snd_pcm_sw_params_get_boundary(sw, &p->boundary);
    }
    if (p->min_avail == 0)
        p->min_avail = io->period_size;
    if (p->boundary == 0)
        p->boundary = io->buffer_size;
    if (io->stream == SND_PCM_STREAM_PLAYBACK)
        wake_if_ready(p);  /* an empty playback buffer takes writes at once */
    else
        block_if_not_ready(p);
    return 0;
}

static int sc_start(snd_pcm_ioplug_t *io)
{
    struct sc_pcm *p = io->private_data;
    if (atomic_load(&p->lost))
        return -ENODEV;
    if (sc_stream_is_active(p->stream))
        return 0;  /* still running since before an xrun: it takes the buffer again */
    atomic_store(&p->ending, false);
    int err = sc_stream_start(p->stream);
    if (err < 0) {
        SNDERR("soundcard: cannot start the stream: %s", sc_last_error());
        return -EIO;
    }
    return 0;
}

static int sc_stop(snd_pcm_ioplug_t *io)
{
    struct sc_pcm *p = io->private_data;
    /* drop: what is queued in libsoundcard goes too */
    atomic_store(&p->ending, true);
    if (p->stream && sc_stream_is_active(p->stream))
        sc_stream_abort(p->stream);
    return 0;
}

/* Wait until the callback thread has taken everything the application
 * wrote, then let the library play out its own buffer. */
static int sc_drain(snd_pcm_ioplug_t *io)
{
    struct sc_pcm *p = io->private_data;
    if (io->stream == SND_PCM_STREAM_PLAYBACK) {
        /* alsa-lib does not start a PREPARED stream before calling us
         * (aplay of a file shorter than the start threshold). */
        if (!sc_stream_is_active(p->stream) && !atomic_load(&p->xrun) &&
            snd_pcm_ioplug_hw_avail(io, atomic_load(&p->hw_ptr), io->appl_ptr) > 0 && sc_start(io) < 0)
            return -EIO;
        while (snd_pcm_ioplug_hw_avail(io, atomic_load(&p->hw_ptr), io->appl_ptr) > 0 &&
               !atomic_load(&p->xrun) && !atomic_load(&p->lost) && sc_stream_is_active(p->stream)) {
            struct pollfd pfd = { .fd = p->wake[0], .events = POLLIN };
            if (poll(&pfd, 1, 1000) < 0 && errno != EINTR)
                break;
            char buf[64];
            while (read(p->wake[0], buf, sizeof(buf)) > 0)
                ;
        }
        atomic_store(&p->ending, true);
        if (sc_stream_is_active(p->stream))
            sc_stream_stop(p->stream);
    }
    return atomic_load(&p->lost) ? -ENODEV : 0;
}

static snd_pcm_sframes_t sc_pointer(snd_pcm_ioplug_t *io)
{
    struct sc_pcm *p = io->private_data;
    if (atomic_load(&p->lost))
        return -ENODEV;
    if (atomic_load(&p->xrun))
        return -EPIPE;
    return (snd_pcm_sframes_t)atomic_load(&p->hw_ptr);
}

static int sc_pause(snd_pcm_ioplug_t *io, int enable)
{
    struct sc_pcm *p = io->private_data;
    atomic_store(&p->paused, enable != 0);
    return 0;
}

/* Frames between the application and the DAC (or from the ADC): what waits
 * in ALSA's buffer, plus the time until the last block taken reaches the
 * DAC (playback) or since the last block given left the ADC (capture), from
 * the stream's timing record. */
static int sc_delay(snd_pcm_ioplug_t *io, snd_pcm_sframes_t *delayp)
{
    struct sc_pcm *p = io->private_data;
    union { uint64_t u; double d; } edge = { .u = atomic_load(&p->block_edge_bits) };
    snd_pcm_uframes_t hw = atomic_load(&p->hw_ptr);
    double beyond = 0;
    snd_pcm_sframes_t in_buffer;
    if (io->stream == SND_PCM_STREAM_PLAYBACK) {
        in_buffer = (snd_pcm_sframes_t)snd_pcm_ioplug_hw_avail(io, hw, io->appl_ptr);
        if (edge.d > 0)
            beyond = edge.d - monotonic_seconds();
    } else {
        in_buffer = (snd_pcm_sframes_t)snd_pcm_ioplug_avail(io, hw, io->appl_ptr);
        if (edge.d > 0)
            beyond = monotonic_seconds() - edge.d;
    }
    *delayp = in_buffer + (snd_pcm_sframes_t)((beyond > 0 ? beyond : 0) * io->rate + 0.5);
    return 0;
}

static void free_pcm(struct sc_pcm *p)
{
    close_stream(p);
    sc_client_close(p->client);
    if (p->wake[0] >= 0)
        close(p->wake[0]);
    if (p->wake[1] >= 0)
        close(p->wake[1]);
    free(p->stream_areas);
    free(p->socket_path);
    free(p->name);
    free(p);
}

static int sc_close(snd_pcm_ioplug_t *io)
{
    free_pcm(io->private_data);
    return 0;
}

static const snd_pcm_ioplug_callback_t sc_callbacks = {
    .start = sc_start,
    .stop = sc_stop,
    .pointer = sc_pointer,
    .close = sc_close,
    .hw_params = sc_hw_params,
    .hw_free = sc_hw_free,
    .sw_params = sc_sw_params,
    .prepare = sc_prepare,
    .drain = sc_drain,
    .pause = sc_pause,
    .poll_revents = sc_poll_revents,
    .delay = sc_delay,
};

/* What soundcardd can take: the library converts format and rate. */
static int set_constraints(struct sc_pcm *p)
{
    static const unsigned int access[] = { SND_PCM_ACCESS_RW_INTERLEAVED, SND_PCM_ACCESS_MMAP_INTERLEAVED };
    static const unsigned int formats[] = { SND_PCM_FORMAT_S16_LE, SND_PCM_FORMAT_S32_LE, SND_PCM_FORMAT_S24_3LE,
                                            SND_PCM_FORMAT_FLOAT_LE, SND_PCM_FORMAT_U8 };
    snd_pcm_ioplug_t *io = &p->io;
    int err;
    if ((err = snd_pcm_ioplug_set_param_list(io, SND_PCM_IOPLUG_HW_ACCESS, 2, access)) < 0 ||
        (err = snd_pcm_ioplug_set_param_list(io, SND_PCM_IOPLUG_HW_FORMAT, 5, formats)) < 0 ||
        (err = snd_pcm_ioplug_set_param_minmax(io, SND_PCM_IOPLUG_HW_CHANNELS, 1, (unsigned)p->card_channels)) < 0 ||
        (err = snd_pcm_ioplug_set_param_minmax(io, SND_PCM_IOPLUG_HW_RATE, 8000, 192000)) < 0 ||
        /* Bytes: 16 frames of the smallest frame (U8 mono) at least. */
        (err = snd_pcm_ioplug_set_param_minmax(io, SND_PCM_IOPLUG_HW_PERIOD_BYTES, MIN_PERIOD_FRAMES,
                                               MAX_BUFFER_BYTES / 2)) < 0 ||
        (err = snd_pcm_ioplug_set_param_minmax(io, SND_PCM_IOPLUG_HW_BUFFER_BYTES, 2 * MIN_PERIOD_FRAMES,
                                               MAX_BUFFER_BYTES)) < 0 ||
        (err = snd_pcm_ioplug_set_param_minmax(io, SND_PCM_IOPLUG_HW_PERIODS, 2, 1024)) < 0)
        return err;
    return 0;
}

static int parse_config(struct sc_pcm *p, snd_config_t *conf)
{
    snd_config_iterator_t i, next;
    snd_config_for_each(i, next, conf) {
        snd_config_t *n = snd_config_iterator_entry(i);
        const char *id, *text;
        long number;
        if (snd_config_get_id(n, &id) < 0)
            continue;
        if (!strcmp(id, "comment") || !strcmp(id, "type") || !strcmp(id, "hint"))
            continue;
        if (!strcmp(id, "socket") || !strcmp(id, "name")) {
            if (snd_config_get_string(n, &text) < 0) {
                SNDERR("soundcard: %s must be a string", id);
                return -EINVAL;
            }
            char **field = !strcmp(id, "socket") ? &p->socket_path : &p->name;
            free(*field);
            *field = strdup(text);
            continue;
        }
        if (!strcmp(id, "latency_ms")) {
            if (snd_config_get_integer(n, &number) < 0 || number < 0 || number > 10000) {
                SNDERR("soundcard: latency_ms must be a whole number of ms in 0..10000");
                return -EINVAL;
            }
            p->extra_latency = number / 1000.0;
            continue;
        }
        SNDERR("soundcard: unknown field %s (known: socket, name, latency_ms)", id);
        return -EINVAL;
    }
    return 0;
}

SND_PCM_PLUGIN_DEFINE_FUNC(soundcard)
{
    (void)root;
    struct sc_pcm *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->wake[0] = p->wake[1] = -1;
    int err = parse_config(p, conf);
    if (err < 0)
        goto fail;
    if (!p->name && !(p->name = strdup("alsa"))) {
        err = -ENOMEM;
        goto fail;
    }
    if (sc_client_open(&p->client, p->socket_path, p->name) < 0) {
        SNDERR("soundcard: %s", sc_last_error());
        p->client = NULL;
        err = -ECONNREFUSED;
        goto fail;
    }
    sc_server_info info;
    if (sc_get_server_info(p->client, &info) < 0) {
        SNDERR("soundcard: server.info from %s: %s", plugin_socket(p), sc_last_error());
        err = -EIO;
        goto fail;
    }
    p->card_channels = info.channels;
    if (pipe2(p->wake, O_NONBLOCK | O_CLOEXEC) < 0) {
        err = -errno;
        goto fail;
    }
    p->io.version = SND_PCM_IOPLUG_VERSION;
    p->io.name = "soundcard: a stream of soundcardd";
    p->io.callback = &sc_callbacks;
    p->io.private_data = p;
    p->io.poll_fd = p->wake[0];
    p->io.poll_events = POLLIN;
    p->io.mmap_rw = 1;
    p->io.flags = SND_PCM_IOPLUG_FLAG_BOUNDARY_WA | SND_PCM_IOPLUG_FLAG_MONOTONIC;
    err = snd_pcm_ioplug_create(&p->io, name, stream, mode);
    if (err < 0)
        goto fail;
    err = set_constraints(p);
    if (err < 0) {
        snd_pcm_ioplug_delete(&p->io);  /* frees p through sc_close */
        return err;
    }
    *pcmp = p->io.pcm;
    return 0;
fail:
    free_pcm(p);
    return err;
}

SND_PCM_PLUGIN_SYMBOL(soundcard);
