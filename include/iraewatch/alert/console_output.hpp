#pragma once
// The console output: one human-readable line per alert notice (its `text`), for a terminal or
// a journal that captures stdout.

#include <cstdio>
#include <span>
#include <string>

#include "iraewatch/alert/output.hpp"
#include "iraewatch/core/alert.hpp"
#include "iraewatch/core/error.hpp"

namespace iraewatch::alert {

class ConsoleOutput final : public Output {
 public:
  // Writes to `out`, which the caller owns and keeps open for the output's lifetime.
  ConsoleOutput(std::string name, std::FILE* out);

  const std::string& name() const override { return name_; }

  // Writes each notice's `text` and a newline, then flushes the stream. A failed write or flush
  // is an io error (the stream's error flag is cleared, so the next delivery tries again).
  core::Result<void> deliver(std::span<const core::AlertNotice> notices) override;

 private:
  std::string name_;
  std::FILE* out_;
};

}  // namespace iraewatch::alert
