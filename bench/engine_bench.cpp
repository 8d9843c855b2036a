// Engine and replay benchmark (not a test): records/s through the engine with the shipped rules
// over many patients, and the wall time of `iraewatch replay` over a large NDJSON file.
//
//   engine_bench [--rules DIR] [--patients N] [--records N] [--replay-records N] [--abnormal P]
//                [--binary PATH]
//
// --abnormal is the share of values drawn from an abnormal range (default 0.05); the rest are
// normal. 1.0 gives a stress mix in which about half of all records change an alert.

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "iraewatch/engine/engine.hpp"
#include "iraewatch/ingest/ndjson_parser.hpp"
#include "iraewatch/rules/rule_set_loader.hpp"

using namespace iraewatch;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::string rules = IRAEWATCH_SOURCE_DIR "/rules";
  std::string binary = IRAEWATCH_BINARY;
  int patients = 10'000;
  long records = 1'000'000;
  long replay_records = 1'000'000;
  double abnormal = 0.05;
};

// A realistic mix: per patient one ICI dose, then symptoms (stools, pain, cough, dyspnea), vitals
// (SpO2) and labs (TSH, free T4, calprotectin) over time, some abnormal, in time order.
class Generator {
 public:
  Generator(int patients, double abnormal) : patients_(patients), abnormal_(abnormal) {}

  std::string line(long i) {
    const int p = static_cast<int>(i % patients_);
    const long step = i / patients_;                                      // the patient's n-th record
    const std::int64_t t = kStart + step * 6 * 3'600'000LL + p * 1000LL;  // every 6 hours
    char buf[320];
    const std::string patient = "MRN-" + std::to_string(p);
    const std::string time = core::format_utc(t);
    if (step == 0) {
      std::snprintf(buf, sizeof buf, R"({"type":"medication","id":"m%ld","patient":"%s","drug":"%s","time":"%s"})", i,
                    patient.c_str(), p % 5 == 0 ? "ipilimumab" : "pembrolizumab", time.c_str());
      return buf;
    }
    const int kind = static_cast<int>((step + p) % 8);
    const bool odd = uniform_(rng_) < abnormal_;
    const double r = uniform_(rng_);
    // Each value is drawn from a normal range, or (odd) from the whole plausible range.
    auto pick = [&](double normal_lo, double normal_hi, double lo, double hi) {
      return odd ? lo + r * (hi - lo) : normal_lo + r * (normal_hi - normal_lo);
    };
    switch (kind) {
      case 0:
        std::snprintf(
            buf, sizeof buf,
            R"({"type":"observation","id":"o%ld","patient":"%s","code":"stools_per_day","value":%d,"unit":"/d","time":"%s","baseline":%s})",
            i, patient.c_str(), static_cast<int>(pick(1, 2.9, 0, 9)), time.c_str(), step < 8 ? "true" : "false");
        break;
      case 1:
        std::snprintf(
            buf, sizeof buf,
            R"({"type":"observation","id":"o%ld","patient":"%s","code":"abdominal_pain","value":%d,"time":"%s"})", i,
            patient.c_str(), static_cast<int>(pick(0, 1.9, 0, 4.4)), time.c_str());
        break;
      case 2:
        std::snprintf(
            buf, sizeof buf,
            R"({"type":"observation","id":"o%ld","patient":"%s","code":"http://loinc.org|59408-5","value":%d,"unit":"%%","time":"%s"})",
            i, patient.c_str(), static_cast<int>(pick(96, 99.9, 85, 99)), time.c_str());
        break;
      case 3:
        std::snprintf(buf, sizeof buf,
                      R"({"type":"observation","id":"o%ld","patient":"%s","code":"cough","value":%d,"time":"%s"})", i,
                      patient.c_str(), static_cast<int>(pick(0, 1.9, 0, 3.5)), time.c_str());
        break;
      case 4:
        std::snprintf(
            buf, sizeof buf,
            R"({"type":"observation","id":"o%ld","patient":"%s","code":"http://loinc.org|3016-3","value":%.2f,"unit":"mIU/L","time":"%s"})",
            i, patient.c_str(), pick(0.5, 4.0, 0.1, 14), time.c_str());
        break;
      case 5:
        std::snprintf(
            buf, sizeof buf,
            R"({"type":"observation","id":"o%ld","patient":"%s","code":"http://loinc.org|14920-3","value":%.1f,"unit":"pmol/L","time":"%s"})",
            i, patient.c_str(), pick(12, 21, 6, 26), time.c_str());
        break;
      case 6:
        std::snprintf(buf, sizeof buf,
                      R"({"type":"observation","id":"o%ld","patient":"%s","code":"dyspnea","value":%d,"time":"%s"})", i,
                      patient.c_str(), static_cast<int>(pick(0, 1.9, 0, 3.5)), time.c_str());
        break;
      default:
        std::snprintf(
            buf, sizeof buf,
            R"({"type":"observation","id":"o%ld","patient":"%s","code":"calprotectin","value":%d,"unit":"ug/g","time":"%s"})",
            i, patient.c_str(), static_cast<int>(pick(20, 100, 20, 220)), time.c_str());
        break;
    }
    return buf;
  }

 private:
  static constexpr std::int64_t kStart = 1767225600000;  // 2026-01-01T00:00:00Z
  int patients_;
  double abnormal_;
  std::mt19937 rng_{42};
  std::uniform_real_distribution<double> uniform_{0.0, 1.0};
};

constexpr const char* kUsage =
    "usage: engine_bench [--rules DIR] [--binary PATH] [--patients N] [--records N] [--replay-records N]\n"
    "                    [--abnormal FRACTION]\n"
    "  --rules DIR          the rules folder (default: the shipped rules/)\n"
    "  --binary PATH        the iraewatch binary for the replay part (default: the one built alongside)\n"
    "  --patients N         patients the records are spread over (default 10000)\n"
    "  --records N          records for the in-process engine part (default 1000000)\n"
    "  --replay-records N   records for the `iraewatch replay` part (default 1000000)\n"
    "  --abnormal FRACTION  share of values outside their reference range, 0 to 1 (default 0.05)\n";

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--help" || k == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "%s needs a value\n%s", k.c_str(), kUsage);
      std::exit(2);
    }
    const std::string v = argv[i + 1];
    if (k == "--rules")
      o.rules = v;
    else if (k == "--binary")
      o.binary = v;
    else if (k == "--patients")
      o.patients = std::stoi(v);
    else if (k == "--records")
      o.records = std::stol(v);
    else if (k == "--replay-records")
      o.replay_records = std::stol(v);
    else if (k == "--abnormal")
      o.abnormal = std::stod(v);
    else {
      std::fprintf(stderr, "unknown option %s\n%s", k.c_str(), kUsage);
      std::exit(2);
    }
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse(argc, argv);
  auto loaded = rules::load_rule_set(opt.rules);
  if (!loaded.rules) {
    std::fprintf(stderr, "rules do not load\n");
    return 2;
  }

  // 1. The engine alone: records already parsed (parsing is measured by replay below).
  std::printf("engine: %ld records over %d patients, %zu shipped rules, %.0f%% abnormal values\n", opt.records,
              opt.patients, loaded.rules->rules.size(), opt.abnormal * 100);
  std::vector<core::Record> records;
  records.reserve(static_cast<std::size_t>(opt.records));
  double parse_rate = 0;
  {
    // The NDJSON parser (nlohmann-json) alone, over lines generated beforehand.
    Generator gen(opt.patients, opt.abnormal);
    std::vector<std::string> lines;
    lines.reserve(static_cast<std::size_t>(opt.records));
    for (long i = 0; i < opt.records; ++i) lines.push_back(gen.line(i));
    ingest::NdjsonParser parser(loaded.rules->concepts);
    const auto p0 = Clock::now();
    for (const auto& line : lines) records.push_back(*parser.parse(line, core::Provenance{"bench", "", 0}));
    const double parse_s = std::chrono::duration<double>(Clock::now() - p0).count();
    parse_rate = static_cast<double>(opt.records) / parse_s;
    std::printf("  NDJSON parsing alone: %.0f records/s\n", parse_rate);
  }
  engine::Engine engine(loaded.rules);
  std::size_t events = 0;
  const auto t0 = Clock::now();
  for (const auto& r : records) events += engine.process(r, engine::Change::added).size();
  const double engine_s = std::chrono::duration<double>(Clock::now() - t0).count();
  const double engine_rate = static_cast<double>(opt.records) / engine_s;
  std::printf("  %.2f s, %.0f records/s, %zu alert events\n", engine_s, engine_rate, events);

  // 2. `iraewatch replay` over an NDJSON file: parse + identity + engine + JSON output.
  const auto dir = std::filesystem::temp_directory_path() / ("iraewatch-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string file = (dir / "records.ndjson").string();
  {
    Generator gen(opt.patients, opt.abnormal);
    std::ofstream out(file);
    for (long i = 0; i < opt.replay_records; ++i) out << gen.line(i) << '\n';
  }
  std::printf("replay: %ld records (%.0f MB) with %s\n", opt.replay_records,
              static_cast<double>(std::filesystem::file_size(file)) / 1e6, opt.binary.c_str());
  const auto t1 = Clock::now();
  const std::string cmd = "'" + opt.binary + "' --rules '" + opt.rules + "' replay '" + file + "' > '" +
                          (dir / "events.jsonl").string() + "' 2> '" + (dir / "summary.txt").string() + "'";
  const int rc = std::system(cmd.c_str());
  const double replay_s = std::chrono::duration<double>(Clock::now() - t1).count();
  std::ifstream summary(dir / "summary.txt");
  std::string first;
  std::getline(summary, first);
  std::printf("  %.2f s (%.0f records/s), exit %d; %s\n", replay_s, static_cast<double>(opt.replay_records) / replay_s,
              WEXITSTATUS(rc), first.c_str());
  std::filesystem::remove_all(dir);
  std::printf(
      "{\"abnormal\":%.2f,\"parse_records_per_s\":%.0f,\"engine_records_per_s\":%.0f,\"engine_events\":%zu,"
      "\"replay_records\":%ld,\"replay_seconds\":%.2f}\n",
      opt.abnormal, parse_rate, engine_rate, events, opt.replay_records, replay_s);
  return rc == 0 ? 0 : 1;
}
