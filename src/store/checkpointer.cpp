#include "iraewatch/store/checkpointer.hpp"

namespace iraewatch::store {

Checkpointer::Checkpointer(std::unique_ptr<Store> store, std::chrono::milliseconds every,
                           std::shared_ptr<std::atomic<std::int64_t>> wal_frames, std::int64_t min_frames,
                           std::chrono::milliseconds max_wait)
    : store_(std::move(store)),
      every_(every),
      wal_frames_(std::move(wal_frames)),
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
    const std::int64_t frames = wal_frames_ ? wal_frames_->load(std::memory_order_relaxed) : 0;
    if (stop || !wal_frames_ || frames >= min_frames_ || (frames > 0 && now - last >= max_wait_)) {
      // A busy database is retried on the next tick.
      if (store_->checkpoint() && wal_frames_) wal_frames_->store(0, std::memory_order_relaxed);
      last = now;
    }
    lock.lock();
    if (stop) return;
  }
}

}  // namespace iraewatch::store
