// bench_support: what the daemon benchmarks (ingest_bench, alert_bench, mllp_bench) share.
//
// They treat the daemon as a black box: a child process on a temporary data folder, found through
// its ready file and talked to over loopback sockets on which every wait has a deadline. Around
// that: the interruption flag every loop checks, CPU / run-queue / disk figures from /proc,
// latency percentiles, the daemon's log, and the check of NDJSON replies. Each bench keeps its own
// options, test data, wording and report.
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace iraewatch::bench {

using Clock = std::chrono::steady_clock;

// Blocking socket calls return this often, so that their callers can check their deadlines.
inline constexpr std::chrono::milliseconds kSocketPoll{100};
// Unexpected replies, log lines and the like quoted in a report, at most.
inline constexpr std::size_t kMaxSamples = 5;

// ---------------------------------------------------------------------------------------------
// Interruption

// Set by SIGINT/SIGTERM once install_signal_handlers() has run; every loop checks it so that the
// daemon is still stopped and the temporary folder still removed when the bench is interrupted.
extern std::atomic<bool> g_interrupted;

// SIGINT and SIGTERM set g_interrupted; SIGPIPE is ignored (a closed peer is an error to report).
void install_signal_handlers();

// ---------------------------------------------------------------------------------------------
// Numbers, text and time

inline double ms_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

// All of `text` as a number, or nothing.
template <typename T>
std::optional<T> parse_number(std::string_view text) {
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// The rates of a --rate value ("1000,5000"), or nothing when one of them is not in [1, max].
std::optional<std::vector<double>> parse_rates(std::string_view list, double max);

// The number just before `label` in `text` ("... 12 alert events"), if there is one.
std::optional<std::uint64_t> count_before(std::string_view text, std::string_view label);

void append_number(std::string& out, std::uint64_t n);

// Appends the UTC time `epoch_s` as 2026-03-01T09:00:00Z.
void append_utc_time(std::string& out, std::int64_t epoch_s);

// A well-mixed hash of x: the benches derive their test data from it, so every run sends the same.
inline std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// ---------------------------------------------------------------------------------------------
// Files and processes

// The whole file, or "" when it cannot be read.
std::string read_file(const std::string& path);

// "ext4", "tmpfs", ... or the magic number in hex: tmpfs makes synchronous=full meaningless.
std::string filesystem_type(const std::string& path);

// "exit 0", "killed by Terminated", ... for a waitpid() status.
std::string describe_status(int status);

// Waits for a child until `limit`; true when it was reaped (status filled in).
bool wait_child(pid_t pid, std::chrono::milliseconds limit, int& status);

// A fresh folder ROOT/NAME-XXXXXX (ROOT empty: $TMPDIR, else /tmp), removed with everything in it
// by the destructor unless `keep`, in which case its path is printed.
class TempDir {
 public:
  static std::expected<std::unique_ptr<TempDir>, std::string> create(std::string root, const std::string& name,
                                                                     bool keep);
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  TempDir(std::string path, bool keep) : path_(std::move(path)), keep_(keep) {}
  std::string path_;
  bool keep_;
};

// ---------------------------------------------------------------------------------------------
// Sockets

class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {}
  Socket(Socket&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Socket& operator=(Socket&&) = delete;
  ~Socket();
  int fd() const { return fd_; }

 private:
  int fd_;
};

// Connects to the daemon on loopback. Send and receive time out every kSocketPoll so that the
// callers can check their deadlines; TCP_NODELAY so that the bench measures the daemon, not Nagle.
std::expected<Socket, std::string> connect_loopback(std::uint16_t port);

// Sends all of `data`, or says why not (deadline, interruption, peer gone).
std::expected<void, std::string> send_all(int fd, std::string_view data, Clock::time_point deadline);

// How a bench's read of replies ended; each bench words it for its own report.
enum class ReadEnd { done, deadline, interrupted, closed, error };

// ---------------------------------------------------------------------------------------------
// The daemon

struct DaemonEnd {
  std::string how;     // "exit 0", "killed by ...", ...
  bool clean = false;  // exited 0 after SIGTERM, without SIGKILL
  double stop_ms = 0;  // SIGTERM to exit: the drain time
};

// The listener ports the ready file names; 0 for those a bench does not use.
struct DaemonPorts {
  std::uint16_t ndjson = 0, subscribers = 0, mllp = 0;
};

// The port after the last ':' of an "address:port" endpoint from the ready file.
std::optional<std::uint16_t> endpoint_port(const nlohmann::json& ready, const char* key);

// How a bench starts the daemon.
struct DaemonSetup {
  std::string binary;
  std::string config;                  // the text of config.yaml
  std::vector<std::string> listeners;  // the arguments of `serve` before --ready-file
  std::chrono::seconds stop_wait{10};  // SIGTERM, then SIGKILL after this
  // Takes the ports the bench needs from the parsed ready file, or says (quoting the file at
  // `ready_file` if it likes) why they are not there.
  std::function<std::expected<DaemonPorts, std::string>(const nlohmann::json& ready, const std::string& ready_file)>
      read_ports;
};

// The iraewatch child process, run as `BINARY --config DIR/config.yaml --data-dir DIR/data serve
// LISTENERS --ready-file DIR/ready.json` with its output in DIR/daemon.log. start() returns once
// the ready file names the bench's ports (within 10 s). Stopped (SIGTERM, then SIGKILL) no later
// than its destructor.
class Daemon {
 public:
  static std::expected<std::unique_ptr<Daemon>, std::string> start(DaemonSetup setup, const std::string& dir);

  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;
  ~Daemon() { stop(); }

  const DaemonPorts& ports() const { return ports_; }
  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_; }
  const std::string& data_dir() const { return data_dir_; }

  // Idempotent; after it returns the child is reaped.
  DaemonEnd stop();

 private:
  Daemon(DaemonSetup setup, const std::string& dir);
  std::expected<void, std::string> wait_ready();

  DaemonSetup setup_;
  std::string ready_file_;
  std::string log_;
  std::string data_dir_;
  pid_t pid_ = -1;
  DaemonPorts ports_;
  DaemonEnd end_;
};

// What the daemon's own log ("TIME LEVEL message" lines) says.
struct LogSummary {
  std::uint64_t warnings = 0, errors = 0;  // error counts critical too
  std::vector<std::string> samples;        // the first warning and error lines
  std::vector<std::string> stopped;        // the lines with its closing counts, each from "stopped: " on
};

LogSummary summarise_log(const std::string& path);

// The report's "log" line (warnings and errors) and the lines it quotes.
void print_log(const LogSummary& log);

// ---------------------------------------------------------------------------------------------
// CPU and disk accounting: the machine is small and may be shared, so each phase reports who
// used the CPUs. A busy neighbour makes every figure pessimistic; a daemon thread near 1.0 core is
// the bottleneck; a daemon far below its share while replies lag is waiting (fsync, locks, the
// peer). The run-queue wait (time runnable but not running) tells waiting apart from a CPU
// shortage.

struct CpuSample {
  Clock::time_point at = Clock::now();
  double machine_busy_s = 0;  // all CPUs, from /proc/stat
  double machine_iowait_s = 0;
  double bench_s = 0;
  double daemon_s = 0;
  std::vector<std::pair<long, double>> daemon_threads;  // tid, CPU seconds
  std::optional<double> daemon_wait_s, bench_wait_s;    // run-queue wait of all threads, if the kernel says
  std::optional<std::uint64_t> daemon_write_bytes;      // /proc/PID/io: bytes the daemon sent to storage
};

CpuSample sample_cpu(pid_t daemon);

// Counts the run-queue wait of the thread it lives in, from construction to destruction, into the
// bench's figure: its worker threads live for one phase, between two samples, and a thread that
// has ended is no longer in /proc.
class CountWait {
 public:
  CountWait();
  CountWait(const CountWait&) = delete;
  CountWait& operator=(const CountWait&) = delete;
  ~CountWait();

 private:
  std::optional<double> start_;
};

// CPU used between two samples, in cores (CPU seconds per wall second).
struct CpuUse {
  double daemon = 0, daemon_busiest_thread = 0, bench = 0, machine = 0, others = 0, iowait = 0;
  std::optional<double> daemon_wait, bench_wait;  // run-queue wait, in seconds per wall second
  std::optional<std::uint64_t> daemon_write_bytes;
};

CpuUse cpu_use(const CpuSample& a, const CpuSample& b);

// ---------------------------------------------------------------------------------------------
// Latencies

struct Percentiles {
  std::size_t count = 0;
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, max_ms = 0, mean_ms = 0;
};

// Nearest-rank percentiles of `ms`.
Percentiles summarise(std::vector<double> ms);

nlohmann::ordered_json to_json(const Percentiles& p);

// ---------------------------------------------------------------------------------------------
// NDJSON replies

// What the replies of one stream looked like. Owned by one reader thread, merged after join.
struct ReplyTally {
  std::uint64_t ok = 0;
  std::uint64_t failed = 0;       // ok:false, or not a reply at all
  std::uint64_t id_mismatch = 0;  // ok:true but for another line: out of order or lost
  std::uint64_t duplicates = 0;   // every id is new, so "duplicate" is wrong here
  std::vector<std::string> samples;

  // Checks the reply to the line with id `id` (replies come in line order). A failed reply is
  // quoted as "line N: ..." when `line` is given, else as "ID: ...".
  void add(std::string_view reply, std::string_view id, std::optional<std::uint64_t> line = std::nullopt);
  void merge(const ReplyTally& other);
  bool clean() const { return failed == 0 && id_mismatch == 0 && duplicates == 0; }

 private:
  void sample(std::string s);
  std::string needle_;
};

// The "replies ok ..." report line and the quoted replies.
void print_replies(const ReplyTally& t);

nlohmann::ordered_json to_json(const ReplyTally& t);

}  // namespace iraewatch::bench
