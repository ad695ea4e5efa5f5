// The bucket's settings and each object's request target (bucket_settings.hpp).
#include "s3/bucket_settings.hpp"

#include <boost/url/parse.hpp>

#include <algorithm>
#include <charconv>

namespace quickthumb::s3 {

namespace {

error invalid(std::string message) { return error{errc::invalid_option, std::move(message)}; }

bool digit_or_lower(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool looks_like_ip(std::string_view host) {
    if (!host.empty() && host.front() == '[') return true;  // IPv6 literal
    return !host.empty() && std::all_of(host.begin(), host.end(), [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
}

std::string variable(const env_lookup& env, std::string_view name) {
    auto v = env(name);
    return v ? *v : std::string();
}

}  // namespace

result<bucket_location> parse_bucket_url(std::string_view url) {
    constexpr std::string_view scheme = "s3://";
    if (url.substr(0, scheme.size()) != scheme)
        return invalid("--storage: '" + std::string(url) + "' is not s3://BUCKET[/PREFIX]");
    std::string_view rest = url.substr(scheme.size());
    const auto slash = rest.find('/');
    bucket_location out;
    out.bucket = std::string(rest.substr(0, slash));
    const auto& b = out.bucket;
    const bool shape_ok = b.size() >= 3 && b.size() <= 63 && digit_or_lower(b.front()) && digit_or_lower(b.back()) &&
                          std::all_of(b.begin(), b.end(), [](char c) { return digit_or_lower(c) || c == '.' || c == '-'; }) &&
                          b.find("..") == std::string::npos;
    if (!shape_ok)
        return invalid("--storage: '" + b +
                       "' is not a bucket name (3-63 characters: a-z, 0-9, '.', '-', a letter or digit at each end)");
    if (slash != std::string_view::npos) {
        std::string_view prefix = rest.substr(slash + 1);
        while (!prefix.empty() && prefix.back() == '/') prefix.remove_suffix(1);
        if (prefix.find("//") != std::string_view::npos || (!prefix.empty() && prefix.front() == '/'))
            return invalid("--storage: the prefix '" + std::string(prefix) + "' has an empty segment");
        if (!prefix.empty()) out.prefix = std::string(prefix) + "/";
    }
    return out;
}

result<bucket_settings> settings_from_env(bucket_location location, bool path_style, const env_lookup& env) {
    bucket_settings s;
    s.location = std::move(location);
    s.keys.access_key_id = variable(env, "AWS_ACCESS_KEY_ID");
    s.keys.secret_access_key = variable(env, "AWS_SECRET_ACCESS_KEY");
    s.keys.session_token = variable(env, "AWS_SESSION_TOKEN");
    if (s.keys.access_key_id.empty()) return invalid("the bucket needs AWS_ACCESS_KEY_ID (it is unset or empty)");
    if (s.keys.secret_access_key.empty())
        return invalid("the bucket needs AWS_SECRET_ACCESS_KEY (it is unset or empty)");
    s.region = variable(env, "AWS_REGION");
    if (s.region.empty()) s.region = variable(env, "AWS_DEFAULT_REGION");
    if (s.region.empty()) s.region = "us-east-1";

    const std::string url = variable(env, "AWS_ENDPOINT_URL");
    if (url.empty()) {
        s.server = {true, "s3." + s.region + ".amazonaws.com", "443"};
    } else {
        auto parsed = boost::urls::parse_uri(url);
        if (!parsed || (parsed->scheme() != "https" && parsed->scheme() != "http") || parsed->host().empty())
            return invalid("AWS_ENDPOINT_URL: '" + url + "' is not an http:// or https:// URL");
        if (parsed->has_query() || parsed->has_fragment() || (parsed->path() != "" && parsed->path() != "/"))
            return invalid("AWS_ENDPOINT_URL: '" + url + "' must be a scheme, a host and a port only");
        s.server.tls = parsed->scheme() == "https";
        s.server.host = parsed->host();
        if (parsed->has_port()) {
            const auto p = parsed->port();
            unsigned v = 0;
            auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
            if (ec != std::errc{} || end != p.data() + p.size() || v == 0 || v > 65535)
                return invalid("AWS_ENDPOINT_URL: the port must be 1..65535");
            s.server.port = std::string(p);
        } else {
            s.server.port = s.server.tls ? "443" : "80";
        }
    }
    // A private CA (MinIO, Ceph, a test's server): the AWS CLI's own variable.
    s.ca_bundle = variable(env, "AWS_CA_BUNDLE");
    const bool dotted_over_tls = s.server.tls && s.location.bucket.find('.') != std::string::npos;
    s.path_style = path_style || dotted_over_tls || looks_like_ip(s.server.host);
    return s;
}

request_target target_of(const bucket_settings& s, std::string_view key) {
    const bool default_port = s.server.port == (s.server.tls ? "443" : "80");
    const std::string port_suffix = default_port ? "" : ":" + s.server.port;
    request_target t;
    if (s.path_style) {
        t.host = s.server.host + port_suffix;
        t.path = "/" + s.location.bucket;
        if (!key.empty()) {
            t.path += '/';
            t.path += key;
        }
    } else {
        t.host = s.location.bucket + "." + s.server.host + port_suffix;
        t.path = "/" + std::string(key);
    }
    return t;
}

std::string object_key(const bucket_location& where, std::string_view name) {
    return where.prefix + std::string(name);
}

}  // namespace quickthumb::s3
