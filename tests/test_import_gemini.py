"""The Gemini (Google Takeout My Activity) parser: fixtures, grouping, HTML, detection."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import stat
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chatkeep import importers
from chatkeep.errors import ImportFormatError
from chatkeep.importers import claude, gemini
from chatkeep.importers.model import ParsedExport, SourceConversation, SourceFile
from chatkeep.importers.source import ExportSource
from chatkeep.model import Part
from chatkeep.validate import check_json_value

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("CHATKEEP_FIXTURES", REPO / ".." / "shared" / "fixtures"))
pytestmark = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"no fixtures at {FIXTURES} (set CHATKEEP_FIXTURES)"
)
SAMPLE = FIXTURES / "gemini" / "420ai" / "sample-gemini-export.json"
PANCHAT = FIXTURES / "gemini" / "panchat" / "gemini_myactivity.json"
SEARCH = FIXTURES / "gemini" / "panchat" / "takeout_search_myactivity.json"
MARKUP = re.compile(r"<\s*/?\s*[a-zA-Z]")


# -- helpers -------------------------------------------------------------------------------
def parse(path: Path) -> tuple[ParsedExport, list[SourceConversation]]:
    with ExportSource.open(path) as source:
        assert gemini.IMPORTER.detect(source)
        export = gemini.IMPORTER.parse(source)
        conversations = list(export.conversations)
    for conversation in conversations:
        check_json_value("metadata", conversation.metadata)
        for message in conversation.messages:
            check_json_value("metadata", message.metadata)
            for part in message.parts:
                check_json_value("part data", part.data)
    return export, conversations


def detect(path: Path) -> bool:
    with ExportSource.open(path) as source:
        return gemini.IMPORTER.detect(source)


def ids(conversations: list[SourceConversation]) -> list[tuple[str, list[str]]]:
    return [(c.source_id, [m.source_id for m in c.messages]) for c in conversations]


def shape(conversation: SourceConversation) -> list[tuple[str, str | None, str]]:
    """(role, parent's role-and-position, first text) per message."""
    position = {m.source_id: i for i, m in enumerate(conversation.messages)}
    return [
        (
            m.role,
            None if m.parent_source_id is None else f"#{position[m.parent_source_id]}",
            m.parts[0].text or "",
        )
        for m in conversation.messages
    ]


def record_id(time: str, title: str) -> str:
    moment = datetime.fromisoformat(time).astimezone(UTC).isoformat()
    return hashlib.sha256(f"{moment}|{title}".encode()).hexdigest()[:32]


def record(title: str, time: str, answer: str | None = None, **extra: Any) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "header": "Gemini Apps",
        "title": title,
        "time": time,
        "products": ["Gemini Apps"],
        **extra,
    }
    if answer is not None:
        shape["safeHtmlItem"] = [{"html": answer}]
    return shape


def write(path: Path, value: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
    return path


def utc(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)  # type: ignore[arg-type, misc]


def zip_folder(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), (2026, 8, 1, 0, 0, 0))
                info.external_attr = (stat.S_IFREG | 0o644) << 16
                archive.writestr(info, path.read_bytes())
    return target


# -- the 420ai fixture (real shape, redacted) ----------------------------------------------
def test_420ai_sample() -> None:
    export, conversations = parse(SAMPLE)
    assert export.platform == "gemini"
    assert (export.account, export.account_label) == (None, None)
    assert export.skipped == {"non_chat_activity": 2}  # Canvas creation, preferred draft
    assert export.metadata["prompts"] == 3
    # no links in this export: prompts 46 and 103 minutes apart are three conversations
    assert [len(c.messages) for c in conversations] == [2, 1, 2]
    assert sum(len(c.messages) for c in conversations) == 5
    assert [c.metadata["grouping"]["rule"] for c in conversations] == ["time_gap"] * 3
    assert [c.title for c in conversations] == [
        "redacted prompt one",
        "redacted prompt two with no response",
        "redacted prompt three with attachment",
    ]
    one, two, three = conversations
    assert shape(one) == [
        ("user", None, "redacted prompt one"),
        ("assistant", "#0", "redacted response one"),
    ]
    assert one.messages[0].created_at == utc(2026, 7, 20, 15, 15, 21, 568000)
    assert one.messages[1].created_at == one.messages[0].created_at
    assert one.messages[0].source_id == record_id(
        "2026-07-20T15:15:21.568Z", "Prompted redacted prompt one"
    )
    assert one.messages[1].source_id == one.messages[0].source_id + "-answer"
    assert one.messages[1].parts == [Part("text", "redacted response one", {"format": "markdown"})]
    assert one.messages[0].metadata == {
        "title": "Prompted redacted prompt one",
        "verb": "Prompted",
        "header": "Gemini Apps",
        "products": ["Gemini Apps"],
        "activityControls": ["Gemini Apps Activity"],
    }
    assert shape(two) == [("user", None, "redacted prompt two with no response")]
    assert (two.created_at, two.updated_at) == (utc(2026, 7, 20, 16, 2, 3, 111000),) * 2
    assert three.messages[0].parts == [Part("text", "redacted prompt three with attachment")]
    files = [f for c in conversations for m in c.messages for f in m.files]
    assert files == [SourceFile("redacted.pdf", "application/pdf", None, None, None)]


# -- the panchat fixture: links, two answer items, Japanese, a prompt without answer --------
def test_panchat_myactivity() -> None:
    export, conversations = parse(PANCHAT)
    assert export.skipped == {"non_chat_activity": 2}
    assert [len(c.messages) for c in conversations] == [1, 2, 4]
    assert sum(len(c.messages) for c in conversations) == 7
    oldest, japanese, thread = conversations  # oldest first

    assert shape(oldest) == [("user", None, "A question whose answer Google did not keep")]
    assert oldest.created_at == utc(2026, 7, 17, 7)

    assert shape(japanese) == [
        ("user", None, "これは作り話です"),
        ("assistant", "#0", "これも作り話です。"),
    ]
    assert japanese.messages[0].metadata["verb"] == "送信したメッセージ"
    assert japanese.messages[0].metadata["header"] == "Gemini アプリ"
    assert japanese.created_at == utc(2026, 7, 18, 11, 2, 3)

    # one chat link (with and without ?hl=en) → one conversation, in time order
    assert thread.metadata["grouping"] == {
        "rule": "title_url",
        "link": "https://gemini.google.com/app/c/invented-thread-1",
    }
    assert (
        thread.source_id
        == hashlib.sha256(b"url|https://gemini.google.com/app/c/invented-thread-1").hexdigest()[:32]
    )
    assert shape(thread) == [
        ("user", None, "Explain the first half of the made-up thing"),
        ("assistant", "#0", "The first half does not exist.\n\n- Nor does this list item."),
        ("user", "#1", "And what about the second half?"),
        ("assistant", "#2", "The second half is **likewise invented**."),
    ]
    assert (thread.created_at, thread.updated_at) == (
        utc(2026, 7, 20, 15, 15, 21, 568000),
        utc(2026, 7, 20, 15, 20, 0, 100000),
    )
    assert thread.title == "Explain the first half of the made-up thing"
    assert thread.messages[1].metadata == {"html_items": 2, "converted_from": "html"}
    assert thread.messages[0].files == [
        SourceFile("invented-notes.pdf", "application/pdf", None, None, None)
    ]
    assert [len(m.files) for c in conversations for m in c.messages] == [0, 0, 0, 1, 0, 0, 0]


def test_ids_are_stable_across_reexports(tmp_path: Path) -> None:
    _, first = parse(PANCHAT)
    records = json.loads(PANCHAT.read_text(encoding="utf-8"))
    newer = record(
        "Prompted A follow-up in the same thread",
        "2026-07-21T08:00:00.000Z",
        "<p>ok</p>",
        titleUrl="https://gemini.google.com/app/c/invented-thread-1",
    )
    # a later Takeout: new activity prepended, so every position shifts
    later = write(tmp_path / "later" / "MyActivity.json", [newer, *records])
    _, second = parse(later)
    assert ids(second)[:2] == ids(first)[:2]
    assert second[2].source_id == first[2].source_id
    assert [m.source_id for m in second[2].messages][:4] == [m.source_id for m in first[2].messages]
    assert len(second[2].messages) == 6
    assert second[2].messages[4].parent_source_id == first[2].messages[3].source_id
    # the same Takeout as a zip gives the same ids
    zipped = zip_folder(tmp_path / "later", tmp_path / "takeout.zip")
    assert ids(parse(zipped)[1]) == ids(second)


# -- Takeout layout: several products, localised paths, files beside the activity ----------
def test_takeout_with_other_products(tmp_path: Path) -> None:
    root = tmp_path / "Takeout" / "My Activity"
    shutil.copy(SAMPLE, write(root / "Gemini Apps" / "MyActivity.json", []))
    shutil.copy(SEARCH, write(root / "Search" / "MyActivity.json", []))
    (root / "Gemini Apps" / "redacted.pdf").write_bytes(b"%PDF-1.4 not really")
    (tmp_path / "Takeout" / "archive_browser.html").write_text("<html><body>index</body></html>")
    export, conversations = parse(tmp_path)
    assert export.skipped == {"non_chat_activity": 2, "other_products": 2}
    assert any("Search (1)" in w and "YouTube (1)" in w for w in export.warnings)
    assert export.metadata["activity_files"] == [
        "My Activity/Gemini Apps/MyActivity.json",
        "My Activity/Search/MyActivity.json",
    ]
    assert [len(c.messages) for c in conversations] == [2, 1, 2]
    # an attached file present next to the activity is linked to its bytes
    assert conversations[2].messages[0].files == [
        SourceFile(
            "redacted.pdf",
            "application/pdf",
            "My Activity/Gemini Apps/redacted.pdf",
            19,
            None,
        )
    ]


def test_search_activity_is_not_gemini(tmp_path: Path) -> None:
    assert not detect(SEARCH)
    takeout = tmp_path / "Takeout" / "My Activity" / "Search"
    shutil.copy(SEARCH, write(takeout / "MyActivity.json", []))
    assert not detect(tmp_path)
    # a Chrome visit to gemini.google.com is Chrome's activity, not a prompt
    chrome = {
        "header": "Chrome",
        "title": "Visited Gemini",
        "titleUrl": "https://gemini.google.com/app/c/abc",
        "time": "2026-07-20T15:15:21.568Z",
        "products": ["Chrome"],
    }
    assert not detect(write(tmp_path / "chrome.json", [chrome]))
    with ExportSource.open(SEARCH) as source:
        export = gemini.IMPORTER.parse(source)  # forced: everything is skipped and counted
    assert list(export.conversations) == [] and export.skipped == {"other_products": 2}


@pytest.mark.parametrize(
    "path",
    [
        *sorted((FIXTURES / "claude").rglob("*.json")),
        *sorted((FIXTURES / "chatgpt").rglob("*.json")),
    ],
    ids=str,
)
def test_other_platforms_are_not_gemini(path: Path) -> None:
    assert not detect(path)


@pytest.mark.parametrize("path", [SAMPLE, PANCHAT, SEARCH], ids=str)
def test_gemini_fixtures_are_not_claude(path: Path) -> None:
    with ExportSource.open(path) as source:
        assert not claude.IMPORTER.detect(source)


def test_detection_variants(tmp_path: Path) -> None:
    bard = {"header": "Bard", "title": "Asked Bard: hi", "time": "2023-05-01T10:00:00Z"}
    assert detect(write(tmp_path / "a" / "old.json", [bard]))
    link_only: dict[str, Any] = {"title": "Prompted hi", "time": "2026-01-01T00:00:00Z"}
    link_only["titleUrl"] = "https://gemini.google.com/app/c/1"
    # neither header nor products: a chat link on gemini.google.com decides
    assert detect(write(tmp_path / "b" / "x.json", [link_only]))
    link_only["products"] = []
    assert detect(write(tmp_path / "c" / "x.json", [link_only]))
    link_only["titleUrl"] = "https://example.org/app/c/1"
    assert not detect(write(tmp_path / "h" / "x.json", [link_only]))
    greek = tmp_path / "d" / "Takeout" / "Η δραστηριότητά μου" / "Εφαρμογές Gemini"
    write(greek / "Ηδραστηριότητάμου.json", [])
    assert detect(tmp_path / "d")  # paused activity: an empty file in a Gemini folder
    assert not detect(write(tmp_path / "e" / "MyActivity.json", []))
    assert not detect(write(tmp_path / "f" / "x.json", {"header": "Gemini Apps"}))
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "x.json").write_text('[{"header": "Gemini Apps", "ti')
    assert not detect(tmp_path / "g")


# -- grouping ------------------------------------------------------------------------------
def test_grouping_by_link_then_by_thirty_minute_gaps(tmp_path: Path) -> None:
    link = "https://gemini.google.com/app/c/t1"
    records = [
        record("Prompted d", "2026-01-01T11:00:00Z", "<p>D</p>"),  # 30:01 after c: new
        record("Prompted c", "2026-01-01T10:29:59Z"),  # 29:59 after a: same
        record("Prompted in thread 2", "2026-01-01T10:20:00Z", "<p>T2</p>", titleUrl=link),
        record("Prompted in thread 1", "2026-01-01T10:10:00Z", "<p>T1</p>", titleUrl=link + "/"),
        record("Prompted a", "2026-01-01T10:00:00Z", "<p>A</p>"),
        record("Prompted e", "2026-01-01T11:30:01Z"),  # exactly 30:01 after d: new
        record("Prompted f", "2026-01-01T12:00:01Z"),  # exactly 30:00 after e: new
    ]
    _, conversations = parse(write(tmp_path / "MyActivity.json", records))
    assert [(c.metadata["grouping"]["rule"], shape(c)) for c in conversations] == [
        (
            "time_gap",
            [("user", None, "a"), ("assistant", "#0", "A"), ("user", "#1", "c")],
        ),
        (
            "title_url",
            [
                ("user", None, "in thread 1"),
                ("assistant", "#0", "T1"),
                ("user", "#1", "in thread 2"),
                ("assistant", "#2", "T2"),
            ],
        ),
        ("time_gap", [("user", None, "d"), ("assistant", "#0", "D")]),
        ("time_gap", [("user", None, "e")]),
        ("time_gap", [("user", None, "f")]),
    ]
    gap = conversations[0]
    assert gap.metadata == {
        "grouping": {"rule": "time_gap", "gap_minutes": 30, "heuristic": True},
        "records": 2,
    }
    first_key = hashlib.sha256(f"{utc(2026, 1, 1, 10).isoformat()}|Prompted a".encode()).hexdigest()
    assert gap.source_id == hashlib.sha256(f"gap|{first_key[:32]}".encode()).hexdigest()[:32]


def test_titles_verbs_attachments_and_duplicates(tmp_path: Path) -> None:
    records = [
        record(
            "Prompted Summarise these Attached 2 files.",
            "2026-02-01T10:00:00Z",
            attachedFiles=["a.txt", {"name": "b.png"}],
            imageFile="b.png",
        ),
        record("Prompted Summarise these Attached 2 files.", "2026-02-01T10:00:00Z"),  # again
        record("Verbo desconocido hola", "2026-02-01T10:01:00Z", "<p>respuesta</p>"),
        record("Verbo desconocido sin respuesta", "2026-02-01T10:02:00Z"),
        record("Gave feedback: Good response", "2026-02-01T10:03:00Z"),
        record("Used Gemini Apps", "2026-02-01T10:04:00Z"),
        record("Prompted\u00a0with nbsp", "2026-02-01T10:05:00Z"),
        record("Asked Gemini: old style", "not a time"),
        {"header": "Gemini Apps", "time": "2026-02-01T10:06:00Z"},
        "not a record",
    ]
    export, conversations = parse(write(tmp_path / "MyActivity.json", records))
    assert export.skipped == {
        "duplicate_records": 1,
        "invalid_records": 2,
        "non_chat_activity": 3,
    }
    assert any(
        "Gave (1)" in w and "Used (1)" in w and "unrecognised (1)" in w for w in export.warnings
    )
    untimed, main = conversations
    assert shape(untimed) == [("user", None, "old style")]
    assert untimed.created_at is None
    assert untimed.messages[0].metadata["time_text"] == "not a time"
    assert shape(main) == [
        ("user", None, "Summarise these"),
        ("user", "#0", "Verbo desconocido hola"),  # unknown verb, but answered: kept whole
        ("assistant", "#1", "respuesta"),
        ("user", "#2", "with nbsp"),
    ]
    assert main.messages[0].parts == [Part("text", "Summarise these")]
    assert [(f.name, f.mime_type) for f in main.messages[0].files] == [
        ("a.txt", "text/plain"),
        ("b.png", "image/png"),
    ]
    assert main.messages[1].metadata["verb"] is None


# -- HTML ------------------------------------------------------------------------------------
def cell(header: str, body: str, caption: str, side: str = "") -> str:
    return (
        '<div class="outer-cell mdl-cell mdl-cell--12-col mdl-shadow--2dp"><div class="mdl-grid">'
        '<div class="header-cell mdl-cell mdl-cell--12-col">'
        f'<p class="mdl-typography--title">{header}<br></p></div>'
        f'<div class="content-cell mdl-cell mdl-cell--6-col mdl-typography--body-1">{body}</div>'
        '<div class="content-cell mdl-cell mdl-cell--6-col mdl-typography--body-1 '
        f'mdl-typography--text-right">{side}</div>'
        '<div class="content-cell mdl-cell mdl-cell--12-col mdl-typography--caption">'
        f"<b>Products:</b><br>&emsp;{caption}<br></div></div></div>\n"
    )


HTML_SAMPLE = (
    '<!DOCTYPE html><html><head><meta charset="UTF-8"><title>My Activity</title>'
    '<style>.mdl-grid{display:flex}</style></head><body><div class="mdl-grid">\n'
    + cell(
        "Gemini Apps",
        "Prompted&nbsp;And &amp; then?<br>Jul 20, 2026, 5:20:00 PM CEST<br>"
        "<p>Then <b>this</b> &amp; &lt;that&gt;.</p><script>alert('owned')</script>"
        '<ul><li>one</li><li>two <a href="javascript:alert(1)">x</a></li></ul>'
        '<p><a href="https://example.org/doc">a link</a><img src="x" onerror="alert(2)"></p>',
        "Gemini Apps",
    )
    + cell(
        "Gemini Apps", "Used&nbsp;Gemini Apps<br>Jul 20, 2026, 5:17:00 PM CEST<br>", "Gemini Apps"
    )
    + cell(
        "Gemini Apps",
        "Prompted&nbsp;First line<br>second line<br>Jul 20, 2026, 5:15:21 PM CEST<br>"
        '<pre><code class="language-html">&lt;script&gt;x()&lt;/script&gt;\n  indented</code></pre>'
        "<table><tr><th>k</th><th>v</th></tr><tr><td>a</td><td>1</td></tr></table>",
        "Gemini Apps",
        side='<img src="photo.jpg" alt="photo">',
    )
    + cell(
        "Search",
        'Searched for&nbsp;<a href="https://www.google.com/search?q=x">x</a><br>'
        "Jul 20, 2026, 5:10:00 PM CEST",
        "Search",
    )
    + cell(
        "Gemini Apps",
        "送信したメッセージ: こんにちは<br>2026/07/19 9:00:00 JST<br><p>やあ</p>",
        "Gemini Apps",
    )
    + "</div></body></html>"
)


def test_html_activity(tmp_path: Path) -> None:
    folder = tmp_path / "Takeout" / "My Activity" / "Gemini Apps"
    folder.mkdir(parents=True)
    (folder / "MyActivity.html").write_text(HTML_SAMPLE, encoding="utf-8")
    (folder / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    export, conversations = parse(tmp_path)
    assert export.skipped == {"other_products": 1, "non_chat_activity": 1}
    assert [len(c.messages) for c in conversations] == [2, 4]
    japanese, pair = conversations
    assert shape(japanese) == [("user", None, "こんにちは"), ("assistant", "#0", "やあ")]
    assert japanese.created_at == utc(2026, 7, 19, 0, 0, 0)  # JST is UTC+9
    assert [m.created_at for m in pair.messages] == [
        utc(2026, 7, 20, 15, 15, 21),  # CEST is UTC+2
        utc(2026, 7, 20, 15, 15, 21),
        utc(2026, 7, 20, 15, 20),
        utc(2026, 7, 20, 15, 20),
    ]
    assert shape(pair) == [
        ("user", None, "First line\nsecond line"),
        (
            "assistant",
            "#0",
            "```html\n<script>x()</script>\n  indented\n```\n\n| k | v |\n| --- | --- |\n| a | 1 |",
        ),
        ("user", "#1", "And & then?"),
        (
            "assistant",
            "#2",
            "Then **this** & <that>.\n\n- one\n- two x\n\n[a link](https://example.org/doc)",
        ),
    ]
    answer = pair.messages[3].parts[0].text or ""
    assert "owned" not in answer and "alert" not in answer and "javascript" not in answer
    assert not MARKUP.search(answer.replace("<that>", ""))
    assert pair.messages[2].metadata == {
        "title": "Prompted\u00a0And & then?",
        "verb": "Prompted",
        "header": "Gemini Apps",
        "time_text": "Jul 20, 2026, 5:20:00 PM CEST",
        "format": "html",
        "caption": {"Products": ["Gemini Apps"]},
    }
    assert pair.messages[0].files == [
        SourceFile("photo.jpg", "image/jpeg", "My Activity/Gemini Apps/photo.jpg", 3, None)
    ]
    assert pair.messages[0].parts == [Part("text", "First line\nsecond line")]


def test_json_is_preferred_over_html(tmp_path: Path) -> None:
    shutil.copy(SAMPLE, tmp_path / "MyActivity.json")
    (tmp_path / "MyActivity.html").write_text(HTML_SAMPLE, encoding="utf-8")
    export, conversations = parse(tmp_path)
    assert [len(c.messages) for c in conversations] == [2, 1, 2]
    assert export.metadata["activity_files"] == ["MyActivity.json"]
    assert any("ignored 1 HTML" in w for w in export.warnings)


def test_html_detection(tmp_path: Path) -> None:
    search_only = cell("Search", "Searched for&nbsp;x<br>Jul 20, 2026, 5:10:00 PM UTC", "Search")
    (tmp_path / "MyActivity.html").write_text(f"<html><body>{search_only}</body></html>")
    assert not detect(tmp_path)
    (tmp_path / "MyActivity.html").write_text(HTML_SAMPLE)
    assert detect(tmp_path)


@pytest.mark.parametrize(
    ("html", "markdown"),
    [
        (
            "<p>a &amp; b &lt;i&gt; &quot;q&quot; &#x27;s&#39; &nbsp;x</p>",
            "a & b <i> \"q\" 's' \u00a0x",
        ),
        ("<h2>Title  <em>here</em></h2><p>Body</p>", "## Title *here*\n\nBody"),
        ("<p>a <strong> bold </strong>b<br>next</p>", "a **bold** b\nnext"),
        (
            "<ul><li>one<ul><li>nested</li></ul></li><li>two</li></ul>"
            '<ol start="3"><li>three</li><li>four</li></ol>',
            "- one\n  - nested\n- two\n\n3. three\n4. four",
        ),
        (
            "<pre>line 1\n    line 2 &amp; ``` fence</pre>",
            "````\nline 1\n    line 2 & ``` fence\n````",
        ),
        ("<p>use <code>a&lt;b</code></p>", "use `a<b`"),
        ("<blockquote><p>q1</p><p>q2</p></blockquote>", "> q1\n>\n> q2"),
        (
            '<p><a href="mailto:x@y.z">mail</a> <a href="data:text/html,x">d</a></p>',
            "[mail](mailto:x@y.z) d",
        ),
        ('<p><img src="https://x.org/i.png" alt="pic"></p>', "![pic](https://x.org/i.png)"),
        ("<div>one<p>two</div>three", "one\n\ntwo\n\nthree"),
        ("<p>x</p><hr><p>y</p>", "x\n\n---\n\ny"),
        ("<table><tr><td>a|b</td></tr></table>", "| a\\|b |\n| --- |"),
        ("<style>p{}</style><iframe>in</iframe><svg><text>s</text></svg>ok", "ok"),
        ("<script>document.write('<p>x</p>')</script>", ""),
        ("<SCRIPT SRC=//evil></SCRIPT><p onclick=alert(1)>safe</p>", "safe"),
        ("unclosed <b>bold", "unclosed **bold**"),
    ],
)
def test_html_to_markdown(html: str, markdown: str) -> None:
    assert gemini.html_to_markdown(html) == markdown


@pytest.mark.parametrize(
    ("text", "expected", "known"),
    [
        ("Mar 8, 2018, 5:14:40 PM", utc(2018, 3, 8, 17, 14, 40), True),
        ("Jan 25, 2019, 8:23:48 AM GMT", utc(2019, 1, 25, 8, 23, 48), True),
        ("Jan 15, 2021, 6:54:12\u202fPM BST", utc(2021, 1, 15, 17, 54, 12), True),
        ("Dec 31, 2025, 12:05:00 AM PST", utc(2025, 12, 31, 8, 5), True),
        ("12. 1. 2026 19:01:56 SEČ", utc(2026, 1, 12, 18, 1, 56), True),
        ("20 Jul 2026, 15:15:21 GMT+02:00", utc(2026, 7, 20, 13, 15, 21), True),
        ("2026/07/19 9:00:00 JST", utc(2026, 7, 19, 0, 0), True),
        ("Jul 20, 2026, 3:15:21 PM XYZ", utc(2026, 7, 20, 15, 15, 21), False),
        ("not a date 12:00", None, False),
        ("Feb 30, 2026, 1:00:00 PM UTC", None, False),
    ],
)
def test_html_times(text: str, expected: datetime | None, known: bool) -> None:
    assert gemini.parse_html_time(text) == (expected, known)


# -- malformed input ---------------------------------------------------------------------------
def test_truncated_json_raises_naming_the_file(tmp_path: Path) -> None:
    data = PANCHAT.read_bytes()
    (tmp_path / "MyActivity.json").write_bytes(data[: len(data) // 2])
    with ExportSource.open(tmp_path) as source:
        assert gemini.IMPORTER.detect(source)  # the first records are intact
        with pytest.raises(ImportFormatError, match=r"MyActivity\.json is not valid JSON"):
            gemini.IMPORTER.parse(source)


def test_nothing_to_read_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with ExportSource.open(tmp_path) as source, pytest.raises(ImportFormatError):
        gemini.IMPORTER.parse(source)


def test_ids_do_not_depend_on_the_container(tmp_path: Path) -> None:
    payload = io.BytesIO()
    with zipfile.ZipFile(payload, "w") as archive:
        info = zipfile.ZipInfo("Takeout/My Activity/Gemini Apps/MyActivity.json")
        info.external_attr = (stat.S_IFREG | 0o644) << 16
        archive.writestr(info, SAMPLE.read_bytes())
    (tmp_path / "takeout-001.zip").write_bytes(payload.getvalue())
    assert ids(parse(tmp_path / "takeout-001.zip")[1]) == ids(parse(SAMPLE)[1])


def test_the_registry_picks_gemini(tmp_path: Path) -> None:
    html = tmp_path / "html"
    html.mkdir()
    (html / "MyActivity.html").write_text(HTML_SAMPLE, encoding="utf-8")
    takeout = tmp_path / "takeout" / "Takeout" / "My Activity"
    shutil.copy(PANCHAT, write(takeout / "Gemini Apps" / "MyActivity.json", []))
    shutil.copy(SEARCH, write(takeout / "Search" / "MyActivity.json", []))
    for path in (SAMPLE, PANCHAT, html, tmp_path / "takeout"):
        with ExportSource.open(path) as source:
            assert importers.choose(source).platform == "gemini"
    with ExportSource.open(SEARCH) as source, pytest.raises(ImportFormatError):
        importers.choose(source)
