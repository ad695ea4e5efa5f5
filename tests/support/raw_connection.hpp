#pragma once
// A raw TCP client for hostile-client tests: sends bytes exactly as given (partial headers,
// garbage, a byte at a time) and reads what the server answers, with a deadline on every wait.
#include "support/server_process.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace qt_test {

class raw_connection {
public:
    // Connects to 127.0.0.1:port; from `source` (any address in 127/8) when given. Throws on failure.
    explicit raw_connection(unsigned short port, const std::string& source = {});
    ~raw_connection();
    raw_connection(raw_connection&& other) noexcept;
    raw_connection(const raw_connection&) = delete;
    raw_connection& operator=(const raw_connection&) = delete;
    raw_connection& operator=(raw_connection&&) = delete;

    // Sends all of `data` (waiting at most `timeout` for room); false once the peer closed or reset.
    bool send(std::string_view data, std::chrono::milliseconds timeout = std::chrono::seconds(10));
    // Reads one whole answer (header and Content-Length body) within `timeout`; nullopt when the
    // connection closed or the time ran out first. Bytes after it stay for the next call.
    std::optional<http_reply> read_reply(std::chrono::milliseconds timeout);
    // Reads (and keeps) whatever arrives until the peer closes (EOF or reset) or `timeout` passes.
    // True when it closed.
    bool wait_closed(std::chrono::milliseconds timeout);
    // True when the peer has closed already (no wait).
    bool closed_now() { return wait_closed(std::chrono::milliseconds(0)); }
    // Whatever was received and not yet taken by read_reply.
    const std::string& pending() const { return pending_; }
    int fd() const { return fd_; }
    // Reads what is there without waiting (the connection was found readable); false at EOF.
    bool pump();

private:
    int fd_ = -1;
    bool closed_ = false;
    std::string pending_;
};

// Waits until every connection is closed by the peer or `timeout` passes, polling them together;
// returns how many are closed.
std::size_t wait_all_closed(std::vector<raw_connection>& conns, std::chrono::milliseconds timeout);

}  // namespace qt_test
