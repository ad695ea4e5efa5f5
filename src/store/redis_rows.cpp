#include "redis_rows.hpp"

#include <boost/json/serialize.hpp>

#include <boost/json/parse.hpp>

#include <charconv>

namespace quickthumb::redis_rows {
namespace {

std::int64_t int_of(std::string_view s) {
    std::int64_t v = 0;
    std::from_chars(s.data(), s.data() + s.size(), v);
    return v;
}

}  // namespace

fields new_job_fields(const job& j) {
    fields f{{"progress", std::to_string(j.progress)},
             {"attempts", std::to_string(j.attempts)},
             {"max_attempts", std::to_string(j.max_attempts)},
             {"created_at", std::to_string(j.created_at)},
             {"updated_at", std::to_string(j.updated_at)},
             {"run_after", std::to_string(j.run_after)},
             {"src_filename", j.source.filename},
             {"src_bytes", std::to_string(j.source.bytes)},
             {"params", boost::json::serialize(to_json(j.params))},
             {"outputs", outputs_to_json(j.outputs)}};
    return f;
}

void add_source_details(fields& f, const job_source& src) {
    f.emplace_back("src_format", src.format);
    f.emplace_back("src_width", std::to_string(src.width));
    f.emplace_back("src_height", std::to_string(src.height));
}

void add_error(fields& f, const std::optional<error>& err) {
    f.emplace_back("err_code", err ? std::string(errc_name(err->code)) : std::string());
    f.emplace_back("err_msg", err ? err->message : std::string());
}

std::optional<job> job_from_reply(const resp::value& flat) {
    if (!flat.is_array() || flat.elements.empty()) return std::nullopt;
    job j;
    j.outputs.clear();
    std::optional<std::string> err_code, err_msg;
    const auto& e = flat.elements;
    for (std::size_t i = 0; i + 1 < e.size(); i += 2) {
        const std::string_view k = e[i].text;
        const std::string& v = e[i + 1].text;
        if (k == "id") j.id = v;
        else if (k == "seq") j.seq = int_of(v);
        else if (k == "state") j.state = parse_job_state(v).value_or(job_state::failed);
        else if (k == "progress") j.progress = static_cast<int>(int_of(v));
        else if (k == "attempts") j.attempts = static_cast<int>(int_of(v));
        else if (k == "max_attempts") j.max_attempts = static_cast<int>(int_of(v));
        else if (k == "created_at") j.created_at = int_of(v);
        else if (k == "updated_at") j.updated_at = int_of(v);
        else if (k == "run_after") j.run_after = int_of(v);
        else if (k == "err_code") err_code = v;
        else if (k == "err_msg") err_msg = v;
        else if (k == "src_filename") j.source.filename = v;
        else if (k == "src_bytes") j.source.bytes = int_of(v);
        else if (k == "src_format") j.source.format = v;
        else if (k == "src_width") j.source.width = static_cast<int>(int_of(v));
        else if (k == "src_height") j.source.height = static_cast<int>(int_of(v));
        else if (k == "params") {
            if (auto p = job_params_from_json(v)) j.params = std::move(*p);
        } else if (k == "outputs") j.outputs = outputs_from_json(v);
    }
    if (err_code && !err_code->empty()) j.last_error = error{errc_from_name(*err_code), err_msg.value_or("")};
    return j;
}

// ---- replies ----

std::int64_t to_int(const resp::value& v) {
    if (v.is_integer()) return v.integer;
    if (v.is_string()) {
        try {
            return std::stoll(v.text);
        } catch (...) {
        }
    }
    return 0;
}

std::string str(const resp::value& v) { return v.is_string() ? v.text : std::string(); }

// A refused transition: the same answers the SQLite store gives.
error refusal(const std::string& id, const std::string& current, job_state to) {
    if (current == "taken")
        return error{errc::conflict, "job " + id + " is no longer this instance's: another one claimed it and runs it"};
    const auto from = parse_job_state(current);
    if (!from) return error{errc::not_found, "no job with id " + id};
    if (!can_transition(*from, to))
        return error{errc::bad_request, "job " + id + " is " + current + ", it cannot become " + std::string(to_string(to))};
    return error{errc::conflict, "job " + id + " is no longer processing"};
}

// A transition's reply {"ok"|..., event id, previous state, fields} as a change.
std::optional<job_change> change_of(const resp::value& v) {
    if (!v.is_array() || v.elements.size() < 4) return std::nullopt;
    auto j = job_from_reply(v.elements[3]);
    if (!j) return std::nullopt;
    job_change c;
    const std::string prev = str(v.elements[2]);
    if (!prev.empty()) c.previous = parse_job_state(prev);
    c.now = std::move(*j);
    return c;
}

// Entries of one stream in an XREADGROUP / XRANGE / XAUTOCLAIM reply: [[id, [field, value...]], ...].
std::vector<std::pair<std::string, const resp::value*>> stream_entries(const resp::value& list) {
    std::vector<std::pair<std::string, const resp::value*>> out;
    if (!list.is_array()) return out;
    for (const auto& e : list.elements)
        if (e.is_array() && e.elements.size() == 2) out.emplace_back(str(e.elements[0]), &e.elements[1]);
    return out;
}

std::string field_of(const resp::value* fields, std::string_view name) {
    if (!fields || !fields->is_array()) return {};
    for (std::size_t i = 0; i + 1 < fields->elements.size(); i += 2)
        if (fields->elements[i].text == name) return fields->elements[i + 1].text;
    return {};
}

std::vector<std::string> ids_of(const std::string& json) {
    std::vector<std::string> ids;
    boost::system::error_code ec;
    auto v = boost::json::parse(json, ec);
    if (!ec && v.is_array())
        for (const auto& id : v.as_array())
            if (id.is_string()) ids.emplace_back(id.as_string());
    return ids;
}

stored_event event_of(const std::string& id, const resp::value* fields) {
    stored_event ev;
    ev.id = id;
    resp::value job_fields = resp::value::array_of({});
    if (fields && fields->is_array())
        for (std::size_t i = 0; i + 1 < fields->elements.size(); i += 2) {
            const auto& k = fields->elements[i].text;
            if (k == "prev") {
                if (!fields->elements[i + 1].text.empty()) ev.change.previous = parse_job_state(fields->elements[i + 1].text);
            } else if (k == "by") {
                ev.by = fields->elements[i + 1].text;
            } else {
                job_fields.elements.push_back(fields->elements[i]);
                job_fields.elements.push_back(fields->elements[i + 1]);
            }
        }
    if (auto j = job_from_reply(job_fields)) ev.change.now = std::move(*j);
    return ev;
}


}  // namespace quickthumb::redis_rows
