// The file blob store: uploads and thumbnails as files in the data directory. Every blocking call
// runs on the store's own I/O threads (fsyncs wait on the disk, not the CPU: several run at once,
// and none waits behind the workers or the network), except when the caller is on a thread that
// may block (an image worker): there it runs in place, as the worker's decoding does. Each
// coroutine below keeps its arguments in its frame and hands the pool a lambda that captures them
// by reference (GCC 12 frees a moved lambda's owning captures twice inside coroutines).
#include "quickthumb/blob_store.hpp"

#include "quickthumb/job.hpp"
#include "quickthumb/offload.hpp"

#include <boost/asio/post.hpp>

#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace quickthumb {
namespace asio = boost::asio;
namespace fs = std::filesystem;

served_file::~served_file() {
    if (fd_ >= 0) ::close(fd_);
}

namespace {

constexpr std::size_t io_threads = 4;

// A file being received under tmp/: created by its first write (one trip to the I/O threads
// fewer per upload), written in order, fsynced and renamed by commit.
class file_upload final : public blob_store::upload {
public:
    file_upload(asio::thread_pool& pool, std::string id, fs::path path)
        : pool_(pool), id_(std::move(id)), path_(std::move(path)) {}
    ~file_upload() override {
        if (fd_ < 0 && !created_) return;  // nothing was written: nothing to remove
        // Closing and unlinking touch the disk: done on the pool, not the caller's thread.
        asio::post(pool_, [fd = fd_, path = committed_ ? fs::path() : path_] { remove_file(fd, path); });
    }

    asio::awaitable<result<void>> append(std::span<const std::uint8_t> bytes) override {
        if (failure_) co_return *failure_;
        auto r = co_await offload_unless_blocking_allowed(pool_.get_executor(), [&]() -> result<void> {
            if (auto opened = open_file(); !opened) return opened;
            while (!bytes.empty()) {
                const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
                if (n < 0) {
                    if (errno == EINTR) continue;
                    return io_failure(errno, "write upload file");
                }
                bytes = bytes.subspan(static_cast<std::size_t>(n));
                size_ += n;
            }
            return {};
        });
        if (!r) failure_ = r.error();
        co_return r;
    }
    std::int64_t size() const noexcept override { return size_; }
    const std::string& id() const noexcept override { return id_; }

    asio::awaitable<void> discard() override {
        if (!failure_) failure_ = error{errc::io_error, "the upload was discarded"};
        if (committed_ || (fd_ < 0 && !created_)) co_return;
        co_await offload_unless_blocking_allowed(pool_.get_executor(), [&] {
            remove_file(fd_, path_);
            return 0;
        });
        fd_ = -1;
        created_ = false;
    }

    // On the pool: flushed and moved to `dest` (whose directory the caller flushes).
    result<void> commit_to(const fs::path& dest) {
        if (failure_) return *failure_;
        if (auto opened = open_file(); !opened) return opened;  // an empty upload
        if (::fsync(fd_) != 0) return io_failure(errno, "cannot fsync upload");
        if (::rename(path_.c_str(), dest.c_str()) != 0) return io_failure(errno, "rename upload to " + dest.string());
        committed_ = true;
        return {};
    }

private:
    // On the pool: closes `fd` (when open) and unlinks `path` (when given).
    static void remove_file(int fd, const fs::path& path) {
        if (fd >= 0) ::close(fd);
        if (!path.empty()) ::unlink(path.c_str());
    }
    // On the pool.
    result<void> open_file() {
        if (fd_ >= 0) return {};
        fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd_ < 0) return io_failure(errno, "create upload file");
        created_ = true;
        return {};
    }

    asio::thread_pool& pool_;
    std::string id_;
    fs::path path_;
    int fd_ = -1;
    bool created_ = false;
    std::int64_t size_ = 0;
    std::optional<error> failure_;
    bool committed_ = false;
};

// Opens a thumbnail for reading without following a symlink in its last two components (the
// job's directory and the file: what a job id and a name choose), and only if it is a regular
// file. Returns the descriptor and size, or -1.
std::pair<int, std::uint64_t> open_regular(const fs::path& dir, const std::string& name) {
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) return {-1, 0};
    int fd = ::openat(dfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    ::close(dfd);
    struct stat st {};
    if (fd >= 0 && (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
        ::close(fd);
        fd = -1;
    }
    return {fd, fd >= 0 ? static_cast<std::uint64_t>(st.st_size) : 0};
}

result<void> removed(const fs::path& p, bool all) {
    std::error_code ec;
    if (all)
        fs::remove_all(p, ec);
    else
        fs::remove(p, ec);
    if (ec && ec != std::errc::no_such_file_or_directory) return io_failure(ec.value(), "cannot remove " + p.string());
    return {};
}

class file_blob_store final : public blob_store {
public:
    explicit file_blob_store(fs::path root) : root_(std::move(root)) {
        fs::create_directories(root_ / "uploads");
        fs::create_directories(root_ / "thumbs");
        fs::create_directories(root_ / "tmp");
    }
    // What is still queued (a dropped upload's removal) runs before the threads go.
    ~file_blob_store() override { pool_.join(); }

    asio::awaitable<result<std::unique_ptr<upload>>> begin_upload(std::string id) override {
        // No I/O yet: the file is created by the upload's first write.
        co_return std::unique_ptr<upload>(std::make_unique<file_upload>(pool_, std::move(id), temp_path()));
    }

    asio::awaitable<result<void>> commit_uploads(std::vector<upload*> uploads) override {
        co_return co_await offload_unless_blocking_allowed(pool_.get_executor(), [&]() -> result<void> {
            for (std::size_t i = 0; i < uploads.size(); ++i) {
                auto r = static_cast<file_upload*>(uploads[i])->commit_to(upload_path(uploads[i]->id()));
                if (!r) {
                    for (std::size_t k = 0; k < i; ++k) (void)removed(upload_path(uploads[k]->id()), false);
                    return r;
                }
            }
            return fsync_dir(root_ / "uploads");
        });
    }

    asio::awaitable<result<stored_bytes>> read_upload(std::string id) override {
        co_return co_await offload_unless_blocking_allowed(pool_.get_executor(), [&]() -> result<stored_bytes> {
            auto m = mapped_file::open(upload_path(id));  // page cache, no copy: uploads never change
            if (!m) return m.error();
            return stored_bytes(std::move(*m));
        });
    }

    asio::awaitable<result<bool>> has_upload(std::string id) override {
        co_return co_await offload_unless_blocking_allowed(pool_.get_executor(), [&]() -> result<bool> {
            std::error_code ec;
            const bool there = fs::exists(upload_path(id), ec);
            if (ec) return io_failure(ec.value(), "cannot look for " + upload_path(id).string());
            return there;
        });
    }

    asio::awaitable<result<void>> remove_upload(std::string id) override {
        co_return co_await offload_unless_blocking_allowed(pool_.get_executor(), [&] { return removed(upload_path(id), false); });
    }

    asio::awaitable<result<void>> put_thumb(std::string id, std::string name, std::span<const std::uint8_t> bytes) override {
        co_return co_await offload_unless_blocking_allowed(pool_.get_executor(), [&] {
            return write_file_atomically(thumb_dir(id) / name, bytes, durability::fsync);
        });
    }

    asio::awaitable<result<std::optional<served_file>>> open_thumb(std::string id, std::string name) override {
        co_return co_await offload_unless_blocking_allowed(pool_.get_executor(), [&]() -> result<std::optional<served_file>> {
            auto [fd, size] = open_regular(thumb_dir(id), name);
            if (fd < 0) return std::optional<served_file>{};
            return std::optional<served_file>(std::in_place, fd, size);
        });
    }

    asio::awaitable<result<bool>> has_thumb(std::string id, std::string name) override {
        co_return co_await offload_unless_blocking_allowed(pool_.get_executor(), [&]() -> result<bool> {
            auto [fd, size] = open_regular(thumb_dir(id), name);
            if (fd >= 0) ::close(fd);
            return fd >= 0;
        });
    }

    std::optional<std::string> thumb_redirect(const std::string&, const std::string&, std::chrono::seconds) const override {
        return std::nullopt;
    }

    asio::awaitable<result<void>> remove_thumb(std::string id, std::string name) override {
        co_return co_await offload_unless_blocking_allowed(pool_.get_executor(), [&] { return removed(thumb_dir(id) / name, false); });
    }

    asio::awaitable<result<void>> remove_thumbs(std::string id) override {
        co_return co_await offload_unless_blocking_allowed(pool_.get_executor(), [&] { return removed(thumb_dir(id), true); });
    }

    asio::awaitable<result<void>> remove_job(std::string id) override {
        co_return co_await offload_unless_blocking_allowed(pool_.get_executor(), [&]() -> result<void> {
            auto a = removed(upload_path(id), false);
            auto b = removed(thumb_dir(id), true);
            return a ? b : a;
        });
    }

    void clean_partial() override {
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(root_ / "tmp", ec)) fs::remove_all(e.path(), ec);
    }

    asio::awaitable<result<std::vector<std::string>>> list_uploads(std::chrono::seconds older_than) override {
        co_return co_await offload_unless_blocking_allowed(pool_.get_executor(), [&]() -> result<std::vector<std::string>> {
            std::vector<std::string> ids;
            std::error_code ec;
            const auto dir = root_ / "uploads";
            const auto before = fs::file_time_type::clock::now() - older_than;
            for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
                const auto name = it->path().filename().string();
                if (!is_valid_job_id(name)) continue;
                std::error_code tec;
                const auto written = fs::last_write_time(it->path(), tec);
                if (tec) continue;  // gone meanwhile
                if (written < before) ids.push_back(name);
            }
            if (ec) return io_failure(ec.value(), "cannot list " + dir.string());
            return ids;
        });
    }

    asio::awaitable<result<void>> probe() override {
        // What an upload does first: create a file under tmp/.
        co_return co_await offload_unless_blocking_allowed(pool_.get_executor(), [&]() -> result<void> {
            const auto path = temp_path();
            const std::uint8_t byte = 0;
            auto r = write_file_atomically(path, std::span<const std::uint8_t>(&byte, 1), durability::none);
            std::error_code ignored;
            fs::remove(path, ignored);
            return r;
        });
    }

private:
    fs::path upload_path(const std::string& id) const { return root_ / "uploads" / id; }
    fs::path thumb_dir(const std::string& id) const { return root_ / "thumbs" / id; }
    fs::path temp_path() const { return root_ / "tmp" / (new_job_id() + ".part"); }

    fs::path root_;
    asio::thread_pool pool_{io_threads};
};

}  // namespace

std::unique_ptr<blob_store> open_file_blob_store(const fs::path& data_dir) {
    return std::make_unique<file_blob_store>(data_dir);
}

}  // namespace quickthumb
