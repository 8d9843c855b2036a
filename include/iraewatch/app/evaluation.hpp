#pragma once
// Committed records -> engine -> alert log: the step after the store, shared by serve and ingest.
// Either called directly (ingest), or fed through its own worker thread (serve), so that
// evaluation and alert writing never delay the writer's next commit. Not thread-safe otherwise.

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "iraewatch/alert/alert_log.hpp"
#include "iraewatch/engine/engine.hpp"
#include "iraewatch/store/store.hpp"
#include "iraewatch/store/writer.hpp"

namespace iraewatch::app {

class Evaluation {
 public:
  // Warms the engine from the store (records within the history window) and settles its state.
  static core::Result<std::unique_ptr<Evaluation>> start(std::shared_ptr<const rules::RuleSet> rules,
                                                         store::Store& store, const std::string& alert_log_path);

  // Evaluates the records of a committed batch that were stored (not duplicates, not rejections)
  // and appends the resulting events to the alert log. Returns how many events it wrote.
  std::size_t on_committed(const std::vector<store::WriteItem>& items, const store::WriteResult& result);

  // The worker: enqueue() hands a committed batch to it; stop_worker() finishes the queue.
  void start_worker();
  void enqueue(std::vector<store::WriteItem> items, store::WriteResult result);
  void stop_worker();

  std::size_t events_written() const { return events_written_; }
  ~Evaluation();

 private:
  Evaluation(std::shared_ptr<const rules::RuleSet> rules, alert::AlertLog log)
      : engine_(std::move(rules)), log_(std::move(log)) {}

  engine::Engine engine_;
  alert::AlertLog log_;
  std::size_t events_written_ = 0;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::pair<std::vector<store::WriteItem>, store::WriteResult>> queue_;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace iraewatch::app
