#pragma once
// Black-box helpers: start the real quickthumb binary on a free port with a temporary data
// directory, talk HTTP to it, kill it.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
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

// The exit status the sanitizer test runs give a process that reported an error (the tsan preset
// and scripts/test set TSAN_OPTIONS exitcode=66 halt_on_error=1): a server that exits with it found
// a data race (or memory error) of its own. ~server_process then prints its output and aborts the
// test binary, so a report is never lost, even in a test that never looks at the exit status.
inline constexpr int sanitizer_exit_code = 66;

// How to start the process, beyond its arguments.
struct launch_options {
    // A wrapper run in front of the quickthumb command line (looked up in PATH), e.g.
    // {"unshare", "--user", "--map-root-user", "--mount", "sh", "-c", "... exec \"$@\"", "sh"}.
    // The wrapper must exec quickthumb in the same process, so that pid() is quickthumb's.
    std::vector<std::string> prefix;
    // Read the process's output on a thread of its own as it comes, so that a chatty process that
    // runs long (thousands of log lines) never blocks on a full pipe while nobody calls output().
    // On by default: the service logs a line per request, so a test that polls it would otherwise
    // fill the pipe and block the service's writes (its network thread) until output() is called.
    bool drain_output = true;
    // How long to wait for the "listening on" line.
    std::chrono::seconds start_timeout{30};
    // Passes --upload-rate 0 ahead of the test's own arguments (which may turn the limit on).
    bool default_upload_rate_off = true;
    // Environment variables set (over the test's own) for the process: the bucket's AWS_*.
    std::vector<std::pair<std::string, std::string>> env;
};

class server_process {
public:
    // Starts `quickthumb serve --port 0 --bind 127.0.0.1 --data DIR` plus extra args and waits
    // (up to 30 s) for its "listening on" line. Throws if it exits or never says it.
    server_process(const std::filesystem::path& data_dir, std::vector<std::string> extra_args = {});
    server_process(const std::filesystem::path& data_dir, std::vector<std::string> extra_args,
                   launch_options options);
    ~server_process();  // SIGKILL if still running; aborts on sanitizer_exit_code (see above)
    server_process(const server_process&) = delete;
    server_process& operator=(const server_process&) = delete;

    unsigned short port() const { return port_; }
    // The process id while it runs (-1 once it has been waited for).
    int pid() const { return pid_; }
    // Sends a signal and waits for exit; returns the exit status (or 128+signal).
    int stop(int signal);
    // Sends a signal without waiting.
    void signal(int signal);
    // Whether the process still runs (reaps it, keeping its status for wait_exit/stop, if not).
    bool running();
    // Waits at most `timeout` for the process to exit: its exit status (or 128+signal), or
    // nullopt if it still runs then.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout);
    // Everything the process printed so far (stdout and stderr).
    std::string output();

private:
    void start(const std::filesystem::path& data_dir, std::vector<std::string> extra_args, launch_options options);
    void pump(int poll_ms);       // reads what is there (waiting at most poll_ms) unless a thread drains
    void drain_loop();

    int pid_ = -1;
    int out_fd_ = -1;
    unsigned short port_ = 0;
    int exit_status_ = -1;
    std::string output_;
    std::mutex output_mutex_;
    std::thread drainer_;
    std::atomic<bool> drainer_stop_{false};
    std::atomic<bool> exited_{false};  // reaped: the drainer may stop once the pipe is quiet
};

class s3_process;
// QT_TEST_STORAGE=bucket (the pipeline_on_bucket test): every server_process keeps its uploads
// and thumbnails in one shared bucket (Swift, started once for the run) under a prefix of its
// data directory's own, so the black-box cases run on the bucket backend unchanged.
bool bucket_mode();
s3_process& shared_bucket();
std::string bucket_prefix(const std::filesystem::path& data_dir);
// Whether the service with this data directory stored something at `relative` ("uploads/ID",
// "thumbs/ID", "thumbs/ID/NAME"): a file or directory there, or objects under that key.
bool stored(const std::filesystem::path& data_dir, const std::string& relative);

// A "VmHWM"/"VmRSS" line of /proc/PID/status in KiB (the peak and the current resident set).
long proc_status_kib(int pid, const std::string& field);

struct http_reply {
    int status = 0;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;
};

// One request on a fresh connection (30 s deadline). Throws on connection failure.
http_reply http_request(unsigned short port, const std::string& method, const std::string& target,
                        const std::string& body = {}, const std::map<std::string, std::string>& headers = {});

// A TCP connection to 127.0.0.1:port from `source` (e.g. "127.0.0.2": another client to the
// server's per-address limits; empty: any). Throws on failure.
boost::asio::ip::tcp::socket connect_from(boost::asio::io_context& io, const std::string& source, unsigned short port);
// http_request from `source`.
http_reply http_request_from(const std::string& source, unsigned short port, const std::string& method,
                             const std::string& target, const std::string& body = {},
                             const std::map<std::string, std::string>& headers = {});

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
