// `iraewatch send FILE...`: a client for the NDJSON listener; prints a summary of the replies.

#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "iraewatch/app/commands.hpp"
#include "iraewatch/net/line_client.hpp"

namespace iraewatch::app {

int run_send(const SendOptions& options) {
  auto endpoint = net::parse_endpoint(options.to);
  if (!endpoint) {
    std::fprintf(stderr, "iraewatch: %s\n", endpoint.error().message.c_str());
    return 2;
  }
  int exit_code = 0;
  for (const auto& file : options.files) {
    std::ostringstream payload;
    if (file == "-") {
      payload << std::cin.rdbuf();
    } else {
      std::ifstream in(file, std::ios::binary);
      if (!in) {
        std::fprintf(stderr, "iraewatch: cannot read '%s'\n", file.c_str());
        return 2;
      }
      payload << in.rdbuf();
    }
    // Every non-blank line must be answered; fewer replies means the daemon stopped part-way.
    std::size_t expected = 0;
    {
      std::istringstream lines(payload.str());
      for (std::string l; std::getline(lines, l);)
        if (l.find_first_not_of(" \t\r") != std::string::npos) ++expected;
    }
    std::size_t ok = 0, duplicates = 0, errors = 0;
    auto result = net::exchange_lines(
        *endpoint, payload.str(),
        [&](std::string_view line) {
          if (options.print_replies) std::printf("%.*s\n", static_cast<int>(line.size()), line.data());
          auto reply = nlohmann::json::parse(line, nullptr, false);
          if (reply.is_object() && reply.value("ok", false)) {
            ++ok;
            if (reply.value("duplicate", false)) ++duplicates;
          } else {
            ++errors;
            const auto where = reply.is_object() && reply.contains("line") ? reply["line"].dump() : std::string("?");
            const auto why = reply.is_object() ? reply.value("error", std::string(line)) : std::string(line);
            std::fprintf(stderr, "%s:%s: error: %s\n", file.c_str(), where.c_str(), why.c_str());
          }
        },
        std::chrono::seconds(options.timeout_seconds));
    std::printf("%s: %zu acknowledged (%zu duplicates), %zu errors\n", file.c_str(), ok, duplicates, errors);
    if (result && ok + errors < expected) {
      std::fprintf(stderr,
                   "iraewatch: %s: %zu of %zu lines got no reply (the daemon closed the connection); send again\n",
                   file.c_str(), expected - ok - errors, expected);
      return 2;
    }
    if (!result) {
      std::fprintf(stderr, "iraewatch: %s\n", result.error().message.c_str());
      return 2;
    }
    if (errors > 0) exit_code = 1;
  }
  return exit_code;
}

}  // namespace iraewatch::app
