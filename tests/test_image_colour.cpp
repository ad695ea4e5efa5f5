// Tests of the image engine's colour management: ICC profiles to sRGB, CMYK JPEGs.
#include <catch2/catch.hpp>

#include "quickthumb/image.hpp"
#include "support/icc_profiles.hpp"
#include "support/image_chunks.hpp"
#include "support/image_codec.hpp"

#include <lcms2.h>
#include <stb_image_write.h>

#include <cstdio>  // jpeglib.h needs FILE
#include <jpeglib.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <vector>

namespace img = quickthumb::image;
using namespace qt_test;

namespace {

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

}  // namespace

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
