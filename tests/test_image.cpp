// Tests of the image engine. Synthetic images are made with the project's own encoders.
#include <catch2/catch.hpp>

#include "quickthumb/image.hpp"
#include "support/testdata.hpp"

#include <stb_image_write.h>
#include <webp/encode.h>

#include <cstdio>  // jpeglib.h needs FILE
#include <jpeglib.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <random>
#include <string>

namespace img = quickthumb::image;
using quickthumb::errc;

namespace {

using bytes = std::vector<std::uint8_t>;

bytes to_bytes(std::string_view s) { return {s.begin(), s.end()}; }

// A smooth gradient; with 4 channels the alpha ramps too.
img::pixels gradient(int w, int h, int channels) {
    img::pixels p{w, h, channels, {}};
    p.data.resize(std::size_t(w) * h * channels);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            auto* px = &p.data[(std::size_t(y) * w + x) * channels];
            px[0] = static_cast<std::uint8_t>(x * 255 / std::max(w - 1, 1));
            px[1] = static_cast<std::uint8_t>(y * 255 / std::max(h - 1, 1));
            px[2] = 128;
            if (channels == 4) px[3] = static_cast<std::uint8_t>(55 + (x + y) * 200 / std::max(w + h - 2, 1));
        }
    return p;
}

// Catch-friendly: a failed encode fails the test instead of throwing.
bytes unwrap(quickthumb::result<bytes> r) {
    INFO((r ? std::string() : r.error().message));
    REQUIRE(r.has_value());
    return std::move(*r);
}

bytes jpeg_of(int w, int h, int quality = 90) { return unwrap(img::encode_jpeg(gradient(w, h, 3), quality)); }
bytes png_of(int w, int h, int channels) { return unwrap(img::encode_png(gradient(w, h, channels))); }

// The project only writes baseline JPEG; tests also need a progressive one, and one with a
// (valid) absurd number of scans. libjpeg's default error handler exits, which is acceptable for
// encoding known-good pixels in a test.
bytes progressive_jpeg_of(int w, int h, bool scan_bomb = false) {
    const auto src = gradient(w, h, 3);
    jpeg_compress_struct cinfo{};
    jpeg_error_mgr err{};
    cinfo.err = jpeg_std_error(&err);
    jpeg_create_compress(&cinfo);
    unsigned char* out = nullptr;
    unsigned long size = 0;
    jpeg_mem_dest(&cinfo, &out, &size);
    cinfo.image_width = w;
    cinfo.image_height = h;
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_simple_progression(&cinfo);
    std::vector<jpeg_scan_info> scans;
    if (scan_bomb) {  // DC, then every AC coefficient of every component alone, in 4 refinement steps
        scans.push_back({3, {0, 1, 2, 0}, 0, 0, 0, 0});
        for (int c = 0; c < 3; ++c)
            for (int k = 1; k < 64; ++k)
                for (int al = 3; al >= 0; --al) scans.push_back({1, {c, 0, 0, 0}, k, k, al == 3 ? 0 : al + 1, al});
        cinfo.scan_info = scans.data();
        cinfo.num_scans = static_cast<int>(scans.size());
    }
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = const_cast<std::uint8_t*>(src.data.data() + std::size_t(cinfo.next_scanline) * w * 3);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    bytes result(out, out + size);
    std::free(out);
    return result;
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

std::vector<std::filesystem::path> files_in(const std::filesystem::path& dir) {
    std::vector<std::filesystem::path> out;
    for (const auto& e : std::filesystem::directory_iterator(dir))
        if (e.is_regular_file()) out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
}

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
