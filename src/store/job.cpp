#include "quickthumb/job.hpp"

#include <boost/json.hpp>
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

std::string_view to_string(fit_mode f) noexcept { return f == fit_mode::cover ? "cover" : "contain"; }
std::string_view to_string(output_format f) noexcept { return f == output_format::png ? "png" : "jpeg"; }
std::string_view extension(output_format f) noexcept { return f == output_format::png ? "png" : "jpg"; }
std::string_view mime_type(output_format f) noexcept {
    return f == output_format::png ? "image/png" : "image/jpeg";
}

namespace {

constexpr int max_dimension = 4096;

result<int> parse_bounded(std::string_view name, std::string_view text, int lo, int hi) {
    int v = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc{} || p != text.data() + text.size() || v < lo || v > hi) {
        return error{errc::invalid_option, std::string(name) + " must be a whole number from " + std::to_string(lo) +
                                               " to " + std::to_string(hi) + ", got '" + std::string(text) + "'"};
    }
    return v;
}

}  // namespace

result<job_params> parse_job_params(const std::multimap<std::string, std::string>& fields) {
    job_params p;
    bool has_w = false, has_h = false;
    for (const auto& [name, value] : fields) {
        if (fields.count(name) > 1) return error{errc::invalid_option, name + " is given more than once"};
        if (name == "width" || name == "height") {
            auto v = parse_bounded(name, value, 1, max_dimension);
            if (!v) return v.error();
            (name == "width" ? p.width : p.height) = *v;
            (name == "width" ? has_w : has_h) = true;
        } else if (name == "fit") {
            if (value == "contain") p.fit = fit_mode::contain;
            else if (value == "cover") p.fit = fit_mode::cover;
            else return error{errc::invalid_option, "fit must be 'contain' or 'cover', got '" + value + "'"};
        } else if (name == "format") {
            if (value == "jpeg" || value == "jpg") p.format = output_format::jpeg;
            else if (value == "png") p.format = output_format::png;
            else return error{errc::invalid_option, "format must be 'jpeg' or 'png', got '" + value + "'"};
        } else if (name == "quality") {
            auto v = parse_bounded(name, value, 1, 100);
            if (!v) return v.error();
            p.quality = *v;
        } else {
            return error{errc::invalid_option,
                         "unknown option '" + name + "' (known: width, height, fit, format, quality)"};
        }
    }
    // Only one side given: the other is unconstrained, so the aspect ratio decides it.
    if (has_w && !has_h) p.height = 0;
    if (has_h && !has_w) p.width = 0;
    if (p.fit == fit_mode::cover && (p.width == 0 || p.height == 0))
        return error{errc::invalid_option, "fit=cover needs both width and height"};
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
    return {{"width", p.width},
            {"height", p.height},
            {"fit", to_string(p.fit)},
            {"format", to_string(p.format)},
            {"quality", p.quality}};
}

result<job_params> job_params_from_json(std::string_view text) {
    boost::system::error_code ec;
    auto v = boost::json::parse(text, ec);
    if (ec || !v.is_object()) return error{errc::internal, "stored params are not a JSON object"};
    const auto& o = v.as_object();
    job_params p;
    try {
        p.width = static_cast<int>(o.at("width").to_number<std::int64_t>());
        p.height = static_cast<int>(o.at("height").to_number<std::int64_t>());
        p.fit = o.at("fit").as_string() == "cover" ? fit_mode::cover : fit_mode::contain;
        p.format = o.at("format").as_string() == "png" ? output_format::png : output_format::jpeg;
        p.quality = static_cast<int>(o.at("quality").to_number<std::int64_t>());
    } catch (const std::exception& e) {
        return error{errc::internal, std::string("stored params are incomplete: ") + e.what()};
    }
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
    boost::system::error_code ec;
    auto v = boost::json::parse(text, ec);
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

boost::json::object to_json(const job& j) {
    boost::json::object o;
    o["id"] = j.id;
    o["state"] = to_string(j.state);
    o["progress"] = j.progress;
    o["attempts"] = j.attempts;
    o["max_attempts"] = j.max_attempts;
    o["created_at"] = iso8601(j.created_at);
    o["updated_at"] = iso8601(j.updated_at);
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
                        {"url", "/thumbs/" + j.id + "/" + out.name}});
    }
    o["outputs"] = std::move(outs);
    return o;
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
