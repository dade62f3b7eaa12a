/* The card as the loop thread sees it: opening the backend, watching it,
 * and when it goes away (a USB card unplugged, jackd killed) keeping every
 * client and stream while it retries, then resuming. */
#ifndef SC_DAEMON_CARD_H
#define SC_DAEMON_CARD_H

#include <stdbool.h>
#include <stddef.h>

struct server;
struct engine_cmd;

/* Open the backend the options name (s->card says what it opened); -1 with
 * a reason in err. */
int card_open(struct server *s, char *err, size_t err_len);
/* Start it, once the engine exists. */
int card_start(struct server *s, char *err, size_t err_len);
/* Start watching it (a timer on the loop). */
void card_watch(struct server *s);
/* Close what watches it (shutdown, after card_close). */
void card_unwatch(struct server *s);
/* Stop and close it (shutdown), waiting for a lost card's stop too. */
void card_close(struct server *s);
bool card_running(struct server *s);
/* A lost card is still being stopped on its own thread: the backend's
 * library (PortAudio is not thread-safe) is not to be called meanwhile. */
bool card_stopping(struct server *s);
/* "running" or "lost". */
const char *card_state(struct server *s);

/* Submit a command to the engine; while the card is away nothing runs the
 * RT cycle, so the loop thread applies it itself (once a lost card's thread
 * has stopped; till then the command waits in the queue).  0 or -EAGAIN. */
int card_submit(struct server *s, const struct engine_cmd *cmd, bool reserved);

#endif
