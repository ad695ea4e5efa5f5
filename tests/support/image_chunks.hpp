#pragma once
// Image files assembled by hand, piece by piece, for the header and metadata readers: PNG chunks
// (with correct CRCs), JPEG marker segments, EXIF blocks, ICC_PROFILE segments, the WebP extended
// container. The pieces are exactly what a test says, valid or not.
#include "support/image_files.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace qt_test {

// A PNG signature and a well-formed IHDR (correct CRC) for an 8-bit RGB picture, nothing else.
bytes png_header_only(std::uint32_t w, std::uint32_t h);

// An EXIF block: IFD0 with ImageWidth and Orientation entries. `type` is the Orientation entry's
// TIFF type (3 SHORT, 4 LONG, anything else as given); with `exif_prefix`, "Exif\0\0" first.
bytes exif_block(int orientation, bool big_endian, int type = 3, bool exif_prefix = true);

// A JPEG with extra marker segments (marker, payload) right after SOI.
bytes with_jpeg_segments(const bytes& jpeg, const std::vector<std::pair<std::uint8_t, bytes>>& segments);

// The payload of an APP2 ICC_PROFILE segment: bytes [from, from + n) of the profile as chunk
// `seq` of `count`.
bytes icc_segment(const bytes& profile, std::size_t from, std::size_t n, int seq, int count);

// One PNG chunk: length, type, body, CRC.
bytes png_chunk(std::string_view type, const bytes& body);

// Chunks inserted right after IHDR.
bytes with_png_chunks(const bytes& png, const std::vector<bytes>& chunks);

// The body of an iCCP chunk: the name "icc" and the profile, deflated.
bytes iccp_body(const bytes& profile);

// The extended (VP8X) container around a simple WebP, with optional ICCP and EXIF chunks.
bytes webp_extended(const bytes& simple, int w, int h, bool alpha, const bytes* icc, const bytes* exif);

}  // namespace qt_test
