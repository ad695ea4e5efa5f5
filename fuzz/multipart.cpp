// libFuzzer target: the streaming multipart/form-data parser. The first bytes choose the boundary
// and how the body is split into chunks (a parser must give the same result however the body
// arrives); the rest is the body. The result is checked against one whole-body feed.
#include "quickthumb/multipart.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct outcome {
    std::string events;  // every callback, in order, with its data
    bool failed = false;
    bool done = false;
};

outcome run(const std::string& boundary, std::string_view body, const std::vector<std::size_t>& cuts) {
    outcome o;
    quickthumb::multipart::callbacks cb;
    cb.on_part_begin = [&](const quickthumb::multipart::part_header& h) {
        o.events += "B[" + h.name + "|" + h.filename.value_or("-") + "|" + h.content_type + "]";
    };
    cb.on_part_data = [&](std::string_view d) { o.events.append(d); };
    cb.on_part_end = [&] { o.events += "E"; };
    quickthumb::multipart::parser p(boundary, std::move(cb), 1024);
    std::size_t at = 0;
    for (std::size_t cut : cuts) {
        if (cut <= at || cut > body.size()) continue;
        if (p.feed(body.substr(at, cut - at))) o.failed = true;
        at = cut;
    }
    if (p.feed(body.substr(at))) o.failed = true;
    o.done = p.done();
    return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    // Line 1: a Content-Type (its boundary is what the server would use); then the body.
    const auto nl = in.find('\n');
    if (nl == std::string_view::npos) return 0;
    const auto content_type = in.substr(0, nl);
    in.remove_prefix(nl + 1);
    auto boundary = quickthumb::multipart::boundary_from_content_type(content_type);
    if (!boundary || boundary->empty()) return 0;
    // Split points: derived from the body's own bytes so a crash input replays exactly.
    std::vector<std::size_t> cuts;
    std::size_t pos = 0;
    for (std::size_t i = 0; i < in.size() && cuts.size() < 16; i += 7) {
        pos += static_cast<unsigned char>(in[i]) % 13 + 1;
        cuts.push_back(pos);
    }
    const auto whole = run(*boundary, in, {});
    const auto split = run(*boundary, in, cuts);
    // The data of a part may arrive in other pieces, but the events and their bytes must match.
    if (whole.failed != split.failed || whole.done != split.done || (!whole.failed && whole.events != split.events))
        std::abort();
    return 0;
}
