#include "iraewatch/engine/record_ledger.hpp"

#include <algorithm>

namespace iraewatch::engine {

std::optional<Change> RecordLedger::admit(const core::Record& record) {
  const bool observation = std::holds_alternative<core::Observation>(record);
  const auto& provenance = std::visit([](const auto& r) -> const core::Provenance& { return r.provenance; }, record);
  std::string key = (observation ? "o|" : "m|") + provenance.feed + "|" + core::record_id(record);
  auto& versions = hashes_[std::move(key)];
  const std::uint64_t h = core::content_hash(record);
  if (std::find(versions.begin(), versions.end(), h) != versions.end()) return std::nullopt;
  versions.push_back(h);
  return versions.size() == 1 ? Change::added : Change::new_version;
}

}  // namespace iraewatch::engine
