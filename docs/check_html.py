"""Check a built HTML site: no broken internal link, no missing image.

Usage: ``python docs/check_html.py docs/_build/html``. Every ``href`` and ``src`` that is not
an external URL must name a file of the site, and a ``#fragment`` must name an ``id`` in that
file. Exit code 1 with one line per problem, else 0 with a summary.
"""

from __future__ import annotations

import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

EXTERNAL = ("http:", "https:", "mailto:", "data:", "javascript:", "ftp:")


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[tuple[str, str]] = []  # (tag, url)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for key in ("id", "name"):
            if a.get(key) and (key == "id" or tag == "a"):
                self.ids.add(str(a[key]))
        if tag == "a" and a.get("href"):
            self.links.append(("a", str(a["href"])))
        elif tag in ("img", "script") and a.get("src"):
            self.links.append((tag, str(a["src"])))
        elif tag == "link" and a.get("href") and a.get("rel") in ("stylesheet", "icon"):
            self.links.append(("link", str(a["href"])))
        elif tag == "source" and a.get("srcset"):
            self.links.append(("img", str(a["srcset"]).split()[0]))


def _parse(path: Path, cache: dict[Path, _Page]) -> _Page:
    if path not in cache:
        page = _Page()
        page.feed(path.read_text(encoding="utf-8", errors="replace"))
        cache[path] = page
    return cache[path]


def check(root: Path) -> list[str]:
    """Problems found under ``root`` (empty when the site is whole)."""
    root = root.resolve()
    pages = sorted(root.rglob("*.html"))
    if not pages:
        return [f"no HTML pages under {root}"]
    cache: dict[Path, _Page] = {}
    problems: list[str] = []
    n_links = 0
    for page_path in pages:
        page = _parse(page_path, cache)
        for tag, url in page.links:
            if url.startswith(EXTERNAL) or url.startswith("//"):
                continue
            n_links += 1
            parts = urlsplit(url)
            target = page_path if not parts.path else (page_path.parent / unquote(parts.path)).resolve()
            rel = page_path.relative_to(root)
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                what = "image" if tag == "img" else "file"
                problems.append(f"{rel}: missing {what} {url}")
                continue
            if not target.is_relative_to(root):
                problems.append(f"{rel}: link leaves the site: {url}")
                continue
            if parts.fragment and target.suffix == ".html":
                frag = unquote(parts.fragment)
                if frag not in _parse(target, cache).ids:
                    problems.append(f"{rel}: no anchor #{frag} in {target.relative_to(root)}")
    if not problems:
        print(f"check_html: {len(pages)} pages, {n_links} internal links and images, all present")
    return problems


def main(argv: list[str]) -> int:
    root = Path(argv[1] if len(argv) > 1 else "docs/_build/html")
    problems = check(root)
    for p in problems:
        print(f"check_html: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
