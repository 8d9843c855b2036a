#include "iraewatch/engine/engine.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <set>

#include "iraewatch/engine/evaluator.hpp"

namespace iraewatch::engine {
namespace {

constexpr std::size_t kMaxSummaryBytes = 139;

std::string format_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  std::string s = buf;
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s == "-0" ? "0" : s;
}

std::string format_duration(double ms) {
  const double days = ms / 86'400'000.0;
  if (days >= 2) return format_number(std::floor(days)) + " days";
  return format_number(std::floor(ms / 3'600'000.0)) + " h";
}

std::string replace_all(std::string s, std::string_view key, const std::string& value) {
  for (std::size_t pos = 0; (pos = s.find(key, pos)) != std::string::npos; pos += value.size()) s.replace(pos, key.size(), value);
  return s;
}

// Keeps a summary under 140 characters, cutting at a character boundary and marking the cut.
std::string clip(std::string s) {
  if (s.size() <= kMaxSummaryBytes) return s;
  std::size_t cut = kMaxSummaryBytes - 3;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  s.resize(cut);
  return s + "\xE2\x80\xA6";  // "…"
}

std::string_view role_of(rules::NodeKind k) {
  switch (k) {
    case rules::NodeKind::latest: return "latest";
    case rules::NodeKind::previous: return "previous";
    case rules::NodeKind::baseline: return "baseline";
    case rules::NodeKind::paired: return "paired";
    case rules::NodeKind::min: return "min";
    case rules::NodeKind::max: return "max";
    case rules::NodeKind::held_for: return "run start";
    default: return "value";
  }
}

int severity_rank(rules::Severity s) { return static_cast<int>(s); }

rules::Severity severity_of(const rules::Rule& r, int grade) {
  return r.severity ? *r.severity : rules::severity_for_grade(grade);
}

std::string action_for(const rules::Rule& r, int grade) {
  // The action of the grade, or of the nearest lower grade that has one.
  for (int g = grade; g >= 1; --g)
    if (auto it = r.actions.find(g); it != r.actions.end()) return it->second;
  return r.actions.empty() ? std::string() : r.actions.begin()->second;
}

// A fingerprint of the values a rule judged, to tell an evidence change from a repeat.
std::uint64_t fingerprint(const rules::Rule* rule, const std::vector<Looked>& looked) {
  std::uint64_t h = reinterpret_cast<std::uintptr_t>(rule);
  auto mix = [&h](std::uint64_t v) { h = (h ^ v) * 0x100000001b3ULL; };
  for (const auto& l : looked) {
    std::uint64_t bits;
    std::memcpy(&bits, &l.value, sizeof bits);
    mix(bits);
    mix(l.sample ? static_cast<std::uint64_t>(l.sample->time_ms) : 0);
  }
  return h;
}

}  // namespace

Engine::Engine(std::shared_ptr<const rules::RuleSet> rules) : rules_(std::move(rules)) {
  std::map<std::string, std::size_t> signal_index;
  for (const auto& [name, signal] : rules_->signals) {
    signal_index[name] = signals_.size();
    signals_.push_back(SignalInfo{&signal, {}});
  }
  signals_of_concept_.resize(rules_->concepts.concepts().size());
  for (const auto& rule : rules_->rules) {
    if (!rule.enabled) continue;
    const std::size_t sig = signal_index.at(rule.signal);
    signals_[sig].rules.push_back(&rule);
    auto& inputs = rule_inputs_[&rule];
    inputs.assign(signals_of_concept_.size(), false);
    for (const auto& name : rule.inputs) {
      const auto index = rules_->concepts.index_of(*rules_->concepts.find_concept(name));
      inputs[index] = true;
      auto& sigs = signals_of_concept_[index];
      if (std::find(sigs.begin(), sigs.end(), sig) == sigs.end()) sigs.push_back(sig);
    }
  }
}

bool Engine::reads(const rules::Rule& rule, int concept_index) const {
  if (concept_index < 0) return false;
  const auto& inputs = rule_inputs_.at(&rule);
  return inputs[static_cast<std::size_t>(concept_index)];
}

Engine::PatientState& Engine::state_of(const std::string& patient) {
  auto [it, added] = patients_.try_emplace(patient);
  if (added) {
    it->second.signals.resize(signals_.size());
    for (std::size_t i = 0; i < signals_.size(); ++i) it->second.signals[i].rule_grades.assign(signals_[i].rules.size(), 0);
  }
  return it->second;
}

namespace {

int concept_index_of(const rules::RuleSet& rs, const core::Observation& o) {
  if (o.concept_name.empty()) return -1;
  const auto* c = rs.concepts.find_concept(o.concept_name);
  return c ? static_cast<int>(rs.concepts.index_of(*c)) : -1;
}

}  // namespace

void Engine::warm(const core::Record& record) {
  auto& state = state_of(core::record_patient(record));
  if (const auto* o = std::get_if<core::Observation>(&record)) {
    state.history.apply(*o, concept_index_of(*rules_, *o), false);
  } else {
    state.history.apply(std::get<core::MedicationAdministration>(record), false);
  }
}

void Engine::settle() {
  for (auto& [patient, state] : patients_) {
    std::int64_t t = state.history.latest_observation_ms();
    if (!state.history.doses().empty()) t = std::max(t, state.history.doses().back().time_ms);
    for (std::size_t s = 0; s < signals_.size(); ++s)
      evaluate_signal(patient, state, s, t, 0, "", -1, Change::added, false);
  }
}

std::vector<AlertEvent> Engine::process(const core::Record& record, Change change) {
  auto& state = state_of(core::record_patient(record));
  std::vector<AlertEvent> events;
  auto append = [&events](std::vector<AlertEvent> e) {
    if (events.empty()) events = std::move(e);
    else events.insert(events.end(), std::make_move_iterator(e.begin()), std::make_move_iterator(e.end()));
  };
  const bool replaces = change == Change::new_version;
  if (const auto* o = std::get_if<core::Observation>(&record)) {
    const auto applied = state.history.apply(*o, concept_index_of(*rules_, *o), replaces);
    // The signals that read a changed series (usually one series; two when a version moved).
    std::vector<std::pair<std::size_t, int>> todo;  // signal, the concept that changed
    for (const int changed : {applied.added_to, applied.removed_from}) {
      if (changed < 0) continue;
      for (const auto sig : signals_of_concept_[static_cast<std::size_t>(changed)])
        if (std::none_of(todo.begin(), todo.end(), [&](const auto& p) { return p.first == sig; })) todo.emplace_back(sig, changed);
    }
    const std::string trigger = o->provenance.feed + "|" + o->id;
    for (const auto& [sig, changed] : todo)
      append(evaluate_signal(o->patient, state, sig, o->time.utc_ms, o->time.offset_min, trigger, changed, change, true));
    return events;
  }
  const auto& m = std::get<core::MedicationAdministration>(record);
  if (!state.history.apply(m, replaces)) return events;
  // A dose changes the exposure picture of everything after it: judge as of the newest data.
  const std::int64_t t = std::max(m.time.utc_ms, state.history.latest_observation_ms());
  const std::string trigger = m.provenance.feed + "|" + m.id;
  for (std::size_t s = 0; s < signals_.size(); ++s)
    append(evaluate_signal(m.patient, state, s, t, m.time.offset_min, trigger, -1, change, true));
  return events;
}

std::vector<Engine::RuleOutcome> Engine::evaluate_rules(const PatientHistory& history, std::size_t signal,
                                                        std::int64_t t, const Exposure& exposure) const {
  std::vector<RuleOutcome> out;
  out.reserve(signals_[signal].rules.size());
  Evaluator ev(*rules_, history, t, exposure);
  for (const rules::Rule* rule : signals_[signal].rules) {
    RuleOutcome o{rule, false, 0, {}};
    if (rule->require_ici_exposure && !exposure.on_ici) {
      out.push_back(std::move(o));  // not on an ICI at this time: the rule cannot judge
      continue;
    }
    ev.set_rule(*rule);
    bool unknown = false;
    for (const auto& g : rule->grades) {
      ev.looked().clear();
      const Value v = ev.eval(g.when.root);
      if (!v.known()) {
        unknown = true;
        continue;
      }
      if (v.truth) {
        o.known = true;
        o.grade = g.grade;
        o.looked = ev.looked();
        break;
      }
    }
    if (o.grade == 0) o.known = !unknown;
    out.push_back(std::move(o));
  }
  return out;
}

std::vector<Evidence> Engine::evidence(const std::vector<Looked>& looked) const {
  std::vector<Evidence> out;
  for (const auto& l : looked) {
    const auto& c = rules_->concepts.concepts()[static_cast<std::size_t>(l.node->concept_index)];
    Evidence e;
    e.concept_name = c.name;
    e.display = c.display;
    e.unit = c.unit;
    e.role = role_of(l.node->kind);
    e.value = std::round(l.value * 10000) / 10000;
    e.from_baseline = l.node->kind == rules::NodeKind::baseline;
    if (l.sample) {
      e.time = core::EventTime{l.sample->time_ms, l.sample->offset_min};
      e.record_id = l.sample->record_id;
    } else {
      e.note = rules_->wording.no_baseline_note;
    }
    const bool seen = std::any_of(out.begin(), out.end(), [&](const Evidence& x) {
      return x.concept_name == e.concept_name && x.role == e.role && x.record_id == e.record_id;
    });
    if (!seen) out.push_back(std::move(e));
  }
  return out;
}

std::string Engine::render(const rules::Template& tmpl, const PatientHistory& history, std::int64_t t,
                           const Exposure& exposure, const rules::Rule& rule) const {
  std::string out;
  Evaluator ev(*rules_, history, t, exposure);
  ev.set_rule(rule);
  for (const auto& part : tmpl.parts) {
    if (!part.expr) {
      out += part.text;
      continue;
    }
    const Value v = ev.eval(part.expr->root);
    switch (v.kind) {
      case Value::Kind::unknown: out += "n/a"; break;
      case Value::Kind::boolean: out += v.truth ? "yes" : "no"; break;
      case Value::Kind::duration: out += format_duration(v.number); break;
      case Value::Kind::number: out += format_number(v.number); break;
    }
  }
  return out;
}

std::vector<AlertEvent> Engine::evaluate_signal(const std::string& patient, PatientState& state, std::size_t signal,
                                                std::int64_t t, std::int32_t offset_min, const std::string& trigger,
                                                int changed_concept, Change change, bool emit) {
  const Exposure exposure = exposure_at(state.history, rules_->settings, t);
  auto outcomes = evaluate_rules(state.history, signal, t, exposure);
  SignalState& s = state.signals[signal];

  // A rule that cannot judge now keeps its last known grade (silence never resolves an alert),
  // unless this record corrected or withdrew data the rule reads.
  std::vector<int> grades(outcomes.size(), 0);
  const RuleOutcome* best = nullptr;
  int grade = 0;
  rules::Severity severity = rules::Severity::info;
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    const auto& o = outcomes[i];
    int g = o.grade;
    if (!o.known) {
      const bool invalidated = change == Change::new_version && reads(*o.rule, changed_concept);
      g = invalidated ? 0 : s.rule_grades[i];
    }
    grades[i] = g;
    if (g == 0) continue;
    const auto sev = severity_of(*o.rule, g);
    if (g > grade || (g == grade && severity_rank(sev) > severity_rank(severity))) {
      grade = g;
      severity = sev;
      best = &o;
    }
  }
  // What the current grade rests on; a carried rule keeps the fingerprint it had.
  const std::uint64_t key = best && best->known ? fingerprint(best->rule, best->looked) : s.evidence_key;

  std::string event;
  const int prev = s.grade;
  if (grade > 0) {
    if (prev == 0) event = "fired";
    else if (grade > prev || severity_rank(severity) > severity_rank(s.severity)) event = "escalated";
    else if (grade < prev || severity_rank(severity) < severity_rank(s.severity) || key != s.evidence_key) event = "updated";
  } else if (prev > 0) {
    event = change == Change::new_version ? "retracted" : "resolved";
  }

  std::vector<AlertEvent> events;
  std::string finding = s.summary;
  if (!event.empty() && best && best->known) finding = render(best->rule->summary, state.history, t, exposure, *best->rule);
  // An "updated" whose words do not change (e.g. the same value re-measured) is not worth a line.
  if (event == "updated" && grade == prev && severity == s.severity && finding == s.summary) event.clear();

  if (emit && !event.empty()) {
    const rules::Signal& sig = *signals_[signal].signal;
    AlertEvent e;
    e.event = event;
    e.patient = patient;
    e.signal = sig.name;
    e.grade = grade;
    e.previous_grade = prev;
    e.time = core::EventTime{t, offset_min};
    e.trigger = trigger;
    e.ruleset_version = rules_->version;
    e.review_note = rules_->wording.review_note;
    e.combination_therapy = exposure.combination;
    if (exposure.combination) e.context = rules_->wording.combination_note;
    for (std::size_t i = 0; i < outcomes.size(); ++i)
      if (grades[i] > 0) e.rules.push_back(outcomes[i].rule->id);
    std::string summary;
    if (best) {
      const auto& r = *best->rule;
      e.rule = r.id;
      e.severity = std::string(rules::to_string(severity));
      e.title = sig.title + ": " + r.title;
      e.action = action_for(r, grade);
      e.ctcae = r.ctcae;
      e.references = r.references;
      if (best->known) e.evidence = evidence(best->looked);
      summary = rules_->wording.alert_summary;
    } else {
      e.severity = "info";
      e.title = sig.title;
      e.ctcae = sig.ctcae;
      summary = event == "retracted" ? rules_->wording.retracted_summary : rules_->wording.resolved_summary;
      // Say what the newer data shows: the first rule that could judge, as of now.
      for (const auto& o : outcomes) {
        if (!o.known) continue;
        finding = render(o.rule->summary, state.history, t, exposure, *o.rule);
        break;
      }
    }
    e.indicator = e.severity;
    summary = replace_all(summary, "{signal_title}", sig.title);
    summary = replace_all(summary, "{grade}", std::to_string(grade));
    summary = replace_all(summary, "{previous_grade}", std::to_string(prev));
    summary = replace_all(summary, "{finding}", finding);
    e.summary = clip(summary);
    events.push_back(std::move(e));
  }

  s.grade = grade;
  s.severity = severity;
  s.rule_grades = std::move(grades);
  s.evidence_key = grade > 0 ? key : 0;
  s.summary = grade > 0 ? finding : std::string();
  return events;
}

}  // namespace iraewatch::engine
