// What only the bucket backend does, against a real S3 server (Swift's S3 API): multipart uploads
// invisible until committed and aborted when dropped, the sweep of a crashed run's parts, a prefix,
// the start-up check's refusals, a server that goes away and comes back, presigned URLs.
#include "quickthumb/blob_store.hpp"
#include "quickthumb/job.hpp"
#include "s3/client.hpp"
#include "s3/xml.hpp"
#include "support/eventually.hpp"
#include "support/s3_process.hpp"
#include "support/server_process.hpp"
#include "support/stores.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <catch2/catch.hpp>
#include "support/catch_result.hpp"

#include <algorithm>

using namespace quickthumb;
using namespace std::chrono_literals;
namespace bhttp = boost::beast::http;

namespace {

std::span<const std::uint8_t> as_bytes(const std::string& s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

bool has(const std::vector<std::string>& v, const std::string& x) { return std::find(v.begin(), v.end(), x) != v.end(); }

// Bytes that differ from one position to the next, so a part out of order or lost shows.
std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    std::uint32_t x = 12345;
    for (auto& c : s) {
        x = x * 1103515245 + 12345;
        c = static_cast<char>(x >> 24);
    }
    return s;
}

result<void> append_all(blob_store::upload& up, const std::string& data) {
    for (std::size_t at = 0; at < data.size(); at += 64 * 1024) {
        const auto piece = std::string_view(data).substr(at, 64 * 1024);
        auto r = qt_test::wait_now(up.append(std::span<const std::uint8_t>(
            reinterpret_cast<const std::uint8_t*>(piece.data()), piece.size())));
        if (!r) return r;
    }
    return {};
}

boost::asio::awaitable<int> discarded(blob_store::upload& up) {
    co_await up.discard();
    co_return 0;
}

// open_s3_blob_store with the server's variables, some of them replaced.
result<std::unique_ptr<blob_store>> open_with(const qt_test::s3_process& s3, const std::string& url,
                                              std::vector<std::pair<std::string, std::string>> overrides,
                                              std::chrono::milliseconds timeout = 5s) {
    auto env = s3.env();
    for (auto& [k, v] : overrides) {
        for (auto& e : env)
            if (e.first == k) e.second = v;
    }
    s3_store_options o;
    o.bucket_url = url;
    o.path_style = true;
    o.timeout = timeout;
    return open_s3_blob_store(o, [&env](std::string_view name) -> std::optional<std::string> {
        for (const auto& [k, v] : env)
            if (k == name) return v;
        return std::nullopt;
    });
}

}  // namespace

TEST_CASE("bucket store: a large upload goes up in parts, whole only once committed - dropped ones are aborted",
          "[storage][bucket]") {
    QT_REQUIRE_S3_SERVER();
    qt_test::temp_dir dir;
    qt_test::s3_process s3(dir.path() / "s3");
    auto store = qt_test::open_bucket_blobs(s3, "tenant", 5 << 20);

    const std::string id = new_job_id();
    const std::string key = "tenant/uploads/" + id;
    const std::string data = pattern((12 << 20) + 777);  // three parts: 5 MiB, 5 MiB and the rest
    {
        auto up = qt_test::read_now(store->begin_upload(id));
        REQUIRE(append_all(*up, data));
        CHECK(up->size() == static_cast<std::int64_t>(data.size()));
        // Begun as a multipart upload under its final key, and not an object yet.
        CHECK(has(s3.multipart_uploads(), key));
        CHECK_FALSE(has(s3.keys(), key));
        CHECK_FALSE(qt_test::read_now(store->has_upload(id)));
        REQUIRE(qt_test::wait_now(store->commit_uploads({up.get()})));
    }
    CHECK(has(s3.keys(), key));
    CHECK(s3.multipart_uploads().empty());
    auto back = qt_test::read_now(store->read_upload(id));
    CHECK(std::string(back.bytes().begin(), back.bytes().end()) == data);

    // Dropped before its commit (the client went away): aborted, nothing left.
    const std::string dropped = new_job_id();
    {
        auto up = qt_test::read_now(store->begin_upload(dropped));
        REQUIRE(append_all(*up, pattern(6 << 20)));
        CHECK(has(s3.multipart_uploads(), "tenant/uploads/" + dropped));
    }
    qt_test::eventually([&] { return s3.multipart_uploads().empty(); }, 30s, "the dropped upload is aborted");
    // Discarded (a refused request): aborted before discard returns.
    const std::string refused = new_job_id();
    auto up = qt_test::read_now(store->begin_upload(refused));
    REQUIRE(append_all(*up, pattern(6 << 20)));
    qt_test::wait_now(discarded(*up));
    CHECK(s3.multipart_uploads().empty());
    CHECK_FALSE(append_all(*up, "more"));  // and it takes nothing more
    const auto keys = s3.keys();
    CHECK_FALSE(has(keys, "tenant/uploads/" + dropped));
    CHECK_FALSE(has(keys, "tenant/uploads/" + refused));
    // Every key the store wrote is under its prefix.
    CHECK(std::all_of(keys.begin(), keys.end(), [](const std::string& k) { return k.starts_with("tenant/"); }));

    // What a crash leaves (a multipart upload begun, never completed nor aborted) goes at start-up.
    s3::client raw(s3.settings(), {});
    auto begun = raw.send_blocking(s3::make_request("CreateMultipartUpload", bhttp::verb::post,
                                                    "tenant/uploads/" + new_job_id(), {{"uploads", ""}}));
    REQUIRE(begun);
    auto upload_id = s3::xml_text(begun->text(), "UploadId");
    REQUIRE(upload_id);
    CHECK(s3.multipart_uploads().size() == 1);
    store->clean_partial();
    CHECK(s3.multipart_uploads().empty());
}

TEST_CASE("bucket store: a wrong secret, a missing bucket and a silent endpoint each stop the start with the reason",
          "[storage][bucket]") {
    QT_REQUIRE_S3_SERVER();
    qt_test::temp_dir dir;
    qt_test::s3_process s3(dir.path() / "s3");
    const std::string url = std::string("s3://") + qt_test::s3_process::bucket;
    REQUIRE(open_with(s3, url, {}));

    auto wrong = open_with(s3, url, {{"AWS_SECRET_ACCESS_KEY", "not-the-secret"}});
    REQUIRE_FALSE(wrong);
    CHECK_THAT(wrong.error().message, Catch::Contains("SignatureDoesNotMatch") && Catch::Contains("AWS_SECRET_ACCESS_KEY") &&
                                          Catch::Contains(qt_test::s3_process::bucket));
    CHECK_THAT(wrong.error().message, !Catch::Contains("attempts"));  // a 4xx is not retried
    auto unknown_key = open_with(s3, url, {{"AWS_ACCESS_KEY_ID", "nobody:none"}});
    REQUIRE_FALSE(unknown_key);
    CHECK_THAT(unknown_key.error().message, Catch::Contains("403"));

    auto missing = open_with(s3, "s3://no-such-bucket", {});
    REQUIRE_FALSE(missing);
    CHECK_THAT(missing.error().message, Catch::Contains("NoSuchBucket") && Catch::Contains("no-such-bucket"));

    // A port that accepts connections (the kernel's backlog) and never answers.
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor silent(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    const auto port = silent.local_endpoint().port();
    auto hung = open_with(s3, url, {{"AWS_ENDPOINT_URL", "http://127.0.0.1:" + std::to_string(port)}}, 500ms);
    REQUIRE_FALSE(hung);
    CHECK(hung.error().code == errc::storage_unavailable);
    CHECK_THAT(hung.error().message, Catch::Contains("no answer within 500 ms") && Catch::Contains("2 attempts"));

    auto bad_url = open_with(s3, "s3://Bad_Bucket", {});
    REQUIRE_FALSE(bad_url);
    CHECK(bad_url.error().code == errc::invalid_option);
}

TEST_CASE("bucket store: the server killed and started again - presigned links serve the object", "[storage][bucket]") {
    QT_REQUIRE_S3_SERVER();
    qt_test::temp_dir dir;
    qt_test::s3_process s3(dir.path() / "s3");
    auto store = qt_test::open_bucket_blobs(s3);
    const std::string id = new_job_id();
    REQUIRE(qt_test::wait_now(store->put_thumb(id, "thumb_2x1.webp", as_bytes("RIFF-not-really"))));

    // A presigned GET: anyone with the link gets the object, for a while.
    const auto link = store->thumb_redirect(id, "thumb_2x1.webp", 600s);
    REQUIRE(link);
    const std::string prefix = s3.endpoint();
    REQUIRE(link->starts_with(prefix));
    // (As a browser sends it: the Host with the port the link names.)
    const std::map<std::string, std::string> host{{"Host", "127.0.0.1:" + std::to_string(s3.port())}};
    auto fetched = qt_test::http_request(s3.port(), "GET", link->substr(prefix.size()), {}, host);
    CHECK(fetched.status == 200);
    CHECK(fetched.body == "RIFF-not-really");
    CHECK(fetched.headers["content-type"] == "image/webp");
    auto tampered = qt_test::http_request(s3.port(), "GET", link->substr(prefix.size()) + "0", {}, host);
    CHECK(tampered.status == 403);

    s3.kill();
    auto probe = qt_test::wait_now(store->probe());
    REQUIRE_FALSE(probe);
    CHECK(probe.error().code == errc::storage_unavailable);
    auto put = qt_test::wait_now(store->put_thumb(id, "thumb_1x1.jpg", as_bytes("x")));
    REQUIRE_FALSE(put);
    CHECK(put.error().code == errc::storage_unavailable);
    CHECK_THAT(put.error().message, Catch::Contains("PutObject") && Catch::Contains("attempts"));

    s3.start();
    REQUIRE(qt_test::wait_now(store->probe()));
    auto kept = qt_test::read_now(store->open_thumb(id, "thumb_2x1.webp"));
    REQUIRE(kept);
    auto bytes = kept->take_bytes();
    CHECK(std::string(bytes.begin(), bytes.end()) == "RIFF-not-really");
    REQUIRE(qt_test::wait_now(store->put_thumb(id, "thumb_1x1.jpg", as_bytes("x"))));
}

TEST_CASE("bucket store: over TLS, the server's certificate checked against AWS_CA_BUNDLE", "[storage][bucket]") {
    QT_REQUIRE_S3_SERVER();
    qt_test::temp_dir dir;
    qt_test::s3_process s3(dir.path() / "s3", true);
    const std::string url = std::string("s3://") + qt_test::s3_process::bucket;
    auto opened = open_with(s3, url, {});
    REQUIRE(opened);
    auto& store = **opened;
    const std::string id = new_job_id();
    REQUIRE(qt_test::wait_now(store.put_thumb(id, "thumb_1x1.png", as_bytes("over tls"))));
    auto got = qt_test::read_now(store.open_thumb(id, "thumb_1x1.png"));
    REQUIRE(got);
    auto bytes = got->take_bytes();
    CHECK(std::string(bytes.begin(), bytes.end()) == "over tls");
    REQUIRE(qt_test::wait_now(store.probe()));
    CHECK(opened.value()->thumb_redirect(id, "thumb_1x1.png", 60s)->starts_with("https://127.0.0.1:"));

    // Without the bundle the self-signed certificate is not trusted: a clear refusal at start.
    auto untrusted = open_with(s3, url, {{"AWS_CA_BUNDLE", ""}}, 2s);
    REQUIRE_FALSE(untrusted);
    CHECK_THAT(untrusted.error().message, Catch::Contains("TLS handshake") && Catch::Contains("certificate verify failed"));
    auto unreadable = open_with(s3, url, {{"AWS_CA_BUNDLE", (dir.path() / "nope.pem").string()}});
    REQUIRE_FALSE(unreadable);
    CHECK(unreadable.error().code == errc::invalid_option);
    CHECK_THAT(unreadable.error().message, Catch::Contains("TLS"));
}
