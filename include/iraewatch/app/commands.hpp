#pragma once
// The commands of the `iraewatch` program. Each returns the process exit code: 0 success,
// 1 the command ran but found problems (rejected records), 2 it could not run (bad config,
// unusable store, unreachable daemon).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "iraewatch/app/config.hpp"

namespace iraewatch::app {

struct ServeOptions {
  std::optional<std::string> listen;       // overrides listeners.ndjson address and port
  std::optional<std::string> subscribers;  // overrides alerts.outputs.subscribers address and port
  std::optional<std::string> mllp;         // overrides listeners.mllp address and port
  std::string ready_file;                  // written once listening: {"ndjson":"ADDR:PORT","pid":N}
};

struct IngestOptions {
  std::string format;              // "ndjson", or empty to tell by extension
  std::string feed;                // empty: listeners.ndjson.feed of the config
  std::vector<std::string> files;  // "-" is standard input
};

struct SendOptions {
  std::string to = "127.0.0.1:7470";
  int timeout_seconds = 30;
  bool print_replies = false;
  std::vector<std::string> files;
};

struct ReplayOptions {
  std::string format;  // ndjson or hl7; empty: by each file's name (standard input: ndjson)
  std::string feed;    // empty: listeners.ndjson.feed (NDJSON), listeners.mllp.feed (HL7)
  std::vector<std::string> files;
};

struct AlertsOptions {
  bool active = false;  // open alerts only (firing or acknowledged)
  std::string patient;
  bool json = false;
  int limit = 100;
};

struct AckOptions {
  std::int64_t alert_id = 0;
  std::string by;
  std::string note;
};

struct HistoryOptions {
  std::string patient;
  bool json = false;
};

struct TestOptions {
  std::vector<std::string> files;
};

int run_serve(const Config& config, const ServeOptions& options);
int run_check(const Config& config, const std::vector<std::string>& paths);
int run_replay(const Config& config, const ReplayOptions& options);
int run_test(const Config& config, const TestOptions& options);
int run_ingest(const Config& config, const IngestOptions& options);
int run_send(const SendOptions& options);
int run_summary(const Config& config);
int run_alerts(const Config& config, const AlertsOptions& options);
int run_ack(const Config& config, const AckOptions& options);
int run_history(const Config& config, const HistoryOptions& options);

// Parses the command line and runs the command.
int run_cli(int argc, char** argv);

}  // namespace iraewatch::app
