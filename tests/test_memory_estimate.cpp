// The memory estimate (src/image/memory.cpp) against what a request really allocates, measured by
// tests/memory_probe.cpp in a process of its own (malloc interposed, and the peak resident set):
// for every format and the layouts that change what a decoder holds, and for outputs of every
// format and size, the estimate is never below the measured peak and at most twice it.
#include <catch2/catch.hpp>

#include "quickthumb/image.hpp"
#include "support/catch_result.hpp"
#include "support/image_files.hpp"
#include "support/run_process.hpp"
#include "support/server_process.hpp"

#include <boost/json/parse.hpp>

#include <fstream>

namespace img = quickthumb::image;
using qt_test::bytes;

namespace {

struct measured {
    double estimate = 0, heap = 0, rss = 0;
    double peak() const { return std::max(heap, rss); }
};

#ifdef QT_MEMORY_PROBE_PATH
measured probe(const std::filesystem::path& file, const std::vector<std::string>& request) {
    std::vector<std::string> args = {QT_MEMORY_PROBE_PATH, file.string()};
    args.insert(args.end(), request.begin(), request.end());
    const auto r = qt_test::run_process(args);
    INFO(r.out << r.err);
    REQUIRE(r.status == 0);
    const auto v = boost::json::parse(r.out).as_object();
    return {v.at("estimate").to_number<double>(), v.at("heap_peak").to_number<double>(),
            v.at("rss_peak").to_number<double>()};
}
#endif

struct one_case {
    std::string name;
    bytes file;
    std::vector<std::string> request;  // SIZES FIT FORMAT QUALITY, as the probe takes them
    double at_most = 2.0;              // estimate / measured peak
};

void check_cases(const std::vector<one_case>& cases) {
#ifndef QT_MEMORY_PROBE_PATH
    (void)cases;
    WARN("SKIPPED: the allocation probe is not built with sanitizers (they interpose malloc themselves)");
#else
    qt_test::temp_dir dir;
    for (const auto& c : cases) {
        const auto path = dir.path() / "input";
        {
            std::ofstream out(path, std::ios::binary | std::ios::trunc);
            out.write(reinterpret_cast<const char*>(c.file.data()), static_cast<std::streamsize>(c.file.size()));
        }
        const measured m = probe(path, c.request);
        INFO(c.name << ": estimate " << m.estimate / 1e6 << " MB, heap peak " << m.heap / 1e6 << " MB, RSS peak "
                    << m.rss / 1e6 << " MB");
        CHECK(m.estimate >= m.peak());
        CHECK(m.estimate <= c.at_most * m.peak());
    }
#endif
}

}  // namespace

TEST_CASE("memory estimate: every decoder and layout, against the measured peak", "[memory][image]") {
    // 12 MP: large enough that what grows with the image dominates the fixed allowance.
    const int w = 4000, h = 3000;
    const auto rgb = qt_test::photo_like(w, h, 3), rgba = qt_test::photo_like(w, h, 4),
               grey = qt_test::photo_like(w, h, 1);
    std::vector<one_case> cases = {
        {"baseline JPEG (streamed at 1/8)", qt_test::jpeg_file(rgb), {}},
        {"baseline JPEG 4:4:4, three sizes", qt_test::jpeg_file(rgb, {.quality = 95}), {"256,1024,2048"}},
        {"progressive JPEG (every coefficient held)", qt_test::jpeg_file(rgb, {.progressive = true}), {}},
        {"greyscale JPEG", qt_test::jpeg_file(grey, {.grey = true}), {}},
        {"JPEG turned by EXIF, cover", qt_test::jpeg_file(rgb, {.orientation = 6}), {"300x200", "cover"}},
        {"PNG RGB (streamed row by row)", qt_test::png_file(rgb), {}},
        {"PNG RGBA", qt_test::png_file(rgba), {}},
        {"PNG grey", qt_test::png_file(grey), {}},
        {"PNG 16-bit", qt_test::png_file(rgb, {.sixteen_bit = true}), {}},
        {"PNG interlaced (held whole)", qt_test::png_file(rgb, {.interlaced = true}), {}},
        {"GIF", qt_test::gif_file(rgb), {}},
        {"GIF interlaced (indexes held)", qt_test::gif_file(rgb, true), {}},
        {"WebP lossy (decoded scaled)", qt_test::webp_file(rgb), {}},
        {"WebP lossy with alpha", qt_test::webp_file(rgba), {}},
        {"BMP (held whole)", qt_test::bmp_file(rgb), {}},
    };
    check_cases(cases);
}

TEST_CASE("memory estimate: lossless WebP, plain and colour-indexed", "[memory][image]") {
    // Smaller: lossless encoding is slow, and its decode cost per pixel is what is checked.
    auto flat = qt_test::photo_like(2000, 1500, 3);
    for (std::size_t i = 0; i < flat.data.size(); ++i) flat.data[i] = (i / 3 / 2000) % 2 ? 40 : 200;
    check_cases({{"lossless", qt_test::webp_file(qt_test::photo_like(2000, 1500, 3), {.lossless = true}), {}},
                 {"lossless, two colours (8 pixels a word)", qt_test::webp_file(flat, {.lossless = true}), {}}});
}

TEST_CASE("memory estimate: large outputs of every format", "[memory][image]") {
    const auto rgb = qt_test::photo_like(4000, 3000, 3), rgba = qt_test::photo_like(3000, 3000, 4);
    const bytes jpeg = qt_test::jpeg_file(rgb);
    // The encoded size is bounded by incompressible pixels; photo-like ones compress to less, so a
    // large PNG output is over-estimated by up to 3x (the bound, not the typical size, is reserved).
    check_cases({{"JPEG to a 3000 px JPEG", jpeg, {"3000"}},
                 {"JPEG to a 3000 px WebP", jpeg, {"3000", "contain", "webp"}},
                 {"JPEG to a 3000 px PNG", jpeg, {"3000", "contain", "png"}, 3.0},
                 {"RGBA PNG to a 2000 px cover WebP (lossless alpha)", qt_test::png_file(rgba), {"2000", "cover", "webp"}},
                 {"RGBA PNG to a 2000 px PNG", qt_test::png_file(rgba), {"2000", "contain", "png"}, 3.0}});
}

TEST_CASE("memory estimate: errors are the request's own", "[memory][image]") {
    const bytes jpeg = qt_test::jpeg_file(qt_test::photo_like(64, 48, 3));
    img::thumbnails_request req;
    req.max_pixels = 1000;
    auto r = img::estimate_memory(jpeg, req);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == quickthumb::errc::too_many_pixels);
    req.max_pixels = 100'000'000;
    req.boxes.clear();
    r = img::estimate_memory(jpeg, req);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == quickthumb::errc::invalid_option);
    req.boxes = {{32, 32}};
    r = img::estimate_memory(jpeg, req);
    REQUIRE(r.has_value());
    CHECK(*r > 1'000'000);  // the fixed allowance: the libraries' small allocations
}
