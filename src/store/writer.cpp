#include "iraewatch/store/writer.hpp"

#include <future>

namespace iraewatch::store {

Writer::Writer(std::unique_ptr<Store> store, WriterOptions options)
    : store_(std::move(store)), options_(options), thread_([this] { run(); }) {}

Writer::~Writer() {
  stop();
}

void Writer::submit(std::vector<WriteItem> items, Done done) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      queue_.push_back(Submission{std::move(items), std::move(done), {}, {}});
      wake_.notify_one();
      return;
    }
  }
  done(core::fail(core::ErrorCode::store_unavailable, "the store is shutting down"), std::move(items));
}

void Writer::submit_task(Task task, TaskDone done) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      queue_.push_back(Submission{{}, {}, std::move(task), std::move(done)});
      wake_.notify_one();
      return;
    }
  }
  done(core::fail(core::ErrorCode::store_unavailable, "the store is shutting down"));
}

core::Result<void> Writer::run_task(Task task) {
  std::promise<core::Result<void>> promise;
  auto future = promise.get_future();
  submit_task(std::move(task), [&promise](core::Result<void> r) { promise.set_value(std::move(r)); });
  return future.get();
}

WriteResult Writer::write(std::vector<WriteItem>& items) {
  std::promise<WriteResult> promise;
  auto future = promise.get_future();
  submit(std::move(items), [&promise, &items](WriteResult r, std::vector<WriteItem> back) {
    items = std::move(back);
    promise.set_value(std::move(r));
  });
  return future.get();
}

void Writer::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    wake_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
}

void Writer::run() {
  std::vector<Submission> group;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued is committed
      // Take whole submissions up to the item cap; always at least one.
      std::size_t items = 0;
      while (!queue_.empty() && (group.empty() || items + queue_.front().items.size() <= options_.max_batch_items)) {
        items += queue_.front().items.size();
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    commit_group(group);
    group.clear();
    store_->finish_checkpoint_if_wanted();
  }
}

void Writer::commit_group(std::vector<Submission>& group) {
  std::vector<std::vector<WriteOutcome>> outcomes(group.size());
  core::Result<void> status = store_->begin();
  for (std::size_t i = 0; status && i < group.size(); ++i) {
    if (group[i].task) {
      status = group[i].task(*store_);
      continue;
    }
    outcomes[i].reserve(group[i].items.size());
    for (const auto& item : group[i].items) {
      auto outcome = store_->apply(item);
      if (!outcome) {
        status = std::unexpected(outcome.error());
        break;
      }
      outcomes[i].push_back(*outcome);
    }
    if (status && options_.after_apply) status = options_.after_apply(*store_, group[i].items, outcomes[i]);
  }
  if (status) {
    status = store_->commit();
  } else {
    store_->rollback();
  }
  if (options_.after_group) options_.after_group(*store_, status.has_value());
  for (std::size_t i = 0; i < group.size(); ++i) {
    if (group[i].task) {
      if (group[i].task_done) group[i].task_done(status);
    } else if (status) {
      group[i].done(std::move(outcomes[i]), std::move(group[i].items));
    } else {
      group[i].done(std::unexpected(status.error()), std::move(group[i].items));
    }
  }
}

}  // namespace iraewatch::store
