/* --tap FILE.wav: everything the card plays, recorded to a float WAV.  The RT
 * thread only copies into an in-process ring (tap_push); a thread of the
 * tap's own writes the file, so no file I/O happens in the RT path. */
#ifndef SC_DAEMON_TAP_H
#define SC_DAEMON_TAP_H

#include <stddef.h>
#include <stdint.h>

struct tap;

/* Returns NULL and writes why into err when the file cannot be created. */
struct tap *tap_open(const char *path, uint32_t rate, uint32_t channels, char *err, size_t err_len);
/* RT thread: queue frames; counts them as dropped when the writer is behind. */
void tap_push(struct tap *t, const float *frames, uint32_t count);
/* Writes what is queued, finishes the file and frees it. */
void tap_close(struct tap *t);
uint64_t tap_dropped(struct tap *t);

#endif
