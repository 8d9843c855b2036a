namespace iraewatch::app { struct Config; struct TestOptions; }
#include "iraewatch/app/commands.hpp"
namespace iraewatch::app { int run_test(const Config&, const TestOptions&) { return 2; } }
