// libFuzzer target for one image decoder entry point, through the public image API: sniff, header,
// decode, and the whole thumbnail pipeline, with a small pixel limit so no input can take much
// memory. QT_FUZZ_FORMAT (jpeg, png, gif, bmp, webp) names the format: its magic bytes are written
// over the input's first bytes, so the fuzzer stays inside that decoder instead of mutating the
// magic away.
#include "quickthumb/image.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

namespace image = quickthumb::image;

namespace {

constexpr std::int64_t max_pixels = 1 << 20;

// Writes `magic` at `at` (a no-op when the input is too short to hold it).
void put(std::vector<std::uint8_t>& d, std::size_t at, std::string_view magic) {
    if (d.size() >= at + magic.size()) std::memcpy(d.data() + at, magic.data(), magic.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::vector<std::uint8_t> d(data, data + size);
    const std::string_view fmt = QT_FUZZ_FORMAT;
    if (fmt == "jpeg") put(d, 0, "\xFF\xD8\xFF");
    else if (fmt == "png") put(d, 0, "\x89PNG\r\n\x1a\n");
    else if (fmt == "gif") { if (d.size() >= 4 && std::memcmp(d.data(), "GIF8", 4) != 0) put(d, 0, "GIF89a"); }
    else if (fmt == "bmp") put(d, 0, "BM");
    else if (fmt == "webp") { put(d, 0, "RIFF"); put(d, 8, "WEBP"); }
    const std::span<const std::uint8_t> in(d);

    auto header = image::read_header(in);
    if (!header) return 0;
    if (header->width < 1 || header->height < 1 || header->orientation < 1 || header->orientation > 8) std::abort();
    // Decoded whole and at a DCT scale (JPEG); the header's size must be what comes out.
    if (auto px = image::decode(in, max_pixels, 16, 16)) {
        if (px->width < 1 || px->height < 1 ||
            px->data.size() != std::size_t(px->width) * std::size_t(px->height) * std::size_t(px->channels))
            std::abort();
    }
    image::thumbnails_request req;
    req.boxes = {image::size{32, 32}, image::size{0, 24}};
    req.mode = image::fit::cover;
    req.keep_metadata = true;
    req.max_pixels = max_pixels;
    if (auto t = image::make_thumbnails(in, req)) {
        if (t->outputs.size() != 2) std::abort();
        for (const auto& o : t->outputs)
            if (o.bytes.empty() || o.width < 1 || o.height < 1) std::abort();
    }
    return 0;
}
