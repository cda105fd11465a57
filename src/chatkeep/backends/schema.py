"""The current schema as SQLAlchemy Core tables, for building queries.

The migrations create these tables; ``tests/test_migrations.py`` checks that the two
agree column for column.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Integer, LargeBinary, MetaData, String, Table, Text

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", String, primary_key=True),
    Column("display_name", Text),
    Column("created_at", String, nullable=False),
)

runtimes = Table(
    "runtimes",
    metadata,
    Column("user_id", String, primary_key=True),
    Column("id", String, primary_key=True),
    Column("name", Text, nullable=False),
    Column("origin", String, nullable=False),
    Column("config", Text, nullable=False),
    Column("primary_conversation_id", String),
    Column("created_at", String, nullable=False),
    Column("updated_at", String, nullable=False),
    Column("source_platform", String),
    Column("account", Text),
)

conversations = Table(
    "conversations",
    metadata,
    Column("id", String, primary_key=True),
    Column("user_id", String, nullable=False),
    Column("runtime_id", String, nullable=False),
    Column("title", Text, nullable=False),
    Column("origin", String, nullable=False),
    Column("state", String, nullable=False),
    Column("model", Text),
    Column("message_count", Integer, nullable=False),
    Column("total_tokens", Integer, nullable=False),
    Column("total_cost", Float, nullable=False),
    Column("active_leaf_id", String),
    Column("forked_from_conversation_id", String),
    Column("forked_from_message_id", String),
    Column("created_at", String, nullable=False),
    Column("updated_at", String, nullable=False),
    Column("trashed_at", String),
    Column("source_platform", String),
    Column("source_id", Text),
    Column("import_id", String),
    Column("metadata", Text, nullable=False, server_default="{}"),
)

conversation_tags = Table(
    "conversation_tags",
    metadata,
    Column("conversation_id", String, primary_key=True),
    Column("user_id", String, nullable=False),
    Column("tag", Text, primary_key=True),
)

pins = Table(
    "pins",
    metadata,
    Column("user_id", String, primary_key=True),
    Column("runtime_id", String, primary_key=True),
    Column("conversation_id", String, primary_key=True),
    Column("pinned_at", String, nullable=False),
)

messages = Table(
    "messages",
    metadata,
    Column("pk", Integer, primary_key=True),
    Column("id", String, nullable=False, unique=True),
    Column("user_id", String, nullable=False),
    Column("conversation_id", String, nullable=False),
    Column("parent_id", String),
    Column("seq", Integer, nullable=False),
    Column("role", String, nullable=False),
    Column("author", Text),
    Column("content", Text, nullable=False),
    Column("content_sha256", String, nullable=False),
    Column("created_at", String),
    Column("model", Text),
    Column("tokens", Integer),
    Column("cost", Float),
    Column("metadata", Text, nullable=False),
    Column("hidden", Integer, nullable=False),
    Column("source_id", Text),
)

attachments = Table(
    "attachments",
    metadata,
    Column("id", String, primary_key=True),
    Column("user_id", String, nullable=False),
    Column("message_id", String, nullable=False),
    Column("conversation_id", String, nullable=False),
    Column("sha256", String, nullable=False),
    Column("size", Integer, nullable=False),
    Column("mime_type", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("created_at", String, nullable=False),
)

imports = Table(
    "imports",
    metadata,
    Column("id", String, primary_key=True),
    Column("user_id", String, nullable=False),
    Column("platform", String, nullable=False),
    Column("runtime_id", String, nullable=False),
    Column("file_name", Text, nullable=False),
    Column("file_size", Integer, nullable=False),
    Column("file_sha256", String, nullable=False),
    Column("stored_path", Text),
    Column("counts", Text, nullable=False),
    Column("warnings", Text, nullable=False),
    Column("metadata", Text, nullable=False),
    Column("started_at", String, nullable=False),
    Column("finished_at", String, nullable=False),
)

message_vectors = Table(
    "message_vectors",
    metadata,
    Column("message_pk", Integer, primary_key=True),
    Column("chunk", Integer, primary_key=True),
    Column("embedder", String, primary_key=True),
    Column("user_id", String, nullable=False),
    Column("vector", LargeBinary, nullable=False),
)

settings = Table(
    "settings",
    metadata,
    Column("user_id", String, primary_key=True),
    Column("key", String, primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", String, nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String, primary_key=True),
    Column("user_id", String, nullable=False),
    Column("name", Text, nullable=False),
    Column("token_sha256", String, nullable=False, unique=True),
    Column("created_at", String, nullable=False),
    Column("revoked_at", String),
)

# Derived: bumped by triggers whenever a user's vectors of an embedder change, so a
# search can tell in one lookup whether its in-memory copy is current.
vector_versions = Table(
    "vector_versions",
    metadata,
    Column("user_id", String, primary_key=True),
    Column("embedder", String, primary_key=True),
    Column("version", Integer, nullable=False),
)

snapshots = Table(
    "snapshots",
    metadata,
    Column("id", String, primary_key=True),
    Column("user_id", String, nullable=False),
    Column("name", Text, nullable=False),
    Column("starred", Integer, nullable=False),
    Column("state", Text, nullable=False),
    Column("runtime_id", String),
    Column("conversation_id", String),
    Column("created_at", String, nullable=False),
)

usage_events = Table(
    "usage_events",
    metadata,
    Column("id", String, primary_key=True),
    Column("user_id", String, nullable=False),
    Column("model", Text, nullable=False),
    Column("runtime_id", String),
    Column("conversation_id", String),
    Column("tokens_in", Integer, nullable=False),
    Column("tokens_out", Integer, nullable=False),
    Column("cost", Float, nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("created_at", String, nullable=False),
)

recording_events = Table(
    "recording_events",
    metadata,
    Column("pk", Integer, primary_key=True),
    Column("user_id", String, nullable=False),
    Column("conversation_id", String, nullable=False),
    Column("at", String, nullable=False),
    Column("kind", Text, nullable=False),
    Column("data", Text, nullable=False),
)

drafts = Table(
    "drafts",
    metadata,
    Column("user_id", String, primary_key=True),
    Column("conversation_id", String, primary_key=True),
    Column("text", Text, nullable=False),
    Column("updated_at", String, nullable=False),
)

# A user's encryption key, wrapped (see chatkeep.crypto); the data key itself is never
# stored. Text columns (base64, JSON) so that exports and dumps carry it as it is.
user_keys = Table(
    "user_keys",
    metadata,
    Column("user_id", String, primary_key=True),
    Column("key_id", String, nullable=False),
    Column("method", String, nullable=False),
    Column("kdf", Text, nullable=False),
    Column("salt", Text),
    Column("wrapped_key", Text),
    Column("created_at", String, nullable=False),
    Column("changed_at", String, nullable=False),
    Column("destroyed_at", String),
)

#: Every table holding vault data, in an order that satisfies their references: what
#: ``chatkeep migrate`` copies, and the order of a canonical dump.
DATA_TABLES = (
    users,
    runtimes,
    conversations,
    conversation_tags,
    pins,
    messages,
    attachments,
    imports,
    message_vectors,
    settings,
    api_tokens,
    snapshots,
    usage_events,
    recording_events,
    drafts,
    user_keys,
)
