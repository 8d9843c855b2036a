#include "iraewatch/net/line_server.hpp"

#include <array>

namespace iraewatch::net {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

// Hands a batch to the handler and resumes the coroutine, on its own executor, when the handler
// replies. The work guard keeps io_context::run() alive while another thread holds the reply.
template <typename Token>
auto async_handle(const LineHandler& handler, LineBatch batch, Token&& token) {
  return asio::async_initiate<Token, void(Replies)>(
      [&handler](auto completion, LineBatch b) {
        auto ex = asio::get_associated_executor(completion);
        auto guard = asio::make_work_guard(ex);
        handler(std::move(b), [completion = std::move(completion), guard = std::move(guard)](Replies r) mutable {
          auto ex2 = guard.get_executor();
          asio::post(ex2,
                     [completion = std::move(completion), r = std::move(r)]() mutable { completion(std::move(r)); });
          guard.reset();
        });
      },
      token, std::move(batch));
}

std::string error_line(std::string_view message) {
  std::string out = "{\"ok\":false,\"error\":\"";
  for (char c : message) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"}\n";
}

}  // namespace

class LineServer::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const LineServerOptions& options, const LineHandler& handler)
      : socket_(std::move(socket)), timer_(socket_.get_executor()), options_(options), handler_(handler) {
    boost::system::error_code ec;
    // Replies are small and latency matters: do not let Nagle hold one back for the next.
    socket_.set_option(tcp::no_delay(true), ec);
    auto ep = socket_.remote_endpoint(ec);
    peer_ = ec ? "unknown" : ep.address().to_string() + ":" + std::to_string(ep.port());
  }

  awaitable<void> run() {
    auto self = shared_from_this();
    asio::co_spawn(socket_.get_executor(), watchdog(), asio::detached);
    try {
      co_await serve();
    } catch (const std::exception&) {
      // A session's failure (peer reset, cancelled write) ends only that session.
    }
    close();
  }

  // Stops reading; a batch being handled is still replied to.
  void stop() {
    stopping_ = true;
    if (reading_) {
      boost::system::error_code ec;
      socket_.cancel(ec);
    }
  }

 private:
  awaitable<void> serve() {
    std::array<char, 64 * 1024> buf;
    std::string partial;
    bool overflow = false;  // the current line has passed max_line_bytes
    std::uint64_t line_no = 0;
    for (;;) {
      if (stopping_) co_return;
      boost::system::error_code ec;
      reading_ = true;
      deadline_ = Clock::now() + options_.idle_timeout;
      const std::size_t n =
          co_await socket_.async_read_some(asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
      reading_ = false;
      const bool eof = ec == asio::error::eof;
      if (ec && !eof) {
        if (timed_out_) {
          co_await write_with_deadline(error_line(
              "idle timeout: no data for " +
              std::to_string(std::chrono::duration_cast<std::chrono::seconds>(options_.idle_timeout).count()) +
              " s; closing"));
        }
        co_return;  // stopped, reset by peer, or timed out
      }

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
      if (!batch.lines.empty()) {
        deadline_ = Clock::time_point::max();  // the store's time is not the peer's idleness
        Replies replies = co_await async_handle(handler_, std::move(batch), use_awaitable);
        std::string out;
        for (auto& r : replies) {
          if (r.empty()) continue;
          out += r;
          out += '\n';
        }
        if (!out.empty() && !co_await write_with_deadline(std::move(out))) co_return;
      }
      if (close_after || eof) co_return;
    }
  }

  // Writes within the idle timeout; a peer that does not read its replies is cut off.
  awaitable<bool> write_with_deadline(std::string data) {
    boost::system::error_code ec;
    deadline_ = Clock::now() + options_.idle_timeout;
    co_await asio::async_write(socket_, asio::buffer(data), asio::redirect_error(use_awaitable, ec));
    deadline_ = Clock::time_point::max();
    co_return !ec;
  }

  awaitable<void> watchdog() {
    auto self = shared_from_this();
    while (socket_.is_open()) {
      timer_.expires_at(deadline_ == Clock::time_point::max() ? Clock::now() + std::chrono::seconds(1) : deadline_);
      boost::system::error_code ec;
      co_await timer_.async_wait(asio::redirect_error(use_awaitable, ec));
      if (!socket_.is_open()) co_return;
      if (deadline_ != Clock::time_point::max() && Clock::now() >= deadline_) {
        if (timed_out_) {  // the error line itself did not go out in time
          close();
          co_return;
        }
        timed_out_ = true;
        boost::system::error_code ignored;
        socket_.cancel(ignored);
      }
    }
  }

  void close() {
    boost::system::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
    timer_.cancel();
  }

  tcp::socket socket_;
  asio::steady_timer timer_;
  const LineServerOptions& options_;
  const LineHandler& handler_;
  std::string peer_;
  Clock::time_point deadline_ = Clock::time_point::max();
  bool reading_ = false;
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
      continue;  // e.g. the peer reset before accept completed; file-descriptor exhaustion passes
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
