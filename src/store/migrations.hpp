#pragma once
// Numbered schema migrations. Migration N takes PRAGMA user_version from N-1 to N; each runs in
// its own transaction. Never edit a released migration: add the next one.

#include <sqlite3.h>

#include "iraewatch/core/error.hpp"

namespace iraewatch::store {

// Brings the database to the newest schema. Refuses a database newer than this program knows.
core::Result<int> migrate(sqlite3* db);

// The schema version this program writes.
int latest_schema_version();

}  // namespace iraewatch::store
