#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <future>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "iraewatch/net/mllp_server.hpp"
#include "support/daemon.hpp"

using namespace iraewatch;
namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

const std::string kSB(1, '\x0b');
const std::string kEB(1, '\x1c');
const std::string kCR(1, '\x0d');

std::string frame(const std::string& payload) {
  return kSB + payload + kEB + kCR;
}

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

// A blocking MLLP sender on 127.0.0.1, with a deadline on every read.
class Client {
 public:
  // `receive_buffer` > 0 shrinks SO_RCVBUF, so that a client that does not read fills up quickly.
  explicit Client(std::uint16_t port, int receive_buffer = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    if (receive_buffer > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // tiny writes go out as written
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd_);
      throw std::runtime_error("cannot connect to 127.0.0.1:" + std::to_string(port));
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

  // One byte per write, with a pause between them, so that the server reads them apart.
  void send_bytewise(const std::string& bytes) {
    for (char c : bytes) {
      send(std::string(1, c));
      std::this_thread::sleep_for(1ms);
    }
  }

  void shutdown_send() { ::shutdown(fd_, SHUT_WR); }

  // The payload of the next reply, which must be framed as 0x0B payload 0x1C 0x0D; nullopt on EOF,
  // error or when `timeout` passes.
  std::optional<std::string> read_frame(std::chrono::milliseconds timeout = 5s) {
    const auto until = Clock::now() + timeout;
    for (;;) {
      if (!buffer_.empty() && buffer_[0] != kSB[0]) throw std::runtime_error("a reply does not start with 0x0B");
      if (const auto end = buffer_.find(kEB + kCR); end != std::string::npos) {
        std::string payload = buffer_.substr(1, end - 1);
        buffer_.erase(0, end + 2);
        return payload;
      }
      if (!fill(until)) return std::nullopt;
    }
  }

  // True when the server closed the connection within `timeout`; what it sent meanwhile is kept.
  bool closed_by_peer(std::chrono::milliseconds timeout = 5s) {
    const auto until = Clock::now() + timeout;
    while (fill(until)) {
    }
    return eof_;
  }

  // Everything received so far that read_frame() has not taken.
  const std::string& unread() const { return buffer_; }

 private:
  // Appends what one recv() returns; false on EOF, error or time-out.
  bool fill(Clock::time_point until) {
    for (;;) {
      if (eof_) return false;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[65536];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        eof_ = n == 0 || errno == ECONNRESET;
        return false;
      }
      buffer_.append(buf, static_cast<std::size_t>(n));
      return true;
    }
  }

  int fd_ = -1;
  std::string buffer_;
  bool eof_ = false;
};

// Polls `condition` until it holds or `timeout` passes.
template <typename F>
bool eventually(F condition, std::chrono::milliseconds timeout = 5s) {
  const auto until = Clock::now() + timeout;
  while (!condition()) {
    if (Clock::now() >= until) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

net::MllpServerOptions test_options() {
  net::MllpServerOptions options;
  options.port = 0;
  return options;
}

// What the handler saw, in the order it saw it. Thread-safe.
class Seen {
 public:
  void add(const net::MllpFrame& f) {
    std::lock_guard lock(mutex_);
    frames_.push_back(f);
  }
  std::vector<net::MllpFrame> frames() {
    std::lock_guard lock(mutex_);
    return frames_;
  }
  std::vector<std::string> payloads() {
    std::vector<std::string> out;
    for (const auto& f : frames()) out.push_back(f.payload);
    return out;
  }
  std::size_t size() {
    std::lock_guard lock(mutex_);
    return frames_.size();
  }

 private:
  std::mutex mutex_;
  std::vector<net::MllpFrame> frames_;
};

// Replies at once, on the server's thread: "ACK:" + payload.
net::MllpHandler echo(Seen& seen) {
  return [&seen](net::MllpFrame f, net::MllpReplyFn reply) {
    seen.add(f);
    reply("ACK:" + f.payload);
  };
}

// Keeps the reply functions; the test answers them when it chooses, from its own thread. Declare
// it after the io_context: a held reply must go before the io_context does.
class HeldReplies {
 public:
  net::MllpHandler handler() {
    return [this](net::MllpFrame f, net::MllpReplyFn reply) {
      std::lock_guard lock(mutex_);
      held_.push_back({std::move(f), std::move(reply)});
      ++calls_;
      max_outstanding_ = std::max(max_outstanding_, held_.size());
    };
  }
  std::size_t calls() {
    std::lock_guard lock(mutex_);
    return calls_;
  }
  std::size_t max_outstanding() {
    std::lock_guard lock(mutex_);
    return max_outstanding_;
  }
  // Answers every held frame ("ACK:" + payload), newest first.
  std::size_t release_all_reversed() {
    std::vector<Held> taken;
    {
      std::lock_guard lock(mutex_);
      taken.assign(std::make_move_iterator(held_.begin()), std::make_move_iterator(held_.end()));
      held_.clear();
    }
    for (auto it = taken.rbegin(); it != taken.rend(); ++it) it->reply("ACK:" + it->frame.payload);
    return taken.size();
  }

 private:
  struct Held {
    net::MllpFrame frame;
    net::MllpReplyFn reply;
  };
  std::mutex mutex_;
  std::vector<Held> held_;
  std::size_t calls_ = 0;
  std::size_t max_outstanding_ = 0;
};

// Answers on worker threads after a random delay, so that replies complete out of frame order.
class SlowWorkers {
 public:
  explicit SlowWorkers(int threads) {
    for (int i = 0; i < threads; ++i) {
      threads_.emplace_back([this, i] { work(static_cast<unsigned>(i)); });
    }
  }
  ~SlowWorkers() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  SlowWorkers(const SlowWorkers&) = delete;
  SlowWorkers& operator=(const SlowWorkers&) = delete;

  net::MllpHandler handler() {
    return [this](net::MllpFrame f, net::MllpReplyFn reply) {
      {
        std::lock_guard lock(mutex_);
        queue_.push_back({std::move(f), std::move(reply)});
      }
      cv_.notify_one();
    };
  }
  // The frame numbers in the order their replies were completed.
  std::vector<std::uint64_t> completion_order() {
    std::lock_guard lock(mutex_);
    return completed_;
  }

 private:
  struct Job {
    net::MllpFrame frame;
    net::MllpReplyFn reply;
  };

  void work(unsigned seed) {
    std::mt19937 random(seed);
    std::uniform_int_distribution<int> delay_us(0, 3000);
    for (;;) {
      Job job;
      {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [this] { return done_ || !queue_.empty(); });
        if (queue_.empty()) return;
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      std::this_thread::sleep_for(std::chrono::microseconds(delay_us(random)));
      {
        std::lock_guard lock(mutex_);
        completed_.push_back(job.frame.number);
      }
      job.reply("ACK:" + job.frame.payload);
    }
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  std::vector<std::uint64_t> completed_;
  bool done_ = false;
  std::vector<std::thread> threads_;
};

std::string numbered(int i) {
  return "MSH|^~\\&|LAB|WARD|IRAE|WARD|20240101120000||ORU^R01|MSG" + std::to_string(i) + "|P|2.5\rOBX|1|NM|" +
         std::to_string(i);
}

// Reads `count` replies, or fewer if they stop coming.
std::vector<std::string> read_frames(Client& client, std::size_t count, std::chrono::milliseconds timeout = 10s) {
  std::vector<std::string> out;
  const auto until = Clock::now() + timeout;
  while (out.size() < count) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
    if (left.count() <= 0) break;
    auto reply = client.read_frame(left);
    if (!reply) break;
    out.push_back(std::move(*reply));
  }
  return out;
}

struct CommandResult {
  int exit_code = -1;  // -1: did not finish within the time-out (and was killed)
  std::string out, err;
};

// Runs a program (looked up in PATH) to completion, bounded by `timeout`.
CommandResult run_command(const std::vector<std::string>& args, std::chrono::seconds timeout) {
  testing::TempDir dir;
  const std::string out_path = dir.file("out"), err_path = dir.file("err");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("cannot run " + args[0]);
  CommandResult result;
  const auto until = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    if (Clock::now() >= until) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(10ms);
  }
  result.out = testing::read_file(out_path);
  result.err = testing::read_file(err_path);
  return result;
}

// The executable's full path, or empty when it is not in PATH.
std::string find_in_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    const auto colon = dirs.find(':', start);
    const std::string dir = dirs.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return {};
}

}  // namespace

TEST_CASE("01 mllp: one frame, one framed reply", "[net]") {
  asio::io_context io;
  Seen seen;
  net::MllpServer server(io, test_options(), echo(seen));
  REQUIRE(server.start());
  REQUIRE(server.port() != 0);
  IoThread thread(io);

  Client client(server.port());
  client.send(frame("MSH|^~\\&|A\rPID|1"));
  CHECK(client.read_frame() == "ACK:MSH|^~\\&|A\rPID|1");
  CHECK_FALSE(client.read_frame(200ms));  // exactly one
  CHECK(client.unread().empty());

  const auto frames = seen.frames();
  REQUIRE(frames.size() == 1);
  CHECK(frames[0].number == 1);
  CHECK_FALSE(frames[0].too_large);
  CHECK(frames[0].peer.rfind("127.0.0.1:", 0) == 0);
}

TEST_CASE("02 mllp: frames pipelined in one write are answered in order", "[net]") {
  asio::io_context io;
  Seen seen;
  net::MllpServer server(io, test_options(), echo(seen));
  REQUIRE(server.start());
  IoThread thread(io);

  Client client(server.port());
  std::string bytes;
  std::vector<std::string> expected;
  for (int i = 1; i <= 200; ++i) {
    bytes += frame(numbered(i));
    expected.push_back("ACK:" + numbered(i));
  }
  client.send(bytes);
  CHECK(read_frames(client, 200) == expected);
  const auto frames = seen.frames();
  REQUIRE(frames.size() == 200);
  for (std::size_t i = 0; i < frames.size(); ++i) CHECK(frames[i].number == i + 1);
}

TEST_CASE("03 mllp: frames split across many tiny writes", "[net]") {
  asio::io_context io;
  Seen seen;
  net::MllpServer server(io, test_options(), echo(seen));
  REQUIRE(server.start());
  IoThread thread(io);

  Client client(server.port());
  client.send_bytewise(frame("MSH|one") + frame("MSH|two") + frame("MSH|three"));
  CHECK(read_frames(client, 3) == std::vector<std::string>{"ACK:MSH|one", "ACK:MSH|two", "ACK:MSH|three"});
  CHECK(seen.payloads() == std::vector<std::string>{"MSH|one", "MSH|two", "MSH|three"});
}

TEST_CASE("04 mllp: bytes outside frames are skipped", "[net]") {
  asio::io_context io;
  Seen seen;
  net::MllpServer server(io, test_options(), echo(seen));
  REQUIRE(server.start());
  IoThread thread(io);

  Client client(server.port());
  SECTION("before the first 0x0B and between frames") {
    client.send("noise\r\n" + frame("MSH|one") + "\r\n\r" + frame("MSH|two"));
    CHECK(read_frames(client, 2) == std::vector<std::string>{"ACK:MSH|one", "ACK:MSH|two"});
  }
  SECTION("after a 0x1C that is followed by neither 0x0D nor 0x0B") {
    client.send(kSB + "MSH|one" + kEB + "garbage" + kCR + frame("MSH|two"));
    CHECK(read_frames(client, 2) == std::vector<std::string>{"ACK:MSH|one", "ACK:MSH|two"});
  }
  SECTION("stray bytes alone make no frame") {
    client.send("\r\n\r\nnoise");
    CHECK_FALSE(client.read_frame(300ms));
    client.send(frame("MSH|one"));
    CHECK(client.read_frame() == "ACK:MSH|one");
  }
  CHECK_FALSE(client.read_frame(200ms));
  CHECK(seen.payloads().front() == "MSH|one");
}

TEST_CASE("05 mllp: a missing final 0x0D is tolerated", "[net]") {
  asio::io_context io;
  Seen seen;
  net::MllpServer server(io, test_options(), echo(seen));
  REQUIRE(server.start());
  IoThread thread(io);

  Client client(server.port());
  SECTION("0x1C followed directly by the next frame") {
    client.send(kSB + "MSH|one" + kEB + kSB + "MSH|two" + kEB + frame("MSH|three"));
    CHECK(read_frames(client, 3) == std::vector<std::string>{"ACK:MSH|one", "ACK:MSH|two", "ACK:MSH|three"});
    CHECK_FALSE(client.read_frame(200ms));
  }
  SECTION("0x1C followed by EOF") {
    client.send(kSB + "MSH|one" + kEB);
    client.shutdown_send();
    CHECK(client.read_frame() == "ACK:MSH|one");
    CHECK(client.closed_by_peer());
  }
  SECTION("0x1C followed by silence: answered; a 0x0D that comes much later is skipped") {
    client.send(kSB + "MSH|one" + kEB);
    CHECK(client.read_frame(2s) == "ACK:MSH|one");
    std::this_thread::sleep_for(400ms);  // past the grace period
    client.send(kCR + frame("MSH|two"));
    CHECK(client.read_frame() == "ACK:MSH|two");
    CHECK_FALSE(client.read_frame(200ms));
  }
  SECTION("0x1C and 0x0D in separate writes, the 0x0D within the grace period") {
    client.send(kSB + "MSH|one" + kEB);
    std::this_thread::sleep_for(20ms);
    client.send(kCR);
    client.send(frame("MSH|two"));
    CHECK(read_frames(client, 2) == std::vector<std::string>{"ACK:MSH|one", "ACK:MSH|two"});
  }
  const auto payloads = seen.payloads();
  REQUIRE(payloads.size() >= 1);
  CHECK(payloads[0] == "MSH|one");
  for (const auto& p : payloads) CHECK(p.find_first_of("\x0b\x1c") == std::string::npos);
}

TEST_CASE("06 mllp: a one-shot connection gets its reply, then EOF", "[net]") {
  asio::io_context io;
  Seen seen;
  net::MllpServer server(io, test_options(), echo(seen));
  REQUIRE(server.start());
  IoThread thread(io);

  for (int round = 0; round < 3; ++round) {
    Client client(server.port());
    client.send(frame("MSH|once"));
    client.shutdown_send();
    CHECK(client.read_frame() == "ACK:MSH|once");
    CHECK(client.closed_by_peer());
    CHECK(client.unread().empty());
  }
  SECTION("a frame cut short by EOF is not a frame") {
    Client client(server.port());
    client.send(frame("MSH|whole") + kSB + "MSH|cut sho");
    client.shutdown_send();
    CHECK(client.read_frame() == "ACK:MSH|whole");
    CHECK(client.closed_by_peer());
    CHECK(client.unread().empty());
  }
}

TEST_CASE("07 mllp: a persistent connection carries 1000 frames", "[net]") {
  asio::io_context io;
  Seen seen;
  net::MllpServer server(io, test_options(), echo(seen));
  REQUIRE(server.start());
  IoThread thread(io);

  Client client(server.port());
  int answered = 0;
  for (int i = 1; i <= 1000; ++i) {
    client.send(frame(numbered(i)));
    if (client.read_frame() != "ACK:" + numbered(i)) break;
    ++answered;
  }
  CHECK(answered == 1000);
  const auto frames = seen.frames();
  REQUIRE(frames.size() == 1000);
  CHECK(frames.back().number == 1000);
}

TEST_CASE("08 mllp: replies completed out of order go out in frame order", "[net]") {
  asio::io_context io;
  auto options = test_options();
  options.max_in_flight = 16;

  SECTION("from worker threads with random delays") {
    SlowWorkers workers(4);
    net::MllpServer server(io, options, workers.handler());
    REQUIRE(server.start());
    IoThread thread(io);

    Client client(server.port());
    std::string bytes;
    std::vector<std::string> expected;
    for (int i = 1; i <= 300; ++i) {
      bytes += frame(numbered(i));
      expected.push_back("ACK:" + numbered(i));
    }
    client.send(bytes);
    CHECK(read_frames(client, 300, 30s) == expected);
    const auto order = workers.completion_order();
    CHECK(order.size() == 300);
  }
  SECTION("answered newest first") {
    HeldReplies held;
    net::MllpServer held_server(io, options, held.handler());
    REQUIRE(held_server.start());
    IoThread thread(io);

    Client client(held_server.port());
    std::string bytes;
    std::vector<std::string> expected;
    for (int i = 1; i <= 8; ++i) {
      bytes += frame(numbered(i));
      expected.push_back("ACK:" + numbered(i));
    }
    client.send(bytes);
    REQUIRE(eventually([&] { return held.calls() == 8; }));
    CHECK(held.release_all_reversed() == 8);
    CHECK(read_frames(client, 8) == expected);
  }
}

// Sends `messages` pipelined in one write to a server whose handler holds every reply: the server
// must hand over `handed_over` frames and then wait; as the replies drain it hands over the rest,
// and the client gets every reply, in order.
static void check_flow_control(const net::MllpServerOptions& options, const std::vector<std::string>& messages,
                               std::size_t handed_over) {
  asio::io_context io;
  HeldReplies held;
  net::MllpServer server(io, options, held.handler());
  REQUIRE(server.start());
  IoThread thread(io);

  Client client(server.port());
  std::string bytes;
  std::vector<std::string> expected;
  for (const auto& m : messages) {
    bytes += frame(m);
    expected.push_back("ACK:" + m);
  }
  client.send(bytes);
  REQUIRE(eventually([&] { return held.calls() == handed_over; }));
  std::this_thread::sleep_for(300ms);
  CHECK(held.calls() == handed_over);  // held back until replies drain
  CHECK_FALSE(client.read_frame(100ms));

  std::vector<std::string> replies;
  const auto until = Clock::now() + 10s;
  while (replies.size() < messages.size() && Clock::now() < until) {
    held.release_all_reversed();
    if (auto reply = client.read_frame(50ms)) replies.push_back(std::move(*reply));
  }
  CHECK(replies == expected);
  CHECK(held.calls() == messages.size());
  CHECK(held.max_outstanding() <= handed_over);
}

TEST_CASE("09 mllp: past max_in_flight unanswered frames the server stops handing frames over", "[net]") {
  auto options = test_options();
  options.max_in_flight = 3;
  std::vector<std::string> messages;
  for (int i = 1; i <= 10; ++i) messages.push_back(numbered(i));
  check_flow_control(options, messages, 3);
}

TEST_CASE("09b mllp: past max_in_flight_bytes of unanswered frames the server stops handing frames over", "[net]") {
  auto options = test_options();
  options.max_in_flight = 64;
  options.max_in_flight_bytes = 2500;  // 2,000 bytes held < 2,500: a third 1,000-byte frame is taken; then full
  std::vector<std::string> messages;
  for (int i = 1; i <= 6; ++i) {
    std::string message = numbered(i);
    message += "|" + std::string(1000 - message.size() - 1, 'x');
    messages.push_back(message);
  }
  check_flow_control(options, messages, 3);
}

TEST_CASE("10 mllp: a frame past max_frame_bytes gets the handler's reply, then the connection closes", "[net]") {
  asio::io_context io;
  auto options = test_options();
  options.max_frame_bytes = 1000;
  Seen seen;
  net::MllpServer server(io, options, [&seen](net::MllpFrame f, net::MllpReplyFn reply) {
    seen.add(f);
    reply(f.too_large ? "AR:too large" : "ACK:" + f.payload);
  });
  REQUIRE(server.start());
  IoThread thread(io);

  const std::string big = "MSH|" + std::string(4996, 'x');
  Client client(server.port());
  SECTION("a whole frame") {
    client.send(frame("MSH|small") + frame(big) + frame("MSH|after"));
  }
  SECTION("still growing: the server does not wait for the end of it") {
    client.send(frame("MSH|small") + kSB + big);
  }
  CHECK(read_frames(client, 2) == std::vector<std::string>{"ACK:MSH|small", "AR:too large"});
  CHECK(client.closed_by_peer());
  CHECK(client.unread().empty());  // nothing after the too_large reply

  const auto frames = seen.frames();
  REQUIRE(frames.size() == 2);
  CHECK_FALSE(frames[0].too_large);
  CHECK(frames[1].too_large);
  CHECK(frames[1].payload == big.substr(0, 1000));

  Client exact(server.port());  // exactly max_frame_bytes is fine
  exact.send(frame(big.substr(0, 1000)));
  CHECK(exact.read_frame() == "ACK:" + big.substr(0, 1000));
}

TEST_CASE("11 mllp: an idle connection is closed, but not while its frame is in flight", "[net]") {
  asio::io_context io;
  auto options = test_options();
  options.idle_timeout = 300ms;
  HeldReplies held;
  net::MllpServer server(io, options, held.handler());
  REQUIRE(server.start());
  IoThread thread(io);

  SECTION("silent from the start") {
    Client client(server.port());
    const auto start = Clock::now();
    CHECK(client.closed_by_peer(5s));
    CHECK(Clock::now() - start >= 250ms);
  }
  SECTION("a slow reply") {
    Client client(server.port());
    client.send(frame("MSH|slow"));
    REQUIRE(eventually([&] { return held.calls() == 1; }));
    std::this_thread::sleep_for(800ms);  // longer than idle_timeout
    held.release_all_reversed();
    CHECK(client.read_frame() == "ACK:MSH|slow");
    const auto start = Clock::now();
    CHECK(client.closed_by_peer(5s));  // idle again from the reply on
    CHECK(Clock::now() - start >= 200ms);
  }
}

TEST_CASE("12 mllp: past max_connections a connection is closed at once", "[net]") {
  asio::io_context io;
  auto options = test_options();
  options.max_connections = 2;
  Seen seen;
  net::MllpServer server(io, options, echo(seen));
  REQUIRE(server.start());
  IoThread thread(io);

  auto first = std::make_unique<Client>(server.port());
  Client second(server.port());
  first->send(frame("MSH|1"));
  second.send(frame("MSH|2"));
  REQUIRE(first->read_frame() == "ACK:MSH|1");
  REQUIRE(second.read_frame() == "ACK:MSH|2");
  {
    Client third(server.port());
    CHECK(third.closed_by_peer());
    CHECK(third.unread().empty());
  }

  first.reset();  // frees a slot, as soon as the server notices
  bool admitted = false;
  for (int attempt = 0; attempt < 50 && !admitted; ++attempt) {
    Client again(server.port());
    again.send(frame("MSH|again"));
    admitted = again.read_frame(1s) == "ACK:MSH|again";
    if (!admitted) std::this_thread::sleep_for(50ms);
  }
  CHECK(admitted);
  CHECK(second.read_frame(100ms) == std::nullopt);  // still open, still usable
  second.send(frame("MSH|2b"));
  CHECK(second.read_frame() == "ACK:MSH|2b");
}

TEST_CASE("13 mllp: stop() answers the frames in flight, then closes", "[net]") {
  asio::io_context io;
  HeldReplies held;
  net::MllpServer server(io, test_options(), held.handler());
  REQUIRE(server.start());
  IoThread thread(io);

  Client busy(server.port());
  Client idle(server.port());
  busy.send(frame("MSH|1") + frame("MSH|2"));
  REQUIRE(eventually([&] { return held.calls() == 2; }));

  thread.run([&] { server.stop(); });
  CHECK(idle.closed_by_peer());
  CHECK_THROWS(Client(server.port()));  // no longer listening

  CHECK_FALSE(busy.read_frame(200ms));
  held.release_all_reversed();
  CHECK(read_frames(busy, 2) == std::vector<std::string>{"ACK:MSH|1", "ACK:MSH|2"});
  CHECK(busy.closed_by_peer());
}

TEST_CASE("14 mllp: a peer that does not read its replies is closed after write_timeout", "[net]") {
  asio::io_context io;
  auto options = test_options();
  options.max_connections = 1;
  options.write_timeout = 300ms;
  net::MllpServer server(io, options, [](net::MllpFrame f, net::MllpReplyFn reply) {
    reply(f.payload == "MSH|big" ? std::string(32 << 20, 'x') : "ACK:" + f.payload);
  });
  REQUIRE(server.start());
  IoThread thread(io);

  Client stuck(server.port(), 4096);
  stuck.send(frame("MSH|big"));

  // Its slot comes free once the server gives up on it.
  bool admitted = false;
  const auto until = Clock::now() + 10s;
  while (!admitted && Clock::now() < until) {
    Client next(server.port());
    next.send(frame("MSH|next"));
    admitted = next.read_frame(1s) == "ACK:MSH|next";
    if (!admitted) std::this_thread::sleep_for(100ms);
  }
  CHECK(admitted);
  CHECK(stuck.closed_by_peer(10s));
  CHECK(stuck.unread().size() < (32u << 20));  // cut off, not delivered
}

TEST_CASE("15 mllp: empty replies write nothing; a dropped reply does not stall the connection", "[net]") {
  asio::io_context io;
  net::MllpServer server(io, test_options(), [](net::MllpFrame f, net::MllpReplyFn reply) {
    if (f.payload == "MSH|quiet") {
      reply("");
    } else if (f.payload != "MSH|dropped") {
      reply("ACK:" + f.payload);
    }  // else: the reply function is destroyed uncalled (a broken handler)
  });
  REQUIRE(server.start());
  IoThread thread(io);

  Client client(server.port());
  client.send(frame("MSH|a") + frame("MSH|quiet") + frame("MSH|b") + frame("MSH|dropped") + frame("MSH|c"));
  CHECK(read_frames(client, 3) == std::vector<std::string>{"ACK:MSH|a", "ACK:MSH|b", "ACK:MSH|c"});
  CHECK_FALSE(client.read_frame(200ms));
}

TEST_CASE("16 mllp: start reports an address it cannot bind", "[net]") {
  asio::io_context io;
  Seen seen;
  net::MllpServer first(io, test_options(), echo(seen));
  REQUIRE(first.start());
  auto options = test_options();
  options.port = first.port();
  net::MllpServer second(io, options, echo(seen));
  const auto result = second.start();
  REQUIRE_FALSE(result);
  CHECK(result.error().code == core::ErrorCode::io);

  options.address = "not an address";
  net::MllpServer third(io, options, echo(seen));
  const auto bad = third.start();
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == core::ErrorCode::config);
}

// Debian's python3-hl7 ships mllp_send, a third-party MLLP sender; scripts/install-deps.sh
// installs it, so its absence is a failure, not a skip.
TEST_CASE("17 mllp: Debian's mllp_send (python3-hl7) gets our ACKs", "[net]") {
  const std::string mllp_send = find_in_path("mllp_send");
  INFO("mllp_send not found in PATH: install python3-hl7 (scripts/install-deps.sh)");
  REQUIRE_FALSE(mllp_send.empty());

  asio::io_context io;
  Seen seen;
  net::MllpServer server(io, test_options(), echo(seen));
  REQUIRE(server.start());
  IoThread thread(io);

  const std::string first = "MSH|^~\\&|LAB|WARD|IRAE|WARD|20240101120000||ORU^R01|MSG1|P|2.5\rPID|1||12345";
  const std::string second = "MSH|^~\\&|LAB|WARD|IRAE|WARD|20240101120100||ORU^R01|MSG2|P|2.5\rPID|1||67890";
  testing::TempDir dir;
  testing::write_file(dir.file("messages.hl7"), frame(first) + frame(second));

  const auto result = run_command(
      {mllp_send, "--file", dir.file("messages.hl7"), "--port", std::to_string(server.port()), "127.0.0.1"}, 30s);
  INFO("stderr: " << result.err);
  CHECK(result.exit_code == 0);
  // It prints each reply as received, framing included, one per line.
  CHECK(result.out == frame("ACK:" + first) + "\n" + frame("ACK:" + second) + "\n");
  CHECK(seen.payloads() == std::vector<std::string>{first, second});
}
