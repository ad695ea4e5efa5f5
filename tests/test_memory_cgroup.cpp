// The service in a real 512 MiB memory cgroup, as on a small VPS or under `docker run --memory
// 512m`: eight simultaneous uploads of 81-100 MP PNG, JPEG, WebP and GIF images all succeed, the
// kernel kills nothing, the resident set stays within the memory budget, and returns near idle
// after the burst. Before the memory budget and the streaming decoders, four uploads of the first
// of these images took the same service to 916 MiB and got it killed.
#include <catch2/catch.hpp>

#include "support/image_files.hpp"
#include "support/memory_cgroup.hpp"
#include "support/server_process.hpp"

#include <boost/json.hpp>

#include <fstream>
#include <thread>

using namespace qt_test;
namespace json = boost::json;
namespace img = quickthumb::image;
using namespace std::chrono_literals;

namespace {

std::uint64_t status_kib(int pid, const std::string& field) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(field + ":", 0) == 0) return std::stoull(line.substr(field.size() + 1));
    return 0;
}

// Smooth content, as large as the decoders are asked to handle, that still compresses under the
// 32 MiB upload limit.
img::pixels smooth(int w, int h, int channels) {
    img::pixels p{w, h, channels, bytes(std::size_t(w) * h * channels)};
    for (int y = 0; y < h; ++y) {
        std::uint8_t* row = &p.data[std::size_t(y) * w * channels];
        for (int x = 0; x < w; ++x, row += channels) {
            row[0] = static_cast<std::uint8_t>(x * 255 / w);
            if (channels >= 3) row[1] = static_cast<std::uint8_t>(y * 255 / h), row[2] = 90;
            if (channels == 4) row[3] = static_cast<std::uint8_t>(128 + (x + y) % 128);
        }
    }
    return p;
}

}  // namespace

TEST_CASE("memory cgroup: 512 MiB survives eight simultaneous uploads of 81-100 MP images", "[memory][cgroup]") {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    WARN("SKIPPED: under a sanitizer the binary's memory is the sanitizer's (shadow memory, quarantine)");
    return;
#endif
    std::string why;
    auto cgroup = memory_cgroup::create(512ull << 20, why);
    if (!cgroup) {
        WARN("SKIPPED: " << why);
        return;
    }
    INFO("cgroup " << cgroup->dir() << (cgroup->v2() ? " (v2)" : " (v1)"));
    struct upload_file {
        std::string name;
        bytes data;
    };
    std::vector<upload_file> files;
    {
        const auto rgb81 = smooth(9000, 9000, 3);
        files.push_back({"streamed.png", png_file(rgb81)});
        files.push_back({"baseline.jpg", jpeg_file(rgb81)});
        files.push_back({"progressive.jpg", jpeg_file(rgb81, {.progressive = true})});  // 243 MB of coefficients
        files.push_back({"lossy.webp", webp_file(rgb81)});
        files.push_back({"frame.gif", gif_file(rgb81)});
    }
    {
        const auto rgba81 = smooth(9000, 9000, 4);
        files.push_back({"alpha.webp", webp_file(rgba81)});  // a whole alpha plane
    }
    {
        const auto rgb100 = smooth(10000, 10000, 3);
        files.push_back({"interlaced.png", png_file(rgb100, {.interlaced = true})});  // 300 MB held whole
        files.push_back({"interlaced.gif", gif_file(rgb100, true)});
    }
    for (const auto& f : files) {
        INFO(f.name << ": " << f.data.size() << " bytes");
        REQUIRE(f.data.size() < (32u << 20));
    }

    temp_dir dir;
    launch_options opts;
    opts.prefix = cgroup->prefix();
    server_process server(dir.path(), {"--workers", "2"}, opts);
    const int pid = server.pid();
    // The budget is the default: 3/4 of the cgroup's 512 MiB, found by the service itself.
    auto ready = json::parse(http_request(server.port(), "GET", "/readyz").body).as_object();
    const auto budget = ready.at("memory").at("budget_bytes").as_int64();
    CHECK(budget == (384ll << 20));
    const std::uint64_t idle_kib = status_kib(pid, "VmRSS");

    std::vector<std::string> ids(files.size());
    std::vector<int> statuses(files.size(), 0);
    {
        std::vector<std::thread> senders;
        for (std::size_t i = 0; i < files.size(); ++i)
            senders.emplace_back([&, i] {
                try {
                    auto r = upload(server.port(), {{"file", files[i].name, "application/octet-stream",
                                                     std::string(files[i].data.begin(), files[i].data.end())}});
                    statuses[i] = r.status;
                    if (r.status == 202) ids[i] = std::string(json::parse(r.body).at("id").as_string());
                } catch (const std::exception&) {
                    statuses[i] = -1;
                }
            });
        for (auto& t : senders) t.join();
    }
    for (std::size_t i = 0; i < files.size(); ++i) {
        INFO(files[i].name);
        REQUIRE(statuses[i] == 202);
    }
    for (std::size_t i = 0; i < files.size(); ++i) {
        INFO(files[i].name);
        auto done = json::parse(wait_for_final(server.port(), ids[i], 300s)).as_object();
        CHECK(std::string(done.at("state").as_string()) == "succeeded");
        if (done.at("error").is_object()) INFO(json::serialize(done.at("error")));
    }
    REQUIRE(server.running());
    CHECK(cgroup->oom_kills() == 0);
    const std::uint64_t peak_kib = status_kib(pid, "VmHWM"), after_kib = status_kib(pid, "VmRSS");
    INFO("resident set: idle " << idle_kib / 1024 << " MiB, peak " << peak_kib / 1024 << " MiB, after the burst "
                               << after_kib / 1024 << " MiB; budget " << budget / (1 << 20) << " MiB");
    CHECK(peak_kib * 1024 <= std::uint64_t(budget));
    // The memory goes back: the freed heap is returned to the system after large jobs.
    CHECK(after_kib <= idle_kib + 32 * 1024);
}
