#pragma once
// spdlog set-up: console (stderr) and, when asked, a rotating file in the data folder. Operational
// logs never carry patient identifiers above debug level.

#include <string>

#include "iraewatch/app/config.hpp"
#include "iraewatch/core/error.hpp"

namespace iraewatch::app {

core::Result<void> setup_logging(const Config& config, bool to_file);

}  // namespace iraewatch::app
