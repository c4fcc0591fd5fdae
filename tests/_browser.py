"""Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright, with the network blocked.

``browser()`` is a module-scoped fixture factory; ``open_page(browser, path)`` loads a file:// page
and returns ``(page, log)``; ``log.problems()`` lists every page error, console error, unhandled
promise rejection and request to anything other than file:// or data: (each such request is
aborted). Tests skip with the reason when Playwright or the browser is missing; they never run
``playwright install`` (which downloads a browser).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CONV3D_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
#: recorded before any page script runs: a rejected promise nobody handles
REJECTIONS = """window.__rejections = [];
window.addEventListener('unhandledrejection', function (e) {
  window.__rejections.push(String(e.reason && (e.reason.stack || e.reason.message) || e.reason));
});"""


def launch():
    """(playwright, browser), or pytest.skip with the reason."""
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is not installed: pip install -e '.[test]'")
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.skip(f"no browser at {CHROMIUM}: apt-get install chromium (or set CONV3D_CHROMIUM)")
    pw = sync_api.sync_playwright().start()
    try:
        return pw, pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    except Exception as err:  # a browser that is there but cannot start: say why, do not pass
        pw.stop()
        pytest.skip(f"{CHROMIUM} did not start under Playwright: {err}")


class Log:
    def __init__(self):
        self.errors, self.console, self.external = [], [], []
        self.page = None

    def problems(self) -> list[str]:
        rejections = self.page.evaluate("window.__rejections || []") if self.page else []
        return ([f"page error: {e}" for e in self.errors] +
                [f"console error: {m}" for m in self.console] +
                [f"unhandled rejection: {r}" for r in rejections] +
                [f"external request (blocked): {u}" for u in self.external])


def open_page(browser, path, width=1280, height=900, server=None):
    """Load ``path`` (a file), or ``server + path`` when a local ``server`` origin such as
    http://127.0.0.1:8000 is given; that origin is the only one besides file: and data: that
    is let through."""
    page = browser.new_page(viewport={"width": width, "height": height})
    log = Log()
    log.page = page
    page.add_init_script(REJECTIONS)
    page.on("pageerror", lambda err: log.errors.append(str(err)))
    page.on("console", lambda msg: msg.type == "error" and log.console.append(msg.text))

    def route(r):
        url = r.request.url
        if url.startswith(("file:", "data:")) or (server and url.startswith(server + "/")):
            r.continue_()
        else:
            log.external.append(url)
            r.abort()
    page.route("**/*", route)
    page.goto(f"{server}/{path}" if server else Path(path).resolve().as_uri())
    page.wait_for_function("window.explorer !== undefined || document.readyState === 'complete'")
    return page, log


def set_slider(page, selector, value):
    """Move a range input with the keyboard, as a user would: Home, then ArrowRight steps."""
    slider = page.locator(selector)
    lo = int(slider.get_attribute("min"))
    slider.focus()
    page.keyboard.press("Home")
    for _ in range(int(value) - lo):
        page.keyboard.press("ArrowRight")
