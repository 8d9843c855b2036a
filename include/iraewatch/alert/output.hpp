#pragma once
// Where alert notices go: every output channel implements this one small interface. Outputs are
// driven by the delivery loop (app), which reads the outbox and hands each output the notices
// after its remembered position, oldest first. Not thread-safe: one thread drives an output.

#include <span>
#include <string>

#include "iraewatch/core/alert.hpp"
#include "iraewatch/core/error.hpp"

namespace iraewatch::alert {

class Output {
 public:
  virtual ~Output() = default;
  // A stable name, the key of this output's position in the store (e.g. "file", "syslog").
  virtual const std::string& name() const = 0;
  // Delivers the notices, in order. Success means every one was handed over (written and
  // flushed, or sent); an Error means none after the first failed one was, and the same notices
  // will be offered again.
  virtual core::Result<void> deliver(std::span<const core::AlertNotice> notices) = 0;
  // Makes what deliver() handed over durable against power loss (e.g. fdatasync). The delivery
  // loop calls it before it saves this output's position, about once a second, so that syncing
  // is not paid per event. The default does nothing (sockets have nothing to sync).
  virtual core::Result<void> sync() { return {}; }
};

}  // namespace iraewatch::alert
