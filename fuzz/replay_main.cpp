// A tiny standalone main for the fuzz targets in the normal (GCC) builds: runs
// LLVMFuzzerTestOneInput once over every file named, or in the directories named, so kept seeds
// and crash inputs (fuzz/seeds/<target>/, fuzz/regressions/<target>/) are tests without clang.
// A missing directory is skipped (a target may have no regressions yet).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sys/resource.h>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace fs = std::filesystem;

constexpr long max_rss_kib = 1024 * 1024;  // peak resident memory, 1 GiB

int main(int argc, char** argv) {
    std::size_t runs = 0;
    for (int i = 1; i < argc; ++i) {
        const fs::path arg = argv[i];
        std::vector<fs::path> files;
        std::error_code ec;
        if (fs::is_directory(arg, ec)) {
            for (const auto& e : fs::recursive_directory_iterator(arg))
                if (e.is_regular_file()) files.push_back(e.path());
        } else if (fs::exists(arg, ec)) {
            files.push_back(arg);
        } else {
            std::printf("replay: %s absent, skipped\n", argv[i]);
        }
        for (const auto& f : files) {
            std::ifstream in(f, std::ios::binary);
            std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
            // Printed first, so that the input that crashes is the last line shown.
            std::printf("replay: %s (%zu bytes)\n", f.c_str(), bytes.size());
            std::fflush(stdout);
            // A copy of exactly the file's size, so that ASan sees a read past its end.
            std::vector<std::uint8_t> data(bytes.begin(), bytes.end());
            auto* p = data.empty() ? nullptr : data.data();
            LLVMFuzzerTestOneInput(p, data.size());
            ++runs;
            // An input that takes this much memory failed (scripts/fuzz gives libFuzzer a limit too).
            rusage ru{};
            getrusage(RUSAGE_SELF, &ru);
            if (ru.ru_maxrss > max_rss_kib) {
                std::printf("replay: FAILED: %s took %ld MiB (limit %ld MiB)\n", f.c_str(), ru.ru_maxrss / 1024,
                            max_rss_kib / 1024);
                return 1;
            }
        }
    }
    std::printf("replay: %zu inputs, no crash\n", runs);
    return 0;
}
