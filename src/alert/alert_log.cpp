#include "iraewatch/alert/alert_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "iraewatch/alert/alert_json.hpp"

namespace iraewatch::alert {

core::Result<AlertLog> AlertLog::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return core::fail(core::ErrorCode::io, "cannot open alert log '" + path + "': " + std::strerror(errno));
  std::FILE* f = ::fdopen(fd, "a");
  if (!f) {
    ::close(fd);
    return core::fail(core::ErrorCode::io, "cannot open alert log '" + path + "'");
  }
  return AlertLog(f);
}

AlertLog::AlertLog(AlertLog&& other) noexcept : file_(std::exchange(other.file_, nullptr)) {}

AlertLog::~AlertLog() {
  if (file_) std::fclose(file_);
}

core::Result<void> AlertLog::append(const std::vector<engine::AlertEvent>& events) {
  for (const auto& e : events) {
    const std::string line = to_json_line(e) + "\n";
    if (std::fwrite(line.data(), 1, line.size(), file_) != line.size())
      return core::fail(core::ErrorCode::io, "cannot write the alert log");
  }
  if (std::fflush(file_) != 0) return core::fail(core::ErrorCode::io, "cannot write the alert log");
  return {};
}

}  // namespace iraewatch::alert
