#pragma once
// Checkpoints the WAL from its own connection and thread, so that the writer's commits never
// pay for it (a checkpoint inside a commit held acknowledgements for up to tens of ms).

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "iraewatch/store/store.hpp"

namespace iraewatch::store {

class Checkpointer {
 public:
  Checkpointer(std::unique_ptr<Store> store, std::chrono::milliseconds every);
  ~Checkpointer();  // runs a last checkpoint and ends the thread
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

 private:
  void run();

  std::unique_ptr<Store> store_;
  std::chrono::milliseconds every_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace iraewatch::store
