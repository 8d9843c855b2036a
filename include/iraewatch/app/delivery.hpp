#pragma once
// The delivery loop: a thread that reads the outbox (alert_events) and hands each output the
// notices after its remembered position, oldest first. Positions are saved in the store
// (output_positions), through the writer while it runs and directly at the end, so that neither a
// crash nor a failing output loses an event: delivery is at least once, and a receiver drops
// repeats by seq. A failing output is retried every second without holding the others back.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "iraewatch/alert/output.hpp"
#include "iraewatch/store/store.hpp"
#include "iraewatch/store/writer.hpp"

namespace iraewatch::app {

class Delivery {
 public:
  // `reader`: a connection of the delivery's own; `writer` (may be null) saves positions while
  // it runs.
  static core::Result<std::unique_ptr<Delivery>> open(std::unique_ptr<store::Store> reader,
                                                      std::vector<std::unique_ptr<alert::Output>> outputs,
                                                      store::Writer* writer);
  ~Delivery();  // stop()

  void start();
  // Thread-safe: the outbox holds events up to `head`.
  void notify(std::int64_t head);
  // Delivers what is committed (one more try for a failing output), saves the positions with
  // the delivery's own connection, and ends the thread. Call after the writer has stopped, or
  // with `writer` no longer used.
  void stop();

  std::size_t delivered() const;  // notices delivered to the first output, for counts

 private:
  Delivery(std::unique_ptr<store::Store> reader, std::vector<std::unique_ptr<alert::Output>> outputs,
           store::Writer* writer);
  void run();
  // One pass over every output. Returns true when every output is at `head`.
  bool deliver_all(std::int64_t head, bool final_try);
  void save_positions(bool direct);

  std::unique_ptr<store::Store> reader_;
  std::vector<std::unique_ptr<alert::Output>> outputs_;
  std::vector<std::int64_t> positions_;
  std::vector<std::int64_t> submitted_;  // last positions handed to the writer
  std::vector<std::chrono::steady_clock::time_point> retry_at_;
  store::Writer* writer_;
  std::chrono::steady_clock::time_point last_save_{};

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::int64_t head_ = 0;
  bool stopping_ = false;
  std::size_t delivered_ = 0;
  std::thread thread_;
};

}  // namespace iraewatch::app
