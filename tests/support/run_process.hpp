#pragma once
// Runs a program to completion and keeps what it printed and its peak memory.
#include <string>
#include <vector>

namespace qt_test {

struct run_result {
    int status = -1;       // exit code, or 128 + signal
    long max_rss_kib = 0;  // the child's peak resident set
    std::string out;
    std::string err;
};

// Runs args[0] (a path) with the arguments after it. stdout and stderr go to files (not pipes), so
// a chatty child can never block on a full pipe while we wait for it. Throws if it cannot start.
run_result run_process(const std::vector<std::string>& args);

}  // namespace qt_test
