#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "iraewatch/alert/file_output.hpp"
#include "support/daemon.hpp"

using namespace iraewatch;

namespace {

// Every line is 40 bytes with its newline, so that sizes in the rotation tests are exact.
constexpr std::size_t kLineBytes = 40;

std::string line_of(int seq) {
  char text[64];
  std::snprintf(text, sizeof text, R"({"seq":%04d,"event":"fired","p":"MRN1"})", seq);
  return text;
}

core::AlertNotice notice(int seq) {
  core::AlertNotice n;
  n.seq = seq;
  n.alert_id = 1;
  n.patient = "MRN-1";
  n.signal = "colitis";
  n.event = "fired";
  n.grade = 2;
  n.severity = "warning";
  n.line = line_of(seq);
  n.text = "alert fired colitis grade 2";
  return n;
}

std::vector<core::AlertNotice> notices(int first, int last) {
  std::vector<core::AlertNotice> out;
  for (int seq = first; seq <= last; ++seq) out.push_back(notice(seq));
  return out;
}

std::string lines(int first, int last) {
  std::string out;
  for (int seq = first; seq <= last; ++seq) out += line_of(seq) + "\n";
  return out;
}

unsigned mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

bool exists(const std::string& path) {
  return std::filesystem::exists(path);
}

// Sets the umask for one test: a permissive one shows that the mode does not come from it.
class UmaskGuard {
 public:
  explicit UmaskGuard(mode_t mask) : previous_(::umask(mask)) {}
  ~UmaskGuard() { ::umask(previous_); }
  UmaskGuard(const UmaskGuard&) = delete;
  UmaskGuard& operator=(const UmaskGuard&) = delete;

 private:
  mode_t previous_;
};

}  // namespace

TEST_CASE("the file output appends each notice's line, in order, to a file of mode 0600", "[alert]") {
  REQUIRE(line_of(1).size() + 1 == kLineBytes);
  testing::TempDir tmp;
  const std::string path = tmp.file("alerts.jsonl");
  UmaskGuard umask(0);
  auto output = alert::FileOutput::open("file", path, 0, 5);
  REQUIRE(output);
  CHECK((*output)->name() == "file");
  CHECK((*output)->path() == path);
  CHECK(mode_of(path) == 0600);

  REQUIRE((*output)->deliver(notices(1, 3)));
  CHECK(testing::read_file(path) == lines(1, 3));
  REQUIRE((*output)->deliver(notices(4, 4)));
  REQUIRE((*output)->deliver({}));
  CHECK(testing::read_file(path) == lines(1, 4));
  CHECK(mode_of(path) == 0600);
}

TEST_CASE("a reopened file output appends, and counts what is there toward rotation", "[alert]") {
  testing::TempDir tmp;
  const std::string path = tmp.file("alerts.jsonl");
  {
    auto output = alert::FileOutput::open("file", path, 3 * kLineBytes, 3);
    REQUIRE(output);
    REQUIRE((*output)->deliver(notices(1, 2)));
  }
  auto output = alert::FileOutput::open("file", path, 3 * kLineBytes, 3);
  REQUIRE(output);
  REQUIRE((*output)->deliver(notices(3, 4)));
  CHECK(testing::read_file(path + ".1") == lines(1, 3));
  CHECK(testing::read_file(path) == lines(4, 4));
}

TEST_CASE("the file output rotates by size and keeps every line exactly once", "[alert]") {
  testing::TempDir tmp;
  const std::string path = tmp.file("alerts.jsonl");
  UmaskGuard umask(0);
  const std::size_t max_bytes = 3 * kLineBytes + 5;  // three lines fit, a fourth does not
  auto output = alert::FileOutput::open("file", path, max_bytes, 10);
  REQUIRE(output);
  REQUIRE((*output)->deliver(notices(1, 1)));
  REQUIRE((*output)->deliver(notices(2, 5)));
  REQUIRE((*output)->deliver(notices(6, 12)));
  REQUIRE((*output)->deliver(notices(13, 20)));

  // Oldest first: path.6 holds 1-3, ..., path.1 holds 16-18, path holds 19-20.
  std::string all;
  for (int i = 6; i >= 1; --i) {
    const std::string rotated = path + "." + std::to_string(i);
    const std::string text = testing::read_file(rotated);
    CHECK(text == lines(19 - 3 * i, 21 - 3 * i));
    CHECK(text.size() <= max_bytes);
    CHECK(mode_of(rotated) == 0600);
    all += text;
  }
  all += testing::read_file(path);
  CHECK(all == lines(1, 20));
  CHECK(mode_of(path) == 0600);
  CHECK_FALSE(exists(path + ".7"));
}

TEST_CASE("rotation drops the files beyond max_files", "[alert]") {
  testing::TempDir tmp;
  const std::string path = tmp.file("alerts.jsonl");
  auto output = alert::FileOutput::open("file", path, 3 * kLineBytes, 3);
  REQUIRE(output);
  for (int seq = 1; seq <= 20; seq += 2) REQUIRE((*output)->deliver(notices(seq, seq + 1)));
  CHECK(testing::read_file(path + ".2") == lines(13, 15));
  CHECK(testing::read_file(path + ".1") == lines(16, 18));
  CHECK(testing::read_file(path) == lines(19, 20));
  CHECK_FALSE(exists(path + ".3"));

  SECTION("max_files 1 keeps only the live file") {
    const std::string single = tmp.file("single.jsonl");
    auto one = alert::FileOutput::open("file", single, 3 * kLineBytes, 1);
    REQUIRE(one);
    REQUIRE((*one)->deliver(notices(1, 7)));
    CHECK(testing::read_file(single) == lines(7, 7));
    CHECK_FALSE(exists(single + ".1"));
  }
}

TEST_CASE("a line longer than max_bytes gets a file of its own, never split", "[alert]") {
  testing::TempDir tmp;
  const std::string path = tmp.file("alerts.jsonl");
  auto output = alert::FileOutput::open("file", path, kLineBytes + 10, 5);
  REQUIRE(output);
  auto batch = notices(1, 3);
  batch[1].line = std::string(200, 'x');
  REQUIRE((*output)->deliver(batch));
  CHECK(testing::read_file(path + ".2") == lines(1, 1));
  CHECK(testing::read_file(path + ".1") == std::string(200, 'x') + "\n");
  CHECK(testing::read_file(path) == lines(3, 3));
}

TEST_CASE("max_bytes 0 never rotates", "[alert]") {
  testing::TempDir tmp;
  const std::string path = tmp.file("alerts.jsonl");
  auto output = alert::FileOutput::open("file", path, 0, 2);
  REQUIRE(output);
  for (int seq = 1; seq <= 100; seq += 10) REQUIRE((*output)->deliver(notices(seq, seq + 9)));
  CHECK(testing::read_file(path) == lines(1, 100));
  CHECK_FALSE(exists(path + ".1"));
}

TEST_CASE("a failed rotation is an io error, and the next delivery rotates again", "[alert]") {
  testing::TempDir tmp;
  const std::string path = tmp.file("alerts.jsonl");
  auto output = alert::FileOutput::open("file", path, 3 * kLineBytes, 2);
  REQUIRE(output);
  // A non-empty folder where path.1 should go: rename() cannot replace it.
  std::filesystem::create_directories(path + ".1/blocker");
  auto failed = (*output)->deliver(notices(1, 4));
  REQUIRE_FALSE(failed);
  CHECK(failed.error().code == core::ErrorCode::io);
  CHECK(failed.error().message.find(path + ".1") != std::string::npos);
  CHECK(testing::read_file(path) == lines(1, 3));  // written whole before the rotation

  std::filesystem::remove_all(path + ".1");
  REQUIRE((*output)->deliver(notices(4, 4)));
  CHECK(testing::read_file(path + ".1") == lines(1, 3));
  CHECK(testing::read_file(path) == lines(4, 4));
}

TEST_CASE("file output errors are io errors that name the path", "[alert]") {
  testing::TempDir tmp;
  const std::string missing = tmp.file("no-such-folder/alerts.jsonl");
  auto opened = alert::FileOutput::open("file", missing, 0, 1);
  REQUIRE_FALSE(opened);
  CHECK(opened.error().code == core::ErrorCode::io);
  CHECK(opened.error().message.find(missing) != std::string::npos);
  CHECK(opened.error().message.find("No such file or directory") != std::string::npos);

  auto no_files = alert::FileOutput::open("file", tmp.file("alerts.jsonl"), 100, 0);
  REQUIRE_FALSE(no_files);
  CHECK(no_files.error().code == core::ErrorCode::config);

  if (exists("/dev/full")) {
    auto full = alert::FileOutput::open("file", "/dev/full", 0, 1);
    REQUIRE(full);
    auto written = (*full)->deliver(notices(1, 2));
    REQUIRE_FALSE(written);
    CHECK(written.error().code == core::ErrorCode::io);
    CHECK(written.error().message.find("/dev/full") != std::string::npos);
    CHECK(written.error().message.find("No space left on device") != std::string::npos);
  }
}
