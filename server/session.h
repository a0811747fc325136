// Authenticated connections and their session channels: the per-channel
// state machine that records, decides, runs a verb and relays its output.
#pragma once

#include <libssh/callbacks.h>
#include <libssh/libssh.h>

#include <chrono>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "server/auth.h"
#include "server/process.h"
#include "server/server.h"
#include "transcripts/writer.h"

namespace jead {

struct Connection;

// One session channel. Its life: open -> (exec request) pending -> running
// -> finished. After its connection is gone a running channel is drained:
// the program is stopped and its end recorded.
struct CommandChannel {
	enum class State { open, pending, running, finished };
	enum class Stream { stdout_, stderr_ };

	struct FdWatch {
		CommandChannel* channel = nullptr;
		Stream stream = Stream::stdout_;
	};

	Connection* connection = nullptr;   // null once drained
	ssh_channel channel = nullptr;      // null once the client is gone
	ssh_channel_callbacks_struct callbacks{};
	int index = 0;
	State state = State::open;
	bool pty = false;
	std::string mode;                   // "exec" or "shell"
	std::string command_line;
	std::shared_ptr<const Policy> policy;

	std::unique_ptr<TranscriptWriter> transcript;
	bool transcript_failed = false;

	SpawnedProcess process;
	FdWatch stdout_watch;
	FdWatch stderr_watch;
	bool stdout_open = false;
	bool stderr_open = false;
	bool stdout_registered = false;
	bool stderr_registered = false;
	bool pidfd_registered = false;
	bool paused = false;                // the client's window is full
	bool exited = false;
	int wait_status = 0;
	std::chrono::seconds timeout{0};
	std::uint64_t max_output_bytes = 0;
	std::uint64_t bytes_out = 0;
	std::chrono::steady_clock::time_point started_at;
	std::chrono::steady_clock::time_point exited_at;
	std::chrono::steady_clock::time_point term_sent_at;
	bool term_sent = false;
	bool kill_sent = false;
	std::string stop_note;              // why jead stopped the program, if it did
	int stop_exit_status = 0;           // the status sent to the client then
	std::string end_reason = "exit";
};

struct Connection {
	Server::Impl* server = nullptr;
	ssh_session session = nullptr;
	ssh_server_callbacks_struct callbacks{};
	std::shared_ptr<const Policy> policy;
	std::string id;
	std::string client_ip;
	int client_port = 0;
	std::chrono::steady_clock::time_point accepted_at;
	bool authenticated = false;
	int auth_failures = 0;
	bool disconnect_requested = false;
	std::string disconnect_reason;
	std::optional<LoginGrant> grant;
	std::vector<std::unique_ptr<CommandChannel>> channels;
	int next_channel_index = 0;
};

// Runs the session channels of every connection from the one event loop.
class SessionRunner {
public:
	explicit SessionRunner(std::shared_ptr<const Policy> policy) : policy_(std::move(policy)) {}

	// Returns a new channel for an authenticated connection, or null.
	ssh_channel open_channel(Connection& connection, ssh_session session);
	// Starts pending commands, relays output, enforces timeouts, finishes
	// exited programs.
	void service(Connection& connection, ssh_event event);
	// Called before the connection's session is freed.
	void close_connection(Connection& connection, std::string_view reason);
	void service_draining(ssh_event event);
	// Stops every drained program and waits (bounded) for it to end.
	void finish_draining(ssh_event event);

private:
	void start_command(CommandChannel& channel, ssh_event event);
	void service_channel(CommandChannel& channel, ssh_event event);
	void finish_command(CommandChannel& channel, ssh_event event);
	void sync_watches(CommandChannel& channel, ssh_event event);
	void stop_program(CommandChannel& channel, std::string note, int exit_status);

	std::shared_ptr<const Policy> policy_;
	std::list<std::unique_ptr<CommandChannel>> draining_;
};

}  // namespace jead
