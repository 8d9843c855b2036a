#include "iraewatch/app/alerting.hpp"

#include <spdlog/spdlog.h>

#include <utility>

#include "iraewatch/core/event_time.hpp"

namespace iraewatch::app {

core::Result<void> persist(store::Store& store, const alert::Transition& t) {
  if (auto r = store.save_alert(t.alert); !r) return r;
  return store.append_alert_event(t.notice);
}

core::Result<void> load_lifecycle(store::Store& store, alert::Lifecycle& lifecycle) {
  auto open = store.alerts({true, "", 1'000'000});
  if (!open) return std::unexpected(open.error());
  auto last_id = store.last_alert_id();
  if (!last_id) return std::unexpected(last_id.error());
  auto last_seq = store.last_alert_seq();
  if (!last_seq) return std::unexpected(last_seq.error());
  lifecycle.load(std::move(*open), *last_id, *last_seq);
  return {};
}

core::Result<std::unique_ptr<Alerting>> Alerting::start(std::shared_ptr<const rules::RuleSet> rules,
                                                        store::Store& store, alert::LifecyclePolicy policy) {
  std::unique_ptr<Alerting> a(new Alerting(std::move(rules), policy));
  if (auto r = a->rebuild(store); !r) return std::unexpected(r.error());
  spdlog::info("engine warmed with {} records of {} patients; {} open alerts; outbox at seq {}", a->warmed_,
               a->engine_->patient_count(), a->lifecycle_.open_count(), a->lifecycle_.last_seq());
  return a;
}

core::Result<void> Alerting::warm_engine(store::Store& store) {
  engine_ = std::make_unique<engine::Engine>(rules_);
  const std::int64_t since = core::wall_clock_ms() - rules_->settings.history_window_ms;
  warmed_ = 0;
  auto r = store.for_each_current_record(since, [&](const core::Record& record) {
    engine_->warm(record);
    ++warmed_;
  });
  if (!r) return r;
  engine_->settle();
  return {};
}

core::Result<void> Alerting::merge_patients(store::Store& store, const std::string& prior,
                                            const std::string& surviving) {
  const std::int64_t now = core::wall_clock_ms();
  for (const auto& t : lifecycle_.merge_patients(prior, surviving, now, now))
    if (auto r = write(store, t); !r) return r;
  auto moved = store.merge_patient(prior, surviving, now);
  if (!moved) return std::unexpected(moved.error());
  spdlog::info("patients merged: {} records moved; rebuilding the engine's history", *moved);
  return warm_engine(store);
}

core::Result<void> Alerting::rebuild(store::Store& store) {
  if (auto w = warm_engine(store); !w) return w;
  if (auto l = load_lifecycle(store, lifecycle_); !l) return l;
  committed_seq_ = lifecycle_.last_seq();
  next_renotify_ms_ = lifecycle_.next_due_ms();
  pending_events_ = 0;
  return {};
}

core::Result<void> Alerting::write(store::Store& store, const alert::Transition& t) {
  if (auto r = persist(store, t); !r) return r;
  ++pending_events_;
  spdlog::debug("alert {} {} {} grade {} ({})", t.notice.alert_id, t.notice.event, t.notice.signal, t.notice.grade,
                t.notice.cause);
  return {};
}

core::Result<void> Alerting::after_apply(store::Store& store, const std::vector<store::WriteItem>& items,
                                         const std::vector<store::WriteOutcome>& outcomes) {
  const std::int64_t now = core::wall_clock_ms();
  for (std::size_t i = 0; i < items.size(); ++i) {
    const auto* record = std::get_if<core::Record>(&items[i]);
    if (!record || outcomes[i].kind != store::WriteOutcome::Kind::stored) continue;
    const auto change = outcomes[i].version > 1 ? engine::Change::new_version : engine::Change::added;
    for (const auto& e : engine_->process(*record, change)) {
      auto t = lifecycle_.on_event(e, now, now);
      if (!t) continue;
      if (auto r = write(store, *t); !r) return r;
    }
  }
  return {};
}

std::move_only_function<void()> Alerting::after_group(store::Store& store, bool committed) {
  if (!committed) {
    // What the engine and the lifecycle learnt from the rolled-back batch is not in the store.
    spdlog::warn("a transaction was rolled back; rebuilding the alert state from the store");
    if (auto r = rebuild(store); !r) spdlog::error("cannot rebuild the alert state: {}", r.error().message);
    return {};
  }
  next_renotify_ms_ = lifecycle_.next_due_ms();
  if (pending_events_ == 0) return {};
  // The events are announced (delivered, published) only once they are on disk; by then the
  // writer may be further on, so this group's own count and newest seq are kept here.
  const std::size_t events = std::exchange(pending_events_, 0);
  const std::int64_t seq = lifecycle_.last_seq();
  return [this, events, seq] {
    events_written_ += events;
    committed_seq_ = seq;
    if (on_committed_) on_committed_(seq);
  };
}

store::WriterOptions Alerting::writer_options(std::size_t max_batch_items) {
  store::WriterOptions o;
  o.max_batch_items = max_batch_items;
  o.after_apply = [this](store::Store& s, const std::vector<store::WriteItem>& items,
                         const std::vector<store::WriteOutcome>& outcomes) { return after_apply(s, items, outcomes); };
  o.after_group = [this](store::Store& s, bool committed) { return after_group(s, committed); };
  return o;
}

core::Result<void> Alerting::renotify(store::Store& store) {
  const std::int64_t now = core::wall_clock_ms();
  for (const auto& t : lifecycle_.renotify_due(now, now))
    if (auto r = write(store, t); !r) return r;
  return {};
}

core::Result<core::Result<core::AlertNotice>> Alerting::acknowledge(store::Store& store, std::int64_t alert_id,
                                                                    const std::string& by, const std::string& note) {
  const std::int64_t now = core::wall_clock_ms();
  auto t = lifecycle_.acknowledge(alert_id, by, note, now, now);
  if (!t) return core::Result<core::AlertNotice>(std::unexpected(t.error()));
  if (auto r = write(store, *t); !r) return std::unexpected(r.error());
  return core::Result<core::AlertNotice>(std::move(t->notice));
}

}  // namespace iraewatch::app
