#include "quickthumb/job.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <ctime>
#include <sys/random.h>

namespace quickthumb {

std::string_view to_string(job_state s) noexcept {
    switch (s) {
        case job_state::queued: return "queued";
        case job_state::processing: return "processing";
        case job_state::succeeded: return "succeeded";
        case job_state::failed: return "failed";
        case job_state::cancelled: return "cancelled";
    }
    return "queued";
}

std::optional<job_state> parse_job_state(std::string_view s) noexcept {
    for (auto st : {job_state::queued, job_state::processing, job_state::succeeded, job_state::failed,
                    job_state::cancelled})
        if (to_string(st) == s) return st;
    return std::nullopt;
}

bool is_final(job_state s) noexcept {
    return s == job_state::succeeded || s == job_state::failed || s == job_state::cancelled;
}

bool can_transition(job_state from, job_state to) noexcept {
    using enum job_state;
    switch (from) {
        case queued: return to == processing || to == cancelled;
        case processing: return to == succeeded || to == failed || to == cancelled || to == queued;
        case failed:
        case cancelled: return to == queued;
        case succeeded: return false;
    }
    return false;
}

std::string_view to_string(fit_mode f) noexcept {
    switch (f) {
        case fit_mode::contain: return "contain";
        case fit_mode::cover: return "cover";
        case fit_mode::fill: return "fill";
    }
    return "contain";
}

std::string_view to_string(output_format f) noexcept {
    switch (f) {
        case output_format::jpeg: return "jpeg";
        case output_format::png: return "png";
        case output_format::webp: return "webp";
    }
    return "jpeg";
}

std::string_view extension(output_format f) noexcept {
    return f == output_format::jpeg ? "jpg" : to_string(f);
}

std::string_view mime_type(output_format f) noexcept {
    switch (f) {
        case output_format::jpeg: return "image/jpeg";
        case output_format::png: return "image/png";
        case output_format::webp: return "image/webp";
    }
    return "image/jpeg";
}

std::optional<fit_mode> parse_fit_mode(std::string_view s) noexcept {
    for (auto f : {fit_mode::contain, fit_mode::cover, fit_mode::fill})
        if (to_string(f) == s) return f;
    return std::nullopt;
}

std::optional<output_format> parse_output_format(std::string_view s) noexcept {
    if (s == "jpg") return output_format::jpeg;
    for (auto f : {output_format::jpeg, output_format::png, output_format::webp})
        if (to_string(f) == s) return f;
    return std::nullopt;
}

std::string to_string(colour c) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "#%02x%02x%02x", c.r, c.g, c.b);
    return buf;
}

std::optional<colour> parse_colour(std::string_view s) noexcept {
    if (s.starts_with('#')) s.remove_prefix(1);
    if (s.size() != 6) return std::nullopt;
    std::uint8_t v[3];
    for (int i = 0; i < 3; ++i) {
        auto [p, ec] = std::from_chars(s.data() + 2 * i, s.data() + 2 * i + 2, v[i], 16);
        if (ec != std::errc{} || p != s.data() + 2 * i + 2) return std::nullopt;
    }
    return colour{v[0], v[1], v[2]};
}

namespace {

result<int> parse_bounded(std::string_view name, std::string_view text, int lo, int hi) {
    int v = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc{} || p != text.data() + text.size() || v < lo || v > hi) {
        return error{errc::invalid_option, std::string(name) + " must be a whole number from " + std::to_string(lo) +
                                               " to " + std::to_string(hi) + ", got '" + std::string(text) + "'"};
    }
    return v;
}

result<bool> parse_bool(std::string_view name, std::string_view text) {
    if (text == "true" || text == "1") return true;
    if (text == "false" || text == "0") return false;
    return error{errc::invalid_option,
                 std::string(name) + " must be true, false, 1 or 0, got '" + std::string(text) + "'"};
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// One side of a sizes item: empty (unconstrained) or a number in range.
bool parse_side(std::string_view text, int& out) {
    if (text.empty()) {
        out = 0;
        return true;
    }
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc{} && p == text.data() + text.size() && out >= 1 && out <= max_box_side;
}

// "128,256,640x480": N is a box NxN (a longest side); WxH, Wx and xH as given. Exact repeats
// are dropped, so each box gives one output.
result<std::vector<box>> parse_sizes(std::string_view text) {
    const auto refuse = [&](std::string why) -> error {
        return {errc::invalid_option, "sizes must be a comma-separated list of up to " + std::to_string(max_sizes) +
                                          " sizes, each N (the longest side) or WxH, Wx, xH, with sides from 1 to " +
                                          std::to_string(max_box_side) + "; " + why};
    };
    std::vector<box> out;
    std::size_t items = 0;
    for (;;) {
        const auto comma = text.find(',');
        const auto item = trim(text.substr(0, comma));
        if (++items > max_sizes) return refuse("got more than " + std::to_string(max_sizes));
        if (item.empty()) return refuse("got an empty item");
        box b;
        bool ok;
        if (const auto x = item.find('x'); x != std::string_view::npos) {
            ok = parse_side(item.substr(0, x), b.width) && parse_side(item.substr(x + 1), b.height) &&
                 (b.width > 0 || b.height > 0);
        } else {
            ok = parse_side(item, b.width) && b.width > 0;
            b.height = b.width;
        }
        if (!ok) {
            std::string why = "'";  // appended, not operator+: GCC 12 warns falsely on "'" + string
            why.append(item).append("' is not one");
            return refuse(std::move(why));
        }
        if (std::find(out.begin(), out.end(), b) == out.end()) out.push_back(b);
        if (comma == std::string_view::npos) break;
        text.remove_prefix(comma + 1);
    }
    return out;
}

}  // namespace

result<job_params> parse_job_params(const std::multimap<std::string, std::string>& fields) {
    job_params p;
    bool has_sizes = false;
    std::optional<int> width, height;
    for (const auto& [name, value] : fields) {
        if (fields.count(name) > 1) return error{errc::invalid_option, name + " is given more than once"};
        if (name == "sizes") {
            auto v = parse_sizes(value);
            if (!v) return v.error();
            p.sizes = std::move(*v);
            has_sizes = true;
        } else if (name == "width" || name == "height") {
            auto v = parse_bounded(name, value, 1, max_box_side);
            if (!v) return v.error();
            (name == "width" ? width : height) = *v;
        } else if (name == "fit") {
            auto f = parse_fit_mode(value);
            if (!f) return error{errc::invalid_option, "fit must be contain, cover or fill, got '" + value + "'"};
            p.fit = *f;
        } else if (name == "format") {
            auto f = parse_output_format(value);
            if (!f)
                return error{errc::invalid_option, "format must be jpeg (or jpg), png or webp, got '" + value + "'"};
            p.format = *f;
        } else if (name == "quality") {
            auto v = parse_bounded(name, value, 1, 100);
            if (!v) return v.error();
            p.quality = *v;
        } else if (name == "progressive" || name == "enlarge" || name == "keep_metadata") {
            auto v = parse_bool(name, value);
            if (!v) return v.error();
            (name == "progressive" ? p.progressive : name == "enlarge" ? p.enlarge : p.keep_metadata) = *v;
        } else if (name == "background") {
            auto c = parse_colour(value);
            if (!c)
                return error{errc::invalid_option,
                             "background must be a hex colour #rrggbb or rrggbb (in a query string, '#' is %23), "
                             "got '" + value + "'"};
            p.background = *c;
        } else {
            return error{errc::invalid_option,
                         "unknown option '" + name +
                             "' (known: sizes, width, height, fit, format, quality, progressive, enlarge, "
                             "background, keep_metadata)"};
        }
    }
    if (has_sizes && (width || height))
        return error{errc::invalid_option,
                     "give either sizes or width/height, not both (width=W&height=H is the same as sizes=WxH)"};
    // Only one side given: the other is unconstrained, so the aspect ratio decides it.
    if (width || height) p.sizes = {box{width.value_or(0), height.value_or(0)}};
    return p;
}

namespace {

std::string iso8601(std::int64_t ms) {
    std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
    return buf;
}

}  // namespace

boost::json::object to_json(const job_params& p) {
    boost::json::array sizes;
    for (const auto& b : p.sizes) sizes.push_back({{"width", b.width}, {"height", b.height}});
    return {{"sizes", std::move(sizes)},
            {"fit", to_string(p.fit)},
            {"format", to_string(p.format)},
            {"quality", p.quality},
            {"progressive", p.progressive},
            {"enlarge", p.enlarge},
            {"background", to_string(p.background)},
            {"keep_metadata", p.keep_metadata}};
}

namespace {
// Stored params and outputs are a few hundred bytes, decoded on every read of a row: parsed into
// a buffer on the stack, they cost no allocation for the JSON tree.
constexpr std::size_t stored_json_buffer = 2048;
}  // namespace

result<job_params> job_params_from_json(std::string_view text) {
    unsigned char buf[stored_json_buffer];
    boost::json::monotonic_resource mr(buf, sizeof buf);
    boost::system::error_code ec;
    auto v = boost::json::parse(text, ec, &mr);
    if (ec || !v.is_object()) return error{errc::internal, "stored params are not a JSON object"};
    const auto& o = v.as_object();
    const auto side = [](const boost::json::value& n) {
        return static_cast<int>(std::clamp<std::int64_t>(n.to_number<std::int64_t>(), 0, max_box_side));
    };
    job_params p;
    try {
        if (auto* sizes = o.if_contains("sizes")) {
            p.sizes.clear();
            for (const auto& b : sizes->as_array())
                p.sizes.push_back({side(b.as_object().at("width")), side(b.as_object().at("height"))});
        } else if (o.contains("width") || o.contains("height")) {
            // Written before sizes existed: one box.
            p.sizes = {box{o.contains("width") ? side(o.at("width")) : 0, o.contains("height") ? side(o.at("height")) : 0}};
        }
        if (auto* f = o.if_contains("fit")) {
            auto m = parse_fit_mode(f->as_string());
            if (!m) return error{errc::internal, "stored params have an unknown fit"};
            p.fit = *m;
        }
        if (auto* f = o.if_contains("format")) {
            auto m = parse_output_format(f->as_string());
            if (!m) return error{errc::internal, "stored params have an unknown format"};
            p.format = *m;
        }
        if (auto* q = o.if_contains("quality")) p.quality = static_cast<int>(std::clamp<std::int64_t>(q->to_number<std::int64_t>(), 1, 100));
        if (auto* b = o.if_contains("progressive")) p.progressive = b->as_bool();
        if (auto* b = o.if_contains("enlarge")) p.enlarge = b->as_bool();
        if (auto* b = o.if_contains("keep_metadata")) p.keep_metadata = b->as_bool();
        if (auto* c = o.if_contains("background")) {
            auto col = parse_colour(c->as_string());
            if (!col) return error{errc::internal, "stored params have a bad background"};
            p.background = *col;
        }
    } catch (const std::exception& e) {
        return error{errc::internal, std::string("stored params are malformed: ") + e.what()};
    }
    // A box of 0x0 means the source size to the engine; never stored by this version, so refuse it.
    if (p.sizes.empty() || std::any_of(p.sizes.begin(), p.sizes.end(), [](box b) { return b.width == 0 && b.height == 0; }))
        return error{errc::internal, "stored params have no usable size"};
    return p;
}

std::string outputs_to_json(const std::vector<job_output>& outputs) {
    boost::json::array a;
    for (const auto& o : outputs)
        a.push_back({{"name", o.name}, {"width", o.width}, {"height", o.height}, {"bytes", o.bytes}});
    return boost::json::serialize(a);
}

std::vector<job_output> outputs_from_json(std::string_view text) {
    std::vector<job_output> out;
    unsigned char buf[stored_json_buffer];
    boost::json::monotonic_resource mr(buf, sizeof buf);
    boost::system::error_code ec;
    auto v = boost::json::parse(text, ec, &mr);
    if (ec || !v.is_array()) return out;
    for (const auto& e : v.as_array()) {
        if (!e.is_object()) continue;
        const auto& o = e.as_object();
        job_output jo;
        if (auto* n = o.if_contains("name"); n && n->is_string()) jo.name = n->as_string();
        if (auto* w = o.if_contains("width")) jo.width = static_cast<int>(w->to_number<std::int64_t>());
        if (auto* h = o.if_contains("height")) jo.height = static_cast<int>(h->to_number<std::int64_t>());
        if (auto* b = o.if_contains("bytes")) jo.bytes = b->to_number<std::int64_t>();
        out.push_back(std::move(jo));
    }
    return out;
}

boost::json::object to_json(const job& j, std::string_view url_base) {
    boost::json::object o;
    o["id"] = j.id;
    o["state"] = to_string(j.state);
    o["progress"] = j.progress;
    o["attempts"] = j.attempts;
    o["max_attempts"] = j.max_attempts;
    o["created_at"] = iso8601(j.created_at);
    o["updated_at"] = iso8601(j.updated_at);
    // A job waiting for its next attempt says when that will be.
    o["retry_at"] = j.state == job_state::queued && j.run_after > 0 ? boost::json::value(iso8601(j.run_after))
                                                                     : boost::json::value(nullptr);
    if (j.last_error)
        o["error"] = {{"code", errc_name(j.last_error->code)}, {"message", j.last_error->message}};
    else
        o["error"] = nullptr;
    boost::json::object src{{"filename", j.source.filename}, {"bytes", j.source.bytes}};
    src["format"] = j.source.format.empty() ? boost::json::value(nullptr) : boost::json::value(j.source.format);
    src["width"] = j.source.width ? boost::json::value(j.source.width) : boost::json::value(nullptr);
    src["height"] = j.source.height ? boost::json::value(j.source.height) : boost::json::value(nullptr);
    o["source"] = std::move(src);
    o["params"] = to_json(j.params);
    boost::json::array outs;
    for (const auto& out : j.outputs) {
        outs.push_back({{"name", out.name},
                        {"width", out.width},
                        {"height", out.height},
                        {"bytes", out.bytes},
                        {"url", std::string(url_base) + "/thumbs/" + j.id + "/" + out.name}});
    }
    o["outputs"] = std::move(outs);
    return o;
}

std::int64_t retry_delay_ms(int attempts, double unit_random) noexcept {
    const int doublings = std::clamp(attempts - 1, 0, 20);
    const std::int64_t step = std::min(retry_cap_ms, retry_base_ms << doublings);
    const double r = std::clamp(unit_random, 0.0, 1.0);
    return step / 2 + static_cast<std::int64_t>(static_cast<double>(step / 2) * r);
}

std::string new_job_id() {
    unsigned char raw[16];
    std::size_t got = 0;
    while (got < sizeof raw) {
        ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw std::system_error(errno, std::generic_category(), "getrandom");
        }
        got += static_cast<std::size_t>(n);
    }
    static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string id;
    id.reserve(22);
    std::uint32_t acc = 0;
    int bits = 0;
    for (unsigned char b : raw) {
        acc = (acc << 8) | b;
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            id += alphabet[(acc >> bits) & 63];
        }
    }
    if (bits > 0) id += alphabet[(acc << (6 - bits)) & 63];
    return id;
}

bool is_valid_job_id(std::string_view id) noexcept {
    if (id.size() != 22) return false;
    for (char c : id)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
    return true;
}

std::int64_t now_ms() noexcept {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace quickthumb
