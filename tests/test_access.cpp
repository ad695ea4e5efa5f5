// Access control: tokens, CORS and safe paths. Pure logic first (no sockets), then the real binary.
#include "http/access.hpp"
#include "support/server_process.hpp"
#include "support/synthetic.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include "support/catch_result.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sys/wait.h>
#include <thread>

using namespace quickthumb::http;
using namespace qt_test;
using namespace std::chrono_literals;
namespace json = boost::json;

TEST_CASE("access: a token set matches only its own tokens", "[access]") {
    token_set set;
    CHECK_FALSE(set.matches("anything"));  // empty: nothing matches (guards treat empty as open)
    REQUIRE(set.add("s3cret-token"));
    REQUIRE(set.add("next-token"));
    CHECK(set.size() == 2);
    CHECK(set.matches("s3cret-token"));
    CHECK(set.matches("next-token"));
    CHECK_FALSE(set.matches("s3cret-toke"));
    CHECK_FALSE(set.matches("s3cret-token2"));
    CHECK_FALSE(set.matches("S3cret-token"));
    CHECK_FALSE(set.matches(""));
    CHECK_FALSE(set.matches(std::string("s3cret-token\0", 13)));
    CHECK_FALSE(set.matches("s3cret-token" + std::string(max_token_bytes, 'x')));
    const std::string longest(max_token_bytes, 'a');
    REQUIRE(set.add(longest));
    CHECK(set.matches(longest));
    CHECK_FALSE(set.matches(longest + "a"));
    CHECK_FALSE(set.add(""));
    CHECK_FALSE(set.add(longest + "a"));
    CHECK_FALSE(set.add("has space"));
    CHECK_FALSE(set.add("tab\there"));
}

TEST_CASE("access: Bearer tokens are read from the Authorization header", "[access]") {
    CHECK(bearer_token("Bearer abc") == std::optional<std::string_view>("abc"));
    CHECK(bearer_token("bearer abc") == std::optional<std::string_view>("abc"));
    CHECK(bearer_token("BEARER  abc ") == std::optional<std::string_view>("abc"));
    CHECK_FALSE(bearer_token("Basic YWxhZGRpbjpvcGVuc2VzYW1l"));
    CHECK_FALSE(bearer_token("Bearer"));
    CHECK_FALSE(bearer_token("Bearer "));
    CHECK_FALSE(bearer_token("Bearerabc"));
    CHECK_FALSE(bearer_token(""));
}

TEST_CASE("access: token files skip comments and blank lines and refuse bad tokens", "[access]") {
    auto list = parse_token_list("# rotation\n\nold-token\r\n  new-token  \n#last\n");
    REQUIRE(list);
    CHECK(*list == std::vector<std::string>{"old-token", "new-token"});
    auto bad = parse_token_list("ok\nnot ok\n");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().message.find("line 2") != std::string::npos);

    temp_dir dir;
    CHECK_FALSE(load_token_file(dir.path() / "missing"));
    std::ofstream(dir.path() / "comments") << "# only a comment\n\n";
    auto none = load_token_file(dir.path() / "comments");
    REQUIRE_FALSE(none);
    CHECK(none.error().message.find("no token") != std::string::npos);
    std::ofstream(dir.path() / "tokens") << "a1\nb2\n";
    auto two = load_token_file(dir.path() / "tokens");
    REQUIRE(two);
    CHECK(two->size() == 2);
}

TEST_CASE("access: which paths need which token", "[access]") {
    CHECK(guard_for("/api/v1/jobs") == guard::api);
    CHECK(guard_for("/api/v1/events") == guard::api);
    CHECK(guard_for("/api") == guard::api);
    CHECK(guard_for("/apis") == guard::open);
    CHECK(guard_for("/metrics") == guard::metrics);
    for (auto open : {"/", "/index.html", "/app.js", "/healthz", "/readyz", "/openapi.json", "/thumbs/x/y"})
        CHECK(guard_for(open) == guard::open);

    access_policy p;
    CHECK(allowed(p, "/api/v1/jobs", std::nullopt, std::nullopt));  // no token configured: open
    REQUIRE(p.api.add("apitok"));
    CHECK_FALSE(allowed(p, "/api/v1/jobs", std::nullopt, std::nullopt));
    CHECK_FALSE(allowed(p, "/api/v1/jobs", std::string_view("Bearer wrong"), std::nullopt));
    CHECK_FALSE(allowed(p, "/api/v1/jobs", std::string_view("apitok"), std::nullopt));  // no scheme
    CHECK(allowed(p, "/api/v1/jobs", std::string_view("Bearer apitok"), std::nullopt));
    // The query token counts only on the events route (EventSource cannot send headers).
    CHECK(allowed(p, "/api/v1/events", std::nullopt, std::string_view("apitok")));
    CHECK_FALSE(allowed(p, "/api/v1/events", std::nullopt, std::string_view("wrong")));
    CHECK_FALSE(allowed(p, "/api/v1/jobs", std::nullopt, std::string_view("apitok")));
    CHECK(allowed(p, "/healthz", std::nullopt, std::nullopt));
    CHECK(allowed(p, "/metrics", std::nullopt, std::nullopt));  // metrics has its own setting
    REQUIRE(p.metrics.add("mtok"));
    CHECK_FALSE(allowed(p, "/metrics", std::string_view("Bearer apitok"), std::nullopt));
    CHECK(allowed(p, "/metrics", std::string_view("Bearer mtok"), std::nullopt));
    CHECK_FALSE(allowed(p, "/api/v1/jobs", std::string_view("Bearer mtok"), std::nullopt));
}

TEST_CASE("access: CORS origins are exact and off by default", "[access][cors]") {
    auto list = parse_cors_origins(" https://app.example.com,http://localhost:3000 ,");
    REQUIRE(list);
    CHECK(*list == std::vector<std::string>{"https://app.example.com", "http://localhost:3000"});
    CHECK(parse_cors_origins("")->empty());
    for (auto bad : {"*", "app.example.com", "https://app.example.com/", "https://*.example.com", "ftp://x", "https://"})
        CHECK_FALSE(parse_cors_origins(bad));

    const std::vector<std::string> none;
    const std::vector<std::string> allow{"https://app.example.com"};
    const auto app = std::optional<std::string_view>("https://app.example.com");
    const auto evil = std::optional<std::string_view>("https://evil.example.com");
    CHECK(decide_cors(none, false, "/api/v1/jobs", app) == cors_action::none);
    CHECK(decide_cors(none, true, "/api/v1/jobs", app) == cors_action::none);  // OPTIONS as before: 405
    CHECK(decide_cors(allow, false, "/api/v1/jobs", app) == cors_action::allow);
    CHECK(decide_cors(allow, false, "/api/v1/jobs", evil) == cors_action::none);
    CHECK(decide_cors(allow, false, "/api/v1/jobs", std::nullopt) == cors_action::none);
    CHECK(decide_cors(allow, true, "/api/v1/jobs", app) == cors_action::preflight_ok);
    CHECK(decide_cors(allow, true, "/api/v1/jobs/x/retry", evil) == cors_action::preflight_refused);
    CHECK(decide_cors(allow, true, "/api/v1/jobs", std::string_view("https://app.example.com:8443")) ==
          cors_action::preflight_refused);
    CHECK(decide_cors(allow, true, "/api/v1/jobs", std::nullopt) == cors_action::none);
    CHECK(decide_cors(allow, false, "/thumbs/a/b", app) == cors_action::allow);

    using field = std::pair<std::string, std::string>;
    auto has = [](const std::vector<field>& fields, const field& f) {
        return std::find(fields.begin(), fields.end(), f) != fields.end();
    };
    const auto simple = cors_fields("https://app.example.com", false);
    CHECK(has(simple, {"Access-Control-Allow-Origin", "https://app.example.com"}));
    CHECK(has(simple, {"Vary", "Origin"}));
    CHECK(has(simple, {"Access-Control-Expose-Headers", "Location, Retry-After, Idempotent-Replayed"}));
    const auto pre = cors_fields("https://app.example.com", true);
    CHECK(has(pre, {"Access-Control-Allow-Methods", "GET, POST, DELETE"}));
    CHECK(has(pre, {"Access-Control-Allow-Headers", "Authorization, Content-Type, Idempotency-Key, Last-Event-ID"}));
    CHECK(has(pre, {"Access-Control-Max-Age", "600"}));
}

TEST_CASE("access: the access_token parameter is taken out of the target", "[access]") {
    CHECK(strip_query_param("/api/v1/events?access_token=abc", "access_token") == "/api/v1/events");
    CHECK(strip_query_param("/api/v1/events?job=J&access_token=abc&last_event_id=4", "access_token") ==
          "/api/v1/events?job=J&last_event_id=4");
    CHECK(strip_query_param("/api/v1/events?access_token=a&access_token=b", "access_token") == "/api/v1/events");
    CHECK(strip_query_param("/api/v1/events?job=J", "access_token") == "/api/v1/events?job=J");
    CHECK(strip_query_param("/api/v1/events", "access_token") == "/api/v1/events");
    CHECK(strip_query_param("/e?access_tokens=1", "access_token") == "/e?access_tokens=1");
}

// ---- the real binary ----

namespace {

// Writes raw bytes on a fresh connection and reads until the server closes, `until` appears, or
// the deadline passes (whatever came by then is returned).
std::string raw_exchange(unsigned short port, const std::string& bytes, const std::string& until = {},
                         std::chrono::seconds deadline = 10s) {
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket s(io);
    s.connect({boost::asio::ip::make_address("127.0.0.1"), port});
    boost::system::error_code ec;
    boost::asio::write(s, boost::asio::buffer(bytes), ec);
    std::string got;
    const auto end = std::chrono::steady_clock::now() + deadline;
    s.non_blocking(true);
    char buf[4096];
    while (std::chrono::steady_clock::now() < end) {
        auto n = s.read_some(boost::asio::buffer(buf), ec);
        if (ec == boost::asio::error::would_block) {
            s.wait(boost::asio::ip::tcp::socket::wait_read, ec);  // bounded by the server's own deadlines
            continue;
        }
        if (ec) break;
        got.append(buf, n);
        if (!until.empty() && got.find(until) != std::string::npos) break;
    }
    return got;
}

http_reply api(unsigned short port, const std::string& method, const std::string& target, const std::string& token,
               std::map<std::string, std::string> headers = {}) {
    if (!token.empty()) headers["Authorization"] = "Bearer " + token;
    return http_request(port, method, target, {}, headers);
}

http_reply upload_with(unsigned short port, const form_file& f, const std::string& token) {
    auto [ct, body] = multipart_body({f});
    std::map<std::string, std::string> h{{"Content-Type", ct}};
    if (!token.empty()) h["Authorization"] = "Bearer " + token;
    return http_request(port, "POST", "/api/v1/jobs", body, h);
}

std::string error_code_of(const http_reply& r) {
    return std::string(json::parse(r.body).at("error").at("code").as_string());
}

// Polls the job until it is final (the deadline only bounds a failure).
json::object final_job(unsigned short port, const std::string& id, const std::string& token) {
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    json::object last;
    while (std::chrono::steady_clock::now() < deadline) {
        auto r = api(port, "GET", "/api/v1/jobs/" + id, token);
        REQUIRE(r.status == 200);
        last = json::parse(r.body).as_object();
        const auto state = last.at("state").as_string();
        if (state == "succeeded" || state == "failed" || state == "cancelled") break;
        std::this_thread::sleep_for(20ms);
    }
    return last;
}

bool output_has(server_process& s, const std::string& text) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
        if (s.output().find(text) != std::string::npos) return true;
        std::this_thread::sleep_for(20ms);
    }
    return false;
}

}  // namespace

TEST_CASE("access: without a token the API is open and the start-up says so", "[access][e2e]") {
    temp_dir dir;
    server_process open(dir.path());
    CHECK(http_request(open.port(), "GET", "/api/v1/jobs").status == 200);
    CHECK(output_has(open, "no API token: the API is open"));

    temp_dir dir2;
    server_process locked(dir2.path(), {"--api-token", "tok-1"});
    CHECK(http_request(locked.port(), "GET", "/api/v1/jobs").status == 401);
    // The "started" line comes after the warning would: once it is there, the warning is not.
    REQUIRE(output_has(locked, "started"));
    CHECK(locked.output().find("no API token") == std::string::npos);
}

TEST_CASE("access: with tokens every /api call needs one and the rest stays open", "[access][e2e]") {
    temp_dir dir;
    const auto file = dir.path() / "tokens";
    std::ofstream(file) << "# rotation: old and new\nold-token\n\nnew-token\n";
    server_process server(dir.path() / "data", {"--api-token", "flag-token", "--api-token-file", file.string()});
    const auto port = server.port();

    auto none = api(port, "GET", "/api/v1/jobs", "");
    CHECK(none.status == 401);
    CHECK(none.headers["www-authenticate"] == "Bearer realm=\"quickthumb\"");
    CHECK(error_code_of(none) == "unauthorized");
    auto wrong = api(port, "GET", "/api/v1/jobs", "nope");
    CHECK(wrong.status == 401);
    CHECK(error_code_of(wrong) == "unauthorized");
    CHECK(api(port, "GET", "/api/v1/jobs", "", {{"Authorization", "Basic ZmxhZy10b2tlbjo="}}).status == 401);
    for (auto t : {"flag-token", "old-token", "new-token"}) CHECK(api(port, "GET", "/api/v1/jobs", t).status == 200);
    CHECK(api(port, "GET", "/api/v1/jobs/AAAAAAAAAAAAAAAAAAAAAA", "").status == 401);
    CHECK(api(port, "DELETE", "/api/v1/jobs/AAAAAAAAAAAAAAAAAAAAAA", "").status == 401);
    CHECK(api(port, "POST", "/api/v1/jobs/AAAAAAAAAAAAAAAAAAAAAA/retry", "").status == 401);
    CHECK(api(port, "GET", "/api/v1/jobs?access_token=new-token", "").status == 401);  // events only
    for (auto open : {"/healthz", "/readyz", "/openapi.json", "/", "/app.js", "/metrics"})
        CHECK(http_request(port, "GET", open).status == 200);

    // An upload is refused from its header: the body (declared, never sent) is not waited for.
    const std::string head = "POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                             "Content-Length: 10000000\r\n\r\n";
    auto early = raw_exchange(port, head + "\xff\xd8");
    CHECK(early.starts_with("HTTP/1.1 401"));
    CHECK(api(port, "GET", "/api/v1/jobs", "new-token").body.find("\"jobs\":[]") != std::string::npos);

    // With the token it works, and the thumbnail is shared by its (unguessable) URL alone.
    auto r = upload_with(port, {"file", "p.jpg", "image/jpeg", synthetic_jpeg(300, 200)}, "old-token");
    REQUIRE(r.status == 202);
    const std::string id(json::parse(r.body).at("id").as_string());
    auto done = final_job(port, id, "new-token");
    REQUIRE(done.at("state").as_string() == "succeeded");
    const std::string url(done.at("outputs").as_array().at(0).at("url").as_string());
    auto thumb = http_request(port, "GET", url);
    CHECK(thumb.status == 200);
    CHECK(thumb.headers["content-type"] == "image/jpeg");
    CHECK(thumb.headers["x-content-type-options"] == "nosniff");

    // Events: the token may come as ?access_token= (EventSource sends no headers).
    auto ev = raw_exchange(port, "GET /api/v1/events?access_token=new-token HTTP/1.1\r\nHost: x\r\n\r\n", "retry:");
    CHECK(ev.starts_with("HTTP/1.1 200"));
    auto ev_job = raw_exchange(port, "GET /api/v1/events?job=" + id + "&access_token=new-token HTTP/1.1\r\nHost: x\r\n\r\n",
                               "retry:");
    CHECK(ev_job.starts_with("HTTP/1.1 200"));  // the token is taken out before the handler sees the query
    auto ev_bad = raw_exchange(port, "GET /api/v1/events?access_token=bad HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(ev_bad.starts_with("HTTP/1.1 401"));
    auto ev_header = raw_exchange(port, "GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer flag-token\r\n\r\n",
                                  "retry:");
    CHECK(ev_header.starts_with("HTTP/1.1 200"));
}

TEST_CASE("access: --metrics-token protects /metrics with its own token", "[access][e2e]") {
    temp_dir dir;
    server_process server(dir.path(), {"--metrics-token", "m-tok"});
    const auto port = server.port();
    auto no = api(port, "GET", "/metrics", "");
    CHECK(no.status == 401);
    CHECK(no.headers.count("www-authenticate") == 1);
    CHECK(api(port, "GET", "/metrics", "other").status == 401);
    CHECK(api(port, "GET", "/metrics", "m-tok").status == 200);
    CHECK(api(port, "GET", "/api/v1/jobs", "").status == 200);  // no API token set: the API is open
}

TEST_CASE("access: a token file that cannot be read or holds no token stops the start", "[access][e2e]") {
    temp_dir dir;
    std::ofstream(dir.path() / "empty") << "# nothing yet\n";
    for (auto file : {dir.path() / "missing", dir.path() / "empty"}) {
        const std::string cmd = "timeout 30 " + std::string(QT_BINARY_PATH) + " serve --port 0 --bind 127.0.0.1 --data '" +
                                (dir.path() / "data").string() + "' --api-token-file '" + file.string() + "' 2>&1";
        FILE* p = popen(cmd.c_str(), "r");
        REQUIRE(p);
        std::string out;
        char buf[512];
        while (auto n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
        const int status = pclose(p);
        CHECK(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 2);
        CHECK(out.find("--api-token-file") != std::string::npos);
        CHECK(out.find("listening") == std::string::npos);
    }
}

TEST_CASE("access: CORS is off by default", "[access][cors][e2e]") {
    temp_dir dir;
    server_process server(dir.path());
    auto r = http_request(server.port(), "GET", "/api/v1/jobs", {}, {{"Origin", "https://app.example.com"}});
    CHECK(r.status == 200);
    for (const auto& [k, v] : r.headers) CHECK_FALSE(k.starts_with("access-control-"));
    auto pre = http_request(server.port(), "OPTIONS", "/api/v1/jobs", {},
                            {{"Origin", "https://app.example.com"}, {"Access-Control-Request-Method", "POST"}});
    CHECK(pre.status == 405);
    for (const auto& [k, v] : pre.headers) CHECK_FALSE(k.starts_with("access-control-"));
}

TEST_CASE("access: CORS answers allowed origins and refuses others", "[access][cors][e2e]") {
    temp_dir dir;
    server_process server(dir.path(), {"--cors-origin", "https://app.example.com,http://localhost:3000", "--api-token", "t"});
    const auto port = server.port();
    const std::map<std::string, std::string> app{{"Origin", "https://app.example.com"},
                                                 {"Access-Control-Request-Method", "POST"},
                                                 {"Access-Control-Request-Headers", "authorization"}};
    // A preflight carries no token; it is answered before the token check.
    auto pre = http_request(port, "OPTIONS", "/api/v1/jobs", {}, app);
    CHECK(pre.status == 204);
    CHECK(pre.headers["access-control-allow-origin"] == "https://app.example.com");
    CHECK(pre.headers["access-control-allow-methods"] == "GET, POST, DELETE");
    CHECK(pre.headers["access-control-allow-headers"] == "Authorization, Content-Type, Idempotency-Key, Last-Event-ID");
    CHECK(pre.headers["access-control-max-age"] == "600");
    CHECK(pre.headers["vary"] == "Origin");

    auto get = api(port, "GET", "/api/v1/jobs", "t", {{"Origin", "http://localhost:3000"}});
    CHECK(get.status == 200);
    CHECK(get.headers["access-control-allow-origin"] == "http://localhost:3000");
    CHECK(get.headers["vary"] == "Origin");
    CHECK(get.headers["access-control-expose-headers"] == "Location, Retry-After, Idempotent-Replayed");
    CHECK(get.headers["content-type"] == "application/json");  // the handler's own header is intact
    CHECK(json::parse(get.body).as_object().contains("jobs"));
    // A 401 to an allowed origin is readable by its page (it can then ask for the token).
    auto unauth = api(port, "GET", "/api/v1/jobs", "", {{"Origin", "https://app.example.com"}});
    CHECK(unauth.status == 401);
    CHECK(unauth.headers["access-control-allow-origin"] == "https://app.example.com");

    auto evil_pre = http_request(port, "OPTIONS", "/api/v1/jobs", {},
                                 {{"Origin", "https://evil.example.com"}, {"Access-Control-Request-Method", "POST"}});
    CHECK(evil_pre.status == 403);
    CHECK(error_code_of(evil_pre) == "forbidden");
    CHECK(evil_pre.headers.count("access-control-allow-origin") == 0);
    auto evil_get = api(port, "GET", "/api/v1/jobs", "t", {{"Origin", "https://evil.example.com"}});
    CHECK(evil_get.status == 200);
    for (const auto& [k, v] : evil_get.headers) CHECK_FALSE(k.starts_with("access-control-"));

    auto ev = raw_exchange(port, "GET /api/v1/events?access_token=t HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example.com\r\n\r\n",
                           "retry:");
    CHECK(ev.starts_with("HTTP/1.1 200"));
    CHECK(ev.find("Access-Control-Allow-Origin: https://app.example.com\r\n") != std::string::npos);
}

TEST_CASE("access: no request reads outside the thumbnails or an upload", "[access][paths][e2e]") {
    temp_dir dir;
    const auto data = dir.path() / "data";
    server_process server(data, {"--keep-uploads"});
    const auto port = server.port();
    auto r = upload(port, {{"file", "p.jpg", "image/jpeg", synthetic_jpeg(64, 48)}});
    REQUIRE(r.status == 202);
    const std::string id(json::parse(r.body).at("id").as_string());
    REQUIRE(id.size() == 22);
    auto done = json::parse(wait_for_final(port, id, 60s)).as_object();
    REQUIRE(done.at("state").as_string() == "succeeded");
    const std::string url(done.at("outputs").as_array().at(0).at("url").as_string());
    auto good = http_request(port, "GET", url);
    REQUIRE(good.status == 200);
    CHECK(good.headers["content-type"] == "image/jpeg");
    CHECK(good.headers["x-content-type-options"] == "nosniff");
    REQUIRE(std::filesystem::exists(data / "uploads"));

    // A planted symlink (file, and job directory) is not followed.
    const std::string planted = "AAAAAAAAAAAAAAAAAAAAAA", planted_dir = "BBBBBBBBBBBBBBBBBBBBBB";
    std::filesystem::create_directories(data / "thumbs" / planted);
    std::filesystem::create_symlink("/etc/passwd", data / "thumbs" / planted / "thumb_1x1.jpg");
    std::filesystem::create_directories(dir.path() / "outside");
    std::ofstream(dir.path() / "outside" / "thumb_1x1.jpg") << "secret";
    std::filesystem::create_directory_symlink(dir.path() / "outside", data / "thumbs" / planted_dir);
    std::filesystem::create_directories(data / "thumbs" / "CCCCCCCCCCCCCCCCCCCCCC" / "thumb_2x2.jpg");  // a directory

    const std::vector<std::string> hostile = {
        "/thumbs/" + planted + "/thumb_1x1.jpg",
        "/thumbs/" + planted_dir + "/thumb_1x1.jpg",
        "/thumbs/CCCCCCCCCCCCCCCCCCCCCC/thumb_2x2.jpg",
        "/uploads/" + id,
        "/uploads/" + id + "/",
        "/data/uploads/" + id,
        "/thumbs/" + id + "/../../uploads/" + id,
        "/thumbs/../uploads/" + id,
        "/thumbs/%2e%2e/%2e%2e/etc/passwd",
        "/thumbs/" + id + "/%2e%2e%2f%2e%2e%2fuploads%2f" + id,
        "/thumbs/" + id + "%2F..%2F..%2Fuploads/" + id,
        "/thumbs/" + id + "/..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/thumbs//etc/passwd",
        "/thumbs/%2Fetc/passwd",
        "//etc/passwd",
        "/etc/passwd",
        "/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/thumbs/" + id + "/thumb_1x1.jpg%00.png",
        "/thumbs/" + id + "/thumb_" + std::string(5000, '1') + "x1.jpg",
        "/thumbs/" + std::string(5000, 'A') + "/thumb_1x1.jpg",
        "/api/v1/jobs/..%2F..%2Fuploads%2F" + id,
        "/api/v1/jobs/%2e%2e",
        "/api/v1/jobs/" + id + "%00",
    };
    for (const auto& target : hostile) {
        INFO(target);
        auto h = http_request(port, "GET", target);
        CHECK((h.status == 404 || h.status == 400));
        CHECK(h.body.find("root:") == std::string::npos);
        CHECK(h.body.find("secret") == std::string::npos);
        CHECK(h.headers["content-type"] == "application/json");
    }
    // A raw NUL inside the target is refused by the parser.
    auto nul = raw_exchange(port, "GET /thumbs/" + id + std::string("/thumb_1x1.jpg\0.png", 18) + " HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(nul.starts_with("HTTP/1.1 400"));
    // DELETE and retry validate the id before any path is built.
    CHECK(http_request(port, "DELETE", "/api/v1/jobs/..%2F..%2Fthumbs").status == 404);
    CHECK(http_request(port, "POST", "/api/v1/jobs/..%2F..%2F..%2Fetc/retry").status == 404);
    CHECK(std::filesystem::exists(data / "thumbs" / planted));
}

TEST_CASE("access: SVG and HTML uploads are refused with 415", "[access][paths][e2e]") {
    temp_dir dir;
    server_process server(dir.path());
    const std::string svg = R"(<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>)";
    const std::string html = "<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>";
    const std::vector<form_file> files = {
        {"file", "x.svg", "image/svg+xml", svg},
        {"file", "x.html", "text/html", html},
        {"file", "x.jpg", "image/jpeg", html},  // HTML dressed as a JPEG
        {"file", "x.png", "image/png", "<svg xmlns=\"http://www.w3.org/2000/svg\"/>"},
    };
    for (const auto& f : files) {
        INFO(f.filename);
        auto r = upload(server.port(), {f});
        CHECK(r.status == 415);
    }
    auto raw = http_request(server.port(), "POST", "/api/v1/jobs?filename=x.jpg", html, {{"Content-Type", "image/jpeg"}});
    CHECK(raw.status == 415);
    CHECK(json::parse(http_request(server.port(), "GET", "/api/v1/jobs").body).at("jobs").as_array().empty());
}

// The order of the checks made from the header: a refused token never spends the client's upload
// rate, so someone without the token cannot lock a client out by uploading from its address.
TEST_CASE("access: uploads refused for their token do not spend the upload rate", "[access][limits][e2e]") {
    temp_dir dir;
    server_process server(dir.path(), {"--api-token", "t0ken", "--upload-rate", "0.001", "--upload-burst", "1"});
    const form_file f{"file", "a.jpg", "image/jpeg", synthetic_jpeg(32, 24)};
    for (int i = 0; i < 3; ++i) {
        auto refused = upload_with(server.port(), f, "");
        CHECK(refused.status == 401);
    }
    CHECK(upload_with(server.port(), f, "t0ken").status == 202);  // the one token of the burst
    auto over = upload_with(server.port(), f, "t0ken");
    CHECK(over.status == 429);
    CHECK(error_code_of(over) == "rate_limited");
}
