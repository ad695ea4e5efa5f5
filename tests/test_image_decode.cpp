// Tests of the image engine's decoding: format sniffing, headers, round trips of every format, shrink-on-load.
#include <catch2/catch.hpp>

#include "quickthumb/image.hpp"
#include "support/image_chunks.hpp"
#include "support/image_codec.hpp"

#include <stb_image_write.h>
#include <webp/encode.h>

#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace img = quickthumb::image;
using quickthumb::errc;
using namespace qt_test;

namespace {

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
