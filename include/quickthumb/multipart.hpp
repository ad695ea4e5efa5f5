#pragma once
// A streaming multipart/form-data parser (RFC 7578): a state machine with no I/O. Feed it the
// body in chunks of any size, split anywhere; it calls back for each part's headers, each piece
// of its data, and its end. Memory use is bounded by the boundary length plus one header block.
#include "quickthumb/error.hpp"

#include <cstddef>
#include <algorithm>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace quickthumb::multipart {

// The boundary parameter of a Content-Type like `multipart/form-data; boundary=xyz`
// (quoted or not). Empty optional when the type is not multipart/form-data or has no boundary.
std::optional<std::string> boundary_from_content_type(std::string_view content_type);

// The same, saying what is wrong: unsupported_media_type when the type is not multipart/form-data
// or has no boundary; bad_request when the boundary breaks RFC 2046 (over 70 characters, or a
// character outside its set).
result<std::string> boundary_of(std::string_view content_type);

struct part_header {
    std::string name;                     // Content-Disposition name=
    std::optional<std::string> filename;  // Content-Disposition filename=, if any
    std::string content_type;             // the part's Content-Type, "" if absent
};

struct callbacks {
    // Called once per part, when its header block is complete.
    std::function<void(const part_header&)> on_part_begin;
    // Called zero or more times with the part's data, in order.
    std::function<void(std::string_view)> on_part_data;
    // Called when the part's data is complete.
    std::function<void()> on_part_end;
};

class parser {
public:
    parser(std::string boundary, callbacks cb, std::size_t max_header_bytes = 16 * 1024);
    // The searcher points into delimiter_: a parser stays where it was made.
    parser(const parser&) = delete;
    parser& operator=(const parser&) = delete;

    // Consumes a chunk. Returns an error (bad_request, with a message) on malformed input; after
    // an error the parser stays failed. Data after the closing boundary is ignored.
    boost::system::error_code feed(std::string_view chunk);

    // True once the closing boundary (--boundary--) has been seen.
    bool done() const noexcept;
    // True once the first boundary has been seen (false: it never appeared in the body).
    bool started() const noexcept;

    // A message for the last error ("missing closing boundary", "part header too large", ...).
    const std::string& error_message() const noexcept { return error_message_; }

private:
    enum class state { preamble, after_boundary, headers, data, epilogue, failed };
    boost::system::error_code fail(std::string msg);
    // Parses as much of `buf` as it can decide; returns how much it consumed. The rest (a possible
    // partial delimiter, an incomplete header block) needs the next chunk after it.
    std::size_t run(std::string_view buf, boost::system::error_code& ec);
    // The part's headers; an error message when they are malformed.
    std::optional<std::string> parse_headers(std::string_view block);

    std::string delimiter_;  // "\r\n--" + boundary
    std::boyer_moore_horspool_searcher<std::string::const_iterator> searcher_;
    callbacks cb_;
    std::size_t max_header_bytes_;
    state state_ = state::preamble;
    std::string carry_;  // bytes kept between chunks (possible partial delimiter or header block)
    std::string error_message_;
};

}  // namespace quickthumb::multipart
