"""The store's schema, for SQLite and PostgreSQL alike: one numbered list of migrations.

``MIGRATIONS[n - 1]`` turns a version ``n - 1`` database into version ``n``; one number
means one set of tables in both stores. SQLite keeps the version in ``PRAGMA user_version``
(:mod:`tailor.store.sqlite`), PostgreSQL in a one-row ``schema_version`` table
(:mod:`tailor.store.postgres`); each store brings an older database up to date when it is
opened. PostgreSQL support began at version 2, so no PostgreSQL schema holds version 1: an
empty one runs every migration in one transaction and goes straight to the current version.

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
path, for the same reason as the cascades: it holds for every process that opens the database.

Version 3 brings here the tables that the server and the adapter store used to create
beside the store's own (each with ``CREATE TABLE IF NOT EXISTS`` in its own module), so
that every table is declared in this one place. Their definitions are the ones those
modules wrote, so a version 2 SQLite file that already holds them keeps them as they are::

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
when one of its contributors goes. SQLite adapter tables made before their ``prompt``
column are rebuilt first (:func:`add_adapter_prompt_column`).

Version 4 adds ``conversation_messages.claimed_until`` (an ISO-8601 UTC time, or NULL): a
process about to extract facts from a pending message claims it until then, so that two
server processes sharing the store never extract the same message at once, and a claim
left by a process that died runs out.

Version 5 keeps what preference learning needs from the server (schema of
:mod:`tailor.store.feedback`), each table under the derived data rule::

    served_replies(completion_id PRIMARY KEY, user_id -> users ON DELETE CASCADE,
                   messages TEXT (JSON, as the client sent them), reply, adapter, created_at)
    feedback(feedback_id PRIMARY KEY, user_id -> users ON DELETE CASCADE,
             kind 'pair' | 'rating' | 'edit', completion_id, messages TEXT (JSON), chosen,
             rejected, rating, source, created_at)

A served reply keeps its id, prompt and text so that a later rating or edit of it becomes a
training example; feedback keeps its own copy of the prompt, so it stays whole when the
reply it rated is pruned.

Dialects
--------
Each statement is written once, in SQLite's words, with a placeholder where PostgreSQL's
word differs (:data:`DIALECT_WORDS`), each for a reason:

- ``{text_key}``: text that is a key or is sorted on is ``COLLATE "C"`` in PostgreSQL, so
  that ``list_users`` and ``list_artifacts`` sort by code point, as Python and SQLite do,
  whatever the database's locale. JSON is kept as ``TEXT`` in both, not ``jsonb``: ``jsonb``
  reorders keys, and a record's field order is part of the contract.
- ``{blob}``: vectors, centroids and weights are ``BYTEA`` (the same little-endian bytes as
  SQLite's ``BLOB``); ``{bigint}`` and ``{double}``: SQLite's ``INTEGER`` and ``REAL``
  already hold 64 bits.
- ``{insertion_order}``: conversations and memories keep their order of insertion in a
  ``seq`` identity column in PostgreSQL (SQLite's ``rowid`` does it there);
  ``{serial_key}``: ``memory_history.event_id`` is an identity too.
- ``{without_rowid}``: ``serve_record_terms`` is a ``WITHOUT ROWID`` table in SQLite.
- ``IF NOT EXISTS`` is SQLite's only: it adopts the tables earlier features made beside
  the store's (version 3). No PostgreSQL schema ever held them, so there a table that
  exists already is another application's, and creating it fails, as it should.

Where the statement itself differs, a migration holds a :class:`PerDialect` step with each
dialect's statements side by side: the triggers (PostgreSQL's are PL/pgSQL functions that
name their table through ``TG_TABLE_SCHEMA``, so they hold whatever ``search_path`` the
writing session has), the two conversation indexes (PostgreSQL's hold ``seq``; an SQLite
index carries the ``rowid`` already), and SQLite's rebuild of old adapter tables.

Version 6 adds two counters to ``users``, kept by the memory writes of
:mod:`tailor.store.conversations`: ``memory_version`` (grows with every change to the
user's memories) and ``memory_removals`` (grows when one is superseded or deleted; it
starts at a random number for each new user), so that a server checks one row per search
to know whether its in-memory index of the user's memories is current.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = ["DIALECT_WORDS", "MIGRATIONS", "SCHEMA_VERSION", "Migration", "PerDialect", "add_adapter_prompt_column",
           "migrations_after", "run_sqlite_steps"]

Dialect = Literal["sqlite", "postgres"]

DIALECT_WORDS: dict[str, tuple[str, str]] = {
    # placeholder: (SQLite, PostgreSQL); see the module's docstring for why each differs
    "text_key": ("TEXT", 'TEXT COLLATE "C"'),
    "blob": ("BLOB", "BYTEA"),
    "bigint": ("INTEGER", "BIGINT"),
    "double": ("REAL", "DOUBLE PRECISION"),
    "insertion_order": ("", ",\n        seq BIGINT GENERATED ALWAYS AS IDENTITY"),
    "serial_key": ("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
    "without_rowid": (" WITHOUT ROWID", ""),
}

SQLiteStep = Callable[[sqlite3.Connection], None]
"""What a statement cannot say in SQLite, done on the connection."""


@dataclass(frozen=True)
class PerDialect:
    """A step written once per dialect, where the statement itself differs."""

    sqlite: tuple[str | SQLiteStep, ...]
    postgres: tuple[str, ...]


Step = str | PerDialect


def _in_dialect(steps: Sequence[Step], dialect: Dialect) -> list[str | SQLiteStep]:
    """``steps`` as ``dialect`` runs them: placeholders filled in, per-dialect steps picked."""
    column = 0 if dialect == "sqlite" else 1
    words = {name: spelled[column] for name, spelled in DIALECT_WORDS.items()}
    out: list[str | SQLiteStep] = []
    for step in steps:
        if isinstance(step, PerDialect):
            out.extend(step.sqlite if dialect == "sqlite" else step.postgres)
        else:
            statement = step.format(**words)
            # IF NOT EXISTS is SQLite's only (see the module's docstring).
            out.append(statement if dialect == "sqlite" else statement.replace(" IF NOT EXISTS ", " "))
    return out


@dataclass(frozen=True)
class Migration:
    """The steps that turn a version ``version - 1`` database into version ``version``."""

    version: int
    steps: tuple[Step, ...]

    def sqlite_steps(self) -> list[str | SQLiteStep]:
        """The steps in SQLite's dialect: statements, or functions of the connection."""
        return _in_dialect(self.steps, "sqlite")

    def postgres_statements(self) -> list[str]:
        """The statements in PostgreSQL's dialect (every step there is a statement)."""
        return [step for step in _in_dialect(self.steps, "postgres") if isinstance(step, str)]


def run_sqlite_steps(connection: sqlite3.Connection, steps: Sequence[str | SQLiteStep]) -> None:
    """Execute each statement, and call each function, on ``connection``."""
    for step in steps:
        if isinstance(step, str):
            connection.execute(step)
        else:
            step(connection)


def _delete_when_fields_change(table: str, trigger: str, function: str) -> PerDialect:
    """The trigger ``trigger`` (in PostgreSQL, with its ``function``) that deletes a record's
    rows of ``table`` when the record's fields change: they were computed from text that is gone."""
    return PerDialect(
        sqlite=(f"""CREATE TRIGGER IF NOT EXISTS {trigger} AFTER UPDATE OF fields ON records
        WHEN old.fields IS NOT new.fields
    BEGIN
        DELETE FROM {table} WHERE user_id = old.user_id AND record_id = old.record_id;
    END""",),
        postgres=(f"""CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $body$
    BEGIN
        EXECUTE format('DELETE FROM %I.{table} WHERE user_id = $1 AND record_id = $2', TG_TABLE_SCHEMA)
            USING OLD.user_id, OLD.record_id;
        RETURN NULL;
    END
    $body$""", f"""CREATE TRIGGER {trigger} AFTER UPDATE OF fields ON records
        FOR EACH ROW WHEN (OLD.fields IS DISTINCT FROM NEW.fields)
        EXECUTE FUNCTION {function}()"""))


# A user's adapters and the shared ones differ only in their owner columns.
_ADAPTER_COLUMNS = """task {text_key} NOT NULL,
        kind {text_key} NOT NULL,
        prompt {text_key} NOT NULL DEFAULT 'none',
        config TEXT NOT NULL,
        base_model TEXT NOT NULL,
        metadata TEXT NOT NULL,
        digest TEXT NOT NULL,
        weights {blob} NOT NULL,
        created_at TEXT NOT NULL"""

_ADAPTER_TABLES: tuple[Step, ...] = (
    f"""CREATE TABLE IF NOT EXISTS adapters (
        user_id {{text_key}} NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
        {_ADAPTER_COLUMNS},
        PRIMARY KEY (user_id, task, kind, prompt)
    )""",
    f"""CREATE TABLE IF NOT EXISTS shared_adapters (
        scope {{text_key}} NOT NULL CHECK (scope IN ('persona', 'global')),
        owner {{text_key}} NOT NULL,
        {_ADAPTER_COLUMNS},
        PRIMARY KEY (scope, owner, task, kind, prompt)
    )""",
    """CREATE TABLE IF NOT EXISTS adapter_contributors (
        scope {text_key} NOT NULL,
        owner {text_key} NOT NULL,
        task {text_key} NOT NULL,
        kind {text_key} NOT NULL,
        prompt {text_key} NOT NULL DEFAULT 'none',
        user_id {text_key} NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
        PRIMARY KEY (scope, owner, task, kind, prompt, user_id),
        FOREIGN KEY (scope, owner, task, kind, prompt) REFERENCES shared_adapters(scope, owner, task, kind, prompt)
            ON DELETE CASCADE
    )""",
    "CREATE INDEX IF NOT EXISTS adapter_contributors_by_user ON adapter_contributors (user_id)",
    # A pooled adapter learned from the deleted user's history: it goes with them.
    PerDialect(
        sqlite=("""CREATE TRIGGER IF NOT EXISTS adapter_contributor_deleted AFTER DELETE ON adapter_contributors
    BEGIN
        DELETE FROM shared_adapters WHERE scope = old.scope AND owner = old.owner
            AND task = old.task AND kind = old.kind AND prompt = old.prompt;
    END""",),
        postgres=("""CREATE FUNCTION tailor_adapter_contributor_deleted() RETURNS trigger LANGUAGE plpgsql AS $body$
    BEGIN
        EXECUTE format('DELETE FROM %I.shared_adapters WHERE scope = $1 AND owner = $2 AND task = $3 '
                       'AND kind = $4 AND prompt = $5', TG_TABLE_SCHEMA)
            USING OLD.scope, OLD.owner, OLD.task, OLD.kind, OLD.prompt;
        RETURN NULL;
    END
    $body$""", """CREATE TRIGGER adapter_contributor_deleted AFTER DELETE ON adapter_contributors
        FOR EACH ROW EXECUTE FUNCTION tailor_adapter_contributor_deleted()""")),
)


def add_adapter_prompt_column(connection: sqlite3.Connection) -> None:
    """Rebuild SQLite adapter tables made before the ``prompt`` column (it is part of each
    primary key, which SQLite cannot alter in place); their adapters were trained on ``none``."""
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
    run_sqlite_steps(connection, _in_dialect(_ADAPTER_TABLES, "sqlite"))
    for table in reversed(tables):  # owners before the rows that reference them
        if table in old:
            columns = [row[1] for row in connection.execute("SELECT * FROM pragma_table_info(?)",
                                                            (f"{table}_before_prompt",))]
            names = ", ".join(columns)
            connection.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {table}_before_prompt")
    for table in old:  # references first, so dropping cascades to nothing still needed
        connection.execute(f"DROP TABLE {table}_before_prompt")


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, (
        """CREATE TABLE IF NOT EXISTS users (
        user_id {text_key} PRIMARY KEY NOT NULL,
        created_at TEXT NOT NULL
    )""",
        """CREATE TABLE IF NOT EXISTS attributes (
        user_id {text_key} NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
        key {text_key} NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (user_id, key)
    )""",
        """CREATE TABLE IF NOT EXISTS records (
        user_id {text_key} NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
        record_id {text_key} NOT NULL,
        position {bigint} NOT NULL,
        fields TEXT NOT NULL,
        date TEXT,
        PRIMARY KEY (user_id, record_id)
    )""",
        "CREATE INDEX IF NOT EXISTS records_by_position ON records (user_id, position)",
    )),
    Migration(2, (
        "ALTER TABLE users ADD COLUMN profile_version {bigint} NOT NULL DEFAULT 0",
        # Users migrated with records start at 1, so that 0 always means "never held a record".
        "UPDATE users SET profile_version = 1 WHERE EXISTS (SELECT 1 FROM records WHERE records.user_id = users.user_id)",
        # The key leads with (user_id, record_id), the foreign key's columns, so the cascade from
        # a deleted record finds its vectors through the primary key.
        """CREATE TABLE IF NOT EXISTS record_embeddings (
        user_id {text_key} NOT NULL,
        record_id {text_key} NOT NULL,
        model {text_key} NOT NULL,
        dim INTEGER NOT NULL,
        vector {blob} NOT NULL,
        PRIMARY KEY (user_id, record_id, model),
        FOREIGN KEY (user_id, record_id) REFERENCES records(user_id, record_id) ON DELETE CASCADE
    )""",
        """CREATE TABLE IF NOT EXISTS artifacts (
        user_id {text_key} NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
        kind {text_key} NOT NULL,
        key {text_key} NOT NULL,
        value TEXT NOT NULL,
        profile_version {bigint} NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (user_id, kind, key)
    )""",
        """CREATE TABLE IF NOT EXISTS personas (
        persona_id {text_key} PRIMARY KEY NOT NULL,
        position INTEGER NOT NULL,
        description TEXT NOT NULL,
        centroid {blob} NOT NULL,
        size INTEGER NOT NULL,
        metadata TEXT NOT NULL
    )""",
        """CREATE TABLE IF NOT EXISTS persona_members (
        user_id {text_key} PRIMARY KEY NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
        persona_id {text_key} NOT NULL REFERENCES personas(persona_id) ON DELETE CASCADE
    )""",
        "CREATE INDEX IF NOT EXISTS persona_members_by_persona ON persona_members (persona_id)",
        _delete_when_fields_change("record_embeddings", "record_fields_changed", "tailor_record_fields_changed"),
    )),
    Migration(3, (
        """CREATE TABLE IF NOT EXISTS api_keys (
        key_id {text_key} PRIMARY KEY NOT NULL,
        tenant {text_key},
        admin INTEGER NOT NULL,
        salt {blob} NOT NULL,
        digest {blob} NOT NULL,
        created_at TEXT NOT NULL,
        revoked_at TEXT
    )""",
        """CREATE TABLE IF NOT EXISTS conversation_messages (
        message_id {text_key} PRIMARY KEY NOT NULL,
        user_id {text_key} NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
        completion_id TEXT NOT NULL,
        role TEXT NOT NULL,
        content TEXT NOT NULL,
        created_at TEXT NOT NULL,
        extraction TEXT NOT NULL{insertion_order}
    )""",
        PerDialect(
            sqlite=(
                "CREATE INDEX IF NOT EXISTS conversation_messages_by_user ON conversation_messages (user_id)",
                ("CREATE INDEX IF NOT EXISTS conversation_messages_pending ON conversation_messages (extraction) "
                 "WHERE extraction = 'pending'")),
            postgres=(
                "CREATE INDEX conversation_messages_by_user ON conversation_messages (user_id, seq)",
                "CREATE INDEX conversation_messages_pending ON conversation_messages (seq) WHERE extraction = 'pending'")),
        """CREATE TABLE IF NOT EXISTS memories (
        memory_id {text_key} PRIMARY KEY NOT NULL,
        user_id {text_key} NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
        key TEXT,
        operator TEXT NOT NULL,
        value TEXT NOT NULL,
        text TEXT NOT NULL,
        normalized TEXT NOT NULL,
        terms TEXT NOT NULL,
        confidence {double} NOT NULL,
        source_message_id TEXT,
        created_at TEXT NOT NULL,
        superseded_by TEXT,
        superseded_at TEXT,
        embedder TEXT,
        embedding {blob}{insertion_order}
    )""",
        "CREATE INDEX IF NOT EXISTS memories_by_user ON memories (user_id, superseded_by)",
        """CREATE TABLE IF NOT EXISTS memory_history (
        event_id {serial_key},
        memory_id {text_key} NOT NULL REFERENCES memories(memory_id) ON DELETE CASCADE,
        user_id {text_key} NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
        event TEXT NOT NULL,
        related_memory_id TEXT,
        source_message_id TEXT,
        at TEXT NOT NULL
    )""",
        "CREATE INDEX IF NOT EXISTS memory_history_by_memory ON memory_history (user_id, memory_id)",
        "CREATE INDEX IF NOT EXISTS memory_history_by_related ON memory_history (user_id, related_memory_id)",
        """CREATE TABLE IF NOT EXISTS serve_record_terms (
        user_id {text_key} NOT NULL,
        record_id {text_key} NOT NULL,
        terms TEXT NOT NULL,
        PRIMARY KEY (user_id, record_id),
        FOREIGN KEY (user_id, record_id) REFERENCES records(user_id, record_id) ON DELETE CASCADE
    ){without_rowid}""",
        """CREATE TABLE IF NOT EXISTS serve_record_index (
        user_id {text_key} PRIMARY KEY NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
        profile_version {bigint} NOT NULL,
        build_id TEXT NOT NULL,
        record_ids TEXT NOT NULL,
        vocabulary TEXT NOT NULL,
        arrays {blob} NOT NULL
    )""",
        _delete_when_fields_change("serve_record_terms", "serve_record_terms_stale", "tailor_record_terms_stale"),
        """CREATE TABLE IF NOT EXISTS serve_record_matrix (
        user_id {text_key} NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
        model {text_key} NOT NULL,
        profile_version {bigint} NOT NULL,
        record_ids TEXT NOT NULL,
        dim INTEGER NOT NULL,
        matrix {blob} NOT NULL,
        PRIMARY KEY (user_id, model)
    )""",
        # No PostgreSQL schema held adapter tables before this version.
        PerDialect(sqlite=(add_adapter_prompt_column,), postgres=()),
        *_ADAPTER_TABLES,
    )),
    Migration(4, (
        "ALTER TABLE conversation_messages ADD COLUMN claimed_until TEXT",
    )),
    Migration(5, (
        """CREATE TABLE IF NOT EXISTS served_replies (
        completion_id {text_key} PRIMARY KEY NOT NULL,
        user_id {text_key} NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
        messages TEXT NOT NULL,
        reply TEXT NOT NULL,
        adapter TEXT,
        created_at TEXT NOT NULL
    )""",
        "CREATE INDEX IF NOT EXISTS served_replies_by_user ON served_replies (user_id, created_at)",
        """CREATE TABLE IF NOT EXISTS feedback (
        feedback_id {text_key} PRIMARY KEY NOT NULL,
        user_id {text_key} NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
        kind {text_key} NOT NULL CHECK (kind IN ('pair', 'rating', 'edit')),
        completion_id TEXT,
        messages TEXT NOT NULL,
        chosen TEXT,
        rejected TEXT,
        rating INTEGER,
        source TEXT NOT NULL,
        created_at {text_key} NOT NULL
    )""",
        "CREATE INDEX IF NOT EXISTS feedback_by_user ON feedback (user_id, created_at)",
    )),
    # Counters of a user's memory changes: a server checks one row per search, not every memory.
    Migration(6, (
        "ALTER TABLE users ADD COLUMN memory_version {bigint} NOT NULL DEFAULT 0",
        "ALTER TABLE users ADD COLUMN memory_removals {bigint} NOT NULL DEFAULT 0",
    )),
)

SCHEMA_VERSION = MIGRATIONS[-1].version


def migrations_after(version: int) -> tuple[Migration, ...]:
    """The migrations that bring a database at ``version`` (0: empty) to :data:`SCHEMA_VERSION`, in order."""
    return tuple(migration for migration in MIGRATIONS if migration.version > version)
