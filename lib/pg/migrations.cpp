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
      // A batch of puts and deletes in one statement (batch_write.h): the
      // committer's round trips per batch go from two per write plus four to
      // one, and the kv_meta lock is held for that statement and its commit
      // only. It does what the statements it replaces did, under the same
      // lock: judges each write against kv_state, numbers the changes, writes
      // kv_state and kv_log, advances kv_meta and notifies. Row 0 answers the
      // revision before the batch (r_revision) and the compacted revision
      // (r_create); row i the i-th write: r_outcome 0 written, 1 refused by
      // its condition, 2 no such lease, 3 the same value and lease (nothing
      // written), 4 a delete of a missing key.
      //
      // kv_writer names the server that commits the others' writes too
      // (writer_election.h): its URL and the token its peers present.
      {6, "one writer: one-statement batches and the writer's address",
       R"sql(
CREATE TABLE kv_writer (
  id integer PRIMARY KEY CHECK (id = 1),
  url text NOT NULL,
  token text NOT NULL,
  since timestamptz NOT NULL DEFAULT now()
);
CREATE FUNCTION kv_write_batch(kinds smallint[], keys bytea[], vals bytea[], leases bigint[],
                               create_only boolean[], must_exist boolean[], if_revision bigint[])
RETURNS TABLE (r_op integer, r_outcome smallint, r_existed boolean, r_revision bigint,
               r_create bigint, r_version bigint)
LANGUAGE plpgsql AS $$
DECLARE
  base bigint;
  nxt bigint;
  cur record;
BEGIN
  SELECT m.revision, m.compacted_revision INTO base, r_create FROM kv_meta m WHERE m.id = 1 FOR UPDATE;
  nxt := base;
  r_op := 0; r_outcome := 0; r_existed := false; r_revision := base; r_version := 0;
  RETURN NEXT;
  FOR i IN 1 .. coalesce(array_length(keys, 1), 0) LOOP
    r_op := i;
    SELECT s.revision AS rev, s.value = vals[i] AS same_value, s.create_revision AS created,
           s.version AS ver, s.lease AS lease_id
      INTO cur FROM kv_state s WHERE s.key = keys[i];
    r_existed := FOUND;
    r_revision := CASE WHEN r_existed THEN cur.rev ELSE 0 END;
    r_create := 0;
    r_version := 0;
    IF (create_only[i] AND r_existed) OR (must_exist[i] AND NOT r_existed)
       OR (if_revision[i] IS NOT NULL AND r_revision <> if_revision[i]) THEN
      r_outcome := 1;
    ELSIF kinds[i] = 1 AND leases[i] <> 0 AND NOT EXISTS (SELECT 1 FROM kv_lease l WHERE l.id = leases[i]) THEN
      r_outcome := 2;
    ELSIF kinds[i] = 1 AND r_existed AND cur.same_value AND cur.lease_id = leases[i] THEN
      r_outcome := 3;
    ELSIF kinds[i] = 2 AND NOT r_existed THEN
      r_outcome := 4;
    ELSE
      nxt := nxt + 1;
      r_outcome := 0;
      r_revision := nxt;
      IF kinds[i] = 1 THEN
        r_create := CASE WHEN r_existed THEN cur.created ELSE nxt END;
        r_version := CASE WHEN r_existed THEN cur.ver + 1 ELSE 1 END;
        INSERT INTO kv_state (key, value, revision, create_revision, version, lease)
        VALUES (keys[i], vals[i], nxt, r_create, r_version, leases[i])
        ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, revision = EXCLUDED.revision,
          create_revision = EXCLUDED.create_revision, version = EXCLUDED.version, lease = EXCLUDED.lease;
        INSERT INTO kv_log (revision, kind, key, value, create_revision, version, lease)
        VALUES (nxt, 1, keys[i], vals[i], r_create, r_version, leases[i]);
      ELSE
        DELETE FROM kv_state s WHERE s.key = keys[i];
        INSERT INTO kv_log (revision, kind, key, create_revision, version, lease)
        VALUES (nxt, 2, keys[i], 0, 0, 0);
      END IF;
    END IF;
    RETURN NEXT;
  END LOOP;
  IF nxt > base THEN
    UPDATE kv_meta SET revision = nxt WHERE id = 1;
    PERFORM pg_notify('kvctl_changes', nxt::text);
  END IF;
END
$$;
)sql",
       R"sql(
DROP FUNCTION kv_write_batch(smallint[], bytea[], bytea[], bigint[], boolean[], boolean[], bigint[]);
DROP TABLE kv_writer;
)sql"},
  };
  return kMigrations;
}

int64_t LatestVersion() { return Migrations().back().version; }

}  // namespace kvctl::pg
