#include <sys/stat.h>

#include "iraewatch/app/commands.hpp"

int main(int argc, char** argv) {
  // Everything iraewatch creates (database, log, ready file) is for its owner only.
  ::umask(077);
  return iraewatch::app::run_cli(argc, argv);
}
