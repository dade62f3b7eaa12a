/* Sending and receiving bytes with file descriptors attached (SCM_RIGHTS). */
#ifndef SC_PROTOCOL_FDPASS_H
#define SC_PROTOCOL_FDPASS_H

#include <stddef.h>
#include <sys/types.h>

#define FDPASS_MAX_FDS 4

/* sendmsg() `len` bytes of `buf` with `nfds` descriptors attached to them.
 * Non-blocking sockets may send fewer bytes; the fds go with the first byte
 * sent, so a caller resending the rest passes nfds = 0.  Returns bytes sent or
 * a negative errno. */
ssize_t fdpass_send(int sock, const void *buf, size_t len, const int *fds, int nfds);

/* recvmsg() into `buf`; received descriptors (made close-on-exec) are stored
 * in fds[*nfds …] up to max_fds, and *nfds grows by their number; any beyond
 * max_fds are closed.  Returns bytes received (0 at end of stream) or a
 * negative errno. */
ssize_t fdpass_recv(int sock, void *buf, size_t len, int *fds, int *nfds, int max_fds);

#endif
