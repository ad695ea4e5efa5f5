// The route table and its matcher (pure; see routes.hpp).
#include "routes.hpp"

#include <array>

namespace quickthumb::http {

namespace {

constexpr std::array<route, 13> table{{
    {"/healthz", m_get, "/healthz", guard::open, handler_kind::plain, endpoint::health},
    {"/readyz", m_get, "/readyz", guard::open, handler_kind::plain, endpoint::ready},
    {"/metrics", m_get, "/metrics", guard::metrics, handler_kind::plain, endpoint::metrics},
    {"/api/v1/events", m_get, "/api/v1/events", guard::api, handler_kind::stream, endpoint::events},
    {"/api/v1/jobs", m_post, "/api/v1/jobs", guard::api, handler_kind::upload, endpoint::upload},
    {"/api/v1/jobs", m_get, "/api/v1/jobs", guard::api, handler_kind::plain, endpoint::list_jobs},
    {"/api/v1/jobs/{id}", m_get, "/api/v1/jobs/{id}", guard::api, handler_kind::plain, endpoint::get_job},
    {"/api/v1/jobs/{id}", m_delete, "/api/v1/jobs/{id}", guard::api, handler_kind::plain, endpoint::cancel_job},
    {"/api/v1/jobs/{id}/retry", m_post, "/api/v1/jobs/{id}/retry", guard::api, handler_kind::plain, endpoint::retry_job},
    {"/thumbs/{id}/{file}", m_get, "/thumbs/{id}/{file}", guard::open, handler_kind::plain, endpoint::thumb},
    {"/openapi.json", m_get, "/openapi.json", guard::open, handler_kind::plain, endpoint::page, true},
    {"/", m_get, "static", guard::open, handler_kind::plain, endpoint::page, true},
    {"/{file}", m_get, "static", guard::open, handler_kind::plain, endpoint::page, true},
}};

unsigned bit_of(bhttp::verb m) {
    switch (m) {
        case bhttp::verb::get:
        case bhttp::verb::head: return m_get;
        case bhttp::verb::post: return m_post;
        case bhttp::verb::delete_: return m_delete;
        default: return 0;
    }
}

// The next segment of `rest` (empty segments skipped, as segments() does), consumed from it.
std::string_view next_segment(std::string_view& rest) {
    while (rest.starts_with('/')) rest.remove_prefix(1);
    const auto end = rest.find('/');
    const auto seg = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
    return seg;
}

// Whether `path`'s segments fit `pattern`'s; the {...} ones go to params. Walks the pattern in
// place: this runs for every table entry on every request.
bool fits(const std::vector<std::string_view>& seg, std::string_view pattern, std::vector<std::string_view>& params) {
    params.clear();
    std::size_t i = 0;
    for (auto want = next_segment(pattern); !want.empty(); want = next_segment(pattern), ++i) {
        if (i == seg.size()) return false;
        if (want.starts_with('{'))
            params.push_back(seg[i]);
        else if (want != seg[i])
            return false;
    }
    return i == seg.size();
}

void add_allow(std::string& allow, unsigned methods) {
    auto add = [&](std::string_view m) {
        if (allow.find(m) != std::string::npos) return;
        if (!allow.empty()) allow += ", ";
        allow += m;
    };
    if (methods & m_get) {
        add("GET");
        add("HEAD");
    }
    if (methods & m_post) add("POST");
    if (methods & m_delete) add("DELETE");
}

}  // namespace

std::span<const route> routes() { return table; }

std::vector<std::string_view> segments(std::string_view path) {
    std::vector<std::string_view> out;
    while (!path.empty()) {
        if (path.front() == '/') {
            path.remove_prefix(1);
            continue;
        }
        auto end = path.find('/');
        out.push_back(path.substr(0, end));
        path = end == std::string_view::npos ? std::string_view{} : path.substr(end);
    }
    return out;
}

route_match match_route(std::string_view path, bhttp::verb method) {
    route_match m;
    const auto seg = segments(path);
    const unsigned bit = bit_of(method);
    std::string_view allow_for;  // the first known path that matched without the method
    for (const auto& r : table) {
        std::vector<std::string_view> params;
        if (!fits(seg, r.pattern, params)) continue;
        if (r.methods & bit) {
            if (!allow_for.empty() && r.pattern != allow_for) continue;  // a path matched before
            m.found = &r;
            m.params = std::move(params);
            m.label = r.label;
            m.allow.clear();
            return m;
        }
        if (r.fallback || !allow_for.empty()) continue;
        allow_for = r.pattern;
        m.label = r.label;
    }
    // A known path, another method: every method it takes, from each of its entries.
    for (const auto& r : table)
        if (!allow_for.empty() && r.pattern == allow_for) add_allow(m.allow, r.methods);
    return m;
}

std::string_view route_label(std::string_view path, bhttp::verb method) { return match_route(path, method).label; }

}  // namespace quickthumb::http
