#pragma once
// Wires the modules together and runs the service until SIGINT/SIGTERM.
#include "quickthumb/config.hpp"

namespace quickthumb {

// Runs `quickthumb serve`. Returns the process exit code. Throws on fatal start-up errors
// (data directory unusable, port taken).
int run_service(const serve_config& cfg);

}  // namespace quickthumb
