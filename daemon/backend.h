/* A backend owns the card and drives the engine: it calls `process` once per
 * period from its realtime context with the card's input and an output buffer
 * to fill.  Each backend is one file exporting one `const struct backend_ops`
 * (sndio's sio_ops is the model); backends.c lists them. */
#ifndef SC_DAEMON_BACKEND_H
#define SC_DAEMON_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct backend;
struct backend_fault;

/* When the current period's buffers meet the converters, CLOCK_MONOTONIC ns. */
struct backend_time {
    int64_t period_time_ns;  /* this period's start */
    int64_t adc_time_ns;     /* when the first input frame of this period was captured */
    int64_t dac_time_ns;     /* when the first output frame of this period will be heard */
    uint64_t xruns;          /* the card's own xruns so far */
    int64_t xrun_late_ns;    /* how late its thread woke at the last of them; 0: not known */
};

/* in: frames*channels interleaved float32 (silence when the card has no
 * input); out: the same, to be filled. */
typedef void (*backend_process_fn)(void *ctx, const float *in, float *out, uint32_t frames,
                                   const struct backend_time *time);

struct backend_config {
    const char *device;    /* NULL: default */
    uint32_t rate;         /* requested; the backend may settle on another */
    uint32_t period;
    uint32_t channels;
    const char *capture;   /* dummy: sine:HZ|silence|loopback|FILE.wav */
    int rt_priority;       /* SCHED_FIFO priority for the thread it runs; 0: none */
    bool no_connect;       /* jack: leave our ports unconnected */
    struct backend_fault *fault;  /* dummy: test-only fault injection (fault.h), or NULL */
};

/* What the backend really opened. */
struct backend_info {
    char device[128];
    uint32_t rate, period, channels;
    double input_latency, output_latency;  /* seconds */
};

struct backend_device {
    char name[128];
    char api[32];
    int max_input_channels, max_output_channels;
    double default_samplerate;
    double low_input_latency, low_output_latency, high_input_latency, high_output_latency;
    bool is_default_input, is_default_output;
};

struct backend_ops {
    const char *name;
    /* Open the card; on failure return a negative errno and write one line
     * saying why into err. */
    int (*open)(struct backend **out, const struct backend_config *config, backend_process_fn process,
                void *ctx, char *err, size_t err_len);
    int (*start)(struct backend *b);
    void (*stop)(struct backend *b);   /* returns once process will not be called again */
    void (*close)(struct backend *b);
    void (*info)(struct backend *b, struct backend_info *info);
    /* False once the card went away or failed on its own (checked by the
     * loop thread, which then closes it and retries). */
    bool (*alive)(struct backend *b);
    /* Up to max devices into out; returns how many there are. */
    int (*list_devices)(struct backend *b, struct backend_device *out, int max);
};

/* The backend named `name`, or NULL. */
const struct backend_ops *backend_find(const char *name);
/* Names of all backends this build knows, ", "-separated. */
const char *backend_names(void);

#endif
