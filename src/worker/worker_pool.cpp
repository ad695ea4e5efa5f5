#include "quickthumb/worker_pool.hpp"

#include "quickthumb/image.hpp"
#include "quickthumb/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <filesystem>

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

job_outcome worker_pool::run_job(const job& j) const {
    job_outcome out;
    out.source = j.source;
    auto data = mapped_file::open(files_.upload_path(j.id));  // page cache, no copy: uploads never change
    if (!data) {
        out.failure = data.error();
        return out;
    }
    // One decode for every size.
    auto thumbs = image::make_thumbnails(data->bytes(), request_for(j.params, opts_.max_pixels));
    if (!thumbs) {
        // The header alone is cheap; it lets a failed job still show what it was.
        if (auto hdr = image::read_header(data->bytes())) {
            out.source.format = std::string(image::to_string(hdr->fmt));
            out.source.width = hdr->width;
            out.source.height = hdr->height;
        }
        out.failure = thumbs.error();
        return out;
    }
    *data = mapped_file{};
    out.source.format = std::string(image::to_string(thumbs->source.fmt));
    out.source.width = thumbs->source.width;
    out.source.height = thumbs->source.height;

    // Different boxes can give the same output (a small source is never enlarged past its own
    // size): same dimensions and format mean the same bytes, so each is written and listed once.
    for (auto& t : thumbs->outputs) {
        job_output o;
        o.name = output_name(t.width, t.height, j.params.format);
        if (std::any_of(out.outputs.begin(), out.outputs.end(), [&](const job_output& w) { return w.name == o.name; }))
            continue;
        o.width = t.width;
        o.height = t.height;
        o.bytes = static_cast<std::int64_t>(t.bytes.size());
        if (auto w = files_.write_atomic(files_.thumb_path(j.id, o.name), t.bytes); !w) {
            // Outputs of a failed attempt are not listed anywhere: remove them (a retry rewrites them).
            for (const auto& done : out.outputs) {
                std::error_code ignored;
                std::filesystem::remove(files_.thumb_path(j.id, done.name), ignored);
            }
            out.outputs.clear();
            out.failure = w.error();
            return out;
        }
        t.bytes = {};  // written: no need to hold it until the last one is
        out.outputs.push_back(std::move(o));
    }
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
