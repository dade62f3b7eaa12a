/* The RT cycle alone: engine_process (daemon/engine.c) driven the way a
 * backend drives it, for 1, 16, 64 and 256 full-duplex stereo streams at
 * periods 64 and 256 on a stereo 48 kHz card, every stream's playback ring
 * kept full and its capture ring drained between cycles (the clients' part,
 * outside the timing).  Prints, per case, the cycle's median, 99th
 * percentile and worst time in ns and the median as a share of the period;
 * --json prints one JSON array instead.
 *
 * The streams are woken as libsoundcard's are, through the futex word
 * (every client marked as asleep before each cycle, so every wake-up is a
 * FUTEX_WAKE system call, with nobody to wake); --wakeup pipe writes their
 * wake-up pipes instead.
 *
 * --futex-cost prints instead what one of those FUTEX_WAKE calls costs
 * alone (a stream's word in its shared memory, nobody waiting): the floor
 * under the cycle's time per stream, which depends on the machine's kernel
 * entry far more than on this code.
 *
 *   engine_bench [--cycles N] [--wakeup futex|pipe] [--json] [--futex-cost] */
#include <fcntl.h>
#include <linux/futex.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "ring.h"
#include "shm.h"

#define RATE 48000
#define CHANNELS 2
#define MAX_STREAMS 256

struct bench_stream {
    struct engine_stream es;
    int memfd, wake[2];
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void no_notify(void *ctx)
{
    (void)ctx;
}

static void die(const char *what)
{
    fprintf(stderr, "engine_bench: %s\n", what);
    exit(1);
}

static bool wake_futex = true;  /* --wakeup pipe clears it */

/* Made as daemon/stream.c makes a stream's engine part. */
static void stream_init(struct bench_stream *b, uint32_t period)
{
    struct engine_stream *s = &b->es;
    if (shm_layout_compute(&s->layout, RATE, period, 4 * period < 1024 ? 1024 : 4 * period, CHANNELS, CHANNELS) ||
        shm_create(&s->layout, "engine-bench", &b->memfd, &s->shm) || pipe2(b->wake, O_NONBLOCK | O_CLOEXEC))
        die("cannot make a stream");
    s->play_ring = shm_play_ring(s->shm, &s->layout);
    s->capture_ring = shm_capture_ring(s->shm, &s->layout);
    s->wake_fd = b->wake[1];
    s->wake_futex = wake_futex;
    s->wake_frames = period;
    s->pending_stop = -1;
    atomic_init(&s->gain_bits, engine_bits_from_float(1.0f));
    for (size_t i = 0; i < (size_t)s->layout.capacity * CHANNELS; i++)
        s->play_ring[i] = (float)((i % 97) / 97.0 - 0.5) * 0.01f;
}

static void stream_free(struct bench_stream *b)
{
    shm_unmap(b->es.shm, &b->es.layout);
    close(b->memfd);
    close(b->wake[0]);
    close(b->wake[1]);
}

/* The clients' side, between cycles: playback ring full again, capture
 * ring emptied, wake-ups read. */
static void clients_keep_up(struct bench_stream *streams, uint32_t n)
{
    char buf[256];
    for (uint32_t i = 0; i < n; i++) {
        struct shm_header *h = streams[i].es.shm;
        ring_publish(&h->play.write_index, ring_load_read(&h->play) + streams[i].es.layout.capacity);
        ring_publish(&h->capture.read_index, ring_load_write(&h->capture));
        while (read(streams[i].wake[0], buf, sizeof(buf)) > 0)
            ;
        atomic_store(&h->wake.waiting, 1);
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

struct result {
    uint32_t streams, period;
    int64_t median, p99, worst;
};

static struct result run(uint32_t nstreams, uint32_t period, int cycles)
{
    struct engine_config config = { .rate = RATE, .period = period, .channels = CHANNELS,
                                    .max_streams = MAX_STREAMS, .notify = no_notify };
    struct engine *e = engine_create(&config);
    struct bench_stream *streams = calloc(nstreams, sizeof(*streams));
    float *in = calloc((size_t)period * CHANNELS, sizeof(float));
    float *out = calloc((size_t)period * CHANNELS, sizeof(float));
    int64_t *t = calloc((size_t)cycles, sizeof(*t));
    if (!e || !streams || !in || !out || !t)
        die("out of memory");
    for (uint32_t i = 0; i < nstreams; i++) {
        stream_init(&streams[i], period);
        struct engine_cmd add = { .type = ENGINE_CMD_ADD, .stream = &streams[i].es, .request_id = -1 };
        struct engine_cmd start = { .type = ENGINE_CMD_START, .stream = &streams[i].es, .request_id = -1 };
        if (engine_submit(e, &add, false) || engine_submit(e, &start, false))
            die("engine command queue full");
    }
    int64_t period_ns = (int64_t)period * 1000000000 / RATE, clock = now_ns();
    struct engine_note note;
    for (int c = -100; c < cycles; c++) {  /* 100 cycles of warm-up */
        clients_keep_up(streams, nstreams);
        struct backend_time bt = { .period_time_ns = clock, .adc_time_ns = clock - period_ns,
                                   .dac_time_ns = clock + period_ns };
        int64_t t0 = now_ns();
        engine_process(e, in, out, period, &bt);
        int64_t t1 = now_ns();
        if (c >= 0)
            t[c] = t1 - t0;
        clock += period_ns;
        while (engine_next_note(e, &note))
            ;
    }
    qsort(t, (size_t)cycles, sizeof(*t), cmp_i64);
    struct result r = { nstreams, period, t[cycles / 2], t[(size_t)cycles * 99 / 100], t[cycles - 1] };
    for (uint32_t i = 0; i < nstreams; i++)
        stream_free(&streams[i]);
    engine_destroy(e);
    free(streams), free(in), free(out), free(t);
    return r;
}

/* The median of 101 runs of 1000 calls, in ns per call. */
static int64_t futex_wake_cost(void)
{
    struct bench_stream b;
    stream_init(&b, 64);
    _Atomic uint32_t *word = &b.es.shm->wake.seq;
    int64_t per_call[101];
    for (int r = 0; r < 101; r++) {
        int64_t t0 = now_ns();
        for (int i = 0; i < 1000; i++)
            syscall(SYS_futex, word, FUTEX_WAKE, SHM_WAKE_MAX_WAITERS, NULL, NULL, 0);
        per_call[r] = (now_ns() - t0) / 1000;
    }
    stream_free(&b);
    qsort(per_call, 101, sizeof(*per_call), cmp_i64);
    return per_call[50];
}

int main(int argc, char **argv)
{
    int cycles = 20000, json = 0, futex_cost = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "--futex-cost") == 0)
            futex_cost = 1;
        else if (strcmp(argv[i], "--cycles") == 0 && i + 1 < argc)
            cycles = atoi(argv[++i]);
        else if (strcmp(argv[i], "--wakeup") == 0 && i + 1 < argc && strcmp(argv[i + 1], "pipe") == 0)
            wake_futex = false, i++;
        else if (strcmp(argv[i], "--wakeup") == 0 && i + 1 < argc && strcmp(argv[i + 1], "futex") == 0)
            i++;
        else
            die("usage: engine_bench [--cycles N] [--wakeup futex|pipe] [--json] [--futex-cost]");
    }
    if (futex_cost) {
        long long ns = (long long)futex_wake_cost();
        printf(json ? "{\"futex_wake_ns\":%lld}\n" : "one FUTEX_WAKE, nobody waiting: %lld ns\n", ns);
        return 0;
    }
    if (cycles < 100)
        die("--cycles must be at least 100");
    static const uint32_t counts[] = { 1, 16, 64, 256 }, periods[] = { 64, 256 };
    if (json)
        printf("[");
    else
        printf("%8s %7s %12s %12s %12s %10s\n", "streams", "period", "median ns", "p99 ns", "worst ns",
               "% period");
    int first = 1;
    for (size_t p = 0; p < 2; p++) {
        for (size_t k = 0; k < 4; k++) {
            struct result r = run(counts[k], periods[p], cycles);
            double share = 100.0 * (double)r.median / (1e9 * r.period / RATE);
            if (json)
                printf("%s{\"streams\":%u,\"period\":%u,\"median_ns\":%lld,\"p99_ns\":%lld,\"worst_ns\":%lld,"
                       "\"median_percent_of_period\":%.3f}",
                       first ? "" : ",", r.streams, r.period, (long long)r.median, (long long)r.p99,
                       (long long)r.worst, share);
            else
                printf("%8u %7u %12lld %12lld %12lld %9.2f%%\n", r.streams, r.period, (long long)r.median,
                       (long long)r.p99, (long long)r.worst, share);
            first = 0;
        }
    }
    if (json)
        printf("]\n");
    return 0;
}
