#include "iraewatch/alert/console_output.hpp"

#include <cerrno>
#include <cstring>
#include <utility>

namespace iraewatch::alert {

ConsoleOutput::ConsoleOutput(std::string name, std::FILE* out) : name_(std::move(name)), out_(out) {}

core::Result<void> ConsoleOutput::deliver(std::span<const core::AlertNotice> notices) {
  if (notices.empty()) return {};
  errno = 0;
  bool ok = true;
  for (const auto& notice : notices) {
    ok = std::fwrite(notice.text.data(), 1, notice.text.size(), out_) == notice.text.size() &&
         std::fputc('\n', out_) != EOF;
    if (!ok) break;
  }
  ok = std::fflush(out_) == 0 && ok;
  if (ok) return {};
  // stdio does not always set errno (a stream opened read-only, for one): say so rather than
  // print "Success".
  const std::string reason = errno != 0 ? std::strerror(errno) : "stream error";
  std::clearerr(out_);
  return core::fail(core::ErrorCode::io, "cannot write alert notices to console output '" + name_ + "': " + reason);
}

}  // namespace iraewatch::alert
