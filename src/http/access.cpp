#include "access.hpp"
#include "routes.hpp"

#include <fstream>
#include <sstream>

namespace quickthumb::http {

namespace {

bool visible_ascii(std::string_view s) noexcept {
    for (char c : s)
        if (c < 0x21 || c > 0x7e) return false;
    return true;
}

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

result<void> token_set::add(std::string_view token) {
    if (token.empty()) return error{errc::invalid_option, "a token must not be empty"};
    if (token.size() > max_token_bytes)
        return error{errc::invalid_option, "a token must be at most " + std::to_string(max_token_bytes) + " characters"};
    if (!visible_ascii(token))
        return error{errc::invalid_option, "a token may hold only visible ASCII characters (no spaces)"};
    padded p;
    std::copy(token.begin(), token.end(), p.bytes.begin());
    p.size = token.size();
    tokens_.push_back(p);
    return {};
}

bool token_set::matches(std::string_view presented) const noexcept {
    // The presented token is padded like the stored ones; one longer than any stored token can
    // match none, but is compared all the same so that its length shows in no timing.
    std::array<unsigned char, max_token_bytes> in{};
    const std::size_t n = std::min(presented.size(), max_token_bytes);
    for (std::size_t i = 0; i < n; ++i) in[i] = static_cast<unsigned char>(presented[i]);
    const unsigned too_long = presented.size() > max_token_bytes ? 1u : 0u;
    unsigned any = 0;
    for (const auto& t : tokens_) {
        // volatile: keeps the compiler from turning the loop into an early-exit memcmp.
        volatile unsigned diff = too_long | static_cast<unsigned>(t.size ^ presented.size());
        for (std::size_t i = 0; i < max_token_bytes; ++i) diff = diff | static_cast<unsigned>(t.bytes[i] ^ in[i]);
        any |= (diff == 0) ? 1u : 0u;
    }
    return any != 0;
}

std::optional<std::string_view> bearer_token(std::string_view authorization) noexcept {
    constexpr std::string_view scheme = "bearer";
    authorization = trim(authorization);
    if (authorization.size() <= scheme.size() + 1) return std::nullopt;
    for (std::size_t i = 0; i < scheme.size(); ++i)
        if (lower(authorization[i]) != scheme[i]) return std::nullopt;
    if (authorization[scheme.size()] != ' ') return std::nullopt;
    auto token = trim(authorization.substr(scheme.size() + 1));
    if (token.empty()) return std::nullopt;
    return token;
}

result<std::vector<std::string>> parse_token_list(std::string_view text) {
    std::vector<std::string> out;
    int line_no = 0;
    while (!text.empty()) {
        auto nl = text.find('\n');
        auto line = trim(text.substr(0, nl));
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        ++line_no;
        if (line.empty() || line.front() == '#') continue;
        token_set check;
        if (auto ok = check.add(line); !ok)
            return error{errc::invalid_option, "line " + std::to_string(line_no) + ": " + ok.error().message};
        out.emplace_back(line);
    }
    return out;
}

result<std::vector<std::string>> load_token_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return error{errc::io_error, "cannot read " + path.string()};
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) return error{errc::io_error, "cannot read " + path.string()};
    auto tokens = parse_token_list(text.str());
    if (!tokens) return error{tokens.error().code, path.string() + ": " + tokens.error().message};
    if (tokens->empty()) return error{errc::invalid_option, path.string() + " holds no token"};
    return tokens;
}

guard guard_for(std::string_view path) noexcept {
    // Anything under /api needs the token, a route or not: an unknown one is not told apart.
    if (path == "/api" || path.starts_with("/api/")) return guard::api;
    try {
        // No method matches `unknown`: the label is that of the route the path names, if any.
        const auto named = match_route(path, bhttp::verb::unknown).label;
        for (const auto& r : routes())
            if (!r.fallback && r.label == named) return r.access;
    } catch (...) {  // (the match allocates)
    }
    return guard::open;
}

result<std::vector<std::string>> parse_cors_origins(std::string_view list) {
    std::vector<std::string> out;
    while (!list.empty()) {
        auto comma = list.find(',');
        auto origin = trim(list.substr(0, comma));
        list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
        if (origin.empty()) continue;
        auto sep = origin.find("://");
        const bool scheme_ok = origin.starts_with("http://") || origin.starts_with("https://");
        const auto host = sep == std::string_view::npos ? std::string_view{} : origin.substr(sep + 3);
        if (!scheme_ok || host.empty() || host.find_first_of("/?#*@ ") != std::string_view::npos ||
            !visible_ascii(origin))
            return error{errc::invalid_option, "expected origins like https://app.example.com (scheme://host[:port], "
                                               "comma-separated), got '" + std::string(origin) + "'"};
        out.emplace_back(origin);
    }
    return out;
}

cors_action decide_cors(const std::vector<std::string>& allowed, bool is_options, std::string_view path,
                        std::optional<std::string_view> origin) noexcept {
    if (allowed.empty() || !origin) return cors_action::none;
    bool listed = false;
    for (const auto& a : allowed) listed = listed || a == *origin;  // exact: scheme, host and port
    if (is_options && guard_for(path) == guard::api) return listed ? cors_action::preflight_ok : cors_action::preflight_refused;
    return listed ? cors_action::allow : cors_action::none;
}

std::vector<std::pair<std::string, std::string>> cors_fields(std::string_view origin, bool preflight) {
    std::vector<std::pair<std::string, std::string>> out{{"Access-Control-Allow-Origin", std::string(origin)},
                                                         {"Vary", "Origin"}};
    if (preflight) {
        out.emplace_back("Access-Control-Allow-Methods", "GET, POST, DELETE");
        out.emplace_back("Access-Control-Allow-Headers", "Authorization, Content-Type, Idempotency-Key, Last-Event-ID");
        out.emplace_back("Access-Control-Max-Age", "600");
    } else {
        out.emplace_back("Access-Control-Expose-Headers", "Location, Retry-After, Idempotent-Replayed");
    }
    return out;
}

access_policy make_access_policy(const serve_config& cfg) {
    access_policy p;
    auto add_all = [](token_set& set, const std::vector<std::string>& tokens, std::string_view from) {
        for (const auto& t : tokens)
            if (auto ok = set.add(t); !ok) throw config_error(std::string(from) + ": " + ok.error().message);
    };
    if (!cfg.api_token.empty()) add_all(p.api, {cfg.api_token}, "--api-token");
    if (!cfg.api_token_file.empty()) {
        auto tokens = load_token_file(cfg.api_token_file);
        if (!tokens) throw config_error("--api-token-file: " + tokens.error().message);
        add_all(p.api, *tokens, "--api-token-file");
    }
    if (!cfg.metrics_token.empty()) add_all(p.metrics, {cfg.metrics_token}, "--metrics-token");
    auto origins = parse_cors_origins(cfg.cors_origin);
    if (!origins) throw config_error("--cors-origin: " + origins.error().message);
    p.cors_origins = std::move(*origins);
    return p;
}

bool allowed(const access_policy& policy, std::string_view path, std::optional<std::string_view> authorization,
             std::optional<std::string_view> query_token) noexcept {
    const auto g = guard_for(path);
    const token_set& set = g == guard::api ? policy.api : policy.metrics;
    if (g == guard::open || set.empty()) return true;
    std::optional<std::string_view> presented;
    if (authorization) presented = bearer_token(*authorization);
    if (!presented && query_token && path == "/api/v1/events") presented = query_token;
    return presented && set.matches(*presented);
}

std::string strip_query_param(std::string_view target, std::string_view name) {
    const auto q = target.find('?');
    if (q == std::string_view::npos) return std::string(target);
    std::string out(target.substr(0, q));
    std::string_view query = target.substr(q + 1);
    char sep = '?';
    while (true) {
        const auto amp = query.find('&');
        const auto part = query.substr(0, amp);
        const auto key = part.substr(0, part.find('='));
        if (!part.empty() && key != name) {
            out += sep;
            out += part;
            sep = '&';
        }
        if (amp == std::string_view::npos) break;
        query.remove_prefix(amp + 1);
    }
    return out;
}

}  // namespace quickthumb::http
