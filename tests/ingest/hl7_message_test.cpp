#include <catch2/catch.hpp>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>

#include "iraewatch/ingest/hl7_message.hpp"
#include "support/daemon.hpp"

using namespace iraewatch;
using namespace std::string_literals;
using ingest::hl7::Delimiters;
using ingest::hl7::Message;
using ingest::hl7::Position;

namespace {

const std::string kSampleDir = std::string(IRAEWATCH_SOURCE_DIR) + "/tests/data/third_party/hl7v2/";
constexpr std::string_view kMalformedSample = "oru-r03-empty-segments-malformed.hl7";

// The third-party files are read once and kept: Message and split_messages() return views into
// the text, which must outlive them.
const std::string& sample(const std::string& name) {
  static std::map<std::string, std::string> cache;
  auto it = cache.find(name);
  if (it == cache.end()) it = cache.emplace(name, testing::read_file(kSampleDir + name)).first;
  return it->second;
}

Message parse(std::string_view text) {
  auto m = Message::parse(text);
  if (!m) FAIL(m.error().message);
  return *m;
}

// A sample holding exactly one message.
Message parse_sample(const std::string& name) {
  INFO(name);
  auto messages = ingest::hl7::split_messages(sample(name));
  if (!messages) FAIL(messages.error().message);
  REQUIRE(messages->size() == 1);
  return parse(messages->front());
}

core::Error parse_error(std::string_view text) {
  auto m = Message::parse(text);
  REQUIRE_FALSE(m);
  CHECK(m.error().code == core::ErrorCode::invalid_input);
  return m.error();
}

std::size_t only(const Message& m, std::string_view id) {
  const auto found = m.find(id);
  REQUIRE(found.size() == 1);
  return found.front();
}

bool inside(std::string_view part, std::string_view whole) {
  if (part.empty()) return true;
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

// Reads every position of every segment, plus positions past the end: the result must always be a
// view into the message's own text.
void walk(const Message& m) {
  for (std::size_t s = 0; s < m.segment_count() + 2; ++s) {
    const int fields = m.field_count(s);
    for (int f = 0; f <= fields + 1; ++f) {
      const int reps = m.repetitions(s, f);
      for (int r = 0; r <= reps; ++r) {
        for (int c = 0; c <= 4; ++c) {
          for (int sc = 0; sc <= 3; ++sc) {
            // A plain test, not a Catch assertion: this runs millions of times.
            if (!inside(m.raw(s, f, r, c, sc), m.text())) FAIL("a view outside the message text");
            if (m.text(s, f, r, c, sc).size() > m.raw(s, f, r, c, sc).size()) FAIL("text() longer than raw()");
          }
        }
      }
    }
  }
}

}  // namespace

// --- Third-party samples (tests/data/third_party/hl7v2, see its README) --------------------------

TEST_CASE("every third-party sample splits into messages that parse", "[ingest]") {
  const std::map<std::string, std::size_t> expected_messages = {
      {"adt-a08-v28-update.hl7", 1},
      {"cerner-elr-oru-r01-lead.hl7", 1},
      {"elr-batch-fhs-bhs-2msgs.hl7", 2},
      {"elr-oru-r01-msh2-three-encoding-chars.hl7", 1},
      {"lab-oru-r01-prelim-incomplete.hl7", 1},
      {"nist-elr-oru-r01-case1-nm-final.hl7", 1},
      {"nist-elr-oru-r01-case3-nm-corrected.hl7", 1},
      {"nist-elr-oru-r01-case4-st-value.hl7", 1},
      {"nist-elr-oru-r01-case6-multi-obx.hl7", 1},
      {"nist-iz-vxu-v04-rxa.hl7", 1},
      {"nist-lri-oru-r01-cbc.hl7", 1},
      {"oru-r01-escape-repetition-stress.hl7", 1},
      {"oru-r01-v24-sn-value.hl7", 1},
      {"oru-r03-empty-segments-malformed.hl7", 1},
      {"oru-v22-multi-obr-tx-nte.hl7", 1},
      {"rds-o13-v28-pharmacy-dispense.hl7", 1},
  };
  // Every file in the folder is covered, and nothing listed is missing.
  std::set<std::string> on_disk;
  for (const auto& entry : std::filesystem::directory_iterator(kSampleDir))
    on_disk.insert(entry.path().filename().string());
  std::set<std::string> listed;
  for (const auto& [name, count] : expected_messages) listed.insert(name);
  REQUIRE(on_disk == listed);

  for (const auto& [name, count] : expected_messages) {
    INFO(name);
    auto messages = ingest::hl7::split_messages(sample(name));
    REQUIRE(messages);
    REQUIRE(messages->size() == count);
    if (name == kMalformedSample) continue;  // rejected on purpose, see its own test
    for (const auto text : *messages) {
      CHECK(text.starts_with("MSH"));
      auto m = Message::parse(text);
      if (!m) FAIL(m.error().message);
      CHECK(m->segment_id(0) == "MSH");
      CHECK(m->raw(0, 1) == "|");
      CHECK_FALSE(m->raw(0, 9).empty());
      for (std::size_t s = 0; s < m->segment_count(); ++s) {
        CHECK(m->segment(s).find_first_of("\r\n") == std::string_view::npos);
        CHECK(m->segment(s).size() >= 3);
      }
      walk(*m);
    }
  }
}

TEST_CASE("MSH-9 and MSH-12 of several samples", "[ingest]") {
  struct Expected {
    std::string file, msh9, version;
  };
  for (const auto& e : {Expected{"nist-elr-oru-r01-case1-nm-final.hl7", "ORU^R01^ORU_R01", "2.5.1"},
                        Expected{"adt-a08-v28-update.hl7", "ADT^A08^ADT_A08", "2.8"},
                        Expected{"nist-iz-vxu-v04-rxa.hl7", "VXU^V04^VXU_V04", "2.5.1"},
                        Expected{"rds-o13-v28-pharmacy-dispense.hl7", "RDS^O13^RDS_O13", "2.8"},
                        Expected{"oru-r01-v24-sn-value.hl7", "ORU^R01", "2.4"},
                        Expected{"lab-oru-r01-prelim-incomplete.hl7", "ORU^R01", "2.5"},
                        Expected{"oru-v22-multi-obr-tx-nte.hl7", "ORU", "2.2"}}) {
    INFO(e.file);
    const auto m = parse_sample(e.file);
    CHECK(m.raw(0, 9) == e.msh9);
    CHECK(m.raw(0, 12) == e.version);
  }
  const auto adt = parse_sample("adt-a08-v28-update.hl7");
  CHECK(adt.raw(0, 9, 0, 1) == "ADT");
  CHECK(adt.raw(0, 9, 0, 2) == "A08");
  CHECK(adt.raw(0, 9, 0, 3) == "ADT_A08");
  CHECK(adt.raw(0, 9, 0, 4).empty());
  CHECK(adt.raw(0, 10) == "MSG00001");
  // v2.2 sends the message type without a trigger event.
  const auto v22 = parse_sample("oru-v22-multi-obr-tx-nte.hl7");
  CHECK(v22.raw(0, 9, 0, 1) == "ORU");
  CHECK(v22.raw(0, 9, 0, 2).empty());
}

TEST_CASE("NIST ELR case 1: NM value 50 ug/dL, final, observed with a time zone", "[ingest]") {
  const auto m = parse_sample("nist-elr-oru-r01-case1-nm-final.hl7");
  CHECK(m.text().find('\n') == std::string_view::npos);  // CR segment ends
  CHECK(m.segment_count() == 7);
  const auto obx = only(m, "OBX");
  CHECK(m.raw(obx, 2) == "NM");
  CHECK(m.raw(obx, 3) == "10368-9^Lead BldC-mCnc^LN");
  CHECK(m.raw(obx, 3, 0, 1) == "10368-9");
  CHECK(m.raw(obx, 3, 0, 3) == "LN");
  CHECK(m.raw(obx, 5) == "50");
  CHECK(m.raw(obx, 6, 0, 1) == "ug/dL");
  CHECK(m.raw(obx, 6, 0, 2) == "micro-gram per deci-liter");
  CHECK(m.raw(obx, 6, 0, 3) == "UCUM");
  CHECK(m.raw(obx, 7) == "<9 mcg/dL:  Acceptable background lead exposure");
  CHECK(m.raw(obx, 8) == "H");
  CHECK(m.raw(obx, 11) == "F");
  CHECK(m.raw(obx, 14) == "200808151030-0700");
  CHECK(m.raw(obx, 19) == "200808181800-0700");
  CHECK(m.raw(obx, 23, 0, 6, 1) == "CLIA");
  CHECK(m.raw(obx, 23, 0, 6, 2) == "2.16.840.1.113883.19.4.6");
  const auto pid = only(m, "PID");
  CHECK(m.raw(pid, 3, 0, 1) == "9817566735");
  CHECK(m.raw(pid, 3, 0, 5) == "MR");
  CHECK(m.raw(pid, 3, 0, 4, 1) == "MPI");
}

TEST_CASE("NIST ELR case 3 corrects case 1: OBX-11 C, value 25", "[ingest]") {
  const auto m = parse_sample("nist-elr-oru-r01-case3-nm-corrected.hl7");
  const auto obx = only(m, "OBX");
  CHECK(m.raw(obx, 11) == "C");
  CHECK(m.raw(obx, 5) == "25");
  CHECK(m.raw(obx, 3, 0, 1) == "10368-9");
  CHECK(m.raw(only(m, "OBR"), 3, 0, 1) == "9700123");
  CHECK(m.raw(only(m, "OBR"), 25) == "C");
  CHECK(m.repetitions(only(m, "OBR"), 31) == 3);
  CHECK(m.raw(only(m, "OBR"), 31, 2, 2) == "Abdominal pain");
}

TEST_CASE("NIST ELR cases 4 and 6: ST values, three OBX with the same set id", "[ingest]") {
  const auto case4 = parse_sample("nist-elr-oru-r01-case4-st-value.hl7");
  const auto obx4 = only(case4, "OBX");
  CHECK(case4.raw(obx4, 2) == "ST");
  CHECK(case4.raw(obx4, 5) == "Isolated");
  CHECK(case4.raw(obx4, 6).empty());
  // A quoted reason that is not the null value "".
  const auto obr4 = only(case4, "OBR");
  CHECK(case4.raw(obr4, 13) == "\"Fever, cough, diarrhea \"");
  CHECK_FALSE(case4.is_null({obr4, 13}));

  const auto case6 = parse_sample("nist-elr-oru-r01-case6-multi-obx.hl7");
  const auto obx = case6.find("OBX");
  REQUIRE(obx.size() == 3);
  for (const auto i : obx) CHECK(case6.raw(i, 1) == "1");
  CHECK(case6.raw(obx[2], 5) == "Not Isolated");
  CHECK(case6.next("OBX") == obx[0]);
  CHECK(case6.next("OBX", obx[0] + 1) == obx[1]);
  CHECK(case6.next("OBX", obx[2] + 1) == case6.segment_count());
  CHECK(case6.next("ZZZ") == case6.segment_count());
}

TEST_CASE("the FHS/BHS batch gives two messages; the second has MSH-2 ^~&", "[ingest]") {
  const auto& file = sample("elr-batch-fhs-bhs-2msgs.hl7");
  auto messages = ingest::hl7::split_messages(file);
  REQUIRE(messages);
  REQUIRE(messages->size() == 2);
  for (const auto text : *messages) {
    CHECK(text.starts_with("MSH|"));
    for (const auto* envelope : {"FHS", "BHS", "BTS", "FTS"}) CHECK(text.find(envelope) == std::string_view::npos);
  }
  CHECK(inside((*messages)[0], file));
  CHECK((*messages)[1].data() == (*messages)[0].data() + (*messages)[0].size());

  const auto first = parse((*messages)[0]);
  CHECK(first.raw(0, 2) == "^~\\&");
  CHECK(first.delimiters().escape == '\\');
  CHECK(first.segment_count() == 12);
  const auto first_obx = first.find("OBX");
  REQUIRE(first_obx.size() == 2);
  CHECK(first.raw(first_obx[0], 2) == "CWE");
  CHECK(first.raw(first_obx[0], 5, 0, 2) == "Campylobacter jejuni");
  CHECK(first.raw(first_obx[0], 11) == "P");
  CHECK(first.raw(first_obx[1], 2) == "NM");
  CHECK(first.raw(first_obx[1], 5) == "50");
  CHECK(first.raw(first_obx[1], 11) == "F");

  const auto second = parse((*messages)[1]);
  CHECK(second.raw(0, 2) == "^~&");
  CHECK(second.delimiters().component == '^');
  CHECK(second.delimiters().repetition == '~');
  CHECK(second.delimiters().escape == '\0');
  CHECK(second.delimiters().subcomponent == '&');
  CHECK(second.raw(0, 9) == "ORU^R01^ORU_R01");
  CHECK(second.raw(0, 4, 0, 2) == "1234");
  CHECK(second.segment_count() == 7);
  const auto pid = only(second, "PID");
  CHECK(second.raw(pid, 3, 0, 4, 1) == "MPI");
  CHECK(second.raw(pid, 3, 0, 4, 3) == "ISO");
  CHECK(second.raw(pid, 7) == "20050602");
}

TEST_CASE("MSH-2 with three encoding characters (^~&): '&' is the subcomponent separator", "[ingest]") {
  const auto m = parse_sample("elr-oru-r01-msh2-three-encoding-chars.hl7");
  CHECK(m.raw(0, 2) == "^~&");
  CHECK(m.delimiters().escape == '\0');
  CHECK(m.delimiters().subcomponent == '&');
  const auto pid = only(m, "PID");
  CHECK(m.repetitions(pid, 3) == 2);
  CHECK(m.raw(pid, 3, 0, 1) == "36363636");
  CHECK(m.raw(pid, 3, 0, 4, 1) == "MPI");
  CHECK(m.raw(pid, 3, 0, 4, 2) == "2.16.840.1.113883.19.3.2.1");
  CHECK(m.raw(pid, 3, 0, 5) == "MR");
  CHECK(m.raw(pid, 3, 1, 1) == "444333333");
  // The sender wrote "^ISO^SS" where "&ISO^SS" was meant: the type lands in CX-6, not CX-5.
  CHECK(m.raw(pid, 3, 1, 4, 2) == "2.16.840.1.113883.4.1");
  CHECK(m.raw(pid, 3, 1, 5) == "ISO");
  CHECK(m.raw(pid, 3, 1, 6) == "SS");
  const auto obx = only(m, "OBX");
  CHECK(m.raw(obx, 5) == "50");
  CHECK(m.raw(obx, 6, 0, 1) == "ug/dL");
  // With no escape character, text() changes nothing.
  CHECK(m.text(obx, 7) == "<10 ug/dL");
}

TEST_CASE("escape/repetition stress sample: \\T\\, 27~25, subcomponents, OBX-11 statuses", "[ingest]") {
  const auto m = parse_sample("oru-r01-escape-repetition-stress.hl7");
  CHECK(m.text().find('\r') == std::string_view::npos);  // LF segment ends

  const auto nte = m.find("NTE");
  REQUIRE(nte.size() == 4);
  CHECK(m.raw(nte[0], 3).find("O157:H7 \\T\\ other STECs") != std::string_view::npos);
  CHECK(m.text(nte[0], 3) ==
        "Enteric culture includes testing for Salmonella, Shigella, Campylobacter, Yersinia, E.coli O157:H7 & other "
        "STECs, and Aeromonas");
  // \T\ decodes to the subcomponent separator but does not split the value.
  CHECK(m.raw(nte[0], 3, 0, 1, 2).empty());

  const auto pv1 = only(m, "PV1");
  CHECK(m.text(pv1, 14) == "NHS Provider-General (inc.A&E-this Hosp)");

  const auto obx = m.find("OBX");
  REQUIRE(obx.size() == 5);
  CHECK(m.raw(obx[4], 2) == "NM");
  CHECK(m.segment(obx[4]).ends_with("|27~25||||||I"));
  CHECK(m.repetitions(obx[4], 5) == 2);
  CHECK(m.raw(obx[4], 5, 0) == "27");
  CHECK(m.raw(obx[4], 5, 1) == "25");
  CHECK(m.raw(obx[4], 5, 2).empty());
  CHECK(m.raw(obx[4], 11) == "I");

  std::vector<std::string> statuses;
  for (const auto i : obx) statuses.emplace_back(m.raw(i, 11));
  CHECK(statuses == std::vector<std::string>{"F", "", "P", "O", "I"});
  CHECK(m.field_count(obx[1]) == 6);  // "OBX||ED|||App5^NS^Octet-stream^Base64|": OBX-11 absent
  CHECK(m.raw(obx[1], 2) == "ED");
  CHECK(m.raw(obx[1], 5, 0, 4) == "Base64");
  CHECK(m.raw(obx[3], 2) == "RP");
  CHECK(m.raw(obx[3], 5, 0, 1) == "https://testurl.com");

  const auto tq1 = only(m, "TQ1");
  CHECK(m.raw(tq1, 2) == "54^&lbs");
  CHECK(m.raw(tq1, 2, 0, 2, 1).empty());
  CHECK(m.raw(tq1, 2, 0, 2, 2) == "lbs");
  CHECK(m.raw(tq1, 3, 0, 1, 1) == "P");
  CHECK(m.raw(tq1, 3, 0, 1, 2) == "Post (after)");
  CHECK(m.raw(tq1, 3, 0, 1, 3) == "HL70335");
  CHECK(m.raw(tq1, 3, 0, 1, 4).empty());
  CHECK(m.repetitions(tq1, 4) == 2);
  CHECK(m.raw(tq1, 4, 1) == "11:45:05");

  const auto obr = only(m, "OBR");
  CHECK(m.raw(obr, 9, 0, 2, 3) == "ANSI+");
  CHECK(m.raw(obr, 10, 0, 2, 1) == "van Beethoven");
  CHECK(m.raw(obr, 10, 0, 2, 2) == "van");

  const auto pid = only(m, "PID");
  CHECK(m.repetitions(pid, 3) == 1);
  CHECK(m.raw(pid, 3, 0, 5) == "PI");
  CHECK(m.repetitions(pid, 10) == 2);
  CHECK(m.raw(pid, 10, 1, 1) == "1002-5");
}

TEST_CASE("SN value ^182 (v2.4)", "[ingest]") {
  const auto m = parse_sample("oru-r01-v24-sn-value.hl7");
  REQUIRE(m.segment_count() == 4);
  const auto obx = only(m, "OBX");
  CHECK(m.raw(obx, 2) == "SN");
  CHECK(m.raw(obx, 5) == "^182");
  CHECK(m.raw(obx, 5, 0, 1).empty());
  CHECK(m.raw(obx, 5, 0, 2) == "182");
  CHECK(m.raw(obx, 6) == "mg/dl");
  CHECK(m.raw(obx, 7) == "70_105");
  CHECK(m.raw(obx, 3, 0, 1) == "1554-5");
  CHECK(m.raw(obx, 3, 0, 3) == "POST 12H CFST:MCNC:PT:SER/PLAS:QN");
  CHECK(m.raw(obx, 11) == "F");
  CHECK(m.raw(only(m, "PID"), 3) == "555-44-4444");
}

TEST_CASE("ADT^A08 v2.8: repeated PID-3 identifiers", "[ingest]") {
  const auto m = parse_sample("adt-a08-v28-update.hl7");
  CHECK(m.segment_count() == 24);
  const auto pid = only(m, "PID");
  REQUIRE(m.repetitions(pid, 3) == 2);
  CHECK(m.raw(pid, 3, 0, 1) == "PATID1234");
  CHECK(m.raw(pid, 3, 0, 4) == "test1&2.16.1&HCD");
  CHECK(m.raw(pid, 3, 0, 4, 1) == "test1");
  CHECK(m.raw(pid, 3, 0, 4, 2) == "2.16.1");
  CHECK(m.raw(pid, 3, 0, 4, 3) == "HCD");
  CHECK(m.raw(pid, 3, 0, 5) == "MR");
  CHECK(m.raw(pid, 3, 1) == "123456789^^^USSSA^SS");
  CHECK(m.raw(pid, 3, 1, 1) == "123456789");
  CHECK(m.raw(pid, 3, 1, 4) == "USSSA");
  CHECK(m.raw(pid, 3, 1, 5) == "SS");
  CHECK(m.raw(pid, 3, 2).empty());
  CHECK(m.raw(pid, 5, 0, 1, 1) == "EVERYMAN");
  CHECK(m.raw(pid, 5, 0, 1, 5) == "Aniston");
  CHECK(m.raw(pid, 5, 1, 1, 1) == "Josh");
  CHECK(m.raw(pid, 7) == "198808181126+0215");
  const auto obx = only(m, "OBX");
  CHECK(m.repetitions(obx, 5) == 2);
  CHECK(m.raw(obx, 5) == "60");  // repetition 0
  CHECK(m.raw(obx, 5, 1) == "120");
  CHECK(m.raw(obx, 11) == "S");
  CHECK(m.raw(only(m, "EVN"), 1) == "A01");
}

TEST_CASE("other samples: Cerner trailing LF, BOM files, v2.2 groups, VXU RXA", "[ingest]") {
  const auto cerner = parse_sample("cerner-elr-oru-r01-lead.hl7");
  CHECK(cerner.segment_count() == 7);
  const auto cerner_obx = only(cerner, "OBX");
  CHECK(cerner.raw(cerner_obx, 7) == "^^10.000000");
  CHECK(cerner.raw(cerner_obx, 7, 0, 3) == "10.000000");
  CHECK(cerner.raw(cerner_obx, 6, 0, 2) == "Micrograms per Deciliter");
  CHECK(cerner.raw(cerner_obx, 24, 0, 7) == "B");  // the last field, just before the trailing LF

  const auto lab = parse_sample("lab-oru-r01-prelim-incomplete.hl7");
  CHECK(lab.text().starts_with("MSH|"));  // the BOM is gone
  CHECK(lab.find("OBR").size() == 2);
  const auto lab_obx = lab.find("OBX");
  REQUIRE(lab_obx.size() == 10);
  CHECK(lab.raw(lab_obx[0], 5).empty());
  CHECK(lab.raw(lab_obx[0], 11) == "I");
  CHECK(lab.raw(lab_obx[1], 5) == "4.06");
  CHECK(lab.raw(lab_obx[1], 6) == "tera.l-1");
  CHECK(lab.raw(lab_obx[1], 11) == "P");
  CHECK(lab.raw(lab_obx[4], 11) == "F");

  const auto cbc = parse_sample("nist-lri-oru-r01-cbc.hl7");
  CHECK(cbc.find("OBX").size() == 28);
  CHECK(cbc.raw(0, 21, 1).empty() == false);  // MSH-21 repeats

  const auto v22 = parse_sample("oru-v22-multi-obr-tx-nte.hl7");
  CHECK(v22.find("OBR").size() == 3);
  CHECK(v22.find("ORC").size() == 3);
  CHECK(v22.find("NTE").size() == 2);
  const auto v22_obx = v22.find("OBX");
  REQUIRE(v22_obx.size() == 9);
  CHECK(v22.raw(v22_obx[0], 1).empty());
  CHECK(v22.raw(v22_obx[0], 2) == "TX");
  CHECK(v22.raw(v22_obx[0], 5) == "This is a test on 05/02/94.");

  const auto vxu = parse_sample("nist-iz-vxu-v04-rxa.hl7");
  const auto rxa = vxu.find("RXA");
  REQUIRE(rxa.size() == 3);
  CHECK(vxu.raw(rxa[0], 3) == "20150624");
  CHECK(vxu.raw(rxa[0], 5) == "49281-0215-88^TENIVAC^NDC");
  CHECK(vxu.raw(rxa[0], 6) == "0.5");
  CHECK(vxu.raw(rxa[0], 7, 0, 3) == "UCUM");
  CHECK(vxu.raw(rxa[0], 20) == "CP");
  CHECK(vxu.raw(rxa[0], 21) == "A");
  CHECK(vxu.raw(rxa[1], 5, 0, 3) == "CVX");

  const auto rds = parse_sample("rds-o13-v28-pharmacy-dispense.hl7");
  CHECK(rds.find("RXA").empty());
  CHECK(rds.raw(only(rds, "RXD"), 2, 0, 2) == "Doxycycline");
}

TEST_CASE("the malformed sample (junk lines ||||, |, ||) is rejected with where and why", "[ingest]") {
  const auto& file = sample(std::string(kMalformedSample));
  auto messages = ingest::hl7::split_messages(file);
  REQUIRE(messages);
  REQUIRE(messages->size() == 1);
  const auto error = parse_error(messages->front());
  INFO(error.message);
  CHECK(error.message.find("segment 8") != std::string::npos);
  CHECK(error.message.find("'||||'") != std::string::npos);
  CHECK(error.message.find("not a segment") != std::string::npos);

  // The same text without the three junk lines parses: the lines holding only a vertical tab or a
  // space are blank and skipped, and the missing MSH-12 is simply empty. (A copy edited in memory,
  // for this test only.)
  std::string cleaned(messages->front());
  for (const std::string junk : {"||||\r", "|\r", "||\r"}) {
    const auto at = cleaned.find("\r" + junk);
    REQUIRE(at != std::string::npos);
    cleaned.erase(at + 1, junk.size());
  }
  const auto m = parse(cleaned);
  CHECK(m.segment_count() == 7);
  CHECK(m.raw(0, 9) == "ORU^R03");
  CHECK(m.raw(0, 12).empty());
  CHECK(m.field_count(0) == 10);
  CHECK(m.raw(m.find("OBX")[1], 3) == "EXAM^MICROSCOPIC");
}

// --- Team-written fixtures (inline, written by the iraewatch team for these tests) --------------

TEST_CASE("team-written: escape sequences \\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\Xhh\\ \\.br\\", "[ingest]") {
  const Delimiters d;
  CHECK(ingest::hl7::unescape(R"(a\F\b\S\c\T\d\R\e\E\f)", d) == "a|b^c&d~e\\f");
  CHECK(ingest::hl7::unescape(R"(\X0D0A\)", d) == "\r\n");
  CHECK(ingest::hl7::unescape(R"(caf\XC3A9\)", d) == "caf\xC3\xA9");
  CHECK(ingest::hl7::unescape(R"(\X00\)", d) == std::string(1, '\0'));
  CHECK(ingest::hl7::unescape(R"(line 1\.br\line 2)", d) == "line 1\nline 2");
  // Highlighting and character-set escapes are dropped.
  CHECK(ingest::hl7::unescape(R"(\H\bold\N\ text\C2842\)", d) == "bold text");
  CHECK(ingest::hl7::unescape(R"(a\Zlocal\b)", d) == "ab");
  // Malformed escapes are kept as they are.
  CHECK(ingest::hl7::unescape(R"(no closing \F)", d) == R"(no closing \F)");
  CHECK(ingest::hl7::unescape(R"(\X0\ \Xzz\ \\)", d) == R"(\X0\ \Xzz\ \\)");
  CHECK(ingest::hl7::unescape(R"(C:\dir\F\)", d) == R"(C:\dir|)");
  CHECK(ingest::hl7::unescape("\\", d).size() == 1);
  CHECK(ingest::hl7::unescape("", d).empty());

  // In a message: raw() keeps the escapes, text() resolves them, and escaped delimiters never split.
  const auto m = parse(
      "MSH|^~\\&|LAB||IRAE||20260301080000||ORU^R01|1|P|2.5.1\r"
      "NTE|1||Ratio 3\\S\\1 \\F\\ pipe \\R\\ tilde \\T\\ amp \\E\\ backslash\\.br\\next line \\X41\\\r");
  CHECK(m.raw(1, 3) == "Ratio 3\\S\\1 \\F\\ pipe \\R\\ tilde \\T\\ amp \\E\\ backslash\\.br\\next line \\X41\\");
  CHECK(m.text(1, 3) == "Ratio 3^1 | pipe ~ tilde & amp \\ backslash\nnext line A");
  CHECK(m.field_count(1) == 3);
  CHECK(m.repetitions(1, 3) == 1);
  CHECK(m.raw(1, 3, 0, 2).empty());
}

TEST_CASE("team-written: \"\" (delete the value) versus an empty field (not sent)", "[ingest]") {
  const auto m = parse("MSH|^~\\&|A||B||20260301||ADT^A08|1|P|2.5\rPID|1||MRN-1^^^H^MR||\"\"|||\"\"^x|\r");
  CHECK(m.is_null({1, 5}));
  CHECK(m.raw(1, 5) == "\"\"");
  CHECK_FALSE(m.is_null({1, 4}));
  CHECK(m.raw(1, 4).empty());
  CHECK(m.repetitions(1, 4) == 0);
  CHECK(m.repetitions(1, 5) == 1);
  CHECK(m.is_null({1, 8, 0, 1}));
  CHECK_FALSE(m.is_null({1, 8}));
  CHECK_FALSE(m.is_null({1, 30}));  // absent
  CHECK(m.field_count(1) == 9);     // the trailing separator opens an empty PID-9
  CHECK(m.raw(1, 9).empty());
}

TEST_CASE("team-written: CR, LF and CRLF segment ends, blank lines, a BOM", "[ingest]") {
  const std::string body[] = {"MSH|^~\\&|A||B||20260301||ORU^R01|1|P|2.5.1", "PID|1||MRN-1^^^H^MR",
                              "OBX|1|NM|3016-3^TSH^LN||5.1|uIU/mL|||||F"};
  for (const std::string eol : {"\r", "\n", "\r\n"}) {
    INFO(eol.size());
    const std::string text = "\xEF\xBB\xBF" + body[0] + eol + eol + body[1] + eol + "  \t" + eol + body[2] + eol + eol;
    const auto m = parse(text);
    REQUIRE(m.segment_count() == 3);
    CHECK(m.text().starts_with("MSH|"));
    CHECK(m.segment(2) == body[2]);
    CHECK(m.raw(2, 5) == "5.1");
    CHECK(m.raw(2, 11) == "F");
    const std::string twice = text + text;  // joined with its BOM, as `cat a b` would
    auto split = ingest::hl7::split_messages(twice);
    REQUIRE(split);
    CHECK(split->size() == 2);
  }
  // Mixed ends in one message.
  const std::string mixed_text = body[0] + "\r\n" + body[1] + "\n" + body[2];
  const auto mixed = parse(mixed_text);
  CHECK(mixed.segment_count() == 3);
  CHECK(mixed.raw(2, 6) == "uIU/mL");
}

TEST_CASE("team-written: custom delimiters MSH#$*@!", "[ingest]") {
  const auto m = parse(
      "MSH#$*@!#LAB$FAC##IRAE##20260301080000##ORU$R01#1#P#2.5.1\r"
      "OBX#1#NM#3016-3$TSH$LN##4.2*4.4#uIU/mL#0.4-4.0 @F@ range @S@ and ! sub#");
  const auto& d = m.delimiters();
  CHECK(d.field == '#');
  CHECK(d.component == '$');
  CHECK(d.repetition == '*');
  CHECK(d.escape == '@');
  CHECK(d.subcomponent == '!');
  CHECK(d.truncation == '\0');
  CHECK(m.raw(0, 1) == "#");
  CHECK(m.raw(0, 2) == "$*@!");
  CHECK(m.raw(0, 3, 0, 2) == "FAC");
  CHECK(m.raw(0, 9, 0, 2) == "R01");
  CHECK(m.raw(0, 12) == "2.5.1");
  CHECK(m.raw(1, 3, 0, 1) == "3016-3");
  CHECK(m.repetitions(1, 5) == 2);
  CHECK(m.raw(1, 5, 1) == "4.4");
  CHECK(m.text(1, 7) == "0.4-4.0 # range $ and ! sub");
  CHECK(m.raw(1, 7, 0, 1, 2) == " sub");
  // '|', '^', '~', '&' and '\' are plain text here.
  const auto pipes = parse("MSH#$*@!#A|B^C~D&E\\F\r");
  CHECK(pipes.raw(0, 3) == "A|B^C~D&E\\F");
}

TEST_CASE("team-written: 2.7 truncation character in MSH-2 (^~\\&#)", "[ingest]") {
  const auto m =
      parse("MSH|^~\\&#|LAB||IRAE||20260301||ORU^R01^ORU_R01|1|P|2.7\rNTE|1||A long comment cut here#|x\\P\\y\r");
  CHECK(m.raw(0, 2) == "^~\\&#");
  CHECK(m.delimiters().truncation == '#');
  CHECK(m.delimiters().subcomponent == '&');
  CHECK(m.raw(1, 3) == "A long comment cut here#");  // not a delimiter: no split
  CHECK(m.raw(1, 3, 0, 1) == "A long comment cut here#");
  CHECK(m.text(1, 4) == "x#y");  // \P\ is the escaped truncation character
  CHECK(ingest::hl7::escape("50#", m.delimiters()) == "50\\P\\");
}

TEST_CASE("team-written: MSH numbering: MSH-1 is the separator, MSH-2 the encoding characters", "[ingest]") {
  const auto m = parse("MSH|^~\\&|SEND^FAC|X||Y|20260301||ORU^R01|42|P|2.5.1\r");
  CHECK(m.raw(0, 0) == "MSH");
  CHECK(m.raw(0, 1) == "|");
  CHECK(m.raw(0, 2) == "^~\\&");  // raw, not split on '^' or '~'
  CHECK(m.raw(0, 2, 0, 1) == "^~\\&");
  CHECK(m.raw(0, 2, 0, 2).empty());
  CHECK(m.raw(0, 2, 1).empty());
  CHECK(m.text(0, 2) == "^~\\&");
  CHECK(m.repetitions(0, 1) == 1);
  CHECK(m.repetitions(0, 2) == 1);
  CHECK(m.raw(0, 3) == "SEND^FAC");
  CHECK(m.raw(0, 3, 0, 2) == "FAC");
  CHECK(m.raw(0, 4) == "X");
  CHECK(m.raw(0, 9) == "ORU^R01");
  CHECK(m.raw(0, 10) == "42");
  CHECK(m.raw(0, 12) == "2.5.1");
  CHECK(m.raw(0, 13).empty());
  CHECK(m.field_count(0) == 12);
  CHECK(m.raw(Position{0, 10}) == m.raw(0, 10));

  const auto bare = parse("MSH|^~\\&");
  CHECK(bare.field_count(0) == 2);
  CHECK(bare.raw(0, 2) == "^~\\&");
  CHECK(bare.raw(0, 3).empty());

  const auto two = parse("MSH|^~|A^B~C\rPID|1|x&y");
  CHECK(two.delimiters().escape == '\0');
  CHECK(two.delimiters().subcomponent == '\0');
  CHECK(two.raw(0, 3, 1) == "C");
  CHECK(two.raw(1, 2, 0, 1, 1) == "x&y");  // no subcomponent separator defined
  CHECK(two.raw(1, 2, 0, 1, 2).empty());
  CHECK(two.text(1, 2) == "x&y");
}

TEST_CASE("team-written: positions far beyond what exists return empty, never crash", "[ingest]") {
  const auto m = parse("MSH|^~\\&|A||B||20260301||ORU^R01|1|P|2.5.1\rOBX|1|NM|x^y&z||5~6|u\r");
  CHECK(m.raw(1, INT_MAX).empty());
  CHECK(m.raw(0, INT_MAX).empty());
  CHECK(m.raw(1, 5, INT_MAX).empty());
  CHECK(m.raw(1, 3, 0, INT_MAX).empty());
  CHECK(m.raw(1, 3, 0, 2, INT_MAX).empty());
  CHECK(m.raw(1, -1).empty());
  CHECK(m.raw(1, 5, -1).empty());
  CHECK(m.raw(1, 3, 0, -2).empty());
  CHECK(m.raw(1, 3, 0, 2, -3).empty());
  CHECK(m.raw(0, 1, 0, 0, -1).empty());
  CHECK(m.raw(2, 1).empty());
  CHECK(m.raw(SIZE_MAX, 1).empty());
  CHECK(m.text(SIZE_MAX, 1).empty());
  CHECK(m.repetitions(SIZE_MAX, 1) == 0);
  CHECK(m.repetitions(1, INT_MAX) == 0);
  CHECK(m.repetitions(1, -5) == 0);
  CHECK(m.field_count(SIZE_MAX) == 0);
  CHECK_FALSE(m.is_null({SIZE_MAX, INT_MAX, INT_MAX, INT_MAX, INT_MAX}));
  CHECK(m.next("OBX", SIZE_MAX) == m.segment_count());
  // A subcomponent without a component is read from the first component.
  CHECK(m.raw(1, 3, 0, 0, 1) == "x");
  CHECK(m.raw(1, 3, 0, 2, 2) == "z");
  CHECK(m.raw(1, 0) == "OBX");
  CHECK(m.raw(1, 0, 0, 2).empty());
}

TEST_CASE("team-written: clear errors for unusable text", "[ingest]") {
  struct Bad {
    std::string text;
    std::string says;
  };
  for (const auto& bad : {
           Bad{"", "empty message"},
           Bad{"\r\n\r\n  \n", "empty message"},
           Bad{"\xEF\xBB\xBF", "empty message"},
           Bad{"MSH", "too short to carry its delimiters"},
           Bad{"MSH|", "MSH-2 has 0 encoding character(s)"},
           Bad{"MSH|^", "MSH-2 has 1 encoding character(s)"},
           Bad{"MSH|^|A", "MSH-2 has 1 encoding character(s)"},
           Bad{"MSH|^~\\&#$|A", "MSH-2 has 6 encoding character(s)"},
           Bad{"MSH|^^\\&|A", "'^' is used twice"},
           Bad{"MSH|^~^|A", "'^' is used twice"},
           Bad{"MSH||^~\\&", "MSH-2 has 0 encoding character(s)"},
           Bad{"MSH|^|~\\&", "MSH-2 has 1 encoding character(s)"},
           Bad{"MSHA^~\\&", "field separator 'A'"},
           Bad{std::string("MSH\0^~\\&", 8), "field separator byte 0x00"},
           Bad{"MSH ^~\\&", "field separator byte 0x20"},
           Bad{"MSH|^~\\a|", "encoding character 'a'"},
           Bad{std::string("MSH|^~\0&|", 9), "encoding character byte 0x00"},
           Bad{"PID|1||x", "segment 1 ('PID|1||x') is not MSH"},
           Bad{"FHS|^~\\&\rMSH|^~\\&", "batch header (FHS)"},
           Bad{"MSH|^~\\&|A\rpid|1", "segment 2 ('pid|1'): not a segment"},
           Bad{"MSH|^~\\&|A\rPID1|1", "segment 2 ('PID1|1'): not a segment"},
           Bad{"MSH|^~\\&|A\rPI|1", "segment 2 ('PI|1')"},
           Bad{"MSH|^~\\&|A\rPID|1\rOBX^1", "segment 3 ('OBX^1')"},
           Bad{"MSH|^~\\&|A\rPID|1\rMSH|^~\\&|B", "segment 3 (MSH): a second MSH"},
           Bad{"MSH|^~\\&|A\rPID|1\rBTS|1", "segment 3 (BTS): a batch envelope segment"},
       }) {
    INFO(bad.text);
    const auto error = parse_error(bad.text);
    INFO(error.message);
    CHECK(error.message.find(bad.says) != std::string::npos);
  }
  // A long junk line is cut in the message.
  const auto long_junk = parse_error("MSH|^~\\&\r" + std::string(5000, 'x'));
  CHECK(long_junk.message.size() < 300);
}

TEST_CASE("team-written: escape() round trip through unescape()", "[ingest]") {
  const Delimiters standard;
  const Delimiters truncating{'|', '^', '~', '\\', '&', '#'};
  const Delimiters custom{'#', '$', '*', '@', '!', '\0'};
  CHECK(ingest::hl7::escape("a|b^c~d\\e&f\r\ng", standard) == "a\\F\\b\\S\\c\\R\\d\\E\\e\\T\\f\\X0D\\\\X0A\\g");
  CHECK(ingest::hl7::escape("plain text", standard) == "plain text");
  CHECK(ingest::hl7::escape("#", standard) == "#");

  std::mt19937 rng(20260301);
  const std::string alphabet = std::string("ab |^~\\&#$*@!\r\nX0.H") + '\0';
  for (int i = 0; i < 2000; ++i) {
    std::string text;
    const auto length = rng() % 40;
    for (std::size_t j = 0; j < length; ++j) text += alphabet[rng() % alphabet.size()];
    for (const auto* d : {&standard, &truncating, &custom}) {
      const auto escaped = ingest::hl7::escape(text, *d);
      INFO(text);
      INFO(escaped);
      CHECK(ingest::hl7::unescape(escaped, *d) == text);
      for (char c : {d->field, d->component, d->repetition, d->subcomponent, '\r', '\n'})
        CHECK(escaped.find(c) == std::string::npos);
    }
  }
  // The escaped text survives a trip through a real message.
  const std::string awkward = "5 | 6 ^ 7 ~ 8 & 9 \\ 10\r\nend";
  const std::string ack =
      "MSH|^~\\&|A||B||20260301||ACK^R01|1|P|2.5.1\rMSA|AE|1|" + ingest::hl7::escape(awkward, standard);
  const auto m = parse(ack);
  CHECK(m.segment_count() == 2);
  CHECK(m.field_count(1) == 3);
  CHECK(m.text(1, 3) == awkward);
}

TEST_CASE("team-written: split_messages with leading junk, envelopes, CRLF and a BOM", "[ingest]") {
  const std::string file =
      "\xEF\xBB\xBF"
      "# exported 2026-03-01\r\n"
      "FHS|^~\\&|LAB\r\n"
      "BHS|^~\\&|LAB\r\n"
      "MSH|^~\\&|LAB||IRAE||20260301||ORU^R01|1|P|2.5.1\r\n"
      "PID|1||A\r\n"
      "\r\n"
      "MSH|^~\\&|LAB||IRAE||20260301||ORU^R01|2|P|2.5.1\r\n"
      "PID|1||B\r\n"
      "BTS|2\r\n"
      "FTS|1\r\n";
  auto messages = ingest::hl7::split_messages(file);
  REQUIRE(messages);
  REQUIRE(messages->size() == 2);
  CHECK((*messages)[0] == "MSH|^~\\&|LAB||IRAE||20260301||ORU^R01|1|P|2.5.1\r\nPID|1||A\r\n\r\n");
  CHECK((*messages)[1] == "MSH|^~\\&|LAB||IRAE||20260301||ORU^R01|2|P|2.5.1\r\nPID|1||B\r\n");
  CHECK(parse((*messages)[1]).raw(0, 10) == "2");

  // Concatenated messages without an envelope; "MSHX" is not an MSH.
  auto plain = ingest::hl7::split_messages("MSH|^~\\&|A\rMSHX|1\rMSH|^~\\&|B\nMSH|^~\\&|C");
  REQUIRE(plain);
  REQUIRE(plain->size() == 3);
  CHECK((*plain)[0] == "MSH|^~\\&|A\rMSHX|1\r");
  CHECK((*plain)[2] == "MSH|^~\\&|C");

  for (const std::string none :
       {"", "\xEF\xBB\xBF", "\r\n\r\n", "FHS|^~\\&\rBHS|^~\\&\rBTS|0\rFTS|1", "PID|1|| MSH|"}) {
    INFO(none);
    auto r = ingest::hl7::split_messages(none);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == core::ErrorCode::invalid_input);
    CHECK(r.error().message.find("no MSH segment") != std::string::npos);
  }
}

TEST_CASE("team-written: fuzzing: random bytes and damaged samples never crash", "[ingest]") {
  std::mt19937 rng(7);
  // Every field of every segment, then random positions, some far beyond what exists.
  const auto probe = [&rng](const Message& m) {
    for (std::size_t s = 0; s < m.segment_count(); ++s) {
      for (int f = 0; f <= m.field_count(s); ++f) {
        if (!inside(m.raw(s, f), m.text())) FAIL("a view outside the message text");
        if (m.repetitions(s, f) < 0) FAIL("negative repetition count");
      }
    }
    const int edges[] = {-1, 0, 1, 2, 3, 9, 1000, INT_MAX};
    for (int k = 0; k < 64; ++k) {
      const Position at{rng() % (m.segment_count() + 2), edges[rng() % 8], edges[rng() % 8] % 4, edges[rng() % 8],
                        edges[rng() % 8]};
      if (!inside(m.raw(at), m.text())) FAIL("a view outside the message text");
      if (m.text(at).size() > m.raw(at).size()) FAIL("text() longer than raw()");
    }
  };
  const auto check_any = [&probe](std::string_view text) {
    auto messages = ingest::hl7::split_messages(text);
    std::vector<std::string_view> inputs = {text};
    if (messages) inputs.insert(inputs.end(), messages->begin(), messages->end());
    for (const auto input : inputs) {
      auto m = Message::parse(input);
      if (!m) {
        REQUIRE_FALSE(m.error().message.empty());
        continue;
      }
      REQUIRE(m->segment_count() >= 1);
      REQUIRE(m->segment_id(0) == "MSH");
      probe(*m);
    }
  };

  std::vector<std::string> seeds;
  for (const auto& entry : std::filesystem::directory_iterator(kSampleDir))
    seeds.push_back(sample(entry.path().filename().string()));
  for (const std::string tiny : {"MSH", "MSH|", "MSH|^", "MSH|^~", "MSH|^~\\", "MSH|^~\\&", "MSH|^~\\&#", "MSH||||",
                                 "MSH|^~\\&|\\", "MSH|^~\\&|\\X", "MSH|^~\\&|\\X4", "MSH|^~\\&|~~~^^^&&&"})
    seeds.push_back(tiny);

  const std::string bytes = "|^~\\&#\r\n\0\x0B\x1C MSHOBXPID\"X0.br"s;
  for (int round = 0; round < 3000; ++round) {
    std::string text = seeds[rng() % seeds.size()];
    switch (rng() % 5) {
      case 0:  // truncated
        text.resize(rng() % (text.size() + 1));
        break;
      case 1:  // a few bytes changed to delimiters, line ends, NULs
        for (int k = 0; k < 8 && !text.empty(); ++k) text[rng() % text.size()] = bytes[rng() % bytes.size()];
        break;
      case 2:  // random bytes after an MSH with random encoding characters
        text = "MSH";
        for (std::size_t k = 0, n = rng() % 60; k < n; ++k) text += bytes[rng() % bytes.size()];
        break;
      case 3:  // fully random bytes
        text.clear();
        for (std::size_t k = 0, n = rng() % 80; k < n; ++k) text += static_cast<char>(rng() % 256);
        break;
      default:  // spliced: the head of one sample, the tail of another
      {
        const auto& other = seeds[rng() % seeds.size()];
        text = text.substr(0, rng() % (text.size() + 1)) + other.substr(rng() % (other.size() + 1));
      }
    }
    INFO(text);
    check_any(text);
    // unescape() on anything, with the standard and with a missing escape character.
    (void)ingest::hl7::unescape(text, Delimiters{});
    (void)ingest::hl7::unescape(text, Delimiters{'|', '^', '~', '\0', '\0', '\0'});
  }
}
