/* What the ALSA tests share (rig.c): a daemon whose socket the ALSA
 * programs' private ~/.asoundrc names, programs run with deadlines, the
 * daemon's view of a stream, and wavcheck. */
#ifndef SC_TEST_ALSA_RIG_H
#define SC_TEST_ALSA_RIG_H

#include <stdbool.h>
#include <sys/types.h>

#include "attempt.h"
#include "audio_check.h"
#include "harness.h"

#define RATE 48000          /* the test card's */
#define CARD_PERIOD 256

/* A check of timing or of the sound (underruns, gaps, durations) that holds
 * at full speed.  Under ThreadSanitizer (SC_SANITIZED=thread, several times
 * slower) a failed one is printed as a note and not counted: there the
 * tests are for races, and every program must still succeed.  A stall of
 * the machine can fail it: it counts as attempt.h's VERIFY_STALLABLE does. */
extern bool rig_slow;
#define AUDIO_CHECK(cond, ...)                                                               \
    do {                                                                                     \
        bool audio_ok_ = (cond);                                                             \
        if (!audio_ok_ && rig_slow) {                                                        \
            printf("note: relaxed under ThreadSanitizer: " __VA_ARGS__);                    \
            printf("\n");                                                                    \
        } else if (!audio_ok_) {                                                             \
            rig_sound_failed(__FILE__, __LINE__, #cond, __VA_ARGS__);                        \
        }                                                                                    \
    } while (0)
/* The same, counted under ThreadSanitizer too. */
#define SOUND_CHECK(cond, ...)                                                               \
    do {                                                                                     \
        if (!(cond))                                                                         \
            rig_sound_failed(__FILE__, __LINE__, #cond, __VA_ARGS__);                        \
    } while (0)
void rig_sound_failed(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* soundcardd's arguments: 48000 Hz, period 256, --tap @/tap.wav,
 * --capture sine:700. */
extern const char *const rig_daemon_args[];
/* HOME of the ALSA programs (the daemon's temp dir, or one of our own);
 * path_in() names a file in it. */
extern char dir[128];
const char *path_in(const char *name);

/* A program from $PATH as an absolute path (the harness execs). */
const char *which(const char *prog);
/* Write dir/.asoundrc: include $SC_ALSA_CONF (the build tree's snippet),
 * point pcm.soundcard and ctl.soundcard at socket_path (unless NULL), then
 * `extra`.  Sets HOME, XDG_CONFIG_HOME and XDG_RUNTIME_DIR to dir and
 * unsets ALSA_CONFIG_PATH and SOUNDCARD_SOCKET, so nothing else reaches
 * the programs. */
void asoundrc(const char *socket_path, const char *extra);
/* Start soundcardd (rig_daemon_args) and write the ~/.asoundrc for it. */
void up(struct daemon *d);

/* Start argv with stdout and stderr to dir/NAME.out and NAME.err (aplay,
 * arecord and amixer get $SC_ALSA_PRELOAD and the plugin as LD_PRELOAD, pa_client
 * no leak check: sanitizer builds).
 * Prints the command. */
pid_t start(const char *name, const char *const *argv);
/* What NAME.out or NAME.err holds. */
const char *output_of(const char *name, const char *ext);
/* start(), wait at most `timeout` s; exit status (stdout printed, and
 * stderr on failure). */
int run(const char *name, const char *const *argv, double timeout);
/* sox -D ARGS... (a test file); exits the test if sox fails. */
void sox(const char *const *args);
/* wavcheck FILE ARGS...: passed? */
bool wavcheck(const char *file, const char *const *args);
/* The file's channel in [from, to] s, every 50 ms block: each "HZ:AMP"
 * present at its level, each "-HZ" absent. */
bool tone_in(const char *file, int channel, double from, double to, const char *const *tones);

/* While pid runs: whether the daemon listed stream `stream` running, and
 * the most underruns and frames it showed.  Returns pid's exit status (-1
 * if it had to be killed after `timeout` s). */
struct watch {
    bool seen;
    double underruns, frames;
};
int watch_child(struct daemon *d, pid_t pid, const char *stream, double timeout, struct watch *w);

/* KEY=value from the first line of `text` that starts with `prefix` (NAN if
 * absent). */
double field(const char *text, const char *prefix, const char *key);
/* The stretches of sound in a file (any channel above 0.02, split by
 * gap_s of quiet), printed. */
int segments(const char *tap, double gap_s, struct segment *seg, int max);
/* The daemon's tap. */
const char *tap_of(struct daemon *d);

#endif
