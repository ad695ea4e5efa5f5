// Embedded ICC profiles to sRGB with Little CMS.
#include "internal.hpp"

#include <lcms2.h>

#include <algorithm>
#include <array>
#include <list>
#include <mutex>
#include <string>

namespace quickthumb::image {
namespace detail {
namespace {

struct profile_closer {
    void operator()(void* p) const { cmsCloseProfile(p); }
};
using profile_ptr = std::unique_ptr<void, profile_closer>;

// What a source kind needs: the profile's colour space, and Little CMS's pixel formats.
struct formats {
    cmsColorSpaceSignature space;
    cmsUInt32Number in, out;
    cmsUInt32Number flags;
};

formats formats_for(colour_source src) {
    switch (src) {
        case colour_source::rgb: return {cmsSigRgbData, TYPE_RGB_8, TYPE_RGB_8, 0};
        case colour_source::rgba: return {cmsSigRgbData, TYPE_RGBA_8, TYPE_RGBA_8, cmsFLAGS_COPY_ALPHA};
        case colour_source::cmyk: return {cmsSigCmykData, TYPE_CMYK_8, TYPE_RGB_8, 0};
        case colour_source::cmyk_inverted: return {cmsSigCmykData, TYPE_CMYK_8_REV, TYPE_RGB_8, 0};
        case colour_source::grey: return {cmsSigGrayData, TYPE_GRAY_8, TYPE_RGB_8, 0};
    }
    return {cmsSigRgbData, TYPE_RGB_8, TYPE_RGB_8, 0};
}

transform_ptr create_transform(std::span<const std::uint8_t> icc, colour_source src) {
    if (icc.size() < 132 || icc.size() > 0xFFFFFFFFu) return nullptr;  // 128-byte header + tag count
    const formats f = formats_for(src);
    profile_ptr in(cmsOpenProfileFromMem(icc.data(), static_cast<cmsUInt32Number>(icc.size())));
    if (!in || cmsGetColorSpace(in.get()) != f.space) return nullptr;
    const auto cls = cmsGetDeviceClass(in.get());
    if (cls != cmsSigInputClass && cls != cmsSigDisplayClass && cls != cmsSigOutputClass &&
        cls != cmsSigColorSpaceClass)
        return nullptr;  // links, abstract and named-colour profiles do not describe pixels
    profile_ptr srgb(cmsCreate_sRGBProfile());
    if (!srgb) return nullptr;
    // Relative colorimetric with black point compensation: Photoshop's default; out-of-gamut
    // colours clip, and a CMYK profile's paper-black maps to sRGB black instead of grey.
    cmsHTRANSFORM t = cmsCreateTransform(in.get(), f.in, srgb.get(), f.out, INTENT_RELATIVE_COLORIMETRIC,
                                         cmsFLAGS_BLACKPOINTCOMPENSATION | cmsFLAGS_NOCACHE | f.flags);
    if (!t) return nullptr;
    return transform_ptr(t, [](void* p) { cmsDeleteTransform(p); });
}

// A few recent transforms, keyed by the whole profile and the source kind: phone photos carry the
// same profile again and again. Small, so a linear scan is fine.
class transform_cache {
public:
    transform_ptr get(std::span<const std::uint8_t> icc, colour_source src) {
        std::string key(reinterpret_cast<const char*>(icc.data()), icc.size());
        key.push_back(static_cast<char>(src));
        {
            std::lock_guard lock(mutex_);
            for (auto it = entries_.begin(); it != entries_.end(); ++it)
                if (it->first == key) {
                    entries_.splice(entries_.begin(), entries_, it);  // most recent first
                    return it->second;
                }
        }
        transform_ptr t = create_transform(icc, src);  // outside the lock: it may take milliseconds
        if (!t || icc.size() > max_cached_profile) return t;
        std::lock_guard lock(mutex_);
        entries_.emplace_front(std::move(key), t);
        if (entries_.size() > max_entries) entries_.pop_back();
        return t;
    }

private:
    static constexpr std::size_t max_entries = 16;
    static constexpr std::size_t max_cached_profile = 1u << 20;
    std::mutex mutex_;
    std::list<std::pair<std::string, transform_ptr>> entries_;
};

transform_cache& cache() {
    static transform_cache instance;
    return instance;
}

}  // namespace

transform_ptr srgb_transform(std::span<const std::uint8_t> icc, colour_source src) {
    if (icc.empty()) return nullptr;
    return cache().get(icc, src);
}

void run_transform(const transform_ptr& t, const void* in, void* out, std::size_t count) {
    // cmsDoTransform takes a 32-bit count.
    constexpr std::size_t chunk = 1u << 30;
    const auto fmt_in = cmsGetTransformInputFormat(t.get());
    const auto fmt_out = cmsGetTransformOutputFormat(t.get());
    const std::size_t in_px = T_CHANNELS(fmt_in) + T_EXTRA(fmt_in), out_px = T_CHANNELS(fmt_out) + T_EXTRA(fmt_out);
    auto* src = static_cast<const std::uint8_t*>(in);
    auto* dst = static_cast<std::uint8_t*>(out);
    while (count > 0) {
        const std::size_t n = std::min(count, chunk);
        cmsDoTransform(t.get(), src, dst, static_cast<cmsUInt32Number>(n));
        src += n * in_px;
        dst += n * out_px;
        count -= n;
    }
}

}  // namespace detail

bool convert_to_srgb(pixels& p, std::span<const std::uint8_t> icc_profile, bool grey_source) {
    using detail::colour_source;
    if (icc_profile.empty() || (p.channels != 3 && p.channels != 4) ||
        p.data.size() != std::size_t(p.width) * std::size_t(p.height) * std::size_t(p.channels))
        return false;
    const std::size_t count = std::size_t(p.width) * std::size_t(p.height);
    if (grey_source) {
        // A grey profile maps one value to one colour: a 256-entry table, applied to channel 0.
        if (auto t = detail::srgb_transform(icc_profile, colour_source::grey)) {
            std::array<std::uint8_t, 256> in{};
            std::array<std::uint8_t, 256 * 3> lut{};
            for (int i = 0; i < 256; ++i) in[i] = static_cast<std::uint8_t>(i);
            detail::run_transform(t, in.data(), lut.data(), 256);
            std::uint8_t* px = p.data.data();
            for (std::size_t i = 0; i < count; ++i, px += p.channels) {
                const std::uint8_t* c = &lut[std::size_t(px[0]) * 3];
                px[0] = c[0], px[1] = c[1], px[2] = c[2];
            }
            return true;
        }
        // A grey image with an RGB profile (some writers do that): treat it as RGB below.
    }
    auto t = detail::srgb_transform(icc_profile, p.channels == 4 ? colour_source::rgba : colour_source::rgb);
    if (!t) return false;
    // In place: Little CMS allows it when input and output pixels have the same size.
    detail::run_transform(t, p.data.data(), p.data.data(), count);
    return true;
}

}  // namespace quickthumb::image
