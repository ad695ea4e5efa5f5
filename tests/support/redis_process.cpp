#include "support/redis_process.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <spawn.h>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace qt_test {
namespace fs = std::filesystem;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

std::optional<fs::path> redis_server_binary() {
    if (::access("/usr/bin/redis-server", X_OK) == 0) return fs::path("/usr/bin/redis-server");
    const char* path = std::getenv("PATH");
    if (!path) return std::nullopt;
    std::stringstream dirs(path);
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
        auto candidate = fs::path(dir) / "redis-server";
        if (!dir.empty() && ::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    return std::nullopt;
}

unsigned short free_tcp_port() {
    asio::io_context io;
    tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    return a.local_endpoint().port();
}

redis_process::redis_process(fs::path dir, std::vector<std::string> extra_args)
    : dir_(std::move(dir)), extra_args_(std::move(extra_args)), port_(free_tcp_port()) {
    log_path_ = dir_.parent_path() / ("redis-" + std::to_string(port_) + ".log");
    start(dir_);
}

redis_process::~redis_process() {
    if (pid_ > 0) kill();
}

std::string redis_process::url(int db) const {
    return "redis://127.0.0.1:" + std::to_string(port_) + "/" + std::to_string(db);
}

std::string redis_process::log() const {
    std::ifstream in(log_path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void redis_process::kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
}

void redis_process::pause() {
    if (pid_ > 0) ::kill(pid_, SIGSTOP);
}

void redis_process::resume() {
    if (pid_ > 0) ::kill(pid_, SIGCONT);
}

void redis_process::start(const fs::path& dir) {
    if (pid_ > 0) throw std::logic_error("redis-server is already running");
    dir_ = dir;
    fs::create_directories(dir_);
    spawn();
    wait_ready();
}

void redis_process::spawn() {
    auto binary = redis_server_binary();
    if (!binary) throw std::runtime_error("redis-server is not installed");
    std::vector<std::string> args = {binary->string(), "--port",       std::to_string(port_), "--bind",
                                     "127.0.0.1",      "--save",       "",                    "--appendonly",
                                     "yes",            "--appendfsync", "always",             "--dir",
                                     dir_.string(),    "--daemonize",  "no",                  "--logfile",
                                     log_path_.string()};
    args.insert(args.end(), extra_args_.begin(), extra_args_.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    int rc = posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        pid_ = -1;
        throw std::runtime_error("cannot start redis-server");
    }
}

void redis_process::wait_ready() {
    // Until PONG: while it loads its append-only file it answers -LOADING instead.
    std::string last;
    const bool ready = eventually(
        [&] {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                throw std::runtime_error("redis-server exited at start; its log:\n" + log());
            }
            try {
                auto reply = redis_command(port_, {"PING"});
                last = quickthumb::resp::to_string(reply);
                // A server with --requirepass answers NOAUTH: it is up all the same.
                return reply.str() == "PONG" || (reply.is_error() && reply.text.starts_with("NOAUTH"));
            } catch (const std::exception& e) {
                last = e.what();
                return false;
            }
        },
        std::chrono::seconds(20));
    if (!ready) {
        kill();
        throw std::runtime_error("redis-server did not answer PING (last: " + last + "); its log:\n" + log());
    }
}

quickthumb::resp::value redis_command(unsigned short port, const std::vector<std::string>& args) {
    asio::io_context io;
    tcp::socket s(io);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    timeval tv{10, 0};
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    asio::write(s, asio::buffer(quickthumb::resp::serialize(args)));
    quickthumb::resp::parser parser;
    char buf[16384];
    for (;;) {
        if (auto v = parser.pop()) return *v;
        boost::system::error_code ec;
        std::size_t n = s.read_some(asio::buffer(buf), ec);
        if (ec) throw std::runtime_error("redis " + args.at(0) + ": " + ec.message());
        if (auto fed = parser.feed(std::string_view(buf, n)); !fed) throw std::runtime_error(fed.error().message);
    }
}

std::map<std::string, quickthumb::resp::value> as_map(const quickthumb::resp::value& v) {
    std::map<std::string, quickthumb::resp::value> out;
    for (std::size_t i = 0; i + 1 < v.elements.size(); i += 2) out[v.elements[i].text] = v.elements[i + 1];
    return out;
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (condition()) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

}  // namespace qt_test
