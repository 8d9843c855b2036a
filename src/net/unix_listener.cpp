#include "unix_listener.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace iraewatch::net {

namespace asio = boost::asio;
using UnixProtocol = asio::local::stream_protocol;

namespace {

// Makes `path` free for a new listener: nothing there, or a socket file nobody listens on (left
// by a daemon that crashed), which is removed. A live listener or a file that is not a socket is
// an error: neither is ours to take over.
core::Result<void> clear_stale_socket(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return core::fail(core::ErrorCode::io, "cannot inspect " + path + ": " + std::strerror(errno));
  }
  if (!S_ISSOCK(st.st_mode)) return core::fail(core::ErrorCode::io, path + " exists and is not a socket");
  // A raw non-blocking probe: Asio's synchronous connect would wait without bound on a listener
  // whose backlog is full.
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return core::fail(core::ErrorCode::io, std::string("cannot create a socket: ") + std::strerror(errno));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  const int err = errno;
  ::close(fd);
  if (rc == 0 || err == EAGAIN || err == EINPROGRESS) {
    return core::fail(core::ErrorCode::io, "another server is already listening on " + path);
  }
  if (err != ECONNREFUSED) return core::fail(core::ErrorCode::io, "cannot probe " + path + ": " + std::strerror(err));
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return core::fail(core::ErrorCode::io, "cannot remove the stale socket " + path + ": " + std::strerror(errno));
  }
  return {};
}

}  // namespace

core::Result<UnixSocketFile> listen_unix(UnixProtocol::acceptor& acceptor, const std::string& path) {
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return core::fail(
        core::ErrorCode::config,
        "socket path too long (at most " + std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes): " + path);
  }
  if (auto cleared = clear_stale_socket(path); !cleared) return std::unexpected(cleared.error());
  boost::system::error_code ec;
  const UnixProtocol::endpoint endpoint(path);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (ec) {
    acceptor.close(ec);
    return core::fail(core::ErrorCode::io, "cannot listen on " + path + ": " + ec.message());
  }
  struct stat st {};
  if (::chmod(path.c_str(), 0600) != 0 || ::lstat(path.c_str(), &st) != 0) {
    const std::string why = std::strerror(errno);
    acceptor.close(ec);
    ::unlink(path.c_str());
    return core::fail(core::ErrorCode::io, "cannot restrict " + path + " to its owner: " + why);
  }
  acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    acceptor.close(ec);
    ::unlink(path.c_str());
    return core::fail(core::ErrorCode::io, "cannot listen on " + path + ": " + ec.message());
  }
  return UnixSocketFile{path, st.st_dev, st.st_ino};
}

void remove_socket_file(std::optional<UnixSocketFile>& file) {
  if (!file) return;
  struct stat st {};
  if (::lstat(file->path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == file->device &&
      st.st_ino == file->inode) {
    ::unlink(file->path.c_str());
  }
  file.reset();
}

}  // namespace iraewatch::net
