#include "quickthumb/worker_pool.hpp"

#include "quickthumb/image.hpp"
#include "quickthumb/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cstdio>
#include <random>

namespace quickthumb {
namespace asio = boost::asio;

std::string output_name(int width, int height, output_format fmt) {
    return "thumb_" + std::to_string(width) + "x" + std::to_string(height) + "." + std::string(extension(fmt));
}

worker_pool::worker_pool(asio::thread_pool& pool, work_queue& queue, jobs_service& jobs, blob_store& files,
                         worker_options opts)
    : pool_(pool), queue_(queue), jobs_(jobs), files_(files), opts_(opts) {}

void worker_pool::on_change(const job_change& c) {
    if (c.stored && c.previous == job_state::processing && c.now.state == job_state::cancelled) cancel_running(c.now.id);
}

bool worker_pool::cancel_running(const std::string& id) {
    std::lock_guard lk(running_mutex_);
    auto it = running_jobs_.find(id);
    if (it == running_jobs_.end()) return false;
    it->second->cancelled = true;
    if (opts_.budget) opts_.budget->cancel(it->second->memory_wait);
    return true;
}

void worker_pool::abort_all() noexcept {
    aborting_ = true;
    if (opts_.budget) opts_.budget->cancel_all();
}

asio::awaitable<void> worker_pool::remove_outputs(const std::string& id) {
    if (auto r = co_await files_.remove_thumbs(id); !r)
        log::warn("thumbnails not removed", "job=" + id + " error=\"" + r.error().message + "\"");
}

void worker_pool::start(std::function<void()> on_all_stopped) {
    on_all_stopped_ = std::move(on_all_stopped);
    if (opts_.count == 0) {
        if (on_all_stopped_) asio::post(pool_, on_all_stopped_);
        return;
    }
    running_ = opts_.count;
    for (int i = 0; i < opts_.count; ++i) {
        asio::co_spawn(pool_, run_worker(), [this, log_exit = log::on_exit("worker stopped by an exception")](std::exception_ptr ep) {
            log_exit(ep);
            if (--running_ == 0 && on_all_stopped_) on_all_stopped_();
        });
    }
}

asio::awaitable<void> worker_pool::run_worker() {
    for (;;) {
        auto [ec, id] = co_await queue_.jobs().async_receive(asio::as_tuple(asio::use_awaitable));
        if (ec) co_return;  // closed: shutting down
        ++busy_;
        try {
            co_await process(std::move(id));
        } catch (const std::exception& e) {
            // A bug or a store failure: the job stays where it is and start-up recovery retries it.
            log::error("job processing threw", std::string("error=\"") + e.what() + "\"");
        }
        --busy_;
    }
}

namespace {

image::thumbnails_request request_for(const job_params& p, std::int64_t max_pixels) {
    image::thumbnails_request req;
    req.boxes.clear();
    for (const auto& b : p.sizes) req.boxes.push_back({b.width, b.height});
    req.mode = p.fit;
    req.fmt = p.format;
    req.quality = p.quality;
    req.progressive = p.progressive;
    req.enlarge = p.enlarge;
    req.background = p.background;
    req.keep_metadata = p.keep_metadata;
    req.max_pixels = max_pixels;
    return req;
}

}  // namespace

asio::awaitable<result<worker_pool::prepared_job>> worker_pool::prepare(const job& j, job_outcome& out) const {
    out.source = j.source;
    auto data = co_await files_.read_upload(j.id);
    if (!data) co_return data.error();
    prepared_job p{std::move(*data), {}, request_for(j.params, opts_.max_pixels), 0};
    auto header = image::read_header(p.data.bytes());
    if (!header) co_return header.error();
    p.header = *header;
    // A failed job still shows what it was.
    out.source.format = std::string(image::to_string(header->fmt));
    out.source.width = header->width;
    out.source.height = header->height;
    auto memory = image::estimate_memory(p.data.bytes(), p.header, p.request);
    if (!memory) co_return memory.error();
    p.memory = *memory;
    co_return p;
}

asio::awaitable<std::optional<error>> worker_pool::reserve_memory(const prepared_job& p, job_control& ctl,
                                                                  memory_budget::reservation& held) {
    if (!opts_.budget) co_return std::nullopt;
    if (!opts_.budget->fits(p.memory))
        co_return image::memory_error(p.header, p.memory, opts_.budget->total());
    const auto asked = std::chrono::steady_clock::now();
    auto r = co_await opts_.budget->async_reserve(p.memory, ctl.memory_wait);
    if (!r) co_return r.error();  // cancelled: a DELETE or the shutdown
    held = std::move(*r);
    const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - asked);
    if (waited.count() > 0)
        log::debug("job had to wait for memory", "bytes=" + std::to_string(p.memory) + " waited_ms=" + std::to_string(waited.count()));
    co_return std::nullopt;
}

bool worker_pool::keep_going(const job& j, job_control& ctl, int percent) const {
    const int before = ctl.progress.load(std::memory_order_relaxed);
    if (percent > before) {
        ctl.progress = percent;
        // Watchers get a step every 20 points, not one per safe point.
        if (percent / 20 > before / 20 && percent < 100) jobs_.progress(j, percent);
    }
    return !ctl.cancelled.load(std::memory_order_relaxed) && !aborting_.load(std::memory_order_relaxed) &&
           std::chrono::steady_clock::now() < ctl.deadline;
}

std::vector<image::output> worker_pool::run_job(const job& j, job_control& ctl, prepared_job& p,
                                                job_outcome& out) const {
    // The safe points: between JPEG scanline batches, after the decode, after each output.
    auto req = p.request;
    req.checkpoint = [&](int percent) { return keep_going(j, ctl, percent); };
    auto thumbs = image::make_thumbnails(p.data.bytes(), req, p.header);
    p.data = stored_bytes{};
    if (!thumbs) {
        out.failure = thumbs.error();
        return {};
    }
    out.source.format = std::string(image::to_string(thumbs->source.fmt));
    out.source.width = thumbs->source.width;
    out.source.height = thumbs->source.height;
    return std::move(thumbs->outputs);
}

asio::awaitable<void> worker_pool::store_outputs(const job& j, job_control& ctl, std::vector<image::output> thumbs,
                                                 job_outcome& out) {
    // Different boxes can give the same output (a small source is never enlarged past its own
    // size): same dimensions and format mean the same bytes, so each is written and listed once.
    std::optional<error> failed;
    for (auto& t : thumbs) {
        job_output o;
        o.name = output_name(t.width, t.height, j.params.format);
        if (std::any_of(out.outputs.begin(), out.outputs.end(), [&](const job_output& w) { return w.name == o.name; }))
            continue;
        o.width = t.width;
        o.height = t.height;
        o.bytes = static_cast<std::int64_t>(t.bytes.size());
        if (!keep_going(j, ctl, 100)) {
            failed = error{errc::cancelled, "stopped at a safe point"};
            break;
        }
        if (auto w = co_await files_.put_thumb(j.id, o.name, t.bytes); !w) {
            failed = w.error();
            break;
        }
        t.bytes = {};  // stored: no need to hold it until the last one is
        out.outputs.push_back(std::move(o));
    }
    if (failed) {
        // Outputs of a stopped or failed attempt belong to no recorded attempt (a retry rewrites
        // them): the ones this attempt stored go, and nothing else of the job's.
        for (const auto& done : out.outputs)
            if (auto r = co_await files_.remove_thumb(j.id, done.name); !r)
                log::warn("thumbnail not removed", "job=" + j.id + " error=\"" + r.error().message + "\"");
        out.outputs.clear();
        out.failure = std::move(failed);
    }
}

namespace {

std::string seconds_text(std::chrono::milliseconds d) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g s", static_cast<double>(d.count()) / 1000.0);
    return buf;
}

double unit_random() {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

}  // namespace

namespace {

// Waits on the worker's own executor (never blocks its thread).
asio::awaitable<void> pause(std::chrono::milliseconds d) {
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
}

}  // namespace

template <class Write>
asio::awaitable<std::optional<result<job>>> worker_pool::save(const std::string& id, Write write) {
    std::chrono::milliseconds wait{250};
    for (;;) {
        result<job> r = co_await write();
        if (r || !is_store_failure(r.error().code)) co_return r;
        // The store could not commit (a full disk, say). The outcome is kept here and saved once
        // it can be; a shutdown gives up and leaves the job to start-up recovery.
        if (aborting_) co_return std::nullopt;
        log::warn("job outcome not saved yet; will try again",
                  "job=" + id + " in_ms=" + std::to_string(wait.count()) + " error=\"" + r.error().message + "\"");
        co_await pause(wait);
        wait = std::min<std::chrono::milliseconds>(wait * 2, std::chrono::seconds(30));
    }
}

asio::awaitable<void> worker_pool::process(std::string id) {
    result<job> started = co_await jobs_.start(id);
    if (!started && is_store_failure(started.error().code)) {
        // The store cannot write (a full disk): the job stays queued; the feeder offers it again
        // after a pause, so a full disk is not a busy loop.
        log::warn("job not started", "job=" + id + " error=\"" + started.error().message + "\"");
        co_await pause(std::chrono::seconds(1));
        queue_.on_taken(id, false);
        co_return;
    }
    queue_.on_taken(id, started.has_value());
    if (!started) {
        // Cancelled or already taken: nothing to do.
        log::debug("job skipped", "job=" + id + " reason=\"" + started.error().message + "\"");
        co_return;
    }
    const job& j = *started;
    log::info("job processing", "job=" + id + " attempt=" + std::to_string(j.attempts));

    auto ctl = std::make_shared<job_control>();
    {
        std::lock_guard lk(running_mutex_);
        running_jobs_[id] = ctl;
    }
    job_outcome outcome;
    const auto began = std::chrono::steady_clock::now();
    std::uint64_t reserved = 0;
    try {
        auto prepared = co_await prepare(j, outcome);
        if (!prepared) {
            outcome.failure = prepared.error();
        } else {
            memory_budget::reservation memory;
            if (auto refused = co_await reserve_memory(*prepared, *ctl, memory)) {
                outcome.failure = std::move(*refused);
            } else {
                // The timeout counts from here: waiting for memory is not the job's doing.
                ctl->deadline = std::chrono::steady_clock::now() + opts_.job_timeout;
                reserved = memory.bytes();
                auto thumbs = run_job(j, *ctl, *prepared, outcome);
                if (!outcome.failure) co_await store_outputs(j, *ctl, std::move(thumbs), outcome);
            }
        }
    } catch (const std::exception& e) {
        // A bug or memory exhaustion: transient as far as we know, so it is retried like I/O.
        log::error("job threw", "job=" + id + " error=\"" + e.what() + "\"");
        outcome.source = j.source;
        outcome.failure = error{errc::internal, "internal error while processing the image"};
    }
    // Its memory is back in the budget (the reservation is gone); give the pages back to the
    // system too, so the resident set returns near idle after a burst: after a large job, and
    // whenever the last running job ends (the heap is quiet then, and the walk costs nothing).
    if (reserved >= trim_after_bytes || (opts_.budget && reserved > 0 && opts_.budget->snapshot().reserved == 0))
        release_free_memory();
    {
        std::lock_guard lk(running_mutex_);
        running_jobs_.erase(id);
    }
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();

    // Why a job stopped at a safe point decides what it becomes.
    if (outcome.failure && outcome.failure->code == errc::cancelled) {
        if (ctl->cancelled) {
            // DELETE already made it cancelled in the store; only its files are left to remove.
            co_await remove_outputs(id);
            log::info("job cancelled while running", "job=" + id);
            co_return;
        }
        if (aborting_) {
            auto r = co_await jobs_.release(id);
            if (r)
                log::info("job stopped by shutdown; queued for the next start", "job=" + id);
            else
                log::warn("job not released; start-up recovery will queue it",
                          "job=" + id + " reason=\"" + r.error().message + "\"");
            co_return;
        }
        outcome.failure = error{errc::timeout, "the job ran longer than the limit of " + seconds_text(opts_.job_timeout) +
                                                   " (--job-timeout) and was stopped"};
    }

    std::optional<result<job>> saved;
    if (!outcome.failure) {
        saved = co_await save(id, [&] { return jobs_.succeed(id, outcome.source, outcome.outputs, took); });
        if (!saved) co_return;
        if (*saved) {
            log::info("job succeeded", "job=" + id);
            // The thumbnails are durable and recorded: the original is no longer needed.
            if (!opts_.keep_uploads)
                if (auto r = co_await files_.remove_upload(id); !r)
                    log::warn("upload not removed", "job=" + id + " error=\"" + r.error().message + "\"");
        }
    } else if (is_transient(outcome.failure->code) && j.attempts < j.max_attempts) {
        const auto delay = retry_delay_ms(j.attempts, unit_random());
        saved = co_await save(id, [&] {
            return jobs_.retry_later(id, outcome.source, *outcome.failure, now_ms() + delay, took);
        });
        if (!saved) co_return;
        if (*saved)
            log::info("job will be retried", "job=" + id + " attempt=" + std::to_string(j.attempts) + " code=" +
                                                 std::string(errc_name(outcome.failure->code)) +
                                                 " retry_in_ms=" + std::to_string(delay));
    } else {
        saved = co_await save(id, [&] { return jobs_.fail(id, outcome.source, *outcome.failure, took); });
        if (!saved) co_return;
        if (*saved)
            log::info("job failed", "job=" + id + " attempts=" + std::to_string(j.attempts) +
                                        " code=" + std::string(errc_name(outcome.failure->code)));
    }
    if (!*saved) {
        // Cancelled between the last safe point and now: what was written belongs to no one.
        log::info("job outcome not recorded", "job=" + id + " reason=\"" + saved->error().message + "\"");
        auto now = co_await jobs_.get(id);
        if (now && *now && (*now)->state == job_state::cancelled) co_await remove_outputs(id);
    }
}

}  // namespace quickthumb
