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

#include <sys/socket.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <expected>
#include <fstream>
#include <memory>
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

constexpr auto kHelloWait = 5s;             // a new subscriber must get its hello line within this
constexpr auto kWarmupWait = 60s;           // every dose of the warm-up must be acknowledged within this
constexpr auto kLatencyGrace = 15s;         // after the last scheduled line, replies and alerts must arrive within this
constexpr std::uint64_t kChunkLines = 256;  // most lines per send()

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

void append_dose(std::string& out, std::uint64_t patient) {
  out += R"({"type":"medication","id":"d-)";
  append_number(out, patient);
  out += R"(","patient":"MRN-)";
  append_number(out, patient);
  out += R"(","drug":"nivolumab","time":")";
  append_utc_time(out, kDoseEpoch);
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
  append_utc_time(out, kTshEpoch + static_cast<std::int64_t>(k) * kTshStep);
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
      const auto rates = parse_rates(value, 1'000'000);
      if (!rates) return bad();
      o.rates.insert(o.rates.end(), rates->begin(), rates->end());
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
// Lines on a connection

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

// The daemon with its NDJSON listener and its alert subscriber socket on free loopback ports.
std::expected<std::unique_ptr<Daemon>, std::string> start_daemon(const Options& o, const std::string& dir) {
  DaemonSetup setup;
  setup.binary = o.binary;
  setup.config = "store:\n  synchronous: " + o.sync + "\n";
  setup.listeners = {"--listen", "127.0.0.1:0", "--subscribers", "127.0.0.1:0"};
  setup.read_ports = [](const nlohmann::json& ready,
                        const std::string& ready_file) -> std::expected<DaemonPorts, std::string> {
    const auto ndjson = endpoint_port(ready, "ndjson");
    const auto subscribers = endpoint_port(ready, "subscribers");
    if (!ndjson || !subscribers)
      return std::unexpected("no ndjson or subscribers port in the ready file: " + read_file(ready_file));
    return DaemonPorts{.ndjson = *ndjson, .subscribers = *subscribers};
  };
  return Daemon::start(std::move(setup), dir);
}

// The daemon's closing counts, from its log line "stopped: [NDJSON] N records stored, N duplicates,
// N lines rejected, N not stored (...); ... N alert events": each count is found by its label, so
// that added fields do not break it.
struct StoppedCounts {
  std::optional<std::uint64_t> stored, duplicates, rejected, not_stored, alert_events;
};

StoppedCounts stopped_counts(const LogSummary& log) {
  StoppedCounts c;
  for (const std::string& line : log.stopped) {
    c.stored = count_before(line, " records stored");
    c.duplicates = count_before(line, " duplicates");
    c.rejected = count_before(line, " lines rejected");
    c.not_stored = count_before(line, " not stored");
    c.alert_events = count_before(line, " alert events");
  }
  return c;
}

// ---------------------------------------------------------------------------------------------
// CPU (see bench_support.hpp): an alert is a chain of thread hand-offs, each of which can wait in
// the run queue, so this bench reports that wait too.

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
  auto subscriber = connect_loopback(daemon.ports().subscribers);
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
  auto socket = connect_loopback(daemon.ports().ndjson);
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

void print_percentiles(const char* label, const Percentiles& p) {
  std::printf("  %-16s p50 %.2f   p90 %.2f   p99 %.2f   max %.2f   mean %.2f\n", label, p.p50_ms, p.p90_ms, p.p99_ms,
              p.max_ms, p.mean_ms);
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
  auto tmp = TempDir::create(o.tmp_root, "iraewatch-alert-bench", o.keep);
  if (!tmp) {
    std::fprintf(stderr, "alert_bench: %s\n", tmp.error().c_str());
    return 2;
  }
  const std::string fs = filesystem_type((*tmp)->path());
  auto daemon = start_daemon(o, (*tmp)->path());
  if (!daemon) {
    std::fprintf(stderr, "alert_bench: cannot start the daemon: %s\n", daemon.error().c_str());
    return 2;
  }
  std::printf("iraewatch alert latency benchmark\n");
  std::printf("  daemon           %s (pid %d, records on 127.0.0.1:%u, subscribers on 127.0.0.1:%u)\n",
              o.binary.c_str(), static_cast<int>((*daemon)->pid()), static_cast<unsigned>((*daemon)->ports().ndjson),
              static_cast<unsigned>((*daemon)->ports().subscribers));
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

  const WarmupResult warm = run_warmup((*daemon)->ports().ndjson, o.patients);
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
  const StoppedCounts count = stopped_counts(log);
  std::printf("\ndaemon\n");
  std::printf("  stop             %s, %.0f ms after SIGTERM\n", end.how.c_str(), end.stop_ms);
  if (count.stored) {
    const auto text = [](const std::optional<std::uint64_t>& n) { return n ? std::to_string(*n) : std::string("?"); };
    std::printf(
        "  its count        %s stored, %s duplicates, %s rejected, %s not stored, %s alert events\n"
        "                   (bench expected %llu stored, %llu alert events)\n",
        text(count.stored).c_str(), text(count.duplicates).c_str(), text(count.rejected).c_str(),
        text(count.not_stored).c_str(), text(count.alert_events).c_str(),
        static_cast<unsigned long long>(expected_stored), static_cast<unsigned long long>(expected_events));
  } else {
    std::printf("  its count        missing: no 'stopped:' line in its log\n");
  }
  print_log(log);
  const bool counts_agree = count.stored && *count.stored == expected_stored && count.not_stored == std::uint64_t{0} &&
                            count.alert_events == expected_events;
  ok = ok && end.clean && counts_agree && log.errors == 0 && !g_interrupted;
  report["daemon"] = {
      {"stop", end.how},
      {"stop_ms", end.stop_ms},
      {"clean_stop", end.clean},
      {"stored", count.stored ? nlohmann::ordered_json(*count.stored) : nlohmann::ordered_json()},
      {"expected_stored", expected_stored},
      {"alert_events", count.alert_events ? nlohmann::ordered_json(*count.alert_events) : nlohmann::ordered_json()},
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
  install_signal_handlers();
  try {
    return run(*options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "alert_bench: %s\n", e.what());
    return 2;
  }
}
