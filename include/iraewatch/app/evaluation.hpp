#pragma once
// Committed records -> engine -> alert log: the step after the store, shared by serve and ingest.
// Not thread-safe: one thread calls it (the writer's, in serve).

#include <memory>
#include <string>
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

  std::size_t events_written() const { return events_written_; }

 private:
  Evaluation(std::shared_ptr<const rules::RuleSet> rules, alert::AlertLog log)
      : engine_(std::move(rules)), log_(std::move(log)) {}

  engine::Engine engine_;
  alert::AlertLog log_;
  std::size_t events_written_ = 0;
};

}  // namespace iraewatch::app
