"""``OUT/index.html``: one static page to review a run's targets (``sansa predict --html``).

A grid of cards, one per target: its thumbnail (masks drawn) linking to the full overlay picture
(or the mask), its name, and per class the score and the area. The cards are rendered here, in
HTML (names escaped), so the page shows everything without its script; a small inline script
sorts them (score, area, name; up or down) and filters them by class. The server-side order is
the lowest score first, so failures are at the top.

The page is self-contained and offline: one file, no fonts, scripts or styles from anywhere,
and a Content-Security-Policy that allows only its own inline style and script (by hash) and
images from files beside it. Thumbnails load lazily, so a run of thousands stays quick.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence
from urllib.parse import quote

from sansa_cli.artifacts.files import atomic_path

#: the sort key of a target with nothing found: below every score, so it is listed first
NOTHING_FOUND = -1.0
SORTS = (("score-asc", "score, lowest first"), ("score-desc", "score, highest first"),
         ("area-asc", "area, smallest first"), ("area-desc", "area, largest first"),
         ("name-asc", "name, A to Z"), ("name-desc", "name, Z to A"))


@dataclass(frozen=True)
class ReviewClass:
    """One class in one target: its ``name``, ``score`` (e.g. predicted IoU; None if the run
    has none), ``area`` (fraction of the target, 0-1) and ``colour_index`` (its overlay colour)."""

    name: str
    score: float | None
    area: float
    colour_index: int = 0


@dataclass(frozen=True)
class ReviewItem:
    """One target on the page. ``target`` is the name shown (e.g. its path relative to the
    targets' folder); ``thumbnail`` and ``link`` (the overlay, or the mask without one) are
    paths relative to the page's folder, or None. ``sort_score`` defaults to the lowest score of
    the classes found, and to :data:`NOTHING_FOUND` when no class covers any pixel."""

    target: str
    thumbnail: str | None
    link: str | None
    classes: Sequence[ReviewClass]
    sort_score: float | None = None

    @property
    def found(self) -> bool:
        return any(c.area > 0 for c in self.classes)

    def sort_key(self) -> float:
        if self.sort_score is not None:
            return float(self.sort_score)
        if not self.found:
            return NOTHING_FOUND
        scores = [c.score for c in self.classes if c.area > 0 and c.score is not None]
        return min(scores, default=0.0)


def write_review_page(out_dir: Path, items: Iterable[ReviewItem], title: str,
                      summary: dict | None = None, score_label: str = "score") -> Path:
    """Write ``out_dir/index.html`` atomically and return its path. ``summary``'s scalar
    entries (model, adapters, input profile, date, ...) are listed as the run's settings (lists
    and mappings as compact JSON; a ``targets`` entry is left out); ``score_label`` names what
    the scores are (e.g. ``"predicted IoU"``)."""
    from sansa_cli.visualize.pictures import class_colour

    listed = sorted(items, key=lambda item: item.sort_key())  # stable: ties keep their order
    names: dict[int, str] = {}
    for item in listed:
        for cls in item.classes:
            names.setdefault(cls.colour_index, cls.name)
    style = _STYLE + "".join(f".c{k}{{background:rgb{class_colour(k)}}}" for k in sorted(names))
    path = Path(out_dir) / "index.html"
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as page:
        page.write(_head(title, style))
        page.write(_header(title, listed, names, summary or {}, score_label))
        page.write('<main id="grid">\n')
        for index, item in enumerate(listed):
            page.write(_card(index, item))
        page.write(f"</main>\n<script>{_SCRIPT}</script>\n</body>\n</html>\n")
    return path


def _digest(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def _head(title: str, style: str) -> str:
    policy = (f"default-src 'none'; img-src 'self' file: data:; style-src {_digest(style)}; "
              f"script-src {_digest(_SCRIPT)}; base-uri 'none'; form-action 'none'")
    return ('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{policy}">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>{style}</style>\n</head>\n<body>\n")


def _header(title: str, items: list[ReviewItem], names: dict[int, str], summary: dict,
            score_label: str) -> str:
    missing = sum(not item.found for item in items)
    settings = "".join(f"<dt>{html.escape(str(key))}</dt><dd>{html.escape(_setting(value))}</dd>"
                       for key, value in summary.items() if key != "targets")
    sorts = "".join(f'<option value="{value}">{html.escape(text)}</option>'
                    for value, text in SORTS)
    classes = "".join(f'<option value="{k}">{html.escape(names[k])}</option>'
                      for k in sorted(names))
    return (f"<header>\n<h1>{html.escape(title)}</h1>\n"
            f'<p class="count"><span id="shown">{len(items)}</span> of '
            f'<span id="total">{len(items)}</span> targets shown; {missing} with nothing found. '
            f"Score: {html.escape(score_label)}.</p>\n"
            f'<dl class="settings">{settings}</dl>\n<div class="controls">\n'
            f'<label>sort <select id="sort">{sorts}</select></label>\n'
            '<label>show <select id="filter"><option value="">every target</option>'
            f'<option value="none">nothing found</option>{classes}</select></label>\n'
            "</div>\n</header>\n")


def _setting(value) -> str:
    if isinstance(value, (dict, list, tuple)):
        text = json.dumps(value, separators=(", ", ": "), default=str)
        return text if len(text) <= 300 else text[:299] + "…"
    return "-" if value is None else str(value)


def _url(relative: str) -> str:
    """A relative file path as a URL path (``#``, ``?``, ``%`` and spaces encoded)."""
    return quote(Path(relative).as_posix(), safe="/")


def _card(index: int, item: ReviewItem) -> str:
    found = " ".join(str(c.colour_index) for c in item.classes if c.area > 0) or "none"
    area = sum(c.area for c in item.classes)
    name = html.escape(item.target)
    picture = (f'<img src="{html.escape(_url(item.thumbnail))}" loading="lazy" alt="{name}">'
               if item.thumbnail else '<span class="blank">no picture</span>')
    if item.link:
        picture = f'<a href="{html.escape(_url(item.link))}">{picture}</a>'
    rows = "".join(
        f'<li><i class="sw c{c.colour_index}"></i>{html.escape(c.name)} '
        f'<b>{"-" if c.score is None else f"{c.score:.2f}"}</b> {100 * c.area:.1f}%</li>'
        for c in item.classes) or "<li>no class</li>"
    flag = "" if item.found else ' <em class="none">nothing found</em>'
    return (f'<figure class="card" data-index="{index}" data-score="{item.sort_key():.6g}" '
            f'data-area="{area:.6g}" data-name="{html.escape(item.target.lower())}" '
            f'data-classes="{found}">{picture}<figcaption><span class="name">{name}</span>'
            f"{flag}<ul>{rows}</ul></figcaption></figure>\n")


_STYLE = """
body{margin:0;font:14px/1.4 system-ui,sans-serif;background:#f4f4f4;color:#111}
header{padding:12px 16px;background:#202020;color:#eee}
h1{margin:0 0 6px;font-size:18px;overflow-wrap:anywhere}
.settings{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:8px 0;
font-size:12px;color:#bbb}
.settings dt{font-weight:600}.settings dd{margin:0;overflow-wrap:anywhere}
.controls label{margin-right:16px}
#grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(240px,1fr));gap:12px;
padding:16px}
.card{margin:0;background:#fff;border:1px solid #ccc;border-radius:4px;padding:6px}
.card[hidden]{display:none}
.card img,.card .blank{display:block;width:100%;height:180px;object-fit:contain;
background:#222}
.card .blank{color:#aaa;text-align:center;line-height:180px}
.name{display:block;font-weight:600;overflow-wrap:anywhere}
.none{color:#b00000;font-style:normal;font-weight:600}
.card ul{list-style:none;margin:4px 0 0;padding:0}
.sw{display:inline-block;width:10px;height:10px;margin-right:6px;border:1px solid #000}
"""

_SCRIPT = """
(function () {
  var grid = document.getElementById("grid");
  var cards = Array.prototype.slice.call(grid.children);
  var sort = document.getElementById("sort"), show = document.getElementById("filter");
  var shown = document.getElementById("shown");
  function key(card, name) {
    return name === "name" ? card.dataset.name : parseFloat(card.dataset[name]);
  }
  function apply() {
    var parts = sort.value.split("-"), sign = parts[1] === "desc" ? -1 : 1;
    var ordered = cards.slice().sort(function (a, b) {
      var x = key(a, parts[0]), y = key(b, parts[0]);
      var c = parts[0] === "name" ? x.localeCompare(y) : (x < y ? -1 : x > y ? 1 : 0);
      return c * sign || a.dataset.index - b.dataset.index;
    });
    var fragment = document.createDocumentFragment(), count = 0;
    ordered.forEach(function (card) {
      var visible = !show.value || card.dataset.classes.split(" ").indexOf(show.value) >= 0;
      card.hidden = !visible;
      count += visible ? 1 : 0;
      fragment.appendChild(card);
    });
    grid.appendChild(fragment);
    shown.textContent = String(count);
  }
  sort.addEventListener("change", apply);
  show.addEventListener("change", apply);
  apply();
})();
"""
