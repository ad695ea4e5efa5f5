// Tests of the image engine's geometry and resampling: target sizes, cover crops, alpha weighting, grey.
#include <catch2/catch.hpp>

#include "quickthumb/image.hpp"
#include "support/image_codec.hpp"
#include "support/image_compare.hpp"

#include <stb_image_write.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <vector>

namespace img = quickthumb::image;
using namespace qt_test;

TEST_CASE("target_size", "[image]") {
    using img::fit;
    struct row {
        int sw, sh, bw, bh;
        fit f;
        int w, h;
    };
    for (auto r : {
             row{1000, 500, 256, 256, fit::contain, 256, 128},
             row{500, 1000, 256, 256, fit::contain, 128, 256},
             row{1001, 333, 100, 100, fit::contain, 100, 33},
             row{1000, 500, 256, 256, fit::cover, 256, 256},
             row{1000, 500, 100, 300, fit::cover, 100, 300},
             row{1000, 500, 100, 0, fit::contain, 100, 50},   // only width
             row{1000, 500, 0, 100, fit::contain, 200, 100},  // only height
             row{1000, 500, 0, 100, fit::cover, 200, 100},
             row{100, 50, 256, 256, fit::contain, 100, 50},  // no upscale
             row{100, 50, 200, 0, fit::contain, 100, 50},
             row{100, 50, 256, 256, fit::cover, 50, 50},     // no upscale: only crop to the box's aspect
             row{300, 100, 200, 200, fit::cover, 100, 100},
             row{1000, 500, 200, 800, fit::cover, 125, 500},  // taller box than the source
             row{10000, 1, 256, 256, fit::contain, 256, 1},   // extreme aspect ratios stay >= 1
             row{1, 10000, 256, 256, fit::contain, 1, 256},
             row{100000, 3, 256, 256, fit::contain, 256, 1},
             row{100000, 3, 256, 256, fit::cover, 3, 3},
             row{256, 256, 256, 256, fit::contain, 256, 256},
         }) {
        INFO(r.sw << "x" << r.sh << " in " << r.bw << "x" << r.bh << (r.f == fit::cover ? " cover" : " contain"));
        CHECK(img::target_size(r.sw, r.sh, r.bw, r.bh, r.f) == img::size{r.w, r.h});
    }
}

TEST_CASE("cover_crop is centred and has the target's aspect ratio", "[image]") {
    auto eq = [](img::rect a, img::rect b) {
        return a.x == b.x && a.y == b.y && a.width == b.width && a.height == b.height;
    };
    CHECK(eq(img::cover_crop(1000, 500, {256, 256}), {250, 0, 500, 500}));
    CHECK(eq(img::cover_crop(500, 1000, {100, 100}), {0, 250, 500, 500}));
    CHECK(eq(img::cover_crop(1000, 500, {200, 100}), {0, 0, 1000, 500}));
    CHECK(eq(img::cover_crop(1000, 500, {100, 200}), {375, 0, 250, 500}));
    CHECK(eq(img::cover_crop(101, 100, {1, 1}), {0, 0, 100, 100}));
}

TEST_CASE("resize weights colour by alpha and keeps flat colours", "[image]") {
    // Left opaque red, right fully transparent green: the green must not bleed into the result.
    img::pixels p{2, 1, 4, {255, 0, 0, 255, 0, 255, 0, 0}};
    auto out = img::resize(p, {0, 0, 2, 1}, {1, 1});
    REQUIRE(out.data.size() == 4);
    CHECK(out.data[0] > 240);
    CHECK(out.data[1] < 10);
    CHECK(out.data[3] > 100);
    CHECK(out.data[3] < 160);

    img::pixels flat{40, 30, 3, bytes(40 * 30 * 3, 77)};
    auto small = img::resize(flat, {5, 5, 20, 20}, {7, 7});
    CHECK(small.width == 7);
    CHECK(std::all_of(small.data.begin(), small.data.end(), [](std::uint8_t v) { return v == 77; }));
}

TEST_CASE("target_size: fill and enlarge", "[image]") {
    using img::fit;
    struct row {
        int sw, sh, bw, bh;
        fit f;
        bool enlarge;
        int w, h;
    };
    for (auto r : {
             row{1000, 500, 100, 300, fit::fill, false, 100, 300},
             row{100, 50, 300, 30, fit::fill, false, 100, 30},  // each side clamped to the source
             row{100, 50, 300, 30, fit::fill, true, 300, 30},
             row{100, 50, 0, 30, fit::fill, false, 60, 30},  // one side: like contain
             row{100, 50, 400, 400, fit::contain, true, 400, 200},
             row{100, 50, 400, 400, fit::cover, true, 400, 400},
             row{100, 50, 400, 0, fit::contain, true, 400, 200},
             row{100, 50, 0, 400, fit::cover, true, 800, 400},
             row{1000, 500, 400, 400, fit::contain, true, 400, 200},  // enlarge changes nothing when shrinking
             row{1, 100000, 0, 100000, fit::contain, true, 1, 100000},
         }) {
        INFO(r.sw << "x" << r.sh << " in " << r.bw << "x" << r.bh << " mode " << int(r.f) << " enlarge " << r.enlarge);
        CHECK(img::target_size(r.sw, r.sh, r.bw, r.bh, r.f, r.enlarge) == img::size{r.w, r.h});
    }
    const auto extreme = img::target_size(1, 100000, 100000, 0, fit::contain, true);  // stays in int range
    CHECK(extreme.width == 100000);
    CHECK(extreme.height == INT_MAX);
}

TEST_CASE("grey sources are resampled as one channel and come out as the RGB equivalent", "[image]") {
    // The same picture as a grey PNG and as an RGB PNG with R=G=B must give the same thumbnails.
    const img::pixels rgb = gradient(301, 157, 3);
    bytes grey_px;
    img::pixels rgb_grey{rgb.width, rgb.height, 3, {}};
    for (std::size_t i = 0; i < rgb.data.size(); i += 3) {
        const std::uint8_t v = static_cast<std::uint8_t>((rgb.data[i] + rgb.data[i + 1]) / 2);
        grey_px.push_back(v);
        append(rgb_grey.data, bytes{v, v, v});
    }
    bytes grey_png;
    stbi_write_png_to_func(
        [](void* ctx, void* d, int n) {
            auto* b = static_cast<std::uint8_t*>(d);
            static_cast<bytes*>(ctx)->insert(static_cast<bytes*>(ctx)->end(), b, b + n);
        },
        &grey_png, rgb.width, rgb.height, 1, grey_px.data(), rgb.width);
    const bytes rgb_png = unwrap(img::encode_png(rgb_grey));
    CHECK(max_abs_diff(decoded(grey_png), rgb_grey) == 0);
    for (auto mode : {img::fit::contain, img::fit::cover, img::fit::fill}) {
        const img::thumbnails_request req{.boxes = {{64, 64}, {0, 157}, {500, 20}}, .mode = mode, .fmt = img::out_format::png};
        auto a = img::make_thumbnails(grey_png, req);
        auto b = img::make_thumbnails(rgb_png, req);
        REQUIRE(a.has_value());
        REQUIRE(b.has_value());
        for (std::size_t i = 0; i < req.boxes.size(); ++i) {
            INFO("mode " << int(mode) << " box " << i);
            const auto pa = decoded(a->outputs[i].bytes);
            CHECK(pa.channels == 3);
            CHECK(max_abs_diff(pa, decoded(b->outputs[i].bytes)) == 0);
        }
    }
}
