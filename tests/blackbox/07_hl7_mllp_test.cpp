// Black box: HL7 v2 over MLLP with a real third-party client, Debian's `mllp_send` (python3-hl7):
// ACK codes, stored records, corrections, resends, and the alert an ORU raises on the subscriber
// socket.

#include <signal.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "support/daemon.hpp"
#include "support/line_socket.hpp"

using namespace iraewatch;
using testing::Daemon;
using testing::LineSocket;
using testing::run_binary;
using testing::TempDir;

namespace {

const std::string kFixtures = std::string(IRAEWATCH_SOURCE_DIR) + "/tests/data/hl7/";
const std::string kThirdParty = std::string(IRAEWATCH_SOURCE_DIR) + "/tests/data/third_party/hl7v2/";

// mllp_send prints each ACK it receives, framed; segments end with CR.
std::string mllp_send(const Daemon& d, const std::string& file) {
  auto r = testing::run_program("/usr/bin/mllp_send",
                                {"--loose", "-p", std::to_string(d.mllp_port()), "-f", file, "127.0.0.1"}, "",
                                std::chrono::seconds(60));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return r.out;
}

// The MSA segments of the ACKs, in order: "MSA|AA|RAS-0001", ...
std::vector<std::string> msa_of(const std::string& out) {
  std::vector<std::string> msa;
  for (std::size_t at = out.find("MSA|"); at != std::string::npos; at = out.find("MSA|", at + 1))
    msa.push_back(out.substr(at, out.find_first_of("\r\n", at) - at));
  return msa;
}

}  // namespace

TEST_CASE("07 mllp_send: ACK codes, stored records, a correction, and a resend processed once", "[blackbox]") {
  REQUIRE(::access("/usr/bin/mllp_send", X_OK) == 0);  // scripts/install-deps.sh installs python3-hl7
  TempDir tmp;
  const std::string data = tmp.file("data");
  Daemon daemon(data);

  auto ras = mllp_send(daemon, kFixtures + "ras-o17-pembrolizumab.hl7");
  CHECK(msa_of(ras) == std::vector<std::string>{"MSA|AA|RAS-0001"});
  CHECK_THAT(ras, Catch::StartsWith("\x0bMSH|^~\\&|IRAEWATCH|"));

  // The NIST final / corrected pair (third-party messages): one record, two versions.
  auto final_ack = mllp_send(daemon, kThirdParty + "nist-elr-oru-r01-case1-nm-final.hl7");
  CHECK(msa_of(final_ack) == std::vector<std::string>{"MSA|AA|NIST-100929110701660"});
  auto corrected = mllp_send(daemon, kThirdParty + "nist-elr-oru-r01-case3-nm-corrected.hl7");
  CHECK(msa_of(corrected) == std::vector<std::string>{"MSA|AA|NIST-100929110828087"});

  // The same message again: the stored ACK, byte for byte, and nothing stored twice.
  auto again = mllp_send(daemon, kThirdParty + "nist-elr-oru-r01-case1-nm-final.hl7");
  CHECK(again == final_ack);

  // Unsupported message types: AR (or CR in enhanced mode) with an ERR carrying table 0357's 200.
  auto vxu = mllp_send(daemon, kThirdParty + "nist-iz-vxu-v04-rxa.hl7");
  REQUIRE(msa_of(vxu).size() == 2);  // mllp_send --loose also sends the BOM it finds as a message
  CHECK_THAT(msa_of(vxu)[1], Catch::StartsWith("MSA|CR|NIST-IZ-AD-2.1_Send_V04_Z22"));
  CHECK_THAT(vxu, Catch::Contains("|200^Unsupported message type^HL70357|E"));

  // One bad OBX: AE, that OBX kept as rejected input, the other two stored.
  auto bad = mllp_send(daemon, kFixtures + "oru-r01-one-bad-obx.hl7");
  CHECK(msa_of(bad) == std::vector<std::string>{"MSA|AE|ORU-0005|1 segment(s) not used; see ERR"});
  CHECK_THAT(bad, Catch::Contains("ERR|OBX^2^6^103&Table value not found&HL70357"));
  CHECK_THAT(bad, Catch::Contains("unit 'mmol/L' cannot be converted"));

  // Enhanced mode (MSH-15 set): CE for a message with one bad RXA.
  auto enhanced = mllp_send(daemon, kFixtures + "ras-o17-by-name-and-not-given.hl7");
  CHECK(msa_of(enhanced).size() == 1);
  CHECK_THAT(msa_of(enhanced)[0], Catch::StartsWith("MSA|CE|RAS-0003"));
  const int stopped = daemon.stop(SIGTERM);
  INFO(daemon.log());
  CHECK(stopped == 0);

  // What the store holds, as the CLI reads it.
  auto history = run_binary({"--data-dir", data, "history", "9817566735"});
  CHECK(history.exit_code == 0);
  CHECK_THAT(history.out, Catch::Contains("final"));
  CHECK_THAT(history.out, Catch::Contains("(superseded)"));
  CHECK_THAT(history.out, Catch::Contains("corrected"));
  CHECK_THAT(history.out, Catch::Contains(" v2"));
  auto alice = run_binary({"--data-dir", data, "history", "HL7-5005"});
  CHECK_THAT(alice.out, Catch::Contains("medication  pembrolizumab"));
  CHECK_THAT(alice.out, Catch::Contains("observation tsh"));
  CHECK_THAT(alice.out, Catch::Contains("observation crp"));
  CHECK_THAT(alice.out, Catch::Contains("not-done"));
  auto summary = run_binary({"--data-dir", data, "summary"});
  CHECK_THAT(summary.out, Catch::Contains("OBX-6: field 'OBX-6': unit 'mmol/L'"));
}

TEST_CASE("07 a TSH and free T4 ORU over MLLP raises the thyroid alert on the alert socket", "[blackbox]") {
  TempDir tmp;
  Daemon daemon(tmp.file("data"));
  LineSocket sub(daemon.subscriber_port());
  auto hello = sub.read_line();
  REQUIRE(hello);

  CHECK(msa_of(mllp_send(daemon, kFixtures + "ras-o17-pembrolizumab.hl7")) ==
        std::vector<std::string>{"MSA|AA|RAS-0001"});
  CHECK(msa_of(mllp_send(daemon, kFixtures + "oru-r01-thyroid-trend.hl7")) ==
        std::vector<std::string>{"MSA|AA|ORU-0001", "MSA|AA|ORU-0002", "MSA|AA|ORU-0003"});

  std::vector<nlohmann::json> events;
  for (int i = 0; i < 50 && events.size() < 3; ++i) {
    auto line = sub.read_line(std::chrono::seconds(10));
    if (!line) break;
    auto j = nlohmann::json::parse(*line);
    if (!j.contains("type")) events.push_back(std::move(j));
  }
  REQUIRE(events.size() == 3);
  CHECK(events[0]["event"] == "fired");
  CHECK(events[0]["signal"] == "thyroid");
  CHECK(events[0]["patient"] == "HL7-5005");
  CHECK_THAT(events[0]["trigger"].get<std::string>(), Catch::StartsWith("hl7|ONCO_HOSP|FL-900|"));
  CHECK(events[1]["event"] == "escalated");
  CHECK(events[1]["grade"] == 2);
  CHECK(events[2]["event"] == "updated");  // April's worse values, same grade
  CHECK_THAT(events[2]["summary"].get<std::string>(), Catch::Contains("TSH 12.4"));
}

TEST_CASE("07 every third-party sample parses or is refused with the ACK docs/hl7.md states", "[blackbox]") {
  // File -> the ACK code of each message, ingested alone into an empty store (docs/hl7.md).
  const std::vector<std::pair<std::string, std::vector<std::string>>> expected = {
      {"adt-a08-v28-update.hl7", {"AA"}},
      {"cerner-elr-oru-r01-lead.hl7", {"AA"}},
      {"elr-batch-fhs-bhs-2msgs.hl7", {"CA", "CA"}},
      {"elr-oru-r01-msh2-three-encoding-chars.hl7", {"CA"}},
      {"lab-oru-r01-prelim-incomplete.hl7", {"AA"}},
      {"nist-elr-oru-r01-case1-nm-final.hl7", {"AA"}},
      {"nist-elr-oru-r01-case3-nm-corrected.hl7", {"AA"}},
      {"nist-elr-oru-r01-case4-st-value.hl7", {"AA"}},
      {"nist-elr-oru-r01-case6-multi-obx.hl7", {"AA"}},
      {"nist-iz-vxu-v04-rxa.hl7", {"CR"}},
      {"nist-lri-oru-r01-cbc.hl7", {"CA"}},
      {"oru-r01-escape-repetition-stress.hl7", {"CR"}},
      {"oru-r01-v24-sn-value.hl7", {"AR"}},
      {"oru-r03-empty-segments-malformed.hl7", {"AR"}},
      {"oru-v22-multi-obr-tx-nte.hl7", {"CR"}},
      {"rds-o13-v28-pharmacy-dispense.hl7", {"AR"}},
  };
  // Several samples are test messages (MSH-11 T): taken as patient data, as a test deployment would.
  TempDir config_dir;
  const std::string test_feed = config_dir.file("test-feed.yaml");
  testing::write_file(test_feed, "hl7:\n  processing_ids: [P, T]\n");
  for (const auto& [file, codes] : expected) {
    INFO(file);
    TempDir tmp;
    auto r = run_binary({"--config", test_feed, "--data-dir", tmp.file("data"), "ingest", kThirdParty + file});
    std::vector<std::string> got;  // "FILE: message N (TYPE, control id X): CODE[: reason]"
    std::size_t start = 0;
    for (std::size_t end; (end = r.out.find('\n', start)) != std::string::npos; start = end + 1) {
      const std::string line = r.out.substr(start, end - start);
      const auto at = line.find("): ");
      if (line.find(": message ") != std::string::npos && at != std::string::npos)
        got.push_back(line.substr(at + 3, 2));
    }
    CHECK(got == codes);
    const bool all_accepted = std::all_of(codes.begin(), codes.end(), [](const std::string& c) { return c[1] == 'A'; });
    CHECK(r.exit_code == (all_accepted ? 0 : 1));
  }
  // With the default configuration (P only), a test message is refused: CR 202, nothing stored.
  {
    TempDir tmp;
    auto r = run_binary({"--data-dir", tmp.file("data"), "ingest", kThirdParty + "nist-lri-oru-r01-cbc.hl7"});
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.out, Catch::Contains("): CR: processing id T is not taken as patient data here"));
    CHECK_THAT(r.out, Catch::Contains("0 records accepted"));
  }
  // The NIST final then corrected pair, from files: one record, version 2 corrected.
  TempDir tmp;
  run_binary({"--data-dir", tmp.file("data"), "ingest", kThirdParty + "nist-elr-oru-r01-case1-nm-final.hl7"});
  auto second =
      run_binary({"--data-dir", tmp.file("data"), "ingest", kThirdParty + "nist-elr-oru-r01-case3-nm-corrected.hl7"});
  CHECK_THAT(second.out, Catch::Contains("1 records accepted (1 new, 0 duplicates)"));
  auto history = run_binary({"--data-dir", tmp.file("data"), "history", "9817566735", "--json"});
  CHECK_THAT(history.out, Catch::Contains(R"("version":2,"current":true)"));
  CHECK_THAT(history.out, Catch::Contains(R"("status":"corrected")"));
}

TEST_CASE("07 ingest and replay read HL7 from standard input (--format hl7 -) and from .HL7 files", "[blackbox]") {
  // The quick start's messages: a pembrolizumab administration, then TSH and free T4 results.
  const std::string text = testing::read_file(std::string(IRAEWATCH_SOURCE_DIR) + "/examples/messages.hl7");
  TempDir tmp;

  // Standard input: NDJSON unless told otherwise, so --format hl7.
  auto as_ndjson = run_binary({"--data-dir", tmp.file("ndjson"), "ingest", "-"}, text);
  CHECK(as_ndjson.exit_code == 1);  // every line refused as JSON
  auto from_stdin = run_binary({"--data-dir", tmp.file("stdin"), "ingest", "--format", "hl7", "-"}, text);
  INFO(from_stdin.out << from_stdin.err);
  CHECK(from_stdin.exit_code == 0);
  CHECK_THAT(from_stdin.out, Catch::Contains("-: message 1 ("));
  CHECK_THAT(from_stdin.out, Catch::Contains("): AA"));

  // The same messages again, from a file named in upper case: each gets its stored ACK back.
  const std::string upper = tmp.file("TREND.HL7");
  testing::write_file(upper, text);
  auto from_file = run_binary({"--data-dir", tmp.file("stdin"), "ingest", upper});
  INFO(from_file.out << from_file.err);
  CHECK(from_file.exit_code == 0);
  CHECK_THAT(from_file.out, Catch::Contains("(already received: stored ACK)"));
  CHECK_THAT(from_file.out, Catch::Contains("0 new"));

  // replay: the same alert events from standard input and from the file.
  auto replay_stdin = run_binary({"replay", "--format", "hl7", "-"}, text);
  auto replay_file = run_binary({"replay", upper});
  CHECK(replay_stdin.exit_code == replay_file.exit_code);
  CHECK_FALSE(replay_file.out.empty());
  CHECK(replay_stdin.out == replay_file.out);
  auto bad_format = run_binary({"replay", "--format", "csv", upper});
  CHECK(bad_format.exit_code == 2);
  CHECK_THAT(bad_format.err, Catch::Contains("unknown format 'csv'"));
}

TEST_CASE("07 hl7.time_zone: a time sent without an offset is local to the hospital, summer time included",
          "[blackbox]") {
  TempDir tmp;
  // Team-written: one TSH result, OBX-14 and OBR-7 without an offset, in July.
  const std::string message =
      "MSH|^~\\&|LAB|HOSP|IRAEWATCH|ONCO|20260715083500||ORU^R01^ORU_R01|TZ-1|P|2.5.1\r"
      "PID|1||MRN-TZ^^^HOSP^MR||DOE^JANE\r"
      "OBR|1|ORD-TZ|FIL-TZ|3016-3^TSH^LN|||20260715083000\r"
      "OBX|1|NM|3016-3^TSH^LN||2.1|m[IU]/L^^UCUM|0.4-4.0|N|||F|||20260715083000\r";
  testing::write_file(tmp.file("tsh.hl7"), message);
  testing::write_file(tmp.file("london.yaml"), "hl7:\n  time_zone: Europe/London\n");
  auto london = run_binary(
      {"--config", tmp.file("london.yaml"), "--data-dir", tmp.file("london"), "ingest", tmp.file("tsh.hl7")});
  INFO(london.out << london.err);
  REQUIRE(london.exit_code == 0);
  auto history = run_binary({"--data-dir", tmp.file("london"), "history", "MRN-TZ", "--json"});
  CHECK_THAT(history.out, Catch::Contains(R"("time":"2026-07-15T08:30:00+01:00")"));
  // Without the setting, the same time is UTC.
  auto utc = run_binary({"--data-dir", tmp.file("utc"), "ingest", tmp.file("tsh.hl7")});
  REQUIRE(utc.exit_code == 0);
  CHECK_THAT(run_binary({"--data-dir", tmp.file("utc"), "history", "MRN-TZ", "--json"}).out,
             Catch::Contains(R"("time":"2026-07-15T08:30:00Z")"));
}
