#include "quickthumb/error.hpp"

#include <stdexcept>

namespace quickthumb {
namespace {

class category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "quickthumb"; }
    std::string message(int ev) const override { return std::string(errc_name(static_cast<errc>(ev))); }
};

}  // namespace

const boost::system::error_category& quickthumb_category() noexcept {
    static const category instance;
    return instance;
}

std::string_view errc_name(errc e) noexcept {
    switch (e) {
        case errc::ok: return "ok";
        case errc::bad_request: return "bad_request";
        case errc::invalid_option: return "invalid_option";
        case errc::not_found: return "not_found";
        case errc::payload_too_large: return "payload_too_large";
        case errc::unsupported_media_type: return "unsupported_media_type";
        case errc::backlog_full: return "backlog_full";
        case errc::shutting_down: return "shutting_down";
        case errc::not_an_image: return "not_an_image";
        case errc::unsupported_format: return "unsupported_format";
        case errc::corrupt_image: return "corrupt_image";
        case errc::too_many_pixels: return "too_many_pixels";
        case errc::io_error: return "io_error";
        case errc::storage_full: return "storage_full";
        case errc::storage_readonly: return "storage_readonly";
        case errc::internal: return "internal";
        case errc::conflict: return "conflict";
        case errc::timeout: return "timeout";
        case errc::cancelled: return "cancelled";
        case errc::interrupted: return "interrupted";
        case errc::unauthorized: return "unauthorized";
        case errc::forbidden: return "forbidden";
        case errc::rate_limited: return "rate_limited";
        case errc::too_many_connections: return "too_many_connections";
        case errc::uri_too_long: return "uri_too_long";
        case errc::header_too_large: return "header_too_large";
        case errc::too_large_for_memory: return "too_large_for_memory";
        case errc::method_not_allowed: return "method_not_allowed";
        case errc::storage_unavailable: return "storage_unavailable";
    }
    return "internal";
}

bool is_transient(errc e) noexcept {
    switch (e) {
        case errc::io_error:
        case errc::storage_full:
        case errc::storage_readonly:
        case errc::storage_unavailable:
        case errc::internal:
        case errc::timeout: return true;
        default: return false;
    }
}

bool is_store_failure(errc e) noexcept {
    return e == errc::io_error || e == errc::storage_full || e == errc::storage_readonly ||
           e == errc::storage_unavailable;
}

void throw_exception_from_error(const error& e, const boost::source_location&) {
    throw std::runtime_error(std::string(errc_name(e.code)) + ": " + e.message);
}

errc errc_from_name(std::string_view name) noexcept {
    for (int i = 0; i <= static_cast<int>(errc_last); ++i)
        if (errc_name(static_cast<errc>(i)) == name) return static_cast<errc>(i);
    return errc::internal;
}

}  // namespace quickthumb
