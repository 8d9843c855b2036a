#include "iraewatch/store/checkpointer.hpp"

#include <pthread.h>

namespace iraewatch::store {

Checkpointer::Checkpointer(std::unique_ptr<Store> store, std::chrono::milliseconds every, std::shared_ptr<WalGauge> wal,
                           std::int64_t min_frames, std::chrono::milliseconds max_wait)
    : store_(std::move(store)),
      every_(every),
      wal_(std::move(wal)),
      min_frames_(min_frames),
      max_wait_(max_wait),
      thread_([this] {
        pthread_setname_np(pthread_self(), "iw-checkpoint");  // as top -H and perf show it
        run();
      }) {}

Checkpointer::~Checkpointer() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void Checkpointer::run() {
  auto last = std::chrono::steady_clock::now();
  std::unique_lock lock(mutex_);
  for (;;) {
    const bool stop = wake_.wait_for(lock, every_, [this] { return stopping_; });
    lock.unlock();
    const auto now = std::chrono::steady_clock::now();
    const std::int64_t frames = wal_ ? wal_->frames.load(std::memory_order_relaxed) : 0;
    if (stop || !wal_ || frames >= min_frames_ || (frames > 0 && now - last >= max_wait_)) {
      checkpoint_once();
      last = now;
    }
    lock.lock();
    if (stop) return;
  }
}

void Checkpointer::checkpoint_once() {
  if (wal_) {
    checkpoint_round(*store_, *wal_);
  } else {
    (void)store_->checkpoint();  // a busy database (another checkpoint running) is retried next tick
  }
}

void checkpoint_round(Store& store, WalGauge& wal) {
  // A pass copies the frames committed before it began. While the writer commits faster than a
  // pass copies, another pass copies what came in meanwhile: fewer frames, so a shorter pass.
  auto done = store.checkpoint();
  if (!done) return;  // a busy database (another checkpoint running) is retried on the next round
  for (int pass = 1; pass < kMaxCheckpointPasses; ++pass) {
    if (wal.frames.load(std::memory_order_relaxed) - done->copied_frames <= kWriterTailFrames) break;
    auto again = store.checkpoint();
    if (!again) break;
    done = again;
  }
  std::int64_t seen = wal.frames.load(std::memory_order_relaxed);
  const std::int64_t left = seen - done->copied_frames;
  if (left <= 0) {
    // All copied: the next commit starts the WAL over. (Unless a commit came in meanwhile.)
    wal.frames.compare_exchange_strong(seen, 0, std::memory_order_relaxed);
  } else if (left <= kWriterTailFrames) {
    // SQLite starts the WAL over only once every frame is copied: the writer copies these few
    // between two of its transactions, and its next transaction starts the WAL over. The pass
    // that copies the last frame also syncs the database file: sync here what the passes copied
    // (megabytes), so that the writer's sync, which holds its acknowledgements, has only its own.
    if (!store.sync_database_file()) return;  // the next round tries again
    wal.tail_wanted.store(true, std::memory_order_relaxed);
  }
  // Otherwise the writer outpaced the passes: the next round tries again.
}

}  // namespace iraewatch::store
