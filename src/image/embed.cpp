// keep_metadata: an EXIF block added to what our own encoders wrote. The containers are simple
// enough to splice directly, which avoids a second encoder path per format.
#include "internal.hpp"

#include <cstring>
#include <string_view>

namespace quickthumb::image {
namespace {

using bytes = std::vector<std::uint8_t>;

bool starts_with(const bytes& d, std::size_t at, std::string_view s) {
    return d.size() >= at + s.size() && std::memcmp(d.data() + at, s.data(), s.size()) == 0;
}

void put_le(bytes& out, std::uint32_t v, int n) {
    for (int i = 0; i < n; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
void put_be32(bytes& out, std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(v >> s));
}
std::uint32_t le32(const std::uint8_t* p) {
    return std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 | std::uint32_t(p[3]) << 24;
}

error not_ours(std::string_view what) {
    return error{errc::internal, "cannot add EXIF: the encoded " + std::string(what) + " is not in the expected layout"};
}

result<bytes> jpeg_with_exif(const bytes& jpeg, std::span<const std::uint8_t> exif) {
    if (!starts_with(jpeg, 0, "\xFF\xD8")) return not_ours("JPEG");
    if (exif.size() + 8 > 0xFFFF) return error{errc::invalid_option, "the EXIF block is too large for JPEG"};
    bytes out(jpeg.begin(), jpeg.begin() + 2);
    const std::size_t len = 2 + 6 + exif.size();
    out.insert(out.end(), {0xFF, 0xE1, static_cast<std::uint8_t>(len >> 8), static_cast<std::uint8_t>(len)});
    out.insert(out.end(), {'E', 'x', 'i', 'f', 0, 0});
    out.insert(out.end(), exif.begin(), exif.end());
    out.insert(out.end(), jpeg.begin() + 2, jpeg.end());
    return out;
}

result<bytes> png_with_exif(const bytes& png, std::span<const std::uint8_t> exif) {
    constexpr std::size_t ihdr_end = 8 + 8 + 13 + 4;  // signature, IHDR length+type, body, CRC
    if (!starts_with(png, 0, "\x89PNG\r\n\x1A\n") || !starts_with(png, 12, "IHDR") || png.size() < ihdr_end)
        return not_ours("PNG");
    bytes out(png.begin(), png.begin() + ihdr_end);
    put_be32(out, static_cast<std::uint32_t>(exif.size()));
    const std::size_t typed = out.size();
    out.insert(out.end(), {'e', 'X', 'I', 'f'});
    out.insert(out.end(), exif.begin(), exif.end());
    put_be32(out, detail::crc32(out.data() + typed, out.size() - typed));
    out.insert(out.end(), png.begin() + ihdr_end, png.end());
    return out;
}

// A simple WebP (one VP8 or VP8L chunk) becomes the extended layout: VP8X, the bitstream, EXIF.
// An extended one (libwebp writes VP8X + ALPH + VP8 for lossy with alpha) gets the flag and chunk.
result<bytes> webp_with_exif(const bytes& webp, std::span<const std::uint8_t> exif, int width, int height) {
    if (!starts_with(webp, 0, "RIFF") || !starts_with(webp, 8, "WEBP") || webp.size() < 20) return not_ours("WebP");
    bytes body{'W', 'E', 'B', 'P'};
    if (starts_with(webp, 12, "VP8X")) {
        body.insert(body.end(), webp.begin() + 12, webp.end());
        body[8] |= 0x08;  // the EXIF flag, in the first byte of VP8X's payload
    } else {
        std::uint8_t flags = 0x08;
        // A lossless bitstream says whether it uses alpha: bit 28 of its 32-bit header after the 0x2F signature.
        if (starts_with(webp, 12, "VP8L") && webp.size() >= 25 && (le32(webp.data() + 21) >> 28 & 1)) flags |= 0x10;
        body.insert(body.end(), {'V', 'P', '8', 'X'});
        put_le(body, 10, 4);
        body.insert(body.end(), {flags, 0, 0, 0});
        put_le(body, static_cast<std::uint32_t>(width - 1), 3);
        put_le(body, static_cast<std::uint32_t>(height - 1), 3);
        body.insert(body.end(), webp.begin() + 12, webp.end());
    }
    body.insert(body.end(), {'E', 'X', 'I', 'F'});
    put_le(body, static_cast<std::uint32_t>(exif.size()), 4);
    body.insert(body.end(), exif.begin(), exif.end());
    if (exif.size() & 1) body.push_back(0);
    bytes out{'R', 'I', 'F', 'F'};
    put_le(out, static_cast<std::uint32_t>(body.size()), 4);
    out.insert(out.end(), body.begin(), body.end());
    return out;
}

}  // namespace

result<std::vector<std::uint8_t>> embed_exif(std::vector<std::uint8_t> encoded, std::span<const std::uint8_t> exif) {
    if (exif.empty()) return encoded;
    const auto h = read_header(encoded);
    if (!h) return not_ours("image");
    switch (h->fmt) {
        case format::jpeg: return jpeg_with_exif(encoded, exif);
        case format::png: return png_with_exif(encoded, exif);
        case format::webp: return webp_with_exif(encoded, exif, h->width, h->height);
        default: return not_ours(to_string(h->fmt));
    }
}

}  // namespace quickthumb::image
