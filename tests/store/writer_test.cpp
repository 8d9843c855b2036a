#include <catch2/catch.hpp>

#include <atomic>
#include <future>
#include <thread>

#include "iraewatch/store/writer.hpp"
#include "support/daemon.hpp"

using namespace iraewatch;

namespace {

store::WriteItem observation(const std::string& id) {
  core::Observation o;
  o.id = id;
  o.patient = "P" + id.substr(0, 2);
  o.code = {"", "tsh"};
  o.concept_name = "tsh";
  o.value = 3;
  o.unit = "m[IU]/L";
  o.time = {1000, 0};
  o.provenance = {"ndjson", "", 1};
  return store::WriteItem(core::Record(o));
}

}  // namespace

TEST_CASE("the writer commits concurrent submissions and completes them in order", "[store]") {
  testing::TempDir tmp;
  auto s = store::Store::open(tmp.file("data"));
  REQUIRE(s);
  store::WriterOptions options;
  options.max_batch_items = 64;
  store::Writer writer(std::move(*s), options);
  constexpr int kThreads = 4, kPerThread = 50;
  std::atomic<int> done{0}, stored{0};
  std::atomic<bool> items_back{true};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::promise<void>> finished(kPerThread);
      int last_seen = -1;
      bool in_order = true;
      for (int i = 0; i < kPerThread; ++i) {
        std::vector<store::WriteItem> items{observation(std::to_string(t) + "-" + std::to_string(i)),
                                            observation(std::to_string(t) + "-" + std::to_string(i) + "b")};
        writer.submit(std::move(items), [&, i](store::WriteResult r, std::vector<store::WriteItem> back) {
          if (back.size() != 2) items_back = false;  // assertions stay on the test's thread
          if (r && r->size() == 2) stored += 2;
          in_order = in_order && i == last_seen + 1;  // one thread's submissions finish in order
          last_seen = i;
          ++done;
          finished[static_cast<std::size_t>(i)].set_value();
        });
      }
      for (auto& f : finished) f.get_future().wait();
      CHECK(in_order);
    });
  }
  for (auto& th : threads) th.join();
  CHECK(done == kThreads * kPerThread);
  CHECK(items_back);
  CHECK(stored == kThreads * kPerThread * 2);

  auto check = store::Store::open(tmp.file("data"));
  CHECK((*check)->summary()->observations == kThreads * kPerThread * 2);
}

TEST_CASE("stop() commits what is queued and later submissions fail clearly", "[store]") {
  testing::TempDir tmp;
  auto s = store::Store::open(tmp.file("data"));
  REQUIRE(s);
  auto writer = std::make_unique<store::Writer>(std::move(*s));
  std::atomic<int> ok{0};
  for (int i = 0; i < 20; ++i)
    writer->submit({observation("q" + std::to_string(i))},
                   [&](store::WriteResult r, std::vector<store::WriteItem>) { ok += r ? 1 : 0; });
  writer->stop();
  CHECK(ok == 20);
  std::vector<store::WriteItem> late_items{observation("late")};
  auto late = writer->write(late_items);
  CHECK(late_items.size() == 1);
  REQUIRE_FALSE(late);
  CHECK(late.error().code == core::ErrorCode::store_unavailable);
  CHECK_THAT(late.error().message, Catch::Contains("shutting down"));
}
