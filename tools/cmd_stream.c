/* soundcard tone, play and rec: one blocking float32 stream each, run by the
 * shared run_stream(): open, start, move frames block by block, drain, print
 * the stream's counters.  SIGINT/SIGTERM abort at the next block.  Play and
 * rec run at the file's rate; the library converts it to the card's.
 * (tone --callback hands over to cmd_callback.c.) */
#include <math.h>
#include <sndfile.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "tool.h"

#define BLOCK_FRAMES 256    /* default frames per read/write (or per callback): well under any sane latency */

/* A blocking float32 stream's job: io fills a block to play (returns frames,
 * 0 at the end) or consumes a block recorded (returns frames or <0).
 * run_stream() sets p's direction, channels and format from the fields here. */
struct job {
    sc_stream_params p;         /* name, samplerate, latency */
    bool output;
    int channels;
    uint64_t frames;            /* frames to move; UINT64_MAX: until io returns 0 */
    unsigned long block;        /* frames per read/write; 0: BLOCK_FRAMES */
    long (*io)(void *ctx, float *buf, unsigned long frames);
    void *ctx;
    char label[160];            /* the stats line starts with it */
};

/* sc_stream_read/write may move fewer frames than asked: finish the block. */
static int transfer(sc_stream *s, bool output, float *buf, unsigned long frames, int channels)
{
    while (frames > 0 && !g_signal) {
        long n = output ? sc_stream_write(s, buf, frames) : sc_stream_read(s, buf, frames);
        if (n < 0)
            return (int)n;
        buf += (size_t)n * (size_t)channels;
        frames -= (unsigned long)n;
    }
    return 0;
}

/* Start, move the frames block by block, drain, print the counters.
 * Returns the exit code; the caller aborts and closes. */
static int stream_body(sc_stream *s, const struct job *j, float *buf)
{
    const bool output = j->output;
    const int ch = j->channels;
    int err = sc_stream_start(s);
    if (err < 0)
        return runtime_error(err, "start stream");
    for (uint64_t done = 0; done < j->frames && !g_signal;) {
        unsigned long n = j->frames - done < j->block ? (unsigned long)(j->frames - done) : j->block;
        if (output) {
            long got = j->io(j->ctx, buf, n);
            if (got <= 0) {
                if (got < 0)
                    return EXIT_RUNTIME;    /* io said why */
                break;
            }
            n = (unsigned long)got;
        }
        if ((err = transfer(s, output, buf, n, ch)) < 0 && !g_signal)
            return runtime_error(err, output ? "write" : "read");
        if (!output && !g_signal && j->io(j->ctx, buf, n) < 0)
            return EXIT_RUNTIME;
        done += n;
    }
    if (!g_signal) {
        err = sc_stream_stop(s);        /* plays out what is queued, then stops */
        if (err < 0 && !g_signal)
            return runtime_error(err, "stop stream");
    }
    if (g_signal)                       /* during the loop or the drain */
        return 128 + g_signal;
    return print_stats(s, j->label, NULL);
}

static int run_stream(struct tool *t, struct job *j)
{
    const bool output = j->output;
    const int ch = j->channels;
    j->p.output_channels = output ? ch : 0;
    j->p.input_channels = output ? 0 : ch;
    j->p.format = SC_FLOAT32;
    if (!j->block)
        j->block = BLOCK_FRAMES;
    j->p.blocksize = j->block;
    j->p.callback = NULL;

    sc_stream *s;
    int err = sc_stream_open(t->client, &j->p, &s);
    if (err < 0)
        return open_error(err, &j->p);
    float *buf = malloc(sizeof *buf * j->block * (size_t)ch);
    catch_signals();
    int rc = buf ? stream_body(s, j, buf) : (fputs("soundcard: out of memory\n", stderr), EXIT_RUNTIME);
    if (rc != 0)
        sc_stream_abort(s);         /* stop now: nothing left worth playing */
    if ((err = sc_stream_close(s)) < 0 && rc == 0)
        rc = runtime_error(err, "close stream");
    free(buf);
    return rc;
}

/* Phase accumulates in double and wraps to [0, 1): continuous across blocks,
 * and sin() keeps its precision over hours. */
long sine_fill(void *ctx, float *buf, unsigned long frames)
{
    struct sine *s = ctx;
    for (unsigned long i = 0; i < frames; i++) {
        const float v = (float)(s->gain * sin(2.0 * M_PI * s->phase));
        for (int c = 0; c < s->channels; c++)
            *buf++ = v;
        s->phase += s->step;
        s->phase -= floor(s->phase);
    }
    return (long)frames;
}

struct sndfile_io {
    SNDFILE *file;
    const char *path;
    float gain;
    int channels;
    sf_count_t frames;          /* moved so far */
};

static long file_fill(void *ctx, float *buf, unsigned long frames)
{
    struct sndfile_io *io = ctx;
    sf_count_t n = sf_readf_float(io->file, buf, (sf_count_t)frames);
    if (n < 0 || (n == 0 && sf_error(io->file))) {
        fprintf(stderr, "soundcard: %s: %s\n", io->path, sf_strerror(io->file));
        return -1;
    }
    for (sf_count_t i = 0; io->gain != 1.0f && i < n * io->channels; i++)
        buf[i] *= io->gain;
    io->frames += n;
    return (long)n;
}

static long file_store(void *ctx, float *buf, unsigned long frames)
{
    struct sndfile_io *io = ctx;
    if (sf_writef_float(io->file, buf, (sf_count_t)frames) != (sf_count_t)frames) {
        fprintf(stderr, "soundcard: %s: %s\n", io->path, sf_strerror(io->file));
        return -1;
    }
    io->frames += (sf_count_t)frames;
    return (long)frames;
}

int cmd_tone(struct tool *t, int argc, char **argv)
{
    double freq = 440, seconds = 2, gain = 0.2, latency = 0.05;
    long long channels = 0, blocksize = BLOCK_FRAMES;
    bool callback = false;
    const char *name = "tone";
    const struct opt opts[] = {
        {"freq", OPT_NUM, &freq, 1e-3, 1e6}, {"seconds", OPT_NUM, &seconds, 0, MAX_SECONDS},
        {"gain", OPT_NUM, &gain, 0, MAX_GAIN}, {"channels", OPT_INT, &channels, 1, MAX_CHANNELS},
        {"latency", OPT_NUM, &latency, 0, 10}, {"name", OPT_STR, &name, 0, 0},
        {"callback", OPT_FLAG, &callback, 0, 0}, {"blocksize", OPT_INT, &blocksize, 1, MAX_BLOCKSIZE},
        {0}};
    sc_server_info si;
    int rc = parse_args(t, argc, argv, opts, NULL, 0);
    if (rc != ARGS_OK || (rc = tool_connect(t)) || (rc = card_info(t, &si)))
        return rc;
    if (freq >= si.samplerate / 2)
        return usage_error(t, "--freq %g Hz: must be below half the card's rate (%g Hz)", freq, si.samplerate);

    struct sine sine = {0, freq / si.samplerate, gain, channels ? (int)channels : si.channels};
    struct job j = {.output = true, .channels = sine.channels, .io = sine_fill, .ctx = &sine,
                    .frames = (uint64_t)llround(seconds * si.samplerate),
                    .block = (unsigned long)blocksize};
    sc_stream_params_init(&j.p);
    j.p.name = name;
    j.p.samplerate = 0;         /* the card's: no conversion, and step above is exact */
    j.p.latency = latency;
    snprintf(j.label, sizeof j.label, "tone %g Hz", freq);
    if (callback) {
        j.p.blocksize = j.block;
        return run_callback_tone(t, &j.p, &sine, j.frames, j.label);
    }
    return run_stream(t, &j);
}

int cmd_play(struct tool *t, int argc, char **argv)
{
    double latency = 0.1, gain = 1;
    const char *path;
    const struct opt opts[] = {{"latency", OPT_NUM, &latency, 0, 10},
                               {"gain", OPT_NUM, &gain, 0, MAX_GAIN}, {0}};
    int rc = parse_args(t, argc, argv, opts, &path, 1);
    if (rc != ARGS_OK)
        return rc;
    SF_INFO info = {0};
    SNDFILE *file = sf_open(path, SFM_READ, &info);
    if (!file) {
        fprintf(stderr, "soundcard: %s: %s\n", path, sf_strerror(NULL));
        return EXIT_RUNTIME;
    }
    struct sndfile_io io = {file, path, (float)gain, info.channels, 0};
    if (info.channels > MAX_CHANNELS) {
        fprintf(stderr, "soundcard: %s: %d channels, at most %d can be played\n", path, info.channels, MAX_CHANNELS);
        rc = EXIT_RUNTIME;
    } else if (!(rc = tool_connect(t))) {
        struct job j = {.output = true, .channels = info.channels, .frames = UINT64_MAX,
                        .io = file_fill, .ctx = &io};
        sc_stream_params_init(&j.p);
        j.p.name = "play";
        j.p.samplerate = info.samplerate;   /* the file's: the library converts it to the card's */
        j.p.latency = latency;
        snprintf(j.label, sizeof j.label, "play %s", path);
        rc = run_stream(t, &j);
    }
    sf_close(io.file);
    return rc;
}

/* The file format rec writes, from the name's extension; 0 if none fits. */
static int rec_format(const char *path, bool as_float)
{
    static const struct { const char *ext; int pcm, flt; } formats[] = {
        {".wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, SF_FORMAT_WAV | SF_FORMAT_FLOAT},
        {".flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 0},
        {".ogg", SF_FORMAT_OGG | SF_FORMAT_VORBIS, 0},
    };
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < ARRAY_LEN(formats); i++)
        if (strcasecmp(dot, formats[i].ext) == 0)
            return as_float ? formats[i].flt : formats[i].pcm;
    return 0;
}

int cmd_rec(struct tool *t, int argc, char **argv)
{
    double seconds = -1, latency = 0.1;
    long long channels = 0, rate = 0;
    bool as_float = false;
    const char *path;
    const struct opt opts[] = {
        {"seconds", OPT_NUM, &seconds, 0, MAX_SECONDS}, {"channels", OPT_INT, &channels, 1, MAX_CHANNELS},
        {"rate", OPT_INT, &rate, 1000, 768000}, {"latency", OPT_NUM, &latency, 0, 10},
        {"float", OPT_FLAG, &as_float, 0, 0}, {0}};
    sc_server_info si;
    int rc = parse_args(t, argc, argv, opts, &path, 1);
    if (rc != ARGS_OK)
        return rc;
    if (seconds < 0)
        return usage_error(t, "--seconds is required");
    SF_INFO info = {.format = rec_format(path, as_float)};
    if (!info.format)
        return usage_error(t, "%s: name it .wav, .flac or .ogg (--float: .wav only)", path);
    if ((rc = tool_connect(t)) || (rc = card_info(t, &si)))
        return rc;
    info.samplerate = rate ? (int)rate : (int)lround(si.samplerate);
    info.channels = channels ? (int)channels : si.channels;
    SNDFILE *file = sf_open(path, SFM_WRITE, &info);
    if (!file) {
        fprintf(stderr, "soundcard: %s: %s\n", path, sf_strerror(NULL));
        return EXIT_RUNTIME;
    }
    sf_command(file, SFC_SET_CLIPPING, NULL, SF_TRUE);  /* float > 1 → PCM must clip, not wrap */
    struct sndfile_io io = {file, path, 1, info.channels, 0};

    struct job j = {.output = false, .channels = info.channels, .io = file_store, .ctx = &io,
                    .frames = (uint64_t)llround(seconds * info.samplerate)};
    sc_stream_params_init(&j.p);
    j.p.name = "rec";
    j.p.samplerate = rate ? (double)rate : 0;
    j.p.latency = latency;
    snprintf(j.label, sizeof j.label, "rec %s", path);
    rc = run_stream(t, &j);
    if (sf_close(io.file) != 0 && rc == 0) {
        fprintf(stderr, "soundcard: %s: could not finish writing the file\n", path);
        rc = EXIT_RUNTIME;
    }
    if (rc != 0 && io.frames == 0)
        unlink(path);           /* a failed rec leaves no empty file behind */
    return rc;
}

