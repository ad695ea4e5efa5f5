#pragma once
// RESP, the Redis protocol: a request serializer (every command is an array of bulk strings) and
// an incremental reply parser (feed it bytes as they arrive, take complete values out). RESP2 in
// full, plus the RESP3 types that cost one line each (null, boolean, double, big number, blob
// error, verbatim string, map, set, push), so a server speaking RESP3 does not break us. No I/O.
//
// Replies are hostile input like any other: lengths and nesting are bounded, and anything that is
// not RESP is a protocol error after which the parser refuses further input (the byte stream can
// no longer be trusted to be in step with the requests).
#include "quickthumb/error.hpp"

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace quickthumb::resp {

// One command: its name and arguments, each sent as a bulk string (binary-safe).
using command = std::vector<std::string>;

// Appends the command in RESP to `out` (so a pipeline is several appends into one buffer).
void append_command(std::string& out, const command& cmd);
std::string serialize(const command& cmd);

enum class kind : std::uint8_t {
    simple_string,  // +OK
    error,          // -ERR ... (and RESP3 blob errors)
    integer,        // :42
    bulk_string,    // $3 foo
    null,           // $-1, *-1, and RESP3 _
    array,          // *n (and RESP3 sets and pushes, which carry the same shape)
    boolean,        // RESP3 #t / #f: in `integer` as 1 / 0
    double_value,   // RESP3 ,3.14: kept as text in `text`
    big_number,     // RESP3 (123...: kept as text
    verbatim,       // RESP3 =txt:...: the payload after the 4-byte format prefix, in `text`
    map,            // RESP3 %n: `elements` holds key, value, key, value, ...
};

struct value {
    kind type = kind::null;
    std::string text;             // simple/bulk/verbatim strings, error messages, doubles, big numbers
    std::int64_t integer = 0;     // integers and booleans
    std::vector<value> elements;  // arrays, sets, pushes; maps as key, value pairs

    bool is_null() const noexcept { return type == kind::null; }
    bool is_error() const noexcept { return type == kind::error; }
    bool is_array() const noexcept { return type == kind::array; }
    bool is_string() const noexcept {
        return type == kind::simple_string || type == kind::bulk_string || type == kind::verbatim;
    }
    bool is_integer() const noexcept { return type == kind::integer; }
    // The string, or nothing when this is not a string.
    std::optional<std::string_view> str() const noexcept {
        if (!is_string()) return std::nullopt;
        return std::string_view(text);
    }

    static value simple(std::string s) { return value{kind::simple_string, std::move(s), 0, {}}; }
    static value bulk(std::string s) { return value{kind::bulk_string, std::move(s), 0, {}}; }
    static value err(std::string s) { return value{kind::error, std::move(s), 0, {}}; }
    static value number(std::int64_t n) { return value{kind::integer, {}, n, {}}; }
    static value array_of(std::vector<value> v) { return value{kind::array, {}, 0, std::move(v)}; }
};

bool operator==(const value& a, const value& b);

// For logs and test failures: a compact, readable rendering (["a", 1, (nil), (error) ERR x]).
std::string to_string(const value& v);

struct limits {
    std::size_t max_bulk = 64u << 20;        // one bulk string (our replies are ids and small lists)
    std::size_t max_elements = 1u << 20;     // elements of one aggregate
    std::size_t max_depth = 32;              // nesting of aggregates
    std::size_t max_line = 64u << 10;        // a simple string, error or number line
};

class parser {
public:
    explicit parser(limits lim = {}) : limits_(lim) {}

    // Takes more bytes and parses every complete value in them. Returns the protocol error, if
    // any; after one, the parser stays failed and ignores further input.
    result<void> feed(std::string_view bytes);

    // The next complete top-level value, in order.
    std::optional<value> pop();
    std::size_t ready() const noexcept { return ready_.size(); }
    bool failed() const noexcept { return failure_.has_value(); }
    // Bytes received that are not yet part of a complete value.
    std::size_t buffered() const noexcept { return buffer_.size() - pos_; }
    // Forgets everything (a new connection).
    void reset();

private:
    // An aggregate being filled: its value and how many elements it still expects.
    struct frame {
        value v;
        std::size_t remaining = 0;
    };
    enum class step { done, need_more, failed };

    step parse_one();
    void complete(value v);
    step fail(std::string message);

    limits limits_;
    std::string buffer_;
    std::size_t pos_ = 0;  // first unparsed byte of buffer_
    std::vector<frame> stack_;
    std::deque<value> ready_;
    std::optional<error> failure_;
};

}  // namespace quickthumb::resp
