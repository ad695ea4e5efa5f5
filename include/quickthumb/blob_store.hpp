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
#include <memory>
#include <optional>
#include <span>
#include <string>
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

// A thumbnail opened for serving: a descriptor the response streams from (owned) and its size.
class served_file {
public:
    served_file(int fd, std::uint64_t size) : fd_(fd), size_(size) {}
    served_file(served_file&& o) noexcept : fd_(std::exchange(o.fd_, -1)), size_(o.size_) {}
    served_file& operator=(served_file&&) = delete;
    served_file(const served_file&) = delete;
    ~served_file();
    // Hands the descriptor over (to the response body, which closes it).
    int release() noexcept { return std::exchange(fd_, -1); }
    std::uint64_t size() const noexcept { return size_; }

private:
    int fd_ = -1;
    std::uint64_t size_ = 0;
};

class blob_store {
public:
    virtual ~blob_store() = default;

    // ---- uploads ----

    // An upload being received, written as its bytes arrive; nobody sees it before commit_uploads.
    class upload {
    public:
        // Not committed: what it wrote is removed (off the caller's thread).
        virtual ~upload() = default;
        // Appends the next bytes. After a failure every later append fails the same way.
        virtual boost::asio::awaitable<result<void>> append(std::span<const std::uint8_t> bytes) = 0;
        virtual std::int64_t size() const noexcept = 0;
        // Removes what was written and returns once it is gone, so a refusal answered after it
        // leaves nothing behind. Nothing to do once committed; later appends fail.
        virtual boost::asio::awaitable<void> discard() = 0;
    };
    virtual boost::asio::awaitable<result<std::unique_ptr<upload>>> begin_upload() = 0;
    // Makes each upload its job's (ids in the same order), durably: flushed and in place before
    // this returns. On failure the ones already moved are removed again: all or none.
    virtual boost::asio::awaitable<result<void>> commit_uploads(std::vector<upload*> uploads,
                                                                std::vector<std::string> ids) = 0;
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

}  // namespace quickthumb
