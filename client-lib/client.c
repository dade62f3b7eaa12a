/* The connection to soundcardd: socket path rule, hello, one request/reply
 * exchange at a time, the opt-in reconnect, and the ops that are plain
 * questions. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define SYSTEM_SOCKET "/run/soundcard/socket"

const char *sc_default_socket_path(void)
{
    static _Thread_local char path[108];
    const char *env;
    if ((env = getenv("SOUNDCARD_SOCKET")) && env[0]) {
        snprintf(path, sizeof(path), "%s", env);
        return path;
    }
    /* The user's own instance, unless it is absent and a system one is there. */
    snprintf(path, sizeof(path), "%s", SYSTEM_SOCKET);
    if ((env = getenv("XDG_RUNTIME_DIR")) && env[0]) {
        char user[108];
        snprintf(user, sizeof(user), "%s/soundcard/socket", env);
        if (access(user, F_OK) == 0 || access(SYSTEM_SOCKET, F_OK) != 0)
            snprintf(path, sizeof(path), "%s", user);
    }
    return path;
}

/* cJSON records parse errors in a global: parses in different threads
 * (several clients) would race on it, so they take turns. */
static cJSON *parse_json(const char *text, size_t len)
{
    static pthread_mutex_t parse_lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&parse_lock);
    cJSON *json = cJSON_ParseWithLength(text, len);
    pthread_mutex_unlock(&parse_lock);
    return json;
}

static int send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static void drop_fds(sc_client *c)
{
    for (int i = 0; i < c->nfds; i++)
        close(c->fds[i]);
    c->nfds = 0;
}

/* The next complete line from the daemon (blocking). */
static int read_line(sc_client *c, char **line, size_t *len)
{
    for (;;) {
        int r = msg_framer_next(c->framer, line, len);
        if (r == 1)
            return 0;
        if (r < 0)
            return sc__fail(SC_EPROTOCOL, "the daemon sent a line longer than %u bytes", MSG_MAX_LINE);
        size_t room;
        char *space = msg_framer_space(c->framer, &room);
        ssize_t n = fdpass_recv(c->fd, space, room, c->fds, &c->nfds, (int)(sizeof(c->fds) / sizeof(c->fds[0])));
        if (n == 0)
            return sc__fail(SC_EDISCONNECTED, "soundcardd at %s closed the connection", c->socket_path);
        if (n == -EAGAIN || n == -EWOULDBLOCK)  /* the hello's receive timeout */
            return sc__fail(SC_ENOSERVER, "soundcardd at %s took the connection but did not answer hello in time",
                            c->socket_path);
        if (n < 0)
            return sc__fail(SC_EDISCONNECTED, "reading from soundcardd at %s: %s", c->socket_path,
                            strerror((int)-n));
        msg_framer_commit(c->framer, (size_t)n);
    }
}

static int call_locked(sc_client *c, cJSON *request, cJSON **reply, int *fds, int *nfds, char **raw)
{
    if (c->broken)
        return sc__fail(SC_EDISCONNECTED, "the connection to %s was lost earlier", c->socket_path);
    int64_t id = c->next_id++;
    cJSON_AddNumberToObject(request, "id", (double)id);
    char *text = cJSON_PrintUnformatted(request);
    if (!text)
        return sc__fail(-ENOMEM, "out of memory");
    size_t tlen = strlen(text);
    text[tlen] = '\n';  /* cJSON's terminator becomes the line end */
    int err = send_all(c->fd, text, tlen + 1);
    free(text);
    if (err < 0) {
        c->broken = true;
        return sc__fail(SC_EDISCONNECTED, "sending to soundcardd at %s: %s", c->socket_path, strerror(-err));
    }
    for (;;) {
        char *line;
        size_t len;
        if ((err = read_line(c, &line, &len)) < 0) {
            c->broken = true;
            return err;
        }
        cJSON *msg = parse_json(line, len);
        cJSON *rid = cJSON_GetObjectItemCaseSensitive(msg, "id");
        if (!cJSON_IsNumber(rid) || (int64_t)rid->valuedouble != id) {
            /* An event, or a reply for nobody waiting: not ours. */
            cJSON_Delete(msg);
            drop_fds(c);
            continue;
        }
        if (raw)
            *raw = strndup(line, len);
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(msg, "ok"))) {
            cJSON *e = cJSON_GetObjectItemCaseSensitive(msg, "error");
            const char *code = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "code"));
            const char *text_msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "message"));
            err = sc__fail(sc__error_from_code(code), "soundcardd: %s: %s", code ? code : "?",
                           text_msg ? text_msg : "(no message)");
            cJSON_Delete(msg);
            drop_fds(c);
            return err;
        }
        int want = nfds ? *nfds : 0;
        if (nfds) {
            if (c->nfds < want) {
                cJSON_Delete(msg);
                drop_fds(c);
                return sc__fail(SC_EPROTOCOL, "the reply lacked its %d file descriptors", want);
            }
            memcpy(fds, c->fds, sizeof(int) * (size_t)want);
            memmove(c->fds, c->fds + want, sizeof(int) * (size_t)(c->nfds - want));
            c->nfds -= want;
        }
        drop_fds(c);
        *reply = msg;
        return 0;
    }
}

int sc__call(sc_client *c, cJSON *request, cJSON **reply, int *fds, int *nfds, char **raw)
{
    *reply = NULL;
    if (!request)
        return sc__fail(-ENOMEM, "out of memory");
    pthread_mutex_lock(&c->lock);
    int err = call_locked(c, request, reply, fds, nfds, raw);
    pthread_mutex_unlock(&c->lock);
    cJSON_Delete(request);
    return err;
}

int sc__stream_call(sc_client *c, uint64_t *generation, int *conn_fd, cJSON *request, cJSON **reply,
                    int *fds, int *nfds)
{
    *reply = NULL;
    if (!request)
        return sc__fail(-ENOMEM, "out of memory");
    pthread_mutex_lock(&c->lock);
    uint64_t now = atomic_load(&c->generation);
    int err;
    if (*generation && *generation != now)
        err = sc__fail(SC_EDISCONNECTED, "the stream's soundcardd at %s went away (the client has "
                       "reconnected since)", c->socket_path);
    else
        err = call_locked(c, request, reply, fds, nfds, NULL);
    if (err == 0 && conn_fd) {
        *generation = now;
        if ((*conn_fd = fcntl(c->fd, F_DUPFD_CLOEXEC, 0)) < 0) {
            err = sc__fail(-errno, "dup: %s", strerror(errno));
            cJSON_Delete(*reply);
            *reply = NULL;
        }
    }
    pthread_mutex_unlock(&c->lock);
    cJSON_Delete(request);
    return err;
}

double sc__monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int connect_socket(const char *path, int *out)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(addr.sun_path))
        return sc__fail(-ENAMETOOLONG, "socket path too long: %s", path);
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return sc__fail(-errno, "socket: %s", strerror(errno));
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        int e = errno;
        close(fd);
        return sc__fail(SC_ENOSERVER, "no soundcardd at %s: %s", path, strerror(e));
    }
    *out = fd;
    return 0;
}

static double number(cJSON *obj, const char *key)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0.0;
}

/* Send and receive on fd give up after `seconds` (0: never). */
static void set_io_timeout(int fd, double seconds)
{
    struct timeval tv = { .tv_sec = (time_t)seconds,
                          .tv_usec = (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6) };
    if (seconds > 0 && tv.tv_sec == 0 && tv.tv_usec == 0)
        tv.tv_usec = 1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Connect and say hello (with c->lock held): on success the client speaks
 * over a new connection, one generation later.  A daemon that accepts but
 * does not answer within `timeout` seconds (0: no limit) counts as none. */
static int connect_locked(sc_client *c, double timeout)
{
    int fd = -1, err = connect_socket(c->socket_path, &fd);
    if (err < 0)
        return err;
    if (timeout > 0)
        set_io_timeout(fd, timeout);
    c->fd = fd;
    c->broken = false;
    msg_framer_init(c->framer);
    drop_fds(c);
    cJSON *req = cJSON_CreateObject(), *reply = NULL;
    cJSON_AddStringToObject(req, "op", "hello");
    cJSON_AddNumberToObject(req, "protocol", MSG_PROTOCOL_VERSION);
    cJSON_AddStringToObject(req, "name", c->name);
    err = call_locked(c, req, &reply, NULL, NULL, NULL);
    cJSON_Delete(req);
    if (err == 0) {
        c->id = (uint32_t)number(reply, "client");
        c->rate = (uint32_t)number(reply, "rate");
        c->period = (uint32_t)number(reply, "period");
        c->channels = (uint32_t)number(reply, "channels");
        if (c->rate == 0 || c->period == 0 || c->channels == 0)
            err = sc__fail(SC_EPROTOCOL, "the daemon's hello reply lacks rate, period or channels");
    }
    cJSON_Delete(reply);
    if (err < 0) {
        close(c->fd);
        c->fd = -1;
        c->broken = true;
        return err;
    }
    if (timeout > 0)
        set_io_timeout(fd, 0);
    atomic_fetch_add(&c->generation, 1);
    return 0;
}

double sc__env_seconds(const char *name, double most)
{
    const char *v = getenv(name);
    char *end;
    double t = v && *v ? strtod(v, &end) : 0;
    return v && *v && *end == '\0' && isfinite(t) && t > 0 && t <= most ? t : 0;
}

/* SOUNDCARD_RECONNECT=SECONDS: auto-reconnect for programs that do not call
 * sc_client_set_reconnect themselves. */
static double reconnect_from_env(void)
{
    return sc__env_seconds("SOUNDCARD_RECONNECT", INFINITY);
}

/* A daemon that takes the connection but does not answer hello in this long
 * (stopped, hung) counts as no daemon: sc_client_open must not hang. */
#define SC_HELLO_TIMEOUT 5.0

int sc_client_open(sc_client **out, const char *socket_path, const char *name)
{
    *out = NULL;
    sc_client *c = calloc(1, sizeof(*c));
    if (!c || !(c->framer = malloc(sizeof(*c->framer)))) {
        free(c);
        return sc__fail(-ENOMEM, "out of memory");
    }
    snprintf(c->socket_path, sizeof(c->socket_path), "%s",
             socket_path ? socket_path : sc_default_socket_path());
    snprintf(c->name, sizeof(c->name), "%s", name ? name : program_invocation_short_name);
    msg_framer_init(c->framer);
    pthread_mutex_init(&c->lock, NULL);
    c->next_id = 1;
    c->fd = -1;
    atomic_init(&c->generation, 0);
    atomic_init(&c->reconnect_timeout, reconnect_from_env());
    pthread_mutex_lock(&c->lock);
    int err = connect_locked(c, SC_HELLO_TIMEOUT);
    pthread_mutex_unlock(&c->lock);
    if (err < 0) {
        sc_client_close(c);
        return err;
    }
    *out = c;
    return 0;
}

int sc_client_set_reconnect(sc_client *c, double timeout_seconds)
{
    if (!(timeout_seconds >= 0) || !isfinite(timeout_seconds))
        return sc__fail(-EINVAL, "the reconnect timeout must be 0 (off) or a number of seconds (got %g)",
                        timeout_seconds);
    atomic_store(&c->reconnect_timeout, timeout_seconds);
    return 0;
}

/* How long to wait between attempts while no daemon answers: there is no
 * event for a socket starting to listen, and a connect() is cheap. */
#define RECONNECT_INTERVAL 0.025

int sc__client_reconnect(sc_client *c, uint64_t seen, double deadline, uint64_t *generation)
{
    int err = 0;
    pthread_mutex_lock(&c->lock);
    if (atomic_load(&c->generation) == seen) {
        /* Ours is the connection that was lost: replace it. */
        if (c->fd >= 0)
            close(c->fd);
        c->fd = -1;
        c->broken = true;
        for (;;) {
            double left = deadline - sc__monotonic();
            if ((err = connect_locked(c, left > 0 ? left : 0.001)) == 0 || left <= 0)
                break;
            double nap = left < RECONNECT_INTERVAL ? left : RECONNECT_INTERVAL;
            struct timespec ts = { 0, (long)(nap * 1e9) };
            nanosleep(&ts, NULL);
        }
        if (err < 0) {
            char why[256];
            snprintf(why, sizeof(why), "%s", sc_last_error());
            err = sc__fail(SC_EDISCONNECTED, "soundcardd at %s went away and did not come back in time "
                           "(reconnect timeout %g s; last try: %s)", c->socket_path,
                           atomic_load(&c->reconnect_timeout), why);
        }
    }
    *generation = atomic_load(&c->generation);
    pthread_mutex_unlock(&c->lock);
    return err;
}

int sc__client_check(sc_client *c)
{
    double timeout = atomic_load(&c->reconnect_timeout);
    if (timeout <= 0)
        return 0;
    pthread_mutex_lock(&c->lock);
    struct pollfd p = { .fd = c->fd, .events = POLLRDHUP };
    bool lost = c->broken || c->fd < 0 ||
                (poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)));
    uint64_t seen = atomic_load(&c->generation), now;
    pthread_mutex_unlock(&c->lock);
    return lost ? sc__client_reconnect(c, seen, sc__monotonic() + timeout, &now) : 0;
}

void sc_client_close(sc_client *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    drop_fds(c);
    pthread_mutex_destroy(&c->lock);
    free(c->framer);
    free(c);
}

/* sc__call for the client's own questions: with reconnect on, a lost
 * connection is made again and the request asked once more. */
static int client_call(sc_client *c, cJSON *request, cJSON **reply, char **raw)
{
    double timeout = atomic_load(&c->reconnect_timeout);
    uint64_t seen = atomic_load(&c->generation), now;
    cJSON *again = timeout > 0 ? cJSON_Duplicate(request, 1) : NULL;  /* before sc__call adds its id */
    int err = sc__call(c, request, reply, NULL, NULL, raw);
    if (err == SC_EDISCONNECTED && again &&
        sc__client_reconnect(c, seen, sc__monotonic() + timeout, &now) == 0)
        return sc__call(c, again, reply, NULL, NULL, raw);
    cJSON_Delete(again);
    return err;
}

int sc_client_request(sc_client *c, const char *request_json, char **reply)
{
    *reply = NULL;
    cJSON *req = parse_json(request_json, strlen(request_json));
    if (!cJSON_IsObject(req)) {
        cJSON_Delete(req);
        return sc__fail(-EINVAL, "the request is not a JSON object");
    }
    cJSON_DeleteItemFromObjectCaseSensitive(req, "id");
    cJSON *msg;
    int err = client_call(c, req, &msg, reply);
    cJSON_Delete(msg);
    return err;
}

static void copy_string(char *dst, size_t len, cJSON *obj, const char *key)
{
    const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, key));
    snprintf(dst, len, "%s", v ? v : "");
}

static int fetch_devices(sc_client *c, cJSON **reply, cJSON **list)
{
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "op", "devices.list");
    int err = client_call(c, req, reply, NULL);
    if (err < 0)
        return err;
    *list = cJSON_GetObjectItemCaseSensitive(*reply, "devices");
    if (!cJSON_IsArray(*list)) {
        cJSON_Delete(*reply);
        return sc__fail(SC_EPROTOCOL, "devices.list reply has no device list");
    }
    return 0;
}

int sc_device_count(sc_client *c)
{
    cJSON *reply, *list;
    int err = fetch_devices(c, &reply, &list);
    if (err < 0)
        return err;
    int n = cJSON_GetArraySize(list);
    cJSON_Delete(reply);
    return n;
}

int sc_get_device_info(sc_client *c, int index, sc_device_info *out)
{
    cJSON *reply, *list;
    int err = fetch_devices(c, &reply, &list);
    if (err < 0)
        return err;
    cJSON *d = index >= 0 ? cJSON_GetArrayItem(list, index) : NULL;
    if (!cJSON_IsObject(d)) {
        cJSON_Delete(reply);
        return sc__fail(SC_ENOTFOUND, "no device %d", index);
    }
    memset(out, 0, sizeof(*out));
    out->index = index;
    copy_string(out->name, sizeof(out->name), d, "name");
    copy_string(out->api, sizeof(out->api), d, "api");
    out->max_input_channels = (int)number(d, "max_input_channels");
    out->max_output_channels = (int)number(d, "max_output_channels");
    out->default_samplerate = number(d, "default_samplerate");
    out->default_low_input_latency = number(d, "default_low_input_latency");
    out->default_low_output_latency = number(d, "default_low_output_latency");
    out->default_high_input_latency = number(d, "default_high_input_latency");
    out->default_high_output_latency = number(d, "default_high_output_latency");
    out->is_default_input = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "is_default_input"));
    out->is_default_output = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "is_default_output"));
    cJSON_Delete(reply);
    return 0;
}

int sc_get_server_info(sc_client *c, sc_server_info *out)
{
    cJSON *req = cJSON_CreateObject(), *r;
    cJSON_AddStringToObject(req, "op", "server.info");
    int err = client_call(c, req, &r, NULL);
    if (err < 0)
        return err;
    memset(out, 0, sizeof(*out));
    copy_string(out->version, sizeof(out->version), r, "version");
    copy_string(out->backend, sizeof(out->backend), r, "backend");
    copy_string(out->device, sizeof(out->device), r, "device");
    out->samplerate = number(r, "rate");
    out->period = (unsigned long)number(r, "period");
    out->channels = (int)number(r, "channels");
    out->clients = (int)number(r, "clients");
    out->streams = (int)number(r, "streams");
    out->xruns = (uint64_t)number(r, "xruns");
    out->load = number(r, "load");
    out->realtime = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "realtime"));
    out->rt_priority = (int)number(r, "rt_priority");
    out->memory_locked = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "memory_locked"));
    out->input_latency = number(r, "input_latency");
    out->output_latency = number(r, "output_latency");
    copy_string(out->state, sizeof(out->state), r, "state");
    cJSON_Delete(r);
    return 0;
}
