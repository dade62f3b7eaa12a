/* soundcardd's settings: defaults, then the config file, then the flags.
 * Every flag is a config key of the same name (DESIGN.md §6). */
#ifndef SC_DAEMON_OPTIONS_H
#define SC_DAEMON_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OPTIONS_MAX_IDS 32

struct id_list {
    uint32_t n;
    uint32_t ids[OPTIONS_MAX_IDS];
};

struct limits {
    uint32_t clients;              /* connected clients */
    uint32_t streams_per_client;
    uint32_t streams_per_uid;      /* all of one user's clients together */
    uint32_t memory_per_uid_mib;   /* shared memory of one user's streams */
    uint32_t channels;             /* per stream and direction */
    uint32_t buffer_frames;        /* a stream's ring */
    uint32_t message_bytes;        /* longest request line, <= MSG_MAX_LINE */
    uint32_t outbound_bytes;       /* queued replies/events before a client is cut off */
    uint32_t hello_timeout_ms;     /* a client must say hello within this */
};

struct options {
    char backend[16];
    char device[128];              /* "": default */
    uint32_t rate, period, channels;
    char socket_path[108];         /* "": the default path rule */
    char socket_group[64];         /* "": the socket is the owner's alone */
    char config_path[4096];        /* the file read, "": none */
    char tap[4096];                /* "": no tap */
    char capture[4096];
    uint32_t rt_priority;          /* 0: no realtime scheduling */
    bool verbose;
    bool no_connect;               /* jack: leave the ports unconnected */
    char dummy_fault[32];          /* test-only: stall:MS|hang:MS|fail:MS on SIGUSR1 (fault.h) */
    struct limits limits;
    /* Who may connect.  Both empty: the daemon's own uid and root. */
    struct id_list allow_uids, allow_gids;
};

/* Fill *o from defaults, the config file (--config, else the default path
 * when that file exists) and argv.  Returns 0, 1 when --help/--version was
 * printed (exit 0), or -1 with a one-line reason naming the field in err. */
int options_parse(struct options *o, int argc, char **argv, char *err, size_t err_len);

/* The socket path to listen on: --socket, else the DESIGN.md §4 rule. */
void options_socket_path(const struct options *o, char *out, size_t len);

/* Call fn for every setting whose value differs between a and b; `live`
 * says whether a running daemon can take the new value. */
void options_each_change(const struct options *a, const struct options *b,
                         void (*fn)(const char *name, bool live, void *ctx), void *ctx);

#endif
