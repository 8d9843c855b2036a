#pragma once
// The single writer: a thread that owns the store's write connection and commits whatever has
// been submitted, many submissions to one transaction (group commit), so that the cost of each
// fsync is shared. Completion callbacks run on the writer thread, after the commit, in submission
// order: a caller acknowledges only inside its callback. The callback gets its items back, so
// that committed records can go on to evaluation without a copy.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "iraewatch/store/store.hpp"

namespace iraewatch::store {

// Per-item outcomes, or one error for the whole submission when its transaction did not commit.
using WriteResult = core::Result<std::vector<WriteOutcome>>;

struct WriterOptions {
  std::size_t max_batch_items = 4096;  // most items one transaction takes
  // Runs on the writer thread inside the transaction, after each submission's items are applied,
  // with their outcomes: whatever it writes commits or rolls back with them (the alert lifecycle
  // writes its events here). An error rolls the whole group back.
  std::function<core::Result<void>(Store&, const std::vector<WriteItem>&, const std::vector<WriteOutcome>&)>
      after_apply;
  // Runs on the writer thread after each group, before its completion callbacks: `committed` is
  // false when the group was rolled back (so that in-memory state built by after_apply can be
  // rebuilt from the store).
  std::function<void(Store&, bool committed)> after_group;
};

class Writer {
 public:
  using Done = std::move_only_function<void(WriteResult, std::vector<WriteItem>)>;
  // A task writes through the store inside the writer's transaction; an error means the store
  // failed and rolls the group back. TaskDone runs after the commit (or failure).
  using Task = std::move_only_function<core::Result<void>(Store&)>;
  using TaskDone = std::move_only_function<void(core::Result<void>)>;

  Writer(std::unique_ptr<Store> store, WriterOptions options = {});
  ~Writer();  // stop()
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Queues items; `done` runs on the writer thread once they are committed (or failed). Thread-safe.
  // After stop(), `done` runs at once with a store_unavailable error.
  void submit(std::vector<WriteItem> items, Done done);

  // Queues a task that runs in the writer's next transaction. Thread-safe.
  void submit_task(Task task, TaskDone done);
  // Blocks until the task is committed (or failed).
  core::Result<void> run_task(Task task);

  // Blocks until the submission is committed: for command-line tools. `items` are left as they
  // were given.
  WriteResult write(std::vector<WriteItem>& items);

  // Commits everything already queued, then ends the thread. Idempotent.
  void stop();

 private:
  struct Submission {
    std::vector<WriteItem> items;
    Done done;
    Task task;  // set for a task (then items is empty)
    TaskDone task_done;
  };
  void run();
  void commit_group(std::vector<Submission>& group);

  std::unique_ptr<Store> store_;
  WriterOptions options_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Submission> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace iraewatch::store
