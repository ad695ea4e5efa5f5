// Tests of the image engine on ../shared/testdata: photos, formats, PngSuite, broken files, libvips' results.
#include <catch2/catch.hpp>

#include "quickthumb/image.hpp"
#include "support/image_codec.hpp"
#include "support/image_compare.hpp"
#include "support/testdata.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <utility>

namespace img = quickthumb::image;
using quickthumb::errc;
using namespace qt_test;

namespace {

bool is_png_name(const std::filesystem::path& p) { return p.extension() == ".png"; }

bool have_vipsthumbnail() { return std::system("command -v vipsthumbnail >/dev/null 2>&1") == 0; }

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
