"""The review page: its HTML (escaped, offline, atomic), then the page in a real headless
Chromium (Debian's, driven by Selenium): it loads offline from file://, shows every item, sorts
and filters, and shows hostile names as text.

The browser tests carry the ``browser`` marker. Without /usr/bin/chromium and
/usr/bin/chromedriver they are skipped, unless SANSA_REQUIRE_BROWSER=1 (CI installs the browser
first and sets it), where they fail.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from sansa_cli.visualize.review_page import (
    NOTHING_FOUND,
    ReviewClass,
    ReviewItem,
    write_review_page,
)
from tests.review_fixtures import HOSTILE_NAMES, review_items

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
BROWSER_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--window-size=1200,900")
SUMMARY = {"sam2": "sam2.1_hiera_large", "adapters": "default",
           "input_profile": {"resize": "pad"}, "date": "2026-11-02", "targets": [1, 2]}


class _Cards(HTMLParser):
    def __init__(self):
        super().__init__()
        self.cards, self.urls, self.names, self._in_name = [], [], [], False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "figure":
            self.cards.append(attrs)
        self.urls += [attrs[k] for k in ("src", "href") if k in attrs]
        self._in_name = attrs.get("class") == "name"

    def handle_data(self, data):
        if self._in_name:
            self.names.append(data)
            self._in_name = False


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> tuple[Path, list[ReviewItem]]:
    folder = tmp_path_factory.mktemp("review")
    items = review_items(folder, 30)
    write_review_page(folder, items, "run <1> & co", SUMMARY, score_label="predicted IoU")
    return folder / "index.html", items


def test_page_is_escaped_offline_and_sorted_lowest_first(page):
    path, items = page
    text = path.read_text(encoding="utf-8")
    parsed = _Cards()
    parsed.feed(text)
    assert len(parsed.cards) == len(items) == 30
    scores = [float(card["data-score"]) for card in parsed.cards]
    assert scores == sorted(scores) and scores[0] == NOTHING_FOUND
    assert set(HOSTILE_NAMES) <= set(parsed.names)  # shown as the very text, once parsed
    assert all(name not in text for name in HOSTILE_NAMES)  # never raw in the markup
    assert text.count("<script>") == 1 and "pwned</script>" not in text
    assert all(not re.match(r"[a-z]+:", url) for url in parsed.urls)  # relative files only
    assert any("%23" in url and "%3F" in url for url in parsed.urls)  # '#', '?' encoded
    policy = re.search(r'Content-Security-Policy" content="([^"]+)"', text).group(1)
    for tag in ("style", "script"):  # the policy allows exactly the page's own blocks
        body = re.search(rf"<{tag}>(.*?)</{tag}>", text, re.S).group(1)
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"{tag}-src 'sha256-{digest}'" in policy
    assert "default-src 'none'" in policy
    assert "<dt>date</dt><dd>2026-11-02</dd>" in text and "<dt>targets</dt>" not in text
    assert not list(path.parent.glob(".*.part"))


def test_sort_key_puts_nothing_found_first_and_uses_the_lowest_score():
    found = ReviewItem("a", None, None, [ReviewClass("x", 0.8, 0.1), ReviewClass("y", 0.3, 0.2),
                                         ReviewClass("z", 0.1, 0.0)])
    assert found.sort_key() == 0.3 and found.found  # z covers nothing: not its score
    empty = ReviewItem("b", None, None, [ReviewClass("x", 0.9, 0.0)])
    assert empty.sort_key() == NOTHING_FOUND and not empty.found
    assert ReviewItem("c", None, None, [], sort_score=0.5).sort_key() == 0.5


# --- in a real browser ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if missing:
        message = (f"{', '.join(missing)} not found: install Debian's chromium and "
                   "chromium-driver (apt-get install -y chromium chromium-driver)")
        if os.environ.get("SANSA_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*BROWSER_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    # the driver's path is given: Selenium Manager is not asked to find or download anything
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


def _open(driver, path: Path) -> str:
    driver.get_log("performance")  # drop what the browser's start-up page requested
    url = path.as_uri()
    driver.get(url)
    return url


def _cards(driver) -> list[dict]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('.card')).filter(c => !c.hidden)"
        ".map(c => ({score: +c.dataset.score, area: +c.dataset.area, name: c.dataset.name}))")


def _choose(driver, select_id: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("id", select_id)).select_by_value(value)


@pytest.mark.browser
def test_page_loads_offline_and_shows_every_item(browser, page):
    path, items = page
    url = _open(browser, path)
    assert len(_cards(browser)) == len(items)
    assert browser.find_element("id", "shown").text == str(len(items))
    from selenium.webdriver.support.ui import WebDriverWait

    loaded = "const i = document.images[0]; return i.complete && i.naturalWidth === 32"
    WebDriverWait(browser, 5).until(lambda d: d.execute_script(loaded))  # thumbnails load
    events = [json.loads(entry["message"])["message"] for entry in browser.get_log("performance")]
    requested = [e["params"]["request"]["url"] for e in events
                 if e["method"] == "Network.requestWillBeSent"
                 and e["params"].get("documentURL") == url]
    assert requested and all(u.startswith("file://") for u in requested), requested
    problems = [e["message"] for e in browser.get_log("browser") if e["level"] != "INFO"]
    assert not problems  # no policy violation: the inline style and script are allowed
    assert browser.execute_script(
        "return getComputedStyle(document.getElementById('grid')).display") == "grid"


@pytest.mark.browser
def test_sorting_and_filtering(browser, page):
    path, items = page
    _open(browser, path)
    for value, key, reverse in (("score-desc", "score", True), ("score-asc", "score", False),
                                ("area-desc", "area", True), ("name-asc", "name", False)):
        _choose(browser, "sort", value)
        order = [card[key] for card in _cards(browser)]
        assert order == sorted(order, reverse=reverse) and len(order) == len(items), value
    _choose(browser, "sort", "score-asc")
    assert _cards(browser)[0]["score"] == NOTHING_FOUND
    _choose(browser, "filter", "1")  # the second class, found on some targets only
    with_dog = sum(any(c.colour_index == 1 and c.area > 0 for c in i.classes) for i in items)
    assert len(_cards(browser)) == with_dog and 0 < with_dog < len(items)
    assert browser.find_element("id", "shown").text == str(with_dog)
    _choose(browser, "filter", "none")
    assert len(_cards(browser)) == sum(not item.found for item in items)


@pytest.mark.browser
def test_hostile_names_render_as_text(browser, page):
    path, _ = page
    _open(browser, path)
    shown = browser.execute_script(
        "return Array.from(document.querySelectorAll('.name')).map(n => n.textContent)")
    assert set(HOSTILE_NAMES) <= set(shown)
    assert browser.title == "run <1> & co"  # no injected script renamed the page
    assert browser.execute_script("return document.scripts.length") == 1
    assert browser.execute_script("return document.querySelectorAll('img[src=\"x\"]').length") == 0
