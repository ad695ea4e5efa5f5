// The streaming decoders (src/image/png.cpp, gif.cpp, webp.cpp, decode.cpp): what they give, row
// by row, checked against independent decoders and expected pixels.
#include <catch2/catch.hpp>

#include "image/internal.hpp"
#include "quickthumb/image.hpp"
#include "support/gif_writer.hpp"
#include "support/synthetic.hpp"
#include "support/testdata.hpp"

#include <stb_image.h>
#include <webp/encode.h>

#include <cmath>
#include <cstdlib>
#include <memory>

namespace img = quickthumb::image;
namespace detail = quickthumb::image::detail;
using quickthumb::errc;

namespace {

using bytes = std::vector<std::uint8_t>;

// Collects the rows, and can stop after a number of them.
class collect final : public detail::row_sink {
public:
    explicit collect(int stop_after = -1) : stop_after_(stop_after) {}
    void begin(int w, int h, int ch) override {
        ++begins;
        px = img::pixels{w, h, ch, {}};
        px.data.reserve(std::size_t(w) * h * ch);
    }
    bool row(const std::uint8_t* d) override {
        px.data.insert(px.data.end(), d, d + std::size_t(px.width) * px.channels);
        ++rows;
        return rows != stop_after_;
    }
    img::pixels px;
    int begins = 0, rows = 0;

private:
    int stop_after_;
};

img::pixels rows_of(const bytes& data, int min_w = 0, int min_h = 0) {
    auto header = img::read_header(data);
    INFO((header ? std::string() : header.error().message));
    REQUIRE(header.has_value());
    collect sink;
    auto info = detail::decode_rows(data, *header, min_w, min_h, sink);
    INFO((info ? std::string() : info.error().message));
    REQUIRE(info.has_value());
    CHECK(sink.begins == 1);
    CHECK(sink.rows == sink.px.height);
    return std::move(sink.px);
}

// The colour of pixel i as RGBA, from 1, 3 or 4 channels.
std::array<int, 4> rgba_at(const img::pixels& p, std::size_t i) {
    const std::uint8_t* s = &p.data[i * p.channels];
    if (p.channels == 1) return {s[0], s[0], s[0], 255};
    if (p.channels == 3) return {s[0], s[1], s[2], 255};
    return {s[0], s[1], s[2], s[3]};
}

// The largest difference over the channels, ignoring the colour of fully transparent pixels.
int max_diff(const img::pixels& a, const img::pixels& b) {
    REQUIRE(a.width == b.width);
    REQUIRE(a.height == b.height);
    int m = 0;
    for (std::size_t i = 0; i < std::size_t(a.width) * a.height; ++i) {
        const auto x = rgba_at(a, i), y = rgba_at(b, i);
        const int channels = (x[3] == 0 && y[3] == 0) ? 0 : 4;
        for (int c = 0; c < channels; ++c) m = std::max(m, std::abs(x[c] - y[c]));
        if (channels == 0) m = std::max(m, std::abs(x[3] - y[3]));
    }
    return m;
}

}  // namespace

TEST_CASE("GIF: a frame streams line by line, interlaced or not, placed on a transparent canvas", "[image][gif]") {
    qt_test::gif_spec s;
    s.canvas_width = 40, s.canvas_height = 30;
    s.left = 5, s.top = 7, s.width = 23, s.height = 19;
    s.transparent = 3;
    s.palette = qt_test::ramp_palette();
    for (int y = 0; y < s.height; ++y)
        for (int x = 0; x < s.width; ++x) s.indexes.push_back(static_cast<std::uint8_t>((x * 11 + y * 5) % 256));
    for (bool interlaced : {false, true}) {
        INFO("interlaced " << interlaced);
        s.interlaced = interlaced;
        const auto px = rows_of(qt_test::write_gif(s));
        REQUIRE(px.channels == 4);
        REQUIRE(px.width == 40);
        REQUIRE(px.height == 30);
        int wrong = 0;
        for (int y = 0; y < 30; ++y)
            for (int x = 0; x < 40; ++x) {
                const std::uint8_t* p = &px.data[(std::size_t(y) * 40 + x) * 4];
                std::array<int, 4> want{0, 0, 0, 0};
                if (x >= 5 && x < 28 && y >= 7 && y < 26) {
                    const int i = s.indexes[std::size_t(y - 7) * 23 + (x - 5)];
                    if (i != 3) want = {s.palette[i * 3], s.palette[i * 3 + 1], s.palette[i * 3 + 2], 255};
                }
                for (int c = 0; c < 4; ++c) wrong += p[c] != want[c];
            }
        CHECK(wrong == 0);
    }
}

TEST_CASE("GIF: truncation is refused, a frame past the canvas is clipped, a stopping sink cancels", "[image][gif]") {
    qt_test::gif_spec s;
    s.canvas_width = 16, s.canvas_height = 16, s.width = 16, s.height = 16;
    s.palette = qt_test::ramp_palette();
    s.indexes.assign(256, 9);
    const bytes good = qt_test::write_gif(s);
    collect sink;
    auto header = img::read_header(good);
    REQUIRE(header.has_value());
    SECTION("cut in the middle of the pixels") {
        const bytes cut(good.begin(), good.begin() + static_cast<long>(good.size() / 2));
        auto r = detail::decode_rows(cut, *header, 0, 0, sink);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().code == errc::corrupt_image);
    }
    SECTION("a frame past the canvas edge is clipped to it, as browsers show it") {
        bytes b = good;
        // Image descriptor: ',' left(2) top(2) width(2) height(2); the left edge moved to 8.
        const auto at = std::find(b.begin() + 13 + 256 * 3, b.end(), std::uint8_t{','});
        REQUIRE(at != b.end());
        at[1] = 8;
        auto r = detail::decode_rows(b, *header, 0, 0, sink);
        REQUIRE(r.has_value());
        REQUIRE(sink.px.width == 16);
        for (int x : {0, 7, 8, 15}) {
            INFO("x " << x);
            const std::uint8_t* p = &sink.px.data[std::size_t(x) * 4];
            CHECK(int(p[3]) == (x >= 8 ? 255 : 0));
            if (x >= 8) CHECK(int(p[0]) == 9);
        }
    }
    SECTION("a sink that stops ends the decode as cancelled") {
        collect stopping(5);
        auto r = detail::decode_rows(good, *header, 0, 0, stopping);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().code == errc::cancelled);
        CHECK(stopping.rows == 5);
    }
}

TEST_CASE("testdata: the first frame of every GIF of the GIF test suite is its expected frame", "[image][gif][testdata]") {
    QT_REQUIRE_SHARED_TESTDATA(dir);
    int compared = 0;
    for (const auto& path : qt_test::files_in(dir / "gif-test-suite/gifs")) {
        INFO(path.filename().string());
        const auto expected_path = dir / "gif-test-suite/gifs/frames" / (path.stem().string() + "-0.png");
        if (!std::filesystem::exists(expected_path)) continue;
        const auto got = rows_of(qt_test::read_file(path));
        const auto want = rows_of(qt_test::read_file(expected_path));
        CHECK(max_diff(got, want) == 0);
        ++compared;
    }
    CHECK(compared >= 11);
}

TEST_CASE("testdata: libspng, row by row, gives the pixels stb_image gives for all of PngSuite", "[image][png][testdata]") {
    QT_REQUIRE_SHARED_TESTDATA(dir);
    int compared = 0;
    for (const auto& path : qt_test::files_in(dir / "pngsuite")) {
        if (path.extension() != ".png" || path.filename().string().starts_with("x")) continue;
        INFO(path.filename().string());
        const bytes data = qt_test::read_file(path);
        const auto got = rows_of(data);
        int w = 0, h = 0, comp = 0;
        std::unique_ptr<stbi_uc, decltype(&stbi_image_free)> ref(
            stbi_load_from_memory(data.data(), static_cast<int>(data.size()), &w, &h, &comp, got.channels),
            &stbi_image_free);
        REQUIRE(ref);
        const img::pixels want{w, h, got.channels, bytes(ref.get(), ref.get() + std::size_t(w) * h * got.channels)};
        CHECK(max_diff(got, want) == 0);
        ++compared;
    }
    CHECK(compared > 150);
}

TEST_CASE("testdata: an interlaced PNG decodes to the same pixels as its non-interlaced twin", "[image][png][testdata]") {
    QT_REQUIRE_SHARED_TESTDATA(dir);
    int pairs = 0;
    for (const auto& path : qt_test::files_in(dir / "pngsuite")) {
        const std::string name = path.filename().string();
        if (!name.starts_with("basi")) continue;
        const auto twin = path.parent_path() / ("basn" + name.substr(4));
        if (!std::filesystem::exists(twin)) continue;
        INFO(name);
        CHECK(max_diff(rows_of(qt_test::read_file(path)), rows_of(qt_test::read_file(twin))) == 0);
        ++pairs;
    }
    CHECK(pairs >= 10);
}

TEST_CASE("WebP: a still image decodes straight at the reduced size the pipeline asks for", "[image][webp]") {
    const auto src = qt_test::gradient(1200, 800, 3);
    std::uint8_t* out = nullptr;
    const std::size_t n = WebPEncodeRGB(src.data.data(), 1200, 800, 1200 * 3, 90, &out);
    REQUIRE(n > 0);
    const bytes data(out, out + n);
    WebPFree(out);
    CHECK(detail::webp_decode_size(1200, 800, 300, 0) == img::size{300, 200});
    CHECK(detail::webp_decode_size(1200, 800, 0, 201) == img::size{302, 201});
    CHECK(detail::webp_decode_size(1200, 800, 2000, 10) == img::size{1200, 800});
    const auto small = rows_of(data, 300, 150);
    CHECK(small.width == 300);
    CHECK(small.height == 200);
    // The 256 px thumbnail made through the scaled decode is the one made from the whole image.
    img::thumbnails_request req;
    auto scaled = img::make_thumbnails(data, req);
    REQUIRE(scaled.has_value());
    const auto whole = img::decode(data, 100'000'000);
    REQUIRE(whole.has_value());
    const auto reference = img::resize(*whole, {0, 0, 1200, 800}, {256, 171});
    const auto thumb = img::decode(scaled->outputs.front().bytes, 1'000'000);
    REQUIRE(thumb.has_value());
    CHECK(max_diff(*thumb, reference) <= 8);
}
