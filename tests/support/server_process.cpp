#include "support/server_process.hpp"

#include "support/s3_process.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <poll.h>
#include <random>
#include <spawn.h>
#include <stdexcept>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace qt_test {
namespace fs = std::filesystem;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = boost::asio::ip::tcp;

temp_dir::temp_dir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() / ("qt-test-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path_);
}

temp_dir::~temp_dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
}

server_process::server_process(const fs::path& data_dir, std::vector<std::string> extra_args)
    : server_process(data_dir, std::move(extra_args), launch_options{}) {}

server_process::server_process(const fs::path& data_dir, std::vector<std::string> extra_args,
                               launch_options options) {
    try {
        start(data_dir, std::move(extra_args), std::move(options));
    } catch (...) {
        // The destructor does not run for a constructor that throws: leave nothing behind.
        if (pid_ > 0) stop(SIGKILL);
        if (drainer_.joinable()) {
            drainer_stop_ = true;
            drainer_.join();
        }
        if (out_fd_ >= 0) ::close(out_fd_);
        out_fd_ = -1;
        throw;
    }
}

long proc_status_kib(int pid, const std::string& field) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.starts_with(field + ":")) return std::stol(line.substr(field.size() + 1));
    throw std::runtime_error("no " + field + " in /proc/" + std::to_string(pid) + "/status");
}

bool bucket_mode() {
    const char* v = std::getenv("QT_TEST_STORAGE");
    return v && std::string_view(v) == "bucket";
}

s3_process& shared_bucket() {
    // Started on first use, stopped at exit (after every server of the run is gone).
    static temp_dir dir;
    static s3_process s3(dir.path() / "swift");
    return s3;
}

std::string bucket_prefix(const fs::path& data_dir) {
    std::error_code ec;
    auto canonical = fs::weakly_canonical(data_dir, ec);
    return "t" + std::to_string(std::hash<std::string>{}((ec ? data_dir : canonical).string()));
}

bool stored(const fs::path& data_dir, const std::string& relative) {
    if (!bucket_mode()) return fs::exists(data_dir / relative);
    const std::string key = bucket_prefix(data_dir) + "/" + relative;
    for (const auto& k : shared_bucket().keys())
        if (k == key || k.starts_with(key + "/")) return true;
    return false;
}

void server_process::start(const fs::path& data_dir, std::vector<std::string> extra_args, launch_options options) {
    std::vector<std::string> args = options.prefix;
    for (std::string a : {std::string(QT_BINARY_PATH), std::string("serve"), std::string("--port"), std::string("0"),
                          std::string("--bind"), std::string("127.0.0.1"), std::string("--data"), data_dir.string()})
        args.push_back(std::move(a));
    // Tests upload fast from one address: no upload rate limit unless a test asks for one (a
    // later flag wins).
    if (options.default_upload_rate_off) {
        args.push_back("--upload-rate");
        args.push_back("0");
    }
    // QT_TEST_STORAGE=bucket: the same cases on the bucket backend (one Swift for the whole run,
    // a prefix per data directory), unless the test chose its storage itself.
    if (bucket_mode() && std::find(extra_args.begin(), extra_args.end(), "--storage") == extra_args.end()) {
        auto& s3 = shared_bucket();
        for (auto& a : s3.storage_args(bucket_prefix(data_dir))) args.push_back(std::move(a));
        for (auto& e : s3.env()) options.env.push_back(std::move(e));
    }
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    // The test's environment, with options.env's variables set over it.
    std::vector<std::string> env_strings;
    for (char** e = environ; *e; ++e) {
        const std::string_view kv(*e);
        const auto name = kv.substr(0, kv.find('='));
        bool replaced = false;
        for (const auto& [k, v] : options.env) replaced = replaced || k == name;
        if (!replaced) env_strings.emplace_back(kv);
    }
    for (const auto& [k, v] : options.env) env_strings.push_back(k + "=" + v);
    std::vector<char*> envp;
    for (auto& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    int rc = options.prefix.empty() ? posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), envp.data())
                                    : posix_spawnp(&pid_, argv[0], &fa, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    ::close(fds[1]);
    if (rc != 0) {
        pid_ = -1;
        ::close(fds[0]);
        throw std::runtime_error("cannot start " + args[0]);
    }
    out_fd_ = fds[0];

    // Wait for "listening on http://ADDR:PORT".
    const auto deadline = std::chrono::steady_clock::now() + options.start_timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        {
            std::lock_guard lk(output_mutex_);
            auto pos = output_.find("listening on http://");
            if (pos != std::string::npos) {
                auto eol = output_.find('\n', pos);
                if (eol != std::string::npos) {
                    auto colon = output_.rfind(':', eol);
                    port_ = static_cast<unsigned short>(std::stoi(output_.substr(colon + 1, eol - colon - 1)));
                    break;
                }
            }
        }
        pollfd p{out_fd_, POLLIN, 0};
        if (::poll(&p, 1, 200) > 0) {
            char buf[4096];
            ssize_t n = ::read(out_fd_, buf, sizeof buf);
            if (n <= 0) break;  // exited
            std::lock_guard lk(output_mutex_);
            output_.append(buf, static_cast<std::size_t>(n));
        }
    }
    if (port_ != 0) {
        if (options.drain_output) drainer_ = std::thread([this] { drain_loop(); });
        return;
    }
    std::string out = output();
    stop(SIGKILL);
    throw std::runtime_error("quickthumb did not start; it printed:\n" + out);
}

server_process::~server_process() {
    if (pid_ > 0) stop(SIGKILL);
    if (exit_status_ == sanitizer_exit_code) {
        // A destructor cannot fail a Catch test; aborting fails the whole run, report shown.
        std::fprintf(stderr, "server_process: the server exited with %d, a sanitizer's report:\n%s\n",
                     sanitizer_exit_code, output().c_str());
        std::abort();
    }
    if (drainer_.joinable()) {
        drainer_stop_ = true;
        drainer_.join();
    }
    if (out_fd_ >= 0) ::close(out_fd_);
}

void server_process::drain_loop() {
    // Ends at end of file (every writer gone), when asked, or when the child has been reaped and
    // nothing more arrives (a grandchild holding the pipe must not hang the test).
    int idle_after_exit = 0;
    while (!drainer_stop_) {
        pollfd p{out_fd_, POLLIN, 0};
        int r = ::poll(&p, 1, 100);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            if (exited_ && ++idle_after_exit >= 5) return;
            continue;
        }
        char buf[4096];
        ssize_t n = ::read(out_fd_, buf, sizeof buf);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) return;
        std::lock_guard lk(output_mutex_);
        output_.append(buf, static_cast<std::size_t>(n));
    }
}

void server_process::pump(int poll_ms) {
    if (drainer_.joinable() || out_fd_ < 0) return;
    pollfd p{out_fd_, POLLIN, 0};
    if (::poll(&p, 1, poll_ms) > 0) {
        char buf[4096];
        ssize_t n = ::read(out_fd_, buf, sizeof buf);
        if (n > 0) {
            std::lock_guard lk(output_mutex_);
            output_.append(buf, static_cast<std::size_t>(n));
        }
    }
}

std::string server_process::output() {
    if (out_fd_ >= 0 && !drainer_.joinable()) {
        int flags = ::fcntl(out_fd_, F_GETFL);
        ::fcntl(out_fd_, F_SETFL, flags | O_NONBLOCK);
        char buf[4096];
        ssize_t n;
        while ((n = ::read(out_fd_, buf, sizeof buf)) > 0) {
            std::lock_guard lk(output_mutex_);
            output_.append(buf, static_cast<std::size_t>(n));
        }
        ::fcntl(out_fd_, F_SETFL, flags);
    }
    std::lock_guard lk(output_mutex_);
    return output_;
}

void server_process::signal(int sig) {
    if (pid_ > 0) ::kill(pid_, sig);
}

bool server_process::running() {
    if (pid_ <= 0) return false;
    return !wait_exit(std::chrono::milliseconds(0)).has_value();
}

std::optional<int> server_process::wait_exit(std::chrono::milliseconds timeout) {
    if (pid_ <= 0) return exit_status_;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    for (;;) {
        pid_t r = ::waitpid(pid_, &status, WNOHANG);
        if (r == pid_) break;
        if (r < 0) {
            pid_ = -1;
            exited_ = true;
            exit_status_ = -1;
            if (drainer_.joinable()) drainer_.join();
            return exit_status_;
        }
        const auto now = std::chrono::steady_clock::now();
        if (now >= deadline) return std::nullopt;
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
        const int step = static_cast<int>(std::min<long long>(left, 20));
        if (drainer_.joinable()) {
            // The drainer reads the pipe; wait on nothing but the clock, in short steps.
            pollfd none{-1, 0, 0};
            ::poll(&none, 0, step);
        } else {
            // Keep draining output so the child never blocks on a full pipe while exiting.
            pump(step);
        }
    }
    pid_ = -1;
    exited_ = true;
    if (WIFEXITED(status)) exit_status_ = WEXITSTATUS(status);
    else if (WIFSIGNALED(status)) exit_status_ = 128 + WTERMSIG(status);
    else exit_status_ = -1;
    if (drainer_.joinable()) drainer_.join();  // it stops at end of file, or soon after the exit
    output();
    return exit_status_;
}

int server_process::stop(int signal) {
    if (pid_ <= 0) return exit_status_;
    ::kill(pid_, signal);
    for (;;)
        if (auto st = wait_exit(std::chrono::hours(1))) return *st;
}

http_reply http_request(unsigned short port, const std::string& method, const std::string& target,
                        const std::string& body, const std::map<std::string, std::string>& headers) {
    return http_request_from({}, port, method, target, body, headers);
}

tcp::socket connect_from(boost::asio::io_context& io, const std::string& source, unsigned short port) {
    tcp::socket socket(io);
    socket.open(tcp::v4());
    if (!source.empty()) socket.bind(tcp::endpoint(boost::asio::ip::make_address(source), 0));
    socket.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
    return socket;
}

http_reply http_request_from(const std::string& source, unsigned short port, const std::string& method,
                             const std::string& target, const std::string& body,
                             const std::map<std::string, std::string>& headers) {
    boost::asio::io_context io;
    beast::tcp_stream stream(connect_from(io, source, port));
    stream.expires_after(std::chrono::seconds(30));
    bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
    req.set(bhttp::field::host, "127.0.0.1");
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    if (!body.empty() || method == "POST") req.prepare_payload();
    bhttp::write(stream, req);
    beast::flat_buffer buf;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(256 * 1024 * 1024);
    if (method == "HEAD") parser.skip(true);
    bhttp::read(stream, buf, parser);
    http_reply out;
    out.status = static_cast<int>(parser.get().result_int());
    for (const auto& f : parser.get()) {
        std::string name(f.name_string());
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        out.headers[name] = std::string(f.value());
    }
    out.body = parser.get().body();
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    return out;
}

std::pair<std::string, std::string> multipart_body(const std::vector<form_file>& files,
                                                   const std::map<std::string, std::string>& fields) {
    const std::string boundary = "qtTestBoundary7MA4YWxkTrZu0gW";
    std::string body;
    for (const auto& [k, v] : fields)
        body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + k + "\"\r\n\r\n" + v + "\r\n";
    for (const auto& f : files) {
        body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + f.field + "\"; filename=\"" +
                f.filename + "\"\r\nContent-Type: " + f.content_type + "\r\n\r\n" + f.data + "\r\n";
    }
    body += "--" + boundary + "--\r\n";
    return {"multipart/form-data; boundary=" + boundary, body};
}

http_reply upload(unsigned short port, const std::vector<form_file>& files,
                  const std::map<std::string, std::string>& fields, const std::string& query) {
    auto [ct, body] = multipart_body(files, fields);
    return http_request(port, "POST", "/api/v1/jobs" + query, body, {{"Content-Type", ct}});
}

std::string wait_for_final(unsigned short port, const std::string& id, std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string last;
    while (std::chrono::steady_clock::now() < deadline) {
        auto r = http_request(port, "GET", "/api/v1/jobs/" + id);
        last = r.body;
        if (r.status == 200) {
            auto state = boost::json::parse(r.body).as_object().at("state").as_string();
            if (state == "succeeded" || state == "failed" || state == "cancelled") return last;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return last;
}

}  // namespace qt_test
