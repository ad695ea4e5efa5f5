#pragma once
// Abuse limits as pure logic (no I/O, no clock of their own, so tests need neither sockets nor
// time): a per-client token bucket for uploads, the count of open connections per peer, and who
// the client is behind a trusted proxy.
#include <chrono>
#include <cstddef>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace quickthumb::http {

// Token buckets, one per client: `rate` tokens a second up to `burst`; each upload takes one.
// Memory is bounded: at most `max_clients` buckets. A bucket that has refilled to full is
// forgotten (a new one starts full: nothing is lost); when all are in use, the least recently
// seen client is forgotten first. Not thread-safe: the network runs on one io_context thread.
class rate_limiter {
public:
    using clock = std::chrono::steady_clock;

    rate_limiter(double rate, double burst, std::size_t max_clients = 100'000);

    struct decision {
        bool allowed = true;
        // When refused: whole seconds until a token is there, at least 1 (for Retry-After).
        long long retry_after_seconds = 0;
    };
    // Takes a token for `client` at `now`, or says how long until there is one.
    decision take(const std::string& client, clock::time_point now);

    std::size_t tracked() const { return buckets_.size(); }

private:
    struct bucket {
        double tokens;
        clock::time_point seen;
        std::list<std::string>::iterator lru;  // its place in lru_ (front: most recently seen)
    };
    double tokens_at(const bucket& b, clock::time_point now) const;
    void forget_full(clock::time_point now);

    double rate_;
    double burst_;
    std::size_t max_clients_;
    std::list<std::string> lru_;
    std::unordered_map<std::string, bucket> buckets_;
};

// Open connections, in all and per peer address. Not thread-safe (the network thread only).
class connection_counter {
public:
    connection_counter(std::size_t max_total, std::size_t max_per_peer)
        : max_total_(max_total), max_per_peer_(max_per_peer) {}
    // Counts a new connection from `peer` unless a cap is reached (then nothing changes).
    bool try_open(const std::string& peer);
    void close(const std::string& peer);
    std::size_t open() const { return total_; }
    std::size_t open_from(const std::string& peer) const;
    void set_max_total(std::size_t n) { max_total_ = n; }

private:
    std::size_t max_total_;
    std::size_t max_per_peer_;
    std::size_t total_ = 0;
    std::unordered_map<std::string, std::size_t> per_peer_;
};

// The client a trusted proxy names: the rightmost address of X-Forwarded-For (the one the proxy
// itself appended; what is left of it came from the client and may be forged). `header` is every
// X-Forwarded-For value joined with ','. nullopt when it is missing or not an IP address.
std::optional<std::string> forwarded_client(std::string_view header);

// A peer address as the limits key it: IPv4-mapped IPv6 (::ffff:1.2.3.4) as plain IPv4.
std::string normalized_address(std::string_view address);

// How many connections fit under an open-file limit, leaving room for the files the service opens
// itself (SQLite, uploads being received, thumbnails, Redis): the smaller of `wanted` and that.
std::size_t connection_cap_for(std::size_t wanted, std::size_t open_file_limit);

}  // namespace quickthumb::http
