// The command line: global options, then one command.

#include <CLI/CLI.hpp>

#include <cstdio>

#include "iraewatch/app/commands.hpp"

namespace iraewatch::app {

int run_cli(int argc, char** argv) {
  CLI::App cli{
      "iraewatch: watches patients on immune checkpoint inhibitors for possible immune-related "
      "adverse events (colitis, pneumonitis, thyroid), for clinician review."};
  cli.set_version_flag("--version", IRAEWATCH_VERSION);
  cli.require_subcommand(1);
  cli.fallthrough();  // global options may also follow the command: iraewatch replay --rules DIR ...

  std::string config_path, data_dir, log_level, rules_dir;
  cli.add_option("-c,--config", config_path, "YAML config file (default: embedded defaults)");
  cli.add_option("--data-dir", data_dir, "folder for the SQLite store and the log (default: ./data)");
  cli.add_option("--rules", rules_dir, "rules folder (default: the bundled rules/)");
  cli.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off");

  ServeOptions serve;
  auto* serve_cmd = cli.add_subcommand("serve", "run the daemon: listeners and the durable store");
  serve_cmd->add_option("--listen", serve.listen, "NDJSON listener HOST:PORT (default 127.0.0.1:7470)");
  serve_cmd->add_option("--mllp", serve.mllp, "HL7 v2 MLLP listener HOST:PORT (default 127.0.0.1:2575)");
  serve_cmd->add_option("--subscribers", serve.subscribers,
                        "alert subscriber listener HOST:PORT (default 127.0.0.1:7471)");
  serve_cmd->add_option(
      "--ready-file", serve.ready_file,
      "write {\"ndjson\":\"HOST:PORT\",\"mllp\":…,\"subscribers\":…,\"control\":…,\"pid\":N} here once "
      "listening");

  IngestOptions ingest;
  auto* ingest_cmd = cli.add_subcommand(
      "ingest",
      "store records from NDJSON or HL7 v2 files ('-' for standard input); prints each HL7 message's ACK code");
  ingest_cmd->add_option("--format", ingest.format,
                         "input format: ndjson or hl7 (default: by file extension, .hl7 or .ndjson/.jsonl/.json; "
                         "standard input: ndjson)");
  ingest_cmd->add_option("--feed", ingest.feed,
                         "feed name that scopes record ids (default: listeners.ndjson.feed for NDJSON, "
                         "listeners.mllp.feed for HL7)");
  ingest_cmd->add_option("files", ingest.files, "files to ingest")->required();

  SendOptions send;
  auto* send_cmd = cli.add_subcommand("send", "send NDJSON files to a running daemon and summarise its replies");
  send_cmd->add_option("--to", send.to, "daemon HOST:PORT (default 127.0.0.1:7470)");
  send_cmd->add_option("--timeout", send.timeout_seconds, "seconds to wait for a reply (default 30)")
      ->check(CLI::Range(1, 3600));
  send_cmd->add_flag("--print", send.print_replies, "print every reply line");
  send_cmd->add_option("files", send.files, "files to send ('-' for standard input)")->required();

  auto* summary_cmd = cli.add_subcommand("summary", "show what the store holds and recent rejected input");

  std::vector<std::string> check_paths;
  auto* check_cmd = cli.add_subcommand("check", "validate rule folders or files; report every problem");
  check_cmd->add_option("paths", check_paths, "rule folders or files (default: the rules folder)");

  ReplayOptions replay;
  auto* replay_cmd = cli.add_subcommand("replay", "evaluate records offline and print alert events as JSON lines");
  replay_cmd->add_option("--format", replay.format,
                         "input format: ndjson or hl7 (default: by file extension; standard input: ndjson)");
  replay_cmd->add_option("--feed", replay.feed, "feed name that scopes record ids");
  replay_cmd->add_option("files", replay.files, "NDJSON or HL7 v2 files ('-' for standard input)")->required();

  AlertsOptions alerts;
  auto* alerts_cmd = cli.add_subcommand("alerts", "list alerts, newest first");
  alerts_cmd->add_flag("--active", alerts.active, "only open alerts (firing or acknowledged)");
  alerts_cmd->add_option("--patient", alerts.patient, "only this patient's alerts");
  alerts_cmd->add_option("--limit", alerts.limit, "at most this many (default 100)")->check(CLI::Range(1, 1000000));
  alerts_cmd->add_flag("--json", alerts.json, "one JSON object per line");

  AckOptions ack;
  auto* ack_cmd = cli.add_subcommand("ack", "acknowledge an open alert (through the daemon when it runs)");
  ack_cmd->add_option("alert", ack.alert_id, "the alert id (see `iraewatch alerts`)")->required();
  ack_cmd->add_option("--by", ack.by, "who acknowledges (a name or staff id)")->required();
  ack_cmd->add_option("--note", ack.note, "why, or what was done");

  HistoryOptions history;
  auto* history_cmd = cli.add_subcommand("history", "one patient's records and alert events, in time order");
  history_cmd->add_option("patient", history.patient, "the patient identifier")->required();
  history_cmd->add_flag("--json", history.json, "one JSON object per line");

  TestOptions test;
  auto* test_cmd = cli.add_subcommand("test", "run rule unit tests (YAML test files)");
  test_cmd->add_option("files", test.files, "test files or folders")->required();

  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e) == 0 ? 0 : 2;
  }

  Config config;
  if (!config_path.empty()) {
    auto loaded = load_config(config_path);
    if (!loaded) {
      std::fprintf(stderr, "%s\n", loaded.error().message.c_str());
      return 2;
    }
    config = std::move(*loaded);
  }
  if (!data_dir.empty()) config.data_dir = data_dir;
  if (!rules_dir.empty()) config.rules_dir = rules_dir;
  if (!log_level.empty()) config.log_level = log_level;

  if (serve_cmd->parsed()) return run_serve(config, serve);
  if (ingest_cmd->parsed()) return run_ingest(config, ingest);
  if (send_cmd->parsed()) return run_send(send);
  if (summary_cmd->parsed()) return run_summary(config);
  if (check_cmd->parsed()) return run_check(config, check_paths);
  if (replay_cmd->parsed()) return run_replay(config, replay);
  if (test_cmd->parsed()) return run_test(config, test);
  if (alerts_cmd->parsed()) return run_alerts(config, alerts);
  if (ack_cmd->parsed()) return run_ack(config, ack);
  if (history_cmd->parsed()) return run_history(config, history);
  return 2;
}

}  // namespace iraewatch::app
