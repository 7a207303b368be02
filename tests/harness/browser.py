"""Headless Chromium for tests: open an HTML file as a browser does, let its scripts run, read back the DOM, take a
screenshot. Shared by every test of an HTML page (the fleet report first).

Chromium is Debian's ``chromium`` (scripts/setup.sh installs it); ``ASCEND_FA_CHROMIUM`` names another binary. Tests
use the ``browser`` fixture (tests/conftest.py): without Chromium it skips with the reason, except under ``CI=true``
where a missing browser FAILS the test (``ci_policy.in_ci``: a CI that cannot run the browser checks must not pass
them).

    def test_page(browser, tmp_path):
        page = browser.render(path_to_html, screenshot="page.png")
        assert page.dom.title == "expected" and not page.dom.find("script")

``render`` runs Chromium twice: ``--dump-dom`` (the DOM after scripts and load handlers ran; ``--virtual-time-budget``
lets timers and error handlers of failed image loads fire first) and, when asked, ``--screenshot`` at 1400x900 into the
test's output folder (``$ASCEND_FA_TEST_OUTPUT`` or ``<repo>/.work/test-output``, one sub-folder per test).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENV_BINARY = "ASCEND_FA_CHROMIUM"
ENV_OUTPUT = "ASCEND_FA_TEST_OUTPUT"
NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WINDOW = (1400, 900)
TIMEOUT_S = 180
VIRTUAL_TIME_MS = 3000
# no network, no background services, no sandbox (tests run as root in containers), no GPU, small /dev/shm
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
         "--disable-extensions", "--hide-scrollbars", "--mute-audio")


def find_chromium() -> str | None:
    """The Chromium binary: ``$ASCEND_FA_CHROMIUM``, else the first of :data:`NAMES` on PATH (or /usr/bin)."""
    if os.environ.get(ENV_BINARY):
        return shutil.which(os.environ[ENV_BINARY]) or None
    for name in NAMES:
        found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").is_file() else None)
        if found:
            return found
    return None


def output_dir(test_name: str) -> Path:
    """``$ASCEND_FA_TEST_OUTPUT/<test>`` (default ``<repo>/.work/test-output/<test>``; created by the first file)."""
    base = Path(os.environ.get(ENV_OUTPUT) or ROOT / ".work" / "test-output")
    return base / re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name).strip("_")[:120]


# ------------------------------------------------------------------------------------------------ the DOM
@dataclass
class Element:
    tag: str
    attrs: dict[str, str]


@dataclass
class Dom:
    """A parsed page: every element with its attributes, the text nodes (not those of style/script), the title."""

    html: str
    elements: list[Element] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    title: str | None = None

    @property
    def text(self) -> str:
        return "\n".join(self.texts)

    def find(self, tag: str) -> list[Element]:
        return [e for e in self.elements if e.tag == tag.lower()]

    def attr_values(self) -> list[str]:
        return [v for e in self.elements for v in e.attrs.values()]

    def event_handlers(self) -> list[tuple[str, str, str]]:
        """(tag, attribute, value) of every ``on*`` attribute: a page of ours has none."""
        return [(e.tag, k, v) for e in self.elements for k, v in e.attrs.items() if k.startswith("on")]

    def script_urls(self) -> list[tuple[str, str, str]]:
        """(tag, attribute, value) of every URL attribute with a javascript:/vbscript:/data: scheme."""
        bad = re.compile(r"^\s*(javascript|vbscript|data)\s*:", re.I)
        return [(e.tag, k, v) for e in self.elements for k, v in e.attrs.items()
                if k in ("href", "src", "xlink:href", "action", "formaction", "srcdoc", "data") and bad.match(v)]


class _Parser(HTMLParser):
    def __init__(self, dom: Dom):
        super().__init__(convert_charrefs=True)
        self.dom, self.stack = dom, []
        self.in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.dom.elements.append(Element(tag, {k: v or "" for k, v in attrs}))
        if tag not in ("meta", "link", "br", "img", "input", "hr", "col", "source", "wbr", "area", "base", "embed"):
            self.stack.append(tag)
        self.in_title = tag == "title" and "svg" not in self.stack[:-1]

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.dom.elements.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if tag in self.stack:
            while self.stack and self.stack.pop() != tag:
                pass
        self.in_title = False

    def handle_data(self, data: str) -> None:
        if self.in_title and self.dom.title is None:
            self.dom.title = data
        if not (self.stack and self.stack[-1] in ("style", "script")):
            self.dom.texts.append(data)


def parse_dom(html: str) -> Dom:
    """The elements, text nodes and title of ``html`` (stdlib parser; for a page as served or as dumped by Chromium)."""
    dom = Dom(html)
    p = _Parser(dom)
    p.feed(html)
    p.close()
    return dom


# ------------------------------------------------------------------------------------------------ the browser
@dataclass
class Rendered:
    dom: Dom
    screenshot: Path | None


class ChromiumError(RuntimeError):
    pass


@dataclass
class Browser:
    """Chromium at ``binary``; a fresh profile under ``work`` per call; screenshots into ``out_dir``."""

    binary: str
    work: Path
    out_dir: Path
    window: tuple[int, int] = WINDOW
    _runs: int = 0

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        self._runs += 1
        profile = self.work / f"chromium-profile-{self._runs}"
        cmd = [self.binary, *FLAGS, f"--user-data-dir={profile}", *args]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            raise ChromiumError(f"chromium did not finish in {TIMEOUT_S}s: {' '.join(cmd)}") from exc
        finally:
            shutil.rmtree(profile, ignore_errors=True)
        if p.returncode != 0:
            raise ChromiumError(f"chromium exited {p.returncode}: {' '.join(cmd)}\n{p.stderr[-3000:]}")
        return p

    def dump_dom(self, page: str | os.PathLike[str]) -> Dom:
        """The DOM after the page's scripts, load and error handlers ran (serialised by Chromium, then parsed)."""
        uri = Path(page).resolve().as_uri()
        p = self._run(f"--virtual-time-budget={VIRTUAL_TIME_MS}", "--dump-dom", uri)
        if "<html" not in p.stdout:
            raise ChromiumError(f"no DOM from chromium for {uri}: {p.stdout[:500]!r} {p.stderr[-1500:]}")
        return parse_dom(p.stdout)

    def screenshot(self, page: str | os.PathLike[str], name: str = "page.png") -> Path:
        """A PNG of the page at the window size, saved as ``out_dir/name``."""
        shot = self.out_dir / name
        self.out_dir.mkdir(parents=True, exist_ok=True)
        shot.unlink(missing_ok=True)
        self._run(f"--window-size={self.window[0]},{self.window[1]}", f"--virtual-time-budget={VIRTUAL_TIME_MS}",
                  f"--screenshot={shot}", Path(page).resolve().as_uri())
        data = shot.read_bytes() if shot.is_file() else b""
        if data[:8] != b"\x89PNG\r\n\x1a\n":
            raise ChromiumError(f"chromium wrote no PNG at {shot}")
        return shot

    def render(self, page: str | os.PathLike[str], screenshot: str | None = None) -> Rendered:
        """The DOM after scripts ran, and a screenshot named ``screenshot`` (none when None)."""
        return Rendered(self.dump_dom(page), self.screenshot(page, screenshot) if screenshot else None)
