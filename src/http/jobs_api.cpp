// GET /api/v1/jobs, GET /api/v1/jobs/{id}, DELETE /api/v1/jobs/{id} (cancel) and
// POST /api/v1/jobs/{id}/retry. Reads run on the blocking pool; writes go through the store's
// group commit.
#include "handlers.hpp"

#include "quickthumb/job.hpp"
#include "quickthumb/offload.hpp"

#include <boost/json.hpp>
#include <charconv>
#include <filesystem>

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

asio::awaitable<bhttp::message_generator> handle_get_job(services& svc, const request_header& req, std::string id) {
    if (!is_valid_job_id(id))
        co_return error_response(req, bhttp::status::not_found, errc::not_found, "no job with id '" + id + "'");
    auto found = co_await offload(svc.blocking.get_executor(), [&] { return svc.db.get(id); });
    if (!found) co_return error_response(req, bhttp::status::not_found, errc::not_found, "no job with id '" + id + "'");
    co_return json_response(req, bhttp::status::ok, to_json(*found));
}

asio::awaitable<bhttp::message_generator> handle_list_jobs(services& svc, const request_header& req) {
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
    auto page = co_await offload(svc.blocking.get_executor(), [&] { return svc.db.list(state, limit, cursor); });
    boost::json::array jobs;
    for (const auto& j : page.jobs) jobs.push_back(to_json(j));
    boost::json::object body{{"jobs", std::move(jobs)}};
    body["next_cursor"] = page.next_cursor ? boost::json::value(std::to_string(*page.next_cursor)) : nullptr;
    co_return json_response(req, bhttp::status::ok, body);
}

asio::awaitable<bhttp::message_generator> handle_cancel_job(services& svc, const request_header& req, std::string id) {
    if (!is_valid_job_id(id))
        co_return error_response(req, bhttp::status::not_found, errc::not_found, "no job with id '" + id + "'");
    auto changed = co_await svc.db.cancel(id);
    if (!changed) co_return error_response(req, changed.error());
    if (changed->previous != job_state::cancelled) {
        if (changed->previous == job_state::queued) svc.queue.on_removed(1);
        // A running job stops at its next safe point; the worker removes what it wrote meanwhile.
        if (changed->previous == job_state::processing && svc.cancel_running) svc.cancel_running(id);
        // Its thumbnails go; the upload stays until the retention sweep so that a retry can run.
        co_await offload(svc.blocking.get_executor(), [&] {
            svc.files.remove_thumbs(id);
            return 0;
        });
        svc.hooks.on_finished(id, job_state::cancelled);
        svc.hooks.on_changed(changed->now);
    }
    co_return json_response(req, bhttp::status::ok, to_json(changed->now));
}

asio::awaitable<bhttp::message_generator> handle_retry_job(services& svc, const request_header& req, std::string id) {
    if (!is_valid_job_id(id))
        co_return error_response(req, bhttp::status::not_found, errc::not_found, "no job with id '" + id + "'");
    // A failed or cancelled job keeps its upload until the retention sweep; without it there is
    // nothing to run.
    const bool have_upload = co_await offload(svc.blocking.get_executor(), [&] {
        std::error_code ec;
        return std::filesystem::exists(svc.files.upload_path(id), ec);
    });
    if (!have_upload) {
        auto found = co_await offload(svc.blocking.get_executor(), [&] { return svc.db.get(id); });
        if (!found) co_return error_response(req, bhttp::status::not_found, errc::not_found, "no job with id '" + id + "'");
        if (found->state == job_state::failed || found->state == job_state::cancelled)
            co_return error_response(req, bhttp::status::conflict, errc::conflict,
                                     "job " + id + " cannot be retried: its uploaded image is no longer stored");
    }
    auto changed = co_await svc.db.retry(id);
    if (!changed) co_return error_response(req, changed.error());
    // Told before the workers are woken: a fast job's own changes must not overtake this one.
    svc.hooks.on_requeued(id);
    svc.hooks.on_changed(changed->now);
    svc.queue.notify(1);
    co_return json_response(req, bhttp::status::accepted, to_json(changed->now));
}

}  // namespace quickthumb::http
