#include "access.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

void access_read_peer(int fd, struct peer *peer)
{
    memset(peer, 0, sizeof(*peer));
    socklen_t len = sizeof(peer->cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer->cred, &len) < 0)
        peer->cred = (struct ucred){ .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
    /* Linux >= 4.13.  ERANGE (more groups than fit) keeps what fit: an
     * allow-listed group past the 64th is not seen, which only refuses. */
    len = sizeof(peer->groups);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, peer->groups, &len) == 0)
        peer->ngroups = len / sizeof(gid_t);
}

static bool listed(const struct id_list *list, uint32_t id)
{
    for (uint32_t i = 0; i < list->n; i++)
        if (list->ids[i] == id)
            return true;
    return false;
}

bool access_admits(const struct options *o, const struct peer *peer, char *why, size_t why_len)
{
    uid_t uid = peer->cred.uid;
    if (uid == (uid_t)-1) {
        snprintf(why, why_len, "the peer's credentials are unknown");
        return false;
    }
    if (uid == 0 || uid == geteuid())
        return true;
    if (o->allow_uids.n == 0 && o->allow_gids.n == 0) {
        snprintf(why, why_len, "uid %u is not this daemon's user (uid %u), and no allow-uid/allow-gid is set",
                 (unsigned)uid, (unsigned)geteuid());
        return false;
    }
    if (listed(&o->allow_uids, uid) || listed(&o->allow_gids, peer->cred.gid))
        return true;
    for (uint32_t i = 0; i < peer->ngroups; i++)
        if (listed(&o->allow_gids, peer->groups[i]))
            return true;
    snprintf(why, why_len, "uid %u (gid %u) is not in allow-uid and none of its groups is in allow-gid",
             (unsigned)uid, (unsigned)peer->cred.gid);
    return false;
}
