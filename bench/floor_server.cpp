// floor_server: the least a durable NDJSON acknowledger can do, to measure what a machine allows.
//
// Not iraewatch: a stand-in that ingest_bench starts in its place (--binary), to tell the
// machine's share of an acknowledgement's latency from the daemon's. One thread, poll(); each
// read's complete lines are appended to a file, the file is fdatasync'ed, and each line gets
// {"ok":true,"id":"..."} (its "id" copied, nothing parsed, nothing checked). Optionally a fixed
// amount of arithmetic per line (FLOOR_WORK_US, microseconds at the speed measured at start),
// standing for the CPU a real daemon spends on a record: because it is a fixed amount of work and
// not a fixed time, it takes longer whenever the machine runs the process slower.
//
// It takes the daemon's command line (only --data-dir and --ready-file matter), writes the ready
// file ingest_bench waits for, and on SIGTERM logs the "stopped: NDJSON ..." count it checks.
// Lines longer than 1 MiB close their connection; a connection idle for 60 s is closed. Replies are
// written blocking (the bench always reads them).

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kMaxLine = 1 << 20;
constexpr auto kIdle = std::chrono::seconds(60);

volatile std::sig_atomic_t g_stop = 0;

// A dependent chain of multiply-adds: the same instructions every time, no memory traffic.
double burn(std::uint64_t iterations) {
  double x = 1;
  for (std::uint64_t i = 0; i < iterations; ++i) x = x * 1.0000001 + 1e-9;
  return x;
}

volatile double g_sink;

// Iterations per microsecond at this machine's best speed: the fastest of a few short runs.
double iterations_per_us() {
  constexpr std::uint64_t kRun = 200'000;
  double best_us = 1e18;
  for (int i = 0; i < 15; ++i) {
    const auto a = Clock::now();
    g_sink = burn(kRun);
    best_us = std::min(best_us, std::chrono::duration<double, std::micro>(Clock::now() - a).count());
  }
  return static_cast<double>(kRun) / std::max(best_us, 1e-3);
}

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "floor_server: %s: %s\n", what, std::strerror(errno));
  std::exit(2);
}

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

struct Connection {
  int fd;
  std::string pending;  // bytes after the last complete line
  Clock::time_point last_read;
};

}  // namespace

int main(int argc, char** argv) {
  std::string data_dir, ready_file;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--data-dir") == 0)
      data_dir = argv[++i];
    else if (std::strcmp(argv[i], "--ready-file") == 0)
      ready_file = argv[++i];
  }
  if (data_dir.empty() || ready_file.empty()) {
    std::fprintf(stderr, "usage: floor_server ... --data-dir DIR ... --ready-file FILE (as ingest_bench starts it)\n");
    return 2;
  }
  const char* work_env = std::getenv("FLOOR_WORK_US");
  const double work_us = work_env ? std::atof(work_env) : 0;
  const auto work_iterations = static_cast<std::uint64_t>(work_us > 0 ? work_us * iterations_per_us() : 0);

  std::signal(SIGTERM, [](int) { g_stop = 1; });
  std::signal(SIGINT, [](int) { g_stop = 1; });
  std::signal(SIGPIPE, SIG_IGN);
  if (::mkdir(data_dir.c_str(), 0700) != 0 && errno != EEXIST) die("mkdir data dir");
  const std::string log_path = data_dir + "/floor.ndjson";
  const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log < 0) die("open log");

  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0) die("socket");
  const int one = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) die("bind");
  if (::listen(listener, 64) != 0) die("listen");
  socklen_t addr_len = sizeof addr;
  if (::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &addr_len) != 0) die("getsockname");
  {
    const std::string tmp = ready_file + ".tmp";
    const std::string ready = "{\"ndjson\":\"127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) +
                              "\",\"pid\":" + std::to_string(::getpid()) + "}\n";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || !write_all(fd, ready) || ::close(fd) != 0 || ::rename(tmp.c_str(), ready_file.c_str()) != 0)
      die("ready file");
  }
  std::printf("floor_server: 127.0.0.1:%u, %.1f us of arithmetic per line (%llu iterations)\n", ntohs(addr.sin_port),
              work_us, static_cast<unsigned long long>(work_iterations));
  std::fflush(stdout);

  std::vector<Connection> connections;
  std::vector<pollfd> polled;
  std::string batch, replies;
  std::vector<char> buffer(1 << 16);
  std::uint64_t stored = 0;
  bool failed = false;
  while (!g_stop && !failed) {
    polled.assign(1, pollfd{listener, POLLIN, 0});
    for (const auto& c : connections) polled.push_back(pollfd{c.fd, POLLIN, 0});
    const int ready = ::poll(polled.data(), polled.size(), 100);
    if (ready < 0 && errno != EINTR) die("poll");
    const auto now = Clock::now();
    std::vector<bool> drop(connections.size(), false);
    for (std::size_t i = 0; ready > 0 && i < connections.size(); ++i) {
      Connection& c = connections[i];
      if (!(polled[i + 1].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t n = ::read(c.fd, buffer.data(), buffer.size());
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) {
        drop[i] = true;
        continue;
      }
      c.last_read = now;
      c.pending.append(buffer.data(), static_cast<std::size_t>(n));
      batch.clear();
      replies.clear();
      std::size_t start = 0;
      for (std::size_t nl; (nl = c.pending.find('\n', start)) != std::string::npos; start = nl + 1) {
        const std::string_view line(c.pending.data() + start, nl - start + 1);
        batch.append(line);
        if (work_iterations) g_sink = burn(work_iterations);
        std::string_view id;
        if (const auto at = line.find("\"id\":\""); at != std::string_view::npos) {
          const auto end = line.find('"', at + 6);
          if (end != std::string_view::npos) id = line.substr(at + 6, end - at - 6);
        }
        replies += "{\"ok\":true,\"id\":\"";
        replies += id;
        replies += "\"}\n";
      }
      c.pending.erase(0, start);
      if (c.pending.size() > kMaxLine) drop[i] = true;
      if (batch.empty()) continue;
      if (!write_all(log, batch) || ::fdatasync(log) != 0) {
        std::fprintf(stderr, "floor_server: cannot store: %s\n", std::strerror(errno));
        failed = true;
        break;
      }
      stored += static_cast<std::uint64_t>(std::count(batch.begin(), batch.end(), '\n'));
      if (!write_all(c.fd, replies)) drop[i] = true;
    }
    for (std::size_t i = connections.size(); i-- > 0;) {
      if (drop[i] || now - connections[i].last_read > kIdle) {
        ::close(connections[i].fd);
        connections.erase(connections.begin() + static_cast<std::ptrdiff_t>(i));
      }
    }
    if (ready > 0 && (polled[0].revents & POLLIN)) {
      const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) {
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        connections.push_back(Connection{fd, {}, now});
      }
    }
  }
  for (const auto& c : connections) ::close(c.fd);
  std::printf("floor_server: stopped: NDJSON %llu records stored, 0 duplicates, 0 lines rejected, 0 not stored\n",
              static_cast<unsigned long long>(stored));
  return failed ? 1 : 0;
}
