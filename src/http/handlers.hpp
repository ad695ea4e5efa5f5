#pragma once
// Internal to the http module: request handlers and response helpers.
#include "quickthumb/error.hpp"
#include "quickthumb/http_server.hpp"

#include "answer.hpp"
#include "routes.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/object.hpp>

#include <chrono>
#include <map>

namespace quickthumb::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

using header_parser = bhttp::request_parser<bhttp::empty_body>;
using request_header = bhttp::request<bhttp::empty_body>;

// Deadlines for each I/O step (the header's and the body's come from --header-timeout and
// --body-timeout: svc.cfg).
// After the last answer on a connection: how long, and how much, of a refused body is still read
// and dropped so that the client sees the answer instead of a reset.
inline constexpr std::chrono::seconds linger_time{5};
inline constexpr std::uint64_t max_linger_bytes = 64ull << 20;
inline constexpr std::chrono::seconds write_timeout{30};

// Headers every answer carries: a strict Content-Security-Policy (the page loads only its own
// files) and nosniff (a thumbnail is never taken for HTML).
template <class Fields>
void security_headers(Fields& f) {
    f.set("Content-Security-Policy",
          "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'");
    f.set("X-Content-Type-Options", "nosniff");
}

// The one place that maps an error to an HTTP status.
bhttp::status status_for(errc e) noexcept;

answer json_response(const request_header& req, bhttp::status status, const boost::json::value& body);
answer error_response(const request_header& req, const error& err);
// An error answer that asks the client to come back (429, 503) after `seconds`: Retry-After, and
// the connection closes after it (the request's body, if any, is not read).
answer retry_later_response(unsigned version, const error& err, long long seconds);
answer error_response(const request_header& req, bhttp::status status, errc code, std::string message);


// Query string (and form) fields, decoded. Returns bad_request on a malformed target.
result<std::multimap<std::string, std::string>> query_fields(std::string_view target);
std::string_view path_of(std::string_view target);

// Handlers. The upload handler owns reading the body; the others get a request whose body (if
// any) was already read and discarded.
boost::asio::awaitable<answer> handle_upload(services& svc, beast::tcp_stream& stream,
                                                               beast::flat_buffer& buffer, header_parser& parser);
boost::asio::awaitable<answer> handle_get_job(services& svc, const request_header& req,
                                                                std::string id);
boost::asio::awaitable<answer> handle_list_jobs(services& svc, const request_header& req);
boost::asio::awaitable<answer> handle_cancel_job(services& svc, const request_header& req,
                                                                   std::string id);
boost::asio::awaitable<answer> handle_retry_job(services& svc, const request_header& req,
                                                                  std::string id);
boost::asio::awaitable<answer> handle_thumb(services& svc, const request_header& req,
                                                              std::string id, std::string name);
// GET /api/v1/events: Server-Sent Events until the client goes. Returns an answer to write only
// when the request is refused (bad ?job=, ...); otherwise the stream has ended and the connection
// must be closed. `extra` (CORS, say) go into the stream's header.
boost::asio::awaitable<std::optional<answer>> handle_events(services& svc, beast::tcp_stream& stream,
                                                            const request_header& req, const extra_fields& extra = {});
// How often an idle event stream gets a comment line, so proxies and browsers keep it open.
inline constexpr std::chrono::seconds events_heartbeat{15};

answer handle_static(const request_header& req, std::string_view path);

}  // namespace quickthumb::http
