#pragma once
// A real S3-compatible server for the tests: OpenStack Swift with its S3 API (Debian's swift
// packages, installed by scripts/setup --test; configured by tests/s3/swift-configure.sh) on
// free ports of 127.0.0.1, its objects in a directory the test owns, one bucket made at start.
// Swift checks Signature V4 (a wrong secret gets 403 SignatureDoesNotMatch) and lists and aborts
// multipart uploads. Plus the settings and the environment the service needs to use it, and
// blocking looks at what the bucket holds.
#include "s3/bucket_settings.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace qt_test {

// Whether Swift's servers and its Python package are installed.
bool swift_installed();

class s3_process {
public:
    static constexpr const char* bucket = "qt-test";
    static constexpr const char* access_key = "test:tester";  // tempauth's account:user
    static constexpr const char* secret_key = "testing";

    // Configures and starts Swift with its data in `dir`, waits (up to 60 s) until it answers,
    // and makes the bucket.
    // With tls, the proxy speaks HTTPS (a self-signed certificate for 127.0.0.1: ca_bundle()).
    explicit s3_process(std::filesystem::path dir, bool tls = false);
    ~s3_process();  // SIGKILL if still running
    s3_process(const s3_process&) = delete;
    s3_process& operator=(const s3_process&) = delete;

    unsigned short port() const { return port_; }
    std::string endpoint() const { return (tls_ ? "https://127.0.0.1:" : "http://127.0.0.1:") + std::to_string(port_); }
    std::filesystem::path ca_bundle() const { return dir_ / "tls" / "cert.pem"; }
    // AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL (and with TLS
    // AWS_CA_BUNDLE) for the service.
    std::vector<std::pair<std::string, std::string>> env() const;
    // The service's flags for this bucket (under `prefix`, "" for none).
    std::vector<std::string> storage_args(const std::string& prefix = {}) const;
    // Settings for the S3 client of a test (path style).
    quickthumb::s3::bucket_settings settings(const std::string& prefix = {}) const;

    void kill();    // SIGKILL of every server, and wait
    void start();   // again, on the same ports and directory (the objects kept); waits
    bool running() const { return !pids_.empty(); }

    // Every key in the bucket, sorted (a blocking listing with the project's client).
    std::vector<std::string> keys() const;
    // The keys of the multipart uploads begun and neither completed nor aborted.
    std::vector<std::string> multipart_uploads() const;

private:
    void spawn();
    void wait_ready();

    std::filesystem::path dir_;
    bool tls_ = false;
    bool bucket_made_ = false;
    unsigned short port_ = 0, account_port_ = 0, container_port_ = 0, object_port_ = 0;
    std::vector<int> pids_;
};

}  // namespace qt_test

// For a test that needs the S3 server: says so visibly and skips when it is not installed.
#define QT_REQUIRE_S3_SERVER()                                                                          \
    do {                                                                                                \
        if (!qt_test::swift_installed()) {                                                              \
            WARN("Swift (the S3 server of the bucket tests) is not installed: skipping (scripts/setup --test)"); \
            return;                                                                                     \
        }                                                                                               \
    } while (false)
