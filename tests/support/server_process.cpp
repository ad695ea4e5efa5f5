#include "support/server_process.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <csignal>
#include <cstdlib>
#include <fcntl.h>
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

server_process::server_process(const fs::path& data_dir, std::vector<std::string> extra_args) {
    std::vector<std::string> args = {QT_BINARY_PATH, "serve",  "--port",     "0",
                                     "--bind",       "127.0.0.1", "--data", data_dir.string()};
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
    int rc = posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(fds[1]);
    if (rc != 0) {
        ::close(fds[0]);
        throw std::runtime_error("cannot start " + args[0]);
    }
    out_fd_ = fds[0];

    // Wait for "listening on http://ADDR:PORT".
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
        auto pos = output_.find("listening on http://");
        if (pos != std::string::npos) {
            auto eol = output_.find('\n', pos);
            if (eol != std::string::npos) {
                auto colon = output_.rfind(':', eol);
                port_ = static_cast<unsigned short>(std::stoi(output_.substr(colon + 1, eol - colon - 1)));
                return;
            }
        }
        pollfd p{out_fd_, POLLIN, 0};
        if (::poll(&p, 1, 200) > 0) {
            char buf[4096];
            ssize_t n = ::read(out_fd_, buf, sizeof buf);
            if (n <= 0) break;  // exited
            output_.append(buf, static_cast<std::size_t>(n));
        }
    }
    std::string out = output();
    stop(SIGKILL);
    throw std::runtime_error("quickthumb did not start; it printed:\n" + out);
}

server_process::~server_process() {
    if (pid_ > 0) stop(SIGKILL);
    if (out_fd_ >= 0) ::close(out_fd_);
}

std::string server_process::output() {
    if (out_fd_ >= 0) {
        int flags = ::fcntl(out_fd_, F_GETFL);
        ::fcntl(out_fd_, F_SETFL, flags | O_NONBLOCK);
        char buf[4096];
        ssize_t n;
        while ((n = ::read(out_fd_, buf, sizeof buf)) > 0) output_.append(buf, static_cast<std::size_t>(n));
        ::fcntl(out_fd_, F_SETFL, flags);
    }
    return output_;
}

int server_process::stop(int signal) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, signal);
    // Keep draining output so the child never blocks on a full pipe while exiting.
    int status = 0;
    for (;;) {
        pid_t r = ::waitpid(pid_, &status, WNOHANG);
        if (r == pid_) break;
        if (r < 0) return -1;
        pollfd p{out_fd_, POLLIN, 0};
        if (::poll(&p, 1, 50) > 0) {
            char buf[4096];
            ssize_t n = ::read(out_fd_, buf, sizeof buf);
            if (n > 0) output_.append(buf, static_cast<std::size_t>(n));
        }
    }
    pid_ = -1;
    output();
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

http_reply http_request(unsigned short port, const std::string& method, const std::string& target,
                        const std::string& body, const std::map<std::string, std::string>& headers) {
    boost::asio::io_context io;
    beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::seconds(30));
    stream.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
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
