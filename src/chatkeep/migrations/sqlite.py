"""The SQLite schema, as the migrations that build it.

Frozen: a released migration is never edited; a change is a new migration appended to
:data:`MIGRATIONS`. Every column says why it exists.
"""

from __future__ import annotations

from sqlalchemy import Connection

from chatkeep.migrations import Migration

_M0001 = [
    """
    CREATE TABLE users (
        id TEXT PRIMARY KEY NOT NULL,        -- a name chosen by people (ids.check_name)
        display_name TEXT,                   -- how to show the user, if set
        created_at TEXT NOT NULL             -- ISO-8601 UTC
    )
    """,
    """
    CREATE TABLE runtimes (
        user_id TEXT NOT NULL REFERENCES users(id),
        id TEXT NOT NULL,                    -- unique per user, e.g. synth-001
        name TEXT NOT NULL,                  -- display name
        origin TEXT NOT NULL,                -- native | imported
        config TEXT NOT NULL,                -- JSON: model, instructions, tools, memories
        primary_conversation_id TEXT,        -- the home conversation (checked by doctor)
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (user_id, id)
    )
    """,
    """
    CREATE TABLE conversations (
        id TEXT PRIMARY KEY NOT NULL,        -- minted c_<ulid>
        user_id TEXT NOT NULL,               -- owner; every query filters on it
        runtime_id TEXT NOT NULL,
        title TEXT NOT NULL,
        origin TEXT NOT NULL,                -- native | imported
        state TEXT NOT NULL,                 -- active | archived | trashed
        model TEXT,
        message_count INTEGER NOT NULL,      -- also the next message's seq
        total_tokens INTEGER NOT NULL,       -- sum of messages.tokens (doctor checks)
        total_cost REAL NOT NULL,            -- sum of messages.cost (doctor checks)
        active_leaf_id TEXT,                 -- tip of the active branch
        forked_from_conversation_id TEXT,    -- provenance of a fork ...
        forked_from_message_id TEXT,         -- ... and its branch point
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,            -- last activity: sidebar order
        trashed_at TEXT,                     -- when it went to the trash (retention)
        FOREIGN KEY (user_id, runtime_id) REFERENCES runtimes(user_id, id)
    )
    """,
    # The sidebar: a runtime's live conversations by last activity, straight off an index.
    "CREATE INDEX conversations_sidebar ON conversations (user_id, runtime_id, state, updated_at)",
    # No second (user_id, state, updated_at) index: every append rewrites updated_at, and
    # each index on it is one more page in the commit's fsync; cross-runtime listings
    # are rare enough to sort.
    """
    CREATE TABLE conversation_tags (
        conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        user_id TEXT NOT NULL,
        tag TEXT NOT NULL,
        PRIMARY KEY (conversation_id, tag)
    )
    """,
    "CREATE INDEX conversation_tags_by_tag ON conversation_tags (user_id, tag)",
    """
    CREATE TABLE pins (
        user_id TEXT NOT NULL,
        runtime_id TEXT NOT NULL,            -- a pin belongs to one runtime's sidebar
        conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        pinned_at TEXT NOT NULL,
        PRIMARY KEY (user_id, runtime_id, conversation_id)
    )
    """,
    """
    CREATE TABLE messages (
        pk INTEGER PRIMARY KEY,              -- stable rowid for external-content FTS
        id TEXT NOT NULL UNIQUE,             -- minted m_<ulid>
        user_id TEXT NOT NULL,               -- owner, denormalised so no join is needed to scope
        conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        parent_id TEXT REFERENCES messages(id),  -- the tree: NULL for a root
        seq INTEGER NOT NULL,                -- order of arrival within the conversation
        role TEXT NOT NULL,                  -- system | user | assistant | tool
        author TEXT,
        content TEXT NOT NULL,               -- canonical JSON of the ordered parts
        content_sha256 TEXT NOT NULL,        -- sha256 of content: doctor re-derives it
        created_at TEXT,                     -- NULL when an import did not say
        model TEXT,
        tokens INTEGER,
        cost REAL,
        metadata TEXT NOT NULL,              -- JSON object
        hidden INTEGER NOT NULL,             -- 1 for messages a UI should not show by default
        UNIQUE (conversation_id, seq)
    )
    """,
    "CREATE INDEX messages_by_parent ON messages (parent_id)",
    """
    CREATE TABLE attachments (
        id TEXT PRIMARY KEY NOT NULL,        -- minted a_<ulid>
        user_id TEXT NOT NULL,
        message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        conversation_id TEXT NOT NULL,
        sha256 TEXT NOT NULL,                -- the blob: blobs/<aa>/<sha256>
        size INTEGER NOT NULL,
        mime_type TEXT NOT NULL,
        name TEXT NOT NULL,                  -- original file name, for display only
        created_at TEXT NOT NULL
    )
    """,
    "CREATE INDEX attachments_by_sha256 ON attachments (sha256)",
    "CREATE INDEX attachments_by_message ON attachments (message_id)",
    "CREATE INDEX attachments_by_conversation ON attachments (conversation_id)",
    """
    CREATE TABLE settings (
        user_id TEXT NOT NULL REFERENCES users(id),
        key TEXT NOT NULL,                   -- namespace.key
        value TEXT NOT NULL,                 -- JSON
        updated_at TEXT NOT NULL,
        PRIMARY KEY (user_id, key)
    )
    """,
]


def m0001_initial(conn: Connection) -> None:
    for statement in _M0001:
        conn.exec_driver_sql(statement)


_M0002 = [
    """
    CREATE TABLE imports (
        id TEXT PRIMARY KEY NOT NULL,        -- minted i_<ulid>
        user_id TEXT NOT NULL REFERENCES users(id),
        platform TEXT NOT NULL,              -- chatgpt | claude | gemini | vvault
        runtime_id TEXT NOT NULL,            -- the imported runtime it filled
        file_name TEXT NOT NULL,             -- the export as the user named it
        file_size INTEGER NOT NULL,
        file_sha256 TEXT NOT NULL,           -- finds a repeated import of the same file
        stored_path TEXT,                    -- the kept original, relative to the vault root
        counts TEXT NOT NULL,                -- JSON: added/updated/unchanged, messages, files
        warnings TEXT NOT NULL,              -- JSON list (capped; counts.warnings is exact)
        metadata TEXT NOT NULL,              -- JSON: export-level data (instructions, projects)
        started_at TEXT NOT NULL,
        finished_at TEXT NOT NULL
    )
    """,
    "CREATE INDEX imports_by_file ON imports (user_id, file_sha256)",
    # Imported runtimes remember where they came from, so a later export of the same
    # account fills the same runtime.
    "ALTER TABLE runtimes ADD COLUMN source_platform TEXT",
    "ALTER TABLE runtimes ADD COLUMN account TEXT",
    # Imported conversations and messages carry the provider's ids: a re-import matches
    # them instead of duplicating.
    "ALTER TABLE conversations ADD COLUMN source_platform TEXT",
    "ALTER TABLE conversations ADD COLUMN source_id TEXT",
    "ALTER TABLE conversations ADD COLUMN import_id TEXT",
    "ALTER TABLE conversations ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}'",
    "ALTER TABLE messages ADD COLUMN source_id TEXT",
    """
    CREATE UNIQUE INDEX conversations_by_source
        ON conversations (user_id, runtime_id, source_id) WHERE source_id IS NOT NULL
    """,
    """
    CREATE UNIQUE INDEX messages_by_source
        ON messages (conversation_id, source_id) WHERE source_id IS NOT NULL
    """,
]


def m0002_imports(conn: Connection) -> None:
    for statement in _M0002:
        conn.exec_driver_sql(statement)


# What full-text search reads of a message: the text of every part that has text
# (text, code, reasoning, tool output, transcripts), one part per line. Pure SQL (JSON1),
# so the triggers work for any program that opens the database.
_M0003 = [
    """
    CREATE VIEW message_search (pk, body) AS
        SELECT pk, (SELECT group_concat(json_extract(p.value, '$.text'), char(10))
            FROM json_each(messages.content) AS p)
        FROM messages
    """,
    # External content: the index stores no second copy of the text; snippets read it
    # back through the view. remove_diacritics makes "cafe" find "café".
    """
    CREATE VIRTUAL TABLE messages_fts USING fts5(
        body, content='message_search', content_rowid='pk',
        tokenize='unicode61 remove_diacritics 2'
    )
    """,
    # Kept in step by triggers, inside the transaction of every insert and delete.
    # Messages are never updated, so there is no update trigger.
    """
    CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts (rowid, body) VALUES (
            new.pk,
            (SELECT group_concat(json_extract(p.value, '$.text'), char(10))
             FROM json_each(new.content) AS p)
        );
    END
    """,
    """
    CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, body)
            VALUES (
                'delete',
                old.pk,
                (SELECT group_concat(json_extract(p.value, '$.text'), char(10))
                 FROM json_each(old.content) AS p)
            );
    END
    """,
    """
    CREATE VIRTUAL TABLE conversations_fts USING fts5(
        title, conversation_id UNINDEXED, tokenize='unicode61 remove_diacritics 2'
    )
    """,
    """
    CREATE TRIGGER conversations_fts_insert AFTER INSERT ON conversations BEGIN
        INSERT INTO conversations_fts (title, conversation_id) VALUES (new.title, new.id);
    END
    """,
    """
    CREATE TRIGGER conversations_fts_title AFTER UPDATE OF title ON conversations BEGIN
        DELETE FROM conversations_fts WHERE conversation_id = old.id;
        INSERT INTO conversations_fts (title, conversation_id) VALUES (new.title, new.id);
    END
    """,
    """
    CREATE TRIGGER conversations_fts_delete AFTER DELETE ON conversations BEGIN
        DELETE FROM conversations_fts WHERE conversation_id = old.id;
    END
    """,
    # What existed before this migration.
    "INSERT INTO messages_fts (rowid, body) SELECT pk, body FROM message_search",
    "INSERT INTO conversations_fts (title, conversation_id) SELECT title, id FROM conversations",
    "CREATE INDEX messages_by_conversation_time ON messages (conversation_id, created_at)",
]


def m0003_full_text_search(conn: Connection) -> None:
    for statement in _M0003:
        conn.exec_driver_sql(statement)


_M0004 = [
    """
    CREATE TABLE message_vectors (
        message_pk INTEGER NOT NULL REFERENCES messages(pk) ON DELETE CASCADE,
        chunk INTEGER NOT NULL,              -- which piece of a long message (0-based)
        embedder TEXT NOT NULL,              -- vectors of different embedders never mix
        user_id TEXT NOT NULL,               -- owner, so a search reads only its user's
        vector BLOB NOT NULL,                -- float32, unit length, little-endian
        PRIMARY KEY (message_pk, chunk, embedder)
    )
    """,
    "CREATE INDEX message_vectors_by_user ON message_vectors (embedder, user_id)",
]


def m0004_message_vectors(conn: Connection) -> None:
    for statement in _M0004:
        conn.exec_driver_sql(statement)


_M0005 = [
    """
    CREATE TABLE api_tokens (
        id TEXT PRIMARY KEY NOT NULL,        -- minted t_<ulid>; shown, never secret
        user_id TEXT NOT NULL REFERENCES users(id),
        name TEXT NOT NULL,                  -- what the token is for, as its owner said
        token_sha256 TEXT NOT NULL UNIQUE,   -- the secret itself is never stored
        created_at TEXT NOT NULL,
        revoked_at TEXT
    )
    """,
    "CREATE INDEX api_tokens_by_user ON api_tokens (user_id)",
]


def m0005_api_tokens(conn: Connection) -> None:
    for statement in _M0005:
        conn.exec_driver_sql(statement)


# One row per (user, embedder), bumped by triggers in the same transaction as every
# change of the vectors (cascaded deletes included): the in-memory copy a semantic
# search keeps is checked with one lookup instead of counting the user's vectors.
_BUMP = """
    INSERT INTO vector_versions (user_id, embedder, version)
        VALUES ({row}.user_id, {row}.embedder, 1)
        ON CONFLICT (user_id, embedder) DO UPDATE SET version = version + 1;
"""
_M0006 = [
    """
    CREATE TABLE vector_versions (
        user_id TEXT NOT NULL,
        embedder TEXT NOT NULL,
        version INTEGER NOT NULL,            -- grows on every insert or delete of a vector
        PRIMARY KEY (user_id, embedder)
    )
    """,
    "CREATE TRIGGER vector_versions_insert AFTER INSERT ON message_vectors BEGIN"
    + _BUMP.format(row="new")
    + "END",
    "CREATE TRIGGER vector_versions_delete AFTER DELETE ON message_vectors BEGIN"
    + _BUMP.format(row="old")
    + "END",
    """
    INSERT INTO vector_versions (user_id, embedder, version)
        SELECT user_id, embedder, count(*) FROM message_vectors GROUP BY user_id, embedder
    """,
]


def m0006_vector_versions(conn: Connection) -> None:
    for statement in _M0006:
        conn.exec_driver_sql(statement)


_M0007 = [
    """
    CREATE TABLE snapshots (
        id TEXT PRIMARY KEY NOT NULL,        -- minted s_<ulid>
        user_id TEXT NOT NULL REFERENCES users(id),
        name TEXT NOT NULL,
        starred INTEGER NOT NULL,            -- 1: kept whatever the retention policy says
        state TEXT NOT NULL,                 -- JSON: the application's saved state
        runtime_id TEXT,                     -- what it is a snapshot of, if anything
        conversation_id TEXT,
        created_at TEXT NOT NULL
    )
    """,
    "CREATE INDEX snapshots_by_user ON snapshots (user_id, created_at)",
    """
    CREATE TABLE usage_events (
        id TEXT PRIMARY KEY NOT NULL,        -- minted e_<ulid>
        user_id TEXT NOT NULL REFERENCES users(id),
        model TEXT NOT NULL,
        runtime_id TEXT,
        conversation_id TEXT,
        tokens_in INTEGER NOT NULL,
        tokens_out INTEGER NOT NULL,
        cost REAL NOT NULL,
        duration_ms INTEGER NOT NULL,
        created_at TEXT NOT NULL
    )
    """,
    "CREATE INDEX usage_events_by_user ON usage_events (user_id, created_at)",
    """
    CREATE TABLE recording_events (
        pk INTEGER PRIMARY KEY,              -- the order of recording
        user_id TEXT NOT NULL,
        conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        at TEXT NOT NULL,                    -- when it happened (ISO-8601 UTC)
        kind TEXT NOT NULL,                  -- e.g. typing, message, tool_call, stream_chunk
        data TEXT NOT NULL                   -- JSON
    )
    """,
    "CREATE INDEX recording_events_by_conversation ON recording_events (conversation_id, pk)",
    """
    CREATE TABLE drafts (
        user_id TEXT NOT NULL,
        conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        text TEXT NOT NULL,                  -- the unsent text, as last saved
        updated_at TEXT NOT NULL,
        PRIMARY KEY (user_id, conversation_id)
    )
    """,
]


def m0007_snapshots_usage_recordings_drafts(conn: Connection) -> None:
    for statement in _M0007:
        conn.exec_driver_sql(statement)


def m0008_bounded_search_text(_conn: Connection) -> None:
    """Nothing to do on SQLite: FTS5 indexes text of any length. On PostgreSQL this
    migration bounds the text a tsvector is made of (see migrations/postgres.py); the
    name is kept in both lists so that a schema version means the same everywhere."""


# Encryption at rest (chatkeep.crypto, chatkeep.encryption): one key per user, wrapped.
# Deleting the user deletes it with them (the cascade runs in delete_user's transaction).
_M0009 = [
    """
    CREATE TABLE user_keys (
        user_id TEXT PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        key_id TEXT NOT NULL,                -- hex id of the data key, in every envelope
        method TEXT NOT NULL,                -- passphrase | key_file | destroyed
        kdf TEXT NOT NULL,                   -- JSON: scrypt's n, r, p ({} for a key file)
        salt TEXT,                           -- base64 scrypt salt (passphrase only)
        wrapped_key TEXT,                    -- base64 AES-GCM of the data key; NULL once destroyed
        created_at TEXT NOT NULL,
        changed_at TEXT NOT NULL,            -- last re-wrap (a new passphrase or key file)
        destroyed_at TEXT                    -- when it was crypto-shredded
    )
    """,
]


def m0009_user_keys(conn: Connection) -> None:
    for statement in _M0009:
        conn.exec_driver_sql(statement)


# CJK letters as words of their own (chatkeep.search.spaced_cjk, registered on every
# connection as chatkeep_index_text): the index reads message text and titles through
# it, so a word is found inside a Chinese or Japanese sentence. The view and triggers
# are made again around it, and what the index holds of text with such letters is
# replaced: deleted as it was indexed (the old expression), indexed as it is now. A
# program that writes messages or titles must register the function
# (chatkeep.backends.sqlite.register_functions); one that does not gets an error and
# changes nothing, so it cannot leave the index out of step.
_M0010 = [
    "DROP TRIGGER messages_fts_insert",
    "DROP TRIGGER messages_fts_delete",
    "DROP TRIGGER conversations_fts_insert",
    "DROP TRIGGER conversations_fts_title",
    "DROP VIEW message_search",
    """
    CREATE VIEW message_search (pk, body) AS
        SELECT pk, chatkeep_index_text((SELECT group_concat(json_extract(p.value, '$.text'),
            char(10)) FROM json_each(messages.content) AS p))
        FROM messages
    """,
    """
    CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts (rowid, body) VALUES (
            new.pk,
            chatkeep_index_text((SELECT group_concat(json_extract(p.value, '$.text'), char(10))
             FROM json_each(new.content) AS p))
        );
    END
    """,
    """
    CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, body)
            VALUES (
                'delete',
                old.pk,
                chatkeep_index_text((SELECT group_concat(json_extract(p.value, '$.text'),
                 char(10)) FROM json_each(old.content) AS p))
            );
    END
    """,
    """
    CREATE TRIGGER conversations_fts_insert AFTER INSERT ON conversations BEGIN
        INSERT INTO conversations_fts (title, conversation_id)
            VALUES (chatkeep_index_text(new.title), new.id);
    END
    """,
    """
    CREATE TRIGGER conversations_fts_title AFTER UPDATE OF title ON conversations BEGIN
        DELETE FROM conversations_fts WHERE conversation_id = old.id;
        INSERT INTO conversations_fts (title, conversation_id)
            VALUES (chatkeep_index_text(new.title), new.id);
    END
    """,
    # The body as m0003 indexed it.
    """
    CREATE TEMP TABLE m0010_spaced AS
        SELECT pk, body FROM (
            SELECT pk, (SELECT group_concat(json_extract(p.value, '$.text'), char(10))
                        FROM json_each(messages.content) AS p) AS body
            FROM messages
        )
        WHERE body <> chatkeep_index_text(body)
    """,
    """
    INSERT INTO messages_fts (messages_fts, rowid, body)
        SELECT 'delete', pk, body FROM temp.m0010_spaced
    """,
    """
    INSERT INTO messages_fts (rowid, body)
        SELECT pk, chatkeep_index_text(body) FROM temp.m0010_spaced
    """,
    "DROP TABLE temp.m0010_spaced",
    """
    DELETE FROM conversations_fts WHERE conversation_id IN
        (SELECT id FROM conversations WHERE title <> chatkeep_index_text(title))
    """,
    """
    INSERT INTO conversations_fts (title, conversation_id)
        SELECT chatkeep_index_text(title), id FROM conversations
        WHERE title <> chatkeep_index_text(title)
    """,
]


def m0010_cjk_letters_as_words(conn: Connection) -> None:
    for statement in _M0010:
        conn.exec_driver_sql(statement)


MIGRATIONS: list[Migration] = [
    Migration("m0001_initial", m0001_initial),
    Migration("m0002_imports", m0002_imports),
    Migration("m0003_full_text_search", m0003_full_text_search),
    Migration("m0004_message_vectors", m0004_message_vectors),
    Migration("m0005_api_tokens", m0005_api_tokens),
    Migration("m0006_vector_versions", m0006_vector_versions),
    Migration("m0007_snapshots_usage_recordings_drafts", m0007_snapshots_usage_recordings_drafts),
    Migration("m0008_bounded_search_text", m0008_bounded_search_text),
    Migration("m0009_user_keys", m0009_user_keys),
    Migration("m0010_cjk_letters_as_words", m0010_cjk_letters_as_words),
]
