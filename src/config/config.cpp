#include "quickthumb/config.hpp"

#include "quickthumb/job.hpp"

#include <algorithm>
#include <array>
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

// `shown` is the flag as the user typed it ("--port", "-s"), for the message.
template <class T>
T parse_int_as(std::string_view shown, std::string_view text, T lo, T hi) {
    T v{};
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || p != text.data() + text.size() || v < lo || v > hi) {
        throw config_error(std::string(shown) + ": expected a whole number from " + std::to_string(lo) + " to " +
                           std::to_string(hi) + ", got '" + std::string(text) + "'");
    }
    return v;
}

template <class T>
T parse_int(std::string_view flag, std::string_view text, T lo, T hi) {
    return parse_int_as<T>("--" + std::string(flag), text, lo, hi);
}

// The flags `serve` accepts; each also comes from QUICKTHUMB_<NAME>.
const std::vector<std::string_view> serve_flags = {
    "bind", "port", "data", "workers", "queue-capacity", "max-backlog", "max-upload", "max-pixels",
    "redis", "api-token", "log-level", "shutdown-grace", "max-attempts", "job-timeout", "retention",
    "keep-uploads", "redis-claim-idle", "header-timeout", "body-timeout", "upload-rate", "upload-burst",
    "max-connections", "max-client-connections", "trust-proxy", "api-token-file", "metrics-token", "cors-origin",
    "max-memory", "storage", "s3-path-style", "s3-timeout", "s3-part-size", "thumb-redirect", "public-base-url",
    "store"};
// Flags that may stand alone (`--keep-uploads` means true).
const std::vector<std::string_view> bool_flags = {"keep-uploads", "trust-proxy", "s3-path-style", "thumb-redirect"};

bool parse_bool(std::string_view flag, std::string_view v) {
    if (v == "true" || v == "1" || v == "yes" || v == "on") return true;
    if (v == "false" || v == "0" || v == "no" || v == "off") return false;
    throw config_error("--" + std::string(flag) + ": expected true or false, got '" + std::string(v) + "'");
}

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
    } else if (flag == "max-memory") {
        c.max_memory = parse_memory_setting("--max-memory", v);
    } else if (flag == "redis") {
        if (!v.empty() && !v.starts_with("redis://"))
            throw config_error("--redis: expected a URL like redis://127.0.0.1:6379/0, got '" + v + "'");
        c.redis = v;
    } else if (flag == "api-token") {
        c.api_token = v;
    } else if (flag == "api-token-file") {
        c.api_token_file = v;  // read at start-up (an unreadable or empty file is fatal there)
    } else if (flag == "metrics-token") {
        c.metrics_token = v;
    } else if (flag == "cors-origin") {
        c.cors_origin = v;  // checked at start-up
    } else if (flag == "log-level") {
        if (v == "debug") c.level = log_level::debug;
        else if (v == "info") c.level = log_level::info;
        else if (v == "warn") c.level = log_level::warn;
        else if (v == "error") c.level = log_level::error;
        else throw config_error("--log-level: expected debug, info, warn or error, got '" + v + "'");
    } else if (flag == "shutdown-grace") {
        c.shutdown_grace_seconds = parse_int<int>(flag, v, 0, 3600);
    } else if (flag == "max-attempts") {
        c.max_attempts = parse_int<int>(flag, v, 1, 100);
    } else if (flag == "job-timeout") {
        c.job_timeout = parse_duration(flag, v);
        if (c.job_timeout.count() < 1) throw config_error("--job-timeout: must be at least 1ms");
    } else if (flag == "retention") {
        c.retention = parse_duration(flag, v);
    } else if (flag == "keep-uploads") {
        c.keep_uploads = parse_bool(flag, v);
    } else if (flag == "redis-claim-idle") {
        c.redis_claim_idle = parse_duration(flag, v);
    } else if (flag == "store") {
        if (v == "sqlite") c.redis_store = false;
        else if (v == "redis") c.redis_store = true;
        else throw config_error("--store: expected sqlite (the data directory, one instance) or redis (several "
                                "instances on one Redis), got '" + v + "'");
    } else if (flag == "header-timeout" || flag == "body-timeout") {
        auto d = parse_duration(flag, v);
        if (d.count() < 1) throw config_error("--" + std::string(flag) + ": must be at least 1ms");
        (flag == "header-timeout" ? c.header_timeout : c.body_timeout) = d;
    } else if (flag == "upload-rate") {
        double r = -1;
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), r, std::chars_format::fixed);
        if (ec != std::errc{} || p != v.data() + v.size() || !(r >= 0 && r <= 1'000'000))
            throw config_error("--upload-rate: expected uploads per second from 0 (off) to 1000000, e.g. 2.5, got '" + v + "'");
        c.upload_rate = r;
    } else if (flag == "upload-burst") {
        c.upload_burst = parse_int<int>(flag, v, 1, 1'000'000);
    } else if (flag == "max-connections") {
        c.max_connections = parse_int<std::size_t>(flag, v, 1, 1'000'000);
    } else if (flag == "max-client-connections") {
        c.max_client_connections = parse_int<std::size_t>(flag, v, 1, 1'000'000);
    } else if (flag == "trust-proxy") {
        c.trust_proxy = parse_bool(flag, v);
    } else if (flag == "storage") {
        if (!v.empty() && !v.starts_with("s3://"))
            throw config_error("--storage: expected s3://BUCKET[/PREFIX] (or nothing for the data directory), got '" + v + "'");
        c.storage = v;
    } else if (flag == "s3-path-style") {
        c.s3_path_style = parse_bool(flag, v);
    } else if (flag == "s3-timeout") {
        c.s3_timeout = parse_duration(flag, v);
        if (c.s3_timeout.count() < 10) throw config_error("--s3-timeout: must be at least 10ms");
    } else if (flag == "s3-part-size") {
        c.s3_part_size = parse_size(flag, v);
        if (c.s3_part_size < (5ull << 20) || c.s3_part_size > (5ull << 30))
            throw config_error("--s3-part-size: S3 takes parts from 5MiB to 5GiB, got '" + v + "'");
    } else if (flag == "thumb-redirect") {
        c.thumb_redirect = parse_bool(flag, v);
    } else if (flag == "public-base-url") {
        std::string u = v;
        while (!u.empty() && u.back() == '/') u.pop_back();
        if (!u.empty() && !u.starts_with("https://") && !u.starts_with("http://"))
            throw config_error("--public-base-url: expected an http(s) URL like https://cdn.example.com, got '" + v + "'");
        c.public_base_url = u;
    }
}

// vipsthumbnail's -s: "256" is a 256x256 box (the longest side), "256x" only bounds the width,
// "x256" only the height, "200x100" both. A 0 side is unconstrained too ("200x0").
void parse_box(std::string_view shown, std::string_view v, thumb_config& t) {
    constexpr int max_side = 16384;  // WebP's limit is 16383; the engine reports that per file
    auto x = v.find('x');
    if (x == std::string_view::npos) {
        t.width = t.height = parse_int_as<int>(shown, v, 1, max_side);
        return;
    }
    auto side = [&](std::string_view s) { return s.empty() ? 0 : parse_int_as<int>(shown, s, 0, max_side); };
    t.width = side(v.substr(0, x));
    t.height = side(v.substr(x + 1));
    if (t.width == 0 && t.height == 0)
        throw config_error(std::string(shown) + ": at least one side must be greater than 0, got '" + std::string(v) +
                           "'");
}

// "#rrggbb", "rrggbb" or "R,G,B" (0-255 each, as vips writes colours).
image::rgb parse_colour(std::string_view shown, std::string_view v) {
    auto bad = [&]() -> config_error {
        return config_error(std::string(shown) + ": expected a colour like #ffffff or 255,255,255, got '" +
                            std::string(v) + "'");
    };
    std::array<std::uint8_t, 3> c{};
    if (v.find(',') != std::string_view::npos) {
        for (std::size_t i = 0; i < 3; ++i) {
            auto comma = v.find(',');
            if ((i < 2) != (comma != std::string_view::npos)) throw bad();
            std::string_view part = v.substr(0, comma);
            unsigned n = 0;
            auto [p, ec] = std::from_chars(part.data(), part.data() + part.size(), n);
            if (part.empty() || ec != std::errc{} || p != part.data() + part.size() || n > 255) throw bad();
            c[i] = static_cast<std::uint8_t>(n);
            v = comma == std::string_view::npos ? std::string_view{} : v.substr(comma + 1);
        }
        return {c[0], c[1], c[2]};
    }
    if (auto hex = quickthumb::parse_colour(v)) return *hex;  // the service's own form
    throw bad();
}

// The output format from the pattern's extension (after its last '/'), or a config_error.
image::out_format format_of_pattern(const std::string& pattern) {
    const std::string name = pattern.substr(pattern.rfind('/') + 1);  // npos + 1 == 0
    auto dot = name.rfind('.');
    std::string ext = dot == std::string::npos ? "" : name.substr(dot + 1);
    for (auto& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (auto f = parse_output_format(ext)) return *f;
    throw config_error("-o: the pattern must end in .jpg, .jpeg, .png or .webp (the extension picks the format), got '" +
                       pattern + "'");
}

bool wants_help(const std::vector<std::string>& args) {
    for (std::size_t i = 1; i < args.size() && args[i] != "--"; ++i)
        if (args[i] == "-h" || args[i] == "--help") return true;
    return false;
}

// args[0] is "thumb". Options and inputs may be mixed; "--" ends the options.
thumb_config parse_thumb_args(const std::vector<std::string>& args) {
    thumb_config t;
    bool options_done = false;
    for (std::size_t i = 1; i < args.size(); ++i) {
        std::string_view a = args[i];
        if (options_done || !a.starts_with("-") || a == "-") {
            t.inputs.emplace_back(a);
            continue;
        }
        if (a == "--") {
            options_done = true;
            continue;
        }
        // --name=value as well as --name value (short options take only the latter).
        std::optional<std::string> inline_value;
        if (a.starts_with("--")) {
            if (auto eq = a.find('='); eq != std::string_view::npos) {
                inline_value = std::string(a.substr(eq + 1));
                a = a.substr(0, eq);
            }
        }
        auto value = [&]() -> std::string {
            if (inline_value) return *inline_value;
            if (i + 1 >= args.size()) throw config_error(std::string(a) + ": missing value");
            return args[++i];
        };
        auto no_value = [&] {
            if (inline_value) throw config_error(std::string(a) + ": takes no value");
        };
        if (a == "-s" || a == "--size") {
            parse_box(a, value(), t);
        } else if (a == "-o" || a == "--output") {
            t.pattern = value();
            if (t.pattern.empty()) throw config_error(std::string(a) + ": expected a pattern, got an empty value");
        } else if (a == "--fit") {
            const std::string v = value();
            auto f = parse_fit_mode(v);
            if (!f) throw config_error("--fit: expected contain, cover or fill, got '" + v + "'");
            t.fit = *f;
        } else if (a == "-q" || a == "--quality") {
            t.quality = parse_int_as<int>(a, value(), 1, 100);
        } else if (a == "--progressive") {
            no_value();
            t.progressive = true;
        } else if (a == "--enlarge") {
            no_value();
            t.enlarge = true;
        } else if (a == "--background") {
            t.background = parse_colour(a, value());
        } else if (a == "-j" || a == "--jobs") {
            t.jobs = parse_int_as<int>(a, value(), 0, 256);
        } else if (a == "--max-pixels") {
            t.max_pixels = parse_int_as<std::int64_t>(a, value(), 1, 10'000'000'000);
        } else if (a == "--max-memory") {
            t.max_memory = parse_memory_setting(a, value());
        } else {
            throw config_error("unknown option " + std::string(a) + " (try: quickthumb thumb --help)");
        }
    }
    if (t.inputs.empty()) throw config_error("thumb: no input files (try: quickthumb thumb --help)");
    if (t.inputs.size() > 1 && t.pattern.find("%s") == std::string::npos)
        throw config_error("-o: with several inputs the pattern needs %s, or every output would get the same name");
    t.format = format_of_pattern(t.pattern);
    return t;
}

}  // namespace

env_lookup process_env() {
    return [](const std::string& name) -> std::optional<std::string> {
        if (const char* v = std::getenv(name.c_str())) return std::string(v);
        return std::nullopt;
    };
}

std::chrono::milliseconds parse_duration(std::string_view flag, std::string_view text) {
    auto unit_at = std::find_if(text.begin(), text.end(), [](char c) { return !std::isdigit(static_cast<unsigned char>(c)); });
    const std::string_view num = text.substr(0, static_cast<std::size_t>(unit_at - text.begin()));
    const std::string_view unit = text.substr(num.size());
    std::int64_t mult = 0;
    if (unit == "ms") mult = 1;
    else if (unit.empty() || unit == "s") mult = 1000;
    else if (unit == "m") mult = 60'000;
    else if (unit == "h") mult = 3'600'000;
    else if (unit == "d") mult = 86'400'000;
    else
        throw config_error("--" + std::string(flag) + ": expected a duration like 500ms, 30s, 5m, 2h or 7d, got '" +
                           std::string(text) + "'");
    if (num.empty())
        throw config_error("--" + std::string(flag) + ": expected a duration like 500ms, 30s, 5m, 2h or 7d, got '" +
                           std::string(text) + "'");
    const auto v = parse_int<std::int64_t>(flag, num, 0, 10'000'000'000'000 / mult);  // about 300 years at most
    return std::chrono::milliseconds(v * mult);
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

memory_setting parse_memory_setting(std::string_view shown, std::string_view text) {
    memory_setting m;
    if (text.ends_with('%')) {
        const auto pct = parse_int_as<int>(shown, text.substr(0, text.size() - 1), 1, 100);
        m.share = pct / 100.0;
        return m;
    }
    const std::string flag(shown.starts_with("--") ? shown.substr(2) : shown);
    try {
        m.bytes = parse_size(flag, text);
    } catch (const config_error&) {
        throw config_error(std::string(shown) + ": expected a size like 512M or 2G, or a share of the memory limit "
                                                "like 60%, got '" + std::string(text) + "'");
    }
    if (m.bytes < (16ull << 20)) throw config_error(std::string(shown) + ": must be at least 16M");
    return m;
}

std::string thumb_usage() {
    return R"(Usage: quickthumb thumb IN... [options]
Thumbnails files with the service's image engine, like vipsthumbnail, on all cores.
  -s, --size SIZE        the box: 256 = 256x256 (longest side 256), 256x = width 256,
                         x256 = height 256, 200x100 = both (default 256)
  -o, --output PATTERN   output path; %s is the input's name without extension and the
                         extension picks the format: .jpg/.jpeg, .png or .webp.
                         Without a directory the output goes beside its input; missing
                         directories are created. Default: tn_%s.jpg
  --fit MODE             contain (default: inside the box), cover (fill the box, centre
                         crop) or fill (stretch to the box)
  --enlarge              upscale images smaller than the box (default: never)
  -q, --quality N        JPEG and WebP quality 1-100 (default 80)
  --progressive          progressive JPEG
  --background COLOUR    what JPEG output flattens transparency onto: #rrggbb or R,G,B
                         (default #ffffff)
  -j, --jobs N           files processed at once (default 0: one per core)
  --max-pixels N         refuse larger images (default 100000000)
  --max-memory SIZE|N%   memory the files being done may take at once, e.g. 1G or 50%: each
                         reserves its estimated peak before it is decoded and waits while the
                         budget is spent; a file needing more than all of it fails (default:
                         3/4 of the memory cgroup's limit, else half of the machine's memory)
  --                     the remaining arguments are files, even if they start with -
Outputs are written to a temporary file and renamed, so a reader never sees half a file.
Prints "quickthumb: FILE: reason" for each failed file and carries on; the exit status is
0 when every file was done, 1 when any failed and 2 for bad usage.
)";
}

std::string usage() {
    return R"(quickthumb - asynchronous image thumbnails

Usage:
  quickthumb serve [flags]      run the HTTP service
  quickthumb thumb IN... [-s 256] [-o PATTERN]   thumbnail files (quickthumb thumb --help)
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
  --max-memory SIZE|N%    memory the running jobs may take, e.g. 384M or 60% of the limit: each
                          job reserves its estimated peak (from the image's header) before it
                          decodes and waits while the budget is spent; a job needing more than
                          all of it fails as too_large_for_memory (default: 3/4 of the memory
                          cgroup's limit, as docker --memory sets it, else half of the machine's)
  --shutdown-grace SECS   how long running jobs may finish on SIGTERM (default 20)
  --max-attempts N        attempts before a job failing for a passing reason (I/O, a crash, a
                          timeout) fails for good; broken images fail at once (default 3)
  --job-timeout DURATION  how long one attempt may run, e.g. 500ms, 60s, 2m (default 60s)
  --retention DURATION    finished jobs and their files are deleted after this, e.g. 7d, 12h;
                          0 keeps them forever (default 7d)
  --keep-uploads          keep the uploaded original after its thumbnails exist (default: delete)
  --store sqlite|redis    where jobs live: sqlite, in the data directory, for one instance
                          (default); redis, for several instances sharing one Redis (--redis)
                          and one bucket (--storage): any instance answers for any job, and a
                          dead instance's jobs are run by the others
  --redis URL             Redis, e.g. redis://127.0.0.1:6379/0: with --store redis it holds
                          the jobs; alone it mirrors the queue to a Stream for crash recovery
  --redis-claim-idle DURATION  with --store redis, a job held by an instance that stopped
                          renewing it for this long is claimed and run by another (running
                          jobs are renewed every third of it); alone, the mirror's entries of
                          a dead consumer are claimed (default 60s)
  --header-timeout DURATION  the whole request header must arrive within this, also the
                          keep-alive idle limit (default 10s); slow clients are closed
  --body-timeout DURATION the longest pause while a request body arrives (default 30s)
  --upload-rate R         uploads per second per client, decimal; over it POST /api/v1/jobs
                          gets 429 with Retry-After (default 10; 0 = no limit)
  --upload-burst N        uploads a client may make at once above the rate (default 60)
  --max-connections N     open connections in all; more get 503 and are closed (default 1024,
                          lowered to fit the open-file limit)
  --max-client-connections N  open connections per peer IP address (default 128)
  --trust-proxy           the client is the rightmost X-Forwarded-For address (set only behind
                          a proxy that appends it); otherwise the header is ignored
  --storage s3://BUCKET[/PREFIX]  keep uploads and thumbnails in an S3-compatible bucket
                          (default: the data directory). Keys, region and endpoint from
                          AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
                          AWS_REGION and AWS_ENDPOINT_URL (for R2, MinIO, Ceph, Garage)
  --s3-path-style         address the bucket as ENDPOINT/BUCKET rather than BUCKET.ENDPOINT
                          (MinIO, Ceph and Garage usually want it; forced for IP endpoints)
  --s3-timeout DURATION   one S3 request's deadline; failures are retried (default 15s)
  --s3-part-size SIZE     uploads above this go up as multipart parts of this size, one part
                          in memory per upload (default 8MiB, at least 5MiB)
  --thumb-redirect        GET /thumbs answers 302 to a presigned URL of the bucket's object
  --public-base-url URL   the outputs' url is URL/thumbs/ID/NAME (a CDN in front)
  --log-level LEVEL       debug, info, warn or error (default info)
  --api-token TOKEN       every /api/* request needs "Authorization: Bearer TOKEN" (default: none,
                          the API is open to anyone who can reach the port; a warning says so)
  --api-token-file PATH   more API tokens, one a line (# comments, blank lines skipped), e.g. the
                          old and new token while rotating; unreadable or empty is an error
  --metrics-token TOKEN   GET /metrics needs "Authorization: Bearer TOKEN" (default: open)
  --cors-origin LIST      origins allowed to call the API from a browser, comma-separated, e.g.
                          https://app.example.com (default: none, CORS off)
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
        out.cmd = wants_help(args) ? command::help : command::thumb;
        if (out.cmd == command::thumb) out.thumb = parse_thumb_args(args);
        return out;
    }
    if (args[0] != "serve") throw config_error("unknown command '" + args[0] + "' (try: quickthumb --help)");
    out.cmd = command::serve;

    serve_config& c = out.serve;
    c.workers = std::max(1u, std::thread::hardware_concurrency());
    // QUICKTHUMB_REDIS_URL is the name the docs and other tools use; QUICKTHUMB_REDIS works too.
    if (auto v = env("QUICKTHUMB_REDIS_URL")) {
        try {
            apply(c, "redis", *v);
        } catch (const config_error& e) {
            throw config_error(std::string(e.what()) + " (from QUICKTHUMB_REDIS_URL)");
        }
    }
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
        } else if (std::find(bool_flags.begin(), bool_flags.end(), a) != bool_flags.end() &&
                   (i + 1 >= args.size() || args[i + 1].starts_with("--"))) {
            value = "true";
        } else {
            if (i + 1 >= args.size()) throw config_error("--" + std::string(a) + ": missing value");
            value = args[++i];
        }
        if (std::find(serve_flags.begin(), serve_flags.end(), a) == serve_flags.end())
            throw config_error("unknown flag --" + std::string(a) + " (try: quickthumb serve --help)");
        apply(c, a, value);
    }
    if (c.redis_store && c.redis.empty())
        throw config_error("--store redis: needs --redis URL (the Redis every instance shares)");
    if (c.redis_store && c.storage.empty())
        throw config_error("--store redis: needs --storage s3://BUCKET[/PREFIX] (a bucket every instance shares: "
                           "another instance must be able to read an upload and serve a thumbnail)");
    return out;
}

}  // namespace quickthumb
