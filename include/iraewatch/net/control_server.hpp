#pragma once
// The local control socket: a Unix-domain socket (mode 0600) where local tools send one request
// line and get one reply line (`iraewatch ack` uses it while the daemon runs). It knows nothing
// of what a line means: the handler turns a request into a reply.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "iraewatch/core/error.hpp"
#include "iraewatch/net/asio.hpp"

namespace iraewatch::net {

struct ControlServerOptions {
  std::string path;  // the socket file; a stale one (nobody listening) is replaced
  std::size_t max_request_bytes = 64 * 1024;
  std::size_t max_connections = 8;
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(10);
};

// Called on the server's thread for each request line; returns the reply line (no newline). It
// may block (e.g. wait for a commit).
using ControlHandler = std::function<std::string(const std::string& request)>;

class ControlServer {
 public:
  ControlServer(boost::asio::io_context& io, ControlServerOptions options, ControlHandler handler);
  ~ControlServer();  // removes the socket file it created

  // Binds. An Error when the path is in use by a live server or cannot be created.
  core::Result<void> start();
  void stop();

 private:
  struct State;
  std::shared_ptr<State> state_;
};

// Client side: sends one request line and waits for the reply line. ErrorCode::not_found when
// nobody listens at `path` (no socket file, or connection refused: the daemon is not running);
// io for any other failure, including a timeout (a daemon may be running but busy).
core::Result<std::string> control_request(const std::string& path, const std::string& request,
                                          std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace iraewatch::net
