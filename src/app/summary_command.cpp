// `iraewatch summary`: what the store holds, and the most recent rejected input with its reason.

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "iraewatch/app/commands.hpp"
#include "iraewatch/core/event_time.hpp"
#include "iraewatch/store/store.hpp"

namespace iraewatch::app {

namespace {

// Stored reasons and sources quote what senders sent: never let control characters reach the
// terminal as they are.
std::string printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) out += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
  return out;
}

}  // namespace

int run_summary(const Config& config) {
  auto store = store::Store::open(config.data_dir, {config.synchronous_full, 5000, false});
  if (!store) {
    std::fprintf(stderr, "iraewatch: cannot open the store: %s\n", store.error().message.c_str());
    return 2;
  }
  auto s = (*store)->summary();
  if (!s) {
    std::fprintf(stderr, "iraewatch: %s\n", s.error().message.c_str());
    return 2;
  }
  std::printf("store %s (schema %d)\n", store::Store::database_path(config.data_dir).c_str(),
              (*store)->schema_version());
  std::printf("  patients                %lld\n", static_cast<long long>(s->patients));
  std::printf(
      "  observations            %lld (%lld versions; %lld withdrawn; %lld with codes outside the concept map)\n",
      static_cast<long long>(s->observations), static_cast<long long>(s->observation_versions),
      static_cast<long long>(s->withdrawn_observations), static_cast<long long>(s->unmapped_observations));
  for (const auto& [concept_name, n] : s->by_concept)
    std::printf("    %-21s %lld\n", concept_name.c_str(), static_cast<long long>(n));
  std::printf("  administrations         %lld (%lld of ICIs)\n", static_cast<long long>(s->administrations),
              static_cast<long long>(s->ici_administrations));
  std::printf("  rejected input          %lld\n", static_cast<long long>(s->rejected));
  auto rejected = (*store)->rejected(10);
  if (rejected && !rejected->empty()) {
    std::printf("  most recent rejections:\n");
    for (const auto& r : *rejected)
      std::printf("    %s %s:%lld [%s] %s\n", core::format_utc(r.received_ms).c_str(), printable(r.source).c_str(),
                  static_cast<long long>(r.position), r.error_code.c_str(), printable(r.reason).c_str());
  }
  // The alerts: how many events in the outbox, the open alerts, and the latest few events (what a
  // nurse would read).
  auto last_seq = (*store)->last_alert_seq();
  auto open = (*store)->alerts({true, "", 1'000'000});
  if (last_seq && open) {
    std::printf("  alert events            %lld (outbox; `iraewatch alerts` lists the alerts)\n",
                static_cast<long long>(*last_seq));
    std::printf("  open alerts             %zu\n", open->size());
    auto recent = (*store)->alert_events_after(std::max<std::int64_t>(0, *last_seq - 10), 10);
    if (recent)
      for (const auto& e : *recent) std::printf("    %s\n", printable(e.text).c_str());
  }
  return 0;
}

}  // namespace iraewatch::app
