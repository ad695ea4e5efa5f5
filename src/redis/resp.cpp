#include "quickthumb/resp.hpp"

#include <algorithm>
#include <charconv>

namespace quickthumb::resp {
namespace {

constexpr std::string_view crlf = "\r\n";

// Strict decimal: an optional '-', then digits, nothing else (RESP never pads or uses '+').
std::optional<std::int64_t> parse_int(std::string_view s) {
    if (s.empty() || s.size() > 20) return std::nullopt;
    std::int64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
    return v;
}

bool is_big_number(std::string_view s) {
    if (!s.empty() && s.front() == '-') s.remove_prefix(1);
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string printable(char c) {
    if (c >= 0x20 && c < 0x7f) return std::string("'") + c + "'";
    static constexpr char hex[] = "0123456789abcdef";
    const auto u = static_cast<unsigned char>(c);
    return std::string("0x") + hex[u >> 4] + hex[u & 15];
}

void render(const value& v, std::string& out) {
    switch (v.type) {
        case kind::simple_string:
        case kind::double_value:
        case kind::big_number: out += v.text; return;
        case kind::bulk_string:
        case kind::verbatim: out += '"' + v.text + '"'; return;
        case kind::error: out += "(error) " + v.text; return;
        case kind::integer: out += std::to_string(v.integer); return;
        case kind::boolean: out += v.integer ? "true" : "false"; return;
        case kind::null: out += "(nil)"; return;
        case kind::array:
        case kind::map: {
            const bool is_map = v.type == kind::map;
            out += is_map ? '{' : '[';
            for (std::size_t i = 0; i < v.elements.size(); ++i) {
                if (i) out += is_map && i % 2 ? ": " : ", ";
                render(v.elements[i], out);
            }
            out += is_map ? '}' : ']';
            return;
        }
    }
}

}  // namespace

void append_command(std::string& out, const command& cmd) {
    out += '*';
    out += std::to_string(cmd.size());
    out += crlf;
    for (const auto& arg : cmd) {
        out += '$';
        out += std::to_string(arg.size());
        out += crlf;
        out += arg;
        out += crlf;
    }
}

std::string serialize(const command& cmd) {
    std::string out;
    append_command(out, cmd);
    return out;
}

bool operator==(const value& a, const value& b) {
    return a.type == b.type && a.text == b.text && a.integer == b.integer && a.elements == b.elements;
}

std::string to_string(const value& v) {
    std::string out;
    render(v, out);
    return out;
}

result<void> parser::feed(std::string_view bytes) {
    if (failure_) return *failure_;
    // Drop what was consumed once it is most of the buffer, so the buffer stays near one reply.
    if (pos_ > 0 && pos_ >= buffer_.size() / 2) {
        buffer_.erase(0, pos_);
        pos_ = 0;
    }
    buffer_.append(bytes);
    for (;;) {
        switch (parse_one()) {
            case step::done: continue;
            case step::need_more: return {};
            case step::failed: return *failure_;
        }
    }
}

std::optional<value> parser::pop() {
    if (ready_.empty()) return std::nullopt;
    value v = std::move(ready_.front());
    ready_.pop_front();
    return v;
}

void parser::reset() {
    buffer_.clear();
    pos_ = 0;
    stack_.clear();
    ready_.clear();
    failure_.reset();
}

parser::step parser::fail(std::string message) {
    failure_ = error{errc::io_error, "redis protocol error: " + std::move(message)};
    buffer_.clear();
    pos_ = 0;
    stack_.clear();
    return step::failed;
}

void parser::complete(value v) {
    while (!stack_.empty()) {
        frame& top = stack_.back();
        top.v.elements.push_back(std::move(v));
        if (--top.remaining > 0) return;
        v = std::move(top.v);
        stack_.pop_back();
    }
    ready_.push_back(std::move(v));
}

// Parses one element (a scalar, or the header of an aggregate) at pos_. Consumes nothing unless
// the element is complete, so a split feed simply resumes at the same place.
parser::step parser::parse_one() {
    const std::string_view buf = std::string_view(buffer_).substr(pos_);
    if (buf.empty()) return step::need_more;
    const auto eol = buf.find(crlf, 1);
    if (eol == std::string_view::npos) {
        if (buf.size() > limits_.max_line + 1) return fail("a line longer than " + std::to_string(limits_.max_line) + " bytes");
        return step::need_more;
    }
    if (eol > limits_.max_line + 1) return fail("a line longer than " + std::to_string(limits_.max_line) + " bytes");
    const char type = buf[0];
    const std::string_view line = buf.substr(1, eol - 1);
    const std::size_t after_line = eol + crlf.size();

    auto consume_line = [&] { pos_ += after_line; };

    switch (type) {
        case '+':
            consume_line();
            complete(value::simple(std::string(line)));
            return step::done;
        case '-':
            consume_line();
            complete(value::err(std::string(line)));
            return step::done;
        case ':': {
            auto n = parse_int(line);
            if (!n) return fail("bad integer '" + std::string(line.substr(0, 32)) + "'");
            consume_line();
            complete(value::number(*n));
            return step::done;
        }
        case '_':
            if (!line.empty()) return fail("bad null");
            consume_line();
            complete(value{});
            return step::done;
        case '#':
            if (line != "t" && line != "f") return fail("bad boolean");
            consume_line();
            complete(value{kind::boolean, {}, line == "t" ? 1 : 0, {}});
            return step::done;
        case ',':
            if (line.empty()) return fail("empty double");
            consume_line();
            complete(value{kind::double_value, std::string(line), 0, {}});
            return step::done;
        case '(':
            if (!is_big_number(line)) return fail("bad big number");
            consume_line();
            complete(value{kind::big_number, std::string(line), 0, {}});
            return step::done;
        case '$':
        case '!':
        case '=': {
            auto n = parse_int(line);
            if (!n) return fail("bad bulk length '" + std::string(line.substr(0, 32)) + "'");
            if (*n == -1 && type == '$') {
                consume_line();
                complete(value{});
                return step::done;
            }
            if (*n < 0) return fail("negative bulk length " + std::to_string(*n));
            if (static_cast<std::uint64_t>(*n) > limits_.max_bulk)
                return fail("bulk length " + std::to_string(*n) + " over the limit of " + std::to_string(limits_.max_bulk));
            const auto len = static_cast<std::size_t>(*n);
            if (buf.size() < after_line + len + crlf.size()) return step::need_more;
            if (buf.substr(after_line + len, crlf.size()) != crlf) return fail("bulk string not followed by CRLF");
            std::string payload(buf.substr(after_line, len));
            pos_ += after_line + len + crlf.size();
            if (type == '$') {
                complete(value::bulk(std::move(payload)));
            } else if (type == '!') {
                complete(value::err(std::move(payload)));
            } else {
                // "txt:" or "mkd:" then the text.
                if (payload.size() < 4 || payload[3] != ':') return fail("bad verbatim string");
                complete(value{kind::verbatim, payload.substr(4), 0, {}});
            }
            return step::done;
        }
        case '*':
        case '~':
        case '>':
        case '%': {
            auto n = parse_int(line);
            if (!n) return fail("bad aggregate length '" + std::string(line.substr(0, 32)) + "'");
            if (*n == -1 && type == '*') {
                consume_line();
                complete(value{});
                return step::done;
            }
            if (*n < 0) return fail("negative aggregate length " + std::to_string(*n));
            const std::uint64_t count = static_cast<std::uint64_t>(*n) * (type == '%' ? 2 : 1);
            if (count > limits_.max_elements)
                return fail("aggregate of " + std::to_string(count) + " elements over the limit of " +
                            std::to_string(limits_.max_elements));
            if (stack_.size() >= limits_.max_depth)
                return fail("nesting deeper than " + std::to_string(limits_.max_depth));
            consume_line();
            value v{type == '%' ? kind::map : kind::array, {}, 0, {}};
            if (count == 0) {
                complete(std::move(v));
                return step::done;
            }
            // Reserve only a little: the declared count is the sender's claim, not bytes we hold.
            v.elements.reserve(std::min<std::size_t>(count, 1024));
            stack_.push_back(frame{std::move(v), static_cast<std::size_t>(count)});
            return step::done;
        }
        case '|': return fail("RESP3 attributes are not supported");
        default: return fail("unexpected type byte " + printable(type));
    }
}

}  // namespace quickthumb::resp
