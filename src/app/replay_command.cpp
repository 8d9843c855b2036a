// `iraewatch replay FILE...`: evaluates records offline (in memory, no side effects) through the
// same engine and alert lifecycle as the daemon, and prints alert events as JSON lines on stdout;
// counts and rejected lines go to stderr. The lifecycle clock is event time: the newest record
// time seen so far drives re-notification.

#include <condition_variable>
#include <cstdio>
#include <deque>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <mutex>
#include <thread>
#include <variant>
#include <vector>

#include "iraewatch/alert/lifecycle.hpp"
#include "iraewatch/app/alert_outputs.hpp"
#include "iraewatch/app/commands.hpp"
#include "iraewatch/app/line_file.hpp"
#include "iraewatch/app/rule_loading.hpp"
#include "iraewatch/engine/record_ledger.hpp"
#include "iraewatch/ingest/hl7_ack.hpp"
#include "iraewatch/ingest/hl7_mapper.hpp"
#include "iraewatch/ingest/ndjson_parser.hpp"

namespace iraewatch::app {

namespace {

// Parsed lines travel from the reading thread to the evaluating one in chunks, in file order.
struct ParsedLine {
  std::uint64_t line_no = 0;
  core::Result<core::Record> record;
};
struct Chunk {
  std::string file;
  std::vector<ParsedLine> lines;
  std::string error;  // the file could not be read
  bool last = false;  // nothing follows
};

constexpr std::size_t kChunkLines = 4096;
constexpr std::size_t kMaxQueuedChunks = 8;

// A bounded queue between exactly one producer and one consumer.
class ChunkQueue {
 public:
  void push(Chunk chunk) {
    std::unique_lock lock(mutex_);
    not_full_.wait(lock, [this] { return queue_.size() < kMaxQueuedChunks || closed_; });
    if (closed_) return;
    queue_.push_back(std::move(chunk));
    not_empty_.notify_one();
  }
  Chunk pop() {
    std::unique_lock lock(mutex_);
    not_empty_.wait(lock, [this] { return !queue_.empty(); });
    Chunk c = std::move(queue_.front());
    queue_.pop_front();
    not_full_.notify_one();
    return c;
  }
  void close() {  // the consumer gives up: release a waiting producer
    std::lock_guard lock(mutex_);
    closed_ = true;
    not_full_.notify_one();
  }

 private:
  std::mutex mutex_;
  std::condition_variable not_full_, not_empty_;
  std::deque<Chunk> queue_;
  bool closed_ = false;
};

// Reads and parses every file, in order, on its own thread: parsing and evaluation then share
// the machine's two cores, and the output is the same as one thread would give.
// An .hl7 file: each message mapped as the MLLP listener would; a message's problems are reported
// as errors of "line" N = the message's number in the file.
// Returns false when the file cannot be read (the queue then has its last chunk).
bool read_hl7_file(const std::string& file, const ingest::Hl7Mapper& mapper, ChunkQueue& queue) {
  auto read = read_whole(file);
  if (!read) {
    queue.push(Chunk{file, {}, read.error().message, true});
    return false;
  }
  const std::string text = std::move(*read);
  Chunk chunk{file, {}, "", false};
  auto messages = ingest::hl7::split_messages(text);
  if (!messages) {
    chunk.lines.push_back(ParsedLine{1, std::unexpected(messages.error())});
    queue.push(std::move(chunk));
    return true;
  }
  for (std::size_t i = 0; i < messages->size(); ++i) {
    const std::uint64_t n = i + 1;
    auto message = ingest::hl7::Message::parse((*messages)[i]);
    if (!message) {
      chunk.lines.push_back(ParsedLine{n, std::unexpected(message.error())});
      continue;
    }
    auto mapped = mapper.map(*message, 0);
    const std::string code(ingest::ack_code(ingest::ack_kind(mapped), mapped.enhanced_ack));
    if (mapped.rejection) {
      chunk.lines.push_back(
          ParsedLine{n, core::fail(core::ErrorCode::invalid_input,
                                   "message " + mapped.control_id + " " + code + ": " + mapped.rejection->message)});
      continue;
    }
    for (const auto& issue : mapped.issues)
      chunk.lines.push_back(
          ParsedLine{n, core::fail(core::ErrorCode::invalid_input,
                                   "message " + mapped.control_id + " " + code + ": " + ingest::located(issue))});
    for (auto& r : mapped.records) chunk.lines.push_back(ParsedLine{n, std::move(r)});
  }
  queue.push(std::move(chunk));
  return true;
}

void read_files(const std::vector<std::string>& files, const std::string& format, const ingest::NdjsonParser& parser,
                const ingest::Hl7Mapper& mapper, const core::Provenance& provenance, ChunkQueue& queue) {
  for (const auto& file : files) {
    if (input_format(file, format) == "hl7") {
      if (!read_hl7_file(file, mapper, queue)) return;
      continue;
    }
    auto in = LineFile::open(file);
    if (!in) {
      queue.push(Chunk{file, {}, in.error().message, true});
      return;
    }
    Chunk chunk{file, {}, "", false};
    std::string line;
    while (in->next(line)) {
      if (ingest::is_blank(line)) continue;
      chunk.lines.push_back(ParsedLine{in->line_number(), parser.parse(line, provenance)});
      if (chunk.lines.size() == kChunkLines) {
        queue.push(std::move(chunk));
        chunk = Chunk{file, {}, "", false};
      }
    }
    if (!chunk.lines.empty()) queue.push(std::move(chunk));
  }
  queue.push(Chunk{"", {}, "", true});
}

}  // namespace

int run_replay(const Config& config, const ReplayOptions& options) {
  if (!options.format.empty() && options.format != "ndjson" && options.format != "hl7") {
    std::fprintf(stderr, "iraewatch: unknown format '%s' (supported: ndjson, hl7)\n", options.format.c_str());
    return 2;
  }
  auto rule_set = load_rules_or_report(config);
  if (!rule_set) return 2;
  engine::Engine engine(rule_set);
  alert::Lifecycle lifecycle(lifecycle_policy(config));
  engine::RecordLedger ledger;
  std::int64_t clock = INT64_MIN;
  const ingest::NdjsonParser parser(rule_set->concepts);
  const core::Provenance provenance{options.feed.empty() ? config.ndjson.feed : options.feed, "", 0};

  ChunkQueue queue;
  auto hl7_opts = hl7_options(config);
  if (!options.feed.empty()) hl7_opts.feed = options.feed;
  const ingest::Hl7Mapper mapper(rule_set->concepts, hl7_opts);
  std::thread reader([&] { read_files(options.files, options.format, parser, mapper, provenance, queue); });

  std::size_t records = 0, duplicates = 0, rejected = 0;
  std::map<std::string, std::map<std::string, std::size_t>> by_rule;  // rule (or signal) -> event -> count
  std::string out;
  std::string failure;
  for (;;) {
    Chunk chunk = queue.pop();
    if (!chunk.error.empty()) failure = chunk.error;
    for (auto& [line_no, record] : chunk.lines) {
      if (!record) {
        ++rejected;
        std::fprintf(stderr, "%s:%llu: error: %s\n", chunk.file.c_str(), static_cast<unsigned long long>(line_no),
                     record.error().message.c_str());
        continue;
      }
      ++records;
      const auto change = ledger.admit(*record);
      if (!change) {
        ++duplicates;
        continue;
      }
      const std::int64_t t = std::visit([](const auto& r) { return r.time.utc_ms; }, *record);
      if (t > clock) {
        clock = t;
        for (const auto& n : lifecycle.renotify_due(clock, clock)) {
          ++by_rule[n.notice.signal][n.notice.event];
          out += n.notice.line;
          out += '\n';
        }
      }
      for (const auto& e : engine.process(*record, *change)) {
        auto n = lifecycle.on_event(e, clock, clock);
        if (!n) continue;
        ++by_rule[e.rule.empty() ? e.signal : e.rule][n->notice.event];
        out += n->notice.line;
        out += '\n';
      }
      if (out.size() > (1 << 16)) {
        std::fwrite(out.data(), 1, out.size(), stdout);
        out.clear();
      }
    }
    if (chunk.last) break;
  }
  queue.close();
  reader.join();
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
  if (!failure.empty()) {
    std::fprintf(stderr, "iraewatch: %s\n", failure.c_str());
    return 2;
  }
  std::fprintf(stderr,
               "replay: %zu records (%zu duplicates), %zu rejected, %zu patients; %lld alert events, %zu alerts open "
               "at the end; ruleset %s\n",
               records, duplicates, rejected, engine.patient_count(), static_cast<long long>(lifecycle.last_seq()),
               lifecycle.open_count(), rule_set->version.c_str());
  for (const auto& [rule, events] : by_rule) {
    std::string counts;
    for (const auto& [event, n] : events) counts += (counts.empty() ? "" : ", ") + event + " " + std::to_string(n);
    std::fprintf(stderr, "  %-12s %s\n", rule.c_str(), counts.c_str());
  }
  return rejected > 0 ? 1 : 0;
}

}  // namespace iraewatch::app
