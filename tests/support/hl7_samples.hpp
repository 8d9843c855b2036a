#pragma once
// Helpers shared by the HL7 tests (tests/ingest, tests/app): the sample folders, the shipped
// concept map, and messages read from files or parsed in place. For Catch2 test programs that
// define IRAEWATCH_SOURCE_DIR (every iraewatch_test does).

#include <catch2/catch.hpp>

#include <list>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "iraewatch/core/concept_map.hpp"
#include "iraewatch/ingest/hl7_mapper.hpp"
#include "iraewatch/ingest/hl7_message.hpp"
#include "iraewatch/rules/rule_set_loader.hpp"
#include "support/daemon.hpp"

namespace iraewatch::testing::hl7 {

// Third-party samples (with their origin and licence notes) and the team's own fixtures.
inline const std::string kSampleDir = std::string(IRAEWATCH_SOURCE_DIR) + "/tests/data/third_party/hl7v2/";
inline const std::string kTeamDir = std::string(IRAEWATCH_SOURCE_DIR) + "/tests/data/hl7/";

// The concept map of the shipped rules, loaded once.
inline const core::ConceptMap& concepts() {
  static const auto rules = rules::load_rule_set(std::string(IRAEWATCH_SOURCE_DIR) + "/rules").rules;
  REQUIRE(rules);
  return rules->concepts;
}

// A file's text, read once and kept for the run: messages are views into it.
inline const std::string& file(const std::string& path) {
  static std::map<std::string, std::string> cache;
  auto it = cache.find(path);
  if (it == cache.end()) it = cache.emplace(path, read_file(path)).first;
  return it->second;
}

inline std::vector<std::string_view> messages_in(const std::string& path) {
  INFO(path);
  auto messages = ingest::hl7::split_messages(file(path));
  if (!messages) FAIL(messages.error().message);
  return *messages;
}

// The only message of a file.
inline std::string_view only_message(const std::string& path) {
  const auto messages = messages_in(path);
  REQUIRE(messages.size() == 1);
  return messages.front();
}

// Keeps a text (a built message or ACK) alive for the rest of the run: a Message is views into it.
inline std::string_view kept(std::string text) {
  static std::list<std::string> texts;
  return texts.emplace_back(std::move(text));
}

inline ingest::hl7::Message parse(std::string_view text) {
  auto m = ingest::hl7::Message::parse(text);
  if (!m) FAIL(m.error().message);
  return *m;
}

// Several third-party samples are test messages (MSH-11 T): the tests take T as patient data, as a
// test deployment would (hl7.processing_ids: [P, T]); the default (P only) is tested on its own.
inline ingest::Hl7Options sample_options() {
  ingest::Hl7Options o;
  o.processing_ids = {"P", "T"};
  return o;
}

}  // namespace iraewatch::testing::hl7
