// Tests of the image engine's metadata: EXIF orientation, ICC and EXIF readers, upright output, keep_metadata.
#include <catch2/catch.hpp>

#include "quickthumb/image.hpp"
#include "support/icc_profiles.hpp"
#include "support/image_chunks.hpp"
#include "support/image_codec.hpp"
#include "support/image_compare.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <random>
#include <span>
#include <utility>
#include <vector>

namespace img = quickthumb::image;
using namespace qt_test;

namespace {

// Four flat quadrants (red, green / blue, white) and a black dot near the top-left corner:
// every flip and rotation of it is distinguishable.
img::pixels quadrants(int w, int h, int channels = 3) {
    img::pixels p{w, h, channels, bytes(std::size_t(w) * h * channels)};
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            std::uint8_t* px = &p.data[(std::size_t(y) * w + x) * channels];
            const bool right = x >= w / 2, bottom = y >= h / 2;
            const std::array<std::uint8_t, 3> c = !bottom ? (right ? std::array<std::uint8_t, 3>{0, 200, 0}
                                                                   : std::array<std::uint8_t, 3>{220, 0, 0})
                                                          : (right ? std::array<std::uint8_t, 3>{255, 255, 255}
                                                                   : std::array<std::uint8_t, 3>{0, 0, 230});
            std::copy(c.begin(), c.end(), px);
            if (x >= w / 8 && x < w / 4 && y >= h / 8 && y < h / 4) px[0] = px[1] = px[2] = 0;
            if (channels == 4) px[3] = 255;
        }
    return p;
}

// The orientation that undoes each one (6 and 8 undo each other, the others themselves).
constexpr std::array<int, 9> inverse_orientation{1, 1, 2, 3, 4, 5, 8, 7, 6};

}  // namespace

TEST_CASE("exif_orientation reads IFD0 in both byte orders", "[image][exif]") {
    for (int o = 1; o <= 8; ++o)
        for (bool be : {false, true})
            for (bool prefix : {false, true}) {
                INFO("orientation " << o << (be ? " MM" : " II") << (prefix ? " Exif" : ""));
                CHECK(img::exif_orientation(exif_block(o, be, 3, prefix)) == o);
                CHECK(img::exif_orientation(exif_block(o, be, 4, prefix)) == o);  // LONG, seen in the wild
            }
    CHECK(img::exif_orientation(exif_block(0, false)) == 1);
    CHECK(img::exif_orientation(exif_block(9, true)) == 1);
    CHECK(img::exif_orientation(exif_block(0xFFFF, true)) == 1);
    CHECK(img::exif_orientation(exif_block(6, false, 7)) == 1);  // UNDEFINED type
    CHECK(img::exif_orientation({}) == 1);
    CHECK(img::exif_orientation(to_bytes("Exif")) == 1);
    CHECK(img::exif_orientation(to_bytes("hello, world, not TIFF")) == 1);
}

TEST_CASE("exif_orientation never reads outside hostile blocks", "[image][exif]") {
    const bytes good = exif_block(6, true);
    for (std::size_t n = 0; n < good.size(); ++n) {  // every truncation: the entry is gone or cut
        const bytes cut(good.begin(), good.begin() + n);
        const int o = img::exif_orientation(cut);
        CHECK((o == 1 || o == 6));
    }
    SECTION("offsets and counts pointing past the end") {
        bytes b = exif_block(6, false, 3, false);
        for (std::uint32_t off : {0u, 7u, 0xFFFFFFFFu, 0x7FFFFFFFu, std::uint32_t(b.size()), std::uint32_t(b.size() - 1)}) {
            bytes m = b;
            std::memcpy(&m[4], &off, 4);  // little-endian host
            CHECK(img::exif_orientation(m) == 1);
        }
        bytes many = b;
        many[8] = many[9] = 0xFF;  // 65535 entries, 2 present
        CHECK(img::exif_orientation(many) == 6);
        many.resize(many.size() - 6);  // the orientation entry now cut
        CHECK(img::exif_orientation(many) == 1);
    }
    SECTION("random mutations") {
        std::mt19937 rng(11);
        for (int i = 0; i < 20000; ++i) {
            bytes m = exif_block(int(rng() % 8) + 1, rng() & 1);
            for (int k = 0, n = 1 + int(rng() % 4); k < n; ++k) m[rng() % m.size()] = std::uint8_t(rng());
            if (rng() & 1) m.resize(rng() % (m.size() + 1));
            const int o = img::exif_orientation(m);
            REQUIRE((o >= 1 && o <= 8));
        }
    }
}

TEST_CASE("read_metadata finds orientation and ICC in JPEG, PNG and WebP", "[image][exif]") {
    const bytes profile = swapped_rgb_profile();
    SECTION("JPEG: first Exif APP1 wins; ICC_PROFILE chunks are reassembled in sequence order") {
        const std::size_t half = profile.size() / 2;
        const bytes jpeg = with_jpeg_segments(
            jpeg_of(40, 30), {{0xE1, to_bytes("http://ns.adobe.com/xap/1.0/\0<x/>")},
                              {0xE1, exif_block(6, true)},
                              {0xE1, exif_block(3, false)},
                              {0xE2, icc_segment(profile, half, profile.size() - half, 2, 2)},
                              {0xE2, icc_segment(profile, 0, half, 1, 2)}});
        const auto m = img::read_metadata(jpeg, img::format::jpeg);
        CHECK(m.orientation == 6);
        CHECK(m.icc == profile);
        CHECK(img::read_metadata(jpeg, img::format::jpeg, false).icc.empty());
        auto h = img::read_header(jpeg);
        REQUIRE(h.has_value());
        CHECK(h->orientation == 6);
        CHECK(h->width == 30);  // upright
        CHECK(h->height == 40);
    }
    SECTION("JPEG: a missing or repeated ICC chunk drops the profile") {
        const bytes missing = with_jpeg_segments(jpeg_of(8, 8), {{0xE2, icc_segment(profile, 0, 100, 1, 2)}});
        CHECK(img::read_metadata(missing, img::format::jpeg).icc.empty());
        const bytes twice = with_jpeg_segments(jpeg_of(8, 8), {{0xE2, icc_segment(profile, 0, 100, 1, 1)},
                                                               {0xE2, icc_segment(profile, 0, 100, 1, 1)}});
        CHECK(img::read_metadata(twice, img::format::jpeg).icc.empty());
        const bytes zero = with_jpeg_segments(jpeg_of(8, 8), {{0xE2, icc_segment(profile, 0, 100, 0, 1)}});
        CHECK(img::read_metadata(zero, img::format::jpeg).icc.empty());
    }
    SECTION("PNG: eXIf (with or without the Exif prefix) and a deflated iCCP") {
        for (bool prefix : {false, true}) {
            const bytes png = with_png_chunks(png_of(40, 30, 3), {png_chunk("iCCP", iccp_body(profile)),
                                                                  png_chunk("eXIf", exif_block(8, false, 3, prefix))});
            const auto m = img::read_metadata(png, img::format::png);
            CHECK(m.orientation == 8);
            CHECK(m.icc == profile);
            CHECK(decoded(png).width == 30);
        }
    }
    SECTION("PNG: an iCCP that inflates past 8 MiB is ignored, quickly") {
        const bytes bomb = with_png_chunks(png_of(8, 8, 3), {png_chunk("iCCP", iccp_body(bytes(64u << 20, 0)))});
        const auto start = std::chrono::steady_clock::now();
        CHECK(img::read_metadata(bomb, img::format::png).icc.empty());
        CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
        CHECK(decoded(bomb).width == 8);  // and the image itself is fine
    }
    SECTION("PNG: a damaged iCCP is ignored") {
        bytes body = iccp_body(profile);
        body.resize(body.size() / 2);
        const bytes png = with_png_chunks(png_of(8, 8, 3), {png_chunk("iCCP", body)});
        CHECK(img::read_metadata(png, img::format::png).icc.empty());
        CHECK(img::decode(png, 1000).has_value());
    }
    SECTION("WebP: ICCP and EXIF chunks of the VP8X container") {
        const bytes exif = exif_block(5, true);
        const bytes webp = webp_extended(webp_lossless(quadrants(40, 30)), 40, 30, false, &profile, &exif);
        const auto m = img::read_metadata(webp, img::format::webp);
        CHECK(m.orientation == 5);
        CHECK(m.icc == profile);
        auto h = img::read_header(webp);
        REQUIRE(h.has_value());
        CHECK(h->width == 30);
        CHECK(h->height == 40);
    }
    SECTION("other formats have none") {
        const auto m = img::read_metadata(to_bytes("GIF89a"), img::format::gif);
        CHECK(m.orientation == 1);
        CHECK(m.icc.empty());
    }
}

TEST_CASE("metadata readers survive hostile files", "[image][exif]") {
    const bytes profile = swapped_rgb_profile();
    const bytes exif = exif_block(6, false);
    const std::vector<std::pair<bytes, img::format>> seeds = {
        {with_jpeg_segments(jpeg_of(24, 16), {{0xE1, exif}, {0xE2, icc_segment(profile, 0, profile.size(), 1, 1)}}),
         img::format::jpeg},
        {with_png_chunks(png_of(24, 16, 4), {png_chunk("eXIf", exif), png_chunk("iCCP", iccp_body(profile))}),
         img::format::png},
        {webp_extended(webp_lossless(quadrants(24, 16)), 24, 16, false, &profile, &exif), img::format::webp},
    };
    std::mt19937 rng(5);
    for (const auto& [seed, fmt] : seeds) {
        INFO("format " << img::to_string(fmt));
        for (std::size_t n = 0; n <= seed.size(); n += 7) {  // truncations
            const std::span<const std::uint8_t> cut(seed.data(), n);
            (void)img::read_metadata(cut, fmt);
            (void)img::read_header(cut);
        }
        for (int i = 0; i < 3000; ++i) {
            bytes m = seed;
            for (int k = 0, n = 1 + int(rng() % 8); k < n; ++k) {
                // Mostly in the metadata near the start, where lengths and offsets live.
                const std::size_t at = rng() % std::min<std::size_t>(m.size(), i % 2 ? 200 : m.size());
                m[at] = std::uint8_t(rng());
            }
            const auto md = img::read_metadata(m, fmt);
            REQUIRE((md.orientation >= 1 && md.orientation <= 8));
            if (i % 50 == 0) (void)img::make_thumbnails(m, {});  // and the whole pipeline, sometimes
        }
    }
}

TEST_CASE("apply_orientation turns stored pixels upright", "[image][exif]") {
    const img::pixels ref = quadrants(6, 4);
    for (int o = 1; o <= 8; ++o) {
        INFO("orientation " << o);
        const img::pixels stored = img::apply_orientation(ref, inverse_orientation[o]);
        CHECK(stored.width == (o >= 5 ? 4 : 6));
        const img::pixels upright = img::apply_orientation(stored, o);
        CHECK(upright.width == 6);
        CHECK(upright.height == 4);
        CHECK(upright.data == ref.data);
    }
    // Spot checks of the definitions: 6 = rotate 90 clockwise, 2 = mirror.
    const img::pixels p{2, 1, 3, {1, 1, 1, 2, 2, 2}};
    const auto r6 = img::apply_orientation(p, 6);
    CHECK((r6.width == 1 && r6.height == 2 && r6.data == bytes{1, 1, 1, 2, 2, 2}));
    const auto r8 = img::apply_orientation(p, 8);
    CHECK(r8.data == bytes{2, 2, 2, 1, 1, 1});
    CHECK(img::apply_orientation(p, 2).data == bytes{2, 2, 2, 1, 1, 1});
    CHECK(img::apply_orientation(p, 0).data == p.data);
    CHECK(img::apply_orientation(p, 42).data == p.data);
}

TEST_CASE("every orientation gives the same upright thumbnails, in every fit mode", "[image][exif]") {
    const img::pixels ref = quadrants(120, 80, 4);
    img::thumbnails_request req;
    req.fmt = img::out_format::png;
    req.boxes = {{48, 48}, {30, 50}, {0, 0}, {200, 20}};
    for (auto mode : {img::fit::contain, img::fit::cover, img::fit::fill}) {
        req.mode = mode;
        auto want = img::make_thumbnails(unwrap(img::encode_png(ref)), req);
        REQUIRE(want.has_value());
        for (int o = 1; o <= 8; ++o) {
            const img::pixels stored = img::apply_orientation(ref, inverse_orientation[o]);
            const bytes png = with_png_chunks(unwrap(img::encode_png(stored)), {png_chunk("eXIf", exif_block(o, o % 2))});
            const bytes jpeg = with_jpeg_segments(unwrap(img::encode_jpeg(stored, 95)), {{0xE1, exif_block(o, o % 2)}});
            const bytes exif = exif_block(o, false);
            const bytes webp = webp_extended(webp_lossless(stored), stored.width, stored.height, true, nullptr, &exif);
            for (const bytes* src : {&png, &jpeg, &webp}) {
                INFO("orientation " << o << ", mode " << int(mode) << ", format " << img::to_string(img::sniff(*src)));
                auto got = img::make_thumbnails(*src, req);
                REQUIRE(got.has_value());
                CHECK(got->source.orientation == o);
                CHECK(got->source.width == 120);
                CHECK(got->source.height == 80);
                REQUIRE(got->outputs.size() == req.boxes.size());
                for (std::size_t i = 0; i < req.boxes.size(); ++i) {
                    INFO("box " << i);
                    CHECK(got->outputs[i].width == want->outputs[i].width);
                    CHECK(got->outputs[i].height == want->outputs[i].height);
                    const auto a = decoded(got->outputs[i].bytes), b = decoded(want->outputs[i].bytes);
                    if (src == &jpeg)
                        CHECK(psnr(a, b) > 30);
                    else
                        CHECK(max_abs_diff(a, b) <= 2);  // the resampling is symmetric
                }
            }
            // decode() is upright too.
            CHECK(max_abs_diff(decoded(png), ref) == 0);
        }
    }
}

TEST_CASE("keep_metadata copies EXIF with Orientation 1 and stripping is the default", "[image][exif]") {
    const img::pixels ref = quadrants(60, 40, 4);
    const img::pixels stored = img::apply_orientation(ref, inverse_orientation[6]);
    for (bool big_endian : {false, true}) {
        const bytes exif = exif_block(6, big_endian);
        const bytes jpeg = with_jpeg_segments(unwrap(img::encode_jpeg(stored, 95)), {{0xE1, exif}});
        for (auto fmt : {img::out_format::jpeg, img::out_format::png, img::out_format::webp}) {
            INFO("output " << int(fmt) << " big endian " << big_endian);
            auto kept = img::make_thumbnails(jpeg, {.boxes = {{30, 30}}, .fmt = fmt, .keep_metadata = true});
            REQUIRE(kept.has_value());
            const bytes& out = kept->outputs[0].bytes;
            const auto h = img::read_header(out);
            REQUIRE(h.has_value());
            CHECK(h->width == 30);  // upright, and not turned again by a reader that honours the tag
            CHECK(h->height == 20);
            const auto m = img::read_metadata(out, h->fmt);
            REQUIRE(m.exif.size() == exif.size() - 6);  // the TIFF block, without "Exif\0\0"
            CHECK(m.orientation == 1);
            CHECK(img::exif_orientation(m.exif) == 1);
            // Everything but the orientation value is the source's (ImageWidth 640 among it).
            std::size_t differing = 0;
            for (std::size_t i = 0; i < m.exif.size(); ++i) differing += m.exif[i] != exif[i + 6];
            CHECK(differing == 1);
            auto stripped = img::make_thumbnails(jpeg, {.boxes = {{30, 30}}, .fmt = fmt});
            REQUIRE(stripped.has_value());
            CHECK(max_abs_diff(decoded(out), decoded(stripped->outputs[0].bytes)) == 0);
            CHECK(img::read_metadata(stripped->outputs[0].bytes, h->fmt).exif.empty());
        }
    }
    // A source without EXIF gives outputs without it.
    auto none = img::make_thumbnails(unwrap(img::encode_png(ref)), {.boxes = {{30, 30}}, .keep_metadata = true});
    REQUIRE(none.has_value());
    CHECK(img::read_metadata(none->outputs[0].bytes, img::format::jpeg).exif.empty());
}
