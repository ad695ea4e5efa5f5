#pragma once
// `quickthumb thumb`: the service's image engine on files, like vipsthumbnail.
#include "quickthumb/config.hpp"

#include <filesystem>
#include <string>

namespace quickthumb {

// The output path for `input` under `pattern`: %s becomes the input's name without extension; a
// pattern without a directory puts the output beside the input (as vipsthumbnail does).
std::filesystem::path output_path_for(const std::filesystem::path& input, const std::string& pattern);

// Thumbnails every input on `jobs` threads (0: one per core): each input is mapped read-only,
// its output written to a temporary file and renamed; missing output directories are created.
// Prints "quickthumb: FILE: reason" to stderr per failed file and carries on with the others.
// Returns 0 when all succeeded, 1 otherwise.
int run_thumb(const thumb_config& cfg);

}  // namespace quickthumb
