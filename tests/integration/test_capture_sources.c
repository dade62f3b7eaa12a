/* The dummy card's other inputs: a WAV file at another rate (converted with
 * libsoxr and looped) and loopback (what the card plays comes back one
 * period later), each recorded by a real client process. */
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* A mono 44.1 kHz float WAV: 1 s of `hz` at `amp`. */
static void make_sine_wav(const char *path, double hz, double amp)
{
    SF_INFO info = { .samplerate = 44100, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_FLOAT };
    SNDFILE *f = sf_open(path, SFM_WRITE, &info);
    static float buf[44100];
    for (int i = 0; i < 44100; i++)
        buf[i] = (float)(amp * sin(2 * M_PI * hz * i / 44100));
    sf_writef_float(f, buf, 44100);
    sf_close(f);
}

static void record_and_check(struct daemon *d, const char *seconds, const char *const *expect,
                             const char *what)
{
    char wav[256], out[256];
    snprintf(wav, sizeof(wav), "%s", daemon_path(d, "rec.wav"));
    snprintf(out, sizeof(out), "%s", daemon_path(d, "rec.out"));
    const char *rec[] = { harness_bin("soundcard"), "rec", wav, "--seconds", seconds, "--float", NULL };
    pid_t p = spawn_client(d, rec, out);
    CHECK(wait_child(p, 30) == 0, "%s: rec failed: %s", what, slurp(out));
    const char *check[24] = { harness_bin("wavcheck"), wav };
    int n = 2;
    for (const char *const *e = expect; *e && n < 22; e++)
        check[n++] = *e;
    pid_t w = spawn_client(d, check, NULL);
    CHECK(wait_child(w, 30) == 0, "%s: wavcheck failed on the recording", what);
}

static void test_file_source(void)
{
    struct daemon d;
    char source[128];
    snprintf(source, sizeof(source), "/tmp/sc-capture-%d.wav", (int)getpid());
    make_sine_wav(source, 500, 0.4);
    daemon_start(&d, (const char *const[]){ "--capture", source, NULL }, 10);
    /* 500 whole cycles a second: the 1 s file loops without a seam, so every
     * block of the recording must hold the tone at its level. */
    record_and_check(&d, "1.5",
                     (const char *const[]){ "--block-ms", "40", "--expect", "500:0.4",
                                            "--tolerance", "0.03", NULL },
                     "file source");
    CHECK(daemon_stop(&d, 10) == 0, "soundcardd did not stop cleanly");
    unlink(source);
}

static bool tone_playing(cJSON *stats, void *ctx)
{
    (void)ctx;
    return json_number(stats_find_stream(stats, "tone"), "frames") > 4800;
}

static void test_loopback(void)
{
    struct daemon d;
    daemon_start(&d, (const char *const[]){ "--capture", "loopback", NULL }, 10);
    char out[256];
    snprintf(out, sizeof(out), "%s", daemon_path(&d, "tone.out"));
    const char *tone[] = { harness_bin("soundcard"), "tone", "--freq", "880", "--seconds", "3",
                           "--gain", "0.3", "--latency", "0.1", NULL };
    pid_t t = spawn_client(&d, tone, out);
    /* Record once the tone plays, and check the recording's middle. */
    CHECK(wait_for_stats(d.socket_path, tone_playing, NULL, 10), "the tone did not start within 10 s");
    record_and_check(&d, "1",
                     (const char *const[]){ "--from", "0.1", "--to", "0.9", "--expect", "880:0.3",
                                            "--tolerance", "0.03", NULL },
                     "loopback");
    CHECK(wait_child(t, 30) == 0, "tone failed: %s", slurp(out));
    CHECK(daemon_stop(&d, 10) == 0, "soundcardd did not stop cleanly");
}

int main(void)
{
    test_file_source();
    test_loopback();
    return harness_finish("capture_sources");
}
