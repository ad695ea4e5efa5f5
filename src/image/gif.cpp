// GIF with giflib: the first frame, composited on a transparent canvas of the logical screen's
// size, as stb_image did (and clipped to it, as browsers do). A frame that is not interlaced
// streams line by line (O(width) memory); an interlaced one arrives in four passes, so its palette
// indexes are held (one byte a pixel, counted by the memory estimate) and then streamed.
// Truncation is an error, except after the frame's last line (giflib then fails only on skipping
// the missing end of the data, which browsers ignore too).
#include "internal.hpp"

#include <gif_lib.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

namespace quickthumb::image::detail {
namespace {

struct memory_reader {
    std::span<const std::uint8_t> data;
    std::size_t pos = 0;
};

int read_memory(GifFileType* gif, GifByteType* out, int n) {
    auto* r = static_cast<memory_reader*>(gif->UserData);
    const std::size_t take = std::min<std::size_t>(static_cast<std::size_t>(std::max(n, 0)), r->data.size() - r->pos);
    std::memcpy(out, r->data.data() + r->pos, take);
    r->pos += take;
    return static_cast<int>(take);
}

struct gif_close {
    void operator()(GifFileType* g) const {
        int ignored = 0;
        DGifCloseFile(g, &ignored);
    }
};
using gif_ptr = std::unique_ptr<GifFileType, gif_close>;

error gif_error(int code) {
    const char* why = GifErrorString(code);
    return corrupt_error("GIF", why ? why : "unreadable data");
}

// Opens the file and reads up to the first frame's image descriptor, remembering the
// transparent index of the graphic control extension before it.
result<gif_ptr> open_first_frame(memory_reader& reader, int* transparent) {
    int err = 0;
    gif_ptr gif(DGifOpen(&reader, read_memory, &err));
    if (!gif) return gif_error(err);
    *transparent = NO_TRANSPARENT_COLOR;
    for (;;) {
        GifRecordType type = UNDEFINED_RECORD_TYPE;
        if (DGifGetRecordType(gif.get(), &type) == GIF_ERROR) return gif_error(gif->Error);
        if (type == IMAGE_DESC_RECORD_TYPE) {
            if (DGifGetImageDesc(gif.get()) == GIF_ERROR) return gif_error(gif->Error);
            return gif;
        }
        if (type == TERMINATE_RECORD_TYPE) return corrupt_error("GIF", "the file has no image");
        if (type != EXTENSION_RECORD_TYPE) return corrupt_error("GIF", "unknown block");
        int code = 0;
        GifByteType* ext = nullptr;
        if (DGifGetExtension(gif.get(), &code, &ext) == GIF_ERROR) return gif_error(gif->Error);
        if (code == GRAPHICS_EXT_FUNC_CODE && ext != nullptr) {
            GraphicsControlBlock gcb{};
            if (DGifExtensionToGCB(ext[0], ext + 1, &gcb) == GIF_OK) *transparent = gcb.TransparentColor;
        }
        while (ext != nullptr)
            if (DGifGetExtensionNext(gif.get(), &ext) == GIF_ERROR) return gif_error(gif->Error);
    }
}

}  // namespace

result<gif_frame> read_gif_frame(std::span<const std::uint8_t> data) {
    memory_reader reader{data};
    int transparent = 0;
    auto gif = open_first_frame(reader, &transparent);
    if (!gif) return gif.error();
    const GifImageDesc& d = (*gif)->Image;
    return gif_frame{d.Left, d.Top, d.Width, d.Height, d.Interlace};
}

result<void> decode_gif_rows(std::span<const std::uint8_t> data, row_sink& sink) {
    memory_reader reader{data};
    int transparent = NO_TRANSPARENT_COLOR;
    auto opened = open_first_frame(reader, &transparent);
    if (!opened) return opened.error();
    GifFileType* gif = opened->get();
    const int cw = gif->SWidth, ch = gif->SHeight;
    const GifImageDesc d = gif->Image;
    if (cw <= 0 || ch <= 0) return corrupt_error("GIF", "zero width or height");
    if (d.Width <= 0 || d.Height <= 0 || d.Left < 0 || d.Top < 0) return corrupt_error("GIF", "the first frame is empty");
    const ColorMapObject* map = d.ColorMap ? d.ColorMap : gif->SColorMap;
    if (map == nullptr) return corrupt_error("GIF", "no colour table");
    // Indexes past the table, and the transparent one, are transparent black (as stb_image had it).
    std::uint8_t palette[256][4] = {};
    for (int i = 0; i < std::min(map->ColorCount, 256); ++i) {
        palette[i][0] = map->Colors[i].Red, palette[i][1] = map->Colors[i].Green, palette[i][2] = map->Colors[i].Blue;
        palette[i][3] = 255;
    }
    if (transparent >= 0 && transparent < 256) std::memset(palette[transparent], 0, 4);

    // A frame reaching past the canvas is clipped to it, as browsers do; what is held is never
    // more than the canvas (max_pixels was checked against it).
    const int x0 = std::min(d.Left, cw), x1 = std::min(d.Left + d.Width, cw);
    const int visible_rows = std::clamp(ch - d.Top, 0, d.Height);
    const std::size_t visible_width = std::size_t(x1 - x0);
    std::vector<std::uint8_t> canvas_row(std::size_t(cw) * 4, 0), line(std::size_t(d.Width)), held;
    // The n-th line in file order. giflib fails the last one of a frame whose end-of-data blocks
    // are missing after its pixels (see above): that one is taken as it is.
    auto read_line = [&](int n) { return DGifGetLine(gif, line.data(), d.Width) != GIF_ERROR || n == d.Height - 1; };
    if (d.Interlace) {
        // Lines arrive in four passes (every 8th from 0, every 8th from 4, every 4th from 2, every
        // 2nd from 1): the visible part of each held in place, then streamed.
        held.resize(visible_width * std::size_t(visible_rows));
        static constexpr int start[4] = {0, 4, 2, 1}, step[4] = {8, 8, 4, 2};
        int read = 0;
        for (int pass = 0; pass < 4; ++pass)
            for (int y = start[pass]; y < d.Height; y += step[pass]) {
                if (!read_line(read++)) return gif_error(gif->Error);
                if (y < visible_rows && visible_width > 0)
                    std::memcpy(held.data() + std::size_t(y) * visible_width, line.data(), visible_width);
            }
    }
    sink.begin(cw, ch, 4);
    for (int y = 0; y < ch; ++y) {
        const int fy = y - d.Top;
        std::memset(canvas_row.data(), 0, canvas_row.size());
        if (fy >= 0 && fy < visible_rows) {
            const std::uint8_t* src = line.data();
            if (d.Interlace) src = held.data() + std::size_t(fy) * visible_width;
            else if (!read_line(fy)) return gif_error(gif->Error);
            std::uint8_t* px = canvas_row.data() + std::size_t(x0) * 4;
            for (std::size_t x = 0; x < visible_width; ++x, px += 4) std::memcpy(px, palette[src[x]], 4);
        }
        if (!sink.row(canvas_row.data())) return stopped_error();
    }
    return {};
}

}  // namespace quickthumb::image::detail
