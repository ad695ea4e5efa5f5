#pragma once
// Who may call what: API tokens (Bearer), the metrics token and the CORS allow-list. Pure logic,
// no I/O except load_token_file; the session applies the decisions.
#include "quickthumb/config.hpp"
#include "quickthumb/error.hpp"

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace quickthumb::http {

// Tokens are compared over this many bytes whatever their length, so the time a check takes says
// nothing about a token's content or length. Longer tokens are refused at start-up.
inline constexpr std::size_t max_token_bytes = 256;

// A set of accepted tokens (several allow rotation). matches() compares against every token, each
// over max_token_bytes, with no early exit.
class token_set {
public:
    // Adds a token; an error if it is empty, longer than max_token_bytes or holds anything but
    // visible ASCII (what fits in an Authorization header unchanged).
    result<void> add(std::string_view token);
    bool empty() const noexcept { return tokens_.empty(); }
    std::size_t size() const noexcept { return tokens_.size(); }
    bool matches(std::string_view presented) const noexcept;

private:
    struct padded {
        std::array<unsigned char, max_token_bytes> bytes{};
        std::size_t size = 0;
    };
    std::vector<padded> tokens_;
};

// "Bearer <token>" (the scheme is case-insensitive, RFC 7235) -> the token; nullopt otherwise.
std::optional<std::string_view> bearer_token(std::string_view authorization) noexcept;

// A token file: one token per line; blank lines and lines starting with '#' are skipped; spaces
// around a token are dropped. An error names the bad line.
result<std::vector<std::string>> parse_token_list(std::string_view text);
// Reads and parses a token file; an unreadable file or one without tokens is an error.
result<std::vector<std::string>> load_token_file(const std::filesystem::path& path);

// What a path needs: the API token (/api/...), the metrics token (/metrics), or nothing.
enum class guard { open, api, metrics };
guard guard_for(std::string_view path) noexcept;

// "https://a.example, https://b.example" -> the exact origins; an error for anything that is not
// scheme://host[:port] (no path, no trailing slash, no wildcard).
result<std::vector<std::string>> parse_cors_origins(std::string_view list);

// What CORS asks of one request.
enum class cors_action {
    none,               // no CORS headers (off, no Origin, or an origin not on the list)
    allow,              // an allowed origin: add the CORS headers to the answer
    preflight_ok,       // OPTIONS /api/... from an allowed origin: 204 with the preflight headers
    preflight_refused,  // OPTIONS /api/... from any other origin: 403
};
cors_action decide_cors(const std::vector<std::string>& allowed, bool is_options, std::string_view path,
                        std::optional<std::string_view> origin) noexcept;
// The header fields for an allowed origin; the preflight ones too if asked.
std::vector<std::pair<std::string, std::string>> cors_fields(std::string_view origin, bool preflight);

// Everything the session needs, built once at start-up from the config (throws config_error for
// an unreadable or empty token file, a bad token or a bad origin).
struct access_policy {
    token_set api;
    token_set metrics;
    std::vector<std::string> cors_origins;
};
access_policy make_access_policy(const serve_config& cfg);

// Whether a request may go on: the tokens it carries (the Authorization header, and for the
// events route the access_token query value) against the path's guard.
bool allowed(const access_policy& policy, std::string_view path, std::optional<std::string_view> authorization,
             std::optional<std::string_view> query_token) noexcept;

// The target without the query parameter `name` (raw key match; every occurrence), so that a
// token given in the URL reaches no handler.
std::string strip_query_param(std::string_view target, std::string_view name);

}  // namespace quickthumb::http
