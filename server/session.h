// Authenticated connections and their session channels. Every mode (exec,
// interactive shell with or without a pty, the `jea` subsystem) feeds
// command lines into one path: record, decide, run, relay, record.
#pragma once

#include <libssh/callbacks.h>
#include <libssh/libssh.h>

#include <chrono>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "server/auth.h"
#include "server/line_editor.h"
#include "server/process.h"
#include "server/revocation_watch.h"
#include "server/server.h"
#include "transcripts/writer.h"

namespace jead {

struct Connection;
struct CommandChannel;

// One verb's running program and the state of its pipes.
struct VerbRun {
	enum class Stream { stdout_, stderr_ };
	struct FdWatch {
		CommandChannel* channel = nullptr;
		Stream stream = Stream::stdout_;
	};

	SpawnedProcess process;
	std::string verb;
	std::string concurrency_key;        // "role verb", counted while the program runs
	FdWatch stdout_watch;
	FdWatch stderr_watch;
	bool stdout_open = true;
	bool stderr_open = true;
	bool stdout_registered = false;
	bool stderr_registered = false;
	bool pidfd_registered = false;
	bool stdin_registered = false;
	bool paused = false;                // the client's window is full
	// The program runs on a pseudo-terminal of its own: stdout_fd is its
	// master, stdin_fd a duplicate, and the client's bytes go there raw.
	bool terminal = false;
	bool record_keystrokes = true;      // on a terminal: whether the client's bytes are recorded
	bool exited = false;
	int wait_status = 0;
	std::chrono::seconds timeout{0};
	std::uint64_t max_output_bytes = 0;
	std::uint64_t bytes_out = 0;
	std::uint64_t bytes_in = 0;
	std::string stdin_pending;          // read from the channel, not yet in the pipe
	std::size_t stdin_offset = 0;
	std::chrono::steady_clock::time_point started_at;
	std::chrono::steady_clock::time_point exited_at;
	std::chrono::steady_clock::time_point last_output_at;
	std::chrono::steady_clock::time_point term_sent_at;
	bool term_sent = false;
	bool kill_sent = false;
	std::string stop_note;              // why jead stopped the program, if it did
	int stop_exit_status = 0;           // the status reported then
};

// The end jead chooses for a channel: expiry, revocation, idle time,
// server shutdown or an error.
struct ChannelEnding {
	std::string reason;    // a transcript end reason
	std::string message;   // one line for the client
	int exit_status = 0;
	bool exit_signal_sent = false;   // the client already got an exit-signal
};

// One session channel: open until its exec, shell or subsystem request,
// then active until it ends. A finished channel is freed once the client
// has closed it as well. After its connection is gone a running verb is
// drained.
struct CommandChannel {
	enum class Mode { none, exec, shell, subsystem };
	enum class State { open, active, finished };

	Connection* connection = nullptr;   // null once drained
	ssh_channel channel = nullptr;      // null once the client is gone
	ssh_channel_callbacks_struct callbacks{};
	int index = 0;
	Mode mode = Mode::none;
	State state = State::open;
	bool pty = false;
	int columns = 80;
	int rows = 24;
	std::string term;                   // the pty request's TERM when it is a safe value, else empty
	int resizes_recorded = 0;           // window changes written to the transcript
	std::shared_ptr<const Policy> policy;
	std::string session_id;

	std::unique_ptr<TranscriptWriter> transcript;
	bool transcript_failed = false;

	std::string exec_line;
	std::deque<std::string> lines;      // complete command lines waiting to run
	std::string partial_line;           // shell without a pty: bytes after the last newline
	bool discarding_long_line = false;
	bool input_eof = false;
	std::unique_ptr<LineEditor> editor; // shell with a pty
	bool prompt_shown = false;
	std::deque<std::pair<bool, std::string>> outbox;   // (is_stderr, bytes) the window has not taken yet
	bool ending_message_sent = false;           // the ending's message went out
	std::string typeahead;              // keys typed while a verb ran
	bool output_at_line_start = true;   // pty: whether the prompt can start here

	std::unique_ptr<VerbRun> run;
	int last_exit_status = 0;
	int commands_run = 0;
	std::optional<ChannelEnding> ending;
	bool expiry_warned = false;
	bool break_glass = false;           // the role is a break-glass role
	// A required break-glass notification still running: no command runs
	// until it exits 0, and the session ends if it fails or runs too long.
	struct PendingNotification {
		pid_t pid = -1;
		std::chrono::steady_clock::time_point deadline;
	};
	std::optional<PendingNotification> pending_notification;
	std::chrono::steady_clock::time_point next_time_check{};
	std::deque<std::chrono::steady_clock::time_point> command_starts;   // in the last minute
	std::chrono::steady_clock::time_point last_activity;
	std::string client_end_reason = "exit";
	bool peer_closed = false;           // the client sent SSH_MSG_CHANNEL_CLOSE
};

struct Connection {
	Server::Impl* server = nullptr;
	ssh_session session = nullptr;
	ssh_server_callbacks_struct callbacks{};
	std::shared_ptr<const Policy> policy;
	std::string id;
	std::string client_ip;
	std::string client_endpoint;        // "ip:port", "[ipv6]:port", for logs
	int client_port = 0;
	std::chrono::steady_clock::time_point accepted_at;
	std::chrono::steady_clock::time_point revocation_checked_at;
	bool authenticated = false;
	int auth_failures = 0;
	int refused_requests = 0;           // forwarding and other channel types, for the log
	bool disconnect_requested = false;
	std::string disconnect_reason;
	std::optional<LoginGrant> grant;
	std::vector<std::unique_ptr<CommandChannel>> channels;   // freed once finished and closed by the client
	int next_channel_index = 0;
	std::uint64_t channels_refused = 0;   // by max_channels_per_connection
};

// Runs the session channels of every connection from the one event loop.
class SessionRunner {
public:
	SessionRunner(std::shared_ptr<const Policy> policy, RevocationWatch& revocation)
		: policy_(std::move(policy)), revocation_(revocation)
	{
	}

	// Sets the end-record hash the next transcript header links to.
	void set_last_end_hash(std::string hash) { last_end_hash_ = std::move(hash); }
	// Makes `policy` decide every command from now on.
	void set_policy(std::shared_ptr<const Policy> policy) { policy_ = std::move(policy); }
	// Returns a new channel for an authenticated connection, or null.
	ssh_channel open_channel(Connection& connection, ssh_session session);
	// Starts requested sessions, feeds input, runs command lines, relays
	// output, enforces timeouts, expiry and revocation.
	void service(Connection& connection, ssh_event event);
	// Called before the connection's session is freed.
	void close_connection(Connection& connection, std::string_view reason);
	void service_draining(ssh_event event);
	// Stops every remaining program and waits (bounded) for it to end.
	void finish_draining(ssh_event event);
	// Ends every channel of `connection` with `ending` (server shutdown).
	void end_connection(Connection& connection, const ChannelEnding& ending, ssh_event event);
	// Returns true when every channel of `connection` has finished.
	static bool all_finished(const Connection& connection);

private:
	void begin_channel(CommandChannel& channel);
	void service_channel(CommandChannel& channel, ssh_event event);
	void pull_input(CommandChannel& channel);
	void feed_stdin(CommandChannel& channel, ssh_event event);
	void handle_editor_input(CommandChannel& channel, std::string_view bytes);
	void feed_editor(CommandChannel& channel, std::string_view bytes);
	void handle_shell_input(CommandChannel& channel, std::string_view bytes);
	void run_line(CommandChannel& channel, const std::string& line, ssh_event event);
	bool run_builtin(CommandChannel& channel, const std::string& line);
	void start_verb(CommandChannel& channel, const std::string& line, ssh_event event);
	void after_command(CommandChannel& channel, int exit_status, const std::string& status_line);
	void check_time_and_revocation(CommandChannel& channel);
	void finish_run(CommandChannel& channel, ssh_event event);
	void finish_channel(CommandChannel& channel, ssh_event event);
	void free_closed_channels(Connection& connection);
	void sync_watches(CommandChannel& channel, ssh_event event);
	void stop_verb(CommandChannel& channel, std::string note, int exit_status);
	void end_transcript(CommandChannel& channel, std::string_view reason);
	std::optional<std::string> verb_limit_denial(const Connection& connection, const Role& role, const Verb& verb);
	Result<void> notify(CommandChannel& channel, std::string_view event);
	bool notification_passed(CommandChannel& channel);
	void reap_notifications();

	std::shared_ptr<const Policy> policy_;
	RevocationWatch& revocation_;
	std::list<std::unique_ptr<CommandChannel>> draining_;
	std::string last_end_hash_;   // of the newest end record this host wrote
	std::map<std::string, std::uint32_t> running_per_verb_;   // "role verb" -> programs running now
	std::map<std::string, std::deque<std::chrono::steady_clock::time_point>> starts_per_principal_;
	std::vector<pid_t> notifications_;   // break-glass notification programs not yet reaped
};

}  // namespace jead
