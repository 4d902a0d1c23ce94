"""The SQLite store's schema, as migrations from one version to the next.

Version 1::

    users(user_id TEXT PRIMARY KEY, created_at TEXT)
    attributes(user_id -> users ON DELETE CASCADE, key, value, PRIMARY KEY (user_id, key))
    records(user_id -> users ON DELETE CASCADE, record_id, position INTEGER,
            fields TEXT (a JSON object), date TEXT, PRIMARY KEY (user_id, record_id))

Version 2 adds derived data, each table under the derived data rule (see
:mod:`tailor.profiles.sqlite`)::

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
"""

from __future__ import annotations

SCHEMA_VERSION = 2

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

# MIGRATIONS[n] holds the statements that turn a version n-1 file into version n.
MIGRATIONS: dict[int, tuple[str, ...]] = {1: _SCHEMA_V1, 2: _SCHEMA_V2}

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
