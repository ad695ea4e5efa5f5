#include "support/icc_profiles.hpp"

#include <catch2/catch.hpp>

namespace qt_test {

namespace {

// The sRGB transfer curve as Little CMS's parametric type 4.
cmsToneCurve* srgb_curve() {
    const cmsFloat64Number params[5] = {2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045};
    return cmsBuildParametricToneCurve(nullptr, 4, params);
}

}  // namespace

bytes save_profile(cmsHPROFILE h) {
    REQUIRE(h != nullptr);
    cmsUInt32Number n = 0;
    REQUIRE(cmsSaveProfileToMem(h, nullptr, &n));
    bytes b(n);
    REQUIRE(cmsSaveProfileToMem(h, b.data(), &n));
    cmsCloseProfile(h);
    return b;
}

bytes swapped_rgb_profile() {
    const cmsCIExyY d65{0.3127, 0.3290, 1.0};
    const cmsCIExyYTRIPLE primaries{{0.30, 0.60, 1.0}, {0.64, 0.33, 1.0}, {0.15, 0.06, 1.0}};
    cmsToneCurve* c = srgb_curve();
    cmsToneCurve* curves[3] = {c, c, c};
    cmsHPROFILE h = cmsCreateRGBProfile(&d65, &primaries, curves);
    cmsFreeToneCurve(c);
    return save_profile(h);
}

}  // namespace qt_test
