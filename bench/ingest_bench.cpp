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

#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <expected>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench_support.hpp"

#ifndef IRAEWATCH_BINARY
#define IRAEWATCH_BINARY ""
#endif

using namespace iraewatch::bench;

namespace {

using namespace std::chrono_literals;

constexpr auto kLatencyGrace = 15s;         // after the last scheduled line, replies must arrive within this
constexpr std::uint64_t kChunkLines = 256;  // lines per send() in the throughput phase

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
      const auto rates = parse_rates(value, 1'000'000);
      if (!rates) return bad();
      o.rates.insert(o.rates.end(), rates->begin(), rates->end());
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
  append_utc_time(out, kBaseEpoch + static_cast<std::int64_t>((h >> 30) % kTimeSpread));
  out += "\"}\n";
}

// ---------------------------------------------------------------------------------------------
// Replies

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

// The daemon with every listener on a free loopback port; the bench talks to its NDJSON one.
std::expected<std::unique_ptr<Daemon>, std::string> start_daemon(const Options& o, const std::string& dir) {
  DaemonSetup setup;
  setup.binary = o.binary;
  setup.config = "store:\n  synchronous: " + o.sync + "\n";
  setup.listeners = {"--listen", "127.0.0.1:0", "--subscribers", "127.0.0.1:0", "--mllp", "127.0.0.1:0"};
  setup.read_ports = [](const nlohmann::json& ready,
                        const std::string& ready_file) -> std::expected<DaemonPorts, std::string> {
    if (!ready.contains("ndjson") || !ready["ndjson"].is_string())
      return std::unexpected("unreadable ready file: " + read_file(ready_file));
    const std::string endpoint = ready["ndjson"];
    const auto port = parse_number<std::uint16_t>(endpoint.substr(endpoint.rfind(':') + 1));
    if (!port || *port == 0) return std::unexpected("no port in the ready file: " + endpoint);
    return DaemonPorts{.ndjson = *port};
  };
  return Daemon::start(std::move(setup), dir);
}

// The daemon's closing count of NDJSON records, from its "stopped: ..." log line.
struct StoredCounts {
  std::optional<std::uint64_t> stored, duplicates, rejected, not_stored;
};

StoredCounts stored_counts(const LogSummary& log) {
  StoredCounts c;
  for (const auto& line : log.stopped) {
    unsigned long long stored = 0, dup = 0, rej = 0, fail = 0;
    if (std::sscanf(line.c_str(), "stopped: NDJSON %llu records stored, %llu duplicates, %llu lines rejected, %llu",
                    &stored, &dup, &rej, &fail) == 4) {
      c.stored = stored;
      c.duplicates = dup;
      c.rejected = rej;
      c.not_stored = fail;
    }
  }
  return c;
}

// ---------------------------------------------------------------------------------------------
// CPU (see bench_support.hpp): this bench reports the cores used, without the run-queue wait.

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
  std::string id;
  const ReadEnd end = read_replies(
      s.socket->fd(), deadline, [&] { return s.acked.load() >= s.target.load(); },
      [&](std::string_view line, Clock::time_point arrival) {
        const std::uint64_t n = s.acked.load();
        id = s.prefix;
        append_number(id, n);
        s.tally.add(line, id, n);
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
      std::string id;
      const ReadEnd end = read_replies(
          fd, read_deadline, [&] { return acked >= target.load(); },
          [&](std::string_view line, Clock::time_point arrival) {
            id = prefix;
            append_number(id, acked);
            r.tally.add(line, id, acked);
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
  print_replies(t);
  for (const auto& p : problems) std::printf("  PROBLEM: %s\n", p.c_str());
}

int run(const Options& o) {
  auto tmp = TempDir::create(o.tmp_root, "iraewatch-bench", o.keep);
  if (!tmp) {
    std::fprintf(stderr, "ingest_bench: %s\n", tmp.error().c_str());
    return 2;
  }
  const std::string fs = filesystem_type((*tmp)->path());
  const std::string run_tag = std::to_string(::getpid());
  auto daemon = start_daemon(o, (*tmp)->path());
  if (!daemon) {
    std::fprintf(stderr, "ingest_bench: cannot start the daemon: %s\n", daemon.error().c_str());
    return 2;
  }
  std::printf("iraewatch ingest benchmark\n");
  std::printf("  daemon           %s (pid %d, 127.0.0.1:%u)\n", o.binary.c_str(), static_cast<int>((*daemon)->pid()),
              static_cast<unsigned>((*daemon)->ports().ndjson));
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
  const ThroughputResult tp = run_throughput((*daemon)->ports().ndjson, o, run_tag);
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
    const LatencyResult lr = run_latency((*daemon)->ports().ndjson, rate, o.seconds, run_tag);
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
  const StoredCounts count = stored_counts(log);
  std::printf("\ndaemon\n");
  std::printf("  stop             %s, %.0f ms after SIGTERM\n", end.how.c_str(), end.stop_ms);
  if (count.stored) {
    std::printf(
        "  its count        %llu stored, %llu duplicates, %llu rejected, %llu not stored (bench expected %llu "
        "stored)\n",
        static_cast<unsigned long long>(*count.stored), static_cast<unsigned long long>(*count.duplicates),
        static_cast<unsigned long long>(*count.rejected), static_cast<unsigned long long>(*count.not_stored),
        static_cast<unsigned long long>(expected_stored));
  } else {
    std::printf("  its count        missing: no 'stopped:' line in its log\n");
  }
  print_log(log);
  const bool counts_agree = count.stored && *count.stored == expected_stored && *count.not_stored == 0;
  ok = ok && end.clean && counts_agree && log.errors == 0 && !g_interrupted;
  report["daemon"] = {{"stop", end.how},
                      {"stop_ms", end.stop_ms},
                      {"clean_stop", end.clean},
                      {"stored", count.stored ? nlohmann::ordered_json(*count.stored) : nlohmann::ordered_json()},
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
  install_signal_handlers();
  try {
    return run(*options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ingest_bench: %s\n", e.what());
    return 2;
  }
}
