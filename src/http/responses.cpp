#include "handlers.hpp"

#include <boost/beast/http/empty_body.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>

namespace quickthumb::http {

bhttp::status status_for(errc e) noexcept {
    switch (e) {
        case errc::ok: return bhttp::status::ok;
        case errc::bad_request:
        case errc::invalid_option: return bhttp::status::bad_request;
        case errc::not_found: return bhttp::status::not_found;
        case errc::method_not_allowed: return bhttp::status::method_not_allowed;
        case errc::payload_too_large: return bhttp::status::payload_too_large;
        case errc::unsupported_media_type:
        case errc::unsupported_format:
        case errc::not_an_image: return bhttp::status::unsupported_media_type;
        case errc::corrupt_image:
        case errc::too_many_pixels:
        case errc::too_large_for_memory: return bhttp::status::unprocessable_entity;
        case errc::backlog_full: return bhttp::status::too_many_requests;
        case errc::shutting_down: return bhttp::status::service_unavailable;
        case errc::conflict: return bhttp::status::conflict;
        case errc::cancelled: return bhttp::status::conflict;
        case errc::timeout: return bhttp::status::gateway_timeout;
        case errc::interrupted: return bhttp::status::internal_server_error;
        case errc::unauthorized: return bhttp::status::unauthorized;
        case errc::forbidden: return bhttp::status::forbidden;
        case errc::rate_limited: return bhttp::status::too_many_requests;
        case errc::too_many_connections:
        case errc::storage_unavailable: return bhttp::status::service_unavailable;
        case errc::uri_too_long: return bhttp::status::uri_too_long;
        case errc::header_too_large: return bhttp::status::request_header_fields_too_large;
        case errc::storage_full:
        case errc::storage_readonly: return bhttp::status::insufficient_storage;
        case errc::io_error:
        case errc::internal: return bhttp::status::internal_server_error;
    }
    return bhttp::status::internal_server_error;
}

answer json_response(const request_header& req, bhttp::status status, const boost::json::value& body) {
    bhttp::response<bhttp::string_body> res{status, req.version()};
    res.set(bhttp::field::content_type, "application/json");
    res.set(bhttp::field::cache_control, "no-store");
    res.keep_alive(req.keep_alive());
    res.body() = boost::json::serialize(body);
    res.body() += '\n';
    security_headers(res);
    res.prepare_payload();
    if (req.method() == bhttp::verb::head) {
        // HEAD: the same header, Content-Length included, and no body (a keep-alive client would
        // read one as the start of the next answer).
        bhttp::response<bhttp::empty_body> head{res.base()};
        head.content_length(res.body().size());
        return head;
    }
    return res;
}

answer error_response(const request_header& req, bhttp::status status, errc code,
                                        std::string message) {
    boost::json::object body{{"error", {{"code", errc_name(code)}, {"message", std::move(message)}}}};
    auto a = json_response(req, status, body);
    // The object store does not answer now: uploads and retries may come back shortly.
    if (code == errc::storage_unavailable) a.add({{"Retry-After", "5"}});
    return a;
}

answer error_response(const request_header& req, const error& err) {
    return error_response(req, status_for(err.code), err.code, err.message);
}

answer retry_later_response(unsigned version, const error& err, long long seconds) {
    request_header closing{bhttp::verb::get, "/", version};
    closing.keep_alive(false);
    answer res = error_response(closing, err);
    res.add({{"Retry-After", std::to_string(seconds)}});
    return res;
}

std::string_view path_of(std::string_view target) {
    auto q = target.find('?');
    return q == std::string_view::npos ? target : target.substr(0, q);
}

result<std::multimap<std::string, std::string>> query_fields(std::string_view target) {
    auto u = boost::urls::parse_origin_form(target);
    if (!u) return error{errc::bad_request, "the request target is not a valid URL path"};
    std::multimap<std::string, std::string> out;
    for (auto p : u->params()) out.emplace(p.key, p.has_value ? p.value : std::string());
    return out;
}

}  // namespace quickthumb::http
