/* wavcheck: check what a recorded WAV holds (test helper, not installed).
 *
 *   wavcheck FILE [--from S] [--to S] [--block-ms MS] [--channel N]
 *            --expect HZ:AMP [--expect ...] [--tolerance FRAC] [--absent HZ ...]
 *   wavcheck FILE --info        rate, channels, frames, duration, peak
 *   wavcheck FILE --onset       time of the first and last sample with |x| > 0.01
 *
 * The window [from, to] (seconds; negative counts from the end) is cut into
 * blocks; in EVERY whole block each expected tone must read its amplitude
 * within ±tolerance and each absent tone below 0.01, so a dropout anywhere
 * fails.  Every sample of every channel in the window must be finite and in
 * [-1, 1].  Exit 0 pass, 1 fail, 2 usage or I/O error. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TONES 16
#define ABSENT_MAX 0.01
#define ONSET_LEVEL 0.01

struct tone { double hz, amp, min, max, sum; };

static const char usage_text[] =
    "usage: wavcheck FILE [--from S] [--to S] [--block-ms MS] [--channel N (0-based)]\n"
    "                --expect HZ:AMP [...] [--tolerance FRAC] [--absent HZ ...]\n"
    "       wavcheck FILE --info | --onset [--from S] [--to S] [--channel N]\n";

static int usage(const char *why, const char *arg)
{
    fprintf(stderr, "wavcheck: %s%s%s\n%s", why, arg ? ": " : "", arg ? arg : "", usage_text);
    return 2;
}

/* strtod that must consume s up to the character stop (atof checks nothing) */
static int num(const char *s, double *out, char stop)
{
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    return end != s && *end == stop && errno == 0 && isfinite(*out);
}

/* Amplitude of the hz component of x[0..n) through a Hann window.
 * Goertzel at an arbitrary (non-bin) frequency gives |DTFT(hz)|; a sine of
 * amplitude A reads A * sum(w) / 2, so scaling by 2 / sum(w) reads A. */
static double goertzel(const float *x, const double *w, double wsum, size_t n,
                       double hz, double rate)
{
    double c = 2.0 * cos(2.0 * M_PI * hz / rate), s1 = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
        double s0 = w[i] * x[i] + c * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    double p = s1 * s1 + s2 * s2 - c * s1 * s2;
    return 2.0 * sqrt(p > 0 ? p : 0) / wsum;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"from", required_argument, 0, 'f'}, {"to", required_argument, 0, 't'},
        {"block-ms", required_argument, 0, 'b'}, {"expect", required_argument, 0, 'e'},
        {"tolerance", required_argument, 0, 'T'}, {"absent", required_argument, 0, 'a'},
        {"channel", required_argument, 0, 'c'}, {"info", no_argument, 0, 'i'},
        {"onset", no_argument, 0, 'o'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    struct tone expect[MAX_TONES], absent[MAX_TONES];
    int nexpect = 0, nabsent = 0, info = 0, onset = 0;
    double from = 0, to = 0, block_ms = 50, tol = 0.1, v;
    int to_given = 0;
    long channel = 0;
    char *colon, *end;

    opterr = 0;   /* usage() says what was wrong, once */
    for (int o; (o = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        switch (o) {
        case 'f': if (!num(optarg, &from, '\0')) return usage("bad --from", optarg); break;
        case 't': if (!num(optarg, &to, '\0')) return usage("bad --to", optarg); to_given = 1; break;
        case 'b':
            if (!num(optarg, &block_ms, '\0') || block_ms < 1 || block_ms > 10000)
                return usage("bad --block-ms (1..10000)", optarg);
            break;
        case 'T':
            if (!num(optarg, &tol, '\0') || tol <= 0 || tol >= 1)
                return usage("bad --tolerance (0 < FRAC < 1)", optarg);
            break;
        case 'e':
            colon = strchr(optarg, ':');
            if (nexpect == MAX_TONES || !colon || !num(optarg, &v, ':') || v <= 0 ||
                !num(colon + 1, &expect[nexpect].amp, '\0') || expect[nexpect].amp <= 0)
                return usage("bad --expect (HZ:AMP, both > 0)", optarg);
            expect[nexpect++].hz = v;
            break;
        case 'a':
            if (nabsent == MAX_TONES || !num(optarg, &v, '\0') || v <= 0)
                return usage("bad --absent (HZ > 0)", optarg);
            absent[nabsent++].hz = v;
            break;
        case 'c':
            errno = 0;
            channel = strtol(optarg, &end, 10);
            if (end == optarg || *end || errno || channel < 0)
                return usage("bad --channel", optarg);
            break;
        case 'i': info = 1; break;
        case 'o': onset = 1; break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: return usage("bad option or missing value", argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return usage("need exactly one FILE", NULL);
    if (!info && !onset && nexpect + nabsent == 0)
        return usage("nothing to check: give --expect, --absent, --info or --onset", NULL);

    const char *path = argv[optind];
    SF_INFO sfi = {0};
    SNDFILE *sf = sf_open(path, SFM_READ, &sfi);
    if (!sf) {
        fprintf(stderr, "wavcheck: %s: %s\n", path, sf_strerror(NULL));
        return 2;
    }
    const double rate = sfi.samplerate;
    const int nch = sfi.channels;
    if (channel >= nch)
        return usage("--channel beyond the file's channels", NULL);

    /* Window in frames; negative times count from the end. */
    const double dur = (double)sfi.frames / rate;
    if (from < 0) from += dur;
    if (!to_given) to = dur;
    else if (to < 0) to += dur;
    sf_count_t f0 = llround(from * rate), f1 = llround(to * rate);
    if (f1 > sfi.frames) f1 = sfi.frames;
    if (f0 < 0 || f0 >= f1) {
        fprintf(stderr, "wavcheck: %s: empty window [%.3f, %.3f] s (file is %.3f s)\n",
                path, from, to, dur);
        return 2;
    }
    for (int i = 0; i < nexpect + nabsent; i++) {
        double hz = i < nexpect ? expect[i].hz : absent[i - nexpect].hz;
        if (hz >= rate / 2) {
            fprintf(stderr, "wavcheck: %g Hz is not below Nyquist (%g Hz)\n", hz, rate / 2);
            return 2;
        }
    }

    const size_t blk = (size_t)llround(block_ms * rate / 1000.0);
    float *buf = malloc(blk * nch * sizeof *buf), *mono = malloc(blk * sizeof *mono);
    double *win = malloc(blk * sizeof *win), wsum = 0;
    if (!buf || !mono || !win || blk < 16) {   /* exiting: the OS frees what was allocated */
        fprintf(stderr, "wavcheck: block of %zu frames: %s\n", blk, blk < 16 ? "too short" : "out of memory");
        return 2;
    }
    for (size_t i = 0; i < blk; i++)
        wsum += win[i] = 0.5 - 0.5 * cos(2.0 * M_PI * (double)i / (double)(blk - 1));
    for (int i = 0; i < MAX_TONES; i++) {
        expect[i].min = absent[i].min = INFINITY;
        expect[i].max = absent[i].max = expect[i].sum = absent[i].sum = 0;
    }

    /* Stream the window block by block: files from long runs can be big. */
    sf_count_t pos = f0, first = -1, last = -1, bad_at = -1;
    double peak = 0, bad_val = 0;
    long blocks = 0, fail_block = -1;
    char fail_msg[256] = "";
    if (sf_seek(sf, f0, SEEK_SET) < 0) {
        fprintf(stderr, "wavcheck: %s: seek: %s\n", path, sf_strerror(sf));
        return 2;
    }
    while (pos < f1) {
        sf_count_t want = f1 - pos < (sf_count_t)blk ? f1 - pos : (sf_count_t)blk;
        sf_count_t got = sf_readf_float(sf, buf, want);
        if (got != want) {
            fprintf(stderr, "wavcheck: %s: short read at frame %lld\n", path, (long long)pos);
            return 2;
        }
        for (sf_count_t i = 0; i < got; i++) {
            for (int c = 0; c < nch; c++) {
                double x = buf[i * nch + c];
                if ((!isfinite(x) || fabs(x) > 1.0) && bad_at < 0)
                    bad_at = pos + i, bad_val = x;
                if (fabs(x) > peak)
                    peak = fabs(x);
            }
            mono[i] = buf[i * nch + channel];
            if (fabs(mono[i]) > ONSET_LEVEL) {
                if (first < 0) first = pos + i;
                last = pos + i;
            }
        }
        /* Only whole blocks are analysed: a short tail has too little
         * resolution to read a tone's amplitude fairly. */
        if (got == (sf_count_t)blk && !info && !onset) {
            double a[2 * MAX_TONES];
            int ok = 1;
            for (int i = 0; i < nexpect + nabsent; i++) {
                struct tone *t = i < nexpect ? &expect[i] : &absent[i - nexpect];
                a[i] = goertzel(mono, win, wsum, blk, t->hz, rate);
                ok &= i < nexpect ? fabs(a[i] - t->amp) <= tol * t->amp : a[i] < ABSENT_MAX;
                if (a[i] < t->min) t->min = a[i];
                if (a[i] > t->max) t->max = a[i];
                t->sum += a[i];
            }
            if (!ok && fail_block < 0) {   /* report the first failing block in full */
                fail_block = blocks;
                for (int i = 0, n = 0; i < nexpect + nabsent && n >= 0 && n < (int)sizeof fail_msg; i++)
                    n += snprintf(fail_msg + n, sizeof fail_msg - (size_t)n, " %g Hz=%.4f",
                                  i < nexpect ? expect[i].hz : absent[i - nexpect].hz, a[i]);
            }
            blocks++;
        }
        pos += got;
    }
    sf_close(sf);
    free(buf), free(mono), free(win);

    if (info) {
        printf("rate=%d channels=%d frames=%lld duration=%.6f peak=%.6f\n",
               sfi.samplerate, nch, (long long)sfi.frames, dur, peak);
        return 0;
    }
    if (onset) {
        if (first < 0) {
            printf("no sample above %g in [%.3f, %.3f] s\n", ONSET_LEVEL, (double)f0 / rate, (double)f1 / rate);
            return 1;
        }
        printf("first=%.6f last=%.6f\n", (double)first / rate, (double)last / rate);
        return 0;
    }

    int fail = 0;
    if (blocks == 0) {
        fprintf(stderr, "wavcheck: window [%.3f, %.3f] s is shorter than one %g ms block\n",
                (double)f0 / rate, (double)f1 / rate, block_ms);
        return 2;
    }
    for (int i = 0; i < nexpect; i++)
        printf("%g Hz: min=%.4f mean=%.4f max=%.4f (expect %g ±%g%%)\n", expect[i].hz,
               expect[i].min, expect[i].sum / blocks, expect[i].max, expect[i].amp, tol * 100);
    for (int i = 0; i < nabsent; i++)
        printf("%g Hz: max=%.4f (expect < %g)\n", absent[i].hz, absent[i].max, ABSENT_MAX);
    printf("blocks=%ld of %g ms in [%.3f, %.3f] s, channel %ld\n", blocks, block_ms,
           (double)f0 / rate, (double)f1 / rate, channel);
    if (fail_block >= 0) {
        double t0 = (double)f0 / rate + (double)fail_block * (double)blk / rate;
        printf("FAIL: block %ld at %.3f s:%s\n", fail_block, t0, fail_msg);
        fail = 1;
    }
    if (bad_at >= 0) {
        printf("FAIL: sample %g at %.6f s is not finite or outside [-1, 1]\n",
               bad_val, (double)bad_at / rate);
        fail = 1;
    }
    if (!fail)
        printf("PASS\n");
    return fail;
}
