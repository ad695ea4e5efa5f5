#include "quickthumb/multipart.hpp"

#include <cctype>

namespace quickthumb::multipart {
namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Parameters of a header value like `form-data; name="a"; filename="b.jpg"` (names lower-cased).
// Quoted strings may contain backslash escapes and semicolons.
std::vector<std::pair<std::string, std::string>> header_params(std::string_view v) {
    std::vector<std::pair<std::string, std::string>> out;
    auto semi = v.find(';');
    if (semi == std::string_view::npos) return out;
    v.remove_prefix(semi + 1);
    while (!v.empty()) {
        v = trim(v);
        auto eq = v.find('=');
        auto next_semi = v.find(';');
        if (eq == std::string_view::npos || (next_semi != std::string_view::npos && next_semi < eq)) {
            // A parameter without a value: skip it.
            if (next_semi == std::string_view::npos) break;
            v.remove_prefix(next_semi + 1);
            continue;
        }
        std::string key = lower(trim(v.substr(0, eq)));
        v.remove_prefix(eq + 1);
        v = trim(v);
        std::string value;
        if (!v.empty() && v.front() == '"') {
            std::size_t i = 1;
            for (; i < v.size() && v[i] != '"'; ++i) {
                if (v[i] == '\\' && i + 1 < v.size()) ++i;
                value += v[i];
            }
            v.remove_prefix(std::min(v.size(), i + 1));
            auto s = v.find(';');
            v.remove_prefix(s == std::string_view::npos ? v.size() : s + 1);
        } else {
            auto s = v.find(';');
            value = std::string(trim(v.substr(0, s)));
            v.remove_prefix(s == std::string_view::npos ? v.size() : s + 1);
        }
        out.emplace_back(std::move(key), std::move(value));
    }
    return out;
}

}  // namespace

std::optional<std::string> boundary_from_content_type(std::string_view content_type) {
    auto b = boundary_of(content_type);
    return b ? std::optional(*b) : std::nullopt;
}

result<std::string> boundary_of(std::string_view content_type) {
    auto type = lower(trim(content_type.substr(0, content_type.find(';'))));
    if (type != "multipart/form-data") return error{errc::unsupported_media_type, "not multipart/form-data"};
    for (auto& [k, v] : header_params(content_type)) {
        if (k != "boundary" || v.empty()) continue;
        if (v.size() > 70)
            return error{errc::bad_request, "the multipart boundary is longer than 70 characters (RFC 2046)"};
        // Lenient on RFC 2046's character set (clients quote others), but never a control or
        // non-ASCII byte, and never a space at the end.
        for (char c : v)
            if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f)
                return error{errc::bad_request, "the multipart boundary holds a control or non-ASCII character"};
        if (v.back() == ' ') return error{errc::bad_request, "the multipart boundary ends in a space"};
        return v;
    }
    return error{errc::unsupported_media_type, "multipart/form-data without a boundary parameter"};
}

parser::parser(std::string boundary, callbacks cb, std::size_t max_header_bytes)
    : delimiter_("\r\n--" + boundary),
      searcher_(delimiter_.cbegin(), delimiter_.cend()),
      cb_(std::move(cb)),
      max_header_bytes_(max_header_bytes),
      carry_("\r\n") {}  // as if a line break preceded the body, so the first boundary matches too

bool parser::done() const noexcept { return state_ == state::epilogue; }

bool parser::started() const noexcept { return state_ != state::preamble; }

boost::system::error_code parser::fail(std::string msg) {
    state_ = state::failed;
    error_message_ = std::move(msg);
    carry_.clear();
    return make_error_code(errc::bad_request);
}

std::optional<std::string> parser::parse_headers(std::string_view block) {
    part_header h;
    bool has_disposition = false;
    while (!block.empty()) {
        auto eol = block.find("\r\n");
        std::string_view line = block.substr(0, eol);
        block.remove_prefix(eol == std::string_view::npos ? block.size() : eol + 2);
        auto colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0) return "a part header line is not 'Name: value'";
        const std::string name = lower(trim(line.substr(0, colon)));
        const std::string_view value = trim(line.substr(colon + 1));
        if (name == "content-disposition") {
            has_disposition = true;
            for (auto& [k, v] : header_params(value)) {
                if (k == "name") h.name = v;
                else if (k == "filename") h.filename = v;
            }
        } else if (name == "content-type") {
            h.content_type = std::string(value);
            // RFC 7578 dropped multipart/mixed inside form-data: a nested body is refused, not stored.
            if (lower(value).starts_with("multipart/")) return "nested multipart parts are not supported";
        }
    }
    if (!has_disposition || h.name.empty()) return "a part has no Content-Disposition header with a name";
    if (cb_.on_part_begin) cb_.on_part_begin(h);
    return std::nullopt;
}

boost::system::error_code parser::feed(std::string_view chunk) {
    if (state_ == state::failed) return make_error_code(errc::bad_request);
    if (state_ == state::epilogue) return {};
    boost::system::error_code ec;
    if (!carry_.empty()) {
        // What the last chunk left (a possible partial delimiter, a partial header block) joined
        // with just enough of this one to decide it; then the rest is parsed where it lies, so a
        // file's bytes are not copied on their way to on_part_data.
        const std::size_t carried = carry_.size();
        std::size_t joined = std::min(chunk.size(), delimiter_.size() + 2);
        carry_.append(chunk.substr(0, joined));
        std::size_t pos = run(carry_, ec);
        if (ec) return ec;
        if (pos < carried && joined < chunk.size()) {
            // Still inside what was carried (a header block split across chunks): all of it, then.
            carry_.append(chunk.substr(joined));
            joined = chunk.size();
            pos += run(std::string_view(carry_).substr(pos), ec);
            if (ec) return ec;
        }
        if (pos < carried || joined == chunk.size() || state_ == state::epilogue) {
            if (state_ == state::epilogue) carry_.clear();
            else carry_.erase(0, pos);
            return {};
        }
        carry_.clear();
        chunk.remove_prefix(pos - carried);
    }
    const std::size_t pos = run(chunk, ec);
    if (ec) return ec;
    if (state_ != state::epilogue) carry_.assign(chunk.substr(pos));
    return {};
}

std::size_t parser::run(std::string_view buf, boost::system::error_code& ec) {
    std::size_t pos = 0;
    // Bytes at the end that might be the start of a delimiter are kept for the next chunk.
    const std::size_t keep = delimiter_.size() - 1;

    auto find_delimiter = [&](std::size_t from) -> std::size_t {
        auto it = std::search(buf.begin() + static_cast<std::ptrdiff_t>(from), buf.end(), searcher_);
        return it == buf.end() ? std::string_view::npos : static_cast<std::size_t>(it - buf.begin());
    };
    auto failed = [&](std::string msg) {
        ec = fail(std::move(msg));
        return pos;
    };

    bool more = true;
    while (more) {
        switch (state_) {
            case state::preamble: {
                auto at = find_delimiter(pos);
                if (at == std::string_view::npos) {
                    pos = buf.size() > keep ? std::max(pos, buf.size() - keep) : pos;
                    more = false;
                    break;
                }
                pos = at + delimiter_.size();
                state_ = state::after_boundary;
                break;
            }
            case state::after_boundary: {
                // "--" closes the body; otherwise optional padding then CRLF opens a part.
                std::size_t i = pos;
                if (buf.size() - pos < 2) {
                    more = false;
                    break;
                }
                if (buf.substr(pos, 2) == "--") {
                    state_ = state::epilogue;
                    pos = buf.size();
                    more = false;
                    break;
                }
                while (i < buf.size() && (buf[i] == ' ' || buf[i] == '\t')) ++i;
                if (i - pos > 256) return failed("too much padding after a boundary");
                if (buf.size() - i < 2) {
                    more = false;
                    break;
                }
                if (buf.substr(i, 2) != "\r\n") return failed("unexpected bytes after a boundary line");
                pos = i + 2;
                state_ = state::headers;
                break;
            }
            case state::headers: {
                if (buf.size() - pos >= 2 && buf.substr(pos, 2) == "\r\n")
                    return failed("a part has no Content-Disposition header with a name");
                auto end = buf.find("\r\n\r\n", pos);
                if (end == std::string_view::npos) {
                    if (buf.size() - pos > max_header_bytes_) return failed("part header too large");
                    more = false;
                    break;
                }
                if (end - pos > max_header_bytes_) return failed("part header too large");
                if (auto bad = parse_headers(buf.substr(pos, end - pos))) return failed(std::move(*bad));
                pos = end + 4;
                state_ = state::data;
                break;
            }
            case state::data: {
                auto at = find_delimiter(pos);
                if (at == std::string_view::npos) {
                    std::size_t safe = buf.size() > pos + keep ? buf.size() - keep : pos;
                    if (safe > pos && cb_.on_part_data) cb_.on_part_data(buf.substr(pos, safe - pos));
                    pos = safe;
                    more = false;
                    break;
                }
                if (at > pos && cb_.on_part_data) cb_.on_part_data(buf.substr(pos, at - pos));
                if (cb_.on_part_end) cb_.on_part_end();
                pos = at + delimiter_.size();
                state_ = state::after_boundary;
                break;
            }
            case state::epilogue:
                pos = buf.size();
                more = false;
                break;
            case state::failed:
                ec = make_error_code(errc::bad_request);
                return pos;
        }
    }
    return pos;
}

}  // namespace quickthumb::multipart
