// Measures what one thumbnail request really allocates, for tests/test_memory_estimate.cpp:
//   quickthumb_memory_probe FILE [SIZES [FIT [FORMAT [QUALITY]]]]
// prints {"estimate":E,"heap_peak":H,"rss_peak":R}: the engine's estimate, the peak of the bytes
// allocated through malloc (every library here allocates through it) above what was live before
// the file was read, and the peak resident set above the resident set before it.
// malloc and friends are interposed over glibc's own (__libc_*), so nothing escapes the count; the
// probe is not built with the sanitizers, which interpose them themselves.
#include "quickthumb/image.hpp"
#include "quickthumb/memory_budget.hpp"

#include <malloc.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" {
void* __libc_malloc(size_t);
void __libc_free(void*);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
}

namespace {

std::atomic<long long> live{0}, peak{0};

void add(void* p) {
    if (!p) return;
    const long long now = live.fetch_add(static_cast<long long>(malloc_usable_size(p))) +
                          static_cast<long long>(malloc_usable_size(p));
    long long seen = peak.load();
    while (now > seen && !peak.compare_exchange_weak(seen, now)) {
    }
}
void sub(void* p) {
    if (p) live.fetch_sub(static_cast<long long>(malloc_usable_size(p)));
}

}  // namespace

extern "C" {
void* malloc(size_t n) {
    void* p = __libc_malloc(n);
    add(p);
    return p;
}
void free(void* p) {
    sub(p);
    __libc_free(p);
}
void* calloc(size_t n, size_t s) {
    void* p = __libc_calloc(n, s);
    add(p);
    return p;
}
void* realloc(void* old, size_t n) {
    const long long before = old ? static_cast<long long>(malloc_usable_size(old)) : 0;
    void* p = __libc_realloc(old, n);
    if (p || n == 0) live.fetch_sub(before);
    add(p);
    return p;
}
void* memalign(size_t a, size_t n) {
    void* p = __libc_memalign(a, n);
    add(p);
    return p;
}
void* aligned_alloc(size_t a, size_t n) { return memalign(a, n); }
int posix_memalign(void** out, size_t a, size_t n) {
    void* p = memalign(a, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}
}

namespace {

long rss_kib(const char* field) {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(field, 0) == 0) return std::strtol(line.c_str() + std::strlen(field), nullptr, 10);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    namespace img = quickthumb::image;
    if (argc < 2) {
        std::fprintf(stderr, "usage: quickthumb_memory_probe FILE [SIZES [FIT [FORMAT [QUALITY]]]]\n");
        return 2;
    }
    quickthumb::tune_allocator();  // as the service and the CLI run
    img::thumbnails_request req;
    req.max_pixels = 300'000'000;
    if (argc > 2) {
        req.boxes.clear();
        std::string sizes = argv[2];
        for (std::size_t at = 0; at <= sizes.size();) {
            const std::size_t end = std::min(sizes.find(',', at), sizes.size());
            const std::string one = sizes.substr(at, end - at);
            const std::size_t x = one.find('x');
            if (x == std::string::npos) req.boxes.push_back({std::stoi(one), std::stoi(one)});
            else req.boxes.push_back({x ? std::stoi(one.substr(0, x)) : 0, x + 1 < one.size() ? std::stoi(one.substr(x + 1)) : 0});
            at = end + 1;
        }
    }
    if (argc > 3) req.mode = std::string(argv[3]) == "cover" ? img::fit::cover : std::string(argv[3]) == "fill" ? img::fit::fill : img::fit::contain;
    if (argc > 4) req.fmt = std::string(argv[4]) == "png" ? img::out_format::png : std::string(argv[4]) == "webp" ? img::out_format::webp : img::out_format::jpeg;
    if (argc > 5) req.quality = std::atoi(argv[5]);

    // Baselines first: what is live and resident before the file is read.
    std::FILE* clear = std::fopen("/proc/self/clear_refs", "w");  // "5" resets the peak RSS
    const long long live_before = live.load();
    if (clear) std::fputs("5", clear), std::fclose(clear);
    const long rss_before = rss_kib("VmRSS:");
    peak = live.load();
    std::vector<std::uint8_t> data;
    {
        std::ifstream in(argv[1], std::ios::binary);
        in.seekg(0, std::ios::end);
        data.resize(static_cast<std::size_t>(in.tellg()));
        in.seekg(0);
        in.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(data.size()));
    }
    auto estimate = img::estimate_memory(data, req);
    if (!estimate) {
        std::printf("{\"error\":\"%s\"}\n", estimate.error().message.c_str());
        return 1;
    }
    const long long peak_before_job = peak.load();
    auto t = img::make_thumbnails(data, req);
    if (!t) {
        std::printf("{\"error\":\"%s\"}\n", t.error().message.c_str());
        return 1;
    }
    const long long heap = peak.load() - live_before;
    const long rss = rss_kib("VmHWM:") - rss_before;
    std::printf("{\"estimate\":%llu,\"heap_peak\":%lld,\"rss_peak\":%ld,\"estimate_phase_heap\":%lld}\n",
                static_cast<unsigned long long>(*estimate), heap, rss * 1024, peak_before_job - live_before);
    return 0;
}
