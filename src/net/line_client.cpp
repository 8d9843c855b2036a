#include "iraewatch/net/line_client.hpp"

#include <charconv>

#include "iraewatch/net/asio.hpp"

namespace iraewatch::net {

namespace asio = boost::asio;
using asio::ip::tcp;

core::Result<Endpoint> parse_endpoint(std::string_view text) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0)
    return core::fail(core::ErrorCode::config, "address '" + std::string(text) + "' must be HOST:PORT");
  std::string_view host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string_view port_text = text.substr(colon + 1);
  unsigned port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || ptr != port_text.data() + port_text.size() || port > 65535)
    return core::fail(core::ErrorCode::config, "port in '" + std::string(text) + "' must be 0-65535");
  return Endpoint{std::string(host), static_cast<std::uint16_t>(port)};
}

core::Result<void> exchange_lines(const Endpoint& endpoint, std::string payload,
                                  const std::function<void(std::string_view)>& on_reply,
                                  std::chrono::milliseconds timeout) {
  asio::io_context io;
  tcp::socket socket(io);
  boost::system::error_code ec;
  tcp::resolver resolver(io);
  auto endpoints = resolver.resolve(endpoint.host, std::to_string(endpoint.port), ec);
  if (!ec) asio::connect(socket, endpoints, ec);
  if (ec) {
    return core::fail(core::ErrorCode::io,
                      "cannot connect to " + endpoint.host + ":" + std::to_string(endpoint.port) + ": " + ec.message());
  }

  core::Result<void> result;
  asio::steady_timer timer(io);
  auto arm = [&] {
    timer.expires_after(timeout);
    timer.async_wait([&](const boost::system::error_code& e) {
      if (e) return;
      result = core::fail(core::ErrorCode::io, "no reply for " + std::to_string(timeout.count()) + " ms");
      boost::system::error_code ignored;
      socket.close(ignored);
    });
  };

  asio::async_write(socket, asio::buffer(payload), [&](const boost::system::error_code& e, std::size_t) {
    boost::system::error_code ignored;
    if (!e) socket.shutdown(tcp::socket::shutdown_send, ignored);
  });

  std::string in;
  std::function<void()> read_more = [&] {
    arm();
    asio::async_read_until(socket, asio::dynamic_buffer(in), '\n',
                           [&](const boost::system::error_code& e, std::size_t n) {
                             if (e) {
                               if (e != asio::error::eof && result)
                                 result = core::fail(core::ErrorCode::io, "connection lost: " + e.message());
                               if (!in.empty()) on_reply(in);
                               timer.cancel();
                               return;
                             }
                             on_reply(std::string_view(in).substr(0, n - 1));
                             in.erase(0, n);
                             read_more();
                           });
  };
  read_more();
  io.run();
  return result;
}

}  // namespace iraewatch::net
