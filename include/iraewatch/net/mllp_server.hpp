#pragma once
// An MLLP listener (HL7 v2 Minimal Lower Layer Protocol): frames are 0x0B, the message, 0x1C
// 0x0D. It knows nothing of HL7 beyond framing: each complete frame goes to the handler, and the
// handler's reply (an ACK message) is written back framed, in order, exactly one per frame.
// Tolerates stray bytes before 0x0B (skipped and counted) and a missing final 0x0D (0x1C alone
// ends a frame when the next byte is 0x0B, EOF, or does not arrive within a short grace period).
// Serves persistent and one-shot connections. Limits: frame size (past it, the frame is answered
// with the handler's too_large reply and the connection closed), idle timeout, connection count.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "iraewatch/core/error.hpp"
#include "iraewatch/net/asio.hpp"

namespace iraewatch::net {

struct MllpServerOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 2575;  // 0 picks a free port (see port())
  std::size_t max_frame_bytes = 4 << 20;
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(300);
  std::chrono::milliseconds write_timeout = std::chrono::seconds(30);
  std::size_t max_connections = 64;
  // Frames handed to the handler and not yet answered, per connection: at most this many, and at
  // most this many bytes of them (a single frame is always allowed). Senders that pipeline get
  // their messages committed in larger groups; the bytes bound memory per connection.
  std::size_t max_in_flight = 64;
  std::size_t max_in_flight_bytes = 8 << 20;
};

struct MllpFrame {
  std::string peer;          // "address:port"
  std::uint64_t number = 0;  // 1-based within the connection
  std::string payload;       // the message bytes, without the framing
  bool too_large = false;    // payload is only a prefix; the connection closes after the reply
};

// The reply payload (unframed); empty writes nothing.
using MllpReplyFn = std::move_only_function<void(std::string)>;
// Called on the server's thread; may complete `reply` later from any thread, exactly once.
using MllpHandler = std::function<void(MllpFrame, MllpReplyFn)>;

class MllpServer {
 public:
  MllpServer(boost::asio::io_context& io, MllpServerOptions options, MllpHandler handler);
  ~MllpServer();

  core::Result<void> start();
  std::uint16_t port() const { return port_; }
  // Stops accepting; open connections finish the frames they are handling, write the replies
  // and close.
  void stop();

  class Session;

 private:
  struct State;
  std::shared_ptr<State> state_;
  std::uint16_t port_ = 0;
};

}  // namespace iraewatch::net
