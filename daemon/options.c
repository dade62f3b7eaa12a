#include "options.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "message.h"


static void set_defaults(struct options *o)
{
    memset(o, 0, sizeof(*o));
    snprintf(o->backend, sizeof(o->backend), "dummy");
    o->rate = 48000;
    o->period = 256;
    o->channels = 2;
    snprintf(o->capture, sizeof(o->capture), "silence");
    o->rt_priority = 70;
    o->limits = (struct limits){
        .clients = 64,
        .streams_per_client = 16,
        .message_bytes = MSG_MAX_LINE,
        .outbound_bytes = 1u << 20,
        .hello_timeout_ms = 5000,
    };
}

static int parse_u32(const char *text, uint32_t min, uint32_t max, uint32_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int copy_string(char *dst, size_t len, const char *src)
{
    if (strlen(src) >= len)
        return -1;
    memcpy(dst, src, strlen(src) + 1);
    return 0;
}

/* One setting by name, from a flag or the config file. */
static int apply(struct options *o, const char *name, const char *value, char *err, size_t err_len)
{
    struct { const char *name; uint32_t *field; uint32_t min, max; } numbers[] = {
        { "rate", &o->rate, 8000, 384000 },
        { "period", &o->period, 16, 4096 },
        { "channels", &o->channels, 1, 64 },
        { "max-clients", &o->limits.clients, 1, 4096 },
        { "max-streams-per-client", &o->limits.streams_per_client, 1, 256 },
        { "max-message-bytes", &o->limits.message_bytes, 1024, MSG_MAX_LINE },
        { "max-outbound-bytes", &o->limits.outbound_bytes, 65536, 1u << 30 },
        { "hello-timeout-ms", &o->limits.hello_timeout_ms, 10, 600000 },
    };
    struct { const char *name; char *field; size_t len; } strings[] = {
        { "backend", o->backend, sizeof(o->backend) },
        { "device", o->device, sizeof(o->device) },
        { "socket", o->socket_path, sizeof(o->socket_path) },
        { "tap", o->tap, sizeof(o->tap) },
        { "capture", o->capture, sizeof(o->capture) },
    };
    for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
        if (strcmp(name, numbers[i].name) != 0)
            continue;
        if (parse_u32(value, numbers[i].min, numbers[i].max, numbers[i].field) < 0) {
            snprintf(err, err_len, "%s: '%s' is not a whole number in %u..%u", name, value,
                     numbers[i].min, numbers[i].max);
            return -1;
        }
        if (strcmp(name, "period") == 0 && (o->period & (o->period - 1))) {
            snprintf(err, err_len, "period: %u is not a power of two (16..4096)", o->period);
            return -1;
        }
        return 0;
    }
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        if (strcmp(name, strings[i].name) != 0)
            continue;
        if (copy_string(strings[i].field, strings[i].len, value) < 0) {
            snprintf(err, err_len, "%s: value too long", name);
            return -1;
        }
        return 0;
    }
    if (strcmp(name, "realtime") == 0) {
        uint32_t prio;
        if (parse_u32(value, 0, 99, &prio) < 0) {
            snprintf(err, err_len, "realtime: '%s' is not a priority in 0..99", value);
            return -1;
        }
        o->rt_priority = (int)prio;
        return 0;
    }
    if (strcmp(name, "no-connect") == 0) {
        o->no_connect = strcmp(value, "false") != 0 && strcmp(value, "0") != 0;
        return 0;
    }
    if (strcmp(name, "verbose") == 0) {
        o->verbose = strcmp(value, "false") != 0 && strcmp(value, "0") != 0;
        return 0;
    }
    snprintf(err, err_len, "unknown setting '%s'", name);
    return -1;
}

/* The config file: one JSON object whose keys are the long flag names. */
static int load_config(struct options *o, const char *path, char *err, size_t err_len)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, err_len, "config %s: %s", path, strerror(errno));
        return -1;
    }
    char text[65536];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    int too_long = !feof(f);
    fclose(f);
    text[n] = '\0';
    if (too_long) {
        snprintf(err, err_len, "config %s: larger than 64 KiB", path);
        return -1;
    }
    cJSON *root = msg_depth_ok(text, n, MSG_MAX_DEPTH) ? cJSON_ParseWithLength(text, n) : NULL;
    if (!cJSON_IsObject(root)) {
        snprintf(err, err_len, "config %s: not a JSON object", path);
        cJSON_Delete(root);
        return -1;
    }
    int rc = 0;
    for (cJSON *item = root->child; item && rc == 0; item = item->next) {
        char value[4096];
        if (cJSON_IsString(item))
            snprintf(value, sizeof(value), "%s", item->valuestring);
        else if (cJSON_IsNumber(item) && item->valuedouble == (double)(long long)item->valuedouble)
            snprintf(value, sizeof(value), "%lld", (long long)item->valuedouble);
        else if (cJSON_IsBool(item))
            snprintf(value, sizeof(value), "%s", cJSON_IsTrue(item) ? "true" : "false");
        else {
            snprintf(err, err_len, "config %s: field '%s' must be a string, whole number or bool",
                     path, item->string);
            rc = -1;
            break;
        }
        char why[256] = "";
        if (apply(o, item->string, value, why, sizeof(why)) < 0) {
            snprintf(err, err_len, "config %s: field %s", path, why);
            rc = -1;
        }
    }
    cJSON_Delete(root);
    return rc;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: soundcardd [--backend dummy|portaudio|jack] [--device NAME|INDEX]\n"
            "                  [--rate HZ] [--period FRAMES] [--channels N] [--socket PATH]\n"
            "                  [--config FILE] [--tap FILE.wav]\n"
            "                  [--capture sine:HZ|silence|loopback|FILE.wav] [--realtime PRIO]\n"
            "                  [--no-connect] [--verbose]\n"
            "  --device: portaudio: a device index or name (soundcard devices lists them);\n"
            "            jack: the JACK server's name; dummy: 'dummy'\n"
            "  --no-connect: jack: leave soundcard:capture_N/playback_N unconnected\n");
}

int options_parse(struct options *o, int argc, char **argv, char *err, size_t err_len)
{
    static const struct option flags[] = {
        { "backend", required_argument, NULL, 0 }, { "device", required_argument, NULL, 0 },
        { "rate", required_argument, NULL, 0 },    { "period", required_argument, NULL, 0 },
        { "channels", required_argument, NULL, 0 }, { "socket", required_argument, NULL, 0 },
        { "config", required_argument, NULL, 0 },  { "tap", required_argument, NULL, 0 },
        { "capture", required_argument, NULL, 0 }, { "realtime", required_argument, NULL, 0 },
        { "verbose", no_argument, NULL, 'v' },     { "help", no_argument, NULL, 'h' },
        { "no-connect", no_argument, NULL, 'n' },
        { "version", no_argument, NULL, 'V' },     { NULL, 0, NULL, 0 },
    };
    set_defaults(o);
    err[0] = '\0';
    /* First pass: find --config, whose settings the other flags override. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            snprintf(o->config_path, sizeof(o->config_path), "%s", argv[i + 1]);
        else if (strncmp(argv[i], "--config=", 9) == 0)
            snprintf(o->config_path, sizeof(o->config_path), "%s", argv[i] + 9);
    }
    if (o->config_path[0] && load_config(o, o->config_path, err, err_len) < 0)
        return -1;
    optind = 1;
    opterr = 0;
    int index, c;
    while ((c = getopt_long(argc, argv, "vhV", flags, &index)) != -1) {
        switch (c) {
        case 0:
            if (strcmp(flags[index].name, "config") == 0)
                break;
            if (apply(o, flags[index].name, optarg, err, err_len) < 0)
                return -1;
            break;
        case 'v':
            o->verbose = true;
            break;
        case 'n':
            o->no_connect = true;
            break;
        case 'h':
            usage(stdout);
            return 1;
        case 'V':
            printf("soundcardd %s\n", SOUNDCARD_VERSION);
            return 1;
        default:
            snprintf(err, err_len, "unknown or incomplete option '%s' (see --help)", argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc) {
        snprintf(err, err_len, "unexpected argument '%s' (see --help)", argv[optind]);
        return -1;
    }
    return 0;
}

void options_socket_path(const struct options *o, char *out, size_t len)
{
    const char *env;
    if (o->socket_path[0])
        snprintf(out, len, "%s", o->socket_path);
    else if ((env = getenv("SOUNDCARD_SOCKET")) && env[0])
        snprintf(out, len, "%s", env);
    else if ((env = getenv("XDG_RUNTIME_DIR")) && env[0])
        snprintf(out, len, "%s/soundcard/socket", env);
    else
        snprintf(out, len, "/run/soundcard/socket");
}
