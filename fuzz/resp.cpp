// libFuzzer target: the RESP (Redis protocol) reply parser, fed the bytes whole and then one byte
// at a time; both must give the same values (or both fail).
#include "quickthumb/resp.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

std::string parse(std::string_view in, std::size_t step, bool& failed) {
    quickthumb::resp::limits lim;
    lim.max_bulk = 4096;
    lim.max_elements = 1024;
    lim.max_depth = 8;
    lim.max_line = 4096;
    quickthumb::resp::parser p(lim);
    std::string out;
    for (std::size_t at = 0; at < in.size(); at += step) {
        (void)p.feed(in.substr(at, step));
        while (auto v = p.pop()) out += quickthumb::resp::to_string(*v) + "\n";
    }
    failed = p.failed();
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    bool whole_failed = false, bytes_failed = false;
    const auto whole = parse(in, in.size() ? in.size() : 1, whole_failed);
    const auto bytes = parse(in, 1, bytes_failed);
    if (whole_failed != bytes_failed || whole != bytes) std::abort();
    return 0;
}
