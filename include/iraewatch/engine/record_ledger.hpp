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
  struct Versions {
    std::uint64_t first = 0;           // the first version's content hash
    std::vector<std::uint64_t> later;  // later versions' (most records have none)
  };
  std::unordered_map<std::string, Versions> versions_;  // "kind|feed|id"
};

}  // namespace iraewatch::engine
