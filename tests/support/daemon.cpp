#include "support/daemon.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace iraewatch::testing {

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "iraewatch-test-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

namespace {

// Runs `program` (IRAEWATCH_BINARY when empty) with `args`.
pid_t spawn(const std::vector<std::string>& args, const std::string& stdin_path, const std::string& stdout_path,
            const std::string& stderr_path, const std::string& program = "") {
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    const int in = ::open(stdin_path.c_str(), O_RDONLY);
    const int out = ::open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err = ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    std::vector<char*> argv;
    std::string binary = program.empty() ? std::string(IRAEWATCH_BINARY) : program;
    argv.push_back(binary.data());
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(binary.c_str(), argv.data());
    ::_exit(127);
  }
  return pid;
}

// Waits for the child up to `timeout`; returns the exit code, -signal, or nullopt on time-out.
std::optional<int> wait_for(pid_t pid, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    if (r < 0) return -1;
    if (std::chrono::steady_clock::now() >= until) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

RunResult run_binary(const std::vector<std::string>& args, const std::string& input, std::chrono::seconds timeout) {
  return run_program("", args, input, timeout);
}

RunResult run_program(const std::string& program, const std::vector<std::string>& args, const std::string& input,
                      std::chrono::seconds timeout) {
  TempDir io;
  write_file(io.file("in"), input);
  const pid_t pid = spawn(args, io.file("in"), io.file("out"), io.file("err"), program);
  RunResult result;
  auto code = wait_for(pid, timeout);
  if (!code) {
    ::kill(pid, SIGKILL);
    code = wait_for(pid, std::chrono::seconds(10));
  }
  result.exit_code = code.value_or(-1);
  result.out = read_file(io.file("out"));
  result.err = read_file(io.file("err"));
  return result;
}

Daemon::Daemon(const std::string& data_dir, std::vector<std::string> global_args) : data_dir_(data_dir) {
  const std::string ready = data_dir + ".ready";
  std::filesystem::remove(ready);
  stderr_path_ = data_dir + ".stderr";
  std::vector<std::string> args = std::move(global_args);
  args.insert(args.end(), {"--data-dir", data_dir, "serve", "--listen", "127.0.0.1:0", "--subscribers", "127.0.0.1:0",
                           "--mllp", "127.0.0.1:0", "--ready-file", ready});
  pid_ = spawn(args, "/dev/null", "/dev/null", stderr_path_);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < until) {
    const std::string text = read_file(ready);
    const auto colon = text.find("\"ndjson\":\"127.0.0.1:");
    if (colon != std::string::npos) {  // written whole (renamed into place)
      port_ = static_cast<std::uint16_t>(std::stoi(text.substr(colon + 20)));
      const auto sub = text.find("\"subscribers\":\"127.0.0.1:");
      if (sub != std::string::npos) subscriber_port_ = static_cast<std::uint16_t>(std::stoi(text.substr(sub + 25)));
      const auto mllp = text.find("\"mllp\":\"127.0.0.1:");
      if (mllp != std::string::npos) mllp_port_ = static_cast<std::uint16_t>(std::stoi(text.substr(mllp + 18)));
      return;
    }
    if (wait_for(pid_, std::chrono::milliseconds(0))) {
      pid_ = -1;
      throw std::runtime_error("daemon exited at start: " + read_file(stderr_path_));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  stop(SIGKILL);
  throw std::runtime_error("daemon did not become ready within 20 s: " + read_file(stderr_path_));
}

Daemon::~Daemon() {
  if (pid_ > 0) stop(SIGTERM);
}

int Daemon::stop(int signal, std::chrono::seconds timeout) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, signal);
  auto code = wait_for(pid_, timeout);
  if (!code) {
    ::kill(pid_, SIGKILL);
    code = wait_for(pid_, std::chrono::seconds(10));
  }
  pid_ = -1;
  return code.value_or(-1);
}

std::string Daemon::log() const {
  return read_file(stderr_path_);
}

}  // namespace iraewatch::testing
