/* A recorder gets the card's input (--capture sine:700) back at the right
 * frequency and level, exactly as many frames as it asked for. */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "wavfile.h"

int main(void)
{
    struct daemon d;
    daemon_start(&d, (const char *const[]){ "--capture", "sine:700", NULL }, 10);
    char wav[256], out[256];
    snprintf(wav, sizeof(wav), "%s", daemon_path(&d, "rec.wav"));
    snprintf(out, sizeof(out), "%s", daemon_path(&d, "rec.out"));
    const char *rec[] = { harness_bin("soundcard"), "rec", wav, "--seconds", "1.5", "--float", NULL };
    pid_t p = spawn_client(&d, rec, out);
    CHECK(wait_child(p, 30) == 0, "rec failed: %s", slurp(out));
    CHECK(strstr(slurp(out), "overruns=0 "), "the recorder overran: %s", slurp(out));
    CHECK(daemon_stop(&d, 10) == 0, "soundcardd did not stop cleanly");

    int rate;
    long frames;
    double first, last;
    CHECK(wav_extent(wav, 0.01, &rate, &frames, &first, &last) == 0, "cannot read %s", wav);
    CHECK(rate == 48000 && frames == 72000, "recorded %ld frames at %d Hz, expected 72000 at 48000",
          frames, rate);
    CHECK(first >= 0 && first < 0.01, "the recording starts with %.3f s of silence", first);
    const char *check[] = { harness_bin("wavcheck"), wav, "--block-ms", "50", "--expect", "700:0.5",
                            "--tolerance", "0.02", "--absent", "440", "--absent", "1000", NULL };
    pid_t w = spawn_client(&d, check, NULL);
    CHECK(wait_child(w, 30) == 0, "wavcheck: the recording is not a clean 700 Hz at 0.5");
    return harness_finish("record");
}
