#pragma once
// Command line and QUICKTHUMB_* environment: parsed once at start-up, validated with messages a
// person understands. A bad config is fatal, so it is reported by throwing config_error.
#include "quickthumb/image.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace quickthumb {

struct config_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

enum class log_level { debug, info, warn, error };

// --max-memory: the memory budget jobs reserve their estimated peak from. A size, or a share of
// the memory limit found at start-up (memory_limit.hpp); neither set: the default share.
struct memory_setting {
    std::uint64_t bytes = 0;  // when non-zero, exactly this
    double share = 0;         // else this share of the limit, 0 < share <= 1 (0: the default)
    bool operator==(const memory_setting&) const = default;
};

struct serve_config {
    std::string bind = "0.0.0.0";
    std::uint16_t port = 8080;
    std::filesystem::path data_dir = "./data";
    int workers = 0;                     // filled with the core count unless given
    std::size_t queue_capacity = 64;     // jobs handed to workers ahead of time
    std::size_t max_backlog = 100000;    // waiting jobs before uploads get 429
    std::uint64_t max_upload = 32ull << 20;
    std::int64_t max_pixels = 100'000'000;
    memory_setting max_memory;
    std::string redis;                   // redis://host:port/db, empty = off
    bool redis_store = false;            // --store redis: jobs in Redis, for several instances
    std::string api_token;
    // Access (src/http/access.hpp): more API tokens, one a line; a Bearer token for /metrics; the
    // CORS allow-list, comma-separated exact origins (empty = CORS off).
    std::filesystem::path api_token_file;
    std::string metrics_token;
    std::string cors_origin;
    log_level level = log_level::info;
    int shutdown_grace_seconds = 20;
    // Job life: attempts before a transiently failing job fails for good, how long one attempt
    // may run, how long finished jobs and their files are kept (0 = forever), and whether an
    // upload is kept once its thumbnails exist.
    int max_attempts = 3;
    std::chrono::milliseconds job_timeout{60'000};
    std::chrono::milliseconds retention{7ll * 24 * 3600 * 1000};
    bool keep_uploads = false;
    // Redis mirror: a pending entry idle this long belongs to a consumer presumed dead.
    std::chrono::milliseconds redis_claim_idle{60'000};
    // Hostile clients: the whole request header must arrive within header_timeout (also the
    // keep-alive idle limit); a body may pause at most body_timeout between reads.
    std::chrono::milliseconds header_timeout{10'000};
    std::chrono::milliseconds body_timeout{30'000};
    // Abuse limits: uploads per second per client (0 = off) and the burst allowed above it;
    // open connections in all and per peer address; X-Forwarded-For names the client only
    // behind a trusted proxy.
    double upload_rate = 10;
    int upload_burst = 60;
    std::size_t max_connections = 1024;
    std::size_t max_client_connections = 128;
    bool trust_proxy = false;
    // Where uploads and thumbnails live: "" is the data directory, or s3://BUCKET[/PREFIX] (keys
    // and endpoint from the AWS variables). The job store stays in the data directory.
    std::string storage;
    bool s3_path_style = false;
    std::chrono::milliseconds s3_timeout{15'000};  // one S3 request's deadline
    std::uint64_t s3_part_size = 8ull << 20;       // multipart part size (at least 5 MiB)
    // GET /thumbs answers 302 to a presigned URL of the object instead of proxying it.
    bool thumb_redirect = false;
    // The outputs' url: this followed by /thumbs/ID/NAME (a CDN in front of the service or of
    // the bucket); "" keeps the service's own path.
    std::string public_base_url;
};

// `quickthumb thumb IN... [-s SIZE] [-o PATTERN] [--fit F] [--quality Q] [--enlarge] [--jobs N]`.
// Everything is checked at parse time (bad usage exits 2 before any file is touched), so the
// runner only meets per-file problems.
struct thumb_config {
    std::vector<std::string> inputs;
    int width = 256;   // the box, as vipsthumbnail's -s: 256 = 256x256, 256x = width only,
    int height = 256;  // x256 = height only (0 = that side is unconstrained)
    std::string pattern = "tn_%s.jpg";  // %s = input base name without extension
    image::out_format format = image::out_format::jpeg;  // from the pattern's extension
    image::fit fit = image::fit::contain;
    int quality = 80;
    bool progressive = false;
    bool enlarge = false;
    image::rgb background{};  // what JPEG output flattens alpha onto
    int jobs = 0;             // threads; 0 = number of cores
    std::int64_t max_pixels = 100'000'000;
    memory_setting max_memory;  // as serve's: files reserve their estimate before decoding
};

enum class command { serve, thumb, help, version };

struct command_line {
    command cmd = command::help;
    serve_config serve;
    thumb_config thumb;
};

// Looks up an environment variable; injectable so tests need not touch the real environment.
using env_lookup = std::function<std::optional<std::string>(const std::string&)>;
env_lookup process_env();

// Parses `quickthumb <command> [flags]`. Flags win over QUICKTHUMB_<NAME> variables, which win
// over defaults. Throws config_error naming the flag and the accepted values.
command_line parse_command_line(const std::vector<std::string>& args, const env_lookup& env);

std::string usage();
std::string thumb_usage();

// "500ms", "30s", "5m", "2h", "7d", or a plain number of seconds. Throws config_error.
std::chrono::milliseconds parse_duration(std::string_view flag, std::string_view text);

// "32MiB", "512k", "1G", "1048576" -> bytes. Throws config_error.
std::uint64_t parse_size(std::string_view flag, std::string_view text);

// "512M" (a size, at least 16 MiB) or "60%" (of the memory limit). Throws config_error.
memory_setting parse_memory_setting(std::string_view shown, std::string_view text);

}  // namespace quickthumb
