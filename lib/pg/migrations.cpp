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
      // Key metadata (SPEC §6) in both tables, backfilled from the history
      // kv_log still holds. Per key, a generation starts at a delete, or at
      // a row at or below the compacted revision: such a row is a snapshot
      // of the key (what came before it is gone), so there the key starts
      // again at version 1 and its create revision is the row's own. A
      // PUT's version counts the PUTs of its generation up to it, its create
      // revision is the generation's first PUT; a delete carries zeros. A
      // live key takes the metadata of its kv_log row, or (a row
      // compaction did not keep) starts at version 1 at its revision.
      {3, "key metadata: create revision, version and lease",
       R"sql(
ALTER TABLE kv_state ADD COLUMN create_revision bigint, ADD COLUMN version bigint,
  ADD COLUMN lease bigint;
ALTER TABLE kv_log ADD COLUMN create_revision bigint, ADD COLUMN version bigint,
  ADD COLUMN lease bigint;
UPDATE kv_log l SET create_revision = d.create_revision, version = d.version, lease = 0
FROM (
  SELECT revision,
         CASE WHEN kind = 2 THEN 0 ELSE min(revision) FILTER (WHERE kind = 1) OVER g END AS create_revision,
         CASE WHEN kind = 2 THEN 0 ELSE count(*) FILTER (WHERE kind = 1) OVER g END AS version
  FROM (
    SELECT revision, kind, key,
           sum(CASE WHEN kind = 2 OR revision <= (SELECT compacted_revision FROM kv_meta WHERE id = 1)
                    THEN 1 ELSE 0 END)
             OVER (PARTITION BY key ORDER BY revision ROWS UNBOUNDED PRECEDING) AS generation
    FROM kv_log
  ) s
  WINDOW g AS (PARTITION BY key, generation ORDER BY revision ROWS UNBOUNDED PRECEDING)
) d
WHERE l.revision = d.revision;
UPDATE kv_state s SET create_revision = l.create_revision, version = l.version, lease = l.lease
FROM kv_log l
WHERE l.revision = s.revision AND l.key = s.key AND l.kind = 1;
UPDATE kv_state SET create_revision = revision, version = 1, lease = 0 WHERE version IS NULL;
ALTER TABLE kv_state ALTER COLUMN create_revision SET NOT NULL, ALTER COLUMN version SET NOT NULL,
  ALTER COLUMN lease SET NOT NULL;
ALTER TABLE kv_log ALTER COLUMN create_revision SET NOT NULL, ALTER COLUMN version SET NOT NULL,
  ALTER COLUMN lease SET NOT NULL;
)sql",
       R"sql(
ALTER TABLE kv_log DROP COLUMN create_revision, DROP COLUMN version, DROP COLUMN lease;
ALTER TABLE kv_state DROP COLUMN create_revision, DROP COLUMN version, DROP COLUMN lease;
)sql"},
      // A transaction (SPEC §6) writes several keys at one revision: one
      // kv_log row per key, all at the transaction's revision. Going down
      // would have to drop all but one of them, losing writes that were
      // acknowledged, so it is refused while any revision has more than one
      // row (the error names the first such revision).
      {4, "transactions: several changes at one revision",
       R"sql(
ALTER TABLE kv_log DROP CONSTRAINT kv_log_pkey, ADD PRIMARY KEY (revision, key);
)sql",
       R"sql(
DO $$
DECLARE
  at_revision bigint;
  changes bigint;
BEGIN
  SELECT revision, count(*) INTO at_revision, changes FROM kv_log
  GROUP BY revision HAVING count(*) > 1 ORDER BY revision LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION USING MESSAGE = format(
      'kv_log holds %s changes at revision %s (a transaction''s writes); schema version 3 '
      || 'keeps one change per revision, so going down would lose acknowledged writes: '
      || 'refused, the schema stays at version 4', changes, at_revision);
  END IF;
END
$$;
ALTER TABLE kv_log DROP CONSTRAINT kv_log_pkey, ADD PRIMARY KEY (revision);
)sql"},
      // Leases (SPEC §6). kv_lease holds the leases alive: their TTL, the
      // revision of their grant and their deadline on the database's clock
      // (every server reads the same one). Grants and ends are kv_log rows
      // at revisions of their own, as in a file log: kind 4 (grant, `ttl`),
      // 5 (revoked), 6 (expired), each with the lease id in `lease` and the
      // empty key, which no user key can be; an end's deletes are kind 2 rows
      // at its revision. Going down would drop leases that are alive or in
      // the history, so it is refused while there are any.
      {5, "leases",
       R"sql(
CREATE TABLE kv_lease (
  id bigint PRIMARY KEY CHECK (id > 0),
  ttl bigint NOT NULL CHECK (ttl > 0),
  granted_revision bigint NOT NULL,
  deadline timestamptz NOT NULL
);
CREATE INDEX kv_lease_deadline ON kv_lease (deadline);
CREATE INDEX kv_state_lease ON kv_state (lease) WHERE lease <> 0;
ALTER TABLE kv_log ADD COLUMN ttl bigint;
ALTER TABLE kv_log DROP CONSTRAINT kv_log_kind_check, ADD CONSTRAINT kv_log_kind_check CHECK (kind IN (1, 2, 4, 5, 6));
)sql",
       R"sql(
DO $$
DECLARE
  alive bigint;
  records bigint;
BEGIN
  SELECT count(*) INTO alive FROM kv_lease;
  SELECT count(*) INTO records FROM kv_log WHERE kind IN (4, 5, 6);
  IF alive > 0 OR records > 0 THEN
    RAISE EXCEPTION USING MESSAGE = format(
      '%s leases are alive and kv_log holds %s lease records; schema version 4 has no leases, so going '
      || 'down would lose them: refused, the schema stays at version 5 (revoke the leases and compact first)',
      alive, records);
  END IF;
END
$$;
ALTER TABLE kv_log DROP CONSTRAINT kv_log_kind_check, ADD CONSTRAINT kv_log_kind_check CHECK (kind IN (1, 2));
ALTER TABLE kv_log DROP COLUMN ttl;
DROP INDEX kv_state_lease;
DROP TABLE kv_lease;
)sql"},
  };
  return kMigrations;
}

int64_t LatestVersion() { return Migrations().back().version; }

}  // namespace kvctl::pg
