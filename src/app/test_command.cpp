// `iraewatch test FILE...`: rule unit tests in the spirit of `promtool test rules`. Each test is a
// timeline of input records and the alert events expected from it (docs/rules.md, "Testing").

#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "iraewatch/alert/alert_json.hpp"
#include "iraewatch/app/commands.hpp"
#include "iraewatch/app/rule_loading.hpp"
#include "iraewatch/engine/record_ledger.hpp"
#include "iraewatch/ingest/ndjson_parser.hpp"

namespace iraewatch::app {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr std::int64_t kDayMs = 86'400'000;

// Record fields that are always text, whatever YAML makes of them (an id of 123 is "123").
bool text_field(const std::string& key) {
  return key == "id" || key == "patient" || key == "code" || key == "drug" || key == "unit" || key == "time" ||
         key == "status" || key == "type";
}

json scalar_to_json(const YAML::Node& n, bool as_text) {
  const auto text = n.as<std::string>();
  if (as_text || n.Tag() == "!") return text;  // quoted scalars keep their text
  if (text == "true" || text == "false") return text == "true";
  if (text == "null" || text == "~") return nullptr;
  try {
    std::size_t used = 0;
    const double v = std::stod(text, &used);
    if (used == text.size()) {
      if (v == static_cast<double>(static_cast<long long>(v)) && text.find_first_of(".eE") == std::string::npos)
        return static_cast<long long>(v);
      return v;
    }
  } catch (...) {
  }
  return text;
}

json to_json(const YAML::Node& n, int depth = 0) {
  // A YAML alias can refer to itself: bound the walk instead of recursing forever.
  if (depth > 32) throw std::runtime_error("test data nested too deeply (or an alias refers to itself)");
  if (n.IsMap()) {
    json out = json::object();
    for (const auto& kv : n) {
      const auto key = kv.first.as<std::string>();
      out[key] = kv.second.IsScalar() ? scalar_to_json(kv.second, text_field(key)) : to_json(kv.second, depth + 1);
    }
    return out;
  }
  if (n.IsSequence()) {
    json out = json::array();
    for (const auto& item : n) out.push_back(to_json(item, depth + 1));
    return out;
  }
  if (n.IsScalar()) return scalar_to_json(n, false);
  return nullptr;
}

std::string where(const std::string& file, const YAML::Node& n) {
  return file + ":" + std::to_string(n.Mark().line + 1);
}

// Event time, as written in a test: `time` (RFC 3339) or `day` (+ `hour`) after the test's start.
std::optional<std::int64_t> time_of(const json& j, std::int64_t start, std::string& error) {
  if (j.contains("time")) {
    auto t = core::parse_rfc3339(j["time"].get<std::string>());
    if (!t) {
      error = t.error().message;
      return std::nullopt;
    }
    return t->utc_ms;
  }
  if (j.contains("day") || j.contains("hour")) {
    if (j.contains("day") && !j["day"].is_number()) {
      error = "'day' must be a number";
      return std::nullopt;
    }
    const double hours = j.contains("hour") && j["hour"].is_number() ? j["hour"].get<double>() : 0.0;
    const double days = j.contains("day") ? j["day"].get<double>() : 0.0;
    if (std::abs(days) > 1e6 || std::abs(hours) > 24e6) {
      error = "'day'/'hour' out of range";
      return std::nullopt;
    }
    const double day = j.contains("day") ? j["day"].get<double>() : 0.0;
    return start + static_cast<std::int64_t>(day * kDayMs + hours * 3'600'000.0);
  }
  return std::nullopt;
}

std::string compact(const json& j) {
  return j.dump();
}

// Does `got` (an event) match every field that `want` lists? Returns the first mismatch, if any.
std::optional<std::string> mismatch(const json& want, const json& got, std::int64_t start) {
  for (const auto& [key, value] : want.items()) {
    if (key == "day" || key == "hour" || key == "time") {
      std::string error;
      const auto want_t = time_of(want, start, error);
      const auto got_t = core::parse_rfc3339(got["time"].get<std::string>());
      if (!want_t || !got_t || want_t != got_t->utc_ms)
        return "time: expected " + (want_t ? core::format_utc(*want_t) : std::string("?")) + ", got " +
               got["time"].get<std::string>();
      continue;
    }
    if (key.size() > 9 && key.ends_with("_contains")) {
      const std::string field = key.substr(0, key.size() - 9);
      const std::string text =
          got.contains(field) ? (got[field].is_string() ? got[field].get<std::string>() : got[field].dump()) : "";
      if (!value.is_string() || text.find(value.get<std::string>()) == std::string::npos)
        return field + ": expected to contain " + value.dump() + ", got " + json(text).dump();
      continue;
    }
    if (!got.contains(key)) return key + ": no such field in the event";
    const json& g = got[key];
    const bool same = (value.is_number() && g.is_number()) ? value.get<double>() == g.get<double>() : value == g;
    if (!same) return key + ": expected " + value.dump() + ", got " + g.dump();
  }
  return std::nullopt;
}

struct Counts {
  int passed = 0, failed = 0;
};

void run_file_unchecked(const std::string& file, const std::shared_ptr<const rules::RuleSet>& rule_set, Counts& counts);

// A malformed test file is a failed test with a reason, never a crash.
void run_file(const std::string& file, const std::shared_ptr<const rules::RuleSet>& rule_set, Counts& counts) {
  try {
    run_file_unchecked(file, rule_set, counts);
  } catch (const YAML::Exception& e) {
    std::printf("FAIL %s:%d: malformed test file: %s\n", file.c_str(), e.mark.line + 1, e.msg.c_str());
    ++counts.failed;
  } catch (const std::exception& e) {
    std::printf("FAIL %s: malformed test file: %s\n", file.c_str(), e.what());
    ++counts.failed;
  }
}

void run_file_unchecked(const std::string& file, const std::shared_ptr<const rules::RuleSet>& rule_set,
                        Counts& counts) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(file);
  } catch (const YAML::Exception& e) {
    std::printf("FAIL %s:%d: cannot read the test file: %s\n", file.c_str(), e.mark.line + 1, e.msg.c_str());
    ++counts.failed;
    return;
  }
  std::int64_t file_start = 0;
  if (const auto s = root["start"]) {
    auto t = core::parse_rfc3339(s.as<std::string>());
    if (!t) {
      std::printf("FAIL %s: start: %s\n", where(file, s).c_str(), t.error().message.c_str());
      ++counts.failed;
      return;
    }
    file_start = t->utc_ms;
  }
  const auto tests = root["tests"];
  if (!tests || !tests.IsSequence()) {
    std::printf("FAIL %s: 'tests' must be a list\n", file.c_str());
    ++counts.failed;
    return;
  }
  for (const auto& test : tests) {
    const std::string name = test["name"] ? test["name"].as<std::string>() : "(unnamed)";
    std::vector<std::string> problems;
    std::int64_t start = file_start;
    if (const auto s = test["start"]) {
      if (auto t = core::parse_rfc3339(s.as<std::string>()))
        start = t->utc_ms;
      else
        problems.push_back("start: " + t.error().message);
    }
    engine::Engine engine(rule_set);
    engine::RecordLedger ledger;
    ingest::NdjsonParser parser(rule_set->concepts);
    std::vector<json> events;
    int index = 0;
    for (const auto& rnode : test["records"]) {
      ++index;
      json r = to_json(rnode);
      const bool expect_rejected = r.value("rejected", false);
      r.erase("rejected");
      std::string error;
      if (!r.contains("time")) {
        auto t = time_of(r, start, error);
        if (!t) {
          problems.push_back(where(file, rnode) + ": record " + std::to_string(index) + ": " +
                             (error.empty() ? "needs 'time' or 'day'" : error));
          continue;
        }
        r["time"] = core::format_utc(*t);
      }
      r.erase("day");
      r.erase("hour");
      if (!r.contains("type")) r["type"] = r.contains("drug") ? "medication" : "observation";
      if (!r.contains("patient")) r["patient"] = "P1";
      if (!r.contains("id")) r["id"] = "r" + std::to_string(index);
      auto record = parser.parse(r.dump(), core::Provenance{"test", "", 0});
      if (!record) {
        if (!expect_rejected)
          problems.push_back(where(file, rnode) + ": record " + std::to_string(index) +
                             " rejected: " + record.error().message);
        continue;
      }
      if (expect_rejected) {
        problems.push_back(where(file, rnode) + ": record " + std::to_string(index) + " was expected to be rejected");
        continue;
      }
      if (auto change = ledger.admit(*record))
        for (const auto& e : engine.process(*record, *change)) events.push_back(json::parse(alert::to_json_line(e)));
    }

    auto show = [&](const json& e) {
      return "{event: " + e["event"].get<std::string>() + ", signal: " + e["signal"].get<std::string>() +
             ", grade: " + std::to_string(e["grade"].get<int>()) + ", severity: " + e["severity"].get<std::string>() +
             ", rule: " + e["rule"].get<std::string>() + ", time: " + e["time"].get<std::string>() +
             ", summary: " + e["summary"].dump() + "}";
    };
    if (const auto expect = test["expect"]) {
      std::vector<json> want;
      for (const auto& w : expect) want.push_back(to_json(w));
      const std::size_t n = std::max(want.size(), events.size());
      for (std::size_t i = 0; i < n; ++i) {
        if (i >= want.size()) {
          problems.push_back("unexpected event " + std::to_string(i + 1) + ": " + show(events[i]));
        } else if (i >= events.size()) {
          problems.push_back("missing event " + std::to_string(i + 1) + ": expected " + compact(want[i]) +
                             ", got nothing");
        } else if (auto why = mismatch(want[i], events[i], start)) {
          problems.push_back("event " + std::to_string(i + 1) + ": " + *why + "\n      expected " + compact(want[i]) +
                             "\n      got      " + show(events[i]));
        }
      }
    }
    for (const auto& a : test["expect_absent"]) {
      const json absent = to_json(a);
      for (const auto& e : events)
        if (!mismatch(absent, e, start))
          problems.push_back("event that should not happen: " + show(e) + " (matches " + compact(absent) + ")");
    }

    if (problems.empty()) {
      ++counts.passed;
      continue;
    }
    ++counts.failed;
    std::printf("FAIL %s \"%s\"\n", where(file, test).c_str(), name.c_str());
    for (const auto& p : problems) std::printf("    %s\n", p.c_str());
    if (!events.empty()) {
      std::printf("    all events:\n");
      for (const auto& e : events) std::printf("      %s\n", show(e).c_str());
    }
  }
}

}  // namespace

int run_test(const Config& config, const TestOptions& options) {
  auto rule_set = load_rules_or_report(config);
  if (!rule_set) return 2;
  std::vector<std::string> files;
  for (const auto& p : options.files) {
    if (fs::is_directory(p)) {
      std::vector<std::string> found;
      for (const auto& entry : fs::directory_iterator(p))
        if (entry.path().extension() == ".yaml" || entry.path().extension() == ".yml")
          found.push_back(entry.path().string());
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else if (fs::exists(p)) {
      files.push_back(p);
    } else {
      std::fprintf(stderr, "iraewatch: no such test file '%s'\n", p.c_str());
      return 2;
    }
  }
  Counts counts;
  for (const auto& f : files) run_file(f, rule_set, counts);
  std::printf("rule tests: %d passed, %d failed\n", counts.passed, counts.failed);
  return counts.failed > 0 ? 1 : 0;
}

}  // namespace iraewatch::app
