// PNG with libspng, row by row: a non-interlaced image is never held whole (O(width) memory);
// an interlaced one is deinterlaced into a whole buffer (the memory estimate counts it) and then
// streamed.
//
// libspng is fed only the chunks decoding needs (the signature, every critical chunk, tRNS): it
// never stores text, EXIF, ICC or unknown chunks, so its memory does not grow with them. Our own
// readers take the metadata (read_metadata). Every chunk's CRC is checked first, the ones libspng
// never sees included: stb-era behaviour the tests rely on (PngSuite's damaged files are refused).
#include "internal.hpp"

#include <spng.h>

#include <cstring>
#include <memory>
#include <vector>

namespace quickthumb::image::detail {
namespace {

std::uint32_t be32(const std::uint8_t* p) {
    return std::uint32_t(p[0]) << 24 | std::uint32_t(p[1]) << 16 | std::uint32_t(p[2]) << 8 | p[3];
}

struct byte_range {
    std::size_t at = 0, size = 0;
};

// The signature and the chunks libspng gets, as ranges of the file; the whole file's CRCs checked.
result<std::vector<byte_range>> png_decoding_chunks(std::span<const std::uint8_t> d) {
    std::vector<byte_range> keep{{0, 8}};
    std::size_t pos = 8;
    while (true) {
        if (d.size() - pos < 12) return corrupt_error("PNG", "the file ends before the IEND chunk");
        const std::uint32_t len = be32(d.data() + pos);
        const std::string type(reinterpret_cast<const char*>(d.data() + pos + 4), 4);
        if (len > 0x7FFFFFFFu || d.size() - pos - 12 < len)
            return corrupt_error("PNG", "chunk '" + type + "' runs past the end of the file");
        if (crc32(d.data() + pos + 4, len + 4) != be32(d.data() + pos + 8 + len))
            return corrupt_error("PNG", "CRC mismatch in chunk '" + type + "'");
        // Critical chunks have an upper-case first letter (unknown ones must still be refused).
        const bool critical = type[0] >= 'A' && type[0] <= 'Z';
        if (critical || type == "tRNS") {
            const std::size_t whole = 12 + std::size_t{len};
            if (!keep.empty() && keep.back().at + keep.back().size == pos) keep.back().size += whole;
            else keep.push_back({pos, whole});
        }
        if (type == "IEND") return keep;
        pos += 12 + std::size_t{len};
    }
}

struct png_stream {
    std::span<const std::uint8_t> data;
    std::vector<byte_range> ranges;
    std::size_t index = 0, offset = 0;  // within ranges[index]
};

int read_png_stream(spng_ctx*, void* user, void* dest, std::size_t length) {
    auto* s = static_cast<png_stream*>(user);
    auto* out = static_cast<std::uint8_t*>(dest);
    while (length > 0) {
        if (s->index == s->ranges.size()) return SPNG_IO_EOF;
        const byte_range& r = s->ranges[s->index];
        const std::size_t n = std::min(length, r.size - s->offset);
        std::memcpy(out, s->data.data() + r.at + s->offset, n);
        out += n, length -= n, s->offset += n;
        if (s->offset == r.size) ++s->index, s->offset = 0;
    }
    return 0;
}

struct ctx_free {
    void operator()(spng_ctx* c) const { spng_ctx_free(c); }
};

error spng_failure(int code) { return corrupt_error("PNG", spng_strerror(code)); }

}  // namespace

result<void> decode_png_rows(std::span<const std::uint8_t> data, row_sink& sink, bool* grey) {
    auto chunks = png_decoding_chunks(data);
    if (!chunks) return chunks.error();
    png_stream stream{data, std::move(*chunks)};
    std::unique_ptr<spng_ctx, ctx_free> ctx(spng_ctx_new(0));
    if (!ctx) throw std::bad_alloc();
    // Nothing but the critical chunks and tRNS reaches libspng; its caches stay empty.
    spng_set_chunk_limits(ctx.get(), 1 << 20, 1 << 20);
    if (int e = spng_set_png_stream(ctx.get(), read_png_stream, &stream)) return spng_failure(e);
    spng_ihdr ihdr{};
    if (int e = spng_get_ihdr(ctx.get(), &ihdr)) return spng_failure(e);
    spng_trns trns{};
    const bool has_trns = spng_get_trns(ctx.get(), &trns) == 0;
    const int type = ihdr.color_type;
    const bool alpha = type == SPNG_COLOR_TYPE_GRAYSCALE_ALPHA || type == SPNG_COLOR_TYPE_TRUECOLOR_ALPHA || has_trns;
    *grey = type == SPNG_COLOR_TYPE_GRAYSCALE || type == SPNG_COLOR_TYPE_GRAYSCALE_ALPHA;
    // Grey without alpha stays one channel until the pipeline has made it small (expand_grey); a
    // 16-bit grey one is decoded as RGB and its first channel kept (libspng has no 16-to-8 G8).
    const bool one_channel = *grey && !alpha;
    const bool grey16 = one_channel && ihdr.bit_depth == 16;
    const int fmt = alpha ? SPNG_FMT_RGBA8 : (one_channel && !grey16) ? SPNG_FMT_G8 : SPNG_FMT_RGB8;
    const int decoded_channels = fmt == SPNG_FMT_RGBA8 ? 4 : fmt == SPNG_FMT_G8 ? 1 : 3;
    const int channels = one_channel ? 1 : decoded_channels;
    if (int e = spng_decode_image(ctx.get(), nullptr, 0, fmt, SPNG_DECODE_TRNS | SPNG_DECODE_PROGRESSIVE))
        return spng_failure(e);

    const int w = static_cast<int>(ihdr.width), h = static_cast<int>(ihdr.height);
    const std::size_t decoded_row = std::size_t(w) * decoded_channels;
    if (ihdr.interlace_method != 0) {
        // Adam7 visits every row several times: deinterlaced into a whole image, then streamed.
        std::vector<std::uint8_t> image(decoded_row * std::size_t(h));
        int e = 0;
        do {
            spng_row_info info{};
            if ((e = spng_get_row_info(ctx.get(), &info)) != 0) break;
            e = spng_decode_row(ctx.get(), image.data() + decoded_row * info.row_num, decoded_row);
        } while (e == 0);
        if (e != SPNG_EOI) return spng_failure(e);
        if (!grey16) return stream_rows(image.data(), w, h, channels, sink);
        sink.begin(w, h, channels);
        std::vector<std::uint8_t> g(static_cast<std::size_t>(w));
        for (int y = 0; y < h; ++y) {
            const std::uint8_t* src = image.data() + decoded_row * std::size_t(y);
            for (int x = 0; x < w; ++x) g[std::size_t(x)] = src[std::size_t(x) * 3];
            if (!sink.row(g.data())) return stopped_error();
        }
        return {};
    }
    sink.begin(w, h, channels);
    std::vector<std::uint8_t> row(decoded_row), g(grey16 ? std::size_t(w) : 0);
    for (int y = 0; y < h; ++y) {
        const int e = spng_decode_row(ctx.get(), row.data(), decoded_row);
        if (e != 0 && !(e == SPNG_EOI && y == h - 1)) return spng_failure(e);
        const std::uint8_t* out = row.data();
        if (grey16) {
            for (int x = 0; x < w; ++x) g[std::size_t(x)] = row[std::size_t(x) * 3];
            out = g.data();
        }
        if (!sink.row(out)) return stopped_error();
    }
    return {};
}

}  // namespace quickthumb::image::detail
