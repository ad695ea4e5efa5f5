#pragma once
// An S3 client on Beast: plain HTTP for local endpoints, TLS (OpenSSL, the system's CA store,
// the host name checked) otherwise; keep-alive connections pooled; every attempt has a deadline
// (connect, then the request and its whole answer); retries with backoff and full jitter on
// 5xx, 429, S3's RequestTimeout, timeouts, refused connections and resets, never on another 4xx.
//
// Its I/O runs on a thread of its own (one io_context), so callers on any executor (the network
// thread, the image workers) co_await send() and resume on their own executor. Failures are
// values: storage_unavailable once the retries are spent on a server that is down, slow or
// failing; not_found for 404; io_error for the other refusals (403 SignatureDoesNotMatch, ...);
// each message names the bucket, the operation, the key and S3's error code.
#include "quickthumb/error.hpp"
#include "s3/bucket_settings.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/verb.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace quickthumb::s3 {

struct client_options {
    std::chrono::milliseconds connect_timeout{5000};
    std::chrono::milliseconds request_timeout{15000};  // one attempt: the request and its answer
    int max_attempts = 4;
    std::chrono::milliseconds backoff_base{100};        // attempt k waits up to base * 2^k
    std::chrono::milliseconds backoff_cap{2000};
    std::size_t max_idle_connections = 16;
    // Called after each request (its final attempt) from the client's thread: the operation's
    // name ("PutObject"), whether it succeeded, and how long it took with its retries.
    std::function<void(std::string_view op, bool ok, double seconds)> observe;
};

struct request {
    std::string_view op;  // "PutObject": for messages and metrics
    boost::beast::http::verb method = boost::beast::http::verb::get;
    std::string key;  // the object's whole key (prefix included); "" is the bucket
    std::vector<query_param> query;
    std::vector<header_field> headers;  // beyond the signed ones: range, content-type, ...
    std::span<const std::uint8_t> body;  // must stay valid until send() returns
    std::size_t body_limit = 1024 * 1024;  // the largest answer body taken
    // Statuses answered as a response instead of a failure (304, 404 when a caller wants to
    // see absence as a value).
    std::vector<unsigned> accept_status;
    int max_attempts = 0;  // 0: the client's; the start-up check tries fewer times
};

inline request make_request(std::string_view op, boost::beast::http::verb method, std::string key,
                            std::vector<query_param> query = {}) {
    request r;
    r.op = op;
    r.method = method;
    r.key = std::move(key);
    r.query = std::move(query);
    return r;
}

struct response {
    unsigned status = 0;
    boost::beast::http::fields headers;
    std::vector<std::uint8_t> body;
    std::string_view text() const noexcept {
        return {reinterpret_cast<const char*>(body.data()), body.size()};
    }
};

class client {
public:
    client(bucket_settings settings, client_options opts);
    // Closes the connections and joins the thread; a send() in flight completes first.
    ~client();
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    // One request, retried as the policy says. `r` (its body) must outlive the call.
    boost::asio::awaitable<result<response>> send(const request& r);

    // The same, for a caller that may block (start-up, before the service runs).
    result<response> send_blocking(const request& r);

    // Sent in the background, its outcome only logged: the clean-up a destructor starts (an
    // abandoned multipart upload's abort). Finishes before the client is destroyed.
    void send_detached(request r);

    // A presigned GET of `key` for `expires` (the thumbnail redirect).
    std::string presigned_get_url(std::string_view key, std::chrono::seconds expires) const;

    // The client's own thread: where work that outlives its caller (a part sent in the
    // background) runs.
    boost::asio::any_io_executor executor() const noexcept;

    const bucket_settings& settings() const noexcept { return settings_; }
    // "bucket 'name'" and the endpoint: the start of every message.
    std::string describe() const;

    struct impl;

private:
    bucket_settings settings_;
    client_options opts_;
    std::unique_ptr<impl> impl_;
};

}  // namespace quickthumb::s3
