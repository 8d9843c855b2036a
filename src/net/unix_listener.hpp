#pragma once
// Listening on a Unix-domain socket file, shared by the servers that offer one (the control
// socket, the subscriber stream). Private to the net module.

#include <sys/types.h>

#include <optional>
#include <string>

#include "iraewatch/core/error.hpp"
#include "iraewatch/net/asio.hpp"

namespace iraewatch::net {

// The socket file this process created, identified by inode so that stop() never removes a file
// that another process has since put at the same path.
struct UnixSocketFile {
  std::string path;
  dev_t device = 0;
  ino_t inode = 0;
};

// Binds and listens at `path` with mode 0600. The mode is set between bind and listen: until
// listen() nobody can connect, so there is no moment when the socket is open to other users.
// A stale socket file (nobody listening, left by a daemon that crashed) is replaced; a live
// listener, or a file there that is not a socket, is an error (io). A path too long for
// sockaddr_un is a config error. On failure `acceptor` is left closed and a file this call
// created is removed; a file it refused to take over is left alone.
core::Result<UnixSocketFile> listen_unix(boost::asio::local::stream_protocol::acceptor& acceptor,
                                         const std::string& path);

// Removes the socket file, but only if it is still the one listen_unix() created; then resets
// `file`. Nothing happens when `file` is empty, so calling it twice is harmless.
void remove_socket_file(std::optional<UnixSocketFile>& file);

}  // namespace iraewatch::net
