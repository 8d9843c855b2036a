#pragma once
// Black-box test helpers: run the real iraewatch binary as a child process.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace iraewatch::testing {

// A fresh temporary folder, removed (recursively) when the object goes.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void write_file(const std::string& path, const std::string& text);
std::string read_file(const std::string& path);

struct RunResult {
  int exit_code = -1;
  std::string out, err;
};

// Runs the binary to completion (bounded by `timeout`; killed past it) with stdin from `input`.
RunResult run_binary(const std::vector<std::string>& args, const std::string& input = "",
                     std::chrono::seconds timeout = std::chrono::seconds(60));

// The same for another program (a third-party client such as mllp_send), by path.
RunResult run_program(const std::string& program, const std::vector<std::string>& args, const std::string& input = "",
                      std::chrono::seconds timeout = std::chrono::seconds(60));

// `iraewatch [global args] serve --listen 127.0.0.1:0 --subscribers 127.0.0.1:0 --mllp 127.0.0.1:0
// --ready-file ...`,
// waiting (bounded) until it listens. Stopped with SIGTERM (then SIGKILL) when destroyed.
class Daemon {
 public:
  Daemon(const std::string& data_dir, std::vector<std::string> global_args = {});
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  std::uint16_t port() const { return port_; }
  std::uint16_t subscriber_port() const { return subscriber_port_; }  // alert subscribers (TCP)
  std::uint16_t mllp_port() const { return mllp_port_; }              // HL7 v2 over MLLP
  const std::string& data_dir() const { return data_dir_; }
  pid_t pid() const { return pid_; }
  // Sends a signal and waits (bounded) for the exit; returns the exit status (or -signal).
  int stop(int signal, std::chrono::seconds timeout = std::chrono::seconds(30));
  std::string log() const;  // what the daemon wrote to stderr so far

 private:
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  std::uint16_t subscriber_port_ = 0;
  std::uint16_t mllp_port_ = 0;
  std::string data_dir_;
  std::string stderr_path_;
};

}  // namespace iraewatch::testing
