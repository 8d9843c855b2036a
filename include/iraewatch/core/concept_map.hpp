#pragma once
// The concept map: which codes mean which clinical concept, in which canonical unit, how other
// units convert to it, the default reference range, and which drugs are immune checkpoint
// inhibitors. Its content comes from rules/concepts.yaml (loaded by iraewatch::rules); this type
// only answers questions about it and never guesses: an unknown unit is an error.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "iraewatch/core/error.hpp"
#include "iraewatch/core/record.hpp"

namespace iraewatch::core {

// canonical = (value + offset_before) * factor. Linear, so it converts values and range limits alike.
struct UnitConversion {
  std::string from;
  double factor = 1.0;
  double offset_before = 0.0;

  double apply(double value) const { return (value + offset_before) * factor; }
};

struct Concept {
  std::string name;     // e.g. "tsh"; what rules and NDJSON records use
  std::string display;  // e.g. "TSH", for alert text
  std::string kind;     // "lab", "vital" or "symptom"; rules pick freshness windows by kind
  std::vector<Code> codes;
  std::string unit;                         // the canonical UCUM unit
  bool unit_optional = false;               // a record may omit the unit (unitless scores and flags)
  std::vector<UnitConversion> conversions;  // other accepted units; the canonical unit is implied
  std::optional<double> ref_low;
  std::optional<double> ref_high;
};

struct Drug {
  std::string inn;                   // e.g. "nivolumab"
  std::vector<std::string> brands;   // e.g. "Opdivo"
  std::vector<std::string> targets;  // e.g. "PD-1"
  std::string drug_class;            // "ctla4", "pd1", "pdl1", ...; used for combination therapy
  std::vector<Code> codes;           // ATC and RxNorm codes
};

class ConceptMap {
 public:
  ConceptMap() = default;
  // Builds the lookup tables. The caller (the loader) has already rejected duplicates.
  ConceptMap(std::vector<Concept> concepts, std::vector<Drug> drugs,
             std::map<std::string, std::string, std::less<>> code_systems = {});

  const Concept* find_concept(std::string_view name) const;
  const Concept* find_by_code(const Code& code) const;
  // By name (INN or brand, case-insensitive) when code.system is empty, otherwise by code.
  const Drug* find_drug(const Code& code) const;

  // The value in the concept's canonical unit. An empty unit is accepted only when the concept
  // says so; any unit that is neither canonical nor listed is a unit_mismatch error.
  Result<double> to_canonical(const Concept& concept_def, double value, std::string_view unit) const;

  const std::vector<Concept>& concepts() const { return concepts_; }
  // A concept's position in concepts(): a dense index for per-concept tables.
  std::size_t index_of(const Concept& c) const { return static_cast<std::size_t>(&c - concepts_.data()); }
  const std::vector<Drug>& drugs() const { return drugs_; }

  // The system URI for an HL7 v2 coding system name (e.g. "LN" -> "http://loinc.org"), from
  // concepts.yaml's code_systems; a name that is not listed comes back as it is.
  std::string system_uri(std::string_view hl7_name) const;

 private:
  std::vector<Concept> concepts_;
  std::vector<Drug> drugs_;
  std::map<std::string, std::size_t, std::less<>> by_name_;
  std::map<std::string, std::size_t, std::less<>> by_code_;       // "SYSTEM|CODE"
  std::map<std::string, std::size_t, std::less<>> drug_by_name_;  // lower-case INN and brands
  std::map<std::string, std::size_t, std::less<>> drug_by_code_;
  std::map<std::string, std::string, std::less<>> code_systems_;
};

std::string to_lower(std::string_view text);

}  // namespace iraewatch::core
