#include "iraewatch/core/record.hpp"

#include <array>
#include <cstring>
#include <utility>

namespace iraewatch::core {
namespace {

constexpr std::array<std::pair<ObservationStatus, std::string_view>, 5> kObservationStatuses{{
    {ObservationStatus::final, "final"},
    {ObservationStatus::corrected, "corrected"},
    {ObservationStatus::preliminary, "preliminary"},
    {ObservationStatus::entered_in_error, "entered-in-error"},
    {ObservationStatus::cancelled, "cancelled"},
}};

constexpr std::array<std::pair<MedicationStatus, std::string_view>, 6> kMedicationStatuses{{
    {MedicationStatus::completed, "completed"},
    {MedicationStatus::in_progress, "in-progress"},
    {MedicationStatus::not_done, "not-done"},
    {MedicationStatus::on_hold, "on-hold"},
    {MedicationStatus::stopped, "stopped"},
    {MedicationStatus::entered_in_error, "entered-in-error"},
}};

template <typename Enum, std::size_t N>
Result<Enum> parse_status(const std::array<std::pair<Enum, std::string_view>, N>& table, std::string_view text) {
  std::string allowed;
  for (const auto& [value, name] : table) {
    if (name == text) return value;
    allowed += allowed.empty() ? "" : ", ";
    allowed += name;
  }
  return fail(ErrorCode::invalid_input,
              "unknown status '" + std::string(text.substr(0, 64)) + "' (expected one of: " + allowed + ")");
}

// FNV-1a, 64 bit: stable across builds and platforms, unlike std::hash.
class Fnv1a {
 public:
  void add(std::string_view s) {
    add_raw(s.data(), s.size());
    add_raw("\x1f", 1);  // field separator, so that "ab","c" differs from "a","bc"
  }
  void add(const std::optional<double>& v) {
    if (!v) return add(std::string_view("-"));
    double d = *v;
    unsigned char bytes[sizeof d];
    std::memcpy(bytes, &d, sizeof d);
    add_raw(bytes, sizeof bytes);
  }
  void add(std::int64_t v) { add_raw(&v, sizeof v); }
  std::uint64_t value() const { return h_; }

 private:
  void add_raw(const void* p, std::size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < n; ++i) {
      h_ ^= b[i];
      h_ *= 0x100000001b3ULL;
    }
  }
  std::uint64_t h_ = 0xcbf29ce484222325ULL;
};

}  // namespace

Code parse_code(std::string_view text) {
  auto bar = text.rfind('|');
  if (bar == std::string_view::npos) return Code{"", std::string(text)};
  return Code{std::string(text.substr(0, bar)), std::string(text.substr(bar + 1))};
}

std::string to_string(const Code& code) {
  return code.system.empty() ? code.code : code.system + "|" + code.code;
}

std::string_view to_string(ObservationStatus status) {
  for (const auto& [value, name] : kObservationStatuses)
    if (value == status) return name;
  return "unknown";
}

std::string_view to_string(MedicationStatus status) {
  for (const auto& [value, name] : kMedicationStatuses)
    if (value == status) return name;
  return "unknown";
}

Result<ObservationStatus> parse_observation_status(std::string_view text) {
  return parse_status(kObservationStatuses, text);
}

Result<MedicationStatus> parse_medication_status(std::string_view text) {
  return parse_status(kMedicationStatuses, text);
}

const std::string& record_id(const Record& record) {
  return std::visit([](const auto& r) -> const std::string& { return r.id; }, record);
}

const std::string& record_patient(const Record& record) {
  return std::visit([](const auto& r) -> const std::string& { return r.patient; }, record);
}

std::uint64_t content_hash(const Record& record) {
  return std::visit([](const auto& r) { return content_hash(r); }, record);
}

std::uint64_t content_hash(const Observation& observation) {
  Fnv1a h;
  {
    const auto* o = &observation;
    h.add(std::string_view("observation"));
    h.add(o->patient);
    h.add(o->code.system);
    h.add(o->code.code);
    h.add(o->value);
    h.add(o->text_value);
    h.add(o->unit);
    h.add(o->time.utc_ms);
    h.add(std::int64_t{o->time.offset_min});
    h.add(to_string(o->status));
    h.add(o->ref_from_sender ? o->ref_low : std::nullopt);
    h.add(o->ref_from_sender ? o->ref_high : std::nullopt);
    h.add(std::int64_t{o->baseline});
  }
  return h.value();
}

std::uint64_t content_hash(const MedicationAdministration& m) {
  Fnv1a h;
  {
    h.add(std::string_view("medication"));
    h.add(m.patient);
    h.add(m.drug.system);
    h.add(m.drug.code);
    h.add(m.time.utc_ms);
    h.add(std::int64_t{m.time.offset_min});
    h.add(to_string(m.status));
  }
  return h.value();
}

}  // namespace iraewatch::core
