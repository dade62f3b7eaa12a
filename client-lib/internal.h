/* What the parts of libsoundcard share inside the library. */
#ifndef SC_CLIENT_INTERNAL_H
#define SC_CLIENT_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "fdpass.h"
#include "message.h"
#include "shm.h"
#include "soundcard/soundcard.h"

struct sc_client {
    int fd;
    pthread_mutex_t lock;      /* one request/reply exchange at a time */
    int64_t next_id;
    bool broken;               /* the connection failed: every call fails now */
    struct msg_framer *framer;
    int fds[FDPASS_MAX_FDS * 2];
    int nfds;                  /* descriptors received, not yet claimed */
    uint32_t id, rate, period, channels;
    char socket_path[108];
};

/* Record what went wrong in this thread, return err (for `return fail(…)`). */
int sc__fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Send `request` (consumed; "id" is added) and wait for its reply.  On an ok
 * reply returns 0 with *reply set (caller deletes) and, if fds is not NULL,
 * up to *nfds descriptors received with it.  Error replies return their SC_E…
 * code with the daemon's message recorded; *reply is still set when the
 * caller wants it (raw != NULL). */
int sc__call(sc_client *c, cJSON *request, cJSON **reply, int *fds, int *nfds, char **raw);

int sc__error_from_code(const char *code);

#endif
