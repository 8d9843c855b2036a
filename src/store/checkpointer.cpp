#include "iraewatch/store/checkpointer.hpp"

namespace iraewatch::store {

Checkpointer::Checkpointer(std::unique_ptr<Store> store, std::chrono::milliseconds every, std::shared_ptr<WalGauge> wal,
                           std::int64_t min_frames, std::chrono::milliseconds max_wait)
    : store_(std::move(store)),
      every_(every),
      wal_(std::move(wal)),
      min_frames_(min_frames),
      max_wait_(max_wait),
      thread_([this] { run(); }) {}

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
  // A busy database (another checkpoint running) is retried on the next tick.
  auto done = store_->checkpoint();
  if (!done || !wal_) return;
  // A checkpoint copies the frames committed before it began. When the writer committed more
  // while it ran, a second pass copies those: far fewer, so it is short.
  const auto left = [&] { return wal_->frames.load(std::memory_order_relaxed) > done->copied_frames; };
  if (left()) {
    if (auto again = store_->checkpoint()) done = again;
  }
  if (left()) {
    // The writer copies the rest between two of its transactions. SQLite starts the WAL over
    // from its beginning only once every frame is copied: the writer's next transaction does.
    wal_->tail_wanted.store(true, std::memory_order_relaxed);
  } else {
    wal_->frames.store(0, std::memory_order_relaxed);  // all copied; the next commit restarts the WAL
  }
}

}  // namespace iraewatch::store
