#include "quickthumb/storage.hpp"

#include "quickthumb/file_io.hpp"
#include "quickthumb/job.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace quickthumb {
namespace fs = std::filesystem;


storage::storage(fs::path data_dir) : root_(std::move(data_dir)) {
    fs::create_directories(root_ / "uploads");
    fs::create_directories(root_ / "thumbs");
    fs::create_directories(root_ / "tmp");
}

fs::path storage::temp_path() const { return root_ / "tmp" / (new_job_id() + ".part"); }

void storage::clean_temp() const {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(root_ / "tmp", ec)) fs::remove_all(e.path(), ec);
}

result<void> storage::write_atomic(const fs::path& final_path, std::span<const std::uint8_t> bytes) const {
    return write_file_atomically(final_path, bytes, durability::fsync);
}

result<void> storage::commit_upload(const fs::path& temp, const std::string& id) const {
    if (auto r = fsync_file(temp); !r) return r;
    fs::path dest = upload_path(id);
    if (::rename(temp.c_str(), dest.c_str()) != 0) return io_failure(errno, "rename upload to " + dest.string());
    return fsync_dir(dest.parent_path());
}

void storage::remove_thumb(const std::string& id, const std::string& name) const {
    std::error_code ec;
    fs::remove(thumb_path(id, name), ec);
}

void storage::remove_thumbs(const std::string& id) const {
    std::error_code ec;
    fs::remove_all(thumb_dir(id), ec);
}

bool storage::has_upload(const std::string& id) const {
    std::error_code ec;
    return fs::exists(upload_path(id), ec);
}

void storage::remove_upload(const std::string& id) const {
    std::error_code ec;
    fs::remove(upload_path(id), ec);
}

void storage::remove_job_files(const std::string& id) const {
    std::error_code ec;
    fs::remove(upload_path(id), ec);
    fs::remove_all(thumb_dir(id), ec);
}

}  // namespace quickthumb
