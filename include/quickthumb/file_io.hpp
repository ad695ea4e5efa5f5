#pragma once
// File primitives shared by the service's storage and the `thumb` command: reading a whole file
// without copying it, and making a file appear atomically.
#include "quickthumb/error.hpp"

#include <cstdint>
#include <filesystem>
#include <span>

namespace quickthumb {

// A read-only private mapping of a whole file: a decoder reads straight from the page cache, so a
// 50 MB input costs no heap and no copy. The file must not be truncated while mapped (reading lost
// pages raises SIGBUS): uploads never are, and a CLI accepts that risk as vips and others do.
class mapped_file {
public:
    mapped_file() = default;
    mapped_file(const mapped_file&) = delete;
    mapped_file& operator=(const mapped_file&) = delete;
    mapped_file(mapped_file&& o) noexcept;
    mapped_file& operator=(mapped_file&& o) noexcept;
    ~mapped_file();

    // Errors: io_error (missing, unreadable, a directory or not a regular file). An empty file
    // maps to an empty span.
    static result<mapped_file> open(const std::filesystem::path& path);

    std::span<const std::uint8_t> bytes() const noexcept { return {static_cast<const std::uint8_t*>(addr_), size_}; }

private:
    void* addr_ = nullptr;
    std::size_t size_ = 0;
};

enum class durability {
    none,   // a crash may lose the file (or leave the old one); fine for what can be made again
    fsync,  // file and directory are flushed before returning
};

// Writes `bytes` to a hidden temporary file beside `path` (creating missing directories) and
// renames it over `path`, so no reader ever sees a half-written file and a failure leaves any
// previous file intact. Errors: storage_full (ENOSPC, EDQUOT) or io_error, naming the path.
result<void> write_file_atomically(const std::filesystem::path& path, std::span<const std::uint8_t> bytes,
                                   durability d);

// Flushes a file's data, or a directory's entries (after a rename into it), to disk.
result<void> fsync_file(const std::filesystem::path& path);
result<void> fsync_dir(const std::filesystem::path& dir);

// errno -> our error: ENOSPC/EDQUOT become storage_full, the rest io_error.
error io_failure(int err, std::string_view what);

}  // namespace quickthumb
