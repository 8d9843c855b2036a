#pragma once
// The step every input format shares once it has read an observation: find its concept, convert
// its value to the concept's canonical unit, and settle its reference range. Table-driven from
// the concept map; an unknown unit is an error, never a guess.

#include <optional>
#include <string_view>

#include "iraewatch/core/concept_map.hpp"
#include "iraewatch/core/error.hpp"
#include "iraewatch/core/record.hpp"

namespace iraewatch::ingest {

// What the sender calls the fields that errors point at ("value" in NDJSON, "OBX-5" in HL7).
struct FieldNames {
  std::string_view value = "value";
  std::string_view unit = "unit";
  std::string_view ref_low = "ref_low";
  std::string_view ref_high = "ref_high";
};

// `o` has its code, its value (or text value) and unit as sent. Sets concept_name,
// canonical_value and canonical_unit for a mapped code, and the reference range: the sender's
// (in the sender's unit, converted; it replaces the default as a whole) or the concept's default.
// An observation whose code is not in the map keeps its values as sent and is stored unmapped.
// Errors name the field: "field 'unit': ...".
core::Result<void> map_to_concept(const core::ConceptMap& map, core::Observation& o, std::optional<double> ref_low,
                                  std::optional<double> ref_high, const FieldNames& names = {});

}  // namespace iraewatch::ingest
