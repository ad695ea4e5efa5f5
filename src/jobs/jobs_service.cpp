#include "quickthumb/jobs_service.hpp"

#include "quickthumb/log.hpp"
#include "quickthumb/offload.hpp"
#include "quickthumb/storage.hpp"

#include <boost/asio/post.hpp>

namespace quickthumb {
namespace asio = boost::asio;

jobs_service::jobs_service(asio::thread_pool& blocking, job_store& db, storage& files)
    : blocking_(blocking), db_(db), files_(files), strand_(asio::make_strand(blocking.get_executor())) {
    db_.set_commit_listener([this](job_change c) { committed(std::move(c)); });
}

jobs_service::~jobs_service() { db_.set_commit_listener(nullptr); }

void jobs_service::subscribe(subscriber s) { subscribers_.push_back(std::move(s)); }

job_store::recovery jobs_service::recover_interrupted() {
    auto r = db_.recover_interrupted();
    if (r.requeued > 0) log::info("recovered interrupted jobs", "count=" + std::to_string(r.requeued));
    for (const auto& id : r.failed_ids) {
        log::warn("job failed: interrupted during every attempt", "job=" + id);
        files_.remove_thumbs(id);
    }
    // What an interrupted attempt wrote (whole outputs, or a temp file a kill left mid-write)
    // belongs to no recorded attempt: the next one writes everything again.
    for (const auto& id : r.requeued_ids) files_.remove_thumbs(id);
    waiting_ = db_.count(job_state::queued);
    return r;
}

void jobs_service::committed(job_change c) {
    // Counted here, on the writer thread before the writer's caller resumes, so an upload that
    // reads waiting() after its own accept sees its jobs.
    const int in = c.now.state == job_state::queued ? 1 : 0;
    const int out = c.previous == job_state::queued ? 1 : 0;
    if (in != out) waiting_.fetch_add(in - out, std::memory_order_relaxed);
    publish(std::move(c));
}

void jobs_service::publish(job_change c) {
    // One strand, posted to in commit order: every subscriber hears the changes in that order.
    asio::post(strand_, [this, c = std::move(c)] {
        for (const auto& s : subscribers_) {
            try {
                s(c);
            } catch (const std::exception& e) {
                log::error("a job change subscriber threw", std::string("error=\"") + e.what() + "\"");
            }
        }
    });
}

void jobs_service::progress(const job& processing, int percent) {
    job now = processing;
    now.state = job_state::processing;
    now.progress = percent;
    publish(job_change{job_state::processing, std::move(now), false, std::nullopt});
}

asio::awaitable<result<jobs_service::accepted>> jobs_service::accept(std::vector<job> jobs, std::optional<std::string> key) {
    if (!key) {
        auto inserted = co_await db_.insert(std::move(jobs));
        if (!inserted) co_return inserted.error();
        co_return accepted{false, std::move(*inserted)};
    }
    auto inserted = co_await db_.insert_once(std::move(jobs), std::move(*key));
    if (!inserted) co_return inserted.error();
    if (!inserted->replayed) co_return accepted{false, std::move(inserted->inserted)};
    // The key's first request made these; they are answered as they are now.
    auto seen = co_await offload(blocking_.get_executor(), [&] { return load_all(inserted->job_ids); });
    co_return accepted{true, std::move(seen)};
}

asio::awaitable<result<job>> jobs_service::cancel(std::string id) {
    auto c = co_await db_.cancel(id);
    if (!c) co_return c.error();
    if (c->previous != job_state::cancelled) {
        // Its thumbnails go; the upload stays until the retention sweep so that a retry can run.
        // (A running attempt removes what it writes after this once it sees the change.)
        co_await offload(blocking_.get_executor(), [&] {
            files_.remove_thumbs(id);
            return 0;
        });
    }
    co_return std::move(c->now);
}

asio::awaitable<result<job>> jobs_service::retry(std::string id) {
    // A failed or cancelled job keeps its upload until the retention sweep; without it there is
    // nothing to run.
    const bool have_upload = co_await offload(blocking_.get_executor(), [&] { return files_.has_upload(id); });
    if (!have_upload) {
        auto found = co_await get(id);
        if (!found) co_return error{errc::not_found, "no job with id '" + id + "'"};
        if (found->state == job_state::failed || found->state == job_state::cancelled)
            co_return error{errc::conflict, "job " + id + " cannot be retried: its uploaded image is no longer stored"};
    }
    auto c = co_await db_.retry(id);
    if (!c) co_return c.error();
    co_return std::move(c->now);
}

asio::awaitable<result<job>> jobs_service::start(std::string id) { return db_.start(std::move(id)); }

asio::awaitable<result<job>> jobs_service::succeed(std::string id, job_source src, std::vector<job_output> outputs,
                                                   double attempt_seconds) {
    return db_.succeed(std::move(id), std::move(src), std::move(outputs), attempt_seconds);
}

asio::awaitable<result<job>> jobs_service::fail(std::string id, job_source src, error err, double attempt_seconds) {
    return db_.fail(std::move(id), std::move(src), std::move(err), attempt_seconds);
}

asio::awaitable<result<job>> jobs_service::retry_later(std::string id, job_source src, error err, std::int64_t run_after,
                                                       double attempt_seconds) {
    return db_.retry_later(std::move(id), std::move(src), std::move(err), run_after, attempt_seconds);
}

asio::awaitable<result<job>> jobs_service::release(std::string id) { return db_.release(std::move(id)); }

asio::awaitable<result<int>> jobs_service::expire(std::int64_t cutoff, std::int64_t now, int limit) {
    // Files first: a job whose files could not all go is still listed, and the next sweep tries
    // again; a row without files would be a job that cannot be served.
    auto ids = co_await offload(blocking_.get_executor(), [&] {
        auto found = db_.expired(cutoff, limit);
        for (const auto& id : found) files_.remove_job_files(id);
        return found;
    });
    co_return co_await db_.remove_expired(std::move(ids), cutoff, now);
}

std::vector<job> jobs_service::load_all(const std::vector<std::string>& ids) {
    std::vector<job> out;
    for (const auto& id : ids)
        if (auto j = db_.get(id)) out.push_back(std::move(*j));
    return out;
}

// The reads below are coroutines whose blocking part captures by reference: their arguments live
// in the coroutine's frame. (GCC 12 frees a lambda's owning captures twice when offload moves it.)
asio::awaitable<std::optional<std::vector<job>>> jobs_service::replay(std::string key) {
    co_return co_await offload(blocking_.get_executor(), [&]() -> std::optional<std::vector<job>> {
        auto ids = db_.idempotent_jobs(key, now_ms());
        if (!ids) return std::nullopt;
        return load_all(*ids);
    });
}

asio::awaitable<result<void>> jobs_service::store_ready() {
    co_return co_await offload(blocking_.get_executor(), [this]() -> result<void> {
        try {
            db_.count(job_state::processing);
            return {};
        } catch (const std::exception& e) {
            return error{errc::io_error, e.what()};
        }
    });
}

asio::awaitable<std::optional<job>> jobs_service::get(std::string id) {
    co_return co_await offload(blocking_.get_executor(), [&] { return db_.get(id); });
}

asio::awaitable<list_page> jobs_service::list(std::optional<job_state> state, int limit,
                                              std::optional<std::int64_t> before) {
    co_return co_await offload(blocking_.get_executor(), [&] { return db_.list(state, limit, before); });
}

}  // namespace quickthumb
