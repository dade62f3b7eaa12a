#include "ops.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "card.h"
#include "engine.h"
#include "log.h"
#include "memlock.h"
#include "server.h"
#include "session.h"
#include "stream.h"
#include "tap.h"

typedef void (*op_handler)(struct session *s, const struct msg_request *req);

static cJSON *stream_state_fields(const struct stream *st, uint32_t state)
{
    cJSON *f = cJSON_CreateObject();
    cJSON_AddNumberToObject(f, "stream", st->id);
    cJSON_AddStringToObject(f, "state", stream_state_name(state));
    return f;
}

static void op_hello(struct session *s, const struct msg_request *req)
{
    struct server *server = s->server;
    if (s->state == SESSION_READY) {
        session_reply_error(s, req->id, MSG_ERR_INVALID_STATE, "'hello' was already done");
        return;
    }
    s->state = SESSION_READY;
    uv_timer_stop(&s->hello_timer);
    if (req->u.hello.name[0])
        snprintf(s->name, sizeof(s->name), "%s", req->u.hello.name);
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "server", "soundcardd");
    cJSON_AddStringToObject(f, "version", SOUNDCARD_VERSION);
    cJSON_AddNumberToObject(f, "protocol", MSG_PROTOCOL_VERSION);
    cJSON_AddNumberToObject(f, "client", s->id);
    cJSON_AddNumberToObject(f, "rate", server->card.rate);
    cJSON_AddNumberToObject(f, "period", server->card.period);
    cJSON_AddNumberToObject(f, "channels", server->card.channels);
    const char *caps[] = { "memfd", "wakepipe", "futex", "float32" };
    cJSON_AddItemToObject(f, "capabilities", cJSON_CreateStringArray(caps, 4));
    session_reply_ok(s, req->id, f);
    log_info("client %u is '%s' (pid %d, uid %d)", s->id, s->name, (int)s->peer.cred.pid, (int)s->peer.cred.uid);

    cJSON *ev = cJSON_CreateObject();
    cJSON_AddNumberToObject(ev, "client", s->id);
    cJSON_AddStringToObject(ev, "name", s->name);
    cJSON_AddNumberToObject(ev, "pid", s->peer.cred.pid);
    server_broadcast(server, MSG_EVENT_CLIENTS, "client.added", ev);
}

static cJSON *limits_fields(const struct limits *l)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "clients", l->clients);
    cJSON_AddNumberToObject(o, "streams_per_client", l->streams_per_client);
    cJSON_AddNumberToObject(o, "streams_per_uid", l->streams_per_uid);
    cJSON_AddNumberToObject(o, "memory_per_uid_mib", l->memory_per_uid_mib);
    cJSON_AddNumberToObject(o, "channels", l->channels);
    cJSON_AddNumberToObject(o, "buffer_frames", l->buffer_frames);
    cJSON_AddNumberToObject(o, "message_bytes", l->message_bytes);
    cJSON_AddNumberToObject(o, "outbound_bytes", l->outbound_bytes);
    cJSON_AddNumberToObject(o, "hello_timeout_ms", l->hello_timeout_ms);
    return o;
}

static void op_server_info(struct session *s, const struct msg_request *req)
{
    struct server *server = s->server;
    struct backend_info *card = &server->card;
    if (server->backend)  /* the period may follow the server (JACK) */
        server->backend_ops->info(server->backend, card);
    struct engine_stats es;
    engine_get_stats(server->engine, &es);
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "version", SOUNDCARD_VERSION);
    cJSON_AddStringToObject(f, "backend", server->backend_ops->name);
    cJSON_AddStringToObject(f, "device", card->device);
    cJSON_AddNumberToObject(f, "rate", card->rate);
    cJSON_AddNumberToObject(f, "period", card->period);
    cJSON_AddNumberToObject(f, "channels", card->channels);
    cJSON_AddNumberToObject(f, "clients", server->nsessions);
    cJSON_AddNumberToObject(f, "streams", server->nstreams);
    cJSON_AddNumberToObject(f, "xruns", (double)es.xruns);
    cJSON_AddNumberToObject(f, "load", es.load);
    int rt_priority = atomic_load(&server->rt_priority_got);
    cJSON_AddBoolToObject(f, "realtime", rt_priority > 0);
    cJSON_AddNumberToObject(f, "rt_priority", rt_priority);
    cJSON_AddBoolToObject(f, "memory_locked", memlock_complete());
    cJSON_AddNumberToObject(f, "input_latency", card->input_latency);
    cJSON_AddNumberToObject(f, "output_latency", card->output_latency);
    cJSON_AddNumberToObject(f, "uptime", (server_now_ns() - server->started_ns) / 1e9);
    cJSON_AddStringToObject(f, "state", card_state(server));
    cJSON_AddStringToObject(f, "state_message", server->card_message);
    cJSON_AddStringToObject(f, "config", server->opts.config_path);
    cJSON_AddNumberToObject(f, "reloads", server->reloads);
    cJSON_AddItemToObject(f, "limits", limits_fields(&server->opts.limits));
    session_reply_ok(s, req->id, f);
}

static void op_devices_list(struct session *s, const struct msg_request *req)
{
    struct server *server = s->server;
    if (card_stopping(server)) {
        session_reply_error(s, req->id, MSG_ERR_BACKEND,
                            "the lost card is still being closed (its thread is stuck); try again once it is");
        return;
    }
    struct backend_device devices[64];
    int n = server->backend_ops->list_devices(server->backend, devices, 64);
    if (n > 64)
        n = 64;
    cJSON *list = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        const struct backend_device *d = &devices[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "index", i);
        cJSON_AddStringToObject(o, "name", d->name);
        cJSON_AddStringToObject(o, "api", d->api);
        cJSON_AddNumberToObject(o, "max_input_channels", d->max_input_channels);
        cJSON_AddNumberToObject(o, "max_output_channels", d->max_output_channels);
        cJSON_AddNumberToObject(o, "default_samplerate", d->default_samplerate);
        cJSON_AddNumberToObject(o, "default_low_input_latency", d->low_input_latency);
        cJSON_AddNumberToObject(o, "default_low_output_latency", d->low_output_latency);
        cJSON_AddNumberToObject(o, "default_high_input_latency", d->high_input_latency);
        cJSON_AddNumberToObject(o, "default_high_output_latency", d->high_output_latency);
        cJSON_AddBoolToObject(o, "is_default_input", d->is_default_input);
        cJSON_AddBoolToObject(o, "is_default_output", d->is_default_output);
        cJSON_AddItemToArray(list, o);
    }
    cJSON *f = cJSON_CreateObject();
    cJSON_AddItemToObject(f, "devices", list);
    session_reply_ok(s, req->id, f);
}

/* What one user's clients hold now: per-uid limits keep one user from
 * starving the others. */
struct uid_usage {
    uint32_t streams;
    uint64_t bytes;
};

static struct uid_usage uid_usage(struct server *server, uid_t uid)
{
    struct uid_usage used = { 0 };
    for (struct stream *st = server->streams; st; st = st->next) {
        if (st->removing || !st->owner || st->owner->peer.cred.uid != uid)
            continue;
        used.streams++;
        used.bytes += st->rt.layout.total_size;
    }
    return used;
}

/* The client's streams not being closed (a closed one stays listed until
 * the RT thread lets go of it). */
static uint32_t open_streams(const struct session *s)
{
    uint32_t n = 0;
    for (const struct stream *st = s->streams; st; st = st->owner_next)
        n += !st->removing;
    return n;
}

static void op_stream_open(struct session *s, const struct msg_request *req)
{
    struct server *server = s->server;
    uint32_t channels = server->card.channels;
    if (open_streams(s) >= server->opts.limits.streams_per_client) {
        session_reply_error(s, req->id, MSG_ERR_LIMIT, "a client may open at most %u streams",
                            server->opts.limits.streams_per_client);
        return;
    }
    if (req->u.open.output_channels > server->opts.limits.channels ||
        req->u.open.input_channels > server->opts.limits.channels) {
        session_reply_error(s, req->id, MSG_ERR_LIMIT, "a stream may have at most %u channels (max-channels)",
                            server->opts.limits.channels);
        return;
    }
    if (req->u.open.buffer_frames > server->opts.limits.buffer_frames) {
        session_reply_error(s, req->id, MSG_ERR_LIMIT, "a stream's buffer may hold at most %u frames (max-buffer-frames)",
                            server->opts.limits.buffer_frames);
        return;
    }
    struct uid_usage used = uid_usage(server, s->peer.cred.uid);
    if (used.streams >= server->opts.limits.streams_per_uid) {
        session_reply_error(s, req->id, MSG_ERR_LIMIT, "uid %u already has %u streams open (max-streams-per-uid)",
                            (unsigned)s->peer.cred.uid, used.streams);
        return;
    }
    if (server->nstreams >= server->engine_capacity) {
        session_reply_error(s, req->id, MSG_ERR_LIMIT,
                            "the daemon holds at most %u streams (max-clients x max-streams-per-client at start)",
                            server->engine_capacity);
        return;
    }
    if (req->u.open.output_channels > channels || req->u.open.input_channels > channels) {
        session_reply_error(s, req->id, MSG_ERR_BAD_REQUEST,
                            "the card has %u channels; asked for %u in, %u out", channels,
                            req->u.open.input_channels, req->u.open.output_channels);
        return;
    }
    if (req->u.open.device > 0) {
        session_reply_error(s, req->id, MSG_ERR_NOT_FOUND,
                            "no device %d: this daemon's card is device 0", req->u.open.device);
        return;
    }
    struct stream_request sr = {
        .name = req->u.open.name,
        .input_channels = req->u.open.input_channels,
        .output_channels = req->u.open.output_channels,
        .buffer_frames = req->u.open.buffer_frames,
        .wake_frames = req->u.open.wake_frames,
        .wake_futex = req->u.open.wake_futex,
        .rate = server->card.rate,
        .period = server->card.period,
    };
    int err = 0;
    struct stream *st = stream_create(server->next_stream_id + 1, &sr, &err);
    if (!st) {
        session_reply_error(s, req->id, MSG_ERR_INTERNAL, "cannot create the stream's memory: %s",
                            strerror(-err));
        return;
    }
    uint64_t memory_limit = (uint64_t)server->opts.limits.memory_per_uid_mib << 20;
    if (used.bytes + st->rt.layout.total_size > memory_limit) {
        session_reply_error(s, req->id, MSG_ERR_LIMIT,
                            "uid %u would have %.1f MiB of stream memory; the limit is %u MiB (max-memory-per-uid)",
                            (unsigned)s->peer.cred.uid, (used.bytes + st->rt.layout.total_size) / 1048576.0,
                            server->opts.limits.memory_per_uid_mib);
        stream_destroy(st);
        return;
    }
    memlock_region(st->rt.shm, st->rt.layout.total_size);
    struct engine_cmd cmd = { .type = ENGINE_CMD_ADD, .stream = &st->rt, .request_id = -1 };
    if (card_submit(server, &cmd, false) < 0) {
        stream_destroy(st);
        session_reply_error(s, req->id, MSG_ERR_LIMIT, "the engine is busy; try again");
        return;
    }
    server->next_stream_id++;
    st->owner = s;
    st->owner_next = s->streams;
    s->streams = st;
    s->nstreams++;
    st->next = server->streams;
    server->streams = st;
    server->nstreams++;

    const struct shm_layout *l = &st->rt.layout;
    cJSON *shm = cJSON_CreateObject();
    cJSON_AddNumberToObject(shm, "size", (double)l->total_size);
    cJSON_AddNumberToObject(shm, "capacity", l->capacity);
    cJSON_AddNumberToObject(shm, "rate", l->rate);
    cJSON_AddNumberToObject(shm, "period", l->period_frames);
    cJSON_AddNumberToObject(shm, "input_channels", l->input_channels);
    cJSON_AddNumberToObject(shm, "output_channels", l->output_channels);
    cJSON_AddNumberToObject(shm, "play_offset", (double)l->play_offset);
    cJSON_AddNumberToObject(shm, "capture_offset", (double)l->capture_offset);
    cJSON *f = cJSON_CreateObject();
    cJSON_AddNumberToObject(f, "stream", st->id);
    cJSON_AddNumberToObject(f, "wake_frames", st->rt.wake_frames);
    cJSON_AddStringToObject(f, "wakeup", st->rt.wake_futex ? "futex" : "pipe");
    cJSON_AddItemToObject(f, "shm", shm);
    int fds[2] = { st->memfd, st->wake_read_fd };
    session_send(s, msg_reply_ok(req->id, f), fds, 2);  /* sends copies */
    stream_sent(st);
    log_info("client %u (%s): stream %u '%s' opened: %u in, %u out, %u frames", s->id, s->name,
             st->id, st->name, l->input_channels, l->output_channels, l->capacity);

    cJSON *ev = cJSON_CreateObject();
    cJSON_AddNumberToObject(ev, "stream", st->id);
    cJSON_AddNumberToObject(ev, "client", s->id);
    cJSON_AddStringToObject(ev, "name", st->name);
    server_broadcast(server, MSG_EVENT_STREAMS, "stream.added", ev);
}

/* A stream this client owns, or NULL after replying why not. */
static struct stream *own_stream(struct session *s, const struct msg_request *req, uint32_t id)
{
    struct stream *st = server_find_stream(s->server, id);
    if (!st) {
        session_reply_error(s, req->id, MSG_ERR_NOT_FOUND, "no stream %u", id);
        return NULL;
    }
    if (st->owner != s) {
        session_reply_error(s, req->id, MSG_ERR_DENIED, "stream %u belongs to another client", id);
        return NULL;
    }
    return st;
}

static void submit_or_refuse(struct session *s, const struct msg_request *req, struct stream *st,
                             enum engine_cmd_type type)
{
    struct engine_cmd cmd = { .type = type, .stream = &st->rt, .request_id = req->id };
    if (card_submit(s->server, &cmd, false) < 0)
        session_reply_error(s, req->id, MSG_ERR_LIMIT, "the engine is busy; try again");
    /* else: the reply comes with the engine's note */
}

static void op_stream_control(struct session *s, const struct msg_request *req)
{
    static const enum engine_cmd_type by_op[MSG_OP_COUNT] = {
        [MSG_OP_STREAM_START] = ENGINE_CMD_START,
        [MSG_OP_STREAM_STOP] = ENGINE_CMD_STOP,
        [MSG_OP_STREAM_ABORT] = ENGINE_CMD_ABORT,
    };
    struct stream *st = own_stream(s, req, req->u.stream.stream);
    if (st)
        submit_or_refuse(s, req, st, by_op[req->op]);
}

/* Answered at once: from now on no op sees the stream (removing), and the
 * client's mapping is its own to drop.  The daemon frees its side when the
 * RT thread has let go, within a cycle; waiting for that made every close
 * take up to a period (5 ms at 256 frames). */
static void op_stream_close(struct session *s, const struct msg_request *req)
{
    struct stream *st = own_stream(s, req, req->u.stream.stream);
    if (!st)
        return;
    ops_remove_stream(s->server, st, -1);
    session_reply_ok(s, req->id, stream_state_fields(st, SHM_STATE_STOPPED));
}

static void op_stream_set(struct session *s, const struct msg_request *req)
{
    struct stream *st = server_find_stream(s->server, req->u.set.stream);
    if (!st) {
        session_reply_error(s, req->id, MSG_ERR_NOT_FOUND, "no stream %u", req->u.set.stream);
        return;
    }
    if (req->u.set.has_callback_realtime) {
        if (st->owner != s) {
            session_reply_error(s, req->id, MSG_ERR_DENIED,
                                "only the owner of stream %u reports its callback thread", st->id);
            return;
        }
        st->callback_realtime = req->u.set.callback_realtime;
    }
    if (req->u.set.has_gain)
        atomic_store(&st->rt.gain_bits, engine_bits_from_float(req->u.set.gain));
    if (req->u.set.has_mute)
        atomic_store(&st->rt.mute, req->u.set.mute);
    cJSON *f = cJSON_CreateObject();
    cJSON_AddNumberToObject(f, "stream", st->id);
    cJSON_AddNumberToObject(f, "gain", engine_float_from_bits(atomic_load(&st->rt.gain_bits)));
    cJSON_AddBoolToObject(f, "mute", atomic_load(&st->rt.mute));
    session_reply_ok(s, req->id, f);
}

/* A level measured in the RT cycle, as a JSON number.  A client's samples
 * can be anything finite and its gain up to 16, so gain * sample may be
 * beyond float range: cJSON would print that as null.  Report the largest
 * float instead, so stats always holds numbers. */
static double level_number(float level)
{
    if (isnan(level))
        return 0;
    return isinf(level) ? copysign(FLT_MAX, level) : level;
}

static cJSON *stream_stats(const struct stream *st)
{
    const struct engine_stream *rt = &st->rt;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", st->id);
    cJSON_AddStringToObject(o, "name", st->name);
    cJSON_AddStringToObject(o, "state", stream_state_name(atomic_load(&rt->public_state)));
    cJSON_AddNumberToObject(o, "input_channels", rt->layout.input_channels);
    cJSON_AddNumberToObject(o, "output_channels", rt->layout.output_channels);
    cJSON_AddNumberToObject(o, "capacity", rt->layout.capacity);
    cJSON_AddNumberToObject(o, "wake_frames", rt->wake_frames);
    cJSON_AddNumberToObject(o, "gain", engine_float_from_bits(atomic_load(&rt->gain_bits)));
    cJSON_AddBoolToObject(o, "mute", atomic_load(&rt->mute));
    cJSON_AddNumberToObject(o, "frames", (double)atomic_load(&rt->frames));
    cJSON_AddNumberToObject(o, "underruns", (double)atomic_load(&rt->underruns));
    cJSON_AddNumberToObject(o, "overruns", (double)atomic_load(&rt->overruns));
    cJSON_AddNumberToObject(o, "clipped", (double)atomic_load(&rt->clipped));
    cJSON_AddNumberToObject(o, "peak", level_number(engine_float_from_bits(atomic_load(&rt->peak_bits))));
    cJSON_AddNumberToObject(o, "wakeups", (double)atomic_load(&rt->wakeups));
    cJSON_AddStringToObject(o, "wakeup", rt->wake_futex ? "futex" : "pipe");
    static const char *const callback[] = { "none", "normal", "realtime" };
    cJSON_AddStringToObject(o, "callback", callback[st->callback_realtime + 1]);
    return o;
}

static void op_stats(struct session *s, const struct msg_request *req)
{
    struct server *server = s->server;
    struct engine_stats es;
    engine_get_stats(server->engine, &es);
    cJSON *srv = cJSON_CreateObject();
    cJSON_AddStringToObject(srv, "state", card_state(server));
    cJSON_AddNumberToObject(srv, "xruns", (double)es.xruns);
    cJSON_AddNumberToObject(srv, "load", es.load);
    cJSON_AddNumberToObject(srv, "clipped", (double)es.clipped);
    cJSON_AddNumberToObject(srv, "cycles", (double)es.cycles);
    cJSON_AddNumberToObject(srv, "tap_dropped", server->tap ? (double)tap_dropped(server->tap) : 0);
    cJSON *clients = cJSON_CreateArray();
    for (struct session *c = server->sessions; c; c = c->next) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", c->id);
        cJSON_AddStringToObject(o, "name", c->name);
        cJSON_AddNumberToObject(o, "pid", c->peer.cred.pid);
        cJSON_AddNumberToObject(o, "uid", c->peer.cred.uid);
        cJSON_AddNumberToObject(o, "gid", c->peer.cred.gid);
        cJSON *streams = cJSON_CreateArray();
        for (struct stream *st = c->streams; st; st = st->owner_next)
            if (!st->removing)
                cJSON_AddItemToArray(streams, stream_stats(st));
        cJSON_AddItemToObject(o, "streams", streams);
        cJSON_AddItemToArray(clients, o);
    }
    cJSON *f = cJSON_CreateObject();
    cJSON_AddItemToObject(f, "server", srv);
    cJSON_AddItemToObject(f, "clients", clients);
    session_reply_ok(s, req->id, f);
}

static void op_subscribe(struct session *s, const struct msg_request *req)
{
    static const char *const names[] = { "clients", "streams", "server" };
    s->events = req->u.subscribe.events;
    cJSON *list = cJSON_CreateArray();
    for (int i = 0; i < 3; i++)
        if (s->events & (1u << i))
            cJSON_AddItemToArray(list, cJSON_CreateString(names[i]));
    cJSON *f = cJSON_CreateObject();
    cJSON_AddItemToObject(f, "events", list);
    session_reply_ok(s, req->id, f);
}

static const op_handler handlers[MSG_OP_COUNT] = {
    [MSG_OP_HELLO] = op_hello,
    [MSG_OP_SERVER_INFO] = op_server_info,
    [MSG_OP_DEVICES_LIST] = op_devices_list,
    [MSG_OP_STREAM_OPEN] = op_stream_open,
    [MSG_OP_STREAM_START] = op_stream_control,
    [MSG_OP_STREAM_STOP] = op_stream_control,
    [MSG_OP_STREAM_ABORT] = op_stream_control,
    [MSG_OP_STREAM_CLOSE] = op_stream_close,
    [MSG_OP_STREAM_SET] = op_stream_set,
    [MSG_OP_STATS] = op_stats,
    [MSG_OP_SUBSCRIBE] = op_subscribe,
};

void ops_dispatch(struct session *s, const struct msg_request *req)
{
    handlers[req->op](s, req);
}

void ops_remove_stream(struct server *server, struct stream *st, int64_t request_id)
{
    st->removing = true;
    struct engine_cmd cmd = { .type = ENGINE_CMD_REMOVE, .stream = &st->rt, .request_id = request_id };
    if (card_submit(server, &cmd, true) < 0)
        log_error("stream %u: engine queue full even for removal", st->id);  /* cannot happen: reserved slots */
}

static void unlink_stream(struct server *server, struct stream *st)
{
    for (struct stream **p = &server->streams; *p; p = &(*p)->next) {
        if (*p == st) {
            *p = st->next;
            server->nstreams--;
            break;
        }
    }
    if (!st->owner)
        return;
    for (struct stream **p = &st->owner->streams; *p; p = &(*p)->owner_next) {
        if (*p == st) {
            *p = st->owner_next;
            st->owner->nstreams--;
            break;
        }
    }
}

void ops_engine_note(struct server *server, const struct engine_note *note)
{
    struct stream *st = stream_from_rt(note->stream);
    if (note->type == ENGINE_NOTE_REMOVED) {
        if (st->owner && note->request_id >= 0)
            session_reply_ok(st->owner, note->request_id, stream_state_fields(st, SHM_STATE_STOPPED));
        unlink_stream(server, st);
        cJSON *ev = cJSON_CreateObject();
        cJSON_AddNumberToObject(ev, "stream", st->id);
        server_broadcast(server, MSG_EVENT_STREAMS, "stream.removed", ev);
        log_debug("stream %u freed", st->id);
        stream_destroy(st);
        return;
    }
    if (note->cmd == ENGINE_CMD_ADD)
        return;
    if (st->owner && note->request_id >= 0)
        session_reply_ok(st->owner, note->request_id, stream_state_fields(st, note->state));
    server_broadcast(server, MSG_EVENT_STREAMS, "stream.state", stream_state_fields(st, note->state));
}
