#pragma once
// Encoding and decoding in image tests, in one call that fails the test (instead of throwing or
// returning an error) when the codec refuses.
#include "quickthumb/image.hpp"
#include "support/image_files.hpp"
#include "support/synthetic.hpp"

#include <catch2/catch.hpp>
#include <webp/encode.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace qt_test {

inline bytes to_bytes(std::string_view s) { return {s.begin(), s.end()}; }

inline void append(bytes& out, std::string_view s) { out.insert(out.end(), s.begin(), s.end()); }
inline void append(bytes& out, const bytes& b) { out.insert(out.end(), b.begin(), b.end()); }

// Catch-friendly: a failed encode fails the test instead of throwing.
inline bytes unwrap(quickthumb::result<bytes> r) {
    INFO((r ? std::string() : r.error().message));
    REQUIRE(r.has_value());
    return std::move(*r);
}

// A gradient (see synthetic.hpp) through the project's own encoders.
inline bytes jpeg_of(int w, int h, int quality = 90) {
    return unwrap(quickthumb::image::encode_jpeg(gradient(w, h, 3), quality));
}
inline bytes png_of(int w, int h, int channels) {
    return unwrap(quickthumb::image::encode_png(gradient(w, h, channels)));
}

// The project only writes baseline JPEG; tests also need a progressive one, and one with a
// (valid) absurd number of scans.
inline bytes progressive_jpeg_of(int w, int h, bool scan_bomb = false) {
    return qt_test::jpeg_file(gradient(w, h, 3), {.quality = 75, .progressive = true, .scan_bomb = scan_bomb});
}

// Lossless, so that a test can compare the decoded pixels exactly.
inline bytes webp_lossless(const quickthumb::image::pixels& p) {
    std::uint8_t* out = nullptr;
    const std::size_t n = p.channels == 4
                              ? WebPEncodeLosslessRGBA(p.data.data(), p.width, p.height, p.width * 4, &out)
                              : WebPEncodeLosslessRGB(p.data.data(), p.width, p.height, p.width * 3, &out);
    REQUIRE(n > 0);
    bytes b(out, out + n);
    WebPFree(out);
    return b;
}

// Decodes with a generous pixel limit; fails the test (showing the message) when it cannot.
inline quickthumb::image::pixels decoded(const bytes& b) {
    auto p = quickthumb::image::decode(b, 1'000'000'000);
    INFO((p ? std::string() : p.error().message));
    REQUIRE(p.has_value());
    return std::move(*p);
}

}  // namespace qt_test
