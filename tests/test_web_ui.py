"""The web UI in a real browser: Playwright driving the system Chromium against a real
``chatkeep serve`` (one browser per module, a fresh context and vault per test).

Every test also fails on a Content-Security-Policy violation or an uncaught script error,
and saves screenshots of what it saw (``$CHATKEEP_ARTIFACTS``, else the test's tmp dir).
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Dialog, Page, expect, sync_playwright

from tests.conftest import FIXTURES
from tests.server_helpers import Served, prepare_vault, start_server

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists() and not os.environ.get("CI"):
    pytest.skip(
        f"the web UI tests need Chromium at {CHROMIUM} (apt-get install chromium)",
        allow_module_level=True,
    )

#: A small ChatGPT export: 4 conversations (one empty), 8 messages, 1 warning.
SAMPLE_EXPORT = FIXTURES / "chatgpt" / "420ai" / "sample-chatgpt-export.json"
#: Another one: 3 conversations, 7 messages.
MODERN_EXPORT = FIXTURES / "chatgpt" / "librechat" / "chatgpt-modern-export.json"

TIMEOUT_MS = 15_000
# Reports a CSP violation to the console too, whatever Chromium's own wording is.
CSP_REPORTER = """
document.addEventListener('securitypolicyviolation', (event) => {
  console.error('Content Security Policy violation: ' + event.violatedDirective
    + ' blocked ' + event.blockedURI);
});
"""


def needs_fixture(path: Path) -> None:
    if not path.is_file():
        pytest.skip(f"shared fixture {path} is missing")


# -- the browser, a session per test -------------------------------------------------------
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"CI is set but {CHROMIUM} is missing: the web UI tests cannot run")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Session:
    """One test's vault, server, browser page, and what the page reported."""

    page: Page
    home: Path
    secret: str
    shots: Path
    servers: list[object]
    served: Served | None = None
    csp: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def start(self, env: Mapping[str, str] | None = None) -> Served:
        self.served = start_server(self.home, env=env)
        self.servers.append(self.served)
        return self.served

    def login(self) -> None:
        """Open the login link the server printed: the page logs in by itself."""
        assert self.served is not None
        self.page.goto(self.served.login_url)
        expect(self.page.get_by_test_id("sidebar")).to_be_visible()
        expect(self.page.get_by_test_id("conversation-title")).to_be_visible()
        assert "#login=" not in self.page.url  # the code is cleared from the address bar

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """The API as a script would use it (bearer token)."""
        assert self.served is not None
        with self.served.client(self.secret) as client:
            answer = client.request(method, path, json=body)
        assert answer.status_code < 400, answer.text
        return answer.json()

    def conversation(self, runtime: str, title: str, *, pinned: bool = False) -> str:
        created = self.call("POST", "/api/conversations", {"runtime_id": runtime, "title": title})
        if pinned:
            self.call("POST", f"/api/conversations/{created['id']}/pin")
        return str(created["id"])

    def append(self, conversation: str, text: str | None, **fields: Any) -> str:
        body = {"text": text, **fields} if text is not None else fields
        return str(self.call("POST", f"/api/conversations/{conversation}/messages", body)["id"])

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path))
        assert path.is_file() and path.stat().st_size > 1000
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        return path

    def assert_clean(self) -> None:
        assert self.csp == [], f"Content-Security-Policy violations: {self.csp}"
        assert self.page_errors == [], f"uncaught errors in the page: {self.page_errors}"
        assert self.dialogs == [], f"unexpected dialogs: {self.dialogs}"


@pytest.fixture
def ui(browser: Browser, tmp_path: Path, servers: list[object]) -> Iterator[Session]:
    home = tmp_path / "vault"
    secret = prepare_vault(home, "alice")["alice"]
    shots = Path(os.environ.get("CHATKEEP_ARTIFACTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    context.add_init_script(CSP_REPORTER)
    page = context.new_page()
    session = Session(page=page, home=home, secret=secret, shots=shots, servers=servers)

    def on_console(message: Any) -> None:
        if "Content Security Policy" in message.text:
            session.csp.append(message.text)

    def on_dialog(dialog: Dialog) -> None:
        session.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("console", on_console)
    page.on("pageerror", lambda error: session.page_errors.append(str(error)))
    page.on("dialog", on_dialog)
    try:
        yield session
        session.assert_clean()
    finally:
        context.close()


def item(page: Page, conversation_id: str) -> Any:
    """The sidebar entry of a conversation."""
    return page.get_by_test_id("sidebar").locator(
        f"[data-testid=conversation-item][data-id='{conversation_id}']"
    )


def message(page: Page, message_id: str) -> Any:
    return page.locator(f"[data-testid=message][data-id='{message_id}']")


def wait_for(check: Any, what: str, seconds: float = 10.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


# -- a. import -------------------------------------------------------------------------------
def test_import_lands_in_the_new_runtime_with_its_home_pinned_first(ui: Session) -> None:
    needs_fixture(SAMPLE_EXPORT)
    ui.start()
    ui.login()
    page = ui.page
    page.get_by_test_id("nav-import").click()
    page.get_by_test_id("import-file").set_input_files(str(SAMPLE_EXPORT))
    page.get_by_test_id("import-submit").click()

    records = wait_for(lambda: ui.call("GET", "/api/imports"), "the import record")
    runtime = records[0]["runtime_id"]
    home = ui.call("GET", f"/api/runtimes/{runtime}/route")
    # The page switched to the imported runtime and opened its home conversation.
    expect(page.get_by_test_id("runtime-switcher")).to_have_value(runtime)
    expect(page).to_have_url(re.compile(f"#/r/{runtime}/c/{home['id']}$"))
    expect(page.get_by_test_id("conversation-title")).to_have_text(home["title"])
    items = page.get_by_test_id("conversation-item")
    expect(items).to_have_count(5)  # the home conversation and the 4 imported ones
    expect(items.first).to_have_attribute("data-id", home["id"])
    expect(items.first).to_have_class(re.compile(r"\bactive\b"))
    expect(items.first.get_by_test_id("pin-icon")).to_be_visible()
    expect(page.get_by_test_id("sidebar").get_by_test_id("pin-icon")).to_have_count(1)
    expect(page.get_by_test_id("sidebar")).to_contain_text("redacted title one")
    expect(page.get_by_test_id("notice")).to_contain_text("Imported")
    ui.shot("sidebar-imported-runtime-home-pinned")

    # The report stays at hand: counts, warnings, a full progress bar, the past imports.
    page.get_by_test_id("notice-report").click()
    report = page.get_by_test_id("import-report")
    expect(report).to_be_visible()
    expect(page.get_by_test_id("import-state")).to_have_text("done")
    expect(report.get_by_test_id("import-counts")).to_contain_text("Conversations added")
    expect(report.get_by_test_id("import-counts")).to_contain_text("4")
    expect(report.get_by_test_id("import-warnings")).to_contain_text("has no messages")
    progress = page.get_by_test_id("import-progress")
    assert progress.evaluate("bar => bar.value === bar.max && bar.max >= 1")
    expect(page.get_by_test_id("import-row")).to_have_count(1)
    expect(page.get_by_test_id("import-row")).to_contain_text(SAMPLE_EXPORT.name)
    report.scroll_into_view_if_needed()
    ui.shot("import-report")

    # An imported conversation opens with its messages.
    page.get_by_test_id("sidebar").get_by_text("redacted title one").click()
    expect(page.get_by_test_id("conversation-title")).to_have_text("redacted title one")
    expect(page.get_by_test_id("message").first).to_be_visible()


# -- b. runtimes and pins ----------------------------------------------------------------------
def test_switching_runtime_the_pins_follow_their_runtime(ui: Session) -> None:
    ui.start()
    ui.call("POST", "/api/runtimes", {"id": "work"})
    planned = ui.conversation("synth-001", "Synth pinned plan", pinned=True)
    loose = ui.conversation("synth-001", "Synth loose ends")
    roadmap = ui.conversation("work", "Work pinned roadmap", pinned=True)
    ui.conversation("work", "Work scratch")
    ui.login()
    page = ui.page
    sidebar = page.get_by_test_id("sidebar")
    names = sidebar.get_by_test_id("conversation-name")
    switcher = page.get_by_test_id("runtime-switcher")

    switcher.select_option("synth-001")
    expect(page.get_by_test_id("conversation-title")).to_have_text("chat_with_synth-001")
    expect(names).to_have_text(["chat_with_synth-001", "Synth pinned plan", "Synth loose ends"])
    expect(sidebar.get_by_test_id("pin-icon")).to_have_count(2)
    expect(item(page, planned).get_by_test_id("pin-icon")).to_be_visible()
    expect(item(page, loose).get_by_test_id("pin-icon")).to_have_count(0)
    expect(sidebar).not_to_contain_text("Work pinned roadmap")

    # Pin through the conversation's menu: the newest pin comes right after the home.
    item(page, loose).get_by_test_id("conversation-menu").click()
    item(page, loose).get_by_test_id("action-pin").click()
    expect(item(page, loose).get_by_test_id("pin-icon")).to_be_visible()
    expect(names).to_have_text(["chat_with_synth-001", "Synth loose ends", "Synth pinned plan"])
    ui.shot("sidebar-pins-runtime-synth")

    switcher.select_option("work")
    expect(page.get_by_test_id("conversation-title")).to_have_text("chat_with_work")
    expect(names).to_have_text(["chat_with_work", "Work pinned roadmap", "Work scratch"])
    expect(sidebar.get_by_test_id("pin-icon")).to_have_count(2)
    expect(item(page, roadmap).get_by_test_id("pin-icon")).to_be_visible()
    for title in ("Synth pinned plan", "Synth loose ends", "chat_with_synth-001"):
        expect(sidebar).not_to_contain_text(title)
    ui.shot("sidebar-pins-runtime-work")

    # The last runtime is a setting in the vault: a fresh page opens it again.
    wait_for(
        lambda: ui.call("GET", "/api/settings/ui.last_runtime")["value"] == "work",
        "ui.last_runtime to be saved",
    )
    page.goto(ui.served.url + "/")  # type: ignore[union-attr]
    expect(switcher).to_have_value("work")
    expect(page.get_by_test_id("conversation-title")).to_have_text("chat_with_work")


# -- c. search ---------------------------------------------------------------------------------
def test_search_and_open_a_result_at_its_message(ui: Session) -> None:
    ui.start()
    safari = ui.conversation("synth-001", "Safari notes")
    target = ""
    for number in range(30):
        role = "user" if number % 2 == 0 else "assistant"
        text = f"Filler note number {number}, about nothing in particular."
        if number == 4:
            text = "The quagga is an extinct subspecies of the plains zebra."
        appended = ui.append(safari, text, role=role)
        if number == 4:
            target = appended
    ui.login()
    page = ui.page
    page.get_by_test_id("nav-search").click()
    page.get_by_test_id("search-input").fill("quagga")
    page.get_by_test_id("search-input").press("Enter")
    results = page.get_by_test_id("search-result")
    expect(results).to_have_count(1)
    expect(results.first.get_by_test_id("search-result-title")).to_have_text("Safari notes")
    expect(results.first.locator("mark")).to_have_text(["quagga"], ignore_case=True)
    expect(results.first).to_contain_text("extinct subspecies")
    ui.shot("search-results")

    # Filters narrow the search; the query stays in the address (reload-safe).
    page.get_by_test_id("search-role").select_option("assistant")
    page.get_by_test_id("search-submit").click()
    expect(page.get_by_test_id("search-status")).to_contain_text("No results")
    expect(results).to_have_count(0)
    page.get_by_test_id("search-role").select_option("user")
    page.get_by_test_id("search-submit").click()
    expect(results).to_have_count(1)
    page.reload()
    expect(results).to_have_count(1)
    expect(page.get_by_test_id("search-input")).to_have_value("quagga")

    results.first.click()
    expect(page).to_have_url(re.compile(f"#/r/synth-001/c/{safari}/m/{target}$"))
    found = message(page, target)
    expect(found).to_have_class(re.compile(r"\btarget\b"))
    expect(found).to_be_in_viewport()
    expect(page.get_by_test_id("message").last).not_to_be_in_viewport()
    expect(item(page, safari)).to_have_class(re.compile(r"\bactive\b"))
    ui.shot("chat-view-search-target")


# -- d. composer, assistant, restart ----------------------------------------------------------
class _FakeModel(BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint that streams a fixed reply, slowly."""

    pieces = ("The lighthouse ", "keeper ", "remembers.")

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.server.requests.append(json.loads(self.rfile.read(length)))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()
        for piece in self.pieces:
            chunk = {"choices": [{"delta": {"content": piece}}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
            time.sleep(0.4)
        self.wfile.write(b"data: [DONE]\n\n")

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def fake_model() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeModel)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", server.requests  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_composer_appends_the_assistant_streams_and_both_survive_a_restart(
    ui: Session, fake_model: tuple[str, list[dict[str, Any]]]
) -> None:
    model_url, model_requests = fake_model
    ui.start(env={"CHATKEEP_LLM_BASE_URL": model_url, "CHATKEEP_LLM_MODEL": "fake-1"})
    ui.login()
    page = ui.page
    page.get_by_test_id("new-conversation").click()
    expect(page.get_by_test_id("conversation-title")).to_have_text("New conversation")
    box = page.get_by_test_id("composer-input")
    expect(box).to_be_focused()
    box.press_sequentially("Where is the lighthouse?")
    box.press("Shift+Enter")  # a new line, not a send
    box.press_sequentially("Second line.")
    expect(page.get_by_test_id("message")).to_have_count(0)
    box.press("Enter")

    # The reply shows while it streams, then the stored conversation is shown again.
    expect(page.get_by_test_id("message-streaming")).to_contain_text("The lighthouse")
    messages = page.get_by_test_id("message")
    expect(messages).to_have_count(2)
    expect(page.get_by_test_id("message-streaming")).to_have_count(0)
    expect(messages.nth(0).get_by_test_id("message-body")).to_contain_text(
        "Where is the lighthouse?"
    )
    expect(messages.nth(0).get_by_test_id("message-body")).to_contain_text("Second line.")
    expect(messages.nth(1).get_by_test_id("message-body")).to_have_text(
        "The lighthouse keeper remembers."
    )
    expect(messages.nth(1).get_by_test_id("message-model")).to_have_text("fake-1")
    expect(box).to_have_value("")
    assert model_requests[0]["messages"][-1]["content"] == "Where is the lighthouse?\nSecond line."
    ui.shot("chat-view-composer")

    # A second message continues the shown path.
    box.press_sequentially("And the keeper?")
    page.get_by_test_id("composer-send").click()
    expect(messages).to_have_count(4)
    hash_path = page.url.split("#", 1)[1]
    conversation = hash_path.split("/")[4]
    stored = ui.call("GET", f"/api/conversations/{conversation}")["messages"]
    assert [m["role"] for m in stored] == ["user", "assistant", "user", "assistant"]
    assert stored[0]["parts"][0]["text"] == "Where is the lighthouse?\nSecond line."
    assert all(m["parent_id"] == p["id"] for p, m in itertools.pairwise(stored))

    # Restart (a new port): the browser's session is in the vault, so it still works.
    assert ui.served is not None
    ui.served.stop()
    ui.start()
    page.goto(f"{ui.served.url}/#{hash_path}")
    expect(page.get_by_test_id("login")).to_have_count(0)
    expect(messages).to_have_count(4)
    expect(messages.nth(0)).to_contain_text("Where is the lighthouse?")
    expect(messages.nth(3)).to_contain_text("The lighthouse keeper remembers.")
    expect(item(page, conversation)).to_contain_text("4 messages")


# -- e. hostile content ---------------------------------------------------------------------
PAYLOADS = "\n\n".join(
    [
        "<script>window.__pwned = 1; alert('script')</script>",
        "<img src=x onerror=\"window.__pwned = 1; alert('img')\">",
        "[click me](javascript:window.__pwned=1)",
        '<svg onload="window.__pwned = 1"><circle r="1"/></svg>',
        "<iframe src=\"javascript:alert('iframe')\"></iframe>",
        "![picture](javascript:alert('markdown-image'))",
        "<a href=\"javascript:alert('anchor')\">raw anchor</a>",
        "<style>body { display: none }</style>",
        '<math><mtext><table><mglyph><style><img src=x onerror="window.__pwned=1">',
    ]
)


def test_script_and_handler_payloads_render_inert(ui: Session) -> None:
    ui.start()
    hostile = ui.conversation("synth-001", "Hostile content")
    ui.call("PATCH", f"/api/conversations/{hostile}", {"title": '<img src=x onerror="alert(1)">'})
    first = ui.append(hostile, PAYLOADS, author='<b onmouseover="window.__pwned=1">eve</b>')
    second = ui.append(
        hostile,
        None,
        role="assistant",
        model="<script>alert('model')</script>",
        parts=[
            {"kind": "text", "text": "Some code:"},
            {
                "kind": "code",
                "text": "<script>window.__pwned = 1</script>",
                "data": {"language": "html"},
            },
        ],
        attachments=[
            {
                "name": '<img src=x onerror="window.__pwned=1">.txt',
                "mime_type": "text/html",
                "data_base64": base64.b64encode(b"<script>alert(1)</script>").decode(),
            }
        ],
    )
    ui.login()
    page = ui.page
    item(page, hostile).get_by_test_id("conversation-link").click()
    expect(message(page, first)).to_be_visible()
    expect(message(page, second)).to_be_visible()
    page.get_by_text("click me").click()
    message(page, first).get_by_test_id("message-role").hover()
    page.wait_for_timeout(300)  # time for any handler that would fire late

    assert page.evaluate("window.__pwned") is None
    bodies = page.get_by_test_id("message-body")
    dangerous = "script, img, svg, iframe, style, object, embed, math, form, input, link, meta"
    expect(bodies.locator(dangerous)).to_have_count(0)
    expect(page.locator("[onerror], [onload], [onmouseover], [onclick]")).to_have_count(0)
    expect(page.locator("[href^='javascript:' i], [src^='javascript:' i]")).to_have_count(0)
    assert page.locator("#app script, #app img, #app iframe").count() == 0
    # The payloads show as the text they are.
    expect(message(page, first)).to_contain_text("<script>window.__pwned = 1;")
    expect(message(page, first)).to_contain_text("<img src=x onerror=")
    expect(message(page, first).get_by_test_id("message-role")).to_contain_text("<b onmouseover")
    expect(message(page, second).get_by_test_id("message-model")).to_have_text(
        "<script>alert('model')</script>"
    )
    expect(message(page, second).get_by_test_id("message-body")).to_contain_text(
        "<script>window.__pwned = 1</script>"
    )
    expect(message(page, second).get_by_test_id("attachment")).to_contain_text("<img src=x")
    expect(page.get_by_test_id("conversation-title")).to_have_text('<img src=x onerror="alert(1)">')
    expect(item(page, hostile).get_by_test_id("conversation-name")).to_have_text(
        '<img src=x onerror="alert(1)">'
    )
    ui.shot("chat-view-hostile-content-inert")

    # Search snippets are built from text and <mark> elements only.
    page.get_by_test_id("nav-search").click()
    page.get_by_test_id("search-input").fill("pwned")
    page.get_by_test_id("search-input").press("Enter")
    expect(page.get_by_test_id("search-result").first).to_be_visible()
    results = page.get_by_test_id("search-results")
    expect(results.locator("img, script, svg, iframe")).to_have_count(0)
    expect(results.locator("mark").first).to_be_visible()
    assert page.evaluate("window.__pwned") is None
    assert ui.dialogs == []


# -- f. sibling branches --------------------------------------------------------------------
def test_sibling_branch_navigation(ui: Session) -> None:
    ui.start()
    colour = ui.conversation("synth-001", "Colour question")
    question = ui.append(colour, "Which colour should the bikeshed be?")
    blue = ui.append(colour, "Blue, like the open sea.", role="assistant", parent_id=question)
    why = ui.append(colour, "Why blue?", parent_id=blue)
    green = ui.append(colour, "Green, like moss.", role="assistant", parent_id=question)
    active = ui.call("GET", f"/api/conversations/{colour}")["conversation"]["active_leaf_id"]
    assert active == green
    ui.login()
    page = ui.page
    item(page, colour).get_by_test_id("conversation-link").click()
    messages = page.get_by_test_id("message")
    expect(messages).to_have_count(2)
    expect(message(page, green).get_by_test_id("branch-label")).to_have_text("2/2")
    expect(message(page, green).get_by_test_id("branch-next")).to_be_disabled()
    expect(message(page, question).get_by_test_id("branch-label")).to_have_count(0)

    message(page, green).get_by_test_id("branch-prev").click()
    expect(messages).to_have_count(3)  # the latest branch holding "blue" goes on to "why"
    expect(message(page, blue).get_by_test_id("branch-label")).to_have_text("1/2")
    expect(message(page, blue).get_by_test_id("branch-prev")).to_be_disabled()
    expect(message(page, why)).to_be_visible()
    expect(message(page, green)).to_have_count(0)
    ui.shot("chat-view-branches")

    page.reload()  # the shown branch is in the address
    expect(messages).to_have_count(3)
    expect(message(page, blue).get_by_test_id("branch-label")).to_have_text("1/2")

    message(page, blue).get_by_test_id("branch-next").click()
    expect(messages).to_have_count(2)
    expect(message(page, green).get_by_test_id("branch-label")).to_have_text("2/2")

    # A search hit on the other branch opens that branch at the message.
    page.get_by_test_id("nav-search").click()
    page.get_by_test_id("search-input").fill("sea")
    page.get_by_test_id("search-input").press("Enter")
    page.get_by_test_id("search-result").first.click()
    expect(message(page, blue)).to_have_class(re.compile(r"\btarget\b"))
    expect(messages).to_have_count(3)
    expect(message(page, blue).get_by_test_id("branch-label")).to_have_text("1/2")


# -- g. the whole tour, without one CSP violation -----------------------------------------------
def test_walk_through_every_screen_without_csp_violations(ui: Session) -> None:
    needs_fixture(MODERN_EXPORT)
    ui.start()
    report = ui.conversation("synth-001", "Quarterly report")
    asked = ui.append(report, "Summarise the **quarterly** numbers, with a table.")
    ui.append(
        report,
        "| quarter | revenue |\n|---|---|\n| Q1 | 10 |\n| Q2 | 12 |\n\n"
        "```python\nprint(sum([10, 12]))\n```",
        role="assistant",
        model="gpt-4o",
        parent_id=asked,
        attachments=[{"name": "numbers.csv", "mime_type": "text/csv", "data_base64": "cSwxMAo="}],
    )
    old = ui.conversation("synth-001", "Old idea")
    scratch = ui.conversation("synth-001", "Scratch")
    ui.login()
    page = ui.page
    ui.shot("chat-view-home")

    # chat, with a table, highlighted code and an attachment; the composer
    item(page, report).get_by_test_id("conversation-link").click()
    expect(page.get_by_test_id("message-body").locator("table")).to_be_visible()
    expect(page.get_by_test_id("message-body").locator("pre.hl")).to_be_visible()
    attachment = page.get_by_test_id("attachment")
    expect(attachment).to_have_attribute("href", re.compile(r"^/api/attachments/a_"))
    page.get_by_test_id("composer-input").fill("Looks right, thanks.")
    page.get_by_test_id("composer-send").click()
    expect(page.get_by_test_id("message")).to_have_count(3)
    ui.shot("chat-view")

    # rename through the modal (not window.prompt)
    page.get_by_test_id("chat-menu").click()
    page.get_by_test_id("chat").get_by_test_id("action-rename").click()
    page.get_by_test_id("modal-input").fill("Quarterly report (final)")
    page.get_by_test_id("modal-confirm").click()
    expect(page.get_by_test_id("conversation-title")).to_have_text("Quarterly report (final)")
    expect(item(page, report)).to_contain_text("Quarterly report (final)")

    # search
    page.get_by_test_id("nav-search").click()
    page.get_by_test_id("search-input").fill("quarterly")
    page.get_by_test_id("search-input").press("Enter")
    expect(page.get_by_test_id("search-result").first).to_be_visible()
    page.get_by_test_id("search-result").first.click()
    expect(page.locator("[data-testid=message].target")).to_be_in_viewport()

    # archive, then the archive view, then unarchive
    item(page, old).get_by_test_id("conversation-menu").click()
    item(page, old).get_by_test_id("action-archive").click()
    expect(item(page, old)).to_have_count(0)
    expect(page.get_by_test_id("notice")).to_contain_text("Archived")
    page.get_by_test_id("nav-archive").click()
    shelf = page.get_by_test_id("shelf-item")
    expect(shelf).to_have_count(1)
    expect(shelf).to_contain_text("Old idea")
    ui.shot("archive-view")
    shelf.get_by_test_id("shelf-unarchive").click()
    expect(shelf).to_have_count(0)
    expect(item(page, old)).to_be_visible()

    # trash, restore, trash again, delete for good (confirmed in a modal)
    item(page, scratch).get_by_test_id("conversation-menu").click()
    item(page, scratch).get_by_test_id("action-trash").click()
    expect(item(page, scratch)).to_have_count(0)
    page.get_by_test_id("nav-trash").click()
    expect(shelf).to_have_count(1)
    ui.shot("trash-view")
    shelf.get_by_test_id("shelf-restore").click()
    expect(shelf).to_have_count(0)
    expect(item(page, scratch)).to_be_visible()
    item(page, scratch).get_by_test_id("conversation-menu").click()
    item(page, scratch).get_by_test_id("action-trash").click()
    page.get_by_test_id("nav-trash").click()
    shelf.get_by_test_id("shelf-delete").click()
    expect(page.get_by_test_id("modal")).to_contain_text("cannot be undone")
    page.get_by_test_id("modal-confirm").click()
    expect(shelf).to_have_count(0)
    with ui.served.client(ui.secret) as client:  # type: ignore[union-attr]
        assert client.get(f"/api/conversations/{scratch}").status_code == 404

    # an API error shows in a dismissible banner
    page.goto(f"{ui.served.url}/#/r/synth-001/c/c_00000000000000000000000000")  # type: ignore[union-attr]
    error = page.get_by_test_id("error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("not_found")
    page.get_by_test_id("error-dismiss").click()
    expect(error).to_be_hidden()

    # import another export
    page.get_by_test_id("nav-import").click()
    page.get_by_test_id("import-file").set_input_files(str(MODERN_EXPORT))
    page.get_by_test_id("import-submit").click()
    expect(page.get_by_test_id("conversation-title")).to_have_text(re.compile("^chat_with_chatgpt"))
    expect(page.get_by_test_id("runtime-switcher")).not_to_have_value("synth-001")
    first = page.get_by_test_id("conversation-item").first
    expect(first).to_have_class(re.compile(r"\bactive\b"))
    expect(first.get_by_test_id("pin-icon")).to_be_visible()
    page.get_by_test_id("runtime-switcher").select_option("synth-001")
    expect(page.get_by_test_id("conversation-title")).to_have_text("chat_with_synth-001")

    # settings: theme (kept in the vault), tokens, logout, and logging in with a token
    page.get_by_test_id("nav-settings").click()
    expect(page.get_by_test_id("settings-user")).to_have_text("alice")
    ui.shot("settings")
    page.get_by_test_id("theme-select").select_option("dark")
    expect(page.locator("body")).to_have_class(re.compile(r"\btheme-dark\b"))
    wait_for(
        lambda: ui.call("GET", "/api/settings/ui.theme")["value"] == "dark", "ui.theme to be saved"
    )
    page.reload()
    expect(page.locator("body")).to_have_class(re.compile(r"\btheme-dark\b"))
    page.get_by_test_id("token-name").fill("ci-script")
    page.get_by_test_id("token-create").click()
    expect(page.get_by_test_id("token-secret")).to_have_text(re.compile(r"^ck_"))
    secret = page.get_by_test_id("token-secret").text_content()
    page.get_by_test_id("token-secret-box").scroll_into_view_if_needed()
    ui.shot("settings-dark-new-token")
    row = page.locator("[data-testid=token-row]", has_text="ci-script")
    row.get_by_test_id("token-revoke").click()
    page.get_by_test_id("modal-confirm").click()
    expect(row).to_contain_text("revoked")
    item(page, report).get_by_test_id("conversation-link").click()
    expect(page.get_by_test_id("message").first).to_be_visible()
    ui.shot("chat-view-dark")

    page.get_by_test_id("nav-settings").click()
    page.get_by_test_id("logout").click()
    expect(page.get_by_test_id("login")).to_be_visible()
    ui.shot("login")
    page.get_by_test_id("login-token").fill(str(secret))  # revoked: refused
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("error")).to_contain_text("unauthorized")
    page.get_by_test_id("login-token").fill(ui.secret)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("sidebar")).to_be_visible()
    expect(page.get_by_test_id("conversation-title")).to_be_visible()
    # A login link opened in the tab that shows the login view (only the hash changes).
    page.get_by_test_id("nav-settings").click()
    page.get_by_test_id("logout").click()
    expect(page.get_by_test_id("login")).to_be_visible()
    page.goto(ui.served.login_url)  # type: ignore[union-attr]
    expect(page.get_by_test_id("conversation-title")).to_be_visible()
    assert "#login=" not in page.url

    assert ui.csp == []
    ui.assert_clean()


def test_a_draft_is_kept_server_side_and_offered_back_in_a_cleared_browser(
    ui: Session, browser: Browser
) -> None:
    ui.start()
    ui.login()
    page = ui.page
    home = ui.call("GET", "/api/runtimes/synth-001/route")["id"]
    box = page.get_by_test_id("composer-input")
    box.fill("a thought I have not sent yet")
    wait_for(
        lambda: (
            ui.call("GET", f"/api/conversations/{home}/draft")["text"]
            == "a thought I have not sent yet"
        ),
        "the draft to reach the vault",
    )
    # A new browser context: no cookies, no storage, as after clearing the browser.
    fresh = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        other = fresh.new_page()
        assert ui.served is not None
        other.goto(ui.served.login_url)
        expect(other.get_by_test_id("composer-input")).to_have_value(
            "a thought I have not sent yet"
        )
    finally:
        fresh.close()
    page.get_by_test_id("composer-send").click()
    wait_for(
        lambda: ui.call("GET", f"/api/conversations/{home}/draft")["text"] == "",
        "the sent draft to be cleared",
    )


def test_settings_show_a_usage_chart(ui: Session) -> None:
    ui.start()
    for day, tokens in (("2026-11-01T10:00:00Z", 100), ("2026-11-02T10:00:00Z", 300)):
        ui.call("POST", "/api/usage", {"model": "m-1", "tokens_in": tokens, "at": day})
    ui.login()
    ui.page.get_by_test_id("nav-settings").click()
    chart = ui.page.get_by_test_id("usage-chart")
    expect(chart).to_be_visible()
    expect(chart.locator("rect")).to_have_count(2)
    heights = [
        float(h)
        for h in chart.locator("rect").evaluate_all(
            "bars => bars.map(b => b.getAttribute('height'))"
        )
    ]
    assert heights[1] == 120 and 35 < heights[0] < 45
    ui.shot("settings-usage-chart")
