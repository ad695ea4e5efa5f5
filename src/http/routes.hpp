#pragma once
// Internal to the http module: the route table, the one place that knows the routes. The router
// (server.cpp), the metrics label, the access guards and the OpenAPI coverage test all read it.
// Pure: no I/O, so the fuzz target reaches it without the server.
#include "access.hpp"

#include <boost/beast/http/verb.hpp>

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace quickthumb::http {

namespace bhttp = boost::beast::http;

// How a route's handler is run: plain (its small body, if any, already read and dropped), upload
// (it reads the body itself), stream (an event stream that holds the connection).
enum class handler_kind { plain, upload, stream };

// What answers a route (server.cpp dispatches on it).
enum class endpoint { health, ready, metrics, events, upload, list_jobs, get_job, cancel_job, retry_job, thumb, page };

// Methods as a set; GET includes HEAD.
enum method_bits : unsigned { m_get = 1, m_post = 2, m_delete = 4 };

struct route {
    std::string_view pattern;  // "/api/v1/jobs/{id}": "{name}" is one path segment
    unsigned methods;          // method_bits
    std::string_view label;    // the metrics label (never a raw path)
    guard access;              // which token it needs
    handler_kind kind;
    endpoint target;
    // The web page's files: a method they do not take is a 404 ("nothing here"), not a 405.
    bool fallback = false;
};

// Every route, in the order they are tried.
std::span<const route> routes();

struct route_match {
    const route* found = nullptr;            // the route for this path and method
    std::vector<std::string_view> params;    // its {...} segments, in order
    std::string_view label = "other";        // the metrics label (a 405 counts under its path's)
    std::string allow;                       // a known path, another method: "GET, HEAD, DELETE"
};
route_match match_route(std::string_view path, bhttp::verb method);

// Splits "/a/b/c" into {"a","b","c"} (empty segments dropped).
std::vector<std::string_view> segments(std::string_view path);
// The route template a request is counted under: one of the table's labels, or "other".
std::string_view route_label(std::string_view path, bhttp::verb method);

}  // namespace quickthumb::http
