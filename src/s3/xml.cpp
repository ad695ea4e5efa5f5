#include "s3/xml.hpp"

#include <charconv>
#include <ctime>

namespace quickthumb::s3 {
namespace {

std::string decode_entities(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '&') {
            out += s[i];
            continue;
        }
        const auto semi = s.find(';', i);
        if (semi == std::string_view::npos) {
            out += s.substr(i);
            break;
        }
        const auto name = s.substr(i + 1, semi - i - 1);
        if (name == "amp") out += '&';
        else if (name == "lt") out += '<';
        else if (name == "gt") out += '>';
        else if (name == "quot") out += '"';
        else if (name == "apos") out += '\'';
        else if (name.size() > 1 && name[0] == '#') {
            unsigned long cp = 0;
            const bool hex = name[1] == 'x' || name[1] == 'X';
            const auto digits = name.substr(hex ? 2 : 1);
            auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), cp, hex ? 16 : 10);
            if (ec != std::errc{} || end != digits.data() + digits.size() || cp > 0x10FFFF) {
                out += s.substr(i, semi - i + 1);
            } else if (cp < 0x80) {
                out += static_cast<char>(cp);
            } else if (cp < 0x800) {
                out += static_cast<char>(0xC0 | (cp >> 6));
                out += static_cast<char>(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                out += static_cast<char>(0xE0 | (cp >> 12));
                out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
                out += static_cast<char>(0x80 | (cp & 0x3F));
            } else {
                out += static_cast<char>(0xF0 | (cp >> 18));
                out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
                out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
                out += static_cast<char>(0x80 | (cp & 0x3F));
            }
        } else {
            out += s.substr(i, semi - i + 1);  // unknown: kept as written
        }
        i = semi;
    }
    return out;
}

// The inner XML of the element opened at or after `from`, and where its end tag ends. Matches
// <tag> and <tag attr="..."> but not <tagged>; a self-closing <tag/> is empty.
std::optional<std::pair<std::string_view, std::size_t>> next_element(std::string_view xml, std::string_view tag,
                                                                     std::size_t from) {
    const std::string open = "<" + std::string(tag);
    const std::string close = "</" + std::string(tag) + ">";
    for (auto at = xml.find(open, from); at != std::string_view::npos; at = xml.find(open, at + 1)) {
        const auto after = at + open.size();
        if (after >= xml.size()) return std::nullopt;
        const char c = xml[after];
        if (c != '>' && c != ' ' && c != '/' && c != '\t' && c != '\n' && c != '\r') continue;
        const auto gt = xml.find('>', after);
        if (gt == std::string_view::npos) return std::nullopt;
        if (xml[gt - 1] == '/') return std::pair{std::string_view(), gt + 1};
        const auto end = xml.find(close, gt + 1);
        if (end == std::string_view::npos) return std::nullopt;
        return std::pair{xml.substr(gt + 1, end - gt - 1), end + close.size()};
    }
    return std::nullopt;
}

bool is_true(const std::optional<std::string>& v) { return v && *v == "true"; }

}  // namespace

std::optional<std::string> xml_text(std::string_view xml, std::string_view tag) {
    auto e = next_element(xml, tag, 0);
    if (!e) return std::nullopt;
    return decode_entities(e->first);
}

std::vector<std::string_view> xml_elements(std::string_view xml, std::string_view tag) {
    std::vector<std::string_view> out;
    std::size_t from = 0;
    while (auto e = next_element(xml, tag, from)) {
        out.push_back(e->first);
        from = e->second;
    }
    return out;
}

std::string xml_escape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&apos;"; break;
            default: out += c;
        }
    }
    return out;
}

error_body parse_error(std::string_view xml) {
    return {xml_text(xml, "Code").value_or(""), xml_text(xml, "Message").value_or("")};
}

object_listing parse_list_objects(std::string_view xml) {
    object_listing out;
    for (auto c : xml_elements(xml, "Contents"))
        out.objects.push_back({xml_text(c, "Key").value_or(""), xml_text(c, "LastModified").value_or("")});
    if (is_true(xml_text(xml, "IsTruncated"))) out.next_token = xml_text(xml, "NextContinuationToken");
    return out;
}

upload_listing parse_list_uploads(std::string_view xml) {
    upload_listing out;
    for (auto u : xml_elements(xml, "Upload"))
        out.uploads.push_back({xml_text(u, "Key").value_or(""), xml_text(u, "UploadId").value_or(""),
                               xml_text(u, "Initiated").value_or("")});
    if (is_true(xml_text(xml, "IsTruncated"))) {
        out.next_key_marker = xml_text(xml, "NextKeyMarker");
        out.next_upload_id_marker = xml_text(xml, "NextUploadIdMarker");
    }
    return out;
}

std::optional<long long> parse_iso8601(std::string_view t) {
    // YYYY-MM-DDTHH:MM:SS[.fff]Z
    if (t.size() < 20 || t[4] != '-' || t[7] != '-' || (t[10] != 'T' && t[10] != 't') || t[13] != ':' || t[16] != ':')
        return std::nullopt;
    auto num = [&](std::size_t at, std::size_t len) -> std::optional<int> {
        int v = 0;
        auto [end, ec] = std::from_chars(t.data() + at, t.data() + at + len, v);
        if (ec != std::errc{} || end != t.data() + at + len) return std::nullopt;
        return v;
    };
    auto y = num(0, 4), mo = num(5, 2), d = num(8, 2), h = num(11, 2), mi = num(14, 2), s = num(17, 2);
    if (!y || !mo || !d || !h || !mi || !s || *mo < 1 || *mo > 12 || *d < 1 || *d > 31 || *h > 23 || *mi > 59 || *s > 60)
        return std::nullopt;
    std::size_t rest = 19;
    if (t[rest] == '.') {
        ++rest;
        while (rest < t.size() && t[rest] >= '0' && t[rest] <= '9') ++rest;
    }
    if (rest + 1 != t.size() || (t[rest] != 'Z' && t[rest] != 'z')) return std::nullopt;
    std::tm tm{};
    tm.tm_year = *y - 1900;
    tm.tm_mon = *mo - 1;
    tm.tm_mday = *d;
    tm.tm_hour = *h;
    tm.tm_min = *mi;
    tm.tm_sec = *s;
    return static_cast<long long>(timegm(&tm));
}

}  // namespace quickthumb::s3
