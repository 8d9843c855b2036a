#include "iraewatch/app/logging.hpp"

#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <filesystem>

namespace iraewatch::app {

core::Result<void> setup_logging(const Config& config, bool to_file) {
  const auto level = spdlog::level::from_str(config.log_level);
  if (level == spdlog::level::off && config.log_level != "off") {
    return core::fail(core::ErrorCode::config,
                      "unknown log level '" + config.log_level + "' (trace, debug, info, warn, error, critical, off)");
  }
  std::vector<spdlog::sink_ptr> sinks{std::make_shared<spdlog::sinks::stderr_color_sink_mt>()};
  if (to_file && config.log_file) {
    std::error_code ec;
    std::filesystem::create_directories(config.data_dir, ec);
    try {
      sinks.push_back(std::make_shared<spdlog::sinks::rotating_file_sink_mt>(
          config.data_dir + "/iraewatch.log", config.log_max_file_bytes, config.log_max_files));
    } catch (const spdlog::spdlog_ex& e) {
      return core::fail(core::ErrorCode::io, std::string("cannot open the log file: ") + e.what());
    }
  }
  auto logger = std::make_shared<spdlog::logger>("iraewatch", sinks.begin(), sinks.end());
  logger->set_level(level);
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
  spdlog::flush_every(std::chrono::seconds(2));
  return {};
}

}  // namespace iraewatch::app
