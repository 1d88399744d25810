"""Open report pages in headless Chromium (Debian's package) through Playwright.

A test that calls :func:`check_pages` carries ``@pytest.mark.browser`` (pytest.ini).
"""
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip


def chromium_path():
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def check_pages(index, screenshot=None):
    """Visit ``index`` and every local page it links to; return {page: (image widths, console errors, links)}.

    Fails the test if Chromium is missing: CI installs it (.ci/run).
    """
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    if executable is None:
        pytest.fail("Chromium is not installed: apt-get install chromium (as .ci/run does)")
    results = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        queue, seen = [index.resolve().as_uri()], set()
        while queue:
            url = queue.pop(0)
            if url in seen:
                continue
            seen.add(url)
            errors.clear()
            page.goto(url)
            page.wait_for_load_state("load")
            widths = page.evaluate("Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)")
            links = page.evaluate("Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
            results[url] = (widths, list(errors), links)
            if url == index.resolve().as_uri() and screenshot:
                page.screenshot(path=str(screenshot), full_page=False)
            pages = (link.split("#")[0] for link in links if link.startswith("file:"))
            queue.extend(p for p in pages if p.endswith(".html") and p not in seen)
            missing = [link for link in links if link.startswith("file:") and not Path(unquote(urlparse(link).path)).exists()]
            assert not missing, (url, missing)
        browser.close()
    return results
