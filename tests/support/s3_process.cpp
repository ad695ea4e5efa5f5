#include "support/s3_process.hpp"

#include "support/redis_process.hpp"  // free_tcp_port, eventually
#include "s3/client.hpp"
#include "s3/xml.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <algorithm>
#include <cstdlib>
#include <csignal>
#include <fcntl.h>
#include <spawn.h>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace qt_test {
namespace fs = std::filesystem;

bool swift_installed() {
    return fs::exists("/usr/bin/swift-proxy-server") && fs::exists("/usr/bin/swift-object-server") &&
           fs::exists("/usr/lib/python3/dist-packages/swift");
}

s3_process::s3_process(fs::path dir, bool tls)
    : dir_(std::move(dir)),
      tls_(tls),
      port_(free_tcp_port()),
      account_port_(free_tcp_port()),
      container_port_(free_tcp_port()),
      object_port_(free_tcp_port()) {
    fs::create_directories(dir_);
    const std::string cmd = std::string(QT_SOURCE_DIR) + "/tests/s3/swift-configure.sh '" + dir_.string() + "' " +
                            std::to_string(port_) + " " + std::to_string(account_port_) + " " +
                            std::to_string(container_port_) + " " + std::to_string(object_port_) + (tls_ ? " tls" : "") + " > '" +
                            (dir_ / "configure.log").string() + "' 2>&1";
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("swift-configure.sh failed: see " + (dir_ / "configure.log").string());
    start();
    // The proxy may answer before the servers behind it do (503 "reduce your request rate"): the
    // bucket is made once they all do.
    quickthumb::s3::client c(settings(), {});
    std::string last;
    const bool made = eventually(
        [&] {
            auto r = c.send_blocking(quickthumb::s3::make_request("CreateBucket", boost::beast::http::verb::put, ""));
            if (!r) last = r.error().message;
            return r.has_value();
        },
        std::chrono::seconds(60));
    if (!made) {
        kill();
        throw std::runtime_error("cannot make the test bucket: " + last);
    }
    bucket_made_ = true;
    // Under load Swift may still answer NoSuchBucket to a listing just after the bucket was made
    // (its container server catches up): the service's start-up check lists it, so wait for that.
    const bool listed = eventually(
        [&] {
            auto list = quickthumb::s3::make_request("ListObjectsV2", boost::beast::http::verb::get, "",
                                                     {{"list-type", "2"}, {"max-keys", "1"}});
            auto r = c.send_blocking(list);
            if (!r) last = r.error().message;
            return r.has_value();
        },
        std::chrono::seconds(60));
    if (!listed) {
        kill();
        throw std::runtime_error("the test bucket cannot be listed: " + last);
    }
}

s3_process::~s3_process() { kill(); }

std::vector<std::pair<std::string, std::string>> s3_process::env() const {
    return {{"AWS_ACCESS_KEY_ID", access_key},
            {"AWS_SECRET_ACCESS_KEY", secret_key},
            {"AWS_REGION", "us-east-1"},
            {"AWS_ENDPOINT_URL", endpoint()},
            {"AWS_SESSION_TOKEN", ""},
            {"AWS_CA_BUNDLE", tls_ ? ca_bundle().string() : std::string()}};
}

std::vector<std::string> s3_process::storage_args(const std::string& prefix) const {
    return {"--storage", std::string("s3://") + bucket + (prefix.empty() ? "" : "/" + prefix), "--s3-path-style"};
}

quickthumb::s3::bucket_settings s3_process::settings(const std::string& prefix) const {
    quickthumb::s3::bucket_settings s;
    s.location.bucket = bucket;
    s.location.prefix = prefix.empty() ? "" : prefix + "/";
    s.keys = {access_key, secret_key, ""};
    s.region = "us-east-1";
    s.server = {tls_, "127.0.0.1", std::to_string(port_)};
    s.path_style = true;
    if (tls_) s.ca_bundle = ca_bundle().string();
    return s;
}

void s3_process::kill() {
    for (int pid : pids_) ::kill(pid, SIGKILL);
    for (int pid : pids_) {
        int status = 0;
        ::waitpid(pid, &status, 0);
    }
    pids_.clear();
}

void s3_process::start() {
    if (!pids_.empty()) throw std::logic_error("swift is already running");
    spawn();
    wait_ready();
}

void s3_process::spawn() {
    for (const char* server : {"account", "container", "object", "proxy"}) {
        std::vector<std::string> args = {std::string("/usr/bin/swift-") + server + "-server",
                                         (dir_ / "conf" / (std::string(server) + "-server.conf")).string()};
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        const std::string log = (dir_ / (std::string(server) + ".log")).string();
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        int pid = -1;
        const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        if (rc != 0) {
            kill();
            throw std::runtime_error(std::string("cannot start swift-") + server + "-server");
        }
        pids_.push_back(pid);
    }
}

void s3_process::wait_ready() {
    quickthumb::s3::client_options o;
    o.max_attempts = 1;
    o.request_timeout = std::chrono::milliseconds(2000);
    quickthumb::s3::client c(settings(), o);
    std::string last;
    // Any answer from the S3 API (a 404 for the bucket not made yet, too) means the proxy is up;
    // a listing of the account means the servers behind it are.
    const bool ready = eventually(
        [&] {
            for (int pid : pids_) {
                int status = 0;
                if (::waitpid(pid, &status, WNOHANG) == pid) {
                    pids_.erase(std::find(pids_.begin(), pids_.end(), pid));
                    kill();
                    throw std::runtime_error("a swift server exited at start; see the logs in " + dir_.string());
                }
            }
            auto req = quickthumb::s3::make_request("HeadBucket", boost::beast::http::verb::head, "");
            // Before the bucket is made a 404 is the answer; after a restart the bucket must be
            // seen again (Swift says 404 while its container server is not up yet).
            if (!bucket_made_) req.accept_status = {404};
            auto r = c.send_blocking(req);
            if (!r) last = r.error().message;
            return r.has_value();
        },
        std::chrono::seconds(60));
    if (!ready) {
        kill();
        throw std::runtime_error("swift did not answer (last: " + last + ")");
    }
}

std::vector<std::string> s3_process::keys() const {
    quickthumb::s3::client c(settings(), {});
    std::vector<std::string> out;
    std::optional<std::string> token;
    for (;;) {
        auto req = quickthumb::s3::make_request("ListObjectsV2", boost::beast::http::verb::get, "", {{"list-type", "2"}});
        if (token) req.query.push_back({"continuation-token", *token});
        req.body_limit = 64 << 20;
        auto r = c.send_blocking(req);
        if (!r) throw std::runtime_error("cannot list the test bucket: " + r.error().message);
        auto page = quickthumb::s3::parse_list_objects(r->text());
        for (auto& o : page.objects) out.push_back(o.key);
        if (!page.next_token) break;
        token = page.next_token;
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<std::string> s3_process::multipart_uploads() const {
    quickthumb::s3::client c(settings(), {});
    auto req = quickthumb::s3::make_request("ListMultipartUploads", boost::beast::http::verb::get, "", {{"uploads", ""}});
    req.body_limit = 64 << 20;
    auto r = c.send_blocking(req);
    if (!r) throw std::runtime_error("cannot list the test bucket's multipart uploads: " + r.error().message);
    std::vector<std::string> out;
    for (auto& u : quickthumb::s3::parse_list_uploads(r->text()).uploads) out.push_back(u.key);
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace qt_test
