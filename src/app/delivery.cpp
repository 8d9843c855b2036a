#include "iraewatch/app/delivery.hpp"

#include <pthread.h>

#include <spdlog/spdlog.h>

#include <algorithm>

#include "iraewatch/core/event_time.hpp"

namespace iraewatch::app {
namespace {

constexpr int kPage = 512;
constexpr auto kRetry = std::chrono::seconds(1);
constexpr auto kSaveEvery = std::chrono::seconds(1);

}  // namespace

core::Result<std::unique_ptr<Delivery>> Delivery::open(std::unique_ptr<store::Store> reader,
                                                       std::vector<std::unique_ptr<alert::Output>> outputs,
                                                       store::Writer* writer) {
  std::unique_ptr<Delivery> d(new Delivery(std::move(reader), std::move(outputs), writer));
  auto head = d->reader_->last_alert_seq();
  if (!head) return std::unexpected(head.error());
  d->head_ = *head;
  for (std::size_t i = 0; i < d->outputs_.size(); ++i) {
    auto pos = d->reader_->saved_output_position(d->outputs_[i]->name());
    if (!pos) return std::unexpected(pos.error());
    if (!*pos) {
      // A new output starts with what comes from now on (not the whole history), and its start is
      // saved before anything is delivered, so that a crash cannot skip what follows.
      if (auto r = d->reader_->set_output_position(d->outputs_[i]->name(), *head, core::wall_clock_ms()); !r)
        return std::unexpected(r.error());
      *pos = *head;
    }
    d->positions_[i] = d->submitted_[i] = **pos;
  }
  return d;
}

Delivery::Delivery(std::unique_ptr<store::Store> reader, std::vector<std::unique_ptr<alert::Output>> outputs,
                   store::Writer* writer)
    : reader_(std::move(reader)),
      outputs_(std::move(outputs)),
      positions_(outputs_.size(), 0),
      submitted_(outputs_.size(), 0),
      retry_at_(outputs_.size()),
      writer_(writer) {}

Delivery::~Delivery() {
  stop();
}

void Delivery::start() {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "iw-delivery");  // as top -H and perf show it
    run();
  });
}

void Delivery::notify(std::int64_t head) {
  {
    std::lock_guard lock(mutex_);
    head_ = std::max(head_, head);
  }
  wake_.notify_one();
}

std::size_t Delivery::delivered() const {
  std::lock_guard lock(mutex_);
  return delivered_;
}

bool Delivery::deliver_all(std::int64_t head, bool final_try) {
  bool caught_up = true;
  const auto now = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < outputs_.size(); ++i) {
    if (!final_try && now < retry_at_[i]) {
      caught_up = caught_up && positions_[i] >= head;
      continue;
    }
    while (positions_[i] < head) {
      auto page = reader_->alert_events_after(positions_[i], kPage, head);  // only what is on disk
      if (!page) {
        spdlog::error("cannot read the alert outbox: {}", page.error().message);
        retry_at_[i] = now + kRetry;
        break;
      }
      if (page->empty()) break;  // head was ahead of what this connection sees yet
      if (auto r = outputs_[i]->deliver(*page); !r) {
        spdlog::warn("alert output '{}' failed at seq {} (retrying every second): {}", outputs_[i]->name(),
                     page->front().seq, r.error().message);
        retry_at_[i] = now + kRetry;
        break;
      }
      positions_[i] = page->back().seq;
      if (i == 0) {
        std::lock_guard lock(mutex_);
        delivered_ += page->size();
      }
    }
    caught_up = caught_up && positions_[i] >= head;
  }
  return caught_up;
}

void Delivery::save_positions(bool direct) {
  last_save_ = std::chrono::steady_clock::now();
  // A position is saved only once what it covers is durable: an output that cannot sync keeps
  // its last saved position (and delivers again from there after a crash).
  std::vector<std::int64_t> durable = positions_;
  for (std::size_t i = 0; i < outputs_.size(); ++i) {
    if (auto synced = outputs_[i]->sync(); !synced) {
      spdlog::warn("alert output '{}' cannot sync: {}", outputs_[i]->name(), synced.error().message);
      durable[i] = submitted_[i];
    }
  }
  if (direct || !writer_) {
    // The end (or no writer): every position, whatever was submitted before.
    for (std::size_t i = 0; i < outputs_.size(); ++i)
      if (auto r = reader_->set_output_position(outputs_[i]->name(), durable[i], core::wall_clock_ms()); !r)
        spdlog::error("cannot save the position of alert output '{}': {}", outputs_[i]->name(), r.error().message);
    return;
  }
  std::vector<std::pair<std::string, std::int64_t>> changed;
  for (std::size_t i = 0; i < outputs_.size(); ++i)
    if (durable[i] != submitted_[i]) changed.emplace_back(outputs_[i]->name(), durable[i]);
  if (changed.empty()) return;
  writer_->submit_task(
      [changed](store::Store& s) -> core::Result<void> {
        for (const auto& [name, seq] : changed)
          if (auto r = s.set_output_position(name, seq, core::wall_clock_ms()); !r) return r;
        return {};
      },
      [](core::Result<void> r) {
        if (!r) spdlog::warn("alert output positions not saved now (saved at exit): {}", r.error().message);
      });
  submitted_ = durable;
}

void Delivery::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    const std::int64_t head = head_;
    const bool stopping = stopping_;
    lock.unlock();
    const bool caught_up = deliver_all(head, false);
    if (!stopping && std::chrono::steady_clock::now() - last_save_ >= kSaveEvery) save_positions(false);
    lock.lock();
    if (stopping_ && stopping) break;
    if (caught_up) {
      wake_.wait_for(lock, kSaveEvery, [&] { return stopping_ || head_ > head; });
    } else {
      wake_.wait_for(lock, std::chrono::milliseconds(100), [&] { return stopping_; });
    }
  }
}

void Delivery::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
  // The writer has stopped: everything committed is in the outbox.
  auto head = reader_->last_alert_seq();
  if (head) deliver_all(*head, true);
  save_positions(true);
}

}  // namespace iraewatch::app
