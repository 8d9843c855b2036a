#pragma once
// A client for line servers: sends lines, reads the reply lines until the server closes. Used by
// `iraewatch send` and by the benchmarks; integrators can use it to test a feed.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "iraewatch/core/error.hpp"

namespace iraewatch::net {

struct Endpoint {
  std::string host = "127.0.0.1";
  std::uint16_t port = 7470;
};

// Parses "HOST:PORT" (IPv6 as "[::1]:PORT").
core::Result<Endpoint> parse_endpoint(std::string_view text);

// Sends `payload` (newline-separated lines) and half-closes; calls `on_reply` for each reply line
// until the server closes. Fails when nothing arrives for `timeout`.
core::Result<void> exchange_lines(const Endpoint& endpoint, std::string payload,
                                  const std::function<void(std::string_view)>& on_reply,
                                  std::chrono::milliseconds timeout);

}  // namespace iraewatch::net
