/* soundcardd as a systemd service: sd_notify readiness, status, watchdog
 * and stopping, and SIGHUP re-reading the configuration.  Outside systemd
 * (no NOTIFY_SOCKET) the notifications cost nothing. */
#ifndef SC_DAEMON_SERVICE_H
#define SC_DAEMON_SERVICE_H

struct server;

/* The card is open and the socket listens: READY=1, then STATUS= and, when
 * WatchdogSec is set, WATCHDOG=1 while the RT thread makes progress. */
void service_ready(struct server *s);
/* STOPPING=1; closes the service's handles. */
void service_stopping(struct server *s);

#endif
