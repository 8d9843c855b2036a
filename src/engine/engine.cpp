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
  for (std::size_t pos = 0; (pos = s.find(key, pos)) != std::string::npos; pos += value.size())
    s.replace(pos, key.size(), value);
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
    case rules::NodeKind::latest:
      return "latest";
    case rules::NodeKind::previous:
      return "previous";
    case rules::NodeKind::baseline:
      return "baseline";
    case rules::NodeKind::paired:
      return "paired";
    case rules::NodeKind::min:
      return "min";
    case rules::NodeKind::max:
      return "max";
    case rules::NodeKind::held_for:
      return "run start";
    default:
      return "value";
  }
}

int severity_rank(rules::Severity s) {
  return static_cast<int>(s);
}

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
    signals_.push_back(SignalInfo{&signal, {}, {}});
  }
  signals_of_concept_.resize(rules_->concepts.concepts().size());
  for (const auto& rule : rules_->rules) {
    if (!rule.enabled) continue;
    const std::size_t sig = signal_index.at(rule.signal);
    signals_[sig].rules.push_back(&rule);
    for (const auto& name : rule.inputs) {
      const auto index = rules_->concepts.index_of(*rules_->concepts.find_concept(name));
      auto& sigs = signals_of_concept_[index];
      if (std::find(sigs.begin(), sigs.end(), sig) == sigs.end()) sigs.push_back(sig);
      auto& sig_inputs = signals_[sig].inputs;
      if (std::find(sig_inputs.begin(), sig_inputs.end(), static_cast<int>(index)) == sig_inputs.end())
        sig_inputs.push_back(static_cast<int>(index));
    }
  }
}

Engine::PatientState& Engine::state_of(const std::string& patient) {
  auto [it, added] = patients_.try_emplace(patient);
  if (added) {
    it->second.signals.resize(signals_.size());
    for (std::size_t i = 0; i < signals_.size(); ++i) {
      it->second.signals[i].rule_grades.assign(signals_[i].rules.size(), 0);
      it->second.signals[i].held_ms.assign(signals_[i].rules.size(), 0);
      it->second.signals[i].basis.resize(signals_[i].rules.size());
    }
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
      evaluate_signal(patient, state, s, std::max(newest_input_ms(state.history, s), t), 0, "", nullptr, Change::added,
                      Mode::silent);
  }
}

std::int64_t Engine::newest_input_ms(const PatientHistory& history, std::size_t signal) const {
  std::int64_t newest = INT64_MIN;
  for (const int c : signals_[signal].inputs)
    if (const auto* v = history.series(c)) newest = std::max(newest, v->back().time_ms);
  return newest;
}

// True when every value a rule last held on has a newer value (up to t): the rule is unknown
// now for another reason (e.g. one of an "or" never reported), and its old grade rests on
// nothing current. Silence alone (no newer data) never counts.
bool Engine::superseded(const PatientHistory& history, const std::vector<std::pair<int, std::int64_t>>& basis,
                        std::int64_t t) {
  if (basis.empty()) return false;
  for (const auto& [c, time] : basis) {
    const auto* v = history.series(c);
    bool newer = false;
    if (v) {
      for (auto it = v->rbegin(); it != v->rend(); ++it) {
        if (it->time_ms > t) continue;
        newer = it->time_ms > time;
        break;
      }
    }
    if (!newer) return false;
  }
  return true;
}

std::vector<AlertEvent> Engine::process(const core::Record& record, Change change) {
  auto& state = state_of(core::record_patient(record));
  std::vector<AlertEvent> events;
  auto append = [&events](std::vector<AlertEvent> e) {
    if (events.empty())
      events = std::move(e);
    else
      events.insert(events.end(), std::make_move_iterator(e.begin()), std::make_move_iterator(e.end()));
  };
  const bool replaces = change == Change::new_version;
  const std::string trigger = std::visit([](const auto& r) { return r.provenance.feed + "|" + r.id; }, record);
  if (const auto* o = std::get_if<core::Observation>(&record)) {
    const auto applied = state.history.apply(*o, concept_index_of(*rules_, *o), replaces);
    // The signals that read a changed series (usually one; two when a version moved concept).
    std::vector<std::pair<std::size_t, int>> todo;  // signal, the concept that changed
    for (const int changed : {applied.added_to, applied.removed_from}) {
      if (changed < 0) continue;
      for (const auto sig : signals_of_concept_[static_cast<std::size_t>(changed)])
        if (std::none_of(todo.begin(), todo.end(), [&](const auto& p) { return p.first == sig; }))
          todo.emplace_back(sig, changed);
    }
    const std::int64_t t = o->time.utc_ms;
    const Withdrawn withdrawn{applied.removed_from, applied.removed_time, false};
    const Withdrawn* w = applied.removed_from >= 0 ? &withdrawn : nullptr;
    for (const auto& [sig, changed] : todo) {
      // Late data is judged as of its own time, where it may raise an alert; the alert's state
      // then follows the newest data, so a past view never lowers or closes a current alert.
      const std::int64_t now = newest_input_ms(state.history, sig);
      if (now > t) {
        append(evaluate_signal(o->patient, state, sig, t, o->time.offset_min, trigger, w, change, Mode::raise_only));
        append(evaluate_signal(o->patient, state, sig, now, o->time.offset_min, trigger, w, change, Mode::normal));
      } else {
        append(evaluate_signal(o->patient, state, sig, t, o->time.offset_min, trigger, w, change, Mode::normal));
      }
    }
    return events;
  }
  const auto& m = std::get<core::MedicationAdministration>(record);
  if (!state.history.apply(m, replaces)) return events;
  // A dose changes the exposure picture of everything after it. A dose that arrives after data
  // taken since it is judged as that data would have been had the dose arrived first: as of each
  // such observation (raising only), then as of the newest.
  const Withdrawn exposure_changed{-1, 0, true};
  const Withdrawn* changed = replaces ? &exposure_changed : nullptr;
  for (std::size_t s = 0; s < signals_.size(); ++s) {
    const std::int64_t newest = newest_input_ms(state.history, s);
    if (newest > m.time.utc_ms) {
      std::vector<std::int64_t> times;
      for (const int c : signals_[s].inputs)
        if (const auto* v = state.history.series(c))
          for (const auto& sample : *v)
            if (sample.time_ms >= m.time.utc_ms && sample.time_ms < newest) times.push_back(sample.time_ms);
      std::sort(times.begin(), times.end());
      times.erase(std::unique(times.begin(), times.end()), times.end());
      for (const auto t : times)
        append(evaluate_signal(m.patient, state, s, t, m.time.offset_min, trigger, changed, change, Mode::raise_only));
    }
    append(evaluate_signal(m.patient, state, s, std::max(m.time.utc_ms, newest), m.time.offset_min, trigger, changed,
                           change, Mode::normal));
  }
  return events;
}

Engine::RuleOutcome Engine::evaluate_rule(const PatientHistory& history, const rules::Rule& rule, std::int64_t t,
                                          const Exposure& exposure) const {
  RuleOutcome o;
  Evaluator ev(*rules_, history, t, exposure);
  ev.set_rule(rule);
  bool unknown = false;
  for (const auto& g : rule.grades) {
    ev.looked().clear();
    const Value v = ev.eval(g.when.root);
    if (!v.known()) {
      unknown = true;
      if (o.looked.empty()) o.looked = ev.looked();  // what it could read, if nothing decides
      continue;
    }
    o.looked = ev.looked();  // the last decided condition: what shows it holds, or not
    if (v.truth) {
      o.grade = g.grade;
      break;
    }
  }
  o.known = o.grade > 0 || !unknown;
  // Off treatment (or past the exposure window) a rule may still show that a signal no longer
  // holds, but it never raises one.
  if (rule.require_ici_exposure && !exposure.on_ici && o.grade > 0) {
    o = RuleOutcome{};
    o.gated = true;
  }
  return o;
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
      case Value::Kind::unknown:
        out += rules_->wording.unknown_value.empty() ? "n/a" : rules_->wording.unknown_value;
        break;
      case Value::Kind::boolean:
        out += v.truth ? "yes" : "no";
        break;
      case Value::Kind::duration:
        out += format_duration(v.number);
        break;
      case Value::Kind::number:
        out += v.is_default && !rules_->wording.default_value.empty()
                   ? replace_all(rules_->wording.default_value, "{value}", format_number(v.number))
                   : format_number(v.number);
        break;
    }
  }
  return out;
}

std::vector<AlertEvent> Engine::evaluate_signal(const std::string& patient, PatientState& state, std::size_t signal,
                                                std::int64_t t, std::int32_t offset_min, const std::string& trigger,
                                                const Withdrawn* withdrawn, Change change, Mode mode) {
  const SignalInfo& info = signals_[signal];
  const Exposure exposure = exposure_at(state.history, rules_->settings, t);
  std::vector<RuleOutcome> outcomes;
  outcomes.reserve(info.rules.size());
  for (const rules::Rule* rule : info.rules) outcomes.push_back(evaluate_rule(state.history, *rule, t, exposure));
  SignalState& s = state.signals[signal];

  // A rule that cannot judge now keeps its last known grade (silence never resolves an alert),
  // unless this record corrected or withdrew data the rule reads.
  std::vector<int> grades(outcomes.size(), 0);
  int best = -1;
  int grade = 0;
  rules::Severity severity = rules::Severity::info;
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    const auto& o = outcomes[i];
    int g = o.grade;
    if (!o.known) {
      const auto& basis = s.basis[i];
      const bool basis_withdrawn =
          withdrawn &&
          (withdrawn->exposure ||
           std::find(basis.begin(), basis.end(), std::pair{withdrawn->concept_index, withdrawn->time}) != basis.end());
      if (!o.gated && superseded(state.history, basis, t)) {
        g = 0;
      } else if (basis_withdrawn && s.rule_grades[i] > 0) {
        // What the rule held on was corrected or withdrawn: judge it again as of when it held.
        const std::int64_t then = s.held_ms[i];
        const RuleOutcome again =
            evaluate_rule(state.history, *info.rules[i], then, exposure_at(state.history, rules_->settings, then));
        g = again.known ? again.grade : 0;
      } else {
        g = s.rule_grades[i];
      }
    }
    grades[i] = g;
    if (g == 0) continue;
    const auto sev = severity_of(*info.rules[i], g);
    if (g > grade || (g == grade && severity_rank(sev) > severity_rank(severity))) {
      grade = g;
      severity = sev;
      best = static_cast<int>(i);
    }
  }
  const bool best_known = best >= 0 && outcomes[static_cast<std::size_t>(best)].known;
  // What the current grade rests on; a carried rule keeps the fingerprint it had.
  const std::uint64_t key = best_known ? fingerprint(info.rules[static_cast<std::size_t>(best)],
                                                     outcomes[static_cast<std::size_t>(best)].looked)
                                       : s.evidence_key;

  std::string event;
  const int prev = s.grade;
  if (grade > 0) {
    if (prev == 0)
      event = "fired";
    else if (grade > prev || severity_rank(severity) > severity_rank(s.severity))
      event = "escalated";
    else if (grade < prev || severity_rank(severity) < severity_rank(s.severity) || key != s.evidence_key)
      event = "updated";
  } else if (prev > 0) {
    event = change == Change::new_version ? "retracted" : "resolved";
  }
  if (mode == Mode::raise_only && event != "fired" && event != "escalated") return {};

  // The rule that explains the event: the one that sets the grade, or (resolved, retracted) the
  // one that set it before. A carried rule is explained as of the time it last held.
  const int explain = best >= 0 ? best : s.best;
  RuleOutcome explained;
  std::int64_t explained_at = t;
  std::string finding = s.summary;
  if (!event.empty() && explain >= 0) {
    const auto& rule = *info.rules[static_cast<std::size_t>(explain)];
    if (best >= 0 && !best_known) explained_at = s.held_ms[static_cast<std::size_t>(best)];
    const Exposure exp_then = explained_at == t ? exposure : exposure_at(state.history, rules_->settings, explained_at);
    explained = explained_at == t ? outcomes[static_cast<std::size_t>(explain)]
                                  : evaluate_rule(state.history, rule, explained_at, exp_then);
    finding = render(rule.summary, state.history, explained_at, exp_then, rule);
  }
  // An "updated" whose words do not change (e.g. the same value re-measured) is not worth a line.
  if (event == "updated" && grade == prev && severity == s.severity && finding == s.summary) event.clear();

  std::vector<AlertEvent> events;
  if (mode != Mode::silent && !event.empty()) {
    const rules::Signal& sig = *info.signal;
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
      if (grades[i] > 0) e.rules.push_back(info.rules[i]->id);
    e.severity = std::string(rules::to_string(grade > 0 ? severity : rules::Severity::info));
    e.title = sig.title;
    e.ctcae = sig.ctcae;
    if (explain >= 0) {
      const auto& r = *info.rules[static_cast<std::size_t>(explain)];
      e.rule = r.id;
      e.title = sig.title + ": " + r.title;
      e.ctcae = r.ctcae;
      e.references = r.references;
      e.evidence = evidence(explained.looked);
      if (grade > 0) e.action = action_for(r, grade);
    }
    std::string summary = grade > 0              ? rules_->wording.alert_summary
                          : event == "retracted" ? rules_->wording.retracted_summary
                                                 : rules_->wording.resolved_summary;
    e.indicator = e.severity;
    summary = replace_all(summary, "{signal_title}", sig.title);
    summary = replace_all(summary, "{grade}", std::to_string(grade));
    summary = replace_all(summary, "{previous_grade}", std::to_string(prev));
    summary = replace_all(summary, "{finding}", finding);
    e.summary = clip(summary);
    events.push_back(std::move(e));
  }

  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    if (!outcomes[i].known) continue;
    if (outcomes[i].grade > 0) {
      s.held_ms[i] = t;
      s.basis[i].clear();
      for (const auto& l : outcomes[i].looked)  // baselines are references, not what a rule holds on
        if (l.sample && l.node->kind != rules::NodeKind::baseline)
          s.basis[i].emplace_back(l.node->concept_index, l.sample->time_ms);
    } else {
      s.basis[i].clear();
    }
  }
  s.grade = grade;
  s.severity = severity;
  s.best = best;
  s.rule_grades = std::move(grades);
  s.evidence_key = grade > 0 ? key : 0;
  s.summary = grade > 0 ? finding : std::string();
  return events;
}

}  // namespace iraewatch::engine
