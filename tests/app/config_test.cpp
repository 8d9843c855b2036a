#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

#include "iraewatch/app/config.hpp"
#include "support/daemon.hpp"

// The `alerts:` and `hl7:` sections of the daemon's config file (src/app/config.cpp).

using namespace iraewatch;
using namespace std::chrono_literals;

namespace {

struct Loaded {
  std::string path;
  core::Result<app::Config> config;
};

Loaded load(const testing::TempDir& tmp, const std::string& yaml) {
  const std::string path = tmp.file("iraewatch.yaml");
  testing::write_file(path, yaml);
  return {path, app::load_config(path)};
}

// The error text of a config that must not load.
std::string error_of(const testing::TempDir& tmp, const std::string& yaml) {
  auto l = load(tmp, yaml);
  if (l.config) FAIL("the config loaded:\n" << yaml);
  CHECK(l.config.error().code == core::ErrorCode::config);
  return l.config.error().message;
}

// "PATH:LINE:COLUMN: error: "
std::string at(const testing::TempDir& tmp, int line, int column) {
  return tmp.file("iraewatch.yaml") + ":" + std::to_string(line) + ":" + std::to_string(column) + ": error: ";
}

}  // namespace

TEST_CASE("a full alerts section loads, every key into the Config", "[app][config]") {
  testing::TempDir tmp;
  auto l = load(tmp, R"(alerts:
  renotify:
    critical: 30s
    warning: 15min
    info: never
  control_socket: /run/iraewatch/control.sock
  outputs:
    file:
      enabled: false
      path: /var/log/iraewatch/alerts.jsonl
      max_bytes: 1048576
      max_files: 3
    console:
      enabled: true
    syslog:
      enabled: true
      host: 10.0.0.5
      port: 5514
      unix_path: /dev/log
      facility: 3
    subscribers:
      tcp: false
      address: 0.0.0.0
      port: 9000
      unix_path: ""
      max_subscribers: 5
      queue_lines: 100
      heartbeat: 500ms
)");
  if (!l.config) FAIL(l.config.error().message);
  const auto& a = l.config->alerts;
  CHECK(a.renotify_critical == 30s);
  CHECK(a.renotify_warning == 15min);
  CHECK(a.renotify_info == 0ms);
  CHECK(a.control_socket == "/run/iraewatch/control.sock");
  const auto& o = a.outputs;
  CHECK_FALSE(o.file);
  CHECK(o.file_path == "/var/log/iraewatch/alerts.jsonl");
  CHECK(o.file_max_bytes == 1048576);
  CHECK(o.file_max_files == 3);
  CHECK(o.console);
  CHECK(o.syslog);
  CHECK(o.syslog_host == "10.0.0.5");
  CHECK(o.syslog_port == 5514);
  CHECK(o.syslog_unix_path == "/dev/log");
  CHECK(o.syslog_facility == 3);
  CHECK_FALSE(o.subscribers_tcp);
  CHECK(o.subscribers_address == "0.0.0.0");
  CHECK(o.subscribers_port == 9000);
  CHECK(o.subscribers_unix_path.empty());
  CHECK(o.max_subscribers == 5);
  CHECK(o.subscriber_queue_lines == 100);
  CHECK(o.heartbeat == 500ms);
  CHECK(app::alert_log_path(*l.config) == "/var/log/iraewatch/alerts.jsonl");  // absolute: as it is
}

TEST_CASE("alert durations take ms, s, min, h and d", "[app][config]") {
  testing::TempDir tmp;
  auto l = load(tmp, R"(alerts:
  renotify:
    critical: 4h
    warning: 2d
    info: 1000ms
  outputs:
    subscribers:
      heartbeat: 2min
)");
  if (!l.config) FAIL(l.config.error().message);
  CHECK(l.config->alerts.renotify_critical == 4h);
  CHECK(l.config->alerts.renotify_warning == 48h);
  CHECK(l.config->alerts.renotify_info == 1s);
  CHECK(l.config->alerts.outputs.heartbeat == 2min);

  // `0` is never as well, for renotify.
  auto zero = load(tmp, "alerts:\n  renotify:\n    critical: 0\n");
  if (!zero.config) FAIL(zero.config.error().message);
  CHECK(zero.config->alerts.renotify_critical == 0ms);
}

TEST_CASE("an absent or partial alerts section keeps the defaults", "[app][config]") {
  testing::TempDir tmp;
  const app::AlertsConfig defaults;
  auto l = load(tmp, "data_dir: /tmp/x\nalerts:\n  outputs:\n    console:\n      enabled: true\n");
  if (!l.config) FAIL(l.config.error().message);
  const auto& a = l.config->alerts;
  CHECK(a.outputs.console);
  CHECK(a.renotify_critical == defaults.renotify_critical);
  CHECK(a.renotify_warning == defaults.renotify_warning);
  CHECK(a.control_socket == defaults.control_socket);
  CHECK(a.outputs.file == defaults.outputs.file);
  CHECK(a.outputs.file_path == defaults.outputs.file_path);
  CHECK(a.outputs.heartbeat == defaults.outputs.heartbeat);
  CHECK(a.outputs.subscribers_port == defaults.outputs.subscribers_port);
  CHECK(app::alert_log_path(*l.config) == "/tmp/x/alerts.jsonl");  // relative: inside data_dir
}

TEST_CASE("unknown keys in the alerts section are errors at their place", "[app][config]") {
  testing::TempDir tmp;
  const auto e = error_of(tmp, R"(alerts:
  renotify:
    urgent: 1h
  outputs:
    file:
      colour: red
    pager: {}
  sound: loud
)");
  CHECK_THAT(e, Catch::Contains(at(tmp, 3, 5) + "unknown key 'urgent' in alerts.renotify"));
  CHECK_THAT(e, Catch::Contains(at(tmp, 6, 7) + "unknown key 'colour' in alerts.outputs.file"));
  CHECK_THAT(e, Catch::Contains(at(tmp, 7, 5) + "unknown key 'pager' in alerts.outputs"));
  CHECK_THAT(e, Catch::Contains(at(tmp, 8, 3) + "unknown key 'sound' in alerts"));
}

TEST_CASE("bad alert durations are errors at their place", "[app][config]") {
  testing::TempDir tmp;
  SECTION("renotify") {
    for (const std::string value : {"4 hours", "-1s", "1.5h", "4H", "h", "10", "500ms", "9999999999s", "forever"}) {
      INFO(value);
      const auto e = error_of(tmp, "alerts:\n  renotify:\n    warning: \"" + value + "\"\n");
      CHECK_THAT(e,
                 Catch::Contains(at(tmp, 3, 14) + "'warning' must be a duration like 30s, 15min, 4h or 2d (or never)"));
    }
  }
  SECTION("heartbeat") {
    for (const std::string value : {"never", "0", "99ms", "1 s", "-5s"}) {
      INFO(value);
      const auto e = error_of(tmp, "alerts:\n  outputs:\n    subscribers:\n      heartbeat: \"" + value + "\"\n");
      CHECK_THAT(e, Catch::Contains(at(tmp, 4, 18) + "'heartbeat' must be a duration like 30s, 15min, 4h or 2d, at "
                                                     "least 100 ms"));
    }
  }
  SECTION("a map where a duration belongs") {
    const auto e = error_of(tmp, "alerts:\n  renotify:\n    info: {h: 1}\n");
    CHECK_THAT(e, Catch::Contains(at(tmp, 3, 11) + "'info' must be a duration"));
  }
}

TEST_CASE("a zero heartbeat is refused however it is written", "[app][config]") {
  // Pins a bug found in 406fa9b (ConfigReader::get_duration): with allow_never false, "0" was
  // refused but "0s" and "0ms" parsed to 0 ms, and the check `ms != 0 && ms < min_ms` let 0
  // through, so the subscribers' heartbeat became 0 (below its 100 ms minimum).
  testing::TempDir tmp;
  for (const std::string value : {"0s", "0ms", "0min"}) {
    INFO(value);
    auto l = load(tmp, "alerts:\n  outputs:\n    subscribers:\n      heartbeat: " + value + "\n");
    CHECK_FALSE(l.config);
    if (l.config) CHECK(l.config->alerts.outputs.heartbeat == 0ms);  // what it loads as instead
  }
}

TEST_CASE("other mistakes in the alerts section are errors at their place", "[app][config]") {
  testing::TempDir tmp;
  const auto e = error_of(tmp, R"(alerts:
  outputs:
    file:
      path: ""
      max_files: 0
    console: yes please
    syslog:
      port: 0
      facility: 24
    subscribers:
      max_subscribers: 0
      port: 70000
)");
  CHECK_THAT(e, Catch::Contains(at(tmp, 4, 13) + "'path' must not be empty"));
  CHECK_THAT(e, Catch::Contains(at(tmp, 5, 18) + "'max_files' must be between 1 and 1000"));
  CHECK_THAT(e, Catch::Contains(at(tmp, 6, 14) + "'console' must be a map"));
  CHECK_THAT(e, Catch::Contains(at(tmp, 8, 13) + "'port' must be between 1 and 65535"));
  CHECK_THAT(e, Catch::Contains(at(tmp, 9, 17) + "'facility' must be between 0 and 23"));
  CHECK_THAT(e, Catch::Contains(at(tmp, 11, 24) + "'max_subscribers' must be between 1 and 10000"));
  CHECK_THAT(e, Catch::Contains(at(tmp, 12, 13) + "'port' must be between 0 and 65535"));

  const auto wrong_type = error_of(tmp, "alerts:\n  outputs:\n    console:\n      enabled: maybe\n");
  CHECK_THAT(wrong_type, Catch::Contains(at(tmp, 4, 16) + "'enabled' has the wrong type"));
  const auto not_map = error_of(tmp, "alerts: [1, 2]\n");
  CHECK_THAT(not_map, Catch::Contains(at(tmp, 1, 9) + "'alerts' must be a map"));
}

TEST_CASE("hl7.processing_ids: P by default; a list of P, T, D; anything else is an error at its place",
          "[app][config]") {
  testing::TempDir tmp;
  CHECK(app::Config{}.hl7.processing_ids == std::vector<std::string>{"P"});
  auto l = load(tmp, "hl7:\n  processing_ids: [P, T]\n");
  REQUIRE(l.config);
  CHECK(l.config->hl7.processing_ids == std::vector<std::string>{"P", "T"});
  CHECK_THAT(error_of(tmp, "hl7:\n  processing_ids: [P, X]\n"),
             Catch::Contains(at(tmp, 2, 23) + "a processing id must be P (production), T (training) or D"));
  CHECK_THAT(error_of(tmp, "hl7:\n  processing_ids: []\n"),
             Catch::Contains(at(tmp, 2, 19) + "'processing_ids' must be a non-empty list"));
}

TEST_CASE("hl7.time_zone: an IANA zone from $TZDIR, with summer time; or a fixed default_utc_offset", "[app][config]") {
  testing::TempDir tmp;
  // A zone database of one zone, so that the test does not depend on the system's tzdata.
  std::filesystem::create_directories(tmp.file("zoneinfo/Europe"));
  testing::write_file(
      tmp.file("zoneinfo/Europe/London"),
      testing::read_file(std::string(IRAEWATCH_SOURCE_DIR) + "/tests/data/third_party/tzdata/Europe-London.tzif"));
  // Sets TZDIR for this test and puts back what was there, whatever happens.
  struct TzDir {
    std::optional<std::string> saved;
    explicit TzDir(const std::string& dir) {
      if (const char* v = std::getenv("TZDIR")) saved = v;
      ::setenv("TZDIR", dir.c_str(), 1);
    }
    ~TzDir() {
      if (saved)
        ::setenv("TZDIR", saved->c_str(), 1);
      else
        ::unsetenv("TZDIR");
    }
  } tz_dir(tmp.file("zoneinfo"));
  const std::int64_t july = 1'784'116'800'000;  // 2026-07-15T12:00:00Z

  CHECK(app::Config{}.hl7.zone.name() == "UTC");
  auto london = load(tmp, "hl7:\n  time_zone: Europe/London\n");
  REQUIRE(london.config);
  CHECK(london.config->hl7.zone.name() == "Europe/London");
  CHECK(london.config->hl7.zone.offset_at(july) == 60);
  auto fixed = load(tmp, "hl7:\n  default_utc_offset: \"-05:00\"\n");
  REQUIRE(fixed.config);
  CHECK(fixed.config->hl7.zone.offset_at(july) == -300);

  CHECK_THAT(error_of(tmp, "hl7:\n  time_zone: Europe/Atlantis\n"),
             Catch::Contains(at(tmp, 2, 14) + "unknown time zone 'Europe/Atlantis' (no file " + tmp.file("zoneinfo") +
                             "/Europe/Atlantis; is the tzdata package installed?)"));
  CHECK_THAT(error_of(tmp, "hl7:\n  time_zone: ../../etc/passwd\n"),
             Catch::Contains(at(tmp, 2, 14) + "'../../etc/passwd' is not a time zone name such as Europe/London"));
  CHECK_THAT(error_of(tmp, "hl7:\n  time_zone: Europe/London\n  default_utc_offset: \"+01:00\"\n"),
             Catch::Contains(at(tmp, 3, 23) + "set 'time_zone' or 'default_utc_offset', not both"));
  testing::write_file(tmp.file("zoneinfo/Europe/Broken"), "not a TZif file");
  CHECK_THAT(error_of(tmp, "hl7:\n  time_zone: Europe/Broken\n"),
             Catch::Contains("time zone 'Europe/Broken': not a usable TZif file"));
}
