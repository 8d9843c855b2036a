#pragma once
// A blocking loopback TCP client with a deadline on every read, for black-box tests.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace iraewatch::testing {

class LineSocket {
 public:
  explicit LineSocket(std::uint16_t port);  // connects to 127.0.0.1:port; throws on failure
  ~LineSocket();
  LineSocket(const LineSocket&) = delete;
  LineSocket& operator=(const LineSocket&) = delete;

  void send(const std::string& bytes);  // all of it; throws on failure
  void shutdown_send();
  // The next line (without '\n'), or nullopt on EOF, error or when `timeout` passes.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // True when the server closed the connection (EOF) within `timeout`.
  bool closed_by_peer(std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  int fd_ = -1;
  std::string buffer_;
};

}  // namespace iraewatch::testing
