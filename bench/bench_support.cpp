#include "bench_support.hpp"

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

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace iraewatch::bench {

using namespace std::chrono_literals;

std::atomic<bool> g_interrupted{false};

namespace {

constexpr auto kReadyWait = 10s;  // the daemon must be listening within this

extern "C" void on_signal(int) {
  g_interrupted.store(true);
}

// Run-queue wait of the bench's threads that have ended (CountWait adds theirs as they end).
std::atomic<double> g_ended_threads_wait_s{0};

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

// The run-queue wait of the calling thread so far.
std::optional<double> own_wait_s() {
  std::istringstream in(read_file("/proc/thread-self/schedstat"));
  unsigned long long on_cpu_ns = 0, waiting_ns = 0;
  if (!(in >> on_cpu_ns >> waiting_ns)) return std::nullopt;
  return static_cast<double>(waiting_ns) / 1e9;
}

std::optional<std::uint64_t> write_bytes(const std::string& proc_dir) {
  std::istringstream in(read_file(proc_dir + "/io"));
  std::string key;
  std::uint64_t value = 0;
  while (in >> key >> value)
    if (key == "write_bytes:") return value;
  return std::nullopt;
}

}  // namespace

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  ::sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
}

// ---------------------------------------------------------------------------------------------
// Numbers, text and time

std::optional<std::vector<double>> parse_rates(std::string_view list, double max) {
  std::vector<double> rates;
  while (!list.empty()) {
    const auto comma = list.find(',');
    auto r = parse_number<double>(list.substr(0, comma));
    if (!r || !(*r >= 1 && *r <= max)) return std::nullopt;
    rates.push_back(*r);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
  }
  return rates;
}

std::optional<std::uint64_t> count_before(std::string_view text, std::string_view label) {
  const auto at = text.find(label);
  if (at == std::string_view::npos) return std::nullopt;
  auto begin = at;
  while (begin > 0 && text[begin - 1] >= '0' && text[begin - 1] <= '9') --begin;
  return parse_number<std::uint64_t>(text.substr(begin, at - begin));
}

void append_number(std::string& out, std::uint64_t n) {
  char buf[24];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, end);
}

void append_utc_time(std::string& out, std::int64_t epoch_s) {
  const std::time_t t = epoch_s;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char when[32];
  out.append(when, std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm));
}

// ---------------------------------------------------------------------------------------------
// Files and processes

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

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

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("killed by ") + ::strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

bool wait_child(pid_t pid, std::chrono::milliseconds limit, int& status) {
  const auto deadline = Clock::now() + limit;
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) return true;
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
}

std::expected<std::unique_ptr<TempDir>, std::string> TempDir::create(std::string root, const std::string& name,
                                                                     bool keep) {
  if (root.empty()) {
    const char* env = std::getenv("TMPDIR");
    root = env && *env ? env : "/tmp";
  }
  std::string pattern = root + "/" + name + "-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) return std::unexpected("mkdtemp in " + root + ": " + std::strerror(errno));
  return std::unique_ptr<TempDir>(new TempDir(std::move(pattern), keep));
}

TempDir::~TempDir() {
  if (keep_) {
    std::printf("kept %s\n", path_.c_str());
    return;
  }
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

// ---------------------------------------------------------------------------------------------
// Sockets

Socket::~Socket() {
  if (fd_ >= 0) ::close(fd_);
}

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

// ---------------------------------------------------------------------------------------------
// The daemon

std::optional<std::uint16_t> endpoint_port(const nlohmann::json& ready, const char* key) {
  if (!ready.contains(key) || !ready[key].is_string()) return std::nullopt;
  const std::string endpoint = ready[key];
  const auto port = parse_number<std::uint16_t>(endpoint.substr(endpoint.rfind(':') + 1));
  if (!port || *port == 0) return std::nullopt;
  return port;
}

Daemon::Daemon(DaemonSetup setup, const std::string& dir)
    : setup_(std::move(setup)), ready_file_(dir + "/ready.json"), log_(dir + "/daemon.log"), data_dir_(dir + "/data") {}

std::expected<std::unique_ptr<Daemon>, std::string> Daemon::start(DaemonSetup setup, const std::string& dir) {
  const std::string config = dir + "/config.yaml";
  {
    std::ofstream out(config);
    out << setup.config;
    if (!out) return std::unexpected("cannot write " + config);
  }
  auto d = std::unique_ptr<Daemon>(new Daemon(std::move(setup), dir));
  std::vector<std::string> args = {d->setup_.binary, "--config", config, "--data-dir", d->data_dir_, "serve"};
  args.insert(args.end(), d->setup_.listeners.begin(), d->setup_.listeners.end());
  args.insert(args.end(), {"--ready-file", d->ready_file_});
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

DaemonEnd Daemon::stop() {
  if (pid_ <= 0) return end_;
  const auto begin = Clock::now();
  ::kill(pid_, SIGTERM);
  int status = 0;
  bool reaped = wait_child(pid_, setup_.stop_wait, status);
  end_.stop_ms = ms_between(begin, Clock::now());
  if (!reaped) {
    ::kill(pid_, SIGKILL);
    reaped = wait_child(pid_, 5s, status);
    end_.how = reaped ? "did not stop within " + std::to_string(setup_.stop_wait.count()) + " s of SIGTERM; SIGKILLed"
                      : "did not die even after SIGKILL";
  } else {
    end_.how = describe_status(status);
    end_.clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  pid_ = -1;
  return end_;
}

std::expected<void, std::string> Daemon::wait_ready() {
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
      auto ports = setup_.read_ports(ready, ready_file_);
      if (!ports) return std::unexpected(ports.error());
      if (ready.value("pid", 0) != pid_) std::fprintf(stderr, "warning: the ready file names another pid\n");
      ports_ = *ports;
      return {};
    }
    if (g_interrupted) return std::unexpected("interrupted");
    if (Clock::now() > deadline)
      return std::unexpected("no ready file after " + std::to_string(kReadyWait.count()) + " s; output:\n" +
                             read_file(log_));
    std::this_thread::sleep_for(20ms);
  }
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
    if (const auto at = line.find("stopped: "); at != std::string::npos) s.stopped.push_back(line.substr(at));
  }
  return s;
}

void print_log(const LogSummary& log) {
  std::printf("  log              %llu warnings, %llu errors\n", static_cast<unsigned long long>(log.warnings),
              static_cast<unsigned long long>(log.errors));
  for (const auto& s : log.samples) std::printf("    %s\n", s.c_str());
}

// ---------------------------------------------------------------------------------------------
// CPU and disk accounting

CpuSample sample_cpu(pid_t daemon) {
  CpuSample s;
  std::istringstream stat(read_file("/proc/stat"));
  std::string cpu;
  unsigned long long v[8] = {};  // user nice system idle iowait irq softirq steal
  stat >> cpu;
  for (auto& x : v) stat >> x;
  s.machine_busy_s = ticks_to_s(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]);
  s.machine_iowait_s = ticks_to_s(v[4]);
  s.bench_s = process_cpu_s("/proc/self/stat");
  const std::string dir = "/proc/" + std::to_string(daemon);
  s.daemon_wait_s = run_queue_wait_s(dir);
  s.bench_wait_s = run_queue_wait_s("/proc/self");
  if (s.bench_wait_s) *s.bench_wait_s += g_ended_threads_wait_s.load();
  s.daemon_s = process_cpu_s(dir + "/stat");
  s.daemon_write_bytes = write_bytes(dir);
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator(dir + "/task", ec)) {
    const auto tid = parse_number<long>(task.path().filename().string());
    if (tid) s.daemon_threads.emplace_back(*tid, process_cpu_s(task.path().string() + "/stat"));
  }
  return s;
}

CountWait::CountWait() : start_(own_wait_s()) {}

CountWait::~CountWait() {
  if (!start_) return;
  if (const auto end = own_wait_s()) g_ended_threads_wait_s.fetch_add(*end - *start_);
}

CpuUse cpu_use(const CpuSample& a, const CpuSample& b) {
  CpuUse u;
  const double wall = std::chrono::duration<double>(b.at - a.at).count();
  if (wall <= 0) return u;
  u.daemon = (b.daemon_s - a.daemon_s) / wall;
  u.bench = (b.bench_s - a.bench_s) / wall;
  u.machine = (b.machine_busy_s - a.machine_busy_s) / wall;
  u.iowait = (b.machine_iowait_s - a.machine_iowait_s) / wall;
  u.others = std::max(0.0, u.machine - u.daemon - u.bench);
  if (a.daemon_wait_s && b.daemon_wait_s) u.daemon_wait = (*b.daemon_wait_s - *a.daemon_wait_s) / wall;
  if (a.bench_wait_s && b.bench_wait_s) u.bench_wait = (*b.bench_wait_s - *a.bench_wait_s) / wall;
  if (a.daemon_write_bytes && b.daemon_write_bytes)
    u.daemon_write_bytes = *b.daemon_write_bytes - *a.daemon_write_bytes;
  for (const auto& [tid, after] : b.daemon_threads) {
    double before = 0;
    for (const auto& [t0, s0] : a.daemon_threads)
      if (t0 == tid) before = s0;
    u.daemon_busiest_thread = std::max(u.daemon_busiest_thread, (after - before) / wall);
  }
  return u;
}

// ---------------------------------------------------------------------------------------------
// Latencies

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

nlohmann::ordered_json to_json(const Percentiles& p) {
  return {
      {"p50_ms", p.p50_ms}, {"p90_ms", p.p90_ms}, {"p99_ms", p.p99_ms}, {"max_ms", p.max_ms}, {"mean_ms", p.mean_ms}};
}

// ---------------------------------------------------------------------------------------------
// NDJSON replies

void ReplyTally::add(std::string_view reply, std::string_view id, std::optional<std::uint64_t> line) {
  needle_.assign(R"("id":")");
  needle_ += id;
  needle_ += '"';
  if (reply.find(R"("ok":true)") == std::string_view::npos) {
    ++failed;
    sample((line ? "line " + std::to_string(*line) : std::string(id)) + ": " + std::string(reply.substr(0, 300)));
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

void ReplyTally::merge(const ReplyTally& other) {
  ok += other.ok;
  failed += other.failed;
  id_mismatch += other.id_mismatch;
  duplicates += other.duplicates;
  for (const auto& s : other.samples) sample(s);
}

void ReplyTally::sample(std::string s) {
  if (samples.size() < kMaxSamples) samples.push_back(std::move(s));
}

void print_replies(const ReplyTally& t) {
  std::printf("  replies ok       %llu; failed %llu, wrong id/order %llu, unexpected duplicates %llu\n",
              static_cast<unsigned long long>(t.ok), static_cast<unsigned long long>(t.failed),
              static_cast<unsigned long long>(t.id_mismatch), static_cast<unsigned long long>(t.duplicates));
  for (const auto& s : t.samples) std::printf("    reply: %s\n", s.c_str());
}

nlohmann::ordered_json to_json(const ReplyTally& t) {
  return {{"ok", t.ok}, {"failed", t.failed}, {"id_mismatch", t.id_mismatch}, {"duplicates", t.duplicates}};
}

}  // namespace iraewatch::bench
