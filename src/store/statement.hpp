#pragma once
// RAII around sqlite3 handles and prepared statements. Private to the store module: no other
// module sees SQLite.

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "iraewatch/core/error.hpp"

namespace iraewatch::store {

// Wraps an sqlite3 error code and message into the project's vocabulary.
core::Error sqlite_error(sqlite3* db, std::string_view what);

class Statement {
 public:
  Statement() = default;
  Statement(sqlite3* db, std::string_view sql);  // throws std::runtime_error on bad SQL (a bug)
  ~Statement();
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Binding, 1-based like SQLite. Empty optionals and empty strings bind NULL where `null_empty`.
  // Text and blobs are bound without a copy: the bytes must stay valid until the statement is
  // reset (run() resets; so does the next bind of the same parameter). A temporary std::string
  // would not, so binding one does not compile.
  Statement& bind(int i, std::int64_t v);
  Statement& bind(int i, double v);
  Statement& bind(int i, std::string_view v);
  Statement& bind(int i, std::string&& v) = delete;
  Statement& bind(int i, const char* v) { return bind(i, std::string_view(v)); }
  Statement& bind_blob(int i, std::string_view v);
  Statement& bind_blob(int i, std::string&& v) = delete;
  Statement& bind(int i, const std::optional<double>& v);
  Statement& bind_text_or_null(int i, std::string_view v);
  Statement& bind_text_or_null(int i, std::string&& v) = delete;
  Statement& bind_null(int i);

  // Steps once: true when a row is ready, false when done; an Error on failure.
  core::Result<bool> step();
  // Steps to completion (for statements that return no rows) and resets.
  core::Result<void> run();
  void reset();

  std::int64_t int64(int col) const;
  double real(int col) const;
  bool is_null(int col) const;
  std::string text(int col) const;

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

}  // namespace iraewatch::store
