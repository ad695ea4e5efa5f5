// Tests of the image engine. Synthetic images are made with the project's own encoders.
#include <catch2/catch.hpp>

#include "quickthumb/image.hpp"
#include "support/image_files.hpp"
#include "support/synthetic.hpp"
#include "support/testdata.hpp"

#include <stb_image_write.h>
#include <webp/encode.h>

#include <cstdio>  // jpeglib.h needs FILE
#include <jpeglib.h>
#include <lcms2.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>

namespace img = quickthumb::image;
using quickthumb::errc;

namespace {

using bytes = std::vector<std::uint8_t>;

bytes to_bytes(std::string_view s) { return {s.begin(), s.end()}; }

using qt_test::gradient;

// Catch-friendly: a failed encode fails the test instead of throwing.
bytes unwrap(quickthumb::result<bytes> r) {
    INFO((r ? std::string() : r.error().message));
    REQUIRE(r.has_value());
    return std::move(*r);
}

bytes jpeg_of(int w, int h, int quality = 90) { return unwrap(img::encode_jpeg(gradient(w, h, 3), quality)); }
bytes png_of(int w, int h, int channels) { return unwrap(img::encode_png(gradient(w, h, channels))); }

// The project only writes baseline JPEG; tests also need a progressive one, and one with a
// (valid) absurd number of scans.
bytes progressive_jpeg_of(int w, int h, bool scan_bomb = false) {
    return qt_test::jpeg_file(gradient(w, h, 3), {.quality = 75, .progressive = true, .scan_bomb = scan_bomb});
}

std::uint32_t crc32(const std::uint8_t* p, std::size_t n) {
    std::uint32_t c = 0xFFFFFFFFu;
    for (std::size_t i = 0; i < n; ++i) {
        c ^= p[i];
        for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xFFFFFFFFu;
}

void put_be32(bytes& out, std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(v >> s));
}

// Signature and a well-formed IHDR (correct CRC), nothing else.
bytes png_header_only(std::uint32_t w, std::uint32_t h) {
    bytes out = to_bytes("\x89PNG\r\n\x1A\n");
    bytes chunk = to_bytes("IHDR");
    put_be32(chunk, w);
    put_be32(chunk, h);
    for (std::uint8_t b : {8, 2, 0, 0, 0}) chunk.push_back(b);  // 8-bit RGB, deflate, no filter, no interlace
    put_be32(out, 13);
    out.insert(out.end(), chunk.begin(), chunk.end());
    put_be32(out, crc32(chunk.data(), chunk.size()));
    return out;
}

double mean_abs_diff(const bytes& a, const bytes& b) {
    REQUIRE(a.size() == b.size());
    double sum = 0;
    for (std::size_t i = 0; i < a.size(); ++i) sum += std::abs(int(a[i]) - int(b[i]));
    return sum / double(a.size());
}

}  // namespace

TEST_CASE("sniff recognises each magic", "[image]") {
    using F = img::format;
    auto check = [](std::string_view magic, F expected) {
        INFO("magic: " << std::string(magic));
        CHECK(img::sniff(to_bytes(magic)) == expected);
    };
    check("\xFF\xD8\xFF\xE0\0\x10JFIF", F::jpeg);
    check("\x89PNG\r\n\x1A\n\0\0\0\rIHDR", F::png);
    check("GIF87a\x01\0\x01\0", F::gif);
    check("GIF89a\x01\0\x01\0", F::gif);
    check(std::string_view("BM\x36\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0", 18), F::bmp);
    check(std::string_view("RIFF\x24\0\0\0WEBPVP8 ", 16), F::webp);
    check(std::string_view("II*\0\x08\0\0\0", 8), F::tiff);
    check(std::string_view("MM\0*\0\0\0\x08", 8), F::tiff);
    check("<svg xmlns=\"http://www.w3.org/2000/svg\"/>", F::svg);
    check("\xEF\xBB\xBF \n<?xml version=\"1.0\"?>\n<!-- hi -->\n<svg width=\"10\"/>", F::svg);
    check(std::string_view("\0\0\0\x18" "ftypheic\0\0\0\0mif1heic", 24), F::heic);
    check(std::string_view("\0\0\0\x18" "ftypmif1\0\0\0\0mif1avif", 24), F::avif);
    check(std::string_view("\0\0\0\x14" "ftypavif\0\0\0\0avif", 20), F::avif);
    check(std::string_view("\0\0\1\0\x01\0\x10\x10", 8), F::ico);
    check("8BPS\0\x01", F::psd);
}

TEST_CASE("sniff refuses text and garbage", "[image]") {
    using F = img::format;
    CHECK(img::sniff({}) == F::unknown);
    CHECK(img::sniff(to_bytes("hello, world")) == F::unknown);
    CHECK(img::sniff(to_bytes("<?xml version=\"1.0\"?><feed/>")) == F::unknown);  // XML but not SVG
    CHECK(img::sniff(to_bytes("BMW is a car, not a bitmap")) == F::unknown);
    CHECK(img::sniff(to_bytes("\xFF\xD8")) == F::unknown);  // too short for JPEG
    std::mt19937 rng(42);
    bytes noise(4096);
    for (auto& b : noise) b = static_cast<std::uint8_t>(rng());
    CHECK(img::sniff(noise) == F::unknown);
}

TEST_CASE("to_string names formats", "[image]") {
    CHECK(img::to_string(img::format::jpeg) == "jpeg");
    CHECK(img::to_string(img::format::webp) == "webp");
    CHECK(img::to_string(img::format::unknown) == "unknown");
}

TEST_CASE("read_header gives dimensions without decoding", "[image]") {
    auto jpeg = img::read_header(jpeg_of(300, 200));
    REQUIRE(jpeg.has_value());
    CHECK(jpeg->fmt == img::format::jpeg);
    CHECK(jpeg->width == 300);
    CHECK(jpeg->height == 200);

    auto png = img::read_header(png_of(17, 33, 4));
    REQUIRE(png.has_value());
    CHECK(png->fmt == img::format::png);
    CHECK(png->width == 17);
    CHECK(png->height == 33);

    auto big = img::read_header(png_header_only(65536, 65536));
    REQUIRE(big.has_value());
    CHECK(big->width == 65536);
}

TEST_CASE("decode round-trips the project's own encodings", "[image]") {
    SECTION("JPEG") {
        const auto src = gradient(300, 200, 3);
        auto p = img::decode(unwrap(img::encode_jpeg(src, 95)), 100'000'000);
        REQUIRE(p.has_value());
        CHECK(p->width == 300);
        CHECK(p->height == 200);
        CHECK(p->channels == 3);
        CHECK(mean_abs_diff(p->data, src.data) < 3.0);
    }
    SECTION("progressive JPEG") {
        auto p = img::decode(progressive_jpeg_of(123, 45), 100'000'000);
        REQUIRE(p.has_value());
        CHECK(p->width == 123);
        CHECK(p->height == 45);
    }
    SECTION("a progressive JPEG with 757 scans is refused") {
        auto p = img::decode(progressive_jpeg_of(16, 16, true), 100'000'000);
        REQUIRE_FALSE(p.has_value());
        CHECK(p.error().code == errc::corrupt_image);
        CHECK_THAT(p.error().message, Catch::Contains("scans"));
    }
    SECTION("PNG RGB and RGBA are lossless") {
        for (int channels : {3, 4}) {
            const auto src = gradient(45, 31, channels);
            auto p = img::decode(unwrap(img::encode_png(src)), 100'000'000);
            REQUIRE(p.has_value());
            CHECK(p->width == 45);
            CHECK(p->height == 31);
            CHECK(p->channels == channels);
            CHECK(p->data == src.data);
        }
    }
    SECTION("WebP with alpha") {
        const auto src = gradient(64, 32, 4);
        std::uint8_t* out = nullptr;
        const std::size_t n = WebPEncodeLosslessRGBA(src.data.data(), 64, 32, 64 * 4, &out);
        REQUIRE(n > 0);
        const bytes webp(out, out + n);
        WebPFree(out);
        CHECK(img::sniff(webp) == img::format::webp);
        auto p = img::decode(webp, 100'000'000);
        REQUIRE(p.has_value());
        CHECK(p->channels == 4);
        CHECK(p->data == src.data);
    }
    SECTION("BMP") {
        const auto src = gradient(20, 10, 3);
        bytes bmp;
        stbi_write_bmp_to_func(
            [](void* ctx, void* d, int n) {
                auto* b = static_cast<std::uint8_t*>(d);
                static_cast<bytes*>(ctx)->insert(static_cast<bytes*>(ctx)->end(), b, b + n);
            },
            &bmp, 20, 10, 3, src.data.data());
        CHECK(img::sniff(bmp) == img::format::bmp);
        auto p = img::decode(bmp, 100'000'000);
        REQUIRE(p.has_value());
        CHECK(p->channels == 3);
        CHECK(p->data == src.data);
    }
    SECTION("GIF (1x1 transparent)") {
        const bytes gif = to_bytes(std::string_view(
            "GIF89a\x01\0\x01\0\x80\0\0\xFF\xFF\xFF\0\0\0!\xF9\x04\x01\0\0\0\0,\0\0\0\0\x01\0\x01\0\0\x02\x02" "D\x01\0;",
            43));
        auto p = img::decode(gif, 100'000'000);
        REQUIRE(p.has_value());
        CHECK(p->width == 1);
        CHECK(p->channels == 4);
        CHECK(p->data[3] == 0);
    }
}

TEST_CASE("JPEG shrink-on-load picks the smallest DCT scale that stays >= the minimum", "[image]") {
    const bytes jpeg = jpeg_of(2000, 1000, 75);
    struct row {
        int min_w, min_h, want_w, want_h;
    };
    for (auto r : {row{256, 128, 500, 250},  // 1/8 would be 250x125 < 256x128
                   row{250, 125, 250, 125}, row{0, 0, 2000, 1000}, row{251, 0, 500, 250}, row{0, 126, 500, 250},
                   row{1000, 500, 1000, 500}, row{1001, 0, 2000, 1000}, row{2000, 1000, 2000, 1000}}) {
        INFO("min " << r.min_w << "x" << r.min_h);
        auto p = img::decode(jpeg, 100'000'000, r.min_w, r.min_h);
        REQUIRE(p.has_value());
        CHECK(p->width == r.want_w);
        CHECK(p->height == r.want_h);
    }
    // Sizes that do not divide: libjpeg rounds up, 2001/8 -> 251.
    auto odd = img::decode(jpeg_of(2001, 1001), 100'000'000, 251, 126);
    REQUIRE(odd.has_value());
    CHECK(odd->width == 251);
    CHECK(odd->height == 126);
}

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

TEST_CASE("encode_jpeg flattens alpha onto white", "[image]") {
    img::pixels clear{16, 16, 4, bytes(16 * 16 * 4, 0)};
    auto p = img::decode(unwrap(img::encode_jpeg(clear, 90)), 1'000'000);
    REQUIRE(p.has_value());
    CHECK(std::all_of(p->data.begin(), p->data.end(), [](std::uint8_t v) { return v >= 250; }));
}

TEST_CASE("truncated and damaged files are corrupt_image", "[image]") {
    SECTION("JPEG cut in half") {
        bytes jpeg = jpeg_of(300, 200);
        jpeg.resize(jpeg.size() / 2);
        auto p = img::decode(jpeg, 100'000'000);
        REQUIRE_FALSE(p.has_value());
        CHECK(p.error().code == errc::corrupt_image);
        CHECK_THAT(p.error().message, Catch::Contains("JPEG"));
    }
    SECTION("JPEG cut inside its header") {
        bytes jpeg = jpeg_of(300, 200);
        jpeg.resize(40);
        auto h = img::read_header(jpeg);
        REQUIRE_FALSE(h.has_value());
        CHECK(h.error().code == errc::corrupt_image);
    }
    SECTION("JPEG cut anywhere in its scan data, baseline and progressive") {
        for (bool progressive : {false, true}) {
            const bytes jpeg = progressive ? progressive_jpeg_of(300, 200) : jpeg_of(300, 200);
            for (int percent = 30; percent <= 99; percent += 3) {
                bytes cut(jpeg.begin(), jpeg.begin() + jpeg.size() * percent / 100);
                INFO((progressive ? "progressive" : "baseline") << ", cut at " << percent << "%");
                auto p = img::decode(cut, 100'000'000);
                REQUIRE_FALSE(p.has_value());
                CHECK(p.error().code == errc::corrupt_image);
            }
        }
    }
    SECTION("a JPEG missing only its EOI marker still decodes (every scanline is present)") {
        bytes jpeg = jpeg_of(300, 200);
        jpeg.resize(jpeg.size() - 2);
        CHECK(img::decode(jpeg, 100'000'000).has_value());
    }
    SECTION("PNG cut in half") {
        bytes png = png_of(300, 200, 3);
        png.resize(png.size() / 2);
        auto p = img::decode(png, 100'000'000);
        REQUIRE_FALSE(p.has_value());
        CHECK(p.error().code == errc::corrupt_image);
        CHECK_THAT(p.error().message, Catch::Contains("PNG"));
    }
    SECTION("PNG with a flipped byte in IDAT") {
        bytes png = png_of(300, 200, 3);
        png[png.size() / 2] ^= 0x10;
        auto p = img::decode(png, 100'000'000);
        REQUIRE_FALSE(p.has_value());
        CHECK(p.error().code == errc::corrupt_image);
    }
}

TEST_CASE("random bytes are not_an_image", "[image]") {
    std::mt19937 rng(7);
    bytes noise(10'000);
    for (auto& b : noise) b = static_cast<std::uint8_t>(rng());
    auto p = img::decode(noise, 100'000'000);
    REQUIRE_FALSE(p.has_value());
    CHECK(p.error().code == errc::not_an_image);
    auto t = img::make_thumbnail(noise, {});
    REQUIRE_FALSE(t.has_value());
    CHECK(t.error().code == errc::not_an_image);
}

TEST_CASE("a 65536x65536 PNG header is refused from the header alone", "[image]") {
    const bytes png = png_header_only(65536, 65536);
    const auto start = std::chrono::steady_clock::now();
    auto p = img::decode(png, 100'000'000);
    auto t = img::make_thumbnail(png, {});
    const auto elapsed = std::chrono::steady_clock::now() - start;
    REQUIRE_FALSE(p.has_value());
    CHECK(p.error().code == errc::too_many_pixels);
    CHECK_THAT(p.error().message, Catch::Contains("65536x65536") && Catch::Contains("100000000"));
    REQUIRE_FALSE(t.has_value());
    CHECK(t.error().code == errc::too_many_pixels);
    CHECK(elapsed < std::chrono::milliseconds(200));
}

TEST_CASE("max_pixels applies to every format", "[image]") {
    auto p = img::decode(jpeg_of(300, 200), 300 * 200 - 1);
    REQUIRE_FALSE(p.has_value());
    CHECK(p.error().code == errc::too_many_pixels);
    CHECK(img::decode(jpeg_of(300, 200), 300 * 200).has_value());
}

TEST_CASE("TIFF and SVG are unsupported_format / named in the message", "[image]") {
    auto tiff = img::decode(to_bytes(std::string_view("II*\0\x08\0\0\0\0\0\0\0", 12)), 100'000'000);
    REQUIRE_FALSE(tiff.has_value());
    CHECK(tiff.error().code == errc::unsupported_format);
    CHECK_THAT(tiff.error().message, Catch::StartsWith("TIFF") && Catch::Contains("JPEG, PNG"));
    auto svg = img::make_thumbnail(to_bytes("<?xml version=\"1.0\"?>\n<svg width=\"10\" height=\"10\"/>"), {});
    REQUIRE_FALSE(svg.has_value());
    CHECK(svg.error().code == errc::unsupported_format);
    CHECK_THAT(svg.error().message, Catch::StartsWith("SVG"));
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

// ---- ../shared/testdata --------------------------------------------------------------------

namespace {

using qt_test::files_in;

bool is_png_name(const std::filesystem::path& p) { return p.extension() == ".png"; }

}  // namespace

TEST_CASE("testdata: every photo thumbnails to longest side 256", "[image][testdata]") {
    QT_REQUIRE_SHARED_TESTDATA(dir);
    int count = 0;
    for (const auto& sub : {"images/photos", "images/exif"})
        for (const auto& path : files_in(dir / sub)) {
            INFO(path.string());
            const bytes data = qt_test::read_file(path);
            auto t = img::make_thumbnail(data, {});
            if (path.filename() == "testimgl.jpg") {
                // A lossless JPEG (SOF3): libjpeg-turbo 2.1 (and its djpeg) cannot decode it.
                REQUIRE_FALSE(t.has_value());
                CHECK(t.error().code == errc::unsupported_format);
                continue;
            }
            INFO((t ? std::string() : t.error().message));
            REQUIRE(t.has_value());
            CHECK(std::max(t->width, t->height) == 256);
            auto header = img::read_header(data);
            REQUIRE(header.has_value());
            CHECK(t->source.width == header->width);
            CHECK((img::size{t->width, t->height} ==
                   img::target_size(header->width, header->height, 256, 256, img::fit::contain)));
            auto back = img::decode(t->bytes, 1'000'000);
            REQUIRE(back.has_value());
            CHECK(back->width == t->width);
            ++count;
        }
    CHECK(count >= 13);
}

TEST_CASE("testdata: every file in images/formats thumbnails", "[image][testdata]") {
    QT_REQUIRE_SHARED_TESTDATA(dir);
    for (const auto& path : files_in(dir / "images/formats")) {
        INFO(path.string());
        for (auto fit : {img::fit::contain, img::fit::cover}) {
            img::thumbnail_request req;
            req.mode = fit;
            req.fmt = img::out_format::png;
            auto t = img::make_thumbnail(qt_test::read_file(path), req);
            INFO((t ? std::string() : t.error().message));
            REQUIRE(t.has_value());
            CHECK(t->width >= 1);
            if (path.filename() == "big-height.webp") {  // animated: the first 13x169 frame
                CHECK(t->source.width == 13);
                CHECK(t->height == (fit == img::fit::contain ? 169 : 13));
            }
            CHECK(img::decode(t->bytes, 1'000'000).has_value());
        }
    }
}

TEST_CASE("testdata: the CMYK JPEG decodes to plausible RGB", "[image][testdata]") {
    QT_REQUIRE_SHARED_TESTDATA(dir);
    auto p = img::decode(qt_test::read_file(dir / "images/formats/Channel_digital_image_CMYK_color_no_profile.jpg"),
                         100'000'000);
    REQUIRE(p.has_value());
    CHECK(p->channels == 3);
    // Inverting the inks by mistake turns this photo into a dark negative.
    double mean = 0;
    for (auto v : p->data) mean += v;
    mean /= double(p->data.size());
    CHECK(mean > 90);
}

TEST_CASE("testdata: PngSuite", "[image][testdata]") {
    QT_REQUIRE_SHARED_TESTDATA(dir);
    int good = 0, bad = 0;
    for (const auto& path : files_in(dir / "pngsuite")) {
        if (!is_png_name(path)) continue;
        INFO(path.filename().string());
        auto t = img::make_thumbnail(qt_test::read_file(path), {});
        if (path.filename().string().starts_with("x")) {
            CHECK_FALSE(t.has_value());
            if (!t) CHECK(!t.error().message.empty());
            ++bad;
        } else {
            INFO((t ? std::string() : t.error().message));
            CHECK(t.has_value());
            ++good;
        }
    }
    CHECK(good > 150);
    CHECK(bad == 14);
}

TEST_CASE("testdata: every file in images/broken fails with an error", "[image][testdata]") {
    QT_REQUIRE_SHARED_TESTDATA(dir);
    for (const auto& path : files_in(dir / "images/broken")) {
        INFO(path.string());
        auto t = img::make_thumbnail(qt_test::read_file(path), {});
        REQUIRE_FALSE(t.has_value());
        CHECK(!t.error().message.empty());
        const auto name = path.filename().string();
        if (name == "truncated.png") CHECK(t.error().code == errc::corrupt_image);
        if (name == "empty.jpg" || name == "not-an-image.txt") CHECK(t.error().code == errc::not_an_image);
    }
}

// ---- metadata, orientation, colour, alpha, outputs -----------------------------------------

// Compiled in tests/support/stb_write.cpp but declared only in stb's implementation section.
extern "C" unsigned char* stbi_zlib_compress(unsigned char* data, int data_len, int* out_len, int quality);

namespace {

void append(bytes& out, std::string_view s) { out.insert(out.end(), s.begin(), s.end()); }
void append(bytes& out, const bytes& b) { out.insert(out.end(), b.begin(), b.end()); }

img::pixels decoded(const bytes& b) {
    auto p = img::decode(b, 1'000'000'000);
    INFO((p ? std::string() : p.error().message));
    REQUIRE(p.has_value());
    return std::move(*p);
}

// Over the colour channels; 99 for identical images.
double psnr(const img::pixels& a, const img::pixels& b) {
    REQUIRE(a.width == b.width);
    REQUIRE(a.height == b.height);
    double se = 0;
    const std::size_t n = std::size_t(a.width) * a.height;
    for (std::size_t i = 0; i < n; ++i)
        for (int c = 0; c < 3; ++c) {
            const double d = double(a.data[i * a.channels + c]) - double(b.data[i * b.channels + c]);
            se += d * d;
        }
    if (se == 0) return 99.0;
    return 10.0 * std::log10(255.0 * 255.0 / (se / double(n * 3)));
}

// Over every channel; an image without alpha compares as opaque (a WebP encoder drops an alpha
// channel that is 255 everywhere, a PNG keeps it).
int max_abs_diff(const img::pixels& a, const img::pixels& b) {
    REQUIRE(a.width == b.width);
    REQUIRE(a.height == b.height);
    const std::size_t n = std::size_t(a.width) * a.height;
    int m = 0;
    for (std::size_t i = 0; i < n; ++i)
        for (int c = 0; c < 4; ++c) {
            const int va = c < a.channels ? a.data[i * a.channels + c] : 255;
            const int vb = c < b.channels ? b.data[i * b.channels + c] : 255;
            m = std::max(m, std::abs(va - vb));
        }
    return m;
}

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

// An EXIF block: IFD0 with ImageWidth and Orientation entries.
bytes exif_block(int orientation, bool big_endian, int type = 3, bool exif_prefix = true) {
    bytes t;
    if (exif_prefix) append(t, std::string_view("Exif\0\0", 6));
    auto u16 = [&](std::uint32_t v) {
        if (big_endian) t.push_back(std::uint8_t(v >> 8)), t.push_back(std::uint8_t(v));
        else t.push_back(std::uint8_t(v)), t.push_back(std::uint8_t(v >> 8));
    };
    auto u32 = [&](std::uint32_t v) {
        if (big_endian) u16(v >> 16), u16(v & 0xFFFF);
        else u16(v & 0xFFFF), u16(v >> 16);
    };
    append(t, big_endian ? std::string_view("MM\0*", 4) : std::string_view("II*\0", 4));
    u32(8);
    u16(2);
    u16(0x0100), u16(4), u32(1), u32(640);  // ImageWidth, LONG
    u16(0x0112), u16(std::uint32_t(type)), u32(1);
    if (type == 4) u32(std::uint32_t(orientation));
    else u16(std::uint32_t(orientation)), u16(0);
    u32(0);  // no IFD1
    return t;
}

// A JPEG with extra marker segments right after SOI.
bytes with_jpeg_segments(const bytes& jpeg, const std::vector<std::pair<std::uint8_t, bytes>>& segments) {
    bytes out(jpeg.begin(), jpeg.begin() + 2);
    for (const auto& [marker, payload] : segments) {
        out.push_back(0xFF);
        out.push_back(marker);
        const std::size_t len = payload.size() + 2;
        out.push_back(std::uint8_t(len >> 8));
        out.push_back(std::uint8_t(len));
        append(out, payload);
    }
    out.insert(out.end(), jpeg.begin() + 2, jpeg.end());
    return out;
}

bytes icc_segment(const bytes& profile, std::size_t from, std::size_t n, int seq, int count) {
    bytes p;
    append(p, std::string_view("ICC_PROFILE\0", 12));
    p.push_back(std::uint8_t(seq));
    p.push_back(std::uint8_t(count));
    p.insert(p.end(), profile.begin() + from, profile.begin() + from + n);
    return p;
}

bytes png_chunk(std::string_view type, const bytes& body) {
    bytes out;
    put_be32(out, std::uint32_t(body.size()));
    bytes typed = to_bytes(type);
    append(typed, body);
    append(out, typed);
    put_be32(out, crc32(typed.data(), typed.size()));
    return out;
}

// Chunks inserted right after IHDR.
bytes with_png_chunks(const bytes& png, const std::vector<bytes>& chunks) {
    bytes out(png.begin(), png.begin() + 33);
    for (const auto& c : chunks) append(out, c);
    out.insert(out.end(), png.begin() + 33, png.end());
    return out;
}

bytes zlib(const bytes& data) {
    int n = 0;
    unsigned char* z = stbi_zlib_compress(const_cast<std::uint8_t*>(data.data()), int(data.size()), &n, 8);
    REQUIRE(z != nullptr);
    bytes out(z, z + n);
    std::free(z);
    return out;
}

bytes iccp_body(const bytes& profile) {
    bytes b = to_bytes("icc");
    b.push_back(0);
    b.push_back(0);  // deflate
    append(b, zlib(profile));
    return b;
}

bytes webp_lossless(const img::pixels& p) {
    std::uint8_t* out = nullptr;
    const std::size_t n = p.channels == 4
                              ? WebPEncodeLosslessRGBA(p.data.data(), p.width, p.height, p.width * 4, &out)
                              : WebPEncodeLosslessRGB(p.data.data(), p.width, p.height, p.width * 3, &out);
    REQUIRE(n > 0);
    bytes b(out, out + n);
    WebPFree(out);
    return b;
}

// The extended (VP8X) container around a simple WebP, with optional ICCP and EXIF chunks.
bytes webp_extended(const bytes& simple, int w, int h, bool alpha, const bytes* icc, const bytes* exif) {
    auto chunk = [](bytes& out, std::string_view type, const bytes& body) {
        append(out, type);
        for (int s = 0; s < 32; s += 8) out.push_back(std::uint8_t(body.size() >> s));
        append(out, body);
        if (body.size() & 1) out.push_back(0);
    };
    bytes vp8x(10, 0);
    vp8x[0] = std::uint8_t((icc ? 0x20 : 0) | (alpha ? 0x10 : 0) | (exif ? 0x08 : 0));
    for (int s = 0; s < 3; ++s) vp8x[4 + s] = std::uint8_t((w - 1) >> (8 * s)), vp8x[7 + s] = std::uint8_t((h - 1) >> (8 * s));
    bytes body = to_bytes("WEBP");
    chunk(body, "VP8X", vp8x);
    if (icc) chunk(body, "ICCP", *icc);
    body.insert(body.end(), simple.begin() + 12, simple.end());  // the bitstream chunk as it was
    if (exif) chunk(body, "EXIF", *exif);
    bytes out = to_bytes("RIFF");
    for (int s = 0; s < 32; s += 8) out.push_back(std::uint8_t(body.size() >> s));
    append(out, body);
    return out;
}

// ---- ICC profiles made with Little CMS ----

bytes save_profile(cmsHPROFILE h) {
    REQUIRE(h != nullptr);
    cmsUInt32Number n = 0;
    REQUIRE(cmsSaveProfileToMem(h, nullptr, &n));
    bytes b(n);
    REQUIRE(cmsSaveProfileToMem(h, b.data(), &n));
    cmsCloseProfile(h);
    return b;
}

cmsToneCurve* srgb_curve() {
    const cmsFloat64Number params[5] = {2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045};
    return cmsBuildParametricToneCurve(nullptr, 4, params);
}

// sRGB with the red and green primaries exchanged: device (r, g, b) is sRGB (g, r, b).
bytes swapped_rgb_profile() {
    const cmsCIExyY d65{0.3127, 0.3290, 1.0};
    const cmsCIExyYTRIPLE primaries{{0.30, 0.60, 1.0}, {0.64, 0.33, 1.0}, {0.15, 0.06, 1.0}};
    cmsToneCurve* c = srgb_curve();
    cmsToneCurve* curves[3] = {c, c, c};
    cmsHPROFILE h = cmsCreateRGBProfile(&d65, &primaries, curves);
    cmsFreeToneCurve(c);
    return save_profile(h);
}

// Grey with a linear (gamma 1) curve: device 128 is sRGB 188.
bytes linear_grey_profile() {
    cmsToneCurve* g = cmsBuildGamma(nullptr, 1.0);
    cmsHPROFILE h = cmsCreateGrayProfile(cmsD50_xyY(), g);
    cmsFreeToneCurve(g);
    return save_profile(h);
}

// A CMYK profile whose inks are not what they say: it maps CMYK to the naive RGB with the channels
// rotated (r, g, b) -> (g, b, r), so pure cyan ink shows as yellow (and magenta as cyan).
bytes odd_cmyk_profile() {
    cmsHPROFILE srgb = cmsCreate_sRGBProfile(), lab = cmsCreateLab4Profile(nullptr);
    cmsHTRANSFORM t = cmsCreateTransform(srgb, TYPE_RGB_DBL, lab, TYPE_Lab_DBL, INTENT_RELATIVE_COLORIMETRIC, 0);
    REQUIRE(t != nullptr);
    constexpr int g = 5;
    std::vector<cmsUInt16Number> table(g * g * g * g * 3);
    std::size_t i = 0;
    for (int c = 0; c < g; ++c)
        for (int m = 0; m < g; ++m)
            for (int y = 0; y < g; ++y)
                for (int k = 0; k < g; ++k, ++i) {
                    const double C = c / (g - 1.0), M = m / (g - 1.0), Y = y / (g - 1.0), K = k / (g - 1.0);
                    const double rgb[3] = {(1 - M) * (1 - K), (1 - Y) * (1 - K), (1 - C) * (1 - K)};
                    cmsCIELab L;
                    cmsDoTransform(t, rgb, &L, 1);
                    cmsFloat2LabEncoded(&table[i * 3], &L);
                }
    cmsDeleteTransform(t);
    cmsCloseProfile(srgb);
    cmsCloseProfile(lab);
    cmsHPROFILE h = cmsCreateProfilePlaceholder(nullptr);
    cmsSetProfileVersion(h, 4.3);
    cmsSetDeviceClass(h, cmsSigOutputClass);
    cmsSetColorSpace(h, cmsSigCmykData);
    cmsSetPCS(h, cmsSigLabData);
    // lutAtoBType wants curves around the CLUT (A curves, CLUT, B curves); identity ones here.
    cmsPipeline* lut = cmsPipelineAlloc(nullptr, 4, 3);
    cmsPipelineInsertStage(lut, cmsAT_END, cmsStageAllocToneCurves(nullptr, 4, nullptr));
    cmsPipelineInsertStage(lut, cmsAT_END, cmsStageAllocCLut16bit(nullptr, g, 4, 3, table.data()));
    cmsPipelineInsertStage(lut, cmsAT_END, cmsStageAllocToneCurves(nullptr, 3, nullptr));
    REQUIRE(cmsWriteTag(h, cmsSigAToB0Tag, lut));
    REQUIRE(cmsWriteTag(h, cmsSigMediaWhitePointTag, cmsD50_XYZ()));
    cmsPipelineFree(lut);
    return save_profile(h);
}

// A CMYK JPEG the way Photoshop writes it: Adobe marker, inks stored inverted (255 = no ink).
bytes cmyk_jpeg(int w, int h, std::array<std::uint8_t, 4> ink, const bytes* icc) {
    jpeg_compress_struct cinfo{};
    jpeg_error_mgr err{};
    cinfo.err = jpeg_std_error(&err);
    jpeg_create_compress(&cinfo);
    unsigned char* out = nullptr;
    unsigned long size = 0;
    jpeg_mem_dest(&cinfo, &out, &size);
    cinfo.image_width = w;
    cinfo.image_height = h;
    cinfo.input_components = 4;
    cinfo.in_color_space = JCS_CMYK;
    jpeg_set_defaults(&cinfo);  // writes an Adobe marker for CMYK
    jpeg_set_quality(&cinfo, 95, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    if (icc) jpeg_write_icc_profile(&cinfo, icc->data(), unsigned(icc->size()));
    bytes row(std::size_t(w) * 4);
    for (int x = 0; x < w; ++x)
        for (int c = 0; c < 4; ++c) row[std::size_t(x) * 4 + c] = std::uint8_t(255 - ink[c]);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW r = row.data();
        jpeg_write_scanlines(&cinfo, &r, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    bytes result(out, out + size);
    std::free(out);
    return result;
}

constexpr std::array<int, 9> inverse_orientation{1, 1, 2, 3, 4, 5, 8, 7, 6};

bool contains(const bytes& haystack, std::initializer_list<std::uint8_t> needle) {
    return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end()) != haystack.end();
}

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

TEST_CASE("ICC profiles convert to sRGB", "[image][colour]") {
    const bytes swapped = swapped_rgb_profile();
    img::pixels src{4, 2, 3, {}};
    for (int i = 0; i < 8; ++i) append(src.data, bytes{200, 100, 50});
    SECTION("convert_to_srgb: RGB and RGBA, in place") {
        img::pixels p = src;
        REQUIRE(img::convert_to_srgb(p, swapped));
        for (std::size_t i = 0; i < 8; ++i) {
            CHECK(std::abs(int(p.data[i * 3]) - 100) <= 1);
            CHECK(std::abs(int(p.data[i * 3 + 1]) - 200) <= 1);
            CHECK(std::abs(int(p.data[i * 3 + 2]) - 50) <= 1);
        }
        img::pixels a{1, 1, 4, {200, 100, 50, 77}};
        REQUIRE(img::convert_to_srgb(a, swapped));
        CHECK(std::abs(int(a.data[0]) - 100) <= 1);
        CHECK(a.data[3] == 77);  // alpha copied
    }
    SECTION("unusable or mismatched profiles leave the pixels alone") {
        img::pixels p = src;
        CHECK_FALSE(img::convert_to_srgb(p, to_bytes("not a profile at all, but long enough to look like one? no")));
        bytes cut = swapped;
        cut.resize(cut.size() / 2);
        CHECK_FALSE(img::convert_to_srgb(p, cut));
        CHECK_FALSE(img::convert_to_srgb(p, linear_grey_profile()));  // grey profile, RGB pixels
        CHECK_FALSE(img::convert_to_srgb(p, odd_cmyk_profile()));
        bytes garbage = swapped;
        std::mt19937 rng(3);
        for (int i = 0; i < 300; ++i) {
            garbage = swapped;
            for (int k = 0; k < 4; ++k) garbage[rng() % garbage.size()] = std::uint8_t(rng());
            img::pixels q = src;
            (void)img::convert_to_srgb(q, garbage);  // must not crash; any result is acceptable
        }
        CHECK(p.data == src.data);
    }
    SECTION("grey profiles apply to grey sources") {
        img::pixels g{2, 1, 4, {128, 128, 128, 255, 0, 0, 0, 10}};
        REQUIRE(img::convert_to_srgb(g, linear_grey_profile(), true));
        CHECK(std::abs(int(g.data[0]) - 188) <= 1);
        CHECK(g.data[0] == g.data[1]);
        CHECK(g.data[3] == 255);
        CHECK(g.data[4] == 0);
        CHECK(g.data[7] == 10);
    }
    SECTION("in JPEG, PNG and WebP files") {
        const img::pixels red = [] {
            img::pixels p{16, 16, 3, {}};
            for (int i = 0; i < 256; ++i) append(p.data, bytes{200, 100, 50});
            return p;
        }();
        const bytes jpeg = with_jpeg_segments(unwrap(img::encode_jpeg(red, 95)),
                                              {{0xE2, icc_segment(swapped, 0, swapped.size(), 1, 1)}});
        const bytes png = with_png_chunks(unwrap(img::encode_png(red)), {png_chunk("iCCP", iccp_body(swapped))});
        const bytes webp = webp_extended(webp_lossless(red), 16, 16, false, &swapped, nullptr);
        for (const bytes* f : {&jpeg, &png, &webp}) {
            INFO(img::to_string(img::sniff(*f)));
            const auto p = decoded(*f);
            CHECK(std::abs(int(p.data[0]) - 100) <= 3);
            CHECK(std::abs(int(p.data[1]) - 200) <= 3);
            auto t = img::make_thumbnails(*f, {.boxes = {{8, 8}}, .fmt = img::out_format::png});
            REQUIRE(t.has_value());
            const auto q = decoded(t->outputs[0].bytes);
            CHECK(std::abs(int(q.data[0]) - 100) <= 3);
            CHECK(std::abs(int(q.data[1]) - 200) <= 3);
        }
    }
    SECTION("a grey PNG with a grey profile") {
        const bytes png = [] {
            bytes out;
            stbi_write_png_to_func(
                [](void* ctx, void* d, int n) {
                    auto* b = static_cast<std::uint8_t*>(d);
                    static_cast<bytes*>(ctx)->insert(static_cast<bytes*>(ctx)->end(), b, b + n);
                },
                &out, 4, 4, 1, bytes(16, 128).data(), 4);
            return out;
        }();
        const auto p = decoded(with_png_chunks(png, {png_chunk("iCCP", iccp_body(linear_grey_profile()))}));
        CHECK(std::abs(int(p.data[0]) - 188) <= 1);
        CHECK(p.data[0] == p.data[2]);
    }
}

TEST_CASE("CMYK JPEGs: through the embedded profile, else the Adobe-inverted formula", "[image][colour]") {
    const std::array<std::uint8_t, 4> cyan{255, 0, 0, 0}, magenta{0, 255, 0, 0};
    auto near = [](const img::pixels& p, int r, int g, int b) {
        INFO("got " << int(p.data[0]) << "," << int(p.data[1]) << "," << int(p.data[2]));
        return std::abs(p.data[0] - r) <= 8 && std::abs(p.data[1] - g) <= 8 && std::abs(p.data[2] - b) <= 8;
    };
    CHECK(near(decoded(cmyk_jpeg(16, 16, cyan, nullptr)), 0, 255, 255));
    CHECK(near(decoded(cmyk_jpeg(16, 16, magenta, nullptr)), 255, 0, 255));
    const bytes odd = odd_cmyk_profile();
    CHECK(near(decoded(cmyk_jpeg(16, 16, cyan, &odd)), 255, 255, 0));     // the profile says cyan ink is yellow
    CHECK(near(decoded(cmyk_jpeg(16, 16, magenta, &odd)), 0, 255, 255));  // and magenta is cyan
    // With shrink-on-load too.
    auto t = img::make_thumbnails(cmyk_jpeg(64, 64, cyan, &odd), {.boxes = {{8, 8}}, .fmt = img::out_format::png});
    REQUIRE(t.has_value());
    CHECK(near(decoded(t->outputs[0].bytes), 255, 255, 0));
    // An RGB profile on a CMYK image does not apply: the formula is used.
    const bytes rgb = swapped_rgb_profile();
    CHECK(near(decoded(cmyk_jpeg(16, 16, cyan, &rgb)), 0, 255, 255));
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

// ---- testdata: orientation, colour, quality against libvips ----------------------------------

TEST_CASE("testdata: the eight EXIF orientations give the same upright picture", "[image][testdata][exif]") {
    QT_REQUIRE_SHARED_TESTDATA(dir);
    const auto folder = dir / "images/exif";
    // Landscape_1 has no profile and is the sRGB rendering; 2..8 carry "Generic RGB", which the
    // decoder converts to sRGB. The eight files are separate encodes that differ by themselves:
    // libvips' autorot + icc_transform of Landscape_2 is 24.8 dB from Landscape_1. So "the same
    // picture" is: upright, close to Landscape_1, and far closer than any flip of it would be.
    const bytes one = qt_test::read_file(folder / "Landscape_1.jpg");
    const img::pixels ref = decoded(one);
    auto ref_thumb = img::make_thumbnails(one, {.fmt = img::out_format::png});
    REQUIRE(ref_thumb.has_value());
    const img::pixels ref_small = decoded(ref_thumb->outputs[0].bytes);
    // The PSNR of `p` against `r`, and the best one any other same-sized orientation of p reaches.
    auto upright_margin = [](const img::pixels& p, const img::pixels& r) {
        double wrong = 0;
        for (int other : {2, 3, 4}) wrong = std::max(wrong, psnr(img::apply_orientation(p, other), r));
        return std::pair{psnr(p, r), wrong};
    };
    for (int o = 2; o <= 8; ++o) {
        const auto path = folder / ("Landscape_" + std::to_string(o) + ".jpg");
        INFO(path.string());
        const bytes data = qt_test::read_file(path);
        auto h = img::read_header(data);
        REQUIRE(h.has_value());
        CHECK(h->orientation == o);
        CHECK(h->width == 600);
        CHECK(h->height == 450);
        const auto [full, full_wrong] = upright_margin(decoded(data), ref);
        CHECK(full >= 22);
        CHECK(full >= full_wrong + 6);
        auto t = img::make_thumbnails(data, {.fmt = img::out_format::png});
        REQUIRE(t.has_value());
        CHECK(t->source.orientation == o);
        CHECK(t->outputs[0].width == ref_small.width);
        CHECK(t->outputs[0].height == ref_small.height);
        const auto [small, small_wrong] = upright_margin(decoded(t->outputs[0].bytes), ref_small);
        CHECK(small >= 22);
        CHECK(small >= small_wrong + 6);
        if (std::getenv("QT_PRINT_PSNR"))
            std::printf("orientation %d: PSNR full %.1f dB (best flip %.1f), 256px %.1f dB (best flip %.1f)\n", o,
                        full, full_wrong, small, small_wrong);
    }
}

TEST_CASE("testdata: wide-gamut and grey profiles convert to the sRGB values libvips computes", "[image][testdata][colour]") {
    QT_REQUIRE_SHARED_TESTDATA(dir);
    // From `vips icc_transform FILE out.v srgb --embedded` and `vips getpoint out.v 0 0`.
    const auto p3 = decoded(qt_test::read_file(dir / "images/formats/p3.png"));
    CHECK(std::abs(int(p3.data[0]) - 255) <= 2);
    CHECK(p3.data[1] <= 2);
    CHECK(p3.data[2] <= 2);
    const auto pro = decoded(qt_test::read_file(dir / "images/formats/prophoto.png"));
    CHECK(std::abs(int(pro.data[0]) - 117) <= 2);
    CHECK(std::abs(int(pro.data[1]) - 160) <= 2);
    CHECK(std::abs(int(pro.data[2]) - 210) <= 2);
    const auto grey = decoded(qt_test::read_file(dir / "images/formats/16-bit-grey-alpha.png"));
    CHECK(grey.channels == 4);
}

namespace {

bool have_vipsthumbnail() { return std::system("command -v vipsthumbnail >/dev/null 2>&1") == 0; }

}  // namespace

TEST_CASE("testdata: 256 px thumbnails match vipsthumbnail's, PSNR >= 32 dB", "[image][testdata][vips]") {
    QT_REQUIRE_SHARED_TESTDATA(dir);
    if (!have_vipsthumbnail()) {
        WARN("SKIPPED: vipsthumbnail is not installed (Debian: libvips-tools); no comparison with libvips");
        return;
    }
    const auto tmp = std::filesystem::temp_directory_path() /
                     ("quickthumb-vips-" + std::to_string(std::random_device{}()));
    std::filesystem::create_directories(tmp);
    struct cleanup {
        std::filesystem::path p;
        ~cleanup() {
            std::error_code ec;
            std::filesystem::remove_all(p, ec);
        }
    } guard{tmp};
    double min_psnr = 99, sum = 0;
    int count = 0;
    for (const auto& sub : {"images/photos", "images/exif"})
        for (const auto& path : files_in(dir / sub)) {
            if (path.filename() == "testimgl.jpg") continue;  // lossless JPEG: neither side decodes it
            INFO(path.string());
            auto ours = img::make_thumbnails(qt_test::read_file(path), {.fmt = img::out_format::png});
            REQUIRE(ours.has_value());
            const auto out = tmp / (path.stem().string() + ".png");
            const std::string cmd =
                "vipsthumbnail '" + path.string() + "' -s 256 -o '" + out.string() + "' >/dev/null 2>&1";
            REQUIRE(std::system(cmd.c_str()) == 0);
            const auto theirs = decoded(qt_test::read_file(out));
            const auto mine = decoded(ours->outputs[0].bytes);
            REQUIRE(mine.width == theirs.width);
            REQUIRE(mine.height == theirs.height);
            const double p = psnr(mine, theirs);
            CHECK(p >= 32.0);
            if (std::getenv("QT_PRINT_PSNR"))
                std::printf("%-28s %4dx%-4d PSNR %.2f dB\n", path.filename().c_str(), mine.width, mine.height, p);
            min_psnr = std::min(min_psnr, p);
            sum += p;
            ++count;
        }
    CHECK(count >= 13);
    if (std::getenv("QT_PRINT_PSNR")) std::printf("vips comparison: %d images, min %.2f dB, mean %.2f dB\n", count, min_psnr, sum / count);
}
