// HL7 v2 over MLLP into the durable store: ORU^R01 messages per second (5 OBX each) with every
// ACK checked (AA, MSA-2 = the message's MSH-10), then ACK latency at fixed offered rates on one
// connection (open loop). The daemon is the real one, started as a child process with
// synchronous=FULL; at the end it is stopped with SIGTERM and the store is checked to hold every
// acknowledged observation exactly once. Exit status: 0 ok, 1 a check failed, 2 setup error.
//
//   mllp_bench [--binary PATH] [--messages N] [--connections C] [--window W]
//              [--rate R[,R...]] [--seconds S]

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string binary = IRAEWATCH_BINARY;
  int messages = 40000;
  int connections = 4;
  int window = 8;
  std::vector<int> rates = {1000, 2000};
  int seconds = 10;
};

[[noreturn]] void setup_error(const std::string& why) {
  std::fprintf(stderr, "mllp_bench: %s\n", why.c_str());
  std::exit(2);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// One ORU^R01 with 5 OBX (TSH, free T4, free T3, CRP, calprotectin), unique control id and order.
std::string oru(const std::string& control, int n) {
  const std::string patient = "BENCH-" + std::to_string(n % 2000);
  const std::string order = "ORD-" + control;
  const std::string t = "20260320080000+0100";
  std::string m = "MSH|^~\\&|BENCHLAB|BENCHFAC|IRAEWATCH|BENCHFAC|" + t + "||ORU^R01^ORU_R01|" + control +
                  "|P|2.5.1\rPID|1||" + patient + "^^^BENCHFAC^MR||BENCH^PATIENT||19600101|F\rOBR|1|" + order + "|" +
                  order + "^LAB|24348-5^Thyroid panel^LN|||" + t + "\r";
  const char* obx[] = {"3016-3^TSH^LN||2.1|m[IU]/L", "3024-7^Free T4^LN||1.2|ng/dL", "3051-0^Free T3^LN||3.1|pg/mL",
                       "1988-5^CRP^LN||4|mg/L", "38445-3^Calprotectin^LN||30|ug/g"};
  for (int i = 0; i < 5; ++i) m += "OBX|" + std::to_string(i + 1) + "|NM|" + obx[i] + "^^UCUM||N|||F|||" + t + "\r";
  return "\x0b" + m + "\x1c\r";
}

int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) setup_error("cannot connect to the daemon");
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

bool send_all(int fd, const std::string& s) {
  std::size_t done = 0;
  while (done < s.size()) {
    const ssize_t n = ::send(fd, s.data() + done, s.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

// Reads framed ACKs; returns the next one's MSA segment ("MSA|AA|ctrl"), "" on EOF or timeout.
class AckReader {
 public:
  explicit AckReader(int fd) : fd_(fd) {}
  std::string next(int timeout_ms = 30000) {
    for (;;) {
      const auto end = buf_.find('\x1c');
      if (end != std::string::npos) {
        const std::string frame = buf_.substr(0, end);
        buf_.erase(0, end + 1);
        const auto msa = frame.find("MSA|");
        if (msa == std::string::npos) return "MSA|??";
        return frame.substr(msa, frame.find('\r', msa) - msa);
      }
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, timeout_ms) != 1) return "";
      char tmp[65536];
      const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
      if (n <= 0) return "";
      buf_.append(tmp, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_;
  std::string buf_;
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress shows as it happens, also into a pipe
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) setup_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--binary") {
      o.binary = value();
    } else if (a == "--messages") {
      o.messages = std::atoi(value().c_str());
    } else if (a == "--connections") {
      o.connections = std::atoi(value().c_str());
    } else if (a == "--window") {
      o.window = std::atoi(value().c_str());
    } else if (a == "--seconds") {
      o.seconds = std::atoi(value().c_str());
    } else if (a == "--rate") {
      o.rates.clear();
      std::stringstream s(value());
      for (std::string r; std::getline(s, r, ',');) o.rates.push_back(std::atoi(r.c_str()));
    } else {
      setup_error("unknown option " + a + " (see the comment at the top of bench/mllp_bench.cpp)");
    }
  }
  if (o.messages < o.connections || o.connections < 1 || o.window < 1 || o.seconds < 1)
    setup_error("bad option values");

  char tmpl[] = "/tmp/iraewatch-mllp-bench-XXXXXX";
  if (!::mkdtemp(tmpl)) setup_error("cannot create a temporary folder");
  const std::string dir = tmpl, ready = dir + "/ready.json";
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int err = ::open((dir + "/daemon.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(err, 2);
    ::execl(o.binary.c_str(), o.binary.c_str(), "--data-dir", (dir + "/data").c_str(), "serve", "--listen",
            "127.0.0.1:0", "--subscribers", "127.0.0.1:0", "--mllp", "127.0.0.1:0", "--ready-file", ready.c_str(),
            static_cast<char*>(nullptr));
    _exit(127);
  }
  int port = 0;
  for (int i = 0; i < 400 && port == 0; ++i) {
    const std::string r = read_file(ready);
    if (const auto at = r.find("\"mllp\":\"127.0.0.1:"); at != std::string::npos) port = std::atoi(r.c_str() + at + 18);
    if (port == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (port == 0) {
    ::kill(pid, SIGKILL);
    setup_error("the daemon did not start: " + read_file(dir + "/daemon.log"));
  }
  bool ok = true;

  // Throughput: C connections, each keeping up to W messages in flight.
  std::atomic<int> acked{0}, bad{0};
  const int per = o.messages / o.connections;
  const auto t0 = Clock::now();
  std::vector<std::thread> workers;
  for (int c = 0; c < o.connections; ++c) {
    workers.emplace_back([&, c] {
      const int fd = connect_to(port);
      AckReader reader(fd);
      int sent = 0, received = 0;
      while (received < per) {
        while (sent < per && sent - received < o.window) {
          if (!send_all(fd, oru("T" + std::to_string(c) + "-" + std::to_string(sent), c * per + sent))) break;
          ++sent;
        }
        const std::string msa = reader.next();
        if (msa.empty()) break;
        if (msa != "MSA|AA|T" + std::to_string(c) + "-" + std::to_string(received)) ++bad;
        ++received;
        ++acked;
      }
      ::close(fd);
    });
  }
  for (auto& w : workers) w.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  const double per_s = acked / seconds;
  std::printf("throughput: %d connections, window %d, %d ORU^R01 messages of 5 OBX\n", o.connections, o.window,
              per * o.connections);
  std::printf("  acknowledged     %d in %.2f s; %d not AA or out of order\n", acked.load(), seconds, bad.load());
  std::printf("  messages/s       %.0f (observations/s %.0f); target >= 10000 (50000)\n", per_s, 5 * per_s);
  if (acked != per * o.connections || bad != 0) ok = false;

  // Latency: one connection, open loop at each rate.
  std::string json_rates;
  int latency_messages = 0;
  for (const int rate : o.rates) {
    const int n = rate * o.seconds;
    std::vector<Clock::time_point> sent_at(static_cast<std::size_t>(n));
    std::vector<double> latency_ms;
    latency_ms.reserve(static_cast<std::size_t>(n));
    const int fd = connect_to(port);
    int wrong = 0;
    std::thread receiver([&] {
      AckReader reader(fd);
      for (int i = 0; i < n; ++i) {
        const std::string msa = reader.next();
        if (msa.empty()) break;
        const auto now = Clock::now();
        if (msa != "MSA|AA|L" + std::to_string(rate) + "-" + std::to_string(i)) ++wrong;
        latency_ms.push_back(
            std::chrono::duration<double, std::milli>(now - sent_at[static_cast<std::size_t>(i)]).count());
      }
    });
    const auto start = Clock::now();
    for (int i = 0; i < n; ++i) {
      std::this_thread::sleep_until(start + std::chrono::nanoseconds(static_cast<std::int64_t>(1e9 * i / rate)));
      sent_at[static_cast<std::size_t>(i)] = Clock::now();
      if (!send_all(fd, oru("L" + std::to_string(rate) + "-" + std::to_string(i), i))) break;
    }
    receiver.join();
    ::close(fd);
    latency_messages += static_cast<int>(latency_ms.size());
    const double p50 = percentile(latency_ms, 0.50), p90 = percentile(latency_ms, 0.90),
                 p99 = percentile(latency_ms, 0.99), mx = percentile(latency_ms, 1.0);
    std::printf("ack latency: %d messages/s offered for %d s on 1 connection (open loop)\n", rate, o.seconds);
    std::printf("  acknowledged     %zu of %d; %d not AA or out of order\n", latency_ms.size(), n, wrong);
    std::printf("  latency (ms)     p50 %.2f   p90 %.2f   p99 %.2f   max %.2f; target p99 <= 20\n", p50, p90, p99, mx);
    if (static_cast<int>(latency_ms.size()) != n || wrong != 0) ok = false;
    json_rates += std::string(json_rates.empty() ? "" : ",") + "{\"rate\":" + std::to_string(rate) +
                  ",\"acked\":" + std::to_string(latency_ms.size()) + ",\"p50_ms\":" + std::to_string(p50) +
                  ",\"p90_ms\":" + std::to_string(p90) + ",\"p99_ms\":" + std::to_string(p99) +
                  ",\"max_ms\":" + std::to_string(mx) + "}";
  }

  // Stop cleanly, then count what the store holds: 5 observations per acknowledged message.
  ::kill(pid, SIGTERM);
  int status = 0;
  for (int i = 0; i < 600 && ::waitpid(pid, &status, WNOHANG) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const std::string summary_path = dir + "/summary.txt";
  const std::string cmd = o.binary + " --data-dir " + dir + "/data summary > " + summary_path + " 2>&1";
  const int summary_rc = std::system(cmd.c_str());
  const std::string summary = read_file(summary_path);
  long long stored = -1;
  if (const auto at = summary.find("observations"); at != std::string::npos)
    stored = std::atoll(summary.c_str() + summary.find_first_of("0123456789", at));
  const long long expected = 5LL * (acked.load() + latency_messages);
  std::printf("daemon\n  stop             %s\n  its store        %lld observations (expected %lld)\n",
              WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "exit 0" : "NOT clean", stored, expected);
  if (summary_rc != 0 || stored != expected || !WIFEXITED(status) || WEXITSTATUS(status) != 0) ok = false;
  std::printf("result: %s\n", ok ? "ok" : "FAILED");
  std::printf(
      "{\"bench\":\"mllp\",\"messages\":%d,\"seconds\":%.3f,\"messages_per_s\":%.0f,"
      "\"observations_per_s\":%.0f,\"latency\":[%s],\"stored\":%lld,\"expected\":%lld,\"ok\":%s}\n",
      acked.load(), seconds, per_s, 5 * per_s, json_rates.c_str(), stored, expected, ok ? "true" : "false");
  std::system(("rm -rf " + dir).c_str());
  return ok ? 0 : 1;
}
