// The listening TCP socket. jead creates it itself, instead of letting
// libssh's ssh_bind_listen do it, because libssh 0.10 passes a fixed
// backlog of 10 to listen(2), and a burst of logins (say, every backup job
// of a fleet at once) then meets dropped SYNs and slow client retries.
#pragma once

#include "common/result.h"
#include "server/config.h"

namespace jead {

// Binds `address` and listens with `backlog`, which the kernel caps at
// net.core.somaxconn. The socket is non-blocking and close-on-exec, with
// SO_REUSEADDR; an IPv6 socket takes IPv6 only. Returns the descriptor,
// which the caller owns.
Result<int> open_listener(const ListenAddress& address, int backlog);

// Accepts one pending connection as a non-blocking, close-on-exec socket.
// Returns -1 when none is pending or the accept failed; a failure other
// than "nothing pending" is logged.
int accept_connection_fd(int listen_fd);

}  // namespace jead
