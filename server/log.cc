#include "server/log.h"

#include <nlohmann/json.hpp>
#include <spdlog/formatter.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <ctime>

namespace jead {

namespace {

// Formats each log record as one JSON object. The message is encoded by
// nlohmann::json, which escapes quotes and control bytes; invalid UTF-8 is
// replaced, so every line parses.
class JsonFormatter final : public spdlog::formatter {
public:
	void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override
	{
		const auto since_epoch = msg.time.time_since_epoch();
		const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
		const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - seconds).count();
		const std::time_t t = seconds.count();
		std::tm tm{};
		gmtime_r(&t, &tm);
		char stamp[40];
		const std::size_t n = std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
		std::snprintf(stamp + n, sizeof stamp - n, ".%03dZ", static_cast<int>(millis));

		const auto level = spdlog::level::to_string_view(msg.level);
		const nlohmann::json record = {
			{"time", stamp},
			{"level", std::string(level.data(), level.size())},
			{"message", std::string(msg.payload.data(), msg.payload.size())},
		};
		const std::string line =
			record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
		dest.append(line.data(), line.data() + line.size());
	}

	std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }
};

}  // namespace

void setup_logging(std::string_view level, std::string_view format)
{
	auto logger = spdlog::get("jead");
	if (!logger)
		logger = spdlog::stderr_logger_st("jead");
	if (format == "json")
		logger->set_formatter(std::make_unique<JsonFormatter>());
	else
		logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");
	if (level == "debug")
		logger->set_level(spdlog::level::debug);
	else if (level == "warning")
		logger->set_level(spdlog::level::warn);
	else if (level == "error")
		logger->set_level(spdlog::level::err);
	else
		logger->set_level(spdlog::level::info);
	logger->flush_on(spdlog::level::debug);
	spdlog::set_default_logger(logger);
}

}  // namespace jead
