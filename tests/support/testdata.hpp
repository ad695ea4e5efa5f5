#pragma once
// Access to ../shared/testdata. Tests that need it skip with a visible message when it is absent.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

namespace qt_test {

inline std::optional<std::filesystem::path> shared_testdata() {
    std::filesystem::path p = std::filesystem::path(QT_SHARED_DIR) / "testdata";
    if (std::filesystem::is_directory(p)) return p;
    return std::nullopt;
}

inline std::vector<std::uint8_t> read_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The regular files of a directory, sorted by name.
inline std::vector<std::filesystem::path> files_in(const std::filesystem::path& dir) {
    std::vector<std::filesystem::path> out;
    for (const auto& e : std::filesystem::directory_iterator(dir))
        if (e.is_regular_file()) out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace qt_test

// Use at the top of a TEST_CASE: binds `name` to the testdata path or skips visibly.
#define QT_REQUIRE_SHARED_TESTDATA(name)                                                   \
    auto name##_opt = ::qt_test::shared_testdata();                                        \
    if (!name##_opt) {                                                                     \
        WARN("SKIPPED: ../shared/testdata is absent (" QT_SHARED_DIR "/testdata)");        \
        return;                                                                            \
    }                                                                                      \
    const std::filesystem::path name = *name##_opt
