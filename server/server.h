// The SSH listener: one libssh event loop that accepts connections,
// authenticates certificates, and runs verbs for session channels.
#pragma once

#include <cstdint>
#include <memory>

#include "common/result.h"
#include "server/policy_state.h"

namespace jead {

class Server {
public:
	explicit Server(std::shared_ptr<const Policy> policy);
	~Server();

	Server(const Server&) = delete;
	Server& operator=(const Server&) = delete;

	// Binds the listen address and loads the host key.
	Result<void> listen();
	// The port the listener is bound to.
	std::uint16_t port() const;
	// Serves until SIGTERM or SIGINT; returns the process exit status.
	int run();

	// Defined in server.cc; named here so that connections can point back.
	struct Impl;

private:
	Result<void> recover_transcripts();

	std::unique_ptr<Impl> impl_;
};

}  // namespace jead
