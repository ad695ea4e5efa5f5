#include "support/cluster.hpp"

namespace qt_test {

cluster::cluster(const std::filesystem::path& dir, int n, std::vector<std::string> common,
                 std::vector<std::vector<std::string>> per_instance)
    : redis(dir / "redis"), s3(dir / "s3"), dir_(dir), common_(std::move(common)), per_instance_(std::move(per_instance)) {
    nodes_.resize(static_cast<std::size_t>(n));
    for (std::size_t i = 0; i < nodes_.size(); ++i) restart(i);
}

std::vector<std::string> cluster::shared_args() const {
    std::vector<std::string> a{"--store", "redis", "--redis", redis.url()};
    for (auto& s : s3.storage_args()) a.push_back(s);
    return a;
}

void cluster::restart(std::size_t i, std::vector<std::string> extra) {
    nodes_.at(i).reset();
    auto args = shared_args();
    args.insert(args.end(), common_.begin(), common_.end());
    if (i < per_instance_.size()) args.insert(args.end(), per_instance_[i].begin(), per_instance_[i].end());
    args.insert(args.end(), extra.begin(), extra.end());
    launch_options o;
    o.env = s3.env();
    nodes_[i] = std::make_unique<server_process>(dir_ / ("node-" + std::to_string(i)), args, o);
}

}  // namespace qt_test
