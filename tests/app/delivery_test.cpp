#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <numeric>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "iraewatch/alert/output.hpp"
#include "iraewatch/app/delivery.hpp"
#include "iraewatch/store/writer.hpp"
#include "support/daemon.hpp"

// The delivery loop (src/app/delivery.cpp): outbox rows to each output, in order, from the
// position saved in the store, with a failing output retried apart from the healthy ones.

using namespace iraewatch;

namespace {

constexpr auto kWait = std::chrono::seconds(20);  // bound on every wait; delivery retries every 1 s

// What every fake output did, shared by the outputs of one test (the Delivery owns the outputs).
class Journal {
 public:
  struct Entry {
    std::string output;
    std::int64_t seq;
  };

  void delivered(const std::string& output, std::span<const core::AlertNotice> notices) {
    std::lock_guard lock(mutex_);
    for (const auto& n : notices) entries_.push_back({output, n.seq});
    changed_.notify_all();
  }
  void failed(const std::string& output) {
    std::lock_guard lock(mutex_);
    failures_.push_back(output);
    changed_.notify_all();
  }

  std::vector<std::int64_t> seqs_of(const std::string& output) const {
    std::lock_guard lock(mutex_);
    return seqs_locked(output);
  }
  std::size_t failures_of(const std::string& output) const {
    std::lock_guard lock(mutex_);
    return static_cast<std::size_t>(std::count(failures_.begin(), failures_.end(), output));
  }
  std::vector<Entry> entries() const {
    std::lock_guard lock(mutex_);
    return entries_;
  }

  // Waits (bounded) until `output` has been handed `count` notices, or has failed `failures` times.
  bool wait_seqs(const std::string& output, std::size_t count) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, kWait, [&] { return seqs_locked(output).size() >= count; });
  }
  bool wait_failures(const std::string& output, std::size_t failures) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, kWait, [&] {
      return static_cast<std::size_t>(std::count(failures_.begin(), failures_.end(), output)) >= failures;
    });
  }

 private:
  std::vector<std::int64_t> seqs_locked(const std::string& output) const {
    std::vector<std::int64_t> out;
    for (const auto& e : entries_)
      if (e.output == output) out.push_back(e.seq);
    return out;
  }

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Entry> entries_;
  std::vector<std::string> failures_;
};

// An output that records what it is handed; it fails its first `fail_first` calls, and every
// call while `failing` is set.
class FakeOutput : public alert::Output {
 public:
  FakeOutput(std::string name, std::shared_ptr<Journal> journal, int fail_first = 0,
             std::shared_ptr<std::atomic<bool>> failing = nullptr)
      : name_(std::move(name)), journal_(std::move(journal)), fail_first_(fail_first), failing_(std::move(failing)) {}

  const std::string& name() const override { return name_; }
  core::Result<void> deliver(std::span<const core::AlertNotice> notices) override {
    if (calls_++ < fail_first_ || (failing_ && *failing_)) {
      journal_->failed(name_);
      return core::fail(core::ErrorCode::io, name_ + " is down");
    }
    journal_->delivered(name_, notices);
    return {};
  }

 private:
  std::string name_;
  std::shared_ptr<Journal> journal_;
  int calls_ = 0;
  int fail_first_;
  std::shared_ptr<std::atomic<bool>> failing_;
};

std::unique_ptr<store::Store> open_store(const std::string& dir) {
  auto s = store::Store::open(dir);
  if (!s) FAIL(s.error().message);
  return std::move(*s);
}

core::AlertNotice notice(std::int64_t seq) {
  core::AlertNotice n;
  n.seq = seq;
  n.alert_id = 1;
  n.patient = "MRN-1";
  n.signal = "colitis";
  n.event = seq == 1 ? "fired" : "updated";
  n.grade = 2;
  n.severity = "warning";
  n.cause = "test";
  n.line = R"({"seq":)" + std::to_string(seq) + "}";
  n.text = "notice " + std::to_string(seq);
  return n;
}

// Commits outbox rows first..last (and the alert they belong to) in one transaction.
void append_events(store::Store& s, std::int64_t first, std::int64_t last) {
  REQUIRE(s.begin());
  core::Alert a;
  a.id = 1;
  a.patient = "MRN-1";
  a.signal = "colitis";
  a.severity = "warning";
  auto r = s.save_alert(a);
  for (std::int64_t seq = first; r && seq <= last; ++seq) r = s.append_alert_event(notice(seq));
  if (!r) {
    s.rollback();
    FAIL(r.error().message);
  }
  REQUIRE(s.commit());
}

std::vector<std::int64_t> range(std::int64_t first, std::int64_t last) {
  std::vector<std::int64_t> out(static_cast<std::size_t>(last - first + 1));
  std::iota(out.begin(), out.end(), first);
  return out;
}

// Opens a delivery. With `from_start`, outputs that never saved a position are registered at 0
// first, so that they get the whole outbox (a new output otherwise starts at the head).
std::unique_ptr<app::Delivery> open_delivery(const std::string& dir,
                                             std::vector<std::unique_ptr<alert::Output>> outputs,
                                             store::Writer* writer = nullptr, bool from_start = true) {
  if (from_start) {
    auto db = open_store(dir);
    for (const auto& o : outputs)
      if (auto saved = db->saved_output_position(o->name()); saved && !*saved)
        REQUIRE(db->set_output_position(o->name(), 0, 1));
  }
  auto d = app::Delivery::open(open_store(dir), std::move(outputs), writer);
  if (!d) FAIL(d.error().message);
  return std::move(*d);
}

template <typename... Outputs>
std::vector<std::unique_ptr<alert::Output>> outputs(std::unique_ptr<Outputs>... o) {
  std::vector<std::unique_ptr<alert::Output>> out;
  (out.push_back(std::move(o)), ...);
  return out;
}

}  // namespace

TEST_CASE("delivery hands every output the outbox in order, then what notify() announces", "[app][delivery]") {
  testing::TempDir tmp;
  const std::string dir = tmp.file("data");
  auto db = open_store(dir);
  append_events(*db, 1, 5);
  auto journal = std::make_shared<Journal>();

  auto d = open_delivery(
      dir, outputs(std::make_unique<FakeOutput>("a", journal), std::make_unique<FakeOutput>("b", journal)));
  d->start();
  REQUIRE(journal->wait_seqs("a", 5));
  REQUIRE(journal->wait_seqs("b", 5));

  append_events(*db, 6, 8);
  d->notify(8);
  REQUIRE(journal->wait_seqs("a", 8));
  REQUIRE(journal->wait_seqs("b", 8));
  CHECK(d->delivered() == 8);  // counted on the first output
  d->stop();

  CHECK(journal->seqs_of("a") == range(1, 8));
  CHECK(journal->seqs_of("b") == range(1, 8));
  CHECK(*db->output_position("a") == 8);
  CHECK(*db->output_position("b") == 8);
}

TEST_CASE("delivery stops at the announced head: rows past it may not be on disk yet", "[app][delivery]") {
  testing::TempDir tmp;
  const std::string dir = tmp.file("data");
  auto db = open_store(dir);
  append_events(*db, 1, 3);
  auto journal = std::make_shared<Journal>();
  auto d = open_delivery(dir, outputs(std::make_unique<FakeOutput>("a", journal)));
  d->start();
  REQUIRE(journal->wait_seqs("a", 3));

  // Committed (visible to the delivery's connection), but only 5 is announced as on disk.
  append_events(*db, 4, 7);
  d->notify(5);
  REQUIRE(journal->wait_seqs("a", 5));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(journal->seqs_of("a") == range(1, 5));
  d->notify(7);
  REQUIRE(journal->wait_seqs("a", 7));
  d->stop();
  CHECK(journal->seqs_of("a") == range(1, 7));
}

TEST_CASE("a new output starts at the outbox head, and that start is saved at once", "[app][delivery]") {
  testing::TempDir tmp;
  const std::string dir = tmp.file("data");
  auto db = open_store(dir);
  append_events(*db, 1, 3);
  auto journal = std::make_shared<Journal>();
  auto d = open_delivery(dir, outputs(std::make_unique<FakeOutput>("syslog", journal)), nullptr, false);
  // Saved before anything is delivered: a crash now would resume from 3, not skip what follows.
  CHECK(*db->saved_output_position("syslog") == std::optional<std::int64_t>(3));
  d->start();
  append_events(*db, 4, 5);
  d->notify(5);
  REQUIRE(journal->wait_seqs("syslog", 2));
  d->stop();
  CHECK(journal->seqs_of("syslog") == range(4, 5));  // the history before it was enabled is not replayed
}

TEST_CASE("delivery resumes after each output's saved position", "[app][delivery]") {
  testing::TempDir tmp;
  const std::string dir = tmp.file("data");
  auto db = open_store(dir);
  append_events(*db, 1, 4);

  SECTION("a second delivery after a clean stop delivers nothing twice") {
    auto first = std::make_shared<Journal>();
    {
      auto d = open_delivery(dir, outputs(std::make_unique<FakeOutput>("file", first)));
      d->start();
      REQUIRE(first->wait_seqs("file", 4));
      d->stop();
    }
    CHECK(first->seqs_of("file") == range(1, 4));
    append_events(*db, 5, 6);

    auto second = std::make_shared<Journal>();
    auto d = open_delivery(dir, outputs(std::make_unique<FakeOutput>("file", second)));
    d->start();
    REQUIRE(second->wait_seqs("file", 2));
    d->stop();
    CHECK(second->seqs_of("file") == range(5, 6));
    CHECK(*db->output_position("file") == 6);
  }
  SECTION("each output starts from its own position") {
    REQUIRE(db->begin());
    REQUIRE(db->set_output_position("b", 3, 1));
    REQUIRE(db->commit());
    auto journal = std::make_shared<Journal>();
    auto d = open_delivery(
        dir, outputs(std::make_unique<FakeOutput>("a", journal), std::make_unique<FakeOutput>("b", journal)));
    d->start();
    REQUIRE(journal->wait_seqs("a", 4));
    REQUIRE(journal->wait_seqs("b", 1));
    d->stop();
    CHECK(journal->seqs_of("a") == range(1, 4));
    CHECK(journal->seqs_of("b") == range(4, 4));
  }
}

TEST_CASE("a failing output is retried until it has everything, without holding back the others", "[app][delivery]") {
  testing::TempDir tmp;
  const std::string dir = tmp.file("data");
  auto db = open_store(dir);
  append_events(*db, 1, 6);
  auto journal = std::make_shared<Journal>();

  SECTION("an output that fails its first calls") {
    // The failing output comes first, so that a loop that gave up on a pass at the first failure
    // would starve the healthy one.
    auto d = open_delivery(dir, outputs(std::make_unique<FakeOutput>("flaky", journal, 2),
                                        std::make_unique<FakeOutput>("healthy", journal)));
    d->start();
    REQUIRE(journal->wait_seqs("flaky", 6));  // two retries, a second apart
    d->stop();
    CHECK(journal->failures_of("flaky") == 2);
    CHECK(journal->seqs_of("flaky") == range(1, 6));
    CHECK(journal->seqs_of("healthy") == range(1, 6));
    // The healthy output had everything before the flaky one got its first notice.
    const auto entries = journal->entries();
    std::size_t last_healthy = 0, first_flaky = entries.size();
    for (std::size_t i = 0; i < entries.size(); ++i) {
      if (entries[i].output == "healthy") last_healthy = i;
      if (entries[i].output == "flaky" && first_flaky == entries.size()) first_flaky = i;
    }
    CHECK(last_healthy < first_flaky);
    CHECK(*db->output_position("flaky") == 6);
  }
  SECTION("new events reach the healthy output while the other is down") {
    auto failing = std::make_shared<std::atomic<bool>>(true);
    auto d = open_delivery(dir, outputs(std::make_unique<FakeOutput>("down", journal, 0, failing),
                                        std::make_unique<FakeOutput>("healthy", journal)));
    d->start();
    REQUIRE(journal->wait_seqs("healthy", 6));
    append_events(*db, 7, 9);
    d->notify(9);
    REQUIRE(journal->wait_seqs("healthy", 9));
    REQUIRE(journal->wait_failures("down", 2));  // retried
    CHECK(journal->seqs_of("down").empty());
    *failing = false;
    REQUIRE(journal->wait_seqs("down", 9));
    d->stop();
    CHECK(journal->seqs_of("down") == range(1, 9));  // in order, no gaps, nothing twice
    CHECK(journal->seqs_of("healthy") == range(1, 9));
    CHECK(*db->output_position("down") == 9);
    CHECK(*db->output_position("healthy") == 9);
  }
}

TEST_CASE("stop() delivers what is committed and saves the positions", "[app][delivery]") {
  testing::TempDir tmp;
  const std::string dir = tmp.file("data");
  auto db = open_store(dir);
  append_events(*db, 1, 3);
  auto journal = std::make_shared<Journal>();

  SECTION("events committed without a notify") {
    auto d = open_delivery(dir, outputs(std::make_unique<FakeOutput>("file", journal)));
    d->start();
    REQUIRE(journal->wait_seqs("file", 3));
    append_events(*db, 4, 7);  // no notify(): only stop() learns of them
    d->stop();
    CHECK(journal->seqs_of("file") == range(1, 7));
    CHECK(*db->output_position("file") == 7);
  }
  SECTION("never started") {
    auto d = open_delivery(dir, outputs(std::make_unique<FakeOutput>("file", journal)));
    d->stop();
    CHECK(journal->seqs_of("file") == range(1, 3));
    CHECK(*db->output_position("file") == 3);
  }
  SECTION("an output still failing at stop keeps its position, so nothing is skipped") {
    auto failing = std::make_shared<std::atomic<bool>>(true);
    auto d = open_delivery(dir, outputs(std::make_unique<FakeOutput>("file", journal),
                                        std::make_unique<FakeOutput>("down", journal, 0, failing)));
    d->start();
    REQUIRE(journal->wait_seqs("file", 3));
    d->stop();
    CHECK(journal->failures_of("down") >= 2);  // at least the pass and stop()'s one more try
    CHECK(*db->output_position("file") == 3);
    CHECK(*db->output_position("down") == 0);
  }
}

TEST_CASE("with a writer, positions are saved while the delivery runs", "[app][delivery]") {
  testing::TempDir tmp;
  const std::string dir = tmp.file("data");
  store::Writer writer(open_store(dir));
  auto journal = std::make_shared<Journal>();
  auto d = open_delivery(dir, outputs(std::make_unique<FakeOutput>("file", journal)), &writer);
  d->start();

  REQUIRE(writer.run_task([](store::Store& s) -> core::Result<void> {
    auto r = s.save_alert([] {
      core::Alert a;
      a.id = 1;
      a.patient = "MRN-1";
      a.signal = "colitis";
      return a;
    }());
    for (std::int64_t seq = 1; r && seq <= 5; ++seq) r = s.append_alert_event(notice(seq));
    return r;
  }));
  d->notify(5);
  REQUIRE(journal->wait_seqs("file", 5));

  // Saved through the writer within a couple of seconds (every second), not only at stop().
  auto reader = open_store(dir);
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  std::int64_t saved = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    auto p = reader->output_position("file");
    REQUIRE(p);
    saved = *p;
    if (saved == 5) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling the store, bounded
  }
  CHECK(saved == 5);

  writer.stop();
  d->stop();
  CHECK(journal->seqs_of("file") == range(1, 5));
  CHECK(*reader->output_position("file") == 5);
}
