#pragma once
// Internal to the http module: an answer as a handler returns it. It is one of the few message
// types the handlers build, kept as a message (not yet serialized), so the session reads its
// status and adds the common header fields (CORS, WWW-Authenticate, Connection: close) through
// Beast's fields before writing it.
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/file_body.hpp>
#include <boost/beast/http/message_generator.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/vector_body.hpp>

#include <cstdint>

#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace quickthumb::http {

namespace bhttp = boost::beast::http;

// Header fields one answer gets besides its own (name, value).
using extra_fields = std::vector<std::pair<std::string, std::string>>;

class answer {
public:
    using string_response = bhttp::response<bhttp::string_body>;
    using empty_response = bhttp::response<bhttp::empty_body>;
    using file_response = bhttp::response<bhttp::file_body>;
    using bytes_response = bhttp::response<bhttp::vector_body<std::uint8_t>>;  // an object store's

    answer(string_response r) : msg_(std::move(r)) {}
    answer(empty_response r) : msg_(std::move(r)) {}
    answer(file_response r) : msg_(std::move(r)) {}
    answer(bytes_response r) : msg_(std::move(r)) {}

    int status() const {
        return std::visit([](const auto& m) { return static_cast<int>(m.result_int()); }, msg_);
    }
    bool keep_alive() const {
        return std::visit([](const auto& m) { return m.keep_alive(); }, msg_);
    }
    void keep_alive(bool v) {
        std::visit([v](auto& m) { m.keep_alive(v); }, msg_);
    }
    void add(const extra_fields& fields) {
        for (const auto& f : fields)  // (no structured binding: clang 14 cannot capture one)
            std::visit([&](auto& m) { m.set(f.first, f.second); }, msg_);
    }
    // For the write: the answer is consumed.
    bhttp::message_generator release() && {
        return std::visit([](auto& m) { return bhttp::message_generator(std::move(m)); }, msg_);
    }

private:
    std::variant<string_response, empty_response, file_response, bytes_response> msg_;
};

}  // namespace quickthumb::http
