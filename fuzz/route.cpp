// libFuzzer target: an HTTP request as the server reads it, then the router's pure functions on it:
// Beast's request parser (the server's header limit) on the raw bytes, then path_of / segments /
// route_label, the query string (query_fields), the job options (parse_job_params, sizes= included),
// job ids and states, the multipart boundary of the Content-Type, and the duration parser.
#include "http/handlers.hpp"
#include "quickthumb/config.hpp"
#include "quickthumb/job.hpp"
#include "quickthumb/multipart.hpp"

#include <boost/beast/http/string_body.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

namespace http = quickthumb::http;
namespace bhttp = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(16 * 1024);  // as server.cpp
    parser.body_limit(64 * 1024);
    parser.eager(true);
    boost::beast::error_code ec;
    parser.put(boost::asio::buffer(data, size), ec);
    if (!parser.is_header_done()) return 0;
    const auto& req = parser.get();
    const std::string_view target = req.target();
    const auto path = http::path_of(target);
    const auto seg = http::segments(path);
    for (auto s : seg)
        if (s.empty() || s.find('/') != std::string_view::npos) std::abort();
    const auto matched = http::match_route(path, req.method());
    if (matched.label.empty() || matched.label != http::route_label(path, req.method())) std::abort();
    if (matched.found && (!matched.allow.empty() || matched.params.size() > 2)) std::abort();
    if (seg.size() >= 4) {
        (void)quickthumb::is_valid_job_id(seg[3]);
        (void)quickthumb::parse_job_state(seg[3]);
    }
    if (auto ct = req.find(bhttp::field::content_type); ct != req.end())
        (void)quickthumb::multipart::boundary_from_content_type(ct->value());
    auto fields = http::query_fields(target);
    if (!fields) return 0;
    (void)quickthumb::parse_job_params(*fields);
    for (const auto& [name, value] : *fields) {
        // Every value also as each option (sizes=, fit=, quality=, ...), whatever its name was.
        for (auto opt : {"sizes", "width", "height", "fit", "format", "quality", "progressive", "background"}) {
            std::multimap<std::string, std::string> one{{opt, value}};
            (void)quickthumb::parse_job_params(one);
        }
        try {
            (void)quickthumb::parse_duration(name, value);
        } catch (const quickthumb::config_error&) {
        }
    }
    return 0;
}
