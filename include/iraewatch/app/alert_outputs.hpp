#pragma once
// Builds the alert lifecycle policy and the configured alert outputs from the config.

#include <memory>
#include <vector>

#include "iraewatch/alert/lifecycle.hpp"
#include "iraewatch/alert/output.hpp"
#include "iraewatch/app/config.hpp"
#include "iraewatch/ingest/hl7_mapper.hpp"

namespace iraewatch::app {

alert::LifecyclePolicy lifecycle_policy(const Config& config);

// The file, console and syslog outputs that the config enables (sockets are served apart).
// `with_console`: false for commands whose stdout is their own (ingest).
core::Result<std::vector<std::unique_ptr<alert::Output>>> make_outputs(const Config& config, bool with_console);

// How HL7 v2 content is read, from the config.
ingest::Hl7Options hl7_options(const Config& config);

// The control socket path ("" when disabled).
std::string control_socket_path(const Config& config);

}  // namespace iraewatch::app
