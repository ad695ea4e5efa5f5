// AWS Signature Version 4 (sigv4.hpp): string building and OpenSSL's SHA-256 and HMAC.
#include "s3/sigv4.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <ctime>
#include <stdexcept>

namespace quickthumb::s3 {

namespace {

using digest = std::array<unsigned char, 32>;

constexpr char hex_digits[] = "0123456789abcdef";

std::string to_hex(std::span<const unsigned char> bytes) {
    std::string out;
    out.reserve(bytes.size() * 2);
    for (unsigned char b : bytes) {
        out.push_back(hex_digits[b >> 4]);
        out.push_back(hex_digits[b & 0xf]);
    }
    return out;
}

digest sha256(const void* data, std::size_t size) {
    digest d{};
    unsigned int len = 0;
    // Only fails when OpenSSL cannot allocate a context: a bug-level failure, so it throws.
    if (EVP_Digest(data, size, d.data(), &len, EVP_sha256(), nullptr) != 1 || len != d.size())
        throw std::runtime_error("SHA-256 failed");
    return d;
}

digest hmac(std::span<const unsigned char> key, std::string_view data) {
    digest d{};
    unsigned int len = 0;
    if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
              reinterpret_cast<const unsigned char*>(data.data()), data.size(), d.data(), &len) ||
        len != d.size())
        throw std::runtime_error("HMAC-SHA256 failed");
    return d;
}

std::span<const unsigned char> bytes_of(std::string_view s) {
    return {reinterpret_cast<const unsigned char*>(s.data()), s.size()};
}

bool unreserved(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Trimmed, and each run of whitespace inside folded to one space ("Trimall").
std::string trim_all(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    bool in_space = false;
    for (char c : v) {
        if (is_space(c)) {
            in_space = !out.empty();
            continue;
        }
        if (in_space) out.push_back(' ');
        in_space = false;
        out.push_back(c);
    }
    return out;
}

std::string_view date_of(std::string_view amz_date) { return amz_date.substr(0, 8); }

}  // namespace

std::string uri_encode(std::string_view s, bool keep_slash) {
    std::string out;
    out.reserve(s.size());
    for (unsigned char c : s) {
        if (unreserved(c) || (keep_slash && c == '/')) {
            out.push_back(static_cast<char>(c));
        } else {
            constexpr char upper[] = "0123456789ABCDEF";
            out.push_back('%');
            out.push_back(upper[c >> 4]);
            out.push_back(upper[c & 0xf]);
        }
    }
    return out;
}

std::string sha256_hex(std::span<const std::uint8_t> bytes) {
    const auto d = sha256(bytes.data(), bytes.size());
    return to_hex(d);
}

std::string sha256_hex(std::string_view text) {
    const auto d = sha256(text.data(), text.size());
    return to_hex(d);
}

std::string amz_date(std::chrono::system_clock::time_point t) {
    const std::time_t secs = std::chrono::system_clock::to_time_t(t);
    std::tm utc{};
    gmtime_r(&secs, &utc);
    char buf[17];
    std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &utc);
    return buf;
}

canonical_form canonical_request(const request_to_sign& r) {
    std::vector<std::pair<std::string, std::string>> query;
    query.reserve(r.query.size());
    for (const auto& q : r.query) query.emplace_back(uri_encode(q.name, false), uri_encode(q.value, false));
    std::sort(query.begin(), query.end());

    // Stable: a repeated header keeps its values in the order they were given.
    std::vector<std::pair<std::string, std::string>> headers;
    headers.reserve(r.headers.size());
    for (const auto& h : r.headers) headers.emplace_back(lower(h.name), trim_all(h.value));
    std::stable_sort(headers.begin(), headers.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });

    canonical_form out;
    std::string& c = out.request;
    c.reserve(256);
    c += r.method;
    c += '\n';
    c += uri_encode(r.path.empty() ? std::string_view("/") : std::string_view(r.path), true);
    c += '\n';
    for (std::size_t i = 0; i < query.size(); ++i) {
        if (i) c += '&';
        c += query[i].first;
        c += '=';
        c += query[i].second;
    }
    c += '\n';
    for (std::size_t i = 0; i < headers.size(); ++i) {
        const bool repeat = i > 0 && headers[i].first == headers[i - 1].first;
        if (repeat) {
            c += ',';
        } else {
            if (i) {
                c += '\n';
                out.signed_headers += ';';
            }
            c += headers[i].first;
            c += ':';
            out.signed_headers += headers[i].first;
        }
        c += headers[i].second;
    }
    if (!headers.empty()) c += '\n';
    c += '\n';
    c += out.signed_headers;
    c += '\n';
    c += r.payload_hash;
    return out;
}

std::string credential_scope(std::string_view amz_date, std::string_view region, std::string_view service) {
    std::string s(date_of(amz_date));
    s += '/';
    s += region;
    s += '/';
    s += service;
    s += "/aws4_request";
    return s;
}

std::string string_to_sign(std::string_view amz_date, std::string_view scope, std::string_view canonical_request) {
    std::string s = "AWS4-HMAC-SHA256\n";
    s += amz_date;
    s += '\n';
    s += scope;
    s += '\n';
    s += sha256_hex(canonical_request);
    return s;
}

std::string signature(std::string_view secret_access_key, std::string_view amz_date, std::string_view region,
                      std::string_view service, std::string_view string_to_sign) {
    const std::string first_key = "AWS4" + std::string(secret_access_key);
    const digest k_date = hmac(bytes_of(first_key), date_of(amz_date));
    const digest k_region = hmac(k_date, region);
    const digest k_service = hmac(k_region, service);
    const digest k_signing = hmac(k_service, "aws4_request");
    const digest sig = hmac(k_signing, string_to_sign);
    return to_hex(sig);
}

std::string authorization(const credentials& c, std::string_view region, std::string_view service,
                          std::string_view amz_date, const request_to_sign& r) {
    const auto canonical = canonical_request(r);
    const auto scope = credential_scope(amz_date, region, service);
    const auto sts = string_to_sign(amz_date, scope, canonical.request);
    std::string a = "AWS4-HMAC-SHA256 Credential=";
    a += c.access_key_id;
    a += '/';
    a += scope;
    a += ", SignedHeaders=";
    a += canonical.signed_headers;
    a += ", Signature=";
    a += signature(c.secret_access_key, amz_date, region, service, sts);
    return a;
}

void sign_s3(const credentials& c, std::string_view region, std::chrono::system_clock::time_point at,
             request_to_sign& r) {
    const auto date = amz_date(at);
    r.headers.push_back({"x-amz-date", date});
    r.headers.push_back({"x-amz-content-sha256", r.payload_hash});
    if (!c.session_token.empty()) r.headers.push_back({"x-amz-security-token", c.session_token});
    auto value = authorization(c, region, "s3", date, r);
    r.headers.push_back({"authorization", std::move(value)});
}

std::string presigned_query(const credentials& c, std::string_view region, std::chrono::system_clock::time_point at,
                            std::chrono::seconds expires, const request_to_sign& r) {
    const auto date = amz_date(at);
    const auto scope = credential_scope(date, region, "s3");
    request_to_sign signed_req = r;
    signed_req.payload_hash = std::string(unsigned_payload);
    auto& q = signed_req.query;
    q.push_back({"X-Amz-Algorithm", "AWS4-HMAC-SHA256"});
    q.push_back({"X-Amz-Credential", c.access_key_id + "/" + scope});
    q.push_back({"X-Amz-Date", date});
    q.push_back({"X-Amz-Expires", std::to_string(expires.count())});
    if (!c.session_token.empty()) q.push_back({"X-Amz-Security-Token", c.session_token});
    // The signed headers' names go into the query that is signed: taken from the headers alone.
    q.push_back({"X-Amz-SignedHeaders", canonical_request(request_to_sign{{}, {}, {}, r.headers, {}}).signed_headers});
    const auto canonical = canonical_request(signed_req);
    const auto sig = signature(c.secret_access_key, date, region, "s3",
                               string_to_sign(date, scope, canonical.request));
    std::string out;
    for (const auto& p : q) {
        if (!out.empty()) out += '&';
        out += uri_encode(p.name, false);
        out += '=';
        out += uri_encode(p.value, false);
    }
    out += "&X-Amz-Signature=";
    out += sig;
    return out;
}

}  // namespace quickthumb::s3
