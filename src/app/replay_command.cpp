// `iraewatch replay FILE...`: evaluates records offline (in memory, no side effects) and prints
// alert events as JSON lines on stdout; counts and rejected lines go to stderr.

#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>

#include "iraewatch/alert/alert_json.hpp"
#include "iraewatch/app/commands.hpp"
#include "iraewatch/app/line_file.hpp"
#include "iraewatch/app/rule_loading.hpp"
#include "iraewatch/engine/record_ledger.hpp"
#include "iraewatch/ingest/ndjson_parser.hpp"

namespace iraewatch::app {

int run_replay(const Config& config, const ReplayOptions& options) {
  auto rule_set = load_rules_or_report(config);
  if (!rule_set) return 2;
  engine::Engine engine(rule_set);
  engine::RecordLedger ledger;
  ingest::NdjsonParser parser(rule_set->concepts);
  const core::Provenance provenance{options.feed.empty() ? config.ndjson.feed : options.feed, "", 0};

  std::size_t records = 0, duplicates = 0, rejected = 0;
  std::map<std::string, std::map<std::string, std::size_t>> by_rule;  // rule (or signal) -> event -> count
  std::string out;
  for (const auto& file : options.files) {
    auto in = LineFile::open(file);
    if (!in) {
      std::fprintf(stderr, "iraewatch: %s\n", in.error().message.c_str());
      return 2;
    }
    std::string line;
    while (in->next(line)) {
      const std::uint64_t line_no = in->line_number();
      if (ingest::is_blank(line)) continue;
      auto record = parser.parse(line, provenance);
      if (!record) {
        ++rejected;
        std::fprintf(stderr, "%s:%llu: error: %s\n", file.c_str(), static_cast<unsigned long long>(line_no),
                     record.error().message.c_str());
        continue;
      }
      ++records;
      const auto change = ledger.admit(*record);
      if (!change) {
        ++duplicates;
        continue;
      }
      for (const auto& e : engine.process(*record, *change)) {
        ++by_rule[e.rule.empty() ? e.signal : e.rule][e.event];
        out += alert::to_json_line(e);
        out += '\n';
      }
      if (out.size() > (1 << 16)) {
        std::fwrite(out.data(), 1, out.size(), stdout);
        out.clear();
      }
    }
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
  std::fprintf(stderr, "replay: %zu records (%zu duplicates), %zu rejected, %zu patients; ruleset %s\n", records,
               duplicates, rejected, engine.patient_count(), rule_set->version.c_str());
  for (const auto& [rule, events] : by_rule) {
    std::string counts;
    for (const auto& [event, n] : events) counts += (counts.empty() ? "" : ", ") + event + " " + std::to_string(n);
    std::fprintf(stderr, "  %-12s %s\n", rule.c_str(), counts.c_str());
  }
  return rejected > 0 ? 1 : 0;
}

}  // namespace iraewatch::app
