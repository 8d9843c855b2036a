// `iraewatch ingest FILE...`: the same parse-and-store path as the daemon, from files.

#include <cstdio>
#include <fstream>
#include <iostream>

#include "iraewatch/app/alert_outputs.hpp"
#include "iraewatch/app/alerting.hpp"
#include "iraewatch/app/commands.hpp"
#include "iraewatch/app/delivery.hpp"
#include "iraewatch/app/ingest_pipeline.hpp"
#include "iraewatch/app/line_file.hpp"
#include "iraewatch/app/logging.hpp"
#include "iraewatch/app/rule_loading.hpp"
#include "iraewatch/net/control_server.hpp"
#include "iraewatch/store/writer.hpp"

namespace iraewatch::app {
namespace {

constexpr std::size_t kLinesPerBatch = 2000;

std::string format_of(const std::string& file, const std::string& forced) {
  if (!forced.empty()) return forced;
  if (file == "-") return "ndjson";
  for (const char* ext : {".ndjson", ".jsonl", ".json"}) {
    const std::string e(ext);
    if (file.size() >= e.size() && file.compare(file.size() - e.size(), e.size(), e) == 0) return "ndjson";
  }
  return "";
}

}  // namespace

int run_ingest(const Config& config_in, const IngestOptions& options) {
  // A command-line tool prints its own results; the log speaks only of problems unless asked.
  Config config = config_in;
  if (config.log_level == "info") config.log_level = "warn";
  if (auto ok = setup_logging(config, false); !ok) {
    std::fprintf(stderr, "iraewatch: %s\n", ok.error().message.c_str());
    return 2;
  }
  if (!options.format.empty() && options.format != "ndjson") {
    std::fprintf(stderr, "iraewatch: unknown format '%s' (supported: ndjson)\n", options.format.c_str());
    return 2;
  }
  for (const auto& file : options.files) {
    if (format_of(file, options.format).empty()) {
      std::fprintf(stderr, "iraewatch: cannot tell the format of '%s' from its name; use --format ndjson\n",
                   file.c_str());
      return 2;
    }
  }
  // Two writers would each keep their own alert state: while the daemon runs, it must take the
  // records itself.
  if (const auto control = control_socket_path(config);
      !control.empty() && net::control_request(control, R"({"command":"ping"})", std::chrono::seconds(2))) {
    std::fprintf(stderr,
                 "iraewatch: the daemon is running on this data folder (%s answers); send the records to it with "
                 "`iraewatch send` instead\n",
                 control.c_str());
    return 2;
  }
  auto rule_set = load_rules_or_report(config);
  if (!rule_set) return 2;
  auto store = store::Store::open(config.data_dir, {config.synchronous_full, 5000});
  if (!store) {
    std::fprintf(stderr, "iraewatch: cannot open the store: %s\n", store.error().message.c_str());
    return 2;
  }
  auto reader = store::Store::open(config.data_dir, {config.synchronous_full, 5000});
  if (!reader) {
    std::fprintf(stderr, "iraewatch: cannot open the store: %s\n", reader.error().message.c_str());
    return 2;
  }
  auto alerting = Alerting::start(rule_set, **store, lifecycle_policy(config));
  if (!alerting) {
    std::fprintf(stderr, "iraewatch: %s\n", alerting.error().message.c_str());
    return 2;
  }
  auto outputs = make_outputs(config, false);
  if (!outputs) {
    std::fprintf(stderr, "iraewatch: %s\n", outputs.error().message.c_str());
    return 2;
  }
  store::Writer writer(std::move(*store), (*alerting)->writer_options(config.max_batch_items));
  auto delivery = Delivery::open(std::move(*reader), std::move(*outputs), &writer);
  if (!delivery) {
    std::fprintf(stderr, "iraewatch: %s\n", delivery.error().message.c_str());
    return 2;
  }
  (*alerting)->set_on_committed([&d = **delivery](std::int64_t head) { d.notify(head); });
  (*delivery)->start();
  IngestPipeline pipeline(rule_set->concepts, options.feed.empty() ? config.ndjson.feed : options.feed);

  BatchCounts totals;
  bool store_failed = false;
  for (const auto& file : options.files) {
    auto in = LineFile::open(file);
    if (!in) {
      std::fprintf(stderr, "iraewatch: %s\n", in.error().message.c_str());
      return 2;
    }
    BatchCounts counts;
    bool more = true;
    while (more) {
      std::vector<InputLine> lines;
      std::string text;
      while (lines.size() < kLinesPerBatch && (more = in->next(text))) {
        const std::uint64_t line_no = in->line_number();
        // The listener's line limit applies to files too; a longer line is kept only in part.
        const bool too_long = text.size() > config.ndjson.max_line_bytes;
        if (too_long) text.resize(std::min<std::size_t>(text.size(), 64 * 1024));
        lines.push_back(InputLine{line_no, std::move(text), too_long, config.ndjson.max_line_bytes});
      }
      if (lines.empty()) break;
      auto batch = pipeline.prepare(file, std::move(lines));
      auto items = std::move(batch.items);
      const auto result = items.empty() ? store::WriteResult{} : writer.write(items);
      const auto replies = IngestPipeline::replies(batch, result, &counts);
      for (std::size_t i = 0; i < batch.slots.size(); ++i) {
        const auto& slot = batch.slots[i];
        if (slot.blank) continue;
        if (!result) {
          std::fprintf(stderr, "%s:%llu: error: not stored: %s\n", file.c_str(),
                       static_cast<unsigned long long>(slot.line), result.error().message.c_str());
        } else if (!slot.error.empty()) {
          std::fprintf(stderr, "%s:%llu: error: %s\n", file.c_str(), static_cast<unsigned long long>(slot.line),
                       slot.error.c_str());
        }
      }
      if (!result) {
        store_failed = true;
        break;
      }
    }
    std::printf("%s: %zu accepted (%zu new, %zu duplicates), %zu rejected\n", file.c_str(),
                counts.stored + counts.duplicates, counts.stored, counts.duplicates, counts.rejected + counts.failed);
    totals.stored += counts.stored;
    totals.duplicates += counts.duplicates;
    totals.rejected += counts.rejected;
    totals.failed += counts.failed;
    if (store_failed) break;
  }
  writer.stop();
  (*delivery)->stop();
  if ((*alerting)->events_written() > 0)
    std::printf("%zu alert events (outbox up to seq %lld)%s\n", (*alerting)->events_written(),
                static_cast<long long>((*alerting)->committed_seq()),
                config.alerts.outputs.file ? (", delivered to " + alert_log_path(config)).c_str() : "");
  if (options.files.size() > 1) {
    std::printf("total: %zu accepted (%zu new, %zu duplicates), %zu rejected\n", totals.stored + totals.duplicates,
                totals.stored, totals.duplicates, totals.rejected + totals.failed);
  }
  if (store_failed) return 2;
  return totals.rejected > 0 ? 1 : 0;
}

}  // namespace iraewatch::app
