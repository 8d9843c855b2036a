#include "iraewatch/net/control_server.hpp"

#include <sys/un.h>

#include <array>
#include <cassert>
#include <optional>
#include <set>

#include "unix_listener.hpp"

namespace iraewatch::net {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using UnixProtocol = asio::local::stream_protocol;
using Clock = std::chrono::steady_clock;

namespace {

// How long a refused connection has to take its one error line before it is closed anyway.
constexpr std::chrono::seconds kRefuseGrace{2};
constexpr std::chrono::milliseconds kAcceptPause{100};
// After the final error line, how long and how much of what the peer still sends is read and
// dropped before closing (see Connection::drain()).
constexpr std::chrono::seconds kDrainTime{1};
constexpr std::size_t kDrainBytes = 64 * 1024;
// The client's bound on a reply line: far above any real reply, low enough to stop a runaway.
constexpr std::size_t kMaxReplyBytes = 16 * 1024 * 1024;

std::string error_line(std::string_view message) {
  std::string out = "{\"ok\":false,\"error\":\"";
  for (char c : message) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"}\n";
}

// Writes one error line to a connection past the limit and closes it, within kRefuseGrace. Like
// drain(): what the peer sends meanwhile is read and dropped, so that the close is not a reset
// that could destroy the line (or fail the peer's first write before it reads the line).
awaitable<void> refuse(UnixProtocol::socket socket, std::string line) {
  // Shared with the timer's handler, which may still be queued when this coroutine ends.
  auto shared = std::make_shared<UnixProtocol::socket>(std::move(socket));
  asio::steady_timer timer(shared->get_executor(), kRefuseGrace);
  timer.async_wait([shared](const boost::system::error_code& ec) {
    boost::system::error_code ignored;
    if (!ec) shared->close(ignored);
  });
  boost::system::error_code ec;
  co_await asio::async_write(*shared, asio::buffer(line), asio::redirect_error(use_awaitable, ec));
  if (!ec) {
    shared->shutdown(UnixProtocol::socket::shutdown_send, ec);
    std::array<char, 4096> buf;
    std::size_t dropped = 0;
    while (!ec && dropped < kDrainBytes) {
      dropped += co_await shared->async_read_some(asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
    }
  }
  timer.cancel();
  shared->close(ec);
}

class Connection;

// What every connection of one server shares; connections keep it alive, so it may outlive the
// ControlServer by the time the io_context takes to wind them down.
struct Hub : std::enable_shared_from_this<Hub> {
  Hub(asio::io_context& io, ControlServerOptions options, ControlHandler handler)
      : io_(io), options_(std::move(options)), handler_(std::move(handler)), acceptor_(io) {}

  void stop();
  awaitable<void> accept_loop();

  asio::io_context& io_;
  const ControlServerOptions options_;
  const ControlHandler handler_;
  UnixProtocol::acceptor acceptor_;
  std::optional<UnixSocketFile> socket_file_;
  bool started_ = false;
  bool stopping_ = false;
  std::set<std::shared_ptr<Connection>> connections_;
};

// One local client: read a request line, call the handler, write its reply; repeat until the
// client hangs up, stays silent for idle_timeout, or sends a line longer than max_request_bytes.
// The handler runs on this thread and may block; requests of one connection are answered in order.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(UnixProtocol::socket socket, std::shared_ptr<Hub> hub)
      : socket_(std::move(socket)), watchdog_(socket_.get_executor()), hub_(std::move(hub)) {}

  awaitable<void> run() {
    auto self = shared_from_this();
    asio::co_spawn(
        socket_.get_executor(), [self] { return self->watchdog(); }, asio::detached);
    try {
      co_await serve();
    } catch (const std::exception&) {
      // A failing handler or a broken socket ends this connection only; the client sees the
      // connection close without a reply.
    }
    close();
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ec;
    socket_.shutdown(UnixProtocol::socket::shutdown_both, ec);
    socket_.close(ec);
    watchdog_.cancel();
  }

 private:
  const ControlServerOptions& options() const { return hub_->options_; }

  awaitable<void> serve() {
    const std::size_t limit = options().max_request_bytes;
    std::array<char, 4096> buf;
    std::string pending;  // bytes read, not yet answered; at most one partial line past `limit`
    bool eof = false;
    while (!closed_) {
      const auto nl = pending.find('\n');
      if ((nl == std::string::npos ? pending.size() : nl) > limit) {
        if (co_await write(error_line("request too long"))) co_await drain();
        co_return;
      }
      if (nl != std::string::npos || (eof && !pending.empty())) {
        // A final line without a newline still counts.
        std::string request = pending.substr(0, nl);
        pending.erase(0, nl == std::string::npos ? pending.size() : nl + 1);
        if (!request.empty() && request.back() == '\r') request.pop_back();
        if (request.empty()) continue;  // a blank line asks nothing
        // No deadline while the handler runs: a slow commit is not the client's fault.
        set_deadline(Clock::time_point::max());
        std::string reply = hub_->handler_(request);
        reply += '\n';
        if (!co_await write(std::move(reply))) co_return;
        continue;
      }
      if (eof || hub_->stopping_) co_return;
      set_deadline(Clock::now() + options().idle_timeout);
      boost::system::error_code ec;
      const std::size_t n =
          co_await socket_.async_read_some(asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
      if (ec == asio::error::eof) {
        eof = true;
      } else if (ec) {
        co_return;  // reset, or closed by the watchdog (idle) or by stop()
      }
      pending.append(buf.data(), n);
    }
  }

  // A write that does not finish within idle_timeout closes the connection (see watchdog()).
  awaitable<bool> write(std::string data) {
    boost::system::error_code ec;
    set_deadline(Clock::now() + options().idle_timeout);
    co_await asio::async_write(socket_, asio::buffer(data), asio::redirect_error(use_awaitable, ec));
    co_return !ec && !closed_;
  }

  // Closing a socket with unread input sends a reset, which can destroy the error line still on
  // its way to the peer. So: half-close, then read and drop what the peer still sends, bounded in
  // time and bytes.
  awaitable<void> drain() {
    boost::system::error_code ec;
    socket_.shutdown(UnixProtocol::socket::shutdown_send, ec);
    set_deadline(Clock::now() + kDrainTime);
    std::array<char, 4096> buf;
    std::size_t dropped = 0;
    while (!closed_ && dropped < kDrainBytes) {
      dropped += co_await socket_.async_read_some(asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
      if (ec) break;
    }
  }

  void set_deadline(Clock::time_point deadline) {
    deadline_ = deadline;
    if (deadline_ < watchdog_.expiry()) watchdog_.cancel();  // re-arm for the nearer deadline
  }

  awaitable<void> watchdog() {
    while (!closed_) {
      watchdog_.expires_at(deadline_);
      boost::system::error_code ec;
      co_await watchdog_.async_wait(asio::redirect_error(use_awaitable, ec));
      if (closed_) co_return;
      if (Clock::now() >= deadline_) {
        close();
        co_return;
      }
    }
  }

  UnixProtocol::socket socket_;
  asio::steady_timer watchdog_;  // expires at deadline_
  std::shared_ptr<Hub> hub_;
  Clock::time_point deadline_ = Clock::time_point::max();
  bool closed_ = false;
};

void Hub::stop() {
  stopping_ = true;
  boost::system::error_code ec;
  acceptor_.close(ec);
  // Dropping the set breaks the Hub <-> Connection cycle even if the io_context never runs again.
  auto connections = std::move(connections_);
  connections_.clear();
  for (const auto& connection : connections) connection->close();
  remove_socket_file(socket_file_);
}

awaitable<void> Hub::accept_loop() {
  auto self = shared_from_this();
  while (!stopping_) {
    boost::system::error_code ec;
    auto socket = co_await acceptor_.async_accept(asio::redirect_error(use_awaitable, ec));
    if (stopping_) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      asio::steady_timer pause(io_, kAcceptPause);
      co_await pause.async_wait(asio::redirect_error(use_awaitable, ec));
      continue;
    }
    if (connections_.size() >= options_.max_connections) {
      asio::co_spawn(io_, refuse(std::move(socket), error_line("too many connections")), asio::detached);
      continue;
    }
    auto connection = std::make_shared<Connection>(std::move(socket), self);
    connections_.insert(connection);
    asio::co_spawn(
        io_,
        [self, connection]() -> awaitable<void> {
          co_await connection->run();
          self->connections_.erase(connection);
        },
        asio::detached);
  }
}

}  // namespace

// The pimpl is the Hub, which the connections (in the anonymous namespace) can name.
struct ControlServer::State : Hub {
  using Hub::Hub;
};

ControlServer::ControlServer(asio::io_context& io, ControlServerOptions options, ControlHandler handler)
    : state_(std::make_shared<State>(io, std::move(options), std::move(handler))) {}

// Like stop(): on the server's thread, or once the io_context no longer runs.
ControlServer::~ControlServer() {
  state_->stop();
}

core::Result<void> ControlServer::start() {
  State& s = *state_;
  assert(!s.started_ && "start() is called once");
  if (s.options_.path.empty()) return core::fail(core::ErrorCode::config, "no control socket path");
  auto file = listen_unix(s.acceptor_, s.options_.path);
  if (!file) return std::unexpected(file.error());
  s.socket_file_ = std::move(*file);
  s.started_ = true;
  asio::co_spawn(
      s.io_, [state = state_] { return state->accept_loop(); }, asio::detached);
  return {};
}

// Stops accepting and closes every connection (a request being handled is not answered). Call on
// the server's thread, or before it runs.
void ControlServer::stop() {
  state_->stop();
}

core::Result<std::string> control_request(const std::string& path, const std::string& request,
                                          std::chrono::milliseconds timeout) {
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return core::fail(core::ErrorCode::config, "socket path too long: " + path);
  }
  // Declared before the io_context: coroutine frames the io_context destroys may still refer to it.
  std::optional<core::Result<std::string>> result;
  asio::io_context io;
  UnixProtocol::socket socket(io);
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        boost::system::error_code ec;
        co_await socket.async_connect(UnixProtocol::endpoint(path), asio::redirect_error(use_awaitable, ec));
        if (ec == asio::error::connection_refused || ec == boost::system::errc::no_such_file_or_directory) {
          result = core::fail(core::ErrorCode::not_found, "no daemon is listening on " + path);
          co_return;
        }
        if (ec) {
          result = core::fail(core::ErrorCode::io, "cannot connect to " + path + ": " + ec.message());
          co_return;
        }
        const std::string out = request + "\n";
        boost::system::error_code write_ec;
        co_await asio::async_write(socket, asio::buffer(out), asio::redirect_error(use_awaitable, write_ec));
        // Even when the write fails the daemon may have said why it closed (too many connections),
        // so the reply is read either way.
        std::string in;
        const std::size_t n = co_await asio::async_read_until(socket, asio::dynamic_buffer(in, kMaxReplyBytes), '\n',
                                                              asio::redirect_error(use_awaitable, ec));
        if (ec && write_ec) {
          result = core::fail(core::ErrorCode::io, "cannot send the request to " + path + ": " + write_ec.message());
        } else if (ec == asio::error::eof || ec == asio::error::connection_reset) {
          result = core::fail(core::ErrorCode::io, "the daemon at " + path + " closed the connection without a reply");
        } else if (ec == asio::error::not_found) {
          result = core::fail(core::ErrorCode::io, "the reply from " + path + " is longer than " +
                                                       std::to_string(kMaxReplyBytes) + " bytes");
        } else if (ec) {
          result = core::fail(core::ErrorCode::io, "cannot read the reply from " + path + ": " + ec.message());
        } else {
          std::string reply = in.substr(0, n - 1);
          if (!reply.empty() && reply.back() == '\r') reply.pop_back();
          result = std::move(reply);
        }
      },
      asio::detached);
  io.run_for(timeout);
  if (!result) {
    return core::fail(core::ErrorCode::io,
                      "no reply from the daemon at " + path + " within " + std::to_string(timeout.count()) + " ms");
  }
  return std::move(*result);
}

}  // namespace iraewatch::net
