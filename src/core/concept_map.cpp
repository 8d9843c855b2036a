#include "iraewatch/core/concept_map.hpp"

#include <cctype>

namespace iraewatch::core {

std::string ConceptMap::system_uri(std::string_view hl7_name) const {
  if (auto it = code_systems_.find(hl7_name); it != code_systems_.end()) return it->second;
  return std::string(hl7_name);
}

std::string to_lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

ConceptMap::ConceptMap(std::vector<Concept> concepts, std::vector<Drug> drugs,
                       std::map<std::string, std::string, std::less<>> code_systems)
    : concepts_(std::move(concepts)), drugs_(std::move(drugs)), code_systems_(std::move(code_systems)) {
  for (std::size_t i = 0; i < concepts_.size(); ++i) {
    by_name_.emplace(concepts_[i].name, i);
    for (const auto& code : concepts_[i].codes) by_code_.emplace(to_string(code), i);
  }
  for (std::size_t i = 0; i < drugs_.size(); ++i) {
    drug_by_name_.emplace(to_lower(drugs_[i].inn), i);
    for (const auto& brand : drugs_[i].brands) drug_by_name_.emplace(to_lower(brand), i);
    for (const auto& code : drugs_[i].codes) drug_by_code_.emplace(to_string(code), i);
  }
}

const Concept* ConceptMap::find_concept(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &concepts_[it->second];
}

const Concept* ConceptMap::find_by_code(const Code& code) const {
  if (code.system.empty()) return find_concept(code.code);
  auto it = by_code_.find(to_string(code));
  return it == by_code_.end() ? nullptr : &concepts_[it->second];
}

const Drug* ConceptMap::find_drug(const Code& code) const {
  if (code.system.empty()) {
    auto it = drug_by_name_.find(to_lower(code.code));
    return it == drug_by_name_.end() ? nullptr : &drugs_[it->second];
  }
  auto it = drug_by_code_.find(to_string(code));
  return it == drug_by_code_.end() ? nullptr : &drugs_[it->second];
}

Result<double> ConceptMap::to_canonical(const Concept& c, double value, std::string_view unit) const {
  if (unit.empty()) {
    if (c.unit_optional) return value;
    return fail(ErrorCode::unit_mismatch, "concept '" + c.name + "' needs a unit (canonical unit '" + c.unit + "')");
  }
  if (unit == c.unit) return value;
  for (const auto& conv : c.conversions)
    if (conv.from == unit) return conv.apply(value);
  std::string accepted = "'" + c.unit + "'";
  for (const auto& conv : c.conversions) accepted += ", '" + conv.from + "'";
  return fail(ErrorCode::unit_mismatch, "unit '" + std::string(unit.substr(0, 64)) +
                                            "' cannot be converted for concept '" + c.name +
                                            "' (accepted: " + accepted + ")");
}

}  // namespace iraewatch::core
