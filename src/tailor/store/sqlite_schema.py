"""The SQLite store's schema, as migrations from one version to the next.

Version 1::

    users(user_id TEXT PRIMARY KEY, created_at TEXT)
    attributes(user_id -> users ON DELETE CASCADE, key, value, PRIMARY KEY (user_id, key))
    records(user_id -> users ON DELETE CASCADE, record_id, position INTEGER,
            fields TEXT (a JSON object), date TEXT, PRIMARY KEY (user_id, record_id))

Version 2 adds derived data, each table under the derived data rule (see
:mod:`tailor.store.sqlite`)::

    users.profile_version INTEGER      grows when the user's records change
    record_embeddings((user_id, record_id) -> records ON DELETE CASCADE, model, dim,
                      vector BLOB (little-endian float32), PRIMARY KEY (user_id, record_id, model))
    artifacts(user_id -> users ON DELETE CASCADE, kind, key, value TEXT (JSON),
              profile_version, created_at, PRIMARY KEY (user_id, kind, key))
    personas(persona_id PRIMARY KEY, position, description, centroid BLOB (float64),
             size, metadata TEXT (JSON))                  -- cross-user, holds no user_id
    persona_members(user_id PRIMARY KEY -> users ON DELETE CASCADE,
                    persona_id -> personas ON DELETE CASCADE)

and a trigger that deletes a record's embeddings when its fields change: the vectors
were computed from text that is gone. A trigger rather than code in the store's write
path, for the same reason as the cascades: it holds for every process that opens the file.

Version 3 brings here the tables that the server and the adapter store used to create
beside the store's own (each with ``CREATE TABLE IF NOT EXISTS`` in its own module), so
that every table of the file is declared in this one place. Their definitions are the ones
those modules wrote, so a version 2 file that already holds them keeps them as they are::

    api_keys(key_id PRIMARY KEY, tenant, admin, salt BLOB, digest BLOB, created_at,
             revoked_at)                                  -- holds no user data
    conversation_messages(message_id PRIMARY KEY, user_id -> users ON DELETE CASCADE,
                          completion_id, role, content, created_at, extraction)
    memories(memory_id PRIMARY KEY, user_id -> users ON DELETE CASCADE, key, operator,
             value, text, normalized, terms, confidence, source_message_id, created_at,
             superseded_by, superseded_at, embedder, embedding BLOB)
    memory_history(event_id PRIMARY KEY, memory_id -> memories ON DELETE CASCADE,
                   user_id -> users ON DELETE CASCADE, event, related_memory_id,
                   source_message_id, at)
    serve_record_terms((user_id, record_id) -> records ON DELETE CASCADE, terms)
    serve_record_index(user_id PRIMARY KEY -> users ON DELETE CASCADE, profile_version,
                       build_id, record_ids, vocabulary, arrays BLOB)
    serve_record_matrix(user_id -> users ON DELETE CASCADE, model, profile_version,
                        record_ids, dim, matrix BLOB, PRIMARY KEY (user_id, model))
    adapters, shared_adapters, adapter_contributors        -- see tailor.adapters.store

with the triggers that drop a record's terms when its fields change, and a pooled adapter
when one of its contributors goes. Adapter tables made before their ``prompt`` column are
rebuilt first (:func:`add_adapter_prompt_column`). Order of rows within a user
(conversations, memories) is SQLite's ``rowid``, the order of insertion.

Version 4 adds ``conversation_messages.claimed_until`` (an ISO-8601 UTC time, or NULL): a
process about to extract facts from a pending message claims it until then, so that two
server processes sharing the store never extract the same message at once, and a claim
left by a process that died runs out.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

SCHEMA_VERSION = 4

_SCHEMA_V1 = (
    """CREATE TABLE IF NOT EXISTS users (
        user_id TEXT PRIMARY KEY NOT NULL,
        created_at TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS attributes (
        user_id TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (user_id, key)
    )""",
    """CREATE TABLE IF NOT EXISTS records (
        user_id TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
        record_id TEXT NOT NULL,
        position INTEGER NOT NULL,
        fields TEXT NOT NULL,
        date TEXT,
        PRIMARY KEY (user_id, record_id)
    )""",
    "CREATE INDEX IF NOT EXISTS records_by_position ON records (user_id, position)",
)

_SCHEMA_V2 = (
    "ALTER TABLE users ADD COLUMN profile_version INTEGER NOT NULL DEFAULT 0",
    # Users migrated with records start at 1, so that 0 always means "never held a record".
    "UPDATE users SET profile_version = 1 WHERE EXISTS (SELECT 1 FROM records WHERE records.user_id = users.user_id)",
    # The key leads with (user_id, record_id), the foreign key's columns, so the cascade from
    # a deleted record finds its vectors through the primary key.
    """CREATE TABLE IF NOT EXISTS record_embeddings (
        user_id TEXT NOT NULL,
        record_id TEXT NOT NULL,
        model TEXT NOT NULL,
        dim INTEGER NOT NULL,
        vector BLOB NOT NULL,
        PRIMARY KEY (user_id, record_id, model),
        FOREIGN KEY (user_id, record_id) REFERENCES records(user_id, record_id) ON DELETE CASCADE
    )""",
    """CREATE TABLE IF NOT EXISTS artifacts (
        user_id TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        profile_version INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (user_id, kind, key)
    )""",
    """CREATE TABLE IF NOT EXISTS personas (
        persona_id TEXT PRIMARY KEY NOT NULL,
        position INTEGER NOT NULL,
        description TEXT NOT NULL,
        centroid BLOB NOT NULL,
        size INTEGER NOT NULL,
        metadata TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS persona_members (
        user_id TEXT PRIMARY KEY NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
        persona_id TEXT NOT NULL REFERENCES personas(persona_id) ON DELETE CASCADE
    )""",
    "CREATE INDEX IF NOT EXISTS persona_members_by_persona ON persona_members (persona_id)",
    """CREATE TRIGGER IF NOT EXISTS record_fields_changed AFTER UPDATE OF fields ON records
        WHEN old.fields IS NOT new.fields
    BEGIN
        DELETE FROM record_embeddings WHERE user_id = old.user_id AND record_id = old.record_id;
    END""",
)

_API_KEYS = (
    """CREATE TABLE IF NOT EXISTS api_keys (
        key_id TEXT PRIMARY KEY NOT NULL,
        tenant TEXT,
        admin INTEGER NOT NULL,
        salt BLOB NOT NULL,
        digest BLOB NOT NULL,
        created_at TEXT NOT NULL,
        revoked_at TEXT
    )""",
)

_CONVERSATIONS = (
    """CREATE TABLE IF NOT EXISTS conversation_messages (
        message_id TEXT PRIMARY KEY NOT NULL,
        user_id TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
        completion_id TEXT NOT NULL,
        role TEXT NOT NULL,
        content TEXT NOT NULL,
        created_at TEXT NOT NULL,
        extraction TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS conversation_messages_by_user ON conversation_messages (user_id)",
    ("CREATE INDEX IF NOT EXISTS conversation_messages_pending ON conversation_messages (extraction) "
     "WHERE extraction = 'pending'"),
    """CREATE TABLE IF NOT EXISTS memories (
        memory_id TEXT PRIMARY KEY NOT NULL,
        user_id TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
        key TEXT,
        operator TEXT NOT NULL,
        value TEXT NOT NULL,
        text TEXT NOT NULL,
        normalized TEXT NOT NULL,
        terms TEXT NOT NULL,
        confidence REAL NOT NULL,
        source_message_id TEXT,
        created_at TEXT NOT NULL,
        superseded_by TEXT,
        superseded_at TEXT,
        embedder TEXT,
        embedding BLOB
    )""",
    "CREATE INDEX IF NOT EXISTS memories_by_user ON memories (user_id, superseded_by)",
    """CREATE TABLE IF NOT EXISTS memory_history (
        event_id INTEGER PRIMARY KEY AUTOINCREMENT,
        memory_id TEXT NOT NULL REFERENCES memories(memory_id) ON DELETE CASCADE,
        user_id TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
        event TEXT NOT NULL,
        related_memory_id TEXT,
        source_message_id TEXT,
        at TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS memory_history_by_memory ON memory_history (user_id, memory_id)",
    "CREATE INDEX IF NOT EXISTS memory_history_by_related ON memory_history (user_id, related_memory_id)",
)

_RECORD_SEARCH = (
    """CREATE TABLE IF NOT EXISTS serve_record_terms (
        user_id TEXT NOT NULL,
        record_id TEXT NOT NULL,
        terms TEXT NOT NULL,
        PRIMARY KEY (user_id, record_id),
        FOREIGN KEY (user_id, record_id) REFERENCES records(user_id, record_id) ON DELETE CASCADE
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS serve_record_index (
        user_id TEXT PRIMARY KEY NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
        profile_version INTEGER NOT NULL,
        build_id TEXT NOT NULL,
        record_ids TEXT NOT NULL,
        vocabulary TEXT NOT NULL,
        arrays BLOB NOT NULL
    )""",
    """CREATE TRIGGER IF NOT EXISTS serve_record_terms_stale AFTER UPDATE OF fields ON records
        WHEN old.fields IS NOT new.fields
    BEGIN
        DELETE FROM serve_record_terms WHERE user_id = old.user_id AND record_id = old.record_id;
    END""",
    """CREATE TABLE IF NOT EXISTS serve_record_matrix (
        user_id TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
        model TEXT NOT NULL,
        profile_version INTEGER NOT NULL,
        record_ids TEXT NOT NULL,
        dim INTEGER NOT NULL,
        matrix BLOB NOT NULL,
        PRIMARY KEY (user_id, model)
    )""",
)

# A user's adapters and the shared ones differ only in their owner columns.
_ADAPTER_COLUMNS = """task TEXT NOT NULL,
        kind TEXT NOT NULL,
        prompt TEXT NOT NULL DEFAULT 'none',
        config TEXT NOT NULL,
        base_model TEXT NOT NULL,
        metadata TEXT NOT NULL,
        digest TEXT NOT NULL,
        weights BLOB NOT NULL,
        created_at TEXT NOT NULL"""

ADAPTER_TABLES = (
    f"""CREATE TABLE IF NOT EXISTS adapters (
        user_id TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
        {_ADAPTER_COLUMNS},
        PRIMARY KEY (user_id, task, kind, prompt)
    )""",
    f"""CREATE TABLE IF NOT EXISTS shared_adapters (
        scope TEXT NOT NULL CHECK (scope IN ('persona', 'global')),
        owner TEXT NOT NULL,
        {_ADAPTER_COLUMNS},
        PRIMARY KEY (scope, owner, task, kind, prompt)
    )""",
    """CREATE TABLE IF NOT EXISTS adapter_contributors (
        scope TEXT NOT NULL,
        owner TEXT NOT NULL,
        task TEXT NOT NULL,
        kind TEXT NOT NULL,
        prompt TEXT NOT NULL DEFAULT 'none',
        user_id TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
        PRIMARY KEY (scope, owner, task, kind, prompt, user_id),
        FOREIGN KEY (scope, owner, task, kind, prompt) REFERENCES shared_adapters(scope, owner, task, kind, prompt)
            ON DELETE CASCADE
    )""",
    "CREATE INDEX IF NOT EXISTS adapter_contributors_by_user ON adapter_contributors (user_id)",
    # A pooled adapter learned from the deleted user's history: it goes with them.
    """CREATE TRIGGER IF NOT EXISTS adapter_contributor_deleted AFTER DELETE ON adapter_contributors
    BEGIN
        DELETE FROM shared_adapters WHERE scope = old.scope AND owner = old.owner
            AND task = old.task AND kind = old.kind AND prompt = old.prompt;
    END""",
)


def add_adapter_prompt_column(connection: sqlite3.Connection) -> None:
    """Rebuild adapter tables made before the ``prompt`` column (it is part of each primary
    key, which SQLite cannot alter in place); their adapters were trained on ``none``."""
    tables = ("adapter_contributors", "shared_adapters", "adapters")
    old = [t for t in tables
           if connection.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (t,)).fetchone()
           and "prompt" not in {row[1] for row in connection.execute("SELECT * FROM pragma_table_info(?)", (t,))}]
    if not old:
        return
    for table in old:
        connection.execute(f"ALTER TABLE {table} RENAME TO {table}_before_prompt")
    # The renamed tables keep their trigger and foreign keys; drop the trigger before copying.
    connection.execute("DROP TRIGGER IF EXISTS adapter_contributor_deleted")
    connection.execute("DROP INDEX IF EXISTS adapter_contributors_by_user")
    for statement in ADAPTER_TABLES:
        connection.execute(statement)
    for table in reversed(tables):  # owners before the rows that reference them
        if table in old:
            columns = [row[1] for row in connection.execute("SELECT * FROM pragma_table_info(?)",
                                                            (f"{table}_before_prompt",))]
            names = ", ".join(columns)
            connection.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {table}_before_prompt")
    for table in old:  # references first, so dropping cascades to nothing still needed
        connection.execute(f"DROP TABLE {table}_before_prompt")


Step = str | Callable[[sqlite3.Connection], None]

_SCHEMA_V3: tuple[Step, ...] = (
    *_API_KEYS, *_CONVERSATIONS, *_RECORD_SEARCH, add_adapter_prompt_column, *ADAPTER_TABLES)

_SCHEMA_V4: tuple[Step, ...] = ("ALTER TABLE conversation_messages ADD COLUMN claimed_until TEXT",)

# MIGRATIONS[n] holds the steps (statements, or functions of the connection for what a
# statement cannot say) that turn a version n-1 file into version n.
MIGRATIONS: dict[int, tuple[Step, ...]] = {1: _SCHEMA_V1, 2: _SCHEMA_V2, 3: _SCHEMA_V3, 4: _SCHEMA_V4}

INSERT_USER = "INSERT INTO users (user_id, created_at) VALUES (?, ?) ON CONFLICT (user_id) DO NOTHING"
UPSERT_ATTRIBUTE = (
    "INSERT INTO attributes (user_id, key, value) VALUES (?, ?, ?) "
    "ON CONFLICT (user_id, key) DO UPDATE SET value = excluded.value"
)
# A re-added record keeps its position, so re-ingesting data never reorders a profile; and
# an identical re-add writes nothing, so it counts as no change (rowcount) and bumps no version.
UPSERT_RECORD = (
    "INSERT INTO records (user_id, record_id, position, fields, date) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (user_id, record_id) DO UPDATE SET fields = excluded.fields, date = excluded.date "
    "WHERE records.fields IS NOT excluded.fields OR records.date IS NOT excluded.date"
)
