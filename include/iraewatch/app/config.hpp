#pragma once
// The daemon's configuration: one YAML file (examples/iraewatch.yaml documents every key), with
// embedded defaults so that `iraewatch serve` runs with no file at all.

#include <chrono>
#include <cstdint>
#include <string>

#include "iraewatch/core/error.hpp"

namespace iraewatch::app {

struct NdjsonListenerConfig {
  bool enabled = true;
  std::string address = "127.0.0.1";
  std::uint16_t port = 7470;
  std::string feed = "ndjson";
  std::size_t max_line_bytes = 1 << 20;
  std::chrono::seconds idle_timeout{300};
  std::size_t max_connections = 64;
};

struct Config {
  std::string data_dir = "data";
  std::string rules_dir;  // empty: the bundled rules
  std::string log_level = "info";
  bool log_file = true;  // rotating DATA_DIR/iraewatch.log besides the console
  std::size_t log_max_file_bytes = 10 * 1024 * 1024;
  std::size_t log_max_files = 5;
  bool synchronous_full = true;
  std::size_t max_batch_items = 4096;
  NdjsonListenerConfig ndjson;
};

// Reads a config file over the defaults. Every unknown key or mistyped value is an error: a typo
// must not silently fall back to a default.
core::Result<Config> load_config(const std::string& path);

// The bundled rules folder (the source tree's rules/) when rules_dir is empty.
std::string effective_rules_dir(const Config& config);

// DATA_DIR/alerts.jsonl: the JSON-lines log of alert events.
std::string alert_log_path(const Config& config);

}  // namespace iraewatch::app
