#include "iraewatch/ingest/ndjson_parser.hpp"

#include "iraewatch/ingest/observation_mapping.hpp"

#include <nlohmann/json.hpp>

#include <cmath>

namespace iraewatch::ingest {
namespace {

using core::ErrorCode;
using core::fail;
using nlohmann::json;

constexpr std::string_view kObservationKeys[] = {"type", "id",     "patient", "code",     "value",   "unit",
                                                 "time", "status", "ref_low", "ref_high", "baseline"};
constexpr std::string_view kMedicationKeys[] = {"type", "id", "patient", "drug", "time", "status"};

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return {};
  return std::string(s.substr(b, s.find_last_not_of(" \t") - b + 1));
}

std::unexpected<core::Error> field_error(ErrorCode code, std::string_view field, std::string why) {
  return fail(code, "field '" + std::string(field) + "': " + why);
}

template <std::size_t N>
core::Result<void> check_keys(const json& obj, const std::string_view (&allowed)[N]) {
  for (const auto& [key, value] : obj.items()) {
    bool known = false;
    for (auto a : allowed) known = known || a == key;
    if (!known) {
      std::string list;
      for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      return fail(ErrorCode::invalid_input, "unknown field '" + key.substr(0, 64) + "' (allowed: " + list + ")");
    }
  }
  return {};
}

// A required, non-empty string of at most `max` bytes.
core::Result<std::string> required_string(const json& obj, std::string_view field, std::size_t max) {
  auto it = obj.find(field);
  if (it == obj.end()) return field_error(ErrorCode::invalid_input, field, "is required");
  if (!it->is_string()) return field_error(ErrorCode::invalid_input, field, "must be a string");
  const auto& s = it->get_ref<const std::string&>();
  if (s.empty()) return field_error(ErrorCode::invalid_input, field, "must not be empty");
  if (s.size() > max)
    return field_error(ErrorCode::limit_exceeded, field, "is longer than " + std::to_string(max) + " bytes");
  return s;
}

core::Result<std::optional<std::string>> optional_string(const json& obj, std::string_view field, std::size_t max) {
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return std::optional<std::string>{};
  if (!it->is_string()) return field_error(ErrorCode::invalid_input, field, "must be a string");
  const auto& s = it->get_ref<const std::string&>();
  if (s.size() > max)
    return field_error(ErrorCode::limit_exceeded, field, "is longer than " + std::to_string(max) + " bytes");
  return std::optional<std::string>(s);
}

core::Result<std::optional<double>> optional_number(const json& obj, std::string_view field) {
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return std::optional<double>{};
  if (!it->is_number()) return field_error(ErrorCode::invalid_input, field, "must be a number");
  const double v = it->get<double>();
  if (!std::isfinite(v)) return field_error(ErrorCode::invalid_input, field, "must be finite");
  return std::optional<double>(v);
}

core::Result<core::EventTime> required_time(const json& obj) {
  auto text = required_string(obj, "time", 64);
  if (!text) return std::unexpected(text.error());
  auto t = core::parse_rfc3339(*text);
  if (!t) return field_error(t.error().code, "time", t.error().message);
  return *t;
}

core::Result<core::Record> parse_observation(const json& obj, const core::ConceptMap& map,
                                             const core::Provenance& provenance) {
  if (auto ok = check_keys(obj, kObservationKeys); !ok) return std::unexpected(ok.error());
  core::Observation o;
  o.provenance = provenance;

  auto id = required_string(obj, "id", kMaxIdBytes);
  if (!id) return std::unexpected(id.error());
  o.id = std::move(*id);
  auto patient = required_string(obj, "patient", kMaxIdBytes);
  if (!patient) return std::unexpected(patient.error());
  o.patient = std::move(*patient);

  auto code_text = required_string(obj, "code", kMaxIdBytes);
  if (!code_text) return std::unexpected(code_text.error());
  o.code = core::parse_code(*code_text);
  if (o.code.code.empty())
    return field_error(ErrorCode::invalid_input, "code", "'" + *code_text + "' has an empty code after '|'");
  const core::Concept* concept_def = map.find_by_code(o.code);
  if (concept_def == nullptr && o.code.system.empty())
    return field_error(ErrorCode::unknown_concept, "code",
                       "unknown concept '" + o.code.code.substr(0, 64) +
                           "' (use a concept name from rules/concepts.yaml or SYSTEM|CODE)");

  auto t = required_time(obj);
  if (!t) return std::unexpected(t.error());
  o.time = *t;

  if (auto it = obj.find("status"); it != obj.end() && !it->is_null()) {
    if (!it->is_string()) return field_error(ErrorCode::invalid_input, "status", "must be a string");
    auto status = core::parse_observation_status(it->get_ref<const std::string&>());
    if (!status) return field_error(ErrorCode::invalid_input, "status", status.error().message);
    o.status = *status;
  }

  auto unit = optional_string(obj, "unit", 64);
  if (!unit) return std::unexpected(unit.error());
  o.unit = unit->value_or("");

  auto value_it = obj.find("value");
  if (value_it == obj.end() || value_it->is_null()) {
    // Only an entered-in-error or cancelled record may come without a value: it retracts one.
    if (o.status != core::ObservationStatus::entered_in_error && o.status != core::ObservationStatus::cancelled)
      return field_error(ErrorCode::invalid_input, "value", "is required");
  } else if (value_it->is_number()) {
    const double v = value_it->get<double>();
    if (!std::isfinite(v)) return field_error(ErrorCode::invalid_input, "value", "must be finite");
    o.value = v;
  } else if (value_it->is_string()) {
    const auto& s = value_it->get_ref<const std::string&>();
    if (s.empty()) return field_error(ErrorCode::invalid_input, "value", "must not be an empty string");
    if (s.size() > kMaxTextBytes)
      return field_error(ErrorCode::limit_exceeded, "value",
                         "is longer than " + std::to_string(kMaxTextBytes) + " bytes");
    o.text_value = s;
  } else {
    return field_error(ErrorCode::invalid_input, "value", "must be a number or a string");
  }

  auto ref_low = optional_number(obj, "ref_low");
  if (!ref_low) return std::unexpected(ref_low.error());
  auto ref_high = optional_number(obj, "ref_high");
  if (!ref_high) return std::unexpected(ref_high.error());

  if (auto it = obj.find("baseline"); it != obj.end() && !it->is_null()) {
    if (!it->is_boolean()) return field_error(ErrorCode::invalid_input, "baseline", "must be true or false");
    o.baseline = it->get<bool>();
  }

  if (auto mapped = map_to_concept(map, o, *ref_low, *ref_high); !mapped) return std::unexpected(mapped.error());
  return core::Record(std::move(o));
}

core::Result<core::Record> parse_medication(const json& obj, const core::ConceptMap& map,
                                            const core::Provenance& provenance) {
  if (auto ok = check_keys(obj, kMedicationKeys); !ok) return std::unexpected(ok.error());
  core::MedicationAdministration m;
  m.provenance = provenance;
  auto id = required_string(obj, "id", kMaxIdBytes);
  if (!id) return std::unexpected(id.error());
  m.id = std::move(*id);
  auto patient = required_string(obj, "patient", kMaxIdBytes);
  if (!patient) return std::unexpected(patient.error());
  m.patient = std::move(*patient);
  auto drug = required_string(obj, "drug", kMaxIdBytes);
  if (!drug) return std::unexpected(drug.error());
  m.drug = core::parse_code(trim(*drug));
  if (m.drug.code.empty())
    return field_error(ErrorCode::invalid_input, "drug", "'" + *drug + "' has an empty code after '|'");
  // A drug that is not an ICI is valid data (stored, never drives exposure).
  if (const core::Drug* d = map.find_drug(m.drug)) {
    m.ici = d->inn;
    m.ici_class = d->drug_class;
  }
  auto t = required_time(obj);
  if (!t) return std::unexpected(t.error());
  m.time = *t;
  if (auto it = obj.find("status"); it != obj.end() && !it->is_null()) {
    if (!it->is_string()) return field_error(ErrorCode::invalid_input, "status", "must be a string");
    auto status = core::parse_medication_status(it->get_ref<const std::string&>());
    if (!status) return field_error(ErrorCode::invalid_input, "status", status.error().message);
    m.status = *status;
  }
  return core::Record(std::move(m));
}

}  // namespace

bool is_blank(std::string_view line) {
  for (char c : line)
    if (c != ' ' && c != '\t' && c != '\r') return false;
  return true;
}

core::Result<core::Record> NdjsonParser::parse(std::string_view line, const core::Provenance& provenance) const {
  // The JSON parser stops at a NUL byte; anything after it would pass unread.
  if (line.find('\0') != std::string_view::npos)
    return fail(ErrorCode::invalid_input, "not valid JSON: a NUL byte in the line");
  json obj;
  try {
    obj = json::parse(line);
  } catch (const json::exception& e) {
    // Parse errors, and numbers too large for a double (out_of_range), both land here.
    std::string what = e.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 5: ..." -> "parse error at column 5: ..."
    if (auto pos = what.find("] "); pos != std::string::npos) what = what.substr(pos + 2);
    if (auto pos = what.find("line 1, column"); pos != std::string::npos) what.replace(pos, 14, "column");
    return fail(ErrorCode::invalid_input, "not valid JSON: " + what.substr(0, 300));
  }
  if (!obj.is_object()) return fail(ErrorCode::invalid_input, "a record must be a JSON object");
  auto type = obj.find("type");
  if (type == obj.end())
    return field_error(ErrorCode::invalid_input, "type", "is required ('observation' or 'medication')");
  if (!type->is_string()) return field_error(ErrorCode::invalid_input, "type", "must be a string");
  const auto& t = type->get_ref<const std::string&>();
  if (t == "observation") return parse_observation(obj, *concepts_, provenance);
  if (t == "medication") return parse_medication(obj, *concepts_, provenance);
  return field_error(ErrorCode::invalid_input, "type",
                     "unknown type '" + t.substr(0, 64) + "' (expected 'observation' or 'medication')");
}

}  // namespace iraewatch::ingest
