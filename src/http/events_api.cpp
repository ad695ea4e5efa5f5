// GET /api/v1/events: Server-Sent Events of job changes, from the event bus.
//   ?job=ID          only that job's events
//   Last-Event-ID    (header, or ?last_event_id= for clients that cannot set it) resume after it;
//                    without it the stream starts with the next change
// Each event is `id: N`, `event: job`, `data: <the job's JSON>`. When the reader asks for events
// the ring no longer holds (it was away too long, or the service restarted), it gets one
// `event: reset` and should reload the jobs it shows. An idle stream gets a comment every 15 s.
// A reader that does not take what is written is dropped after the write deadline; the workers
// never wait for it (the bus only appends to its ring).
#include "handlers.hpp"

#include "quickthumb/job.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <charconv>
#include <optional>

namespace quickthumb::http {
namespace asio = boost::asio;

namespace {

constexpr std::size_t batch_events = 256;
// An event stream whose reader does not take a write within this long is closed.
constexpr std::chrono::seconds events_write_timeout{10};

std::optional<std::uint64_t> parse_event_id(std::string_view s) {
    std::uint64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
    return v;
}

void append_event(std::string& out, const job_event& e) {
    out += "id: ";
    out += std::to_string(e.id);
    out += "\nevent: job\ndata: ";
    out += e.data;  // serialized JSON: one line, no raw newlines
    out += "\n\n";
}

}  // namespace

asio::awaitable<std::optional<answer>> handle_events(services& svc, beast::tcp_stream& stream,
                                                     const request_header& req, const extra_fields& extra) {
    if (!svc.events)
        co_return error_response(req, bhttp::status::service_unavailable, errc::shutting_down, "events are not available");
    auto fields = query_fields(req.target());
    if (!fields) co_return error_response(req, fields.error());
    std::string job;
    std::optional<std::uint64_t> resume;
    for (const auto& [k, v] : *fields) {
        if (k == "job") {
            if (!is_valid_job_id(v))
                co_return error_response(req, bhttp::status::bad_request, errc::invalid_option,
                                         "job must be a job id, got '" + v + "'");
            job = v;
        } else if (k == "last_event_id") {
            resume = parse_event_id(v);
            if (!resume)
                co_return error_response(req, bhttp::status::bad_request, errc::invalid_option,
                                         "last_event_id must be an event id");
        } else {
            co_return error_response(req, bhttp::status::bad_request, errc::invalid_option,
                                     "unknown parameter '" + k + "' (known: job, last_event_id)");
        }
    }
    if (auto it = req.find("Last-Event-ID"); it != req.end()) {
        resume = parse_event_id(it->value());  // a header we cannot read is as if absent: start now
    }
    if (!svc.accepting.load())
        co_return error_response(req, bhttp::status::service_unavailable, errc::shutting_down,
                                 "the service is shutting down; try again shortly");

    auto waiter = svc.events->subscribe(stream.get_executor());
    std::uint64_t after = resume.value_or(svc.events->last_id());

    // The header, written by hand: the body is open-ended and written piece by piece.
    std::string out = "HTTP/1.1 200 OK\r\n";
    for (const auto& [name, value] : extra) out += name + ": " + value + "\r\n";
    out +=
        "Content-Type: text/event-stream\r\n"
        "Cache-Control: no-store\r\n"
        "X-Accel-Buffering: no\r\n"  // nginx: pass events through as they come
        "X-Content-Type-Options: nosniff\r\n"
        "Content-Security-Policy: default-src 'none'\r\n"
        "Connection: close\r\n"
        "\r\n"
        "retry: 2000\n\n";
    for (;;) {
        auto got = svc.events->since(after, batch_events, job);
        if (got.missed) {
            out += "event: reset\ndata: {}\n\n";
            after = svc.events->last_id();
        } else {
            for (const auto& e : got.events) append_event(out, e);
            after = got.scanned_to;
        }
        if (out.empty() && !svc.accepting.load()) {
            // Shutting down (the drain woke us): the last event tells the page to come back to
            // whichever instance answers next; EventSource reconnects after `retry` by itself.
            out = "retry: 2000\nevent: reconnect\ndata: {\"reason\":\"shutting down\"}\n\n";
            stream.expires_after(events_write_timeout);
            co_await asio::async_write(stream, asio::buffer(out), asio::as_tuple(asio::use_awaitable));
            co_return std::nullopt;
        }
        if (out.empty()) {
            // Nothing new: wait for a publish, the heartbeat or a shutdown's wake-up. Both post
            // their cancel to this executor, so it lands after the wait has begun.
            waiter->timer.expires_after(events_heartbeat);
            if (svc.events->last_id() > after) continue;
            auto [ec] = co_await waiter->timer.async_wait(asio::as_tuple(asio::use_awaitable));
            if (!ec) out = ": keep-alive\n\n";
            else continue;
        }
        stream.expires_after(events_write_timeout);
        auto [wec, n] = co_await asio::async_write(stream, asio::buffer(out), asio::as_tuple(asio::use_awaitable));
        if (wec) co_return std::nullopt;  // gone, or too slow to read: dropped
        out.clear();
    }
}

}  // namespace quickthumb::http
