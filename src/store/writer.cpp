#include "iraewatch/store/writer.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <future>
#include <optional>

namespace iraewatch::store {

namespace {

core::Result<void> fdatasync_wal(int fd) {
  if (::fdatasync(fd) == 0) return {};
  return core::fail(core::ErrorCode::store_unavailable,
                    std::string("the commit could not be synced to disk: ") + std::strerror(errno));
}

// After a failed fdatasync nothing later can be trusted to reach the disk: Linux reports a
// writeback error once, and the next fdatasync may succeed without the pages that failed, while
// later commits chain from them in the WAL. So the failure stands until a restart, which recovers
// from what is really on disk.
core::Error sync_failure(const core::Error& first) {
  return core::Error{core::ErrorCode::store_unavailable,
                     first.message + "; nothing more is stored until iraewatch restarts"};
}

}  // namespace

Writer::Writer(std::unique_ptr<Store> store, WriterOptions options)
    : store_(std::move(store)), options_(std::move(options)) {
  if (options_.sync_aside && store_->synchronous_full()) {
    // The WAL exists once the store is open (it was read). SQLite takes no lock on it, so this
    // descriptor cannot drop one when it closes.
    wal_fd_ = ::open(store_->wal_path().c_str(), O_RDWR | O_CLOEXEC);
    if (wal_fd_ >= 0 && !store_->set_synchronous_full(false)) {
      ::close(wal_fd_);
      wal_fd_ = -1;
    }
  }
  if (wal_fd_ >= 0) {
    if (!options_.sync_wal) options_.sync_wal = fdatasync_wal;
    sync_thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "iw-sync");  // as top -H and perf show it
      run_sync();
    });
  }
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "iw-writer");
    run();
  });
}

Writer::~Writer() {
  stop();
}

// The condition variables are notified after unlocking: a thread woken while the mutex is still
// held would only wake to wait for it.

bool Writer::enqueue(Submission& submission) {
  std::unique_lock lock(mutex_);
  if (stopping_) return false;  // `submission` is left as it was
  queue_.push_back(std::move(submission));
  lock.unlock();
  wake_.notify_one();
  return true;
}

void Writer::submit(std::vector<WriteItem> items, Done done) {
  Submission s{std::move(items), std::move(done), {}, {}};
  if (!enqueue(s))
    s.done(core::fail(core::ErrorCode::store_unavailable, "the store is shutting down"), std::move(s.items));
}

void Writer::submit_task(Task task, TaskDone done) {
  Submission s{{}, {}, std::move(task), std::move(done)};
  if (!enqueue(s)) s.task_done(core::fail(core::ErrorCode::store_unavailable, "the store is shutting down"));
}

core::Result<void> Writer::run_task(Task task) {
  std::promise<core::Result<void>> promise;
  auto future = promise.get_future();
  submit_task(std::move(task), [&promise](core::Result<void> r) { promise.set_value(std::move(r)); });
  return future.get();
}

WriteResult Writer::write(std::vector<WriteItem>& items) {
  std::promise<WriteResult> promise;
  auto future = promise.get_future();
  submit(std::move(items), [&promise, &items](WriteResult r, std::vector<WriteItem> back) {
    items = std::move(back);
    promise.set_value(std::move(r));
  });
  return future.get();
}

void Writer::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    wake_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard lock(mutex_);
    sync_stopping_ = true;
    sync_wake_.notify_one();
  }
  if (sync_thread_.joinable()) sync_thread_.join();  // after its last sync and callbacks
  if (wal_fd_ >= 0) {
    ::close(wal_fd_);
    wal_fd_ = -1;
  }
}

void Writer::run() {
  // The open transaction: submissions applied and not yet committed. While the sync thread is
  // busy, what arrives is applied to it, and it commits once that sync is done: one commit per
  // sync, however long the sync takes, instead of a commit per arrival.
  Committed open;
  core::Result<void> status;
  bool is_open = false;
  std::size_t items = 0;
  for (;;) {
    std::vector<Submission> taken;
    bool commit_now = true;
    std::optional<core::Error> failed;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty() || (is_open && !sync_busy_locked()); });
      if (!is_open && queue_.empty()) return;  // stopping, and everything queued is committed
      // Whole submissions up to the item cap; always at least one into a new transaction.
      while (!queue_.empty() &&
             ((!is_open && taken.empty()) || items + queue_.front().items.size() <= options_.max_batch_items)) {
        items += queue_.front().items.size();
        taken.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      // Kept open only while the sync is busy and more could join; never when stopping or full.
      commit_now = !sync_busy_locked() || stopping_ || !queue_.empty();
      open_waiting_ = !commit_now;  // the sync thread wakes this thread only then
      failed = failure_;
    }
    if (!taken.empty()) {
      if (!is_open) {
        // After a failed sync, submissions are only collected, to fail in order.
        open.began = !failed;
        status = failed ? core::Result<void>(std::unexpected(*failed)) : store_->begin();
      }
      is_open = true;
      apply(open, status, taken);
    }
    if (status && !commit_now) continue;
    Committed committed = finish(open, status);
    open = Committed{};
    is_open = false;
    items = 0;
    if (wal_fd_ >= 0) {
      {
        std::lock_guard lock(mutex_);
        unsynced_.push_back(std::move(committed));
      }
      sync_wake_.notify_one();
    } else {
      complete(committed, {});  // the commit synced itself
    }
    store_->finish_checkpoint_if_wanted();
  }
}

bool Writer::sync_busy_locked() const {
  return wal_fd_ >= 0 && (syncing_ || !unsynced_.empty());
}

void Writer::run_sync() {
  std::vector<Committed> batch;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      sync_wake_.wait(lock, [this] { return sync_stopping_ || !unsynced_.empty(); });
      if (unsynced_.empty()) return;  // stopping, and every group is completed
      batch.swap(unsynced_);
      syncing_ = true;
    }
    // One fdatasync covers every group committed before it began. Groups that failed are in the
    // batch only to keep the callbacks in order.
    core::Result<void> synced;
    if (failure_) {
      synced = std::unexpected(*failure_);
    } else if (std::any_of(batch.begin(), batch.end(), [](const Committed& c) { return c.status.has_value(); })) {
      synced = options_.sync_wal(wal_fd_);
      if (!synced) synced = std::unexpected(sync_failure(synced.error()));
    }
    bool writer_waits = false;
    {
      std::lock_guard lock(mutex_);
      syncing_ = false;  // the writer may commit its open transaction while these complete
      if (!synced && !failure_) failure_ = synced.error();
      writer_waits = open_waiting_;
    }
    if (writer_waits) wake_.notify_one();  // otherwise it is busy, or waits for submissions
    for (auto& committed : batch) complete(committed, synced);
    batch.clear();
  }
}

void Writer::apply(Committed& open, core::Result<void>& status, std::vector<Submission>& taken) {
  for (auto& submission : taken) {
    std::vector<WriteOutcome> outcomes;
    if (status && submission.task) {
      status = submission.task(*store_);
    } else if (status) {
      outcomes.reserve(submission.items.size());
      for (const auto& item : submission.items) {
        auto outcome = store_->apply(item);
        if (!outcome) {
          status = std::unexpected(outcome.error());
          break;
        }
        outcomes.push_back(*outcome);
      }
      if (status && options_.after_apply) status = options_.after_apply(*store_, submission.items, outcomes);
    }
    open.group.push_back(std::move(submission));
    open.outcomes.push_back(std::move(outcomes));
  }
}

Writer::Committed Writer::finish(Committed& open, core::Result<void>& status) {
  if (status) {
    status = store_->commit();
  } else {
    store_->rollback();
  }
  if (options_.after_group && open.began) open.on_disk = options_.after_group(*store_, status.has_value());
  open.status = std::move(status);
  status = {};
  return std::move(open);
}

void Writer::complete(Committed& c, const core::Result<void>& synced) {
  // A group whose fsync failed is committed, but not known to be on disk: its senders are told it
  // was not stored.
  const core::Result<void>& status = !c.status ? c.status : synced;
  if (status && c.on_disk) c.on_disk();
  for (std::size_t i = 0; i < c.group.size(); ++i) {
    auto& submission = c.group[i];
    if (submission.task) {
      if (submission.task_done) submission.task_done(status);
    } else if (status) {
      submission.done(std::move(c.outcomes[i]), std::move(submission.items));
    } else {
      submission.done(std::unexpected(status.error()), std::move(submission.items));
    }
  }
}

}  // namespace iraewatch::store
