#include "server/session.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libssh/server.h>
#include <spdlog/spdlog.h>

#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <thread>

#include "common/escape.h"
#include "roles/policy.h"

namespace jead {

namespace {

// Exit statuses jead sends for commands that did not run to completion.
// 77 is EX_NOPERM of sysexits.h, 70 is EX_SOFTWARE, 124 is what timeout(1)
// uses.
constexpr int kExitDenied = 77;
constexpr int kExitInternal = 70;
constexpr int kExitTimedOut = 124;
constexpr int kExitOutputLimit = 125;

constexpr std::size_t kReadChunk = 32 * 1024;
constexpr int kMaxChannelsPerConnection = 10;
constexpr auto kKillGrace = std::chrono::seconds(5);
// A program whose children keep its pipes open after it exits is given
// this long to close them before jead finishes the command anyway.
constexpr auto kDrainAfterExit = std::chrono::seconds(2);

// One read buffer for the whole event loop: the data path allocates nothing.
std::array<char, kReadChunk> g_read_buffer;

std::int64_t unix_now()
{
	return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
		.count();
}

std::string host_name()
{
	char name[HOST_NAME_MAX + 1] = {};
	::gethostname(name, sizeof name - 1);
	return name;
}

const char* signal_name(int sig)
{
	switch (sig) {
	case SIGABRT: return "ABRT";
	case SIGALRM: return "ALRM";
	case SIGFPE: return "FPE";
	case SIGHUP: return "HUP";
	case SIGILL: return "ILL";
	case SIGINT: return "INT";
	case SIGKILL: return "KILL";
	case SIGPIPE: return "PIPE";
	case SIGQUIT: return "QUIT";
	case SIGSEGV: return "SEGV";
	case SIGTERM: return "TERM";
	case SIGUSR1: return "USR1";
	case SIGUSR2: return "USR2";
	default: return "KILL";
	}
}

void send_stderr_line(CommandChannel& channel, const std::string& line)
{
	if (!channel.channel)
		return;
	const std::string text = "jead: " + line + "\n";
	ssh_channel_write_stderr(channel.channel, text.data(), static_cast<std::uint32_t>(text.size()));
}

void close_channel(CommandChannel& channel, int exit_status)
{
	if (!channel.channel)
		return;
	ssh_channel_request_send_exit_status(channel.channel, exit_status);
	ssh_channel_send_eof(channel.channel);
	ssh_channel_close(channel.channel);
}

void end_transcript(CommandChannel& channel, std::string_view reason)
{
	if (!channel.transcript || channel.transcript_failed)
		return;
	if (auto r = channel.transcript->end(reason); !r)
		spdlog::error("transcript {}: {}", channel.transcript->path().string(), r.error().message);
	channel.transcript.reset();
}

// Ends a command that never started a program: the client gets the reason
// on stderr and `exit_status`, the transcript its end.
void reject_command(CommandChannel& channel, const std::string& message, int exit_status)
{
	send_stderr_line(channel, message);
	close_channel(channel, exit_status);
	end_transcript(channel, "exit");
	channel.state = CommandChannel::State::finished;
}

TranscriptHeader make_header(const Connection& connection, const CommandChannel& channel)
{
	const auto& cert = connection.grant->certificate;
	TranscriptHeader header;
	header.session_id = connection.id + "-" + std::to_string(channel.index);
	header.host = host_name();
	header.jead_version = JEAD_VERSION;
	header.start_time = unix_now();
	header.client_address = connection.client_ip;
	header.client_port = connection.client_port;
	header.role = connection.grant->role->name;
	header.key_id = cert.key_id;
	header.serial = cert.serial;
	header.principals = cert.principals;
	header.ca_fingerprint = connection.grant->ca_fingerprint;
	header.user_fingerprint = connection.grant->user_fingerprint;
	header.valid_after = cert.valid_after;
	header.valid_before = cert.valid_before;
	header.mode = channel.mode;
	header.pty = channel.pty;
	header.policy_version = channel.policy->version;
	return header;
}

// Checks that do not depend on the verb: length, expiry, force-command.
// Returns the denial reason, or nothing.
std::optional<std::string> session_denial(const Connection& connection, const CommandChannel& channel)
{
	const auto& cert = connection.grant->certificate;
	const auto max_length = channel.policy->config.max_command_length;
	if (channel.command_line.size() > max_length)
		return "command line is " + std::to_string(channel.command_line.size()) + " bytes; the limit is " +
		       std::to_string(max_length) + " (max_command_length)";
	if (static_cast<std::uint64_t>(unix_now()) >= cert.valid_before)
		return "certificate expired at " + std::to_string(cert.valid_before) + "; get a new certificate";
	for (const auto& option : cert.critical_options) {
		if (option.name == "force-command" && option.data != channel.command_line)
			return "this certificate allows only the command " + escape_untrusted(option.data) + " (force-command)";
	}
	return std::nullopt;
}

int on_pty_request(ssh_session, ssh_channel, const char*, int, int, int, int, void* userdata)
{
	auto& channel = *static_cast<CommandChannel*>(userdata);
	channel.pty = true;
	return SSH_OK;
}

int on_exec_request(ssh_session, ssh_channel, const char* command, void* userdata)
{
	auto& channel = *static_cast<CommandChannel*>(userdata);
	if (channel.state != CommandChannel::State::open)
		return SSH_ERROR;
	channel.mode = "exec";
	channel.command_line = command ? command : "";
	// The work happens in the event loop, after the success reply is out.
	channel.state = CommandChannel::State::pending;
	return SSH_OK;
}

int on_shell_request(ssh_session, ssh_channel, void* userdata)
{
	auto& channel = *static_cast<CommandChannel*>(userdata);
	if (channel.state != CommandChannel::State::open)
		return SSH_ERROR;
	channel.mode = "shell";
	channel.state = CommandChannel::State::pending;
	return SSH_OK;
}

int on_subsystem_request(ssh_session, ssh_channel, const char* subsystem, void* userdata)
{
	auto& channel = *static_cast<CommandChannel*>(userdata);
	spdlog::warn("session={} subsystem {} refused", channel.connection->id, escape_untrusted(subsystem ? subsystem : "", 64));
	return SSH_ERROR;
}

int on_env_request(ssh_session, ssh_channel, const char* name, const char*, void* userdata)
{
	auto& channel = *static_cast<CommandChannel*>(userdata);
	// Client environment never reaches a verb.
	spdlog::debug("session={} env request {} ignored", channel.connection->id, escape_untrusted(name ? name : "", 64));
	return SSH_ERROR;
}

int on_channel_data(ssh_session, ssh_channel, void*, std::uint32_t len, int, void*)
{
	// Verbs read /dev/null: channel data is consumed and dropped.
	return static_cast<int>(len);
}

void on_channel_close(ssh_session, ssh_channel, void* userdata)
{
	auto& channel = *static_cast<CommandChannel*>(userdata);
	channel.end_reason = "client-closed";
}

int on_output_ready(socket_t, int, void* userdata);
int on_process_exit(socket_t, int, void* userdata);

void read_output(CommandChannel& channel, CommandChannel::Stream stream)
{
	const bool is_stderr = stream == CommandChannel::Stream::stderr_;
	bool& open = is_stderr ? channel.stderr_open : channel.stdout_open;
	const int fd = is_stderr ? channel.process.stderr_fd.get() : channel.process.stdout_fd.get();
	if (!open || fd < 0)
		return;

	std::size_t want = kReadChunk;
	if (channel.channel) {
		// Read no more than the client's window takes, so a client that
		// stops reading stops the program's pipe, not jead's memory.
		const std::uint32_t window = ssh_channel_window_size(channel.channel);
		if (window == 0) {
			channel.paused = true;
			return;
		}
		want = std::min<std::size_t>(want, window);
	}

	const ssize_t n = ::read(fd, g_read_buffer.data(), want);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		open = false;
		return;
	}

	const std::span<const std::uint8_t> data(reinterpret_cast<const std::uint8_t*>(g_read_buffer.data()),
	                                         static_cast<std::size_t>(n));
	channel.bytes_out += data.size();
	if (channel.transcript && !channel.transcript_failed) {
		auto r = channel.transcript->output(is_stderr ? OutputStream::stderr_ : OutputStream::stdout_, data);
		if (!r) {
			channel.transcript_failed = true;
			spdlog::error("transcript {}: {}; stopping the program", channel.transcript->path().string(),
			              r.error().message);
		}
	}
	if (channel.channel) {
		if (is_stderr)
			ssh_channel_write_stderr(channel.channel, data.data(), static_cast<std::uint32_t>(data.size()));
		else
			ssh_channel_write(channel.channel, data.data(), static_cast<std::uint32_t>(data.size()));
	}
}

int on_output_ready(socket_t, int, void* userdata)
{
	auto& watch = *static_cast<CommandChannel::FdWatch*>(userdata);
	read_output(*watch.channel, watch.stream);
	return 0;
}

int on_process_exit(socket_t, int, void* userdata)
{
	auto& channel = *static_cast<CommandChannel*>(userdata);
	if (channel.exited)
		return 0;
	int status = 0;
	const pid_t pid = ::waitpid(channel.process.pid, &status, WNOHANG);
	if (pid == channel.process.pid) {
		channel.exited = true;
		channel.wait_status = status;
		channel.exited_at = std::chrono::steady_clock::now();
	}
	return 0;
}

}  // namespace

ssh_channel SessionRunner::open_channel(Connection& connection, ssh_session session)
{
	if (!connection.authenticated)
		return nullptr;
	int open_count = 0;
	for (const auto& channel : connection.channels)
		open_count += channel->state == CommandChannel::State::finished ? 0 : 1;
	if (open_count >= kMaxChannelsPerConnection) {
		spdlog::warn("session={} channel refused: {} session channels are open (the limit per connection)",
		             connection.id, open_count);
		return nullptr;
	}

	ssh_channel ssh_chan = ssh_channel_new(session);
	if (!ssh_chan)
		return nullptr;

	auto channel = std::make_unique<CommandChannel>();
	channel->connection = &connection;
	channel->channel = ssh_chan;
	channel->index = connection.next_channel_index++;
	channel->policy = connection.policy;
	channel->stdout_watch = {channel.get(), CommandChannel::Stream::stdout_};
	channel->stderr_watch = {channel.get(), CommandChannel::Stream::stderr_};

	auto& callbacks = channel->callbacks;
	ssh_callbacks_init(&callbacks);
	callbacks.userdata = channel.get();
	callbacks.channel_pty_request_function = on_pty_request;
	callbacks.channel_exec_request_function = on_exec_request;
	callbacks.channel_shell_request_function = on_shell_request;
	callbacks.channel_subsystem_request_function = on_subsystem_request;
	callbacks.channel_env_request_function = on_env_request;
	callbacks.channel_data_function = on_channel_data;
	callbacks.channel_close_function = on_channel_close;
	ssh_set_channel_callbacks(ssh_chan, &callbacks);

	connection.channels.push_back(std::move(channel));
	return ssh_chan;
}

void SessionRunner::start_command(CommandChannel& channel, ssh_event event)
{
	Connection& connection = *channel.connection;
	const Role& role = *connection.grant->role;

	if (channel.mode == "shell") {
		reject_command(channel,
		               "role \"" + role.name + "\" has no interactive shell yet; run one verb at a time: ssh " +
		                   role.name + "@HOST VERB [ARGS]",
		               kExitDenied);
		return;
	}

	auto transcript = TranscriptWriter::create(channel.policy->config.transcript_dir, make_header(connection, channel));
	if (!transcript) {
		spdlog::error("session={} cannot create a transcript: {}", connection.id, transcript.error().message);
		reject_command(channel, "cannot record this session, so nothing runs: " + transcript.error().message,
		               kExitInternal);
		return;
	}
	channel.transcript = std::move(*transcript);

	if (auto r = channel.transcript->input(channel.command_line); !r) {
		channel.transcript_failed = true;
		reject_command(channel, "cannot record this command, so it does not run: " + r.error().message, kExitInternal);
		return;
	}

	Decision decision;
	if (auto denial = session_denial(connection, channel))
		decision.reason = *denial;
	else
		decision = decide(role, channel.command_line);

	DecisionRecord record;
	record.allowed = decision.allowed;
	record.reason = decision.reason;
	record.verb = decision.verb;
	record.arguments = decision.arguments;
	record.argv = decision.argv;
	record.policy_version = channel.policy->version;

	RunAs run_as;
	if (decision.allowed) {
		const auto& user = decision.verb_spec->run_as_user ? decision.verb_spec->run_as_user : role.run_as_user;
		auto resolved = resolve_run_as(user, role.run_as_group);
		if (resolved) {
			run_as = *resolved;
			record.run_as = run_as.user;
		} else {
			record.allowed = false;
			record.reason = resolved.error().message;
		}
	}

	// The write-ahead record: on disk before anything starts.
	if (auto r = channel.transcript->decision(record); !r) {
		channel.transcript_failed = true;
		spdlog::error("session={} cannot record a decision: {}", connection.id, r.error().message);
		reject_command(channel, "cannot record this command, so it does not run: " + r.error().message, kExitInternal);
		return;
	}

	if (!record.allowed) {
		spdlog::info("session={} role={} denied {}: {}", connection.id, role.name,
		             escape_untrusted(channel.command_line), record.reason);
		reject_command(channel, "denied: " + record.reason, kExitDenied);
		return;
	}

	SpawnRequest request;
	request.argv = decision.argv;
	request.environment = base_environment();
	for (const auto& [name, value] : role.environment)
		request.environment.push_back(name + "=" + value);
	request.working_directory = role.working_directory;
	request.run_as = run_as;

	auto process = spawn_process(request);
	if (!process) {
		spdlog::error("session={} role={} verb={} failed to start: {}", connection.id, role.name, decision.verb,
		              process.error().message);
		(void)channel.transcript->process_exit(127, 0, std::chrono::milliseconds(0), 0, process.error().message);
		reject_command(channel, "verb \"" + decision.verb + "\" failed to start: " + process.error().message, 127);
		return;
	}

	channel.process = std::move(*process);
	channel.stdout_open = true;
	channel.stderr_open = true;
	channel.started_at = std::chrono::steady_clock::now();
	channel.timeout = decision.verb_spec->timeout;
	channel.max_output_bytes = decision.verb_spec->max_output_bytes;
	channel.state = CommandChannel::State::running;
	if (auto r = channel.transcript->process_start(channel.process.pid); !r) {
		channel.transcript_failed = true;
		stop_program(channel, "cannot record the program's start: " + r.error().message, kExitInternal);
	}
	spdlog::info("session={} role={} allowed {} as {}: pid {}", connection.id, role.name,
	             escape_untrusted(channel.command_line), run_as.user, channel.process.pid);
	sync_watches(channel, event);
}

void SessionRunner::stop_program(CommandChannel& channel, std::string note, int exit_status)
{
	if (channel.term_sent)
		return;
	channel.stop_note = std::move(note);
	channel.stop_exit_status = exit_status;
	channel.term_sent = true;
	channel.term_sent_at = std::chrono::steady_clock::now();
	::kill(-channel.process.pid, SIGTERM);
}

void SessionRunner::sync_watches(CommandChannel& channel, ssh_event event)
{
	const auto sync = [&](int fd, bool wanted, bool& registered, ssh_event_callback callback, void* userdata) {
		if (fd < 0 || wanted == registered)
			return;
		if (wanted)
			ssh_event_add_fd(event, fd, POLLIN, callback, userdata);
		else
			ssh_event_remove_fd(event, fd);
		registered = wanted;
	};
	const bool running = channel.state == CommandChannel::State::running;
	sync(channel.process.stdout_fd.get(), running && channel.stdout_open && !channel.paused, channel.stdout_registered,
	     on_output_ready, &channel.stdout_watch);
	sync(channel.process.stderr_fd.get(), running && channel.stderr_open && !channel.paused, channel.stderr_registered,
	     on_output_ready, &channel.stderr_watch);
	sync(channel.process.pidfd.get(), running && !channel.exited, channel.pidfd_registered, on_process_exit,
	     &channel);
}

void SessionRunner::finish_command(CommandChannel& channel, ssh_event event)
{
	channel.state = CommandChannel::State::finished;
	sync_watches(channel, event);
	channel.process.stdout_fd.reset();
	channel.process.stderr_fd.reset();
	channel.process.pidfd.reset();

	const int status = channel.wait_status;
	const int exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
	const int signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	const auto duration =
		std::chrono::duration_cast<std::chrono::milliseconds>(channel.exited_at - channel.started_at);
	if (channel.transcript && !channel.transcript_failed) {
		if (auto r = channel.transcript->process_exit(exit_status, signal, duration, channel.bytes_out, channel.stop_note);
		    !r)
			channel.transcript_failed = true;
	}
	const std::string who = channel.connection ? channel.connection->id : "(closed)";
	spdlog::info("session={} pid {} ended: {} {} after {} ms, {} bytes out{}", who, channel.process.pid,
	             signal ? "signal" : "exit status", signal ? signal : exit_status, duration.count(), channel.bytes_out,
	             channel.stop_note.empty() ? "" : "; " + channel.stop_note);

	if (channel.channel) {
		if (!channel.stop_note.empty()) {
			send_stderr_line(channel, channel.stop_note);
			close_channel(channel, channel.stop_exit_status);
		} else if (signal) {
			ssh_channel_request_send_exit_signal(channel.channel, signal_name(signal), WCOREDUMP(status) ? 1 : 0, "",
			                                     "");
			ssh_channel_send_eof(channel.channel);
			ssh_channel_close(channel.channel);
		} else {
			close_channel(channel, exit_status);
		}
	}
	end_transcript(channel, channel.end_reason);
}

void SessionRunner::service_channel(CommandChannel& channel, ssh_event event)
{
	if (channel.state == CommandChannel::State::pending && channel.connection) {
		start_command(channel, event);
		return;
	}
	if (channel.state != CommandChannel::State::running)
		return;

	const auto now = std::chrono::steady_clock::now();
	if (channel.paused && (!channel.channel || ssh_channel_window_size(channel.channel) > 0))
		channel.paused = false;

	if (channel.transcript_failed)
		stop_program(channel, "recording the output failed, so the program was stopped", kExitInternal);
	if (channel.bytes_out > channel.max_output_bytes)
		stop_program(channel, "output exceeded the verb's limit of " + std::to_string(channel.max_output_bytes) +
		                          " bytes, so the program was stopped",
		             kExitOutputLimit);
	if (channel.timeout.count() > 0 && now - channel.started_at > channel.timeout)
		stop_program(channel, "timed out after " + std::to_string(channel.timeout.count()) + " s", kExitTimedOut);
	if (channel.term_sent && !channel.kill_sent && now - channel.term_sent_at > kKillGrace) {
		channel.kill_sent = true;
		::kill(-channel.process.pid, SIGKILL);
	}

	if (channel.exited) {
		const bool drained = !channel.stdout_open && !channel.stderr_open;
		if (drained || now - channel.exited_at > kDrainAfterExit) {
			finish_command(channel, event);
			return;
		}
	}
	sync_watches(channel, event);
}

void SessionRunner::service(Connection& connection, ssh_event event)
{
	for (auto& channel : connection.channels)
		service_channel(*channel, event);
}

void SessionRunner::close_connection(Connection& connection, std::string_view reason)
{
	for (auto& channel : connection.channels) {
		if (channel->channel)
			ssh_remove_channel_callbacks(channel->channel, &channel->callbacks);
		channel->channel = nullptr;
		channel->connection = nullptr;
		if (channel->state == CommandChannel::State::running) {
			channel->end_reason = std::string(reason);
			stop_program(*channel, "the connection ended (" + std::string(reason) + "), so the program was stopped",
			             kExitInternal);
			draining_.push_back(std::move(channel));
		} else if (channel->state != CommandChannel::State::finished) {
			end_transcript(*channel, reason);
		}
	}
	connection.channels.clear();
}

void SessionRunner::service_draining(ssh_event event)
{
	for (auto it = draining_.begin(); it != draining_.end();) {
		service_channel(**it, event);
		if ((*it)->state == CommandChannel::State::finished)
			it = draining_.erase(it);
		else
			++it;
	}
}

void SessionRunner::finish_draining(ssh_event event)
{
	// Bounded: the kill grace plus the drain time, polled every 100 ms.
	const auto deadline = std::chrono::steady_clock::now() + kKillGrace + kDrainAfterExit + std::chrono::seconds(1);
	while (!draining_.empty() && std::chrono::steady_clock::now() < deadline) {
		ssh_event_dopoll(event, 100);
		service_draining(event);
	}
	for (auto& channel : draining_) {
		::kill(-channel->process.pid, SIGKILL);
		end_transcript(*channel, "server-shutdown");
	}
	draining_.clear();
}

}  // namespace jead
