/* Who may use the daemon: the peer's credentials (SO_PEERCRED, and its
 * supplementary groups from SO_PEERGROUPS) against the allow lists. */
#ifndef SC_DAEMON_ACCESS_H
#define SC_DAEMON_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "options.h"

#define ACCESS_MAX_GROUPS 64

struct peer {
    struct ucred cred;          /* uid/gid (uid_t)-1 when the kernel would not say */
    uint32_t ngroups;           /* supplementary groups, as many as fit */
    gid_t groups[ACCESS_MAX_GROUPS];
};

/* The credentials of the process at the other end of a Unix socket. */
void access_read_peer(int fd, struct peer *peer);

/* Whether the allow lists (or, when both are empty, "this daemon's own uid
 * and root") admit the peer; when not, one line saying why. */
bool access_admits(const struct options *o, const struct peer *peer, char *why, size_t why_len);

#endif
