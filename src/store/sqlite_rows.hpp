#pragma once
// Internal to src/store/: what the SQLite store's writes (sqlite_store.cpp) and reads
// (sqlite_reads.cpp) share: the job row's columns, prepared statements, row decoding.
#include "sqlite_store.hpp"

#include <SQLiteCpp/SQLiteCpp.h>

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace quickthumb {

// Prepared statements kept for one connection, keyed by their SQL text's address (a literal's, so
// each call site prepares once). Compiling SQL costs more than running these statements.
struct sqlite_store::statements {
    explicit statements(SQLite::Database& d) : db(d) {}
    SQLite::Database& db;
    std::unordered_map<const char*, std::unique_ptr<SQLite::Statement>> cache;
};

namespace sqlite_detail {

// The writer thread's statements (set while writer_loop runs, for its connection only).
extern thread_local sqlite_store::statements* writer_statements;

// A prepared statement for `sql` (a string literal): the cached one when `cache` belongs to `db`,
// else one of its own. Reset on scope exit, ready for the next use; every use binds every
// parameter, so bindings are not cleared.
class stmt {
public:
    stmt(sqlite_store::statements* cache, SQLite::Database& db, const char* sql) {
        if (cache && &cache->db == &db) {
            auto& slot = cache->cache[sql];
            if (!slot) slot = std::make_unique<SQLite::Statement>(db, sql);
            s_ = slot.get();
        } else {
            owned_.emplace(db, sql);
            s_ = &*owned_;
        }
    }
    // On the writer's connection, from the writer thread.
    stmt(SQLite::Database& db, const char* sql) : stmt(writer_statements, db, sql) {}
    ~stmt() {
        if (!owned_) s_->tryReset();
    }
    stmt(const stmt&) = delete;
    stmt& operator=(const stmt&) = delete;
    SQLite::Statement* operator->() noexcept { return s_; }
    SQLite::Statement& operator*() noexcept { return *s_; }

private:
    SQLite::Statement* s_ = nullptr;
    std::optional<SQLite::Statement> owned_;
};

#define QT_JOB_COLUMNS                                                                                  \
    "seq, id, state, progress, attempts, max_attempts, created_at, updated_at, run_after, error_code, " \
    "error_message, src_filename, src_bytes, src_format, src_width, src_height, params, outputs"
inline constexpr const char* job_columns = QT_JOB_COLUMNS;

// A row of QT_JOB_COLUMNS.
job row_to_job(SQLite::Statement& q);
// The idempotency table keeps a request's job ids as a JSON array.
std::vector<std::string> ids_from_json(const std::string& text);

}  // namespace sqlite_detail
}  // namespace quickthumb
