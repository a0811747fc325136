#include "server/log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace jead {

void setup_logging(std::string_view level)
{
	auto logger = spdlog::stderr_logger_st("jead");
	logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
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
