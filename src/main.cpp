// quickthumb: parses the command line and hands over to the module that runs the command.
#include "quickthumb/app.hpp"
#include "quickthumb/config.hpp"
#include "quickthumb/thumb_command.hpp"

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

int main(int argc, char** argv) {
    using namespace quickthumb;
    std::vector<std::string> args(argv + 1, argv + argc);
    try {
        auto cl = parse_command_line(args, process_env());
        switch (cl.cmd) {
            case command::help:
                std::fputs((!args.empty() && args[0] == "thumb" ? thumb_usage() : usage()).c_str(), stdout);
                return 0;
            case command::version: std::printf("quickthumb %s\n", QT_VERSION_STRING); return 0;
            case command::thumb: return run_thumb(cl.thumb);
            case command::serve: return run_service(cl.serve);
        }
    } catch (const config_error& e) {
        std::fprintf(stderr, "quickthumb: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "quickthumb: fatal: %s\n", e.what());
        return 1;
    }
    return 0;
}
