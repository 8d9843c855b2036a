// `iraewatch ingest FILE...`: the same parse-and-store path as the daemon, from files.

#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <mutex>

#include "iraewatch/app/alert_outputs.hpp"
#include "iraewatch/app/alerting.hpp"
#include "iraewatch/app/commands.hpp"
#include "iraewatch/app/delivery.hpp"
#include "iraewatch/app/hl7_intake.hpp"
#include "iraewatch/app/ingest_pipeline.hpp"
#include "iraewatch/app/line_file.hpp"
#include "iraewatch/app/logging.hpp"
#include "iraewatch/app/rule_loading.hpp"
#include "iraewatch/net/control_server.hpp"
#include "iraewatch/store/writer.hpp"

namespace iraewatch::app {
namespace {

constexpr std::size_t kLinesPerBatch = 2000;

// A field for one line of output: "?" when empty; control characters (an HL7 escape such as
// \X0A\ may decode to one) as '?'.
std::string printable(std::string text) {
  if (text.empty()) return "?";
  for (char& ch : text)
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7F) ch = '?';
  return text;
}

// Every message of an .hl7 file through the same path as the MLLP listener; prints each ACK code.
// Returns 0, 2 (unreadable file) or 3 (the store failed).
int ingest_hl7_file(const std::string& file, Hl7Intake& hl7, store::Writer& writer, BatchCounts& totals) {
  auto read = read_whole(file);
  if (!read) {
    std::fprintf(stderr, "iraewatch: %s\n", read.error().message.c_str());
    return 2;
  }
  const std::string text = std::move(*read);
  auto messages = ingest::hl7::split_messages(text);
  if (!messages) {
    std::fprintf(stderr, "%s: error: %s\n", file.c_str(), messages.error().message.c_str());
    ++totals.rejected;
    return 0;
  }
  // Parsed, mapped and answered here, as the listener's thread does; only the store work runs in
  // the writer's transaction. Submitted together so that the writer groups them; completions
  // come back in order.
  std::vector<Hl7Prepared> prepared;
  prepared.reserve(messages->size());
  for (const auto& message : *messages)
    prepared.push_back(hl7.prepare(std::string(message), file, core::wall_clock_ms()));
  struct Done {
    core::Result<Hl7Outcome> outcome = core::fail(core::ErrorCode::store_unavailable, "not run");
    core::Result<void> committed;
  };
  std::vector<Done> done(prepared.size());
  std::mutex mutex;
  std::condition_variable cv;
  std::size_t completed = 0;
  for (std::size_t i = 0; i < prepared.size(); ++i) {
    writer.submit_task(
        [&, i](store::Store& s) -> core::Result<void> {
          done[i].outcome = hl7.commit(s, prepared[i]);
          if (!done[i].outcome) return std::unexpected(done[i].outcome.error());
          return {};
        },
        [&, i](core::Result<void> committed) {
          std::lock_guard lock(mutex);
          done[i].committed = std::move(committed);
          ++completed;
          cv.notify_one();
        });
  }
  {
    std::unique_lock lock(mutex);
    cv.wait(lock, [&] { return completed == prepared.size(); });
  }
  bool failed = false;
  std::size_t stored = 0, duplicates = 0, rejected = 0;
  for (std::size_t i = 0; i < done.size(); ++i) {
    if (!done[i].committed) {
      std::fprintf(stderr, "%s: message %zu: error: not stored: %s\n", file.c_str(), i + 1,
                   done[i].committed.error().message.c_str());
      failed = true;
      continue;
    }
    const auto& o = *done[i].outcome;
    const auto& mapped = prepared[i].mapped;
    const std::string type = printable(mapped.message_type);
    const std::string control = printable(mapped.control_id.substr(0, 64));
    std::printf("%s: message %zu (%s, control id %s): %s%s%s%s\n", file.c_str(), i + 1, type.c_str(), control.c_str(),
                o.ack_code.c_str(), o.repeat ? " (already received: stored ACK)" : "", o.reason.empty() ? "" : ": ",
                o.reason.substr(0, 200).c_str());
    stored += o.stored;
    duplicates += o.duplicates;
    rejected += o.rejected;
  }
  std::printf("%s: %zu messages; %zu records accepted (%zu new, %zu duplicates), %zu rejected\n", file.c_str(),
              messages->size(), stored + duplicates, stored, duplicates, rejected);
  totals.stored += stored;
  totals.duplicates += duplicates;
  totals.rejected += rejected;
  return failed ? 3 : 0;
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
  if (!options.format.empty() && options.format != "ndjson" && options.format != "hl7") {
    std::fprintf(stderr, "iraewatch: unknown format '%s' (supported: ndjson, hl7)\n", options.format.c_str());
    return 2;
  }
  for (const auto& file : options.files) {
    if (input_format(file, options.format).empty()) {
      std::fprintf(stderr, "iraewatch: cannot tell the format of '%s' from its name; use --format ndjson or hl7\n",
                   file.c_str());
      return 2;
    }
  }
  // Two writers would each keep their own alert state: while the daemon runs, it must take the
  // records itself.
  if (const auto control = control_socket_path(config); !control.empty()) {
    auto ping = net::control_request(control, R"({"command":"ping"})", std::chrono::seconds(2));
    if (ping || ping.error().code != core::ErrorCode::not_found) {
      std::fprintf(stderr,
                   "iraewatch: a daemon is running on this data folder (%s); send the records to it with `iraewatch "
                   "send` (NDJSON) or over MLLP instead\n",
                   control.c_str());
      return 2;
    }
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
  auto hl7_opts = hl7_options(config);
  if (!options.feed.empty()) hl7_opts.feed = options.feed;
  Hl7Intake hl7(rule_set->concepts, hl7_opts, config.hl7.facility, alerting->get());
  for (const auto& file : options.files) {
    if (input_format(file, options.format) == "hl7") {
      const auto r = ingest_hl7_file(file, hl7, writer, totals);
      if (r == 2) return 2;
      if (r == 3) {
        store_failed = true;
        break;
      }
      continue;
    }
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
