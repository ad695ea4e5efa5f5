#include "quickthumb/thumb_command.hpp"

#include "quickthumb/file_io.hpp"
#include "quickthumb/image.hpp"
#include "quickthumb/memory_budget.hpp"
#include "quickthumb/memory_limit.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <span>
#include <thread>
#include <utility>
#include <vector>

namespace quickthumb {
namespace fs = std::filesystem;

fs::path output_path_for(const fs::path& input, const std::string& pattern) {
    std::string name = pattern;
    const std::string stem = input.stem().string();
    // Resume after the inserted stem, so a stem that itself contains "%s" is not expanded again.
    for (auto at = name.find("%s"); at != std::string::npos; at = name.find("%s", at + stem.size()))
        name.replace(at, 2, stem);
    fs::path out(name);
    if (!out.has_parent_path()) return input.parent_path() / out;
    return out;
}

namespace {


result<void> thumb_one(const fs::path& in, const fs::path& out, const thumb_config& cfg, memory_budget& budget) {
    auto file = mapped_file::open(in);
    if (!file) return file.error();
    // Writing over the input would lose the original (e.g. -o %s.jpg on a .jpg beside it).
    std::error_code ec;
    if (fs::equivalent(in, out, ec)) return error{errc::invalid_option, "the output " + out.string() + " is the input itself"};

    image::thumbnails_request req;
    req.boxes = {{cfg.width, cfg.height}};
    req.mode = cfg.fit;
    req.fmt = cfg.format;
    req.quality = cfg.quality;
    req.progressive = cfg.progressive;
    req.enlarge = cfg.enlarge;
    req.background = cfg.background;
    req.max_pixels = cfg.max_pixels;
    auto header = image::read_header(file->bytes());
    if (!header) return header.error();
    // The same budget as the service's: a file waits until its estimated peak fits beside the
    // others being done.
    auto needed = image::estimate_memory(file->bytes(), *header, req);
    if (!needed) return needed.error();
    if (!budget.fits(*needed)) return image::memory_error(*header, *needed, budget.total());
    auto held = budget.reserve(*needed);
    auto thumbs = image::make_thumbnails(file->bytes(), req, *header);
    held.release();
    if (*needed >= trim_after_bytes) release_free_memory();
    if (!thumbs) return thumbs.error();
    if (thumbs->outputs.size() != 1) return error{errc::internal, "the engine returned no thumbnail"};
    return write_file_atomically(out, thumbs->outputs.front().bytes, durability::none);
}

}  // namespace

int run_thumb(const thumb_config& cfg) {
    const std::size_t n = cfg.inputs.size();
    if (n == 0) return 0;

    // Inputs of the same name in different directories may map to one output under a pattern with
    // a directory; only the first may write it, instead of the last rename silently winning.
    std::vector<fs::path> outputs(n);
    std::vector<std::string> clash(n);
    std::map<fs::path, std::size_t> first_for;
    for (std::size_t i = 0; i < n; ++i) {
        outputs[i] = output_path_for(cfg.inputs[i], cfg.pattern);
        auto [it, fresh] = first_for.emplace(outputs[i].lexically_normal(), i);
        if (!fresh) clash[i] = "its output " + outputs[i].string() + " is also the output of " + cfg.inputs[it->second];
    }

    tune_allocator();
    memory_budget budget(resolve_memory_budget(cfg.max_memory, detect_memory_limit()));
    const std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
    const std::size_t threads = std::clamp<std::size_t>(cfg.jobs > 0 ? static_cast<std::size_t>(cfg.jobs) : cores, 1, n);
    std::atomic<std::size_t> next{0};
    std::atomic<bool> failed{false};
    std::mutex err_mutex;
    auto report = [&](std::size_t i, const std::string& message) {
        failed = true;
        std::lock_guard lk(err_mutex);  // one whole line at a time
        std::fprintf(stderr, "quickthumb: %s: %s\n", cfg.inputs[i].c_str(), message.c_str());
    };
    auto work = [&] {
        for (std::size_t i = next++; i < n; i = next++) {
            if (!clash[i].empty()) {
                report(i, clash[i]);
                continue;
            }
            // An exception escaping a thread would terminate the whole batch; it is one file's failure.
            try {
                if (auto r = thumb_one(cfg.inputs[i], outputs[i], cfg, budget); !r) report(i, r.error().message);
            } catch (const std::exception& e) {
                report(i, std::string("internal error: ") + e.what());
            }
        }
    };
    {
        std::vector<std::jthread> pool;
        for (std::size_t t = 1; t < threads; ++t) pool.emplace_back(work);
        work();
    }
    return failed ? 1 : 0;
}

}  // namespace quickthumb
