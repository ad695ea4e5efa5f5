#include "quickthumb/jobs_service.hpp"

#include "quickthumb/log.hpp"
#include "quickthumb/blob_store.hpp"

#include <boost/asio/post.hpp>

namespace quickthumb {
namespace asio = boost::asio;

jobs_service::jobs_service(asio::thread_pool& blocking, job_store& db, blob_store& files)
    : db_(db), files_(files), strand_(asio::make_strand(blocking.get_executor())) {
    db_.set_commit_listener([this](job_change c) { committed(std::move(c)); });
}

jobs_service::~jobs_service() { db_.set_commit_listener(nullptr); }

void jobs_service::subscribe(subscriber s) { subscribers_.push_back(std::move(s)); }

asio::awaitable<job_store::recovery> jobs_service::recover_interrupted() {
    auto r = db_.recover_interrupted();
    if (r.requeued > 0) log::info("recovered interrupted jobs", "count=" + std::to_string(r.requeued));
    for (const auto& id : r.failed_ids) log::warn("job failed: interrupted during every attempt", "job=" + id);
    // What an interrupted attempt wrote (whole outputs, or a temp file a kill left mid-write)
    // belongs to no recorded attempt: the next one writes everything again.
    for (const auto* ids : {&r.failed_ids, &r.requeued_ids})
        for (const auto& id : *ids)
            if (auto gone = co_await files_.remove_thumbs(id); !gone)
                log::warn("thumbnails of an interrupted job not removed",
                          "job=" + id + " error=\"" + gone.error().message + "\"");
    // Uploads no job owns: a crash between an upload's commit and its row's. Old ones only (an
    // instance sharing the data directory may be between the two now).
    if (auto stored = co_await files_.list_uploads(orphan_age); stored && !stored->empty()) {
        auto owned = co_await db_.states_of(*stored);
        if (owned)
            for (const auto& id : *stored)
                if (!owned->contains(id)) {
                    log::info("upload without a job removed", "job=" + id);
                    if (auto gone = co_await files_.remove_upload(id); !gone)
                        log::warn("upload not removed", "job=" + id + " error=\"" + gone.error().message + "\"");
                }
    }
    waiting_ = r.queued;
    co_return r;
}

void jobs_service::committed(job_change c) {
    // Counted here, on the writer thread before the writer's caller resumes, so an upload that
    // reads waiting() after its own accept sees its jobs.
    count_waiting(c);
    publish(std::move(c));
}

void jobs_service::observe(job_change c) {
    if (c.remote) count_waiting(c);  // this instance's own were counted when they committed
    publish(std::move(c));
}

void jobs_service::count_waiting(const job_change& c) noexcept {
    const int in = c.now.state == job_state::queued ? 1 : 0;
    const int out = c.previous == job_state::queued ? 1 : 0;
    if (in != out) waiting_.fetch_add(in - out, std::memory_order_relaxed);
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
    auto seen = co_await db_.get_all(std::move(inserted->job_ids));
    if (!seen) co_return seen.error();
    co_return accepted{true, std::move(*seen)};
}

asio::awaitable<result<jobs_service::accepted>> jobs_service::accept(std::vector<received> files, job_params params,
                                                                     int max_attempts, std::optional<std::string> key) {
    std::vector<job> jobs;
    std::vector<std::string> ids;
    std::vector<blob_store::upload*> blobs;
    const auto now = now_ms();
    for (auto& f : files) {
        job j;
        j.id = f.blob->id();  // the id its upload was received under
        j.created_at = j.updated_at = now;
        j.source.filename = std::move(f.filename);
        j.source.bytes = f.bytes;
        j.params = params;
        j.max_attempts = max_attempts;
        ids.push_back(j.id);
        blobs.push_back(f.blob);
        jobs.push_back(std::move(j));
    }
    // Durable before the rows: a job row always has its upload.
    if (auto committed = co_await files_.commit_uploads(std::move(blobs)); !committed) co_return committed.error();
    auto made = co_await accept(std::move(jobs), std::move(key));
    if (!made || made->replayed) {
        // Not made (a store failure), or made by an earlier request with the same key that won
        // the race while this body arrived: the uploads committed here belong to no job.
        if (!made) log::error("job insert failed", "error=\"" + made.error().message + "\"");
        for (const auto& id : ids)
            if (auto r = co_await files_.remove_job(id); !r)
                log::warn("upload of a refused request not removed", "job=" + id + " error=\"" + r.error().message + "\"");
        co_return made;
    }
    for (const auto& j : made->jobs) log::info("job queued", "job=" + j.id + " bytes=" + std::to_string(j.source.bytes));
    co_return made;
}

asio::awaitable<result<job>> jobs_service::cancel(std::string id) {
    auto c = co_await db_.cancel(id);
    if (!c) co_return c.error();
    if (c->previous != job_state::cancelled) {
        // Its thumbnails go; the upload stays until the retention sweep so that a retry can run.
        // (A running attempt removes what it writes after this once it sees the change.)
        if (auto r = co_await files_.remove_thumbs(id); !r)
            log::warn("thumbnails of a cancelled job not removed", "job=" + id + " error=\"" + r.error().message + "\"");
    }
    co_return std::move(c->now);
}

asio::awaitable<result<job>> jobs_service::retry(std::string id) {
    // A failed or cancelled job keeps its upload until the retention sweep; without it there is
    // nothing to run.
    auto have_upload = co_await files_.has_upload(id);
    if (!have_upload) co_return have_upload.error();
    if (!*have_upload) {
        auto found = co_await db_.get(id);
        if (!found) co_return found.error();
        if (!*found) co_return error{errc::not_found, "no job with id '" + id + "'"};
        if ((*found)->state == job_state::failed || (*found)->state == job_state::cancelled)
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
    auto ids = co_await db_.expired(cutoff, limit);
    if (!ids) co_return ids.error();
    std::vector<std::string> gone;
    for (auto& id : *ids) {
        if (auto r = co_await files_.remove_job(id); r)
            gone.push_back(std::move(id));
        else
            log::warn("files of an expired job not removed", "job=" + id + " error=\"" + r.error().message + "\"");
    }
    co_return co_await db_.remove_expired(std::move(gone), cutoff, now);
}

asio::awaitable<result<std::optional<std::vector<job>>>> jobs_service::replay(std::string key) {
    auto ids = co_await db_.idempotent_jobs(std::move(key), now_ms());
    if (!ids) co_return ids.error();
    if (!*ids) co_return std::optional<std::vector<job>>{};
    auto found = co_await db_.get_all(std::move(**ids));
    if (!found) co_return found.error();
    co_return std::optional<std::vector<job>>{std::move(*found)};
}

asio::awaitable<result<void>> jobs_service::store_ready() {
    auto n = co_await db_.count(job_state::processing);
    if (!n) co_return n.error();
    co_return result<void>{};
}

asio::awaitable<result<std::optional<job>>> jobs_service::get(std::string id) { return db_.get(std::move(id)); }

asio::awaitable<result<list_page>> jobs_service::list(std::optional<job_state> state, int limit,
                                                      std::optional<std::int64_t> before) {
    return db_.list(state, limit, before);
}

asio::awaitable<result<std::map<job_state, std::int64_t>>> jobs_service::count_by_state() {
    return db_.count_by_state();
}

}  // namespace quickthumb
