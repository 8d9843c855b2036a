#include "iraewatch/engine/engine.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
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

bool reads(const rules::Rule& r, const std::string& concept_name) {
  return std::find(r.inputs.begin(), r.inputs.end(), concept_name) != r.inputs.end();
}

}  // namespace

Engine::Engine(std::shared_ptr<const rules::RuleSet> rules) : rules_(std::move(rules)) {
  for (const auto& [concept_name, indexes] : rules_->rules_by_concept) {
    std::set<std::string> signals;
    for (auto i : indexes) signals.insert(rules_->rules[i].signal);
    signals_by_concept_[concept_name].assign(signals.begin(), signals.end());
  }
}

void Engine::warm(const core::Record& record) {
  auto& state = patients_[core::record_patient(record)];
  std::visit([&](const auto& r) { state.history.apply(r); }, record);
}

void Engine::settle() {
  for (auto& [patient, state] : patients_) {
    std::int64_t t = state.history.latest_observation_ms();
    if (!state.history.doses().empty()) t = std::max(t, state.history.doses().back().time_ms);
    for (const auto& [name, signal] : rules_->signals)
      evaluate_signal(patient, state, name, t, 0, "", "", Change::added, false);
  }
}

std::vector<AlertEvent> Engine::process(const core::Record& record, Change change) {
  auto& state = patients_[core::record_patient(record)];
  std::vector<AlertEvent> events;
  const std::string trigger = std::visit([](const auto& r) { return r.provenance.feed + "|" + r.id; }, record);
  if (const auto* o = std::get_if<core::Observation>(&record)) {
    const std::string changed = state.history.apply(*o);
    if (changed.empty()) return events;
    auto it = signals_by_concept_.find(changed);
    if (it == signals_by_concept_.end()) return events;
    for (const auto& signal : it->second) {
      auto e = evaluate_signal(o->patient, state, signal, o->time.utc_ms, o->time.offset_min, trigger, changed, change, true);
      events.insert(events.end(), std::make_move_iterator(e.begin()), std::make_move_iterator(e.end()));
    }
    return events;
  }
  const auto& m = std::get<core::MedicationAdministration>(record);
  if (!state.history.apply(m)) return events;
  // A dose changes the exposure picture of everything after it: judge as of the newest data.
  const std::int64_t t = std::max(m.time.utc_ms, state.history.latest_observation_ms());
  for (const auto& [name, signal] : rules_->signals) {
    auto e = evaluate_signal(m.patient, state, name, t, m.time.offset_min, trigger, "", change, true);
    events.insert(events.end(), std::make_move_iterator(e.begin()), std::make_move_iterator(e.end()));
  }
  return events;
}

std::vector<Engine::RuleOutcome> Engine::evaluate_rules(const PatientHistory& history, const std::string& signal,
                                                        std::int64_t t, const Exposure& exposure) const {
  std::vector<RuleOutcome> out;
  Evaluator ev(*rules_, history, t, exposure);
  for (const auto& rule : rules_->rules) {
    if (!rule.enabled || rule.signal != signal) continue;
    RuleOutcome o{&rule, false, 0, {}};
    if (rule.require_ici_exposure && !exposure.on_ici) {
      out.push_back(std::move(o));  // not on an ICI at this time: the rule cannot judge
      continue;
    }
    ev.set_rule(rule);
    bool unknown = false;
    for (const auto& g : rule.grades) {
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
    const auto* c = rules_->concepts.find_concept(l.node->concept_name);
    Evidence e;
    e.concept_name = l.node->concept_name;
    e.display = c ? c->display : e.concept_name;
    e.unit = c ? c->unit : "";
    e.role = role_of(l.node->kind);
    e.value = l.value;
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

std::vector<AlertEvent> Engine::evaluate_signal(const std::string& patient, PatientState& state, const std::string& signal,
                                                std::int64_t t, std::int32_t offset_min, const std::string& trigger,
                                                const std::string& changed_concept, Change change, bool emit) {
  const Exposure exposure = exposure_at(state.history, rules_->settings, t);
  auto outcomes = evaluate_rules(state.history, signal, t, exposure);
  SignalState& s = state.signals[signal];

  // A rule that cannot judge now keeps its last known grade (silence never resolves an alert),
  // unless this record corrected or withdrew data the rule reads.
  std::map<std::string, int> grades;
  const RuleOutcome* best = nullptr;
  int grade = 0;
  rules::Severity severity = rules::Severity::info;
  std::vector<std::string> holding;
  for (const auto& o : outcomes) {
    int g = o.grade;
    if (!o.known) {
      const bool invalidated = change == Change::new_version && reads(*o.rule, changed_concept);
      auto it = s.rule_grades.find(o.rule->id);
      g = invalidated || it == s.rule_grades.end() ? 0 : it->second;
    }
    grades[o.rule->id] = g;
    if (g == 0) continue;
    holding.push_back(o.rule->id);
    const auto sev = severity_of(*o.rule, g);
    if (g > grade || (g == grade && severity_rank(sev) > severity_rank(severity))) {
      grade = g;
      severity = sev;
      best = &o;
    }
  }

  const rules::Signal& sig = rules_->signals.at(signal);
  std::string finding;
  if (best) finding = best->known ? render(best->rule->summary, state.history, t, exposure, *best->rule) : s.summary;

  std::vector<AlertEvent> events;
  std::string event;
  const int prev = s.grade;
  if (grade > 0) {
    if (prev == 0) event = "fired";
    else if (grade > prev || severity_rank(severity) > severity_rank(s.severity)) event = "escalated";
    else if (grade < prev || severity_rank(severity) < severity_rank(s.severity) || finding != s.summary) event = "updated";
  } else if (prev > 0) {
    event = change == Change::new_version ? "retracted" : "resolved";
  }

  if (emit && !event.empty()) {
    AlertEvent e;
    e.event = event;
    e.patient = patient;
    e.signal = signal;
    e.grade = grade;
    e.previous_grade = prev;
    e.time = core::EventTime{t, offset_min};
    e.trigger = trigger;
    e.ruleset_version = rules_->version;
    e.review_note = rules_->wording.review_note;
    e.combination_therapy = exposure.combination;
    if (exposure.combination) e.context = rules_->wording.combination_note;
    e.rules = holding;
    std::string summary;
    if (best) {
      const auto& r = *best->rule;
      e.rule = r.id;
      e.severity = std::string(rules::to_string(severity));
      e.title = sig.title + ": " + r.title;
      e.action = action_for(r, grade);
      e.ctcae = r.ctcae;
      e.references = r.references;
      e.evidence = evidence(best->looked);
      summary = rules_->wording.alert_summary;
    } else {
      e.severity = "info";
      e.title = sig.title;
      e.ctcae = sig.ctcae;
      summary = event == "retracted" ? rules_->wording.retracted_summary : rules_->wording.resolved_summary;
      // Say what the newer data shows: the first rule's finding as of now.
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
  s.summary = grade > 0 ? finding : std::string();
  return events;
}

}  // namespace iraewatch::engine
