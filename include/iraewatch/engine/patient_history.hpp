#pragma once
// One patient's clinical time series, in memory: the current version of every mapped observation,
// per concept (by ConceptMap index) and sorted by event time, and the ICI doses that count for
// exposure. Corrections replace, retractions remove; the store keeps every version for audit.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "iraewatch/core/record.hpp"

namespace iraewatch::engine {

struct Sample {
  double value = 0;  // in the concept's canonical unit
  std::int64_t time_ms = 0;
  std::int32_t offset_min = 0;
  bool baseline_flag = false;
  bool preliminary = false;
  std::optional<double> ref_low, ref_high;
  std::string record_id;  // "feed|id"
};

struct Dose {
  std::int64_t time_ms = 0;
  std::string ici_class;  // "ctla4", "pd1", "pdl1", ...
  std::string record_id;
};

class PatientHistory {
 public:
  // Which series an observation changed: the one an earlier version left, the one it joined.
  struct Applied {
    int removed_from = -1;
    std::int64_t removed_time = 0;  // the event time of the version that was removed
    int added_to = -1;
  };

  // Applies the current version of an observation whose concept has index `concept_index` (-1
  // when unmapped). `replaces` says an earlier version may exist and must go first. A retracted,
  // cancelled or non-numeric version only removes.
  Applied apply(const core::Observation& o, int concept_index, bool replaces);
  // ICI doses that are completed or in progress count; any other status, or a retraction,
  // removes an earlier version. True when the doses changed.
  bool apply(const core::MedicationAdministration& m, bool replaces);

  // Sorted by time (then arrival); null when the patient has no value of the concept.
  const std::vector<Sample>* series(int concept_index) const {
    return concept_index >= 0 && static_cast<std::size_t>(concept_index) < series_.size() &&
                   !series_[static_cast<std::size_t>(concept_index)].empty()
               ? &series_[static_cast<std::size_t>(concept_index)]
               : nullptr;
  }
  // Whether any value of the concept is flagged as a baseline (spares a scan when none is).
  bool has_baseline(int concept_index) const {
    return concept_index >= 0 && static_cast<std::size_t>(concept_index) < baselines_.size() &&
           baselines_[static_cast<std::size_t>(concept_index)] > 0;
  }
  const std::vector<Dose>& doses() const { return doses_; }  // sorted by time
  std::int64_t latest_observation_ms() const { return latest_observation_ms_; }

 private:
  std::vector<std::vector<Sample>> series_;
  std::vector<int> baselines_;  // per concept: how many values are flagged as baseline
  std::vector<Dose> doses_;
  std::int64_t latest_observation_ms_ = INT64_MIN;
};

}  // namespace iraewatch::engine
