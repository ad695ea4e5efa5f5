#include "quickthumb/config.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <thread>

namespace quickthumb {
namespace {

std::string env_name(std::string_view flag) {
    std::string out = "QUICKTHUMB_";
    for (char c : flag) out += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

template <class T>
T parse_int(std::string_view flag, std::string_view text, T lo, T hi) {
    T v{};
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || p != text.data() + text.size() || v < lo || v > hi) {
        throw config_error("--" + std::string(flag) + ": expected a whole number from " + std::to_string(lo) +
                           " to " + std::to_string(hi) + ", got '" + std::string(text) + "'");
    }
    return v;
}

// The flags `serve` accepts; each also comes from QUICKTHUMB_<NAME>.
const std::vector<std::string_view> serve_flags = {
    "bind", "port", "data", "workers", "queue-capacity", "max-backlog", "max-upload", "max-pixels",
    "redis", "api-token", "log-level", "shutdown-grace"};

void apply(serve_config& c, std::string_view flag, const std::string& v) {
    if (flag == "bind") {
        if (v.empty()) throw config_error("--bind: expected an IP address, got an empty value");
        c.bind = v;
    } else if (flag == "port") {
        c.port = parse_int<std::uint16_t>(flag, v, 0, 65535);
    } else if (flag == "data") {
        if (v.empty()) throw config_error("--data: expected a directory, got an empty value");
        c.data_dir = v;
    } else if (flag == "workers") {
        c.workers = parse_int<int>(flag, v, 0, 256);
    } else if (flag == "queue-capacity") {
        c.queue_capacity = parse_int<std::size_t>(flag, v, 1, 1'000'000);
    } else if (flag == "max-backlog") {
        c.max_backlog = parse_int<std::size_t>(flag, v, 1, 100'000'000);
    } else if (flag == "max-upload") {
        c.max_upload = parse_size(flag, v);
        if (c.max_upload < 1024) throw config_error("--max-upload: must be at least 1KiB");
    } else if (flag == "max-pixels") {
        c.max_pixels = parse_int<std::int64_t>(flag, v, 1, 10'000'000'000);
    } else if (flag == "redis") {
        if (!v.empty() && !v.starts_with("redis://"))
            throw config_error("--redis: expected a URL like redis://127.0.0.1:6379/0, got '" + v + "'");
        c.redis = v;
    } else if (flag == "api-token") {
        c.api_token = v;
    } else if (flag == "log-level") {
        if (v == "debug") c.level = log_level::debug;
        else if (v == "info") c.level = log_level::info;
        else if (v == "warn") c.level = log_level::warn;
        else if (v == "error") c.level = log_level::error;
        else throw config_error("--log-level: expected debug, info, warn or error, got '" + v + "'");
    } else if (flag == "shutdown-grace") {
        c.shutdown_grace_seconds = parse_int<int>(flag, v, 0, 3600);
    }
}

}  // namespace

env_lookup process_env() {
    return [](const std::string& name) -> std::optional<std::string> {
        if (const char* v = std::getenv(name.c_str())) return std::string(v);
        return std::nullopt;
    };
}

std::uint64_t parse_size(std::string_view flag, std::string_view text) {
    std::string_view num = text;
    std::uint64_t mult = 1;
    auto suffix_at = std::find_if(text.begin(), text.end(), [](char c) { return !std::isdigit(static_cast<unsigned char>(c)); });
    if (suffix_at != text.end()) {
        num = text.substr(0, static_cast<std::size_t>(suffix_at - text.begin()));
        std::string s(suffix_at, text.end());
        std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
        if (s == "k" || s == "kib" || s == "kb") mult = 1ull << 10;
        else if (s == "m" || s == "mib" || s == "mb") mult = 1ull << 20;
        else if (s == "g" || s == "gib" || s == "gb") mult = 1ull << 30;
        else throw config_error("--" + std::string(flag) + ": unknown size suffix '" + s + "' (use K, M or G)");
    }
    auto v = parse_int<std::uint64_t>(flag, num, 0, (1ull << 40));
    return v * mult;
}

std::string usage() {
    return R"(quickthumb - asynchronous image thumbnails

Usage:
  quickthumb serve [flags]      run the HTTP service
  quickthumb --help | --version

serve flags (each also read from QUICKTHUMB_<NAME>, e.g. QUICKTHUMB_PORT; flags win):
  --bind ADDR             address to listen on (default 0.0.0.0)
  --port N                port (default 8080; 0 picks a free port and prints it)
  --data DIR              data directory: SQLite file, uploads, thumbs (default ./data)
  --workers N             image workers (default: number of cores; 0 accepts but processes nothing)
  --queue-capacity N      jobs handed to workers ahead of time (default 64)
  --max-backlog N         waiting jobs before uploads get 429 (default 100000)
  --max-upload SIZE       largest upload, e.g. 32M (default 32MiB)
  --max-pixels N          largest image in pixels per frame (default 100000000)
  --shutdown-grace SECS   how long running jobs may finish on SIGTERM (default 20)
  --log-level LEVEL       debug, info, warn or error (default info)
)";
}

command_line parse_command_line(const std::vector<std::string>& args, const env_lookup& env) {
    command_line out;
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
        out.cmd = command::help;
        return out;
    }
    if (args[0] == "--version" || args[0] == "version") {
        out.cmd = command::version;
        return out;
    }
    if (args[0] == "thumb") {
        out.cmd = command::thumb;
        out.rest.assign(args.begin() + 1, args.end());
        return out;
    }
    if (args[0] != "serve") throw config_error("unknown command '" + args[0] + "' (try: quickthumb --help)");
    out.cmd = command::serve;

    serve_config& c = out.serve;
    c.workers = std::max(1u, std::thread::hardware_concurrency());
    for (auto flag : serve_flags) {
        if (auto v = env(env_name(flag))) {
            try {
                apply(c, flag, *v);
            } catch (const config_error& e) {
                throw config_error(std::string(e.what()) + " (from " + env_name(flag) + ")");
            }
        }
    }
    for (std::size_t i = 1; i < args.size(); ++i) {
        std::string_view a = args[i];
        if (a == "--help" || a == "-h") {
            out.cmd = command::help;
            return out;
        }
        if (!a.starts_with("--")) throw config_error("unexpected argument '" + std::string(a) + "'");
        a.remove_prefix(2);
        std::string value;
        if (auto eq = a.find('='); eq != std::string_view::npos) {
            value = std::string(a.substr(eq + 1));
            a = a.substr(0, eq);
        } else {
            if (i + 1 >= args.size()) throw config_error("--" + std::string(a) + ": missing value");
            value = args[++i];
        }
        if (std::find(serve_flags.begin(), serve_flags.end(), a) == serve_flags.end())
            throw config_error("unknown flag --" + std::string(a) + " (try: quickthumb serve --help)");
        apply(c, a, value);
    }
    return out;
}

}  // namespace quickthumb
