#include <catch2/catch.hpp>

#include <filesystem>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "iraewatch/core/event_time.hpp"
#include "iraewatch/ingest/hl7_ack.hpp"
#include "iraewatch/ingest/hl7_mapper.hpp"
#include "iraewatch/ingest/hl7_message.hpp"
#include "iraewatch/rules/rule_set_loader.hpp"
#include "support/daemon.hpp"
#include "support/hl7_samples.hpp"

// HL7 v2 messages to records (src/ingest/hl7_mapper.cpp) and acknowledgements
// (src/ingest/hl7_ack.cpp), against the third-party samples (tests/data/third_party/hl7v2), the
// team fixtures (tests/data/hl7) and inline messages labelled team-written. Outcomes are checked
// against docs/hl7.md.

using namespace iraewatch;
using ingest::AckKind;
using ingest::Hl7Error;
using ingest::Hl7Issue;
using ingest::Hl7Mapped;
using ingest::Hl7Mapper;
using ingest::Hl7Options;
using ingest::hl7::Message;
using namespace iraewatch::testing::hl7;

namespace {

constexpr std::int64_t kReceived = 1'772'000'000'000;
const std::string kLoinc = "http://loinc.org";
const std::string kRxNorm = "http://www.nlm.nih.gov/research/umls/rxnorm";

Hl7Mapped map_text(std::string_view text, const Hl7Options& options = sample_options()) {
  const Hl7Mapper mapper(concepts(), options);
  return mapper.map(parse(text), kReceived);
}

// The only message of a file.
Hl7Mapped map_file(const std::string& path, const Hl7Options& options = sample_options()) {
  const auto messages = messages_in(path);
  REQUIRE(messages.size() == 1);
  return map_text(messages.front(), options);
}

std::string ack_of(const Hl7Mapped& mapped) {
  return std::string(ingest::ack_code(ingest::ack_kind(mapped), mapped.enhanced_ack));
}

const core::Observation& observation(const Hl7Mapped& mapped, std::size_t i) {
  REQUIRE(i < mapped.records.size());
  const auto* o = std::get_if<core::Observation>(&mapped.records[i]);
  REQUIRE(o != nullptr);
  return *o;
}

const core::MedicationAdministration& administration(const Hl7Mapped& mapped, std::size_t i) {
  REQUIRE(i < mapped.records.size());
  const auto* a = std::get_if<core::MedicationAdministration>(&mapped.records[i]);
  REQUIRE(a != nullptr);
  return *a;
}

std::int64_t utc(const char* rfc3339) {
  auto t = core::parse_rfc3339(rfc3339);
  REQUIRE(t);
  return t->utc_ms;
}

// --- Team-written messages ------------------------------------------------------------------------

// One team-written OBX segment (field numbers as HL7 counts them).
struct Obx {
  std::string type = "NM";                   // OBX-2
  std::string code = "3016-3^TSH^LN";        // OBX-3
  std::string sub_id;                        // OBX-4
  std::string value = "2.5";                 // OBX-5
  std::string unit = "m[IU]/L^^UCUM";        // OBX-6
  std::string range;                         // OBX-7
  std::string status = "F";                  // OBX-11
  std::string time = "20260301083000+0100";  // OBX-14

  std::string segment(int set_id) const {
    return "OBX|" + std::to_string(set_id) + "|" + type + "|" + code + "|" + sub_id + "|" + value + "|" + unit + "|" +
           range + "||||" + status + "|||" + time;
  }
};

// Team-written: an ORU^R01 2.5.1 from LAB at ONCO for patient T-100, one OBR (filler FL-1, OBR-7
// `obr7`) and the given OBX segments. Segments end with CR.
std::string team_oru(const std::vector<Obx>& obx, const std::string& obr7 = "20260301080000+0100",
                     const std::string& pid3 = "T-100^^^ONCO^MR", const std::string& msh9 = "ORU^R01^ORU_R01") {
  std::string text = "MSH|^~\\&|LAB|ONCO|IRAEWATCH|ONCO|20260301090000+0100||" + msh9 + "|TEAM-0001|P|2.5.1\r" +
                     "PID|1||" + pid3 + "||TEAM^WRITTEN||19600101|F\r" +
                     "OBR|1|PL-1|FL-1^LAB|24348-5^Thyroid panel^LN|||" + obr7 + "\r";
  int set_id = 1;
  for (const auto& o : obx) text += o.segment(set_id++) + "\r";
  return text;
}

Hl7Mapped map_obx(const Obx& obx, const Hl7Options& options = {}) {
  return map_text(team_oru({obx}), options);
}

const Hl7Issue& only_issue(const Hl7Mapped& mapped) {
  REQUIRE_FALSE(mapped.rejection);
  REQUIRE(mapped.issues.size() == 1);
  return mapped.issues.front();
}

}  // namespace

// --- Every third-party sample, mapped alone ------------------------------------------------------

TEST_CASE("every third-party sample maps or is refused with the ACK docs/hl7.md states", "[ingest][hl7]") {
  struct Expected {
    std::string ack;  // what ack_code(ack_kind(...)) gives; "" for an unreadable message
    Hl7Mapped::Kind kind = Hl7Mapped::Kind::results;
    std::size_t records = 0;
    std::optional<Hl7Error> rejection;
    int rejection_field = 0;
    std::string patient;
  };
  using K = Hl7Mapped::Kind;
  const std::map<std::string, std::vector<Expected>> expected = {
      {"adt-a08-v28-update.hl7", {{"AA", K::patient_update, 0, {}, 0, "PATID1234"}}},
      {"cerner-elr-oru-r01-lead.hl7", {{"AA", K::results, 1, {}, 0, "9339683996"}}},
      // MSH-15 is NE in both: set, so enhanced mode (CA/CE/CR) as the issue text asks.
      {"elr-batch-fhs-bhs-2msgs.hl7",
       {{"CA", K::results, 2, {}, 0, "36363636"}, {"CA", K::results, 1, {}, 0, "36363636"}}},
      {"elr-oru-r01-msh2-three-encoding-chars.hl7", {{"CA", K::results, 1, {}, 0, "36363636"}}},
      // Its ACK code is disputed: see "lab-oru-r01-prelim-incomplete: ..." below. 8 records either way.
      {"lab-oru-r01-prelim-incomplete.hl7", {{"", K::results, 8, {}, 0, "10006579"}}},
      {"nist-elr-oru-r01-case1-nm-final.hl7", {{"AA", K::results, 1, {}, 0, "9817566735"}}},
      {"nist-elr-oru-r01-case3-nm-corrected.hl7", {{"AA", K::results, 1, {}, 0, "9817566735"}}},
      {"nist-elr-oru-r01-case4-st-value.hl7", {{"AA", K::results, 1, {}, 0, "5667351009"}}},
      {"nist-elr-oru-r01-case6-multi-obx.hl7", {{"AA", K::results, 3, {}, 0, "987488015"}}},
      {"nist-iz-vxu-v04-rxa.hl7", {{"CR", K::unsupported, 0, Hl7Error::unsupported_message_type, 9, ""}}},
      {"nist-lri-oru-r01-cbc.hl7", {{"CA", K::results, 28, {}, 0, "PATID1234"}}},
      {"oru-r01-escape-repetition-stress.hl7", {{"CR", K::results, 0, Hl7Error::required_field_missing, 3, ""}}},
      {"oru-r01-v24-sn-value.hl7", {{"AR", K::results, 0, Hl7Error::required_field_missing, 3, ""}}},
      {"oru-r03-empty-segments-malformed.hl7", {{"", K::unsupported, 0, {}, 0, ""}}},
      {"oru-v22-multi-obr-tx-nte.hl7", {{"CR", K::unsupported, 0, Hl7Error::unsupported_version, 12, ""}}},
      {"rds-o13-v28-pharmacy-dispense.hl7", {{"AR", K::unsupported, 0, Hl7Error::unsupported_message_type, 9, ""}}},
  };
  std::set<std::string> on_disk, listed;
  for (const auto& entry : std::filesystem::directory_iterator(kSampleDir))
    if (entry.path().extension() == ".hl7") on_disk.insert(entry.path().filename().string());
  for (const auto& [name, outcomes] : expected) listed.insert(name);
  REQUIRE(on_disk == listed);

  for (const auto& [name, outcomes] : expected) {
    INFO(name);
    const auto messages = messages_in(kSampleDir + name);
    REQUIRE(messages.size() == outcomes.size());
    for (std::size_t i = 0; i < messages.size(); ++i) {
      INFO("message " << i + 1);
      const auto& want = outcomes[i];
      auto message = Message::parse(messages[i]);
      if (name == "oru-r03-empty-segments-malformed.hl7") {
        // Unreadable: nothing to map (the intake answers AR, see hl7_intake_test.cpp).
        REQUIRE_FALSE(message);
        CHECK(message.error().message.find("segment 8 ('||||')") != std::string::npos);
        continue;
      }
      REQUIRE(message);
      const auto mapped = Hl7Mapper(concepts(), sample_options()).map(*message, kReceived);
      if (!want.ack.empty()) CHECK(ack_of(mapped) == want.ack);
      CHECK(mapped.records.size() == want.records);
      if (want.rejection) {
        REQUIRE(mapped.rejection);
        CHECK(mapped.rejection->code == *want.rejection);
        CHECK(mapped.rejection->field == want.rejection_field);
        CHECK(mapped.records.empty());
      } else {
        CHECK_FALSE(mapped.rejection);
        CHECK(mapped.kind == want.kind);
        CHECK(mapped.patient == want.patient);
        if (!want.ack.empty()) CHECK(mapped.issues.empty());
      }
      for (const auto& r : mapped.records) CHECK(core::record_patient(r) == want.patient);
    }
  }
}

// OBX 1 and 3 of this sample (status I, "specimen in lab; results pending") have no value, no
// OBX-14 and no OBR-7. A pending result is not an error the lab can correct: they are skipped
// (ignored) before their time is checked, and the message gets AA.
TEST_CASE("lab-oru-r01-prelim-incomplete: pending OBX without a value are skipped, not refused", "[ingest][hl7]") {
  const auto mapped = map_file(kSampleDir + "lab-oru-r01-prelim-incomplete.hl7");
  CHECK(mapped.records.size() == 8);
  CHECK(mapped.issues.empty());
  CHECK(mapped.ignored_results == 2);
  CHECK(ack_of(mapped) == "AA");
}

TEST_CASE("lab-oru-r01-prelim-incomplete: statuses P, F and the OBR-3 of each group", "[ingest][hl7]") {
  const auto mapped = map_file(kSampleDir + "lab-oru-r01-prelim-incomplete.hl7");
  REQUIRE(mapped.records.size() == 8);
  std::map<std::string, core::ObservationStatus> status;
  for (const auto& r : mapped.records) status[core::record_id(r)] = std::get<core::Observation>(r).status;
  // MSH-4 is empty, hence the leading '|'.
  CHECK(status.at("|82503246|11273-0|") == core::ObservationStatus::preliminary);
  CHECK(status.at("|82503246|11125-2|") == core::ObservationStatus::final);
  CHECK(status.at("|890775544|23761-0|") == core::ObservationStatus::preliminary);
  // Whatever the ACK, the pending OBX 1 and 3 never become records.
  CHECK(status.count("|82503246|11156-7|") == 0);
  CHECK(status.count("|82503246|20509-6|") == 0);
}

// --- ORU^R01: the NIST ELR pair and other samples ----------------------------------------------

TEST_CASE("NIST case 1 (final) then case 3 (corrected): the same record id, final then corrected", "[ingest][hl7]") {
  const auto first = map_file(kSampleDir + "nist-elr-oru-r01-case1-nm-final.hl7");
  const auto second = map_file(kSampleDir + "nist-elr-oru-r01-case3-nm-corrected.hl7");
  const auto& a = observation(first, 0);
  const auto& b = observation(second, 0);
  CHECK(a.id == "EHR Facility|9700123|10368-9|1");
  CHECK(b.id == a.id);
  CHECK(a.status == core::ObservationStatus::final);
  CHECK(b.status == core::ObservationStatus::corrected);
  CHECK(a.value == 50.0);
  CHECK(b.value == 25.0);
  CHECK(a.unit == "ug/dL");
  CHECK(b.unit == "ug/dl");
  CHECK(a.code == core::Code{kLoinc, "10368-9"});
  CHECK(a.concept_name.empty());  // lead is not in the concept map: stored, not evaluated
  CHECK(a.patient == "9817566735");
  // OBX-14 200808151030-0700.
  CHECK(a.time.utc_ms == utc("2008-08-15T10:30:00-07:00"));
  CHECK(a.time.offset_min == -420);
  CHECK(a.provenance.feed == "hl7");
  CHECK(a.provenance.message_id == "NIST-100929110701660");
  CHECK(a.provenance.received_ms == kReceived);
  CHECK(first.control_id == "NIST-100929110701660");
  CHECK(first.sending_application == "EHR Application");
  CHECK(first.sending_facility == "EHR Facility");
  CHECK(first.version == "2.5.1");
  CHECK(first.message_type == "ORU^R01");
  CHECK_FALSE(first.enhanced_ack);
  // OBX-7 "<9 mcg/dL:  Acceptable background lead exposure" is not a range that can be read.
  CHECK_FALSE(a.ref_low);
  CHECK_FALSE(a.ref_high);
  CHECK_FALSE(a.ref_from_sender);
  // Case 3's "<10 ug/dl" is no number either ("10 ug/dl").
  CHECK_FALSE(b.ref_high);
}

TEST_CASE("NIST cases 4 and 6: ST values, three OBX told apart by their code", "[ingest][hl7]") {
  const auto st = map_file(kSampleDir + "nist-elr-oru-r01-case4-st-value.hl7");
  const auto& o = observation(st, 0);
  CHECK(o.text_value == "Isolated");
  CHECK_FALSE(o.value);
  CHECK(o.code == core::Code{kLoinc, "11469-4"});

  const auto multi = map_file(kSampleDir + "nist-elr-oru-r01-case6-multi-obx.hl7");
  REQUIRE(multi.records.size() == 3);
  std::set<std::string> ids;
  for (const auto& r : multi.records) ids.insert(core::record_id(r));
  CHECK(ids == std::set<std::string>{"EHR Facility|2233817|6331-3|1", "EHR Facility|2233817|20995-1|1",
                                     "EHR Facility|2233817|17576-0|1"});
  CHECK(observation(multi, 2).text_value == "Not Isolated");
}

TEST_CASE("the batch: CWE text, a P status, NM with UCUM; two messages, two facilities", "[ingest][hl7]") {
  const auto messages = messages_in(kSampleDir + "elr-batch-fhs-bhs-2msgs.hl7");
  REQUIRE(messages.size() == 2);
  const auto one = map_text(messages[0]);
  const auto two = map_text(messages[1]);
  CHECK(one.enhanced_ack);
  CHECK(one.sending_facility == "Joe's Lab");
  CHECK(two.sending_facility.empty());  // MSH-4 is "^1234^CLIA"
  CHECK(one.control_id == two.control_id);
  const auto& cwe = observation(one, 0);
  CHECK(cwe.text_value == "Campylobacter jejuni");
  CHECK(cwe.status == core::ObservationStatus::preliminary);
  // OBX-14 200906041458 has no zone: the default offset (0).
  CHECK(cwe.time == core::EventTime{utc("2009-06-04T14:58:00Z"), 0});
  const auto& nm = observation(two, 0);
  CHECK(nm.value == 50.0);
  CHECK(nm.unit == "ug/dL");
  CHECK(nm.id == "|9700123|10368-9|");
}

TEST_CASE("NIST LRI CBC: 28 OBX, NM with '10*3/uL' units, CWE and TX text, 'a to b' ranges", "[ingest][hl7]") {
  const auto mapped = map_file(kSampleDir + "nist-lri-oru-r01-cbc.hl7");
  REQUIRE(mapped.records.size() == 28);
  const auto& rbc = observation(mapped, 0);
  CHECK(rbc.value == 4.41);
  CHECK(rbc.unit == "10*6/uL");
  CHECK(rbc.ref_low == 4.3);  // "4.3 to 6.2", kept as sent for an unmapped code
  CHECK(rbc.ref_high == 6.2);
  CHECK(rbc.ref_from_sender);
  CHECK(rbc.time.utc_ms == utc("2011-01-03T14:34:28-08:00"));
  CHECK(observation(mapped, 9).unit == "10*3/uL");
  CHECK(observation(mapped, 19).text_value == "Present ++ out of ++++");
  CHECK(observation(mapped, 27).text_value == "Platelets show defective granulation.");
}

TEST_CASE("Cerner lead: OBX-7 ^^10.000000 is no range; trailing LF", "[ingest][hl7]") {
  const auto mapped = map_file(kSampleDir + "cerner-elr-oru-r01-lead.hl7");
  const auto& o = observation(mapped, 0);
  CHECK(o.id == "Baseline West MC|2010273000015|10368-9|1");
  CHECK(o.value == 50.0);
  CHECK_FALSE(o.ref_from_sender);
  // OBX-14 201011041640 has no zone: the default offset (0).
  CHECK(o.time.utc_ms == utc("2010-11-04T16:40:00Z"));
  CHECK(o.time.offset_min == 0);
}

TEST_CASE("ADT^A08 v2.8: PID-3 PATID1234 (MR) among repeated identifiers, no records", "[ingest][hl7]") {
  const auto mapped = map_file(kSampleDir + "adt-a08-v28-update.hl7");
  CHECK(mapped.kind == Hl7Mapped::Kind::patient_update);
  CHECK(mapped.message_type == "ADT^A08");
  CHECK(mapped.patient == "PATID1234");
  CHECK(mapped.records.empty());  // its OBX are not results
  CHECK(mapped.issues.empty());
}

TEST_CASE("refusals of samples: where the ERR points", "[ingest][hl7]") {
  SECTION("VXU^V04: 200 at MSH-9.1") {
    const auto m = map_file(kSampleDir + "nist-iz-vxu-v04-rxa.hl7");
    REQUIRE(m.rejection);
    CHECK(m.rejection->segment_id == "MSH");
    CHECK(m.rejection->field == 9);
    CHECK(m.rejection->component == 1);
    CHECK(m.rejection->message.find("VXU^V04") != std::string::npos);
    CHECK(m.control_id == "NIST-IZ-AD-2.1_Send_V04_Z22");
  }
  SECTION("RDS^O13: 200") {
    const auto m = map_file(kSampleDir + "rds-o13-v28-pharmacy-dispense.hl7");
    REQUIRE(m.rejection);
    CHECK(m.rejection->code == Hl7Error::unsupported_message_type);
    CHECK(m.kind == Hl7Mapped::Kind::unsupported);
  }
  SECTION("version 2.2: 203 at MSH-12") {
    const auto m = map_file(kSampleDir + "oru-v22-multi-obr-tx-nte.hl7");
    REQUIRE(m.rejection);
    CHECK(m.rejection->segment_id == "MSH");
    CHECK(m.rejection->message.find("2.2") != std::string::npos);
    CHECK(m.version == "2.2");
  }
  SECTION("PID-3 with only a PI identifier: 101 at PID-3") {
    const auto m = map_file(kSampleDir + "oru-r01-escape-repetition-stress.hl7");
    REQUIRE(m.rejection);
    CHECK(m.rejection->segment_id == "PID");
    CHECK(m.rejection->segment_index == 2);  // after MSH and SFT
    CHECK(m.rejection->message == "PID-3 has no identifier of type MR");
    CHECK(m.patient.empty());
  }
  SECTION("PID-3 with no identifier type (v2.4 SN sample): 101") {
    const auto m = map_file(kSampleDir + "oru-r01-v24-sn-value.hl7");
    REQUIRE(m.rejection);
    CHECK(m.rejection->segment_id == "PID");
    CHECK(m.rejection->code == Hl7Error::required_field_missing);
  }
}

// --- Team fixtures (tests/data/hl7) ----------------------------------------------------------------

TEST_CASE("RAS^O17 pembrolizumab by RxNorm: an ICI administration of class pd1", "[ingest][hl7]") {
  const auto mapped = map_file(kTeamDir + "ras-o17-pembrolizumab.hl7");
  CHECK(mapped.kind == Hl7Mapped::Kind::administrations);
  CHECK(ack_of(mapped) == "AA");
  REQUIRE(mapped.records.size() == 1);
  const auto& a = administration(mapped, 0);
  CHECK(a.id == "ONCO_HOSP|FL-778|1");
  CHECK(a.patient == "HL7-5005");  // the MR identifier, not the NI one
  CHECK(a.ici == "pembrolizumab");
  CHECK(a.ici_class == "pd1");
  CHECK(a.drug == core::Code{kRxNorm, "1547545"});
  CHECK(a.status == core::MedicationStatus::completed);
  CHECK(a.time.utc_ms == utc("2026-03-01T09:30:00+01:00"));
  CHECK(a.time.offset_min == 60);
  CHECK(a.provenance.message_id == "RAS-0001");
}

TEST_CASE("RAS^O17 RXA-21 D: entered in error, with the id of the A version", "[ingest][hl7]") {
  const auto added = map_file(kTeamDir + "ras-o17-pembrolizumab.hl7");
  const auto deleted = map_file(kTeamDir + "ras-o17-pembrolizumab-deleted.hl7");
  CHECK(ack_of(deleted) == "AA");
  const auto& d = administration(deleted, 0);
  CHECK(d.status == core::MedicationStatus::entered_in_error);
  CHECK(d.id == administration(added, 0).id);
  CHECK(d.ici == "pembrolizumab");
}

TEST_CASE("RAS^O17 by brand name, a refused dose (RE) and a bad RXA-20 (ZZ): CE", "[ingest][hl7]") {
  const auto mapped = map_file(kTeamDir + "ras-o17-by-name-and-not-given.hl7");
  CHECK(mapped.enhanced_ack);
  CHECK(ack_of(mapped) == "CE");
  REQUIRE(mapped.records.size() == 2);
  const auto& given = administration(mapped, 0);
  CHECK(given.id == "ONCO_HOSP|FL-779|1");
  CHECK(given.ici == "nivolumab");  // "Opdivo" in RXA-5.2
  CHECK(given.ici_class == "pd1");
  CHECK(given.drug == core::Code{"", "Opdivo"});
  CHECK(given.status == core::MedicationStatus::completed);
  const auto& refused = administration(mapped, 1);
  CHECK(refused.id == "ONCO_HOSP|FL-779|2");
  CHECK(refused.status == core::MedicationStatus::not_done);
  const auto& issue = only_issue(mapped);
  CHECK(issue.code == Hl7Error::table_value_not_found);
  CHECK(issue.segment_id == "RXA");
  CHECK(issue.segment_index == 5);
  CHECK(issue.field == 20);
  CHECK(issue.message.find("'ZZ'") != std::string::npos);
}

TEST_CASE("team-written: RAS^O17 edge cases", "[ingest][hl7]") {
  auto ras = [](const std::string& orc, const std::string& rxa5, const std::string& rxa20, const std::string& rxa21,
                const std::string& rxa3 = "20260301093000+0100") {
    return "MSH|^~\\&|PHARM|ONCO|IRAEWATCH|ONCO|20260301100000+0100||RAS^O17^RAS_O17|TEAM-RAS|P|2.5.1\r"
           "PID|1||T-100^^^ONCO^MR\r" +
           orc + "\rRXA|0|1|" + rxa3 + "|" + rxa3 + "|" + rxa5 + "|200|mg^^UCUM|||||||||||||" + rxa20 + "|" + rxa21 +
           "\r";
  };
  SECTION("an ATC code in the alternate triplet finds the drug; a partial dose is completed") {
    const auto m = map_text(ras("ORC|RE|PL-1|FL-1", "999^Something^L^L01FF01^nivolumab^ATC", "PA", "A"));
    const auto& a = administration(m, 0);
    CHECK(a.ici == "nivolumab");
    CHECK(a.drug == core::Code{"http://www.whocc.no/atc", "L01FF01"});
    CHECK(a.status == core::MedicationStatus::completed);
  }
  SECTION("an unknown drug is a non-ICI administration") {
    const auto m = map_text(ras("ORC|RE|PL-1|FL-1", "12345^paracetamol^L", "CP", ""));
    const auto& a = administration(m, 0);
    CHECK(a.ici.empty());
    CHECK(a.ici_class.empty());
    CHECK(a.drug == core::Code{"L", "12345"});
    CHECK(ack_of(m) == "AA");
  }
  SECTION("ORC-3 empty: ORC-2 identifies; NA is not done") {
    const auto m = map_text(ras("ORC|RE|PL-9|", "^Keytruda", "NA", "U"));
    const auto& a = administration(m, 0);
    CHECK(a.id == "ONCO|PL-9|1");
    CHECK(a.ici == "pembrolizumab");
    CHECK(a.status == core::MedicationStatus::not_done);
  }
  SECTION("no order number: 101") {
    const auto m = map_text(ras("ORC|RE||", "^Keytruda", "CP", "A"));
    CHECK(m.records.empty());
    CHECK(only_issue(m).code == Hl7Error::required_field_missing);
    CHECK(ack_of(m) == "AE");
  }
  SECTION("RXA-21 X: 103 at RXA-21") {
    const auto m = map_text(ras("ORC|RE|PL-1|FL-1", "^Keytruda", "CP", "X"));
    CHECK(only_issue(m).field == 21);
    CHECK(only_issue(m).code == Hl7Error::table_value_not_found);
  }
  SECTION("RXA-3 not a date: 102 at RXA-3") {
    const auto m = map_text(ras("ORC|RE|PL-1|FL-1", "^Keytruda", "CP", "A", "yesterday"));
    CHECK(only_issue(m).field == 3);
    CHECK(only_issue(m).code == Hl7Error::data_type);
  }
  SECTION("RXA-5 empty: 101") {
    const auto m = map_text(ras("ORC|RE|PL-1|FL-1", "", "CP", "A"));
    CHECK(only_issue(m).field == 5);
    CHECK(only_issue(m).code == Hl7Error::required_field_missing);
  }
}

TEST_CASE("ADT^A40 fixture: HL7-5099 merged into HL7-5005", "[ingest][hl7]") {
  const auto mapped = map_file(kTeamDir + "adt-a40-merge.hl7");
  CHECK(mapped.kind == Hl7Mapped::Kind::patient_merge);
  CHECK(ack_of(mapped) == "AA");
  CHECK(mapped.patient == "HL7-5005");
  CHECK(mapped.merges == std::vector<std::pair<std::string, std::string>>{{"HL7-5099", "HL7-5005"}});
  CHECK(mapped.records.empty());
}

TEST_CASE("team-written: an ADT^A40 with two PID/MRG pairs merges both; a PID without its MRG refuses all",
          "[ingest][hl7]") {
  const std::string head =
      "MSH|^~\\&|ADT|ONCO|IRAEWATCH|ONCO|20260301||ADT^A40^ADT_A39|A-9|P|2.5.1\rEVN|A40|20260301\r";
  const auto two =
      map_text(head + "PID|1||T-1^^^ONCO^MR\rMRG|T-8^^^ONCO^MR\rPID|2||T-2^^^ONCO^MR\rMRG|T-9^^^ONCO^MR\r");
  REQUIRE_FALSE(two.rejection);
  CHECK(ack_of(two) == "AA");
  CHECK(two.merges == std::vector<std::pair<std::string, std::string>>{{"T-8", "T-1"}, {"T-9", "T-2"}});

  const auto second_without_mrg = map_text(head + "PID|1||T-1^^^ONCO^MR\rMRG|T-8^^^ONCO^MR\rPID|2||T-2^^^ONCO^MR\r");
  REQUIRE(second_without_mrg.rejection);
  CHECK(second_without_mrg.rejection->code == Hl7Error::segment_sequence);
  CHECK(ack_of(second_without_mrg) == "AR");

  const auto second_itself =
      map_text(head + "PID|1||T-1^^^ONCO^MR\rMRG|T-8^^^ONCO^MR\rPID|2||T-2^^^ONCO^MR\rMRG|T-2^^^ONCO^MR\r");
  REQUIRE(second_itself.rejection);
  CHECK(second_itself.rejection->segment_id == "MRG");
  CHECK(second_itself.rejection->segment_index == 5);  // the second MRG
}

TEST_CASE("team-written: MSH-11: only P is patient data by default; T and D are refused (202) unless configured",
          "[ingest][hl7]") {
  auto message = [](const std::string& processing) {
    return "MSH|^~\\&|LAB|ONCO|IRAEWATCH|ONCO|20260301||ORU^R01^ORU_R01|PID-" + processing + "|" + processing +
           "|2.5.1\rPID|1||T-1^^^ONCO^MR\rOBR|1|PL-1|FL-1|24348-5^Thyroid^LN|||20260301\r"
           "OBX|1|NM|3016-3^TSH^LN||2.0|m[IU]/L|||||F\r";
  };
  const Hl7Options defaults;
  for (const std::string id : {"T", "D", "T^T"}) {
    INFO(id);
    const auto m = map_text(message(id), defaults);
    REQUIRE(m.rejection);
    CHECK(m.rejection->code == Hl7Error::unsupported_processing_id);
    CHECK(m.rejection->segment_id == "MSH");
    CHECK(m.rejection->field == 11);
    CHECK(m.records.empty());
    CHECK(ack_of(m) == "AR");
  }
  for (const std::string id : {"P", "", "P^T"}) {  // empty counts as P; P^T is P in current processing mode
    INFO(id);
    const auto m = map_text(message(id), defaults);
    CHECK_FALSE(m.rejection);
    CHECK(m.records.size() == 1);
  }
  Hl7Options test_feed;
  test_feed.processing_ids = {"P", "T"};
  CHECK(map_text(message("T"), test_feed).records.size() == 1);
  CHECK(map_text(message("D"), test_feed).rejection);
}

TEST_CASE("team-written: ADT^A31 updates; A40 without MRG or merging into itself is refused", "[ingest][hl7]") {
  const std::string msh = "MSH|^~\\&|ADT|ONCO|IRAEWATCH|ONCO|20260301||";
  const std::string pid = "PID|1||T-1^^^ONCO^MR\r";
  const auto a31 = map_text(msh + "ADT^A31^ADT_A05|A-1|P|2.5.1\r" + pid);
  CHECK(a31.kind == Hl7Mapped::Kind::patient_update);
  CHECK(a31.patient == "T-1");
  CHECK(ack_of(a31) == "AA");

  const auto no_mrg = map_text(msh + "ADT^A40^ADT_A39|A-2|P|2.5.1\r" + pid);
  REQUIRE(no_mrg.rejection);
  CHECK(no_mrg.rejection->code == Hl7Error::segment_sequence);

  const auto itself = map_text(msh + "ADT^A40^ADT_A39|A-3|P|2.5.1\r" + pid + "MRG|T-1^^^ONCO^MR\r");
  REQUIRE(itself.rejection);
  CHECK(itself.rejection->segment_id == "MRG");
  CHECK(itself.merges.empty());

  const auto mrg_no_mr = map_text(msh + "ADT^A40^ADT_A39|A-4|P|2.5.1\r" + pid + "MRG|T-2^^^ONCO^PI\r");
  REQUIRE(mrg_no_mr.rejection);
  CHECK(mrg_no_mr.rejection->code == Hl7Error::required_field_missing);
  CHECK(mrg_no_mr.rejection->field == 1);
  CHECK(ack_of(mrg_no_mr) == "AR");
}

TEST_CASE("team fixture: one OBX with a unit that cannot be converted is refused (103 at OBX-6)", "[ingest][hl7]") {
  const auto mapped = map_file(kTeamDir + "oru-r01-one-bad-obx.hl7");
  CHECK(ack_of(mapped) == "AE");
  REQUIRE(mapped.records.size() == 2);
  CHECK(observation(mapped, 0).concept_name == "tsh");
  CHECK(observation(mapped, 1).concept_name == "crp");
  CHECK(observation(mapped, 1).ref_high == 5.0);  // "<5"
  CHECK_FALSE(observation(mapped, 1).ref_low);
  const auto& issue = only_issue(mapped);
  CHECK(issue.code == Hl7Error::table_value_not_found);
  CHECK(issue.segment_id == "OBX");
  CHECK(issue.segment_index == 4);
  CHECK(issue.field == 6);
  CHECK(issue.message.find("'mmol/L'") != std::string::npos);
}

TEST_CASE("team fixture: thyroid trend, three messages, mapped TSH and free T4", "[ingest][hl7]") {
  const auto messages = messages_in(kTeamDir + "oru-r01-thyroid-trend.hl7");
  REQUIRE(messages.size() == 3);
  const auto last = map_text(messages[2]);
  CHECK(ack_of(last) == "AA");
  const auto& tsh = observation(last, 0);
  const auto& t4 = observation(last, 1);
  CHECK(tsh.concept_name == "tsh");
  CHECK(tsh.canonical_value == 12.4);
  CHECK(tsh.id == "ONCO_HOSP|FL-901|3016-3|");
  CHECK(t4.concept_name == "free_t4");
  CHECK(t4.canonical_value == 0.5);
  CHECK(t4.ref_low == 0.9);
  CHECK(t4.ref_high == 1.7);
}

// --- Team-written ORU^R01 messages: one behaviour each ------------------------------------------

TEST_CASE("team-written: NM and SN values", "[ingest][hl7]") {
  SECTION("NM") {
    const auto m = map_obx(Obx{.value = "7.5"});
    CHECK(observation(m, 0).value == 7.5);
    CHECK(observation(m, 0).canonical_value == 7.5);
    CHECK(observation(m, 0).concept_name == "tsh");
  }
  SECTION("NM that is not a (finite) number: 102 at OBX-5") {
    for (const char* v : {"high", "4,2", "4.2.1", "0x10", "inf", "nan", "1e400"}) {
      INFO(v);
      const auto m = map_obx(Obx{.value = v});
      CHECK(m.records.empty());
      CHECK(only_issue(m).code == Hl7Error::data_type);
      CHECK(only_issue(m).field == 5);
    }
  }
  SECTION("NM with a sign or spaces") {
    CHECK(observation(map_obx(Obx{.value = "+3.5"}), 0).value == 3.5);
    CHECK(observation(map_obx(Obx{.value = " 3.5 "}), 0).value == 3.5);
  }
  SECTION("SN ^182 is 182") {
    const auto m = map_obx(Obx{.type = "SN", .value = "^182"});
    CHECK(observation(m, 0).value == 182.0);
  }
  SECTION("SN with a comparator counts as its bound") {
    CHECK(observation(map_obx(Obx{.type = "SN", .value = ">^100"}), 0).value == 100.0);
    CHECK(observation(map_obx(Obx{.type = "SN", .value = "<^0.01"}), 0).value == 0.01);
    CHECK(observation(map_obx(Obx{.type = "SN", .value = "<=^3"}), 0).value == 3.0);
    CHECK(observation(map_obx(Obx{.type = "SN", .value = "=^4"}), 0).value == 4.0);
  }
  SECTION("SN ranges, ratios and odd comparators are refused (102)") {
    for (const char* v : {"^10^-^20", "^1^:^2", "ca^5", "<>^5", "^abc", "^"}) {
      INFO(v);
      const auto m = map_obx(Obx{.type = "SN", .value = v});
      CHECK(m.records.empty());
      CHECK(only_issue(m).code == Hl7Error::data_type);
      CHECK(only_issue(m).field == 5);
    }
  }
  SECTION("a value type that is not supported (ED): 102 at OBX-2") {
    const auto m = map_obx(Obx{.type = "ED", .value = "App^NS^Octet-stream^Base64^AAAA"});
    CHECK(only_issue(m).field == 2);
    CHECK(only_issue(m).code == Hl7Error::data_type);
  }
  SECTION("text for a mapped concept is refused (it needs a number)") {
    const auto m = map_obx(Obx{.type = "ST", .value = "raised"});
    CHECK(only_issue(m).field == 5);
    CHECK(only_issue(m).code == Hl7Error::data_type);
  }
  SECTION("an empty value with a final status: 101 at OBX-5") {
    const auto m = map_obx(Obx{.value = ""});
    CHECK(only_issue(m).field == 5);
    CHECK(only_issue(m).code == Hl7Error::required_field_missing);
  }
}

// OBX-5 "4.2~4.4" with OBX-2 NM is two values where one number is expected: the OBX is refused
// (102), never cut to its first repetition (nothing is dropped silently).
TEST_CASE("team-written: a repeated NM value is refused, not cut to its first repetition", "[ingest][hl7]") {
  const auto m = map_obx(Obx{.value = "4.2~4.4"});
  CHECK(m.records.empty());
  REQUIRE(m.issues.size() == 1);
  CHECK(m.issues.front().code == Hl7Error::data_type);
  CHECK(m.issues.front().field == 5);
}

TEST_CASE("team-written: OBX-6 units are converted to the concept's unit", "[ingest][hl7]") {
  const auto m = map_obx(Obx{.code = "3024-7^Free T4^LN", .value = "15", .unit = "pmol/L^^UCUM", .range = "12-22"});
  const auto& o = observation(m, 0);
  CHECK(o.unit == "pmol/L");
  CHECK(o.canonical_unit == "ng/dL");
  CHECK(o.canonical_value == Approx(15 / 12.87));
  CHECK(o.ref_low == Approx(12 / 12.87));  // the sender's range, converted with the value
  CHECK(o.ref_high == Approx(22 / 12.87));

  const auto tsh = map_obx(Obx{.value = "3", .unit = "uIU/mL"});
  CHECK(observation(tsh, 0).unit == "uIU/mL");
  CHECK(observation(tsh, 0).canonical_value == 3.0);

  const auto bad = map_obx(Obx{.unit = "g/L"});
  CHECK(only_issue(bad).code == Hl7Error::table_value_not_found);
  CHECK(only_issue(bad).field == 6);
}

TEST_CASE("team-written: OBX-7 reference ranges on TSH (ref_low/ref_high)", "[ingest][hl7]") {
  struct Case {
    std::string range;
    std::optional<double> low, high;
    bool from_sender;
  };
  const std::vector<Case> cases = {
      {"0.4-4.0", 0.4, 4.0, true},
      {"0.4 - 4.0", 0.4, 4.0, true},
      {"4.3 to 6.2", 4.3, 6.2, true},
      {"70_105", 70.0, 105.0, true},
      {"<5", std::nullopt, 5.0, true},
      {"<=5", std::nullopt, 5.0, true},
      {">2", 2.0, std::nullopt, true},
      {">= 2", 2.0, std::nullopt, true},
      // Unreadable or absent: the concept's default range (rules/concepts.yaml: 0.3 to 4.2).
      {"junk", 0.3, 4.2, false},
      {"normal", 0.3, 4.2, false},
      {"4.0-0.4", 0.3, 4.2, false},
      {"0.4-", 0.3, 4.2, false},
      {"", 0.3, 4.2, false},
  };
  for (const auto& c : cases) {
    INFO("OBX-7 '" << c.range << "'");
    const auto m = map_obx(Obx{.range = c.range});
    const auto& o = observation(m, 0);
    CHECK(o.ref_low == c.low);
    CHECK(o.ref_high == c.high);
    CHECK(o.ref_from_sender == c.from_sender);
  }
}

TEST_CASE("team-written: OBX-11 result status", "[ingest][hl7]") {
  using S = core::ObservationStatus;
  for (auto [code, status] :
       {std::pair{"F", S::final}, std::pair{"U", S::final}, std::pair{"C", S::corrected},
        std::pair{"D", S::entered_in_error}, std::pair{"W", S::entered_in_error}, std::pair{"P", S::preliminary},
        std::pair{"I", S::preliminary}, std::pair{"S", S::preliminary}, std::pair{"R", S::preliminary}}) {
    INFO("OBX-11 " << code);
    const auto m = map_obx(Obx{.status = code});
    CHECK(ack_of(m) == "AA");
    CHECK(observation(m, 0).status == status);
  }
  SECTION("D with no value retracts") {
    const auto m = map_obx(Obx{.value = "", .status = "D"});
    CHECK(observation(m, 0).status == S::entered_in_error);
    CHECK_FALSE(observation(m, 0).value);
  }
  SECTION("P or I with no value: skipped, not an error") {
    for (const char* code : {"P", "I"}) {
      const auto m = map_obx(Obx{.value = "", .status = code});
      CHECK(m.records.empty());
      CHECK(m.issues.empty());
      CHECK(m.ignored_results == 1);
      CHECK(ack_of(m) == "AA");
    }
  }
  SECTION("X, O and N: no result, skipped") {
    for (const char* code : {"X", "O", "N"}) {
      const auto m = map_obx(Obx{.status = code});
      CHECK(m.records.empty());
      CHECK(m.issues.empty());
      CHECK(m.ignored_results == 1);
    }
  }
  SECTION("empty: 101 at OBX-11") {
    const auto m = map_obx(Obx{.status = ""});
    CHECK(only_issue(m).field == 11);
    CHECK(only_issue(m).code == Hl7Error::required_field_missing);
    CHECK(ack_of(m) == "AE");
  }
  SECTION("not in table 0085: 103 at OBX-11") {
    const auto m = map_obx(Obx{.status = "Q"});
    CHECK(only_issue(m).field == 11);
    CHECK(only_issue(m).code == Hl7Error::table_value_not_found);
  }
}

TEST_CASE("team-written: OBX-14, else OBR-7; the zone, else the default offset", "[ingest][hl7]") {
  const auto both = map_text(team_oru(
      {Obx{.sub_id = "1", .time = "20260301083000+0100"}, Obx{.sub_id = "2", .time = ""}}, "202603010700-0500"));
  REQUIRE(both.records.size() == 2);
  CHECK(observation(both, 0).time == core::EventTime{utc("2026-03-01T08:30:00+01:00"), 60});
  CHECK(observation(both, 1).time == core::EventTime{utc("2026-03-01T07:00:00-05:00"), -300});

  Hl7Options options;
  options.zone = core::TimeZone::fixed(120);
  const auto local = map_obx(Obx{.time = "20260301083000"}, options);
  CHECK(observation(local, 0).time == core::EventTime{utc("2026-03-01T08:30:00+02:00"), 120});
  // A zone in the message wins over the default.
  const auto zoned = map_obx(Obx{.time = "20260301083000-0330"}, options);
  CHECK(observation(zoned, 0).time == core::EventTime{utc("2026-03-01T08:30:00-03:30"), -210});

  const auto neither = map_text(team_oru({Obx{.time = ""}}, ""));
  CHECK(only_issue(neither).field == 14);
  CHECK(only_issue(neither).code == Hl7Error::required_field_missing);

  const auto bad = map_obx(Obx{.time = "2026-03-01"});
  CHECK(only_issue(bad).field == 14);
  CHECK(only_issue(bad).code == Hl7Error::data_type);
}

// When OBX-14 is empty and OBR-7 is bad, the ERR points at the OBR's field 7 (ERR-2 "OBR^1^7"),
// not at OBX-7 (the reference range); the OBX is what is not used, kept as rejected input.
TEST_CASE("team-written: a bad OBR-7 used for an OBX is reported at OBR-7", "[ingest][hl7]") {
  const auto m = map_text(team_oru({Obx{.time = ""}}, "not-a-time"));
  const auto& issue = only_issue(m);
  CHECK(issue.code == Hl7Error::data_type);
  CHECK(issue.message.starts_with("OBR-7"));
  CHECK(issue.segment_id == "OBR");
  CHECK(issue.field == 7);
  REQUIRE(issue.unused_segment);
  CHECK(*issue.unused_segment == issue.segment_index + 1);  // the OBX right after its OBR
}

TEST_CASE("team-written: OBX-3 codes: LOINC in the alternate triplet, local codes", "[ingest][hl7]") {
  SECTION("a local primary with LOINC in the alternate triplet maps by the LOINC") {
    const auto m = map_obx(Obx{.code = "TSHX^TSH local^99LAB^3016-3^TSH^LN"});
    const auto& o = observation(m, 0);
    CHECK(o.code == core::Code{kLoinc, "3016-3"});
    CHECK(o.concept_name == "tsh");
    CHECK(o.id == "ONCO|FL-1|3016-3|");
  }
  SECTION("a primary with no coding system and LOINC in the alternate") {
    const auto m = map_obx(Obx{.code = "TSHX^TSH local^^11580-8^TSH^LN"});
    CHECK(observation(m, 0).code == core::Code{kLoinc, "11580-8"});
    CHECK(observation(m, 0).concept_name == "tsh");
  }
  SECTION("LOINC primary wins over another alternate") {
    const auto m = map_obx(Obx{.code = "3016-3^TSH^LN^TSHX^TSH local^99LAB"});
    CHECK(observation(m, 0).code == core::Code{kLoinc, "3016-3"});
  }
  SECTION("no coding system: a local code, never a concept name") {
    const auto m = map_obx(Obx{.code = "tsh^TSH"});
    CHECK(observation(m, 0).code == core::Code{"local", "tsh"});
    CHECK(observation(m, 0).concept_name.empty());
  }
  SECTION("an unknown system name is kept as it is, unmapped") {
    const auto m = map_obx(Obx{.code = "3016-3^TSH^99LAB"});
    CHECK(observation(m, 0).code == core::Code{"99LAB", "3016-3"});
    CHECK(observation(m, 0).concept_name.empty());
  }
  SECTION("empty OBX-3: 101") {
    const auto m = map_obx(Obx{.code = ""});
    CHECK(only_issue(m).field == 3);
    CHECK(only_issue(m).code == Hl7Error::required_field_missing);
  }
  SECTION("OBX-4 sub-id is part of the identity") {
    CHECK(observation(map_obx(Obx{.sub_id = "2"}), 0).id == "ONCO|FL-1|3016-3|2");
  }
}

TEST_CASE("team-written: OBR order numbers and segment order", "[ingest][hl7]") {
  const std::string head = "MSH|^~\\&|LAB|ONCO|IRAEWATCH|ONCO|20260301||ORU^R01|T-2|P|2.5.1\rPID|1||T-100^^^ONCO^MR\r";
  const std::string obx = Obx{}.segment(1) + "\r";
  SECTION("OBR-3 empty: OBR-2 identifies") {
    const auto m = map_text(head + "OBR|1|PL-7||24348-5^Thyroid^LN|||20260301\r" + obx);
    CHECK(observation(m, 0).id == "ONCO|PL-7|3016-3|");
  }
  SECTION("neither: the OBR and its OBX are refused (101)") {
    const auto m = map_text(head + "OBR|1|||24348-5^Thyroid^LN|||20260301\r" + obx);
    CHECK(m.records.empty());
    REQUIRE(m.issues.size() == 2);
    CHECK(m.issues[0].segment_id == "OBR");
    CHECK(m.issues[1].segment_id == "OBX");
    for (const auto& i : m.issues) CHECK(i.code == Hl7Error::required_field_missing);
  }
  SECTION("an OBX before any OBR: 100") {
    const auto m = map_text(head + obx + "OBR|1|PL-1|FL-1|24348-5^Thyroid^LN|||20260301\r" + obx);
    REQUIRE(m.issues.size() == 1);
    CHECK(m.issues[0].code == Hl7Error::segment_sequence);
    CHECK(m.issues[0].segment_index == 2);
    CHECK(m.records.size() == 1);
  }
  SECTION("no PID: 100") {
    const auto m = map_text(
        "MSH|^~\\&|LAB|ONCO|IRAEWATCH|ONCO|20260301||ORU^R01|T-3|P|2.5.1\r"
        "OBR|1|PL-1|FL-1|24348-5^Thyroid^LN|||20260301\r" +
        obx);
    REQUIRE(m.rejection);
    CHECK(m.rejection->code == Hl7Error::segment_sequence);
  }
}

// ORU^R01 allows several PATIENT_RESULT groups, each with its own PID: each result belongs to
// the patient of its own group, or is refused; it never goes to another patient.
TEST_CASE("team-written: an ORU^R01 with two patients never gives one patient's results to the other",
          "[ingest][hl7]") {
  const std::string text =
      "MSH|^~\\&|LAB|ONCO|IRAEWATCH|ONCO|20260301||ORU^R01^ORU_R01|T-MULTI|P|2.5.1\r"
      "PID|1||PAT-A^^^ONCO^MR\r"
      "OBR|1|PL-A|ORD-A|24348-5^Thyroid^LN|||20260301080000+0100\r" +
      Obx{.value = "2.0"}.segment(1) +
      "\r"
      "PID|2||PAT-B^^^ONCO^MR\r"
      "OBR|1|PL-B|ORD-B|24348-5^Thyroid^LN|||20260301080000+0100\r" +
      Obx{.value = "9.0"}.segment(1) + "\r";
  const auto m = map_text(text);
  for (const auto& r : m.records) {
    INFO(core::record_id(r));
    if (core::record_id(r).find("|ORD-B|") != std::string::npos) CHECK(core::record_patient(r) == "PAT-B");
    if (core::record_id(r).find("|ORD-A|") != std::string::npos) CHECK(core::record_patient(r) == "PAT-A");
  }
}

TEST_CASE("team-written: PID-3 identifier type and assigning authority", "[ingest][hl7]") {
  SECTION("MR among other types, wherever it repeats") {
    const auto m = map_text(team_oru({Obx{}}, "20260301", "X1^^^ONCO^PI~M7^^^ONCO^MR~S9^^^SSA^SS"));
    CHECK(m.patient == "M7");
    CHECK(observation(m, 0).patient == "M7");
  }
  SECTION("no MR: AR 101 at PID-3, nothing mapped") {
    const auto m = map_text(team_oru({Obx{}}, "20260301", "X1^^^ONCO^PI~S9^^^SSA^SS"));
    REQUIRE(m.rejection);
    CHECK(m.rejection->code == Hl7Error::required_field_missing);
    CHECK(m.rejection->segment_id == "PID");
    CHECK(m.rejection->field == 3);
    CHECK(m.records.empty());
    CHECK(ack_of(m) == "AR");
  }
  SECTION("an MR with an empty id is skipped") {
    const auto m = map_text(team_oru({Obx{}}, "20260301", "^^^ONCO^MR~M8^^^ONCO^MR"));
    CHECK(m.patient == "M8");
  }
  SECTION("the configured authority picks among several MR") {
    Hl7Options options;
    options.assigning_authority = "ONCO";
    const auto m = map_text(team_oru({Obx{}}, "20260301", "M1^^^OTHER^MR~M2^^^ONCO&1.2.3&ISO^MR"), options);
    CHECK(m.patient == "M2");
    const auto none = map_text(team_oru({Obx{}}, "20260301", "M1^^^OTHER^MR"), options);
    REQUIRE(none.rejection);
    CHECK(none.rejection->message.find("from authority ONCO") != std::string::npos);
  }
  SECTION("other configured types") {
    Hl7Options options;
    options.identifier_types = {"PI"};
    const auto m = map_text(team_oru({Obx{}}, "20260301", "M1^^^ONCO^MR~P1^^^ONCO^PI"), options);
    CHECK(m.patient == "P1");
  }
  SECTION("the configured feed is the records' feed") {
    Hl7Options options;
    options.feed = "hl7-lab";
    const auto m = map_obx(Obx{}, options);
    CHECK(observation(m, 0).provenance.feed == "hl7-lab");
  }
}

TEST_CASE("team-written: MSH refusals (types, events, versions, control id)", "[ingest][hl7]") {
  auto msh = [](const std::string& type, const std::string& control, const std::string& version,
                const std::string& msh15 = "") {
    return "MSH|^~\\&|LAB|ONCO|IRAEWATCH|ONCO|20260301||" + type + "|" + control + "|P|" + version + "|||" + msh15 +
           "\rPID|1||T-1^^^ONCO^MR\r";
  };
  struct Case {
    std::string text;
    Hl7Error code;
    int field;
    std::string ack;
  };
  const std::vector<Case> cases = {
      {msh("ORU^R03", "C1", "2.5.1"), Hl7Error::unsupported_event, 9, "AR"},
      {msh("ORU", "C1", "2.5.1"), Hl7Error::unsupported_event, 9, "AR"},
      {msh("ADT^A01^ADT_A01", "C1", "2.5.1"), Hl7Error::unsupported_event, 9, "AR"},
      {msh("RAS^O18", "C1", "2.5.1", "AL"), Hl7Error::unsupported_event, 9, "CR"},
      {msh("VXU^V04^VXU_V04", "C1", "2.5.1"), Hl7Error::unsupported_message_type, 9, "AR"},
      {msh("ACK^R01", "C1", "2.5.1"), Hl7Error::unsupported_message_type, 9, "AR"},
      {msh("ORU^R01", "", "2.5.1"), Hl7Error::required_field_missing, 10, "AR"},
      {msh("ORU^R01", "  ", "2.5.1"), Hl7Error::required_field_missing, 10, "AR"},
      {msh("ORU^R01", "C1", ""), Hl7Error::required_field_missing, 12, "AR"},
      {msh("", "C1", "2.5.1"), Hl7Error::required_field_missing, 9, "AR"},
      {msh("ORU^R01", "C1", "2.2"), Hl7Error::unsupported_version, 12, "AR"},
      {msh("ORU^R01", "C1", "2.9"), Hl7Error::unsupported_version, 12, "AR"},
      {msh("ORU^R01", "C1", "3.0", "AL"), Hl7Error::unsupported_version, 12, "CR"},
      {msh("ORU^R01", std::string(300, 'x'), "2.5.1"), Hl7Error::data_type, 10, "AR"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    const auto m = map_text(c.text);
    REQUIRE(m.rejection);
    CHECK(m.rejection->code == c.code);
    CHECK(m.rejection->segment_id == "MSH");
    CHECK(m.rejection->field == c.field);
    CHECK(ack_of(m) == c.ack);
    CHECK(m.records.empty());
  }
  // Every listed version is accepted, with or without more MSH-12 components.
  for (const char* v :
       {"2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8", "2.8.1", "2.8.2", "2.5.1^USA"}) {
    INFO(v);
    CHECK_FALSE(map_text(msh("ADT^A08", "C1", v)).rejection);
  }
}

// --- parse_hl7_time ----------------------------------------------------------------------------------

TEST_CASE("parse_hl7_time: precisions, fractions and zones", "[ingest][hl7]") {
  using ingest::parse_hl7_time;
  auto at = [](std::string_view dtm, std::int32_t offset = 0) {
    auto t = parse_hl7_time(dtm, core::TimeZone::fixed(offset));
    if (!t) FAIL(t.error().message);
    return *t;
  };
  CHECK(at("20260301") == core::EventTime{utc("2026-03-01T00:00:00Z"), 0});
  CHECK(at("2026030114") == core::EventTime{utc("2026-03-01T14:00:00Z"), 0});
  CHECK(at("202603011430") == core::EventTime{utc("2026-03-01T14:30:00Z"), 0});
  CHECK(at("20260301143015") == core::EventTime{utc("2026-03-01T14:30:15Z"), 0});
  CHECK(at("20260301143015.1").utc_ms == utc("2026-03-01T14:30:15.100Z"));
  CHECK(at("20260301143015.123").utc_ms == utc("2026-03-01T14:30:15.123Z"));
  CHECK(at("20260301143015.1239").utc_ms == utc("2026-03-01T14:30:15.123Z"));  // beyond ms: truncated
  CHECK(at("20260301143015+0100") == core::EventTime{utc("2026-03-01T14:30:15+01:00"), 60});
  CHECK(at("20260301143015-0530") == core::EventTime{utc("2026-03-01T14:30:15-05:30"), -330});
  CHECK(at("20260301143015.5-0700") == core::EventTime{utc("2026-03-01T14:30:15.500-07:00"), -420});
  CHECK(at("20260301+0200") == core::EventTime{utc("2026-03-01T00:00:00+02:00"), 120});
  CHECK(at(" 20260301 ") == core::EventTime{utc("2026-03-01T00:00:00Z"), 0});
  // The default offset, only for times without their own.
  CHECK(at("202603011430", 60) == core::EventTime{utc("2026-03-01T14:30:00+01:00"), 60});
  CHECK(at("202603011430", -300) == core::EventTime{utc("2026-03-01T14:30:00-05:00"), -300});
  CHECK(at("202603011430+0000", 60) == core::EventTime{utc("2026-03-01T14:30:00Z"), 0});
  // Leap days.
  CHECK(at("20240229").utc_ms == utc("2024-02-29T00:00:00Z"));
  CHECK(at("20000229").utc_ms == utc("2000-02-29T00:00:00Z"));
  CHECK(at("20261231235959").utc_ms == utc("2026-12-31T23:59:59Z"));
}

TEST_CASE("parse_hl7_time: a time without an offset is local to the hospital's zone, summer time included",
          "[ingest][hl7]") {
  auto london = core::TimeZone::from_tzif(
      "Europe/London",
      testing::read_file(std::string(IRAEWATCH_SOURCE_DIR) + "/tests/data/third_party/tzdata/Europe-London.tzif"));
  REQUIRE(london);
  auto at = [&](std::string_view dtm) {
    auto t = ingest::parse_hl7_time(dtm, *london);
    if (!t) FAIL(t.error().message);
    return *t;
  };
  CHECK(at("202601151430") == core::EventTime{utc("2026-01-15T14:30:00Z"), 0});
  CHECK(at("202607151430") == core::EventTime{utc("2026-07-15T14:30:00+01:00"), 60});
  // Its own offset wins.
  CHECK(at("202607151430+0000") == core::EventTime{utc("2026-07-15T14:30:00Z"), 0});
  // The hour repeated when clocks go back: the first (summer time) one.
  CHECK(at("202610250130") == core::EventTime{utc("2026-10-25T01:30:00+01:00"), 60});
}

TEST_CASE("parse_hl7_time: what is not a date/time", "[ingest][hl7]") {
  // YYYY and YYYYMM are valid DTM precisions, but an event time needs at least a day: refused.
  for (const char* bad : {"",
                          "abc",
                          "2026",
                          "202603",
                          "2026030",
                          "202603011",
                          "2026-03-01",
                          "20260301T1200",
                          "20261301",
                          "20260001",
                          "20260100",
                          "20260132",
                          "20260431",
                          "20260230",
                          "20260229",
                          "21000229",
                          "2026030124",
                          "202603011260",
                          "20260301125961",
                          "2026030112.5",
                          "20260301120000.5x",
                          "20260301+01",
                          "20260301+010",
                          "20260301+2400",
                          "20260301+0160",
                          "20260301+01a0",
                          "2026030112000000",
                          "-20260301"}) {
    INFO("'" << bad << "'");
    const auto t = ingest::parse_hl7_time(bad, core::TimeZone());
    REQUIRE_FALSE(t);
    CHECK(t.error().code == core::ErrorCode::invalid_time);
  }
}

// --- ACKs --------------------------------------------------------------------------------------------

TEST_CASE("ack_code, ack_kind and describe", "[ingest][hl7]") {
  CHECK(ingest::ack_code(AckKind::accept, false) == "AA");
  CHECK(ingest::ack_code(AckKind::error, false) == "AE");
  CHECK(ingest::ack_code(AckKind::reject, false) == "AR");
  CHECK(ingest::ack_code(AckKind::accept, true) == "CA");
  CHECK(ingest::ack_code(AckKind::error, true) == "CE");
  CHECK(ingest::ack_code(AckKind::reject, true) == "CR");

  Hl7Mapped mapped;
  CHECK(ingest::ack_kind(mapped) == AckKind::accept);
  mapped.issues.push_back(Hl7Issue{});
  CHECK(ingest::ack_kind(mapped) == AckKind::error);
  mapped.rejection = Hl7Issue{};
  CHECK(ingest::ack_kind(mapped) == AckKind::reject);

  CHECK(ingest::describe(Hl7Error::segment_sequence) == "Segment sequence error");
  CHECK(ingest::describe(Hl7Error::required_field_missing) == "Required field missing");
  CHECK(ingest::describe(Hl7Error::data_type) == "Data type error");
  CHECK(ingest::describe(Hl7Error::table_value_not_found) == "Table value not found");
  CHECK(ingest::describe(Hl7Error::unsupported_message_type) == "Unsupported message type");
  CHECK(ingest::describe(Hl7Error::unsupported_event) == "Unsupported event code");
  CHECK(ingest::describe(Hl7Error::unsupported_processing_id) == "Unsupported processing id");
  CHECK(ingest::describe(Hl7Error::unsupported_version) == "Unsupported version id");
  CHECK(ingest::describe(Hl7Error::unknown_key) == "Unknown key identifier");
  CHECK(ingest::describe(Hl7Error::duplicate_key) == "Duplicate key identifier");
  CHECK(ingest::describe(Hl7Error::internal_error) == "Application internal error");
}

namespace {

ingest::AckHeader ack_header() {
  ingest::AckHeader h;
  h.facility = "ONCO";
  h.control_id = "ACK-1";
  h.now_ms = utc("2026-03-01T08:00:00.250Z");
  return h;
}

}  // namespace

TEST_CASE("build_ack: AA for the NIST case 1 message, parsed back", "[ingest][hl7]") {
  const auto text = messages_in(kSampleDir + "nist-elr-oru-r01-case1-nm-final.hl7").front();
  const auto message = parse(text);
  const std::string ack = ingest::build_ack(&message, AckKind::accept, false, {}, "", ack_header());
  CHECK(ack.find('\n') == std::string::npos);
  CHECK(ack.ends_with("\r"));
  const auto a = parse(ack);
  REQUIRE(a.segment_count() == 2);
  CHECK(a.segment_id(0) == "MSH");
  CHECK(a.raw(0, 2) == "^~\\&");
  CHECK(a.raw(0, 3) == "IRAEWATCH");
  CHECK(a.raw(0, 4) == "ONCO");
  // The sender's MSH-3 and MSH-4 come back as MSH-5 and MSH-6.
  CHECK(a.raw(0, 5) == message.raw(0, 3));
  CHECK(a.raw(0, 6) == message.raw(0, 4));
  CHECK(a.raw(0, 7) == "20260301080000+0000");
  CHECK(a.raw(0, 9) == "ACK^R01^ACK");
  CHECK(a.raw(0, 10) == "ACK-1");
  CHECK(a.raw(0, 11) == "P");
  CHECK(a.raw(0, 12) == "2.5.1");
  CHECK(a.segment_id(1) == "MSA");
  CHECK(a.raw(1, 1) == "AA");
  CHECK(a.raw(1, 2) == "NIST-100929110701660");
  CHECK(a.raw(1, 3).empty());
}

TEST_CASE("build_ack: AE with ERR segments (2.3 ERR-1 and 2.5 ERR-2..8 forms)", "[ingest][hl7]") {
  const auto text = team_oru({Obx{}, Obx{}, Obx{}});
  const auto message = parse(text);
  const std::vector<Hl7Issue> issues = {
      {"OBX", 3, 5, 0, Hl7Error::data_type, "OBX-5 is not a number although OBX-2 is NM"},
      {"OBX", 5, 6, 2, Hl7Error::table_value_not_found, "unit 'x' cannot be converted"},
  };
  const std::string ack =
      ingest::build_ack(&message, AckKind::error, false, issues, "2 segment(s) not used; see ERR", ack_header());
  const auto a = parse(ack);
  REQUIRE(a.segment_count() == 4);
  CHECK(a.raw(1, 1) == "AE");
  CHECK(a.raw(1, 2) == "TEAM-0001");
  CHECK(a.text(1, 3) == "2 segment(s) not used; see ERR");
  const auto errs = a.find("ERR");
  REQUIRE(errs.size() == 2);
  const auto e = errs[0];
  CHECK(a.raw(e, 1) == "OBX^1^5^102&Data type error&HL70357");
  CHECK(a.raw(e, 1, 0, 4, 1) == "102");
  CHECK(a.raw(e, 2) == "OBX^1^5");
  CHECK(a.raw(e, 3) == "102^Data type error^HL70357");
  CHECK(a.raw(e, 4) == "E");
  CHECK(a.text(e, 8) == "OBX-5 is not a number although OBX-2 is NM");
  // A component goes to ERL-5 (ERL-4 is the repetition).
  const auto f = errs[1];
  CHECK(a.raw(f, 2) == "OBX^3^6^^2");
  CHECK(a.raw(f, 2, 0, 5) == "2");
  CHECK(a.raw(f, 3, 0, 1) == "103");
  CHECK(a.raw(f, 3, 0, 2) == "Table value not found");
  CHECK(a.raw(f, 3, 0, 3) == "HL70357");
}

TEST_CASE("build_ack: enhanced mode codes and a message-level ERR (no field)", "[ingest][hl7]") {
  const auto message = parse(messages_in(kTeamDir + "ras-o17-by-name-and-not-given.hl7").front());
  REQUIRE(message.raw(0, 15) == "AL");
  for (auto [kind, code] :
       {std::pair{AckKind::accept, "CA"}, std::pair{AckKind::error, "CE"}, std::pair{AckKind::reject, "CR"}}) {
    const auto a = parse(kept(ingest::build_ack(&message, kind, true, {}, "", ack_header())));
    CHECK(a.raw(1, 1) == code);
    CHECK(a.raw(1, 2) == "RAS-0003");
    CHECK(a.raw(0, 9) == "ACK^O17^ACK");
  }
  const Hl7Issue whole{"MSH", 0, 0, 0, Hl7Error::internal_error, "not stored"};
  const auto a = parse(kept(ingest::build_ack(&message, AckKind::reject, true, {whole}, "", ack_header())));
  const auto e = a.next("ERR");
  REQUIRE(e < a.segment_count());
  CHECK(a.raw(e, 2) == "MSH^1");  // no field: no empty trailing part
  CHECK(a.raw(e, 3) == "207^Application internal error^HL70357");
}

TEST_CASE("build_ack: text and ERR messages with delimiters, CR and LF are escaped", "[ingest][hl7]") {
  const auto text = team_oru({Obx{}});
  const auto message = parse(text);
  const std::string nasty = "a|b^c~d\\e&f\rg\nh";
  const Hl7Issue issue{"OBX", 3, 5, 0, Hl7Error::data_type, nasty};
  const std::string ack = ingest::build_ack(&message, AckKind::error, false, {issue}, nasty, ack_header());
  const auto a = parse(ack);
  REQUIRE(a.segment_count() == 3);  // no segment was split by the CR or LF
  CHECK(a.text(1, 3) == nasty);
  CHECK(a.field_count(1) == 3);
  CHECK(a.text(2, 8) == nasty);
  // MSA-3 is cut to 80 characters.
  const auto long_text =
      parse(kept(ingest::build_ack(&message, AckKind::error, false, {}, std::string(200, 'y'), ack_header())));
  CHECK(long_text.text(1, 3) == std::string(80, 'y'));
}

TEST_CASE("build_ack: custom delimiters in the message are re-escaped for ours", "[ingest][hl7]") {
  // Team-written: '#' fields, '*' components; '^', '|' and '&' are plain text here.
  const std::string text =
      "MSH#*~\\&#APP^1*X#FAC|2#IRAE#ONCO#20260301##ORU*R01*ORU_R01#CTRL^1|&#P#2.5.1\r"
      "PID#1##T-1*M*ONCO*MR\r";
  const auto message = parse(text);
  REQUIRE(message.delimiters().field == '#');
  const auto a = parse(kept(ingest::build_ack(&message, AckKind::accept, false, {}, "", ack_header())));
  REQUIRE(a.segment_count() == 2);
  CHECK(a.delimiters().field == '|');
  CHECK(a.text(0, 5) == "APP^1");  // MSH-3.1 of the message
  CHECK(a.raw(0, 5) == "APP\\S\\1");
  CHECK(a.text(0, 6) == "FAC|2");
  CHECK(a.raw(0, 9) == "ACK^R01^ACK");
  CHECK(a.text(0, 11) == "P");
  CHECK(a.raw(1, 1) == "AA");
  CHECK(a.text(1, 2) == "CTRL^1|&");
  CHECK(a.field_count(1) == 2);
}

TEST_CASE("build_ack: MSH-2 '^~&' (no escape character) is echoed through our escapes", "[ingest][hl7]") {
  const auto message = parse(messages_in(kSampleDir + "elr-oru-r01-msh2-three-encoding-chars.hl7").front());
  REQUIRE(message.delimiters().escape == '\0');
  const auto a = parse(kept(ingest::build_ack(&message, AckKind::accept, true, {}, "", ack_header())));
  CHECK(a.raw(1, 1) == "CA");
  CHECK(a.raw(1, 2) == "1234567890");
  CHECK(a.text(0, 5) == "Lab1");
  CHECK(a.text(0, 11) == "P");
  CHECK(a.raw(0, 12) == "2.5.1");
}

TEST_CASE("build_ack: no message (unreadable) gives a parseable AR with an empty MSA-2", "[ingest][hl7]") {
  const Hl7Issue issue{"MSH", 0, 0, 0, Hl7Error::segment_sequence, "segment 8 ('||||'): not a segment"};
  const std::string ack =
      ingest::build_ack(nullptr, AckKind::reject, false, {issue}, "unreadable message", ack_header());
  const auto a = parse(ack);
  REQUIRE(a.segment_count() == 3);
  CHECK(a.raw(0, 5).empty());
  CHECK(a.raw(0, 6).empty());
  CHECK(a.raw(0, 9) == "ACK");
  CHECK(a.raw(0, 11) == "P");
  CHECK(a.raw(0, 12) == "2.5.1");
  CHECK(a.raw(1, 1) == "AR");
  CHECK(a.raw(1, 2).empty());
  CHECK(a.text(1, 3) == "unreadable message");
  CHECK(a.raw(2, 3, 0, 1) == "100");
  CHECK(a.text(2, 8) == "segment 8 ('||||'): not a segment");
}

// ERL-2 (and ELD-2) "Segment Sequence" is the occurrence of that segment id in the message: the
// 2nd OBX is OBX^2, whatever comes before it (HL7 v2.5.1 ERL; NIST's v2+ notes: "if the referenced
// element is OBX in field position 5, that means it is the 5th OBX segment in the message").
TEST_CASE("build_ack: ERR-2 counts the segment's occurrence among segments with its id", "[ingest][hl7]") {
  const auto text = messages_in(kTeamDir + "oru-r01-one-bad-obx.hl7").front();
  const auto message = parse(text);
  const auto mapped = Hl7Mapper(concepts(), {}).map(message, kReceived);
  REQUIRE(mapped.issues.size() == 1);
  const auto a = parse(kept(ingest::build_ack(&message, AckKind::error, false, mapped.issues, "", ack_header())));
  const auto e = a.next("ERR");
  REQUIRE(e < a.segment_count());
  CHECK(a.raw(e, 2) == "OBX^2^6");
  CHECK(a.raw(e, 1, 0, 2) == "2");
}
