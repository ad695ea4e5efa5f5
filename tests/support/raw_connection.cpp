#include "support/raw_connection.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdexcept>
#include <sys/socket.h>
#include <unistd.h>

namespace qt_test {
namespace {

using clock = std::chrono::steady_clock;

int ms_left(clock::time_point until) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - clock::now()).count();
    return left < 0 ? 0 : static_cast<int>(left);
}

sockaddr_in address(const std::string& ip, unsigned short port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    if (::inet_pton(AF_INET, ip.c_str(), &a.sin_addr) != 1) throw std::runtime_error("bad address " + ip);
    return a;
}

// One HTTP answer at the start of `raw`: its length in bytes and the parsed reply, or nullopt
// when it has not all arrived.
std::optional<std::pair<std::size_t, http_reply>> parse_reply(const std::string& raw) {
    const auto end = raw.find("\r\n\r\n");
    if (end == std::string::npos) return std::nullopt;
    http_reply r;
    if (raw.compare(0, 5, "HTTP/") != 0 || raw.size() < 12) throw std::runtime_error("not an HTTP answer: " + raw.substr(0, 40));
    r.status = std::stoi(raw.substr(9, 3));
    std::size_t line = raw.find("\r\n") + 2;
    while (line < end) {
        const auto eol = raw.find("\r\n", line);
        const auto colon = raw.find(':', line);
        if (colon != std::string::npos && colon < eol) {
            std::string name = raw.substr(line, colon - line);
            for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            auto value = raw.substr(colon + 1, eol - colon - 1);
            while (!value.empty() && value.front() == ' ') value.erase(0, 1);
            r.headers[name] = value;
        }
        line = eol + 2;
    }
    const std::size_t length = r.headers.count("content-length") ? std::stoul(r.headers["content-length"]) : 0;
    if (raw.size() < end + 4 + length) return std::nullopt;
    r.body = raw.substr(end + 4, length);
    return std::pair{end + 4 + length, std::move(r)};
}

}  // namespace

raw_connection::raw_connection(unsigned short port, const std::string& source) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    if (!source.empty()) {
        auto from = address(source, 0);
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0) {
            ::close(fd_);
            throw std::runtime_error("bind to " + source + " failed");
        }
    }
    auto to = address("127.0.0.1", port);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
        ::close(fd_);
        throw std::runtime_error("connect failed");
    }
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

raw_connection::raw_connection(raw_connection&& other) noexcept
    : fd_(other.fd_), closed_(other.closed_), pending_(std::move(other.pending_)) {
    other.fd_ = -1;
}

raw_connection::~raw_connection() {
    if (fd_ >= 0) ::close(fd_);
}

bool raw_connection::send(std::string_view data, std::chrono::milliseconds timeout) {
    const auto until = clock::now() + timeout;
    while (!data.empty()) {
        const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            data.remove_prefix(static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            pollfd p{fd_, POLLOUT, 0};
            if (::poll(&p, 1, ms_left(until)) <= 0) return false;
            continue;
        }
        return false;  // reset or closed
    }
    return true;
}

bool raw_connection::pump() {
    char buf[16384];
    for (;;) {
        const ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
            pending_.append(buf, static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
        closed_ = true;  // EOF, or a reset
        return false;
    }
}

std::optional<http_reply> raw_connection::read_reply(std::chrono::milliseconds timeout) {
    const auto until = clock::now() + timeout;
    for (;;) {
        if (auto r = parse_reply(pending_)) {
            pending_.erase(0, r->first);
            return std::move(r->second);
        }
        if (closed_) return std::nullopt;
        pollfd p{fd_, POLLIN, 0};
        const int ready = ::poll(&p, 1, ms_left(until));
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) return std::nullopt;
        pump();
    }
}

bool raw_connection::wait_closed(std::chrono::milliseconds timeout) {
    const auto until = clock::now() + timeout;
    while (!closed_) {
        pollfd p{fd_, POLLIN, 0};
        const int ready = ::poll(&p, 1, ms_left(until));
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) return false;
        pump();
    }
    return true;
}

std::size_t wait_all_closed(std::vector<raw_connection>& conns, std::chrono::milliseconds timeout) {
    const auto until = clock::now() + timeout;
    for (;;) {
        std::vector<pollfd> open;
        std::vector<raw_connection*> who;
        for (auto& c : conns)
            if (!c.closed_now()) {
                open.push_back({c.fd(), POLLIN, 0});
                who.push_back(&c);
            }
        if (open.empty() || ms_left(until) == 0) return conns.size() - open.size();
        const int ready = ::poll(open.data(), open.size(), ms_left(until));
        if (ready < 0 && errno != EINTR) return conns.size() - open.size();
        for (std::size_t i = 0; i < open.size(); ++i)
            if (open[i].revents) who[i]->pump();
    }
}

}  // namespace qt_test
