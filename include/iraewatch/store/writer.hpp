#pragma once
// The single writer: a thread that owns the store's write connection and commits whatever has
// been submitted, many submissions to one transaction (group commit), so that the cost of each
// fsync is shared. A caller acknowledges only inside its completion callback, which runs once
// the group's commit is on disk, in submission order, on one thread. The callback gets its items
// back, so that committed records can go on to evaluation without a copy.
//
// A commit reaches the disk in one of two ways (WriterOptions::sync_aside):
// - in the commit (SQLite's synchronous=FULL): the writer waits for each group's fsync before it
//   takes the next one, and runs the callbacks itself;
// - aside (serve): the writer's connection commits without an fsync (synchronous=NORMAL) and goes
//   straight on to the next group, while a second thread, the sync thread, fdatasyncs the WAL.
//   Each fdatasync makes durable every group committed before it began; the sync thread then runs
//   those groups' callbacks. While a sync runs, what arrives is applied to one open transaction,
//   committed as soon as the sync returns: one commit per sync, whatever the sync's length. The
//   fsync of one group overlaps the work of the next, so when the machine slows down the writer
//   keeps up with the load for longer. Nothing else changes: SQLite still syncs the WAL before
//   each checkpoint and the WAL's header when the WAL starts over, and nothing is acknowledged
//   before the fdatasync that covers it has returned. A failed fdatasync fails the groups it
//   covered and every group after it, until a restart (see writer.cpp).

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
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
  // Runs on the writer thread after each group's commit or rollback, before the next group:
  // `committed` is false when the group was rolled back (so that in-memory state built by
  // after_apply can be rebuilt from the store). What it returns, if anything, runs once the group
  // is on disk, just before its completion callbacks and on their thread; never for a group that
  // failed.
  std::function<std::move_only_function<void()>(Store&, bool committed)> after_group;
  // Sync the commits aside, on a second thread (see above). Only for a store opened with
  // synchronous_full; should the WAL not open for syncing, each commit syncs itself instead.
  bool sync_aside = false;
  // The sync thread's sync of the WAL; empty: fdatasync. For tests.
  std::function<core::Result<void>(int wal_fd)> sync_wal;
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

  // Queues items; `done` runs once they are committed and on disk (or failed). Thread-safe.
  // After stop(), `done` runs at once with a store_unavailable error.
  void submit(std::vector<WriteItem> items, Done done);

  // Queues a task that runs in the writer's next transaction. Thread-safe.
  void submit_task(Task task, TaskDone done);
  // Blocks until the task is committed (or failed).
  core::Result<void> run_task(Task task);

  // Blocks until the submission is committed: for command-line tools. `items` are left as they
  // were given.
  WriteResult write(std::vector<WriteItem>& items);

  // Commits everything already queued, syncs it, then ends the threads. Idempotent.
  void stop();

  // Whether commits are synced aside (WriterOptions::sync_aside took effect).
  bool syncs_aside() const { return wal_fd_ >= 0; }

 private:
  struct Submission {
    std::vector<WriteItem> items;
    Done done;
    Task task;  // set for a task (then items is empty)
    TaskDone task_done;
  };
  // A group after its transaction: what its callbacks need once it is on disk.
  struct Committed {
    std::vector<Submission> group;
    std::vector<std::vector<WriteOutcome>> outcomes;
    core::Result<void> status;                // the transaction's
    std::move_only_function<void()> on_disk;  // from after_group
    bool began = true;                        // false: collected after a failed sync, never begun
  };
  bool enqueue(Submission& submission);  // false when stopping; then `submission` is untouched
  void run();
  void run_sync();
  bool sync_busy_locked() const;  // with mutex_ held
  // Applies `taken` to the open transaction (after a failure, only collects them) and moves them
  // into `open`.
  void apply(Committed& open, core::Result<void>& status, std::vector<Submission>& taken);
  // Commits (or, after a failure, rolls back) the open transaction.
  Committed finish(Committed& open, core::Result<void>& status);
  static void complete(Committed& committed, const core::Result<void>& synced);

  std::unique_ptr<Store> store_;
  WriterOptions options_;
  int wal_fd_ = -1;   // open while commits are synced aside
  std::mutex mutex_;  // guards the queue and the sync thread's state
  std::condition_variable wake_;
  std::deque<Submission> queue_;
  bool stopping_ = false;
  std::condition_variable sync_wake_;
  std::vector<Committed> unsynced_;  // committed, not yet covered by an fdatasync
  bool syncing_ = false;             // the sync thread is in an fdatasync
  bool open_waiting_ = false;        // the writer holds a transaction open until the sync is idle
  bool sync_stopping_ = false;
  std::optional<core::Error> failure_;  // a failed fdatasync: every later group fails too
  std::thread sync_thread_;
  std::thread thread_;
};

}  // namespace iraewatch::store
