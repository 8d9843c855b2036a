#pragma once
// NDJSON records (docs/records.md): one JSON object a line, turned into core records with codes
// mapped to concepts and values converted to canonical units. Pure: no IO, no state but the map.

#include <string_view>

#include "iraewatch/core/concept_map.hpp"
#include "iraewatch/core/error.hpp"
#include "iraewatch/core/record.hpp"

namespace iraewatch::ingest {

// Limits on what one record may carry; longer values are rejected, not truncated.
inline constexpr std::size_t kMaxIdBytes = 256;
inline constexpr std::size_t kMaxTextBytes = 4096;

class NdjsonParser {
 public:
  // The map must outlive the parser.
  explicit NdjsonParser(const core::ConceptMap& concepts) : concepts_(&concepts) {}

  // Parses one line (without its newline). On success the record's provenance is `provenance`.
  // Errors say what is wrong and where (the field), never crash, and never echo more than a
  // short prefix of the input.
  core::Result<core::Record> parse(std::string_view line, const core::Provenance& provenance) const;

 private:
  const core::ConceptMap* concepts_;
};

// True for a line with nothing but spaces, tabs or a carriage return: such lines are skipped.
bool is_blank(std::string_view line);

}  // namespace iraewatch::ingest
