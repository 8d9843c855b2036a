#pragma once
// A TCP listener for line-oriented protocols (NDJSON): frames bytes into lines, hands them to a
// handler in batches, and writes the handler's replies back in order. It knows nothing of what a
// line means. Limits: line length, idle (and write) timeout, connection count; past a limit the
// peer gets one error line and the connection is closed.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "iraewatch/core/error.hpp"
#include "iraewatch/net/asio.hpp"

namespace iraewatch::net {

struct LineServerOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 7470;             // 0 picks a free port (see LineServer::port())
  std::size_t max_line_bytes = 1 << 20;  // longer lines are refused and the connection closed
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(300);
  std::size_t max_connections = 64;
  std::size_t kept_prefix_bytes = 64 * 1024;  // how much of an over-long line reaches the handler
};

struct Line {
  std::uint64_t number = 0;  // 1-based within the connection
  std::string text;          // without the newline (and without a trailing CR)
  bool too_long = false;     // text is only a prefix; the connection closes after the reply
};

struct LineBatch {
  std::string peer;  // "address:port" of the client
  std::vector<Line> lines;
};

// One reply per line, in order; an empty reply writes nothing (e.g. for a blank line).
using Replies = std::vector<std::string>;
using ReplyFn = std::move_only_function<void(Replies)>;
// Called on the server's thread; may complete `reply` later from any thread, exactly once.
using LineHandler = std::function<void(LineBatch, ReplyFn)>;

class LineServer {
 public:
  LineServer(boost::asio::io_context& io, LineServerOptions options, LineHandler handler);
  ~LineServer();

  // Binds and starts accepting. An Error when the address cannot be bound.
  core::Result<void> start();
  std::uint16_t port() const { return port_; }
  // Stops accepting; open sessions finish the batch they are handling, write its replies and close.
  void stop();

  class Session;

 private:
  boost::asio::awaitable<void> accept_loop();
  boost::asio::awaitable<void> refuse(boost::asio::ip::tcp::socket socket);

  boost::asio::io_context& io_;
  LineServerOptions options_;
  LineHandler handler_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  bool stopping_ = false;
  std::set<std::shared_ptr<Session>> sessions_;
};

}  // namespace iraewatch::net
