#include "support/image_chunks.hpp"

#include "support/image_codec.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>

// Compiled in tests/support/stb_write.cpp but declared only in stb's implementation section.
extern "C" unsigned char* stbi_zlib_compress(unsigned char* data, int data_len, int* out_len, int quality);

namespace qt_test {

namespace {

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

// A zlib stream, as an iCCP chunk holds, from stb_image_write's compressor.
bytes zlib(const bytes& data) {
    int n = 0;
    unsigned char* z = stbi_zlib_compress(const_cast<std::uint8_t*>(data.data()), int(data.size()), &n, 8);
    REQUIRE(z != nullptr);
    bytes out(z, z + n);
    std::free(z);
    return out;
}

}  // namespace

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

bytes exif_block(int orientation, bool big_endian, int type, bool exif_prefix) {
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

bytes with_png_chunks(const bytes& png, const std::vector<bytes>& chunks) {
    bytes out(png.begin(), png.begin() + 33);
    for (const auto& c : chunks) append(out, c);
    out.insert(out.end(), png.begin() + 33, png.end());
    return out;
}

bytes iccp_body(const bytes& profile) {
    bytes b = to_bytes("icc");
    b.push_back(0);
    b.push_back(0);  // deflate
    append(b, zlib(profile));
    return b;
}

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

}  // namespace qt_test
