#pragma once
// Where a bucket is and how to reach it, from `s3://BUCKET[/PREFIX]` and the standard AWS
// variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION or
// AWS_DEFAULT_REGION, AWS_ENDPOINT_URL, AWS_CA_BUNDLE), and the request target of each object: pure, the
// environment is passed in, so tests need neither variables nor a server.
#include "quickthumb/error.hpp"
#include "s3/sigv4.hpp"

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace quickthumb::s3 {

struct bucket_location {
    std::string bucket;
    std::string prefix;  // "" or "a/b/": every key the service writes starts with it
};

// "s3://my-bucket" or "s3://my-bucket/some/prefix"; the bucket name as S3 allows it (3-63
// characters: lower-case letters, digits, '.' and '-', a letter or digit at each end).
result<bucket_location> parse_bucket_url(std::string_view url);

struct endpoint {
    bool tls = true;
    std::string host;  // without the port
    std::string port;  // "443", "9000"
};

struct bucket_settings {
    bucket_location location;
    credentials keys;
    std::string region;
    endpoint server;   // the endpoint's own host: AWS's regional one unless AWS_ENDPOINT_URL names one
    bool path_style;   // https://host/bucket/key rather than https://bucket.host/key
    std::string ca_bundle;  // AWS_CA_BUNDLE: a PEM file of CAs trusted instead of the system's
};

// A variable's value, or nullopt when it is unset (std::getenv in the service).
using env_lookup = std::function<std::optional<std::string>(std::string_view)>;

// Fails with invalid_option and a message naming the variable when a key is missing or the
// endpoint is not an http(s) URL. Path style is forced on for a bucket whose name has a '.'
// over TLS (its virtual host would not match the certificate) and for an endpoint that is an IP
// address.
result<bucket_settings> settings_from_env(bucket_location location, bool path_style, const env_lookup& env);

struct request_target {
    std::string host;  // the Host header: "bucket.s3.us-east-1.amazonaws.com" or "127.0.0.1:9000"
    std::string path;  // decoded, for the signer and (encoded) the request line: "/bucket/prefix/key"
};

// The object `key` (already under the prefix: see object_key), or the bucket itself for "".
request_target target_of(const bucket_settings& s, std::string_view key);

// The prefix and the name the service gives an object: "thumbs/ab/abcd_256.webp" under the
// prefix "tenant1/" is "tenant1/thumbs/ab/abcd_256.webp".
std::string object_key(const bucket_location& where, std::string_view name);

}  // namespace quickthumb::s3
