#pragma once
// Where uploads and thumbnails are kept: the interface every blob store implements (the data
// directory's files today: open_file_blob_store), so that uploads, workers, serving and the
// retention sweep do not depend on one. Every backend passes the same interface tests
// (tests/test_blob_store.cpp, through tests/support/stores.hpp).
//
// Every operation is an awaitable returning result<T>; a backend does its blocking work off the
// caller's thread (the file store on I/O threads of its own), so the network thread never blocks
// on a disk. Errors: storage_full (no space), storage_readonly, io_error, naming what failed;
// never an exception.
//
// What a reader can see is always whole: an upload appears under its job's id only once every
// byte is durable; a thumbnail appears under its name only once written and flushed.
#include "quickthumb/error.hpp"
#include "quickthumb/file_io.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace quickthumb {

// Bytes read back from a store: a mapping of a file (no copy) or a buffer.
class stored_bytes {
public:
    stored_bytes() = default;
    explicit stored_bytes(mapped_file m) : data_(std::move(m)) {}
    explicit stored_bytes(std::vector<std::uint8_t> b) : data_(std::move(b)) {}
    std::span<const std::uint8_t> bytes() const noexcept {
        if (const auto* m = std::get_if<mapped_file>(&data_)) return m->bytes();
        return std::get<std::vector<std::uint8_t>>(data_);
    }

private:
    std::variant<std::vector<std::uint8_t>, mapped_file> data_;
};

// A thumbnail opened for serving: a descriptor the response streams from (owned), or the bytes
// an object store answered with (a thumbnail is small), and its size.
class served_file {
public:
    served_file(int fd, std::uint64_t size) : fd_(fd), size_(size) {}
    explicit served_file(std::vector<std::uint8_t> bytes) : size_(bytes.size()), bytes_(std::move(bytes)) {}
    served_file(served_file&& o) noexcept
        : fd_(std::exchange(o.fd_, -1)), size_(o.size_), bytes_(std::move(o.bytes_)) {}
    served_file& operator=(served_file&&) = delete;
    served_file(const served_file&) = delete;
    ~served_file();
    // A descriptor to hand over, or -1 when the bytes are in memory (take_bytes).
    bool has_descriptor() const noexcept { return fd_ >= 0; }
    // Hands the descriptor over (to the response body, which closes it).
    int release() noexcept { return std::exchange(fd_, -1); }
    std::vector<std::uint8_t> take_bytes() noexcept { return std::move(bytes_); }
    std::uint64_t size() const noexcept { return size_; }

private:
    int fd_ = -1;
    std::uint64_t size_ = 0;
    std::vector<std::uint8_t> bytes_;
};

class blob_store {
public:
    virtual ~blob_store() = default;

    // ---- uploads ----

    // An upload being received under its job's id, written as its bytes arrive; nobody sees it
    // before commit_uploads.
    class upload {
    public:
        // Not committed: what it wrote is removed (off the caller's thread).
        virtual ~upload() = default;
        virtual const std::string& id() const noexcept = 0;
        // Appends the next bytes. After a failure every later append fails the same way.
        virtual boost::asio::awaitable<result<void>> append(std::span<const std::uint8_t> bytes) = 0;
        virtual std::int64_t size() const noexcept = 0;
        // Removes what was written and returns once it is gone, so a refusal answered after it
        // leaves nothing behind. Nothing to do once committed; later appends fail.
        virtual boost::asio::awaitable<void> discard() = 0;
    };
    // `id` is the job's to be (an object store starts a multipart upload under its final key).
    virtual boost::asio::awaitable<result<std::unique_ptr<upload>>> begin_upload(std::string id) = 0;
    // Makes each upload its job's, durably: flushed and in place before this returns. On failure
    // the ones already in place are removed again: all or none.
    virtual boost::asio::awaitable<result<void>> commit_uploads(std::vector<upload*> uploads) = 0;
    // A job's upload, for decoding.
    virtual boost::asio::awaitable<result<stored_bytes>> read_upload(std::string id) = 0;
    virtual boost::asio::awaitable<result<bool>> has_upload(std::string id) = 0;
    // Removes a job's upload only (its thumbnails are made and recorded). Missing is fine.
    virtual boost::asio::awaitable<result<void>> remove_upload(std::string id) = 0;

    // ---- thumbnails ----

    // Stores one of a job's thumbnails under `name`, atomically and durably.
    virtual boost::asio::awaitable<result<void>> put_thumb(std::string id, std::string name,
                                                           std::span<const std::uint8_t> bytes) = 0;
    // A thumbnail for serving; nullopt when there is none by that name.
    virtual boost::asio::awaitable<result<std::optional<served_file>>> open_thumb(std::string id, std::string name) = 0;
    virtual boost::asio::awaitable<result<bool>> has_thumb(std::string id, std::string name) = 0;
    // Where a client may fetch the thumbnail itself for `expires` (a presigned URL of the
    // object), or nullopt when only the service can serve it (the data directory).
    virtual std::optional<std::string> thumb_redirect(const std::string& id, const std::string& name,
                                                      std::chrono::seconds expires) const = 0;
    // Removes one thumbnail, or all of a job's (a cancelled, failed or interrupted attempt's).
    virtual boost::asio::awaitable<result<void>> remove_thumb(std::string id, std::string name) = 0;
    virtual boost::asio::awaitable<result<void>> remove_thumbs(std::string id) = 0;
    // Removes a job's upload and thumbnails (the retention sweep, a refused upload).
    virtual boost::asio::awaitable<result<void>> remove_job(std::string id) = 0;

    // ---- recovery and health ----

    // Start-up (blocking; before the service runs): what a previous run left half-written goes.
    virtual void clean_partial() = 0;
    // The jobs whose uploads were stored more than `older_than` ago: start-up recovery removes
    // those no job owns (a crash between an upload's commit and its row's). Recent ones are left
    // alone: another instance sharing the store may be between the two right now.
    virtual boost::asio::awaitable<result<std::vector<std::string>>> list_uploads(std::chrono::seconds older_than) = 0;
    // Whether a new upload could be stored now (for /readyz): full and read-only disks show here.
    virtual boost::asio::awaitable<result<void>> probe() = 0;
};

// The data directory's files:
//   <data>/uploads/<id>          the uploaded bytes
//   <data>/thumbs/<id>/<name>    the outputs
//   <data>/tmp/                  uploads being received
// Blocking work runs on the store's own I/O threads. Creates the directories; throws
// std::filesystem::filesystem_error when it cannot (fatal at start-up).
std::unique_ptr<blob_store> open_file_blob_store(const std::filesystem::path& data_dir);

struct s3_store_options {
    std::string bucket_url;          // s3://BUCKET[/PREFIX]
    bool path_style = false;         // --s3-path-style
    std::size_t part_size = 8 << 20;  // multipart part; uploads up to it are one PUT
    std::size_t max_object = 64 << 20;  // the largest upload read back (--max-upload)
    std::chrono::milliseconds timeout{15000};  // one request's deadline (--s3-timeout)
    int max_attempts = 4;
    // Multipart uploads started longer ago than this are a crashed run's: clean_partial aborts
    // them. 0 aborts all (one instance owns the bucket); several instances must leave time for
    // each other's uploads in flight.
    std::chrono::seconds partial_age{0};
    // Each S3 request's outcome, for the metrics (from the client's thread).
    std::function<void(std::string_view op, bool ok, double seconds)> observe;
};

// An S3-compatible bucket, credentials and endpoint from the AWS variables (`env` returns a
// variable's value; std::getenv in the service):
//   PREFIX/uploads/<id>          the uploaded bytes
//   PREFIX/thumbs/<id>/<name>    the outputs
// Fails (invalid_option, io_error, storage_unavailable) with a message naming the bucket when
// the settings are wrong or the bucket cannot be reached with them: a wrong key, a missing
// bucket and an endpoint that never answers each end the start within the deadline.
result<std::unique_ptr<blob_store>> open_s3_blob_store(
    const s3_store_options& opts, const std::function<std::optional<std::string>(std::string_view)>& env);

}  // namespace quickthumb
