#pragma once
// The file output: alert notices appended as JSON lines to a file that rotates by size, the way
// spdlog's rotating sink does (path -> path.1 -> path.2 ...). A consumer tails `path`; each line
// is written whole and never split across two files.

#include <cstddef>
#include <memory>
#include <span>
#include <string>

#include "iraewatch/alert/output.hpp"
#include "iraewatch/core/alert.hpp"
#include "iraewatch/core/error.hpp"

namespace iraewatch::alert {

class FileOutput final : public Output {
 public:
  // Opens `path` for appending, creating it with mode 0600 (whatever the umask) when it does not
  // exist; an existing file keeps its mode and content. When appending a line would take the
  // file past `max_bytes`, the file rotates first: path.(max_files-2) -> path.(max_files-1), ...,
  // path -> path.1, and a fresh `path` is created. `max_files` counts the live file too, so
  // max_files - 1 rotated files are kept and the oldest beyond them is dropped (1 keeps none).
  // A line longer than `max_bytes` gets a file of its own. `max_bytes` 0 never rotates.
  // Errors: io (naming the path and the system's reason), config when max_bytes > 0 and
  // max_files is 0.
  static core::Result<std::unique_ptr<FileOutput>> open(std::string name, std::string path, std::size_t max_bytes,
                                                        std::size_t max_files);

  ~FileOutput() override;
  FileOutput(const FileOutput&) = delete;
  FileOutput& operator=(const FileOutput&) = delete;

  const std::string& name() const override { return name_; }

  // Appends each notice's `line` and a newline, rotating as needed, then fdatasync()s: success
  // means every line is on disk. On a failed write the partial segment is cut off again, so the
  // file holds only whole lines; lines already moved to a rotated file stay there and will be
  // written again when the notices are offered again (delivery is at least once).
  core::Result<void> deliver(std::span<const core::AlertNotice> notices) override;
  // fdatasync when something was written since the last sync.
  core::Result<void> sync() override;

  const std::string& path() const { return path_; }

 private:
  FileOutput(std::string name, std::string path, std::size_t max_bytes, std::size_t max_files);

  core::Result<void> open_live_file(bool truncate);
  core::Result<void> write_segment(const std::string& segment);
  core::Result<void> rotate();

  std::string name_;
  std::string path_;
  std::size_t max_bytes_;
  std::size_t max_files_;
  int fd_ = -1;  // -1 after a failed rotation: the next deliver() reopens `path`
  bool unsynced_ = false;
  std::size_t size_ = 0;  // bytes in the live file
};

}  // namespace iraewatch::alert
