// Tests of how the image engine refuses bad input: truncated, damaged, random, oversized, unsupported.
#include <catch2/catch.hpp>

#include "quickthumb/image.hpp"
#include "support/image_chunks.hpp"
#include "support/image_codec.hpp"

#include <chrono>
#include <cstdint>
#include <random>
#include <string_view>

namespace img = quickthumb::image;
using quickthumb::errc;
using namespace qt_test;

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
