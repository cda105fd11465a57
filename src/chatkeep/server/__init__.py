"""The HTTP API and the web UI, one ASGI app on top of the library.

:func:`create_app` builds it for an open :class:`~chatkeep.vault.Vault`; ``chatkeep
serve`` runs it on uvicorn. Every route acts for the user of the bearer token (or of the
browser session cookie, which holds a token of its own) and only for that user.
"""

from __future__ import annotations

from chatkeep.server.app import ServerConfig, create_app

__all__ = ["ServerConfig", "create_app"]
