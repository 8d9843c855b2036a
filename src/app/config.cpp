#include "iraewatch/app/config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <limits>

namespace iraewatch::app {
namespace {

// An IANA zone (Europe/London) from the system's time zone database: $TZDIR, else
// /usr/share/zoneinfo (Debian's tzdata package).
core::Result<core::TimeZone> load_time_zone(const std::string& name) {
  const bool plain =
      !name.empty() && name.size() <= 64 && name.front() != '/' && name.find("..") == std::string::npos &&
      std::all_of(name.begin(), name.end(), [](char ch) {
        return std::isalnum(static_cast<unsigned char>(ch)) || ch == '/' || ch == '_' || ch == '-' || ch == '+';
      });
  if (!plain)
    return core::fail(core::ErrorCode::invalid_input,
                      "'" + name.substr(0, 64) + "' is not a time zone name such as Europe/London");
  const char* dir = std::getenv("TZDIR");
  const std::string path = std::string(dir && *dir ? dir : "/usr/share/zoneinfo") + "/" + name;
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.is_open() || bytes.empty())
    return core::fail(core::ErrorCode::invalid_input,
                      "unknown time zone '" + name + "' (no file " + path + "; is the tzdata package installed?)");
  return core::TimeZone::from_tzif(name, bytes);
}

// Walks the YAML and collects every problem, so that one run shows them all.
class ConfigReader {
 public:
  explicit ConfigReader(std::string path) : path_(std::move(path)) {}

  void problem(const YAML::Node& at, const std::string& message) {
    const auto m = at.Mark();
    if (!errors_.empty()) errors_ += "\n";
    errors_ += path_ + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1) + ": error: " + message;
  }

  void keys(const YAML::Node& map, std::initializer_list<std::string_view> allowed, const std::string& where) {
    for (const auto& kv : map) {
      const auto key = kv.first.as<std::string>();
      bool ok = false;
      for (auto a : allowed) ok = ok || a == key;
      if (!ok) problem(kv.first, "unknown key '" + key + "' in " + where);
    }
  }

  template <typename T>
  void get(const YAML::Node& map, const char* key, T& out) {
    const auto node = map[key];
    if (!node) return;
    T value{};
    if (!node.IsScalar() || !YAML::convert<T>::decode(node, value)) {
      problem(node, std::string("'") + key + "' has the wrong type");
      return;
    }
    out = value;
  }

  template <typename T>
  void get_count(const YAML::Node& map, const char* key, T& out, long long min, long long max) {
    long long v = static_cast<long long>(out);
    get(map, key, v);
    if (v < min || v > max) {
      problem(map[key],
              std::string("'") + key + "' must be between " + std::to_string(min) + " and " + std::to_string(max));
      return;
    }
    out = static_cast<T>(v);
  }

  // A duration: "30s", "15min", "4h", "2d", "500ms", or "never" / 0 when allow_never.
  void get_duration(const YAML::Node& map, const char* key, std::chrono::milliseconds& out, bool allow_never,
                    std::int64_t min_ms) {
    const auto node = map[key];
    if (!node) return;
    const std::string text = node.IsScalar() ? node.Scalar() : "";
    std::int64_t ms = -1;
    if (allow_never && (text == "never" || text == "0")) {
      ms = 0;
    } else {
      std::size_t digits = 0;
      while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
      const std::string unit = text.substr(digits);
      static constexpr std::pair<std::string_view, std::int64_t> kUnits[] = {
          {"ms", 1}, {"s", 1000}, {"min", 60'000}, {"h", 3'600'000}, {"d", 86'400'000}};
      if (digits > 0 && digits <= 9) {
        for (const auto& [name, factor] : kUnits)
          if (unit == name) ms = std::stoll(text.substr(0, digits)) * factor;
      }
    }
    if (ms < 0 || (ms == 0 && !allow_never) || (ms != 0 && ms < min_ms)) {
      problem(node, std::string("'") + key + "' must be a duration like 30s, 15min, 4h or 2d" +
                        (allow_never ? " (or never)" : "") + ", at least " + std::to_string(min_ms) + " ms");
      return;
    }
    out = std::chrono::milliseconds(ms);
  }

  YAML::Node section(const YAML::Node& map, const char* key) {
    const auto node = map[key];
    if (node && !node.IsMap()) {
      problem(node, std::string("'") + key + "' must be a map");
      return YAML::Node();
    }
    return node;
  }

  const std::string& errors() const { return errors_; }

 private:
  std::string path_;
  std::string errors_;
};

}  // namespace

core::Result<Config> read_config(const YAML::Node& root, const std::string& path);

core::Result<Config> load_config(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return core::fail(core::ErrorCode::config, path + ": cannot read the config file");
  } catch (const YAML::ParserException& e) {
    return core::fail(core::ErrorCode::config, path + ":" + std::to_string(e.mark.line + 1) + ":" +
                                                   std::to_string(e.mark.column + 1) + ": error: " + e.msg);
  }
  Config c;
  if (root.IsNull()) return c;  // an empty file: all defaults
  try {
    return read_config(root, path);
  } catch (const YAML::Exception& e) {
    return core::fail(core::ErrorCode::config, path + ":" + std::to_string(e.mark.line + 1) + ":" +
                                                   std::to_string(e.mark.column + 1) + ": error: " + e.msg);
  }
}

core::Result<Config> read_config(const YAML::Node& root, const std::string& path) {
  Config c;
  ConfigReader r(path);
  if (!root.IsMap()) {
    r.problem(root, "the config must be a map");
    return core::fail(core::ErrorCode::config, r.errors());
  }
  r.keys(root, {"data_dir", "rules_dir", "log", "store", "listeners", "hl7", "alerts"}, "the top level");
  r.get(root, "data_dir", c.data_dir);
  r.get(root, "rules_dir", c.rules_dir);
  if (auto log = r.section(root, "log")) {
    r.keys(log, {"level", "file", "max_file_bytes", "max_files"}, "log");
    r.get(log, "level", c.log_level);
    static constexpr std::string_view kLevels[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
    if (std::find(std::begin(kLevels), std::end(kLevels), c.log_level) == std::end(kLevels))
      r.problem(log["level"], "'level' must be one of trace, debug, info, warn, error, critical, off");
    r.get(log, "file", c.log_file);
    r.get_count(log, "max_file_bytes", c.log_max_file_bytes, 4096, std::numeric_limits<int>::max());
    r.get_count(log, "max_files", c.log_max_files, 1, 100);
  }
  if (auto store = r.section(root, "store")) {
    r.keys(store, {"synchronous", "max_batch_items"}, "store");
    std::string sync = c.synchronous_full ? "full" : "normal";
    r.get(store, "synchronous", sync);
    if (sync != "full" && sync != "normal") r.problem(store["synchronous"], "'synchronous' must be full or normal");
    c.synchronous_full = sync == "full";
    r.get_count(store, "max_batch_items", c.max_batch_items, 1, 1'000'000);
  }
  if (auto listeners = r.section(root, "listeners")) {
    r.keys(listeners, {"ndjson", "mllp"}, "listeners");
    if (auto n = r.section(listeners, "mllp")) {
      r.keys(n,
             {"enabled", "address", "port", "feed", "max_frame_bytes", "idle_timeout_seconds", "max_connections",
              "max_in_flight"},
             "listeners.mllp");
      r.get(n, "enabled", c.mllp.enabled);
      r.get(n, "address", c.mllp.address);
      r.get_count(n, "port", c.mllp.port, 0, 65535);
      r.get(n, "feed", c.mllp.feed);
      if (c.mllp.feed.empty()) r.problem(n["feed"], "'feed' must not be empty");
      r.get_count(n, "max_frame_bytes", c.mllp.max_frame_bytes, 1024, 256 << 20);
      long long idle = c.mllp.idle_timeout.count();
      r.get_count(n, "idle_timeout_seconds", idle, 1, 86400);
      c.mllp.idle_timeout = std::chrono::seconds(idle);
      r.get_count(n, "max_connections", c.mllp.max_connections, 1, 10000);
      r.get_count(n, "max_in_flight", c.mllp.max_in_flight, 1, 1024);
    }
    if (auto n = r.section(listeners, "ndjson")) {
      r.keys(n, {"enabled", "address", "port", "feed", "max_line_bytes", "idle_timeout_seconds", "max_connections"},
             "listeners.ndjson");
      r.get(n, "enabled", c.ndjson.enabled);
      r.get(n, "address", c.ndjson.address);
      r.get_count(n, "port", c.ndjson.port, 0, 65535);
      r.get(n, "feed", c.ndjson.feed);
      if (c.ndjson.feed.empty()) r.problem(n["feed"], "'feed' must not be empty");
      r.get_count(n, "max_line_bytes", c.ndjson.max_line_bytes, 256, 64 << 20);
      long long idle = c.ndjson.idle_timeout.count();
      r.get_count(n, "idle_timeout_seconds", idle, 1, 86400);
      c.ndjson.idle_timeout = std::chrono::seconds(idle);
      r.get_count(n, "max_connections", c.ndjson.max_connections, 1, 10000);
    }
  }
  if (auto h = r.section(root, "hl7")) {
    r.keys(h,
           {"time_zone", "default_utc_offset", "identifier_types", "assigning_authority", "facility", "processing_ids"},
           "hl7");
    if (h["time_zone"] && h["default_utc_offset"]) {
      r.problem(h["default_utc_offset"], "set 'time_zone' or 'default_utc_offset', not both");
    } else if (auto name = h["time_zone"]) {
      if (!name.IsScalar()) {
        r.problem(name, "'time_zone' must be a zone name such as Europe/London");
      } else if (auto zone = load_time_zone(name.Scalar()); !zone) {
        r.problem(name, zone.error().message);
      } else {
        c.hl7.zone = std::move(*zone);
      }
    } else if (auto node = h["default_utc_offset"]) {
      std::string offset;
      r.get(h, "default_utc_offset", offset);
      if (offset.size() != 6 || (offset[0] != '+' && offset[0] != '-') || offset[3] != ':' ||
          !std::isdigit(static_cast<unsigned char>(offset[1])) ||
          !std::isdigit(static_cast<unsigned char>(offset[2])) ||
          !std::isdigit(static_cast<unsigned char>(offset[4])) ||
          !std::isdigit(static_cast<unsigned char>(offset[5])) || std::stoi(offset.substr(1, 2)) > 14 ||
          std::stoi(offset.substr(4, 2)) > 59) {
        r.problem(node, "'default_utc_offset' must look like +01:00 or -05:00");
      } else {
        c.hl7.zone = core::TimeZone::fixed((offset[0] == '-' ? -1 : 1) *
                                           (std::stoi(offset.substr(1, 2)) * 60 + std::stoi(offset.substr(4, 2))));
      }
    }
    if (auto types = h["identifier_types"]) {
      if (!types.IsSequence() || types.size() == 0) {
        r.problem(types, "'identifier_types' must be a non-empty list, e.g. [MR]");
      } else {
        c.hl7.identifier_types.clear();
        for (const auto& t : types) {
          if (!t.IsScalar() || t.Scalar().empty())
            r.problem(t, "an identifier type must be a non-empty string");
          else
            c.hl7.identifier_types.push_back(t.Scalar());
        }
      }
    }
    if (auto ids = h["processing_ids"]) {
      if (!ids.IsSequence() || ids.size() == 0) {
        r.problem(ids, "'processing_ids' must be a non-empty list of P, T or D, e.g. [P]");
      } else {
        c.hl7.processing_ids.clear();
        for (const auto& t : ids) {
          if (!t.IsScalar() || (t.Scalar() != "P" && t.Scalar() != "T" && t.Scalar() != "D"))
            r.problem(t, "a processing id must be P (production), T (training) or D (debugging)");
          else
            c.hl7.processing_ids.push_back(t.Scalar());
        }
      }
    }
    r.get(h, "assigning_authority", c.hl7.assigning_authority);
    r.get(h, "facility", c.hl7.facility);
  }
  if (auto alerts = r.section(root, "alerts")) {
    auto& a = c.alerts;
    r.keys(alerts, {"renotify", "control_socket", "outputs"}, "alerts");
    if (auto re = r.section(alerts, "renotify")) {
      r.keys(re, {"critical", "warning", "info"}, "alerts.renotify");
      r.get_duration(re, "critical", a.renotify_critical, true, 1000);
      r.get_duration(re, "warning", a.renotify_warning, true, 1000);
      r.get_duration(re, "info", a.renotify_info, true, 1000);
    }
    r.get(alerts, "control_socket", a.control_socket);
    if (auto out = r.section(alerts, "outputs")) {
      auto& o = a.outputs;
      r.keys(out, {"file", "console", "syslog", "subscribers"}, "alerts.outputs");
      if (auto f = r.section(out, "file")) {
        r.keys(f, {"enabled", "path", "max_bytes", "max_files"}, "alerts.outputs.file");
        r.get(f, "enabled", o.file);
        r.get(f, "path", o.file_path);
        if (o.file_path.empty()) r.problem(f["path"], "'path' must not be empty");
        r.get_count(f, "max_bytes", o.file_max_bytes, 0, std::numeric_limits<std::int64_t>::max());
        r.get_count(f, "max_files", o.file_max_files, 1, 1000);
      }
      if (auto con = r.section(out, "console")) {
        r.keys(con, {"enabled"}, "alerts.outputs.console");
        r.get(con, "enabled", o.console);
      }
      if (auto sl = r.section(out, "syslog")) {
        r.keys(sl, {"enabled", "host", "port", "unix_path", "facility"}, "alerts.outputs.syslog");
        r.get(sl, "enabled", o.syslog);
        r.get(sl, "host", o.syslog_host);
        r.get_count(sl, "port", o.syslog_port, 1, 65535);
        r.get(sl, "unix_path", o.syslog_unix_path);
        r.get_count(sl, "facility", o.syslog_facility, 0, 23);
      }
      if (auto sub = r.section(out, "subscribers")) {
        r.keys(sub, {"tcp", "address", "port", "unix_path", "max_subscribers", "queue_lines", "heartbeat"},
               "alerts.outputs.subscribers");
        r.get(sub, "tcp", o.subscribers_tcp);
        r.get(sub, "address", o.subscribers_address);
        r.get_count(sub, "port", o.subscribers_port, 0, 65535);
        r.get(sub, "unix_path", o.subscribers_unix_path);
        r.get_count(sub, "max_subscribers", o.max_subscribers, 1, 10000);
        r.get_count(sub, "queue_lines", o.subscriber_queue_lines, 1, 1'000'000);
        r.get_duration(sub, "heartbeat", o.heartbeat, false, 100);
      }
    }
  }
  if (!r.errors().empty()) return core::fail(core::ErrorCode::config, r.errors());
  return c;
}

std::string data_path(const Config& config, const std::string& path) {
  if (path.empty() || path.front() == '/') return path;
  return config.data_dir + "/" + path;
}

std::string alert_log_path(const Config& config) {
  return data_path(config, config.alerts.outputs.file_path);
}

std::string effective_rules_dir(const Config& config) {
  return config.rules_dir.empty() ? std::string(IRAEWATCH_BUNDLED_RULES_DIR) : config.rules_dir;
}

}  // namespace iraewatch::app
