#pragma once
// A real redis-server for the tests: on a free port, with its data in a directory the test owns
// (append-only file, fsync on every write, so a SIGKILL loses nothing it acknowledged and a
// restart on the same directory finds everything again). Plus a tiny blocking client to look at
// what the service wrote.
#include "quickthumb/resp.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace qt_test {

// The redis-server binary, if there is one (/usr/bin/redis-server or on PATH).
std::optional<std::filesystem::path> redis_server_binary();

// A TCP port nobody listens on right now.
unsigned short free_tcp_port();

class redis_process {
public:
    // Starts redis-server on a free port with its data in `dir`, plus `extra_args` (e.g.
    // {"--maxmemory-policy", "allkeys-lru"}), and waits (up to 20 s) until it answers PING.
    explicit redis_process(std::filesystem::path dir, std::vector<std::string> extra_args = {});
    ~redis_process();  // SIGKILL if still running
    redis_process(const redis_process&) = delete;
    redis_process& operator=(const redis_process&) = delete;

    unsigned short port() const { return port_; }
    std::string url(int db = 0) const;
    bool running() const { return pid_ > 0; }

    // SIGKILL and wait: nothing is flushed, like a crash or an OOM kill.
    void kill();
    // SIGSTOP / SIGCONT: a server that hangs (connections stay open, nothing is answered).
    void pause();
    void resume();
    // Starts again on the same port and arguments, with its data in `dir` (the same directory
    // keeps the data; an empty one starts empty). Waits for PING.
    void start(const std::filesystem::path& dir);
    void start() { start(dir_); }

    // The server's log (for failure messages).
    std::string log() const;

private:
    void spawn();
    void wait_ready();

    std::filesystem::path dir_;
    std::filesystem::path log_path_;
    std::vector<std::string> extra_args_;
    unsigned short port_ = 0;
    int pid_ = -1;
};

// One command on a fresh blocking connection (10 s deadline); the reply. Throws when it cannot
// connect or the reply does not come.
quickthumb::resp::value redis_command(unsigned short port, const std::vector<std::string>& args);

// A RESP2 "map" (flat [key, value, ...] array, as XINFO answers) as a std::map.
std::map<std::string, quickthumb::resp::value> as_map(const quickthumb::resp::value& v);

// Polls `condition` every 20 ms until it holds or `timeout` passes; whether it held. (Polling a
// real process is the only way to observe it; the deadline only bounds a failure.)
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

}  // namespace qt_test

// For a test that needs redis-server: says so visibly and skips when it is not installed.
#define QT_REQUIRE_REDIS_SERVER()                                                                  \
    do {                                                                                            \
        if (!qt_test::redis_server_binary()) {                                                      \
            WARN("redis-server is not installed: skipping this test (install it: apt-get install redis-server)"); \
            return;                                                                                 \
        }                                                                                           \
    } while (false)
