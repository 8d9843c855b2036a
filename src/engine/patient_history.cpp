#include "iraewatch/engine/patient_history.hpp"

#include <algorithm>

namespace iraewatch::engine {
namespace {

std::string key_of(const core::Provenance& p, const std::string& id) { return p.feed + "|" + id; }

template <typename T>
void insert_sorted(std::vector<T>& v, T item) {
  auto pos = std::upper_bound(v.begin(), v.end(), item.time_ms, [](std::int64_t t, const T& s) { return t < s.time_ms; });
  v.insert(pos, std::move(item));
}

}  // namespace

void PatientHistory::remove_record(const std::string& key) {
  auto it = concept_of_record_.find(key);
  if (it == concept_of_record_.end()) return;
  auto series = series_.find(it->second);
  if (series != series_.end()) {
    auto& v = series->second;
    std::erase_if(v, [&](const Sample& s) { return s.record_id == key; });
  }
  concept_of_record_.erase(it);
}

std::string PatientHistory::apply(const core::Observation& o) {
  const std::string key = key_of(o.provenance, o.id);
  std::string changed;
  if (auto it = concept_of_record_.find(key); it != concept_of_record_.end()) changed = it->second;
  remove_record(key);
  const bool counts = !o.concept_name.empty() && o.canonical_value &&
                      o.status != core::ObservationStatus::entered_in_error &&
                      o.status != core::ObservationStatus::cancelled;
  if (!counts) return changed;
  Sample s;
  s.value = *o.canonical_value;
  s.time_ms = o.time.utc_ms;
  s.offset_min = o.time.offset_min;
  s.ref_low = o.ref_low;
  s.ref_high = o.ref_high;
  s.baseline_flag = o.baseline;
  s.preliminary = o.status == core::ObservationStatus::preliminary;
  s.record_id = key;
  insert_sorted(series_[o.concept_name], std::move(s));
  concept_of_record_[key] = o.concept_name;
  latest_observation_ms_ = std::max(latest_observation_ms_, o.time.utc_ms);
  return o.concept_name;
}

bool PatientHistory::apply(const core::MedicationAdministration& m) {
  const std::string key = key_of(m.provenance, m.id);
  const auto before = doses_.size();
  std::erase_if(doses_, [&](const Dose& d) { return d.record_id == key; });
  const bool removed = doses_.size() != before;
  const bool counts = !m.ici.empty() &&
                      (m.status == core::MedicationStatus::completed || m.status == core::MedicationStatus::in_progress);
  if (!counts) return removed;
  insert_sorted(doses_, Dose{m.time.utc_ms, m.ici_class, key});
  return true;
}

const std::vector<Sample>* PatientHistory::series(std::string_view concept_name) const {
  auto it = series_.find(concept_name);
  return it == series_.end() ? nullptr : &it->second;
}

}  // namespace iraewatch::engine
