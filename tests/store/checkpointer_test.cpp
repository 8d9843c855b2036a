#include <catch2/catch.hpp>

#include <filesystem>
#include <memory>
#include <string>

#include "iraewatch/store/checkpointer.hpp"
#include "iraewatch/store/writer.hpp"
#include "support/daemon.hpp"

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

}  // namespace

// A PASSIVE checkpoint beside a busy writer never copies the frames committed while it runs, so
// without the writer's help SQLite never starts the WAL over and the file grows for as long as
// commits keep coming. With it, the WAL file stays near what a few checkpoint intervals write.
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

  // One record per transaction, back to back: every commit appends a few frames to the WAL.
  constexpr int kCommits = 3000;
  std::int64_t most_frames = 0;
  int restarts = 0;
  std::int64_t previous = 0;
  for (int n = 0; n < kCommits; ++n) {
    std::vector<store::WriteItem> items{observation(n)};
    auto r = writer.write(items);
    REQUIRE(r);
    const std::int64_t frames = gauge->frames.load();
    if (frames < previous && frames > 0) ++restarts;  // a commit that began a new WAL
    previous = frames;
    most_frames = std::max(most_frames, frames);
  }
  const auto wal_bytes = std::filesystem::file_size(store::Store::database_path(data) + "-wal");
  INFO("restarts " << restarts << ", most frames " << most_frames << ", WAL file " << wal_bytes << " bytes");
  CHECK(restarts >= 2);
  // Never restarted, the WAL would hold every frame of the 3,000 commits: over 3,000 pages.
  CHECK(most_frames < 1500);
  CHECK(wal_bytes < 1500u * 4096u);
  writer.stop();
  auto check = store::Store::open(data);
  CHECK((*check)->summary()->observations == kCommits);
}
