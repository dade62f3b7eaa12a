/* What the dummy card's input delivers (--capture): a sine, silence, the
 * card's own output one period later (loopback), or a WAV file, looped. */
#ifndef SC_DAEMON_CAPTURE_SOURCE_H
#define SC_DAEMON_CAPTURE_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#define CAPTURE_SINE_AMPLITUDE 0.5

struct capture_source;

/* spec: "sine:HZ", "silence", "loopback" or a sound file path (converted to
 * the card's rate with libsoxr when it differs).  NULL and a reason in err
 * when the spec is bad. */
struct capture_source *capture_source_open(const char *spec, uint32_t rate, uint32_t channels,
                                           uint32_t period, char *err, size_t err_len);
void capture_source_close(struct capture_source *src);

/* RT thread: fill `frames` frames of input. */
void capture_source_fill(struct capture_source *src, float *in, uint32_t frames);
/* RT thread: what the card just played, for loopback. */
void capture_source_played(struct capture_source *src, const float *out, uint32_t frames);

#endif
