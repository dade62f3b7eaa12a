/* soundcard: the command line face of soundcardd (DESIGN.md §7).
 *
 *   soundcard [--socket PATH] COMMAND [ARGS]       soundcard --help lists them
 *
 * Every command is one cmd_* function listed in commands[] below (cmd_info.c,
 * cmd_stream.c).  This file holds what they share: reporting, table-driven
 * option parsing with strict numbers, and raw protocol requests via cJSON.
 * Exit codes: 0 ok, 1 runtime error, 2 usage error, 128+N on signal N. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tool.h"

#define MAX_OPTS 12

volatile sig_atomic_t g_signal;   /* SIGINT/SIGTERM seen: stop at the next block */
static sem_t g_wake;              /* see wake_main(); initialised in main() */

/* sem_post is async-signal-safe: a signal that comes just before
 * wait_main() sleeps is not lost, it makes that sleep return at once. */
static void on_signal(int sig)
{
    g_signal = sig;
    sem_post(&g_wake);
}

/* No SA_RESTART: sleeps end early (top's nanosleep; wait_main() is posted
 * by the handler anyway).  The library's blocking calls return within a
 * block, and the loops around them then see g_signal. */
void catch_signals(void)
{
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void wake_main(void)
{
    sem_post(&g_wake);
}

double monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

bool wait_main(double deadline)
{
    if (deadline <= 0) {
        sem_wait(&g_wake);          /* EINTR: a signal, which also posted */
        return true;
    }
    double whole = floor(deadline);
    const struct timespec at = {(time_t)whole, (long)((deadline - whole) * 1e9)};
    while (sem_clockwait(&g_wake, CLOCK_MONOTONIC, &at) < 0)
        if (errno != EINTR)         /* ETIMEDOUT */
            return false;
    return true;
}

/* ---- reporting ---------------------------------------------------------- */

static void print_usage(FILE *f, const struct command *cmd)
{
    if (cmd)
        fprintf(f, "usage: soundcard [--socket PATH] %s%s%s\n", cmd->name, *cmd->args ? " " : "", cmd->args);
    else
        fputs("usage: soundcard [--socket PATH] COMMAND [ARGS]   (soundcard --help lists commands)\n", f);
}

int usage_error(const struct tool *t, const char *fmt, ...)
{
    va_list ap;
    fputs("soundcard: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    print_usage(stderr, t->cmd);
    return EXIT_USAGE;
}

/* A failed library call, in the one format scripts and tests can match. */
int runtime_error(int err, const char *fmt, ...)
{
    const char *detail = sc_last_error();
    va_list ap;
    fputs("soundcard: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, ": %s", sc_strerror(err));
    if (detail && *detail)
        fprintf(stderr, " (%s)", detail);
    fputc('\n', stderr);
    return EXIT_RUNTIME;
}

/* ---- arguments ---------------------------------------------------------- */

/* Strict numbers: the whole argument, finite, in range ("1x", "" and "nan"
 * are errors, where atof would quietly give a number). */
bool parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v) || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

bool parse_int(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static bool set_opt(const struct opt *o, const char *arg)
{
    switch (o->type) {
    case OPT_FLAG: *(bool *)o->dest = true; return true;
    case OPT_STR: *(const char **)o->dest = arg; return true;
    case OPT_NUM: return parse_double(arg, o->lo, o->hi, o->dest);
    case OPT_INT: return parse_int(arg, (long long)o->lo, (long long)o->hi, o->dest);
    }
    return false;
}

/* One command's options (opts ends with a NULL name) and exactly npos
 * positional arguments.  Returns ARGS_OK, or the exit code: 0 after --help,
 * EXIT_USAGE after saying what was wrong. */
int parse_args(const struct tool *t, int argc, char **argv,
               const struct opt *opts, const char **pos, int npos)
{
    struct option lopts[MAX_OPTS + 2];
    int n = 0;
    for (; opts && opts[n].name && n < MAX_OPTS; n++)
        lopts[n] = (struct option){opts[n].name,
                                   opts[n].type == OPT_FLAG ? no_argument : required_argument,
                                   NULL, 0x100 + n};
    lopts[n] = (struct option){"help", no_argument, NULL, 'h'};
    lopts[n + 1] = (struct option){0};

    optind = 0;     /* glibc: 0 rescans from scratch, as main() already ran getopt */
    opterr = 0;     /* usage_error() says it in our words */
    for (int o; (o = getopt_long(argc, argv, "", lopts, NULL)) != -1;) {
        if (o == 'h') {
            print_usage(stdout, t->cmd);
            printf("%s\n", t->cmd->help);
            return 0;
        }
        if (o < 0x100) {
            const char *bad = argv[optind - 1];
            double ignored;     /* getopt takes "-1" for an option: say what it is */
            if (parse_double(bad, -HUGE_VAL, 0, &ignored))
                return usage_error(t, "%s: negative numbers are not valid here", bad);
            return usage_error(t, "unknown option or missing value: %s", bad);
        }
        const struct opt *op = &opts[o - 0x100];
        if (!set_opt(op, optarg))
            return usage_error(t, "--%s: expected %s in [%g, %g], got '%s'", op->name,
                               op->type == OPT_INT ? "an integer" : "a number",
                               op->lo, op->hi, optarg);
    }
    if (argc - optind != npos)
        return usage_error(t, "expected %d argument%s, got %d", npos, npos == 1 ? "" : "s",
                           argc - optind);
    for (int i = 0; i < npos; i++)
        pos[i] = argv[optind + i];
    return ARGS_OK;
}

/* ---- talking to the daemon ---------------------------------------------- */

int tool_connect(struct tool *t)
{
    char name[48];      /* "soundcard tone": which tool is which in status */
    snprintf(name, sizeof name, "soundcard %s", t->cmd->name);
    int err = sc_client_open(&t->client, t->socket, name);
    if (err < 0) {
        t->client = NULL;
        return runtime_error(err, "connect to %s", t->socket ? t->socket : sc_default_socket_path());
    }
    return 0;
}

/* A raw protocol op, for what the typed API does not cover.  The reply's id
 * and ok are dropped: the return code already said both. */
int raw_request(struct tool *t, const char *req, const char *what, cJSON **out)
{
    char *line = NULL;
    int err = sc_client_request(t->client, req, &line);
    cJSON *reply = err < 0 ? NULL : cJSON_Parse(line);
    free(line);
    if (err < 0)
        return runtime_error(err, "%s", what);
    if (!cJSON_IsObject(reply)) {
        cJSON_Delete(reply);
        fprintf(stderr, "soundcard: %s: the daemon's reply is not a JSON object\n", what);
        return EXIT_RUNTIME;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(reply, "id");
    cJSON_DeleteItemFromObjectCaseSensitive(reply, "ok");
    *out = reply;
    return 0;
}

double jnum(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "?";
}

int print_stats(sc_stream *s, const char *label, const char *extra)
{
    sc_stream_stats st;
    int err = sc_stream_get_stats(s, &st);
    if (err < 0)
        return runtime_error(err, "stream stats");
    printf("%s: frames=%" PRIu64 " underruns=%" PRIu64 " overruns=%" PRIu64 " clipped=%" PRIu64 "%s%s\n",
           label, st.frames, st.underruns, st.overruns, st.clipped, extra ? " " : "", extra ? extra : "");
    return 0;
}

/* A failed sc_stream_open(), saying what was asked for (the tool's streams
 * are all float32). */
int open_error(int err, const sc_stream_params *p)
{
    const int ch = p->output_channels ? p->output_channels : p->input_channels;
    char rate[32] = "the card's rate";
    if (p->samplerate > 0)
        snprintf(rate, sizeof rate, "%g Hz", p->samplerate);
    return runtime_error(err, "open %s%s stream (float32, %s, %d channel%s)",
                         p->callback ? "callback " : "",
                         p->input_channels && p->output_channels ? "duplex"
                         : p->output_channels                    ? "output"
                                                                 : "input",
                         rate, ch, ch == 1 ? "" : "s");
}

/* sc_get_server_info() with the error reported: the card's rate and channels
 * are the defaults of tone and rec, and the rate is top's clock. */
int card_info(struct tool *t, sc_server_info *si)
{
    int err = sc_get_server_info(t->client, si);
    return err < 0 ? runtime_error(err, "server.info") : 0;
}

/* ---- main --------------------------------------------------------------- */

static const struct command commands[] = {
    {"status", cmd_status, "[--json]", "the daemon, its card, and every client and stream"},
    {"devices", cmd_devices, "", "the devices the daemon's backend offers"},
    {"tone", cmd_tone,
     "[--freq HZ] [--seconds S] [--gain G] [--channels N] [--latency S] [--name NAME] [--callback] "
     "[--blocksize N]",
     "play a sine (default 440 Hz, 2 s, amplitude 0.2; --callback: from a callback stream)"},
    {"play", cmd_play, "FILE [--latency S] [--gain G]",
     "play a sound file (anything libsndfile reads, at its own rate)"},
    {"rec", cmd_rec, "FILE --seconds S [--channels N] [--rate HZ] [--latency S] [--float]",
     "record to FILE (.wav, .flac or .ogg; default rate: the card's)"},
    {"loopback", cmd_loopback,
     "[--seconds S] [--blocksize N] [--rate HZ] [--channels N] [--latency S]",
     "play the card's input back to it from a callback (default 5 s; 0: until Ctrl-C)"},
    {"top", cmd_top, "[--interval S] [--count N]", "live per-stream table: latency, load, underruns, peak"},
    {"gain", cmd_gain, "STREAM G", "set a stream's linear gain (0 to 16)"},
};

static void print_help(void)
{
    printf("soundcard %s: control and use soundcardd\n\n", sc_version());
    for (size_t i = 0; i < ARRAY_LEN(commands); i++) {
        print_usage(stdout, &commands[i]);
        printf("    %s\n", commands[i].help);
    }
    printf("\n--socket PATH defaults to $SOUNDCARD_SOCKET, else $XDG_RUNTIME_DIR/soundcard/socket\n"
           "when it exists (or no /run/soundcard/socket does), else /run/soundcard/socket.\n"
           "Exit status: 0 ok, 1 error, 2 usage error.\n");
}

int main(int argc, char **argv)
{
    static const struct option global[] = {{"socket", required_argument, NULL, 's'},
                                           {"help", no_argument, NULL, 'h'},
                                           {"version", no_argument, NULL, 'V'}, {0}};
    struct tool t = {0};
    sem_init(&g_wake, 0, 0);
    opterr = 0;
    /* "+": stop at the command; its own options are parse_args()'s business */
    for (int o; (o = getopt_long(argc, argv, "+", global, NULL)) != -1;) {
        switch (o) {
        case 's': t.socket = optarg; break;
        case 'h': print_help(); return 0;
        case 'V': printf("soundcard %s\n", sc_version()); return 0;
        default: return usage_error(&t, "unknown option or missing value: %s", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return usage_error(&t, "no command given");
    for (size_t i = 0; i < ARRAY_LEN(commands); i++) {
        if (strcmp(argv[optind], commands[i].name) == 0) {
            t.cmd = &commands[i];
            int rc = t.cmd->run(&t, argc - optind, argv + optind);
            if (t.client)
                sc_client_close(t.client);
            return rc;
        }
    }
    return usage_error(&t, "unknown command '%s'", argv[optind]);
}
