// Thumbnails from the data directory, and the embedded web page.
#include "handlers.hpp"

#include "quickthumb/job.hpp"
#include "quickthumb/web_assets.hpp"

#include <boost/beast/http/file_body.hpp>


namespace quickthumb::http {
namespace asio = boost::asio;

namespace {

// thumb_<w>x<h>.(jpg|png|webp), each side at most 5 digits: checked before any path is built from it.
bool is_valid_output_name(std::string_view name) {
    if (name.size() > 32 || !name.starts_with("thumb_")) return false;
    name.remove_prefix(6);
    auto dot = name.rfind('.');
    if (dot == std::string_view::npos) return false;
    auto ext = name.substr(dot + 1);
    if (ext != "jpg" && ext != "png" && ext != "webp") return false;
    auto dims = name.substr(0, dot);
    auto x = dims.find('x');
    if (x == std::string_view::npos || x == 0 || x + 1 == dims.size()) return false;
    for (std::size_t i = 0; i < dims.size(); ++i)
        if (i != x && !std::isdigit(static_cast<unsigned char>(dims[i]))) return false;
    return x <= 5 && dims.size() - x - 1 <= 5;
}

std::string_view content_type_for(std::string_view path) {
    if (path.ends_with(".html")) return "text/html; charset=utf-8";
    if (path.ends_with(".js")) return "text/javascript; charset=utf-8";
    if (path.ends_with(".css")) return "text/css; charset=utf-8";
    if (path.ends_with(".svg")) return "image/svg+xml";
    if (path.ends_with(".png")) return "image/png";
    if (path.ends_with(".jpg")) return "image/jpeg";
    if (path.ends_with(".webp")) return "image/webp";
    if (path.ends_with(".ico")) return "image/x-icon";
    if (path.ends_with(".json")) return "application/json";
    return "application/octet-stream";
}

}  // namespace

asio::awaitable<answer> handle_thumb(services& svc, const request_header& req, std::string id,
                                                       std::string name) {
    if (!is_valid_job_id(id) || !is_valid_output_name(name))
        co_return error_response(req, bhttp::status::not_found, errc::not_found, "no such thumbnail");
    // Outputs never change once written, so their name is a strong validator.
    const std::string etag = "\"" + id + "-" + name + "\"";
    if (req[bhttp::field::if_none_match] == etag) {
        bhttp::response<bhttp::empty_body> res{bhttp::status::not_modified, req.version()};
        res.set(bhttp::field::etag, etag);
        security_headers(res);
        res.keep_alive(req.keep_alive());
        co_return res;
    }
    if (svc.cfg.thumb_redirect) {
        // The client fetches the object from the bucket itself; the link is good for an hour.
        if (auto url = svc.files.thumb_redirect(id, name, std::chrono::hours(1))) {
            auto has = co_await svc.files.has_thumb(id, name);
            if (!has) co_return error_response(req, has.error());
            if (!*has) co_return error_response(req, bhttp::status::not_found, errc::not_found, "no such thumbnail");
            bhttp::response<bhttp::empty_body> res{bhttp::status::found, req.version()};
            res.set(bhttp::field::location, *url);
            res.set(bhttp::field::cache_control, "private, max-age=3000");
            security_headers(res);
            res.keep_alive(req.keep_alive());
            res.content_length(0);
            co_return res;
        }
    }
    auto found = co_await svc.files.open_thumb(id, name);
    if (!found) co_return error_response(req, found.error());
    if (!*found) co_return error_response(req, bhttp::status::not_found, errc::not_found, "no such thumbnail");
    auto common = [&](auto& res, std::uint64_t size) {
        res.set(bhttp::field::content_type, content_type_for(name));
        res.set(bhttp::field::etag, etag);
        res.set(bhttp::field::cache_control, "public, max-age=31536000, immutable");
        security_headers(res);
        res.content_length(size);
        res.keep_alive(req.keep_alive());
    };
    if (req.method() == bhttp::verb::head) {
        bhttp::response<bhttp::empty_body> head{bhttp::status::ok, req.version()};
        common(head, (*found)->size());
        co_return head;
    }
    if (!(*found)->has_descriptor()) {
        // An object store's answer, in memory (a thumbnail is small).
        bhttp::response<bhttp::vector_body<std::uint8_t>> res{bhttp::status::ok, req.version()};
        res.body() = (*found)->take_bytes();
        common(res, res.body().size());
        co_return res;
    }
    bhttp::file_body::value_type file;
    beast::error_code ec;
    beast::file opened;
    opened.native_handle((*found)->release());  // owned by `opened` from here on
    file.reset(std::move(opened), ec);
    if (ec) co_return error_response(req, bhttp::status::not_found, errc::not_found, "no such thumbnail");
    const auto size = file.size();
    bhttp::response<bhttp::file_body> res{std::piecewise_construct, std::make_tuple(std::move(file)),
                                          std::make_tuple(bhttp::status::ok, req.version())};
    common(res, size);
    co_return res;
}

answer handle_static(const request_header& req, std::string_view path) {
    for (const auto& a : web::assets()) {
        if (a.path != path) continue;
        bhttp::response<bhttp::string_body> res{bhttp::status::ok, req.version()};
        res.set(bhttp::field::content_type, content_type_for(path));
        res.set(bhttp::field::cache_control, "no-cache");
        security_headers(res);
        res.keep_alive(req.keep_alive());
        if (req.method() != bhttp::verb::head) res.body() = std::string(a.body);
        res.prepare_payload();
        if (req.method() == bhttp::verb::head) res.content_length(a.body.size());
        return res;
    }
    return error_response(req, bhttp::status::not_found, errc::not_found, "no such page: " + std::string(path));
}

}  // namespace quickthumb::http
