#include "redis_rows.hpp"

#include <boost/json/serialize.hpp>

#include <charconv>

namespace quickthumb::redis_rows {
namespace {

std::int64_t to_int(std::string_view s) {
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
        else if (k == "seq") j.seq = to_int(v);
        else if (k == "state") j.state = parse_job_state(v).value_or(job_state::failed);
        else if (k == "progress") j.progress = static_cast<int>(to_int(v));
        else if (k == "attempts") j.attempts = static_cast<int>(to_int(v));
        else if (k == "max_attempts") j.max_attempts = static_cast<int>(to_int(v));
        else if (k == "created_at") j.created_at = to_int(v);
        else if (k == "updated_at") j.updated_at = to_int(v);
        else if (k == "run_after") j.run_after = to_int(v);
        else if (k == "err_code") err_code = v;
        else if (k == "err_msg") err_msg = v;
        else if (k == "src_filename") j.source.filename = v;
        else if (k == "src_bytes") j.source.bytes = to_int(v);
        else if (k == "src_format") j.source.format = v;
        else if (k == "src_width") j.source.width = static_cast<int>(to_int(v));
        else if (k == "src_height") j.source.height = static_cast<int>(to_int(v));
        else if (k == "params") {
            if (auto p = job_params_from_json(v)) j.params = std::move(*p);
        } else if (k == "outputs") j.outputs = outputs_from_json(v);
    }
    if (err_code && !err_code->empty()) j.last_error = error{errc_from_name(*err_code), err_msg.value_or("")};
    return j;
}

}  // namespace quickthumb::redis_rows
