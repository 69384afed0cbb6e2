"""Fail when built HTML loads a script or stylesheet from the network.

    python tools/check_offline.py docs/_build/html asv_benchmarks/html

Scans every ``*.html`` under the given folders for ``<script src=...>`` and
``<link rel="stylesheet" href=...>`` (and preloads of either) whose address
is remote (``http:``, ``https:`` or protocol-relative ``//``).  Plain links
to other sites are fine: a reader offline only loses those pages.  Exit
status 1 with each offending file and address.
"""

import re
import sys
from pathlib import Path

TAG = re.compile(r"<(script|link)\b[^>]*>", re.IGNORECASE)
ATTR = re.compile(r"""\b(src|href|rel|as)\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)
REMOTE = re.compile(r"^\s*(https?:)?//", re.IGNORECASE)


def remote_loads(html):
    """The remote addresses that ``html`` loads as a script or stylesheet."""
    found = []
    for tag in TAG.finditer(html):
        attrs = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
                 for m in ATTR.finditer(tag.group(0))}
        if tag.group(1).lower() == "script":
            address = attrs.get("src")
        elif ({"stylesheet", "preload", "modulepreload"} & set(attrs.get("rel", "").split())
              or attrs.get("as") in ("script", "style")):
            address = attrs.get("href")
        else:
            continue
        if address and REMOTE.match(address):
            found.append(address)
    return found


def main(folders):
    n_files, problems = 0, []
    for folder in map(Path, folders):
        pages = sorted(folder.rglob("*.html"))
        if not pages:
            problems.append(f"{folder}: no HTML files")
        for page in pages:
            n_files += 1
            for address in remote_loads(page.read_text(errors="replace")):
                problems.append(f"{page}: loads {address}")
    for line in problems:
        print(line, file=sys.stderr)
    print(f"check_offline: {n_files} pages, {len(problems)} remote scripts or stylesheets")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
