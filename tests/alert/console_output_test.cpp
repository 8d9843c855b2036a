#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "iraewatch/alert/console_output.hpp"
#include "support/daemon.hpp"

using namespace iraewatch;

namespace {

core::AlertNotice notice(int seq, std::string text) {
  core::AlertNotice n;
  n.seq = seq;
  n.alert_id = seq;
  n.event = "fired";
  n.severity = "warning";
  n.line = R"({"seq":)" + std::to_string(seq) + "}";
  n.text = std::move(text);
  return n;
}

std::string contents(std::FILE* file) {
  std::rewind(file);
  std::string text;
  char buffer[256];
  while (const std::size_t n = std::fread(buffer, 1, sizeof buffer, file)) text.append(buffer, n);
  return text;
}

// Closes a stream the test opened.
struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

}  // namespace

TEST_CASE("the console output writes each notice's text as a line, in order", "[alert]") {
  FilePtr file(std::tmpfile());
  REQUIRE(file);
  alert::ConsoleOutput output("console", file.get());
  CHECK(output.name() == "console");

  std::vector<core::AlertNotice> batch{notice(1, "alert 1 fired: colitis grade 2 (MRN-1)"),
                                       notice(2, "alert 2 fired: thyroid grade 2 — critical (MRN-2)")};
  REQUIRE(output.deliver(batch));
  REQUIRE(output.deliver({}));
  std::vector<core::AlertNotice> more{notice(3, "alert 1 resolved: colitis")};
  REQUIRE(output.deliver(more));
  CHECK(contents(file.get()) ==
        "alert 1 fired: colitis grade 2 (MRN-1)\n"
        "alert 2 fired: thyroid grade 2 — critical (MRN-2)\n"
        "alert 1 resolved: colitis\n");
}

TEST_CASE("a console write that fails is an io error", "[alert]") {
  testing::TempDir tmp;
  std::vector<core::AlertNotice> batch{notice(1, "alert 1 fired")};

  SECTION("a read-only stream") {
    const std::string path = tmp.file("read-only.txt");
    testing::write_file(path, "");
    FilePtr file(std::fopen(path.c_str(), "r"));
    REQUIRE(file);
    alert::ConsoleOutput output("console", file.get());
    auto delivered = output.deliver(batch);
    REQUIRE_FALSE(delivered);
    CHECK(delivered.error().code == core::ErrorCode::io);
    CHECK(delivered.error().message.find("console") != std::string::npos);
  }

  SECTION("a full device: the error shows at the flush") {
    if (!std::filesystem::exists("/dev/full")) return;
    FilePtr file(std::fopen("/dev/full", "w"));
    REQUIRE(file);
    alert::ConsoleOutput output("console", file.get());
    auto delivered = output.deliver(batch);
    REQUIRE_FALSE(delivered);
    CHECK(delivered.error().code == core::ErrorCode::io);
    CHECK(delivered.error().message.find("No space left on device") != std::string::npos);
    CHECK_FALSE(output.deliver(batch));  // still failing, not stuck on a stale flag
  }
}
