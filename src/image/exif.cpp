// Metadata readers: the EXIF orientation (a TIFF structure) and the embedded ICC profile, found in
// JPEG marker segments, PNG chunks and WebP RIFF chunks.
//
// Every byte read here comes from an untrusted file. All offsets are checked against the span with
// subtraction on sizes already known to be in range (never `pos + len <= size`, which can wrap),
// and nothing here allocates more than the file holds, except the PNG iCCP inflation, capped.
#include "quickthumb/image.hpp"

#include <stb_image.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstring>
#include <optional>
#include <string_view>

namespace quickthumb::image {
namespace {

using bytes_view = std::span<const std::uint8_t>;

// An ICC profile larger than this is refused (ignored). Real ones are a few KB, big CMYK ones a few MB.
constexpr std::size_t max_icc_size = 8u << 20;

bool has_prefix(bytes_view d, std::string_view prefix) {
    return d.size() >= prefix.size() && std::memcmp(d.data(), prefix.data(), prefix.size()) == 0;
}

std::uint32_t be16(const std::uint8_t* p) { return std::uint32_t(p[0]) << 8 | p[1]; }
std::uint32_t be32(const std::uint8_t* p) {
    return std::uint32_t(p[0]) << 24 | std::uint32_t(p[1]) << 16 | std::uint32_t(p[2]) << 8 | p[3];
}
std::uint32_t le32(const std::uint8_t* p) {
    return std::uint32_t(p[3]) << 24 | std::uint32_t(p[2]) << 16 | std::uint32_t(p[1]) << 8 | p[0];
}

// ---- TIFF ----------------------------------------------------------------------------------

struct tiff_reader {
    bytes_view d;
    bool big_endian = false;
    std::uint32_t u16(std::size_t at) const {
        return big_endian ? std::uint32_t(d[at]) << 8 | d[at + 1] : std::uint32_t(d[at + 1]) << 8 | d[at];
    }
    std::uint32_t u32(std::size_t at) const {
        return big_endian ? be32(d.data() + at) : le32(d.data() + at);
    }
};

// Where IFD0's Orientation entry is, and its type (3 SHORT or 4 LONG); nullopt when absent or
// unreadable. `exif` starts at the TIFF header.
struct orientation_entry {
    std::size_t at = 0;  // the entry's offset
    std::uint32_t type = 0;
    tiff_reader reader;
};

std::optional<orientation_entry> find_orientation(bytes_view exif) {
    if (exif.size() < 8) return std::nullopt;
    tiff_reader t{exif};
    if (has_prefix(exif, std::string_view("MM\0*", 4)))
        t.big_endian = true;
    else if (!has_prefix(exif, std::string_view("II*\0", 4)))
        return std::nullopt;
    const std::size_t ifd = t.u32(4);
    if (ifd < 8 || exif.size() - 2 < ifd) return std::nullopt;
    const std::size_t count = t.u16(ifd);
    const std::size_t first = ifd + 2;
    const std::size_t available = (exif.size() - first) / 12;
    for (std::size_t i = 0; i < std::min(count, available); ++i) {
        const std::size_t e = first + i * 12;
        if (t.u16(e) == 0x0112) return orientation_entry{e, t.u16(e + 2), t};
    }
    return std::nullopt;
}

// Keeps the TIFF block for keep_metadata, if it is one and fits a JPEG APP1 segment.
void keep_exif(bytes_view block, metadata& out) {
    constexpr std::size_t max_exif = 65533 - 6;  // APP1 length field, minus "Exif\0\0"
    if (has_prefix(block, std::string_view("Exif\0\0", 6))) block = block.subspan(6);  // PNG/WebP writers vary
    if (block.size() < 8 || block.size() > max_exif) return;
    if (!has_prefix(block, std::string_view("MM\0*", 4)) && !has_prefix(block, std::string_view("II*\0", 4))) return;
    out.exif.assign(block.begin(), block.end());
}

// ---- JPEG ----------------------------------------------------------------------------------

// The APP2 "ICC_PROFILE\0" chunks, reassembled the way libjpeg-turbo's jpeg_read_icc_profile does:
// every chunk numbered 1..count, the same count in all, none missing or repeated.
struct icc_chunks {
    std::array<bytes_view, 256> part{};  // by sequence number, 1-based
    int count = 0;
    bool bad = false;

    void add(bytes_view payload) {  // payload after "ICC_PROFILE\0"
        if (payload.size() < 2) return void(bad = true);
        const int seq = payload[0], n = payload[1];
        if (n == 0 || seq == 0 || seq > n || (count != 0 && count != n) || !part[seq].empty())
            return void(bad = true);
        count = n;
        part[seq] = payload.subspan(2);
        if (part[seq].empty()) bad = true;  // an empty chunk is indistinguishable from a missing one
    }
    std::vector<std::uint8_t> assemble() const {
        if (bad || count == 0) return {};
        std::size_t total = 0;
        for (int i = 1; i <= count; ++i) {
            if (part[i].empty()) return {};
            total += part[i].size();
        }
        if (total > max_icc_size) return {};
        std::vector<std::uint8_t> out;
        out.reserve(total);
        for (int i = 1; i <= count; ++i) out.insert(out.end(), part[i].begin(), part[i].end());
        return out;
    }
};

// Walks the marker segments before the first scan (SOS). Metadata after it is not looked for.
void jpeg_metadata(bytes_view d, bool with_icc, metadata& out) {
    constexpr std::string_view exif_id("Exif\0\0", 6);
    constexpr std::string_view icc_id("ICC_PROFILE\0", 12);
    icc_chunks icc;
    bool exif_seen = false;
    std::size_t pos = 2;  // after SOI
    while (pos < d.size()) {
        if (d[pos] != 0xFF) break;  // not a marker: damaged, stop looking
        while (pos < d.size() && d[pos] == 0xFF) ++pos;  // fill bytes
        if (pos >= d.size()) break;
        const std::uint8_t marker = d[pos++];
        if (marker == 0xD9 || marker == 0xDA) break;  // EOI, SOS
        if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue;  // no length
        if (d.size() - pos < 2) break;
        const std::size_t len = be16(d.data() + pos);
        if (len < 2 || d.size() - pos < len) break;
        const bytes_view payload = d.subspan(pos + 2, len - 2);
        if (marker == 0xE1 && !exif_seen && has_prefix(payload, exif_id)) {
            exif_seen = true;  // only the first Exif segment counts
            out.orientation = exif_orientation(payload);
            keep_exif(payload.subspan(exif_id.size()), out);
        } else if (marker == 0xE2 && with_icc && has_prefix(payload, icc_id)) {
            icc.add(payload.subspan(icc_id.size()));
        }
        pos += len;
    }
    if (with_icc) out.icc = icc.assemble();
}

// ---- PNG -----------------------------------------------------------------------------------

// iCCP: a 1..79 byte name, NUL, compression method 0, then a zlib stream. Inflated into a buffer
// that grows (64 KiB, x4) up to max_icc_size; a bomb costs at most a few inflations of 8 MiB.
std::vector<std::uint8_t> png_iccp(bytes_view chunk) {
    const std::size_t name_end = std::find(chunk.begin(), chunk.begin() + std::min<std::size_t>(chunk.size(), 80),
                                           std::uint8_t{0}) - chunk.begin();
    if (name_end == 0 || name_end >= 80 || chunk.size() - name_end < 2 || chunk[name_end + 1] != 0) return {};
    const bytes_view z = chunk.subspan(name_end + 2);
    if (z.empty() || z.size() > INT_MAX) return {};
    std::vector<std::uint8_t> out;
    for (std::size_t cap = 64u << 10; cap <= max_icc_size; cap *= 4) {
        out.resize(cap);
        const int n = stbi_zlib_decode_buffer(reinterpret_cast<char*>(out.data()), static_cast<int>(cap),
                                              reinterpret_cast<const char*>(z.data()), static_cast<int>(z.size()));
        if (n >= 0) {
            out.resize(static_cast<std::size_t>(n));
            out.shrink_to_fit();
            return out;
        }
        // stb fails alike for "did not fit" and "corrupt": only growing tells them apart.
    }
    return {};
}

void png_metadata(bytes_view d, bool with_icc, metadata& out) {
    std::size_t pos = 8;
    bool exif_seen = false, icc_seen = false;
    while (d.size() - pos >= 12) {  // pos <= d.size() holds throughout
        const std::uint32_t len = be32(d.data() + pos);
        if (len > 0x7FFFFFFFu || d.size() - pos - 12 < len) break;
        const bytes_view type = d.subspan(pos + 4, 4);
        const bytes_view body = d.subspan(pos + 8, len);
        if (has_prefix(type, "eXIf") && !exif_seen) {
            exif_seen = true;
            out.orientation = exif_orientation(body);
            keep_exif(body, out);
        } else if (has_prefix(type, "iCCP") && with_icc && !icc_seen) {
            icc_seen = true;
            out.icc = png_iccp(body);
        } else if (has_prefix(type, "IEND")) {
            break;
        }
        pos += 12 + std::size_t{len};
    }
}

// ---- WebP ----------------------------------------------------------------------------------

void webp_metadata(bytes_view d, bool with_icc, metadata& out) {
    std::size_t pos = 12;  // after "RIFF" size "WEBP"
    bool exif_seen = false, icc_seen = false;
    while (d.size() >= pos && d.size() - pos >= 8) {
        const std::uint32_t len = le32(d.data() + pos + 4);
        if (d.size() - pos - 8 < len) break;
        const bytes_view type = d.subspan(pos, 4);
        const bytes_view body = d.subspan(pos + 8, len);
        if (has_prefix(type, "EXIF") && !exif_seen) {
            exif_seen = true;
            out.orientation = exif_orientation(body);
            keep_exif(body, out);
        } else if (has_prefix(type, "ICCP") && with_icc && !icc_seen && len <= max_icc_size) {
            icc_seen = true;
            out.icc.assign(body.begin(), body.end());
        }
        pos += 8 + std::size_t{len} + (len & 1);
    }
}

}  // namespace

int exif_orientation(std::span<const std::uint8_t> exif) noexcept {
    if (has_prefix(exif, std::string_view("Exif\0\0", 6))) exif = exif.subspan(6);
    const auto e = find_orientation(exif);
    if (!e) return 1;
    const std::uint32_t n = e->reader.u32(e->at + 4);
    std::uint32_t v = 0;
    if (e->type == 3 && n >= 1)
        v = e->reader.u16(e->at + 8);  // SHORT, the standard type
    else if (e->type == 4 && n >= 1)
        v = e->reader.u32(e->at + 8);  // LONG: wrong but seen in the wild
    return v >= 1 && v <= 8 ? static_cast<int>(v) : 1;
}

std::vector<std::uint8_t> exif_upright(std::span<const std::uint8_t> exif) {
    std::vector<std::uint8_t> out(exif.begin(), exif.end());
    const auto e = find_orientation(exif);
    if (!e || (e->type != 3 && e->type != 4)) return out;
    // The value sits left-justified in the entry's 4-byte value field, in the block's byte order.
    std::uint8_t* v = out.data() + e->at + 8;
    std::fill_n(v, 4, std::uint8_t{0});
    const std::size_t width = e->type == 3 ? 2 : 4;
    v[e->reader.big_endian ? width - 1 : 0] = 1;
    return out;
}

metadata read_metadata(std::span<const std::uint8_t> data, format f, bool with_icc) {
    metadata out;
    switch (f) {
        case format::jpeg:
            if (has_prefix(data, "\xFF\xD8")) jpeg_metadata(data, with_icc, out);
            break;
        case format::png:
            if (has_prefix(data, "\x89PNG\r\n\x1A\n")) png_metadata(data, with_icc, out);
            break;
        case format::webp:
            if (data.size() >= 12 && has_prefix(data, "RIFF")) webp_metadata(data, with_icc, out);
            break;
        default: break;
    }
    return out;
}

}  // namespace quickthumb::image
