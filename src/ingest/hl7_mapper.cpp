#include "iraewatch/ingest/hl7_mapper.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "iraewatch/core/event_time.hpp"
#include "iraewatch/ingest/observation_mapping.hpp"

namespace iraewatch::ingest {
namespace {

using hl7::Message;

constexpr std::string_view kVersions[] = {"2.3", "2.3.1", "2.4", "2.5",   "2.5.1", "2.6",
                                          "2.7", "2.7.1", "2.8", "2.8.1", "2.8.2"};
constexpr std::size_t kMaxIdBytes = 256;
constexpr std::size_t kMaxTextBytes = 4096;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<double> parse_number(std::string_view s) {
  s = trim(s);
  if (s.empty()) return std::nullopt;
  if (s.front() == '+') s.remove_prefix(1);
  double v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

Hl7Issue issue(const Message& m, std::size_t seg, int field, int component, Hl7Error code, std::string message) {
  return Hl7Issue{std::string(m.segment_id(seg)), seg, field, component, code, std::move(message)};
}

// The best-effort reading of a reference range text: "3.5-5.1", "3.5 - 5.1", "4.3 to 6.2",
// "70_105", "<5", "<=5", ">2", ">= 2". Anything else gives no range (the raw text stays in the
// stored message).
std::pair<std::optional<double>, std::optional<double>> parse_range(std::string_view text) {
  text = trim(text);
  if (text.empty()) return {};
  if (text.starts_with("<=") || text.starts_with(">=")) {
    auto v = parse_number(text.substr(2));
    return text[0] == '<' ? std::pair{std::optional<double>{}, v} : std::pair{v, std::optional<double>{}};
  }
  if (text.starts_with("<") || text.starts_with(">")) {
    auto v = parse_number(text.substr(1));
    return text[0] == '<' ? std::pair{std::optional<double>{}, v} : std::pair{v, std::optional<double>{}};
  }
  for (std::string_view sep : {" to ", "_", " - ", "-"}) {
    // The first '-' after the first character: "-1-2" keeps its sign.
    const auto at = text.find(sep, sep == "-" ? 1 : 0);
    if (at == std::string_view::npos) continue;
    auto lo = parse_number(text.substr(0, at));
    auto hi = parse_number(text.substr(at + sep.size()));
    if (lo && hi && *lo <= *hi) return {lo, hi};
    return {};
  }
  return {};
}

// PID-3 or MRG-1: the identifier of the configured type (and authority).
std::string pick_identifier(const Message& m, std::size_t seg, int field, const Hl7Options& o) {
  for (int r = 0; r < m.repetitions(seg, field); ++r) {
    const auto type = m.raw(seg, field, r, 5);
    bool wanted = false;
    for (const auto& t : o.identifier_types) wanted = wanted || type == t;
    if (!wanted) continue;
    if (!o.assigning_authority.empty() && m.text(seg, field, r, 4, 1) != o.assigning_authority) continue;
    auto id = m.text(seg, field, r, 1);
    if (!trim(id).empty()) return std::string(trim(id));
  }
  return {};
}

std::string identifier_types_text(const Hl7Options& o) {
  std::string t;
  for (const auto& s : o.identifier_types) t += (t.empty() ? "" : "/") + s;
  return t;
}

struct Context {
  const Message& m;
  const core::ConceptMap& concepts;
  const Hl7Options& options;
  Hl7Mapped& out;
  core::Provenance provenance;
  std::string patient;  // the patient of the current PID group ("" when its PID-3 has no usable identifier)
};

// A PID segment starts a patient group: the results or doses after it are that patient's.
void enter_patient_group(Context& c, std::size_t seg) {
  c.patient = pick_identifier(c.m, seg, 3, c.options);
  if (c.patient.size() > kMaxIdBytes) c.patient.clear();
}

core::Code code_of(const Context& c, std::size_t seg, int field, int first_component) {
  const std::string code(trim(c.m.text(seg, field, 0, first_component)));
  const std::string system(trim(c.m.text(seg, field, 0, first_component + 2)));
  return core::Code{system.empty() ? "" : c.concepts.system_uri(system), code};
}

void map_obx(Context& c, std::size_t seg, const std::string& order_id, std::size_t obr_seg, std::string_view obr_time) {
  const Message& m = c.m;
  const std::string status_code(trim(m.raw(seg, 11)));
  core::Observation o;
  o.provenance = c.provenance;
  o.patient = c.patient;
  if (status_code == "X" || status_code == "O" || status_code == "N") {  // no result, order detail, not asked
    ++c.out.ignored_results;
    return;
  }
  if (status_code == "F" || status_code == "U") {
    o.status = core::ObservationStatus::final;
  } else if (status_code == "C") {
    o.status = core::ObservationStatus::corrected;
  } else if (status_code == "D" || status_code == "W") {
    o.status = core::ObservationStatus::entered_in_error;
  } else if (status_code == "P" || status_code == "I" || status_code == "S" || status_code == "R") {
    o.status = core::ObservationStatus::preliminary;
  } else if (status_code.empty()) {
    c.out.issues.push_back(issue(m, seg, 11, 0, Hl7Error::required_field_missing,
                                 "OBX-11 (result status) is empty: the result's finality is unknown"));
    return;
  } else {
    c.out.issues.push_back(issue(m, seg, 11, 0, Hl7Error::table_value_not_found,
                                 "OBX-11 result status '" + status_code.substr(0, 8) + "' is not in HL7 table 0085"));
    return;
  }

  // OBX-3: LOINC in the primary or the alternate triplet; otherwise the primary as sent.
  core::Code primary = code_of(c, seg, 3, 1), alternate = code_of(c, seg, 3, 4);
  if (alternate.system == "http://loinc.org" && primary.system != "http://loinc.org" && !alternate.code.empty())
    o.code = alternate;
  else
    o.code = primary;
  if (o.code.code.empty()) {
    c.out.issues.push_back(issue(m, seg, 3, 1, Hl7Error::required_field_missing, "OBX-3 (observation code) is empty"));
    return;
  }
  if (o.code.system.empty()) o.code.system = "local";  // no coding system named: a local code, never a concept name
  if (o.code.code.size() > kMaxIdBytes || o.code.system.size() > kMaxIdBytes) {
    c.out.issues.push_back(issue(m, seg, 3, 0, Hl7Error::data_type, "OBX-3 is too long"));
    return;
  }
  const bool no_value = trim(m.raw(seg, 5)).empty() || m.is_null(hl7::Position{seg, 5});
  if (no_value && o.status == core::ObservationStatus::preliminary) {
    ++c.out.ignored_results;  // "in the lab, no result yet": nothing to store, whatever its time
    return;
  }
  const std::string sub_id(trim(m.text(seg, 4)));
  o.id = c.out.sending_facility + "|" + order_id + "|" + o.code.code + "|" + sub_id;

  // Time: OBX-14, else OBR-7.
  const auto obx_time = trim(m.raw(seg, 14, 0, 1));
  const std::string_view when = obx_time.empty() ? obr_time : obx_time;
  if (when.empty()) {
    c.out.issues.push_back(
        issue(m, seg, 14, 0, Hl7Error::required_field_missing, "no observation time: OBX-14 and OBR-7 are empty"));
    return;
  }
  auto t = parse_hl7_time(when, c.options.zone);
  if (!t) {
    if (obx_time.empty()) {
      // The bad time is the OBR's: the ERR points there, and this OBX is what is not used.
      auto bad = issue(m, obr_seg, 7, 0, Hl7Error::data_type, "OBR-7 (used for this OBX): " + t.error().message);
      bad.unused_segment = seg;
      c.out.issues.push_back(std::move(bad));
    } else {
      c.out.issues.push_back(issue(m, seg, 14, 0, Hl7Error::data_type, "OBX-14: " + t.error().message));
    }
    return;
  }
  o.time = *t;

  // OBX-5 by OBX-2.
  const std::string type(trim(m.raw(seg, 2)));
  const auto value_raw = m.raw(seg, 5);
  const bool retraction = o.status == core::ObservationStatus::entered_in_error;
  if (trim(value_raw).empty() || m.is_null(hl7::Position{seg, 5})) {
    if (retraction) {
      // A deletion needs no value.
    } else if (o.status == core::ObservationStatus::preliminary) {
      ++c.out.ignored_results;  // "in the lab, no result yet"
      return;
    } else {
      c.out.issues.push_back(issue(m, seg, 5, 0, Hl7Error::required_field_missing, "OBX-5 (the value) is empty"));
      return;
    }
  } else if ((type == "NM" || type == "SN") && m.repetitions(seg, 5) > 1) {
    c.out.issues.push_back(
        issue(m, seg, 5, 0, Hl7Error::data_type, "OBX-5 repeats a numeric value: one result per OBX is expected"));
    return;
  } else if (type == "NM") {
    auto v = parse_number(m.text(seg, 5));
    if (!v) {
      c.out.issues.push_back(issue(m, seg, 5, 0, Hl7Error::data_type, "OBX-5 is not a number although OBX-2 is NM"));
      return;
    }
    o.value = v;
  } else if (type == "SN") {
    // comparator ^ num1 ^ separator ^ num2: "^182", ">^100"; a range or ratio is not one value.
    const std::string comparator(trim(m.text(seg, 5, 0, 1)));
    const std::string separator(trim(m.text(seg, 5, 0, 3)));
    auto v = parse_number(m.text(seg, 5, 0, 2));
    if (!v || !separator.empty() || !trim(m.raw(seg, 5, 0, 4)).empty() ||
        !(comparator.empty() || comparator == "=" || comparator == "<" || comparator == ">" || comparator == "<=" ||
          comparator == ">=")) {
      c.out.issues.push_back(issue(m, seg, 5, 0, Hl7Error::data_type,
                                   "OBX-5 structured numeric is not a single value (comparator^number)"));
      return;
    }
    o.value = v;  // "<0.01" and ">100" count as their bound
  } else if (type == "ST" || type == "TX" || type == "FT" || type == "CWE" || type == "CE" || type == "CNE" ||
             type == "CF") {
    std::string text = (type == "ST" || type == "TX" || type == "FT")
                           ? m.text(seg, 5)
                           : (m.text(seg, 5, 0, 2).empty() ? m.text(seg, 5, 0, 1) : m.text(seg, 5, 0, 2));
    if (text.size() > kMaxTextBytes) text.resize(kMaxTextBytes);
    o.text_value = std::move(text);
  } else {
    c.out.issues.push_back(
        issue(m, seg, 2, 0, Hl7Error::data_type,
              "OBX-2 value type '" + type.substr(0, 8) + "' is not supported (NM, SN, ST, TX, FT, CWE, CE, CNE, CF)"));
    return;
  }
  o.unit = std::string(trim(m.text(seg, 6, 0, 1)));
  auto [low, high] = parse_range(m.text(seg, 7));
  if (auto ok = map_to_concept(c.concepts, o, low, high, FieldNames{"OBX-5", "OBX-6", "OBX-7", "OBX-7"}); !ok) {
    const bool unit = ok.error().message.find("'OBX-6'") != std::string::npos;
    c.out.issues.push_back(
        issue(m, seg, unit ? 6 : 5, 0,
              ok.error().code == core::ErrorCode::unit_mismatch ? Hl7Error::table_value_not_found : Hl7Error::data_type,
              ok.error().message));
    return;
  }
  c.out.records.emplace_back(std::move(o));
}

void map_results(Context& c) {
  const Message& m = c.m;
  std::string order_id;
  std::string_view obr_time;
  std::size_t obr_seg = 0;
  bool have_obr = false;
  for (std::size_t seg = 1; seg < m.segment_count(); ++seg) {
    const auto id = m.segment_id(seg);
    if (id == "PID") {
      enter_patient_group(c, seg);
      have_obr = false;
      order_id.clear();
    } else if (id == "OBX" && c.patient.empty()) {
      c.out.issues.push_back(issue(m, seg, 0, 0, Hl7Error::required_field_missing,
                                   "this OBX's patient group has no PID-3 identifier of the configured type"));
    } else if (id == "OBR") {
      have_obr = true;
      obr_seg = seg;
      order_id = std::string(trim(m.text(seg, 3, 0, 1)));
      if (order_id.empty()) order_id = std::string(trim(m.text(seg, 2, 0, 1)));
      obr_time = trim(m.raw(seg, 7, 0, 1));
      if (order_id.empty())
        c.out.issues.push_back(issue(m, seg, 3, 0, Hl7Error::required_field_missing,
                                     "OBR-3 (filler order number) and OBR-2 are empty: results cannot be identified"));
    } else if (id == "OBX") {
      if (!have_obr) {
        c.out.issues.push_back(issue(m, seg, 0, 0, Hl7Error::segment_sequence, "OBX before any OBR"));
      } else if (order_id.empty()) {
        c.out.issues.push_back(issue(m, seg, 0, 0, Hl7Error::required_field_missing,
                                     "this OBX belongs to an OBR without an order number"));
      } else {
        map_obx(c, seg, order_id, obr_seg, obr_time);
      }
    }
  }
}

void map_administrations(Context& c) {
  const Message& m = c.m;
  std::string order_id;
  for (std::size_t seg = 1; seg < m.segment_count(); ++seg) {
    const auto id = m.segment_id(seg);
    if (id == "PID") {
      enter_patient_group(c, seg);
      order_id.clear();
      continue;
    }
    if (id == "RXA" && c.patient.empty()) {
      c.out.issues.push_back(issue(m, seg, 0, 0, Hl7Error::required_field_missing,
                                   "this RXA's patient group has no PID-3 identifier of the configured type"));
      continue;
    }
    if (id == "ORC") {
      order_id = std::string(trim(m.text(seg, 3, 0, 1)));
      if (order_id.empty()) order_id = std::string(trim(m.text(seg, 2, 0, 1)));
      continue;
    }
    if (id != "RXA") continue;
    if (order_id.empty()) {
      c.out.issues.push_back(issue(m, seg, 0, 0, Hl7Error::required_field_missing,
                                   "no ORC-3 or ORC-2 order number before this RXA: it cannot be identified"));
      continue;
    }
    core::MedicationAdministration a;
    a.provenance = c.provenance;
    a.patient = c.patient;
    // RXA-5: a code any triplet names, else the name.
    const core::Drug* drug = nullptr;
    for (int first : {1, 4}) {
      core::Code code = code_of(c, seg, 5, first);
      if (code.code.empty()) continue;
      if (!code.system.empty()) {
        if (const auto* d = c.concepts.find_drug(code)) {
          drug = d;
          a.drug = code;
          break;
        }
      }
      if (a.drug.code.empty()) a.drug = code.system.empty() ? core::Code{"local", code.code} : code;
    }
    if (!drug) {
      for (int name_at : {2, 5}) {
        const std::string name(trim(m.text(seg, 5, 0, name_at)));
        if (name.empty()) continue;
        if (const auto* d = c.concepts.find_drug(core::Code{"", name})) {
          drug = d;
          if (a.drug.code.empty()) a.drug = core::Code{"", name};
          break;
        }
      }
    }
    if (a.drug.code.empty()) {
      c.out.issues.push_back(
          issue(m, seg, 5, 0, Hl7Error::required_field_missing, "RXA-5 (administered code) is empty"));
      continue;
    }
    if (drug) {
      a.ici = drug->inn;
      a.ici_class = drug->drug_class;
    }
    const auto when = trim(m.raw(seg, 3, 0, 1));
    if (when.empty()) {
      c.out.issues.push_back(
          issue(m, seg, 3, 0, Hl7Error::required_field_missing, "RXA-3 (administration start) is empty"));
      continue;
    }
    auto t = parse_hl7_time(when, c.options.zone);
    if (!t) {
      c.out.issues.push_back(issue(m, seg, 3, 0, Hl7Error::data_type, "RXA-3: " + t.error().message));
      continue;
    }
    a.time = *t;
    const std::string completion(trim(m.raw(seg, 20)));
    if (completion.empty() || completion == "CP" || completion == "PA") {
      a.status = core::MedicationStatus::completed;  // a partial dose is still exposure
    } else if (completion == "NA" || completion == "RE") {
      a.status = core::MedicationStatus::not_done;
    } else {
      c.out.issues.push_back(
          issue(m, seg, 20, 0, Hl7Error::table_value_not_found,
                "RXA-20 completion status '" + completion.substr(0, 8) + "' is not in HL7 table 0322"));
      continue;
    }
    const std::string action(trim(m.raw(seg, 21)));
    if (action == "D") {
      a.status = core::MedicationStatus::entered_in_error;
    } else if (!(action.empty() || action == "A" || action == "U")) {
      c.out.issues.push_back(issue(m, seg, 21, 0, Hl7Error::table_value_not_found,
                                   "RXA-21 action code '" + action.substr(0, 8) + "' is not A, U or D"));
      continue;
    }
    a.id = c.out.sending_facility + "|" + order_id + "|" + std::string(trim(m.text(seg, 2)));
    c.out.records.emplace_back(std::move(a));
  }
}

}  // namespace

core::Result<core::EventTime> parse_hl7_time(std::string_view dtm, const core::TimeZone& zone) {
  dtm = trim(dtm);
  auto bad = [&](const char* why) {
    return core::fail(core::ErrorCode::invalid_time,
                      "'" + std::string(dtm.substr(0, 32)) + "' is not an HL7 date/time (" + why + ")");
  };
  std::size_t zone_at = dtm.find_first_of("+-");
  std::string_view digits = dtm.substr(0, zone_at);
  std::string_view offset_text = zone_at == std::string_view::npos ? std::string_view{} : dtm.substr(zone_at);
  std::string_view fraction;
  if (auto dot = digits.find('.'); dot != std::string_view::npos) {
    fraction = digits.substr(dot + 1);
    digits = digits.substr(0, dot);
    if (digits.size() != 14) return bad("a fraction needs seconds");
  }
  if (digits.size() < 8 || digits.size() > 14 || digits.size() % 2 != 0) return bad("needs YYYYMMDD[HH[MM[SS]]]");
  for (char ch : digits)
    if (ch < '0' || ch > '9') return bad("not digits");
  for (char ch : fraction)
    if (ch < '0' || ch > '9') return bad("bad fraction");
  auto num = [&](std::size_t at, std::size_t n) {
    int v = 0;
    for (std::size_t i = 0; i < n; ++i) v = v * 10 + (digits[at + i] - '0');
    return v;
  };
  const int year = num(0, 4), month = num(4, 2), day = num(6, 2);
  const int hour = digits.size() >= 10 ? num(8, 2) : 0;
  const int minute = digits.size() >= 12 ? num(10, 2) : 0;
  const int second = digits.size() >= 14 ? num(12, 2) : 0;
  static constexpr int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12 || day < 1 || day > kDays[month - 1] || hour > 23 || minute > 59 || second > 60)
    return bad("out of range");
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (month == 2 && day == 29 && !leap) return bad("out of range");
  int ms = 0;
  for (std::size_t i = 0; i < 3; ++i) ms = ms * 10 + (i < fraction.size() ? fraction[i] - '0' : 0);
  const std::int64_t days = core::days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  const std::int64_t local_ms =
      ((days * 24 + hour) * 60 + minute) * 60'000LL + static_cast<std::int64_t>(std::min(second, 59)) * 1000 + ms;
  if (offset_text.empty()) {
    const auto instant = zone.from_local(local_ms);
    return core::EventTime{instant.utc_ms, instant.offset_min};
  }
  if (offset_text.size() != 5) return bad("zone must be +HHMM or -HHMM");
  for (char ch : offset_text.substr(1))
    if (ch < '0' || ch > '9') return bad("zone must be +HHMM or -HHMM");
  const int zh = (offset_text[1] - '0') * 10 + (offset_text[2] - '0'),
            zm = (offset_text[3] - '0') * 10 + (offset_text[4] - '0');
  if (zh > 14 || zm > 59) return bad("zone out of range");
  const std::int32_t offset = (offset_text[0] == '-' ? -1 : 1) * (zh * 60 + zm);
  return core::EventTime{local_ms - static_cast<std::int64_t>(offset) * 60'000, offset};
}

std::string located(const Hl7Issue& issue) {
  if (issue.message.starts_with(issue.segment_id + "-")) return issue.message;
  return issue.segment_id + "-" + std::to_string(issue.field) + ": " + issue.message;
}

Hl7Mapper::Hl7Mapper(const core::ConceptMap& concepts, Hl7Options options)
    : concepts_(&concepts), options_(std::move(options)) {}

Hl7Mapped Hl7Mapper::map(const Message& m, std::int64_t received_ms) const {
  Hl7Mapped out;
  const std::string type(trim(m.raw(0, 9, 0, 1))), trigger(trim(m.raw(0, 9, 0, 2)));
  out.message_type = trigger.empty() ? type : type + "^" + trigger;
  out.control_id = std::string(trim(m.text(0, 10)));
  out.sending_application = std::string(trim(m.text(0, 3, 0, 1)));
  out.sending_facility = std::string(trim(m.text(0, 4, 0, 1)));
  out.version = std::string(trim(m.raw(0, 12, 0, 1)));
  out.enhanced_ack = !trim(m.raw(0, 15)).empty();
  auto refuse = [&](int field, int component, Hl7Error code, std::string message) {
    out.rejection = issue(m, 0, field, component, code, std::move(message));
    return out;
  };
  if (out.control_id.empty())
    return refuse(10, 0, Hl7Error::required_field_missing, "MSH-10 (message control id) is empty");
  if (out.control_id.size() > kMaxIdBytes) return refuse(10, 0, Hl7Error::data_type, "MSH-10 is too long");
  if (type.empty()) return refuse(9, 1, Hl7Error::required_field_missing, "MSH-9 (message type) is empty");
  if (out.version.empty()) return refuse(12, 0, Hl7Error::required_field_missing, "MSH-12 (version id) is empty");
  bool known_version = false;
  for (auto v : kVersions) known_version = known_version || out.version == v;
  if (!known_version)
    return refuse(12, 0, Hl7Error::unsupported_version,
                  "version " + out.version.substr(0, 16) + " is not supported (2.3 to 2.8)");
  if (out.sending_facility.size() > kMaxIdBytes || out.sending_application.size() > kMaxIdBytes)
    return refuse(4, 0, Hl7Error::data_type, "MSH-3 or MSH-4 is too long");
  // MSH-11.1: training (T) or debugging (D) messages are not patient data, unless configured.
  std::string processing(trim(m.raw(0, 11, 0, 1)));
  if (processing.empty()) processing = "P";
  if (std::find(options_.processing_ids.begin(), options_.processing_ids.end(), processing) ==
      options_.processing_ids.end()) {
    std::string accepted;
    for (const auto& id : options_.processing_ids) accepted += (accepted.empty() ? "" : ", ") + id;
    return refuse(11, 1, Hl7Error::unsupported_processing_id,
                  "processing id " + processing.substr(0, 8) +
                      " is not taken as patient data here (accepted: " + accepted + "; hl7.processing_ids)");
  }

  if (type == "ORU" && trigger == "R01") {
    out.kind = Hl7Mapped::Kind::results;
  } else if (type == "RAS" && trigger == "O17") {
    out.kind = Hl7Mapped::Kind::administrations;
  } else if (type == "ADT" && (trigger == "A08" || trigger == "A31")) {
    out.kind = Hl7Mapped::Kind::patient_update;
  } else if (type == "ADT" && trigger == "A40") {
    out.kind = Hl7Mapped::Kind::patient_merge;
  } else if (type == "ORU" || type == "RAS" || type == "ADT") {
    return refuse(
        9, 2, Hl7Error::unsupported_event,
        "event " + out.message_type.substr(0, 16) + " is not supported (ORU^R01, RAS^O17, ADT^A08, ADT^A31, ADT^A40)");
  } else {
    return refuse(9, 1, Hl7Error::unsupported_message_type,
                  "message type " + out.message_type.substr(0, 16) +
                      " is not supported (ORU^R01, RAS^O17, ADT^A08, ADT^A31, ADT^A40)");
  }

  const std::size_t pid = m.next("PID");
  if (pid == m.segment_count()) return refuse(0, 0, Hl7Error::segment_sequence, "the message has no PID segment");
  out.patient = pick_identifier(m, pid, 3, options_);
  if (out.patient.empty()) {
    out.rejection = issue(
        m, pid, 3, 0, Hl7Error::required_field_missing,
        "PID-3 has no identifier of type " + identifier_types_text(options_) +
            (options_.assigning_authority.empty() ? std::string() : " from authority " + options_.assigning_authority));
    return out;
  }
  if (out.patient.size() > kMaxIdBytes) return refuse(3, 0, Hl7Error::data_type, "PID-3 identifier is too long");

  Context c{m, *concepts_, options_, out, core::Provenance{options_.feed, out.control_id, received_ms}};
  switch (out.kind) {
    case Hl7Mapped::Kind::results:
      map_results(c);
      break;
    case Hl7Mapped::Kind::administrations:
      map_administrations(c);
      break;
    case Hl7Mapped::Kind::patient_update:
      break;
    case Hl7Mapped::Kind::patient_merge: {
      // One merge per PATIENT group (PID, then its MRG before the next PID). A bad pair refuses
      // the whole message: the merges are applied together or not at all.
      for (std::size_t p = pid; p < m.segment_count(); p = m.next("PID", p + 1)) {
        const std::size_t next_pid = m.next("PID", p + 1);
        const std::size_t mrg = m.next("MRG", p + 1);
        if (mrg >= next_pid)
          return refuse(0, 0, Hl7Error::segment_sequence, "ADT^A40 has a PID without its MRG segment");
        const std::string surviving = p == pid ? out.patient : pick_identifier(m, p, 3, options_);
        if (surviving.empty()) {
          out.rejection = issue(m, p, 3, 0, Hl7Error::required_field_missing,
                                "PID-3 has no identifier of type " + identifier_types_text(options_));
          return out;
        }
        const std::string prior = pick_identifier(m, mrg, 1, options_);
        if (prior.empty()) {
          out.rejection = issue(m, mrg, 1, 0, Hl7Error::required_field_missing,
                                "MRG-1 has no identifier of type " + identifier_types_text(options_));
          return out;
        }
        if (prior == surviving) {
          out.rejection = issue(m, mrg, 1, 0, Hl7Error::data_type, "MRG-1 names the surviving patient itself");
          return out;
        }
        if (prior.size() > kMaxIdBytes || surviving.size() > kMaxIdBytes)
          return refuse(3, 0, Hl7Error::data_type, "PID-3 or MRG-1 identifier is too long");
        out.merges.emplace_back(prior, surviving);
      }
      break;
    }
    case Hl7Mapped::Kind::unsupported:
      break;
  }
  return out;
}

}  // namespace iraewatch::ingest
