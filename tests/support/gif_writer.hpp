#pragma once
// GIF files for tests, written with giflib's encoder (the decoder under test is giflib's too, but
// the pixels to expect are given here, not read back through it).
#include <gif_lib.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace qt_test {

struct gif_spec {
    int canvas_width = 0, canvas_height = 0;
    int left = 0, top = 0, width = 0, height = 0;  // the first (only) frame
    bool interlaced = false;
    int transparent = -1;                           // palette index, -1 for none
    std::vector<std::uint8_t> indexes;              // width * height, row by row as displayed
    std::vector<std::uint8_t> palette;              // 256 RGB triples
};

// A palette of 256 distinct colours: index i is (i, 255 - i, i * 7 mod 256).
inline std::vector<std::uint8_t> ramp_palette() {
    std::vector<std::uint8_t> p(256 * 3);
    for (int i = 0; i < 256; ++i) {
        p[i * 3] = static_cast<std::uint8_t>(i);
        p[i * 3 + 1] = static_cast<std::uint8_t>(255 - i);
        p[i * 3 + 2] = static_cast<std::uint8_t>(i * 7);
    }
    return p;
}

inline std::vector<std::uint8_t> write_gif(const gif_spec& s) {
    struct sink {
        std::vector<std::uint8_t> bytes;
    } out;
    auto write = [](GifFileType* g, const GifByteType* data, int n) {
        auto* o = static_cast<sink*>(g->UserData);
        o->bytes.insert(o->bytes.end(), data, data + n);
        return n;
    };
    int err = 0;
    GifFileType* gif = EGifOpen(&out, write, &err);
    if (!gif) throw std::runtime_error("EGifOpen failed");
    std::vector<GifColorType> colours(256);
    for (int i = 0; i < 256; ++i) colours[i] = {s.palette[i * 3], s.palette[i * 3 + 1], s.palette[i * 3 + 2]};
    ColorMapObject* map = GifMakeMapObject(256, colours.data());
    EGifSetGifVersion(gif, true);
    bool ok = EGifPutScreenDesc(gif, s.canvas_width, s.canvas_height, 8, 0, map) == GIF_OK;
    if (ok && s.transparent >= 0) {
        GraphicsControlBlock gcb{};
        gcb.TransparentColor = s.transparent;
        GifByteType ext[4];
        const size_t len = EGifGCBToExtension(&gcb, ext);
        ok = EGifPutExtension(gif, GRAPHICS_EXT_FUNC_CODE, static_cast<int>(len), ext) == GIF_OK;
    }
    ok = ok && EGifPutImageDesc(gif, s.left, s.top, s.width, s.height, s.interlaced, nullptr) == GIF_OK;
    // giflib's encoder takes the lines in file order: for an interlaced frame, the four passes.
    std::vector<int> order;
    if (s.interlaced) {
        const int start[4] = {0, 4, 2, 1}, step[4] = {8, 8, 4, 2};
        for (int p = 0; p < 4; ++p)
            for (int y = start[p]; y < s.height; y += step[p]) order.push_back(y);
    } else {
        for (int y = 0; y < s.height; ++y) order.push_back(y);
    }
    std::vector<GifPixelType> line(static_cast<std::size_t>(s.width));
    for (int y : order) {
        if (!ok) break;
        std::memcpy(line.data(), s.indexes.data() + std::size_t(y) * s.width, line.size());
        ok = EGifPutLine(gif, line.data(), s.width) == GIF_OK;
    }
    GifFreeMapObject(map);
    if (EGifCloseFile(gif, &err) != GIF_OK || !ok) throw std::runtime_error("writing a GIF failed");
    return std::move(out.bytes);
}

}  // namespace qt_test
