/* Streams: opening (the latency budget, the wake threshold, the shm
 * mapping), control, the blocking read/write mode and the clock.  The
 * library keeps its own ring index as the truth and publishes it; it sleeps
 * on the stream's futex word in the shm header (or, from a daemon that
 * offers only that, its wake-up pipe), which the daemon moves every
 * wake_frames frames of progress, and watches the socket (from watch.c's
 * thread, for a futex sleep) so a dead daemon ends a wait with an error
 * instead of a hang.  With reconnect on (sc_client_set_reconnect), a
 * stream whose daemon went away is opened again on the next one (reopen
 * below).
 * Callback mode lives in callback.c, the conversions in pipeline.c. */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
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
    s->wake_fd = fds[1];
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
    cJSON *wakeup = cJSON_GetObjectItemCaseSensitive(reply, "wakeup");
    s->wake_futex = cJSON_IsString(wakeup) && strcmp(wakeup->valuestring, "futex") == 0;
    s->wake_seen = atomic_load(&s->shm->wake.seq);
    return 0;
}

/* Let go of what attach() took: the mapping and the stream's descriptors. */
static void detach(sc_stream *s)
{
    sc__watch_stop(s);  /* it watches these descriptors and wakes through the mapping */
    shm_unmap(s->shm, &s->layout);
    s->shm = NULL;
    if (s->memfd >= 0)
        close(s->memfd);
    if (s->wake_fd >= 0)
        close(s->wake_fd);
    if (s->conn_fd >= 0)
        close(s->conn_fd);
    if (s->wait_fd >= 0)
        close(s->wait_fd);
    s->memfd = s->wake_fd = s->conn_fd = s->wait_fd = -1;
}

static void stream_free(sc_stream *s)
{
    pipeline_free(s);
    detach(s);
    if (s->quit_fd >= 0)
        close(s->quit_fd);
    cJSON_Delete(s->open_request);
    pthread_mutex_destroy(&s->swap_lock);
    free(s->cb_in);
    free(s->cb_out);
    free(s);
}

/* The futex (one system call to wake, one to sleep, no lock a process can
 * hold); SOUNDCARD_WAKEUP=pipe asks for the pipe, which every daemon of
 * protocol 1 has, to compare the two. */
static const char *wakeup_wanted(void)
{
    const char *v = getenv("SOUNDCARD_WAKEUP");
    return v && strcmp(v, "pipe") == 0 ? "pipe" : "futex";
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

/* SOUNDCARD_LATENCY=SECONDS: the least latency a stream of this process
 * gets, as PIPEWIRE_LATENCY sets it for PipeWire's clients -- for a machine
 * whose scheduler stalls realtime threads longer than a stream's default
 * budget (docs/timing.md), without changing the program.  At most 10 s, the
 * most a stream may ask for (check_params). */
static double latency_floor_from_env(void)
{
    return sc__env_seconds("SOUNDCARD_LATENCY", 10);
}

int sc_stream_open(sc_client *c, const sc_stream_params *p, sc_stream **out)
{
    *out = NULL;
    int err = sc__client_check(c);
    if (err < 0)
        return err;
    if ((err = check_params(c, p)) < 0)
        return err;
    sc_stream_params with_floor;
    double least = latency_floor_from_env();
    if (p->latency < least) {
        with_floor = *p;
        with_floor.latency = least;
        p = &with_floor;
    }
    sc_stream *s = calloc(1, sizeof(*s));
    if (!s)
        return sc__fail(-ENOMEM, "out of memory");
    s->client = c;
    s->memfd = s->wake_fd = s->conn_fd = s->wait_fd = -1;
    s->watch.epoll_fd = s->watch.stop_fd = -1;
    s->quit_fd = p->callback ? eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK) : -1;
    atomic_init(&s->gain, 1.0f);
    pthread_mutex_init(&s->swap_lock, NULL);
    if (p->callback && s->quit_fd < 0) {
        err = sc__fail(-errno, "eventfd: %s", strerror(errno));
        stream_free(s);
        return err;
    }
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
    cJSON_AddStringToObject(req, "wakeup", wakeup_wanted());
    s->open_request = cJSON_Duplicate(req, 1);
    int fds[2], nfds = 2;
    err = s->open_request ? sc__stream_call(c, &s->generation, &s->conn_fd, req, &reply, fds, &nfds)
                          : sc__fail(-ENOMEM, "out of memory");
    if (err < 0) {
        if (!s->open_request)
            cJSON_Delete(req);
        stream_free(s);
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

/* One request about stream `id`, over connection `generation` only. */
static int control(sc_client *c, uint64_t generation, uint32_t id, const char *op, const char *key,
                   double value)
{
    cJSON *req = cJSON_CreateObject(), *reply;
    cJSON_AddStringToObject(req, "op", op);
    cJSON_AddNumberToObject(req, "stream", id);
    if (key)
        cJSON_AddNumberToObject(req, key, value);
    int err = sc__stream_call(c, &generation, NULL, req, &reply, NULL, NULL);
    cJSON_Delete(reply);
    return err;
}

int sc__stream_control(sc_stream *s, const char *op)
{
    return control(s->client, s->generation, s->id, op, NULL, 0);
}

/* ---- reconnect: a stream whose daemon went away ---- */

static bool reconnecting(sc_stream *s)
{
    return atomic_load(&s->client->reconnect_timeout) > 0;
}

/* Whether the daemon the stream lives on is gone: the client moved on to a
 * new connection, or ours hung up (a poll that does not wait). */
static bool connection_lost(sc_stream *s)
{
    if (s->generation != atomic_load(&s->client->generation))
        return true;
    struct pollfd p = { .fd = s->conn_fd, .events = POLLRDHUP };
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/* Put the stream on a new daemon: the stream.open reply and descriptors in
 * place of the old ones (the ring starts empty, the counters at 0). */
static int swap_in(sc_stream *s, cJSON *reply, const int fds[2], int conn_fd, uint64_t generation)
{
    sc_stream fresh = { .client = s->client, .memfd = -1, .wake_fd = -1, .conn_fd = conn_fd, .wait_fd = -1 };
    int err = attach(&fresh, reply, fds);
    if (!err && s->client->rate != (uint32_t)s->card_rate)
        err = sc__fail(SC_EUNSUPPORTED, "soundcardd at %s came back at %u Hz; the stream runs at %g Hz",
                       s->client->socket_path, s->client->rate, s->card_rate);
    if (!err && (fresh.layout.input_channels != s->layout.input_channels ||
                 fresh.layout.output_channels != s->layout.output_channels))
        err = sc__fail(SC_EPROTOCOL, "the reopened stream has other channels");
    if (err < 0) {
        double id = number(reply, "stream");
        if (id >= 0)
            control(s->client, generation, (uint32_t)id, "stream.close", NULL, 0);
        detach(&fresh);
        return err;
    }
    pthread_mutex_lock(&s->swap_lock);
    detach(s);
    s->id = fresh.id;
    s->layout = fresh.layout;
    s->shm = fresh.shm;
    s->memfd = fresh.memfd;
    s->wake_fd = fresh.wake_fd;
    s->wake_futex = fresh.wake_futex;
    s->wake_seen = fresh.wake_seen;
    s->conn_fd = fresh.conn_fd;
    s->play_ring = fresh.play_ring;
    s->capture_ring = fresh.capture_ring;
    s->generation = generation;
    pthread_mutex_unlock(&s->swap_lock);
    if (s->play_ring)
        s->play_write = ring_load_read(&s->shm->play);
    if (s->capture_ring) {
        s->capture_read = ring_load_write(&s->shm->capture);
        ring_publish(&s->shm->capture.read_index, s->capture_read);
    }
    if (s->play_target > s->layout.capacity)
        s->play_target = s->layout.capacity;
    return 0;
}

/* Bring the reopened stream where the old one was: what the application
 * queued goes into the ring before the restart (no underrun to begin with),
 * then start if it ran, and its gain. */
static int resume(sc_stream *s)
{
    int err = 0;
    if (s->play_ring && !s->callback)
        pipeline_out_pump(s);
    if (atomic_load(&s->active))
        err = sc__stream_control(s, "stream.start");
    float gain = atomic_load(&s->gain);
    if (!err && gain != 1.0f)
        err = control(s->client, s->generation, s->id, "stream.set", "gain", gain);
    return err;
}

/* Reconnect (once per client: the generation says whether another stream
 * did it already), open the stream again with the parameters it was opened
 * with, and resume it; a daemon that goes away again meanwhile is waited for
 * too, until the reconnect timeout. */
static int reopen(sc_stream *s)
{
    sc_client *c = s->client;
    double deadline = sc__monotonic() + atomic_load(&c->reconnect_timeout);
    uint64_t seen = s->generation;
    for (;;) {
        uint64_t generation;
        int err = sc__client_reconnect(c, seen, deadline, &generation);
        if (err < 0)
            return err;
        cJSON *reply;
        int fds[2], nfds = 2, conn_fd = -1;
        err = sc__stream_call(c, &generation, &conn_fd, cJSON_Duplicate(s->open_request, 1), &reply, fds,
                              &nfds);
        if (!err) {
            err = swap_in(s, reply, fds, conn_fd, generation);
            cJSON_Delete(reply);
            if (!err)
                err = resume(s);
        }
        if (err != SC_EDISCONNECTED || sc__monotonic() >= deadline || generation == seen)
            return err;
        seen = generation;  /* that one went away too */
    }
}

/* A call found the stream's daemon gone: reopen it with reconnect on (not a
 * callback stream whose thread still owns it), else say so. */
static int stream_lost(sc_stream *s)
{
    if (!reconnecting(s) || (s->callback && s->thread_started))
        return sc__fail(SC_EDISCONNECTED, "soundcardd at %s went away", s->client->socket_path);
    return reopen(s);
}

/* Before a call: is the stream's daemon still there? */
static int stream_check(sc_stream *s)
{
    return connection_lost(s) ? stream_lost(s) : 0;
}

/* A control op that, with reconnect on, outlives a daemon going away just
 * before it: the stream is reopened and the op sent to the new daemon. */
static int control_again(sc_stream *s, const char *op)
{
    int err = sc__stream_control(s, op);
    if (err == SC_EDISCONNECTED && reconnecting(s) && (err = stream_lost(s)) == 0)
        err = sc__stream_control(s, op);
    return err;
}

int sc_stream_start(sc_stream *s)
{
    if (atomic_load(&s->active))
        return sc__fail(SC_EINVALSTATE, "stream %u is already running", s->id);
    if (s->callback)
        sc__callback_join(s);  /* a thread that ended itself (complete/abort/daemon gone) */
    int err = stream_check(s);
    if (err < 0)
        return err;
    if (s->capture_ring) {
        /* Input captured while the stream was stopped is stale: a started
         * stream hears from now on. */
        s->capture_read = ring_load_write(&s->shm->capture);
        ring_publish(&s->shm->capture.read_index, s->capture_read);
    }
    /* A callback stream, and a full-duplex read/write stream (whose writes
     * follow its reads; PortAudio's ALSA host API primes those too), start
     * with the latency budget's worth of silence queued: otherwise the
     * output runs a period from dry, and one late wake-up is a gap.  Not
     * when the application wrote output of its own before start. */
    bool duplex_rw = !s->callback && s->play_ring && s->capture_ring && s->out_fifo.frames == 0 &&
                     s->play_write == ring_load_read(&s->shm->play);
    if (s->callback || duplex_rw) {
        if (s->play_ring)
            pipeline_out_prime(s);
        if (s->capture_ring)
            pipeline_in_prime(s);
    }
    if ((err = control_again(s, "stream.start")) < 0)
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
            int err = sc__wait_for_progress(s);
            /* A blocking stream drains on into the next daemon (reconnect on). */
            if (err == SC_EDISCONNECTED && !s->callback)
                err = stream_lost(s);
            if (err < 0)
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

/* With reconnect on, a daemon that is gone has stopped the stream as
 * surely as stop, abort or close would: not an error for them. */
static int gone_is_stopped(sc_stream *s, int err)
{
    return err == SC_EDISCONNECTED && reconnecting(s) ? 0 : err;
}

/* Stop (drain) or abort from the application.  A callback stream's thread
 * leaves first; if the callback itself ended the stream, all has happened.
 * A blocking stream drains into the daemon that is there now (with
 * reconnect on, the next one if its own went away). */
static int end_stream(sc_stream *s, bool drain)
{
    if (s->callback && s->thread_started) {
        if (sc__callback_join(s) != STREAM_END_NONE)
            return 0;
        atomic_store(&s->quit, false);  /* the drain below may wait */
    } else if (s->callback && !atomic_load(&s->active)) {
        return 0;
    }
    int lost = drain && !s->callback && atomic_load(&s->active) ? stream_check(s) : 0;
    if (lost < 0)
        drain = false;  /* no daemon to drain into: stop here */
    int err = gone_is_stopped(s, sc__end_stream(s, drain));
    return lost < 0 ? lost : err;
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
    int err = gone_is_stopped(s, sc__stream_control(s, "stream.close"));
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
    int err = stream_check(s);
    return err < 0 ? err : pipeline_out_room(s);
}

long sc_stream_read_available(sc_stream *s)
{
    if (!s->capture_ring)
        return sc__fail(-EINVAL, "stream %u has no input", s->id);
    int err = stream_check(s);
    return err < 0 ? err : pipeline_in_ready(s);
}

/* The descriptors a wait watches, as an epoll set made once per stream (and
 * again after a reopen): a wait happens every block, and poll() registers
 * on and unregisters from three wait queues each time (it showed in
 * profiles of 32 clients at 64-frame blocks). */
static int wait_set(sc_stream *s)
{
    if (s->wait_fd >= 0)
        return 0;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event wake = { .events = EPOLLIN, .data.u32 = 0 };
    struct epoll_event conn = { .events = EPOLLRDHUP, .data.u32 = 1 };
    struct epoll_event quit = { .events = EPOLLIN, .data.u32 = 2 };
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, s->wake_fd, &wake) < 0 ||
        epoll_ctl(ep, EPOLL_CTL_ADD, s->conn_fd, &conn) < 0 ||
        (s->quit_fd >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, s->quit_fd, &quit) < 0)) {
        int err = errno;
        if (ep >= 0)
            close(ep);
        return sc__fail(-err, "epoll: %s", strerror(err));
    }
    s->wait_fd = ep;
    sc__watch_start(s);
    return 0;
}

/* What the descriptors say, waiting up to timeout_ms (-1: for ever): 1 a
 * wake-up (pipe bytes, read) or quit, 0 nothing yet, or an error when the
 * daemon or the stream has gone. */
static int watch_descriptors(sc_stream *s, int timeout_ms)
{
    for (;;) {
        struct epoll_event ev[3];
        int n = epoll_wait(s->wait_fd, ev, 3, timeout_ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return sc__fail(-errno, "epoll_wait: %s", strerror(errno));
        if (n == 0)
            return 0;
        uint32_t got[3] = { 0, 0, 0 };
        for (int i = 0; i < n; i++)
            got[ev[i].data.u32] = ev[i].events;
        if (got[1] & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            return sc__fail(SC_EDISCONNECTED, "soundcardd at %s went away", s->client->socket_path);
        if (got[0] & EPOLLIN) {
            char wakes[64];  /* one byte per wake-up; more left pending just wake the next wait */
            (void)!read(s->wake_fd, wakes, sizeof(wakes));
            return 1;
        }
        /* The pipe's write end is closed: the daemon dropped the stream (or
         * is going, before its socket closes).  Waiting on would return at
         * once, forever: a busy loop, at realtime priority on a callback
         * thread. */
        if (got[0] & (EPOLLHUP | EPOLLERR))
            return sc__fail(SC_EDISCONNECTED, "soundcardd at %s dropped stream %u", s->client->socket_path, s->id);
        if (got[2] & EPOLLIN)
            return 1;  /* the caller sees s->quit */
    }
}

/* Without the watcher (watch.c), a futex sleep ends this often to look at
 * the descriptors: a daemon that died (or dropped the stream) is noticed
 * within this time. */
#define FUTEX_WATCH_NS (100 * 1000 * 1000)

/* The futex wake-up (protocol/shm.h): return at once if the daemon's word
 * moved since the last return, else say we sleep, look once more, sleep.
 * Woken (or the word moved before we slept), it returns: the caller looks
 * at the ring again, so a wake-up meant for the stream's other waiting
 * thread (a reader beside a writer) costs a look, never a lost wake-up.
 * The watcher raises hung_up before it moves the word, so the wait after
 * its wake-up finds the hang-up here. */
static int wait_on_futex(sc_stream *s)
{
    struct shm_wake *w = &s->shm->wake;
    for (;;) {
        bool covered = sc__watch_covers(s);
        if (atomic_load(&s->watch.hung_up)) {  /* the watcher's news: look */
            int got = watch_descriptors(s, 0);
            if (got != 0)
                return got < 0 ? got : 0;
        }
        uint32_t seen = atomic_load_explicit(&s->wake_seen, memory_order_relaxed);
        uint32_t now = atomic_load(&w->seq);
        if (now == seen) {
            atomic_store(&w->waiting, 1);
            now = atomic_load(&w->seq);
        }
        if (now != seen) {
            atomic_store_explicit(&s->wake_seen, now, memory_order_relaxed);
            return 0;
        }
        struct timespec watch = { 0, FUTEX_WATCH_NS };
        if (syscall(SYS_futex, &w->seq, FUTEX_WAIT, now, covered ? NULL : &watch, NULL, 0) == 0 ||
            errno == EAGAIN) {
            atomic_store_explicit(&s->wake_seen, atomic_load(&w->seq), memory_order_relaxed);
            return 0;
        }
        if (errno == ETIMEDOUT) {
            int got = watch_descriptors(s, 0);
            if (got != 0)
                return got < 0 ? got : 0;
        }
    }
}

void sc__wake_waiter(sc_stream *s)
{
    if (!s->wake_futex)
        return;  /* the quit eventfd wakes an epoll sleep */
    atomic_fetch_add(&s->shm->wake.seq, 1);
    syscall(SYS_futex, &s->shm->wake.seq, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

int sc__wait_for_progress(sc_stream *s)
{
    int err = wait_set(s);
    if (err < 0)
        return err;
    if (s->wake_futex)
        return wait_on_futex(s);
    err = watch_descriptors(s, -1);
    return err < 0 ? err : 0;
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
    int err = stream_check(s);
    if (err < 0)
        return err;
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
            if ((err = sc__wait_for_progress(s)) == SC_EDISCONNECTED)
                err = stream_lost(s);  /* reconnect on: goes on into the new daemon */
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
    int err = stream_check(s);
    if (err < 0)
        return err;
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
            if ((err = sc__wait_for_progress(s)) == SC_EDISCONNECTED)
                err = stream_lost(s);  /* reconnect on: goes on from the new daemon */
            if (err < 0)
                return err;
        }
    }
    return (long)done;
}

double sc_stream_time(sc_stream *s)
{
    (void)s;
    return sc__monotonic();
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
    t->current_time = sc__monotonic();
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
        pthread_mutex_lock(&s->swap_lock);  /* a reopen may swap the mapping */
        sc__time_info(s, &t);
        pthread_mutex_unlock(&s->swap_lock);
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
    atomic_store(&s->gain, gain);  /* a reopen sets it again */
    pthread_mutex_lock(&s->swap_lock);
    uint64_t generation = s->generation;
    uint32_t id = s->id;
    pthread_mutex_unlock(&s->swap_lock);
    int err = control(s->client, generation, id, "stream.set", "gain", gain);
    /* A volume control may run on another thread than the stream's audio:
     * it does not reopen the stream; with reconnect on, the reopen applies
     * the gain. */
    return err == SC_EDISCONNECTED && reconnecting(s) ? 0 : err;
}

int sc_stream_get_stats(sc_stream *s, sc_stream_stats *out)
{
    pthread_mutex_lock(&s->swap_lock);  /* a reopen may swap the mapping */
    struct shm_counters *c = &s->shm->counters;
    out->frames = atomic_load_explicit(&c->frames, memory_order_relaxed);
    out->underruns = atomic_load_explicit(&c->underruns, memory_order_relaxed);
    out->overruns = atomic_load_explicit(&c->overruns, memory_order_relaxed);
    out->clipped = atomic_load_explicit(&c->clipped, memory_order_relaxed);
    uint32_t bits = atomic_load_explicit(&c->peak_bits, memory_order_relaxed);
    memcpy(&out->peak, &bits, sizeof(out->peak));
    out->id = s->id;
    pthread_mutex_unlock(&s->swap_lock);
    out->callback_realtime = s->callback ? (s->realtime ? 1 : 0) : -1;
    return 0;
}
