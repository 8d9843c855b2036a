#include "iraewatch/engine/record_ledger.hpp"

#include <algorithm>

namespace iraewatch::engine {

std::optional<Change> RecordLedger::admit(const core::Record& record) {
  const bool observation = std::holds_alternative<core::Observation>(record);
  const auto& provenance = std::visit([](const auto& r) -> const core::Provenance& { return r.provenance; }, record);
  std::string key = (observation ? "o|" : "m|") + provenance.feed + "|" + core::record_id(record);
  const std::uint64_t h = core::content_hash(record);
  auto [it, added] = versions_.try_emplace(std::move(key), Versions{h, {}});
  if (added) return Change::added;
  auto& v = it->second;
  if (v.first == h || std::find(v.later.begin(), v.later.end(), h) != v.later.end()) return std::nullopt;
  v.later.push_back(h);
  return Change::new_version;
}

}  // namespace iraewatch::engine
