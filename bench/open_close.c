/* The stream.open + stream.close round trip through libsoundcard, against a
 * running soundcardd ($SOUNDCARD_SOCKET): N times sc_stream_open (a stereo
 * output stream: the memfd and pipe come back over the socket and are
 * mapped) then sc_stream_close, timed together.  Prints the median, 90th
 * percentile and worst in microseconds (--json: one object).
 *
 *   open_close [--count N] [--json] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <soundcard/soundcard.h>

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int count = 1000, json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc)
            count = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: open_close [--count N] [--json]\n");
            return 2;
        }
    }
    if (count < 10)
        count = 10;
    sc_client *c;
    int err = sc_client_open(&c, NULL, "open_close");
    if (err < 0) {
        fprintf(stderr, "open_close: %s (%s)\n", sc_strerror(err), sc_last_error());
        return 1;
    }
    sc_stream_params p;
    sc_stream_params_init(&p);
    p.name = "open_close";
    p.output_channels = 2;
    double *t = calloc((size_t)count, sizeof(double));
    for (int i = -20; i < count; i++) {  /* 20 of warm-up */
        sc_stream *s;
        double t0 = now_us();
        if ((err = sc_stream_open(c, &p, &s)) < 0 || (err = sc_stream_close(s)) < 0) {
            fprintf(stderr, "open_close: %s (%s)\n", sc_strerror(err), sc_last_error());
            return 1;
        }
        if (i >= 0)
            t[i] = now_us() - t0;
    }
    qsort(t, (size_t)count, sizeof(double), cmp_double);
    double median = t[count / 2], p90 = t[count * 9 / 10], worst = t[count - 1];
    if (json)
        printf("{\"count\":%d,\"median_us\":%.1f,\"p90_us\":%.1f,\"worst_us\":%.1f}\n", count, median, p90, worst);
    else
        printf("stream.open + stream.close, %d times: median %.1f us, 90%% %.1f us, worst %.1f us\n", count, median,
               p90, worst);
    free(t);
    sc_client_close(c);
    return 0;
}
