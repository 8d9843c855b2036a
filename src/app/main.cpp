#include "iraewatch/app/commands.hpp"

int main(int argc, char** argv) { return iraewatch::app::run_cli(argc, argv); }
