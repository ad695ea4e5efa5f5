#include "quickthumb/file_io.hpp"

#include "quickthumb/job.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

namespace quickthumb {
namespace fs = std::filesystem;

error io_failure(int err, std::string_view what) {
    const errc code = (err == ENOSPC || err == EDQUOT)                  ? errc::storage_full
                      : (err == EROFS || err == EACCES || err == EPERM) ? errc::storage_readonly
                                                                         : errc::io_error;
    return error{code, std::string(what) + ": " + std::strerror(err)};
}

mapped_file::mapped_file(mapped_file&& o) noexcept
    : addr_(std::exchange(o.addr_, nullptr)), size_(std::exchange(o.size_, 0)) {}

mapped_file& mapped_file::operator=(mapped_file&& o) noexcept {
    if (this != &o) {
        if (addr_) ::munmap(addr_, size_);
        addr_ = std::exchange(o.addr_, nullptr);
        size_ = std::exchange(o.size_, 0);
    }
    return *this;
}

mapped_file::~mapped_file() {
    if (addr_) ::munmap(addr_, size_);
}

result<mapped_file> mapped_file::open(const fs::path& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return io_failure(errno, "cannot open " + path.string());
    struct stat st{};
    if (::fstat(fd, &st) != 0) {
        const int err = errno;
        ::close(fd);
        return io_failure(err, "cannot stat " + path.string());
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        return error{errc::io_error, path.string() + (S_ISDIR(st.st_mode) ? " is a directory" : " is not a regular file")};
    }
    mapped_file m;
    if (st.st_size > 0) {  // mmap of 0 bytes fails; an empty span lets the engine say "not an image"
        void* p = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            const int err = errno;
            ::close(fd);
            return io_failure(err, "cannot map " + path.string());
        }
        m.addr_ = p;
        m.size_ = static_cast<std::size_t>(st.st_size);
        ::madvise(m.addr_, m.size_, MADV_SEQUENTIAL);  // decoders read front to back
    }
    ::close(fd);  // the mapping keeps the file open
    return m;
}

result<void> fsync_dir(const fs::path& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return io_failure(errno, "cannot open directory " + dir.string());
    const int rc = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    if (rc != 0) return io_failure(err, "cannot fsync directory " + dir.string());
    return {};
}

result<void> fsync_file(const fs::path& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return io_failure(errno, "cannot open " + path.string());
    const int rc = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    if (rc != 0) return io_failure(err, "cannot fsync " + path.string());
    return {};
}

result<void> write_file_atomically(const fs::path& path, std::span<const std::uint8_t> bytes, durability d) {
    const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec && !fs::is_directory(dir)) return io_failure(ec.value(), "cannot create directory " + dir.string());
    // Beside its final name, so the rename never crosses a file system; hidden, and random so that
    // parallel writers (threads, processes) never collide.
    const fs::path tmp = dir / ("." + path.filename().string() + ".tmp-" + new_job_id());
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return io_failure(errno, "cannot write " + path.string());
    auto fail = [&](int err, const char* what) -> result<void> {
        ::close(fd);
        ::unlink(tmp.c_str());
        return io_failure(err, std::string(what) + " " + path.string());
    };
    for (std::size_t done = 0; done < bytes.size();) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail(errno, "cannot write");
        }
        done += static_cast<std::size_t>(n);
    }
    if (d == durability::fsync && ::fsync(fd) != 0) return fail(errno, "cannot fsync");
    if (::close(fd) != 0) {  // NFS and quotas may only report here
        const int err = errno;
        ::unlink(tmp.c_str());
        return io_failure(err, "cannot write " + path.string());
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        return io_failure(err, "cannot rename to " + path.string());
    }
    return d == durability::fsync ? fsync_dir(dir) : result<void>{};
}

}  // namespace quickthumb
