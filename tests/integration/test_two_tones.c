/* Two client processes play 440 Hz and 1000 Hz at once: the card's tapped
 * output holds both, at the level each asked for, with no gap, and neither
 * client underruns. */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "wavfile.h"

int main(void)
{
    struct daemon d;
    daemon_start(&d, (const char *const[]){ "--tap", "@/tap.wav", NULL }, 10);

    const char *tone_a[] = { harness_bin("soundcard"), "tone", "--freq", "440", "--seconds", "3",
                             "--gain", "0.25", "--latency", "0.1", "--name", "tone440", NULL };
    const char *tone_b[] = { harness_bin("soundcard"), "tone", "--freq", "1000", "--seconds", "3",
                             "--gain", "0.25", "--latency", "0.1", "--name", "tone1000", NULL };
    char out_a[256], out_b[256];
    snprintf(out_a, sizeof(out_a), "%s", daemon_path(&d, "a.out"));
    snprintf(out_b, sizeof(out_b), "%s", daemon_path(&d, "b.out"));
    pid_t a = spawn_client(&d, tone_a, out_a);
    pid_t b = spawn_client(&d, tone_b, out_b);
    CHECK(wait_child(a, 30) == 0, "tone 440 failed: %s", slurp(out_a));
    CHECK(wait_child(b, 30) == 0, "tone 1000 failed: %s", slurp(out_b));
    CHECK(strstr(slurp(out_a), "underruns=0 "), "tone 440 underran: %s", slurp(out_a));
    CHECK(strstr(slurp(out_b), "underruns=0 "), "tone 1000 underran: %s", slurp(out_b));
    CHECK(daemon_stop(&d, 10) == 0, "soundcardd did not stop cleanly");

    /* Both tones overlap except for their start skew: check the middle,
     * 0.5 s in from where the sound starts and ends. */
    const char *tap = daemon_path(&d, "tap.wav");
    int rate;
    long frames;
    double first, last;
    CHECK(wav_extent(tap, 0.01, &rate, &frames, &first, &last) == 0, "cannot read the tap %s", tap);
    CHECK(rate == 48000, "tap rate %d", rate);
    CHECK(last - first > 2.9 && last - first < 3.5, "sound lasted %.3f s, expected 3 s plus start skew",
          last - first);
    char from[32], to[32];
    snprintf(from, sizeof(from), "%.3f", first + 0.5);
    snprintf(to, sizeof(to), "%.3f", last - 0.5);
    for (int ch = 0; ch < 2; ch++) {
        char channel[8];
        snprintf(channel, sizeof(channel), "%d", ch);
        const char *check[] = { harness_bin("wavcheck"), tap, "--from", from, "--to", to,
                                "--block-ms", "50", "--channel", channel, "--expect", "440:0.25",
                                "--expect", "1000:0.25", "--tolerance", "0.05", "--absent", "700",
                                NULL };
        pid_t w = spawn_client(&d, check, NULL);
        CHECK(wait_child(w, 30) == 0, "wavcheck found the tap wrong on channel %d", ch);
    }
    return harness_finish("two_tones");
}
