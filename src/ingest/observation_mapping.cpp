#include "iraewatch/ingest/observation_mapping.hpp"

#include <cmath>
#include <string>
#include <tuple>

namespace iraewatch::ingest {
namespace {

std::unexpected<core::Error> field_error(core::ErrorCode code, std::string_view field, std::string why) {
  return core::fail(code, "field '" + std::string(field) + "': " + why);
}

}  // namespace

core::Result<void> map_to_concept(const core::ConceptMap& map, core::Observation& o, std::optional<double> ref_low,
                                  std::optional<double> ref_high, const FieldNames& names) {
  using core::ErrorCode;
  if (ref_low && ref_high && *ref_low > *ref_high)
    return field_error(ErrorCode::invalid_input, names.ref_low, "is above " + std::string(names.ref_high));
  const core::Concept* concept_def = map.find_by_code(o.code);
  if (concept_def == nullptr) {
    o.ref_from_sender = ref_low || ref_high;
    o.ref_low = ref_low;
    o.ref_high = ref_high;
    return {};
  }
  o.concept_name = concept_def->name;
  o.canonical_unit = concept_def->unit;
  if (!o.text_value.empty())
    return field_error(ErrorCode::invalid_input, names.value,
                       "concept '" + o.concept_name + "' needs a number, not a string");
  if (o.value) {
    auto canonical = map.to_canonical(*concept_def, *o.value, o.unit);
    if (!canonical) return field_error(canonical.error().code, names.unit, canonical.error().message);
    if (!std::isfinite(*canonical))
      return field_error(ErrorCode::invalid_input, names.value, "is out of range in " + concept_def->unit);
    o.canonical_value = *canonical;
  } else if (!o.unit.empty()) {
    if (auto check = map.to_canonical(*concept_def, 0, o.unit); !check)
      return field_error(check.error().code, names.unit, check.error().message);
  }
  if (ref_low || ref_high) {
    // The sender's range is in the sender's unit; it replaces the default range as a whole.
    o.ref_from_sender = true;
    o.ref_low.reset();
    o.ref_high.reset();
    for (auto [limit, out, name] :
         {std::tuple{ref_low, &o.ref_low, names.ref_low}, std::tuple{ref_high, &o.ref_high, names.ref_high}}) {
      if (!limit) continue;
      auto converted = map.to_canonical(*concept_def, *limit, o.unit);
      if (!converted) return field_error(converted.error().code, name, converted.error().message);
      if (!std::isfinite(*converted))
        return field_error(ErrorCode::invalid_input, name, "is out of range in " + concept_def->unit);
      *out = *converted;
    }
  } else {
    o.ref_low = concept_def->ref_low;
    o.ref_high = concept_def->ref_high;
  }
  return {};
}

}  // namespace iraewatch::ingest
