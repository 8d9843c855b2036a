#include "iraewatch/engine/patient_history.hpp"

#include <algorithm>

namespace iraewatch::engine {
namespace {

std::string key_of(const core::Provenance& p, const std::string& id) {
  return p.feed + "|" + id;
}

template <typename T>
void insert_sorted(std::vector<T>& v, T item) {
  auto pos =
      std::upper_bound(v.begin(), v.end(), item.time_ms, [](std::int64_t t, const T& s) { return t < s.time_ms; });
  v.insert(pos, std::move(item));
}

}  // namespace

PatientHistory::Applied PatientHistory::apply(const core::Observation& o, int concept_index, bool replaces) {
  Applied applied;
  std::string key = key_of(o.provenance, o.id);
  if (replaces) {
    // Corrections are rare: a scan of this patient's series is cheaper than an index kept for all.
    for (std::size_t c = 0; c < series_.size() && applied.removed_from < 0; ++c) {
      auto& v = series_[c];
      auto it = std::find_if(v.begin(), v.end(), [&](const Sample& s) { return s.record_id == key; });
      if (it != v.end()) {
        applied.removed_time = it->time_ms;
        if (it->baseline_flag) --baselines_[c];
        v.erase(it);
        applied.removed_from = static_cast<int>(c);
      }
    }
  }
  const bool counts = concept_index >= 0 && o.canonical_value &&
                      o.status != core::ObservationStatus::entered_in_error &&
                      o.status != core::ObservationStatus::cancelled;
  if (!counts) return applied;
  if (series_.size() <= static_cast<std::size_t>(concept_index)) {
    series_.resize(static_cast<std::size_t>(concept_index) + 1);
    baselines_.resize(series_.size(), 0);
  }
  if (o.baseline) ++baselines_[static_cast<std::size_t>(concept_index)];
  Sample s;
  s.value = *o.canonical_value;
  s.time_ms = o.time.utc_ms;
  s.offset_min = o.time.offset_min;
  s.ref_low = o.ref_low;
  s.ref_high = o.ref_high;
  s.baseline_flag = o.baseline;
  s.preliminary = o.status == core::ObservationStatus::preliminary;
  s.record_id = std::move(key);
  insert_sorted(series_[static_cast<std::size_t>(concept_index)], std::move(s));
  latest_observation_ms_ = std::max(latest_observation_ms_, o.time.utc_ms);
  applied.added_to = concept_index;
  return applied;
}

bool PatientHistory::apply(const core::MedicationAdministration& m, bool replaces) {
  const std::string key = key_of(m.provenance, m.id);
  bool changed = false;
  if (replaces) changed = std::erase_if(doses_, [&](const Dose& d) { return d.record_id == key; }) > 0;
  const bool counts = !m.ici.empty() && (m.status == core::MedicationStatus::completed ||
                                         m.status == core::MedicationStatus::in_progress);
  if (!counts) return changed;
  insert_sorted(doses_, Dose{m.time.utc_ms, m.ici_class, key});
  return true;
}

}  // namespace iraewatch::engine
