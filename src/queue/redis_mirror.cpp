// The Redis mirror. The rules, in one place:
//
// * Accepted jobs. A cursor in the meta table (redis.mirrored_seq) says up to which seq every job
//   was added to the stream (XADD confirmed by Redis). catch_up() reads the jobs after it from
//   SQLite, XADDs all of them, final ones too (acknowledged and deleted at once: a job may finish
//   before its batch goes out), and then moves the cursor. So the stream's entries-added counts
//   every accepted job at least once; a crash between an XADD and the cursor's write only adds
//   those jobs again. Memory stays bounded while Redis is down: a hook only sets a flag, and the
//   jobs are read from SQLite again once Redis is back. The cursor starts at the newest job when
//   the mirror first runs on a data directory: older jobs are history, and the waiting ones among
//   them are caught by the next rule.
//
// * Re-mirroring, on every (re)connect and every reconcile_interval(): take anything added but
//   never delivered, read this consumer's whole pending list and XAUTOCLAIM what dead consumers
//   left; look each entry's job up in SQLite. Then: "every job that is not final and is at or
//   below the cursor has exactly one entry pending for this consumer". A job with none is added
//   again (Redis restarted empty or evicted it, the group was created afresh, a retried job whose
//   entry was acknowledged); a job with several keeps its oldest. No marker or epoch is needed to
//   tell that Redis lost our data: the pending list itself is the evidence.
//
// * Entries found pending: job final -> XACK + XDEL; job not in this store -> left alone and
//   logged (another deployment using the same Redis database: give each its own /db); job waiting
//   or running -> kept, acknowledged when the job finishes.
//
// * Finished and requeued jobs come as events (bounded; on overflow they are dropped and the next
//   pass is a full reconcile, which derives the same from SQLite). Events that arrived before a
//   reconcile are dropped by it for the same reason: it reads SQLite after them.
//
// * Several instances on one data directory share the consumer name (it lives in the shared meta
//   table), hence one pending list, and the cursor. Two of them may add the same new jobs when
//   they catch up at the same moment; the duplicate rule removes the extra entries, and an entry
//   another instance mapped is acknowledged by whichever instance sees its job final, at the
//   latest on its next reconcile. Redis never drives work here: the SQLite feeder does, and
//   store::start is the atomic claim of a job.
#include "quickthumb/redis_mirror.hpp"

#include "quickthumb/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <charconv>
#include <map>

namespace quickthumb {
namespace asio = boost::asio;
using clock_type = std::chrono::steady_clock;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr std::size_t read_count = 1000;    // entries per XREADGROUP page
constexpr std::size_t claim_count = 100;    // entries per XAUTOCLAIM page
constexpr std::size_t ids_per_command = 500;
constexpr int max_pages = 100000;           // a bound on any paging loop, against a misbehaving server
constexpr auto heartbeat_every = std::chrono::seconds(5);  // PING after this long idle

// "1700000000000-3" -> (1700000000000, 3), for ordering (oldest first). Unparsable sorts first.
std::pair<std::uint64_t, std::uint64_t> id_key(std::string_view id) {
    std::uint64_t ms = 0, seq = 0;
    auto dash = id.find('-');
    std::from_chars(id.data(), id.data() + std::min(dash, id.size()), ms);
    if (dash != std::string_view::npos) std::from_chars(id.data() + dash + 1, id.data() + id.size(), seq);
    return {ms, seq};
}

error protocol_error(std::string_view command, const resp::value& v) {
    return error{errc::io_error, "redis " + std::string(command) + ": unexpected reply " + to_string(v).substr(0, 200)};
}

error reply_error(std::string_view command, const resp::value& v) {
    return error{errc::io_error, "redis " + std::string(command) + ": " + v.text};
}

// [id, [field, value, ...]] or [id, nil] (an entry deleted while pending).
std::optional<stream_entry> parse_entry(const resp::value& v) {
    if (!v.is_array() || v.elements.size() != 2 || !v.elements[0].is_string()) return std::nullopt;
    stream_entry e{v.elements[0].text, {}};
    const auto& fields = v.elements[1];
    if (fields.is_null()) return e;
    if (!fields.is_array()) return std::nullopt;
    for (std::size_t i = 0; i + 1 < fields.elements.size(); i += 2)
        if (fields.elements[i].str() == "job" && fields.elements[i + 1].is_string()) e.job = fields.elements[i + 1].text;
    return e;
}

std::optional<std::vector<stream_entry>> parse_entries(const resp::value& v) {
    if (v.is_null()) return std::vector<stream_entry>{};
    if (!v.is_array()) return std::nullopt;
    std::vector<stream_entry> out;
    out.reserve(v.elements.size());
    for (const auto& e : v.elements) {
        auto parsed = parse_entry(e);
        if (!parsed) return std::nullopt;
        out.push_back(std::move(*parsed));
    }
    return out;
}

// XREADGROUP: nil (nothing new) or [[key, entries]].
std::optional<std::vector<stream_entry>> parse_read(const resp::value& v) {
    if (v.is_null()) return std::vector<stream_entry>{};
    if (!v.is_array()) return std::nullopt;
    std::vector<stream_entry> out;
    for (const auto& stream : v.elements) {
        if (!stream.is_array() || stream.elements.size() != 2) return std::nullopt;
        auto entries = parse_entries(stream.elements[1]);
        if (!entries) return std::nullopt;
        out.insert(out.end(), std::make_move_iterator(entries->begin()), std::make_move_iterator(entries->end()));
    }
    return out;
}

resp::command read_group(const std::string& consumer, std::size_t count, const std::string& from) {
    return resp::command{"XREADGROUP", "GROUP", redis_mirror::group_name, consumer, "COUNT", std::to_string(count),
                         "STREAMS",    redis_mirror::stream_key, from};
}

std::int64_t to_int64(const std::string& s) {
    std::int64_t v = 0;
    std::from_chars(s.data(), s.data() + s.size(), v);
    return v;
}


}  // namespace

redis_mirror::redis_mirror(asio::io_context& io, job_store& db, redis_url url, redis_mirror_options opts)
    : db_(db),
      opts_(opts),
      display_url_(to_display_string(url)),
      strand_(asio::make_strand(io)),
      client_(strand_, std::move(url), opts.client),
      wake_(strand_),
      retry_(strand_),
      jitter_(std::random_device{}()) {}

redis_mirror::~redis_mirror() = default;

void redis_mirror::start() {
    asio::co_spawn(strand_, run(), log::on_exit("redis mirror stopped"));
}

void redis_mirror::stop() {
    asio::post(strand_, [this] {
        stopping_ = true;
        wake_.cancel();
        retry_.cancel();
        client_.close();
    });
}

void redis_mirror::on_change(const job_change& c) {
    if (!c.stored) return;
    if (!c.previous) {
        // The ids are not kept: catch_up reads the jobs after the cursor from SQLite.
        {
            std::lock_guard lk(mutex_);
            accepted_ = true;
        }
        wake();
        return;
    }
    if (*c.previous == c.now.state) return;
    if (is_final(c.now.state)) record(c.now.id, true);
    else if (c.now.state == job_state::queued) record(c.now.id, false);
}

void redis_mirror::record(const std::string& id, bool finished) {
    {
        std::lock_guard lk(mutex_);
        if (!overflow_) {
            if (events_.size() >= opts_.max_events) {
                events_.clear();
                overflow_ = true;
            } else {
                events_.push_back(event{id, finished});
            }
        }
    }
    wake();
}

void redis_mirror::wake() {
    // One post per burst: the flag is cleared on the strand before the timer is cancelled, so an
    // event recorded after that posts again.
    if (!wake_posted_.exchange(true))
        asio::post(strand_, [this] {
            wake_posted_ = false;
            wake_.cancel();
        });
}

std::string redis_mirror::state() const {
    std::lock_guard lk(mutex_);
    return state_;
}

std::string redis_mirror::last_error() const {
    std::lock_guard lk(mutex_);
    return last_error_;
}

std::string redis_mirror::consumer() const {
    std::lock_guard lk(mutex_);
    return consumer_name_;
}

boost::json::object redis_mirror::readiness() const {
    std::lock_guard lk(mutex_);
    boost::json::object o;
    o["redis"] = state_;
    if (!consumer_name_.empty()) o["redis_consumer"] = consumer_name_;
    return o;
}

void redis_mirror::set_state(std::string state, std::string err) {
    std::string previous;
    {
        std::lock_guard lk(mutex_);
        previous = state_;
        state_ = state;
        if (!err.empty()) last_error_ = err;
    }
    if (previous == state) return;  // the same failure again: said once
    if (state == "up") {
        log::info("redis mirror up", "url=" + display_url_ + " consumer=" + consumer_);
    } else if (state.starts_with("down")) {
        log::warn("redis mirror down; uploads and processing go on, the mirror catches up when Redis is back",
                  "url=" + display_url_ + " error=\"" + err + "\"");
    }
}

std::chrono::milliseconds redis_mirror::reconcile_interval() const {
    using std::chrono::milliseconds;
    if (opts_.reconcile_every > milliseconds::zero()) return opts_.reconcile_every;
    return std::clamp<milliseconds>(opts_.claim_idle, milliseconds(1000), milliseconds(60'000));
}

asio::awaitable<void> redis_mirror::run() {
    // The consumer name is made once per data directory and kept in its meta table, so a
    // restarted instance finds its own pending entries (and instances sharing the directory share it).
    // The first run on this directory starts the cursor at the newest job (see the top).
    auto name = co_await db_.put_meta_once(consumer_meta_key, "qt-" + new_job_id().substr(0, 16));
    result<void> cursor = name ? co_await db_.put_newest_seq_once(cursor_meta_key) : result<void>{};
    if (!name || !cursor) {
        set_state("down: the mirror's settings cannot be stored", (!name ? name.error() : cursor.error()).message);
        co_return;
    }
    consumer_ = std::move(*name);
    {
        std::lock_guard lk(mutex_);
        consumer_name_ = consumer_;
    }

    auto backoff = opts_.backoff_min;
    while (!stopping_) {
        reached_up_ = false;
        result<void> r = error{errc::io_error, "stopped"};
        try {
            r = co_await session();
        } catch (const std::exception& e) {
            // A store failure (it is shutting down, say): the same path as a lost connection.
            r = error{errc::internal, std::string("mirror failed: ") + e.what()};
        }
        client_.close();
        if (stopping_) break;
        if (reached_up_) backoff = opts_.backoff_min;
        const std::string reason = r ? std::string("the connection ended") : r.error().message;
        set_state("down: " + reason, reason);
        // Between half and all of the backoff, so instances that lost Redis together do not come
        // back in step.
        std::uniform_int_distribution<long long> pick(backoff.count() / 2, backoff.count());
        retry_.expires_after(std::chrono::milliseconds(pick(jitter_)));
        co_await retry_.async_wait(asio::as_tuple(asio::use_awaitable));
        backoff = std::min(backoff * 2, opts_.backoff_max);
    }
    set_state("stopped", {});
}

asio::awaitable<result<void>> redis_mirror::session() {
    if (auto r = co_await client_.connect(); !r) co_return r;
    if (auto r = co_await check_eviction_policy(); !r) co_return r;
    if (auto r = co_await create_group(); !r) co_return r;
    unknown_logged_ = false;
    if (auto r = co_await reconcile(); !r) co_return r;
    reached_up_ = true;
    set_state("up", {});
    co_return co_await serve();
}

asio::awaitable<result<void>> redis_mirror::check_eviction_policy() {
    resp::command cmd{"CONFIG", "GET", "maxmemory-policy"};
    auto r = co_await client_.exec_one(std::move(cmd));
    if (!r) co_return r.error();
    std::optional<std::string> policy;
    if (!r->is_error()) {
        // [name, value] in RESP2, {name: value} in RESP3: the value follows the name either way.
        const auto& e = r->elements;
        for (std::size_t i = 0; i + 1 < e.size(); i += 2)
            if (e[i].str() == "maxmemory-policy" && e[i + 1].is_string()) policy = e[i + 1].text;
    }
    if (!policy) {
        log::warn("cannot read Redis' maxmemory-policy (CONFIG GET refused?); unless it is noeviction, Redis may "
                  "silently drop queued jobs from the stream",
                  "url=" + display_url_ + " reply=\"" + to_string(*r).substr(0, 200) + "\"");
    } else if (*policy != "noeviction") {
        log::warn("REDIS MAY EVICT QUEUED JOBS: maxmemory-policy is not noeviction, so under memory pressure Redis "
                  "silently deletes stream entries; set maxmemory-policy noeviction (SQLite still has every job)",
                  "policy=" + *policy + " url=" + display_url_);
    }
    co_return result<void>{};
}

asio::awaitable<result<void>> redis_mirror::create_group() {
    // $: the group starts at the stream's end; anything older it should hold is re-added by the
    // reconcile's rule rather than trusted.
    resp::command cmd{"XGROUP", "CREATE", stream_key, group_name, "$", "MKSTREAM"};
    auto r = co_await client_.exec_one(std::move(cmd));
    if (!r) co_return r.error();
    if (r->is_error() && !r->text.starts_with("BUSYGROUP")) co_return reply_error("XGROUP CREATE", *r);
    co_return result<void>{};
}

asio::awaitable<result<void>> redis_mirror::serve() {
    auto next_reconcile = clock_type::now() + reconcile_interval();
    while (!stopping_) {
        bool claim = false;
        bool overflow = false;
        std::deque<event> events;
        {
            std::lock_guard lk(mutex_);
            claim = accepted_;
            accepted_ = false;
            overflow = overflow_;
            if (!overflow) events.swap(events_);
        }
        if (overflow || clock_type::now() >= next_reconcile) {
            // A full pass (it catches up too).
            if (auto r = co_await reconcile(); !r) co_return r;
            next_reconcile = clock_type::now() + reconcile_interval();
            continue;
        }
        const bool had_events = !events.empty();
        if (claim) {
            if (auto r = co_await catch_up(); !r) co_return r;
        }
        if (had_events) {
            if (auto r = co_await apply(std::move(events)); !r) co_return r;
        }
        if (claim || had_events) continue;  // look again before sleeping
        {
            std::lock_guard lk(mutex_);
            if (accepted_ || overflow_ || !events_.empty()) continue;
        }
        // Nothing to do: sleep until a hook wakes us, the next reconcile or heartbeat is due, or
        // the server closes the connection (noticed at once, so readiness tells the truth while
        // idle). A hook's wake is posted to this strand: it cannot slip between the check above
        // and this wait.
        const auto heartbeat_at = clock_type::now() + heartbeat_every;
        wake_.expires_at(std::min(next_reconcile, heartbeat_at));
        auto woke = co_await (wake_.async_wait(asio::as_tuple(asio::use_awaitable)) || client_.wait_readable());
        if (woke.index() == 1) {
            if (stopping_) break;
            co_return error{errc::io_error, display_url_ + ": the server closed the connection"};
        }
        const auto [timer_ec] = std::get<0>(woke);
        if (!timer_ec && clock_type::now() >= heartbeat_at && clock_type::now() < next_reconcile) {
            // Idle for a while: a PING finds a connection that died without a word (a partition).
            resp::command ping{"PING"};
            auto pong = co_await client_.exec_one(std::move(ping));
            if (!pong) co_return pong.error();
        }
    }
    co_return result<void>{};
}

asio::awaitable<result<void>> redis_mirror::reconcile() {
    {
        // Whatever these events said, SQLite says too, and it is read after this point.
        std::lock_guard lk(mutex_);
        events_.clear();
        overflow_ = false;
    }
    entries_.clear();

    // Everything pending for this consumer: first what was added but never delivered (an instance
    // died between XADD and XREADGROUP), then the pending list, then dead consumers' entries.
    std::map<std::pair<std::uint64_t, std::uint64_t>, stream_entry> found;
    auto fresh = co_await take_new();
    if (!fresh) co_return fresh.error();
    auto own = co_await read_own_pending();
    if (!own) co_return own.error();
    auto claimed = co_await claim_idle();
    if (!claimed) co_return claimed.error();
    for (auto* list : {&*fresh, &*own, &*claimed})
        for (auto& e : *list) found.emplace(id_key(e.id), std::move(e));
    entry_list ordered;
    ordered.reserve(found.size());
    for (auto& [key, e] : found) ordered.push_back(std::move(e));
    if (auto r = co_await resolve(std::move(ordered)); !r) co_return r;

    // Waiting or running jobs at or below the cursor that have no entry now: add them again.
    // (Above the cursor, catch_up adds everything anyway.)
    auto meta_cursor = co_await db_.get_meta(cursor_meta_key);
    if (!meta_cursor) co_return meta_cursor.error();
    const auto cursor = std::max(to_int64(meta_cursor->value_or("0")), added_up_to_);
    std::int64_t after = 0;
    for (int page = 0; page < max_pages && !stopping_; ++page) {
        const auto batch = static_cast<int>(opts_.batch);
        auto refs = co_await db_.waiting_between(after, cursor, batch);
        if (!refs) co_return refs.error();
        std::vector<job_row> rows;
        for (auto& r : *refs) rows.push_back(job_row{r.seq, std::move(r.id), false});
        if (rows.empty()) break;
        after = rows.back().seq;
        const bool last_page = rows.size() < opts_.batch;
        if (auto r = co_await add(std::move(rows)); !r) co_return r;
        if (last_page) break;
    }
    co_return co_await catch_up();
}

asio::awaitable<result<void>> redis_mirror::catch_up() {
    const auto batch = static_cast<int>(opts_.batch);
    while (!stopping_) {
        // From the cursor (another instance on this data directory may have moved it further),
        // or from what this one added when the cursor's write is still on its way.
        auto meta_cursor = co_await db_.get_meta(cursor_meta_key);
        if (!meta_cursor) co_return meta_cursor.error();
        const auto from = std::max(to_int64(meta_cursor->value_or("0")), added_up_to_);
        auto refs = co_await db_.jobs_after(from, batch);
        if (!refs) co_return refs.error();
        std::vector<job_row> rows;
        for (auto& r : *refs) rows.push_back(job_row{r.seq, std::move(r.id), is_final(r.state)});
        if (rows.empty()) break;
        const bool last_page = rows.size() < opts_.batch;
        const auto last = rows.back().seq;
        if (auto r = co_await add(std::move(rows)); !r) co_return r;
        added_up_to_ = std::max(added_up_to_, last);
        // Only forward: instances sharing the directory move it too.
        if (auto moved = co_await db_.raise_meta(cursor_meta_key, last); !moved) co_return moved.error();
        if (last_page) break;
    }
    co_return result<void>{};
}

asio::awaitable<result<void>> redis_mirror::apply(std::deque<event> events) {
    // The net effect per job, in order: the last event wins (failed, then retried = waiting).
    std::vector<std::string> order;
    std::unordered_map<std::string, bool> final_now;
    for (auto& e : events) {
        auto [it, inserted] = final_now.try_emplace(e.id, e.final);
        if (inserted) order.push_back(e.id);
        else it->second = e.final;
    }
    std::vector<std::string> acks;
    std::vector<job_row> adds;
    for (const auto& id : order) {
        auto mapped = entries_.find(id);
        if (final_now[id]) {
            // Not mapped: its entry is not added yet (catch_up will read it as final) or was
            // acknowledged already.
            if (mapped != entries_.end()) {
                acks.push_back(mapped->second);
                entries_.erase(mapped);
            }
        } else if (mapped == entries_.end()) {
            // Retried after its entry was acknowledged: waiting again, so it needs one.
            adds.push_back(job_row{0, id, false});
        }
    }
    if (auto r = co_await ack(std::move(acks)); !r) co_return r;
    co_return co_await add(std::move(adds));
}

asio::awaitable<result<void>> redis_mirror::add(std::vector<job_row> rows) {
    std::vector<job_row> todo;
    std::unordered_set<std::string> seen;
    for (auto& r : rows)
        if (!entries_.contains(r.id) && seen.insert(r.id).second) todo.push_back(std::move(r));
    if (todo.empty()) co_return result<void>{};

    // One pipeline: the XADDs, then an XREADGROUP that takes them into this consumer's pending list.
    std::vector<resp::command> cmds;
    cmds.reserve(todo.size() + 1);
    for (const auto& r : todo) cmds.push_back(resp::command{"XADD", stream_key, "*", "job", r.id});
    const std::size_t count = todo.size() + 64;
    cmds.push_back(read_group(consumer_, count, ">"));
    auto replies = co_await client_.exec(std::move(cmds));
    if (!replies) co_return replies.error();

    std::unordered_set<std::string> ours;
    std::vector<std::string> acks;
    for (std::size_t i = 0; i < todo.size(); ++i) {
        const auto& reply = (*replies)[i];
        if (reply.is_error()) co_return reply_error("XADD", reply);
        if (!reply.is_string()) co_return protocol_error("XADD", reply);
        ours.insert(reply.text);
        if (todo[i].final) acks.push_back(reply.text);  // finished before it was mirrored
        else entries_[todo[i].id] = reply.text;
    }
    const auto& read = replies->back();
    if (read.is_error()) co_return reply_error("XREADGROUP", read);
    auto delivered = parse_read(read);
    if (!delivered) co_return protocol_error("XREADGROUP", read);
    entry_list foreign;
    const bool maybe_more = delivered->size() >= count;
    for (auto& e : *delivered)
        if (!ours.contains(e.id)) foreign.push_back(std::move(e));
    if (maybe_more) {
        auto rest = co_await take_new();
        if (!rest) co_return rest.error();
        for (auto& e : *rest)
            if (!ours.contains(e.id)) foreign.push_back(std::move(e));
    }
    if (auto r = co_await ack(std::move(acks)); !r) co_return r;
    // Entries someone else added (an instance sharing this data directory, or a dead one's
    // undelivered leftovers): judged like any found entry.
    co_return co_await resolve(std::move(foreign));
}

asio::awaitable<result<void>> redis_mirror::resolve(entry_list entries) {
    if (entries.empty()) co_return result<void>{};
    std::sort(entries.begin(), entries.end(),
              [](const stream_entry& a, const stream_entry& b) { return id_key(a.id) < id_key(b.id); });
    std::vector<std::string> ids;
    for (const auto& e : entries)
        if (!e.job.empty()) ids.push_back(e.job);
    auto found = co_await db_.states_of(std::move(ids));
    if (!found) co_return found.error();
    const auto& states = *found;

    std::vector<std::string> acks;
    std::size_t unknown = 0;
    for (const auto& e : entries) {
        if (e.job.empty()) {
            // Deleted while pending, or not a job entry: nothing to keep it for.
            acks.push_back(e.id);
            continue;
        }
        auto st = states.find(e.job);
        if (st == states.end()) {
            ++unknown;
            continue;
        }
        auto mapped = entries_.find(e.job);
        if (is_final(st->second)) {
            acks.push_back(e.id);
            if (mapped != entries_.end()) {
                if (mapped->second != e.id) acks.push_back(mapped->second);
                entries_.erase(mapped);
            }
        } else if (mapped == entries_.end()) {
            entries_.emplace(e.job, e.id);
        } else if (mapped->second != e.id) {
            acks.push_back(e.id);  // a second entry for a job that has one: the older stays
        }
    }
    if (unknown > 0) {
        const std::string fields = "count=" + std::to_string(unknown) + " stream=" + stream_key + " url=" + display_url_;
        const char* msg =
            "redis stream entries name jobs this store does not have; left pending (does another deployment use this "
            "Redis database? give each its own /db)";
        if (!unknown_logged_) log::warn(msg, fields);
        else log::debug(msg, fields);
        unknown_logged_ = true;
    }
    co_return co_await ack(std::move(acks));
}

asio::awaitable<result<void>> redis_mirror::ack(std::vector<std::string> entry_ids) {
    if (entry_ids.empty()) co_return result<void>{};
    std::sort(entry_ids.begin(), entry_ids.end());
    entry_ids.erase(std::unique(entry_ids.begin(), entry_ids.end()), entry_ids.end());
    // XACK ends the pending state; XDEL keeps the stream from growing with every job ever seen.
    std::vector<resp::command> cmds;
    for (std::size_t i = 0; i < entry_ids.size(); i += ids_per_command) {
        const auto end = entry_ids.begin() + static_cast<std::ptrdiff_t>(std::min(entry_ids.size(), i + ids_per_command));
        resp::command xack{"XACK", stream_key, group_name};
        resp::command xdel{"XDEL", stream_key};
        xack.insert(xack.end(), entry_ids.begin() + static_cast<std::ptrdiff_t>(i), end);
        xdel.insert(xdel.end(), entry_ids.begin() + static_cast<std::ptrdiff_t>(i), end);
        cmds.push_back(std::move(xack));
        cmds.push_back(std::move(xdel));
    }
    auto replies = co_await client_.exec(std::move(cmds));
    if (!replies) co_return replies.error();
    for (const auto& r : *replies)
        if (r.is_error()) co_return reply_error("XACK/XDEL", r);
    co_return result<void>{};
}

asio::awaitable<result<redis_mirror::entry_list>> redis_mirror::take_new() {
    entry_list out;
    for (int page = 0; page < max_pages && !stopping_; ++page) {
        auto r = co_await client_.exec_one(read_group(consumer_, read_count, ">"));
        if (!r) co_return r.error();
        if (r->is_error()) co_return reply_error("XREADGROUP", *r);
        auto entries = parse_read(*r);
        if (!entries) co_return protocol_error("XREADGROUP", *r);
        const bool last_page = entries->size() < read_count;
        out.insert(out.end(), std::make_move_iterator(entries->begin()), std::make_move_iterator(entries->end()));
        if (last_page) break;
    }
    co_return out;
}

asio::awaitable<result<redis_mirror::entry_list>> redis_mirror::read_own_pending() {
    // With an id instead of ">", XREADGROUP pages through this consumer's own pending list.
    entry_list out;
    std::string after = "0";
    for (int page = 0; page < max_pages && !stopping_; ++page) {
        auto r = co_await client_.exec_one(read_group(consumer_, read_count, after));
        if (!r) co_return r.error();
        if (r->is_error()) co_return reply_error("XREADGROUP", *r);
        auto entries = parse_read(*r);
        if (!entries) co_return protocol_error("XREADGROUP", *r);
        if (entries->empty()) break;
        after = entries->back().id;
        const bool last_page = entries->size() < read_count;
        out.insert(out.end(), std::make_move_iterator(entries->begin()), std::make_move_iterator(entries->end()));
        if (last_page) break;
    }
    co_return out;
}

asio::awaitable<result<redis_mirror::entry_list>> redis_mirror::claim_idle() {
    // Entries idle past claim_idle, whoever holds them (ourselves included, harmlessly), become
    // this consumer's. XAUTOCLAIM walks the whole pending list with its cursor.
    entry_list out;
    std::string cursor = "0-0";
    const auto idle = std::to_string(std::max<std::int64_t>(0, opts_.claim_idle.count()));
    for (int page = 0; page < max_pages && !stopping_; ++page) {
        resp::command cmd{"XAUTOCLAIM", stream_key, group_name, consumer_, idle, cursor, "COUNT", std::to_string(claim_count)};
        auto r = co_await client_.exec_one(std::move(cmd));
        if (!r) co_return r.error();
        if (r->is_error()) co_return reply_error("XAUTOCLAIM", *r);
        // [next cursor, entries] (+ [deleted ids] since Redis 7: already gone from the pending list).
        if (!r->is_array() || r->elements.size() < 2 || !r->elements[0].is_string())
            co_return protocol_error("XAUTOCLAIM", *r);
        auto entries = parse_entries(r->elements[1]);
        if (!entries) co_return protocol_error("XAUTOCLAIM", *r);
        out.insert(out.end(), std::make_move_iterator(entries->begin()), std::make_move_iterator(entries->end()));
        cursor = r->elements[0].text;
        if (cursor == "0-0") break;
    }
    co_return out;
}

}  // namespace quickthumb
