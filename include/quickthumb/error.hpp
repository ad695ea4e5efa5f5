#pragma once
// The application's error policy: expected failures travel as values (error_code with
// quickthumb::errc, or boost::system::result<T>); exceptions are kept for bugs and fatal
// start-up problems (bad config, bind). One function, http::status_for, maps them to HTTP.
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>
#include <string>
#include <string_view>
#include <system_error>

namespace quickthumb {

enum class errc {
    ok = 0,
    // requests
    bad_request = 1,       // malformed HTTP/multipart/JSON
    invalid_option,        // a width/fit/format/... value out of range
    not_found,
    payload_too_large,
    unsupported_media_type,
    backlog_full,
    shutting_down,
    conflict,              // the job's state does not allow that (retry a succeeded job, ...)
    // images (permanent job failures)
    not_an_image,          // bytes match no image format at all
    unsupported_format,    // a real format we do not decode (TIFF, SVG, ...)
    corrupt_image,         // truncated or broken data
    too_many_pixels,       // header says more pixels than --max-pixels
    // environment (transient: the job is retried with backoff)
    io_error,
    storage_full,
    storage_readonly,      // the data directory cannot be written (read-only mount, permissions)
    internal,
    timeout,               // one attempt ran past --job-timeout
    // job life
    cancelled,             // stopped on request (DELETE) or at shutdown
    interrupted,           // the service died during every attempt (a poison image?)
    // access and abuse
    unauthorized,          // no or wrong API token
    forbidden,             // e.g. a cross-origin request from an origin not allowed
    rate_limited,          // this client sent more uploads than its rate allows
    too_many_connections,  // the connection cap (global or this client's) is reached
    uri_too_long,
    header_too_large,      // the request header is over the size or field-count limit
    // images (permanent): decoding it would take more than the whole memory budget (--max-memory)
    too_large_for_memory,
    // requests: the path exists, the method is not one it takes (the answer lists them in Allow)
    method_not_allowed,
    // environment (transient): the object store does not answer, or answers 5xx, after retries
    storage_unavailable,
};
// The last errc: loops over every code end here (keep it the last one above).
inline constexpr errc errc_last = errc::storage_unavailable;

// Whether a job failing with this code may succeed if run again: I/O trouble, a full disk, a
// timeout, a bug's exception. Broken or unsupported images fail at once.
bool is_transient(errc e) noexcept;
// Whether a store write failed for want of a working disk (full, read-only, failing), rather than
// being refused: the same write may succeed later.
bool is_store_failure(errc e) noexcept;

const boost::system::error_category& quickthumb_category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), quickthumb_category()};
}

// The stable, machine-readable code used in JSON bodies: "invalid_option", "too_many_pixels", ...
std::string_view errc_name(errc e) noexcept;
// The other way (a stored code read back); an unknown name is internal.
errc errc_from_name(std::string_view name) noexcept;

// A failure with a message a person understands. Used in results across module boundaries.
struct error {
    errc code = errc::internal;
    std::string message;
};

// result<T, error>::value() on a failure throws this (found by ADL): calling value() on a failure
// is a bug, so it is an exception.
[[noreturn]] void throw_exception_from_error(const error& e, const boost::source_location& loc);

template <class T>
using result = boost::system::result<T, error>;

}  // namespace quickthumb

namespace boost::system {
template <>
struct is_error_code_enum<quickthumb::errc> : std::true_type {};
}  // namespace boost::system

