/* The protocol's operations, each acting on a validated request, and the
 * handling of the engine's notes (the replies that wait for the RT thread). */
#ifndef SC_DAEMON_OPS_H
#define SC_DAEMON_OPS_H

#include <stdint.h>

#include "engine.h"
#include "message.h"

struct session;
struct server;
struct stream;

void ops_dispatch(struct session *s, const struct msg_request *req);
void ops_engine_note(struct server *server, const struct engine_note *note);
/* Take a stream out of the engine; `request_id` >= 0 gets its reply when the
 * RT thread has let go of it. */
void ops_remove_stream(struct server *server, struct stream *st, int64_t request_id);

#endif
