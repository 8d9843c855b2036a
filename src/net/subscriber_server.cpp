#include "iraewatch/net/subscriber_server.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <deque>
#include <limits>
#include <optional>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "iraewatch/core/event_time.hpp"
#include "unix_listener.hpp"

namespace iraewatch::net {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;
using UnixProtocol = asio::local::stream_protocol;
using Clock = std::chrono::steady_clock;
// Insertion order, so that every line starts with "type" as docs/alerts.md shows it.
using Json = nlohmann::ordered_json;

namespace {

// How long a refused connection has to take its one error line before it is closed anyway.
constexpr std::chrono::seconds kRefuseGrace{2};
// Back-off after a failed accept (e.g. out of file descriptors), instead of spinning.
constexpr std::chrono::milliseconds kAcceptPause{100};
// After the final error line, how long and how much of what the peer still sends is read and
// dropped before closing (see SocketSession::drain()).
constexpr std::chrono::seconds kDrainTime{1};
constexpr std::size_t kDrainBytes = 64 * 1024;

std::string error_line(const std::string& message) {
  return Json{{"type", "error"}, {"error", message}}.dump() + "\n";
}

// Whole seconds as an integer (the usual case), a fraction only for sub-second test intervals.
Json heartbeat_seconds(std::chrono::milliseconds interval) {
  if (interval.count() % 1000 == 0) return interval.count() / 1000;
  return static_cast<double>(interval.count()) / 1000.0;
}

// Writes one error line to a connection past the limit and closes it, within kRefuseGrace. Like
// drain(): what the peer sends meanwhile is read and dropped, so that the close is not a reset
// that could destroy the line (or fail the peer's first write before it reads the line).
template <typename Socket>
awaitable<void> refuse(Socket socket, std::string line) {
  // Shared with the timer's handler, which may still be queued when this coroutine ends.
  auto shared = std::make_shared<Socket>(std::move(socket));
  asio::steady_timer timer(shared->get_executor(), kRefuseGrace);
  timer.async_wait([shared](const boost::system::error_code& ec) {
    boost::system::error_code ignored;
    if (!ec) shared->close(ignored);
  });
  boost::system::error_code ec;
  co_await asio::async_write(*shared, asio::buffer(line), asio::redirect_error(use_awaitable, ec));
  if (!ec) {
    shared->shutdown(Socket::shutdown_send, ec);
    std::array<char, 4096> buf;
    std::size_t dropped = 0;
    while (!ec && dropped < kDrainBytes) {
      dropped += co_await shared->async_read_some(asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
    }
  }
  timer.cancel();
  shared->close(ec);
}

}  // namespace

// The protocol-independent face of a session, which the Hub talks to.
class SubscriberServer::Session : public std::enable_shared_from_this<Session> {
 public:
  virtual ~Session() = default;
  // Events up to `head_seq` are committed: fetch them if this subscriber is behind.
  virtual void notify(std::int64_t head_seq) = 0;
  virtual void close() = 0;
};

namespace {

// What every session of one server shares; sessions keep it alive, so it may outlive the
// SubscriberServer by the time the io_context takes to wind the sessions down.
struct Hub : std::enable_shared_from_this<Hub> {
  Hub(asio::io_context& io, SubscriberServerOptions options, FetchFn fetch, std::int64_t head_seq)
      : io_(io),
        options_(std::move(options)),
        fetch_(std::move(fetch)),
        head_seq_(head_seq),
        tcp_acceptor_(io),
        unix_acceptor_(io) {}

  void publish(std::int64_t head_seq);
  void stop();

  template <typename Protocol>
  awaitable<void> accept_loop(typename Protocol::acceptor& acceptor);

  asio::io_context& io_;
  const SubscriberServerOptions options_;
  const FetchFn fetch_;
  std::int64_t head_seq_;  // the newest committed seq, as far as this thread has been told
  tcp::acceptor tcp_acceptor_;
  UnixProtocol::acceptor unix_acceptor_;
  std::optional<UnixSocketFile> socket_file_;
  bool started_ = false;
  bool stopping_ = false;
  std::set<std::shared_ptr<SubscriberServer::Session>> sessions_;
};

// One subscriber. Two coroutines share the socket: the write loop owns every write (hello,
// events, heartbeats, the final error line), the read loop only parses requests and hands them
// over. The write loop pulls from the outbox at most max_queued_lines at a time, and only once the
// previous batch has gone out, so a slow reader costs one bounded batch of memory and nothing else:
// the rest waits in the outbox.
template <typename Protocol>
class SocketSession final : public SubscriberServer::Session {
 public:
  using Socket = typename Protocol::socket;

  SocketSession(Socket socket, std::shared_ptr<Hub> hub)
      : socket_(std::move(socket)),
        wake_(socket_.get_executor()),
        watchdog_(socket_.get_executor()),
        hub_(std::move(hub)),
        position_(hub_->head_seq_) {
    if constexpr (std::is_same_v<Protocol, tcp>) {
      boost::system::error_code ec;
      socket_.set_option(tcp::no_delay(true), ec);  // an alert should not wait for the next one
    }
  }

  awaitable<void> run() {
    auto self = std::static_pointer_cast<SocketSession>(shared_from_this());
    const auto ex = socket_.get_executor();
    asio::co_spawn(
        ex, [self] { return self->watchdog(); }, asio::detached);
    asio::co_spawn(
        ex, [self] { return self->read_loop(); }, asio::detached);
    try {
      co_await write_loop();
    } catch (const std::exception&) {
      // A failing fetch function or a broken socket ends this subscriber only.
    }
    close();
  }

  void notify(std::int64_t head_seq) override {
    if (head_seq <= position_) return;
    more_ = true;
    wake_.cancel();
  }

  void close() override {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ec;
    socket_.shutdown(Socket::shutdown_both, ec);
    socket_.close(ec);
    wake_.cancel();
    watchdog_.cancel();
  }

 private:
  const SubscriberServerOptions& options() const { return hub_->options_; }

  awaitable<void> write_loop() {
    const auto interval = options().heartbeat;
    auto next_heartbeat = interval.count() > 0 ? Clock::now() + interval : Clock::time_point::max();
    if (!co_await write(hello_line())) co_return;
    while (!closed_) {
      if (since_) {
        queue_.clear();  // not yet written; the restarted stream brings them again if they are wanted
        position_ = *since_;
        since_.reset();
        more_ = true;
      }
      if (!error_) fill_queue();
      if (error_) {
        if (co_await write(std::move(*error_)) && reading_done_) co_await drain();
        co_return;
      }
      std::string out;
      const auto now = Clock::now();
      if (now >= next_heartbeat) {
        out = heartbeat_line();
        next_heartbeat = now + interval;
      }
      for (const auto& line : queue_) {
        out += line.line;
        out += '\n';
      }
      queue_.clear();
      if (!out.empty()) {
        if (!co_await write(std::move(out))) co_return;
        continue;
      }
      wake_.expires_at(next_heartbeat);
      boost::system::error_code ec;
      co_await wake_.async_wait(asio::redirect_error(use_awaitable, ec));
    }
  }

  // Pulls from the outbox until the queue is full or the subscriber has caught up.
  void fill_queue() {
    const std::size_t capacity = std::max<std::size_t>(options().max_queued_lines, 1);
    while (more_ && queue_.size() < capacity) {
      const std::size_t room = capacity - queue_.size();
      auto fetched = hub_->fetch_(position_, room);
      if (!fetched) {
        // Only the kind: the message of a store error is not for the wire.
        error_ = error_line("cannot read the outbox (" + std::string(core::to_string(fetched.error().code)) +
                            "); reconnect and resume with since");
        return;
      }
      std::size_t taken = 0;
      for (auto& line : *fetched) {
        if (taken == room) break;
        if (line.seq <= position_) continue;  // the stream only moves forward
        if (line.seq > hub_->head_seq_) {
          more_ = false;  // committed, but not yet announced as on disk: sent after the publish
          break;
        }
        position_ = line.seq;
        queue_.push_back(std::move(line));
        ++taken;
      }
      // Fewer than asked: caught up until the next publish (or since). A fetch that did not move
      // forward also stops here rather than asking again and again.
      if (fetched->size() < room || taken == 0) more_ = false;
    }
  }

  awaitable<void> read_loop() {
    std::array<char, 4096> buf;
    std::string partial;
    for (;;) {
      boost::system::error_code ec;
      const std::size_t n =
          co_await socket_.async_read_some(asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
      if (ec) {
        // EOF included: a subscriber that hangs up should free its slot now, not at the next
        // failed write, which on a quiet ward can be a heartbeat interval away.
        if (!error_) close();
        co_return;
      }
      std::string_view data(buf.data(), n);
      while (!data.empty()) {
        const auto nl = data.find('\n');
        partial.append(data.substr(0, nl));
        if (partial.size() > options().max_request_bytes) {
          fail("request too long (limit " + std::to_string(options().max_request_bytes) + " bytes)");
          co_return;
        }
        if (nl == std::string_view::npos) break;
        data.remove_prefix(nl + 1);
        if (!partial.empty() && partial.back() == '\r') partial.pop_back();
        if (!handle_request(partial)) co_return;
        partial.clear();
      }
    }
  }

  // A blank line is ignored; {"since":SEQ} restarts the stream; anything else ends the session.
  bool handle_request(const std::string& line) {
    if (line.find_first_not_of(" \t") == std::string::npos) return true;
    const auto request = Json::parse(line, nullptr, false);
    if (request.is_discarded() || !request.is_object()) {
      fail("a request must be a JSON object such as {\"since\":0}");
      return false;
    }
    const auto since = request.find("since");
    if (since == request.end() || !since->is_number_unsigned() ||
        since->get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      fail("a request needs \"since\": a sequence number, 0 or more");
      return false;
    }
    since_ = static_cast<std::int64_t>(since->get<std::uint64_t>());
    wake_.cancel();
    return true;
  }

  // Called by the read loop, which then stops: the write loop sends the error line after whatever
  // write is in flight, then closes.
  void fail(const std::string& message) {
    error_ = error_line(message);
    reading_done_ = true;
    wake_.cancel();
  }

  // Closing a socket with unread input sends a reset, which can destroy the error line still on
  // its way to the peer. So: half-close, then read and drop what the peer still sends, bounded in
  // time and bytes. Only once the read loop has stopped (no two reads at once).
  awaitable<void> drain() {
    boost::system::error_code ec;
    socket_.shutdown(Socket::shutdown_send, ec);
    write_deadline_ = Clock::now() + kDrainTime;  // the watchdog closes the socket then
    if (write_deadline_ < watchdog_.expiry()) watchdog_.cancel();
    std::array<char, 4096> buf;
    std::size_t dropped = 0;
    while (!closed_ && dropped < kDrainBytes) {
      dropped += co_await socket_.async_read_some(asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
      if (ec) break;
    }
  }

  std::string hello_line() const {
    return Json{{"type", "hello"}, {"seq", position_}, {"heartbeat_s", heartbeat_seconds(options().heartbeat)}}.dump() +
           "\n";
  }

  std::string heartbeat_line() const {
    const std::int64_t now_s_ms = core::wall_clock_ms() / 1000 * 1000;  // whole seconds are enough
    return Json{{"type", "heartbeat"}, {"seq", hub_->head_seq_}, {"time", core::format_utc(now_s_ms)}}.dump() + "\n";
  }

  // A write that does not finish within write_timeout closes the session (see watchdog()).
  awaitable<bool> write(std::string data) {
    boost::system::error_code ec;
    write_deadline_ = Clock::now() + options().write_timeout;
    if (write_deadline_ < watchdog_.expiry()) watchdog_.cancel();  // re-arm for the nearer deadline
    co_await asio::async_write(socket_, asio::buffer(data), asio::redirect_error(use_awaitable, ec));
    write_deadline_ = Clock::time_point::max();
    co_return !ec && !closed_;
  }

  awaitable<void> watchdog() {
    while (!closed_) {
      watchdog_.expires_at(write_deadline_);
      boost::system::error_code ec;
      co_await watchdog_.async_wait(asio::redirect_error(use_awaitable, ec));
      if (closed_) co_return;
      if (Clock::now() >= write_deadline_) {
        close();  // the subscriber stopped reading; it resumes with since when it comes back
        co_return;
      }
    }
  }

  Socket socket_;
  asio::steady_timer wake_;      // the write loop sleeps on it; cancelled to wake it
  asio::steady_timer watchdog_;  // expires at write_deadline_
  std::shared_ptr<Hub> hub_;
  std::int64_t position_;              // the newest seq taken from the outbox for this subscriber
  std::deque<OutboxLine> queue_;       // taken but not yet written; at most max_queued_lines
  bool more_ = false;                  // the outbox may hold events after position_
  bool reading_done_ = false;          // the read loop has stopped after a bad request
  std::optional<std::int64_t> since_;  // a restart requested by the subscriber
  std::optional<std::string> error_;   // the last line to write before closing
  Clock::time_point write_deadline_ = Clock::time_point::max();
  bool closed_ = false;
};

void Hub::publish(std::int64_t head_seq) {
  if (head_seq <= head_seq_) return;
  head_seq_ = head_seq;
  for (const auto& session : sessions_) session->notify(head_seq);
}

void Hub::stop() {
  stopping_ = true;
  boost::system::error_code ec;
  tcp_acceptor_.close(ec);
  unix_acceptor_.close(ec);
  // Dropping the set breaks the Hub <-> Session cycle even if the io_context never runs again.
  auto sessions = std::move(sessions_);
  sessions_.clear();
  for (const auto& session : sessions) session->close();
  remove_socket_file(socket_file_);
}

template <typename Protocol>
awaitable<void> Hub::accept_loop(typename Protocol::acceptor& acceptor) {
  auto self = shared_from_this();
  while (!stopping_) {
    boost::system::error_code ec;
    auto socket = co_await acceptor.async_accept(asio::redirect_error(use_awaitable, ec));
    if (stopping_) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      asio::steady_timer pause(io_, kAcceptPause);
      co_await pause.async_wait(asio::redirect_error(use_awaitable, ec));
      continue;
    }
    if (sessions_.size() >= options_.max_subscribers) {
      asio::co_spawn(io_, refuse(std::move(socket), error_line("too many subscribers")), asio::detached);
      continue;
    }
    auto session = std::make_shared<SocketSession<Protocol>>(std::move(socket), self);
    sessions_.insert(session);
    asio::co_spawn(
        io_,
        [self, session]() -> awaitable<void> {
          co_await session->run();
          self->sessions_.erase(session);
        },
        asio::detached);
  }
}

}  // namespace

// The pimpl is the Hub, which the sessions (in the anonymous namespace) can name.
struct SubscriberServer::State : Hub {
  using Hub::Hub;
};

SubscriberServer::SubscriberServer(asio::io_context& io, SubscriberServerOptions options, FetchFn fetch,
                                   std::int64_t head_seq)
    : state_(std::make_shared<State>(io, std::move(options), std::move(fetch), head_seq)) {}

// Like stop(): on the server's thread, or once the io_context no longer runs.
SubscriberServer::~SubscriberServer() {
  state_->stop();
}

core::Result<void> SubscriberServer::start() {
  State& s = *state_;
  assert(!s.started_ && "start() is called once");
  const auto& options = s.options_;
  boost::system::error_code ec;
  if (options.tcp) {
    const auto address = asio::ip::make_address(options.address, ec);
    if (ec) return core::fail(core::ErrorCode::config, "invalid subscriber address '" + options.address + "'");
    const tcp::endpoint endpoint(address, options.port);
    s.tcp_acceptor_.open(endpoint.protocol(), ec);
    if (!ec) s.tcp_acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) s.tcp_acceptor_.bind(endpoint, ec);
    if (!ec) s.tcp_acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      const std::string why = ec.message();
      s.tcp_acceptor_.close(ec);
      return core::fail(core::ErrorCode::io, "cannot listen for subscribers on " + options.address + ":" +
                                                 std::to_string(options.port) + ": " + why);
    }
    tcp_port_ = s.tcp_acceptor_.local_endpoint().port();
  }
  if (!options.unix_path.empty()) {
    auto file = listen_unix(s.unix_acceptor_, options.unix_path);
    if (!file) {
      s.tcp_acceptor_.close(ec);
      tcp_port_ = 0;
      return std::unexpected(file.error());
    }
    s.socket_file_ = std::move(*file);
  }
  s.started_ = true;
  // The lambdas hold the State for as long as the loops run.
  if (s.tcp_acceptor_.is_open()) {
    asio::co_spawn(
        s.io_, [state = state_] { return state->accept_loop<tcp>(state->tcp_acceptor_); }, asio::detached);
  }
  if (s.unix_acceptor_.is_open()) {
    asio::co_spawn(
        s.io_, [state = state_] { return state->accept_loop<UnixProtocol>(state->unix_acceptor_); }, asio::detached);
  }
  return {};
}

void SubscriberServer::publish(std::int64_t head_seq) {
  asio::post(state_->io_, [weak = std::weak_ptr<State>(state_), head_seq] {
    if (auto state = weak.lock()) state->publish(head_seq);
  });
}

void SubscriberServer::stop() {
  state_->stop();
}

}  // namespace iraewatch::net
