#pragma once
// An append-only JSON-lines file of alert events. Each line is written and flushed whole.
// (The durable outbox with delivery positions comes with the alert lifecycle work.)

#include <cstdio>
#include <string>
#include <vector>

#include "iraewatch/core/error.hpp"
#include "iraewatch/engine/alert_event.hpp"

namespace iraewatch::alert {

class AlertLog {
 public:
  static core::Result<AlertLog> open(const std::string& path);  // created 0600 when absent
  AlertLog(AlertLog&& other) noexcept;
  AlertLog& operator=(AlertLog&&) = delete;
  AlertLog(const AlertLog&) = delete;
  ~AlertLog();

  core::Result<void> append(const std::vector<engine::AlertEvent>& events);

 private:
  explicit AlertLog(std::FILE* f) : file_(f) {}
  std::FILE* file_;
};

}  // namespace iraewatch::alert
