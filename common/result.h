// Result type shared by every jead module: a value or an Error, never an
// exception across module boundaries. Library exceptions (toml++,
// Boost.Process, nlohmann::json) are caught at the edge and converted.
#pragma once

#include <string>
#include <utility>

#include <tl/expected.hpp>

namespace jead {

enum class Errc {
	invalid,    // malformed input: a certificate, a command line, a file
	denied,     // well-formed input that policy does not allow
	not_found,  // a named file, role, verb or key does not exist
	io,         // a system call failed
	limit,      // a configured or built-in cap was reached
	internal,   // a bug or an unexpected library failure
};

struct Error {
	Errc code = Errc::internal;
	std::string message;
};

template <class T>
using Result = tl::expected<T, Error>;

// Builds the error side of a Result: `return fail(Errc::invalid, "...")`.
inline tl::unexpected<Error> fail(Errc code, std::string message)
{
	return tl::unexpected<Error>(Error{code, std::move(message)});
}

}  // namespace jead
