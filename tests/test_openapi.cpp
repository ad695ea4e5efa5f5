// GET /openapi.json against the real binary: the description and the server agree. Every operation
// in the spec is answered by the server (no "no route" 404, no 405, and a status the spec lists for
// it); every route the server answers (a list kept here, read from route() and session() in
// src/http/server.cpp, plus every embedded web/ file) is in the spec; paths and methods outside the
// spec get 404/405; and the spec's error codes are exactly the ones the server can send.
// (web/openapi.json itself is linted by the openapi_lint ctest test with Redocly CLI.)
#include "quickthumb/error.hpp"
#include "quickthumb/web_assets.hpp"
#include "http/routes.hpp"
#include "support/server_process.hpp"
#include "support/synthetic.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <tuple>

using namespace qt_test;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

const std::vector<std::string> http_methods = {"get", "head", "post", "put", "delete", "patch", "options", "trace"};

std::string upper(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

json::object fetch_spec(unsigned short port) {
    auto r = http_request(port, "GET", "/openapi.json");
    REQUIRE(r.status == 200);
    auto v = json::parse(r.body);
    REQUIRE(v.is_object());
    return v.as_object();
}

// The status line of GET target on an event stream: the stream never ends, so only its header is read.
int stream_status(unsigned short port, const std::string& target) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    const std::string req = "GET " + target + " HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n";
    REQUIRE(::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size()));
    std::string text;
    const auto until = std::chrono::steady_clock::now() + 10s;
    while (text.find("\r\n\r\n") == std::string::npos && std::chrono::steady_clock::now() < until) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 200) <= 0) continue;
        char buf[4096];
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        text.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    INFO(text);
    REQUIRE(text.starts_with("HTTP/1.1 "));
    return std::stoi(text.substr(9, 3));
}

// A real job (succeeded) and its one output, for {id} and {file}.
struct real_job {
    std::string id;
    std::string file;
};

real_job make_job(unsigned short port) {
    auto r = http_request(port, "POST", "/api/v1/jobs?filename=a.jpg", synthetic_jpeg(320, 240),
                          {{"Content-Type", "image/jpeg"}});
    REQUIRE(r.status == 202);
    const std::string id(json::parse(r.body).at("id").as_string());
    auto done = json::parse(wait_for_final(port, id, 60s));
    REQUIRE(done.at("state").as_string() == "succeeded");
    return {id, std::string(done.at("outputs").as_array().at(0).at("name").as_string())};
}

std::string fill(std::string path, const real_job& job) {
    for (auto [name, value] : {std::pair<std::string, std::string>{"{id}", job.id}, {"{file}", job.file}})
        if (auto at = path.find(name); at != std::string::npos) path.replace(at, name.size(), value);
    return path;
}

struct probe_result {
    int status = 0;
    std::string code;     // the error code of a JSON error answer
    std::string message;  // and its message
};

// One request of `method` (upper case) to the template `path`, with what it needs to be a real request.
probe_result probe(unsigned short port, const std::string& method, const std::string& path, const real_job& job) {
    const std::string target = fill(path, job);
    if (method == "GET" && path == "/api/v1/events") return {stream_status(port, target), {}, {}};
    http_reply r;
    if (method == "POST" && path == "/api/v1/jobs")
        r = http_request(port, method, target + "?filename=probe.jpg", synthetic_jpeg(64, 48),
                         {{"Content-Type", "image/jpeg"}});
    else
        r = http_request(port, method, target);
    probe_result out{r.status, {}, {}};
    if (r.headers.count("content-type") && r.headers.at("content-type") == "application/json" && !r.body.empty()) {
        boost::system::error_code ec;
        auto v = json::parse(r.body, ec);
        // {"error": {...}}; a job's own "error" (null, or its last failure) sits beside its "id".
        if (!ec && v.is_object() && !v.as_object().contains("id") && v.as_object().contains("error") &&
            v.at("error").is_object()) {
            out.code = std::string(v.at("error").at("code").as_string());
            out.message = std::string(v.at("error").at("message").as_string());
        }
    }
    return out;
}

// The server has a handler for it: not 405, and not the router's or the static files' "nothing here" 404.
bool answered(const probe_result& r) {
    if (r.status == 405) return false;
    if (r.status == 404 && (r.message.starts_with("no route for ") || r.message.starts_with("no such page"))) return false;
    return true;
}

const json::object* operation_in(const json::object& spec, const std::string& path, const std::string& method) {
    const auto* item = spec.at("paths").as_object().if_contains(path);
    if (!item) return nullptr;
    const auto* op = item->as_object().if_contains(method);
    return op && op->is_object() ? &op->as_object() : nullptr;
}

// Every route the server answers, read from its route table (src/http/routes.cpp). The server
// also answers HEAD wherever it answers GET; HEAD is listed only where the spec describes it.
std::vector<std::pair<std::string, std::string>> server_routes(const json::object& spec) {
    using namespace quickthumb::http;
    std::vector<std::pair<std::string, std::string>> out;
    auto add = [&](const std::string& method, const std::string& path) {
        if (std::find(out.begin(), out.end(), std::pair{method, path}) == out.end()) out.emplace_back(method, path);
    };
    for (const auto& r : routes()) {
        std::vector<std::string> paths{std::string(r.pattern)};
        if (r.pattern == "/{file}") {  // every embedded web/ file (openapi.json among them)
            paths.clear();
            for (const auto& a : quickthumb::web::assets()) paths.emplace_back(a.path);
        }
        for (const auto& path : paths) {
            if (r.methods & m_get) {
                add("GET", path);
                if (operation_in(spec, path, "head")) add("HEAD", path);
            }
            if (r.methods & m_post) add("POST", path);
            if (r.methods & m_delete) add("DELETE", path);
        }
    }
    return out;
}

}  // namespace

TEST_CASE("openapi: GET /openapi.json is an OpenAPI 3.1 description", "[openapi]") {
    temp_dir dir;
    server_process server(dir.path());
    auto r = http_request(server.port(), "GET", "/openapi.json");
    REQUIRE(r.status == 200);
    CHECK(r.headers.at("content-type") == "application/json");
    auto spec = fetch_spec(server.port());
    CHECK(spec.at("openapi").as_string() == "3.1.0");
    CHECK(spec.at("info").at("title").as_string() == "quickthumb");
    CHECK(spec.at("servers").as_array().at(0).at("url").as_string() == "/");
    CHECK(spec.at("paths").as_object().size() >= 10);
    auto head = http_request(server.port(), "HEAD", "/openapi.json");
    CHECK(head.status == 200);
    CHECK(head.headers.at("content-length") == std::to_string(r.body.size()));
}

TEST_CASE("openapi: every operation in the spec is answered by the server", "[openapi][e2e]") {
    temp_dir dir;
    server_process server(dir.path());
    const auto spec = fetch_spec(server.port());
    const auto job = make_job(server.port());
    int operations = 0;
    for (const auto& [path_key, item] : spec.at("paths").as_object()) {
        const std::string path(path_key);
        for (const auto& [method_key, op] : item.as_object()) {
            const std::string method(method_key);
            if (std::find(http_methods.begin(), http_methods.end(), method) == http_methods.end()) continue;
            ++operations;
            const auto r = probe(server.port(), upper(method), path, job);
            INFO(upper(method) << " " << path << " -> " << r.status << " " << r.code << " " << r.message);
            CHECK(answered(r));
            // And with a status the spec lists for that operation.
            CHECK(op.at("responses").as_object().contains(std::to_string(r.status)));
        }
    }
    CHECK(operations >= 17);
}

TEST_CASE("openapi: every route the server answers is in the spec and nothing else is answered", "[openapi][e2e]") {
    temp_dir dir;
    server_process server(dir.path());
    const auto spec = fetch_spec(server.port());
    const auto job = make_job(server.port());

    for (const auto& [method, path] : server_routes(spec)) {
        INFO(method << " " << path);
        CHECK(operation_in(spec, path, lower(method)) != nullptr);
        const auto r = probe(server.port(), method, path, job);
        INFO("-> " << r.status << " " << r.code << " " << r.message);
        CHECK(answered(r));
    }

    // Outside the spec: the server answers 404 (unknown path) or 405 (known path, other method).
    const std::vector<std::tuple<std::string, std::string, int>> outside = {
        {"GET", "/api/v1/nope", 404},
        {"GET", "/api/v2/jobs", 404},
        {"POST", "/api/v2/jobs", 404},
        {"GET", "/api/v1", 404},
        {"GET", "/nope.html", 404},
        {"GET", "/thumbs/{id}", 404},
        {"PUT", "/api/v1/jobs/{id}", 405},
        {"PATCH", "/api/v1/jobs/{id}", 405},
        {"POST", "/api/v1/jobs/{id}", 405},
        {"PUT", "/api/v1/jobs", 405},
        {"DELETE", "/api/v1/jobs", 405},
        {"GET", "/api/v1/jobs/{id}/retry", 405},
        {"POST", "/api/v1/events", 405},
        {"DELETE", "/thumbs/{id}/{file}", 405},
        {"POST", "/healthz", 405},
        {"POST", "/readyz", 405},
        {"DELETE", "/metrics", 405},
    };
    for (const auto& [method, path, status] : outside) {
        const auto r = probe(server.port(), method, path, job);
        INFO(method << " " << path << " -> " << r.status << " " << r.code << " " << r.message);
        CHECK(r.status == status);
        CHECK_FALSE(answered(r));
        CHECK(r.code == (status == 404 ? "not_found" : "method_not_allowed"));
        CHECK(operation_in(spec, path, lower(method)) == nullptr);
    }
}

TEST_CASE("openapi: the Error code enum is every code the server can send", "[openapi]") {
    temp_dir dir;
    server_process server(dir.path());
    const auto spec = fetch_spec(server.port());
    const auto& schemas = spec.at("components").at("schemas").as_object();
    // Error.error is an ErrorDetail whose code is the ErrorCode enum.
    REQUIRE(schemas.at("Error").at("properties").at("error").at("$ref").as_string() ==
            "#/components/schemas/ErrorDetail");
    REQUIRE(schemas.at("ErrorDetail").at("properties").at("code").at("$ref").as_string() ==
            "#/components/schemas/ErrorCode");
    std::set<std::string> in_spec;
    for (const auto& v : schemas.at("ErrorCode").at("enum").as_array()) in_spec.insert(std::string(v.as_string()));

    std::set<std::string> sent;
    for (int e = static_cast<int>(quickthumb::errc::ok) + 1; e <= static_cast<int>(quickthumb::errc_last); ++e)
        sent.insert(std::string(quickthumb::errc_name(static_cast<quickthumb::errc>(e))));
    CHECK(sent.size() == static_cast<std::size_t>(quickthumb::errc_last));  // the names are distinct
    CHECK(in_spec == sent);
}
