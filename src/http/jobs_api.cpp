// GET /api/v1/jobs, GET /api/v1/jobs/{id}, DELETE /api/v1/jobs/{id} (cancel) and
// POST /api/v1/jobs/{id}/retry, through the jobs service.
#include "handlers.hpp"

#include "quickthumb/job.hpp"

#include <boost/json.hpp>
#include <charconv>

namespace quickthumb::http {
namespace asio = boost::asio;

namespace {

constexpr int default_page = 20;
constexpr int max_page = 100;

std::optional<std::int64_t> parse_i64(std::string_view s) {
    std::int64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
    return v;
}

}  // namespace

asio::awaitable<answer> handle_get_job(services& svc, const request_header& req, std::string id) {
    if (!is_valid_job_id(id))
        co_return error_response(req, bhttp::status::not_found, errc::not_found, "no job with id '" + id + "'");
    auto found = co_await svc.jobs.get(id);
    if (!found) co_return error_response(req, found.error());
    if (!*found) co_return error_response(req, bhttp::status::not_found, errc::not_found, "no job with id '" + id + "'");
    co_return json_response(req, bhttp::status::ok, to_json(**found, svc.cfg.public_base_url));
}

asio::awaitable<answer> handle_list_jobs(services& svc, const request_header& req) {
    auto fields = query_fields(req.target());
    if (!fields) co_return error_response(req, fields.error());
    int limit = default_page;
    std::optional<std::int64_t> cursor;
    std::optional<job_state> state;
    for (const auto& [k, v] : *fields) {
        if (k == "limit") {
            auto n = parse_i64(v);
            if (!n || *n < 1 || *n > max_page)
                co_return error_response(req, bhttp::status::bad_request, errc::invalid_option,
                                         "limit must be a whole number from 1 to " + std::to_string(max_page));
            limit = static_cast<int>(*n);
        } else if (k == "cursor") {
            cursor = parse_i64(v);
            if (!cursor || *cursor < 0)
                co_return error_response(req, bhttp::status::bad_request, errc::invalid_option,
                                         "cursor must be a value from a previous page's next_cursor");
        } else if (k == "state") {
            state = parse_job_state(v);
            if (!state)
                co_return error_response(req, bhttp::status::bad_request, errc::invalid_option,
                                         "state must be queued, processing, succeeded, failed or cancelled");
        } else {
            co_return error_response(req, bhttp::status::bad_request, errc::invalid_option,
                                     "unknown parameter '" + k + "' (known: state, limit, cursor)");
        }
    }
    auto page = co_await svc.jobs.list(state, limit, cursor);
    if (!page) co_return error_response(req, page.error());
    boost::json::array jobs;
    for (const auto& j : page->jobs) jobs.push_back(to_json(j, svc.cfg.public_base_url));
    boost::json::object body{{"jobs", std::move(jobs)}};
    body["next_cursor"] = page->next_cursor ? boost::json::value(std::to_string(*page->next_cursor)) : nullptr;
    co_return json_response(req, bhttp::status::ok, body);
}

asio::awaitable<answer> handle_cancel_job(services& svc, const request_header& req, std::string id) {
    if (!is_valid_job_id(id))
        co_return error_response(req, bhttp::status::not_found, errc::not_found, "no job with id '" + id + "'");
    auto now = co_await svc.jobs.cancel(id);
    if (!now) co_return error_response(req, now.error());
    co_return json_response(req, bhttp::status::ok, to_json(*now, svc.cfg.public_base_url));
}

asio::awaitable<answer> handle_retry_job(services& svc, const request_header& req, std::string id) {
    if (!is_valid_job_id(id))
        co_return error_response(req, bhttp::status::not_found, errc::not_found, "no job with id '" + id + "'");
    auto now = co_await svc.jobs.retry(id);
    if (!now) co_return error_response(req, now.error());
    co_return json_response(req, bhttp::status::accepted, to_json(*now, svc.cfg.public_base_url));
}

}  // namespace quickthumb::http
