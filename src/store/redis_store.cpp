// The job store on Redis: see include/quickthumb/redis_store.hpp for the layout and the rules, and
// redis_scripts.hpp for the scripts. Everything runs on the store's own thread: callers' coroutines
// hop there (co_spawn) and back, so no caller blocks and the one connection is used by one thread.
#include "quickthumb/redis_store.hpp"

#include "quickthumb/config.hpp"
#include "quickthumb/log.hpp"

#include "redis_rows.hpp"
#include "redis_scripts.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json/parse.hpp>

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <atomic>
#include <deque>
#include <mutex>
#include <thread>

namespace quickthumb {
namespace asio = boost::asio;
using resp::value;

using redis_rows::change_of;
using redis_rows::event_of;
using redis_rows::field_of;
using redis_rows::ids_of;
using redis_rows::refusal;
using redis_rows::stream_entries;
using redis_rows::str;
using redis_rows::to_int;

namespace {

enum script_id { s_insert, s_transition, s_progress, s_recover, s_refresh, s_promote, s_due, s_list, s_remove, s_count };
const char* script_body(script_id s) {
    switch (s) {
        case s_insert: return redis_scripts::insert;
        case s_transition: return redis_scripts::transition;
        case s_progress: return redis_scripts::progress;
        case s_recover: return redis_scripts::recover;
        case s_refresh: return redis_scripts::refresh;
        case s_promote: return redis_scripts::promote;
        case s_due: return redis_scripts::due;
        case s_list: return redis_scripts::list;
        case s_remove: return redis_scripts::remove_expired;
        default: return "";
    }
}

// The reader's reads block for up to a few seconds on purpose: its deadline allows for that.
redis_options reader_options(redis_options o) {
    o.io_timeout += std::chrono::seconds(5);
    return o;
}

class redis_store final : public redis_job_store {
public:
    redis_store(const redis_url& url, redis_store_options opts)
        : opts_(std::move(opts)),
          url_(url),
          guard_(ioc_.get_executor()),
          client_(ioc_.get_executor(), url, opts_.client),
          reader_(ioc_.get_executor(), url, reader_options(opts_.client)),
          wake_(ioc_) {
        if (opts_.consumer.empty()) opts_.consumer = new_job_id();
        thread_ = std::thread([this] { ioc_.run(); });
        asio::co_spawn(ioc_, pump(), asio::detached);
    }

    ~redis_store() override {
        asio::post(ioc_, [this] {
            stopping_ = true;
            wake_.cancel();
            client_.close();
            reader_.close();
        });
        guard_.reset();
        thread_.join();
    }

    // Connects, loads the scripts, makes the work group. Blocking: start-up only.
    void open() {
        auto r = asio::co_spawn(ioc_, exec({{"PING"}}), asio::use_future).get();
        if (!r) throw config_error("cannot use Redis at " + to_display_string(url_) + ": " + r.error().message);
        if ((*r)[0].is_error()) throw config_error("Redis at " + to_display_string(url_) + " refused PING: " + (*r)[0].text);
        auto g = asio::co_spawn(ioc_, exec({{"XGROUP", "CREATE", key("work"), "workers", "0", "MKSTREAM"}}),
                                asio::use_future)
                     .get();
        if (g && (*g)[0].is_error() && (*g)[0].text.rfind("BUSYGROUP", 0) != 0)
            throw config_error("Redis at " + to_display_string(url_) + " refused to make the work group: " + (*g)[0].text);
        warn_unless_durable();
    }

    // A 202 is as durable as Redis makes it: say so at start when Redis keeps less than it should.
    void warn_unless_durable() {
        auto r = asio::co_spawn(ioc_,
                                exec({{"CONFIG", "GET", "appendonly"},
                                      {"CONFIG", "GET", "appendfsync"},
                                      {"CONFIG", "GET", "maxmemory-policy"}}),
                                asio::use_future)
                     .get();
        auto setting = [&](std::size_t i) -> std::optional<std::string> {
            if (!r || (*r)[i].is_error() || (*r)[i].elements.size() < 2) return std::nullopt;
            return str((*r)[i].elements[1]);
        };
        const auto aof = setting(0), fsync = setting(1), policy = setting(2);
        if (!aof || !policy) {
            log::warn("cannot read Redis's persistence settings (CONFIG GET refused?): make sure it has appendonly yes "
                      "and maxmemory-policy noeviction, or accepted jobs can be lost");
            return;
        }
        if (*aof != "yes")
            log::warn("Redis keeps no append-only file: a Redis restart loses every job since its last snapshot",
                      "hint=\"set appendonly yes\"");
        else if (fsync && *fsync == "no")
            log::warn("Redis's append-only file is flushed when the kernel decides: a power cut can lose recent jobs",
                      "hint=\"set appendfsync everysec (up to a second lost) or always (nothing lost)\"");
        if (*policy != "noeviction")
            log::warn("Redis may evict keys under memory pressure: jobs would vanish",
                      "maxmemory_policy=" + *policy + " hint=\"set maxmemory-policy noeviction\"");
    }

    // ---- job_store ----
    void set_commit_listener(commit_listener l) override {
        std::lock_guard lk(listener_mutex_);
        listener_ = std::move(l);
    }

    asio::awaitable<result<std::vector<job>>> insert(std::vector<job> jobs) override {
        auto r = co_await insert_once(std::move(jobs), std::string());
        if (!r) co_return r.error();
        co_return std::move(r->inserted);
    }

    asio::awaitable<result<insert_outcome>> insert_once(std::vector<job> jobs, std::string key) override {
        std::vector<std::string> args{key, std::to_string(idempotency_window_ms), std::to_string(jobs.size())};
        for (const auto& j : jobs) {
            const auto f = redis_rows::new_job_fields(j);
            args.push_back(j.id);
            args.push_back(std::to_string(f.size()));
            for (const auto& [k, v] : f) {
                args.push_back(k);
                args.push_back(v);
            }
        }
        return on_store(do_insert(script(s_insert, std::move(args))));
    }

    asio::awaitable<result<std::optional<std::vector<std::string>>>> idempotent_jobs(std::string key,
                                                                                    std::int64_t now) override {
        return on_store(do_idempotent(std::move(key), now));
    }

    asio::awaitable<result<job>> start(std::string id) override {
        return on_store(do_transition(std::move(id), "queued", job_state::processing, "claim", 0, "+1", {{"progress", "0"}}));
    }

    asio::awaitable<result<void>> set_progress(std::string id, int progress) override {
        return on_store(do_void(script(s_progress, {std::move(id), std::to_string(progress)})));
    }

    asio::awaitable<result<job>> succeed(std::string id, job_source src, std::vector<job_output> outputs,
                                         std::optional<double> attempt_seconds) override {
        redis_rows::fields f{{"progress", "100"}, {"outputs", outputs_to_json(outputs)}};
        redis_rows::add_source_details(f, src);
        redis_rows::add_error(f, std::nullopt);
        return on_store(do_transition(std::move(id), "processing", job_state::succeeded, "drop", 0, "", std::move(f),
                                      attempt_seconds));
    }

    asio::awaitable<result<job>> fail(std::string id, job_source src, error err,
                                      std::optional<double> attempt_seconds) override {
        redis_rows::fields f;
        redis_rows::add_source_details(f, src);
        redis_rows::add_error(f, err);
        return on_store(do_transition(std::move(id), "processing", job_state::failed, "drop", 0, "", std::move(f),
                                      attempt_seconds));
    }

    asio::awaitable<result<job>> retry_later(std::string id, job_source src, error err, std::int64_t run_after,
                                             std::optional<double> attempt_seconds) override {
        redis_rows::fields f{{"progress", "0"}, {"run_after", std::to_string(run_after)}};
        redis_rows::add_source_details(f, src);
        redis_rows::add_error(f, err);
        return on_store(do_transition(std::move(id), "processing", job_state::queued, "delay", run_after, "", std::move(f),
                                      attempt_seconds));
    }

    asio::awaitable<result<job>> release(std::string id) override {
        return on_store(do_transition(std::move(id), "processing", job_state::queued, "renew", 0, "-1", {{"progress", "0"}}));
    }

    asio::awaitable<result<job_change>> cancel(std::string id) override {
        return on_store(do_cancel(std::move(id)));
    }

    asio::awaitable<result<job_change>> retry(std::string id) override { return on_store(do_retry(std::move(id))); }

    asio::awaitable<result<std::vector<std::string>>> expired(std::int64_t cutoff, int limit) override {
        return on_store(do_ids({"ZRANGEBYSCORE", key("final"), "-inf", "(" + std::to_string(cutoff), "LIMIT", "0",
                                std::to_string(limit)}));
    }

    asio::awaitable<result<int>> remove_expired(std::vector<std::string> ids, std::int64_t cutoff, std::int64_t now) override {
        std::vector<std::string> args{std::to_string(cutoff), std::to_string(now - idempotency_window_ms)};
        args.insert(args.end(), ids.begin(), ids.end());
        return on_store(do_int(script(s_remove, std::move(args))));
    }

    recovery recover_interrupted() override { return asio::co_spawn(ioc_, do_recover(), asio::use_future).get(); }

    asio::awaitable<result<std::optional<job>>> get(std::string id) override { return on_store(do_get(std::move(id))); }

    asio::awaitable<result<std::vector<job>>> get_all(std::vector<std::string> ids) override {
        return on_store(do_get_all(std::move(ids)));
    }

    asio::awaitable<result<list_page>> list(std::optional<job_state> state, int limit,
                                            std::optional<std::int64_t> before) override {
        return on_store(do_list(state, limit, before));
    }

    asio::awaitable<result<std::vector<std::string>>> due(std::int64_t now, int limit) override {
        return on_store(do_ids(script(s_due, {std::to_string(now), std::to_string(limit)})));
    }

    asio::awaitable<result<std::optional<std::int64_t>>> next_due_after(std::int64_t now) override {
        return on_store(do_next_due(now));
    }

    asio::awaitable<result<std::int64_t>> count(job_state state) override {
        return on_store(do_int64({"ZCARD", key("state:" + std::string(to_string(state)))}));
    }

    asio::awaitable<result<std::map<job_state, std::int64_t>>> count_by_state() override {
        return on_store(do_counts());
    }

    asio::awaitable<result<std::optional<std::string>>> get_meta(std::string k) override {
        return on_store(do_meta({"HGET", key("meta"), std::move(k)}));
    }

    asio::awaitable<result<std::string>> put_meta_once(std::string k, std::string v) override {
        return on_store(do_meta_once(std::move(k), std::move(v)));
    }

    asio::awaitable<result<void>> put_newest_seq_once(std::string k) override {
        return on_store(do_void({"EVAL",
                                 "redis.call('HSETNX', KEYS[1], ARGV[1], redis.call('GET', KEYS[2]) or '0') return 1", "2",
                                 key("meta"), key("seq"), std::move(k)}));
    }

    asio::awaitable<result<void>> raise_meta(std::string k, std::int64_t v) override {
        return on_store(do_void({"EVAL",
                                 "if tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') < tonumber(ARGV[2]) then "
                                 "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end return 1",
                                 "1", key("meta"), std::move(k), std::to_string(v)}));
    }

    asio::awaitable<result<std::vector<job_ref>>> jobs_after(std::int64_t after, int limit) override {
        return on_store(do_refs({"ZRANGEBYSCORE", key("all"), "(" + std::to_string(after), "+inf", "WITHSCORES", "LIMIT",
                                 "0", std::to_string(limit)},
                                std::nullopt, limit));
    }

    asio::awaitable<result<std::vector<job_ref>>> waiting_between(std::int64_t after, std::int64_t up_to,
                                                                  int limit) override {
        return on_store(do_refs({"ZRANGEBYSCORE", key("state:queued"), "(" + std::to_string(after), std::to_string(up_to),
                                 "WITHSCORES", "LIMIT", "0", std::to_string(limit)},
                                resp::command{"ZRANGEBYSCORE", key("state:processing"), "(" + std::to_string(after),
                                              std::to_string(up_to), "WITHSCORES", "LIMIT", "0", std::to_string(limit)},
                                limit));
    }

    asio::awaitable<result<std::unordered_map<std::string, job_state>>> states_of(std::vector<std::string> ids) override {
        return on_store(do_states(std::move(ids)));
    }

    std::uint64_t commits() const noexcept override { return commits_.load(std::memory_order_relaxed); }

    // ---- the work stream ----
    asio::awaitable<result<std::vector<work_entry>>> take(std::size_t count) override {
        return on_store(do_read_group(">", count));
    }

    asio::awaitable<result<std::vector<work_entry>>> own_pending(std::size_t count) override {
        return on_store(do_read_group("0", count));
    }

    asio::awaitable<result<std::vector<work_entry>>> claim_idle(std::chrono::milliseconds idle, std::size_t count) override {
        return on_store(do_claim(idle, count));
    }

    asio::awaitable<result<std::vector<std::string>>> refresh(std::vector<std::string> entries) override {
        return on_store(do_ids(script(s_refresh, std::move(entries))));
    }

    asio::awaitable<result<promoted>> promote_due(std::int64_t now) override { return on_store(do_promote(now)); }

    asio::awaitable<result<std::vector<stored_event>>> events_after(std::string after, std::size_t count) override {
        return on_store(do_events(std::move(after), count));
    }

    asio::awaitable<result<std::vector<stored_event>>> wait_events(std::string after, std::size_t count,
                                                                   std::chrono::milliseconds block) override {
        return on_store(do_wait_events(std::move(after), count, block));
    }

    asio::awaitable<result<std::vector<stored_event>>> latest_events(std::size_t count) override {
        return on_store(do_latest_events(count));
    }

    const redis_store_options& options() const noexcept override { return opts_; }
    const redis_url& url() const noexcept override { return url_; }
    std::string state() const override {
        std::lock_guard lk(state_mutex_);
        return state_;
    }

private:
    struct call {
        std::vector<resp::command> cmds;
        // Runs on the store's thread, in reply order (the commit listener is called from here).
        std::function<void(result<std::vector<value>>)> done;
    };

    std::string key(std::string_view name) const { return opts_.prefix + std::string(name); }

    resp::command script(script_id s, std::vector<std::string> args) const {
        resp::command c{"EVALSHA", sha(s), "0", opts_.prefix, std::to_string(now_ms()), opts_.consumer,
                        std::to_string(opts_.max_events)};
        for (auto& a : args) c.push_back(std::move(a));
        return c;
    }

    static std::string sha(script_id s) {
        // The SHA1 Redis names a script by; computed once (SCRIPT LOAD returns the same).
        static const auto shas = [] {
            std::array<std::string, s_count> out;
            for (int i = 0; i < s_count; ++i) out[i] = sha1_hex(full_script(static_cast<script_id>(i)));
            return out;
        }();
        return shas[s];
    }

    static std::string full_script(script_id s) { return std::string(redis_scripts::prelude) + script_body(s); }
    static std::string sha1_hex(const std::string& text) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        EVP_Digest(text.data(), text.size(), md, &n, EVP_sha1(), nullptr);
        static const char* hex = "0123456789abcdef";
        std::string out;
        for (unsigned int i = 0; i < n; ++i) {
            out.push_back(hex[md[i] >> 4]);
            out.push_back(hex[md[i] & 15]);
        }
        return out;
    }

    // Runs `op` on the store's thread; the caller resumes on its own executor.
    template <class T>
    asio::awaitable<T> on_store(asio::awaitable<T> op) {
        co_return co_await asio::co_spawn(ioc_, std::move(op), asio::use_awaitable);
    }

    // Queues commands for the next round trip and waits for their replies (store thread only).
    // `on_done` runs first, in reply order.
    asio::awaitable<result<std::vector<value>>> exec(std::vector<resp::command> cmds,
                                                     std::function<void(const result<std::vector<value>>&)> on_done = {}) {
        struct slot {
            explicit slot(asio::io_context& io) : timer(io, asio::steady_timer::time_point::max()) {}
            asio::steady_timer timer;
            std::optional<result<std::vector<value>>> got;
        };
        auto s = std::make_shared<slot>(ioc_);
        queue_.push_back(call{std::move(cmds), [s, on_done = std::move(on_done)](result<std::vector<value>> r) {
                                  if (on_done) on_done(r);
                                  s->got.emplace(std::move(r));
                                  s->timer.cancel();
                              }});
        wake_.cancel();
        while (!s->got) co_await s->timer.async_wait(asio::as_tuple(asio::use_awaitable));
        co_return std::move(*s->got);
    }

    // The one connection's loop: everything queued goes out in one pipeline.
    asio::awaitable<void> pump() {
        while (!stopping_) {
            if (queue_.empty()) {
                wake_.expires_at(asio::steady_timer::time_point::max());
                co_await wake_.async_wait(asio::as_tuple(asio::use_awaitable));
                continue;
            }
            std::vector<call> batch;
            std::size_t commands = 0;
            while (!queue_.empty() && commands < 512) {
                commands += queue_.front().cmds.size();
                batch.push_back(std::move(queue_.front()));
                queue_.pop_front();
            }
            if (!client_.is_open()) {
                auto c = co_await connect();
                if (!c) {
                    for (auto& b : batch) b.done(c.error());
                    continue;
                }
            }
            std::vector<resp::command> all;
            all.reserve(commands);
            for (const auto& b : batch)
                for (const auto& c : b.cmds) all.push_back(c);
            auto replies = co_await client_.exec(std::move(all));
            if (!replies) {
                const error e{errc::storage_unavailable,
                              "Redis at " + to_display_string(url_) + " is unavailable: " + replies.error().message};
                set_state("down: " + replies.error().message);
                for (auto& b : batch) b.done(e);
                continue;
            }
            set_state("up");
            std::size_t at = 0;
            std::deque<call> again;
            for (auto& b : batch) {
                std::vector<value> mine(std::make_move_iterator(replies->begin() + at),
                                        std::make_move_iterator(replies->begin() + at + b.cmds.size()));
                at += b.cmds.size();
                const bool noscript = std::any_of(mine.begin(), mine.end(), [](const value& v) {
                    return v.is_error() && v.text.rfind("NOSCRIPT", 0) == 0;
                });
                if (noscript)
                    again.push_back(std::move(b));  // the server lost its scripts (a restart, a flush)
                else
                    b.done(std::move(mine));
            }
            if (!again.empty()) {
                if (auto l = co_await load_scripts(); !l) {
                    for (auto& b : again) b.done(l.error());
                } else {
                    for (auto it = again.rbegin(); it != again.rend(); ++it) queue_.push_front(std::move(*it));
                }
            }
        }
        while (!queue_.empty()) {
            queue_.front().done(error{errc::storage_unavailable, "the job store is closing"});
            queue_.pop_front();
        }
    }

    asio::awaitable<result<void>> connect() {
        auto c = co_await client_.connect();
        if (!c) {
            set_state("down: " + c.error().message);
            co_return error{errc::storage_unavailable,
                            "Redis at " + to_display_string(url_) + " is unavailable: " + c.error().message};
        }
        co_return co_await load_scripts();
    }

    asio::awaitable<result<void>> load_scripts() {
        std::vector<resp::command> loads;
        for (int i = 0; i < s_count; ++i) loads.push_back({"SCRIPT", "LOAD", full_script(static_cast<script_id>(i))});
        auto r = co_await client_.exec(std::move(loads));
        if (!r) {
            set_state("down: " + r.error().message);
            co_return error{errc::storage_unavailable,
                            "Redis at " + to_display_string(url_) + " is unavailable: " + r.error().message};
        }
        for (const auto& v : *r)
            if (v.is_error()) co_return error{errc::io_error, "Redis refused the job store's scripts: " + v.text};
        co_return result<void>{};
    }

    void set_state(std::string s) {
        std::lock_guard lk(state_mutex_);
        if (state_ != s && s != "up") log::warn("redis job store", "state=\"" + s + "\"");
        state_ = std::move(s);
    }

    void tell(job_change c) {
        std::lock_guard lk(listener_mutex_);
        if (listener_) listener_(std::move(c));
    }

    // A reply that is an error value (a script bug, a wrong type): an io_error for the caller.
    static std::optional<error> reply_error(const value& v) {
        if (!v.is_error()) return std::nullopt;
        log::error("redis job store command failed", "error=\"" + v.text + "\"");
        return error{errc::io_error, "the job store refused the command"};
    }

    // One command: its reply, a transport failure or an error reply being the error.
    asio::awaitable<result<value>> exec_one(resp::command cmd) {
        std::vector<resp::command> cmds;
        cmds.push_back(std::move(cmd));
        auto op = exec(std::move(cmds));
        auto r = co_await std::move(op);
        if (!r) co_return r.error();
        if (auto e = reply_error((*r)[0])) co_return *e;
        co_return std::move((*r)[0]);
    }

    // ---- the operations, on the store's thread ----

    asio::awaitable<result<insert_outcome>> do_insert(resp::command cmd) {
        auto op1 = exec({std::move(cmd)}, [this](const result<std::vector<value>>& r) {
            if (!r || (*r)[0].is_error() || !(*r)[0].is_array() || (*r)[0].elements.empty() ||
                str((*r)[0].elements[0]) != "inserted")
                return;
            commits_.fetch_add(1, std::memory_order_relaxed);
            for (std::size_t i = 1; i < (*r)[0].elements.size(); ++i)
                if (auto c = change_of((*r)[0].elements[i])) tell(std::move(*c));
        });
        auto r = co_await std::move(op1);
        if (!r) co_return r.error();
        const value& v = (*r)[0];
        if (auto e = reply_error(v)) co_return *e;
        insert_outcome out;
        if (!v.is_array() || v.elements.empty()) co_return error{errc::io_error, "unexpected reply to an insert"};
        if (str(v.elements[0]) == "replayed") {
            out.replayed = true;
            out.job_ids = ids_of(str(v.elements[1]));
            co_return out;
        }
        for (std::size_t i = 1; i < v.elements.size(); ++i)
            if (auto c = change_of(v.elements[i])) {
                out.job_ids.push_back(c->now.id);
                out.inserted.push_back(std::move(c->now));
            }
        co_return out;
    }

    asio::awaitable<result<std::optional<std::vector<std::string>>>> do_idempotent(std::string k, std::int64_t now) {
        auto op2 = exec_one(resp::command{"GET", key("idem:" + k)});
        auto r = co_await std::move(op2);
        if (!r) co_return r.error();
        // "<first use, ms> <ids as JSON>" (the insert script's format).
        const std::string v = str(*r);
        const auto space = v.find(' ');
        if (space == std::string::npos) co_return std::optional<std::vector<std::string>>{};
        std::int64_t first = 0;
        std::from_chars(v.data(), v.data() + space, first);
        if (first <= now - idempotency_window_ms) co_return std::optional<std::vector<std::string>>{};
        co_return std::optional<std::vector<std::string>>{ids_of(v.substr(space + 1))};
    }

    // One transition script; the change goes to the listener once its reply is in.
    asio::awaitable<result<job_change>> run_transition(std::string id, std::string from, job_state to, std::string entry,
                                                       std::int64_t at, std::string attempts, redis_rows::fields f,
                                                       std::optional<double> attempt_seconds) {
        std::vector<std::string> args{id, std::move(from), std::string(to_string(to)), std::move(entry), std::to_string(at),
                                      std::move(attempts), std::to_string(f.size())};
        for (auto& [k, v] : f) {
            args.push_back(std::move(k));
            args.push_back(std::move(v));
        }
        auto op3 = exec({script(s_transition, std::move(args))},
                               [this, attempt_seconds](const result<std::vector<value>>& r) {
                                   if (!r) return;
                                   const value& v = (*r)[0];
                                   if (!v.is_array() || v.elements.empty() || str(v.elements[0]) != "ok") return;
                                   commits_.fetch_add(1, std::memory_order_relaxed);
                                   if (auto c = change_of(v)) {
                                       c->attempt_seconds = attempt_seconds;
                                       tell(std::move(*c));
                                   }
                               });
        auto r = co_await std::move(op3);
        if (!r) co_return r.error();
        const value& v = (*r)[0];
        if (auto e = reply_error(v)) co_return *e;
        if (!v.is_array() || v.elements.size() < 2) co_return error{errc::io_error, "unexpected reply to a transition"};
        if (str(v.elements[0]) == "refused") co_return refusal(id, str(v.elements[1]), to);
        auto c = change_of(v);
        if (!c) co_return error{errc::io_error, "unexpected reply to a transition"};
        c->attempt_seconds = attempt_seconds;
        co_return std::move(*c);
    }

    asio::awaitable<result<job>> do_transition(std::string id, std::string from, job_state to, std::string entry,
                                               std::int64_t at, std::string attempts, redis_rows::fields f,
                                               std::optional<double> attempt_seconds = std::nullopt) {
        auto c = co_await run_transition(std::move(id), std::move(from), to, std::move(entry), at, std::move(attempts),
                                         std::move(f), attempt_seconds);
        if (!c) co_return c.error();
        co_return std::move(c->now);
    }

    asio::awaitable<result<job_change>> do_cancel(std::string id) {
        redis_rows::fields f{{"outputs", "[]"}};
        redis_rows::add_error(f, error{errc::cancelled, "cancelled on request"});
        auto c = co_await run_transition(id, "queued processing", job_state::cancelled, "drop", 0, "", std::move(f),
                                         std::nullopt);
        if (c || c.error().code == errc::not_found) co_return c;
        // Refused: already cancelled is answered as it is; finished is a conflict.
        auto now = co_await do_get(id);
        if (!now) co_return now.error();
        if (!*now) co_return error{errc::not_found, "no job with id '" + id + "'"};
        if ((*now)->state == job_state::cancelled) co_return job_change{job_state::cancelled, std::move(**now), true, {}};
        co_return error{errc::conflict, "job " + id + " has already " + std::string(to_string((*now)->state)) +
                                            "; only waiting or running jobs can be cancelled"};
    }

    asio::awaitable<result<job_change>> do_retry(std::string id) {
        redis_rows::fields f{{"progress", "0"}, {"run_after", "0"}, {"outputs", "[]"}};
        redis_rows::add_error(f, std::nullopt);
        auto c = co_await run_transition(id, "failed cancelled", job_state::queued, "renew", 0, "reset", std::move(f),
                                         std::nullopt);
        if (c) co_return c;
        if (c.error().code == errc::not_found) co_return error{errc::not_found, "no job with id '" + id + "'"};
        auto now = co_await do_get(id);
        if (!now) co_return now.error();
        if (!*now) co_return error{errc::not_found, "no job with id '" + id + "'"};
        co_return error{errc::conflict, "job " + id + " is " + std::string(to_string((*now)->state)) +
                                            "; only failed or cancelled jobs can be retried"};
    }

    asio::awaitable<result<void>> do_void(resp::command cmd) {
        auto op4 = exec_one(std::move(cmd));
        auto r = co_await std::move(op4);
        if (!r) co_return r.error();
        co_return result<void>{};
    }

    asio::awaitable<result<int>> do_int(resp::command cmd) {
        auto op5 = exec_one(std::move(cmd));
        auto r = co_await std::move(op5);
        if (!r) co_return r.error();
        co_return static_cast<int>(to_int(*r));
    }

    asio::awaitable<result<std::int64_t>> do_int64(resp::command cmd) {
        auto op6 = exec_one(std::move(cmd));
        auto r = co_await std::move(op6);
        if (!r) co_return r.error();
        co_return to_int(*r);
    }

    asio::awaitable<result<std::vector<std::string>>> do_ids(resp::command cmd) {
        auto op7 = exec_one(std::move(cmd));
        auto r = co_await std::move(op7);
        if (!r) co_return r.error();
        std::vector<std::string> ids;
        for (const auto& v : r->elements) ids.push_back(str(v));
        co_return ids;
    }

    asio::awaitable<result<std::optional<job>>> do_get(std::string id) {
        auto op8 = exec_one(resp::command{"HGETALL", key("job:" + id)});
        auto r = co_await std::move(op8);
        if (!r) co_return r.error();
        co_return redis_rows::job_from_reply(*r);
    }

    asio::awaitable<result<std::vector<job>>> do_get_all(std::vector<std::string> ids) {
        std::vector<job> out;
        if (ids.empty()) co_return out;
        std::vector<resp::command> cmds;
        for (const auto& id : ids) cmds.push_back({"HGETALL", key("job:" + id)});
        auto op9 = exec(std::move(cmds));
        auto r = co_await std::move(op9);
        if (!r) co_return r.error();
        for (const auto& v : *r) {
            if (auto e = reply_error(v)) co_return *e;
            if (auto j = redis_rows::job_from_reply(v)) out.push_back(std::move(*j));
        }
        co_return out;
    }

    asio::awaitable<result<list_page>> do_list(std::optional<job_state> state, int limit, std::optional<std::int64_t> before) {
        auto op10 = exec_one(script(s_list, {state ? std::string(to_string(*state)) : std::string(),
                                                std::to_string(limit), before ? std::to_string(*before) : std::string()}));
        auto r = co_await std::move(op10);
        if (!r) co_return r.error();
        list_page page;
        for (const auto& v : r->elements)
            if (auto j = redis_rows::job_from_reply(v)) page.jobs.push_back(std::move(*j));
        if (static_cast<int>(page.jobs.size()) > limit) {
            page.jobs.resize(static_cast<std::size_t>(limit));
            page.next_cursor = page.jobs.back().seq;
        }
        co_return page;
    }

    asio::awaitable<result<std::optional<std::int64_t>>> do_next_due(std::int64_t now) {
        auto op11 = exec_one(resp::command{"ZRANGEBYSCORE", key("delayed"), "(" + std::to_string(now), "+inf", "WITHSCORES", "LIMIT",
                                 "0", "1"});
        auto r = co_await std::move(op11);
        if (!r) co_return r.error();
        if (r->elements.size() < 2) co_return std::optional<std::int64_t>{};
        co_return std::optional<std::int64_t>{to_int(r->elements[1])};
    }

    asio::awaitable<result<std::map<job_state, std::int64_t>>> do_counts() {
        const job_state all[] = {job_state::queued, job_state::processing, job_state::succeeded, job_state::failed,
                                 job_state::cancelled};
        std::vector<resp::command> cmds;
        for (auto s : all) cmds.push_back({"ZCARD", key("state:" + std::string(to_string(s)))});
        auto op12 = exec(std::move(cmds));
        auto r = co_await std::move(op12);
        if (!r) co_return r.error();
        std::map<job_state, std::int64_t> out;
        for (std::size_t i = 0; i < std::size(all); ++i) {
            if (auto e = reply_error((*r)[i])) co_return *e;
            out[all[i]] = to_int((*r)[i]);
        }
        co_return out;
    }

    asio::awaitable<result<std::optional<std::string>>> do_meta(resp::command cmd) {
        auto op13 = exec_one(std::move(cmd));
        auto r = co_await std::move(op13);
        if (!r) co_return r.error();
        if (r->is_null()) co_return std::optional<std::string>{};
        co_return std::optional<std::string>{str(*r)};
    }

    asio::awaitable<result<std::string>> do_meta_once(std::string k, std::string v) {
        auto op14 = exec({{"HSETNX", key("meta"), k, std::move(v)}, {"HGET", key("meta"), k}});
        auto r = co_await std::move(op14);
        if (!r) co_return r.error();
        for (const auto& x : *r)
            if (auto e = reply_error(x)) co_return *e;
        co_return str((*r)[1]);
    }

    asio::awaitable<result<std::vector<job_ref>>> do_refs(resp::command first, std::optional<resp::command> second, int limit) {
        std::vector<resp::command> cmds{std::move(first)};
        if (second) cmds.push_back(std::move(*second));
        auto op15 = exec(std::move(cmds));
        auto r = co_await std::move(op15);
        if (!r) co_return r.error();
        std::vector<job_ref> refs;
        for (const auto& v : *r) {
            if (auto e = reply_error(v)) co_return *e;
            for (std::size_t i = 0; i + 1 < v.elements.size(); i += 2)
                refs.push_back(job_ref{to_int(v.elements[i + 1]), str(v.elements[i]), job_state::queued});
        }
        std::sort(refs.begin(), refs.end(), [](const job_ref& a, const job_ref& b) { return a.seq < b.seq; });
        if (static_cast<int>(refs.size()) > limit) refs.resize(static_cast<std::size_t>(limit));
        std::vector<std::string> ids;
        for (const auto& ref : refs) ids.push_back(ref.id);
        auto states = co_await do_states(std::move(ids));
        if (!states) co_return states.error();
        std::vector<job_ref> out;
        for (auto& ref : refs)
            if (auto it = states->find(ref.id); it != states->end()) {
                ref.state = it->second;
                out.push_back(std::move(ref));
            }
        co_return out;
    }

    asio::awaitable<result<std::unordered_map<std::string, job_state>>> do_states(std::vector<std::string> ids) {
        std::unordered_map<std::string, job_state> out;
        if (ids.empty()) co_return out;
        std::vector<resp::command> cmds;
        for (const auto& id : ids) cmds.push_back({"HGET", key("job:" + id), "state"});
        auto op16 = exec(std::move(cmds));
        auto r = co_await std::move(op16);
        if (!r) co_return r.error();
        for (std::size_t i = 0; i < ids.size(); ++i) {
            if (auto e = reply_error((*r)[i])) co_return *e;
            if (auto s = parse_job_state(str((*r)[i]))) out.emplace(ids[i], *s);
        }
        co_return out;
    }

    asio::awaitable<recovery> do_recover() {
        recovery out;
        // Only this consumer's: with several instances, the others' running jobs are theirs.
        auto op17 = exec({{"ZRANGE", key("state:processing"), "0", "-1"}});
        auto r = co_await std::move(op17);
        if (!r) throw config_error("cannot recover interrupted jobs: " + r.error().message);
        std::vector<std::string> ids;
        for (const auto& v : (*r)[0].elements) ids.push_back(str(v));
        std::vector<resp::command> owners;
        for (const auto& id : ids) owners.push_back({"HGET", key("job:" + id), "owner"});
        if (!owners.empty()) {
            auto op18 = exec(std::move(owners));
            auto o = co_await std::move(op18);
            if (!o) throw config_error("cannot recover interrupted jobs: " + o.error().message);
            for (std::size_t i = 0; i < ids.size(); ++i) {
                if (str((*o)[i]) != opts_.consumer) continue;
                auto op19 = exec({script(s_recover, {ids[i], ""})});
                auto got = co_await std::move(op19);
                if (!got) throw config_error("cannot recover interrupted jobs: " + got.error().message);
                const std::string what = (*got)[0].is_array() && !(*got)[0].elements.empty()
                                             ? str((*got)[0].elements[0])
                                             : std::string();
                if (what == "requeued") {
                    ++out.requeued;
                    out.requeued_ids.push_back(ids[i]);
                } else if (what == "failed") {
                    ++out.failed;
                    out.failed_ids.push_back(ids[i]);
                }
            }
        }
        auto op20 = exec({{"ZCARD", key("state:queued")}});
        auto q = co_await std::move(op20);
        if (!q) throw config_error("cannot count queued jobs: " + q.error().message);
        out.queued = to_int((*q)[0]);
        co_return out;
    }

    asio::awaitable<result<std::vector<work_entry>>> do_read_group(std::string from, std::size_t count) {
        auto op21 = exec_one(resp::command{"XREADGROUP", "GROUP", "workers", opts_.consumer, "COUNT", std::to_string(count), "STREAMS",
                                 key("work"), std::move(from)});
        auto r = co_await std::move(op21);
        if (!r) co_return r.error();
        std::vector<work_entry> out;
        const value& v = *r;
        if (!v.is_array() || v.elements.empty()) co_return out;
        const value& stream = v.elements[0];
        if (!stream.is_array() || stream.elements.size() < 2) co_return out;
        std::vector<std::string> gone;
        for (const auto& [id, fields] : stream_entries(stream.elements[1])) {
            auto j = field_of(fields, "job");
            if (j.empty())
                gone.push_back(id);  // deleted meanwhile (its job finished): nothing to run
            else
                out.push_back(work_entry{id, std::move(j)});
        }
        if (!gone.empty()) {
            resp::command ack{"XACK", key("work"), "workers"};
            ack.insert(ack.end(), gone.begin(), gone.end());
            auto op22 = exec({std::move(ack)});
            (void)co_await std::move(op22);
        }
        co_return out;
    }

    asio::awaitable<result<std::vector<work_entry>>> do_claim(std::chrono::milliseconds idle, std::size_t count) {
        auto op23 = exec_one(resp::command{"XAUTOCLAIM", key("work"), "workers", opts_.consumer, std::to_string(idle.count()), "0-0",
                                 "COUNT", std::to_string(count)});
        auto r = co_await std::move(op23);
        if (!r) co_return r.error();
        std::vector<work_entry> out;
        const value& v = *r;
        if (!v.is_array() || v.elements.size() < 2) co_return out;
        for (const auto& [entry, fields] : stream_entries(v.elements[1])) {
            const auto j = field_of(fields, "job");
            if (j.empty()) continue;
            auto op24 = exec({script(s_recover, {j, entry})}, [this](const result<std::vector<value>>& r) {
                if (!r) return;
                const value& x = (*r)[0];
                if (!x.is_array() || x.elements.empty()) return;
                const auto what = str(x.elements[0]);
                if (what != "requeued" && what != "failed") return;
                commits_.fetch_add(1, std::memory_order_relaxed);
                if (auto c = change_of(x)) tell(std::move(*c));
            });
            auto got = co_await std::move(op24);
            if (!got) co_return got.error();
            const value& x = (*got)[0];
            if (auto e = reply_error(x)) co_return *e;
            const auto what = x.is_array() && !x.elements.empty() ? str(x.elements[0]) : std::string();
            if (what == "run" || what == "requeued") {
                log::info("claimed a job from a consumer gone quiet", "job=" + j + " entry=" + entry);
                out.push_back(work_entry{entry, j});
            } else if (what == "failed") {
                log::warn("job failed: interrupted during every attempt", "job=" + j);
            }
        }
        co_return out;
    }

    asio::awaitable<result<promoted>> do_promote(std::int64_t now) {
        auto cmd = script(s_promote, {"500"});
        cmd[4] = std::to_string(now);
        auto op25 = exec_one(std::move(cmd));
        auto r = co_await std::move(op25);
        if (!r) co_return r.error();
        promoted p;
        const value& v = *r;
        if (v.is_array() && v.elements.size() >= 2) {
            p.moved = static_cast<int>(to_int(v.elements[0]));
            p.next_due = to_int(v.elements[1]);
        }
        co_return p;
    }

    asio::awaitable<result<std::vector<stored_event>>> do_events(std::string after, std::size_t count) {
        const std::string from = after.empty() || after == "0" ? std::string("-") : "(" + after;
        auto op26 = exec_one(resp::command{"XRANGE", key("events"), from, "+", "COUNT", std::to_string(count)});
        auto r = co_await std::move(op26);
        if (!r) co_return r.error();
        std::vector<stored_event> out;
        for (const auto& [id, fields] : stream_entries(*r)) out.push_back(event_of(id, fields));
        co_return out;
    }

    asio::awaitable<result<std::vector<stored_event>>> do_latest_events(std::size_t count) {
        auto op = exec_one(resp::command{"XREVRANGE", key("events"), "+", "-", "COUNT", std::to_string(count)});
        auto r = co_await std::move(op);
        if (!r) co_return r.error();
        std::vector<stored_event> out;
        for (const auto& [id, fields] : stream_entries(*r)) out.push_back(event_of(id, fields));
        std::reverse(out.begin(), out.end());
        co_return out;
    }

    // On the reader connection: XREAD BLOCK would hold up the pipeline.
    asio::awaitable<result<std::vector<stored_event>>> do_wait_events(std::string after, std::size_t count,
                                                                      std::chrono::milliseconds block) {
        if (!reader_.is_open()) {
            auto c = co_await reader_.connect();
            if (!c)
                co_return error{errc::storage_unavailable,
                                "Redis at " + to_display_string(url_) + " is unavailable: " + c.error().message};
        }
        std::vector<resp::command> cmd{{"XREAD", "COUNT", std::to_string(count), "BLOCK", std::to_string(block.count()),
                                        "STREAMS", key("events"), after.empty() ? std::string("$") : after}};
        auto r = co_await reader_.exec(std::move(cmd));
        if (!r)
            co_return error{errc::storage_unavailable,
                            "Redis at " + to_display_string(url_) + " is unavailable: " + r.error().message};
        if (auto e = reply_error((*r)[0])) co_return *e;
        std::vector<stored_event> out;
        const value& v = (*r)[0];
        if (!v.is_array() || v.elements.empty()) co_return out;  // nothing within `block`
        const value& stream = v.elements[0];
        if (!stream.is_array() || stream.elements.size() < 2) co_return out;
        for (const auto& [id, fields] : stream_entries(stream.elements[1])) out.push_back(event_of(id, fields));
        co_return out;
    }

    redis_store_options opts_;
    redis_url url_;
    asio::io_context ioc_{1};
    asio::executor_work_guard<asio::io_context::executor_type> guard_;
    redis_client client_;
    redis_client reader_;  // the events stream's blocking reads
    asio::steady_timer wake_;
    std::deque<call> queue_;  // store thread only
    bool stopping_ = false;   // store thread only
    std::thread thread_;
    std::mutex listener_mutex_;
    commit_listener listener_;
    mutable std::mutex state_mutex_;
    std::string state_ = "up";
    std::atomic<std::uint64_t> commits_{0};
};

}  // namespace

std::uint64_t event_number(std::string_view stream_id) noexcept {
    const auto dash = stream_id.find('-');
    if (dash == std::string_view::npos) return 0;
    std::uint64_t ms = 0, seq = 0;
    if (std::from_chars(stream_id.data(), stream_id.data() + dash, ms).ec != std::errc{}) return 0;
    if (std::from_chars(stream_id.data() + dash + 1, stream_id.data() + stream_id.size(), seq).ec != std::errc{}) return 0;
    return (ms << 20) | std::min<std::uint64_t>(seq, (1u << 20) - 1);
}

std::unique_ptr<redis_job_store> open_redis_store(const redis_url& url, redis_store_options opts) {
    auto s = std::make_unique<redis_store>(url, std::move(opts));
    s->open();
    return s;
}

}  // namespace quickthumb
