#pragma once
// Several instances of the service on one Redis (--store redis) and one bucket (Swift's S3 API),
// all real processes on loopback: what a deployment behind a load balancer looks like.
#include "support/redis_process.hpp"
#include "support/s3_process.hpp"
#include "support/server_process.hpp"

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace qt_test {

class cluster {
public:
    // Starts Redis, Swift and `n` instances, each with its own data directory under `dir`, the
    // shared flags plus `common` (and per_instance[i], when given).
    cluster(const std::filesystem::path& dir, int n, std::vector<std::string> common = {},
            std::vector<std::vector<std::string>> per_instance = {});

    server_process& node(std::size_t i) { return *nodes_.at(i); }
    unsigned short port(std::size_t i) { return node(i).port(); }
    std::size_t size() const { return nodes_.size(); }
    // Starts instance i again (after a stop or kill) on its data directory, with `extra` flags.
    void restart(std::size_t i, std::vector<std::string> extra = {});
    // The flags every instance gets: --store redis, --redis, the bucket.
    std::vector<std::string> shared_args() const;

    redis_process redis;
    s3_process s3;

private:
    std::filesystem::path dir_;
    std::vector<std::string> common_;
    std::vector<std::vector<std::string>> per_instance_;
    std::vector<std::unique_ptr<server_process>> nodes_;
};

}  // namespace qt_test
