#include "iraewatch/net/mllp_server.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <deque>
#include <string_view>

namespace iraewatch::net {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr char kStartBlock = '\x0b';
constexpr char kEndBlock = '\x1c';
constexpr char kCarriageReturn = '\x0d';

// How much of an over-long frame reaches the handler: enough for the MSH segment, whose control
// id the error ACK echoes.
constexpr std::size_t kKeptPrefixBytes = 64 * 1024;
// A 0x0D that comes this soon after a frame's 0x1C is the frame's trailer; later, a stray byte.
constexpr std::chrono::milliseconds kTrailerGrace{200};
// After stop(), how long sessions have to write the replies they owe before they are closed: a
// peer that does not read does not hold up the daemon's exit.
constexpr std::chrono::seconds kStopGrace{5};
// Back-off after a failed accept (e.g. out of file descriptors), instead of spinning.
constexpr std::chrono::milliseconds kAcceptPause{100};
// After the reply to an over-long frame, how long and how much of what the peer still sends is
// read and dropped before closing (see Session::drain()).
constexpr std::chrono::seconds kDrainTime{1};
constexpr std::size_t kDrainBytes = 1 << 20;

struct ParsedFrame {
  std::string payload;
  bool too_large = false;
};

// MLLP framing over a byte stream, with no IO: fed what each read returns, it appends the frames
// that read completed. HL7 payloads never contain 0x1C, so a frame ends at its 0x1C whatever
// follows: the trailing 0x0D is consumed when it is there, and anything else up to the next 0x0B
// is skipped. A 0x0B inside a frame is kept as payload (the handler then sees a malformed message
// and says so in its ACK) rather than silently dropping what came before it.
class FrameParser {
 public:
  explicit FrameParser(std::size_t max_frame_bytes)
      : max_frame_bytes_(max_frame_bytes), kept_prefix_bytes_(std::min(max_frame_bytes, kKeptPrefixBytes)) {}

  // `quiet`: the read that returned `data` waited longer than kTrailerGrace for it, so a 0x0D
  // that opens it is not the trailer of a frame that ended the previous read.
  void feed(std::string_view data, bool quiet, std::deque<ParsedFrame>& out) {
    if (state_ == State::after_end && !data.empty()) {
      if (data.front() == kCarriageReturn && !quiet) data.remove_prefix(1);
      state_ = State::between;
    }
    while (!data.empty() && state_ != State::overflow) {
      if (state_ == State::between) {
        const auto start = data.find(kStartBlock);
        skipped_bytes_ += std::min(start, data.size());
        if (start == std::string_view::npos) return;
        data.remove_prefix(start + 1);
        state_ = State::in_frame;
        continue;
      }
      const auto end = data.find(kEndBlock);
      const auto piece = data.substr(0, end);
      if (payload_.size() + piece.size() > max_frame_bytes_) {
        // Answered now, without reading the rest: the connection closes after the reply.
        if (payload_.size() < kept_prefix_bytes_)
          payload_.append(piece.substr(0, kept_prefix_bytes_ - payload_.size()));
        payload_.resize(std::min(payload_.size(), kept_prefix_bytes_));
        out.push_back({std::move(payload_), true});
        payload_.clear();
        state_ = State::overflow;
        return;
      }
      payload_.append(piece);
      if (end == std::string_view::npos) return;
      out.push_back({std::move(payload_), false});
      payload_.clear();
      data.remove_prefix(end + 1);
      if (data.empty()) {
        state_ = State::after_end;  // the 0x0D, if any, comes with the next read
      } else {
        if (data.front() == kCarriageReturn) data.remove_prefix(1);
        state_ = State::between;
      }
    }
  }

  // At EOF: a frame without its 0x1C is incomplete; it is dropped and its bytes count as skipped.
  void finish() {
    if (state_ == State::in_frame) skipped_bytes_ += 1 + payload_.size();
    payload_.clear();
    state_ = State::between;
  }

  bool overflowed() const { return state_ == State::overflow; }
  // Bytes outside any frame: before a 0x0B, after a 0x1C, or in a frame cut short by EOF.
  std::uint64_t skipped_bytes() const { return skipped_bytes_; }

 private:
  enum class State {
    between,    // skipping to the next 0x0B
    in_frame,   // collecting the payload up to 0x1C
    after_end,  // the last read ended just after a 0x1C
    overflow,   // a frame passed max_frame_bytes: nothing more is parsed
  };

  const std::size_t max_frame_bytes_;
  const std::size_t kept_prefix_bytes_;
  State state_ = State::between;
  std::string payload_;
  std::uint64_t skipped_bytes_ = 0;
};

std::string framed(std::string_view reply) {
  std::string out;
  out.reserve(reply.size() + 3);
  out += kStartBlock;
  out += reply;
  out += kEndBlock;
  out += kCarriageReturn;
  return out;
}

// What the sessions share with the server. Sessions hold it, not the State, so that a session
// never keeps the State (and with it the set of sessions) alive.
struct MllpConfig {
  MllpServerOptions options;
  MllpHandler handler;
};

}  // namespace

// One connection. Like LineServer's sessions, reading and replying run side by side: the read
// loop hands up to max_in_flight frames to the handler while the reply loop writes the replies
// back in frame order as they complete; a watchdog enforces the idle, write and stop deadlines.
class MllpServer::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<const MllpConfig> config)
      : socket_(std::move(socket)),
        watchdog_timer_(socket_.get_executor()),
        read_wake_(socket_.get_executor()),
        reply_wake_(socket_.get_executor()),
        config_(std::move(config)),
        max_in_flight_(std::max<std::size_t>(config_->options.max_in_flight, 1)) {
    boost::system::error_code ec;
    // An ACK is small and the sender waits for it: do not let Nagle hold it back.
    socket_.set_option(tcp::no_delay(true), ec);
    auto ep = socket_.remote_endpoint(ec);
    peer_ = ec ? "unknown" : ep.address().to_string() + ":" + std::to_string(ep.port());
  }

  awaitable<void> run() {
    auto self = shared_from_this();
    const auto ex = socket_.get_executor();
    last_activity_ = Clock::now();
    asio::co_spawn(
        ex, [self] { return self->watchdog(); }, asio::detached);
    asio::co_spawn(
        ex, [self] { return self->reply_loop(); }, asio::detached);
    try {
      co_await read_loop();
    } catch (const std::exception&) {
      // A throwing handler or a broken socket ends only this session.
    }
    reading_done_ = true;
    wake(reply_wake_);
    while (!replies_done_) co_await wait(read_wake_);
    if (linger_ && socket_.is_open()) co_await drain();
    close();
  }

  // Stops reading; frames already handed over are still answered, within kStopGrace.
  void stop() {
    if (stopping_) return;
    stopping_ = true;
    boost::system::error_code ec;
    if (reading_) socket_.shutdown(tcp::socket::shutdown_receive, ec);
    close_deadline_ = std::min(close_deadline_, Clock::now() + kStopGrace);
    nudge_watchdog();
    wake(read_wake_);
  }

 private:
  // One frame handed to the handler, and its reply once it comes back.
  struct Pending {
    bool done = false;
    std::size_t bytes = 0;  // the frame's size, counted against max_in_flight_bytes until answered
    std::string reply;
  };

  // The handler's side of one frame. Completes it on the session's thread, once; dropped without
  // a call (a handler that breaks its contract), it counts as an empty reply, so that the
  // session does not wait for it for ever. Like the session it holds, it must not outlive the
  // io_context.
  class Reply {
   public:
    Reply(std::shared_ptr<Session> session, std::shared_ptr<Pending> pending)
        : session_(std::move(session)), pending_(std::move(pending)) {}
    Reply(Reply&&) = default;
    Reply& operator=(Reply&&) = delete;
    ~Reply() { complete({}); }

    void operator()(std::string reply) { complete(std::move(reply)); }

   private:
    void complete(std::string reply) {
      auto pending = std::move(pending_);
      auto session = std::move(session_);
      if (!pending) return;  // moved from, or already called
      const auto ex = session->socket_.get_executor();
      asio::post(ex, [session = std::move(session), pending = std::move(pending), reply = std::move(reply)]() mutable {
        pending->reply = std::move(reply);
        pending->done = true;
        wake(session->reply_wake_);
      });
    }

    std::shared_ptr<Session> session_;
    std::shared_ptr<Pending> pending_;
  };

  static awaitable<void> wait(asio::steady_timer& t) {
    t.expires_at(Clock::time_point::max());
    boost::system::error_code ec;
    co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
  }
  static void wake(asio::steady_timer& t) { t.cancel(); }

  void submit(ParsedFrame frame) {
    auto pending = std::make_shared<Pending>();
    pending->bytes = frame.payload.size();
    pending_bytes_ += pending->bytes;
    pending_.push_back(pending);
    config_->handler(MllpFrame{peer_, ++frame_number_, std::move(frame.payload), frame.too_large},
                     Reply(shared_from_this(), std::move(pending)));
  }

  awaitable<void> read_loop() {
    std::array<char, 64 * 1024> buf;
    FrameParser parser(config_->options.max_frame_bytes);
    std::deque<ParsedFrame> frames;
    for (;;) {
      if (stopping_ || replies_done_) co_return;
      boost::system::error_code ec;
      reading_ = true;
      nudge_watchdog();  // the idle deadline applies again
      const auto started = Clock::now();
      const std::size_t n =
          co_await socket_.async_read_some(asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
      reading_ = false;
      const auto now = Clock::now();
      // Timed out, stopping, or the reply loop gave up: frames that have not been handed over yet
      // are not, and the sender resends them unacknowledged.
      if (timed_out_ || stopping_ || replies_done_) co_return;
      if (ec == asio::error::eof) {
        parser.finish();
        co_return;  // the replies still owed go out, then the session closes
      }
      if (ec) {
        close();  // reset by the peer: nobody is left to read the replies
        co_return;
      }
      last_activity_ = now;
      parser.feed(std::string_view(buf.data(), n), now - started > kTrailerGrace, frames);
      while (!frames.empty()) {
        // Backpressure: past max_in_flight unanswered frames, or max_in_flight_bytes of them (one
        // frame is always allowed), nothing more is read or handed over.
        while ((pending_.size() >= max_in_flight_ ||
                (!pending_.empty() && pending_bytes_ >= config_->options.max_in_flight_bytes)) &&
               !stopping_ && !replies_done_)
          co_await wait(read_wake_);
        if (stopping_ || replies_done_) co_return;
        submit(std::move(frames.front()));
        frames.pop_front();
      }
      if (parser.overflowed()) {
        linger_ = true;  // the rest of the stream is not read: drain it briefly before closing
        co_return;
      }
    }
  }

  awaitable<void> reply_loop() {
    while (socket_.is_open()) {
      std::string out;
      bool answered = false;
      while (!pending_.empty() && pending_.front()->done) {
        const auto& reply = pending_.front()->reply;
        if (!reply.empty()) out += framed(reply);  // an empty reply writes nothing but still counts
        pending_bytes_ -= pending_.front()->bytes;
        pending_.pop_front();
        answered = true;
      }
      if (answered) wake(read_wake_);
      if (!out.empty() && !co_await write(std::move(out))) {
        close();  // the peer does not read, or is gone: give up on it
        break;
      }
      if (answered) {
        last_activity_ = Clock::now();  // idleness counts from the last reply
        nudge_watchdog();
        continue;  // more replies may have completed meanwhile
      }
      if (reading_done_ && pending_.empty()) break;
      co_await wait(reply_wake_);
    }
    replies_done_ = true;
    boost::system::error_code ec;
    if (reading_) socket_.shutdown(tcp::socket::shutdown_receive, ec);
    wake(read_wake_);
  }

  // A write that does not finish within write_timeout closes the session (see watchdog()).
  awaitable<bool> write(std::string data) {
    boost::system::error_code ec;
    write_deadline_ = Clock::now() + config_->options.write_timeout;
    nudge_watchdog();
    co_await asio::async_write(socket_, asio::buffer(data), asio::redirect_error(use_awaitable, ec));
    write_deadline_ = Clock::time_point::max();
    co_return !ec;
  }

  // Closing a socket with unread input sends a reset, which can destroy the last reply on its way
  // to the peer. So: half-close, then read and drop what the peer still sends, bounded in time and
  // bytes. Only once the read loop has stopped (no two reads at once).
  awaitable<void> drain() {
    boost::system::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    close_deadline_ = std::min(close_deadline_, Clock::now() + kDrainTime);
    nudge_watchdog();
    std::array<char, 4096> buf;
    std::size_t dropped = 0;
    while (socket_.is_open() && dropped < kDrainBytes) {
      dropped += co_await socket_.async_read_some(asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
      if (ec) break;
    }
  }

  // The idle timeout runs only while the session waits for bytes with nothing in flight or being
  // written: a sender waiting for a slow ACK is not idle.
  Clock::time_point idle_deadline() const {
    const bool writing = write_deadline_ != Clock::time_point::max();
    if (!reading_ || !pending_.empty() || writing) return Clock::time_point::max();
    return last_activity_ + config_->options.idle_timeout;
  }

  Clock::time_point next_deadline() const { return std::min({idle_deadline(), write_deadline_, close_deadline_}); }

  // Re-arms the watchdog when a deadline has come nearer than the one it waits for.
  void nudge_watchdog() {
    if (next_deadline() < watchdog_timer_.expiry()) watchdog_timer_.cancel();
  }

  awaitable<void> watchdog() {
    while (socket_.is_open()) {
      watchdog_timer_.expires_at(next_deadline());
      boost::system::error_code ec;
      co_await watchdog_timer_.async_wait(asio::redirect_error(use_awaitable, ec));
      if (!socket_.is_open()) co_return;
      const auto now = Clock::now();
      if (now >= write_deadline_ || now >= close_deadline_) {
        close();  // a reply did not go out in time, or the server is stopping
        co_return;
      }
      if (now >= idle_deadline() && !timed_out_) {
        timed_out_ = true;  // ends the read; with nothing owed, the session closes
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
  asio::steady_timer reply_wake_;  // wakes the reply loop when a frame is answered
  const std::shared_ptr<const MllpConfig> config_;
  const std::size_t max_in_flight_;
  std::size_t pending_bytes_ = 0;  // the sizes of the frames in pending_
  std::string peer_;
  std::uint64_t frame_number_ = 0;
  std::deque<std::shared_ptr<Pending>> pending_;  // handed over, reply not yet taken for writing
  Clock::time_point last_activity_;               // the last bytes read or reply written
  Clock::time_point write_deadline_ = Clock::time_point::max();
  Clock::time_point close_deadline_ = Clock::time_point::max();
  bool reading_ = false;
  bool reading_done_ = false;
  bool replies_done_ = false;
  bool stopping_ = false;
  bool timed_out_ = false;
  bool linger_ = false;  // reading stopped before EOF: drain before closing
};

// The pimpl. The accept loop holds it, so it may outlive the MllpServer for as long as the
// io_context takes to wind the loop down.
struct MllpServer::State : std::enable_shared_from_this<State> {
  State(asio::io_context& io, MllpServerOptions options, MllpHandler handler)
      : io_(io),
        config_(std::make_shared<const MllpConfig>(MllpConfig{std::move(options), std::move(handler)})),
        acceptor_(io) {}

  awaitable<void> accept_loop();
  void stop();

  asio::io_context& io_;
  const std::shared_ptr<const MllpConfig> config_;
  tcp::acceptor acceptor_;
  bool started_ = false;
  bool stopping_ = false;
  std::set<std::shared_ptr<Session>> sessions_;
};

void MllpServer::State::stop() {
  stopping_ = true;
  boost::system::error_code ec;
  acceptor_.close(ec);
  for (const auto& session : sessions_) session->stop();
}

awaitable<void> MllpServer::State::accept_loop() {
  auto self = shared_from_this();
  while (!stopping_) {
    boost::system::error_code ec;
    tcp::socket socket = co_await acceptor_.async_accept(asio::redirect_error(use_awaitable, ec));
    if (stopping_) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      asio::steady_timer pause(io_, kAcceptPause);
      co_await pause.async_wait(asio::redirect_error(use_awaitable, ec));
      continue;
    }
    if (sessions_.size() >= config_->options.max_connections) {
      // MLLP has no way to say why without a message to answer: just close.
      socket.shutdown(tcp::socket::shutdown_both, ec);
      socket.close(ec);
      continue;
    }
    auto session = std::make_shared<Session>(std::move(socket), config_);
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

MllpServer::MllpServer(asio::io_context& io, MllpServerOptions options, MllpHandler handler)
    : state_(std::make_shared<State>(io, std::move(options), std::move(handler))) {}

// Like stop(): on the server's thread, or once the io_context no longer runs.
MllpServer::~MllpServer() {
  state_->stop();
}

core::Result<void> MllpServer::start() {
  State& s = *state_;
  assert(!s.started_ && "start() is called once");
  const auto& options = s.config_->options;
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(options.address, ec);
  if (ec) return core::fail(core::ErrorCode::config, "invalid MLLP listen address '" + options.address + "'");
  const tcp::endpoint endpoint(address, options.port);
  s.acceptor_.open(endpoint.protocol(), ec);
  if (!ec) s.acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) s.acceptor_.bind(endpoint, ec);
  if (!ec) s.acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    const std::string why = ec.message();
    s.acceptor_.close(ec);
    return core::fail(core::ErrorCode::io,
                      "cannot listen for MLLP on " + options.address + ":" + std::to_string(options.port) + ": " + why);
  }
  port_ = s.acceptor_.local_endpoint().port();
  s.started_ = true;
  asio::co_spawn(
      s.io_, [state = state_] { return state->accept_loop(); }, asio::detached);
  return {};
}

void MllpServer::stop() {
  state_->stop();
}

}  // namespace iraewatch::net
