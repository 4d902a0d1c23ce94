"""The PostgreSQL store's schema: the SQLite store's tables (:mod:`tailor.store.sqlite_schema`),
in PostgreSQL's dialect, created in the connection's current schema.

Version numbers follow the SQLite schema's, so one number means one set of tables in both
stores. PostgreSQL support begins at version 2, so an empty database goes straight there;
a later version adds ``MIGRATIONS[3]`` here and in the SQLite schema alike. The version is
kept in a one-row ``schema_version`` table.

Differences from SQLite, each for a reason:

- Text keys are ``COLLATE "C"``: ``list_users`` and ``list_artifacts`` sort by code point,
  as Python and SQLite do, whatever the database's locale.
- JSON is kept as ``TEXT``, not ``jsonb``: ``jsonb`` reorders keys, and a record's field
  order is part of the contract.
- Vectors and centroids are ``BYTEA`` (the same little-endian bytes as SQLite's ``BLOB``).
- The trigger that drops a record's embeddings when its fields change is a PL/pgSQL
  function that names its table through ``TG_TABLE_SCHEMA``, so it holds whatever
  ``search_path`` the writing session has (so do version 3's triggers).
- Conversations and memories keep their order of insertion in a ``seq`` identity column
  (SQLite's ``rowid`` does it there); ``memory_history.event_id`` is an identity too.
"""

from __future__ import annotations

SCHEMA_VERSION = 4

# Serializes schema creation between processes that open an empty database at once; the
# second number is the schema's name hashed, so stores in separate schemas do not wait on
# each other.
ADVISORY_LOCK = "SELECT pg_advisory_xact_lock(7461696, hashtext(current_schema()))"

SCHEMA_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"

_SCHEMA_V2 = (
    """CREATE TABLE users (
        user_id TEXT COLLATE "C" PRIMARY KEY,
        created_at TEXT NOT NULL,
        profile_version BIGINT NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE attributes (
        user_id TEXT COLLATE "C" NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
        key TEXT COLLATE "C" NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (user_id, key)
    )""",
    """CREATE TABLE records (
        user_id TEXT COLLATE "C" NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
        record_id TEXT COLLATE "C" NOT NULL,
        position BIGINT NOT NULL,
        fields TEXT NOT NULL,
        date TEXT,
        PRIMARY KEY (user_id, record_id)
    )""",
    "CREATE INDEX records_by_position ON records (user_id, position)",
    # The key leads with (user_id, record_id), the foreign key's columns, so the cascade from
    # a deleted record finds its vectors through the primary key.
    """CREATE TABLE record_embeddings (
        user_id TEXT COLLATE "C" NOT NULL,
        record_id TEXT COLLATE "C" NOT NULL,
        model TEXT COLLATE "C" NOT NULL,
        dim INTEGER NOT NULL,
        vector BYTEA NOT NULL,
        PRIMARY KEY (user_id, record_id, model),
        FOREIGN KEY (user_id, record_id) REFERENCES records (user_id, record_id) ON DELETE CASCADE
    )""",
    """CREATE TABLE artifacts (
        user_id TEXT COLLATE "C" NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
        kind TEXT COLLATE "C" NOT NULL,
        key TEXT COLLATE "C" NOT NULL,
        value TEXT NOT NULL,
        profile_version BIGINT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (user_id, kind, key)
    )""",
    """CREATE TABLE personas (
        persona_id TEXT COLLATE "C" PRIMARY KEY,
        position INTEGER NOT NULL,
        description TEXT NOT NULL,
        centroid BYTEA NOT NULL,
        size INTEGER NOT NULL,
        metadata TEXT NOT NULL
    )""",
    """CREATE TABLE persona_members (
        user_id TEXT COLLATE "C" PRIMARY KEY REFERENCES users (user_id) ON DELETE CASCADE,
        persona_id TEXT COLLATE "C" NOT NULL REFERENCES personas (persona_id) ON DELETE CASCADE
    )""",
    "CREATE INDEX persona_members_by_persona ON persona_members (persona_id)",
    """CREATE FUNCTION tailor_record_fields_changed() RETURNS trigger LANGUAGE plpgsql AS $body$
    BEGIN
        EXECUTE format('DELETE FROM %I.record_embeddings WHERE user_id = $1 AND record_id = $2', TG_TABLE_SCHEMA)
            USING OLD.user_id, OLD.record_id;
        RETURN NULL;
    END
    $body$""",
    """CREATE TRIGGER record_fields_changed AFTER UPDATE OF fields ON records
        FOR EACH ROW WHEN (OLD.fields IS DISTINCT FROM NEW.fields)
        EXECUTE FUNCTION tailor_record_fields_changed()""",
)

# Version 3: the server's tables and the adapter store's (see tailor.store.sqlite_schema).
_SCHEMA_V3 = (
    """CREATE TABLE api_keys (
        key_id TEXT COLLATE "C" PRIMARY KEY,
        tenant TEXT COLLATE "C",
        admin INTEGER NOT NULL,
        salt BYTEA NOT NULL,
        digest BYTEA NOT NULL,
        created_at TEXT NOT NULL,
        revoked_at TEXT
    )""",
    """CREATE TABLE conversation_messages (
        message_id TEXT COLLATE "C" PRIMARY KEY,
        user_id TEXT COLLATE "C" NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
        completion_id TEXT NOT NULL,
        role TEXT NOT NULL,
        content TEXT NOT NULL,
        created_at TEXT NOT NULL,
        extraction TEXT NOT NULL,
        seq BIGINT GENERATED ALWAYS AS IDENTITY
    )""",
    "CREATE INDEX conversation_messages_by_user ON conversation_messages (user_id, seq)",
    "CREATE INDEX conversation_messages_pending ON conversation_messages (seq) WHERE extraction = 'pending'",
    """CREATE TABLE memories (
        memory_id TEXT COLLATE "C" PRIMARY KEY,
        user_id TEXT COLLATE "C" NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
        key TEXT,
        operator TEXT NOT NULL,
        value TEXT NOT NULL,
        text TEXT NOT NULL,
        normalized TEXT NOT NULL,
        terms TEXT NOT NULL,
        confidence DOUBLE PRECISION NOT NULL,
        source_message_id TEXT,
        created_at TEXT NOT NULL,
        superseded_by TEXT,
        superseded_at TEXT,
        embedder TEXT,
        embedding BYTEA,
        seq BIGINT GENERATED ALWAYS AS IDENTITY
    )""",
    "CREATE INDEX memories_by_user ON memories (user_id, superseded_by)",
    """CREATE TABLE memory_history (
        event_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        memory_id TEXT COLLATE "C" NOT NULL REFERENCES memories (memory_id) ON DELETE CASCADE,
        user_id TEXT COLLATE "C" NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
        event TEXT NOT NULL,
        related_memory_id TEXT,
        source_message_id TEXT,
        at TEXT NOT NULL
    )""",
    "CREATE INDEX memory_history_by_memory ON memory_history (user_id, memory_id)",
    "CREATE INDEX memory_history_by_related ON memory_history (user_id, related_memory_id)",
    """CREATE TABLE serve_record_terms (
        user_id TEXT COLLATE "C" NOT NULL,
        record_id TEXT COLLATE "C" NOT NULL,
        terms TEXT NOT NULL,
        PRIMARY KEY (user_id, record_id),
        FOREIGN KEY (user_id, record_id) REFERENCES records (user_id, record_id) ON DELETE CASCADE
    )""",
    """CREATE TABLE serve_record_index (
        user_id TEXT COLLATE "C" PRIMARY KEY REFERENCES users (user_id) ON DELETE CASCADE,
        profile_version BIGINT NOT NULL,
        build_id TEXT NOT NULL,
        record_ids TEXT NOT NULL,
        vocabulary TEXT NOT NULL,
        arrays BYTEA NOT NULL
    )""",
    """CREATE FUNCTION tailor_record_terms_stale() RETURNS trigger LANGUAGE plpgsql AS $body$
    BEGIN
        EXECUTE format('DELETE FROM %I.serve_record_terms WHERE user_id = $1 AND record_id = $2', TG_TABLE_SCHEMA)
            USING OLD.user_id, OLD.record_id;
        RETURN NULL;
    END
    $body$""",
    """CREATE TRIGGER serve_record_terms_stale AFTER UPDATE OF fields ON records
        FOR EACH ROW WHEN (OLD.fields IS DISTINCT FROM NEW.fields)
        EXECUTE FUNCTION tailor_record_terms_stale()""",
    """CREATE TABLE serve_record_matrix (
        user_id TEXT COLLATE "C" NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
        model TEXT COLLATE "C" NOT NULL,
        profile_version BIGINT NOT NULL,
        record_ids TEXT NOT NULL,
        dim INTEGER NOT NULL,
        matrix BYTEA NOT NULL,
        PRIMARY KEY (user_id, model)
    )""",
    *(f"""CREATE TABLE {table} (
        {owner},
        task TEXT COLLATE "C" NOT NULL,
        kind TEXT COLLATE "C" NOT NULL,
        prompt TEXT COLLATE "C" NOT NULL DEFAULT 'none',
        config TEXT NOT NULL,
        base_model TEXT NOT NULL,
        metadata TEXT NOT NULL,
        digest TEXT NOT NULL,
        weights BYTEA NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY ({key})
    )""" for table, owner, key in (
        ("adapters", 'user_id TEXT COLLATE "C" NOT NULL REFERENCES users (user_id) ON DELETE CASCADE',
         "user_id, task, kind, prompt"),
        ("shared_adapters", """scope TEXT COLLATE "C" NOT NULL CHECK (scope IN ('persona', 'global')),
        owner TEXT COLLATE "C" NOT NULL""", "scope, owner, task, kind, prompt"))),
    """CREATE TABLE adapter_contributors (
        scope TEXT COLLATE "C" NOT NULL,
        owner TEXT COLLATE "C" NOT NULL,
        task TEXT COLLATE "C" NOT NULL,
        kind TEXT COLLATE "C" NOT NULL,
        prompt TEXT COLLATE "C" NOT NULL DEFAULT 'none',
        user_id TEXT COLLATE "C" NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
        PRIMARY KEY (scope, owner, task, kind, prompt, user_id),
        FOREIGN KEY (scope, owner, task, kind, prompt) REFERENCES shared_adapters (scope, owner, task, kind, prompt)
            ON DELETE CASCADE
    )""",
    "CREATE INDEX adapter_contributors_by_user ON adapter_contributors (user_id)",
    """CREATE FUNCTION tailor_adapter_contributor_deleted() RETURNS trigger LANGUAGE plpgsql AS $body$
    BEGIN
        EXECUTE format('DELETE FROM %I.shared_adapters WHERE scope = $1 AND owner = $2 AND task = $3 '
                       'AND kind = $4 AND prompt = $5', TG_TABLE_SCHEMA)
            USING OLD.scope, OLD.owner, OLD.task, OLD.kind, OLD.prompt;
        RETURN NULL;
    END
    $body$""",
    """CREATE TRIGGER adapter_contributor_deleted AFTER DELETE ON adapter_contributors
        FOR EACH ROW EXECUTE FUNCTION tailor_adapter_contributor_deleted()""",
)

# Version 4: extraction claims on messages (see tailor.store.sqlite_schema).
_SCHEMA_V4 = ("ALTER TABLE conversation_messages ADD COLUMN claimed_until TEXT",)

# MIGRATIONS[n] holds the statements that turn a version n-1 schema into version n; an
# empty database (version 0) starts at the first key.
MIGRATIONS: dict[int, tuple[str, ...]] = {2: _SCHEMA_V2, 3: _SCHEMA_V3, 4: _SCHEMA_V4}

# Tables with a user_id column that follow no cascade from users or records, in the
# current schema: the derived data rule's check (see tailor.store.sqlite).
TABLES_MISSING_CASCADE = """
    SELECT c.relname FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND c.relname <> 'users'
      AND EXISTS (SELECT 1 FROM pg_attribute AS a
                  WHERE a.attrelid = c.oid AND a.attname = 'user_id' AND NOT a.attisdropped)
      AND NOT EXISTS (SELECT 1 FROM pg_constraint AS k
                      WHERE k.conrelid = c.oid AND k.contype = 'f' AND k.confdeltype = 'c'
                        AND k.confrelid IN ('users'::regclass, 'records'::regclass))
    ORDER BY c.relname COLLATE "C"
"""

INSERT_USERS = (
    "INSERT INTO users (user_id, created_at) SELECT user_id, %s FROM unnest(%s::text[]) AS batch (user_id) "
    "ON CONFLICT (user_id) DO NOTHING"
)
# Every write locks its users' rows first, in one order, so concurrent writers to one user
# take turns (positions stay unique, counts stay right) and writers to several never deadlock.
# NO KEY UPDATE: it leaves other transactions free to insert rows that reference the user.
LOCK_USERS = "SELECT user_id FROM users WHERE user_id = ANY(%s::text[]) ORDER BY user_id FOR NO KEY UPDATE"
UPSERT_ATTRIBUTES = (
    "INSERT INTO attributes (user_id, key, value) SELECT * FROM unnest(%s::text[], %s::text[], %s::text[]) "
    "ON CONFLICT (user_id, key) DO UPDATE SET value = excluded.value"
)
# As in SQLite: a re-added record keeps its position, and an identical re-add writes
# nothing, so it is not returned and bumps no version.
UPSERT_RECORDS = (
    "INSERT INTO records (user_id, record_id, position, fields, date) "
    "SELECT * FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::text[], %s::text[]) "
    "ON CONFLICT (user_id, record_id) DO UPDATE SET fields = excluded.fields, date = excluded.date "
    "WHERE records.fields IS DISTINCT FROM excluded.fields OR records.date IS DISTINCT FROM excluded.date "
    "RETURNING user_id"
)
