#pragma once
// The daemon's configuration: one YAML file (examples/iraewatch.yaml documents every key), with
// embedded defaults so that `iraewatch serve` runs with no file at all.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "iraewatch/core/error.hpp"
#include "iraewatch/core/time_zone.hpp"

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

struct MllpListenerConfig {
  bool enabled = true;
  std::string address = "127.0.0.1";
  std::uint16_t port = 2575;
  std::string feed = "hl7";
  std::size_t max_frame_bytes = 4 << 20;
  std::chrono::seconds idle_timeout{300};
  std::size_t max_connections = 64;
  std::size_t max_in_flight = 64;  // messages of one connection being processed at once
};

// How HL7 v2 content is read (docs/hl7.md).
struct Hl7Config {
  // The hospital's zone, for times sent without an offset: hl7.time_zone (an IANA name, with
  // daylight saving time) or hl7.default_utc_offset (a fixed offset); UTC when neither is set.
  core::TimeZone zone;
  std::vector<std::string> identifier_types = {"MR"};
  std::string assigning_authority;                  // "" accepts any
  std::string facility = "IRAEWATCH";               // MSH-4 of our ACKs
  std::vector<std::string> processing_ids = {"P"};  // MSH-11 values taken as patient data
};

// Where alert events go (docs/configuration.md). Relative paths are inside data_dir.
struct AlertOutputsConfig {
  bool file = true;  // rotating JSON lines
  std::string file_path = "alerts.jsonl";
  std::size_t file_max_bytes = 50 * 1024 * 1024;
  std::size_t file_max_files = 10;
  bool console = false;  // one human line per event on stdout (serve)
  bool syslog = false;   // RFC 5424
  std::string syslog_host = "127.0.0.1";
  std::uint16_t syslog_port = 514;
  std::string syslog_unix_path;  // e.g. /dev/log; used instead of UDP when set
  int syslog_facility = 16;      // local0
  bool subscribers_tcp = true;
  std::string subscribers_address = "127.0.0.1";
  std::uint16_t subscribers_port = 7471;
  std::string subscribers_unix_path = "subscribers.sock";  // "" for none
  std::size_t max_subscribers = 32;
  std::size_t subscriber_queue_lines = 1024;
  std::chrono::milliseconds heartbeat{30'000};
};

struct AlertsConfig {
  // Re-notification interval of an unacknowledged firing alert, per severity; 0: never.
  std::chrono::milliseconds renotify_critical{4LL * 3600 * 1000};
  std::chrono::milliseconds renotify_warning{24LL * 3600 * 1000};
  std::chrono::milliseconds renotify_info{0};
  std::string control_socket = "control.sock";  // "" for none
  AlertOutputsConfig outputs;
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
  MllpListenerConfig mllp;
  Hl7Config hl7;
  AlertsConfig alerts;
};

// A path from the config: absolute as it is, relative inside data_dir; "" stays "".
std::string data_path(const Config& config, const std::string& path);

// Reads a config file over the defaults. Every unknown key or mistyped value is an error: a typo
// must not silently fall back to a default.
core::Result<Config> load_config(const std::string& path);

// The bundled rules folder (the source tree's rules/) when rules_dir is empty.
std::string effective_rules_dir(const Config& config);

// DATA_DIR/alerts.jsonl: the JSON-lines log of alert events.
std::string alert_log_path(const Config& config);

}  // namespace iraewatch::app
