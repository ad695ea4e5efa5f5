// The SQLite store's reads: each runs on the store's reader thread with the read connection
// (read()), and resumes its caller on the caller's executor; a caller on a thread that may block
// (offload.hpp) runs it in place on the same connection, under the same mutex. The bodies capture by reference:
// their arguments live in the coroutine's frame.
#include "sqlite_rows.hpp"

#include "quickthumb/offload.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <limits>
#include <mutex>

namespace quickthumb {

using namespace sqlite_detail;

template <class T, class F>
boost::asio::awaitable<result<T>> sqlite_store::read(F fn) {
    std::optional<T> value;
    std::optional<error> failed;
    // The read itself, on whichever thread runs it: the read connection, under its mutex.
    auto run = [&] {
        std::lock_guard lk(reader_mutex_);
        return fn(*reader_db_, reader_statements_.get());
    };
    try {
        if (this_thread_may_block()) {
            // A background thread (the feeder, a worker): read here, two thread switches fewer.
            value.emplace(run());
        } else {
            value.emplace(co_await boost::asio::co_spawn(
                reader_, [&]() -> boost::asio::awaitable<T> { co_return run(); }, boost::asio::use_awaitable));
        }
    } catch (const std::exception& e) {
        failed = store_failure(e, true);  // (no co_return inside a handler: GCC 12 miscompiles it)
    }
    if (failed) co_return std::move(*failed);
    co_return std::move(*value);
}

boost::asio::awaitable<result<std::optional<std::string>>> sqlite_store::get_meta(std::string key) {
    co_return co_await read<std::optional<std::string>>([&](SQLite::Database& db, statements* cache) -> std::optional<std::string> {
        stmt q(cache, db, "SELECT value FROM meta WHERE key=?");
        q->bind(1, key);
        if (!q->executeStep()) return std::nullopt;
        return q->getColumn(0).getString();
    });
}

namespace {

// The rows of a "SELECT seq, id, state" query.
std::vector<job_store::job_ref> refs_of(SQLite::Statement& q) {
    std::vector<job_store::job_ref> out;
    while (q.executeStep())
        out.push_back(job_store::job_ref{q.getColumn(0).getInt64(), q.getColumn(1).getString(),
                                         parse_job_state(q.getColumn(2).getString()).value_or(job_state::queued)});
    return out;
}

}  // namespace

boost::asio::awaitable<result<std::vector<sqlite_store::job_ref>>> sqlite_store::jobs_after(std::int64_t after, int limit) {
    co_return co_await read<std::vector<job_ref>>([&](SQLite::Database& db, statements* cache) {
        stmt q(cache, db, "SELECT seq, id, state FROM jobs WHERE seq > ? ORDER BY seq LIMIT ?");
        q->bind(1, after);
        q->bind(2, limit);
        return refs_of(*q);
    });
}

boost::asio::awaitable<result<std::vector<sqlite_store::job_ref>>> sqlite_store::waiting_between(std::int64_t after,
                                                                                             std::int64_t up_to, int limit) {
    co_return co_await read<std::vector<job_ref>>([&](SQLite::Database& db, statements* cache) {
        stmt q(cache, db,
               "SELECT seq, id, state FROM jobs WHERE seq > ? AND seq <= ? AND state IN ('queued', 'processing') "
               "ORDER BY seq LIMIT ?");
        q->bind(1, after);
        q->bind(2, up_to);
        q->bind(3, limit);
        return refs_of(*q);
    });
}

boost::asio::awaitable<result<std::unordered_map<std::string, job_state>>> sqlite_store::states_of(
    std::vector<std::string> ids) {
    using states = std::unordered_map<std::string, job_state>;
    co_return co_await read<states>([&](SQLite::Database& db, statements*) {
        states out;
        constexpr std::size_t chunk = 200;  // bound the parameters of one statement
        for (std::size_t i = 0; i < ids.size(); i += chunk) {
            const std::size_t n = std::min(chunk, ids.size() - i);
            std::string sql = "SELECT id, state FROM jobs WHERE id IN (?";
            for (std::size_t k = 1; k < n; ++k) sql += ",?";
            sql += ")";
            SQLite::Statement q(db, sql);
            for (std::size_t k = 0; k < n; ++k) q.bind(static_cast<int>(k + 1), ids[i + k]);
            while (q.executeStep())
                out.emplace(q.getColumn(0).getString(),
                            parse_job_state(q.getColumn(1).getString()).value_or(job_state::queued));
        }
        return out;
    });
}

namespace {

std::optional<job> load_by_id(SQLite::Database& db, sqlite_store::statements* cache, const std::string& id) {
    stmt q(cache, db, "SELECT " QT_JOB_COLUMNS " FROM jobs WHERE id=?");
    q->bind(1, id);
    if (!q->executeStep()) return std::nullopt;
    return row_to_job(*q);
}

}  // namespace

boost::asio::awaitable<result<std::optional<job>>> sqlite_store::get(std::string id) {
    co_return co_await read<std::optional<job>>(
        [&](SQLite::Database& db, statements* cache) { return load_by_id(db, cache, id); });
}

boost::asio::awaitable<result<std::vector<job>>> sqlite_store::get_all(std::vector<std::string> ids) {
    co_return co_await read<std::vector<job>>([&](SQLite::Database& db, statements* cache) {
        std::vector<job> out;
        for (const auto& id : ids)
            if (auto j = load_by_id(db, cache, id)) out.push_back(std::move(*j));
        return out;
    });
}

boost::asio::awaitable<result<list_page>> sqlite_store::list(std::optional<job_state> state, int limit,
                                                             std::optional<std::int64_t> before) {
    co_return co_await read<list_page>([&](SQLite::Database& db, statements*) {
        std::string sql = std::string("SELECT ") + job_columns + " FROM jobs WHERE seq < ?";
        if (state) sql += " AND state = ?";
        sql += " ORDER BY seq DESC LIMIT ?";
        SQLite::Statement q(db, sql);
        int i = 1;
        q.bind(i++, before.value_or(std::numeric_limits<std::int64_t>::max()));
        if (state) q.bind(i++, std::string(to_string(*state)));
        q.bind(i++, limit + 1);  // one more tells whether there is a next page
        list_page page;
        while (q.executeStep()) page.jobs.push_back(row_to_job(q));
        if (static_cast<int>(page.jobs.size()) > limit) {
            page.jobs.pop_back();
            page.next_cursor = page.jobs.back().seq;
        }
        return page;
    });
}

namespace {

std::vector<std::string> ids_of(SQLite::Statement& q) {
    std::vector<std::string> out;
    while (q.executeStep()) out.push_back(q.getColumn(0).getString());
    return out;
}

}  // namespace

boost::asio::awaitable<result<std::vector<std::string>>> sqlite_store::due(std::int64_t now, int limit) {
    co_return co_await read<std::vector<std::string>>([&](SQLite::Database& db, statements* cache) {
        stmt q(cache, db, "SELECT id FROM jobs WHERE state='queued' AND run_after <= ? ORDER BY seq LIMIT ?");
        q->bind(1, now);
        q->bind(2, limit);
        return ids_of(*q);
    });
}

boost::asio::awaitable<result<std::optional<std::int64_t>>> sqlite_store::next_due_after(std::int64_t now) {
    co_return co_await read<std::optional<std::int64_t>>(
        [&](SQLite::Database& db, statements* cache) -> std::optional<std::int64_t> {
            stmt q(cache, db, "SELECT min(run_after) FROM jobs WHERE state='queued' AND run_after > ?");
            q->bind(1, now);
            if (!q->executeStep() || q->getColumn(0).isNull()) return std::nullopt;
            return q->getColumn(0).getInt64();
        });
}

boost::asio::awaitable<result<std::vector<std::string>>> sqlite_store::expired(std::int64_t cutoff, int limit) {
    co_return co_await read<std::vector<std::string>>([&](SQLite::Database& db, statements* cache) {
        stmt q(cache, db,
               "SELECT id FROM jobs WHERE state NOT IN ('queued', 'processing') AND updated_at < ? "
               "ORDER BY updated_at LIMIT ?");
        q->bind(1, cutoff);
        q->bind(2, limit);
        return ids_of(*q);
    });
}

boost::asio::awaitable<result<std::optional<std::vector<std::string>>>> sqlite_store::idempotent_jobs(std::string key,
                                                                                                    std::int64_t now) {
    co_return co_await read<std::optional<std::vector<std::string>>>(
        [&](SQLite::Database& db, statements* cache) -> std::optional<std::vector<std::string>> {
            stmt q(cache, db, "SELECT job_ids FROM idempotency WHERE key=? AND created_at > ?");
            q->bind(1, key);
            q->bind(2, now - idempotency_window_ms);
            if (!q->executeStep()) return std::nullopt;
            return ids_from_json(q->getColumn(0).getString());
        });
}

boost::asio::awaitable<result<std::map<job_state, std::int64_t>>> sqlite_store::count_by_state() {
    using counts = std::map<job_state, std::int64_t>;
    co_return co_await read<counts>([&](SQLite::Database& db, statements* cache) {
        counts out;
        for (auto s : {job_state::queued, job_state::processing, job_state::succeeded, job_state::failed,
                       job_state::cancelled})
            out[s] = 0;
        stmt q(cache, db, "SELECT state, count(*) FROM jobs GROUP BY state");
        while (q->executeStep())
            if (auto s = parse_job_state(q->getColumn(0).getString())) out[*s] = q->getColumn(1).getInt64();
        return out;
    });
}

boost::asio::awaitable<result<std::int64_t>> sqlite_store::count(job_state state) {
    co_return co_await read<std::int64_t>([&](SQLite::Database& db, statements* cache) {
        stmt q(cache, db, "SELECT count(*) FROM jobs WHERE state=?");
        q->bind(1, std::string(to_string(state)));
        q->executeStep();
        return q->getColumn(0).getInt64();
    });
}

}  // namespace quickthumb
