#pragma once
// Committed records -> engine -> alert lifecycle -> outbox, inside the writer's transaction: the
// alert events of a batch commit with its records, so that nothing acknowledged can lose its
// alert. Used as the Writer's after_apply/after_group hooks by serve and ingest. Everything here
// runs on the writer thread (hooks and tasks), except the atomics and what after_group returns
// (it runs once the group is on disk, on the thread of the Writer's completions).

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "iraewatch/alert/lifecycle.hpp"
#include "iraewatch/engine/engine.hpp"
#include "iraewatch/store/store.hpp"
#include "iraewatch/store/writer.hpp"

namespace iraewatch::app {

// Writes one transition: the alert row and its outbox row (inside an open transaction).
core::Result<void> persist(store::Store& store, const alert::Transition& transition);

// Loads the lifecycle's open alerts and counters from the store.
core::Result<void> load_lifecycle(store::Store& store, alert::Lifecycle& lifecycle);

class Alerting {
 public:
  // Warms the engine from the store (records within the history window), settles its state
  // quietly, and loads the open alerts.
  static core::Result<std::unique_ptr<Alerting>> start(std::shared_ptr<const rules::RuleSet> rules, store::Store& store,
                                                       alert::LifecyclePolicy policy);

  // Writer hooks (install with writer_options()).
  core::Result<void> after_apply(store::Store& store, const std::vector<store::WriteItem>& items,
                                 const std::vector<store::WriteOutcome>& outcomes);
  std::move_only_function<void()> after_group(store::Store& store, bool committed);
  store::WriterOptions writer_options(std::size_t max_batch_items);

  // Tasks for Writer::submit_task / run_task.
  // Re-notifies what is due at the wall clock.
  core::Result<void> renotify(store::Store& store);
  // Acknowledges an open alert: the outer Result is the store's, the inner the request's.
  core::Result<core::Result<core::AlertNotice>> acknowledge(store::Store& store, std::int64_t alert_id,
                                                            const std::string& by, const std::string& note);

  // Two patients become one (HL7 ADT^A40), inside the transaction: open alerts move or close,
  // records and closed alerts move in the store, and the engine is rebuilt from the store.
  core::Result<void> merge_patients(store::Store& store, const std::string& prior, const std::string& surviving);

  // Called once a commit that added outbox rows is on disk, with the newest seq: on the thread of
  // the Writer's completion callbacks (WriterOptions::after_group).
  void set_on_committed(std::function<void(std::int64_t)> fn) { on_committed_ = std::move(fn); }

  // Thread-safe.
  std::int64_t committed_seq() const { return committed_seq_.load(); }
  std::int64_t next_renotify_ms() const { return next_renotify_ms_.load(); }
  std::size_t events_written() const { return events_written_.load(); }
  std::size_t patient_count() const { return engine_->patient_count(); }

 private:
  Alerting(std::shared_ptr<const rules::RuleSet> rules, alert::LifecyclePolicy policy)
      : rules_(std::move(rules)), lifecycle_(policy) {}
  core::Result<void> rebuild(store::Store& store);
  core::Result<void> warm_engine(store::Store& store);
  core::Result<void> write(store::Store& store, const alert::Transition& t);

  std::shared_ptr<const rules::RuleSet> rules_;
  std::unique_ptr<engine::Engine> engine_;
  alert::Lifecycle lifecycle_;
  std::function<void(std::int64_t)> on_committed_;
  std::size_t pending_events_ = 0;  // written by the open transaction
  std::size_t warmed_ = 0;          // records read at the last (re)build
  std::atomic<std::int64_t> committed_seq_{0};
  std::atomic<std::int64_t> next_renotify_ms_{INT64_MAX};
  std::atomic<std::size_t> events_written_{0};
};

}  // namespace iraewatch::app
