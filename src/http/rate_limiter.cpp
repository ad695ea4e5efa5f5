#include "rate_limiter.hpp"

#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <cmath>

namespace quickthumb::http {

rate_limiter::rate_limiter(double rate, double burst, std::size_t max_clients)
    : rate_(rate), burst_(std::max(1.0, burst)), max_clients_(std::max<std::size_t>(1, max_clients)) {}

double rate_limiter::tokens_at(const bucket& b, clock::time_point now) const {
    const std::chrono::duration<double> elapsed = now - b.seen;
    return std::min(burst_, b.tokens + std::max(0.0, elapsed.count()) * rate_);
}

// The least recently seen buckets are the likeliest to be full again: drop those from the back.
void rate_limiter::forget_full(clock::time_point now) {
    while (!lru_.empty()) {
        auto it = buckets_.find(lru_.back());
        if (tokens_at(it->second, now) < burst_) break;
        buckets_.erase(it);
        lru_.pop_back();
    }
}

rate_limiter::decision rate_limiter::take(const std::string& client, clock::time_point now) {
    forget_full(now);
    auto it = buckets_.find(client);
    if (it == buckets_.end()) {
        if (buckets_.size() >= max_clients_) {  // every bucket is in use: forget the oldest
            buckets_.erase(lru_.back());
            lru_.pop_back();
        }
        lru_.push_front(client);
        it = buckets_.emplace(client, bucket{burst_, now, lru_.begin()}).first;
    } else {
        lru_.splice(lru_.begin(), lru_, it->second.lru);
    }
    bucket& b = it->second;
    b.tokens = tokens_at(b, now);
    b.seen = std::max(b.seen, now);
    if (b.tokens >= 1.0 - 1e-9) {  // a refill summed in steps may fall a rounding error short
        b.tokens = std::max(0.0, b.tokens - 1.0);
        return {};
    }
    const double wait = (1.0 - b.tokens) / rate_;
    return {false, std::max(1ll, static_cast<long long>(std::ceil(wait)))};
}

bool connection_counter::try_open(const std::string& peer) {
    if (total_ >= max_total_) return false;
    auto& n = per_peer_[peer];
    if (n >= max_per_peer_) return false;
    ++n;
    ++total_;
    return true;
}

void connection_counter::close(const std::string& peer) {
    auto it = per_peer_.find(peer);
    if (it == per_peer_.end() || it->second == 0) return;
    --total_;
    if (--it->second == 0) per_peer_.erase(it);  // memory follows the open connections
}

std::size_t connection_counter::open_from(const std::string& peer) const {
    auto it = per_peer_.find(peer);
    return it == per_peer_.end() ? 0 : it->second;
}

std::string normalized_address(std::string_view address) {
    boost::system::error_code ec;
    auto a = boost::asio::ip::make_address(std::string(address), ec);
    if (ec) return std::string(address);
    if (a.is_v6() && a.to_v6().is_v4_mapped()) return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.to_v6()).to_string();
    return a.to_string();
}

std::optional<std::string> forwarded_client(std::string_view header) {
    auto comma = header.rfind(',');
    std::string_view last = comma == std::string_view::npos ? header : header.substr(comma + 1);
    while (!last.empty() && (last.front() == ' ' || last.front() == '\t')) last.remove_prefix(1);
    while (!last.empty() && (last.back() == ' ' || last.back() == '\t')) last.remove_suffix(1);
    if (last.size() > 2 && last.front() == '[' && last.back() == ']') last = last.substr(1, last.size() - 2);
    if (last.empty() || last.size() > 64) return std::nullopt;
    boost::system::error_code ec;
    boost::asio::ip::make_address(std::string(last), ec);
    if (ec) return std::nullopt;
    return normalized_address(last);
}

std::size_t connection_cap_for(std::size_t wanted, std::size_t open_file_limit) {
    // A quarter of the descriptors (at least 64) stay for files: an upload being received holds
    // its socket and one temp file.
    const std::size_t room = std::max<std::size_t>(64, open_file_limit / 4);
    const std::size_t fits = open_file_limit > room ? open_file_limit - room : 1;
    return std::min(wanted, fits);
}

}  // namespace quickthumb::http
