#pragma once
// Every instance's view of every job's changes, on the Redis store: it follows the shared events
// stream (which each transition script appends to) and hands each change to the jobs service
// (jobs_service::observe), which tells its subscribers: the live events show every instance's
// jobs, a DELETE on one instance reaches the worker running the job on another, a job queued
// anywhere wakes the feeder here. Every few seconds it also sets the waiting count from the store.
//
// A coroutine on the network context; the store's calls never block it. Redis down: logged once,
// retried every second, and the stream is read on from where it stopped (nothing missed unless
// the stream was trimmed past it meanwhile).
#include "quickthumb/jobs_service.hpp"
#include "quickthumb/redis_store.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <string>

namespace quickthumb {

class redis_event_feed {
public:
    // Follows the stream after the event `after` (a stream id; "0-0" for all of it).
    redis_event_feed(boost::asio::any_io_executor ex, redis_job_store& db, jobs_service& jobs, std::string after);

    void start();
    void stop();  // ends at the next read (within its block time)

private:
    boost::asio::awaitable<void> run();

    redis_job_store& db_;
    jobs_service& jobs_;
    std::string after_;
    boost::asio::steady_timer pause_;
    bool stopping_ = false;
};

}  // namespace quickthumb
