// Role files: TOML in, a validated Role out. Every key is known or an error,
// and every error reads "FILE:LINE:COL: message" with the position toml++
// records for the offending key or value.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <system_error>

#include <toml++/toml.h>

#include "common/duration.h"
#include "common/escape.h"
#include "roles/arguments.h"
#include "roles/limits.h"
#include "roles/role.h"

namespace jead {

namespace {

std::string shown_text(std::string_view text)
{
	return escape_untrusted(text, 128);
}

bool is_name_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// [a-z0-9][a-z0-9-]* (plus '_' after the first byte when `allow_underscore`),
// at most limits::kMaxNameBytes long.
bool is_valid_name(std::string_view name, bool allow_underscore = false)
{
	if (name.empty() || name.size() > limits::kMaxNameBytes || !is_name_start(name.front()))
		return false;
	for (const char c : name)
		if (!is_name_start(c) && c != '-' && !(allow_underscore && c == '_'))
			return false;
	return true;
}

// A POSIX portable user or group name: [A-Za-z0-9_][A-Za-z0-9_.-]*, at most
// 32 bytes, so it never starts with '-'.
bool is_valid_account_name(std::string_view name)
{
	if (name.empty() || name.size() > 32 || name.front() == '-' || name.front() == '.')
		return false;
	for (const char c : name) {
		const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
		                c == '.' || c == '-';
		if (!ok)
			return false;
	}
	return true;
}

bool is_valid_environment_name(std::string_view name)
{
	if (name.empty() || name.size() > limits::kMaxNameBytes || (name.front() >= '0' && name.front() <= '9'))
		return false;
	for (const char c : name) {
		const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
		if (!ok)
			return false;
	}
	return true;
}

bool has_control_byte(std::string_view text, bool allow_newline_and_tab)
{
	for (const char c : text) {
		const auto b = static_cast<unsigned char>(c);
		if (allow_newline_and_tab && (c == '\n' || c == '\t'))
			continue;
		if (b < 0x20 || b == 0x7F)
			return true;
	}
	return false;
}

// Reading context for one role file: turns toml++ source positions into
// "FILE:LINE:COL" and builds errors.
class Reader {
public:
	explicit Reader(std::string file) : file_(std::move(file)) {}

	std::string where(const toml::source_region& region) const
	{
		return file_ + ":" + std::to_string(region.begin.line) + ":" + std::to_string(region.begin.column);
	}

	tl::unexpected<Error> error(const toml::source_region& region, std::string message, Errc code = Errc::invalid) const
	{
		return fail(code, where(region) + ": " + message);
	}

	// Rejects every key of `table` that is not in `allowed`.
	Result<void> check_keys(const toml::table& table, const std::vector<std::string_view>& allowed,
	                        std::string_view context) const
	{
		for (auto&& [key, node] : table) {
			(void)node;
			if (std::find(allowed.begin(), allowed.end(), key.str()) == allowed.end())
				return error(key.source(), "unknown key " + shown_text(key.str()) + " in " + std::string(context));
		}
		return {};
	}

	Result<std::string> text(const toml::node& node, std::string_view key, bool multiline = false) const
	{
		const auto* value = node.as_string();
		if (value == nullptr)
			return error(node.source(), "\"" + std::string(key) + "\" must be a string");
		const std::string& s = value->get();
		if (s.size() > limits::kMaxTextBytes)
			return error(node.source(), "\"" + std::string(key) + "\" is longer than the maximum of " +
			                                std::to_string(limits::kMaxTextBytes) + " bytes");
		if (has_control_byte(s, multiline))
			return error(node.source(), "\"" + std::string(key) + "\" contains a control character: " + shown_text(s));
		return s;
	}

	Result<bool> boolean(const toml::node& node, std::string_view key) const
	{
		const auto* value = node.as_boolean();
		if (value == nullptr)
			return error(node.source(), "\"" + std::string(key) + "\" must be true or false");
		return value->get();
	}

	Result<std::int64_t> integer(const toml::node& node, std::string_view key) const
	{
		const auto* value = node.as_integer();
		if (value == nullptr)
			return error(node.source(), "\"" + std::string(key) + "\" must be an integer");
		return value->get();
	}

	Result<const toml::array*> array(const toml::node& node, std::string_view key, std::size_t max_items) const
	{
		const auto* value = node.as_array();
		if (value == nullptr)
			return error(node.source(), "\"" + std::string(key) + "\" must be an array");
		if (value->size() > max_items)
			return error(node.source(),
			             "\"" + std::string(key) + "\" has " + std::to_string(value->size()) +
			                 " items, more than the maximum of " + std::to_string(max_items),
			             Errc::limit);
		return value;
	}

	Result<std::vector<std::string>> string_array(const toml::node& node, std::string_view key,
	                                              std::size_t max_items) const
	{
		auto items = array(node, key, max_items);
		if (!items)
			return tl::unexpected(items.error());
		std::vector<std::string> out;
		for (const auto& item : **items) {
			auto s = text(item, key);
			if (!s)
				return tl::unexpected(s.error());
			out.push_back(std::move(*s));
		}
		return out;
	}

	Result<std::chrono::seconds> duration(const toml::node& node, std::string_view key) const
	{
		auto s = text(node, key);
		if (!s)
			return tl::unexpected(s.error());
		auto parsed = parse_duration(*s);
		if (!parsed)
			return error(node.source(), "\"" + std::string(key) + "\": " + parsed.error().message);
		return *parsed;
	}

	Result<std::uint64_t> size(const toml::node& node, std::string_view key) const
	{
		auto s = text(node, key);
		if (!s)
			return tl::unexpected(s.error());
		auto parsed = parse_size(*s);
		if (!parsed)
			return error(node.source(), "\"" + std::string(key) + "\": " + shown_text(*s) + " " + parsed.error().message);
		return *parsed;
	}

	Result<std::string> absolute_path(const toml::node& node, std::string_view key) const
	{
		auto s = text(node, key);
		if (!s)
			return tl::unexpected(s.error());
		auto normalized = normalize_absolute_path(*s);
		if (!normalized)
			return error(node.source(), "\"" + std::string(key) + "\": " + shown_text(*s) + " " + normalized.error().message);
		return *normalized;
	}

	Result<std::string> account_name(const toml::node& node, std::string_view key) const
	{
		auto s = text(node, key);
		if (!s)
			return tl::unexpected(s.error());
		if (!is_valid_account_name(*s))
			return error(node.source(), "\"" + std::string(key) + "\": " + shown_text(*s) +
			                                " is not a valid user or group name ([A-Za-z0-9_][A-Za-z0-9_.-]*, at most 32 bytes)");
		return *s;
	}

private:
	std::string file_;
};

// Unwraps a Result into `target`, or returns its error from the enclosing
// function.
#define JEAD_ASSIGN(target, expression)                  \
	do {                                                 \
		auto jead_result_ = (expression);                \
		if (!jead_result_)                               \
			return tl::unexpected(jead_result_.error()); \
		target = std::move(*jead_result_);               \
	} while (false)

#define JEAD_CHECK(expression)                           \
	do {                                                 \
		auto jead_result_ = (expression);                \
		if (!jead_result_)                               \
			return tl::unexpected(jead_result_.error()); \
	} while (false)

std::optional<ArgType> parse_arg_type(std::string_view name)
{
	static constexpr ArgType kTypes[] = {ArgType::enum_, ArgType::int_,  ArgType::string,   ArgType::path,
	                                     ArgType::hostname, ArgType::ip, ArgType::cidr, ArgType::duration,
	                                     ArgType::size,  ArgType::flag};
	for (const ArgType type : kTypes)
		if (arg_type_name(type) == name)
			return type;
	return std::nullopt;
}

// The keys an argument of `type` accepts.
std::vector<std::string_view> type_keys(ArgType type)
{
	std::vector<std::string_view> keys = {"name", "type", "description"};
	if (type == ArgType::flag) {
		keys.push_back("flag");
		return keys;
	}
	keys.insert(keys.end(), {"optional", "default", "variadic", "max_count"});

	switch (type) {
	case ArgType::enum_: keys.push_back("values"); break;
	case ArgType::int_: keys.insert(keys.end(), {"min", "max"}); break;
	case ArgType::string: keys.insert(keys.end(), {"pattern", "max_length", "allow_leading_dash"}); break;
	case ArgType::path: keys.insert(keys.end(), {"prefixes", "kind", "must_exist", "follow_symlinks", "bind"}); break;
	case ArgType::hostname: keys.insert(keys.end(), {"allow_ip", "allow_trailing_dot", "allow_idn"}); break;
	case ArgType::ip:
	case ArgType::cidr: break;
	case ArgType::duration: keys.insert(keys.end(), {"min", "max"}); break;
	case ArgType::size: keys.push_back("max"); break;
	case ArgType::flag: break;
	}
	return keys;
}

const toml::node* find(const toml::table& table, std::string_view key)
{
	return table.get(key);
}

// Reads the settings that only some types have into `spec`.
Result<void> parse_type_settings(const Reader& reader, const toml::table& table, ArgSpec& spec)
{
	const std::string context = "argument \"" + spec.name + "\"";

	switch (spec.type) {
	case ArgType::enum_: {
		const auto* values = find(table, "values");
		if (values == nullptr)
			return reader.error(table.source(), context + " of type enum needs \"values\"");
		JEAD_ASSIGN(spec.values, reader.string_array(*values, "values", limits::kMaxEnumValues));
		if (spec.values.empty())
			return reader.error(values->source(), "\"values\" of " + context + " is empty");
		std::set<std::string_view> seen;
		for (const auto& value : spec.values) {
			if (value.empty())
				return reader.error(values->source(), "\"values\" of " + context + " contains an empty string");
			if (!seen.insert(value).second)
				return reader.error(values->source(), "\"values\" of " + context + " lists " + shown_text(value) + " twice");
		}
		break;
	}
	case ArgType::int_: {
		const auto* min = find(table, "min");
		const auto* max = find(table, "max");
		if (min == nullptr || max == nullptr)
			return reader.error(table.source(), context + " of type int needs both \"min\" and \"max\"");
		JEAD_ASSIGN(spec.min, reader.integer(*min, "min"));
		JEAD_ASSIGN(spec.max, reader.integer(*max, "max"));
		if (spec.min > spec.max)
			return reader.error(min->source(), context + ": \"min\" " + std::to_string(spec.min) +
			                                       " is greater than \"max\" " + std::to_string(spec.max));
		break;
	}
	case ArgType::string: {
		const auto* pattern = find(table, "pattern");
		if (pattern == nullptr)
			return reader.error(table.source(), context + " of type string needs a \"pattern\"");
		JEAD_ASSIGN(spec.pattern, reader.text(*pattern, "pattern"));
		auto compiled = compile_pattern(spec.pattern);
		if (!compiled)
			return reader.error(pattern->source(), context + ": " + compiled.error().message);
		spec.compiled_pattern = *compiled;

		spec.max_length = limits::kDefaultStringMaxLength;
		if (const auto* max_length = find(table, "max_length")) {
			std::int64_t length = 0;
			JEAD_ASSIGN(length, reader.integer(*max_length, "max_length"));
			if (length < 1 || static_cast<std::uint64_t>(length) > limits::kMaxStringMaxLength)
				return reader.error(max_length->source(), context + ": \"max_length\" must be 1.." +
				                                              std::to_string(limits::kMaxStringMaxLength));
			spec.max_length = static_cast<std::size_t>(length);
			spec.max_length_set = true;
		}
		if (const auto* dash = find(table, "allow_leading_dash"))
			JEAD_ASSIGN(spec.allow_leading_dash, reader.boolean(*dash, "allow_leading_dash"));
		break;
	}
	case ArgType::path: {
		const auto* prefixes = find(table, "prefixes");
		if (prefixes == nullptr)
			return reader.error(table.source(), context + " of type path needs \"prefixes\"");
		const toml::array* items = nullptr;
		JEAD_ASSIGN(items, reader.array(*prefixes, "prefixes", limits::kMaxPathPrefixes));
		if (items->empty())
			return reader.error(prefixes->source(), "\"prefixes\" of " + context + " is empty");
		for (const auto& item : *items) {
			std::string prefix;
			JEAD_ASSIGN(prefix, reader.absolute_path(item, "prefixes"));
			spec.prefixes.push_back(std::move(prefix));
		}
		if (const auto* kind = find(table, "kind")) {
			std::string kind_text;
			JEAD_ASSIGN(kind_text, reader.text(*kind, "kind"));
			if (kind_text == "file")
				spec.path_kind = PathKind::file;
			else if (kind_text == "dir")
				spec.path_kind = PathKind::dir;
			else if (kind_text == "any")
				spec.path_kind = PathKind::any;
			else
				return reader.error(kind->source(), context + ": unknown \"kind\" " + shown_text(kind_text) +
				                                        " (expected \"file\", \"dir\" or \"any\")");
		}
		if (const auto* must_exist = find(table, "must_exist"))
			JEAD_ASSIGN(spec.must_exist, reader.boolean(*must_exist, "must_exist"));
		if (const auto* follow = find(table, "follow_symlinks"))
			JEAD_ASSIGN(spec.follow_symlinks, reader.boolean(*follow, "follow_symlinks"));
		if (const auto* bind = find(table, "bind")) {
			std::string bind_text;
			JEAD_ASSIGN(bind_text, reader.text(*bind, "bind"));
			if (bind_text == "descriptor")
				spec.bind_descriptor = true;
			else if (bind_text != "name")
				return reader.error(bind->source(), context + ": unknown \"bind\" " + shown_text(bind_text) +
				                                        " (expected \"name\" or \"descriptor\")");
			// The file is opened before the program starts, so it must
			// exist; a verb that creates its file cannot get a descriptor.
			if (spec.bind_descriptor && !spec.must_exist)
				return reader.error(bind->source(), context + ": bind = \"descriptor\" needs must_exist = true, "
				                                              "because jead opens the file before the program starts");
		}
		break;
	}
	case ArgType::hostname:
		if (const auto* node = find(table, "allow_ip"))
			JEAD_ASSIGN(spec.allow_ip, reader.boolean(*node, "allow_ip"));
		if (const auto* node = find(table, "allow_trailing_dot"))
			JEAD_ASSIGN(spec.allow_trailing_dot, reader.boolean(*node, "allow_trailing_dot"));
		if (const auto* node = find(table, "allow_idn"))
			JEAD_ASSIGN(spec.allow_idn, reader.boolean(*node, "allow_idn"));
		break;
	case ArgType::ip:
	case ArgType::cidr:
		break;
	case ArgType::duration:
		if (const auto* min = find(table, "min"))
			JEAD_ASSIGN(spec.min_duration, reader.duration(*min, "min"));
		if (const auto* max = find(table, "max")) {
			JEAD_ASSIGN(spec.max_duration, reader.duration(*max, "max"));
			if (*spec.max_duration < spec.min_duration)
				return reader.error(max->source(), context + ": \"max\" is shorter than \"min\"");
		}
		break;
	case ArgType::size:
		if (const auto* max = find(table, "max"))
			JEAD_ASSIGN(spec.max_size, reader.size(*max, "max"));
		break;
	case ArgType::flag: {
		const auto* flag = find(table, "flag");
		if (flag == nullptr)
			return reader.error(table.source(), context + " of type flag needs \"flag\", the literal switch");
		JEAD_ASSIGN(spec.flag_text, reader.text(*flag, "flag"));
		const bool well_formed = spec.flag_text.size() >= 2 && spec.flag_text.front() == '-' &&
		                         spec.flag_text.find_first_of(" \t") == std::string::npos &&
		                         spec.flag_text.size() <= limits::kMaxNameBytes;
		if (!well_formed)
			return reader.error(flag->source(), context + ": \"flag\" " + shown_text(spec.flag_text) +
			                                        " must start with \"-\" and contain no spaces");
		spec.optional = true;
		break;
	}
	}
	return {};
}

// Checks an argument's default value with the same validator the client's
// words go through. Path defaults are only checked lexically here, because
// whether they exist is decided when the command runs.
Result<void> check_default(const Reader& reader, const toml::node& node, const ArgSpec& spec)
{
	const std::string& value = *spec.default_value;
	Result<std::string> checked;
	if (spec.type == ArgType::path) {
		checked = normalize_absolute_path(value);
		const bool inside = checked && std::any_of(spec.prefixes.begin(), spec.prefixes.end(),
		                                           [&](const std::string& prefix) { return path_within(*checked, prefix); });
		if (checked && !inside)
			checked = fail(Errc::invalid, "is not under any of the prefixes");
		if (!checked)
			checked = fail(Errc::invalid, "argument \"" + spec.name + "\": " + shown_text(value) + " " + checked.error().message);
	} else {
		checked = validate_argument(spec, value);
	}
	if (!checked)
		return reader.error(node.source(), "invalid \"default\": " + checked.error().message);
	return {};
}

Result<ArgSpec> parse_arg(const Reader& reader, const toml::node& node, std::string_view verb_name)
{
	const auto* table = node.as_table();
	if (table == nullptr)
		return reader.error(node.source(), "each item of \"args\" in verb " + shown_text(verb_name) + " must be a table");

	ArgSpec spec;
	spec.location = reader.where(table->source());
	const auto* name = find(*table, "name");
	if (name == nullptr)
		return reader.error(table->source(), "argument of verb " + shown_text(verb_name) + " has no \"name\"");
	JEAD_ASSIGN(spec.name, reader.text(*name, "name"));
	if (!is_valid_name(spec.name, true))
		return reader.error(name->source(), "invalid argument name " + shown_text(spec.name) +
		                                        " (expected [a-z0-9][a-z0-9_-]*, at most 64 bytes)");

	const auto* type = find(*table, "type");
	if (type == nullptr)
		return reader.error(table->source(), "argument \"" + spec.name + "\" has no \"type\"");
	std::string type_text;
	JEAD_ASSIGN(type_text, reader.text(*type, "type"));
	const auto parsed_type = parse_arg_type(type_text);
	if (!parsed_type)
		return reader.error(type->source(), "unknown argument type " + shown_text(type_text) +
		                                        " (expected enum, int, string, path, hostname, ip, cidr, duration, size or flag)");
	spec.type = *parsed_type;

	const std::string context = "argument \"" + spec.name + "\" of type " + type_text;
	JEAD_CHECK(reader.check_keys(*table, type_keys(spec.type), context));

	if (const auto* description = find(*table, "description"))
		JEAD_ASSIGN(spec.description, reader.text(*description, "description", true));
	if (const auto* optional = find(*table, "optional"))
		JEAD_ASSIGN(spec.optional, reader.boolean(*optional, "optional"));
	if (const auto* variadic = find(*table, "variadic"))
		JEAD_ASSIGN(spec.variadic, reader.boolean(*variadic, "variadic"));

	if (const auto* max_count = find(*table, "max_count")) {
		if (!spec.variadic)
			return reader.error(max_count->source(), "\"max_count\" of argument \"" + spec.name + "\" needs variadic = true");
		std::int64_t count = 0;
		JEAD_ASSIGN(count, reader.integer(*max_count, "max_count"));
		if (count < 1 || static_cast<std::uint64_t>(count) > limits::kMaxCommandWords)
			return reader.error(max_count->source(), "\"max_count\" of argument \"" + spec.name + "\" must be 1.." +
			                                             std::to_string(limits::kMaxCommandWords));
		spec.max_count = static_cast<std::size_t>(count);
	} else if (spec.variadic) {
		spec.max_count = limits::kDefaultVariadicMaxCount;
	}

	JEAD_CHECK(parse_type_settings(reader, *table, spec));

	if (const auto* default_node = find(*table, "default")) {
		if (spec.variadic)
			return reader.error(default_node->source(), "variadic argument \"" + spec.name + "\" cannot have a \"default\"");
		if (const auto* integer = default_node->as_integer(); integer != nullptr && spec.type == ArgType::int_)
			spec.default_value = std::to_string(integer->get());
		else
			JEAD_ASSIGN(spec.default_value, reader.text(*default_node, "default"));
		spec.optional = true;
		JEAD_CHECK(check_default(reader, *default_node, spec));
	}
	return spec;
}

// Checks the order rules of a verb's arguments: a variadic argument is the
// last one, and required positional arguments come before optional ones so
// the words map to arguments in one obvious way.
Result<void> check_arg_order(const Reader& reader, const toml::array& nodes, const std::vector<ArgSpec>& args)
{
	bool seen_optional = false;
	for (std::size_t i = 0; i < args.size(); ++i) {
		const ArgSpec& arg = args[i];
		const auto& where = nodes[i].source();
		if (arg.variadic && i + 1 != args.size())
			return reader.error(where, "variadic argument \"" + arg.name + "\" must be the last argument");
		if (arg.type == ArgType::flag)
			continue;
		if (arg.optional)
			seen_optional = true;
		else if (seen_optional)
			return reader.error(where, "required argument \"" + arg.name + "\" follows an optional argument");
	}
	return {};
}

Result<void> parse_args(const Reader& reader, const toml::node& node, Verb& verb)
{
	const toml::array* nodes = nullptr;
	JEAD_ASSIGN(nodes, reader.array(node, "args", limits::kMaxArgsPerVerb));

	for (const auto& item : *nodes) {
		ArgSpec spec;
		JEAD_ASSIGN(spec, parse_arg(reader, item, verb.name));
		for (const auto& other : verb.args)
			if (other.name == spec.name)
				return reader.error(item.source(), "duplicate argument \"" + spec.name + "\" in verb " + shown_text(verb.name));
		if (spec.type == ArgType::flag)
			for (const auto& other : verb.args)
				if (other.type == ArgType::flag && other.flag_text == spec.flag_text)
					return reader.error(item.source(), "duplicate flag " + shown_text(spec.flag_text) + " in verb " + shown_text(verb.name));
		verb.args.push_back(std::move(spec));
	}
	return check_arg_order(reader, *nodes, verb.args);
}

// Parses one template element: "{name}" is a placeholder for an argument,
// anything else a literal where "{{" and "}}" stand for single braces.
Result<TemplateElement> parse_template_element(const Reader& reader, const toml::node& node, const std::string& text,
                                               const Verb& verb)
{
	if (text.size() >= 2 && text.front() == '{' && text.back() == '}' && text.find_first_of("{}", 1) == text.size() - 1) {
		const std::string name = text.substr(1, text.size() - 2);
		for (std::size_t i = 0; i < verb.args.size(); ++i)
			if (verb.args[i].name == name)
				return TemplateElement{{}, i};
		return reader.error(node.source(), "placeholder " + shown_text(text) + " names no argument of verb " + shown_text(verb.name));
	}

	std::string literal;
	for (std::size_t i = 0; i < text.size(); ++i) {
		const char c = text[i];
		if ((c == '{' || c == '}') && i + 1 < text.size() && text[i + 1] == c) {
			literal += c;
			++i;
		} else if (c == '{' || c == '}') {
			return reader.error(node.source(), "command element " + shown_text(text) +
			                                       " mixes a placeholder with other text: a placeholder must be the whole "
			                                       "element, and a literal brace is written {{ or }}");
		} else {
			literal += c;
		}
	}
	return TemplateElement{std::move(literal), std::nullopt};
}

// Parses "command" into the program and the argv template. `arg_nodes` are
// the verb's "args" items, used to point at an argument no placeholder uses.
Result<void> parse_command(const Reader& reader, const toml::node& node, const toml::array* arg_nodes, Verb& verb)
{
	std::vector<std::string> elements;
	JEAD_ASSIGN(elements, reader.string_array(node, "command", limits::kMaxCommandElements));
	const auto& nodes = *node.as_array();
	if (elements.empty())
		return reader.error(node.source(), "\"command\" of verb " + shown_text(verb.name) + " is empty");

	const std::string& program = elements.front();
	auto normalized = normalize_absolute_path(program);
	if (!normalized || *normalized != program || program.find_first_of("{}") != std::string::npos)
		return reader.error(nodes[0].source(), "program " + shown_text(program) +
		                                           " must be a normalised absolute path such as /usr/bin/systemctl");
	verb.program = program;
	verb.command = elements;

	std::vector<bool> used(verb.args.size(), false);
	for (std::size_t i = 1; i < elements.size(); ++i) {
		TemplateElement element;
		JEAD_ASSIGN(element, parse_template_element(reader, nodes[i], elements[i], verb));
		if (element.arg_index) {
			if (used[*element.arg_index])
				return reader.error(nodes[i].source(), "placeholder " + shown_text(elements[i]) + " is used twice");
			used[*element.arg_index] = true;
		}
		verb.argv_template.push_back(std::move(element));
	}

	for (std::size_t i = 0; i < verb.args.size(); ++i)
		if (!used[i])
			return reader.error(arg_nodes != nullptr ? (*arg_nodes)[i].source() : node.source(), "argument \"" + verb.args[i].name + "\" of verb " + shown_text(verb.name) +
			                                       " is not used by any placeholder in \"command\"");
	return {};
}

Result<RecordMode> parse_record_mode(const Reader& reader, const toml::node& node, std::string_view key)
{
	std::string text;
	JEAD_ASSIGN(text, reader.text(node, key));
	if (text == "full")
		return RecordMode::full;
	if (text == "head-tail")
		return RecordMode::head_tail;
	if (text == "digest")
		return RecordMode::digest;
	return reader.error(node.source(), "\"" + std::string(key) + "\" must be \"full\", \"head-tail\" or \"digest\", not " +
	                                       shown_text(text));
}

// Reads record_output, record_stdin, record_head and record_tail: how much
// of the verb's streams its transcript keeps.
Result<void> parse_recording(const Reader& reader, const toml::table& table, Verb& verb)
{
	if (const auto* node = find(table, "record_output"))
		JEAD_ASSIGN(verb.record_output, parse_record_mode(reader, *node, "record_output"));
	if (const auto* node = find(table, "record_stdin")) {
		if (!verb.reads_stdin)
			return reader.error(node->source(), "\"record_stdin\" of verb " + shown_text(verb.name) + " needs stdin = true");
		JEAD_ASSIGN(verb.record_stdin, parse_record_mode(reader, *node, "record_stdin"));
	}

	const bool head_tail = verb.record_output == RecordMode::head_tail || verb.record_stdin == RecordMode::head_tail;
	for (const auto& [key, bytes] : {std::pair{"record_head", &verb.record_head_bytes},
	                                 std::pair{"record_tail", &verb.record_tail_bytes}}) {
		const auto* node = find(table, key);
		if (node == nullptr)
			continue;
		if (!head_tail)
			return reader.error(node->source(), "\"" + std::string(key) + "\" of verb " + shown_text(verb.name) +
			                                        " needs record_output or record_stdin = \"head-tail\"");
		JEAD_ASSIGN(*bytes, reader.size(*node, key));
	}
	if (verb.record_tail_bytes > kMaxRecordTailBytes)
		return reader.error(find(table, "record_tail")->source(),
		                    "\"record_tail\" of verb " + shown_text(verb.name) + " must be at most 16M");
	return {};
}

Result<Verb> parse_verb(const Reader& reader, const toml::node& node)
{
	const auto* table = node.as_table();
	if (table == nullptr)
		return reader.error(node.source(), "each [[verb]] must be a table");
	JEAD_CHECK(reader.check_keys(*table,
	                             {"name", "description", "command", "args", "timeout", "max_output", "stdin",
	                              "interactive", "run_as_user", "record_output", "record_stdin", "record_head",
	                              "record_tail", "record_keystrokes", "max_concurrent", "max_per_hour"},
	                             "[[verb]]"));

	Verb verb;
	verb.location = reader.where(table->source());
	const auto* name = find(*table, "name");
	if (name == nullptr)
		return reader.error(table->source(), "[[verb]] has no \"name\"");
	JEAD_ASSIGN(verb.name, reader.text(*name, "name"));
	if (!is_valid_name(verb.name))
		return reader.error(name->source(), "invalid verb name " + shown_text(verb.name) +
		                                        " (expected [a-z0-9][a-z0-9-]*, at most 64 bytes)");
	if (verb.name == "help" || verb.name == "exit")
		return reader.error(name->source(), "verb name " + shown_text(verb.name) +
		                                        " is reserved for the built-in command; choose another name");

	if (const auto* description = find(*table, "description"))
		JEAD_ASSIGN(verb.description, reader.text(*description, "description", true));
	const auto* args = find(*table, "args");
	if (args != nullptr)
		JEAD_CHECK(parse_args(reader, *args, verb));

	const auto* command = find(*table, "command");
	if (command == nullptr)
		return reader.error(table->source(), "verb " + shown_text(verb.name) + " has no \"command\"");
	JEAD_CHECK(parse_command(reader, *command, args != nullptr ? args->as_array() : nullptr, verb));

	if (const auto* timeout = find(*table, "timeout")) {
		JEAD_ASSIGN(verb.timeout, reader.duration(*timeout, "timeout"));
		if (verb.timeout.count() <= 0)
			return reader.error(timeout->source(), "\"timeout\" of verb " + shown_text(verb.name) + " must be longer than 0s");
	}
	if (const auto* max_output = find(*table, "max_output")) {
		JEAD_ASSIGN(verb.max_output_bytes, reader.size(*max_output, "max_output"));
		if (verb.max_output_bytes == 0)
			return reader.error(max_output->source(), "\"max_output\" of verb " + shown_text(verb.name) + " must be above 0");
	}
	if (const auto* stdin_node = find(*table, "stdin"))
		JEAD_ASSIGN(verb.reads_stdin, reader.boolean(*stdin_node, "stdin"));
	if (const auto* interactive = find(*table, "interactive"))
		JEAD_ASSIGN(verb.interactive, reader.boolean(*interactive, "interactive"));
	if (const auto* keystrokes = find(*table, "record_keystrokes")) {
		if (!verb.interactive)
			return reader.error(keystrokes->source(), "\"record_keystrokes\" of verb " + shown_text(verb.name) +
			                                              " needs interactive = true");
		JEAD_ASSIGN(verb.record_keystrokes, reader.boolean(*keystrokes, "record_keystrokes"));
	}
	if (const auto* user = find(*table, "run_as_user"))
		JEAD_ASSIGN(verb.run_as_user, reader.account_name(*user, "run_as_user"));
	JEAD_CHECK(parse_recording(reader, *table, verb));
	for (const auto& [key, target] : {std::pair{"max_concurrent", &verb.max_concurrent},
	                                  std::pair{"max_per_hour", &verb.max_per_hour}}) {
		const auto* node = find(*table, key);
		if (node == nullptr)
			continue;
		std::int64_t value = 0;
		JEAD_ASSIGN(value, reader.integer(*node, key));
		if (value < 1 || value > 1000000)
			return reader.error(node->source(), "\"" + std::string(key) + "\" of verb " + shown_text(verb.name) +
			                                        " must be from 1 to 1000000");
		*target = static_cast<std::uint32_t>(value);
	}
	return verb;
}

Result<RoleTest> parse_test(const Reader& reader, const toml::node& node)
{
	const auto* table = node.as_table();
	if (table == nullptr)
		return reader.error(node.source(), "each [[test]] must be a table");
	JEAD_CHECK(reader.check_keys(*table, {"line", "expect", "argv", "reason"}, "[[test]]"));

	RoleTest test;
	test.location = reader.where(table->source());
	const auto* line = find(*table, "line");
	if (line == nullptr || line->as_string() == nullptr)
		return reader.error(table->source(), "[[test]] needs a string \"line\"");
	// The line is kept as written, control bytes included, so tests can
	// check that such lines are denied.
	test.line = line->as_string()->get();

	const auto* expect = find(*table, "expect");
	if (expect == nullptr)
		return reader.error(table->source(), "[[test]] needs \"expect\" = \"allow\" or \"deny\"");
	std::string expect_text;
	JEAD_ASSIGN(expect_text, reader.text(*expect, "expect"));
	if (expect_text != "allow" && expect_text != "deny")
		return reader.error(expect->source(), "\"expect\" must be \"allow\" or \"deny\", not " + shown_text(expect_text));
	test.expect_allow = expect_text == "allow";

	if (const auto* argv = find(*table, "argv")) {
		if (!test.expect_allow)
			return reader.error(argv->source(), "\"argv\" needs expect = \"allow\"");
		JEAD_ASSIGN(test.argv, reader.string_array(*argv, "argv", limits::kMaxCommandWords + limits::kMaxCommandElements));
	}
	if (const auto* reason = find(*table, "reason")) {
		if (test.expect_allow)
			return reader.error(reason->source(), "\"reason\" needs expect = \"deny\"");
		JEAD_ASSIGN(test.reason_contains, reader.text(*reason, "reason"));
	}
	return test;
}

Result<void> parse_environment(const Reader& reader, const toml::node& node, Role& role)
{
	const auto* table = node.as_table();
	if (table == nullptr)
		return reader.error(node.source(), "\"environment\" must be a table of strings");
	if (table->size() > limits::kMaxEnvironmentEntries)
		return reader.error(node.source(), "\"environment\" has more than " +
		                                       std::to_string(limits::kMaxEnvironmentEntries) + " entries",
		                    Errc::limit);
	for (auto&& [key, value] : *table) {
		if (!is_valid_environment_name(key.str()))
			return reader.error(key.source(), "invalid environment variable name " + shown_text(key.str()) +
			                                      " (expected [A-Za-z_][A-Za-z0-9_]*)");
		std::string text;
		JEAD_ASSIGN(text, reader.text(value, key.str()));
		role.environment.emplace(std::string(key.str()), std::move(text));
	}
	return {};
}

// Reads the [limits] table: positive integers, except file_size, which is
// a size such as "1G".
Result<void> parse_limits(const Reader& reader, const toml::node& node, ResourceLimits& limits)
{
	const auto* table = node.as_table();
	if (table == nullptr)
		return reader.error(node.source(), "\"limits\" must be a table");
	JEAD_CHECK(reader.check_keys(*table, {"cpu_seconds", "open_files", "file_size", "processes"}, "[limits]"));

	const auto count = [&](std::string_view key, std::int64_t min) -> Result<std::optional<std::uint64_t>> {
		const auto* value = find(*table, key);
		if (value == nullptr)
			return std::nullopt;
		std::int64_t number = 0;
		JEAD_ASSIGN(number, reader.integer(*value, key));
		if (number < min)
			return reader.error(value->source(), "\"" + std::string(key) + "\" must be at least " + std::to_string(min));
		return static_cast<std::uint64_t>(number);
	};
	JEAD_ASSIGN(limits.cpu_seconds, count("cpu_seconds", 1));
	// Three descriptors are the standard streams, which every verb has.
	JEAD_ASSIGN(limits.open_files, count("open_files", 3));
	JEAD_ASSIGN(limits.processes, count("processes", 1));
	if (const auto* file_size = find(*table, "file_size")) {
		JEAD_ASSIGN(limits.file_size, reader.size(*file_size, "file_size"));
		if (*limits.file_size == 0)
			return reader.error(file_size->source(), "\"file_size\" must be above 0");
	}
	return {};
}

Result<void> parse_verbs(const Reader& reader, const toml::node& node, Role& role)
{
	const toml::array* verbs = nullptr;
	JEAD_ASSIGN(verbs, reader.array(node, "verb", limits::kMaxVerbsPerRole));
	for (const auto& item : *verbs) {
		Verb verb;
		JEAD_ASSIGN(verb, parse_verb(reader, item));
		if (const Verb* first = role.find_verb(verb.name))
			return reader.error(item.as_table()->get("name")->source(),
			                    "duplicate verb " + shown_text(verb.name) + " (first defined at " + first->location + ")");
		role.verbs.push_back(std::move(verb));
	}
	return {};
}

Result<void> parse_tests(const Reader& reader, const toml::node& node, Role& role)
{
	const toml::array* tests = nullptr;
	JEAD_ASSIGN(tests, reader.array(node, "test", limits::kMaxTestsPerRole));
	for (const auto& item : *tests) {
		RoleTest test;
		JEAD_ASSIGN(test, parse_test(reader, item));
		role.tests.push_back(std::move(test));
	}
	return {};
}

// The notification command of a break-glass role: an absolute program,
// then literal words or whole-element placeholders from kNotifyPlaceholders.
Result<void> parse_notify(const Reader& reader, const toml::node& node, Role& role)
{
	std::vector<std::string> elements;
	JEAD_ASSIGN(elements, reader.string_array(node, "notify", limits::kMaxCommandElements));
	if (elements.empty() || elements[0].empty() || elements[0][0] != '/')
		return reader.error(node.source(), "\"notify\" must start with an absolute program path");
	for (std::size_t i = 1; i < elements.size(); ++i) {
		const auto& element = elements[i];
		if (element.find('{') == std::string::npos && element.find('}') == std::string::npos)
			continue;
		const bool known = std::find(std::begin(kNotifyPlaceholders), std::end(kNotifyPlaceholders), element) !=
		                   std::end(kNotifyPlaceholders);
		if (!known)
			return reader.error(node.source(), "\"notify\" element \"" + element +
			                                       "\" is not one of {event}, {role}, {key_id}, {serial}, "
			                                       "{principals}, {client}");
	}
	role.notify = std::move(elements);
	return {};
}

Result<void> parse_role_table(const Reader& reader, const toml::table& root, Role& role)
{
	JEAD_CHECK(reader.check_keys(root,
	                             {"description", "run_as_user", "run_as_group", "max_cert_lifetime",
	                              "working_directory", "environment", "limits", "break_glass", "notify",
	                              "notify_required", "verb", "test"},
	                             "role"));

	if (const auto* node = find(root, "description"))
		JEAD_ASSIGN(role.description, reader.text(*node, "description", true));
	if (const auto* node = find(root, "run_as_user"))
		JEAD_ASSIGN(role.run_as_user, reader.account_name(*node, "run_as_user"));
	if (const auto* node = find(root, "run_as_group"))
		JEAD_ASSIGN(role.run_as_group, reader.account_name(*node, "run_as_group"));
	if (const auto* node = find(root, "max_cert_lifetime")) {
		JEAD_ASSIGN(role.max_cert_lifetime, reader.duration(*node, "max_cert_lifetime"));
		if (role.max_cert_lifetime->count() <= 0)
			return reader.error(node->source(), "\"max_cert_lifetime\" must be longer than 0s");
	}
	if (const auto* node = find(root, "working_directory"))
		JEAD_ASSIGN(role.working_directory, reader.absolute_path(*node, "working_directory"));
	if (const auto* node = find(root, "environment"))
		JEAD_CHECK(parse_environment(reader, *node, role));
	if (const auto* node = find(root, "limits"))
		JEAD_CHECK(parse_limits(reader, *node, role.limits));
	if (const auto* node = find(root, "break_glass"))
		JEAD_ASSIGN(role.break_glass, reader.boolean(*node, "break_glass"));
	if (const auto* node = find(root, "notify"))
		JEAD_CHECK(parse_notify(reader, *node, role));
	if (const auto* node = find(root, "notify_required"))
		JEAD_ASSIGN(role.notify_required, reader.boolean(*node, "notify_required"));
	if (role.notify_required && role.notify.empty())
		return reader.error(root.source(), "\"notify_required\" is set but the role has no \"notify\" command");
	if (const auto* node = find(root, "verb"))
		JEAD_CHECK(parse_verbs(reader, *node, role));
	if (const auto* node = find(root, "test"))
		JEAD_CHECK(parse_tests(reader, *node, role));
	return {};
}

// Reads at most limits::kMaxRoleFileBytes from a regular file.
Result<std::string> read_role_file(const std::filesystem::path& file)
{
	const std::string file_name = file.string();
	const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return fail(errno == ENOENT ? Errc::not_found : Errc::io,
		            file_name + ": could not open role file: " + std::strerror(errno));
	struct FdCloser {
		int fd;
		~FdCloser() { ::close(fd); }
	} closer{fd};

	struct stat info {};
	if (::fstat(fd, &info) != 0)
		return fail(Errc::io, file_name + ": could not stat role file: " + std::strerror(errno));
	if (!S_ISREG(info.st_mode))
		return fail(Errc::invalid, file_name + ": role file is not a regular file");
	if (static_cast<std::uint64_t>(info.st_size) > limits::kMaxRoleFileBytes)
		return fail(Errc::limit, file_name + ": role file is " + std::to_string(info.st_size) +
		                             " bytes, larger than the maximum of " + std::to_string(limits::kMaxRoleFileBytes));

	std::string text(limits::kMaxRoleFileBytes + 1, '\0');
	std::size_t used = 0;
	// Each successful read adds at least one byte, and the buffer has room
	// for one byte more than the cap, so the loop ends by EOF, error or
	// overflow.
	while (used < text.size()) {
		const ssize_t n = ::read(fd, text.data() + used, text.size() - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail(Errc::io, file_name + ": could not read role file: " + std::strerror(errno));
		if (n == 0)
			break;
		used += static_cast<std::size_t>(n);
	}
	if (used > limits::kMaxRoleFileBytes)
		return fail(Errc::limit, file_name + ": role file grew beyond the maximum of " +
		                             std::to_string(limits::kMaxRoleFileBytes) + " bytes while being read");
	text.resize(used);
	return text;
}

}  // namespace

const Verb* Role::find_verb(std::string_view verb_name) const
{
	for (const auto& verb : verbs)
		if (verb.name == verb_name)
			return &verb;
	return nullptr;
}

Result<Role> parse_role(std::string_view text, const std::filesystem::path& file)
{
	const std::string file_name = file.string();
	if (file.extension() != ".toml")
		return fail(Errc::invalid, file_name + ": a role file name must end in \".toml\"");
	const std::string stem = file.stem().string();
	if (!is_valid_name(stem))
		return fail(Errc::invalid, file_name + ": role name " + shown_text(stem) +
		                               " (the file name without .toml) must match [a-z0-9][a-z0-9-]*, at most 64 bytes");
	if (text.size() > limits::kMaxRoleFileBytes)
		return fail(Errc::limit, file_name + ": role file is larger than the maximum of " +
		                             std::to_string(limits::kMaxRoleFileBytes) + " bytes");

	const Reader reader(file_name);
	Role role;
	role.name = stem;
	role.file = file;
	try {
		// NOTE: header-only toml++ 3.3 compiled without NDEBUG aborts on an
		// internal assertion for some malformed keys (such as "[\x01"). The
		// CMake build links Debian's shared library, which reports a parse
		// error for them instead.
		const toml::table root = toml::parse(text, file_name);
		JEAD_CHECK(parse_role_table(reader, root, role));
	} catch (const toml::parse_error& e) {
		return reader.error(e.source(), "invalid TOML: " + std::string(e.description()));
	} catch (const std::exception& e) {
		return fail(Errc::internal, file_name + ": could not load role file: " + e.what());
	}
	return role;
}

Result<Role> load_role_file(const std::filesystem::path& file)
{
	auto text = read_role_file(file);
	if (!text)
		return tl::unexpected(text.error());
	return parse_role(*text, file);
}

Result<std::map<std::string, Role, std::less<>>> load_roles_dir(const std::filesystem::path& dir)
{
	std::error_code ec;
	std::filesystem::directory_iterator it(dir, ec);
	if (ec)
		return fail(Errc::io, dir.string() + ": could not list role directory: " + ec.message());

	// Collect and sort the names first, so errors and load order do not
	// depend on directory order.
	std::vector<std::filesystem::path> files;
	for (const std::filesystem::directory_iterator end; it != end; it.increment(ec)) {
		if (ec)
			return fail(Errc::io, dir.string() + ": could not list role directory: " + ec.message());
		const auto& path = it->path();
		if (path.extension() != ".toml" || !it->is_regular_file(ec))
			continue;
		if (files.size() == limits::kMaxRoleFilesPerDir)
			return fail(Errc::limit, dir.string() + ": more than " + std::to_string(limits::kMaxRoleFilesPerDir) +
			                             " role files");
		files.push_back(path);
	}
	if (ec)
		return fail(Errc::io, dir.string() + ": could not list role directory: " + ec.message());
	std::sort(files.begin(), files.end());

	std::map<std::string, Role, std::less<>> roles;
	for (const auto& file : files) {
		auto role = load_role_file(file);
		if (!role)
			return tl::unexpected(role.error());
		std::string name = role->name;
		roles.emplace(std::move(name), std::move(*role));
	}
	return roles;
}

}  // namespace jead
