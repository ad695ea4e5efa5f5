#pragma once
// One line per event on stdout: `ts=... level=... msg="..." key=value ...`. Thread-safe.
#include "quickthumb/config.hpp"

#include <exception>
#include <string>
#include <string_view>

namespace quickthumb::log {

void set_level(log_level level) noexcept;
bool enabled(log_level level) noexcept;
// `fields` is preformatted `key=value` text (may be empty).
void write(log_level level, std::string_view msg, std::string_view fields = {});

inline void debug(std::string_view m, std::string_view f = {}) { if (enabled(log_level::debug)) write(log_level::debug, m, f); }
inline void info(std::string_view m, std::string_view f = {}) { if (enabled(log_level::info)) write(log_level::info, m, f); }
inline void warn(std::string_view m, std::string_view f = {}) { if (enabled(log_level::warn)) write(log_level::warn, m, f); }
inline void error(std::string_view m, std::string_view f = {}) { write(log_level::error, m, f); }

// The completion handler for a co_spawned loop that must not die silently: logs `what` with the
// exception's message, if it ended by one.
inline auto on_exit(std::string what) {
    return [what = std::move(what)](std::exception_ptr ep) {
        if (!ep) return;
        try {
            std::rethrow_exception(ep);
        } catch (const std::exception& e) {
            error(what, std::string("error=\"") + e.what() + "\"");
        }
    };
}

}  // namespace quickthumb::log
