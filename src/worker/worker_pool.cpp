#include "quickthumb/worker_pool.hpp"

#include "quickthumb/image.hpp"
#include "quickthumb/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace quickthumb {
namespace asio = boost::asio;

std::string output_name(int width, int height, output_format fmt) {
    return "thumb_" + std::to_string(width) + "x" + std::to_string(height) + "." + std::string(extension(fmt));
}

worker_pool::worker_pool(asio::thread_pool& pool, job_queue& queue, store& db, storage& files, worker_options opts)
    : pool_(pool), queue_(queue), db_(db), files_(files), opts_(opts) {}

void worker_pool::start(std::function<void()> on_all_stopped) {
    on_all_stopped_ = std::move(on_all_stopped);
    if (opts_.count == 0) {
        if (on_all_stopped_) asio::post(pool_, on_all_stopped_);
        return;
    }
    running_ = opts_.count;
    for (int i = 0; i < opts_.count; ++i) {
        asio::co_spawn(pool_, run_worker(), [this](std::exception_ptr ep) {
            if (ep) {
                try {
                    std::rethrow_exception(ep);
                } catch (const std::exception& e) {
                    log::error("worker stopped by an exception", std::string("error=\"") + e.what() + "\"");
                }
            }
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

job_outcome worker_pool::run_job(const job& j) const {
    job_outcome out;
    out.source = j.source;
    auto data = files_.read_all(files_.upload_path(j.id));
    if (!data) {
        out.failure = data.error();
        return out;
    }
    // The header alone is cheap; it lets a failed job still show what it was.
    if (auto hdr = image::read_header(*data)) {
        out.source.format = std::string(image::to_string(hdr->fmt));
        out.source.width = hdr->width;
        out.source.height = hdr->height;
    }
    image::thumbnail_request req;
    req.box_width = j.params.width;
    req.box_height = j.params.height;
    req.mode = j.params.fit == fit_mode::cover ? image::fit::cover : image::fit::contain;
    req.fmt = j.params.format == output_format::png ? image::out_format::png : image::out_format::jpeg;
    req.quality = j.params.quality;
    req.max_pixels = opts_.max_pixels;
    auto thumb = image::make_thumbnail(*data, req);
    data->clear();
    data->shrink_to_fit();
    if (!thumb) {
        out.failure = thumb.error();
        return out;
    }
    job_output o;
    o.name = output_name(thumb->width, thumb->height, j.params.format);
    o.width = thumb->width;
    o.height = thumb->height;
    o.bytes = static_cast<std::int64_t>(thumb->bytes.size());
    if (auto w = files_.write_atomic(files_.thumb_path(j.id, o.name), thumb->bytes); !w) {
        out.failure = w.error();
        return out;
    }
    out.outputs.push_back(std::move(o));
    return out;
}

asio::awaitable<void> worker_pool::process(std::string id) {
    auto started = co_await db_.start(id);
    if (!started) {
        // Cancelled or already taken: nothing to do.
        log::debug("job skipped", "job=" + id + " reason=\"" + started.error().message + "\"");
        co_return;
    }
    queue_.on_started();
    log::info("job processing", "job=" + id + " attempt=" + std::to_string(started->attempts));
    job_outcome outcome = run_job(*started);
    result<void> recorded;
    if (outcome.failure) {
        recorded = co_await db_.fail(id, std::move(outcome.source), *outcome.failure);
        log::info("job failed", "job=" + id + " code=" + std::string(errc_name(outcome.failure->code)));
    } else {
        recorded = co_await db_.succeed(id, std::move(outcome.source), std::move(outcome.outputs));
        log::info("job succeeded", "job=" + id);
    }
    if (!recorded) log::warn("job outcome not recorded", "job=" + id + " reason=\"" + recorded.error().message + "\"");
}

}  // namespace quickthumb
