#pragma once
// AWS Signature Version 4, as S3 and the S3-compatible servers check it: pure functions, no I/O
// and no clock (the caller passes the time), so every step is tested against AWS's published
// vectors. The path is signed as S3 wants it: each byte of the key encoded once, '/' kept, no
// "." or ".." folding (the generic AWS services fold and encode twice; S3 does neither).
#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace quickthumb::s3 {

struct credentials {
    std::string access_key_id;
    std::string secret_access_key;
    std::string session_token;  // temporary credentials only; signed as x-amz-security-token
};

struct query_param {
    std::string name;  // decoded: encoding is the signer's job
    std::string value;
};

struct header_field {
    std::string name;  // any case
    std::string value;
};

struct request_to_sign {
    std::string method;
    std::string path;  // decoded, from the leading '/': "/bucket/a b.jpg"
    std::vector<query_param> query;
    std::vector<header_field> headers;  // every header to sign, host included
    std::string payload_hash;           // hex SHA-256 of the body, or "UNSIGNED-PAYLOAD"
};

inline constexpr std::string_view unsigned_payload = "UNSIGNED-PAYLOAD";

// RFC 3986 percent-encoding of all but the unreserved characters (A-Z a-z 0-9 - . _ ~), in
// upper-case hex; '/' too unless keep_slash.
std::string uri_encode(std::string_view s, bool keep_slash);

std::string sha256_hex(std::span<const std::uint8_t> bytes);
std::string sha256_hex(std::string_view text);

// "20130524T000000Z": the x-amz-date of a moment (UTC, whole seconds).
std::string amz_date(std::chrono::system_clock::time_point t);

struct canonical_form {
    std::string request;         // the canonical request, as AWS's *.creq files spell it
    std::string signed_headers;  // "host;range;x-amz-date"
};
// Header names lower-cased and sorted, values trimmed with inner runs of spaces folded to one,
// a repeated header's values joined by ','; query pairs encoded, then sorted.
canonical_form canonical_request(const request_to_sign& r);

// "20130524/us-east-1/s3/aws4_request"
std::string credential_scope(std::string_view amz_date, std::string_view region, std::string_view service);

std::string string_to_sign(std::string_view amz_date, std::string_view scope, std::string_view canonical_request);

// Hex HMAC-SHA256 of string_to_sign under the key derived from the secret, the date, the region
// and the service.
std::string signature(std::string_view secret_access_key, std::string_view amz_date, std::string_view region,
                      std::string_view service, std::string_view string_to_sign);

// The Authorization header's value for r, signed at amz_date. r's headers must already hold
// everything the server checks (host, x-amz-date, for S3 x-amz-content-sha256, and
// x-amz-security-token with temporary credentials): sign_s3 adds those.
std::string authorization(const credentials& c, std::string_view region, std::string_view service,
                          std::string_view amz_date, const request_to_sign& r);

// An S3 request made ready to send: adds x-amz-date, x-amz-content-sha256 (r.payload_hash) and,
// with a session token, x-amz-security-token to r.headers, then authorization as the last one.
void sign_s3(const credentials& c, std::string_view region, std::chrono::system_clock::time_point at,
             request_to_sign& r);

// The query string of a presigned URL for r (its headers: host alone, normally), valid for
// expires_seconds from `at`: r's own query, then X-Amz-Algorithm ... X-Amz-Signature, encoded.
std::string presigned_query(const credentials& c, std::string_view region, std::chrono::system_clock::time_point at,
                            std::chrono::seconds expires, const request_to_sign& r);

}  // namespace quickthumb::s3
