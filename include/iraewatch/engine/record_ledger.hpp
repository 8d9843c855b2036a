#pragma once
// Record identity without a database, for replay and rule tests: the same rules as the store
// (docs/records.md): same feed, id and content again is a duplicate; other content is a new
// version.

#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "iraewatch/core/record.hpp"
#include "iraewatch/engine/engine.hpp"

namespace iraewatch::engine {

class RecordLedger {
 public:
  // nullopt: a duplicate, to be acknowledged and otherwise ignored.
  std::optional<Change> admit(const core::Record& record);

 private:
  std::unordered_map<std::string, std::vector<std::uint64_t>> hashes_;  // "kind|feed|id" -> every version's hash
};

}  // namespace iraewatch::engine
