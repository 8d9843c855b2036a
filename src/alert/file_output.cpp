#include "iraewatch/alert/file_output.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

namespace iraewatch::alert {

using core::ErrorCode;
using core::fail;

namespace {

std::string system_reason() {
  return std::strerror(errno);
}

std::string rotated_name(const std::string& path, std::size_t index) {
  return index == 0 ? path : path + "." + std::to_string(index);
}

// A created or renamed file is durable only once its folder is: fsync the folder. Filesystems
// that cannot sync a folder (EINVAL) have nothing more to do.
core::Result<void> sync_folder(const std::string& path) {
  std::string folder = std::filesystem::path(path).parent_path().string();
  if (folder.empty()) folder = ".";
  const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return fail(ErrorCode::io, "cannot open the folder of alert file '" + path + "': " + system_reason());
  const bool synced = ::fsync(fd) == 0 || errno == EINVAL;
  const std::string reason = synced ? "" : system_reason();
  ::close(fd);
  if (!synced) return fail(ErrorCode::io, "cannot sync the folder of alert file '" + path + "': " + reason);
  return {};
}

}  // namespace

core::Result<std::unique_ptr<FileOutput>> FileOutput::open(std::string name, std::string path, std::size_t max_bytes,
                                                           std::size_t max_files) {
  if (max_bytes > 0 && max_files == 0)
    return fail(ErrorCode::config, "alert file '" + path + "': max_files must be at least 1 when it rotates");
  std::unique_ptr<FileOutput> output(new FileOutput(std::move(name), std::move(path), max_bytes, max_files));
  if (auto opened = output->open_live_file(false); !opened) return std::unexpected(std::move(opened.error()));
  return output;
}

FileOutput::FileOutput(std::string name, std::string path, std::size_t max_bytes, std::size_t max_files)
    : name_(std::move(name)), path_(std::move(path)), max_bytes_(max_bytes), max_files_(max_files) {}

FileOutput::~FileOutput() {
  if (fd_ >= 0) ::close(fd_);
}

core::Result<void> FileOutput::open_live_file(bool truncate) {
  // The mode is given explicitly: patient identifiers must not become readable to others because
  // of a permissive umask (the umask can only remove bits from 0600).
  const int flags = O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : 0);
  const int fd = ::open(path_.c_str(), flags, S_IRUSR | S_IWUSR);
  if (fd < 0) return fail(ErrorCode::io, "cannot open alert file '" + path_ + "': " + system_reason());
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const std::string reason = system_reason();
    ::close(fd);
    return fail(ErrorCode::io, "cannot stat alert file '" + path_ + "': " + reason);
  }
  if (auto synced = sync_folder(path_); !synced) {
    ::close(fd);
    return synced;
  }
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
  size_ = static_cast<std::size_t>(st.st_size);
  return {};
}

core::Result<void> FileOutput::deliver(std::span<const core::AlertNotice> notices) {
  if (notices.empty()) return {};
  if (fd_ < 0) {
    if (auto opened = open_live_file(false); !opened) return opened;
  } else if (struct stat st{}; ::fstat(fd_, &st) == 0) {
    size_ = static_cast<std::size_t>(st.st_size);  // someone may have truncated it (copytruncate)
  }
  // Lines go out in segments, one write per file: a segment ends where the next line would take
  // the live file past max_bytes_, and the file rotates before the next segment.
  std::string segment;
  for (const auto& notice : notices) {
    const std::size_t line_bytes = notice.line.size() + 1;
    const std::size_t used = size_ + segment.size();
    if (max_bytes_ > 0 && used > 0 && used + line_bytes > max_bytes_) {
      if (auto written = write_segment(segment); !written) return written;
      segment.clear();
      if (auto rotated = rotate(); !rotated) return rotated;
    }
    segment += notice.line;
    segment += '\n';
  }
  return write_segment(segment);
}

// Appends whole lines (sync() makes them durable). A failed write is undone by truncating the file
// back to where the segment began, so that a reader never sees half a line.
core::Result<void> FileOutput::write_segment(const std::string& segment) {
  if (segment.empty()) return {};
  std::size_t done = 0;
  while (done < segment.size()) {
    const ssize_t n = ::write(fd_, segment.data() + done, segment.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::string reason = n < 0 ? system_reason() : "nothing written";
      if (done > 0 && ::ftruncate(fd_, static_cast<off_t>(size_)) != 0)
        reason += "; a partial line remains (" + system_reason() + ")";
      return fail(ErrorCode::io, "cannot write alert file '" + path_ + "': " + reason);
    }
    done += static_cast<std::size_t>(n);
  }
  size_ += segment.size();
  unsynced_ = true;
  return {};
}

core::Result<void> FileOutput::sync() {
  if (!unsynced_ || fd_ < 0) return {};
  if (::fdatasync(fd_) != 0) return fail(ErrorCode::io, "cannot sync alert file '" + path_ + "': " + system_reason());
  unsynced_ = false;
  return {};
}

// path.(max_files-2) -> path.(max_files-1), ..., path -> path.1, then a fresh path. rename()
// replaces its target, which drops the oldest file. With max_files 1 the live file is emptied.
core::Result<void> FileOutput::rotate() {
  if (auto synced = sync(); !synced) return synced;  // a rotated file is complete on disk
  ::close(fd_);
  fd_ = -1;  // if anything below fails, the next deliver() reopens path_ and tries again
  for (std::size_t i = max_files_ - 1; i >= 1; --i) {
    const std::string from = rotated_name(path_, i - 1), to = rotated_name(path_, i);
    if (::rename(from.c_str(), to.c_str()) != 0 && errno != ENOENT)
      return fail(ErrorCode::io, "cannot rotate alert file '" + from + "' to '" + to + "': " + system_reason());
  }
  return open_live_file(true);
}

}  // namespace iraewatch::alert
