#pragma once
// Black-box helpers: start the real quickthumb binary on a free port with a temporary data
// directory, talk HTTP to it, kill it.
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace qt_test {

// A fresh directory under the system temp dir, removed on destruction.
class temp_dir {
public:
    temp_dir();
    ~temp_dir();
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

class server_process {
public:
    // Starts `quickthumb serve --port 0 --bind 127.0.0.1 --data DIR` plus extra args and waits
    // (up to 30 s) for its "listening on" line. Throws if it exits or never says it.
    server_process(const std::filesystem::path& data_dir, std::vector<std::string> extra_args = {});
    ~server_process();  // SIGKILL if still running
    server_process(const server_process&) = delete;
    server_process& operator=(const server_process&) = delete;

    unsigned short port() const { return port_; }
    // Sends a signal and waits for exit; returns the exit status (or 128+signal).
    int stop(int signal);
    // Everything the process printed so far (stdout and stderr).
    std::string output();

private:
    int pid_ = -1;
    int out_fd_ = -1;
    unsigned short port_ = 0;
    std::string output_;
};

struct http_reply {
    int status = 0;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;
};

// One request on a fresh connection (30 s deadline). Throws on connection failure.
http_reply http_request(unsigned short port, const std::string& method, const std::string& target,
                        const std::string& body = {}, const std::map<std::string, std::string>& headers = {});

struct form_file {
    std::string field = "file";
    std::string filename;
    std::string content_type = "application/octet-stream";
    std::string data;
};

// Builds a multipart/form-data body; returns {content_type, body}.
std::pair<std::string, std::string> multipart_body(const std::vector<form_file>& files,
                                                   const std::map<std::string, std::string>& fields = {});

http_reply upload(unsigned short port, const std::vector<form_file>& files,
                  const std::map<std::string, std::string>& fields = {}, const std::string& query = {});

// Polls GET /api/v1/jobs/{id} until its state is final or `timeout` passes; returns the last body.
// (Polling a real process is the only way to observe it; the deadline only bounds a failure.)
std::string wait_for_final(unsigned short port, const std::string& id, std::chrono::seconds timeout);

}  // namespace qt_test
