#include "quickthumb/log.hpp"

#include "quickthumb/job.hpp"

#include <atomic>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace quickthumb::log {
namespace {
std::atomic<int> min_level{static_cast<int>(log_level::info)};
std::mutex out_mutex;

const char* name(log_level l) {
    switch (l) {
        case log_level::debug: return "debug";
        case log_level::info: return "info";
        case log_level::warn: return "warn";
        case log_level::error: return "error";
    }
    return "info";
}
}  // namespace

void set_level(log_level level) noexcept { min_level = static_cast<int>(level); }
bool enabled(log_level level) noexcept { return static_cast<int>(level) >= min_level.load(std::memory_order_relaxed); }

void write(log_level level, std::string_view msg, std::string_view fields) {
    std::int64_t ms = now_ms();
    std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char ts[64];
    std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
    std::string line;
    line.reserve(64 + msg.size() + fields.size());
    line += "ts=";
    line += ts;
    line += " level=";
    line += name(level);
    line += " msg=\"";
    for (char c : msg) line += (c == '"' || c == '\n') ? '\'' : c;
    line += '"';
    if (!fields.empty()) {
        line += ' ';
        line += fields;
    }
    line += '\n';
    std::lock_guard lk(out_mutex);
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
}

}  // namespace quickthumb::log
