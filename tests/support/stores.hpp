#pragma once
// The stores the interface tests run against: the job store (tests/test_store_*.cpp,
// test_jobs_service.cpp, test_queue.cpp) and the blob store (test_blob_store.cpp). They use only
// job_store and blob_store, so a second backend runs the same cases once its factory is chosen here.
#include "quickthumb/blob_store.hpp"
#include "quickthumb/job_store.hpp"

#include "support/s3_process.hpp"
#include "support/redis_process.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <filesystem>
#include <memory>
#include <optional>

namespace qt_test {

// SQLite at `path`; with QT_TEST_STORE=redis (the store_on_redis test), the Redis store on one
// redis-server for the whole run, its keys and consumer name derived from `path`, so a store
// reopened on the same path finds its jobs again and a new path starts empty.
std::unique_ptr<quickthumb::job_store> open_store(const std::filesystem::path& path);

inline std::unique_ptr<quickthumb::blob_store> open_blobs(const std::filesystem::path& dir) {
    return quickthumb::open_file_blob_store(dir);
}

// The bucket backend on a running S3 server (Swift), under `prefix` ("" for none), with short deadlines.
inline std::unique_ptr<quickthumb::blob_store> open_bucket_blobs(const s3_process& s3, const std::string& prefix = {},
                                                                 std::size_t part_size = 5 << 20) {
    quickthumb::s3_store_options o;
    o.bucket_url = std::string("s3://") + s3_process::bucket + (prefix.empty() ? "" : "/" + prefix);
    o.path_style = true;
    o.part_size = part_size;
    o.timeout = std::chrono::seconds(5);
    const auto env = s3.env();
    auto opened = quickthumb::open_s3_blob_store(o, [&env](std::string_view name) -> std::optional<std::string> {
        for (const auto& [k, v] : env)
            if (k == name) return v;
        return std::nullopt;
    });
    if (!opened) FAIL("cannot open the bucket store: " << opened.error().message);
    return std::move(*opened);
}

// Runs one awaitable to its end outside a coroutine (on a context of its own) and returns its value.
template <class T>
T wait_now(boost::asio::awaitable<T> op) {
    boost::asio::io_context io;
    std::optional<T> got;
    std::exception_ptr failure;
    boost::asio::co_spawn(io, std::move(op), [&](std::exception_ptr ep, T r) {
        failure = ep;
        if (!ep) got.emplace(std::move(r));
    });
    io.run();
    if (failure) std::rethrow_exception(failure);
    REQUIRE(got);
    return std::move(*got);
}

// The value of one store read, waited for outside a coroutine; a store failure fails the test.
template <class T>
T read_now(boost::asio::awaitable<quickthumb::result<T>> read) {
    auto got = wait_now(std::move(read));
    if (!got) FAIL("store read failed: " << got.error().message);
    return std::move(*got);
}

}  // namespace qt_test
