// The router's pure part (no I/O): path segments and the metrics route label. Apart from
// server.cpp so that the fuzz targets can reach it without the server.
#include "handlers.hpp"

namespace quickthumb::http {

// Splits "/a/b/c" into {"a","b","c"}.
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

// The route template a request is counted under: one of a fixed few, never the raw path (a job id
// in a label would make a new series per job). Mirrors route() and session().
std::string_view route_label(std::string_view path, bhttp::verb method) {
    if (path == "/healthz") return "/healthz";
    if (path == "/readyz") return "/readyz";
    if (path == "/metrics") return "/metrics";
    if (path == "/openapi.json") return "/openapi.json";
    if (path == "/api/v1/events") return "/api/v1/events";
    const auto seg = segments(path);
    if (seg.size() >= 3 && seg[0] == "api" && seg[1] == "v1" && seg[2] == "jobs") {
        if (seg.size() == 3) return "/api/v1/jobs";
        if (seg.size() == 4) return "/api/v1/jobs/{id}";
        if (seg.size() == 5 && seg[4] == "retry") return "/api/v1/jobs/{id}/retry";
        return "other";
    }
    if (seg.size() == 3 && seg[0] == "thumbs") return "/thumbs/{id}/{file}";
    if ((method == bhttp::verb::get || method == bhttp::verb::head) && seg.size() <= 1) return "static";
    return "other";
}

}  // namespace quickthumb::http
