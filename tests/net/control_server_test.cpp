#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cerrno>
#include <cstring>
#include <future>
#include <optional>
#include <stdexcept>
#include <thread>

#include "iraewatch/net/control_server.hpp"
#include "support/daemon.hpp"

using namespace iraewatch;
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

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  return addr;
}

// A blocking client on a Unix-domain socket, with a deadline on every read.
class UnixClient {
 public:
  explicit UnixClient(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const auto addr = unix_address(path);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      if (fd_ >= 0) ::close(fd_);
      throw std::runtime_error("cannot connect to " + path);
    }
  }
  ~UnixClient() { ::close(fd_); }
  UnixClient(const UnixClient&) = delete;
  UnixClient& operator=(const UnixClient&) = delete;

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

  // True when the server closed the connection within `timeout`.
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

// Echoes the request inside a reply object; the request here is always plain text.
std::string echo(const std::string& request) {
  return "{\"ok\":true,\"echo\":\"" + request + "\"}";
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

}  // namespace

TEST_CASE("01 control: one request line, one reply line, over a socket only its owner can open", "[net]") {
  testing::TempDir tmp;
  const std::string path = tmp.file("control.sock");
  asio::io_context io;
  net::ControlServer server(io, {.path = path}, echo);
  REQUIRE(server.start());
  IoThread thread(io);

  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK((st.st_mode & 0777) == 0600);

  const auto reply = net::control_request(path, "ack A-17", 5s);
  REQUIRE(reply);
  CHECK(*reply == R"({"ok":true,"echo":"ack A-17"})");

  // Several requests on one connection are answered in order; blank lines ask nothing.
  UnixClient client(path);
  client.send("one\n\ntwo\r\nthree");
  CHECK(client.read_line() == R"({"ok":true,"echo":"one"})");
  CHECK(client.read_line() == R"({"ok":true,"echo":"two"})");
  client.send("\n");
  CHECK(client.read_line() == R"({"ok":true,"echo":"three"})");

  thread.run([&] { server.stop(); });
  CHECK(client.closed_by_peer());
  CHECK_FALSE(exists(path));  // removed on stop
}

TEST_CASE("02 control: a request longer than max_request_bytes is refused and the connection closed", "[net]") {
  testing::TempDir tmp;
  const std::string path = tmp.file("control.sock");
  asio::io_context io;
  net::ControlServer server(io, {.path = path, .max_request_bytes = 32}, echo);
  REQUIRE(server.start());
  IoThread thread(io);

  SECTION("with its newline") {
    UnixClient client(path);
    client.send(std::string(100, 'x') + "\n");
    CHECK(client.read_line() == R"({"ok":false,"error":"request too long"})");
    CHECK(client.closed_by_peer());
  }
  SECTION("still growing: the server does not wait for the end of it") {
    UnixClient client(path);
    client.send(std::string(20000, 'x'));  // no newline
    CHECK(client.read_line() == R"({"ok":false,"error":"request too long"})");
    CHECK(client.closed_by_peer());
  }
  SECTION("through control_request") {
    const auto reply = net::control_request(path, std::string(33, 'x'), 5s);
    REQUIRE(reply);
    CHECK(*reply == R"({"ok":false,"error":"request too long"})");
    const auto fits = net::control_request(path, std::string(32, 'x'), 5s);
    REQUIRE(fits);
    CHECK(*fits == echo(std::string(32, 'x')));
  }
}

TEST_CASE("03 control_request says plainly when no daemon is listening", "[net]") {
  testing::TempDir tmp;

  SECTION("no socket file") {
    const auto path = tmp.file("control.sock");
    const auto reply = net::control_request(path, "status", 2s);
    REQUIRE_FALSE(reply);
    CHECK(reply.error().code == core::ErrorCode::not_found);
    CHECK(reply.error().message == "no daemon is listening on " + path);
  }
  SECTION("a stale socket file left by a crashed daemon") {
    const auto path = tmp.file("control.sock");
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    const auto addr = unix_address(path);
    REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
    ::close(fd);
    const auto reply = net::control_request(path, "status", 2s);
    REQUIRE_FALSE(reply);
    CHECK(reply.error().code == core::ErrorCode::not_found);
    CHECK(reply.error().message == "no daemon is listening on " + path);

    // ...and a server starting there replaces it.
    asio::io_context io;
    net::ControlServer server(io, {.path = path}, echo);
    REQUIRE(server.start());
    IoThread thread(io);
    const auto now = net::control_request(path, "status", 5s);
    REQUIRE(now);
    CHECK(*now == echo("status"));
  }
  SECTION("a listener that never answers: the timeout bounds the wait") {
    const auto path = tmp.file("silent.sock");
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    const auto addr = unix_address(path);
    REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd, 4) == 0);  // never accepts
    const auto started = std::chrono::steady_clock::now();
    const auto reply = net::control_request(path, "status", 200ms);
    const auto waited = std::chrono::steady_clock::now() - started;
    ::close(fd);
    REQUIRE_FALSE(reply);
    CHECK(reply.error().code == core::ErrorCode::io);
    CHECK(waited < 2s);
  }
}

TEST_CASE("04 control: a silent connection is closed after idle_timeout", "[net]") {
  testing::TempDir tmp;
  const std::string path = tmp.file("control.sock");
  asio::io_context io;
  net::ControlServer server(io, {.path = path, .idle_timeout = 200ms}, echo);
  REQUIRE(server.start());
  IoThread thread(io);

  UnixClient client(path);
  client.send("first\n");
  CHECK(client.read_line() == echo("first"));
  const auto started = std::chrono::steady_clock::now();
  CHECK(client.closed_by_peer(5s));
  CHECK(std::chrono::steady_clock::now() - started < 3s);
}

TEST_CASE("05 control: past max_connections a client gets one error line", "[net]") {
  testing::TempDir tmp;
  const std::string path = tmp.file("control.sock");
  asio::io_context io;
  net::ControlServer server(io, {.path = path, .max_connections = 1}, echo);
  REQUIRE(server.start());
  IoThread thread(io);

  UnixClient first(path);
  first.send("hello\n");
  REQUIRE(first.read_line() == echo("hello"));  // it holds the one slot now

  UnixClient second(path);
  CHECK(second.read_line() == R"({"ok":false,"error":"too many connections"})");
  CHECK(second.closed_by_peer());

  const auto reply = net::control_request(path, "status", 2s);
  REQUIRE(reply);
  CHECK(*reply == R"({"ok":false,"error":"too many connections"})");
}

TEST_CASE("06 control: a path where another server listens is refused and left alone", "[net]") {
  testing::TempDir tmp;
  const std::string path = tmp.file("control.sock");
  asio::io_context io;
  auto first = std::make_unique<net::ControlServer>(io, net::ControlServerOptions{.path = path}, echo);
  REQUIRE(first->start());
  {
    net::ControlServer second(io, {.path = path}, [](const std::string&) { return std::string("second"); });
    const auto started = second.start();
    REQUIRE_FALSE(started);
    CHECK(started.error().code == core::ErrorCode::io);
  }
  REQUIRE(exists(path));
  {
    IoThread thread(io);
    const auto reply = net::control_request(path, "who", 5s);
    REQUIRE(reply);
    CHECK(*reply == echo("who"));
  }

  SECTION("a file that is not a socket is not taken over") {
    const auto plain = tmp.file("notes.txt");
    testing::write_file(plain, "keep me");
    net::ControlServer other(io, {.path = plain}, echo);
    const auto started = other.start();
    REQUIRE_FALSE(started);
    CHECK(testing::read_file(plain) == "keep me");
  }

  first.reset();
  CHECK_FALSE(exists(path));  // the destructor removes the file it created
}
