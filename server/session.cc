#include "server/session.h"

#include <limits.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

#include <libssh/server.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <map>

#include "common/escape.h"
#include "server/session_internal.h"

namespace jead {

namespace {

// Complete lines read ahead of the running command in a shell or the
// subsystem; past this jead stops reading and the SSH window closes.
constexpr std::size_t kMaxQueuedLines = 16;
constexpr std::size_t kMaxJsonWords = 64;
constexpr std::size_t kInputChunk = 16 * 1024;
// Keystrokes kept while a verb runs in the pty shell; the rest are dropped.
constexpr std::size_t kMaxTypeahead = 4096;
// A pty's size is clamped to this range, whatever the client sends.
constexpr int kMaxTerminalDimension = 1000;
// The maximum length of a client TERM that an interactive verb gets.
constexpr std::size_t kMaxTermLength = 64;
// Window changes recorded per channel; a replay needs the few real ones.
constexpr int kMaxRecordedResizes = 1000;
// How long a session waits for a required break-glass notification.
constexpr std::chrono::seconds kNotifyTimeout{10};

std::string host_name()
{
	char name[HOST_NAME_MAX + 1] = {};
	::gethostname(name, sizeof name - 1);
	return name;
}

const char* mode_name(CommandChannel::Mode mode)
{
	switch (mode) {
	case CommandChannel::Mode::exec: return "exec";
	case CommandChannel::Mode::shell: return "shell";
	case CommandChannel::Mode::subsystem: return "subsystem";
	default: return "none";
	}
}

TranscriptHeader make_header(const Connection& connection, const CommandChannel& channel)
{
	const auto& cert = connection.grant->certificate;
	TranscriptHeader header;
	header.session_id = channel.session_id;
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
	header.mode = mode_name(channel.mode);
	header.pty = channel.pty;
	header.policy_version = channel.policy->version;
	header.break_glass = channel.break_glass;
	if (channel.pty) {
		header.columns = channel.columns;
		header.rows = channel.rows;
	}
	return header;
}

CommandChannel& channel_of(void* userdata)
{
	return *static_cast<CommandChannel*>(userdata);
}

bool certificate_permits_pty(const Certificate& cert)
{
	return std::any_of(cert.extensions.begin(), cert.extensions.end(),
	                   [](const CertOption& e) { return e.name == "permit-pty"; });
}

// Returns false, with a log line, when the channel already has a request.
bool take_request(CommandChannel& channel, CommandChannel::Mode mode, std::string_view what)
{
	if (channel.mode != CommandChannel::Mode::none) {
		spdlog::warn("session={} {} refused: the channel already runs a {} request", channel.session_id, what,
		             mode_name(channel.mode));
		return false;
	}
	channel.mode = mode;
	return true;
}

// Returns whether a client's TERM is a plain terminal name of letters,
// digits and '-', so no path, control byte or shell text reaches a verb.
bool is_safe_term(std::string_view term)
{
	if (term.empty() || term.size() > kMaxTermLength)
		return false;
	return std::all_of(term.begin(), term.end(), [](char c) {
		return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
	});
}

int on_pty_request(ssh_session, ssh_channel, const char* term, int width, int height, int, int, void* userdata)
{
	auto& channel = channel_of(userdata);
	if (!certificate_permits_pty(channel.connection->grant->certificate)) {
		spdlog::warn("session={} pty refused: the certificate has no permit-pty extension", channel.session_id);
		return SSH_ERROR;
	}
	if (channel.mode != CommandChannel::Mode::none)
		return SSH_ERROR;
	channel.pty = true;
	channel.columns = std::clamp(width, 1, kMaxTerminalDimension);
	channel.rows = std::clamp(height, 1, kMaxTerminalDimension);
	if (is_safe_term(term ? term : ""))
		channel.term = term;
	spdlog::debug("session={} pty {}x{} TERM={}", channel.session_id, channel.columns, channel.rows,
	              escape_untrusted(term ? term : "", 32));
	return SSH_OK;
}

// Records a new pty size for replays. A client that floods window changes
// gets kMaxRecordedResizes records, then one warning.
void record_resize(CommandChannel& channel)
{
	if (channel.resizes_recorded > kMaxRecordedResizes)
		return;
	++channel.resizes_recorded;
	Result<void> r;
	if (channel.resizes_recorded <= kMaxRecordedResizes)
		r = channel.transcript->resize(channel.columns, channel.rows);
	else
		r = channel.transcript->warning("more than " + std::to_string(kMaxRecordedResizes) +
		                                " window changes; later ones are not recorded");
	if (!r)
		spdlog::warn("session={} recording a window change failed: {}", channel.session_id, r.error().message);
}

int on_window_change(ssh_session, ssh_channel, int width, int height, int, int, void* userdata)
{
	auto& channel = channel_of(userdata);
	const int columns = std::clamp(width, 1, kMaxTerminalDimension);
	const int rows = std::clamp(height, 1, kMaxTerminalDimension);
	const bool changed = columns != channel.columns || rows != channel.rows;
	channel.columns = columns;
	channel.rows = rows;
	if (changed && channel.pty && channel.transcript && !channel.transcript_failed)
		record_resize(channel);
	if (channel.run && channel.run->terminal && channel.run->process.stdout_fd) {
		const TerminalSize size{channel.columns, channel.rows};
		if (auto r = set_terminal_size(channel.run->process.stdout_fd.get(), size); !r)
			spdlog::warn("session={} passing the window change to pid {} failed: {}", channel.session_id,
			             channel.run->process.pid, r.error().message);
	}
	return SSH_OK;
}

int on_exec_request(ssh_session, ssh_channel, const char* command, void* userdata)
{
	auto& channel = channel_of(userdata);
	if (!take_request(channel, CommandChannel::Mode::exec, "exec"))
		return SSH_ERROR;
	// The work happens in the event loop, after the success reply is out.
	channel.exec_line = command ? command : "";
	return SSH_OK;
}

int on_shell_request(ssh_session, ssh_channel, void* userdata)
{
	auto& channel = channel_of(userdata);
	// As in OpenSSH, a certificate's force-command replaces the shell: the
	// channel runs that one command, as an exec request would.
	if (const CertOption* forced = find_critical_option(channel.connection->grant->certificate, "force-command")) {
		if (!take_request(channel, CommandChannel::Mode::exec, "shell"))
			return SSH_ERROR;
		spdlog::info("session={} shell request runs the certificate's force-command {}", channel.session_id,
		             escape_untrusted(forced->data, 256));
		channel.exec_line = forced->data;
		return SSH_OK;
	}
	return take_request(channel, CommandChannel::Mode::shell, "shell") ? SSH_OK : SSH_ERROR;
}

int on_subsystem_request(ssh_session, ssh_channel, const char* subsystem, void* userdata)
{
	auto& channel = channel_of(userdata);
	const std::string_view name = subsystem ? subsystem : "";
	if (name != "jea") {
		spdlog::warn("session={} subsystem {} refused: only \"jea\" exists", channel.session_id,
		             escape_untrusted(name, 64));
		return SSH_ERROR;
	}
	if (!take_request(channel, CommandChannel::Mode::subsystem, "subsystem"))
		return SSH_ERROR;
	// The framing is the whole protocol, so a pty the client asked for is
	// not used: no banner, no line editor, no echo.
	if (channel.pty)
		spdlog::debug("session={} subsystem ignores the pty", channel.session_id);
	channel.pty = false;
	return SSH_OK;
}

// The client offers its agent. jead never opens an agent channel back, so
// the offer is only logged, and the protocol expects no reply.
void on_auth_agent_request(ssh_session, ssh_channel, void* userdata)
{
	auto& channel = channel_of(userdata);
	spdlog::warn("session={} client={} refused agent forwarding", channel.session_id,
	             channel.connection->client_endpoint);
}

int on_env_request(ssh_session, ssh_channel, const char* name, const char*, void* userdata)
{
	// Client environment never reaches a verb.
	spdlog::debug("session={} env request {} ignored", channel_of(userdata).session_id,
	              escape_untrusted(name ? name : "", 64));
	return SSH_ERROR;
}

int on_channel_data(ssh_session, ssh_channel, void*, std::uint32_t, int, void*)
{
	// Nothing is taken here: the loop reads channel data when it has room
	// for it, so the SSH window is the only buffer (see pull_input).
	return 0;
}

void on_channel_close(ssh_session, ssh_channel, void* userdata)
{
	auto& channel = channel_of(userdata);
	channel.peer_closed = true;
	if (channel.state != CommandChannel::State::finished)
		channel.client_end_reason = "client-closed";
}

void on_channel_signal(ssh_session, ssh_channel, const char* signal, void* userdata)
{
	auto& channel = channel_of(userdata);
	const std::string_view name = signal ? signal : "";
	int sig = 0;
	if (name == "INT")
		sig = SIGINT;
	else if (name == "TERM")
		sig = SIGTERM;
	else if (name == "HUP")
		sig = SIGHUP;
	if (sig && channel.run) {
		spdlog::info("session={} client sent SIG{} to pid {}", channel.session_id, name, channel.run->process.pid);
		::kill(-channel.run->process.pid, sig);
	}
}

}  // namespace

std::int64_t unix_now()
{
	return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
		.count();
}

namespace {

// Writes what the channel's window takes now; returns the bytes written, or
// -1 when the channel is broken.
int write_some(ssh_channel channel, std::string_view data, bool is_stderr)
{
	const auto size = static_cast<std::uint32_t>(data.size());
	return is_stderr ? ssh_channel_write_stderr(channel, data.data(), size)
	                 : ssh_channel_write(channel, data.data(), size);
}

}  // namespace

void send_to_client(CommandChannel& channel, std::string_view data, bool is_stderr)
{
	if (!channel.channel || data.empty())
		return;
	if (channel.outbox.empty()) {
		const int written = write_some(channel.channel, data, is_stderr);
		if (written < 0)
			return;   // the connection is failing; its teardown follows
		data.remove_prefix(static_cast<std::size_t>(written));
		if (data.empty())
			return;
	}
	// What the window did not take waits here, in order; the caller reads
	// no more output until the outbox is empty again.
	channel.outbox.emplace_back(is_stderr, std::string(data));
}

bool flush_outbox(CommandChannel& channel)
{
	while (!channel.outbox.empty() && channel.channel) {
		auto& [is_stderr, text] = channel.outbox.front();
		const int written = write_some(channel.channel, text, is_stderr);
		if (written < 0) {
			channel.outbox.clear();
			break;
		}
		text.erase(0, static_cast<std::size_t>(written));
		if (!text.empty())
			return false;
		channel.outbox.pop_front();
	}
	return true;
}

void write_to_client(CommandChannel& channel, std::string_view data, bool is_stderr)
{
	if (!channel.channel || data.empty())
		return;
	if (!channel.pty) {
		send_to_client(channel, data, is_stderr);
		return;
	}
	channel.output_at_line_start = data.back() == '\n';
	// The client's terminal is in raw mode: jead does the LF to CR LF that
	// a tty's output processing would.
	std::string converted;
	converted.reserve(data.size() + data.size() / 8);
	for (std::size_t i = 0; i < data.size(); ++i) {
		if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
			converted += '\r';
		converted += data[i];
	}
	send_to_client(channel, converted, false);
}

void write_terminal_output(CommandChannel& channel, std::string_view data)
{
	if (data.empty())
		return;
	channel.output_at_line_start = data.back() == '\n';
	send_to_client(channel, data, false);
}

void tell_client(CommandChannel& channel, const std::string& message)
{
	if (channel.mode == CommandChannel::Mode::subsystem) {
		write_subsystem_frame(channel, "jead: " + message + "\n", true);
		return;
	}
	write_to_client(channel, "jead: " + message + "\n", true);
}

void write_subsystem_frame(CommandChannel& channel, std::string_view data, bool is_stderr)
{
	if (!channel.channel)
		return;
	const std::string header = std::string(is_stderr ? "jea-stderr " : "jea-stdout ") + std::to_string(data.size()) + "\n";
	send_to_client(channel, header, false);
	send_to_client(channel, data, false);
}

ssh_channel SessionRunner::open_channel(Connection& connection, ssh_session session)
{
	if (!connection.authenticated)
		return nullptr;
	// A finished channel still counts until the client closes it, so a
	// client that never closes its channels cannot pile them up.
	int open_count = 0;
	for (const auto& channel : connection.channels)
		open_count += channel->state == CommandChannel::State::finished && channel->peer_closed ? 0 : 1;
	if (open_count >= connection.policy->config.max_channels_per_connection) {
		++connection.channels_refused;
		// One line per connection and power of two of refusals, so a client
		// that keeps opening channels cannot flood the log.
		if ((connection.channels_refused & (connection.channels_refused - 1)) == 0)
			spdlog::warn("session={} client={} channel refused: {} session channels are open "
			             "(max_channels_per_connection); {} refused on this connection so far",
			             connection.id, connection.client_endpoint, open_count,
			             connection.channels_refused);
		return nullptr;
	}

	ssh_channel ssh_chan = ssh_channel_new(session);
	if (!ssh_chan)
		return nullptr;

	auto channel = std::make_unique<CommandChannel>();
	channel->connection = &connection;
	channel->channel = ssh_chan;
	channel->index = connection.next_channel_index++;
	channel->session_id = connection.id + "-" + std::to_string(channel->index);
	channel->policy = connection.policy;
	channel->last_activity = std::chrono::steady_clock::now();

	auto& callbacks = channel->callbacks;
	ssh_callbacks_init(&callbacks);
	callbacks.userdata = channel.get();
	callbacks.channel_pty_request_function = on_pty_request;
	callbacks.channel_pty_window_change_function = on_window_change;
	callbacks.channel_exec_request_function = on_exec_request;
	callbacks.channel_shell_request_function = on_shell_request;
	callbacks.channel_subsystem_request_function = on_subsystem_request;
	callbacks.channel_env_request_function = on_env_request;
	callbacks.channel_auth_agent_req_function = on_auth_agent_request;
	callbacks.channel_data_function = on_channel_data;
	callbacks.channel_close_function = on_channel_close;
	callbacks.channel_signal_function = on_channel_signal;
	ssh_set_channel_callbacks(ssh_chan, &callbacks);

	connection.channels.push_back(std::move(channel));
	return ssh_chan;
}

void SessionRunner::begin_channel(CommandChannel& channel)
{
	Connection& connection = *channel.connection;
	const Role& role = *connection.grant->role;
	channel.state = CommandChannel::State::active;
	channel.last_activity = std::chrono::steady_clock::now();

	TranscriptOptions options;
	options.previous_end_hash = last_end_hash_;
	options.signing_key = channel.policy->config.transcript_signing_key;
	options.checkpoint_interval = channel.policy->config.transcript_checkpoint_records;
	options.max_bytes = channel.policy->config.transcript_max_bytes;
	channel.break_glass = role.break_glass;
	auto transcript =
		TranscriptWriter::create(channel.policy->config.transcript_dir, make_header(connection, channel), options);
	if (!transcript) {
		spdlog::error("session={} cannot create a transcript: {}", channel.session_id, transcript.error().message);
		channel.transcript_failed = true;
		channel.ending = ChannelEnding{"error",
		                               "cannot record this session, so nothing runs: " + transcript.error().message,
		                               kExitInternal};
		return;
	}
	channel.transcript = std::move(*transcript);
	log_session_event(channel.break_glass, "session={} {} session started for role {}{}", channel.session_id,
	                  mode_name(channel.mode), role.name, channel.pty ? " with a pty" : "");
	if (auto r = notify(channel, "start"); !r) {
		channel.ending = ChannelEnding{"error", r.error().message, kExitInternal};
		return;
	}

	if (channel.mode == CommandChannel::Mode::exec) {
		channel.lines.push_back(std::move(channel.exec_line));
		return;
	}
	if (channel.pty) {
		channel.editor = std::make_unique<LineEditor>(channel.policy->config.max_command_length);
		channel.editor->set_completer(
			[&role, &connection](std::string_view before) {
				return complete_words(role, before, [&connection](std::string_view verb) {
					return allowed_by_certificate_verbs(connection.grant->certificate, verb);
				});
			});
		const auto left = static_cast<std::int64_t>(connection.grant->certificate.valid_before) - unix_now();
		write_to_client(channel, shell_banner(role, left), false);
	}
}

void SessionRunner::pull_input(CommandChannel& channel)
{
	if (!channel.channel || channel.input_eof || channel.mode == CommandChannel::Mode::none)
		return;
	const bool running = static_cast<bool>(channel.run);
	// Exec channels never read command lines from their input. Until the
	// verb starts the input waits in the SSH window; then a verb that reads
	// stdin takes it in feed_stdin, and for any other verb it is dropped.
	if (channel.mode == CommandChannel::Mode::exec && (!running || channel.run->process.stdin_fd))
		return;
	const bool discard = channel.mode == CommandChannel::Mode::exec;

	std::array<char, kInputChunk> buffer{};
	for (int round = 0; round < 8; ++round) {
		if (!discard && !channel.pty && (running || channel.lines.size() >= kMaxQueuedLines))
			return;
		const int n = ssh_channel_read_nonblocking(channel.channel, buffer.data(), buffer.size(), 0);
		if (n > 0) {
			channel.last_activity = std::chrono::steady_clock::now();
			const std::string_view bytes(buffer.data(), static_cast<std::size_t>(n));
			if (discard)
				continue;
			if (channel.pty)
				handle_editor_input(channel, bytes);
			else
				handle_shell_input(channel, bytes);
			continue;
		}
		if (n == SSH_EOF || (n == 0 && ssh_channel_is_eof(channel.channel) && ssh_channel_poll(channel.channel, 0) <= 0)) {
			if (channel.mode != CommandChannel::Mode::exec) {
				channel.input_eof = true;
				if (!channel.partial_line.empty() && !channel.discarding_long_line)
					channel.lines.push_back(std::move(channel.partial_line));
				channel.partial_line.clear();
			}
		}
		return;
	}
}

void SessionRunner::handle_shell_input(CommandChannel& channel, std::string_view bytes)
{
	const std::size_t max_length = channel.policy->config.max_command_length;
	for (char c : bytes) {
		if (c != '\n') {
			if (channel.discarding_long_line)
				continue;
			if (channel.partial_line.size() >= max_length) {
				// Too long: the line becomes a denial that names the limit,
				// and the rest of it up to the newline is skipped.
				channel.discarding_long_line = true;
				channel.lines.push_back(channel.partial_line + std::string(1, c));
				channel.partial_line.clear();
				continue;
			}
			channel.partial_line += c;
			continue;
		}
		if (!channel.discarding_long_line)
			channel.lines.push_back(std::move(channel.partial_line));
		channel.partial_line.clear();
		channel.discarding_long_line = false;
	}
}

void SessionRunner::handle_editor_input(CommandChannel& channel, std::string_view bytes)
{
	if (channel.transcript && !channel.transcript_failed) {
		if (auto r = channel.transcript->keystrokes(bytes); !r)
			note_transcript_failure(channel, r.error());
	}

	// While a verb runs, Ctrl-C interrupts it and other keys wait (up to a
	// cap) for the next prompt, as type-ahead does on a terminal.
	if (channel.run) {
		const auto interrupt = bytes.find('\x03');
		if (interrupt != std::string_view::npos) {
			spdlog::info("session={} Ctrl-C: SIGINT to pid {}", channel.session_id, channel.run->process.pid);
			::kill(-channel.run->process.pid, SIGINT);
			channel.typeahead.clear();
			bytes.remove_prefix(interrupt + 1);
		}
		const std::size_t room = kMaxTypeahead - std::min(kMaxTypeahead, channel.typeahead.size());
		channel.typeahead.append(bytes.substr(0, room));
		return;
	}
	feed_editor(channel, bytes);
}

void SessionRunner::feed_editor(CommandChannel& channel, std::string_view bytes)
{
	std::string screen;
	std::vector<LineEditor::Event> events;
	channel.editor->feed(bytes, screen, events);
	write_to_client(channel, screen, false);
	for (auto& event : events) {
		switch (event.kind) {
		case LineEditor::Event::Kind::line:
			// Like an over-long line without a pty, it is queued one byte
			// over the limit, so that start_verb denies it in its turn.
			if (event.overflowed && event.line.size() <= channel.policy->config.max_command_length)
				event.line.resize(channel.policy->config.max_command_length + 1, ' ');
			channel.lines.push_back(std::move(event.line));
			channel.prompt_shown = false;
			break;
		case LineEditor::Event::Kind::interrupt:
			channel.prompt_shown = false;
			break;
		case LineEditor::Event::Kind::end_of_input:
			channel.input_eof = true;
			break;
		}
	}
}

bool SessionRunner::run_builtin(CommandChannel& channel, const std::string& line)
{
	const bool exec = channel.mode == CommandChannel::Mode::exec;
	const Role& role = *channel.connection->grant->role;
	std::string text;
	int exit_status = 0;
	if (line == "help") {
		const auto& cert = channel.connection->grant->certificate;
		text = help_text(role, channel.mode == CommandChannel::Mode::shell,
		                 [&cert](std::string_view verb) { return allowed_by_certificate_verbs(cert, verb); });
	} else if (line.rfind("help ", 0) == 0) {
		const std::string name = line.substr(5);
		const Verb* verb = role.find_verb(name);
		text = verb ? verb_help_text(*verb) : "help: no verb named " + escape_untrusted(name, 64) + "\n";
		exit_status = verb ? 0 : 1;
	} else if (line == "exit" && channel.mode == CommandChannel::Mode::shell) {
		channel.input_eof = true;
		channel.client_end_reason = "exit";
		return true;
	} else {
		return false;
	}
	if (channel.transcript && !channel.transcript_failed) {
		const auto bytes = std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
		if (auto r = channel.transcript->output(OutputStream::stdout_, bytes); !r)
			note_transcript_failure(channel, r.error());
	}
	if (channel.mode == CommandChannel::Mode::subsystem) {
		write_subsystem_frame(channel, text, false);
		write_to_client(channel, "jea-status exit " + std::to_string(exit_status) + "\n", false);
	} else {
		write_to_client(channel, text, false);
	}
	// `ssh role@host help` ends like a verb that printed the text.
	if (exec)
		after_command(channel, exit_status, "");
	return true;
}

void SessionRunner::run_line(CommandChannel& channel, const std::string& received, ssh_event event)
{
	if (channel.transcript_failed) {
		channel.ending = ChannelEnding{"error", "cannot record this session, so nothing more runs", kExitInternal};
		return;
	}
	if (auto r = channel.transcript->input(received); !r) {
		note_transcript_failure(channel, r.error());
		channel.ending = ChannelEnding{"error", "cannot record this command, so it does not run: " + r.error().message,
		                               kExitInternal};
		return;
	}

	std::string line = received;
	if (channel.mode != CommandChannel::Mode::exec && !line.empty() && line.back() == '\r')
		line.pop_back();   // a script written with CR LF line ends
	// Blank lines in a shell or script do nothing. In the subsystem every
	// request gets a status line, so a blank one is denied as empty.
	if (channel.mode == CommandChannel::Mode::shell && line.find_first_not_of(" \t") == std::string::npos)
		return;
	if (run_builtin(channel, line))
		return;

	if (channel.mode == CommandChannel::Mode::subsystem && line.front() == '[') {
		auto converted = json_words_to_line(line, kMaxJsonWords);
		if (!converted) {
			DecisionRecord record;
			record.reason = "denied: " + converted.error().message;
			record.policy_version = channel.policy->version;
			if (auto r = channel.transcript->decision(record); !r)
				note_transcript_failure(channel, r.error());
			after_command(channel, kExitDenied, record.reason);
			return;
		}
		line = *converted;
	}
	start_verb(channel, line, event);
}

void SessionRunner::after_command(CommandChannel& channel, int exit_status, const std::string& status_line)
{
	channel.last_exit_status = exit_status;
	channel.last_activity = std::chrono::steady_clock::now();
	const bool failed = exit_status != 0;

	switch (channel.mode) {
	case CommandChannel::Mode::exec:
		// An ending jead chose (expiry, revocation, shutdown) keeps its
		// reason and status, and its message is sent once, at the end.
		if (channel.ending)
			return;
		if (!status_line.empty())
			tell_client(channel, status_line);
		channel.ending = ChannelEnding{channel.client_end_reason, "", exit_status};
		return;
	case CommandChannel::Mode::subsystem: {
		if (channel.ending)
			return;
		std::string status;
		if (exit_status == kExitDenied && status_line.rfind("denied: ", 0) == 0)
			status = "jea-status denied " + escape_untrusted(status_line.substr(8), 1024) + "\n";
		else if (!status_line.empty())
			status = "jea-status error " + std::to_string(exit_status) + " " + escape_untrusted(status_line, 1024) + "\n";
		else
			status = "jea-status exit " + std::to_string(exit_status) + "\n";
		write_to_client(channel, status, false);
		return;
	}
	case CommandChannel::Mode::shell:
		if (channel.ending)
			return;
		if (!status_line.empty())
			tell_client(channel, status_line);
		else if (failed && channel.pty)
			tell_client(channel, "exit status " + std::to_string(exit_status));
		if (failed && !channel.pty && channel.policy->config.stop_on_error)
			channel.ending = ChannelEnding{"exit", "", exit_status};
		return;
	case CommandChannel::Mode::none:
		return;
	}
}

void SessionRunner::finish_channel(CommandChannel& channel, ssh_event event)
{
	// A notification still running when the session ends is reaped later.
	if (channel.pending_notification) {
		notifications_.push_back(channel.pending_notification->pid);
		channel.pending_notification.reset();
	}
	if (channel.run) {
		// Let the program end first; its exit is recorded before the end.
		if (!channel.run->term_sent)
			stop_verb(channel, channel.ending ? channel.ending->message : "the session ended", kExitInternal);
		return;
	}
	(void)event;
	const ChannelEnding ending = channel.ending.value_or(ChannelEnding{"exit", "", channel.last_exit_status});
	if (!ending.message.empty() && !channel.ending_message_sent) {
		// In the subsystem the reason is the last status line, which is also
		// the status of a request still waiting for one.
		if (channel.mode == CommandChannel::Mode::subsystem)
			write_to_client(channel,
			                "jea-status error " + std::to_string(ending.exit_status) + " " +
			                    escape_untrusted(ending.message, 1024) + "\n",
			                false);
		else
			tell_client(channel, ending.message);
		channel.ending_message_sent = true;
	}
	// Output the client has not taken yet goes out before the exit status
	// and the close, at the client's pace.
	if (!flush_outbox(channel))
		return;
	// The end record is on disk before the client learns the session is
	// over, so whoever sees the exit status can read a sealed transcript.
	if (channel.transcript && !channel.transcript_failed)
		end_transcript(channel, ending.reason);
	channel.transcript.reset();
	if (channel.channel) {
		if (!ending.exit_signal_sent)
			ssh_channel_request_send_exit_status(channel.channel, ending.exit_status);
		ssh_channel_send_eof(channel.channel);
		ssh_channel_close(channel.channel);
	}
	channel.state = CommandChannel::State::finished;
	log_session_event(channel.break_glass, "session={} ended: {} (exit status {}, {} commands run)",
	                  channel.session_id, ending.reason, ending.exit_status, channel.commands_run);
	if (channel.connection)
		(void)notify(channel, "end");
}

void SessionRunner::end_transcript(CommandChannel& channel, std::string_view reason)
{
	if (auto r = channel.transcript->end(reason); !r) {
		note_transcript_failure(channel, r.error());
		return;
	}
	// The next session's header links to this end record, so that a
	// deleted transcript breaks the chain.
	last_end_hash_ = channel.transcript->end_hash();
}

void SessionRunner::service(Connection& connection, ssh_event event)
{
	for (auto& channel : connection.channels)
		service_channel(*channel, event);
	free_closed_channels(connection);
}

// Frees the channels that have finished and that the client has closed
// too: libssh then frees its side at once, and a long connection that
// opens and closes many channels keeps only the live ones.
void SessionRunner::free_closed_channels(Connection& connection)
{
	const auto before = connection.channels.size();
	std::erase_if(connection.channels, [](const std::unique_ptr<CommandChannel>& channel) {
		const bool never_used =
			channel->state == CommandChannel::State::open && channel->mode == CommandChannel::Mode::none;
		if (!channel->peer_closed || (channel->state != CommandChannel::State::finished && !never_used))
			return false;
		if (channel->channel) {
			ssh_remove_channel_callbacks(channel->channel, &channel->callbacks);
			ssh_channel_free(channel->channel);
		}
		return true;
	});
	if (connection.channels.size() != before)
		spdlog::debug("session={} freed {} closed channels; {} channels remain on the connection", connection.id,
		              before - connection.channels.size(), connection.channels.size());
}

void SessionRunner::end_connection(Connection& connection, const ChannelEnding& ending, ssh_event event)
{
	for (auto& channel : connection.channels) {
		if (channel->state == CommandChannel::State::finished)
			continue;
		if (channel->state == CommandChannel::State::open && channel->mode == CommandChannel::Mode::none) {
			// No request yet, so there is no session to end: only the close.
			if (channel->channel)
				ssh_channel_close(channel->channel);
			channel->state = CommandChannel::State::finished;
			continue;
		}
		channel->ending = ending;
		if (channel->run)
			stop_verb(*channel, ending.message, ending.exit_status);
		service_channel(*channel, event);
	}
	free_closed_channels(connection);
}

bool SessionRunner::all_finished(const Connection& connection)
{
	return std::all_of(connection.channels.begin(), connection.channels.end(), [](const auto& channel) {
		return channel->state == CommandChannel::State::finished;
	});
}

void SessionRunner::close_connection(Connection& connection, std::string_view reason)
{
	for (auto& channel : connection.channels) {
		if (channel->channel)
			ssh_remove_channel_callbacks(channel->channel, &channel->callbacks);
		channel->channel = nullptr;
		channel->connection = nullptr;
		if (channel->state == CommandChannel::State::finished)
			continue;
		if (!channel->ending)
			channel->ending = ChannelEnding{std::string(reason), "", kExitInternal};
		if (channel->run) {
			stop_verb(*channel, "the connection ended (" + std::string(reason) + "), so the program was stopped",
			          kExitInternal);
			draining_.push_back(std::move(channel));
			continue;
		}
		if (channel->transcript && !channel->transcript_failed)
			end_transcript(*channel, channel->ending->reason);
		channel->transcript.reset();
	}
	connection.channels.clear();
}

Result<void> SessionRunner::notify(CommandChannel& channel, std::string_view event)
{
	const Connection& connection = *channel.connection;
	const Role& role = *connection.grant->role;
	if (!role.break_glass || role.notify.empty())
		return {};

	const auto& cert = connection.grant->certificate;
	std::string principals;
	for (const auto& principal : cert.principals)
		principals += (principals.empty() ? "" : ",") + principal;
	const std::map<std::string_view, std::string> values = {
		{"{event}", std::string(event)},
		{"{role}", role.name},
		{"{key_id}", cert.key_id},
		{"{serial}", std::to_string(cert.serial)},
		{"{principals}", principals},
		{"{client}", connection.client_endpoint},
	};
	SpawnRequest request;
	for (const auto& element : role.notify) {
		const auto it = values.find(element);
		request.argv.push_back(it == values.end() ? element : it->second);
	}
	request.environment = base_environment();
	request.discard_output = true;
	auto run_as = resolve_run_as(role.run_as_user, role.run_as_group);
	if (run_as)
		request.run_as = *run_as;

	const auto failed = [&](const std::string& why) -> Result<void> {
		spdlog::error("session={} break-glass notification ({}) failed: {}", channel.session_id, event, why);
		if (role.notify_required)
			return fail(Errc::internal, "the break-glass notification failed (" + why +
			                                "), and this role requires it, so the session is refused");
		return {};
	};
	if (!run_as)
		return failed(run_as.error().message);
	auto process = spawn_process(request);
	if (!process)
		return failed(process.error().message);
	// Only the start of a session waits for a required notification; the
	// end notification is reaped later and its failure only logged.
	if (!role.notify_required || event != "start") {
		notifications_.push_back(process->pid);
		return {};
	}
	// The wait happens in service_channel, so other sessions go on.
	channel.pending_notification =
		CommandChannel::PendingNotification{process->pid, std::chrono::steady_clock::now() + kNotifyTimeout};
	return {};
}

// Returns true once the pending notification has exited 0. A failure or
// timeout sets the channel's ending; until then, returns false.
bool SessionRunner::notification_passed(CommandChannel& channel)
{
	const auto pending = *channel.pending_notification;
	int status = 0;
	std::string why;
	if (::waitpid(pending.pid, &status, WNOHANG) == pending.pid) {
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			channel.pending_notification.reset();
			return true;
		}
		why = WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
		                        : "killed by signal " + std::to_string(WTERMSIG(status));
	} else if (std::chrono::steady_clock::now() >= pending.deadline) {
		::kill(-pending.pid, SIGKILL);
		::waitpid(pending.pid, nullptr, 0);
		why = "timed out after " + std::to_string(kNotifyTimeout.count()) + " s";
	} else {
		return false;
	}
	channel.pending_notification.reset();
	spdlog::error("session={} break-glass notification (start) failed: {}", channel.session_id, why);
	channel.ending = ChannelEnding{"error",
	                               "the break-glass notification failed (" + why +
	                                   "), and this role requires it, so the session is refused",
	                               kExitInternal};
	return false;
}

void SessionRunner::reap_notifications()
{
	for (auto it = notifications_.begin(); it != notifications_.end();) {
		int status = 0;
		if (::waitpid(*it, &status, WNOHANG) != *it) {
			++it;
			continue;
		}
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			spdlog::error("break-glass notification program (pid {}) failed with status {}", *it, status);
		it = notifications_.erase(it);
	}
}

void SessionRunner::service_draining(ssh_event event)
{
	reap_notifications();
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
	const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(9);
	while (!draining_.empty() && std::chrono::steady_clock::now() < deadline) {
		ssh_event_dopoll(event, 100);
		service_draining(event);
	}
	for (auto& channel : draining_) {
		if (channel->run) {
			::kill(-channel->run->process.pid, SIGKILL);
			channel->state = CommandChannel::State::finished;   // makes sync_watches remove every watch
			sync_watches(*channel, event);
		}
		if (channel->transcript && !channel->transcript_failed)
			end_transcript(*channel, "server-shutdown");
	}
	draining_.clear();
}

}  // namespace jead
