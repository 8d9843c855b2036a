#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
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
  options.sync_aside = GENERATE(false, true);
  store::Writer writer(std::move(*s), options);
  CHECK(writer.syncs_aside() == options.sync_aside);
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

TEST_CASE("the writer's threads carry names an operator can find in top -H", "[store]") {
  const auto thread_names = [] {
    std::set<std::string> names;
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
      std::ifstream comm(task.path() / "comm");
      std::string name;
      if (std::getline(comm, name)) names.insert(name);
    }
    return names;
  };
  testing::TempDir tmp;
  auto s = store::Store::open(tmp.file("data"));
  REQUIRE(s);
  store::WriterOptions options;
  options.sync_aside = true;
  {
    store::Writer writer(std::move(*s), options);
    REQUIRE(writer.syncs_aside());
    // The names are set by the threads themselves, first thing: wait for them, boundedly.
    std::set<std::string> names;
    for (int i = 0; i < 200 && !(names.contains("iw-writer") && names.contains("iw-sync")); ++i) {
      names = thread_names();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    CHECK(names.contains("iw-writer"));
    CHECK(names.contains("iw-sync"));
  }
  const auto after = thread_names();
  CHECK_FALSE(after.contains("iw-writer"));  // joined on destruction
  CHECK_FALSE(after.contains("iw-sync"));
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

namespace {

// Holds the writer thread inside a task until release(), so that what the test queues meanwhile
// lands in the next group, whole. Every wait is bounded.
class WriterGate {
 public:
  explicit WriterGate(store::Writer& writer) {
    auto entered = std::make_shared<std::promise<void>>();
    auto entered_future = entered->get_future();
    writer.submit_task(
        [entered, release = release_future_](store::Store&) -> core::Result<void> {
          entered->set_value();
          (void)release.wait_for(std::chrono::seconds(30));
          return {};
        },
        [](core::Result<void>) {});
    REQUIRE(entered_future.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  }
  void release() { release_.set_value(); }

 private:
  std::promise<void> release_;  // destroyed unset: the waiting task is let go as well
  std::shared_future<void> release_future_ = release_.get_future().share();
};

// Collects a completion for the test's thread. The callback shares the promise, so that a
// completion arriving after a failed REQUIRE has unwound the test touches nothing freed.
template <typename R>
struct Awaited {
  std::shared_ptr<std::promise<R>> promise = std::make_shared<std::promise<R>>();
  std::future<R> future = promise->get_future();
  R get() {
    REQUIRE(future.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
    return future.get();
  }
};

struct Completion : Awaited<store::WriteResult> {
  store::Writer::Done done() {
    return [p = promise](store::WriteResult r, std::vector<store::WriteItem>) { p->set_value(std::move(r)); };
  }
};

struct TaskCompletion : Awaited<core::Result<void>> {
  store::Writer::TaskDone done() {
    return [p = promise](core::Result<void> r) { p->set_value(std::move(r)); };
  }
};

std::unique_ptr<store::Store> open_store(const std::string& dir) {
  auto s = store::Store::open(dir);
  if (!s) FAIL(s.error().message);
  return std::move(*s);
}

std::int64_t observation_count(const std::string& dir) {
  auto s = open_store(dir);
  auto summary = s->summary();
  REQUIRE(summary);
  return summary->observation_versions;
}

}  // namespace

TEST_CASE("a task runs inside the group's transaction and sees what the group applied", "[store]") {
  testing::TempDir tmp;
  const std::string dir = tmp.file("data");
  store::Writer writer(open_store(dir));

  WriterGate gate(writer);
  Completion items;
  writer.submit({observation("t1"), observation("t2")}, items.done());
  std::int64_t seen_by_task = -1;
  TaskCompletion task;
  writer.submit_task(
      [&](store::Store& s) -> core::Result<void> {
        // Not yet committed: only a task inside the same transaction can see these.
        auto summary = s.summary();
        if (!summary) return std::unexpected(summary.error());
        seen_by_task = summary->observation_versions;
        return s.set_output_position("task", 7, 1);
      },
      task.done());
  gate.release();

  REQUIRE(items.get());
  REQUIRE(task.get());
  CHECK(seen_by_task == 2);
  auto reader = open_store(dir);
  CHECK(*reader->output_position("task") == 7);  // what the task wrote was committed

  // run_task blocks until its commit and returns the task's result.
  std::int64_t seen = -1;
  auto r = writer.run_task([&](store::Store& s) -> core::Result<void> {
    seen = *s.output_position("task");
    return s.set_output_position("task", 9, 2);
  });
  REQUIRE(r);
  CHECK(seen == 7);
  CHECK(*reader->output_position("task") == 9);
}

TEST_CASE("after_apply runs once per submission inside the transaction with the items' outcomes", "[store]") {
  testing::TempDir tmp;
  const std::string dir = tmp.file("data");
  struct Call {
    std::size_t items = 0;
    std::vector<store::WriteOutcome::Kind> kinds;
    std::vector<int> versions;
  };
  std::vector<Call> calls;  // written on the writer thread; read after the completions
  store::WriterOptions options;
  options.after_apply = [&](store::Store& s, const std::vector<store::WriteItem>& items,
                            const std::vector<store::WriteOutcome>& outcomes) -> core::Result<void> {
    Call c;
    c.items = items.size();
    for (const auto& o : outcomes) {
      c.kinds.push_back(o.kind);
      c.versions.push_back(o.version);
    }
    calls.push_back(std::move(c));
    return s.set_output_position("hook", static_cast<std::int64_t>(calls.size()) * 10, 1);
  };
  store::Writer writer(open_store(dir), options);

  WriterGate gate(writer);  // the gate is a task: after_apply is not called for it
  Completion first, second;
  writer.submit({observation("a1"), observation("a2")}, first.done());
  auto changed = observation("a1");
  std::get<core::Observation>(std::get<core::Record>(changed)).value = 4;
  writer.submit({observation("a2"), changed, store::WriteItem(store::Rejection{"ndjson", "x", 3, {}, "{", false, 1})},
                second.done());
  gate.release();
  auto r1 = first.get();
  auto r2 = second.get();
  REQUIRE(r1);
  REQUIRE(r2);

  REQUIRE(calls.size() == 2);
  CHECK(calls[0].items == 2);
  CHECK(calls[0].kinds == std::vector{store::WriteOutcome::Kind::stored, store::WriteOutcome::Kind::stored});
  CHECK(calls[0].versions == std::vector{1, 1});
  CHECK(calls[1].items == 3);
  CHECK(calls[1].kinds == std::vector{store::WriteOutcome::Kind::duplicate, store::WriteOutcome::Kind::stored,
                                      store::WriteOutcome::Kind::rejection_stored});
  CHECK(calls[1].versions == std::vector{1, 2, 0});
  // The hook's own write committed with the items.
  auto reader = open_store(dir);
  CHECK(*reader->output_position("hook") == 20);
  CHECK(observation_count(dir) == 3);
}

TEST_CASE("an after_apply error rolls the whole group back and fails every submission", "[store]") {
  testing::TempDir tmp;
  const std::string dir = tmp.file("data");
  int applies = 0;
  std::vector<bool> groups;  // after_group's `committed`, in order
  std::vector<std::string> order;
  store::WriterOptions options;
  options.after_apply = [&](store::Store& s, const std::vector<store::WriteItem>& items,
                            const std::vector<store::WriteOutcome>&) -> core::Result<void> {
    ++applies;
    if (auto r = s.set_output_position("hook", applies, 1); !r) return r;
    const auto& first = std::get<core::Observation>(std::get<core::Record>(items.front()));
    if (first.id == "bad") return core::fail(core::ErrorCode::conflict, "hook refused");
    return {};
  };
  options.after_group = [&](store::Store& s, bool committed) -> std::move_only_function<void()> {
    groups.push_back(committed);
    // Runs after the rollback: this connection no longer sees the group's writes.
    order.push_back("group:" + std::to_string(*s.output_position("hook")));
    return {};
  };
  store::Writer writer(open_store(dir), options);

  WriterGate gate(writer);
  Completion ok_before, bad, ok_after;
  TaskCompletion task;
  bool task_ran = false;
  writer.submit({observation("g1"), observation("g2")}, ok_before.done());
  writer.submit_task(
      [&](store::Store&) -> core::Result<void> {
        task_ran = true;
        return {};
      },
      task.done());
  writer.submit({observation("bad")}, bad.done());
  writer.submit({observation("g3")}, ok_after.done());
  gate.release();

  for (auto* c : {&ok_before, &bad, &ok_after}) {
    auto r = c->get();
    REQUIRE_FALSE(r);
    CHECK(r.error().code == core::ErrorCode::conflict);
    CHECK(r.error().message == "hook refused");
  }
  auto t = task.get();
  CHECK(task_ran);
  REQUIRE_FALSE(t);  // a task of a rolled-back group is told so
  CHECK(t.error().code == core::ErrorCode::conflict);
  CHECK(applies == 2);  // g3's submission was never applied
  // groups[0] is the gate's own group.
  CHECK(groups == std::vector{true, false});
  CHECK(order.back() == "group:0");
  CHECK(observation_count(dir) == 0);
  CHECK(*open_store(dir)->output_position("hook") == 0);

  // The writer goes on: the next submission commits, and after_group says so.
  std::vector<store::WriteItem> next{observation("g4")};
  REQUIRE(writer.write(next));
  CHECK(groups == std::vector{true, false, true});
  CHECK(observation_count(dir) == 1);
}

TEST_CASE("a task error rolls its group back; after_group reports it before the completions", "[store]") {
  testing::TempDir tmp;
  const std::string dir = tmp.file("data");
  std::vector<std::string> order;  // writer thread only until the completions are in
  store::WriterOptions options;
  options.after_group = [&](store::Store&, bool committed) -> std::move_only_function<void()> {
    order.push_back(committed ? "group:committed" : "group:rolled-back");
    return {};
  };
  store::Writer writer(open_store(dir), options);

  WriterGate gate(writer);
  Completion items;
  TaskCompletion good_task, bad_task;
  writer.submit({observation("k1")}, [&order, p = items.promise](store::WriteResult r, std::vector<store::WriteItem>) {
    order.push_back("items-done");
    p->set_value(std::move(r));
  });
  writer.submit_task([](store::Store& s) { return s.set_output_position("good", 5, 1); }, good_task.done());
  writer.submit_task([](store::Store&) -> core::Result<void> { return core::fail(core::ErrorCode::io, "task broke"); },
                     bad_task.done());
  gate.release();

  auto r = items.get();
  REQUIRE_FALSE(r);
  CHECK(r.error().message == "task broke");
  auto g = good_task.get();
  REQUIRE_FALSE(g);  // it ran, but its write was rolled back with the group
  CHECK(g.error().code == core::ErrorCode::io);
  auto b = bad_task.get();
  REQUIRE_FALSE(b);
  CHECK(b.error().message == "task broke");
  CHECK(order == std::vector<std::string>{"group:committed", "group:rolled-back", "items-done"});
  CHECK(observation_count(dir) == 0);
  CHECK(*open_store(dir)->output_position("good") == 0);

  order.clear();
  REQUIRE(writer.run_task([](store::Store& s) { return s.set_output_position("good", 6, 1); }));
  CHECK(order == std::vector<std::string>{"group:committed"});
  CHECK(*open_store(dir)->output_position("good") == 6);
}

TEST_CASE("a task submitted after stop() completes at once with store_unavailable", "[store]") {
  testing::TempDir tmp;
  store::Writer writer(open_store(tmp.file("data")));
  writer.stop();
  bool ran = false;
  std::optional<core::Result<void>> result;
  writer.submit_task(
      [&](store::Store&) -> core::Result<void> {
        ran = true;
        return {};
      },
      [&](core::Result<void> r) { result = std::move(r); });
  REQUIRE(result.has_value());  // completed on this thread, before submit_task returned
  REQUIRE_FALSE(*result);
  CHECK(result->error().code == core::ErrorCode::store_unavailable);
  CHECK_FALSE(ran);
  auto r = writer.run_task([&](store::Store&) -> core::Result<void> {
    ran = true;
    return {};
  });
  REQUIRE_FALSE(r);
  CHECK(r.error().code == core::ErrorCode::store_unavailable);
  CHECK_FALSE(ran);
}

// Synced aside (serve): the writer commits without an fsync and goes on; the sync thread's
// fdatasync of the WAL must return before a group's callbacks run. A sync the test holds shows it.
namespace {

// A sync_wal that the test holds: the k-th sync waits until release() was called k times. It
// counts the syncs begun. Every wait is bounded.
struct HeldSync {
  explicit HeldSync(const std::string& data_dir) : wal(store::Store::database_path(data_dir) + "-wal") {}
  std::string wal;
  std::mutex mutex;
  std::condition_variable changed;
  int calls = 0;      // syncs begun
  int released = 0;   // syncs let go
  int fail_next = 0;  // how many of the next syncs fail
  std::function<core::Result<void>(int)> fn() {
    return [this](int fd) -> core::Result<void> {
      std::unique_lock lock(mutex);
      const int call = ++calls;
      changed.notify_all();
      changed.wait_for(lock, std::chrono::seconds(30), [&] { return released >= call; });
      if (fail_next > 0) {
        --fail_next;
        return core::fail(core::ErrorCode::store_unavailable, "the commit could not be synced to disk: test");
      }
      // The descriptor is the WAL's.
      struct stat by_fd {
      }, by_path{};
      if (::fstat(fd, &by_fd) != 0 || ::stat(wal.c_str(), &by_path) != 0 || by_fd.st_ino != by_path.st_ino)
        return core::fail(core::ErrorCode::io, "not the WAL's descriptor");
      if (::fdatasync(fd) != 0) return core::fail(core::ErrorCode::io, "fdatasync failed");
      return {};
    };
  }
  // Writer options that sync aside through this.
  store::WriterOptions options() {
    store::WriterOptions o;
    o.sync_aside = true;
    o.sync_wal = fn();
    return o;
  }
  bool wait_calls(int n) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, std::chrono::seconds(30), [&] { return calls >= n; });
  }
  void release() {
    std::lock_guard lock(mutex);
    ++released;
    changed.notify_all();
  }
  void release_all() {
    std::lock_guard lock(mutex);
    released = 1 << 20;
    changed.notify_all();
  }
};

// Polls another connection's count of stored observations until it is `want` (bounded).
std::int64_t wait_for_count(const std::string& dir, std::int64_t want) {
  std::int64_t n = observation_count(dir);
  for (int i = 0; i < 300 && n != want; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    n = observation_count(dir);
  }
  return n;
}

}  // namespace

TEST_CASE("synced aside: what arrives during a sync commits after it; callbacks wait for their own sync", "[store]") {
  testing::TempDir tmp;
  const std::string dir = tmp.file("data");
  HeldSync sync(dir);
  std::vector<std::string> order;  // the callbacks' thread only, until they are in
  store::WriterOptions options = sync.options();
  options.after_group = [&](store::Store&, bool committed) -> std::move_only_function<void()> {
    if (!committed) return {};
    return [&order] { order.push_back("on-disk"); };
  };
  store::Writer writer(open_store(dir), options);
  REQUIRE(writer.syncs_aside());
  TaskCompletion mode;
  bool full = true;
  writer.submit_task(
      [&full](store::Store& s) -> core::Result<void> {
        full = s.synchronous_full();  // the writer's connection no longer fsyncs its commits
        return {};
      },
      mode.done());
  REQUIRE(sync.wait_calls(1));  // the task's group is committed; its sync is held

  Completion first;
  writer.submit({observation("s1"), observation("s2")},
                [&order, p = first.promise](store::WriteResult r, std::vector<store::WriteItem>) {
                  order.push_back("s-done");
                  p->set_value(std::move(r));
                });
  // While that sync runs, s1 and s2 wait in the open transaction: not committed yet.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(observation_count(dir) == 0);
  CHECK(mode.future.wait_for(std::chrono::milliseconds(0)) == std::future_status::timeout);

  sync.release();  // the first sync returns: the task completes, and s1 and s2 commit
  REQUIRE(mode.get());
  CHECK_FALSE(full);
  REQUIRE(sync.wait_calls(2));
  CHECK(wait_for_count(dir, 2) == 2);
  // Committed, but their own sync is held: not acknowledged.
  CHECK(first.future.wait_for(std::chrono::milliseconds(200)) == std::future_status::timeout);

  sync.release();
  auto r = first.get();
  REQUIRE(r);
  CHECK(r->size() == 2);
  sync.release_all();
  writer.stop();
  CHECK(order == std::vector<std::string>{"on-disk", "on-disk", "s-done"});
}

TEST_CASE("synced aside: a failed sync fails its groups and every later one, until a restart", "[store]") {
  testing::TempDir tmp;
  const std::string dir = tmp.file("data");
  HeldSync sync(dir);
  sync.fail_next = 1;
  int on_disk = 0;
  store::WriterOptions options = sync.options();
  options.after_group = [&](store::Store&, bool) -> std::move_only_function<void()> {
    return [&on_disk] { ++on_disk; };
  };
  store::Writer writer(open_store(dir), options);
  REQUIRE(writer.syncs_aside());
  Completion lost;
  writer.submit({observation("f1")}, lost.done());
  REQUIRE(sync.wait_calls(1));
  sync.release_all();
  auto r = lost.get();
  REQUIRE_FALSE(r);
  CHECK(r.error().code == core::ErrorCode::store_unavailable);
  CHECK_THAT(r.error().message, Catch::Contains("could not be synced"));
  CHECK_THAT(r.error().message, Catch::Contains("until iraewatch restarts"));
  CHECK(on_disk == 0);  // nothing is announced for a group not known to be on disk

  // Nothing after it is trusted to reach the disk: later submissions fail, and are not written.
  Completion later;
  TaskCompletion task;
  bool task_ran = false;
  writer.submit({observation("f2")}, later.done());
  writer.submit_task(
      [&task_ran](store::Store&) -> core::Result<void> {
        task_ran = true;
        return {};
      },
      task.done());
  auto l = later.get();
  REQUIRE_FALSE(l);
  CHECK_THAT(l.error().message, Catch::Contains("until iraewatch restarts"));
  REQUIRE_FALSE(task.get());
  CHECK_FALSE(task_ran);
  CHECK(sync.calls == 1);  // no further fdatasync is trusted, or tried
  writer.stop();
  CHECK(on_disk == 0);
  CHECK(observation_count(dir) == 1);  // f1 was committed before its sync failed; f2 never was
}

TEST_CASE("synced aside: a group committed while a sync runs waits for the next sync", "[store]") {
  testing::TempDir tmp;
  const std::string dir = tmp.file("data");
  HeldSync sync(dir);
  store::WriterOptions options = sync.options();
  options.max_batch_items = 1;  // A cannot wait for B in one transaction: it commits during sync 1
  store::Writer writer(open_store(dir), options);
  REQUIRE(writer.syncs_aside());
  Completion first, a, b;
  writer.submit({observation("w0")}, first.done());
  REQUIRE(sync.wait_calls(1));  // w0 committed; sync 1 held
  writer.submit({observation("wa")}, a.done());
  writer.submit({observation("wb")}, b.done());
  CHECK(wait_for_count(dir, 2) == 2);  // w0 and A committed, A during sync 1

  sync.release();  // sync 1 returns: it covered w0 only
  REQUIRE(first.get());
  REQUIRE(sync.wait_calls(2));
  CHECK(a.future.wait_for(std::chrono::milliseconds(200)) == std::future_status::timeout);
  sync.release();
  REQUIRE(a.get());
  sync.release_all();
  REQUIRE(b.get());
  CHECK(observation_count(dir) == 3);
}

TEST_CASE("synced aside: stop() commits the open transaction and waits for its sync", "[store]") {
  testing::TempDir tmp;
  const std::string dir = tmp.file("data");
  HeldSync sync(dir);
  store::WriterOptions options = sync.options();
  store::Writer writer(open_store(dir), options);
  Completion first, open;
  writer.submit({observation("t0")}, first.done());
  REQUIRE(sync.wait_calls(1));
  writer.submit({observation("t1")}, open.done());  // joins the open transaction: sync 1 is held
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(observation_count(dir) == 1);

  auto stopped = std::async(std::launch::async, [&writer] { writer.stop(); });
  CHECK(wait_for_count(dir, 2) == 2);  // stopping commits t1 without waiting for sync 1
  CHECK(stopped.wait_for(std::chrono::milliseconds(200)) == std::future_status::timeout);  // syncs held
  sync.release_all();
  REQUIRE(stopped.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  REQUIRE(first.get());
  REQUIRE(open.get());
  CHECK(sync.calls == 2);
}

TEST_CASE("sync_aside needs a store that syncs its commits; otherwise it is ignored", "[store]") {
  testing::TempDir tmp;
  auto s = store::Store::open(tmp.file("data"), {false});
  REQUIRE(s);
  store::WriterOptions options;
  options.sync_aside = true;
  store::Writer writer(std::move(*s), options);
  CHECK_FALSE(writer.syncs_aside());
  std::vector<store::WriteItem> items{observation("n1")};
  CHECK(writer.write(items));
}
