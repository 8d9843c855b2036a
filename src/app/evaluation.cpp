#include "iraewatch/app/evaluation.hpp"

#include <spdlog/spdlog.h>

namespace iraewatch::app {

core::Result<std::unique_ptr<Evaluation>> Evaluation::start(std::shared_ptr<const rules::RuleSet> rules,
                                                            store::Store& store, const std::string& alert_log_path) {
  auto log = alert::AlertLog::open(alert_log_path);
  if (!log) return std::unexpected(log.error());
  const std::int64_t since = core::wall_clock_ms() - rules->settings.history_window_ms;
  std::unique_ptr<Evaluation> ev(new Evaluation(std::move(rules), std::move(*log)));
  std::size_t warmed = 0;
  auto r = store.for_each_current_record(since, [&](const core::Record& record) {
    ev->engine_.warm(record);
    ++warmed;
  });
  if (!r) return std::unexpected(r.error());
  ev->engine_.settle();
  spdlog::info("engine warmed with {} records of {} patients", warmed, ev->engine_.patient_count());
  return ev;
}

void Evaluation::start_worker() {
  worker_ = std::thread([this] {
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      auto [items, result] = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      on_committed(items, result);
      lock.lock();
    }
  });
}

void Evaluation::enqueue(std::vector<store::WriteItem> items, store::WriteResult result) {
  {
    std::lock_guard lock(mutex_);
    queue_.emplace_back(std::move(items), std::move(result));
  }
  wake_.notify_one();
}

void Evaluation::stop_worker() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (worker_.joinable()) worker_.join();
}

Evaluation::~Evaluation() {
  stop_worker();
}

std::size_t Evaluation::on_committed(const std::vector<store::WriteItem>& items, const store::WriteResult& result) {
  if (!result) return 0;
  std::vector<engine::AlertEvent> events;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const auto* record = std::get_if<core::Record>(&items[i]);
    const auto& outcome = (*result)[i];
    if (!record || outcome.kind != store::WriteOutcome::Kind::stored) continue;
    auto e = engine_.process(*record, outcome.version > 1 ? engine::Change::new_version : engine::Change::added);
    events.insert(events.end(), std::make_move_iterator(e.begin()), std::make_move_iterator(e.end()));
  }
  if (events.empty()) return 0;
  if (auto ok = log_.append(events); !ok) {
    spdlog::error("{} alert events could not be written: {}", events.size(), ok.error().message);
    return 0;
  }
  for (const auto& e : events) spdlog::debug("alert {} {} grade {} ({})", e.event, e.signal, e.grade, e.rule);
  events_written_ += events.size();
  return events.size();
}

}  // namespace iraewatch::app
