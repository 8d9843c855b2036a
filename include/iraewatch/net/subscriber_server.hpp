#pragma once
// Alert subscribers over TCP and a Unix-domain socket: one JSON line per outbox event, pulled
// from the durable outbox through `fetch`, so that a slow or disconnected subscriber never slows
// ingest and loses nothing. It knows nothing of what a line means beyond its sequence number.
//
// Protocol (docs/alerts.md, "Subscribing"): on connect the server writes
//   {"type":"hello","seq":HEAD,"heartbeat_s":N}
// and then streams every event with seq > HEAD as it is committed. The subscriber may send
//   {"since":SEQ}
// at any time to (re)start the stream just after SEQ (0: from the first event); events it had
// already received may then come again, and it drops repeats by seq. Every heartbeat interval the
// server writes {"type":"heartbeat","seq":HEAD,"time":"RFC 3339 UTC"} so that a receiver can
// tell a dead daemon from a quiet ward. A request that is not such an object gets
// {"type":"error","error":"..."} and the connection is closed; so does a request line longer than
// max_request_bytes.

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

struct OutboxLine {
  std::int64_t seq = 0;
  std::string line;  // one JSON object, without the newline
};

struct SubscriberServerOptions {
  bool tcp = true;
  std::string address = "127.0.0.1";
  std::uint16_t port = 7471;  // 0 picks a free port (see tcp_port())
  std::string unix_path;      // empty: no Unix-domain socket; created mode 0600, a stale file replaced
  std::size_t max_subscribers = 32;
  std::size_t max_queued_lines = 1024;  // per subscriber: past it, the rest waits in the outbox
  std::size_t max_request_bytes = 4096;
  std::chrono::milliseconds heartbeat = std::chrono::seconds(30);
  std::chrono::milliseconds write_timeout = std::chrono::seconds(30);  // a stuck subscriber is closed
};

// Reads at most `limit` outbox events with seq > after_seq, oldest first. Called on the server's
// thread; may block briefly (a database read).
using FetchFn = std::function<core::Result<std::vector<OutboxLine>>(std::int64_t after_seq, std::size_t limit)>;

class SubscriberServer {
 public:
  // `head_seq`: the newest seq in the outbox at start-up.
  SubscriberServer(boost::asio::io_context& io, SubscriberServerOptions options, FetchFn fetch, std::int64_t head_seq);
  ~SubscriberServer();

  // Binds the configured sockets and starts accepting. An Error when one cannot be bound.
  core::Result<void> start();
  std::uint16_t tcp_port() const { return tcp_port_; }
  // Thread-safe: events up to `head_seq` are committed to the outbox; wakes every subscriber.
  void publish(std::int64_t head_seq);
  // Stops accepting and closes every subscriber. Call on the server's thread (or before run()).
  void stop();

  class Session;

 private:
  struct State;
  std::shared_ptr<State> state_;
  std::uint16_t tcp_port_ = 0;
};

}  // namespace iraewatch::net
