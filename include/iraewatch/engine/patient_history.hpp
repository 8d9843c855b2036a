#pragma once
// One patient's clinical time series, in memory: the current version of every mapped observation,
// per concept and sorted by event time, and the ICI doses that count for exposure. Corrections
// replace, retractions remove; what the store keeps for audit is not needed here.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "iraewatch/core/record.hpp"

namespace iraewatch::engine {

struct Sample {
  double value = 0;  // in the concept's canonical unit
  std::int64_t time_ms = 0;
  std::int32_t offset_min = 0;
  std::optional<double> ref_low, ref_high;
  bool baseline_flag = false;
  bool preliminary = false;
  std::string record_id;
};

struct Dose {
  std::int64_t time_ms = 0;
  std::string ici_class;  // "ctla4", "pd1", "pdl1", ...
  std::string record_id;
};

class PatientHistory {
 public:
  // Applies the current version of a record: a new sample, a replacement (corrected), or a
  // removal (entered-in-error, cancelled, a non-numeric or unmapped value). Returns the concept
  // whose series changed, or empty.
  std::string apply(const core::Observation& o);
  // Applies an administration: ICI doses that are completed or in progress count; any other
  // status (or a retraction) removes an earlier version of the same record.
  bool apply(const core::MedicationAdministration& m);

  // Sorted by time (then arrival); null when the patient has no value of the concept.
  const std::vector<Sample>* series(std::string_view concept_name) const;
  const std::vector<Dose>& doses() const { return doses_; }  // sorted by time
  std::int64_t latest_observation_ms() const { return latest_observation_ms_; }

 private:
  void remove_record(const std::string& key);

  std::map<std::string, std::vector<Sample>, std::less<>> series_;
  std::vector<Dose> doses_;
  std::unordered_map<std::string, std::string> concept_of_record_;  // "feed|id" -> concept
  std::int64_t latest_observation_ms_ = INT64_MIN;
};

}  // namespace iraewatch::engine
