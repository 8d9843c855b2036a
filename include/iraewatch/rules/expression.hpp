#pragma once
// The condition language, compiled: a typed tree checked at load time (units, argument types,
// concepts, macros), evaluated by iraewatch::engine over one patient's history. docs/rules.md
// describes the language for rule authors.

#include <cstdint>
#include <string>
#include <vector>

namespace iraewatch::rules {

enum class NodeKind {
  number,    // a literal quantity, already in the unit of what it is compared with
  duration,  // a literal duration, in milliseconds
  boolean,   // true / false
  logical_and,
  logical_or,
  logical_not,
  compare,
  add,
  subtract,
  multiply,
  divide,
  negate,
  // Sample functions: the value of one observation, with its time, range and record id.
  latest,    // latest(x[, window])       most recent value within the window (default: freshness)
  previous,  // previous(x)               the value before the latest one
  baseline,  // baseline(x[, default])    per the clinical spec §3
  paired,    // paired(x, y)              latest x taken within the pair window of latest y
  min,       // min(x, window)            lowest value in the window (its sample)
  max,       // max(x, window)            highest value in the window (its sample)
  // Aggregates.
  avg,       // avg(x, window)
  count,     // count(x, window)          number of values in the window (unit 1)
  held_for,  // held_for(x OP q)          how long the most recent run of values has kept OP q
  // Range functions over a sample.
  ref_low,
  ref_high,
  below_low,
  above_high,
  // Exposure.
  on_ici,
  combination_therapy,
  days_since_first_dose,
  days_since_last_dose,
};

enum class CompareOp { lt, le, gt, ge, eq, ne };

enum class ValueType {
  boolean,
  quantity,  // a number in `unit` ("1" when dimensionless)
  duration,  // milliseconds
  sample,    // a quantity that is one observation (evidence, range)
};

struct Node {
  Node() = default;
  Node(NodeKind k, ValueType t) : kind(k), type(t) {}

  NodeKind kind = NodeKind::boolean;
  ValueType type = ValueType::boolean;
  std::string unit;                  // for quantities and samples: the canonical unit
  double number = 0;                 // literal value; held_for threshold
  bool flag = false;                 // boolean literal; baseline() has a default (in `number`)
  std::int64_t window_ms = 0;        // latest/min/max/avg/count/held_for window (the concept's freshness
                                     // when not written; filled in at load)
  std::int64_t other_window_ms = 0;  // paired(x, y): the freshness of y
  std::string concept_name;          // the concept a function reads (first argument)
  std::string other_concept;         // paired(x, y): y
  int concept_index = -1;            // ConceptMap::index_of(concept_name), for the engine's tables
  int other_index = -1;
  CompareOp op = CompareOp::eq;
  std::vector<Node> children;
  int offset = 0;       // 0-based position in the expression text, for messages
  int unit_offset = 0;  // literals: where the written unit starts
};

// A compiled condition with the text it came from.
struct Expression {
  std::string text;
  Node root;
};

std::string_view to_string(CompareOp op);

}  // namespace iraewatch::rules
