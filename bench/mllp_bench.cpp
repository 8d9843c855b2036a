// mllp_bench: how fast a real iraewatch daemon acknowledges HL7 v2 ORU^R01 messages over MLLP,
// and how long one message waits for its ACK.
//
// The daemon is a black box: the bench starts it as a child process on a fresh data folder, talks
// to it over loopback exactly as an integration engine would, and stops it at the end. Each
// message is an ORU^R01 with one PID, one OBR and 5 OBX (so observations/s is 5 x messages/s):
// its own MSH-10 and filler order number, a patient out of --patients (PID-3 ...^MR, after a
// national id), and results drawn from the LOINC codes of rules/concepts.yaml (thyroid, CRP,
// calprotectin, vitals; canonical and convertible units) and from common labs outside the concept
// map (stored, not evaluated). Two measurements:
//   throughput  C connections, each keeping up to `window` messages unacknowledged (MLLP
//               pipelining; the daemon takes up to listeners.mllp.max_in_flight, default 64, per
//               connection and answers in order);
//   latency     one connection offers messages at a fixed rate, open loop: each message leaves at
//               its scheduled time whatever the ACKs do, and each ACK's delay is measured from
//               that scheduled time (so a stalled daemon cannot hide by slowing the sender down).
//               A daemon that cannot keep up with the rate is reported SATURATED: once an ACK is
//               5 s late (an integration engine's default timeout) the bench stops sending, and
//               still checks every ACK of what it sent.
// Every ACK must be AA with MSA-2 = the MSH-10 of the message it answers, in order; anything else
// is counted, sampled in the report, and makes the exit status 1. At the end the daemon is
// stopped with SIGTERM and the database is read (sqlite3 -readonly, and `iraewatch summary`):
// every acknowledged message must have exactly its 5 observations, each stored once. Exit status:
// 0 ok, 1 a check failed, 2 setup error (options, no daemon, no ready file). Every wait has a
// deadline; the targets (issue 5: >= 10,000 messages/s, ACK p99 <= 20 ms) are reported, and fail
// the run only with --require-targets.

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <expected>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "bench_support.hpp"

#ifndef IRAEWATCH_BINARY
#define IRAEWATCH_BINARY ""
#endif

using namespace iraewatch::bench;

namespace {

using namespace std::chrono_literals;

constexpr auto kStopWait = 15s;      // SIGTERM, then SIGKILL after this
constexpr auto kLatencyGrace = 15s;  // after the last scheduled message, ACKs must arrive within this
constexpr auto kEngineTimeout = 5s;  // an integration engine's default ACK timeout: past it, a phase is saturated
constexpr auto kDrainLimit = 60s;    // a saturated phase waits at most this for the ACKs of what it sent
constexpr auto kStall = 10s;         // no ACK for this long while some are owed: the daemon is stuck
constexpr auto kToolWait = 120s;     // sqlite3 and `iraewatch summary` must finish within this
constexpr std::uint64_t kObxPerMessage = 5;
constexpr double kTargetMessagesPerS = 10'000;
constexpr double kTargetP99Ms = 20;

// ---------------------------------------------------------------------------------------------
// Options

struct Options {
  std::string binary = IRAEWATCH_BINARY;
  std::uint64_t messages = 100'000;
  unsigned connections = 4;
  std::uint64_t window = 64;
  std::uint64_t patients = 5'000;
  std::vector<double> rates = {1'000, 2'000};
  double seconds = 10;
  std::string sync = "full";
  std::string segment_end = "\r";
  double timeout_s = 300;  // the throughput phase gives up (and fails) after this
  std::string tmp_root;    // empty: $TMPDIR, else /tmp
  bool keep = false;
  bool require_targets = false;
  std::uint64_t dump = 0;  // > 0: print that many messages and exit
  bool help = false;
};

constexpr const char* kUsage =
    "usage: mllp_bench [--binary PATH] [--messages N] [--connections C] [--window W] [--patients P]\n"
    "                  [--rate R[,R...]] [--seconds S] [--sync full|normal] [--segment-end cr|lf|crlf]\n"
    "                  [--timeout S] [--tmp-dir DIR] [--keep] [--require-targets] [--dump N]\n"
    "  --binary PATH      the iraewatch daemon (default: the one built next to this bench)\n"
    "  --messages N       throughput phase: ORU^R01 messages in total, 5 OBX each (default 100000)\n"
    "  --connections C    throughput phase: parallel MLLP connections (default 4)\n"
    "  --window W         throughput phase: max unacknowledged messages per connection (default 64,\n"
    "                     the daemon's default listeners.mllp.max_in_flight; 1: send, wait, send)\n"
    "  --patients P       distinct patients (PID-3 ...^MR) the messages are spread over (default 5000)\n"
    "  --rate R           latency phase: offered messages/s, repeatable or comma-separated (default 1000,2000)\n"
    "  --seconds S        latency phase: seconds per rate (default 10)\n"
    "  --sync MODE        store.synchronous for the daemon: full (default) or normal\n"
    "  --segment-end E    segment terminator in the messages: cr (default, as HL7 says), lf or crlf\n"
    "  --timeout S        throughput phase: give up after S seconds (default 300)\n"
    "  --tmp-dir DIR      where the temporary data folder goes (default $TMPDIR or /tmp)\n"
    "  --keep             keep the temporary folder (database, daemon log) for inspection\n"
    "  --require-targets  exit 1 also when a target is missed (>= 10000 messages/s; ACK p99 <= 20 ms)\n"
    "  --dump N           print the first N messages of connection 0 (LF segment ends) and exit\n";

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
    if (flag == "--require-targets") {
      o.require_targets = true;
      continue;
    }
    if (i + 1 >= argc) return std::unexpected("missing value after " + std::string(flag));
    const std::string_view value = argv[++i];
    const auto bad = [&] { return std::unexpected("bad value '" + std::string(value) + "' for " + std::string(flag)); };
    if (flag == "--binary") {
      o.binary = value;
    } else if (flag == "--messages") {
      auto n = parse_number<std::uint64_t>(value);
      if (!n || *n == 0 || *n > 10'000'000) return bad();
      o.messages = *n;
    } else if (flag == "--connections") {
      auto n = parse_number<unsigned>(value);
      if (!n || *n == 0 || *n > 60) return bad();  // the daemon's default MLLP connection limit is 64
      o.connections = *n;
    } else if (flag == "--window") {
      auto n = parse_number<std::uint64_t>(value);
      if (!n || *n == 0 || *n > 1'000) return bad();
      o.window = *n;
    } else if (flag == "--patients") {
      auto n = parse_number<std::uint64_t>(value);
      if (!n || *n == 0 || *n > 10'000'000) return bad();
      o.patients = *n;
    } else if (flag == "--rate") {
      if (!rates_given) o.rates.clear();
      rates_given = true;
      const auto rates = parse_rates(value, 200'000);
      if (!rates) return bad();
      o.rates.insert(o.rates.end(), rates->begin(), rates->end());
    } else if (flag == "--seconds") {
      auto s = parse_number<double>(value);
      if (!s || !(*s >= 0.1 && *s <= 600)) return bad();
      o.seconds = *s;
    } else if (flag == "--sync") {
      if (value != "full" && value != "normal") return bad();
      o.sync = value;
    } else if (flag == "--segment-end") {
      if (value == "cr") {
        o.segment_end = "\r";
      } else if (value == "lf") {
        o.segment_end = "\n";
      } else if (value == "crlf") {
        o.segment_end = "\r\n";
      } else {
        return bad();
      }
    } else if (flag == "--timeout") {
      auto s = parse_number<double>(value);
      if (!s || !(*s >= 1 && *s <= 3600)) return bad();
      o.timeout_s = *s;
    } else if (flag == "--tmp-dir") {
      o.tmp_root = value;
    } else if (flag == "--dump") {
      auto n = parse_number<std::uint64_t>(value);
      if (!n || *n == 0 || *n > 1'000'000) return bad();
      o.dump = *n;
    } else {
      return std::unexpected("unknown option " + std::string(flag));
    }
  }
  if (o.messages < o.connections) return std::unexpected("--messages must be at least --connections");
  for (double r : o.rates)
    if (r * o.seconds > 2'000'000) return std::unexpected("--rate x --seconds is more than 2 million messages");
  if (o.binary.empty() && !o.help && o.dump == 0) return std::unexpected("no daemon binary: pass --binary PATH");
  return o;
}

// ---------------------------------------------------------------------------------------------
// Test data

// One kind of OBX: a LOINC code, a unit the concept map accepts for it (canonical or listed under
// `convert` in rules/concepts.yaml; for codes outside the map, the usual UCUM unit), a plausible
// value spread and the reference range a lab would send in OBX-7.
struct ObxKind {
  const char* code;
  const char* name;
  const char* unit;
  double low, high;
  int decimals;
  const char* range;
  double ref_low, ref_high;  // for OBX-8 (H/L/N)
};

constexpr ObxKind kObxKinds[] = {
    // In the concept map (evaluated by the rules).
    {"3016-3", "TSH", "m[IU]/L", 0.05, 14.0, 2, "0.4-4.0", 0.4, 4.0},
    {"3024-7", "Free T4", "ng/dL", 0.3, 2.8, 2, "0.9-1.7", 0.9, 1.7},
    {"3051-0", "Free T3", "pg/mL", 1.2, 6.5, 1, "2.0-4.4", 2.0, 4.4},
    {"1988-5", "CRP", "mg/L", 0.3, 150, 1, "<5", -1e9, 5},
    {"38445-3", "Calprotectin", "ug/g", 10, 600, 0, "<50", -1e9, 50},
    {"59408-5", "SpO2", "%", 84, 100, 0, ">=95", 95, 1e9},
    {"9279-1", "Respiratory rate", "/min", 10, 32, 0, "12-20", 12, 20},
    {"8310-5", "Body temperature", "Cel", 35.8, 40.2, 1, "36.1-37.9", 36.1, 37.9},
    {"11580-8", "TSH", "uIU/mL", 0.05, 14.0, 2, "0.4-4.0", 0.4, 4.0},  // alternate code, convertible unit
    {"14920-3", "Free T4", "pmol/L", 5, 36, 1, "12-22", 12, 22},       // molar code, converted to ng/dL
    // Outside the concept map: stored, not evaluated.
    {"2951-2", "Sodium", "mmol/L", 126, 149, 0, "135-145", 135, 145},
    {"2823-3", "Potassium", "mmol/L", 3.0, 5.9, 1, "3.5-5.1", 3.5, 5.1},
    {"2160-0", "Creatinine", "mg/dL", 0.5, 2.6, 2, "0.6-1.2", 0.6, 1.2},
    {"1742-6", "ALT", "U/L", 8, 320, 0, "7-56", 7, 56},
    {"2345-7", "Glucose", "mg/dL", 60, 310, 0, "70-99", 70, 99},
    {"718-7", "Hemoglobin", "g/dL", 7.5, 17.5, 1, "12.0-16.0", 12, 16},
};
constexpr std::size_t kKinds = std::size(kObxKinds);
static_assert(kKinds == 16, "the OBX choice below steps by 3 through 16 kinds: 5 distinct codes per message");

constexpr std::int64_t kBaseEpoch = 1'772'323'200;  // 2026-03-01T00:00:00Z
constexpr std::int64_t kTimeSpread = 30 * 86'400;   // event times over 30 days
constexpr int kOffsetMinutes = 60;                  // the sender's zone, +0100

std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

// A stream of messages: its control ids are PREFIX + n; everything else derives from (prefix, n),
// so every run sends the same data.
struct MessageStream {
  std::string prefix;
  std::uint64_t seed = 0;
  std::uint64_t patients = 1;
  std::string segment_end = "\r";

  MessageStream(std::string p, std::uint64_t patient_count, std::string end)
      : prefix(std::move(p)), seed(fnv1a(prefix)), patients(patient_count), segment_end(std::move(end)) {}

  std::uint64_t hash(std::uint64_t n) const { return splitmix64(seed + n); }
  std::uint64_t patient(std::uint64_t n) const { return hash(n) % patients; }

  void append_control_id(std::string& out, std::uint64_t n) const {
    out += prefix;
    append_number(out, n);
  }

  // Appends message n, MLLP-framed when `framed`.
  void append_message(std::string& out, std::uint64_t n, bool framed = true) const {
    const std::uint64_t h = hash(n);
    const std::uint64_t patient_no = h % patients;
    const std::time_t t = kBaseEpoch + static_cast<std::int64_t>((h >> 24) % kTimeSpread);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char when[32];
    const std::string_view time(when, std::strftime(when, sizeof when, "%Y%m%d%H%M%S+0100", &tm));
    const std::string_view end = segment_end;
    if (framed) out += '\x0b';
    out += "MSH|^~\\&|BENCH_LIS|BENCH_HOSP|IRAEWATCH|BENCH_HOSP|";
    out += time;
    out += "||ORU^R01^ORU_R01|";
    append_control_id(out, n);
    out += "|P|2.5.1";
    out += end;
    out += "PID|1||";
    append_number(out, 900'000'000 + patient_no);
    out += "^^^NATIONAL^NI~MRN-";
    append_number(out, patient_no);
    out += "^^^BENCH_HOSP^MR||BENCH^PATIENT";
    append_number(out, patient_no);
    out += "||19600101|F";
    out += end;
    out += "OBR|1|PL-";
    append_control_id(out, n);
    out += "|FL-";
    append_control_id(out, n);
    out += "^LAB|24323-8^Lab panel^LN|||";
    out += time;
    out += end;
    // 5 distinct kinds: a start, then steps of 3 through 16 kinds (3 and 16 are coprime).
    const std::size_t first = (h >> 8) % kKinds;
    for (std::uint64_t i = 0; i < kObxPerMessage; ++i) {
      const ObxKind& k = kObxKinds[(first + 3 * i) % kKinds];
      const std::uint64_t r = splitmix64(h + i);
      const double fraction = static_cast<double>(r & 0xFFFFF) / double(0xFFFFF);
      const double v = k.low + (k.high - k.low) * fraction;
      char value[32];
      const int len = std::snprintf(value, sizeof value, "%.*f", k.decimals, v);
      out += "OBX|";
      append_number(out, i + 1);
      out += "|NM|";
      out += k.code;
      out += '^';
      out += k.name;
      out += "^LN||";
      out.append(value, static_cast<std::size_t>(len));
      out += '|';
      out += k.unit;
      out += "^^UCUM|";
      out += k.range;
      out += '|';
      out += v < k.ref_low ? "L" : v > k.ref_high ? "H" : "N";
      out += "|||F|||";
      out += time;
      out += end;
    }
    if (framed) out += "\x1c\r";
  }
};

// ---------------------------------------------------------------------------------------------
// ACKs

// What the ACKs of one stream looked like. Owned by one reader, merged after join.
struct AckTally {
  std::uint64_t aa = 0;          // AA with the right MSA-2
  std::uint64_t not_aa = 0;      // AE, AR, CA, ...
  std::uint64_t wrong_id = 0;    // MSA-2 names another message: out of order or lost
  std::uint64_t unreadable = 0;  // no MSH or no MSA segment
  std::vector<std::string> samples;

  // Checks the ACK of message `expected_id` (ACKs come in message order). True when it is AA for it.
  bool add(std::string_view ack, std::string_view expected_id) {
    std::vector<std::string_view> msa;
    if (ack.size() >= 4 && ack.substr(0, 3) == "MSH") {
      const char sep = ack[3];
      for (std::size_t at = 0; at < ack.size();) {
        std::size_t end = ack.find_first_of("\r\n", at);
        if (end == std::string_view::npos) end = ack.size();
        const std::string_view segment = ack.substr(at, end - at);
        if (segment.size() > 3 && segment.substr(0, 3) == "MSA" && segment[3] == sep) {
          for (std::size_t f = 0; f <= segment.size();) {
            std::size_t bar = segment.find(sep, f);
            if (bar == std::string_view::npos) bar = segment.size();
            msa.push_back(segment.substr(f, bar - f));
            f = bar + 1;
          }
          break;
        }
        at = end + 1;
      }
    }
    if (msa.size() < 3) {
      ++unreadable;
      sample("for " + std::string(expected_id) + ", no MSA-1/MSA-2 in: " + printable(ack));
      return false;
    }
    if (msa[1] != "AA") {
      ++not_aa;
      sample("for " + std::string(expected_id) + ": " + printable(ack));
      return false;
    }
    if (msa[2] != expected_id) {
      ++wrong_id;
      sample("expected MSA-2 " + std::string(expected_id) + ", got: " + printable(ack));
      return false;
    }
    ++aa;
    return true;
  }

  void merge(const AckTally& other) {
    aa += other.aa;
    not_aa += other.not_aa;
    wrong_id += other.wrong_id;
    unreadable += other.unreadable;
    for (const auto& s : other.samples) sample(s);
  }

  std::uint64_t total() const { return aa + not_aa + wrong_id + unreadable; }
  bool clean() const { return not_aa == 0 && wrong_id == 0 && unreadable == 0; }

 private:
  static std::string printable(std::string_view s) {
    std::string out;
    for (char c : s.substr(0, 400)) out += c == '\r' || c == '\n' ? std::string(" / ") : std::string(1, c);
    return out;
  }
  void sample(std::string s) {
    if (samples.size() < kMaxSamples) samples.push_back(std::move(s));
  }
};

// ---------------------------------------------------------------------------------------------
// MLLP frames

std::string describe(ReadEnd e) {
  switch (e) {
    case ReadEnd::done:
      return "done";
    case ReadEnd::deadline:
      return "ACKs still missing at the deadline";
    case ReadEnd::interrupted:
      return "interrupted";
    case ReadEnd::closed:
      return "the daemon closed the connection before all ACKs";
    case ReadEnd::error:
      return std::string("receive error: ") + std::strerror(errno);
  }
  return "?";
}

// The MLLP frames coming in on one connection (0x0B payload 0x1C 0x0D). Bytes after the last
// complete frame stay for the next call. Bytes outside frames other than the 0x0D trailer are
// counted: the daemon should send none.
class FrameReader {
 public:
  explicit FrameReader(int fd) : fd_(fd), buf_(64 * 1024) {}

  // Reads frames until done() holds, calling on_frame(payload, arrival) for each complete one.
  // All frames of one recv() share its arrival time, which is when the bench could first see them.
  template <typename Done, typename OnFrame>
  ReadEnd read(Clock::time_point deadline, Done done, OnFrame on_frame) {
    while (!done()) {
      if (deliver(done, on_frame)) continue;
      if (g_interrupted) return ReadEnd::interrupted;
      if (Clock::now() > deadline) return ReadEnd::deadline;
      const ssize_t n = ::recv(fd_, buf_.data(), buf_.size(), 0);
      if (n == 0) return ReadEnd::closed;
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
        return ReadEnd::error;
      }
      arrival_ = Clock::now();
      pending_.append(buf_.data(), static_cast<std::size_t>(n));
      if (deliver(done, on_frame)) ++bursts_;
    }
    return ReadEnd::done;
  }

  std::uint64_t stray_bytes() const { return stray_; }
  // recv() calls that completed at least one frame: ACKs / bursts is how many ACKs one commit
  // (or a few) released at once on this connection.
  std::uint64_t bursts() const { return bursts_; }

 private:
  // Hands over complete frames until done() holds; the rest stays pending. True if it handed any.
  template <typename Done, typename OnFrame>
  bool deliver(Done& done, OnFrame& on_frame) {
    bool any = false;
    std::size_t at = 0;
    while (!done()) {
      const auto open = pending_.find('\x0b', at);
      for (std::size_t i = at; i < std::min(open, pending_.size()); ++i)
        if (pending_[i] != '\r') ++stray_;
      if (open == std::string::npos) {
        at = pending_.size();
        break;
      }
      const auto close = pending_.find('\x1c', open + 1);
      if (close == std::string::npos) {
        at = open;
        break;
      }
      on_frame(std::string_view(pending_).substr(open + 1, close - open - 1), arrival_);
      any = true;
      at = close + 1;
    }
    pending_.erase(0, at);
    return any;
  }

  int fd_;
  std::vector<char> buf_;
  std::string pending_;
  Clock::time_point arrival_{};
  std::uint64_t stray_ = 0, bursts_ = 0;
};

// ---------------------------------------------------------------------------------------------
// The daemon

// Runs a command (PATH lookup) with stdout to `out_path` and stderr to `err_path`, killed after
// `limit`. Returns its exit status, 127 when it could not be started; an error text on timeout.
std::expected<int, std::string> run_tool(std::vector<std::string> args, const std::string& out_path,
                                         const std::string& err_path, std::chrono::milliseconds limit) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return std::unexpected(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out >= 0) ::dup2(out, STDOUT_FILENO);
    if (err >= 0) ::dup2(err, STDERR_FILENO);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  if (!wait_child(pid, limit, status)) {
    ::kill(pid, SIGKILL);
    wait_child(pid, 5s, status);
    return std::unexpected(args[0] + " did not finish within " +
                           std::to_string(std::chrono::duration_cast<std::chrono::seconds>(limit).count()) + " s");
  }
  if (!WIFEXITED(status)) return std::unexpected(args[0] + ": " + describe_status(status));
  return WEXITSTATUS(status);
}

// The daemon with its MLLP listener on loopback (the NDJSON and subscriber listeners on loopback
// too, on free ports, unused).
std::expected<std::unique_ptr<Daemon>, std::string> start_daemon(const Options& o, const std::string& dir) {
  DaemonSetup setup;
  setup.binary = o.binary;
  setup.config = "store:\n  synchronous: " + o.sync + "\nlisteners:\n  mllp:\n    feed: hl7\n";
  setup.listeners = {"--listen", "127.0.0.1:0", "--mllp", "127.0.0.1:0", "--subscribers", "127.0.0.1:0"};
  setup.stop_wait = kStopWait;
  setup.read_ports = [](const nlohmann::json& ready,
                        const std::string& ready_file) -> std::expected<DaemonPorts, std::string> {
    const auto mllp = endpoint_port(ready, "mllp");
    if (!mllp) return std::unexpected("no mllp port in the ready file: " + read_file(ready_file));
    return DaemonPorts{.mllp = *mllp};
  };
  return Daemon::start(std::move(setup), dir);
}

// The daemon's closing count of HL7 messages, from its "stopped: ..." log line.
std::optional<std::uint64_t> hl7_messages(const LogSummary& log) {
  std::optional<std::uint64_t> count;
  for (const std::string& line : log.stopped) count = count_before(line, " HL7 messages");
  return count;
}

// ---------------------------------------------------------------------------------------------
// CPU and disk (see bench_support.hpp): this bench reports iowait, the run-queue wait and the
// bytes the daemon wrote too.

void print_cpu(const CpuUse& u, std::uint64_t messages) {
  std::printf(
      "  cpu (cores)      daemon %.2f (busiest thread %.2f), bench %.2f, rest of the machine %.2f; iowait %.2f; "
      "%u in all\n",
      u.daemon, u.daemon_busiest_thread, u.bench, u.others, u.iowait, std::thread::hardware_concurrency());
  if (u.daemon_wait && u.bench_wait)
    std::printf("  cpu wait         runnable but not running: daemon threads %.0f ms/s, bench threads %.0f ms/s\n",
                *u.daemon_wait * 1000, *u.bench_wait * 1000);
  if (u.daemon_write_bytes && messages > 0)
    std::printf("  disk             daemon wrote %.1f MB, %.1f KB per message\n",
                static_cast<double>(*u.daemon_write_bytes) / 1e6,
                static_cast<double>(*u.daemon_write_bytes) / 1e3 / static_cast<double>(messages));
  if (u.others > 0.25)
    std::printf(
        "  WARNING: other processes or kernel threads used %.2f cores in this phase; figures may be pessimistic\n",
        u.others);
}

nlohmann::ordered_json to_json(const CpuUse& u) {
  const auto opt = [](const auto& v) { return v ? nlohmann::ordered_json(*v) : nlohmann::ordered_json(); };
  return {{"daemon", u.daemon},
          {"daemon_busiest_thread", u.daemon_busiest_thread},
          {"bench", u.bench},
          {"others", u.others},
          {"iowait", u.iowait},
          {"daemon_wait", opt(u.daemon_wait)},
          {"bench_wait", opt(u.bench_wait)},
          {"daemon_write_bytes", opt(u.daemon_write_bytes)}};
}

// ---------------------------------------------------------------------------------------------
// Measurements

// What one stream of messages left behind, for the store check: which messages were answered AA.
struct StreamRecord {
  MessageStream stream;
  std::uint64_t sent = 0;              // messages wholly sent
  std::uint64_t attempted = 0;         // messages sent at least in part (a send can fail half-way)
  std::vector<std::uint8_t> acked_aa;  // per message: 1 when its ACK was AA with the right MSA-2
};

struct ThroughputResult {
  std::uint64_t offered = 0, sent = 0, acked = 0;
  double seconds = 0, messages_per_s = 0;
  double first_ack_ms = 0;            // first message sent to first ACK seen, on any connection
  double max_gap_ms = 0;              // longest silence between two ACKs on one connection
  double acks_per_burst = 0;          // ACKs per recv() that returned any: how many one commit released
  Percentiles send_to_ack;            // closed loop: each message's send() to its ACK
  std::vector<double> rate_by_tenth;  // messages/s over each tenth of the messages, in order: does it hold up?
  std::uint64_t stray_bytes = 0;
  AckTally tally;
  std::vector<std::string> problems;
  bool complete() const { return acked == offered && problems.empty(); }
};

// One pipelining connection of the throughput phase. One thread sends and reads, as an
// integration engine's outbound connection does: whenever fewer than `window` messages are
// unanswered, the missing ones leave in one send(); then it waits for at least one ACK.
struct Stream {
  StreamRecord* record = nullptr;
  std::atomic<std::uint64_t>* progress = nullptr;  // ACKs over all connections, for the rate over time
  std::uint64_t count = 0;
  std::optional<Socket> socket;
  AckTally tally;
  std::uint64_t acked = 0, bursts = 0, stray = 0;
  Clock::time_point first_ack{}, last_ack{};
  double max_gap_ms = 0;
  std::vector<double> send_to_ack_ms;
  std::string problem;
};

void run_stream(Stream& s, std::uint64_t window, Clock::time_point deadline) {
  CountWait count_wait;
  const MessageStream& ms = s.record->stream;
  s.record->acked_aa.assign(s.count, 0);
  s.send_to_ack_ms.reserve(s.count);
  std::vector<Clock::time_point> sent_at(s.count);
  FrameReader reader(s.socket->fd());
  std::string chunk, expected;
  std::uint64_t next = 0;
  while (s.acked < s.count) {
    if (next < s.count && next - s.acked < window) {
      const std::uint64_t k = std::min(window - (next - s.acked), s.count - next);
      chunk.clear();
      for (std::uint64_t i = next; i < next + k; ++i) ms.append_message(chunk, i);
      const auto now = Clock::now();
      for (std::uint64_t i = next; i < next + k; ++i) sent_at[i] = now;
      s.record->attempted = next + k;
      if (auto ok = send_all(s.socket->fd(), chunk, deadline); !ok) {
        s.problem = "send: " + ok.error();
        break;
      }
      next += k;
      s.record->sent = next;
    }
    const std::uint64_t before = s.acked;
    const auto wait_until = std::min(deadline, Clock::now() + kStall);
    const ReadEnd end = reader.read(
        wait_until, [&] { return s.acked > before; },
        [&](std::string_view ack, Clock::time_point arrival) {
          const std::uint64_t n = s.acked;
          expected.clear();
          ms.append_control_id(expected, n);
          if (s.tally.add(ack, expected)) s.record->acked_aa[n] = 1;
          if (n == 0) {
            s.first_ack = arrival;
          } else if (arrival != s.last_ack) {
            s.max_gap_ms = std::max(s.max_gap_ms, ms_between(s.last_ack, arrival));
          }
          if (n < next) s.send_to_ack_ms.push_back(ms_between(sent_at[n], arrival));
          s.last_ack = arrival;
          ++s.acked;
          s.progress->fetch_add(1, std::memory_order_relaxed);
        });
    if (end != ReadEnd::done) {
      const bool stalled = end == ReadEnd::deadline && wait_until < deadline;
      s.problem =
          (stalled ? "no ACK for " + std::to_string(kStall.count()) + " s: the daemon looks stuck" : describe(end)) +
          " (" + std::to_string(s.acked) + " of " + std::to_string(s.count) + " acknowledged)";
      break;
    }
  }
  s.bursts = reader.bursts();
  s.stray = reader.stray_bytes();
}

ThroughputResult run_throughput(std::uint16_t port, const Options& o, std::vector<StreamRecord>& records,
                                const std::string& run_tag) {
  ThroughputResult r;
  r.offered = o.messages;
  std::vector<std::unique_ptr<Stream>> streams;
  for (unsigned c = 0; c < o.connections; ++c) {
    records.push_back(StreamRecord{
        .stream = MessageStream("B" + run_tag + "-T" + std::to_string(c) + "-", o.patients, o.segment_end)});
  }
  for (unsigned c = 0; c < o.connections; ++c) {
    auto s = std::make_unique<Stream>();
    s->record = &records[records.size() - o.connections + c];
    s->count = o.messages / o.connections + (c < o.messages % o.connections ? 1 : 0);
    auto socket = connect_loopback(port);
    if (!socket) {
      r.problems.push_back(socket.error());
      return r;
    }
    s->socket.emplace(std::move(*socket));
    streams.push_back(std::move(s));
  }
  std::atomic<std::uint64_t> progress{0};
  for (auto& s : streams) s->progress = &progress;
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.timeout_s));
  // When each tenth of the messages had been acknowledged, sampled every 20 ms.
  std::vector<Clock::time_point> tenth_at;
  {
    std::atomic<bool> finished{false};
    std::jthread sampler([&] {
      CountWait count_wait;
      for (bool last = false; !last && tenth_at.size() < 10;) {
        std::this_thread::sleep_for(20ms);
        last = finished.load();
        while (tenth_at.size() < 10 && progress.load() * 10 >= (tenth_at.size() + 1) * o.messages)
          tenth_at.push_back(Clock::now());
      }
    });
    {
      std::vector<std::jthread> threads;
      for (auto& s : streams) threads.emplace_back(run_stream, std::ref(*s), o.window, deadline);
    }
    finished = true;
  }
  for (std::size_t i = 0; i < tenth_at.size(); ++i) {
    const double s = std::chrono::duration<double>(tenth_at[i] - (i == 0 ? start : tenth_at[i - 1])).count();
    r.rate_by_tenth.push_back(s > 0 ? static_cast<double>(o.messages) / 10 / s : 0);
  }
  Clock::time_point end = start, first = Clock::time_point::max();
  std::uint64_t bursts = 0;
  std::vector<double> send_to_ack;
  for (std::size_t c = 0; c < streams.size(); ++c) {
    Stream& s = *streams[c];
    r.acked += s.acked;
    r.sent += s.record->sent;
    r.tally.merge(s.tally);
    r.max_gap_ms = std::max(r.max_gap_ms, s.max_gap_ms);
    r.stray_bytes += s.stray;
    bursts += s.bursts;
    send_to_ack.insert(send_to_ack.end(), s.send_to_ack_ms.begin(), s.send_to_ack_ms.end());
    if (s.acked > 0) {
      end = std::max(end, s.last_ack);
      first = std::min(first, s.first_ack);
    }
    if (!s.problem.empty()) r.problems.push_back("connection " + std::to_string(c) + ": " + s.problem);
  }
  if (r.stray_bytes > 0)
    r.problems.push_back(std::to_string(r.stray_bytes) + " bytes outside MLLP frames in the daemon's replies");
  r.seconds = std::chrono::duration<double>(end - start).count();
  r.messages_per_s = r.seconds > 0 ? static_cast<double>(r.acked) / r.seconds : 0;
  r.first_ack_ms = first == Clock::time_point::max() ? 0 : ms_between(start, first);
  r.acks_per_burst = bursts > 0 ? static_cast<double>(r.acked) / static_cast<double>(bursts) : 0;
  r.send_to_ack = summarise(std::move(send_to_ack));
  return r;
}

struct LatencyResult {
  double rate = 0, seconds = 0;
  std::uint64_t offered = 0, sent = 0, acked = 0;
  double achieved_rate = 0;    // messages actually sent per second of the sending window
  double max_send_lag_ms = 0;  // how late the bench sent a message against its schedule
  double max_gap_ms = 0;
  double acks_per_burst = 0;
  Percentiles from_schedule, from_send;
  AckTally tally;
  // Set when the daemon did not keep up: an ACK came more than kEngineTimeout after its message's
  // scheduled time (an integration engine would have given up on it), or send() stayed blocked
  // that long (the daemon stops reading while 8 messages are in progress). The bench then stops
  // sending and waits up to kDrainLimit for the ACKs of what it sent. Not a failed check by
  // itself: every ACK that comes is still checked, and so is the store.
  std::string saturated;
  std::uint64_t unanswered = 0;  // sent, but no ACK when a saturated phase stopped waiting
  std::vector<std::string> problems;
  bool passed() const { return problems.empty() && tally.clean() && (acked == sent || !saturated.empty()); }
  bool complete() const { return passed() && saturated.empty() && acked == offered; }
};

LatencyResult run_latency(std::uint16_t port, const Options& o, double rate, StreamRecord& record) {
  LatencyResult r;
  r.rate = rate;
  r.seconds = o.seconds;
  r.offered = static_cast<std::uint64_t>(rate * o.seconds);
  const MessageStream& ms = record.stream;
  record.acked_aa.assign(r.offered, 0);
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

  // sent_at[i] is written before `published` passes i, and read only after it has (acquire).
  std::vector<Clock::time_point> sent_at(r.offered);
  std::atomic<std::uint64_t> published{0}, target{r.offered}, acked{0};
  std::atomic<bool> saturated{false};  // r.saturated is written before, and read after the join
  // Until when the reader waits: the grace after the schedule, or the drain limit once saturated.
  std::atomic<Clock::rep> wait_until{(scheduled(r.offered) + kLatencyGrace).time_since_epoch().count()};
  std::vector<double> from_schedule, from_send;
  from_schedule.reserve(r.offered);
  from_send.reserve(r.offered);
  std::string writer_problem, reader_problem;
  Clock::time_point last_send = start, last_ack{};
  std::uint64_t bursts = 0, stray = 0;
  {
    std::jthread writer([&] {
      CountWait count_wait;
      std::string chunk;
      std::uint64_t i = 0;
      const auto saturate = [&](std::string why) {
        r.saturated = std::move(why);
        wait_until = (Clock::now() + kDrainLimit).time_since_epoch().count();
        saturated = true;
      };
      while (i < r.offered) {
        if (g_interrupted) {
          writer_problem = "interrupted";
          break;
        }
        const auto now = Clock::now();
        if (const std::uint64_t a = acked.load(); a < i && now - scheduled(a) > kEngineTimeout) {
          saturate("message " + std::to_string(a) + " waited more than " + std::to_string(kEngineTimeout.count()) +
                   " s for its ACK (an integration engine's default timeout)");
          break;
        }
        if (now < scheduled(i)) {
          std::this_thread::sleep_until(std::min(scheduled(i), now + kSocketPoll));
          continue;
        }
        // Every message whose time has come leaves now, in one send().
        std::uint64_t due = i;
        chunk.clear();
        while (due < r.offered && due - i < 64 && scheduled(due) <= now) {
          ms.append_message(chunk, due);
          r.max_send_lag_ms = std::max(r.max_send_lag_ms, ms_between(scheduled(due), now));
          sent_at[due++] = now;
        }
        published.store(due, std::memory_order_release);
        record.attempted = due;
        if (auto ok = send_all(fd, chunk, now + kEngineTimeout); !ok) {
          if (!g_interrupted && Clock::now() > now + kEngineTimeout)
            saturate("send() blocked for " + std::to_string(kEngineTimeout.count()) + " s: the daemon stopped reading");
          else
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
      CountWait count_wait;
      FrameReader frames(fd);
      std::string expected;
      const auto done = [&] { return acked.load() >= target.load(); };
      const auto on_frame = [&](std::string_view ack, Clock::time_point arrival) {
        const std::uint64_t n = acked.load();
        expected.clear();
        ms.append_control_id(expected, n);
        if (r.tally.add(ack, expected)) record.acked_aa[n] = 1;
        from_schedule.push_back(ms_between(scheduled(n), arrival));
        if (published.load(std::memory_order_acquire) > n) from_send.push_back(ms_between(sent_at[n], arrival));
        if (n > 0 && arrival != last_ack) r.max_gap_ms = std::max(r.max_gap_ms, ms_between(last_ack, arrival));
        last_ack = arrival;
        acked.store(n + 1);
      };
      for (;;) {
        const Clock::time_point until{Clock::duration{wait_until.load()}};
        const ReadEnd end = frames.read(std::min(until, Clock::now() + 200ms), done, on_frame);
        if (end == ReadEnd::done) break;
        if (end != ReadEnd::deadline) {
          reader_problem = describe(end);
          break;
        }
        const auto now = Clock::now();
        const std::uint64_t a = acked.load(), p = published.load(std::memory_order_acquire);
        if (now >= Clock::time_point{Clock::duration{wait_until.load()}}) {
          if (!saturated.load()) reader_problem = describe(ReadEnd::deadline);
          break;
        }
        if (p > a && now - std::max(last_ack, sent_at[a]) > kStall) {
          reader_problem = "no ACK for " + std::to_string(kStall.count()) + " s while " + std::to_string(p - a) +
                           " were owed: the daemon looks stuck";
          break;
        }
      }
      bursts = frames.bursts();
      stray = frames.stray_bytes();
    });
  }
  r.acked = acked.load();
  record.sent = r.sent;
  if (!r.saturated.empty() && r.acked < r.sent) r.unanswered = r.sent - r.acked;
  const double window_s = std::chrono::duration<double>(last_send - start).count();
  r.achieved_rate = window_s > 0 && r.sent > 1 ? static_cast<double>(r.sent - 1) / window_s : 0;
  r.acks_per_burst = bursts > 0 ? static_cast<double>(r.acked) / static_cast<double>(bursts) : 0;
  r.from_schedule = summarise(std::move(from_schedule));
  r.from_send = summarise(std::move(from_send));
  if (!writer_problem.empty()) r.problems.push_back("send: " + writer_problem);
  if (!reader_problem.empty())
    r.problems.push_back("ACKs: " + reader_problem + " (" + std::to_string(r.acked) + " of " + std::to_string(r.sent) +
                         " sent acknowledged)");
  if (stray > 0) r.problems.push_back(std::to_string(stray) + " bytes outside MLLP frames in the daemon's replies");
  return r;
}

// ---------------------------------------------------------------------------------------------
// The store check, after the daemon has stopped

struct StoreCheck {
  std::string method;                       // "sqlite3" or "summary only"
  std::uint64_t acknowledged = 0;           // messages answered AA by the bench's count
  std::uint64_t complete = 0;               // of those, with exactly 5 observations, each stored once
  std::uint64_t incomplete = 0;             // of those, with missing, extra or repeated observations
  std::uint64_t unacknowledged_stored = 0;  // messages the bench sent (in part) but saw no AA for, yet stored
  std::uint64_t unknown_messages = 0;       // observations of a message id the bench never sent
  std::uint64_t observations = 0;           // rows in observations (feed hl7)
  std::uint64_t repeated_records = 0;       // record ids with more than one row
  std::uint64_t inbound = 0, inbound_aa = 0, inbound_distinct = 0;
  std::uint64_t rejected = 0;
  std::uint64_t patients = 0, expected_patients = 0;  // expected: those of the bench's messages found stored
  std::optional<std::uint64_t> summary_observations;  // what `iraewatch summary` says
  std::vector<std::string> samples;
  std::vector<std::string> problems;
  bool ok() const { return problems.empty(); }
};

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  for (std::size_t at = 0;;) {
    const auto bar = s.find(sep, at);
    out.push_back(s.substr(at, bar - at));
    if (bar == std::string_view::npos) return out;
    at = bar + 1;
  }
}

StoreCheck check_store(const Options& o, const std::string& dir, const std::string& data_dir,
                       const std::vector<StreamRecord>& records) {
  StoreCheck c;
  const auto sample = [&](std::string s) {
    if (c.samples.size() < kMaxSamples) c.samples.push_back(std::move(s));
  };
  for (const auto& r : records)
    for (auto aa : r.acked_aa) c.acknowledged += aa;

  // `iraewatch summary`: the operator's view, as a cross-check of the total.
  const std::string summary_out = dir + "/summary.txt", summary_err = dir + "/summary.err";
  auto summary = run_tool({o.binary, "--data-dir", data_dir, "summary"}, summary_out, summary_err, kToolWait);
  if (!summary || *summary != 0) {
    c.problems.push_back(
        "iraewatch summary failed: " + (summary ? "exit " + std::to_string(*summary) : summary.error()) + " " +
        read_file(summary_err).substr(0, 300));
  } else {
    const std::string text = read_file(summary_out);
    if (const auto at = text.find("  observations"); at != std::string::npos) {
      const auto digits = text.find_first_of("0123456789", at);
      const auto stop = text.find_first_not_of("0123456789", digits);
      if (digits != std::string::npos)
        c.summary_observations = parse_number<std::uint64_t>(std::string_view(text).substr(digits, stop - digits));
    }
    if (!c.summary_observations) c.problems.push_back("no observation count in `iraewatch summary`'s output");
  }

  // sqlite3, read-only: per message id, its rows, distinct record ids and highest version.
  const std::string db = data_dir + "/iraewatch.db";
  const std::string sql =
      "SELECT 'm', message_id, count(*), count(DISTINCT record_id), max(version) FROM observations "
      "WHERE feed = 'hl7' GROUP BY message_id;"
      "SELECT 'o', count(*) FROM observations WHERE feed = 'hl7';"
      "SELECT 'd', count(*) FROM (SELECT record_id FROM observations WHERE feed = 'hl7' GROUP BY record_id "
      "HAVING count(*) > 1);"
      "SELECT 'i', count(*), count(DISTINCT control_id), coalesce(sum(ack_code = 'AA'), 0) FROM inbound_messages "
      "WHERE feed = 'hl7';"
      "SELECT 'r', count(*) FROM rejected;"
      "SELECT 'p', count(*) FROM patients;";
  const std::string out = dir + "/store.txt", err = dir + "/store.err";
  auto rc = run_tool({"sqlite3", "-readonly", "-batch", "-noheader", "-separator", "|", db, sql}, out, err, kToolWait);
  if (rc && *rc == 127) {
    c.method = "summary only (no sqlite3 command)";
    c.observations = c.summary_observations.value_or(0);
    if (c.summary_observations != kObxPerMessage * c.acknowledged)
      c.problems.push_back("the store holds " + std::to_string(c.observations) + " observations, expected " +
                           std::to_string(kObxPerMessage * c.acknowledged));
    return c;
  }
  if (!rc || *rc != 0) {
    c.problems.push_back("sqlite3 failed: " + (rc ? "exit " + std::to_string(*rc) : rc.error()) + " " +
                         read_file(err).substr(0, 300));
    return c;
  }
  c.method = "sqlite3";
  struct Stored {
    std::uint64_t rows = 0, records = 0, max_version = 0;
  };
  std::unordered_map<std::string, Stored> by_message;
  std::istringstream in(read_file(out));
  for (std::string line; std::getline(in, line);) {
    const auto f = split(line, '|');
    const auto num = [&](std::size_t i) {
      return i < f.size() ? parse_number<std::uint64_t>(f[i]).value_or(0) : std::uint64_t{0};
    };
    if (f[0] == "m" && f.size() == 5) {
      by_message[std::string(f[1])] = Stored{num(2), num(3), num(4)};
    } else if (f[0] == "o") {
      c.observations = num(1);
    } else if (f[0] == "d") {
      c.repeated_records = num(1);
    } else if (f[0] == "i") {
      c.inbound = num(1);
      c.inbound_distinct = num(2);
      c.inbound_aa = num(3);
    } else if (f[0] == "r") {
      c.rejected = num(1);
    } else if (f[0] == "p") {
      c.patients = num(1);
    }
  }
  // The patients of the messages found in the store, acknowledged or not.
  std::vector<std::uint8_t> patient_seen(o.patients, 0);
  std::string id;
  for (const auto& r : records) {
    for (std::uint64_t n = 0; n < r.attempted; ++n) {
      id.clear();
      r.stream.append_control_id(id, n);
      const auto it = by_message.find(id);
      const bool acked = n < r.acked_aa.size() && r.acked_aa[n];
      if (it == by_message.end()) {
        if (acked) {
          ++c.incomplete;
          sample(id + ": acknowledged AA but no observation stored");
        }
        continue;
      }
      const Stored s = it->second;
      by_message.erase(it);
      patient_seen[r.stream.patient(n)] = 1;
      if (!acked) {
        ++c.unacknowledged_stored;
        continue;
      }
      if (s.rows == kObxPerMessage && s.records == kObxPerMessage && s.max_version == 1) {
        ++c.complete;
      } else {
        ++c.incomplete;
        sample(id + ": " + std::to_string(s.rows) + " rows, " + std::to_string(s.records) +
               " distinct records, highest version " + std::to_string(s.max_version) + " (expected 5, 5, 1)");
      }
    }
  }
  for (auto seen : patient_seen) c.expected_patients += seen;
  c.unknown_messages = by_message.size();
  for (const auto& [message, s] : by_message)
    sample("observations of message '" + message + "', which the bench never sent: " + std::to_string(s.rows));

  if (c.complete != c.acknowledged)
    c.problems.push_back(std::to_string(c.incomplete) +
                         " acknowledged messages do not have exactly their 5 observations");
  if (c.unknown_messages > 0) c.problems.push_back(std::to_string(c.unknown_messages) + " unknown message ids");
  if (c.repeated_records > 0)
    c.problems.push_back(std::to_string(c.repeated_records) + " records stored more than once");
  if (c.observations != kObxPerMessage * (c.complete + c.unacknowledged_stored) && c.incomplete == 0)
    c.problems.push_back("observation rows " + std::to_string(c.observations) + " do not add up");
  if (c.summary_observations && *c.summary_observations != c.observations)
    c.problems.push_back("`iraewatch summary` counts " + std::to_string(*c.summary_observations) +
                         " observations, the table has " + std::to_string(c.observations));
  if (c.inbound_aa < c.acknowledged || c.inbound_distinct != c.inbound)
    c.problems.push_back("inbound_messages: " + std::to_string(c.inbound) + " rows, " +
                         std::to_string(c.inbound_distinct) + " distinct control ids, " + std::to_string(c.inbound_aa) +
                         " answered AA; expected one AA row per acknowledged message");
  if (c.rejected > 0) c.problems.push_back(std::to_string(c.rejected) + " rows in rejected (the bench sends none)");
  if (c.patients != c.expected_patients)
    c.problems.push_back(std::to_string(c.patients) + " patients stored, " + std::to_string(c.expected_patients) +
                         " expected");
  return c;
}

// ---------------------------------------------------------------------------------------------
// Report

void print_tally(const AckTally& t, const std::vector<std::string>& problems) {
  std::printf("  ACKs             AA %llu; not AA %llu, wrong MSA-2/order %llu, unreadable %llu\n",
              static_cast<unsigned long long>(t.aa), static_cast<unsigned long long>(t.not_aa),
              static_cast<unsigned long long>(t.wrong_id), static_cast<unsigned long long>(t.unreadable));
  for (const auto& s : t.samples) std::printf("    ack: %s\n", s.c_str());
  for (const auto& p : problems) std::printf("  PROBLEM: %s\n", p.c_str());
}

nlohmann::ordered_json to_json(const AckTally& t) {
  return {{"aa", t.aa}, {"not_aa", t.not_aa}, {"wrong_id", t.wrong_id}, {"unreadable", t.unreadable}};
}

const char* verdict(bool met) {
  return met ? "met" : "MISSED";
}

int dump_messages(const Options& o) {
  const MessageStream ms("B0-T0-", o.patients, "\n");
  std::string out;
  for (std::uint64_t n = 0; n < o.dump; ++n) {
    out.clear();
    ms.append_message(out, n, false);
    std::fwrite(out.data(), 1, out.size(), stdout);
  }
  return 0;
}

int run(const Options& o) {
  auto tmp = TempDir::create(o.tmp_root, "iraewatch-mllp-bench", o.keep);
  if (!tmp) {
    std::fprintf(stderr, "mllp_bench: %s\n", tmp.error().c_str());
    return 2;
  }
  const std::string fs = filesystem_type((*tmp)->path());
  const std::string run_tag = std::to_string(::getpid());
  auto daemon = start_daemon(o, (*tmp)->path());
  if (!daemon) {
    std::fprintf(stderr, "mllp_bench: cannot start the daemon: %s\n", daemon.error().c_str());
    return 2;
  }
  std::printf("iraewatch HL7 v2 over MLLP benchmark\n");
  std::printf("  daemon           %s (pid %d, MLLP on 127.0.0.1:%u)\n", o.binary.c_str(),
              static_cast<int>((*daemon)->pid()), static_cast<unsigned>((*daemon)->ports().mllp));
  std::printf("  store            synchronous=%s, data in %s (%s)\n", o.sync.c_str(), (*tmp)->path().c_str(),
              fs.c_str());
  std::printf("  machine          %u hardware threads, shared by the daemon and the bench\n",
              std::thread::hardware_concurrency());
  std::printf(
      "  messages         ORU^R01 2.5.1, 1 PID + 1 OBR + %llu OBX (NM, LOINC, UCUM units; 10 of 16 kinds in the\n"
      "                   concept map), about %zu bytes, over %llu patients, %s segment ends\n",
      static_cast<unsigned long long>(kObxPerMessage),
      [&] {
        std::string m;
        MessageStream("B0-T0-", o.patients, o.segment_end).append_message(m, 0);
        return m.size();
      }(),
      static_cast<unsigned long long>(o.patients),
      o.segment_end == "\r"   ? "CR"
      : o.segment_end == "\n" ? "LF"
                              : "CRLF");
  if (fs == "tmpfs") std::printf("  WARNING: tmpfs ignores fsync; synchronous=full figures mean nothing here\n");
  std::fflush(stdout);

  nlohmann::ordered_json report = {{"bench", "mllp"},
                                   {"sync", o.sync},
                                   {"filesystem", fs},
                                   {"cpus", std::thread::hardware_concurrency()},
                                   {"obx_per_message", kObxPerMessage},
                                   {"patients", o.patients}};
  bool ok = true;
  bool targets_met = true;
  std::vector<StreamRecord> records;
  records.reserve(o.connections + o.rates.size());
  std::uint64_t acked_total = 0, attempted_total = 0;  // the daemon must have taken between the two

  const pid_t daemon_pid = (*daemon)->pid();
  const CpuSample tp_begin = sample_cpu(daemon_pid);
  const ThroughputResult tp = run_throughput((*daemon)->ports().mllp, o, records, run_tag);
  const CpuUse tp_cpu = cpu_use(tp_begin, sample_cpu(daemon_pid));
  acked_total += tp.acked;
  const bool tp_target = tp.complete() && tp.messages_per_s >= kTargetMessagesPerS;
  std::printf("\nthroughput: %u connections, %llu messages, up to %llu unacknowledged per connection\n", o.connections,
              static_cast<unsigned long long>(o.messages), static_cast<unsigned long long>(o.window));
  std::printf("  acknowledged     %llu of %llu in %.2f s\n", static_cast<unsigned long long>(tp.acked),
              static_cast<unsigned long long>(tp.offered), tp.seconds);
  std::printf("  messages/s       %.0f (observations/s %.0f); target >= %.0f (%.0f): %s\n", tp.messages_per_s,
              static_cast<double>(kObxPerMessage) * tp.messages_per_s, kTargetMessagesPerS,
              static_cast<double>(kObxPerMessage) * kTargetMessagesPerS, verdict(tp_target));
  {
    std::string tenths;
    for (double v : tp.rate_by_tenth) tenths += " " + std::to_string(static_cast<long long>(std::lround(v)));
    std::printf("  over time        messages/s in each tenth of the messages:%s\n", tenths.c_str());
  }
  std::printf("  send -> ACK (ms) p50 %.2f   p90 %.2f   p99 %.2f   max %.2f (closed loop: the window is full)\n",
              tp.send_to_ack.p50_ms, tp.send_to_ack.p90_ms, tp.send_to_ack.p99_ms, tp.send_to_ack.max_ms);
  std::printf(
      "  ACK bursts       %.1f ACKs per read on a connection; first ACK %.1f ms after the first message;\n"
      "                   longest silence between ACKs %.1f ms\n",
      tp.acks_per_burst, tp.first_ack_ms, tp.max_gap_ms);
  print_cpu(tp_cpu, tp.acked);
  print_tally(tp.tally, tp.problems);
  std::fflush(stdout);
  ok = ok && tp.complete() && tp.tally.clean();
  targets_met = targets_met && tp_target;
  report["throughput"] = {{"connections", o.connections},
                          {"window", o.window},
                          {"messages", tp.offered},
                          {"acked", tp.acked},
                          {"seconds", tp.seconds},
                          {"messages_per_s", tp.messages_per_s},
                          {"observations_per_s", static_cast<double>(kObxPerMessage) * tp.messages_per_s},
                          {"target_met", tp_target},
                          {"rate_by_tenth", tp.rate_by_tenth},
                          {"send_to_ack", to_json(tp.send_to_ack)},
                          {"acks_per_burst", tp.acks_per_burst},
                          {"first_ack_ms", tp.first_ack_ms},
                          {"max_gap_ms", tp.max_gap_ms},
                          {"acks", to_json(tp.tally)},
                          {"cpu", to_json(tp_cpu)},
                          {"complete", tp.complete()}};

  report["latency"] = nlohmann::ordered_json::array();
  for (double rate : o.rates) {
    if (g_interrupted) break;
    records.push_back(
        StreamRecord{.stream = MessageStream("B" + run_tag + "-L" + std::to_string(static_cast<std::uint64_t>(rate)) +
                                                 "-" + std::to_string(records.size()) + "-",
                                             o.patients, o.segment_end)});
    const CpuSample lr_begin = sample_cpu(daemon_pid);
    const LatencyResult lr = run_latency((*daemon)->ports().mllp, o, rate, records.back());
    const CpuUse lr_cpu = cpu_use(lr_begin, sample_cpu(daemon_pid));
    acked_total += lr.acked;
    const bool lr_target = lr.complete() && lr.from_schedule.p99_ms <= kTargetP99Ms;
    ok = ok && lr.passed();
    std::printf("\nACK latency: %.0f messages/s offered for %.1f s on 1 connection (open loop)\n", rate, o.seconds);
    std::printf("  acknowledged     %llu of %llu; sent at %.0f messages/s, at most %.1f ms behind schedule\n",
                static_cast<unsigned long long>(lr.acked), static_cast<unsigned long long>(lr.offered),
                lr.achieved_rate, lr.max_send_lag_ms);
    std::printf("  latency (ms)     p50 %.2f   p90 %.2f   p99 %.2f   max %.2f   mean %.2f; target p99 <= %.0f: %s\n",
                lr.from_schedule.p50_ms, lr.from_schedule.p90_ms, lr.from_schedule.p99_ms, lr.from_schedule.max_ms,
                lr.from_schedule.mean_ms, kTargetP99Ms, verdict(lr_target));
    std::printf("  from send()      p50 %.2f   p99 %.2f   max %.2f; %.1f ACKs per read; longest silence %.1f ms\n",
                lr.from_send.p50_ms, lr.from_send.p99_ms, lr.from_send.max_ms, lr.acks_per_burst, lr.max_gap_ms);
    print_cpu(lr_cpu, lr.acked);
    if (!lr.saturated.empty())
      std::printf(
          "  SATURATED        %s;\n"
          "                   sending stopped after %llu of %llu messages, %llu of them still unanswered after\n"
          "                   waiting up to %lld s (reported, not a failed check; the figures cover what was "
          "answered)\n",
          lr.saturated.c_str(), static_cast<unsigned long long>(lr.sent), static_cast<unsigned long long>(lr.offered),
          static_cast<unsigned long long>(lr.unanswered), static_cast<long long>(kDrainLimit.count()));
    print_tally(lr.tally, lr.problems);
    std::fflush(stdout);
    targets_met = targets_met && lr_target;
    auto j = nlohmann::ordered_json{{"rate", rate},
                                    {"seconds", o.seconds},
                                    {"offered", lr.offered},
                                    {"sent", lr.sent},
                                    {"acked", lr.acked},
                                    {"saturated", !lr.saturated.empty()},
                                    {"achieved_rate", lr.achieved_rate},
                                    {"max_send_lag_ms", lr.max_send_lag_ms},
                                    {"max_gap_ms", lr.max_gap_ms},
                                    {"acks_per_burst", lr.acks_per_burst}};
    j.update(to_json(lr.from_schedule));
    j["target_met"] = lr_target;
    j["from_send"] = to_json(lr.from_send);
    j["acks"] = to_json(lr.tally);
    j["cpu"] = to_json(lr_cpu);
    j["unanswered"] = lr.unanswered;
    j["complete"] = lr.complete();
    j["passed"] = lr.passed();
    report["latency"].push_back(std::move(j));
  }

  for (const auto& r : records) attempted_total += r.attempted;
  const DaemonEnd end = (*daemon)->stop();
  const LogSummary log = summarise_log((*daemon)->log_path());
  const std::optional<std::uint64_t> logged = hl7_messages(log);
  std::printf("\ndaemon\n");
  std::printf("  stop             %s, %.0f ms after SIGTERM\n", end.how.c_str(), end.stop_ms);
  const bool count_agrees = logged && *logged >= acked_total && *logged <= attempted_total;
  if (logged)
    std::printf("  its count        %llu HL7 messages (bench: %llu acknowledged, %llu sent)%s\n",
                static_cast<unsigned long long>(*logged), static_cast<unsigned long long>(acked_total),
                static_cast<unsigned long long>(attempted_total), count_agrees ? "" : " MISMATCH");
  else
    std::printf("  its count        missing: no 'stopped:' line with HL7 messages in its log\n");
  print_log(log);
  ok = ok && end.clean && count_agrees && log.errors == 0 && !g_interrupted;

  StoreCheck store;
  if (end.clean) {
    store = check_store(o, (*tmp)->path(), (*daemon)->data_dir(), records);
  } else {
    store.problems.push_back("not checked: the daemon did not stop cleanly");
  }
  std::printf("\nstore (%s)\n", store.method.empty() ? "not read" : store.method.c_str());
  std::printf("  acknowledged     %llu messages AA: %llu with exactly their %llu observations, stored once; %llu not\n",
              static_cast<unsigned long long>(store.acknowledged), static_cast<unsigned long long>(store.complete),
              static_cast<unsigned long long>(kObxPerMessage), static_cast<unsigned long long>(store.incomplete));
  std::printf("  observations     %llu rows (summary says %s); %llu records with more than one row\n",
              static_cast<unsigned long long>(store.observations),
              store.summary_observations ? std::to_string(*store.summary_observations).c_str() : "?",
              static_cast<unsigned long long>(store.repeated_records));
  std::printf(
      "  messages         %llu audited (%llu distinct control ids, %llu AA); %llu rejected rows; %llu patients "
      "(expected %llu)\n",
      static_cast<unsigned long long>(store.inbound), static_cast<unsigned long long>(store.inbound_distinct),
      static_cast<unsigned long long>(store.inbound_aa), static_cast<unsigned long long>(store.rejected),
      static_cast<unsigned long long>(store.patients), static_cast<unsigned long long>(store.expected_patients));
  if (store.unacknowledged_stored > 0)
    std::printf(
        "  note             %llu messages stored whose ACK the bench did not see (allowed: sent, not answered)\n",
        static_cast<unsigned long long>(store.unacknowledged_stored));
  for (const auto& s : store.samples) std::printf("    %s\n", s.c_str());
  for (const auto& p : store.problems) std::printf("  PROBLEM: %s\n", p.c_str());
  ok = ok && store.ok();

  report["daemon"] = {{"stop", end.how},
                      {"stop_ms", end.stop_ms},
                      {"clean_stop", end.clean},
                      {"hl7_messages", logged ? nlohmann::ordered_json(*logged) : nlohmann::ordered_json()},
                      {"acknowledged", acked_total},
                      {"sent", attempted_total},
                      {"log_warnings", log.warnings},
                      {"log_errors", log.errors}};
  report["store"] = {{"method", store.method},
                     {"acknowledged", store.acknowledged},
                     {"complete", store.complete},
                     {"incomplete", store.incomplete},
                     {"unacknowledged_stored", store.unacknowledged_stored},
                     {"observations", store.observations},
                     {"repeated_records", store.repeated_records},
                     {"inbound_messages", store.inbound},
                     {"rejected", store.rejected},
                     {"patients", store.patients},
                     {"expected_patients", store.expected_patients},
                     {"ok", store.ok()}};
  report["targets_met"] = targets_met;
  report["ok"] = ok;
  const bool pass = ok && (targets_met || !o.require_targets);
  std::printf("\nresult: %s; targets %s\n", ok ? "ok" : "FAILED (see above)",
              targets_met         ? "met"
              : o.require_targets ? "MISSED (--require-targets)"
                                  : "MISSED (reported only)");
  std::printf("%s\n", report.dump().c_str());
  return pass ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress shows as it happens, also into a pipe
  auto options = parse_options(argc, argv);
  if (!options) {
    std::fprintf(stderr, "mllp_bench: %s\n%s", options.error().c_str(), kUsage);
    return 2;
  }
  if (options->help) {
    std::printf("%s", kUsage);
    return 0;
  }
  if (options->dump > 0) return dump_messages(*options);
  install_signal_handlers();
  try {
    return run(*options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mllp_bench: %s\n", e.what());
    return 2;
  }
}
