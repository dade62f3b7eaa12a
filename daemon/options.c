#include "options.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fault.h"
#include "message.h"

enum setting_kind { SETTING_U32, SETTING_STRING, SETTING_BOOL, SETTING_USERS, SETTING_GROUPS, SETTING_GROUP };

/* Every setting, by its flag and config-key name.  `live`: SIGHUP can
 * change it in a running daemon; the others need a restart. */
struct setting {
    const char *name;
    enum setting_kind kind;
    size_t offset, size;
    uint32_t min, max;
    bool live;
};

#define FIELD(f) offsetof(struct options, f), sizeof(((struct options *)0)->f)
static const struct setting settings[] = {
    { "backend", SETTING_STRING, FIELD(backend), 0, 0, false },
    { "device", SETTING_STRING, FIELD(device), 0, 0, false },
    { "rate", SETTING_U32, FIELD(rate), 8000, 384000, false },
    { "period", SETTING_U32, FIELD(period), 16, 4096, false },
    { "channels", SETTING_U32, FIELD(channels), 1, 64, false },
    { "socket", SETTING_STRING, FIELD(socket_path), 0, 0, false },
    { "socket-group", SETTING_GROUP, FIELD(socket_group), 0, 0, false },
    { "tap", SETTING_STRING, FIELD(tap), 0, 0, false },
    { "capture", SETTING_STRING, FIELD(capture), 0, 0, false },
    { "realtime", SETTING_U32, FIELD(rt_priority), 0, 99, false },
    { "no-connect", SETTING_BOOL, FIELD(no_connect), 0, 0, false },
    { "dummy-fault", SETTING_STRING, FIELD(dummy_fault), 0, 0, false },
    { "verbose", SETTING_BOOL, FIELD(verbose), 0, 0, true },
    { "max-clients", SETTING_U32, FIELD(limits.clients), 1, 4096, true },
    { "max-streams-per-client", SETTING_U32, FIELD(limits.streams_per_client), 1, 256, true },
    { "max-streams-per-uid", SETTING_U32, FIELD(limits.streams_per_uid), 1, 65536, true },
    { "max-memory-per-uid", SETTING_U32, FIELD(limits.memory_per_uid_mib), 1, 1u << 20, true },
    { "max-channels", SETTING_U32, FIELD(limits.channels), 1, 64, true },
    { "max-buffer-frames", SETTING_U32, FIELD(limits.buffer_frames), 64, 1u << 20, true },
    { "max-message-bytes", SETTING_U32, FIELD(limits.message_bytes), 1024, MSG_MAX_LINE, true },
    { "max-outbound-bytes", SETTING_U32, FIELD(limits.outbound_bytes), 65536, 1u << 30, true },
    { "hello-timeout-ms", SETTING_U32, FIELD(limits.hello_timeout_ms), 10, 600000, true },
    { "allow-uid", SETTING_USERS, FIELD(allow_uids), 0, 0, true },
    { "allow-gid", SETTING_GROUPS, FIELD(allow_gids), 0, 0, true },
};
#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

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
        .streams_per_uid = 256,
        .memory_per_uid_mib = 1024,
        .channels = 64,
        .buffer_frames = 1u << 20,
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

/* A user or group by number or name. */
static int resolve_id(const char *text, bool group, uint32_t *out)
{
    if (parse_u32(text, 0, UINT32_MAX - 1, out) == 0)
        return 0;
    if (group) {
        struct group *g = getgrnam(text);
        if (g)
            *out = g->gr_gid;
        return g ? 0 : -1;
    }
    struct passwd *p = getpwnam(text);
    if (p)
        *out = p->pw_uid;
    return p ? 0 : -1;
}

/* "a,b,c": users or groups by number or name; "" empties the list. */
static int parse_ids(const char *name, const char *value, bool group, struct id_list *out, char *err,
                     size_t err_len)
{
    struct id_list list = { 0 };
    char copy[4096];
    snprintf(copy, sizeof(copy), "%s", value);
    char *save = NULL;
    for (char *item = strtok_r(copy, ", ", &save); item; item = strtok_r(NULL, ", ", &save)) {
        if (list.n == OPTIONS_MAX_IDS) {
            snprintf(err, err_len, "%s: more than %d entries", name, OPTIONS_MAX_IDS);
            return -1;
        }
        if (resolve_id(item, group, &list.ids[list.n]) < 0) {
            snprintf(err, err_len, "%s: no %s '%s'", name, group ? "group" : "user", item);
            return -1;
        }
        list.n++;
    }
    *out = list;
    return 0;
}

static bool parse_bool(const char *value, bool *out)
{
    if (!value || !strcmp(value, "true") || !strcmp(value, "1") || !strcmp(value, "yes"))
        *out = true;
    else if (!strcmp(value, "false") || !strcmp(value, "0") || !strcmp(value, "no"))
        *out = false;
    else
        return false;
    return true;
}

/* One setting by name, from a flag or the config file. */
static int apply(struct options *o, const char *name, const char *value, char *err, size_t err_len)
{
    const struct setting *set = NULL;
    for (size_t i = 0; i < NSETTINGS && !set; i++)
        if (strcmp(name, settings[i].name) == 0)
            set = &settings[i];
    if (!set) {
        snprintf(err, err_len, "%s: no such setting (soundcardd --help lists them)", name);
        return -1;
    }
    void *field = (char *)o + set->offset;
    uint32_t gid;
    switch (set->kind) {
    case SETTING_U32:
        if (parse_u32(value, set->min, set->max, field) < 0) {
            snprintf(err, err_len, "%s: '%s' is not a whole number in %u..%u", name, value, set->min,
                     set->max);
            return -1;
        }
        if (field == &o->period && (o->period & (o->period - 1))) {
            snprintf(err, err_len, "period: %u is not a power of two (16..4096)", o->period);
            return -1;
        }
        return 0;
    case SETTING_GROUP:   /* kept by name, resolved again when the socket is made */
    case SETTING_STRING:
        if (set->kind == SETTING_GROUP && value[0] && resolve_id(value, true, &gid) < 0) {
            snprintf(err, err_len, "%s: no group '%s'", name, value);
            return -1;
        }
        if (strlen(value) >= set->size) {
            snprintf(err, err_len, "%s: value too long (at most %zu bytes)", name, set->size - 1);
            return -1;
        }
        memcpy(field, value, strlen(value) + 1);
        return 0;
    case SETTING_BOOL:
        if (!parse_bool(value, field)) {
            snprintf(err, err_len, "%s: '%s' is not true or false", name, value);
            return -1;
        }
        return 0;
    case SETTING_USERS:
    case SETTING_GROUPS:
        return parse_ids(name, value, set->kind == SETTING_GROUPS, field, err, err_len);
    }
    return -1;
}

/* A config value as the flag's text: arrays (allow lists) join with ','. */
static int config_value_text(const cJSON *item, char *out, size_t len)
{
    if (cJSON_IsString(item))
        snprintf(out, len, "%s", item->valuestring);
    else if (cJSON_IsNumber(item) && item->valuedouble == (double)(long long)item->valuedouble)
        snprintf(out, len, "%lld", (long long)item->valuedouble);
    else if (cJSON_IsBool(item))
        snprintf(out, len, "%s", cJSON_IsTrue(item) ? "true" : "false");
    else if (cJSON_IsArray(item)) {
        size_t used = 0;
        out[0] = '\0';
        for (const cJSON *e = item->child; e; e = e->next) {
            char one[256];
            if (cJSON_IsArray(e) || config_value_text(e, one, sizeof(one)) < 0)
                return -1;
            used += snprintf(out + used, used < len ? len - used : 0, "%s%s", used ? "," : "", one);
        }
        return used < len ? 0 : -1;
    } else
        return -1;
    return 0;
}

/* The config file: one JSON object whose keys are the long flag names. */
static int load_config(struct options *o, const char *path, char *err, size_t err_len)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, err_len, "config %s: %s", path, strerror(errno));
        return -1;
    }
    static char text[65536];
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
        char value[4096], why[512] = "";
        if (strcmp(item->string, "config") == 0) {
            snprintf(err, err_len, "config %s: field config: a config file cannot name another", path);
            rc = -1;
        } else if (config_value_text(item, value, sizeof(value)) < 0) {
            snprintf(err, err_len,
                     "config %s: field %s: must be a string, whole number, bool or list of those",
                     path, item->string);
            rc = -1;
        } else if (apply(o, item->string, value, why, sizeof(why)) < 0) {
            snprintf(err, err_len, "config %s: field %s", path, why);
            rc = -1;
        }
    }
    cJSON_Delete(root);
    return rc;
}

/* $XDG_CONFIG_HOME/soundcard/soundcardd.json (~/.config when unset), else
 * /etc/soundcard/soundcardd.json: the first that exists, or "". */
static void default_config_path(char *out, size_t len)
{
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    out[0] = '\0';
    if (xdg && xdg[0] == '/')
        snprintf(out, len, "%s/soundcard/soundcardd.json", xdg);
    else if (home && home[0] == '/')
        snprintf(out, len, "%s/.config/soundcard/soundcardd.json", home);
    if (out[0] && access(out, F_OK) == 0)
        return;
    snprintf(out, len, "/etc/soundcard/soundcardd.json");
    if (access(out, F_OK) != 0)
        out[0] = '\0';
}

/* A fault spec that parses, on the one backend that can inject it. */
static int check_dummy_fault(const struct options *o, char *err, size_t err_len)
{
    struct backend_fault fault;
    if (fault_parse(&fault, o->dummy_fault, err, err_len) < 0)
        return -1;
    if (fault.kind != FAULT_NONE && strcmp(o->backend, "dummy") != 0) {
        snprintf(err, err_len, "dummy-fault: only the dummy backend can be told to fail (backend is %s)",
                 o->backend);
        return -1;
    }
    return 0;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: soundcardd [--backend dummy|portaudio|jack] [--device NAME|INDEX]\n"
            "                  [--rate HZ] [--period FRAMES] [--channels N] [--socket PATH]\n"
            "                  [--config FILE] [--tap FILE.wav]\n"
            "                  [--capture sine:HZ|silence|loopback|FILE.wav] [--realtime PRIO]\n"
            "                  [--no-connect] [--verbose] [--socket-group GROUP]\n"
            "                  [--allow-uid USERS] [--allow-gid GROUPS] [--max-... N]\n"
            "  --device: portaudio: a device index or name (soundcard devices lists them);\n"
            "            jack: the JACK server's name; dummy: 'dummy'\n"
            "  --no-connect: jack: leave soundcard:capture_N/playback_N unconnected\n"
            "  --realtime PRIO: SCHED_FIFO priority of the card thread (default 70, 0: off)\n"
            "  --socket-group GROUP: the socket is mode 0660 with this group\n"
            "  --allow-uid/--allow-gid: comma-separated users/groups that may connect\n"
            "      (default: only this daemon's user and root)\n"
            "  limits: --max-clients --max-streams-per-client --max-streams-per-uid\n"
            "      --max-memory-per-uid MIB --max-channels --max-buffer-frames\n"
            "      --max-message-bytes --max-outbound-bytes --hello-timeout-ms\n"
            "  --config FILE: JSON object keyed by these long names (default:\n"
            "      $XDG_CONFIG_HOME/soundcard/soundcardd.json, /etc/soundcard/soundcardd.json)\n"
            "  --dummy-fault stall:MS|hang:MS|fail:MS: testing only: each SIGUSR1 stalls the\n"
            "      dummy card for MS ms (hang: deaf to a stop meanwhile), or makes it fail\n"
            "      and stay away for MS ms\n");
}

int options_parse(struct options *o, int argc, char **argv, char *err, size_t err_len)
{
    enum { FLAG_CONFIG = 1000, FLAG_HELP, FLAG_VERSION, FLAG_SETTING };
    static struct option flags[NSETTINGS + 4];
    for (size_t i = 0; i < NSETTINGS; i++) {
        bool is_bool = settings[i].kind == SETTING_BOOL;
        flags[i] = (struct option){ settings[i].name, is_bool ? no_argument : required_argument, NULL,
                                    FLAG_SETTING + (int)i };
    }
    flags[NSETTINGS] = (struct option){ "config", required_argument, NULL, FLAG_CONFIG };
    flags[NSETTINGS + 1] = (struct option){ "help", no_argument, NULL, FLAG_HELP };
    flags[NSETTINGS + 2] = (struct option){ "version", no_argument, NULL, FLAG_VERSION };
    flags[NSETTINGS + 3] = (struct option){ NULL, 0, NULL, 0 };

    set_defaults(o);
    err[0] = '\0';
    /* First pass: find --config, whose settings the other flags override. */
    bool explicit_config = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            snprintf(o->config_path, sizeof(o->config_path), "%s", argv[i + 1]);
            explicit_config = true;
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            snprintf(o->config_path, sizeof(o->config_path), "%s", argv[i] + 9);
            explicit_config = true;
        }
    }
    if (!explicit_config)
        default_config_path(o->config_path, sizeof(o->config_path));
    if (o->config_path[0] && load_config(o, o->config_path, err, err_len) < 0)
        return -1;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "vhV", flags, NULL)) != -1) {
        switch (c) {
        case FLAG_CONFIG:
            break;
        case 'h':
        case FLAG_HELP:
            usage(stdout);
            return 1;
        case 'V':
        case FLAG_VERSION:
            printf("soundcardd %s\n", SOUNDCARD_VERSION);
            return 1;
        case 'v':
            o->verbose = true;
            break;
        default:
            if (c >= FLAG_SETTING && c < FLAG_SETTING + (int)NSETTINGS) {
                const char *name = settings[c - FLAG_SETTING].name;
                if (apply(o, name, optarg ? optarg : "true", err, err_len) < 0)
                    return -1;
                break;
            }
            snprintf(err, err_len, "unknown or incomplete option '%s' (see --help)", argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc) {
        snprintf(err, err_len, "unexpected argument '%s' (see --help)", argv[optind]);
        return -1;
    }
    return check_dummy_fault(o, err, err_len);
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

void options_each_change(const struct options *a, const struct options *b,
                         void (*fn)(const char *name, bool live, void *ctx), void *ctx)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        const struct setting *set = &settings[i];
        const char *fa = (const char *)a + set->offset, *fb = (const char *)b + set->offset;
        bool differ = set->kind == SETTING_STRING || set->kind == SETTING_GROUP
                          ? strcmp(fa, fb) != 0
                          : memcmp(fa, fb, set->size) != 0;
        if (differ)
            fn(set->name, set->live, ctx);
    }
}
