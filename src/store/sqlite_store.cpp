#include "sqlite_store.hpp"
#include "sqlite_rows.hpp"

#include "quickthumb/log.hpp"

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>
#include <boost/json.hpp>

#include <stdexcept>
#include <unordered_map>

namespace quickthumb {

namespace sqlite_detail {

thread_local sqlite_store::statements* writer_statements = nullptr;

namespace {

// A text column, read in place (valid until the statement steps again).
std::string_view text_of(const SQLite::Column& c) {
    const char* p = c.getText();
    return {p, static_cast<std::size_t>(c.getBytes())};
}

// A row's params, decoded. The column never changes once the row is written, and most jobs carry
// one of a few option sets, so each thread keeps the last texts it decoded: the same text is the
// same params, and a row read again (after each transition, for every status read) is not parsed
// again. Bounded: emptied when full.
std::optional<job_params> stored_params(std::string_view text) {
    constexpr std::size_t max_kept = 64;
    thread_local std::unordered_map<std::string, job_params> kept;
    thread_local std::string key;
    key.assign(text);
    if (auto it = kept.find(key); it != kept.end()) return it->second;
    auto p = job_params_from_json(text);
    if (!p) return std::nullopt;
    if (kept.size() >= max_kept) kept.clear();
    kept.emplace(key, *p);
    return *p;
}

}  // namespace

job row_to_job(SQLite::Statement& q) {
    job j;
    j.seq = q.getColumn(0).getInt64();
    j.id = q.getColumn(1).getString();
    j.state = parse_job_state(text_of(q.getColumn(2))).value_or(job_state::failed);
    j.progress = q.getColumn(3).getInt();
    j.attempts = q.getColumn(4).getInt();
    j.max_attempts = q.getColumn(5).getInt();
    j.created_at = q.getColumn(6).getInt64();
    j.updated_at = q.getColumn(7).getInt64();
    j.run_after = q.getColumn(8).getInt64();
    if (!q.getColumn(9).isNull())
        j.last_error = error{errc_from_name(text_of(q.getColumn(9))), q.getColumn(10).getString()};
    j.source.filename = q.getColumn(11).getString();
    j.source.bytes = q.getColumn(12).getInt64();
    j.source.format = q.getColumn(13).getString();
    j.source.width = q.getColumn(14).getInt();
    j.source.height = q.getColumn(15).getInt();
    if (auto p = stored_params(text_of(q.getColumn(16)))) j.params = std::move(*p);
    j.outputs = outputs_from_json(text_of(q.getColumn(17)));
    return j;
}

// The idempotency table keeps a request's job ids as a JSON array.
std::vector<std::string> ids_from_json(const std::string& text) {
    const boost::json::value v = boost::json::parse(text);
    std::vector<std::string> ids;
    for (const auto& id : v.as_array()) ids.emplace_back(id.as_string());
    return ids;
}

}  // namespace sqlite_detail

using namespace sqlite_detail;

namespace {

// Each entry moves the schema one version up; PRAGMA user_version records where a file is.
const char* const migrations[] = {
    // v1
    R"sql(
    CREATE TABLE jobs(
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        state TEXT NOT NULL,
        progress INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL DEFAULT 3,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        run_after INTEGER NOT NULL DEFAULT 0,
        error_code TEXT,
        error_message TEXT,
        src_filename TEXT NOT NULL DEFAULT '',
        src_bytes INTEGER NOT NULL DEFAULT 0,
        src_format TEXT NOT NULL DEFAULT '',
        src_width INTEGER NOT NULL DEFAULT 0,
        src_height INTEGER NOT NULL DEFAULT 0,
        params TEXT NOT NULL,
        outputs TEXT NOT NULL DEFAULT '[]',
        idempotency_key TEXT
    );
    CREATE INDEX jobs_by_state ON jobs(state, seq);
    )sql",
    // v2: idempotency keys (one row per request, naming its jobs), small key/value settings
    // (instance id, mirror cursors), and the retention sweep's index.
    R"sql(
    CREATE TABLE idempotency(
        key TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL,
        job_ids TEXT NOT NULL
    );
    CREATE INDEX idempotency_by_age ON idempotency(created_at);
    CREATE TABLE meta(
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE INDEX jobs_by_age ON jobs(updated_at) WHERE state IN ('succeeded', 'failed', 'cancelled');
    )sql",
    // v3: the same index (final jobs), its predicate written without a three-value IN: SQLite codes
    // that as an ephemeral table built on every insert or state change, which was a large part of
    // the writer's time. The retention queries use the same words, so they can use the index.
    R"sql(
    DROP INDEX jobs_by_age;
    CREATE INDEX jobs_by_age ON jobs(updated_at) WHERE state NOT IN ('queued', 'processing');
    )sql",
};


void configure(SQLite::Database& db) {
    db.exec("PRAGMA journal_mode=WAL");
    // FULL: a commit is on disk before we answer 202 (group commit amortises the fsync).
    db.exec("PRAGMA synchronous=FULL");
    db.exec("PRAGMA foreign_keys=ON");
    db.setBusyTimeout(5000);
}

}  // namespace

namespace {

std::optional<job_state> current_state(SQLite::Database& db, const std::string& id) {
    stmt q(db, "SELECT state FROM jobs WHERE id = ?");
    q->bind(1, id);
    if (!q->executeStep()) return std::nullopt;
    return parse_job_state(q->getColumn(0).getString());
}

// Inserts `jobs`, setting each one's seq, and records them as new.
void insert_rows(SQLite::Database& db, std::vector<job>& jobs, std::vector<job_change>& changes);


std::optional<job> load(SQLite::Database& db, const std::string& id) {
    stmt q(db, "SELECT " QT_JOB_COLUMNS " FROM jobs WHERE id=?");
    q->bind(1, id);
    if (!q->executeStep()) return std::nullopt;
    return row_to_job(*q);
}

// The job as the transition just left it, recorded as a change from `previous`.
job changed(SQLite::Database& db, const std::string& id, job_state previous, std::vector<job_change>& changes,
            std::optional<double> attempt_seconds = std::nullopt) {
    job now = *load(db, id);
    changes.push_back(job_change{previous, now, true, attempt_seconds});
    return now;
}

// Checks the state machine before a transition; returns the refusal, if any.
std::optional<error> check_transition(SQLite::Database& db, const std::string& id, job_state to) {
    auto from = current_state(db, id);
    if (!from) return error{errc::not_found, "no job with id " + id};
    if (!can_transition(*from, to))
        return error{errc::bad_request, "job " + id + " is " + std::string(to_string(*from)) + ", it cannot become " +
                                            std::string(to_string(to))};
    return std::nullopt;
}

}  // namespace

error store_failure(const std::exception& e, bool reading) {
    if (const auto* se = dynamic_cast<const SQLite::Exception*>(&e)) {
        if (se->getErrorCode() == SQLITE_FULL)
            return error{errc::storage_full, "the disk is full: the job could not be saved"};
        if (se->getErrorCode() == SQLITE_READONLY)
            return error{errc::storage_readonly, "the data directory is read-only: the job could not be saved"};
    }
    // The client hears only that it failed; the reason (SQLite's or ours) is for the operator.
    log::warn(reading ? "job store read failed" : "job store write failed", std::string("error=\"") + e.what() + "\"");
    return error{errc::io_error, reading ? "the job store could not be read" : "the job could not be saved"};
}

sqlite_store::sqlite_store(const std::filesystem::path& db_path) : path_(db_path) {
    const int flags = SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE | SQLite::OPEN_FULLMUTEX;
    writer_db_ = std::make_unique<SQLite::Database>(path_.string(), flags);
    configure(*writer_db_);
    migrate(*writer_db_);
    reader_db_ = std::make_unique<SQLite::Database>(path_.string(), SQLite::OPEN_READONLY | SQLite::OPEN_FULLMUTEX);
    reader_db_->setBusyTimeout(5000);
    reader_statements_ = std::make_unique<statements>(*reader_db_);
    writer_ = std::thread([this] { writer_loop(); });
}

sqlite_store::~sqlite_store() {
    {
        std::lock_guard lk(queue_mutex_);
        stopping_ = true;
    }
    queue_cv_.notify_all();
    if (writer_.joinable()) writer_.join();
}

void sqlite_store::migrate(SQLite::Database& db) {
    int version = db.execAndGet("PRAGMA user_version").getInt();
    const int latest = static_cast<int>(std::size(migrations));
    if (version > latest)
        throw std::runtime_error("database " + path_.string() + " has schema version " + std::to_string(version) +
                                 ", newer than this quickthumb understands (" + std::to_string(latest) + ")");
    for (; version < latest; ++version) {
        SQLite::Transaction tx(db);
        db.exec(migrations[version]);
        db.exec("PRAGMA user_version = " + std::to_string(version + 1));
        tx.commit();
    }
}

void sqlite_store::set_commit_listener(commit_listener listener) {
    std::lock_guard lk(listener_mutex_);
    listener_ = std::move(listener);
}

boost::asio::awaitable<void> sqlite_store::submit(std::function<void(SQLite::Database&, std::vector<job_change>&)> run) {
    auto initiate = [this, run = std::move(run)](auto handler) mutable {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        enqueue(pending{std::move(run),
                        [h](std::exception_ptr ep) {
                            auto ex = boost::asio::get_associated_executor(*h);
                            boost::asio::post(ex, [h, ep]() mutable { std::move (*h)(ep); });
                        },
                        {}});
    };
    co_await boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, void(std::exception_ptr)>(
        std::move(initiate), boost::asio::use_awaitable);
}

void sqlite_store::enqueue(pending p) {
    {
        std::lock_guard lk(queue_mutex_);
        if (!stopping_) {
            queue_.push_back(std::move(p));
            p.complete = nullptr;
        }
    }
    if (p.complete) {
        p.complete(std::make_exception_ptr(std::runtime_error("store is shutting down")));
        return;
    }
    queue_cv_.notify_one();
}

bool sqlite_store::run_batch(std::vector<pending>& batch, std::vector<std::exception_ptr>& outcomes, bool savepoints) {
    SQLite::Database& db = *writer_db_;
    SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
    for (std::size_t i = 0; i < batch.size(); ++i) {
        batch[i].changes.clear();  // a rerun records its changes again
        if (!savepoints) {
            try {
                batch[i].run(db, batch[i].changes);
            } catch (...) {
                return false;  // the transaction rolls back (tx's destructor)
            }
            continue;
        }
        db.exec("SAVEPOINT op");
        try {
            batch[i].run(db, batch[i].changes);
            db.exec("RELEASE op");
        } catch (...) {
            outcomes[i] = std::current_exception();
            db.exec("ROLLBACK TO op");
            db.exec("RELEASE op");
        }
    }
    tx.commit();
    return true;
}

void sqlite_store::writer_loop() {
    SQLite::Database& db = *writer_db_;
    // Finalized when the loop ends, before the connection closes.
    statements cache(db);
    writer_statements = &cache;
    std::vector<pending> batch;
    std::vector<std::exception_ptr> outcomes;
    for (;;) {
        batch.clear();  // keeps its capacity: it becomes the next queue
        {
            std::unique_lock lk(queue_mutex_);
            queue_cv_.wait(lk, [&] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) break;  // stopping and drained
            batch.swap(queue_);
        }
        outcomes.assign(batch.size(), nullptr);
        std::exception_ptr commit_error;
        try {
            // Optimistic: the whole batch in one transaction, no savepoints. Only when a write
            // throws is it rolled back and run again with a savepoint per write, so that the one
            // failing write does not undo the others.
            if (!run_batch(batch, outcomes, false)) run_batch(batch, outcomes, true);
            ++commits_;
        } catch (...) {
            commit_error = std::current_exception();
        }
        // The COMMIT (synchronous=FULL) returned: the batch is on disk. Its changes are told in
        // the order they were made, before any of their writers resumes.
        if (!commit_error) {
            std::lock_guard lk(listener_mutex_);
            if (listener_)
                for (std::size_t i = 0; i < batch.size(); ++i)
                    if (!outcomes[i])
                        for (auto& c : batch[i].changes) listener_(std::move(c));
        }
        for (std::size_t i = 0; i < batch.size(); ++i) batch[i].complete(commit_error ? commit_error : outcomes[i]);
    }
    writer_statements = nullptr;
}

boost::asio::awaitable<result<std::vector<job>>> sqlite_store::insert(std::vector<job> jobs) {
    return write_jobs<result<std::vector<job>>>(
        [jobs = std::move(jobs)](SQLite::Database& db, std::vector<job_change>& changes) -> result<std::vector<job>> {
            auto rows = jobs;
            insert_rows(db, rows, changes);
            return rows;
        });
}

namespace {

void insert_rows(SQLite::Database& db, std::vector<job>& jobs, std::vector<job_change>& changes) {
    stmt ins(db,
             "INSERT INTO jobs(id, state, progress, attempts, max_attempts, created_at, updated_at, "
             "src_filename, src_bytes, params, idempotency_key) VALUES(?,?,?,?,?,?,?,?,?,?,?)");
    for (auto& j : jobs) {
        const auto state = to_string(j.state);
        const std::string params = boost::json::serialize(to_json(j.params));
        ins->bindNoCopy(1, j.id);
        ins->bind(2, std::string(state));
        ins->bind(3, j.progress);
        ins->bind(4, j.attempts);
        ins->bind(5, j.max_attempts);
        ins->bind(6, j.created_at);
        ins->bind(7, j.updated_at);
        ins->bindNoCopy(8, j.source.filename);
        ins->bind(9, j.source.bytes);
        ins->bindNoCopy(10, params);
        ins->bind(11);  // NULL: the key lives in the idempotency table
        ins->exec();
        ins->reset();
        j.seq = db.getLastInsertRowid();
        changes.push_back(job_change{std::nullopt, j, true, std::nullopt});
    }
}

}  // namespace

boost::asio::awaitable<result<sqlite_store::insert_outcome>> sqlite_store::insert_once(std::vector<job> jobs, std::string key) {
    return write_jobs<result<insert_outcome>>(
        [jobs = std::move(jobs), key = std::move(key)](SQLite::Database& db,
                                                       std::vector<job_change>& changes) -> result<insert_outcome> {
            const auto now = now_ms();
            insert_outcome out;
            {
                stmt q(db, "SELECT job_ids, created_at FROM idempotency WHERE key=?");
                q->bind(1, key);
                if (q->executeStep()) {
                    if (q->getColumn(1).getInt64() > now - idempotency_window_ms) {
                        out.replayed = true;
                        out.job_ids = ids_from_json(q->getColumn(0).getString());
                        return out;
                    }
                }
            }
            out.inserted = jobs;
            insert_rows(db, out.inserted, changes);
            boost::json::array ids;
            for (const auto& j : out.inserted) {
                ids.emplace_back(j.id);
                out.job_ids.push_back(j.id);
            }
            stmt up(db,
                    "INSERT INTO idempotency(key, created_at, job_ids) VALUES(?,?,?) ON CONFLICT(key) "
                    "DO UPDATE SET created_at=excluded.created_at, job_ids=excluded.job_ids");
            up->bind(1, key);
            up->bind(2, now);
            up->bind(3, boost::json::serialize(ids));
            up->exec();
            return out;
        });
}

boost::asio::awaitable<result<job>> sqlite_store::retry_later(std::string id, job_source src, error err, std::int64_t run_after,
                                                      std::optional<double> attempt_seconds) {
    return write_jobs<result<job>>([id = std::move(id), src = std::move(src), err = std::move(err), run_after,
                                    attempt_seconds](SQLite::Database& db, std::vector<job_change>& changes) -> result<job> {
        int n = 0;
        {
            stmt up(db,
                    "UPDATE jobs SET state='queued', progress=0, updated_at=?, run_after=?, error_code=?, "
                    "error_message=?, src_format=?, src_width=?, src_height=? WHERE id=? AND state='processing'");
            up->bind(1, now_ms());
            up->bind(2, run_after);
            up->bind(3, std::string(errc_name(err.code)));
            up->bindNoCopy(4, err.message);
            up->bindNoCopy(5, src.format);
            up->bind(6, src.width);
            up->bind(7, src.height);
            up->bindNoCopy(8, id);
            n = up->exec();
        }
        if (n == 1) return changed(db, id, job_state::processing, changes, attempt_seconds);
        // Not processing: the same refusal as a check before the update would give.
        if (auto refused = check_transition(db, id, job_state::queued)) return *refused;
        return error{errc::conflict, "job " + id + " is no longer processing"};
    });
}

boost::asio::awaitable<result<job>> sqlite_store::release(std::string id) {
    return write_jobs<result<job>>([id = std::move(id)](SQLite::Database& db, std::vector<job_change>& changes) -> result<job> {
        stmt up(db,
                "UPDATE jobs SET state='queued', progress=0, attempts=max(attempts - 1, 0), updated_at=? "
                "WHERE id=? AND state='processing'");
        up->bind(1, now_ms());
        up->bindNoCopy(2, id);
        if (up->exec() != 1) return error{errc::conflict, "job " + id + " is no longer processing"};
        return changed(db, id, job_state::processing, changes);
    });
}

boost::asio::awaitable<result<job_change>> sqlite_store::cancel(std::string id) {
    return write_jobs<result<job_change>>([id = std::move(id)](SQLite::Database& db,
                                                               std::vector<job_change>& changes) -> result<job_change> {
        auto j = load(db, id);
        if (!j) return error{errc::not_found, "no job with id '" + id + "'"};
        job_change c{j->state, *j, true, std::nullopt};
        if (j->state == job_state::cancelled) return c;
        if (j->state == job_state::succeeded || j->state == job_state::failed)
            return error{errc::conflict, "job " + id + " has already " + std::string(to_string(j->state)) +
                                             "; only waiting or running jobs can be cancelled"};
        {
            stmt up(db,
                    "UPDATE jobs SET state='cancelled', updated_at=?, error_code='cancelled', "
                    "error_message='cancelled on request', outputs='[]' WHERE id=?");
            up->bind(1, now_ms());
            up->bindNoCopy(2, id);
            up->exec();
        }
        c.now = changed(db, id, *c.previous, changes);
        return c;
    });
}

boost::asio::awaitable<result<job_change>> sqlite_store::retry(std::string id) {
    return write_jobs<result<job_change>>([id = std::move(id)](SQLite::Database& db,
                                                               std::vector<job_change>& changes) -> result<job_change> {
        auto j = load(db, id);
        if (!j) return error{errc::not_found, "no job with id '" + id + "'"};
        if (j->state != job_state::failed && j->state != job_state::cancelled)
            return error{errc::conflict, "job " + id + " is " + std::string(to_string(j->state)) +
                                             "; only failed or cancelled jobs can be retried"};
        job_change c{j->state, *j, true, std::nullopt};
        {
            stmt up(db,
                    "UPDATE jobs SET state='queued', progress=0, attempts=0, run_after=0, updated_at=?, "
                    "error_code=NULL, error_message=NULL, outputs='[]' WHERE id=?");
            up->bind(1, now_ms());
            up->bindNoCopy(2, id);
            up->exec();
        }
        c.now = changed(db, id, *c.previous, changes);
        return c;
    });
}

boost::asio::awaitable<result<int>> sqlite_store::remove_expired(std::vector<std::string> ids, std::int64_t cutoff,
                                                          std::int64_t now) {
    return write_jobs<result<int>>([ids = std::move(ids), cutoff, now](SQLite::Database& db,
                                                                      std::vector<job_change>&) -> result<int> {
        int n = 0;
        {
            stmt del(db,
                     "DELETE FROM jobs WHERE id=? AND state NOT IN ('queued', 'processing') "
                     "AND updated_at < ?");
            for (const auto& id : ids) {
                del->bindNoCopy(1, id);
                del->bind(2, cutoff);
                n += del->exec();
                del->reset();
            }
        }
        stmt keys(db, "DELETE FROM idempotency WHERE created_at <= ?");
        keys->bind(1, now - idempotency_window_ms);
        keys->exec();
        return n;
    });
}

boost::asio::awaitable<result<job>> sqlite_store::start(std::string id) {
    return write_jobs<result<job>>([id = std::move(id)](SQLite::Database& db, std::vector<job_change>& changes) -> result<job> {
        // The update checks the state itself; only when it changes nothing is the state read to say
        // why. (No RETURNING: SQLite buffers its rows in an ephemeral table, which costs more
        // than reading the row again.)
        int n = 0;
        {
            stmt up(db,
                    "UPDATE jobs SET state='processing', attempts=attempts+1, progress=0, updated_at=? "
                    "WHERE id=? AND state='queued'");
            up->bind(1, now_ms());
            up->bindNoCopy(2, id);
            n = up->exec();
        }
        if (n != 1) {
            if (auto refused = check_transition(db, id, job_state::processing)) return *refused;
            return error{errc::internal, "job " + id + " could not be started"};  // unreachable: queued was matched
        }
        return changed(db, id, job_state::queued, changes);
    });
}

boost::asio::awaitable<result<void>> sqlite_store::set_progress(std::string id, int progress) {
    return write_jobs<result<void>>([id = std::move(id), progress](SQLite::Database& db,
                                                                   std::vector<job_change>&) -> result<void> {
        stmt up(db, "UPDATE jobs SET progress=?, updated_at=? WHERE id=? AND state='processing'");
        up->bind(1, progress);
        up->bind(2, now_ms());
        up->bindNoCopy(3, id);
        up->exec();
        return {};
    });
}

boost::asio::awaitable<result<job>> sqlite_store::succeed(std::string id, job_source src, std::vector<job_output> outputs,
                                                  std::optional<double> attempt_seconds) {
    return write_jobs<result<job>>(
        [id = std::move(id), src = std::move(src), outputs = std::move(outputs),
         attempt_seconds](SQLite::Database& db, std::vector<job_change>& changes) -> result<job> {
            // Only a processing job can succeed: the update says so by changing one row; when it
            // changes none, the current state says why.
            {
                const std::string outs = outputs_to_json(outputs);
                stmt up(db,
                        "UPDATE jobs SET state='succeeded', progress=100, updated_at=?, error_code=NULL, "
                        "error_message=NULL, src_format=?, src_width=?, src_height=?, outputs=? "
                        "WHERE id=? AND state='processing'");
                up->bind(1, now_ms());
                up->bindNoCopy(2, src.format);
                up->bind(3, src.width);
                up->bind(4, src.height);
                up->bindNoCopy(5, outs);
                up->bindNoCopy(6, id);
                if (up->exec() == 1) return changed(db, id, job_state::processing, changes, attempt_seconds);
            }
            if (auto refused = check_transition(db, id, job_state::succeeded)) return *refused;
            return error{errc::conflict, "job " + id + " is no longer processing"};
        });
}

boost::asio::awaitable<result<job>> sqlite_store::fail(std::string id, job_source src, error err,
                                               std::optional<double> attempt_seconds) {
    return write_jobs<result<job>>(
        [id = std::move(id), src = std::move(src), err = std::move(err),
         attempt_seconds](SQLite::Database& db, std::vector<job_change>& changes) -> result<job> {
            {
                stmt up(db,
                        "UPDATE jobs SET state='failed', updated_at=?, error_code=?, error_message=?, "
                        "src_format=?, src_width=?, src_height=? WHERE id=? AND state='processing'");
                up->bind(1, now_ms());
                up->bind(2, std::string(errc_name(err.code)));
                up->bindNoCopy(3, err.message);
                up->bindNoCopy(4, src.format);
                up->bind(5, src.width);
                up->bind(6, src.height);
                up->bindNoCopy(7, id);
                if (up->exec() == 1) return changed(db, id, job_state::processing, changes, attempt_seconds);
            }
            if (auto refused = check_transition(db, id, job_state::failed)) return *refused;
            return error{errc::conflict, "job " + id + " is no longer processing"};
        });
}

sqlite_store::recovery sqlite_store::recover_interrupted() {
    SQLite::Database& db = *writer_db_;
    SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
    const auto now = now_ms();
    recovery r;
    {
        SQLite::Statement q(db, "SELECT id, attempts >= max_attempts FROM jobs WHERE state='processing'");
        while (q.executeStep())
            (q.getColumn(1).getInt() ? r.failed_ids : r.requeued_ids).push_back(q.getColumn(0).getString());
    }
    SQLite::Statement fail(db,
                           "UPDATE jobs SET state='failed', updated_at=?, error_code='interrupted', error_message="
                           "'the service stopped during each of its ' || attempts || ' attempts (a crash while "
                           "decoding this image?); POST .../retry runs it again' "
                           "WHERE state='processing' AND attempts >= max_attempts");
    fail.bind(1, now);
    r.failed = fail.exec();
    SQLite::Statement up(db, "UPDATE jobs SET state='queued', progress=0, run_after=0, updated_at=? WHERE state='processing'");
    up.bind(1, now);
    r.requeued = up.exec();
    tx.commit();
    SQLite::Statement queued(db, "SELECT count(*) FROM jobs WHERE state='queued'");
    queued.executeStep();
    r.queued = queued.getColumn(0).getInt64();
    return r;
}

boost::asio::awaitable<result<std::string>> sqlite_store::put_meta_once(std::string key, std::string value) {
    return write_jobs<result<std::string>>([key = std::move(key), value = std::move(value)](
                                               SQLite::Database& db, std::vector<job_change>&) -> result<std::string> {
        stmt ins(db, "INSERT OR IGNORE INTO meta(key, value) VALUES(?, ?)");
        ins->bind(1, key);
        ins->bind(2, value);
        ins->exec();
        stmt q(db, "SELECT value FROM meta WHERE key=?");
        q->bind(1, key);
        q->executeStep();
        return q->getColumn(0).getString();
    });
}

boost::asio::awaitable<result<void>> sqlite_store::put_newest_seq_once(std::string key) {
    return write_jobs<result<void>>([key = std::move(key)](SQLite::Database& db, std::vector<job_change>&) -> result<void> {
        stmt ins(db, "INSERT OR IGNORE INTO meta(key, value) SELECT ?, CAST(COALESCE(MAX(seq), 0) AS TEXT) FROM jobs");
        ins->bind(1, key);
        ins->exec();
        return {};
    });
}

boost::asio::awaitable<result<void>> sqlite_store::raise_meta(std::string key, std::int64_t value) {
    return write_jobs<result<void>>([key = std::move(key), value](SQLite::Database& db,
                                                                  std::vector<job_change>&) -> result<void> {
        stmt up(db,
                "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value "
                "WHERE CAST(meta.value AS INTEGER) < CAST(excluded.value AS INTEGER)");
        up->bind(1, key);
        up->bind(2, std::to_string(value));
        up->exec();
        return {};
    });
}

std::unique_ptr<job_store> open_sqlite_store(const std::filesystem::path& db_path) {
    return std::make_unique<sqlite_store>(db_path);
}

}  // namespace quickthumb
