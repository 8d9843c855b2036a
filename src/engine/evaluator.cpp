#include "iraewatch/engine/evaluator.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace iraewatch::engine {

using rules::NodeKind;

Exposure exposure_at(const PatientHistory& history, const rules::Settings& settings, std::int64_t t) {
  Exposure e;
  std::optional<std::int64_t> last_ctla4, last_pd;
  for (const auto& d : history.doses()) {
    if (d.time_ms > t) break;
    if (!e.first_dose_ms) e.first_dose_ms = d.time_ms;
    e.last_dose_ms = d.time_ms;
    if (d.ici_class == "ctla4") {
      if (last_pd && d.time_ms - *last_pd <= settings.combination_window_ms) e.combination = true;
      last_ctla4 = d.time_ms;
    } else if (d.ici_class == "pd1" || d.ici_class == "pdl1") {
      if (last_ctla4 && d.time_ms - *last_ctla4 <= settings.combination_window_ms) e.combination = true;
      last_pd = d.time_ms;
    }
  }
  e.on_ici = e.last_dose_ms && t - *e.last_dose_ms <= settings.ici_exposure_window_ms;
  return e;
}

namespace {

Value kleene_and(const Value& a, const Value& b) {
  if ((a.known() && !a.truth) || (b.known() && !b.truth)) return Value::boolean(false);
  if (!a.known() || !b.known()) return Value::unknown();
  return Value::boolean(true);
}

Value kleene_or(const Value& a, const Value& b) {
  if ((a.known() && a.truth) || (b.known() && b.truth)) return Value::boolean(true);
  if (!a.known() || !b.known()) return Value::unknown();
  return Value::boolean(false);
}

bool compare(double a, rules::CompareOp op, double b) {
  switch (op) {
    case rules::CompareOp::lt:
      return a < b;
    case rules::CompareOp::le:
      return a <= b;
    case rules::CompareOp::gt:
      return a > b;
    case rules::CompareOp::ge:
      return a >= b;
    case rules::CompareOp::eq:
      return a == b;
    case rules::CompareOp::ne:
      return a != b;
  }
  return false;
}

}  // namespace

bool Evaluator::visible(const Sample& s) const {
  if (s.time_ms > t_) return false;
  if (s.preliminary && !(rule_ && rule_->evaluate_preliminary)) return false;
  // Rules that watch treated patients judge only values taken at or after the first dose.
  if (rule_ && rule_->require_ici_exposure && (!exposure_.first_dose_ms || s.time_ms < *exposure_.first_dose_ms))
    return false;
  return true;
}

std::int64_t Evaluator::earliest_visible() const {
  if (rule_ && rule_->require_ici_exposure)
    return exposure_.first_dose_ms ? *exposure_.first_dose_ms : std::numeric_limits<std::int64_t>::max();
  return std::numeric_limits<std::int64_t>::min();
}

std::vector<Sample>::const_iterator Evaluator::end_at_t(const std::vector<Sample>& v) const {
  return std::upper_bound(v.begin(), v.end(), t_, [](std::int64_t t, const Sample& s) { return t < s.time_ms; });
}

// Every scan below walks back from the evaluation time and stops at the first value that could
// not count (too old for the window, or before the first dose): cost follows the window, not the
// length of the patient's history.
const Sample* Evaluator::latest(const std::vector<Sample>& v, std::int64_t window) const {
  const std::int64_t floor = earliest_visible();
  for (auto it = end_at_t(v); it != v.begin();) {
    --it;
    if (it->time_ms < floor || t_ - it->time_ms > window) return nullptr;  // none, or the newest is stale
    if (visible(*it)) return &*it;
  }
  return nullptr;
}

Value Evaluator::sample_function(const rules::Node& n) {
  const auto* v = history_.series(n.concept_index);
  const Sample* found = nullptr;
  switch (n.kind) {
    case NodeKind::latest:
      if (v) found = latest(*v, n.window_ms);
      break;
    case NodeKind::previous: {
      const Sample* newest = v ? latest(*v, std::numeric_limits<std::int64_t>::max()) : nullptr;
      if (newest) {
        const std::int64_t floor = earliest_visible();
        for (auto it = v->begin() + (newest - v->data()); it != v->begin() && !found;) {
          --it;
          if (it->time_ms < floor) break;
          if (visible(*it)) found = &*it;
        }
      }
      break;
    }
    case NodeKind::baseline: {
      // The most recent value flagged as baseline; else the most recent before the first dose.
      if (v) {
        if (history_.has_baseline(n.concept_index)) {
          for (auto it = end_at_t(*v); it != v->begin() && !found;) {
            --it;
            if (it->baseline_flag && !it->preliminary) found = &*it;
          }
        }
        if (!found && exposure_.first_dose_ms) {
          auto before = std::lower_bound(v->begin(), v->end(), *exposure_.first_dose_ms,
                                         [](const Sample& s, std::int64_t t) { return s.time_ms < t; });
          for (auto it = before; it != v->begin() && !found;) {
            --it;
            if (!it->preliminary) found = &*it;
          }
        }
      }
      if (!found && n.flag) {
        looked_.push_back({&n, nullptr, n.number});
        Value d = Value::num(n.number);
        d.is_default = true;
        return d;
      }
      break;
    }
    case NodeKind::paired: {
      const auto* other = history_.series(n.other_index);
      const Sample* anchor = other ? latest(*other, n.other_window_ms) : nullptr;
      // The newest x (up to the evaluation time) taken within the pair window of the anchor.
      if (anchor && v) {
        const std::int64_t floor = std::max(earliest_visible(), anchor->time_ms - rules_.settings.pair_window_ms);
        for (auto it = end_at_t(*v); it != v->begin() && !found;) {
          --it;
          if (it->time_ms < floor) break;
          if (visible(*it) && it->time_ms - anchor->time_ms <= rules_.settings.pair_window_ms) found = &*it;
        }
      }
      break;
    }
    default:
      break;
  }
  if (!found) return Value::unknown();
  looked_.push_back({&n, found, found->value});
  return Value::num(found->value, found);
}

Value Evaluator::aggregate(const rules::Node& n) {
  const auto* v = history_.series(n.concept_index);
  const Sample* pick = nullptr;
  double sum = 0;
  int count = 0;
  if (v) {
    const std::int64_t from = std::max(earliest_visible(), t_ - n.window_ms);
    auto first =
        std::lower_bound(v->begin(), v->end(), from, [](const Sample& s, std::int64_t t) { return s.time_ms < t; });
    const auto last = end_at_t(*v);  // found once, not per step
    for (auto it = first; it < last; ++it) {
      const Sample& s = *it;
      if (!visible(s)) continue;
      ++count;
      sum += s.value;
      if (!pick || (n.kind == NodeKind::min && s.value < pick->value) ||
          (n.kind == NodeKind::max && s.value > pick->value))
        pick = &s;
    }
  }
  if (n.kind == NodeKind::count) return Value::num(count);
  if (count == 0) return Value::unknown();
  if (n.kind == NodeKind::avg) return Value::num(sum / count);
  looked_.push_back({&n, pick, pick->value});
  return Value::num(pick->value, pick);
}

Value Evaluator::held_for(const rules::Node& n) {
  const auto* v = history_.series(n.concept_index);
  const Sample* newest = v ? latest(*v, n.window_ms) : nullptr;
  if (!newest) return Value::unknown();
  if (!compare(newest->value, n.op, n.number)) return Value::duration(0);
  const Sample* earliest = newest;
  const std::int64_t floor = earliest_visible();
  for (auto it = v->begin() + (newest - v->data()); it != v->begin();) {
    --it;
    if (it->time_ms < floor) break;
    if (!visible(*it)) continue;
    if (!compare(it->value, n.op, n.number)) break;  // the run is broken
    earliest = &*it;
  }
  looked_.push_back({&n, earliest, earliest->value});
  return Value::duration(static_cast<double>(newest->time_ms - earliest->time_ms));
}

Value Evaluator::eval(const rules::Node& n) {
  switch (n.kind) {
    case NodeKind::number:
      return Value::num(n.number);
    case NodeKind::duration:
      return Value::duration(n.number);
    case NodeKind::boolean:
      return Value::boolean(n.flag);
    case NodeKind::logical_and: {
      Value a = eval(n.children[0]);
      if (a.known() && !a.truth) return a;  // short-circuit: false and anything is false
      return kleene_and(a, eval(n.children[1]));
    }
    case NodeKind::logical_or: {
      Value a = eval(n.children[0]);
      if (a.known() && a.truth) return a;
      return kleene_or(a, eval(n.children[1]));
    }
    case NodeKind::logical_not: {
      Value a = eval(n.children[0]);
      return a.known() ? Value::boolean(!a.truth) : a;
    }
    case NodeKind::compare: {
      Value a = eval(n.children[0]);
      Value b = eval(n.children[1]);
      if (!a.known() || !b.known()) return Value::unknown();
      if (a.kind == Value::Kind::boolean) return Value::boolean(compare(a.truth, n.op, b.truth));
      return Value::boolean(compare(a.number, n.op, b.number));
    }
    case NodeKind::add:
    case NodeKind::subtract:
    case NodeKind::multiply:
    case NodeKind::divide: {
      Value a = eval(n.children[0]);
      Value b = eval(n.children[1]);
      if (!a.known() || !b.known()) return Value::unknown();
      double r = 0;
      switch (n.kind) {
        case NodeKind::add:
          r = a.number + b.number;
          break;
        case NodeKind::subtract:
          r = a.number - b.number;
          break;
        case NodeKind::multiply:
          r = a.number * b.number;
          break;
        default:
          if (b.number == 0) return Value::unknown();
          r = a.number / b.number;
      }
      return a.kind == Value::Kind::duration ? Value::duration(r) : Value::num(r);
    }
    case NodeKind::negate: {
      Value a = eval(n.children[0]);
      return a.known() ? Value::num(-a.number) : a;
    }
    case NodeKind::latest:
    case NodeKind::previous:
    case NodeKind::baseline:
    case NodeKind::paired:
      return sample_function(n);
    case NodeKind::min:
    case NodeKind::max:
    case NodeKind::avg:
    case NodeKind::count:
      return aggregate(n);
    case NodeKind::held_for:
      return held_for(n);
    case NodeKind::ref_low:
    case NodeKind::ref_high:
    case NodeKind::below_low:
    case NodeKind::above_high: {
      Value s = eval(n.children[0]);
      if (!s.known() || !s.sample) return Value::unknown();
      const auto& limit =
          (n.kind == NodeKind::ref_low || n.kind == NodeKind::below_low) ? s.sample->ref_low : s.sample->ref_high;
      if (!limit) return Value::unknown();
      if (n.kind == NodeKind::ref_low || n.kind == NodeKind::ref_high) return Value::num(*limit);
      return Value::boolean(n.kind == NodeKind::below_low ? s.number < *limit : s.number > *limit);
    }
    case NodeKind::on_ici:
      return Value::boolean(exposure_.on_ici);
    case NodeKind::combination_therapy:
      return Value::boolean(exposure_.combination);
    case NodeKind::days_since_first_dose:
      return exposure_.first_dose_ms ? Value::duration(static_cast<double>(t_ - *exposure_.first_dose_ms))
                                     : Value::unknown();
    case NodeKind::days_since_last_dose:
      return exposure_.last_dose_ms ? Value::duration(static_cast<double>(t_ - *exposure_.last_dose_ms))
                                    : Value::unknown();
  }
  return Value::unknown();
}

}  // namespace iraewatch::engine
