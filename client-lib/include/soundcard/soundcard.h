/* libsoundcard: share one sound card, owned by soundcardd, between processes.
 *
 * Functions return 0 (or a count) on success and a negative error code on
 * failure: SC_E… below, or a negative errno value where one fits.
 * sc_strerror() says what a code means and sc_last_error() what exactly went
 * wrong in this thread's last failed call.  No function prints. */
#ifndef SOUNDCARD_SOUNDCARD_H
#define SOUNDCARD_SOUNDCARD_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sc_client sc_client;
typedef struct sc_stream sc_stream;
typedef struct sc_device_info sc_device_info;
typedef struct sc_server_info sc_server_info;

enum {
    SC_ENOSERVER = -2000,   /* no daemon answers at the socket path */
    SC_EDISCONNECTED,       /* the daemon closed the connection */
    SC_EPROTOCOL,           /* the daemon's reply made no sense */
    SC_EUNSUPPORTED,        /* not supported (yet) by this library or daemon */
    SC_ESTOPPED,            /* the stream is not running and the call would wait */
    SC_EBADREQUEST,         /* daemon: bad_request */
    SC_EVERSION,            /* daemon: unsupported_version */
    SC_EUNKNOWNOP,          /* daemon: unknown_op */
    SC_ENOTFOUND,           /* daemon: not_found */
    SC_EINVALSTATE,         /* daemon: invalid_state */
    SC_ELIMIT,              /* daemon: limit */
    SC_EDENIED,             /* daemon: denied */
    SC_EBACKEND,            /* daemon: backend */
    SC_EINTERNAL,           /* daemon: internal */
};

typedef enum { SC_FLOAT32, SC_INT32, SC_INT24, SC_INT16, SC_INT8, SC_UINT8 } sc_format;
enum { SC_CONTINUE = 0, SC_COMPLETE = 1, SC_ABORT = 2 };              /* callback returns */
enum { SC_INPUT_UNDERFLOW = 1, SC_INPUT_OVERFLOW = 2, SC_OUTPUT_UNDERFLOW = 4,
       SC_OUTPUT_OVERFLOW = 8, SC_PRIMING_OUTPUT = 16 };               /* callback status */

/* CLOCK_MONOTONIC seconds (docs/timing.md): when the block's first input
 * frame left the ADC, now, and when its first output frame reaches the DAC. */
typedef struct { double input_adc_time, current_time, output_dac_time; } sc_time_info;

/* Callback mode.  The callback runs on a thread of the library's own
 * (SCHED_FIFO when the system allows it), always with exactly `blocksize`
 * frames; `input` is NULL for an output-only stream, `output` NULL for an
 * input-only one, and `output` starts zeroed; both are valid only during
 * the call (in float32 at the card's rate they are the stream's rings in
 * shared memory, not copies).  `status` has
 * SC_OUTPUT_UNDERFLOW when the daemon played silence for the stream since
 * the last call and SC_INPUT_OVERFLOW when capture was dropped.  Return
 * SC_CONTINUE to go on, SC_COMPLETE to end after this block has played
 * (drain), SC_ABORT to end now; then `finished` runs, once.  The output ring
 * is primed with silence up to the stream's latency at start, so there are
 * no SC_PRIMING_OUTPUT calls. */
typedef int (*sc_callback)(const void *input, void *output, unsigned long frames,
                           const sc_time_info *time, unsigned status, void *userdata);

/* Channels: 1..the card's count.  A mono output stream is heard on every
 * card channel; otherwise stream channel i plays on card channel i (a stream
 * with fewer channels leaves the rest), and input channel i is card channel
 * i.  Any samplerate from 1000 to 768000 Hz: the library converts to and from
 * the card's rate with libsoxr, in the client's process.  Integer formats are
 * clipped on the way from float. */
typedef struct {
    const char *name;            /* shown in stats; NULL: program name        */
    int device;                  /* -1: default                              */
    int input_channels;          /* 0: no input                              */
    int output_channels;         /* 0: no output                             */
    sc_format format;            /* sample format the application uses       */
    double samplerate;           /* 0: the card's rate                       */
    unsigned long blocksize;     /* frames per read/write/callback; 0: any   */
    double latency;              /* seconds; 0: lowest the card allows (at least $SOUNDCARD_LATENCY) */
    sc_callback callback;        /* NULL: blocking read/write mode           */
    void *userdata;
    void (*finished)(void *userdata); /* called once when a callback stream ends */
} sc_stream_params;

typedef struct {            /* counters since the stream was opened */
    uint64_t frames;        /* frames the card has played/captured for it (taken from or put
                               into its rings; silence played in an underrun not counted) */
    uint64_t underruns;     /* periods it had too little output for */
    uint64_t overruns;      /* periods its capture ring was full */
    uint64_t clipped;       /* its samples clipped in the mix */
    float peak;             /* its peak |sample| in the last period */
    uint32_t id;            /* the daemon's id for the stream */
    int callback_realtime;  /* its callback thread: 1 SCHED_FIFO, 0 normal, -1 none */
} sc_stream_stats;

struct sc_device_info {
    int index;
    char name[128];
    char api[32];                    /* host API: "dummy", "ALSA", "JACK"… */
    int max_input_channels;
    int max_output_channels;
    double default_samplerate;
    double default_low_input_latency;   /* seconds */
    double default_low_output_latency;
    double default_high_input_latency;
    double default_high_output_latency;
    int is_default_input;
    int is_default_output;
};

struct sc_server_info {
    char version[32];        /* soundcardd's version */
    char backend[16];        /* "dummy", "portaudio", "jack" */
    char device[128];        /* the card it owns */
    double samplerate;
    unsigned long period;    /* frames per engine cycle */
    int channels;            /* the card's channel count (input and output) */
    int clients;
    int streams;
    uint64_t xruns;          /* the card's own xruns (late engine cycles) */
    double load;             /* engine time / period time, last second, 0..1 */
    int realtime;            /* 1: the engine thread runs SCHED_FIFO */
    int rt_priority;
    double input_latency;    /* seconds, the card's own */
    double output_latency;
    char state[16];          /* "running", or "lost" while the card is away */
    int memory_locked;       /* 1: the RT path's memory is mlock()ed */
};

const char *sc_version(void);
const char *sc_strerror(int err);
/* What went wrong in this thread's last failed call, in words (the daemon's
 * message, the socket path tried…); "" when nothing failed yet. */
const char *sc_last_error(void);
/* Defaults: default device, float32, the card's rate, any blocksize, lowest
 * latency, blocking mode, and no channels: set input_channels and/or
 * output_channels. */
void sc_stream_params_init(sc_stream_params *p);

/* The socket path the library uses when given NULL: $SOUNDCARD_SOCKET, else
 * $XDG_RUNTIME_DIR/soundcard/socket (a user instance) when that exists or no
 * system instance does, else /run/soundcard/socket (the system instance). */
const char *sc_default_socket_path(void);

/* Connect to soundcardd.  With no daemon answering at the path it fails at
 * once with SC_ENOSERVER (it does not wait for one); try again later.  A
 * daemon that takes the connection but does not answer hello within 5 s
 * (stopped, hung) counts as none: SC_ENOSERVER then too. */
int  sc_client_open(sc_client **out, const char *socket_path /* NULL: default */, const char *name);
void sc_client_close(sc_client *c);   /* NULL is fine; close its streams first */

/* Daemon restarts.  When soundcardd goes away (stopped, restarted or
 * killed), a call that needs it fails with SC_EDISCONNECTED and
 * sc_last_error() names the socket; a blocking sc_stream_read/write that
 * waits in the library returns at once.  By default that is the end of the
 * client: close its streams and the client, then sc_client_open again.
 *
 * Auto-reconnect (opt-in): sc_client_set_reconnect(c, T) with T > 0 seconds
 * (0, the default, turns it off; a negative or non-finite T is -EINVAL), or
 * SOUNDCARD_RECONNECT=T in the environment, read by sc_client_open, so that
 * unmodified programs can turn it on (a value that is not a number >= 0 is
 * ignored).  Then a call that finds the daemon gone waits up to T seconds
 * for a daemon to answer at the same socket path (retrying every 25 ms),
 * connects and says hello again (once per client, however many streams
 * notice), reopens the stream with the parameters it was opened with, starts
 * it again if it was running, and goes on:
 *   - sc_stream_write/read (blocking mode) resume on the new daemon without
 *     the application doing anything: the audio queued in the ring when the
 *     daemon went away (up to the stream's latency) is lost, what the
 *     library still held is played; a reader goes on with what the new
 *     daemon captures.  sc_stream_stop drains into the new daemon.
 *   - sc_stream_start, sc_stream_read_available and
 *     sc_stream_write_available reopen the stream first.
 *   - sc_stream_abort and sc_stream_close do not wait for a daemon: a stream
 *     whose daemon is gone is stopped already, and they return 0.
 *     sc_stream_set_gain does not either (it may run on another thread): it
 *     returns 0 and the reopen applies the gain, as after every reopen.
 *     sc_stream_get_stats, sc_stream_latency and sc_stream_set_gain are safe
 *     from another thread while one thread reads or writes the stream; a
 *     stream is reopened by the thread that reads, writes, starts or stops
 *     it.
 *   - sc_stream_open on a client whose connection is lost reconnects
 *     first; sc_device_count, sc_get_device_info, sc_get_server_info and
 *     sc_client_request reconnect and ask again once.
 *   - A callback stream that is running when the daemon goes away ends with
 *     an error: its `finished` runs; sc_stream_start starts it again on the
 *     new daemon.
 *   - The reopened stream is a new stream to the daemon: a new id, new
 *     shared memory, and its counters (sc_stream_get_stats) start from 0.
 *     A daemon that comes back at another card rate cannot take the stream:
 *     the call fails with SC_EUNSUPPORTED.
 * When no daemon answers within T seconds the call fails with
 * SC_EDISCONNECTED (sc_last_error() says so and names the socket); the next
 * call tries again.  sc_client_open itself never waits: it still fails with
 * SC_ENOSERVER while no daemon runs.  Thread-safe like the rest of the
 * client: streams on different threads each reopen themselves. */
int  sc_client_set_reconnect(sc_client *c, double timeout_seconds);
/* Send one raw protocol request (a JSON object without "id"; the library adds
 * it) and return the reply line in *reply (malloc'ed, caller frees).  Returns
 * 0 for an ok reply, the SC_E… code of an error reply (the reply is still
 * returned), or another negative code.  For tools that speak ops the typed API
 * does not cover (stats, stream.set on others' streams). */
int  sc_client_request(sc_client *c, const char *request_json, char **reply);

int  sc_device_count(sc_client *c);
int  sc_get_device_info(sc_client *c, int index, sc_device_info *out);
int  sc_get_server_info(sc_client *c, sc_server_info *out);

int  sc_stream_open(sc_client *c, const sc_stream_params *p, sc_stream **out);
int  sc_stream_start(sc_stream *s);
int  sc_stream_stop(sc_stream *s);     /* plays what was written, then stops */
int  sc_stream_abort(sc_stream *s);    /* stops now */
int  sc_stream_close(sc_stream *s);
/* Blocking mode.  A running stream transfers all `frames`, waiting for room
 * or data as needed.  A stream that is not running transfers what fits
 * without waiting (priming the output before start, draining the input after
 * stop) and returns that count, or SC_ESTOPPED when nothing fits.  A
 * full-duplex stream that was not primed so starts, as a callback stream
 * does, with its latency's worth of silence queued. */
long sc_stream_read(sc_stream *s, void *buf, unsigned long frames);        /* blocks; frames read or <0 */
long sc_stream_write(sc_stream *s, const void *buf, unsigned long frames); /* blocks; frames written or <0 */
long sc_stream_read_available(sc_stream *s);
long sc_stream_write_available(sc_stream *s);
int  sc_stream_is_active(sc_stream *s);
double sc_stream_time(sc_stream *s);                  /* stream clock, seconds */
int  sc_stream_latency(sc_stream *s, double *input, double *output);
int  sc_stream_set_gain(sc_stream *s, float gain);
int  sc_stream_get_stats(sc_stream *s, sc_stream_stats *out); /* frames, underruns, overruns, clipped */

#ifdef __cplusplus
}
#endif
#endif
