#include "iraewatch/net/line_server.hpp"

#include <algorithm>
#include <array>
#include <deque>

namespace iraewatch::net {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

std::string error_text(std::string_view message) {
  std::string out = "{\"ok\":false,\"error\":\"";
  for (char c : message) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"}";
}

std::string error_line(std::string_view message) {
  return error_text(message) + "\n";
}

}  // namespace

class LineServer::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const LineServerOptions& options, const LineHandler& handler)
      : socket_(std::move(socket)),
        watchdog_timer_(socket_.get_executor()),
        read_wake_(socket_.get_executor()),
        reply_wake_(socket_.get_executor()),
        options_(options),
        handler_(handler) {
    boost::system::error_code ec;
    // Replies are small and latency matters: do not let Nagle hold one back for the next.
    socket_.set_option(tcp::no_delay(true), ec);
    auto ep = socket_.remote_endpoint(ec);
    peer_ = ec ? "unknown" : ep.address().to_string() + ":" + std::to_string(ep.port());
  }

  // Reading and replying run side by side: while one batch is being committed the next is read
  // and handed over, so the store can commit them together; replies still go out in order.
  awaitable<void> run() {
    auto self = shared_from_this();
    asio::co_spawn(socket_.get_executor(), watchdog(), asio::detached);
    asio::co_spawn(socket_.get_executor(), reply_loop(), asio::detached);
    try {
      co_await read_loop();
    } catch (const std::exception&) {
      // A session's failure (peer reset) ends only that session.
    }
    reading_done_ = true;
    wake(reply_wake_);
    while (!replies_done_) co_await wait(read_wake_);
    close();
  }

  // Stops reading; batches already read are still replied to, within a few seconds: a peer
  // that does not read its replies does not hold up the daemon's exit.
  void stop() {
    stopping_ = true;
    boost::system::error_code ec;
    if (reading_) socket_.shutdown(tcp::socket::shutdown_receive, ec);
    stop_deadline_ = Clock::now() + kStopGrace;
    watchdog_timer_.cancel();  // recompute its deadline
    wake(read_wake_);
  }

 private:
  // One batch handed to the handler, and its replies once they come back.
  struct Pending {
    bool done = false;
    Replies replies;
  };
  static constexpr std::size_t kMaxInFlight = 4;
  static constexpr std::chrono::seconds kStopGrace{5};

  static awaitable<void> wait(asio::steady_timer& t) {
    t.expires_at(Clock::time_point::max());
    boost::system::error_code ec;
    co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
  }
  static void wake(asio::steady_timer& t) { t.cancel(); }

  void submit(LineBatch batch) {
    auto pending = std::make_shared<Pending>();
    pending_.push_back(pending);
    auto ex = socket_.get_executor();
    handler_(std::move(batch), [pending, self = shared_from_this(), ex](Replies r) mutable {
      asio::post(ex, [pending, self, r = std::move(r)]() mutable {
        pending->replies = std::move(r);
        pending->done = true;
        wake(self->reply_wake_);
      });
    });
  }

  // A line the server itself says (idle timeout), queued behind the replies already owed.
  void say(std::string line) {
    auto pending = std::make_shared<Pending>();
    pending->done = true;
    pending->replies.push_back(std::move(line));
    pending_.push_back(std::move(pending));
    wake(reply_wake_);
  }

  awaitable<void> read_loop() {
    std::array<char, 64 * 1024> buf;
    std::string partial;
    bool overflow = false;  // the current line has passed max_line_bytes
    std::uint64_t line_no = 0;
    for (;;) {
      while (pending_.size() >= kMaxInFlight && !replies_done_ && !stopping_) co_await wait(read_wake_);
      if (stopping_ || replies_done_) co_return;
      boost::system::error_code ec;
      reading_ = true;
      read_deadline_ = Clock::now() + options_.idle_timeout;
      const std::size_t n =
          co_await socket_.async_read_some(asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
      reading_ = false;
      read_deadline_ = Clock::time_point::max();
      if (timed_out_) {
        say(error_text("idle timeout: no data for " +
                       std::to_string(std::chrono::duration_cast<std::chrono::seconds>(options_.idle_timeout).count()) +
                       " s; closing"));
        co_return;
      }
      const bool eof = ec == asio::error::eof;
      if (ec && !eof) co_return;  // reset by peer
      if (eof && stopping_) co_return;

      LineBatch batch{peer_, {}};
      bool close_after = false;
      std::string_view data(buf.data(), n);
      while (!data.empty() && !close_after) {
        const auto nl = data.find('\n');
        const std::string_view piece = data.substr(0, nl);
        if (!overflow) {
          if (partial.size() + piece.size() > options_.max_line_bytes) {
            overflow = true;
            partial.append(piece.substr(
                0, options_.kept_prefix_bytes > partial.size() ? options_.kept_prefix_bytes - partial.size() : 0));
            if (partial.size() > options_.kept_prefix_bytes) partial.resize(options_.kept_prefix_bytes);
          } else {
            partial.append(piece);
          }
        }
        if (nl == std::string_view::npos) break;
        data.remove_prefix(nl + 1);
        ++line_no;
        if (overflow) {
          close_after = true;  // the rest of the stream is not trusted to be framed
        } else if (!partial.empty() && partial.back() == '\r') {
          partial.pop_back();
        }
        batch.lines.push_back(Line{line_no, std::move(partial), overflow});
        partial.clear();
      }
      if (overflow && !close_after) {
        // The line is still growing past the limit: answer now rather than read it all.
        ++line_no;
        batch.lines.push_back(Line{line_no, std::move(partial), true});
        partial.clear();
        close_after = true;
      }
      if (eof && !close_after && !partial.empty()) {
        ++line_no;  // a final line without a newline still counts
        if (partial.back() == '\r') partial.pop_back();
        batch.lines.push_back(Line{line_no, std::move(partial), false});
        partial.clear();
      }
      if (!batch.lines.empty()) submit(std::move(batch));
      if (close_after || eof) co_return;
    }
  }

  awaitable<void> reply_loop() {
    auto self = shared_from_this();
    for (;;) {
      while (!pending_.empty() && pending_.front()->done) {
        auto pending = std::move(pending_.front());
        pending_.pop_front();
        wake(read_wake_);
        std::string out;
        for (auto& r : pending->replies) {
          if (r.empty()) continue;
          out += r;
          out += '\n';
        }
        if (!out.empty() && !co_await write_with_deadline(std::move(out))) {
          finish_replies();  // the peer does not read: give up on it
          co_return;
        }
      }
      if (reading_done_ && pending_.empty()) break;
      co_await wait(reply_wake_);
    }
    finish_replies();
  }

  void finish_replies() {
    replies_done_ = true;
    boost::system::error_code ec;
    if (reading_) socket_.shutdown(tcp::socket::shutdown_receive, ec);
    wake(read_wake_);
  }

  // Writes within the idle timeout; a peer that does not read its replies is cut off.
  awaitable<bool> write_with_deadline(std::string data) {
    boost::system::error_code ec;
    write_deadline_ = Clock::now() + options_.idle_timeout;
    co_await asio::async_write(socket_, asio::buffer(data), asio::redirect_error(use_awaitable, ec));
    write_deadline_ = Clock::time_point::max();
    co_return !ec;
  }

  awaitable<void> watchdog() {
    auto self = shared_from_this();
    while (socket_.is_open()) {
      const auto next =
          std::min({read_deadline_, write_deadline_, stop_deadline_, Clock::now() + std::chrono::seconds(1)});
      watchdog_timer_.expires_at(next);
      boost::system::error_code ec;
      co_await watchdog_timer_.async_wait(asio::redirect_error(use_awaitable, ec));
      if (!socket_.is_open()) co_return;
      const auto now = Clock::now();
      if (now >= write_deadline_ || now >= stop_deadline_) {
        close();  // the reply did not go out in time, or the daemon is stopping
        co_return;
      }
      if (now >= read_deadline_ && !timed_out_) {
        timed_out_ = true;  // ends the read; the reply loop says why and the session closes
        boost::system::error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_receive, ignored);
      }
    }
  }

  void close() {
    boost::system::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
    watchdog_timer_.cancel();
    wake(read_wake_);
    wake(reply_wake_);
  }

  tcp::socket socket_;
  asio::steady_timer watchdog_timer_;
  asio::steady_timer read_wake_;   // wakes the read loop (and run()) when replies have gone out
  asio::steady_timer reply_wake_;  // wakes the reply loop when a batch completes
  const LineServerOptions& options_;
  const LineHandler& handler_;
  std::string peer_;
  std::deque<std::shared_ptr<Pending>> pending_;
  Clock::time_point read_deadline_ = Clock::time_point::max();
  Clock::time_point write_deadline_ = Clock::time_point::max();
  Clock::time_point stop_deadline_ = Clock::time_point::max();
  bool reading_ = false;
  bool reading_done_ = false;
  bool replies_done_ = false;
  bool stopping_ = false;
  bool timed_out_ = false;
};

LineServer::LineServer(asio::io_context& io, LineServerOptions options, LineHandler handler)
    : io_(io), options_(std::move(options)), handler_(std::move(handler)), acceptor_(io) {}

LineServer::~LineServer() = default;

core::Result<void> LineServer::start() {
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(options_.address, ec);
  if (ec) return core::fail(core::ErrorCode::config, "invalid listen address '" + options_.address + "'");
  const tcp::endpoint endpoint(address, options_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return core::fail(core::ErrorCode::io, "cannot listen on " + options_.address + ":" +
                                               std::to_string(options_.port) + ": " + ec.message());
  }
  port_ = acceptor_.local_endpoint().port();
  asio::co_spawn(io_, accept_loop(), asio::detached);
  return {};
}

void LineServer::stop() {
  stopping_ = true;
  boost::system::error_code ec;
  acceptor_.close(ec);
  for (const auto& s : sessions_) s->stop();
}

awaitable<void> LineServer::accept_loop() {
  while (!stopping_) {
    boost::system::error_code ec;
    tcp::socket socket = co_await acceptor_.async_accept(asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (stopping_ || ec == asio::error::operation_aborted) co_return;
      // e.g. out of file descriptors: back off instead of spinning, and try again.
      asio::steady_timer pause(io_, std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::redirect_error(use_awaitable, ec));
      continue;
    }
    if (sessions_.size() >= options_.max_connections) {
      asio::co_spawn(io_, refuse(std::move(socket)), asio::detached);
      continue;
    }
    auto session = std::make_shared<Session>(std::move(socket), options_, handler_);
    sessions_.insert(session);
    asio::co_spawn(
        io_,
        [this, session]() -> awaitable<void> {
          co_await session->run();
          sessions_.erase(session);
        },
        asio::detached);
  }
}

awaitable<void> LineServer::refuse(tcp::socket socket) {
  const std::string line =
      error_line("too many connections (limit " + std::to_string(options_.max_connections) + "); try again later");
  asio::steady_timer timer(io_, std::chrono::seconds(2));
  timer.async_wait([&socket](const boost::system::error_code& ec) {
    if (!ec) socket.close();
  });
  boost::system::error_code ec;
  co_await asio::async_write(socket, asio::buffer(line), asio::redirect_error(use_awaitable, ec));
  timer.cancel();
  socket.shutdown(tcp::socket::shutdown_both, ec);
  socket.close(ec);
}

}  // namespace iraewatch::net
