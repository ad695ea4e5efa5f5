#pragma once
// ICC profiles made with Little CMS for the colour-management tests.
#include "support/image_files.hpp"

#include <lcms2.h>

namespace qt_test {

// The profile serialised (and closed); fails the test when Little CMS cannot write it.
bytes save_profile(cmsHPROFILE h);

// sRGB with the red and green primaries exchanged: device (r, g, b) is sRGB (g, r, b).
bytes swapped_rgb_profile();

}  // namespace qt_test
