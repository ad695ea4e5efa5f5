// Tests of the image engine's thumbnails: make_thumbnail(s), several boxes, fit modes, output formats, alpha.
#include <catch2/catch.hpp>

#include "quickthumb/image.hpp"
#include "support/icc_profiles.hpp"
#include "support/image_chunks.hpp"
#include "support/image_codec.hpp"
#include "support/image_compare.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <vector>

namespace img = quickthumb::image;
using quickthumb::errc;
using namespace qt_test;

namespace {

bool contains(const bytes& haystack, std::initializer_list<std::uint8_t> needle) {
    return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end()) != haystack.end();
}

}  // namespace

TEST_CASE("encode_jpeg flattens alpha onto white", "[image]") {
    img::pixels clear{16, 16, 4, bytes(16 * 16 * 4, 0)};
    auto p = img::decode(unwrap(img::encode_jpeg(clear, 90)), 1'000'000);
    REQUIRE(p.has_value());
    CHECK(std::all_of(p->data.begin(), p->data.end(), [](std::uint8_t v) { return v >= 250; }));
}

TEST_CASE("make_thumbnail", "[image]") {
    SECTION("1000x500 RGBA PNG to JPEG: 256x128") {
        auto t = img::make_thumbnail(png_of(1000, 500, 4), {});
        REQUIRE(t.has_value());
        CHECK(t->source.fmt == img::format::png);
        CHECK(t->source.width == 1000);
        CHECK(t->source.height == 500);
        CHECK(t->width == 256);
        CHECK(t->height == 128);
        auto back = img::decode(t->bytes, 1'000'000);
        REQUIRE(back.has_value());
        CHECK(img::sniff(t->bytes) == img::format::jpeg);
        CHECK(back->width == 256);
        CHECK(back->height == 128);
        CHECK(back->channels == 3);
    }
    SECTION("cover 100x100 gives exactly 100x100") {
        img::thumbnail_request req;
        req.box_width = req.box_height = 100;
        req.mode = img::fit::cover;
        for (const bytes& src : {png_of(1000, 500, 4), jpeg_of(2000, 1000), jpeg_of(777, 1999)}) {
            auto t = img::make_thumbnail(src, req);
            REQUIRE(t.has_value());
            CHECK(t->width == 100);
            CHECK(t->height == 100);
            auto back = img::decode(t->bytes, 1'000'000);
            REQUIRE(back.has_value());
            CHECK(back->width == 100);
            CHECK(back->height == 100);
        }
    }
    SECTION("a large JPEG reports its full size while decoding a DCT-scaled one") {
        auto t = img::make_thumbnail(jpeg_of(2000, 1000), {});
        REQUIRE(t.has_value());
        CHECK(t->source.width == 2000);
        CHECK(t->source.height == 1000);
        CHECK(t->width == 256);
        CHECK(t->height == 128);
    }
    SECTION("PNG output keeps alpha; a box of 0x0 means 256x256") {
        img::thumbnail_request req;
        req.box_width = req.box_height = 0;
        req.fmt = img::out_format::png;
        auto t = img::make_thumbnail(png_of(512, 1024, 4), req);
        REQUIRE(t.has_value());
        CHECK(t->width == 128);
        CHECK(t->height == 256);
        auto back = img::decode(t->bytes, 1'000'000);
        REQUIRE(back.has_value());
        CHECK(back->channels == 4);
    }
    SECTION("only a width") {
        img::thumbnail_request req;
        req.box_width = 100;
        req.box_height = 0;
        auto t = img::make_thumbnail(jpeg_of(400, 1000), req);
        REQUIRE(t.has_value());
        CHECK(t->width == 100);
        CHECK(t->height == 250);
    }
    SECTION("a small image is not upscaled") {
        auto t = img::make_thumbnail(png_of(40, 30, 3), {});
        REQUIRE(t.has_value());
        CHECK(t->width == 40);
        CHECK(t->height == 30);
    }
}

TEST_CASE("alpha: premultiplied resize, flattening for JPEG, kept for PNG and WebP", "[image][alpha]") {
    // A white opaque disc on transparent BLACK: unweighted filtering would darken its rim.
    img::pixels disc{64, 64, 4, bytes(64 * 64 * 4, 0)};
    for (int y = 0; y < 64; ++y)
        for (int x = 0; x < 64; ++x)
            if ((x - 32) * (x - 32) + (y - 32) * (y - 32) < 20 * 20)
                std::fill_n(&disc.data[(std::size_t(y) * 64 + x) * 4], 4, std::uint8_t{255});
    SECTION("no dark fringe") {
        const auto small = img::resize(disc, {0, 0, 64, 64}, {13, 13});
        int partial = 0;
        for (std::size_t i = 0; i < 13 * 13; ++i) {
            const std::uint8_t* px = &small.data[i * 4];
            if (px[3] < 8) continue;  // (nearly) transparent: its colour does not matter
            if (px[3] < 248) ++partial;
            INFO("pixel " << i << " alpha " << int(px[3]));
            CHECK(std::min({px[0], px[1], px[2]}) >= 250);
        }
        CHECK(partial > 4);  // there is an antialiased rim to look at
    }
    SECTION("JPEG output flattens onto the background") {
        img::thumbnails_request req;
        req.boxes = {{32, 32}};
        req.background = {200, 0, 0};
        req.quality = 95;  // 4:4:4: at 4:2:0 the disc's chroma would bleed into the corner block
        auto t = img::make_thumbnails(unwrap(img::encode_png(disc)), req);
        REQUIRE(t.has_value());
        const auto p = decoded(t->outputs[0].bytes);
        CHECK(p.channels == 3);
        CHECK(std::abs(int(p.data[0]) - 200) <= 6);  // a corner: fully transparent
        CHECK(p.data[1] <= 6);
        const std::size_t centre = (16 * 32 + 16) * 3;
        CHECK(p.data[centre + 1] >= 245);  // the disc stays white
        // The default background is white.
        auto w = img::make_thumbnails(unwrap(img::encode_png(disc)), {.boxes = {{32, 32}}});
        REQUIRE(w.has_value());
        CHECK(decoded(w->outputs[0].bytes).data[1] >= 250);
    }
    SECTION("PNG and WebP keep alpha") {
        for (auto fmt : {img::out_format::png, img::out_format::webp}) {
            auto t = img::make_thumbnails(unwrap(img::encode_png(disc)), {.boxes = {{32, 32}}, .fmt = fmt});
            REQUIRE(t.has_value());
            const auto p = decoded(t->outputs[0].bytes);
            CHECK(p.channels == 4);
            CHECK(p.data[3] <= 2);                     // corner transparent
            CHECK(p.data[(16 * 32 + 16) * 4 + 3] >= 250);  // centre opaque
        }
    }
}

TEST_CASE("outputs: formats, several boxes from one request, fit modes, enlarge", "[image]") {
    const bytes src = jpeg_of(2000, 1000);
    SECTION("several sizes") {
        auto t = img::make_thumbnails(src, {.boxes = {{128, 128}, {256, 256}, {1024, 1024}, {0, 100}, {0, 0}}});
        REQUIRE(t.has_value());
        CHECK(t->source.width == 2000);
        CHECK(t->source.orientation == 1);
        const std::vector<img::size> want{{128, 64}, {256, 128}, {1024, 512}, {200, 100}, {2000, 1000}};
        REQUIRE(t->outputs.size() == want.size());
        for (std::size_t i = 0; i < want.size(); ++i) {
            INFO("output " << i);
            CHECK(img::size{t->outputs[i].width, t->outputs[i].height} == want[i]);
            const auto p = decoded(t->outputs[i].bytes);
            CHECK(img::size{p.width, p.height} == want[i]);
        }
    }
    SECTION("JPEG options: progressive; baseline by default; no metadata") {
        auto base = img::make_thumbnails(src, {});
        auto prog = img::make_thumbnails(src, {.progressive = true});
        REQUIRE(base.has_value());
        REQUIRE(prog.has_value());
        CHECK(contains(prog->outputs[0].bytes, {0xFF, 0xC2}));  // SOF2
        CHECK_FALSE(contains(base->outputs[0].bytes, {0xFF, 0xC2}));
        CHECK(psnr(decoded(base->outputs[0].bytes), decoded(prog->outputs[0].bytes)) > 40);
        auto q = img::make_thumbnails(src, {.quality = 30});
        REQUIRE(q.has_value());
        CHECK(q->outputs[0].bytes.size() < base->outputs[0].bytes.size());
        // The Exif and ICC of the source are not copied.
        const bytes tagged = with_jpeg_segments(src, {{0xE1, exif_block(6, false)},
                                                      {0xE2, icc_segment(swapped_rgb_profile(), 0, 500, 1, 1)}});
        auto s = img::make_thumbnails(tagged, {});
        REQUIRE(s.has_value());
        const auto m = img::read_metadata(s->outputs[0].bytes, img::format::jpeg);
        CHECK(m.orientation == 1);
        CHECK(m.icc.empty());
        CHECK_FALSE(contains(s->outputs[0].bytes, {'E', 'x', 'i', 'f'}));
    }
    SECTION("WebP output") {
        auto t = img::make_thumbnails(src, {.fmt = img::out_format::webp, .quality = 85});
        REQUIRE(t.has_value());
        CHECK(img::sniff(t->outputs[0].bytes) == img::format::webp);
        const auto p = decoded(t->outputs[0].bytes);
        CHECK(p.channels == 3);
        auto ref = img::make_thumbnails(src, {.fmt = img::out_format::png});
        REQUIRE(ref.has_value());
        CHECK(psnr(p, decoded(ref->outputs[0].bytes)) > 35);
    }
    SECTION("fill stretches; contain and cover keep the aspect") {
        // Left half red, right half blue.
        img::pixels lr{1000, 500, 3, bytes(1000 * 500 * 3, 0)};
        for (int y = 0; y < 500; ++y)
            for (int x = 0; x < 1000; ++x) lr.data[(std::size_t(y) * 1000 + x) * 3 + (x < 500 ? 0 : 2)] = 255;
        const bytes png = unwrap(img::encode_png(lr));
        img::thumbnails_request req{.boxes = {{100, 300}}, .fmt = img::out_format::png};
        req.mode = img::fit::fill;
        auto f = img::make_thumbnails(png, req);
        REQUIRE(f.has_value());
        const auto p = decoded(f->outputs[0].bytes);
        REQUIRE(img::size{p.width, p.height} == img::size{100, 300});
        CHECK(p.data[(150 * 100 + 10) * 3] == 255);      // left: red
        CHECK(p.data[(150 * 100 + 90) * 3 + 2] == 255);  // right: blue
        req.mode = img::fit::cover;  // the centre 167x500: its left half red, right half blue
        auto c = img::make_thumbnails(png, req);
        REQUIRE(c.has_value());
        CHECK(img::size{c->outputs[0].width, c->outputs[0].height} == img::size{100, 300});
        req.mode = img::fit::contain;
        auto k = img::make_thumbnails(png, req);
        REQUIRE(k.has_value());
        CHECK(img::size{k->outputs[0].width, k->outputs[0].height} == img::size{100, 50});
    }
    SECTION("never upscale unless enlarge") {
        const bytes small = png_of(100, 50, 3);
        for (auto mode : {img::fit::contain, img::fit::cover, img::fit::fill}) {
            INFO("mode " << int(mode));
            img::thumbnails_request req{.boxes = {{400, 400}}, .mode = mode};
            auto t = img::make_thumbnails(small, req);
            REQUIRE(t.has_value());
            CHECK(std::max(t->outputs[0].width, t->outputs[0].height) <= 100);
            req.enlarge = true;
            auto e = img::make_thumbnails(small, req);
            REQUIRE(e.has_value());
            CHECK(img::size{e->outputs[0].width, e->outputs[0].height} ==
                  (mode == img::fit::contain ? img::size{400, 200} : img::size{400, 400}));
            CHECK(decoded(e->outputs[0].bytes).width == 400);
        }
    }
    SECTION("refused requests") {
        auto none = img::make_thumbnails(src, {.boxes = {}});
        REQUIRE_FALSE(none.has_value());
        CHECK(none.error().code == errc::invalid_option);
        auto huge = img::make_thumbnails(src, {.boxes = {{100000, 100000}}, .enlarge = true});
        REQUIRE_FALSE(huge.has_value());
        CHECK(huge.error().code == errc::invalid_option);
        // The source limit is reported before any output limit.
        auto big = img::make_thumbnails(png_header_only(65536, 65536), {.boxes = {{0, 0}}});
        REQUIRE_FALSE(big.has_value());
        CHECK(big.error().code == errc::too_many_pixels);
    }
}
