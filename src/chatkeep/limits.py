"""Every size, count and time limit, declared once.

The store, the CLI and the tests all read these names; a limit changed here changes
everywhere. Sizes are in bytes of UTF-8 unless said otherwise.
"""

from __future__ import annotations

from typing import Final

#: Longest user, runtime or other name-like id.
MAX_NAME_LENGTH: Final = 64
#: Longest minted id (prefix + ULID); anything longer is refused before any lookup.
MAX_ID_LENGTH: Final = 64
#: Largest message: the UTF-8 size of all its parts' text and data, encoded as JSON.
MAX_MESSAGE_BYTES: Final = 4 * 1024 * 1024
#: Most content parts in one message.
MAX_PARTS_PER_MESSAGE: Final = 1_000
#: Largest single attachment.
MAX_ATTACHMENT_BYTES: Final = 512 * 1024 * 1024
#: Most attachments on one message.
MAX_ATTACHMENTS_PER_MESSAGE: Final = 100
#: Longest conversation title, runtime display name, author or model name (characters).
MAX_TITLE_LENGTH: Final = 1_000
#: Longest tag (characters) and most tags on one conversation.
MAX_TAG_LENGTH: Final = 64
MAX_TAGS_PER_CONVERSATION: Final = 100
#: Largest token count and cost one message may carry; bounded so that a conversation's
#: running totals stay exact 64-bit integers and finite floats.
MAX_TOKENS_PER_MESSAGE: Final = 10**12
MAX_COST_PER_MESSAGE: Final = 10.0**9
#: Largest JSON value of a setting, a runtime configuration or message metadata.
MAX_JSON_BYTES: Final = 1024 * 1024
#: Longest setting key (``namespace.key``).
MAX_SETTING_KEY_LENGTH: Final = 200
#: Most memory semantic search keeps for users' vectors between searches (the float32
#: matrices, their half-precision screens, the approximate indexes), across users and
#: vaults of one process; past it, the least recently searched go first.
MAX_VECTOR_CACHE_BYTES: Final = 2 * 1024**3
#: Most messages one call to ``append_messages`` may write in its transaction.
MAX_BATCH_MESSAGES: Final = 10_000
#: How long a writer waits for another process's write lock before giving up (seconds).
BUSY_TIMEOUT_SECONDS: Final = 30.0
#: A temp file untouched this long (seconds) belongs to a writer that died: repair removes it.
STALE_TEMP_SECONDS: Final = 15 * 60
#: Archives (exports): most members, most bytes decompressed in all, and the highest
#: compression ratio one member may have (a zip bomb compresses far beyond it).
MAX_ARCHIVE_MEMBERS: Final = 200_000
MAX_ARCHIVE_TOTAL_BYTES: Final = 16 * 1024**3
MAX_COMPRESSION_RATIO: Final = 200
#: Longest archive member name (bytes of UTF-8).
MAX_MEMBER_NAME_BYTES: Final = 1024
#: Most warnings kept in an import record (the count is always exact).
MAX_IMPORT_WARNINGS: Final = 1_000
#: Most rows one listing returns when the caller asks for "all".
MAX_PAGE_SIZE: Final = 10_000
#: Deepest offset of a page: far past any real list, and within every engine's integers.
MAX_PAGE_OFFSET: Final = 10**9
#: Largest JSON request body the HTTP API reads (a message at its limit fits, escaped).
MAX_REQUEST_BYTES: Final = 4 * MAX_MESSAGE_BYTES
#: Largest export uploaded to the HTTP API for import (streamed to disk, never to memory).
MAX_UPLOAD_BYTES: Final = 8 * 1024**3
#: Most import jobs one server process remembers (finished ones are forgotten oldest first).
MAX_REMEMBERED_JOBS: Final = 200
#: How long the server waits for an OpenAI-compatible endpoint (seconds).
LLM_TIMEOUT_SECONDS: Final = 120.0
