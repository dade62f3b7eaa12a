/* What the soundcard tool's files share (private to tools/, not installed).
 * soundcard.c: main, reporting, option parsing, signals and waking the main
 * thread, raw protocol requests; cmd_info.c: status, devices, top, gain;
 * cmd_stream.c: tone, play, rec (blocking streams) and the sine generator;
 * cmd_callback.c: loopback and tone --callback (callback streams). */
#ifndef SOUNDCARD_TOOL_H
#define SOUNDCARD_TOOL_H

#include <cjson/cJSON.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include <soundcard/soundcard.h>

enum { EXIT_RUNTIME = 1, EXIT_USAGE = 2, ARGS_OK = -1 };

#define MAX_GAIN 16.0       /* stream.set's limit (PROTOCOL.md) */
#define MAX_CHANNELS 64     /* stream.open's limit */
#define MAX_BLOCKSIZE 65536 /* sc_stream_open's limit */
#define MAX_SECONDS 1e6     /* --seconds: anything longer is a typo */
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))

struct command;
struct tool {
    const char *socket;             /* --socket; NULL: the library's default rule */
    sc_client *client;              /* opened by tool_connect(), closed by main() */
    const struct command *cmd;      /* the running command, for its usage line */
};

struct command {
    const char *name;
    int (*run)(struct tool *t, int argc, char **argv);   /* argv[0] is the name */
    const char *args;
    const char *help;
};

/* A command's options, ended by a NULL name; see parse_args(). */
enum opt_type { OPT_FLAG, OPT_NUM, OPT_INT, OPT_STR };
struct opt {
    const char *name;
    enum opt_type type;
    void *dest;             /* bool, double, long long or const char * */
    double lo, hi;          /* range of OPT_NUM and OPT_INT */
};

extern volatile sig_atomic_t g_signal;   /* SIGINT/SIGTERM seen: wind down */
void catch_signals(void);
/* The main thread's one wake-up: posted by SIGINT/SIGTERM and by wake_main()
 * (async-signal-safe, callable from any thread: a callback stream's
 * `finished`).  wait_main() sleeps until a wake-up or until `deadline`
 * (CLOCK_MONOTONIC seconds, 0: none); returns false once the deadline has
 * passed.  Wake-ups are counted: the caller re-checks what it waits for. */
void wake_main(void);
bool wait_main(double deadline);
double monotonic_seconds(void);

/* Both print "soundcard: ..." on stderr and return the exit code. */
int usage_error(const struct tool *t, const char *fmt, ...) PRINTF_LIKE(2, 3);
int runtime_error(int err, const char *fmt, ...) PRINTF_LIKE(2, 3);

bool parse_double(const char *s, double lo, double hi, double *out);
bool parse_int(const char *s, long long lo, long long hi, long long *out);
int parse_args(const struct tool *t, int argc, char **argv,
               const struct opt *opts, const char **pos, int npos);

int tool_connect(struct tool *t);
int card_info(struct tool *t, sc_server_info *si);
int raw_request(struct tool *t, const char *req, const char *what, cJSON **out);
double jnum(const cJSON *o, const char *key);          /* NAN when absent */
const char *jstr(const cJSON *o, const char *key);     /* "?" when absent */
/* The stats line tone, play, rec and loopback end with:
 * "LABEL: frames=N underruns=N overruns=N clipped=N[ EXTRA]".  Returns 0 or
 * the exit code after reporting. */
int print_stats(sc_stream *s, const char *label, const char *extra);
/* A failed sc_stream_open() of `p`, reported; returns the exit code. */
int open_error(int err, const sc_stream_params *p);

/* A float32 sine, phase continuous across calls (cmd_stream.c). */
struct sine {
    double phase, step, gain;   /* phase and step in cycles */
    int channels;
};
long sine_fill(void *ctx, float *buf, unsigned long frames);   /* returns frames */

/* tone --callback (cmd_callback.c): `frames` frames of `sine` from a callback
 * stream at the card's rate, `p` giving name, latency and blocksize. */
int run_callback_tone(struct tool *t, const sc_stream_params *p, struct sine *sine,
                      uint64_t frames, const char *label);

int cmd_status(struct tool *t, int argc, char **argv);
int cmd_devices(struct tool *t, int argc, char **argv);
int cmd_top(struct tool *t, int argc, char **argv);
int cmd_gain(struct tool *t, int argc, char **argv);
int cmd_tone(struct tool *t, int argc, char **argv);
int cmd_play(struct tool *t, int argc, char **argv);
int cmd_rec(struct tool *t, int argc, char **argv);
int cmd_loopback(struct tool *t, int argc, char **argv);

#endif
