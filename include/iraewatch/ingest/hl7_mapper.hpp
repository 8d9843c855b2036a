#pragma once
// HL7 v2 messages -> records (docs/hl7.md): ORU^R01 results to observations, RAS^O17
// administrations to medication records, ADT^A08/A31 patient updates and ADT^A40 merges. A pure
// function of the message and the concept map: no IO, no clock. What cannot be used is reported
// as issues placed for the ACK's ERR segments (HL7 table 0357 codes), with the segment's raw
// text kept as rejected input; the rest of the message is still used.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "iraewatch/core/concept_map.hpp"
#include "iraewatch/core/record.hpp"
#include "iraewatch/core/time_zone.hpp"
#include "iraewatch/ingest/hl7_message.hpp"

namespace iraewatch::ingest {

struct Hl7Options {
  std::string feed = "hl7";
  // The hospital's zone, for times sent without an offset (UTC by default).
  core::TimeZone zone;
  // Which PID-3 identifier is the patient: its type (CX-5) and, when set, assigning authority (CX-4).
  std::vector<std::string> identifier_types = {"MR"};
  std::string assigning_authority;
  // MSH-11 processing ids taken as real data (P production; T training and D debugging are
  // refused, 202, unless listed). An empty MSH-11 counts as P.
  std::vector<std::string> processing_ids = {"P"};
};

// HL7 table 0357 (message error condition codes) used in ERR-3.
enum class Hl7Error {
  segment_sequence = 100,
  required_field_missing = 101,
  data_type = 102,
  table_value_not_found = 103,
  unsupported_message_type = 200,
  unsupported_event = 201,
  unsupported_processing_id = 202,
  unsupported_version = 203,
  unknown_key = 204,
  duplicate_key = 205,
  internal_error = 207,
};

// One problem, placed as ERR-2 wants it: segment id, its sequence among the message's segments
// (1-based), field, component (0: the whole field).
struct Hl7Issue {
  std::string segment_id;
  std::size_t segment_index = 0;  // 0-based index in the message (for the rejected raw segment)
  int field = 0;
  int component = 0;
  Hl7Error code = Hl7Error::data_type;
  std::string message;  // what and why, for a person; no patient identifier
  // The segment that was not used, when it is not the one the issue points at (an OBX refused
  // because its OBR's OBR-7 is bad): that segment is kept as rejected input.
  std::optional<std::size_t> unused_segment;
};

// An issue as one line for people and the rejected-input table: "OBX-6: <message>", unless the
// message already starts by naming its segment ("OBX-14: ...", "OBR-7 (used for this OBX): ...").
std::string located(const Hl7Issue& issue);

struct Hl7Mapped {
  enum class Kind { results, administrations, patient_update, patient_merge, unsupported };
  Kind kind = Kind::unsupported;
  std::string message_type;                           // e.g. "ORU^R01"
  std::string control_id;                             // MSH-10
  std::string sending_application, sending_facility;  // MSH-3, MSH-4 (first component)
  std::string version;                                // MSH-12
  bool enhanced_ack = false;                          // MSH-15 set: CA/CE/CR
  std::vector<core::Record> records;
  std::vector<Hl7Issue> issues;       // items that were not used (AE/CE): their segments are rejected input
  std::optional<Hl7Issue> rejection;  // the whole message is refused (AR/CR)
  std::string patient;                // ADT: the patient updated; A40: the surviving patient
  // A40: every (prior, surviving) pair, one per PID with its MRG, in message order.
  std::vector<std::pair<std::string, std::string>> merges;
  std::size_t ignored_results = 0;  // OBX-11 X (no result) and the like: neither used nor an error
};

class Hl7Mapper {
 public:
  // The map must outlive the mapper.
  Hl7Mapper(const core::ConceptMap& concepts, Hl7Options options);

  // `received_ms` is the provenance's arrival time.
  Hl7Mapped map(const hl7::Message& message, std::int64_t received_ms) const;

  const Hl7Options& options() const { return options_; }

 private:
  const core::ConceptMap* concepts_;
  Hl7Options options_;
};

// An HL7 DTM (YYYY[MM[DD[HH[MM[SS[.S...]]]]]][+/-ZZZZ]) as an event time. A value without an
// offset is a local time in `zone` (daylight saving time included; see TimeZone::from_local).
// Errors for anything else.
core::Result<core::EventTime> parse_hl7_time(std::string_view dtm, const core::TimeZone& zone);

}  // namespace iraewatch::ingest
