#include <catch2/catch.hpp>

// Read-only, to hold a reader's snapshot open.
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "iraewatch/store/checkpointer.hpp"
#include "iraewatch/store/writer.hpp"
#include "support/daemon.hpp"

// SQLite starts writing the WAL from its beginning again only when a checkpoint has copied every
// frame. A PASSIVE checkpoint beside a busy writer never copies the frames committed while it
// runs, so without help the WAL grows for as long as commits keep coming (docs/database.md).

using namespace iraewatch;

namespace {

store::WriteItem observation(int n) {
  core::Observation o;
  o.id = "obs-" + std::to_string(n);
  o.patient = "P" + std::to_string(n % 97);
  o.code = {"", "tsh"};
  o.concept_name = "tsh";
  o.value = 3;
  o.unit = "m[IU]/L";
  o.time = {1000 + n, 0};
  o.provenance = {"ndjson", "", 1};
  return store::WriteItem(core::Record(o));
}

// The writer's connection (no automatic checkpoint, reporting to `gauge`) and a second one for
// checkpoints, as `serve` opens them. synchronous=NORMAL: these tests are about the WAL's
// frames, not about durability.
struct Connections {
  testing::TempDir tmp;
  std::shared_ptr<store::WalGauge> gauge = std::make_shared<store::WalGauge>();
  std::unique_ptr<store::Store> writer, checkpointer;
  int next = 0;

  Connections() {
    auto w = store::Store::open(tmp.file("data"), {false, 5000, true, false, gauge});
    auto c = store::Store::open(tmp.file("data"), {false, 5000});
    if (!w || !c) FAIL("cannot open the store");
    writer = std::move(*w);
    checkpointer = std::move(*c);
  }
  // Commits `n` records, one transaction each; returns the WAL's frames after the last.
  std::int64_t commit(int n) {
    for (int i = 0; i < n; ++i) {
      const store::WriteItem item = observation(next++);
      REQUIRE(writer->write_batch(std::span(&item, 1)));
    }
    return gauge->frames.load();
  }
};

}  // namespace

TEST_CASE("the writer's own checkpoint of the last frames is what lets the WAL start over", "[store]") {
  Connections c;
  c.commit(50);
  // A reader's snapshot stops a checkpoint short of the frames committed after it began, as the
  // writer's commits during a checkpoint pass do.
  sqlite3* reader = nullptr;
  REQUIRE(sqlite3_open_v2(store::Store::database_path(c.tmp.file("data")).c_str(), &reader, SQLITE_OPEN_READONLY,
                          nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_exec(reader, "BEGIN; SELECT count(*) FROM observations;", nullptr, nullptr, nullptr) == SQLITE_OK);
  const std::int64_t before = c.commit(10);
  auto copied = c.checkpointer->checkpoint();
  REQUIRE(copied);
  CHECK(copied->copied_frames < before);
  REQUIRE(sqlite3_exec(reader, "COMMIT", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(reader);
  // Frames left uncopied: the WAL cannot start over, and each commit appends to it.
  const std::int64_t after = c.commit(1);
  CHECK(after > before);
  // Not asked: the writer does nothing.
  c.writer->finish_checkpoint_if_wanted();
  CHECK(c.commit(1) > after);
  // Asked: it copies the rest, and its next commit starts the WAL over.
  c.gauge->tail_wanted = true;
  c.writer->finish_checkpoint_if_wanted();
  CHECK_FALSE(c.gauge->tail_wanted);
  CHECK(c.commit(1) < 10);
}

TEST_CASE("a checkpoint round asks the writer for the tail only when a few frames are left", "[store]") {
  Connections c;
  SECTION("everything copied: the gauge is cleared and the next commit starts the WAL over") {
    c.commit(20);
    store::checkpoint_round(*c.checkpointer, *c.gauge);
    CHECK(c.gauge->frames == 0);
    CHECK_FALSE(c.gauge->tail_wanted);
    CHECK(c.commit(1) < 10);
  }
  // The gauge as the writer leaves it when it commits while the round's passes run.
  SECTION("a few frames committed during the passes: the writer is asked") {
    const std::int64_t frames = c.commit(20);
    c.gauge->frames = frames + 100;
    store::checkpoint_round(*c.checkpointer, *c.gauge);
    CHECK(c.gauge->tail_wanted);
  }
  SECTION("more than the writer should copy: not asked; the next round tries again") {
    const std::int64_t frames = c.commit(20);
    c.gauge->frames = frames + store::kWriterTailFrames + 1000;
    store::checkpoint_round(*c.checkpointer, *c.gauge);
    CHECK_FALSE(c.gauge->tail_wanted);
    CHECK(c.gauge->frames == frames + store::kWriterTailFrames + 1000);
  }
}

// The same with the real threads: a Checkpointer ticking every 2 ms beside a Writer that commits
// back to back. Bounded: it stops at two restarts or after 20 s.
TEST_CASE("under a steady stream of commits the WAL starts over instead of growing", "[store]") {
  testing::TempDir tmp;
  const std::string data = tmp.file("data");
  auto gauge = std::make_shared<store::WalGauge>();
  auto writer_store = store::Store::open(data, {false, 5000, true, false, gauge});
  REQUIRE(writer_store);
  auto checkpoint_store = store::Store::open(data, {false, 5000});
  REQUIRE(checkpoint_store);
  store::Checkpointer checkpointer(std::move(*checkpoint_store), std::chrono::milliseconds(2), gauge, 64);
  store::Writer writer(std::move(*writer_store));

  int restarts = 0, commits = 0;
  std::int64_t previous = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (restarts < 2 && std::chrono::steady_clock::now() < deadline) {
    std::vector<store::WriteItem> items{observation(commits++)};
    REQUIRE(writer.write(items));
    const std::int64_t frames = gauge->frames.load();
    if (frames > 0 && frames < previous) ++restarts;  // a commit that began a new WAL
    previous = frames;
  }
  INFO(commits << " commits");
  CHECK(restarts >= 2);
  writer.stop();
  auto check = store::Store::open(data);
  CHECK((*check)->summary()->observations == commits);
}
