#pragma once
// A raw Server-Sent Events reader for the black-box tests (GET /api/v1/events), and the parsing
// of what it read.
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

namespace qt_test {
// A raw event-stream reader: sends the request, then reads what arrives, with a deadline.
class sse_client {
public:
    sse_client(unsigned short port, const std::string& target, const std::string& extra_headers = {},
               int rcvbuf = 0) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(fd_ >= 0);
        if (rcvbuf > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        const std::string req = "GET " + target + " HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n" +
                                extra_headers + "\r\n";
        REQUIRE(::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size()));
    }
    ~sse_client() { ::close(fd_); }

    // Reads until `pred(text so far)` holds or the deadline passes; returns whether it held.
    template <class Pred>
    bool read_until(Pred pred, std::chrono::seconds limit) {
        const auto until = std::chrono::steady_clock::now() + limit;
        while (!pred(text_)) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
            if (left.count() <= 0) return false;
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
            char buf[8192];
            const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) return pred(text_);
            text_.append(buf, static_cast<std::size_t>(n));
        }
        return true;
    }
    const std::string& text() const { return text_; }

private:
    int fd_ = -1;
    std::string text_;
};

struct sse_event {
    std::string id, type;
    boost::json::object data;
};

inline std::vector<sse_event> events_in(const std::string& text) {
    std::vector<sse_event> out;
    const auto body = text.find("\r\n\r\n");
    if (body == std::string::npos) return out;
    std::size_t pos = body + 4;
    for (;;) {
        const auto end = text.find("\n\n", pos);
        if (end == std::string::npos) break;
        sse_event e;
        std::string block = text.substr(pos, end - pos);
        pos = end + 2;
        std::size_t i = 0;
        while (i < block.size()) {
            auto nl = block.find('\n', i);
            std::string line = block.substr(i, nl == std::string::npos ? std::string::npos : nl - i);
            i = nl == std::string::npos ? block.size() : nl + 1;
            if (line.rfind("id: ", 0) == 0) e.id = line.substr(4);
            else if (line.rfind("event: ", 0) == 0) e.type = line.substr(7);
            else if (line.rfind("data: ", 0) == 0) e.data = boost::json::parse(line.substr(6)).as_object();
        }
        if (!e.type.empty()) out.push_back(std::move(e));
    }
    return out;
}

// The states one job went through, in the order the stream told them.
inline std::vector<std::string> states_of(const std::vector<sse_event>& evs, const std::string& job) {
    std::vector<std::string> out;
    for (const auto& e : evs)
        if (e.type == "job" && e.data.at("id").as_string() == job) {
            std::string s(e.data.at("state").as_string());
            if (out.empty() || out.back() != s) out.push_back(s);
        }
    return out;
}

}  // namespace qt_test
