#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <future>
#include <mutex>
#include <optional>
#include <regex>
#include <stdexcept>
#include <thread>

#include <nlohmann/json.hpp>

#include "iraewatch/net/subscriber_server.hpp"
#include "support/daemon.hpp"

using namespace iraewatch;
using Json = nlohmann::json;
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

// Runs an io_context on its own thread. Declare it after the servers it runs: it is destroyed
// first, so a server is destroyed only once nothing runs on its thread (the servers' contract).
class IoThread {
 public:
  explicit IoThread(asio::io_context& io) : io_(io), guard_(asio::make_work_guard(io)), thread_([&io] { io.run(); }) {}
  ~IoThread() {
    guard_.reset();
    io_.stop();
    thread_.join();
  }
  IoThread(const IoThread&) = delete;
  IoThread& operator=(const IoThread&) = delete;

  // Runs `f` on the io thread and waits (bounded) until it has run.
  template <typename F>
  void run(F f) {
    std::promise<void> done;
    asio::post(io_, [&] {
      f();
      done.set_value();
    });
    REQUIRE(done.get_future().wait_for(10s) == std::future_status::ready);
  }

 private:
  asio::io_context& io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::thread thread_;
};

// The durable outbox, in memory: appended to by the "ingest" thread, read by the server's thread.
class FakeOutbox {
 public:
  // Appends `count` events (each padded by `pad` bytes) and returns the new head.
  std::int64_t append(int count, std::size_t pad = 0) {
    std::lock_guard lock(mutex_);
    for (int i = 0; i < count; ++i) {
      const std::int64_t seq = static_cast<std::int64_t>(lines_.size()) + 1;
      lines_.push_back({seq, Json{{"type", "alert"}, {"seq", seq}, {"pad", std::string(pad, 'x')}}.dump()});
    }
    return static_cast<std::int64_t>(lines_.size());
  }

  net::FetchFn fetch_fn() {
    return [this](std::int64_t after, std::size_t limit) -> core::Result<std::vector<net::OutboxLine>> {
      std::lock_guard lock(mutex_);
      largest_limit_ = std::max(largest_limit_, limit);
      if (failing_) return core::fail(core::ErrorCode::store_unavailable, "database is locked");
      std::vector<net::OutboxLine> out;
      // seq n is at index n - 1
      highest_after_ = std::max(highest_after_, after);
      for (auto i = static_cast<std::size_t>(std::max<std::int64_t>(after, 0)); i < lines_.size() && out.size() < limit;
           ++i) {
        out.push_back(lines_[i]);
      }
      return out;
    };
  }

  void fail_fetches() {
    std::lock_guard lock(mutex_);
    failing_ = true;
  }
  // The largest after_seq asked for: how far the server has pulled.
  std::int64_t highest_after() {
    std::lock_guard lock(mutex_);
    return highest_after_;
  }
  std::size_t largest_limit() {
    std::lock_guard lock(mutex_);
    return largest_limit_;
  }

 private:
  std::mutex mutex_;
  std::vector<net::OutboxLine> lines_;
  std::size_t largest_limit_ = 0;
  std::int64_t highest_after_ = 0;
  bool failing_ = false;
};

// A blocking subscriber over TCP (127.0.0.1) or a Unix-domain socket, with a deadline on every read.
class Client {
 public:
  // `receive_buffer` > 0 shrinks SO_RCVBUF, so that a client that does not read fills up quickly.
  explicit Client(std::uint16_t port, int receive_buffer = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    if (receive_buffer > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd_);
      throw std::runtime_error("cannot connect to 127.0.0.1:" + std::to_string(port));
    }
  }
  explicit Client(const std::string& unix_path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, unix_path.c_str(), sizeof addr.sun_path - 1);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      if (fd_ >= 0) ::close(fd_);
      throw std::runtime_error("cannot connect to " + unix_path);
    }
  }
  ~Client() { ::close(fd_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void send(const std::string& bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw std::runtime_error("send failed");
      done += static_cast<std::size_t>(n);
    }
  }

  // The next line (without '\n'), or nullopt on EOF, error or when `timeout` passes.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout = 5s) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (const auto nl = buffer_.find('\n'); nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[65536];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return std::nullopt;
      buffer_.append(buf, static_cast<std::size_t>(n));
    }
  }

  Json read_json(std::chrono::milliseconds timeout = 5s) {
    const auto line = read_line(timeout);
    if (!line) return Json();  // null: nothing came
    return Json::parse(*line);
  }

  // Reads until `count` events (lines with a seq, heartbeats skipped) have come, or `timeout`.
  std::vector<std::int64_t> read_events(std::size_t count, std::chrono::milliseconds timeout = 10s) {
    std::vector<std::int64_t> seqs;
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (seqs.size() < count) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      const auto line = read_line(left);
      if (!line) break;
      const auto json = Json::parse(*line);
      if (json.at("type") == "heartbeat") continue;
      REQUIRE(json.at("type") == "alert");
      seqs.push_back(json.at("seq").get<std::int64_t>());
    }
    return seqs;
  }

  // True when the server closed the connection within `timeout`; lines read meanwhile are dropped.
  bool closed_by_peer(std::chrono::milliseconds timeout = 5s) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char buf[65536];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n == 0) return true;
      if (n < 0) return errno == ECONNRESET;
    }
    return false;
  }

 private:
  int fd_ = -1;
  std::string buffer_;
};

std::vector<std::int64_t> range(std::int64_t first, std::int64_t last) {
  std::vector<std::int64_t> out;
  for (auto s = first; s <= last; ++s) out.push_back(s);
  return out;
}

net::SubscriberServerOptions tcp_options() {
  net::SubscriberServerOptions options;
  options.port = 0;
  return options;
}

}  // namespace

TEST_CASE("01 a subscriber gets a hello with the head, then the events published after it", "[net]") {
  asio::io_context io;
  FakeOutbox outbox;
  const auto head = outbox.append(3);
  net::SubscriberServer server(io, tcp_options(), outbox.fetch_fn(), head);
  REQUIRE(server.start());
  REQUIRE(server.tcp_port() != 0);
  IoThread thread(io);

  Client client(server.tcp_port());
  const auto hello = client.read_json();
  CHECK(hello == Json::parse(R"({"type":"hello","seq":3,"heartbeat_s":30})"));

  server.publish(outbox.append(2));
  CHECK(client.read_events(2) == range(4, 5));
  server.publish(outbox.append(1));
  CHECK(client.read_events(1) == range(6, 6));
  CHECK_FALSE(client.read_line(200ms));  // nothing more, nothing twice
}

TEST_CASE("01b events past the published head are not sent until published (not yet on disk)", "[net]") {
  asio::io_context io;
  FakeOutbox outbox;
  net::SubscriberServer server(io, tcp_options(), outbox.fetch_fn(), outbox.append(3));
  REQUIRE(server.start());
  IoThread thread(io);

  Client client(server.tcp_port());
  CHECK(client.read_json().at("seq") == 3);
  outbox.append(4);  // 4..7 committed; only up to 5 announced as on disk
  server.publish(5);
  CHECK(client.read_events(2) == range(4, 5));
  CHECK_FALSE(client.read_line(200ms));
  client.send("{\"since\":0}\n");  // a replay stops at the head too
  CHECK(client.read_events(5) == range(1, 5));
  CHECK_FALSE(client.read_line(200ms));
  server.publish(7);
  CHECK(client.read_events(2) == range(6, 7));
}

TEST_CASE("02 since 0 replays the whole outbox in order, in batches of max_queued_lines", "[net]") {
  asio::io_context io;
  FakeOutbox outbox;
  const auto head = outbox.append(50);
  auto options = tcp_options();
  options.max_queued_lines = 8;
  net::SubscriberServer server(io, options, outbox.fetch_fn(), head);
  REQUIRE(server.start());
  IoThread thread(io);

  Client client(server.tcp_port());
  CHECK(client.read_json().at("seq") == 50);
  client.send("{\"since\":0}\n");
  CHECK(client.read_events(50) == range(1, 50));
  CHECK(outbox.largest_limit() <= 8);

  client.send("{\"since\":45}\r\n\n");  // CRLF and a blank line are fine
  CHECK(client.read_events(5) == range(46, 50));
  CHECK_FALSE(client.read_line(200ms));
}

TEST_CASE("03 a subscriber that comes back resumes with since and gets exactly what it missed", "[net]") {
  asio::io_context io;
  FakeOutbox outbox;
  net::SubscriberServer server(io, tcp_options(), outbox.fetch_fn(), outbox.append(10));
  REQUIRE(server.start());
  IoThread thread(io);

  std::int64_t last_seen = 0;
  {
    Client client(server.tcp_port());
    CHECK(client.read_json().at("seq") == 10);
    client.send("{\"since\":0}\n");
    const auto seqs = client.read_events(7);
    REQUIRE(seqs == range(1, 7));
    last_seen = seqs.back();
  }  // disconnects with 8..10 unread (or unsent)

  server.publish(outbox.append(5));
  Client client(server.tcp_port());
  CHECK(client.read_json().at("seq") == 15);
  client.send("{\"since\":" + std::to_string(last_seen) + "}\n");
  CHECK(client.read_events(8) == range(8, 15));
  CHECK_FALSE(client.read_line(300ms));
}

TEST_CASE("04 a slow subscriber loses nothing and holds back neither publish nor the outbox", "[net]") {
  testing::TempDir tmp;
  asio::io_context io;
  FakeOutbox outbox;
  auto options = tcp_options();
  options.max_queued_lines = 4;
  options.unix_path = tmp.file("subscribers.sock");
  net::SubscriberServer server(io, options, outbox.fetch_fn(), 0);
  REQUIRE(server.start());
  IoThread thread(io);

  // Over a Unix socket the kernel buffers only about 200 KiB (no autotuning), so the server is
  // surely held back; over TCP on loopback it may buffer megabytes.
  const bool over_unix = GENERATE(false, true);
  INFO((over_unix ? "Unix-domain socket" : "TCP"));
  auto client =
      over_unix ? std::make_unique<Client>(options.unix_path) : std::make_unique<Client>(server.tcp_port(), 4096);
  REQUIRE(client->read_json().at("seq") == 0);

  // 2000 events of ~1 KiB while the client does not read.
  constexpr int kEvents = 2000;
  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < kEvents; ++i) server.publish(outbox.append(1, 1000));
  const auto publishing = std::chrono::steady_clock::now() - started;
  CHECK(publishing < 2s);  // posts and appends only: the subscriber is not waited for

  std::this_thread::sleep_for(500ms);  // the subscriber still does not read
  CHECK(outbox.largest_limit() <= 4);
  if (over_unix) CHECK(outbox.highest_after() < kEvents);  // the rest waits in the outbox

  CHECK(client->read_events(kEvents, 20s) == range(1, kEvents));
  CHECK(outbox.largest_limit() <= 4);
  CHECK_FALSE(client->read_line(200ms));
}

TEST_CASE("05 a heartbeat tells a quiet ward from a dead daemon", "[net]") {
  asio::io_context io;
  FakeOutbox outbox;
  auto options = tcp_options();
  options.heartbeat = 100ms;
  net::SubscriberServer server(io, options, outbox.fetch_fn(), outbox.append(2));
  REQUIRE(server.start());
  IoThread thread(io);

  Client client(server.tcp_port());
  CHECK(client.read_json() == Json::parse(R"({"type":"hello","seq":2,"heartbeat_s":0.1})"));
  const auto started = std::chrono::steady_clock::now();
  const auto first = client.read_json(2s);
  REQUIRE(first.is_object());
  CHECK(first.at("type") == "heartbeat");
  CHECK(first.at("seq") == 2);
  CHECK(std::regex_match(first.at("time").get<std::string>(), std::regex(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)")));
  CHECK(std::chrono::steady_clock::now() - started < 1s);

  server.publish(outbox.append(1));
  const auto seqs = client.read_events(1);
  CHECK(seqs == range(3, 3));
  // The heartbeat carries the new head.
  for (int i = 0; i < 20; ++i) {
    const auto line = client.read_json(2s);
    REQUIRE(line.is_object());
    if (line.at("type") == "heartbeat") {
      CHECK(line.at("seq") == 3);
      break;
    }
  }
}

TEST_CASE("06 a malformed request gets an error line and the connection closes", "[net]") {
  asio::io_context io;
  FakeOutbox outbox;
  auto options = tcp_options();
  options.max_request_bytes = 64;
  net::SubscriberServer server(io, options, outbox.fetch_fn(), outbox.append(3));
  REQUIRE(server.start());
  IoThread thread(io);

  const std::vector<std::string> bad = {
      "hello\n", "[1,2]\n", "{}\n", "{\"since\":-1}\n", "{\"since\":\"0\"}\n", "{\"since\":1.5}\n", "{\"since\":0\n",
  };
  for (const auto& request : bad) {
    INFO(request);
    Client client(server.tcp_port());
    REQUIRE(client.read_json().at("type") == "hello");
    client.send(request);
    const auto error = client.read_json();
    REQUIRE(error.is_object());
    CHECK(error.at("type") == "error");
    CHECK(error.at("error").is_string());
    CHECK(client.closed_by_peer());
  }

  SECTION("so does a request longer than max_request_bytes") {
    Client client(server.tcp_port());
    REQUIRE(client.read_json().at("type") == "hello");
    client.send(std::string(20000, 'x'));  // no newline: the server does not wait for one
    const auto error = client.read_json();
    REQUIRE(error.is_object());
    CHECK(error.at("type") == "error");
    CHECK(error.at("error").get<std::string>().find("too long") != std::string::npos);
    CHECK(client.closed_by_peer());
  }
}

TEST_CASE("07 past max_subscribers a subscriber gets one error line and is closed", "[net]") {
  asio::io_context io;
  FakeOutbox outbox;
  auto options = tcp_options();
  options.max_subscribers = 2;
  net::SubscriberServer server(io, options, outbox.fetch_fn(), 0);
  REQUIRE(server.start());
  IoThread thread(io);

  auto first = std::make_unique<Client>(server.tcp_port());
  Client second(server.tcp_port());
  REQUIRE(first->read_json().at("type") == "hello");
  REQUIRE(second.read_json().at("type") == "hello");
  {
    Client third(server.tcp_port());
    CHECK(third.read_line() == R"({"type":"error","error":"too many subscribers"})");
    CHECK(third.closed_by_peer());
  }

  first.reset();  // frees a slot, as soon as the server notices
  bool admitted = false;
  for (int attempt = 0; attempt < 50 && !admitted; ++attempt) {
    Client again(server.tcp_port());
    const auto line = again.read_json();
    admitted = line.is_object() && line.at("type") == "hello";
    if (!admitted) std::this_thread::sleep_for(50ms);
  }
  CHECK(admitted);
}

TEST_CASE("08 a subscriber that stops reading is closed after write_timeout", "[net]") {
  asio::io_context io;
  FakeOutbox outbox;
  auto options = tcp_options();
  options.max_subscribers = 1;
  options.write_timeout = 300ms;
  net::SubscriberServer server(io, options, outbox.fetch_fn(), 0);
  REQUIRE(server.start());
  IoThread thread(io);

  Client stuck(server.tcp_port(), 4096);
  REQUIRE(stuck.read_json().at("type") == "hello");
  server.publish(outbox.append(8000, 1000));  // ~8 MB: more than the socket buffers hold

  // Its slot comes free once the server gives up on it.
  bool admitted = false;
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (!admitted && std::chrono::steady_clock::now() < until) {
    Client next(server.tcp_port());
    const auto line = next.read_json();
    admitted = line.is_object() && line.at("type") == "hello";
    if (!admitted) std::this_thread::sleep_for(100ms);
  }
  CHECK(admitted);
}

TEST_CASE("09 an outbox that cannot be read ends the subscriber with an error line", "[net]") {
  asio::io_context io;
  FakeOutbox outbox;
  net::SubscriberServer server(io, tcp_options(), outbox.fetch_fn(), outbox.append(3));
  REQUIRE(server.start());
  IoThread thread(io);

  Client client(server.tcp_port());
  REQUIRE(client.read_json().at("type") == "hello");
  outbox.fail_fetches();
  client.send("{\"since\":0}\n");
  const auto error = client.read_json();
  REQUIRE(error.is_object());
  CHECK(error.at("type") == "error");
  // The store's own message (which might name a record) does not reach the wire.
  CHECK(error.at("error").get<std::string>().find("database is locked") == std::string::npos);
  CHECK(client.closed_by_peer());
}

TEST_CASE("10 subscribers on a Unix-domain socket: mode 0600, stale files replaced, live ones kept", "[net]") {
  testing::TempDir tmp;
  const std::string path = tmp.file("subscribers.sock");
  asio::io_context io;
  FakeOutbox outbox;
  auto options = tcp_options();
  options.tcp = false;
  options.unix_path = path;

  SECTION("a stale socket file is replaced") {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    ::close(fd);  // the file stays, nobody listens: what a crashed daemon leaves
  }

  auto server = std::make_unique<net::SubscriberServer>(io, options, outbox.fetch_fn(), outbox.append(4));
  REQUIRE(server->start());
  CHECK(server->tcp_port() == 0);
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK((st.st_mode & 0777) == 0600);

  {
    net::SubscriberServer second(io, options, outbox.fetch_fn(), 4);
    const auto started = second.start();
    REQUIRE_FALSE(started);
    CHECK(started.error().code == core::ErrorCode::io);
  }
  REQUIRE(::stat(path.c_str(), &st) == 0);  // the refused second server did not take it away

  {
    IoThread thread(io);
    Client client(path);
    CHECK(client.read_json() == Json::parse(R"({"type":"hello","seq":4,"heartbeat_s":30})"));
    client.send("{\"since\":1}\n");
    CHECK(client.read_events(3) == range(2, 4));
    server->publish(outbox.append(1));
    CHECK(client.read_events(1) == range(5, 5));
    thread.run([&] { server->stop(); });
    CHECK(client.closed_by_peer());
  }
  CHECK(::stat(path.c_str(), &st) != 0);  // removed on stop
  server.reset();
}

TEST_CASE("11 start reports a TCP address it cannot bind", "[net]") {
  asio::io_context io;
  FakeOutbox outbox;
  auto options = tcp_options();
  options.address = "not an address";
  net::SubscriberServer bad_address(io, options, outbox.fetch_fn(), 0);
  const auto started = bad_address.start();
  REQUIRE_FALSE(started);
  CHECK(started.error().code == core::ErrorCode::config);

  net::SubscriberServer first(io, tcp_options(), outbox.fetch_fn(), 0);
  REQUIRE(first.start());
  auto taken = tcp_options();
  taken.port = first.tcp_port();
  net::SubscriberServer second(io, taken, outbox.fetch_fn(), 0);
  const auto again = second.start();
  REQUIRE_FALSE(again);
  CHECK(again.error().code == core::ErrorCode::io);
}
