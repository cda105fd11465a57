"""The web UI: a page and its assets, shipped in the package (nothing from a CDN).

The UI is a small single-page app (``static/``) that talks to the JSON API. It keeps
nothing that matters in the browser: preferences go to ``/api/settings``, so a cleared
browser loses only its login.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from chatkeep import html

STATIC_DIR: Final = Path(__file__).with_name("static")
router = APIRouter(include_in_schema=False)
_ASSET_TYPES: Final = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}


@router.get("/")
def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8")


@router.get("/static/highlight.css")
def highlight_css() -> Response:
    return Response(html.highlight_css(), media_type="text/css; charset=utf-8")


@router.get("/static/{name}")
def asset(name: str) -> Response:
    """A shipped asset by its plain file name (no folders: nothing to traverse)."""
    path = STATIC_DIR / name
    media = _ASSET_TYPES.get(path.suffix)
    if "/" in name or name.startswith(".") or media is None or not path.is_file():
        return Response(status_code=404)
    return FileResponse(path, media_type=media)
