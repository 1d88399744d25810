"""Open report pages in headless Chromium (Debian's package) through Playwright.

A test that calls :func:`check_pages` carries ``@pytest.mark.browser`` (pytest.ini).
"""

import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


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
            load_lazy_images(page)
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


#: Scroll the page a viewport at a time to its end, so that ``loading="lazy"`` images start loading.
_SCROLL_THROUGH = """async () => {
    for (let y = 0; y < document.documentElement.scrollHeight; y += window.innerHeight) {
        window.scrollTo(0, y);
        await new Promise(r => requestAnimationFrame(() => setTimeout(r, 10)));
    }
    window.scrollTo(0, 0);
}"""


_LOAD_SIDEWAYS = """() => document.querySelectorAll('img[loading=lazy]').forEach(i => {
    if (!i.complete) { i.setAttribute('data-was-lazy', ''); i.loading = 'eager'; }
})"""


def load_lazy_images(page, timeout_ms=30000):
    """Scroll ``page`` through so that its lazy images load, and wait until every image is complete.

    An image that fails to load is complete too (with ``naturalWidth`` 0), so a broken image is
    reported by the caller, not waited for.
    """
    page.evaluate(_SCROLL_THROUGH)
    # Images off to the side of a wide table (a dozen saliency methods) load only when scrolled to
    # sideways: load those eagerly, then give them their lazy attribute back (pages are checked for it).
    page.evaluate(_LOAD_SIDEWAYS)
    page.wait_for_function("Array.from(document.images).every(i => i.complete)", timeout=timeout_ms)
    page.evaluate(
        "document.querySelectorAll('img[data-was-lazy]').forEach(i => { i.loading = 'lazy'; i.removeAttribute('data-was-lazy'); })"
    )


def inspect_pages(paths, screenshots=None):
    """Open each page of ``paths`` in headless Chromium (1280 x 900), load its lazy images, and describe it.

    Parameters
    ----------
    paths : list of Path
        Local HTML files.
    screenshots : dict, optional
        Path of a page to the PNG file of its screenshot (the first screen, taken before
        scrolling, so before lazy images below it load).

    Returns
    -------
    dict
        For each path, a dict with ``images`` (one dict per ``<img>``: ``src``, ``loading``,
        ``width`` and ``height`` attributes, ``natural`` width once loaded), ``errors`` (console
        and page errors) and ``links`` (absolute ``href`` of every link).
    """
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    if executable is None:
        pytest.fail("Chromium is not installed: apt-get install chromium (as .ci/run does)")
    screenshots = {Path(k).resolve(): v for k, v in (screenshots or {}).items()}
    results = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        for path in paths:
            path = Path(path).resolve()
            errors.clear()
            page.goto(path.as_uri())
            page.wait_for_load_state("load")
            if path in screenshots:
                page.screenshot(path=str(screenshots[path]), full_page=False)
            load_lazy_images(page)
            images = page.evaluate(
                """Array.from(document.images).map(i => ({src: i.getAttribute('src'), loading: i.getAttribute('loading'),
                   width: i.getAttribute('width'), height: i.getAttribute('height'), natural: i.complete ? i.naturalWidth : 0}))"""
            )
            links = page.evaluate("Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
            results[path] = {"images": images, "errors": list(errors), "links": links}
        browser.close()
    return results
