#include <catch2/catch.hpp>

// The store links SQLite (a link-only dependency that reaches this test through iraewatch_app): the
// audit columns that Store has no reader for (inbound_messages.raw, patients.updated_ms and
// merged_into) are read directly, read-only.
#include <sqlite3.h>

#include <filesystem>
#include <list>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "iraewatch/app/hl7_intake.hpp"
#include "iraewatch/core/event_time.hpp"
#include "iraewatch/ingest/hl7_message.hpp"
#include "iraewatch/rules/rule_set_loader.hpp"
#include "iraewatch/store/store.hpp"
#include "support/daemon.hpp"
#include "support/hl7_samples.hpp"

// One HL7 v2 message end to end (src/app/hl7_intake.cpp): parse, map, deduplicate, keep the raw
// message with its ACK, store records and rejected segments, ADT updates and merges, inside one
// store transaction. Third-party samples from tests/data/third_party/hl7v2, team fixtures from
// tests/data/hl7, and inline messages labelled team-written.

using namespace iraewatch;
using ingest::hl7::Message;
using namespace iraewatch::testing::hl7;

namespace {

constexpr std::int64_t kNow = 1'772'000'000'000;

// The same text with `from` replaced (once, and it must be there) by `to`.
std::string replaced(std::string_view text, const std::string& from, const std::string& to) {
  std::string s(text);
  const auto at = s.find(from);
  REQUIRE(at != std::string::npos);
  s.replace(at, from.size(), to);
  return s;
}

// A store in a fresh folder and an intake on it (no alerting).
class Fixture {
 public:
  explicit Fixture(ingest::Hl7Options options = sample_options()) : intake_(concepts(), options, "ONCO", nullptr) {
    store::StoreOptions so;
    so.synchronous_full = false;
    auto opened = store::Store::open(dir_.path(), so);
    if (!opened) FAIL(opened.error().message);
    store_ = std::move(*opened);
  }

  // One message inside its own transaction, committed.
  app::Hl7Outcome process(std::string_view payload, std::int64_t now_ms = kNow) {
    return process(intake_, payload, now_ms);
  }
  app::Hl7Outcome process(app::Hl7Intake& intake, std::string_view payload, std::int64_t now_ms = kNow) {
    REQUIRE(store_->begin());
    auto out = intake.process(*store_, payload, "test", now_ms);
    if (!out) {
      store_->rollback();
      FAIL(out.error().message);
    }
    REQUIRE(store_->commit());
    return *out;
  }

  store::Store& store() { return *store_; }
  app::Hl7Intake& intake() { return intake_; }

  // Rows of a read-only query on the database file, each column as text (BLOBs as their bytes,
  // NULL as "<null>").
  std::vector<std::vector<std::string>> query(const std::string& sql, const std::string& arg = "") const {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2(store::Store::database_path(dir_.path()).c_str(), &db, SQLITE_OPEN_READONLY, nullptr) ==
            SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
    if (!arg.empty()) sqlite3_bind_text(st, 1, arg.c_str(), -1, SQLITE_TRANSIENT);
    std::vector<std::vector<std::string>> rows;
    while (sqlite3_step(st) == SQLITE_ROW) {
      auto& row = rows.emplace_back();
      for (int c = 0; c < sqlite3_column_count(st); ++c) {
        if (sqlite3_column_type(st, c) == SQLITE_NULL) {
          row.emplace_back("<null>");
        } else if (sqlite3_column_type(st, c) == SQLITE_BLOB) {
          const auto* p = static_cast<const char*>(sqlite3_column_blob(st, c));
          row.emplace_back(p, static_cast<std::size_t>(sqlite3_column_bytes(st, c)));
        } else {
          row.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st, c)));
        }
      }
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rows;
  }

 private:
  testing::TempDir dir_;
  app::Hl7Intake intake_;
  std::unique_ptr<store::Store> store_;
};

// The ACK's MSA-1, MSA-2 and the ERR-3 codes, parsed back.
struct AckView {
  std::string code, control_id;
  std::vector<std::string> errors;
};

AckView read_ack(const std::string& ack) {
  const auto a = parse(kept(ack));
  REQUIRE(a.segment_id(0) == "MSH");
  const auto msa = a.next("MSA");
  REQUIRE(msa < a.segment_count());
  AckView v{std::string(a.raw(msa, 1)), a.text(msa, 2), {}};
  for (const auto e : a.find("ERR")) v.errors.emplace_back(a.raw(e, 3, 0, 1));
  return v;
}

std::vector<store::StoredObservation> versions(Fixture& f, const std::string& id, const std::string& feed = "hl7") {
  auto v = f.store().observation_versions(feed, id);
  if (!v) FAIL(v.error().message);
  return *v;
}

std::vector<store::PatientRecordRow> records_of(Fixture& f, const std::string& patient) {
  auto rows = f.store().records_of_patient(patient);
  if (!rows) FAIL(rows.error().message);
  return *rows;
}

std::vector<store::RejectedRow> rejected(Fixture& f) {
  auto rows = f.store().rejected(100);
  if (!rows) FAIL(rows.error().message);
  return *rows;
}

}  // namespace

TEST_CASE("every third-party sample, ingested alone into an empty store, gets the ACK docs/hl7.md states",
          "[app][hl7]") {
  struct Expected {
    std::vector<std::string> acks;  // one per message; {} for the disputed file (see below)
    std::size_t stored = 0;
    std::string first_error;  // ERR-3.1 of the first message's ACK ("" when none)
  };
  const std::map<std::string, Expected> expected = {
      {"adt-a08-v28-update.hl7", {{"AA"}, 0, ""}},
      {"cerner-elr-oru-r01-lead.hl7", {{"AA"}, 1, ""}},
      {"elr-batch-fhs-bhs-2msgs.hl7", {{"CA", "CA"}, 3, ""}},
      {"elr-oru-r01-msh2-three-encoding-chars.hl7", {{"CA"}, 1, ""}},
      {"lab-oru-r01-prelim-incomplete.hl7", {{}, 8, ""}},
      {"nist-elr-oru-r01-case1-nm-final.hl7", {{"AA"}, 1, ""}},
      {"nist-elr-oru-r01-case3-nm-corrected.hl7", {{"AA"}, 1, ""}},
      {"nist-elr-oru-r01-case4-st-value.hl7", {{"AA"}, 1, ""}},
      {"nist-elr-oru-r01-case6-multi-obx.hl7", {{"AA"}, 3, ""}},
      {"nist-iz-vxu-v04-rxa.hl7", {{"CR"}, 0, "200"}},
      {"nist-lri-oru-r01-cbc.hl7", {{"CA"}, 28, ""}},
      {"oru-r01-escape-repetition-stress.hl7", {{"CR"}, 0, "101"}},
      {"oru-r01-v24-sn-value.hl7", {{"AR"}, 0, "101"}},
      {"oru-r03-empty-segments-malformed.hl7", {{"AR"}, 0, "100"}},
      {"oru-v22-multi-obr-tx-nte.hl7", {{"CR"}, 0, "203"}},
      {"rds-o13-v28-pharmacy-dispense.hl7", {{"AR"}, 0, "200"}},
  };
  std::set<std::string> on_disk, listed;
  for (const auto& entry : std::filesystem::directory_iterator(kSampleDir))
    if (entry.path().extension() == ".hl7") on_disk.insert(entry.path().filename().string());
  for (const auto& [name, want] : expected) listed.insert(name);
  REQUIRE(on_disk == listed);

  for (const auto& [name, want] : expected) {
    INFO(name);
    Fixture f;
    const auto messages = messages_in(kSampleDir + name);
    std::vector<std::string> acks;
    std::size_t stored = 0, rejected_items = 0;
    for (std::size_t i = 0; i < messages.size(); ++i) {
      const auto out = f.process(messages[i]);
      const auto ack = read_ack(out.ack);
      CHECK(ack.code == out.ack_code);
      CHECK_FALSE(out.repeat);
      // MSA-2 echoes MSH-10, except for an unreadable message.
      if (auto m = Message::parse(messages[i]))
        CHECK(ack.control_id == m->text(0, 10));
      else
        CHECK(ack.control_id.empty());
      if (i == 0 && !want.acks.empty())
        CHECK((ack.errors.empty() ? std::string() : ack.errors.front()) == want.first_error);
      acks.push_back(out.ack_code);
      stored += out.stored;
      rejected_items += out.rejected;
    }
    if (!want.acks.empty()) CHECK(acks == want.acks);
    CHECK(stored == want.stored);
    // Every message is kept for audit, and every refused one is rejected input too.
    CHECK(f.query("SELECT count(*) FROM inbound_messages")[0][0] == std::to_string(messages.size()));
    CHECK(rejected(f).size() == rejected_items);
    if (!want.first_error.empty()) CHECK(rejected_items == 1);
    auto summary = f.store().summary();
    REQUIRE(summary);
    CHECK(static_cast<std::size_t>(summary->observation_versions) == want.stored);
  }
}

// See hl7_mapper_test.cpp, "lab-oru-r01-prelim-incomplete: pending OBX without a value are skipped".
TEST_CASE("lab-oru-r01-prelim-incomplete through the intake: AA, 8 stored, 2 ignored, nothing rejected", "[app][hl7]") {
  Fixture f;
  const auto out = f.process(only_message(kSampleDir + "lab-oru-r01-prelim-incomplete.hl7"));
  CHECK(out.stored == 8);
  CHECK(out.ignored == 2);
  CHECK(out.rejected == 0);
  CHECK(out.ack_code == "AA");
  CHECK(rejected(f).empty());
}

TEST_CASE("NIST case 1 then case 3 through a store: version 2 of the same record, corrected", "[app][hl7]") {
  Fixture f;
  const auto first = f.process(only_message(kSampleDir + "nist-elr-oru-r01-case1-nm-final.hl7"));
  const auto second = f.process(only_message(kSampleDir + "nist-elr-oru-r01-case3-nm-corrected.hl7"));
  CHECK(first.ack_code == "AA");
  CHECK(second.ack_code == "AA");
  CHECK(first.stored == 1);
  CHECK(second.stored == 1);
  CHECK(second.duplicates == 0);
  const auto v = versions(f, "EHR Facility|9700123|10368-9|1");
  REQUIRE(v.size() == 2);
  CHECK(v[0].version == 1);
  CHECK(v[0].observation.status == core::ObservationStatus::final);
  CHECK(v[0].observation.value == 50.0);
  CHECK_FALSE(v[0].is_current);
  CHECK(v[1].version == 2);
  CHECK(v[1].observation.status == core::ObservationStatus::corrected);
  CHECK(v[1].observation.value == 25.0);
  CHECK(v[1].is_current);
  const auto rows = records_of(f, "9817566735");
  REQUIRE(rows.size() == 2);
  CHECK(rows[1].status == "corrected");
}

TEST_CASE("a resend with the same bytes gets the stored ACK and is not processed again", "[app][hl7]") {
  Fixture f;
  const auto payload = only_message(kSampleDir + "nist-elr-oru-r01-case1-nm-final.hl7");
  const auto first = f.process(payload, kNow);
  const auto again = f.process(payload, kNow + 60'000);  // a later ACK time would differ: it must not
  CHECK_FALSE(first.repeat);
  CHECK(again.repeat);
  CHECK(again.ack == first.ack);
  CHECK(again.ack_code == "AA");
  CHECK(again.stored == 0);
  CHECK(again.duplicates == 0);
  CHECK(versions(f, "EHR Facility|9700123|10368-9|1").size() == 1);
  CHECK(f.query("SELECT count(*) FROM inbound_messages")[0][0] == "1");
  CHECK(rejected(f).empty());
}

TEST_CASE("a resend with other segment ends (LF or CRLF from a file, CR over MLLP) is the same message", "[app][hl7]") {
  Fixture f;
  const std::string payload(only_message(kSampleDir + "nist-elr-oru-r01-case1-nm-final.hl7"));
  std::string with_cr, with_lf, with_crlf;
  const auto m = parse(payload);
  for (std::size_t i = 0; i < m.segment_count(); ++i) {
    with_cr += std::string(m.segment(i)) + "\r";
    with_lf += std::string(m.segment(i)) + "\n";
    with_crlf += std::string(m.segment(i)) + "\r\n";
  }
  REQUIRE(app::payload_hash(with_cr) == app::payload_hash(with_lf));
  REQUIRE(app::payload_hash(with_cr) == app::payload_hash(with_crlf));
  REQUIRE(app::payload_hash("\xEF\xBB\xBF" + with_cr) == app::payload_hash(with_cr));
  const auto first = f.process(with_lf);
  REQUIRE(first.ack_code == "AA");
  const auto again = f.process(with_cr);
  CHECK(again.repeat);
  CHECK(again.ack == first.ack);
  CHECK(rejected(f).empty());
  // One changed byte inside a segment is another message.
  CHECK(app::payload_hash(replaced(with_cr, "|1|50|", "|1|51|")) != app::payload_hash(with_cr));
}

TEST_CASE("the same (MSH-3, MSH-4, MSH-10) with other bytes: AR 205, kept as rejected input", "[app][hl7]") {
  Fixture f;
  const auto payload = only_message(kSampleDir + "nist-elr-oru-r01-case1-nm-final.hl7");
  REQUIRE(f.process(payload).ack_code == "AA");
  const std::string other =
      replaced(payload, "|NM|10368-9^Lead BldC-mCnc^LN|1|50|", "|NM|10368-9^Lead BldC-mCnc^LN|1|51|");
  const auto out = f.process(other);
  CHECK_FALSE(out.repeat);
  CHECK(out.ack_code == "AR");
  CHECK(out.stored == 0);
  CHECK(out.rejected == 1);
  const auto ack = read_ack(out.ack);
  CHECK(ack.code == "AR");
  CHECK(ack.control_id == "NIST-100929110701660");
  CHECK(ack.errors == std::vector<std::string>{"205"});
  // Nothing of it was used: still one version, value 50.
  const auto v = versions(f, "EHR Facility|9700123|10368-9|1");
  REQUIRE(v.size() == 1);
  CHECK(v[0].observation.value == 50.0);
  const auto rows = rejected(f);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].raw == other);
  CHECK(rows[0].feed == "hl7");
  CHECK(rows[0].reason.find("control id") != std::string::npos);

  SECTION("enhanced mode: CR") {
    const auto ras = only_message(kTeamDir + "ras-o17-by-name-and-not-given.hl7");
    REQUIRE(f.process(ras).ack_code == "CE");
    const auto changed = f.process(replaced(ras, "|200|mg^milligram^UCUM", "|240|mg^milligram^UCUM"));
    CHECK(changed.ack_code == "CR");
    CHECK(read_ack(changed.ack).errors == std::vector<std::string>{"205"});
  }
  SECTION("another facility (MSH-4) or another feed is another key") {
    const auto elsewhere = f.process(replaced(payload, "|EHR Facility^", "|Other Facility^"));
    CHECK(elsewhere.ack_code == "AA");
    CHECK(elsewhere.stored == 1);
    ingest::Hl7Options options;
    options.feed = "hl7-b";
    app::Hl7Intake feed_b(concepts(), options, "ONCO", nullptr);
    const auto other_feed = f.process(feed_b, payload);
    CHECK_FALSE(other_feed.repeat);
    CHECK(other_feed.ack_code == "AA");
    CHECK(versions(f, "EHR Facility|9700123|10368-9|1", "hl7-b").size() == 1);
  }
}

TEST_CASE("the raw message is kept in inbound_messages with its ACK", "[app][hl7]") {
  Fixture f;
  const auto payload = only_message(kSampleDir + "nist-elr-oru-r01-case1-nm-final.hl7");
  const auto out = f.process(payload);
  const auto rows = f.query(
      "SELECT feed, source, received_ms, sending_application, sending_facility, control_id, message_type, "
      "ack_code, ack, raw, payload_hash FROM inbound_messages");
  REQUIRE(rows.size() == 1);
  const auto& r = rows[0];
  CHECK(r[0] == "hl7");
  CHECK(r[1] == "test");
  CHECK(r[2] == std::to_string(kNow));
  CHECK(r[3] == "EHR Application");
  CHECK(r[4] == "EHR Facility");
  CHECK(r[5] == "NIST-100929110701660");
  CHECK(r[6] == "ORU^R01");
  CHECK(r[7] == "AA");
  CHECK(r[8] == out.ack);
  CHECK(r[9] == payload);  // byte for byte, CR segment ends included
  CHECK(r[10] == std::to_string(static_cast<std::int64_t>(app::payload_hash(payload))));
  // The stored ACK is for this message: MSH-7 at the processing time, MSA-2 its control id.
  const auto ack = parse(kept(out.ack));
  CHECK(ack.raw(0, 7) == "20260225061320+0000");
  CHECK(ack.raw(0, 10) == "ACKNIST-100929110701660");
  CHECK(ack.raw(0, 4) == "ONCO");
}

TEST_CASE("an unreadable message: AR 100 without a control id, kept raw, rejected", "[app][hl7]") {
  Fixture f;
  const auto payload = only_message(kSampleDir + "oru-r03-empty-segments-malformed.hl7");
  const auto out = f.process(payload);
  CHECK(out.ack_code == "AR");
  CHECK(out.rejected == 1);
  CHECK(out.reason.find("segment 8") != std::string::npos);
  const auto ack = read_ack(out.ack);
  CHECK(ack.control_id.empty());
  CHECK(ack.errors == std::vector<std::string>{"100"});
  const auto rows = f.query("SELECT control_id, ack_code, raw FROM inbound_messages");
  REQUIRE(rows.size() == 1);
  CHECK(rows[0][0].empty());
  CHECK(rows[0][1] == "AR");
  CHECK(rows[0][2] == payload);
  const auto bad = rejected(f);
  REQUIRE(bad.size() == 1);
  CHECK(bad[0].raw == payload);
  CHECK(bad[0].position == 1);
}

TEST_CASE("a refused message (VXU, CR 200) is kept and rejected; its resend gets the same ACK", "[app][hl7]") {
  Fixture f;
  const auto payload = only_message(kSampleDir + "nist-iz-vxu-v04-rxa.hl7");
  const auto out = f.process(payload);
  CHECK(out.ack_code == "CR");
  CHECK(out.reason.find("VXU^V04") != std::string::npos);
  const auto bad = rejected(f);
  REQUIRE(bad.size() == 1);
  CHECK(bad[0].raw == payload);
  const auto again = f.process(payload);
  CHECK(again.repeat);
  CHECK(again.ack == out.ack);
  CHECK(rejected(f).size() == 1);
}

TEST_CASE("one bad OBX: AE, the two good ones stored, the bad segment kept as rejected input", "[app][hl7]") {
  Fixture f;
  const auto out = f.process(only_message(kTeamDir + "oru-r01-one-bad-obx.hl7"));
  CHECK(out.ack_code == "AE");
  CHECK(out.stored == 2);
  CHECK(out.rejected == 1);
  CHECK(out.reason.find("'mmol/L'") != std::string::npos);
  const auto ack = read_ack(out.ack);
  CHECK(ack.control_id == "ORU-0005");
  CHECK(ack.errors == std::vector<std::string>{"103"});
  const auto bad = rejected(f);
  REQUIRE(bad.size() == 1);
  CHECK(bad[0].raw == "OBX|2|NM|3024-7^Free T4^LN||1.1|mmol/L^^UCUM|0.9-1.7|N|||F|||20260321080000+0100");
  CHECK(bad[0].position == 5);  // the 5th segment of the message
  CHECK(bad[0].source == "test ORU-0005");
  CHECK(bad[0].reason.find("OBX-6") != std::string::npos);
  const auto rows = records_of(f, "HL7-5005");
  std::set<std::string> what;
  for (const auto& r : rows) what.insert(r.what);
  CHECK(what == std::set<std::string>{"tsh", "crp"});
}

TEST_CASE("team-written: an OBX refused for its OBR's bad OBR-7: ERR at OBR-7, the OBX kept as rejected input",
          "[app][hl7]") {
  Fixture f;
  const std::string payload =
      "MSH|^~\\&|LAB|ONCO|IRAEWATCH|ONCO|20260301090000+0100||ORU^R01^ORU_R01|OBR7-1|P|2.5.1\r"
      "PID|1||T-700^^^ONCO^MR||TEAM^WRITTEN||19600101|F\r"
      "OBR|1|PL-1|FL-1^LAB|24348-5^Thyroid panel^LN|||yesterday\r"
      "OBX|1|NM|3016-3^TSH^LN||2.1|m[IU]/L^^UCUM|0.4-4.0|N|||F|||20260301080000+0100\r"
      "OBX|2|NM|3024-7^Free T4^LN||1.1|ng/dL^^UCUM|0.9-1.7|N|||F\r";
  const auto out = f.process(payload);
  CHECK(out.ack_code == "AE");
  CHECK(out.stored == 1);  // the OBX with its own OBX-14
  CHECK(out.rejected == 1);
  const auto a = parse(kept(out.ack));
  const auto err = a.find("ERR");
  REQUIRE(err.size() == 1);
  CHECK(a.raw(err[0], 2) == "OBR^1^7");
  const auto bad = rejected(f);
  REQUIRE(bad.size() == 1);
  CHECK(bad[0].raw.starts_with("OBX|2|"));
  CHECK(bad[0].position == 5);
  CHECK(bad[0].reason.starts_with("OBR-7"));
}

TEST_CASE("RAS^O17 through a store: an administration, then RXA-21 D makes version 2 entered in error", "[app][hl7]") {
  Fixture f;
  CHECK(f.process(only_message(kTeamDir + "ras-o17-pembrolizumab.hl7")).stored == 1);
  CHECK(f.process(only_message(kTeamDir + "ras-o17-pembrolizumab-deleted.hl7")).stored == 1);
  const auto rows = records_of(f, "HL7-5005");
  REQUIRE(rows.size() == 2);
  for (const auto& r : rows) {
    CHECK(r.kind == "medication");
    CHECK(r.record_id == "ONCO_HOSP|FL-778|1");
    CHECK(r.what == "pembrolizumab");
  }
  CHECK(rows[0].version == 1);
  CHECK(rows[0].status == "completed");
  CHECK(rows[1].version == 2);
  CHECK(rows[1].status == "entered-in-error");
  CHECK(rows[1].is_current);
  auto summary = f.store().summary();
  REQUIRE(summary);
  CHECK(summary->ici_administrations == 1);
}

TEST_CASE("ADT^A08: the patient exists and is marked updated, nothing else stored", "[app][hl7]") {
  Fixture f;
  const auto out = f.process(only_message(kSampleDir + "adt-a08-v28-update.hl7"), kNow + 5);
  CHECK(out.ack_code == "AA");
  CHECK(out.stored == 0);
  const auto rows = f.query("SELECT patient_key, updated_ms FROM patients");
  REQUIRE(rows.size() == 1);
  CHECK(rows[0][0] == "PATID1234");
  CHECK(rows[0][1] == std::to_string(kNow + 5));
  CHECK(records_of(f, "PATID1234").empty());
}

TEST_CASE("ADT^A40: the merged patient's records move to the surviving patient", "[app][hl7]") {
  Fixture f;
  // Team-written: two results for the patient that the A40 fixture retires (HL7-5099).
  const std::string oru =
      "MSH|^~\\&|LAB|ONCO_HOSP|IRAEWATCH|ONCO_HOSP|20260310080000+0100||ORU^R01^ORU_R01|ORU-5099|P|2.5.1\r"
      "PID|1||HL7-5099^^^ONCO_HOSP^MR\r"
      "OBR|1|PL-5099|FL-5099^LAB|24348-5^Thyroid panel^LN|||20260310080000+0100\r"
      "OBX|1|NM|3016-3^TSH^LN||6.1|m[IU]/L^^UCUM|0.4-4.0|H|||F|||20260310080000+0100\r"
      "OBX|2|NM|3024-7^Free T4^LN||0.8|ng/dL^^UCUM|0.9-1.7|L|||F|||20260310080000+0100\r";
  REQUIRE(f.process(oru).stored == 2);
  REQUIRE(f.process(only_message(kTeamDir + "ras-o17-pembrolizumab.hl7")).stored == 1);
  REQUIRE(records_of(f, "HL7-5099").size() == 2);
  REQUIRE(records_of(f, "HL7-5005").size() == 1);

  const auto out = f.process(only_message(kTeamDir + "adt-a40-merge.hl7"), kNow + 7);
  CHECK(out.ack_code == "AA");
  CHECK(read_ack(out.ack).control_id == "ADT-0001");
  CHECK(records_of(f, "HL7-5099").empty());
  const auto merged = records_of(f, "HL7-5005");
  REQUIRE(merged.size() == 3);
  std::set<std::string> ids;
  for (const auto& r : merged) ids.insert(r.record_id);
  CHECK(ids == std::set<std::string>{"ONCO_HOSP|FL-5099|3016-3|", "ONCO_HOSP|FL-5099|3024-7|", "ONCO_HOSP|FL-778|1"});
  const auto rows = f.query("SELECT merged_into, updated_ms FROM patients WHERE patient_key = ?1", "HL7-5099");
  REQUIRE(rows.size() == 1);
  CHECK(rows[0][0] == "HL7-5005");
  CHECK(rows[0][1] == std::to_string(kNow + 7));
}

TEST_CASE("team-written: an ADT^A40 with two PID/MRG pairs merges both patients in one message", "[app][hl7]") {
  Fixture f;
  auto oru = [](const std::string& patient, const std::string& order) {
    return "MSH|^~\\&|LAB|ONCO|IRAEWATCH|ONCO|20260310080000+0100||ORU^R01^ORU_R01|ORU-" + order + "|P|2.5.1\rPID|1||" +
           patient + "^^^ONCO^MR\rOBR|1|PL-" + order + "|FL-" + order +
           "^LAB|24348-5^Thyroid panel^LN|||20260310080000+0100\r"
           "OBX|1|NM|3016-3^TSH^LN||2.1|m[IU]/L^^UCUM|0.4-4.0|N|||F|||20260310080000+0100\r";
  };
  REQUIRE(f.process(oru("OLD-1", "1")).stored == 1);
  REQUIRE(f.process(oru("OLD-2", "2")).stored == 1);
  const std::string a40 =
      "MSH|^~\\&|ADT|ONCO|IRAEWATCH|ONCO|20260311||ADT^A40^ADT_A39|ADT-2P|P|2.5.1\rEVN|A40|20260311\r"
      "PID|1||NEW-1^^^ONCO^MR\rMRG|OLD-1^^^ONCO^MR\rPID|2||NEW-2^^^ONCO^MR\rMRG|OLD-2^^^ONCO^MR\r";
  const auto out = f.process(a40, kNow + 9);
  CHECK(out.ack_code == "AA");
  CHECK(records_of(f, "OLD-1").empty());
  CHECK(records_of(f, "OLD-2").empty());
  CHECK(records_of(f, "NEW-1").size() == 1);
  CHECK(records_of(f, "NEW-2").size() == 1);
  const auto rows = f.query("SELECT patient_key, merged_into FROM patients WHERE merged_into IS NOT NULL ORDER BY 1");
  CHECK(rows == std::vector<std::vector<std::string>>{{"OLD-1", "NEW-1"}, {"OLD-2", "NEW-2"}});
}

TEST_CASE("not_stored_ack and too_large_ack: AR/CR with 207 and 102, echoing the control id", "[app][hl7]") {
  Fixture f;
  const auto oru = only_message(kSampleDir + "nist-elr-oru-r01-case1-nm-final.hl7");
  const auto not_stored = read_ack(f.intake().not_stored_ack(oru, "database is locked", kNow));
  CHECK(not_stored.code == "AR");
  CHECK(not_stored.control_id == "NIST-100929110701660");
  CHECK(not_stored.errors == std::vector<std::string>{"207"});

  const auto enhanced =
      read_ack(f.intake().not_stored_ack(only_message(kSampleDir + "nist-lri-oru-r01-cbc.hl7"), "disk full", kNow));
  CHECK(enhanced.code == "CR");
  CHECK(enhanced.control_id == "NIST-LRI-NG-002.00");

  const auto unreadable = read_ack(f.intake().not_stored_ack("not hl7", "disk full", kNow));
  CHECK(unreadable.code == "AR");
  CHECK(unreadable.control_id.empty());

  // The prefix that was read before the limit: MSH whole, the next segment cut.
  const auto too_large = read_ack(f.intake().too_large_ack(oru.substr(0, oru.find("SFT|") + 10), 4096, kNow));
  CHECK(too_large.code == "AR");
  CHECK(too_large.control_id == "NIST-100929110701660");
  CHECK(too_large.errors == std::vector<std::string>{"102"});
  // Nothing was written by either.
  CHECK(f.query("SELECT count(*) FROM inbound_messages")[0][0] == "0");
}

TEST_CASE("payload_hash tells payloads apart and is stable", "[app][hl7]") {
  CHECK(app::payload_hash("MSH|1") != app::payload_hash("MSH|2"));
  CHECK(app::payload_hash("MSH|1\r") != app::payload_hash("MSH|1\n"));
  CHECK(app::payload_hash("MSH|1") == app::payload_hash(std::string("MSH|1")));
}

// 64-bit FNV-1a, offset basis 14695981039346656037 (0xcbf29ce484222325): bytes that are not an
// HL7 message are hashed as they are, so the published test vectors hold.
TEST_CASE("payload_hash is 64-bit FNV-1a (published test vectors)", "[app][hl7]") {
  CHECK(app::payload_hash("") == 0xcbf29ce484222325ULL);
  CHECK(app::payload_hash("a") == 0xaf63dc4c8601ec8cULL);
  CHECK(app::payload_hash("foobar") == 0x85944171f73967e8ULL);
}
