#include "iraewatch/store/checkpointer.hpp"

namespace iraewatch::store {

Checkpointer::Checkpointer(std::unique_ptr<Store> store, std::chrono::milliseconds every)
    : store_(std::move(store)), every_(every), thread_([this] { run(); }) {}

Checkpointer::~Checkpointer() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void Checkpointer::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    const bool stop = wake_.wait_for(lock, every_, [this] { return stopping_; });
    lock.unlock();
    (void)store_->checkpoint();  // a busy database is retried on the next tick
    lock.lock();
    if (stop) return;
  }
}

}  // namespace iraewatch::store
