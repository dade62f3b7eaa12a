/* soundcard status, devices, top and gain: the daemon's state as tables. */
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "tool.h"

/* Names come from other clients: print them as data, never as terminal
 * control sequences.  Pads or cuts to width characters (UTF-8 sequences are
 * counted as one and never split); width < 0 prints it all. */
static void put_cell(const char *s, int width)
{
    int n = 0;
    for (; *s; s++) {
        const unsigned char c = (unsigned char)*s;
        const bool continuation = (c & 0xc0) == 0x80;
        if (!continuation && n == width)
            break;
        putchar(c < 0x20 || c == 0x7f ? '?' : c);
        n += !continuation;
    }
    for (; n < width; n++)
        putchar(' ');
}

static void put_dbfs(double peak)
{
    if (peak > 0)
        printf(" %9.1f", 20.0 * log10(peak));
    else
        printf(" %9s", "-inf");
}

/* The columns status and top share: stream id, client, stream name, state. */
static void put_stream_ident(const cJSON *client, const cJSON *stream)
{
    char who[96];
    snprintf(who, sizeof who, "%.0f %s", jnum(client, "id"), jstr(client, "name"));
    if (stream)
        printf("%6.0f  ", jnum(stream, "id"));
    else
        printf("%6s  ", "-");
    put_cell(who, 20);
    putchar(' ');
    put_cell(stream ? jstr(stream, "name") : "-", 16);
    putchar(' ');
    put_cell(stream ? jstr(stream, "state") : "-", 9);
}

typedef void (*row_fn)(const cJSON *client, const cJSON *stream, void *ctx);

/* Every stream of every client in a stats reply; a client with no stream
 * gets one call with stream NULL. */
static void for_each_stream(const cJSON *stats, row_fn row, void *ctx)
{
    const cJSON *client, *stream;
    cJSON_ArrayForEach(client, cJSON_GetObjectItemCaseSensitive(stats, "clients")) {
        const cJSON *streams = cJSON_GetObjectItemCaseSensitive(client, "streams");
        if (cJSON_GetArraySize(streams) == 0)
            row(client, NULL, ctx);
        cJSON_ArrayForEach(stream, streams)
            row(client, stream, ctx);
    }
}

static int status_json(struct tool *t)
{
    cJSON *server = NULL, *stats = NULL;
    int rc = raw_request(t, "{\"op\":\"server.info\"}", "server.info", &server);
    if (!rc)
        rc = raw_request(t, "{\"op\":\"stats\"}", "stats", &stats);
    if (!rc) {
        cJSON *all = cJSON_CreateObject();
        cJSON_AddItemToObject(all, "server", server);
        cJSON_AddItemToObject(all, "stats", stats);
        char *text = cJSON_PrintUnformatted(all);
        puts(text ? text : "{}");
        free(text);
        cJSON_Delete(all);
        return 0;
    }
    cJSON_Delete(server);
    return rc;
}

static void status_row(const cJSON *client, const cJSON *stream, void *unused)
{
    (void)unused;
    put_stream_ident(client, stream);
    if (stream) {
        printf(" %12.0f %9.0f %9.0f %9.0f", jnum(stream, "frames"), jnum(stream, "underruns"),
               jnum(stream, "overruns"), jnum(stream, "clipped"));
        put_dbfs(jnum(stream, "peak"));
    }
    putchar('\n');
}

int cmd_status(struct tool *t, int argc, char **argv)
{
    bool json = false;
    const struct opt opts[] = {{"json", OPT_FLAG, &json, 0, 0}, {0}};
    int rc = parse_args(t, argc, argv, opts, NULL, 0);
    if (rc != ARGS_OK || (rc = tool_connect(t)))
        return rc;
    if (json)
        return status_json(t);

    sc_server_info si;
    int err = sc_get_server_info(t->client, &si);
    if (err < 0)
        return runtime_error(err, "server.info");
    cJSON *stats;
    if ((rc = raw_request(t, "{\"op\":\"stats\"}", "stats", &stats)))
        return rc;
    printf("soundcardd %s: backend ", si.version);
    put_cell(si.backend, -1);
    printf(", device \"");
    put_cell(si.device, -1);
    printf("\" (%s)", si.state[0] ? si.state : "running");
    printf("\ncard:    %.0f Hz, period %lu frames (%.2f ms), %d channels, latency in %.1f ms, out %.1f ms\n",
           si.samplerate, si.period, 1000.0 * (double)si.period / si.samplerate, si.channels,
           1000.0 * si.input_latency, 1000.0 * si.output_latency);
    printf("engine:  load %.1f%%, xruns %" PRIu64 ", realtime %s", 100.0 * si.load, si.xruns,
           si.realtime ? "yes" : "no");
    if (si.realtime)
        printf(" (priority %d)", si.rt_priority);
    printf(", memory %s", si.memory_locked ? "locked" : "not locked");
    printf("\nclients: %d, streams %d\n\n", si.clients, si.streams);
    printf("%6s  %-20s %-16s %-9s %12s %9s %9s %9s %9s\n", "STREAM", "CLIENT", "NAME", "STATE",
           "FRAMES", "UNDERRUNS", "OVERRUNS", "CLIPPED", "PEAK dBFS");
    for_each_stream(stats, status_row, NULL);
    cJSON_Delete(stats);
    return 0;
}

int cmd_devices(struct tool *t, int argc, char **argv)
{
    int rc = parse_args(t, argc, argv, NULL, NULL, 0);
    if (rc != ARGS_OK || (rc = tool_connect(t)))
        return rc;
    int n = sc_device_count(t->client);
    if (n < 0)
        return runtime_error(n, "devices");
    /* sounddevice's query_devices() marks: '>' input, '<' output, '*' both */
    printf("    %3s  %-32s %-8s %3s %4s %9s  %-15s  %-15s\n", "#", "NAME", "API", "IN", "OUT",
           "RATE", "LOW IN/OUT ms", "HIGH IN/OUT ms");
    for (int i = 0; i < n; i++) {
        sc_device_info d;
        int err = sc_get_device_info(t->client, i, &d);
        if (err < 0)
            return runtime_error(err, "device %d", i);
        printf("%c   %3d  ", " ><*"[!!d.is_default_input + 2 * !!d.is_default_output], d.index);
        put_cell(d.name, 32);
        putchar(' ');
        put_cell(d.api, 8);
        printf(" %3d %4d %9.1f  %6.1f / %-6.1f  %6.1f / %-6.1f\n", d.max_input_channels,
               d.max_output_channels, d.default_samplerate,
               1000.0 * d.default_low_input_latency, 1000.0 * d.default_low_output_latency,
               1000.0 * d.default_high_input_latency, 1000.0 * d.default_high_output_latency);
    }
    printf("(> default input, < default output, * both)\n");
    return 0;
}

static void top_row(const cJSON *client, const cJSON *stream, void *ctx)
{
    if (!stream)
        return;         /* top watches streams; status lists idle clients */
    const double rate = *(const double *)ctx;
    put_stream_ident(client, stream);
    printf(" %7.0f %6.0f", jnum(client, "pid"), jnum(client, "uid"));  /* SO_PEERCRED */
    printf(" %8.1f %9.0f %9.0f", 1000.0 * jnum(stream, "capacity") / rate,
           jnum(stream, "underruns"), jnum(stream, "overruns"));
    put_dbfs(jnum(stream, "peak"));
    putchar('\n');
}

int cmd_top(struct tool *t, int argc, char **argv)
{
    double interval = 1;
    long long count = 0;
    const struct opt opts[] = {{"interval", OPT_NUM, &interval, 0.05, 3600},
                               {"count", OPT_INT, &count, 0, 1e9}, {0}};
    int rc = parse_args(t, argc, argv, opts, NULL, 0);
    if (rc != ARGS_OK || (rc = tool_connect(t)))
        return rc;
    sc_server_info si;      /* for the rate, which the stats op leaves out */
    int err = sc_get_server_info(t->client, &si);
    if (err < 0)
        return runtime_error(err, "server.info");

    const bool tty = isatty(STDOUT_FILENO);
    const struct timespec pause = {(time_t)interval, (long)(fmod(interval, 1.0) * 1e9)};
    catch_signals();
    for (long long i = 0; count == 0 || i < count; i++) {
        if (i > 0)
            nanosleep(&pause, NULL);        /* a signal cuts it short; checked below */
        if (g_signal)
            break;
        cJSON *stats;
        if ((rc = raw_request(t, "{\"op\":\"stats\"}", "stats", &stats)))
            return g_signal ? 128 + g_signal : rc;
        const cJSON *server = cJSON_GetObjectItemCaseSensitive(stats, "server");
        if (tty)
            fputs("\033[H\033[2J", stdout);     /* home + clear: redraw in place */
        printf("soundcardd %.0f Hz: load %.1f%%, xruns %.0f, clipped %.0f\n", si.samplerate,
               100.0 * jnum(server, "load"), jnum(server, "xruns"), jnum(server, "clipped"));
        printf("%6s  %-20s %-16s %-9s %7s %6s %8s %9s %9s %9s\n", "STREAM", "CLIENT", "NAME",
               "STATE", "PID", "UID", "LAT ms", "UNDERRUNS", "OVERRUNS", "PEAK dBFS");
        for_each_stream(stats, top_row, &si.samplerate);
        if (!tty)
            putchar('\n');
        fflush(stdout);
        cJSON_Delete(stats);
    }
    return g_signal ? 128 + g_signal : 0;
}

int cmd_gain(struct tool *t, int argc, char **argv)
{
    const char *pos[2];
    long long id;
    double gain;
    int rc = parse_args(t, argc, argv, NULL, pos, 2);
    if (rc != ARGS_OK)
        return rc;
    if (!parse_int(pos[0], 0, UINT32_MAX, &id))
        return usage_error(t, "STREAM: expected a stream id (see soundcard status), got '%s'", pos[0]);
    if (!parse_double(pos[1], 0, MAX_GAIN, &gain))
        return usage_error(t, "G: expected a linear gain in [0, %g], got '%s'", MAX_GAIN, pos[1]);
    if ((rc = tool_connect(t)))
        return rc;
    char req[128], what[32];
    snprintf(req, sizeof req, "{\"op\":\"stream.set\",\"stream\":%lld,\"gain\":%.9g}", id, gain);
    snprintf(what, sizeof what, "stream.set %lld", id);
    cJSON *reply;
    if ((rc = raw_request(t, req, what, &reply)))
        return rc;
    printf("stream %lld: gain %g%s\n", id, jnum(reply, "gain"),
           cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "mute")) ? " (muted)" : "");
    cJSON_Delete(reply);
    return 0;
}

