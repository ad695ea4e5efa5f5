#include "quickthumb/storage.hpp"

#include "quickthumb/job.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace quickthumb {
namespace fs = std::filesystem;

error io_failure(int err, std::string_view what) {
    errc code = (err == ENOSPC || err == EDQUOT) ? errc::storage_full : errc::io_error;
    return error{code, std::string(what) + ": " + std::strerror(err)};
}

namespace {

result<void> fsync_dir(const fs::path& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return io_failure(errno, "open directory " + dir.string());
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) return io_failure(err, "fsync directory " + dir.string());
    return {};
}

result<void> fsync_file(const fs::path& p) {
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return io_failure(errno, "open " + p.string());
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) return io_failure(err, "fsync " + p.string());
    return {};
}

}  // namespace

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
    std::error_code ec;
    fs::create_directories(final_path.parent_path(), ec);
    if (ec) return io_failure(ec.value(), "create " + final_path.parent_path().string());
    // The temp file sits beside its final name so the rename never crosses a file system.
    fs::path tmp = final_path;
    tmp += ".tmp-" + new_job_id();
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return io_failure(errno, "create " + tmp.string());
    std::size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            int err = errno;
            ::close(fd);
            ::unlink(tmp.c_str());
            return io_failure(err, "write " + tmp.string());
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0) {
        int err = errno;
        ::close(fd);
        ::unlink(tmp.c_str());
        return io_failure(err, "fsync " + tmp.string());
    }
    ::close(fd);
    if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        return io_failure(err, "rename to " + final_path.string());
    }
    return fsync_dir(final_path.parent_path());
}

result<void> storage::commit_upload(const fs::path& temp, const std::string& id) const {
    if (auto r = fsync_file(temp); !r) return r;
    fs::path dest = upload_path(id);
    if (::rename(temp.c_str(), dest.c_str()) != 0) return io_failure(errno, "rename upload to " + dest.string());
    return fsync_dir(dest.parent_path());
}

result<std::vector<std::uint8_t>> storage::read_all(const fs::path& p) const {
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return io_failure(errno, "open " + p.string());
    struct stat st{};
    if (::fstat(fd, &st) != 0) {
        int err = errno;
        ::close(fd);
        return io_failure(err, "stat " + p.string());
    }
    std::vector<std::uint8_t> data(static_cast<std::size_t>(st.st_size));
    std::size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::read(fd, data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int err = n < 0 ? errno : EIO;
            ::close(fd);
            return io_failure(err, "read " + p.string());
        }
        done += static_cast<std::size_t>(n);
    }
    ::close(fd);
    return data;
}

void storage::remove_job_files(const std::string& id) const {
    std::error_code ec;
    fs::remove(upload_path(id), ec);
    fs::remove_all(thumb_dir(id), ec);
}

}  // namespace quickthumb
