// alert_bench: how long an alert takes to reach a subscriber once the record that caused it has
// been acknowledged by a real iraewatch daemon.
//
// The daemon is a black box: the bench starts it as a child process on a fresh data folder, talks
// to it over loopback exactly as a sender and an alert subscriber would, and stops it at the end.
//   warm-up   every patient gets one ICI dose (no alert; not measured);
//   phases    one connection offers TSH results at a fixed rate, open loop (each line leaves at
//             its scheduled time whatever the replies do), while one subscriber connection reads
//             the alert stream. Results alternate high / normal per patient with increasing event
//             times, so every record fires or resolves exactly one thyroid alert (T1).
// For each record: ack time (its {"ok":true,"id":...} reply seen on the NDJSON connection) and
// alert time (the event line whose "trigger" names it seen on the subscriber connection). Both
// follow the same commit, so the alert may come first: its delay then counts as 0, and how often
// that happened is reported. Every record must get exactly one alert, with consecutive seqs from
// the subscriber's hello on; anything else is counted, sampled and makes the exit status 1 (2 for
// setup errors: no daemon, no ready file, bad options). Every wait has a deadline.

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
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <expected>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
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
constexpr auto kHelloWait = 5s;             // a new subscriber must get its hello line within this
constexpr auto kWarmupWait = 60s;           // every dose of the warm-up must be acknowledged within this
constexpr auto kLatencyGrace = 15s;         // after the last scheduled line, replies and alerts must arrive within this
constexpr std::uint64_t kChunkLines = 256;  // most lines per send()
constexpr std::size_t kMaxSamples = 5;      // unexpected replies / alert lines / log lines quoted in the report

// Set by SIGINT/SIGTERM; every loop checks it so that the daemon is still stopped and the
// temporary folder still removed when the bench itself is interrupted.
std::atomic<bool> g_interrupted{false};

extern "C" void on_signal(int) {
  g_interrupted.store(true);
}

double ms_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

template <typename T>
std::optional<T> parse_number(std::string_view text) {
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

void append_number(std::string& out, std::uint64_t n) {
  char buf[24];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, end);
}

// ---------------------------------------------------------------------------------------------
// Test data
//
// Patient p is "MRN-p"; its dose is record "d-p". Measured record n (counted over all phases, so
// that the alternation goes on from one phase to the next) is "t-n", for patient n % patients;
// it is that patient's k-th result, k = n / patients: high (fires T1) when k is even, normal
// (resolves it) when k is odd, taken k minutes after the first.

constexpr std::int64_t kDoseEpoch = 1'772'355'600;  // 2026-03-01T09:00:00Z
constexpr std::int64_t kTshEpoch = 1'773'993'600;   // 2026-03-20T08:00:00Z
constexpr std::int64_t kTshStep = 60;               // seconds between two results of one patient
// Results must stay within the rules' ICI exposure window (365 d) of the dose.
constexpr std::uint64_t kMaxResultsPerPatient = 300 * 86'400 / kTshStep;
constexpr std::string_view kFeed = "ndjson";  // the daemon's default feed: triggers read "ndjson|t-n"

void append_time(std::string& out, std::int64_t epoch_s) {
  const std::time_t t = epoch_s;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char when[32];
  out.append(when, std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm));
}

void append_dose(std::string& out, std::uint64_t patient) {
  out += R"({"type":"medication","id":"d-)";
  append_number(out, patient);
  out += R"(","patient":"MRN-)";
  append_number(out, patient);
  out += R"(","drug":"nivolumab","time":")";
  append_time(out, kDoseEpoch);
  out += "\"}\n";
}

bool fires(std::uint64_t n, std::uint64_t patients) {
  return (n / patients) % 2 == 0;
}

void append_result(std::string& out, std::uint64_t n, std::uint64_t patients) {
  const std::uint64_t k = n / patients;
  out += R"({"type":"observation","id":"t-)";
  append_number(out, n);
  out += R"(","patient":"MRN-)";
  append_number(out, n % patients);
  out += fires(n, patients) ? R"(","code":"tsh","value":7.5,"unit":"m[IU]/L","time":")"
                            : R"(","code":"tsh","value":2.0,"unit":"m[IU]/L","time":")";
  append_time(out, kTshEpoch + static_cast<std::int64_t>(k) * kTshStep);
  out += "\"}\n";
}

std::string result_id(std::uint64_t n) {
  std::string id = "t-";
  append_number(id, n);
  return id;
}

// ---------------------------------------------------------------------------------------------
// Options

struct Options {
  std::string binary = IRAEWATCH_BINARY;
  std::uint64_t patients = 10'000;
  std::vector<double> rates = {1'000, 5'000};
  double seconds = 10;
  std::string sync = "full";
  std::string tmp_root;  // empty: $TMPDIR, else /tmp
  std::string dump;      // write the record stream here and exit
  bool keep = false;
  bool help = false;

  std::uint64_t offered(double rate) const { return static_cast<std::uint64_t>(rate * seconds); }
  std::uint64_t total_results() const {
    std::uint64_t n = 0;
    for (double r : rates) n += offered(r);
    return n;
  }
};

constexpr const char* kUsage =
    "usage: alert_bench [--binary PATH] [--rate R[,R...]] [--seconds S] [--patients N]\n"
    "                   [--sync full|normal] [--tmp-dir DIR] [--keep] [--dump-records FILE]\n"
    "  --binary PATH        the iraewatch daemon (default: the one built next to this bench)\n"
    "  --rate R             offered records/s, repeatable or comma-separated (default 1000,5000)\n"
    "  --seconds S          seconds per rate (default 10)\n"
    "  --patients N         patients the records are spread over (default 10000)\n"
    "  --sync MODE          store.synchronous for the daemon: full (default) or normal\n"
    "  --tmp-dir DIR        where the temporary data folder goes (default $TMPDIR or /tmp)\n"
    "  --keep               keep the temporary folder (database, alert file, daemon log) for inspection\n"
    "  --dump-records FILE  write the records the bench would send (doses, then every phase) to FILE\n"
    "                       and exit, e.g. to check them with `iraewatch replay FILE`\n";

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
    } else if (flag == "--patients") {
      auto n = parse_number<std::uint64_t>(value);
      if (!n || *n == 0 || *n > 10'000'000) return bad();
      o.patients = *n;
    } else if (flag == "--sync") {
      if (value != "full" && value != "normal") return bad();
      o.sync = value;
    } else if (flag == "--tmp-dir") {
      o.tmp_root = value;
    } else if (flag == "--dump-records") {
      o.dump = value;
    } else {
      return std::unexpected("unknown option " + std::string(flag));
    }
  }
  if (o.rates.empty()) return std::unexpected("no --rate given");
  for (double r : o.rates) {
    if (r * o.seconds > 10'000'000) return std::unexpected("--rate x --seconds is more than 10 million records");
    if (o.offered(r) == 0) return std::unexpected("--rate x --seconds is less than one record");
  }
  if (o.total_results() / o.patients >= kMaxResultsPerPatient)
    return std::unexpected("too few --patients: their results would outlast the rules' ICI exposure window");
  if (o.binary.empty() && !o.help && o.dump.empty()) return std::unexpected("no daemon binary: pass --binary PATH");
  return o;
}

// ---------------------------------------------------------------------------------------------
// Replies on the NDJSON connection

// What the replies of one stream looked like. Owned by one reader thread.
struct ReplyTally {
  std::uint64_t ok = 0;
  std::uint64_t failed = 0;       // ok:false, or not a reply at all
  std::uint64_t id_mismatch = 0;  // ok:true but for another line: out of order or lost
  std::uint64_t duplicates = 0;   // every id is new, so "duplicate" is wrong here
  std::vector<std::string> samples;

  // Checks the reply to the line with id `id` (replies come in line order).
  void add(std::string_view reply, std::string_view id) {
    needle_.assign(R"("id":")");
    needle_ += id;
    needle_ += '"';
    if (reply.find(R"("ok":true)") == std::string_view::npos) {
      ++failed;
      sample(std::string(id) + ": " + std::string(reply.substr(0, 300)));
      return;
    }
    ++ok;
    if (reply.find(needle_) == std::string_view::npos) {
      ++id_mismatch;
      sample("expected id " + std::string(id) + ", got: " + std::string(reply.substr(0, 300)));
    }
    if (reply.find(R"("duplicate":true)") != std::string_view::npos) {
      ++duplicates;
      sample("unexpected duplicate: " + std::string(reply.substr(0, 300)));
    }
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

std::string describe(ReadEnd e) {
  switch (e) {
    case ReadEnd::done:
      return "done";
    case ReadEnd::deadline:
      return "still missing at the deadline";
    case ReadEnd::interrupted:
      return "interrupted";
    case ReadEnd::closed:
      return "the daemon closed the connection";
    case ReadEnd::error:
      return std::string("receive error: ") + std::strerror(errno);
  }
  return "?";
}

// The lines coming in on one connection. Bytes after the last complete line stay for the next
// read(), so that one connection can be read in stages (the subscriber's hello, then its events).
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd), buf_(256 * 1024) {}

  // Reads lines until done() holds, calling on_line(line, arrival) for each complete line. All
  // lines of one recv() share its arrival time, which is when the bench could first see them.
  template <typename Done, typename OnLine>
  ReadEnd read(Clock::time_point deadline, Done done, OnLine on_line) {
    while (!done()) {
      if (!pending_.empty() && pending_.find('\n') != std::string::npos) {
        deliver(last_arrival_, done, on_line);
        continue;
      }
      if (g_interrupted) return ReadEnd::interrupted;
      if (Clock::now() > deadline) return ReadEnd::deadline;
      const ssize_t n = ::recv(fd_, buf_.data(), buf_.size(), 0);
      if (n == 0) return ReadEnd::closed;
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
        return ReadEnd::error;
      }
      last_arrival_ = Clock::now();
      pending_.append(buf_.data(), static_cast<std::size_t>(n));
      deliver(last_arrival_, done, on_line);
    }
    return ReadEnd::done;
  }

 private:
  // Hands over complete lines until done() holds; the rest stays pending.
  template <typename Done, typename OnLine>
  void deliver(Clock::time_point arrival, Done& done, OnLine& on_line) {
    std::size_t start = 0;
    for (auto nl = pending_.find('\n'); nl != std::string::npos && !done(); nl = pending_.find('\n', start)) {
      on_line(std::string_view(pending_).substr(start, nl - start), arrival);
      start = nl + 1;
    }
    pending_.erase(0, start);
  }

  int fd_;
  std::vector<char> buf_;
  std::string pending_;
  Clock::time_point last_arrival_{};
};

// ---------------------------------------------------------------------------------------------
// The daemon

class TempDir {
 public:
  static std::expected<std::unique_ptr<TempDir>, std::string> create(std::string root, bool keep) {
    if (root.empty()) {
      const char* env = std::getenv("TMPDIR");
      root = env && *env ? env : "/tmp";
    }
    std::string pattern = root + "/iraewatch-alert-bench-XXXXXX";
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

// The port after the last ':' of an "address:port" endpoint from the ready file.
std::optional<std::uint16_t> endpoint_port(const nlohmann::json& ready, const char* key) {
  if (!ready.contains(key) || !ready[key].is_string()) return std::nullopt;
  const std::string endpoint = ready[key];
  const auto port = parse_number<std::uint16_t>(endpoint.substr(endpoint.rfind(':') + 1));
  if (!port || *port == 0) return std::nullopt;
  return port;
}

// The iraewatch child process, with its NDJSON listener and its alert subscriber socket on
// loopback. Stopped (SIGTERM, then SIGKILL) no later than its destructor.
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
    std::vector<std::string> args = {o.binary,        "--config",    config,         "--data-dir",
                                     dir + "/data",   "serve",       "--listen",     "127.0.0.1:0",
                                     "--subscribers", "127.0.0.1:0", "--ready-file", d->ready_file_};
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

  std::uint16_t ndjson_port() const { return ndjson_port_; }
  std::uint16_t subscriber_port() const { return subscriber_port_; }
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
        if (ready.is_discarded()) return std::unexpected("unreadable ready file: " + read_file(ready_file_));
        const auto ndjson = endpoint_port(ready, "ndjson");
        const auto subscribers = endpoint_port(ready, "subscribers");
        if (!ndjson || !subscribers)
          return std::unexpected("no ndjson or subscribers port in the ready file: " + read_file(ready_file_));
        if (ready.value("pid", 0) != pid_) std::fprintf(stderr, "warning: the ready file names another pid\n");
        ndjson_port_ = *ndjson;
        subscriber_port_ = *subscribers;
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
  std::uint16_t ndjson_port_ = 0;
  std::uint16_t subscriber_port_ = 0;
  DaemonEnd end_;
};

// What the daemon's own log says: warnings and errors, and its closing counts.
struct LogSummary {
  std::uint64_t warnings = 0, errors = 0;
  std::vector<std::string> samples;
  std::optional<std::uint64_t> stored, duplicates, rejected, not_stored, alert_events;
};

// The number just before `label` in `text` ("... 12 alert events"), if there is one.
std::optional<std::uint64_t> count_before(std::string_view text, std::string_view label) {
  const auto at = text.find(label);
  if (at == std::string_view::npos) return std::nullopt;
  auto begin = at;
  while (begin > 0 && text[begin - 1] >= '0' && text[begin - 1] <= '9') --begin;
  return parse_number<std::uint64_t>(text.substr(begin, at - begin));
}

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
    // "stopped: [NDJSON] N records stored, N duplicates, N lines rejected, N not stored (...); ...
    // N alert events": each count is found by its label, so that added fields do not break it.
    const auto at = line.find("stopped: ");
    if (at == std::string::npos) continue;
    const std::string_view rest = std::string_view(line).substr(at);
    s.stored = count_before(rest, " records stored");
    s.duplicates = count_before(rest, " duplicates");
    s.rejected = count_before(rest, " lines rejected");
    s.not_stored = count_before(rest, " not stored");
    s.alert_events = count_before(rest, " alert events");
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// CPU accounting: the machine is small and may be shared, so each phase reports who used the
// CPUs. A busy neighbour makes every figure pessimistic; a daemon thread near 1.0 core is the
// bottleneck; a daemon far below its share while alerts lag is waiting (fsync, locks, the peer).
// The run-queue wait (time runnable but not running, summed over threads) tells the last two
// apart from a CPU shortage: an alert is a chain of thread hand-offs, each of which can wait.

struct CpuSample {
  Clock::time_point at = Clock::now();
  double machine_busy_s = 0;  // all CPUs, from /proc/stat
  double bench_s = 0;
  double daemon_s = 0;
  std::vector<std::pair<long, double>> daemon_threads;  // tid, CPU seconds
  std::optional<double> daemon_wait_s, bench_wait_s;    // run-queue wait of all threads, if the kernel says
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

// The run-queue wait of every thread of a process (second field of /proc/PID/task/TID/schedstat),
// or nothing when the kernel does not provide it. Threads that have ended are not counted: see
// CountWait for the bench's own.
std::optional<double> run_queue_wait_s(const std::string& proc_dir) {
  double total = 0;
  bool any = false;
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator(proc_dir + "/task", ec)) {
    std::istringstream in(read_file(task.path().string() + "/schedstat"));
    unsigned long long on_cpu_ns = 0, waiting_ns = 0;
    if (!(in >> on_cpu_ns >> waiting_ns)) continue;
    total += static_cast<double>(waiting_ns) / 1e9;
    any = true;
  }
  if (!any) return std::nullopt;
  return total;
}

// Run-queue wait of the bench's threads that have ended (CountWait adds theirs as they end).
std::atomic<double> g_ended_threads_wait_s{0};

// Counts the run-queue wait of the thread it lives in, from construction to destruction, into
// g_ended_threads_wait_s: the bench's worker threads live for one phase, between two samples.
class CountWait {
 public:
  CountWait() : start_(own_wait_s()) {}
  CountWait(const CountWait&) = delete;
  CountWait& operator=(const CountWait&) = delete;
  ~CountWait() {
    if (start_ && (end_ = own_wait_s())) g_ended_threads_wait_s.fetch_add(*end_ - *start_);
  }

 private:
  static std::optional<double> own_wait_s() {
    std::istringstream in(read_file("/proc/thread-self/schedstat"));
    unsigned long long on_cpu_ns = 0, waiting_ns = 0;
    if (!(in >> on_cpu_ns >> waiting_ns)) return std::nullopt;
    return static_cast<double>(waiting_ns) / 1e9;
  }
  std::optional<double> start_, end_;
};

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
  s.daemon_wait_s = run_queue_wait_s(dir);
  s.bench_wait_s = run_queue_wait_s("/proc/self");
  if (s.bench_wait_s) *s.bench_wait_s += g_ended_threads_wait_s.load();
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
  std::optional<double> daemon_wait, bench_wait;  // run-queue wait, in seconds per wall second
};

CpuUse cpu_use(const CpuSample& a, const CpuSample& b) {
  CpuUse u;
  const double wall = std::chrono::duration<double>(b.at - a.at).count();
  if (wall <= 0) return u;
  u.daemon = (b.daemon_s - a.daemon_s) / wall;
  u.bench = (b.bench_s - a.bench_s) / wall;
  u.machine = (b.machine_busy_s - a.machine_busy_s) / wall;
  u.others = std::max(0.0, u.machine - u.daemon - u.bench);
  if (a.daemon_wait_s && b.daemon_wait_s) u.daemon_wait = (*b.daemon_wait_s - *a.daemon_wait_s) / wall;
  if (a.bench_wait_s && b.bench_wait_s) u.bench_wait = (*b.bench_wait_s - *a.bench_wait_s) / wall;
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
  if (u.daemon_wait && u.bench_wait)
    std::printf("  cpu wait         runnable but not running: daemon threads %.0f ms/s, bench threads %.0f ms/s\n",
                *u.daemon_wait * 1000, *u.bench_wait * 1000);
  if (u.others > 0.25)
    std::printf(
        "  WARNING: other processes or kernel threads used %.2f cores in this phase; figures may be pessimistic\n",
        u.others);
}

nlohmann::ordered_json to_json(const CpuUse& u) {
  return {{"daemon", u.daemon},
          {"daemon_busiest_thread", u.daemon_busiest_thread},
          {"bench", u.bench},
          {"others", u.others},
          {"daemon_wait", u.daemon_wait ? nlohmann::ordered_json(*u.daemon_wait) : nlohmann::ordered_json()},
          {"bench_wait", u.bench_wait ? nlohmann::ordered_json(*u.bench_wait) : nlohmann::ordered_json()}};
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

struct WarmupResult {
  std::uint64_t offered = 0, acked = 0;
  double seconds = 0;
  ReplyTally tally;
  std::vector<std::string> problems;
  bool complete() const { return acked == offered && problems.empty() && tally.clean(); }
};

// One ICI dose per patient, pipelined on one connection as fast as the daemon takes them.
WarmupResult run_warmup(std::uint16_t port, std::uint64_t patients) {
  WarmupResult r;
  r.offered = patients;
  auto socket = connect_loopback(port);
  if (!socket) {
    r.problems.push_back(socket.error());
    return r;
  }
  const int fd = socket->fd();
  const auto start = Clock::now();
  const auto deadline = start + kWarmupWait;
  std::atomic<std::uint64_t> target{patients};
  std::string writer_problem, reader_problem;
  {
    std::jthread writer([&] {
      CountWait count_wait;
      std::string chunk;
      std::uint64_t p = 0;
      while (p < patients) {
        chunk.clear();
        const std::uint64_t end = std::min(patients, p + kChunkLines);
        for (std::uint64_t i = p; i < end; ++i) append_dose(chunk, i);
        if (auto ok = send_all(fd, chunk, deadline); !ok) {
          writer_problem = ok.error();
          break;
        }
        p = end;
      }
      if (p < patients) target.store(p);
    });
    std::jthread reader([&] {
      CountWait count_wait;
      LineReader lines(fd);
      std::string id;
      const ReadEnd end = lines.read(
          deadline, [&] { return r.acked >= target.load(); },
          [&](std::string_view line, Clock::time_point) {
            id = "d-";
            append_number(id, r.acked);
            r.tally.add(line, id);
            ++r.acked;
          });
      if (end != ReadEnd::done) reader_problem = describe(end);
    });
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (!writer_problem.empty()) r.problems.push_back("send: " + writer_problem);
  if (!reader_problem.empty())
    r.problems.push_back("replies: " + reader_problem + " (" + std::to_string(r.acked) + " of " +
                         std::to_string(r.offered) + " acknowledged)");
  return r;
}

// What the subscriber saw during one phase, besides the alert times.
struct AlertTally {
  std::int64_t hello_seq = 0;         // events after this one are the phase's
  std::uint64_t matched = 0;          // alerts naming a record of the phase, the first for it
  std::uint64_t duplicate_seq = 0;    // a seq of the phase seen again
  std::uint64_t duplicate_alert = 0;  // a second alert for one record (with another seq)
  std::uint64_t unexpected = 0;       // a seq outside the phase's range, or a trigger not of the phase
  std::uint64_t wrong_event = 0;      // "resolved" for a high result, or "fired" for a normal one
  std::uint64_t out_of_order = 0;     // a seq not above the one before
  std::uint64_t heartbeats = 0;
  std::uint64_t distinct_seq = 0;  // seqs of the phase's range seen at least once
  std::vector<std::string> samples;

  void sample(std::string s) {
    if (samples.size() < kMaxSamples) samples.push_back(std::move(s));
  }
  bool clean() const {
    return duplicate_seq == 0 && duplicate_alert == 0 && unexpected == 0 && wrong_event == 0 && out_of_order == 0;
  }
};

struct PhaseResult {
  double rate = 0, seconds = 0;
  std::uint64_t first = 0;  // the phase sends records t-first .. t-(first + offered - 1)
  std::uint64_t offered = 0, sent = 0, acked = 0;
  double achieved_rate = 0;         // lines actually sent per second of the sending window
  double max_send_lag_ms = 0;       // how late the bench sent a line against its schedule
  std::uint64_t alert_first = 0;    // records whose alert arrived before their ack
  std::uint64_t without_alert = 0;  // acknowledged records whose alert never came
  Percentiles ack_to_alert;         // max(0, alert - ack), per record with both
  Percentiles alert_lead;           // ack - alert, for the records whose alert came first
  Percentiles send_to_ack, schedule_to_ack, send_to_alert;
  ReplyTally replies;
  AlertTally alerts;
  std::vector<std::string> problems;

  std::uint64_t missing_seq() const { return offered - std::min(offered, alerts.distinct_seq); }
  bool complete() const {
    return acked == offered && alerts.matched == offered && missing_seq() == 0 && without_alert == 0 &&
           problems.empty() && replies.clean() && alerts.clean();
  }
};

// The value of `"key":` as raw text (a number, or a string without its quotes), or empty. Alert
// lines are flat where these keys are (the nested objects have no seq, event or trigger) and a
// quote inside a string is escaped, so a search is enough; a full parse of every 1.3 KB line
// would cost the bench a sizeable share of a CPU that it shares with the daemon.
std::string_view json_field(std::string_view line, std::string_view quoted_key) {
  const auto at = line.find(quoted_key);
  if (at == std::string_view::npos) return {};
  std::string_view rest = line.substr(at + quoted_key.size());
  if (!rest.empty() && rest.front() == '"') {
    rest.remove_prefix(1);
    return rest.substr(0, rest.find('"'));
  }
  return rest.substr(0, rest.find_first_of(",}"));
}

// Connects a subscriber and reads its hello line: the seq after which the phase's events come.
std::expected<std::int64_t, std::string> read_hello(LineReader& lines) {
  std::optional<std::int64_t> seq;
  std::string problem;
  const ReadEnd end = lines.read(
      Clock::now() + kHelloWait, [&] { return seq.has_value() || !problem.empty(); },
      [&](std::string_view line, Clock::time_point) {
        const auto hello = nlohmann::json::parse(line, nullptr, false);
        if (hello.is_discarded() || hello.value("type", "") != "hello" || !hello.contains("seq") ||
            !hello["seq"].is_number_integer()) {
          problem = "the subscriber's first line is not a hello: " + std::string(line.substr(0, 300));
          return;
        }
        seq = hello["seq"].get<std::int64_t>();
      });
  if (!problem.empty()) return std::unexpected(problem);
  if (end != ReadEnd::done) return std::unexpected("subscriber hello: " + describe(end));
  return *seq;
}

PhaseResult run_phase(const Daemon& daemon, const Options& o, double rate, std::uint64_t first) {
  PhaseResult r;
  r.rate = rate;
  r.seconds = o.seconds;
  r.first = first;
  r.offered = o.offered(rate);
  auto subscriber = connect_loopback(daemon.subscriber_port());
  if (!subscriber) {
    r.problems.push_back("subscriber: " + subscriber.error());
    return r;
  }
  LineReader alert_lines(subscriber->fd());
  auto hello = read_hello(alert_lines);
  if (!hello) {
    r.problems.push_back(hello.error());
    return r;
  }
  r.alerts.hello_seq = *hello;
  auto socket = connect_loopback(daemon.ndjson_port());
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

  // Each vector belongs to one thread (sender, ack reader, alert reader) until the threads are
  // joined; only then are they read together.
  std::vector<Clock::time_point> sent_at(r.offered), ack_at(r.offered), alert_at(r.offered);
  std::vector<std::uint8_t> seq_seen(r.offered);
  std::atomic<std::uint64_t> target{r.offered};  // replies and alerts to wait for; lowered if sending stops early
  std::string writer_problem, reader_problem, subscriber_problem;
  Clock::time_point last_send = start;
  {
    std::jthread writer([&] {
      CountWait count_wait;
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
          append_result(chunk, first + due, o.patients);
          r.max_send_lag_ms = std::max(r.max_send_lag_ms, ms_between(scheduled(due), now));
          sent_at[due++] = now;
        }
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
    std::jthread ack_reader([&] {
      CountWait count_wait;
      LineReader lines(fd);
      std::string id;
      const ReadEnd end = lines.read(
          read_deadline, [&] { return r.acked >= target.load(); },
          [&](std::string_view line, Clock::time_point arrival) {
            id = result_id(first + r.acked);
            r.replies.add(line, id);
            ack_at[r.acked++] = arrival;
          });
      if (end != ReadEnd::done) reader_problem = describe(end);
    });
    std::jthread alert_reader([&] {
      CountWait count_wait;
      AlertTally& t = r.alerts;
      std::int64_t last_seq = t.hello_seq;
      const std::string trigger_prefix = std::string(kFeed) + "|t-";
      const ReadEnd end = alert_lines.read(
          read_deadline, [&] { return t.matched >= target.load(); },
          [&](std::string_view line, Clock::time_point arrival) {
            if (line.starts_with(R"({"type":"heartbeat")")) {
              ++t.heartbeats;
              return;
            }
            if (line.starts_with(R"({"type":)")) {  // an error line, or something this bench does not know
              ++t.unexpected;
              t.sample("unexpected line: " + std::string(line.substr(0, 300)));
              return;
            }
            const auto seq = parse_number<std::int64_t>(json_field(line, R"("seq":)"));
            if (!seq) {
              ++t.unexpected;
              t.sample("alert line without a seq: " + std::string(line.substr(0, 300)));
              return;
            }
            if (*seq <= last_seq) {
              ++t.out_of_order;
              t.sample("seq " + std::to_string(*seq) + " after seq " + std::to_string(last_seq));
            }
            last_seq = std::max(last_seq, *seq);
            const std::int64_t offset = *seq - t.hello_seq - 1;
            if (offset < 0 || offset >= static_cast<std::int64_t>(r.offered)) {
              ++t.unexpected;
              t.sample("seq outside the phase: " + std::string(line.substr(0, 300)));
              return;
            }
            if (seq_seen[static_cast<std::size_t>(offset)]++ != 0) {
              ++t.duplicate_seq;
              t.sample("seq " + std::to_string(*seq) + " again");
              return;
            }
            ++t.distinct_seq;
            const std::string_view trigger = json_field(line, R"("trigger":)");
            const auto n = trigger.starts_with(trigger_prefix)
                               ? parse_number<std::uint64_t>(trigger.substr(trigger_prefix.size()))
                               : std::nullopt;
            if (!n || *n < first || *n - first >= r.offered) {
              ++t.unexpected;
              t.sample("trigger not of the phase: " + std::string(line.substr(0, 300)));
              return;
            }
            const std::uint64_t i = *n - first;
            if (alert_at[i] != Clock::time_point{}) {
              ++t.duplicate_alert;
              t.sample("second alert for " + std::string(trigger) + ": " + std::string(line.substr(0, 300)));
              return;
            }
            alert_at[i] = arrival;
            ++t.matched;
            const std::string_view event = json_field(line, R"("event":)");
            if (event != (fires(*n, o.patients) ? "fired" : "resolved")) {
              ++t.wrong_event;
              t.sample("event '" + std::string(event) + "' for " + std::string(trigger));
            }
          });
      if (end != ReadEnd::done) subscriber_problem = describe(end);
    });
  }
  const double window_s = std::chrono::duration<double>(last_send - start).count();
  r.achieved_rate = window_s > 0 && r.sent > 1 ? static_cast<double>(r.sent - 1) / window_s : 0;

  std::vector<double> ack_to_alert, lead, send_to_ack, schedule_to_ack, send_to_alert;
  for (std::uint64_t i = 0; i < r.acked; ++i) {
    if (i < r.sent) {
      send_to_ack.push_back(ms_between(sent_at[i], ack_at[i]));
      schedule_to_ack.push_back(ms_between(scheduled(i), ack_at[i]));
    }
    if (alert_at[i] == Clock::time_point{}) {
      ++r.without_alert;
      continue;
    }
    if (alert_at[i] < ack_at[i]) {
      ++r.alert_first;
      lead.push_back(ms_between(alert_at[i], ack_at[i]));
    }
    ack_to_alert.push_back(std::max(0.0, ms_between(ack_at[i], alert_at[i])));
    send_to_alert.push_back(ms_between(sent_at[i], alert_at[i]));
  }
  r.ack_to_alert = summarise(std::move(ack_to_alert));
  r.alert_lead = summarise(std::move(lead));
  r.send_to_ack = summarise(std::move(send_to_ack));
  r.schedule_to_ack = summarise(std::move(schedule_to_ack));
  r.send_to_alert = summarise(std::move(send_to_alert));
  if (!writer_problem.empty()) r.problems.push_back("send: " + writer_problem);
  if (!reader_problem.empty())
    r.problems.push_back("replies: " + reader_problem + " (" + std::to_string(r.acked) + " of " +
                         std::to_string(r.offered) + " acknowledged)");
  if (!subscriber_problem.empty())
    r.problems.push_back("alerts: " + subscriber_problem + " (" + std::to_string(r.alerts.matched) + " of " +
                         std::to_string(r.offered) + " received)");
  return r;
}

// ---------------------------------------------------------------------------------------------
// Report

void print_replies(const ReplyTally& t) {
  std::printf("  replies ok       %llu; failed %llu, wrong id/order %llu, unexpected duplicates %llu\n",
              static_cast<unsigned long long>(t.ok), static_cast<unsigned long long>(t.failed),
              static_cast<unsigned long long>(t.id_mismatch), static_cast<unsigned long long>(t.duplicates));
  for (const auto& s : t.samples) std::printf("    reply: %s\n", s.c_str());
}

void print_percentiles(const char* label, const Percentiles& p) {
  std::printf("  %-16s p50 %.2f   p90 %.2f   p99 %.2f   max %.2f   mean %.2f\n", label, p.p50_ms, p.p90_ms, p.p99_ms,
              p.max_ms, p.mean_ms);
}

nlohmann::ordered_json to_json(const Percentiles& p) {
  return {
      {"p50_ms", p.p50_ms}, {"p90_ms", p.p90_ms}, {"p99_ms", p.p99_ms}, {"max_ms", p.max_ms}, {"mean_ms", p.mean_ms}};
}

nlohmann::ordered_json to_json(const ReplyTally& t) {
  return {{"ok", t.ok}, {"failed", t.failed}, {"id_mismatch", t.id_mismatch}, {"duplicates", t.duplicates}};
}

void print_phase(const PhaseResult& r, const CpuUse& cpu) {
  const AlertTally& t = r.alerts;
  std::printf("\nalert latency: %.0f records/s offered for %.1f s on 1 connection (open loop), 1 subscriber\n", r.rate,
              r.seconds);
  std::printf("  acknowledged     %llu of %llu; sent at %.0f records/s, at most %.1f ms behind schedule\n",
              static_cast<unsigned long long>(r.acked), static_cast<unsigned long long>(r.offered), r.achieved_rate,
              r.max_send_lag_ms);
  std::printf("  alerts           %llu of %llu expected (seq %lld..%lld): %llu seq missing, %llu seq duplicated,\n",
              static_cast<unsigned long long>(t.matched), static_cast<unsigned long long>(r.offered),
              static_cast<long long>(t.hello_seq + 1), static_cast<long long>(t.hello_seq + r.offered),
              static_cast<unsigned long long>(r.missing_seq()), static_cast<unsigned long long>(t.duplicate_seq));
  std::printf(
      "                   %llu records without an alert, %llu with two, %llu unexpected, %llu wrong event, %llu out of "
      "order\n",
      static_cast<unsigned long long>(r.without_alert), static_cast<unsigned long long>(t.duplicate_alert),
      static_cast<unsigned long long>(t.unexpected), static_cast<unsigned long long>(t.wrong_event),
      static_cast<unsigned long long>(t.out_of_order));
  print_percentiles("ack->alert (ms)", r.ack_to_alert);
  const double first_pct = r.ack_to_alert.count > 0
                               ? 100.0 * static_cast<double>(r.alert_first) / static_cast<double>(r.ack_to_alert.count)
                               : 0;
  std::printf(
      "  alert first      %.1f %% of records (%llu): their alert came before their ack, by p50 %.2f max %.2f ms\n",
      first_pct, static_cast<unsigned long long>(r.alert_first), r.alert_lead.p50_ms, r.alert_lead.max_ms);
  print_percentiles("send->ack (ms)", r.send_to_ack);
  print_percentiles("sched->ack (ms)", r.schedule_to_ack);
  print_percentiles("send->alert (ms)", r.send_to_alert);
  print_cpu(cpu);
  print_replies(r.replies);
  for (const auto& s : t.samples) std::printf("    alert: %s\n", s.c_str());
  for (const auto& p : r.problems) std::printf("  PROBLEM: %s\n", p.c_str());
}

nlohmann::ordered_json to_json(const PhaseResult& r, const CpuUse& cpu) {
  const AlertTally& t = r.alerts;
  auto j = nlohmann::ordered_json{{"rate", r.rate},
                                  {"seconds", r.seconds},
                                  {"offered", r.offered},
                                  {"acked", r.acked},
                                  {"achieved_rate", r.achieved_rate},
                                  {"max_send_lag_ms", r.max_send_lag_ms},
                                  {"alerts_expected", r.offered},
                                  {"alerts_received", t.matched}};
  j.update(to_json(r.ack_to_alert));
  j["alert_first"] = r.alert_first;
  j["alert_first_ratio"] =
      r.ack_to_alert.count > 0 ? static_cast<double>(r.alert_first) / static_cast<double>(r.ack_to_alert.count) : 0.0;
  j["ack"] = to_json(r.send_to_ack);
  j["ack_from_schedule"] = to_json(r.schedule_to_ack);
  j["send_to_alert"] = to_json(r.send_to_alert);
  j["checks"] = {{"missing_seq", r.missing_seq()},   {"duplicate_seq", t.duplicate_seq},
                 {"without_alert", r.without_alert}, {"duplicate_alert", t.duplicate_alert},
                 {"unexpected", t.unexpected},       {"wrong_event", t.wrong_event},
                 {"out_of_order", t.out_of_order}};
  j["heartbeats"] = t.heartbeats;
  j["replies"] = to_json(r.replies);
  j["cpu"] = to_json(cpu);
  j["complete"] = r.complete();
  return j;
}

int dump_records(const Options& o) {
  std::ofstream out(o.dump, std::ios::binary | std::ios::trunc);
  std::string chunk;
  for (std::uint64_t p = 0; p < o.patients; ++p) append_dose(chunk, p);
  out << chunk;
  const std::uint64_t total = o.total_results();
  for (std::uint64_t n = 0; n < total; ++n) {
    chunk.clear();
    append_result(chunk, n, o.patients);
    out << chunk;
  }
  out.close();
  if (!out) {
    std::fprintf(stderr, "alert_bench: cannot write %s\n", o.dump.c_str());
    return 2;
  }
  std::printf("wrote %llu doses and %llu results (each should make one alert event) to %s\n",
              static_cast<unsigned long long>(o.patients), static_cast<unsigned long long>(total), o.dump.c_str());
  return 0;
}

int run(const Options& o) {
  auto tmp = TempDir::create(o.tmp_root, o.keep);
  if (!tmp) {
    std::fprintf(stderr, "alert_bench: %s\n", tmp.error().c_str());
    return 2;
  }
  const std::string fs = filesystem_type((*tmp)->path());
  auto daemon = Daemon::start(o, (*tmp)->path());
  if (!daemon) {
    std::fprintf(stderr, "alert_bench: cannot start the daemon: %s\n", daemon.error().c_str());
    return 2;
  }
  std::printf("iraewatch alert latency benchmark\n");
  std::printf("  daemon           %s (pid %d, records on 127.0.0.1:%u, subscribers on 127.0.0.1:%u)\n",
              o.binary.c_str(), static_cast<int>((*daemon)->pid()), static_cast<unsigned>((*daemon)->ndjson_port()),
              static_cast<unsigned>((*daemon)->subscriber_port()));
  std::printf("  store            synchronous=%s, data in %s (%s)\n", o.sync.c_str(), (*tmp)->path().c_str(),
              fs.c_str());
  std::printf("  machine          %u hardware threads, shared by the daemon and the bench\n",
              std::thread::hardware_concurrency());
  std::printf(
      "  records          TSH results over %llu patients, alternately high and normal: each fires or\n"
      "                   resolves one thyroid alert; latency is ack received -> its alert received\n",
      static_cast<unsigned long long>(o.patients));
  if (fs == "tmpfs") std::printf("  WARNING: tmpfs ignores fsync; synchronous=full figures mean nothing here\n");
  std::fflush(stdout);

  nlohmann::ordered_json report = {{"bench", "alert"},
                                   {"sync", o.sync},
                                   {"filesystem", fs},
                                   {"cpus", std::thread::hardware_concurrency()},
                                   {"patients", o.patients}};
  const pid_t daemon_pid = (*daemon)->pid();

  const WarmupResult warm = run_warmup((*daemon)->ndjson_port(), o.patients);
  std::printf("\nwarm-up: one ICI dose per patient, pipelined, not measured\n");
  std::printf("  acknowledged     %llu of %llu in %.2f s\n", static_cast<unsigned long long>(warm.acked),
              static_cast<unsigned long long>(warm.offered), warm.seconds);
  print_replies(warm.tally);
  for (const auto& p : warm.problems) std::printf("  PROBLEM: %s\n", p.c_str());
  std::fflush(stdout);
  report["warmup"] = {{"doses", warm.offered},
                      {"acked", warm.acked},
                      {"seconds", warm.seconds},
                      {"replies", to_json(warm.tally)},
                      {"complete", warm.complete()}};
  bool ok = warm.complete();
  std::uint64_t expected_stored = warm.tally.ok - warm.tally.duplicates;
  std::uint64_t expected_events = 0;

  report["phases"] = nlohmann::ordered_json::array();
  std::uint64_t first = 0;
  for (double rate : o.rates) {
    if (g_interrupted || !warm.complete()) break;
    const CpuSample begin = sample_cpu(daemon_pid);
    const PhaseResult r = run_phase(**daemon, o, rate, first);
    const CpuUse cpu = cpu_use(begin, sample_cpu(daemon_pid));
    print_phase(r, cpu);
    std::fflush(stdout);
    ok = ok && r.complete();
    expected_stored += r.replies.ok - r.replies.duplicates;
    expected_events += r.replies.ok - r.replies.duplicates;
    report["phases"].push_back(to_json(r, cpu));
    first += r.offered;
  }

  const DaemonEnd end = (*daemon)->stop();
  const LogSummary log = summarise_log((*daemon)->log_path());
  std::printf("\ndaemon\n");
  std::printf("  stop             %s, %.0f ms after SIGTERM\n", end.how.c_str(), end.stop_ms);
  if (log.stored) {
    const auto text = [](const std::optional<std::uint64_t>& n) { return n ? std::to_string(*n) : std::string("?"); };
    std::printf(
        "  its count        %s stored, %s duplicates, %s rejected, %s not stored, %s alert events\n"
        "                   (bench expected %llu stored, %llu alert events)\n",
        text(log.stored).c_str(), text(log.duplicates).c_str(), text(log.rejected).c_str(),
        text(log.not_stored).c_str(), text(log.alert_events).c_str(), static_cast<unsigned long long>(expected_stored),
        static_cast<unsigned long long>(expected_events));
  } else {
    std::printf("  its count        missing: no 'stopped:' line in its log\n");
  }
  std::printf("  log              %llu warnings, %llu errors\n", static_cast<unsigned long long>(log.warnings),
              static_cast<unsigned long long>(log.errors));
  for (const auto& s : log.samples) std::printf("    %s\n", s.c_str());
  const bool counts_agree = log.stored && *log.stored == expected_stored && log.not_stored == std::uint64_t{0} &&
                            log.alert_events == expected_events;
  ok = ok && end.clean && counts_agree && log.errors == 0 && !g_interrupted;
  report["daemon"] = {
      {"stop", end.how},
      {"stop_ms", end.stop_ms},
      {"clean_stop", end.clean},
      {"stored", log.stored ? nlohmann::ordered_json(*log.stored) : nlohmann::ordered_json()},
      {"expected_stored", expected_stored},
      {"alert_events", log.alert_events ? nlohmann::ordered_json(*log.alert_events) : nlohmann::ordered_json()},
      {"expected_alert_events", expected_events},
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
    std::fprintf(stderr, "alert_bench: %s\n%s", options.error().c_str(), kUsage);
    return 2;
  }
  if (options->help) {
    std::printf("%s", kUsage);
    return 0;
  }
  if (!options->dump.empty()) return dump_records(*options);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  ::sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  try {
    return run(*options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "alert_bench: %s\n", e.what());
    return 2;
  }
}
