// ingest_bench: how fast a real iraewatch daemon acknowledges NDJSON records, and how long one
// record waits for its acknowledgement.
//
// The daemon is a black box: the bench starts it as a child process on a fresh data folder, talks
// to it over loopback exactly as a sender would, and stops it at the end. Two measurements:
//   throughput  C connections pipeline N records in total as fast as the daemon acknowledges them,
//               with at most `window` unacknowledged lines per connection so memory stays bounded;
//   latency     one connection offers records at a fixed rate, open loop: each line leaves at its
//               scheduled time whatever the replies do, and each reply's delay is measured from
//               that scheduled time (so a stalled daemon cannot hide by slowing the sender down).
// Every reply must be {"ok":true,...} carrying the id of the line it answers, in order; anything
// else is counted, sampled in the report, and makes the exit status 1. Every wait has a deadline.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <expected>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#ifndef IRAEWATCH_BINARY
#define IRAEWATCH_BINARY ""
#endif

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto kReadyWait = 10s;            // the daemon must be listening within this
constexpr auto kStopWait = 10s;             // SIGTERM, then SIGKILL after this
constexpr auto kSocketPoll = 100ms;         // blocking socket calls return this often to check deadlines
constexpr auto kLatencyGrace = 15s;         // after the last scheduled line, replies must arrive within this
constexpr std::uint64_t kChunkLines = 256;  // lines per send() in the throughput phase
constexpr std::size_t kMaxSamples = 5;      // unexpected replies / log lines quoted in the report

// Set by SIGINT/SIGTERM; every loop checks it so that the daemon is still stopped and the
// temporary folder still removed when the bench itself is interrupted.
std::atomic<bool> g_interrupted{false};

extern "C" void on_signal(int) {
  g_interrupted.store(true);
}

double ms_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

// ---------------------------------------------------------------------------------------------
// Options

struct Options {
  std::string binary = IRAEWATCH_BINARY;
  std::uint64_t records = 200'000;
  unsigned connections = 4;
  std::uint64_t window = 20'000;
  std::vector<double> rates = {1'000, 5'000};
  double seconds = 10;
  std::string sync = "full";
  double timeout_s = 60;  // the throughput phase gives up (and fails) after this
  std::string tmp_root;   // empty: $TMPDIR, else /tmp
  bool keep = false;
  bool help = false;
};

constexpr const char* kUsage =
    "usage: ingest_bench [--binary PATH] [--records N] [--connections C] [--window W]\n"
    "                    [--rate R[,R...]] [--seconds S] [--sync full|normal] [--timeout S]\n"
    "                    [--tmp-dir DIR] [--keep]\n"
    "  --binary PATH     the iraewatch daemon (default: the one built next to this bench)\n"
    "  --records N       throughput phase: records in total (default 200000)\n"
    "  --connections C   throughput phase: parallel connections (default 4)\n"
    "  --window W        throughput phase: max unacknowledged lines per connection (default 20000)\n"
    "  --rate R          latency phase: offered records/s, repeatable or comma-separated (default 1000,5000)\n"
    "  --seconds S       latency phase: seconds per rate (default 10)\n"
    "  --sync MODE       store.synchronous for the daemon: full (default) or normal\n"
    "  --timeout S       throughput phase: give up after S seconds (default 60)\n"
    "  --tmp-dir DIR     where the temporary data folder goes (default $TMPDIR or /tmp)\n"
    "  --keep            keep the temporary folder (database, daemon log) for inspection\n";

template <typename T>
std::optional<T> parse_number(std::string_view text) {
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::expected<Options, std::string> parse_options(int argc, char** argv) {
  Options o;
  bool rates_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      o.help = true;
      continue;
    }
    if (flag == "--keep") {
      o.keep = true;
      continue;
    }
    if (i + 1 >= argc) return std::unexpected("missing value after " + std::string(flag));
    const std::string_view value = argv[++i];
    const auto bad = [&] { return std::unexpected("bad value '" + std::string(value) + "' for " + std::string(flag)); };
    if (flag == "--binary") {
      o.binary = value;
    } else if (flag == "--records") {
      auto n = parse_number<std::uint64_t>(value);
      if (!n || *n == 0 || *n > 100'000'000) return bad();
      o.records = *n;
    } else if (flag == "--connections") {
      auto n = parse_number<unsigned>(value);
      if (!n || *n == 0 || *n > 64) return bad();  // the daemon's default connection limit is 64
      o.connections = *n;
    } else if (flag == "--window") {
      auto n = parse_number<std::uint64_t>(value);
      if (!n || *n == 0 || *n > 1'000'000) return bad();
      o.window = *n;
    } else if (flag == "--rate") {
      if (!rates_given) o.rates.clear();
      rates_given = true;
      std::string_view rest = value;
      while (!rest.empty()) {
        const auto comma = rest.find(',');
        auto r = parse_number<double>(rest.substr(0, comma));
        if (!r || !(*r >= 1 && *r <= 1'000'000)) return bad();
        o.rates.push_back(*r);
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      }
    } else if (flag == "--seconds") {
      auto s = parse_number<double>(value);
      if (!s || !(*s >= 0.1 && *s <= 600)) return bad();
      o.seconds = *s;
    } else if (flag == "--sync") {
      if (value != "full" && value != "normal") return bad();
      o.sync = value;
    } else if (flag == "--timeout") {
      auto s = parse_number<double>(value);
      if (!s || !(*s >= 1 && *s <= 3600)) return bad();
      o.timeout_s = *s;
    } else if (flag == "--tmp-dir") {
      o.tmp_root = value;
    } else {
      return std::unexpected("unknown option " + std::string(flag));
    }
  }
  if (o.records < o.connections) return std::unexpected("--records must be at least --connections");
  for (double r : o.rates)
    if (r * o.seconds > 10'000'000) return std::unexpected("--rate x --seconds is more than 10 million records");
  if (o.binary.empty() && !o.help) return std::unexpected("no daemon binary: pass --binary PATH");
  return o;
}

// ---------------------------------------------------------------------------------------------
// Test data

struct ConceptSample {
  const char* code;
  const char* unit;
  double low, high;
  int decimals;
};

// Concepts from rules/concepts.yaml, in their canonical units, with plausible value spreads.
constexpr ConceptSample kConcepts[] = {
    {"tsh", "m[IU]/L", 0.1, 12.0, 2},   {"free_t4", "ng/dL", 0.4, 2.6, 2}, {"spo2", "%", 86, 100, 0},
    {"stools_per_day", "/d", 0, 10, 0}, {"crp", "mg/L", 0.5, 120, 1},
};
constexpr const char* kDrugs[] = {"pembrolizumab", "nivolumab", "ipilimumab"};
constexpr std::uint64_t kPatients = 10'000;
constexpr std::int64_t kBaseEpoch = 1'772'323'200;  // 2026-03-01T00:00:00Z
constexpr std::int64_t kTimeSpread = 30 * 86'400;   // event times over 30 days

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

void append_number(std::string& out, std::uint64_t n) {
  char buf[24];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, end);
}

// Appends record n of the stream whose ids start with `prefix`, as one NDJSON line. Everything is
// derived from n, so every run sends the same data; about 2 % are medication records.
void append_record(std::string& out, std::string_view prefix, std::uint64_t n) {
  const std::uint64_t h = splitmix64(n);
  const bool medication = (h >> 56) % 50 == 0;
  out += medication ? R"({"type":"medication","id":")" : R"({"type":"observation","id":")";
  out += prefix;
  append_number(out, n);
  out += R"(","patient":"MRN-)";
  append_number(out, h % kPatients);
  if (medication) {
    out += R"(","drug":")";
    out += kDrugs[(h >> 20) % std::size(kDrugs)];
  } else {
    const ConceptSample& c = kConcepts[(h >> 20) % std::size(kConcepts)];
    const double fraction = static_cast<double>(h >> 11 & 0xFFFFF) / double(0xFFFFF);
    char value[32];
    const int len = std::snprintf(value, sizeof value, "%.*f", c.decimals, c.low + (c.high - c.low) * fraction);
    out += R"(","code":")";
    out += c.code;
    out += R"(","value":)";
    out.append(value, static_cast<std::size_t>(len));
    out += R"(,"unit":")";
    out += c.unit;
  }
  out += R"(","time":")";
  const std::time_t t = kBaseEpoch + static_cast<std::int64_t>((h >> 30) % kTimeSpread);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char when[32];
  out.append(when, std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm));
  out += "\"}\n";
}

// ---------------------------------------------------------------------------------------------
// Replies

// What the replies of one stream looked like. Owned by one reader thread, merged after join.
struct ReplyTally {
  std::uint64_t ok = 0;
  std::uint64_t failed = 0;       // ok:false, or not a reply at all
  std::uint64_t id_mismatch = 0;  // ok:true but for another line: out of order or lost
  std::uint64_t duplicates = 0;   // every id is new, so "duplicate" is wrong here
  std::vector<std::string> samples;

  // Checks the reply to line n of the stream `prefix` (replies come in line order).
  void add(std::string_view reply, std::string_view prefix, std::uint64_t n) {
    needle_.assign(R"("id":")");
    needle_ += prefix;
    append_number(needle_, n);
    needle_ += '"';
    if (reply.find(R"("ok":true)") == std::string_view::npos) {
      ++failed;
      sample("line " + std::to_string(n) + ": " + std::string(reply.substr(0, 300)));
      return;
    }
    ++ok;
    if (reply.find(needle_) == std::string_view::npos) {
      ++id_mismatch;
      sample("expected id " + std::string(prefix) + std::to_string(n) + ", got: " + std::string(reply.substr(0, 300)));
    }
    if (reply.find(R"("duplicate":true)") != std::string_view::npos) {
      ++duplicates;
      sample("unexpected duplicate: " + std::string(reply.substr(0, 300)));
    }
  }

  void merge(const ReplyTally& other) {
    ok += other.ok;
    failed += other.failed;
    id_mismatch += other.id_mismatch;
    duplicates += other.duplicates;
    for (const auto& s : other.samples) sample(s);
  }

  bool clean() const { return failed == 0 && id_mismatch == 0 && duplicates == 0; }

 private:
  void sample(std::string s) {
    if (samples.size() < kMaxSamples) samples.push_back(std::move(s));
  }
  std::string needle_;
};

// ---------------------------------------------------------------------------------------------
// Sockets

class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {}
  Socket(Socket&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Socket& operator=(Socket&&) = delete;
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  int fd() const { return fd_; }

 private:
  int fd_;
};

// Connects to the daemon on loopback. Send and receive time out every kSocketPoll so that the
// callers can check their deadlines; TCP_NODELAY so that the bench measures the daemon, not Nagle.
std::expected<Socket, std::string> connect_loopback(std::uint16_t port) {
  Socket s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (s.fd() < 0) return std::unexpected(std::string("socket: ") + std::strerror(errno));
  timeval tv{0, static_cast<suseconds_t>(std::chrono::microseconds(kSocketPoll).count())};
  ::setsockopt(s.fd(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(s.fd(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  const int one = 1;
  ::setsockopt(s.fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const auto deadline = Clock::now() + 5s;
  while (::connect(s.fd(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    // EINPROGRESS/EAGAIN: the send timeout expired while connecting; the socket keeps trying.
    if (errno == EISCONN) break;
    if ((errno != EINTR && errno != EINPROGRESS && errno != EALREADY && errno != EAGAIN) || Clock::now() > deadline)
      return std::unexpected("connect to 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(errno));
  }
  return s;
}

// Sends all of `data`, or says why not (deadline, interruption, peer gone).
std::expected<void, std::string> send_all(int fd, std::string_view data, Clock::time_point deadline) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      if (g_interrupted) return std::unexpected("interrupted");
      if (Clock::now() > deadline) return std::unexpected("send still blocked at the deadline (daemon not reading)");
      continue;
    }
    return std::unexpected(std::string("send: ") + std::strerror(errno));
  }
  return {};
}

enum class ReadEnd { done, deadline, interrupted, closed, error };

const char* describe(ReadEnd e) {
  switch (e) {
    case ReadEnd::done:
      return "done";
    case ReadEnd::deadline:
      return "replies still missing at the deadline";
    case ReadEnd::interrupted:
      return "interrupted";
    case ReadEnd::closed:
      return "the daemon closed the connection before all replies";
    case ReadEnd::error:
      return "receive error";
  }
  return "?";
}

// Reads reply lines until done() holds, calling on_line(line, arrival) for each complete line.
// All lines of one recv() share its arrival time, which is when the bench could first see them.
template <typename Done, typename OnLine>
ReadEnd read_replies(int fd, Clock::time_point deadline, Done done, OnLine on_line) {
  std::string pending;
  std::vector<char> buf(256 * 1024);
  while (!done()) {
    if (g_interrupted) return ReadEnd::interrupted;
    if (Clock::now() > deadline) return ReadEnd::deadline;
    const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n == 0) return ReadEnd::closed;
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
      return ReadEnd::error;
    }
    const auto arrival = Clock::now();
    pending.append(buf.data(), static_cast<std::size_t>(n));
    std::size_t start = 0;
    for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n', start)) {
      on_line(std::string_view(pending).substr(start, nl - start), arrival);
      start = nl + 1;
    }
    pending.erase(0, start);
  }
  return ReadEnd::done;
}

// ---------------------------------------------------------------------------------------------
// The daemon

class TempDir {
 public:
  static std::expected<std::unique_ptr<TempDir>, std::string> create(std::string root, bool keep) {
    if (root.empty()) {
      const char* env = std::getenv("TMPDIR");
      root = env && *env ? env : "/tmp";
    }
    std::string pattern = root + "/iraewatch-bench-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr)
      return std::unexpected("mkdtemp in " + root + ": " + std::strerror(errno));
    return std::unique_ptr<TempDir>(new TempDir(std::move(pattern), keep));
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    if (keep_) {
      std::printf("kept %s\n", path_.c_str());
      return;
    }
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  TempDir(std::string path, bool keep) : path_(std::move(path)), keep_(keep) {}
  std::string path_;
  bool keep_;
};

std::string filesystem_type(const std::string& path) {
  struct statfs fs {};
  if (::statfs(path.c_str(), &fs) != 0) return "unknown";
  switch (static_cast<unsigned long>(fs.f_type)) {
    case 0xEF53:
      return "ext4";
    case 0x01021994:
      return "tmpfs";
    case 0x58465342:
      return "xfs";
    case 0x9123683E:
      return "btrfs";
    case 0x794C7630:
      return "overlayfs";
    case 0x2FC12FC1:
      return "zfs";
    default: {
      char hex[32];
      std::snprintf(hex, sizeof hex, "0x%lx", static_cast<unsigned long>(fs.f_type));
      return hex;
    }
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("killed by ") + ::strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

struct DaemonEnd {
  std::string how;     // "exit 0", "killed by ...", ...
  bool clean = false;  // exited 0 after SIGTERM, without SIGKILL
  double stop_ms = 0;  // SIGTERM to exit: the drain time
};

// The iraewatch child process. Stopped (SIGTERM, then SIGKILL) no later than its destructor.
class Daemon {
 public:
  static std::expected<std::unique_ptr<Daemon>, std::string> start(const Options& o, const std::string& dir) {
    const std::string config = dir + "/config.yaml";
    {
      std::ofstream out(config);
      out << "store:\n  synchronous: " << o.sync << "\n";
      if (!out) return std::unexpected("cannot write " + config);
    }
    auto d = std::unique_ptr<Daemon>(new Daemon(dir));
    std::vector<std::string> args = {o.binary, "--config",    config,         "--data-dir",    dir + "/data",
                                     "serve",  "--listen",    "127.0.0.1:0",  "--subscribers", "127.0.0.1:0",
                                     "--mllp", "127.0.0.1:0", "--ready-file", d->ready_file_};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) return std::unexpected(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
      // Child: only async-signal-safe calls until exec. SIGTERM if the bench dies without cleanup.
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) ::_exit(127);
      const int fd = ::open(d->log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      if (fd >= 0) {
        ::dup2(fd, STDOUT_FILENO);
        ::dup2(fd, STDERR_FILENO);
      }
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    d->pid_ = pid;
    if (auto ok = d->wait_ready(); !ok) return std::unexpected(ok.error());
    return d;
  }

  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;
  ~Daemon() { stop(); }

  std::uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_; }

  // Idempotent; after it returns the child is reaped.
  DaemonEnd stop() {
    if (pid_ <= 0) return end_;
    const auto begin = Clock::now();
    ::kill(pid_, SIGTERM);
    int status = 0;
    bool reaped = poll_exit(kStopWait, status);
    end_.stop_ms = ms_between(begin, Clock::now());
    if (!reaped) {
      ::kill(pid_, SIGKILL);
      reaped = poll_exit(5s, status);
      end_.how = reaped ? "did not stop within " + std::to_string(kStopWait.count()) + " s of SIGTERM; SIGKILLed"
                        : "did not die even after SIGKILL";
    } else {
      end_.how = describe_status(status);
      end_.clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    pid_ = -1;
    return end_;
  }

 private:
  explicit Daemon(const std::string& dir) : ready_file_(dir + "/ready.json"), log_(dir + "/daemon.log") {}

  bool poll_exit(std::chrono::milliseconds limit, int& status) {
    const auto deadline = Clock::now() + limit;
    for (;;) {
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_ || (r < 0 && errno == ECHILD)) return true;
      if (Clock::now() > deadline) return false;
      std::this_thread::sleep_for(10ms);
    }
  }

  std::expected<void, std::string> wait_ready() {
    const auto deadline = Clock::now() + kReadyWait;
    for (;;) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return std::unexpected("the daemon ended before it was ready (" + describe_status(status) + "); its output:\n" +
                               read_file(log_));
      }
      if (std::filesystem::exists(ready_file_)) {
        const auto ready = nlohmann::json::parse(read_file(ready_file_), nullptr, false);
        if (ready.is_discarded() || !ready.contains("ndjson") || !ready["ndjson"].is_string())
          return std::unexpected("unreadable ready file: " + read_file(ready_file_));
        const std::string endpoint = ready["ndjson"];
        const auto port = parse_number<std::uint16_t>(endpoint.substr(endpoint.rfind(':') + 1));
        if (!port || *port == 0) return std::unexpected("no port in the ready file: " + endpoint);
        if (ready.value("pid", 0) != pid_) std::fprintf(stderr, "warning: the ready file names another pid\n");
        port_ = *port;
        return {};
      }
      if (g_interrupted) return std::unexpected("interrupted");
      if (Clock::now() > deadline)
        return std::unexpected("no ready file after " + std::to_string(kReadyWait.count()) + " s; output:\n" +
                               read_file(log_));
      std::this_thread::sleep_for(20ms);
    }
  }

  std::string ready_file_;
  std::string log_;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  DaemonEnd end_;
};

// What the daemon's own log says: warnings and errors, and its closing count of stored records.
struct LogSummary {
  std::uint64_t warnings = 0, errors = 0;
  std::vector<std::string> samples;
  std::optional<std::uint64_t> stored, duplicates, rejected, not_stored;
};

LogSummary summarise_log(const std::string& path) {
  LogSummary s;
  std::istringstream in(read_file(path));
  std::string line;
  while (std::getline(in, line)) {
    // The pattern is "TIME LEVEL message".
    const auto a = line.find(' ');
    const auto b = a == std::string::npos ? a : line.find(' ', a + 1);
    const std::string level = a == std::string::npos ? "" : line.substr(a + 1, b - a - 1);
    if (level == "warning") ++s.warnings;
    if (level == "error" || level == "critical") ++s.errors;
    if ((level == "warning" || level == "error" || level == "critical") && s.samples.size() < kMaxSamples)
      s.samples.push_back(line.substr(0, 300));
    unsigned long long stored = 0, dup = 0, rej = 0, fail = 0;
    if (const auto at = line.find("stopped: ");
        at != std::string::npos &&
        std::sscanf(line.c_str() + at,
                    "stopped: NDJSON %llu records stored, %llu duplicates, %llu lines rejected, %llu", &stored, &dup,
                    &rej, &fail) == 4) {
      s.stored = stored;
      s.duplicates = dup;
      s.rejected = rej;
      s.not_stored = fail;
    }
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// CPU accounting: the machine is small and may be shared, so each phase reports who used the
// CPUs. A busy neighbour makes every figure pessimistic; a daemon thread near 1.0 core is the
// bottleneck; a daemon far below its share while replies lag is waiting (fsync, locks, the peer).

struct CpuSample {
  Clock::time_point at = Clock::now();
  double machine_busy_s = 0;  // all CPUs, from /proc/stat
  double bench_s = 0;
  double daemon_s = 0;
  std::vector<std::pair<long, double>> daemon_threads;  // tid, CPU seconds
};

double ticks_to_s(unsigned long long ticks) {
  return static_cast<double>(ticks) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// utime + stime of /proc/.../stat, or 0 when the process is gone.
double process_cpu_s(const std::string& stat_path) {
  const std::string text = read_file(stat_path);
  const auto paren = text.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream in(text.substr(paren + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {  // field 3 is the state; 14 utime, 15 stime
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return ticks_to_s(utime + stime);
}

CpuSample sample_cpu(pid_t daemon) {
  CpuSample s;
  std::istringstream stat(read_file("/proc/stat"));
  std::string cpu;
  unsigned long long v[8] = {};  // user nice system idle iowait irq softirq steal
  stat >> cpu;
  for (auto& x : v) stat >> x;
  s.machine_busy_s = ticks_to_s(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]);
  s.bench_s = process_cpu_s("/proc/self/stat");
  const std::string dir = "/proc/" + std::to_string(daemon);
  s.daemon_s = process_cpu_s(dir + "/stat");
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator(dir + "/task", ec)) {
    const auto tid = parse_number<long>(task.path().filename().string());
    if (tid) s.daemon_threads.emplace_back(*tid, process_cpu_s(task.path().string() + "/stat"));
  }
  return s;
}

// CPU used between two samples, in cores (CPU seconds per wall second).
struct CpuUse {
  double daemon = 0, daemon_busiest_thread = 0, bench = 0, machine = 0, others = 0;
};

CpuUse cpu_use(const CpuSample& a, const CpuSample& b) {
  CpuUse u;
  const double wall = std::chrono::duration<double>(b.at - a.at).count();
  if (wall <= 0) return u;
  u.daemon = (b.daemon_s - a.daemon_s) / wall;
  u.bench = (b.bench_s - a.bench_s) / wall;
  u.machine = (b.machine_busy_s - a.machine_busy_s) / wall;
  u.others = std::max(0.0, u.machine - u.daemon - u.bench);
  for (const auto& [tid, after] : b.daemon_threads) {
    double before = 0;
    for (const auto& [t0, s0] : a.daemon_threads)
      if (t0 == tid) before = s0;
    u.daemon_busiest_thread = std::max(u.daemon_busiest_thread, (after - before) / wall);
  }
  return u;
}

void print_cpu(const CpuUse& u) {
  std::printf("  cpu (cores)      daemon %.2f (busiest thread %.2f), bench %.2f, rest of the machine %.2f; %u in all\n",
              u.daemon, u.daemon_busiest_thread, u.bench, u.others, std::thread::hardware_concurrency());
  if (u.others > 0.25)
    std::printf(
        "  WARNING: other processes or kernel threads used %.2f cores in this phase; figures may be pessimistic\n",
        u.others);
}

nlohmann::ordered_json to_json(const CpuUse& u) {
  return {{"daemon", u.daemon},
          {"daemon_busiest_thread", u.daemon_busiest_thread},
          {"bench", u.bench},
          {"others", u.others}};
}

// ---------------------------------------------------------------------------------------------
// Measurements

struct Percentiles {
  std::size_t count = 0;
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, max_ms = 0, mean_ms = 0;
};

Percentiles summarise(std::vector<double> ms) {
  Percentiles p;
  p.count = ms.size();
  if (ms.empty()) return p;
  std::sort(ms.begin(), ms.end());
  const auto rank = [&](double q) {
    const auto i = static_cast<std::size_t>(std::ceil(q * static_cast<double>(ms.size())));
    return ms[std::clamp<std::size_t>(i, 1, ms.size()) - 1];
  };
  p.p50_ms = rank(0.50);
  p.p90_ms = rank(0.90);
  p.p99_ms = rank(0.99);
  p.max_ms = ms.back();
  double sum = 0;
  for (double v : ms) sum += v;
  p.mean_ms = sum / static_cast<double>(ms.size());
  return p;
}

struct ThroughputResult {
  std::uint64_t offered = 0, sent = 0, acked = 0;
  double seconds = 0, records_per_s = 0;
  double first_reply_ms = 0;  // first line sent to first reply seen, on any connection
  double max_gap_ms = 0;      // longest silence between two replies on one connection
  ReplyTally tally;
  std::vector<std::string> problems;
  bool complete() const { return acked == offered && problems.empty(); }
};

// One pipelining connection of the throughput phase: a writer that keeps at most `window` lines
// unacknowledged, and a reader that checks replies and opens the window again.
struct Stream {
  std::string prefix;
  std::uint64_t count = 0;
  std::optional<Socket> socket;
  std::atomic<std::uint64_t> acked{0};
  std::atomic<std::uint64_t> target{0};   // replies to wait for; lowered if sending stops early
  std::atomic<bool> reader_ended{false};  // the writer stops too: nobody would open the window
  std::mutex mutex;
  std::condition_variable window_open;
  ReplyTally tally;
  Clock::time_point first_reply{}, last_reply{};
  double max_gap_ms = 0;
  std::string writer_problem, reader_problem;
};

void stream_writer(Stream& s, std::uint64_t window, Clock::time_point deadline) {
  std::string chunk;
  std::uint64_t next = 0;
  while (next < s.count) {
    if (g_interrupted) {
      s.writer_problem = "interrupted";
      break;
    }
    if (Clock::now() > deadline) {
      s.writer_problem = "timed out with " + std::to_string(s.count - next) + " lines not yet sent";
      break;
    }
    if (s.reader_ended) {
      s.writer_problem = "stopped with " + std::to_string(s.count - next) + " lines not sent: replies ended";
      break;
    }
    {
      std::unique_lock lock(s.mutex);
      s.window_open.wait_for(lock, kSocketPoll, [&] { return next - s.acked.load() < window; });
    }
    const std::uint64_t in_flight = next - s.acked.load();
    if (in_flight >= window) continue;
    const std::uint64_t k = std::min({kChunkLines, window - in_flight, s.count - next});
    chunk.clear();
    for (std::uint64_t i = next; i < next + k; ++i) append_record(chunk, s.prefix, i);
    if (auto ok = send_all(s.socket->fd(), chunk, deadline); !ok) {
      s.writer_problem = ok.error();
      break;
    }
    next += k;
  }
  if (next < s.count) s.target.store(next);
}

void stream_reader(Stream& s, Clock::time_point deadline) {
  const ReadEnd end = read_replies(
      s.socket->fd(), deadline, [&] { return s.acked.load() >= s.target.load(); },
      [&](std::string_view line, Clock::time_point arrival) {
        const std::uint64_t n = s.acked.load();
        s.tally.add(line, s.prefix, n);
        if (n == 0) {
          s.first_reply = arrival;
        } else if (arrival != s.last_reply) {
          s.max_gap_ms = std::max(s.max_gap_ms, ms_between(s.last_reply, arrival));
        }
        s.last_reply = arrival;
        s.acked.store(n + 1);
        // Take the lock so that a writer between its check and its wait cannot miss the wake-up.
        { std::lock_guard lock(s.mutex); }
        s.window_open.notify_one();
      });
  if (end != ReadEnd::done) s.reader_problem = describe(end);
  if (end == ReadEnd::error) s.reader_problem += std::string(": ") + std::strerror(errno);
  s.reader_ended = true;
}

ThroughputResult run_throughput(std::uint16_t port, const Options& o, const std::string& run_tag) {
  ThroughputResult r;
  r.offered = o.records;
  std::vector<std::unique_ptr<Stream>> streams;
  for (unsigned c = 0; c < o.connections; ++c) {
    auto s = std::make_unique<Stream>();
    s->prefix = "b-" + run_tag + "-t" + std::to_string(c) + "-";
    s->count = o.records / o.connections + (c < o.records % o.connections ? 1 : 0);
    s->target = s->count;
    auto socket = connect_loopback(port);
    if (!socket) {
      r.problems.push_back(socket.error());
      return r;
    }
    s->socket.emplace(std::move(*socket));
    streams.push_back(std::move(s));
  }
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.timeout_s));
  {
    std::vector<std::jthread> threads;
    for (auto& s : streams) {
      threads.emplace_back(stream_writer, std::ref(*s), o.window, deadline);
      threads.emplace_back(stream_reader, std::ref(*s), deadline);
    }
  }
  Clock::time_point end = start, first = Clock::time_point::max();
  for (std::size_t c = 0; c < streams.size(); ++c) {
    const Stream& s = *streams[c];
    r.acked += s.acked.load();
    r.sent += s.target.load();
    r.tally.merge(s.tally);
    r.max_gap_ms = std::max(r.max_gap_ms, s.max_gap_ms);
    if (s.acked.load() > 0) {
      end = std::max(end, s.last_reply);
      first = std::min(first, s.first_reply);
    }
    if (!s.writer_problem.empty())
      r.problems.push_back("connection " + std::to_string(c) + " send: " + s.writer_problem);
    if (!s.reader_problem.empty())
      r.problems.push_back("connection " + std::to_string(c) + " replies: " + s.reader_problem + " (" +
                           std::to_string(s.acked.load()) + " of " + std::to_string(s.count) + " acknowledged)");
  }
  r.seconds = std::chrono::duration<double>(end - start).count();
  r.records_per_s = r.seconds > 0 ? static_cast<double>(r.acked) / r.seconds : 0;
  r.first_reply_ms = first == Clock::time_point::max() ? 0 : ms_between(start, first);
  return r;
}

struct LatencyResult {
  double rate = 0, seconds = 0;
  std::uint64_t offered = 0, sent = 0, acked = 0;
  double achieved_rate = 0;    // lines actually sent per second of the sending window
  double max_send_lag_ms = 0;  // how late the bench sent a line against its schedule
  double max_gap_ms = 0;
  Percentiles from_schedule, from_send;
  ReplyTally tally;
  std::vector<std::string> problems;
  bool complete() const { return acked == offered && problems.empty(); }
};

LatencyResult run_latency(std::uint16_t port, double rate, double seconds, const std::string& run_tag) {
  LatencyResult r;
  r.rate = rate;
  r.seconds = seconds;
  r.offered = static_cast<std::uint64_t>(rate * seconds);
  const std::string prefix = "b-" + run_tag + "-l" + std::to_string(static_cast<std::uint64_t>(rate)) + "-";
  auto socket = connect_loopback(port);
  if (!socket) {
    r.problems.push_back(socket.error());
    return r;
  }
  const int fd = socket->fd();
  const std::chrono::duration<double> period(1.0 / rate);
  const auto start = Clock::now() + 50ms;  // leave the threads time to start
  const auto scheduled = [&](std::uint64_t i) {
    return start + std::chrono::duration_cast<Clock::duration>(period * static_cast<double>(i));
  };
  const auto send_deadline = scheduled(r.offered) + 5s;
  const auto read_deadline = scheduled(r.offered) + kLatencyGrace;

  // sent_at[i] is written before `published` passes i, and read only after it has (acquire).
  std::vector<Clock::time_point> sent_at(r.offered);
  std::atomic<std::uint64_t> published{0}, target{r.offered};
  std::vector<double> from_schedule, from_send;
  from_schedule.reserve(r.offered);
  from_send.reserve(r.offered);
  std::string writer_problem, reader_problem;
  Clock::time_point last_send = start, last_reply{};
  std::uint64_t acked = 0;
  {
    std::jthread writer([&] {
      std::string chunk;
      std::uint64_t i = 0;
      while (i < r.offered) {
        if (g_interrupted) {
          writer_problem = "interrupted";
          break;
        }
        const auto now = Clock::now();
        if (now > send_deadline) {
          writer_problem = "fell behind schedule by more than 5 s";
          break;
        }
        if (now < scheduled(i)) {
          std::this_thread::sleep_until(std::min(scheduled(i), now + kSocketPoll));
          continue;
        }
        // Every line whose time has come leaves now, in one send().
        std::uint64_t due = i;
        chunk.clear();
        while (due < r.offered && due - i < kChunkLines && scheduled(due) <= now) {
          append_record(chunk, prefix, due);
          r.max_send_lag_ms = std::max(r.max_send_lag_ms, ms_between(scheduled(due), now));
          sent_at[due++] = now;
        }
        published.store(due, std::memory_order_release);
        if (auto ok = send_all(fd, chunk, send_deadline); !ok) {
          writer_problem = ok.error();
          break;
        }
        last_send = now;
        i = due;
      }
      if (i < r.offered) target.store(i);
      r.sent = i;
    });
    std::jthread reader([&] {
      const ReadEnd end = read_replies(
          fd, read_deadline, [&] { return acked >= target.load(); },
          [&](std::string_view line, Clock::time_point arrival) {
            r.tally.add(line, prefix, acked);
            from_schedule.push_back(ms_between(scheduled(acked), arrival));
            if (published.load(std::memory_order_acquire) > acked)
              from_send.push_back(ms_between(sent_at[acked], arrival));
            if (acked > 0 && arrival != last_reply)
              r.max_gap_ms = std::max(r.max_gap_ms, ms_between(last_reply, arrival));
            last_reply = arrival;
            ++acked;
          });
      if (end != ReadEnd::done) reader_problem = describe(end);
    });
  }
  r.acked = acked;
  const double window_s = std::chrono::duration<double>(last_send - start).count();
  r.achieved_rate = window_s > 0 && r.sent > 1 ? static_cast<double>(r.sent - 1) / window_s : 0;
  r.from_schedule = summarise(std::move(from_schedule));
  r.from_send = summarise(std::move(from_send));
  if (!writer_problem.empty()) r.problems.push_back("send: " + writer_problem);
  if (!reader_problem.empty())
    r.problems.push_back("replies: " + reader_problem + " (" + std::to_string(r.acked) + " of " +
                         std::to_string(r.offered) + " acknowledged)");
  return r;
}

// ---------------------------------------------------------------------------------------------
// Report

void print_tally(const ReplyTally& t, const std::vector<std::string>& problems) {
  std::printf("  replies ok       %llu; failed %llu, wrong id/order %llu, unexpected duplicates %llu\n",
              static_cast<unsigned long long>(t.ok), static_cast<unsigned long long>(t.failed),
              static_cast<unsigned long long>(t.id_mismatch), static_cast<unsigned long long>(t.duplicates));
  for (const auto& s : t.samples) std::printf("    reply: %s\n", s.c_str());
  for (const auto& p : problems) std::printf("  PROBLEM: %s\n", p.c_str());
}

nlohmann::ordered_json to_json(const Percentiles& p) {
  return {
      {"p50_ms", p.p50_ms}, {"p90_ms", p.p90_ms}, {"p99_ms", p.p99_ms}, {"max_ms", p.max_ms}, {"mean_ms", p.mean_ms}};
}

nlohmann::ordered_json to_json(const ReplyTally& t) {
  return {{"ok", t.ok}, {"failed", t.failed}, {"id_mismatch", t.id_mismatch}, {"duplicates", t.duplicates}};
}

int run(const Options& o) {
  auto tmp = TempDir::create(o.tmp_root, o.keep);
  if (!tmp) {
    std::fprintf(stderr, "ingest_bench: %s\n", tmp.error().c_str());
    return 2;
  }
  const std::string fs = filesystem_type((*tmp)->path());
  const std::string run_tag = std::to_string(::getpid());
  auto daemon = Daemon::start(o, (*tmp)->path());
  if (!daemon) {
    std::fprintf(stderr, "ingest_bench: cannot start the daemon: %s\n", daemon.error().c_str());
    return 2;
  }
  std::printf("iraewatch ingest benchmark\n");
  std::printf("  daemon           %s (pid %d, 127.0.0.1:%u)\n", o.binary.c_str(), static_cast<int>((*daemon)->pid()),
              static_cast<unsigned>((*daemon)->port()));
  std::printf("  store            synchronous=%s, data in %s (%s)\n", o.sync.c_str(), (*tmp)->path().c_str(),
              fs.c_str());
  std::printf("  machine          %u hardware threads, shared by the daemon and the bench\n",
              std::thread::hardware_concurrency());
  if (fs == "tmpfs") std::printf("  WARNING: tmpfs ignores fsync; synchronous=full figures mean nothing here\n");
  std::fflush(stdout);

  nlohmann::ordered_json report = {
      {"bench", "ingest"}, {"sync", o.sync}, {"filesystem", fs}, {"cpus", std::thread::hardware_concurrency()}};
  bool ok = true;
  std::uint64_t expected_stored = 0;

  const pid_t daemon_pid = (*daemon)->pid();
  const CpuSample tp_begin = sample_cpu(daemon_pid);
  const ThroughputResult tp = run_throughput((*daemon)->port(), o, run_tag);
  const CpuUse tp_cpu = cpu_use(tp_begin, sample_cpu(daemon_pid));
  std::printf("\nthroughput: %u connections, %llu records, window %llu lines per connection\n", o.connections,
              static_cast<unsigned long long>(o.records), static_cast<unsigned long long>(o.window));
  std::printf("  acknowledged     %llu of %llu in %.2f s\n", static_cast<unsigned long long>(tp.acked),
              static_cast<unsigned long long>(tp.offered), tp.seconds);
  std::printf("  records/s        %.0f\n", tp.records_per_s);
  std::printf("  first reply      %.1f ms after the first line; longest silence between replies %.1f ms\n",
              tp.first_reply_ms, tp.max_gap_ms);
  print_cpu(tp_cpu);
  print_tally(tp.tally, tp.problems);
  std::fflush(stdout);
  ok = ok && tp.complete() && tp.tally.clean();
  expected_stored += tp.tally.ok - tp.tally.duplicates;
  report["throughput"] = {{"connections", o.connections},
                          {"records", tp.offered},
                          {"acked", tp.acked},
                          {"seconds", tp.seconds},
                          {"records_per_s", tp.records_per_s},
                          {"first_reply_ms", tp.first_reply_ms},
                          {"max_gap_ms", tp.max_gap_ms},
                          {"replies", to_json(tp.tally)},
                          {"cpu", to_json(tp_cpu)},
                          {"complete", tp.complete()}};

  report["latency"] = nlohmann::ordered_json::array();
  for (double rate : o.rates) {
    if (g_interrupted) break;
    const CpuSample lr_begin = sample_cpu(daemon_pid);
    const LatencyResult lr = run_latency((*daemon)->port(), rate, o.seconds, run_tag);
    const CpuUse lr_cpu = cpu_use(lr_begin, sample_cpu(daemon_pid));
    std::printf("\nack latency: %.0f records/s offered for %.1f s on 1 connection (open loop)\n", rate, o.seconds);
    std::printf("  acknowledged     %llu of %llu; sent at %.0f records/s, at most %.1f ms behind schedule\n",
                static_cast<unsigned long long>(lr.acked), static_cast<unsigned long long>(lr.offered),
                lr.achieved_rate, lr.max_send_lag_ms);
    std::printf("  latency (ms)     p50 %.2f   p90 %.2f   p99 %.2f   max %.2f   mean %.2f\n", lr.from_schedule.p50_ms,
                lr.from_schedule.p90_ms, lr.from_schedule.p99_ms, lr.from_schedule.max_ms, lr.from_schedule.mean_ms);
    std::printf("  from send()      p50 %.2f   p99 %.2f   max %.2f; longest silence between replies %.1f ms\n",
                lr.from_send.p50_ms, lr.from_send.p99_ms, lr.from_send.max_ms, lr.max_gap_ms);
    print_cpu(lr_cpu);
    print_tally(lr.tally, lr.problems);
    std::fflush(stdout);
    ok = ok && lr.complete() && lr.tally.clean();
    expected_stored += lr.tally.ok - lr.tally.duplicates;
    auto j = nlohmann::ordered_json{{"rate", rate},
                                    {"seconds", o.seconds},
                                    {"offered", lr.offered},
                                    {"acked", lr.acked},
                                    {"achieved_rate", lr.achieved_rate},
                                    {"max_send_lag_ms", lr.max_send_lag_ms},
                                    {"max_gap_ms", lr.max_gap_ms}};
    j.update(to_json(lr.from_schedule));
    j["from_send"] = to_json(lr.from_send);
    j["replies"] = to_json(lr.tally);
    j["cpu"] = to_json(lr_cpu);
    j["complete"] = lr.complete();
    report["latency"].push_back(std::move(j));
  }

  const DaemonEnd end = (*daemon)->stop();
  const LogSummary log = summarise_log((*daemon)->log_path());
  std::printf("\ndaemon\n");
  std::printf("  stop             %s, %.0f ms after SIGTERM\n", end.how.c_str(), end.stop_ms);
  if (log.stored) {
    std::printf(
        "  its count        %llu stored, %llu duplicates, %llu rejected, %llu not stored (bench expected %llu "
        "stored)\n",
        static_cast<unsigned long long>(*log.stored), static_cast<unsigned long long>(*log.duplicates),
        static_cast<unsigned long long>(*log.rejected), static_cast<unsigned long long>(*log.not_stored),
        static_cast<unsigned long long>(expected_stored));
  } else {
    std::printf("  its count        missing: no 'stopped:' line in its log\n");
  }
  std::printf("  log              %llu warnings, %llu errors\n", static_cast<unsigned long long>(log.warnings),
              static_cast<unsigned long long>(log.errors));
  for (const auto& s : log.samples) std::printf("    %s\n", s.c_str());
  const bool counts_agree = log.stored && *log.stored == expected_stored && *log.not_stored == 0;
  ok = ok && end.clean && counts_agree && log.errors == 0 && !g_interrupted;
  report["daemon"] = {{"stop", end.how},
                      {"stop_ms", end.stop_ms},
                      {"clean_stop", end.clean},
                      {"stored", log.stored ? nlohmann::ordered_json(*log.stored) : nlohmann::ordered_json()},
                      {"expected_stored", expected_stored},
                      {"log_warnings", log.warnings},
                      {"log_errors", log.errors}};
  report["ok"] = ok;
  std::printf("\nresult: %s\n", ok ? "ok" : "FAILED (see above)");
  std::printf("%s\n", report.dump().c_str());
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  auto options = parse_options(argc, argv);
  if (!options) {
    std::fprintf(stderr, "ingest_bench: %s\n%s", options.error().c_str(), kUsage);
    return 2;
  }
  if (options->help) {
    std::printf("%s", kUsage);
    return 0;
  }
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  ::sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  try {
    return run(*options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ingest_bench: %s\n", e.what());
    return 2;
  }
}
