#include "lib/pg/migrations.h"

namespace kvctl::pg {

const std::vector<Migration>& Migrations() {
  static const std::vector<Migration> kMigrations = {
      {1, "create state and change log",
       R"sql(
CREATE TABLE kv_meta (
  id integer PRIMARY KEY CHECK (id = 1),
  revision bigint NOT NULL CHECK (revision >= 0)
);
INSERT INTO kv_meta (id, revision) VALUES (1, 0);
CREATE TABLE kv_state (
  key bytea PRIMARY KEY,
  value bytea NOT NULL,
  revision bigint NOT NULL
);
CREATE TABLE kv_log (
  revision bigint PRIMARY KEY,
  kind smallint NOT NULL CHECK (kind IN (1, 2)),
  key bytea NOT NULL,
  value bytea,
  committed_at timestamptz NOT NULL DEFAULT now()
);
)sql",
       R"sql(
DROP TABLE kv_log;
DROP TABLE kv_state;
DROP TABLE kv_meta;
)sql"},
      {2, "compaction watermark and per-key log index",
       R"sql(
ALTER TABLE kv_meta ADD COLUMN compacted_revision bigint NOT NULL DEFAULT 0;
CREATE INDEX kv_log_key_revision ON kv_log (key, revision);
)sql",
       R"sql(
DROP INDEX kv_log_key_revision;
ALTER TABLE kv_meta DROP COLUMN compacted_revision;
)sql"},
  };
  return kMigrations;
}

int64_t LatestVersion() { return Migrations().back().version; }

}  // namespace kvctl::pg
