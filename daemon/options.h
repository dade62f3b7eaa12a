/* soundcardd's settings: defaults, then the config file, then the flags. */
#ifndef SC_DAEMON_OPTIONS_H
#define SC_DAEMON_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct limits {
    uint32_t clients;              /* connected clients */
    uint32_t streams_per_client;
    uint32_t message_bytes;        /* longest request line, <= MSG_MAX_LINE */
    uint32_t outbound_bytes;       /* queued replies/events before a client is cut off */
    uint32_t hello_timeout_ms;     /* a client must say hello within this */
};

struct options {
    char backend[16];
    char device[128];              /* "": default */
    uint32_t rate, period, channels;
    char socket_path[108];         /* "": the default path rule */
    char config_path[4096];        /* "": none */
    char tap[4096];                /* "": no tap */
    char capture[4096];
    int rt_priority;
    bool verbose;
    bool no_connect;               /* jack: leave the ports unconnected */
    struct limits limits;
};

/* Fill *o from defaults, the config file (--config) and argv.  Returns 0, 1
 * when --help/--version was printed (exit 0), or -1 with a one-line reason in
 * err (exit non-zero). */
int options_parse(struct options *o, int argc, char **argv, char *err, size_t err_len);

/* The socket path to listen on: --socket, else the DESIGN.md §4 rule. */
void options_socket_path(const struct options *o, char *out, size_t len);

#endif
