#pragma once
// The files of web/, embedded into the binary at build time (cmake/embed_web.cmake).
#include <span>
#include <string_view>

namespace quickthumb::web {

struct asset {
    std::string_view path;  // "/index.html"
    std::string_view body;
};

std::span<const asset> assets();

}  // namespace quickthumb::web
