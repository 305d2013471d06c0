"""Which template file a campaign's message is rendered from.

Templates are ``<name>[.<locale>].j2`` in the templates folder; a contact's locale picks
``<name>.<locale>.j2``, then ``<name>.<language>.j2``, then ``<name>.j2``. The campaign
loader checks that a campaign's template exists; the renderer picks the file per contact.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

SUFFIX = ".j2"


def locale_candidates(locale: str | None) -> list[str]:
    """The template suffixes to try for ``locale``, most specific first (``de-AT`` → ``de-AT``,
    ``de_AT``, ``de``), then ``""`` for the file without a locale."""
    out: list[str] = []
    if locale:
        for candidate in (locale, locale.replace("-", "_"), locale.replace("_", "-")):
            if candidate not in out:
                out.append(candidate)
        language = re.split(r"[-_]", locale)[0]
        if language not in out:
            out.append(language)
    out.append("")
    return out


def is_message_file(file_name: str) -> bool:
    """Whether a file of the templates folder is a message (not a ``_`` layout or partial)."""
    return file_name.endswith(SUFFIX) and not file_name.startswith("_")


def template_files(templates_dir: Path, name: str) -> dict[str, Path]:
    """The files of template ``name``: locale suffix (``""`` for ``<name>.j2``) → path.
    A ``_`` name (a layout or partial) has none."""
    if name.startswith("_"):
        return {}
    return dict(_files_of(templates_dir, name, _listing(templates_dir)))


@functools.lru_cache(maxsize=1024)
def _files_of(folder: Path, name: str, listing: tuple[str, ...]) -> tuple[tuple[str, Path], ...]:
    found: list[tuple[str, Path]] = []
    prefix = f"{name}."
    for file_name in listing:
        if file_name == f"{name}{SUFFIX}":
            found.append(("", folder / file_name))
        elif file_name.startswith(prefix) and file_name.endswith(SUFFIX):
            locale = file_name[len(prefix) : -len(SUFFIX)]
            if locale and "." not in locale:
                found.append((locale, folder / file_name))
    return tuple(found)


def template_names(templates_dir: Path) -> tuple[str, ...]:
    """The names of the message files in ``templates_dir`` (``thank-you.de.j2``, …; no
    ``_`` layouts or partials)."""
    return tuple(n for n in _listing(templates_dir) if is_message_file(n))


_LISTINGS: dict[Path, tuple[int, tuple[str, ...]]] = {}


def _listing(folder: Path) -> tuple[str, ...]:
    """The template file names in ``folder``, re-read only when the folder changes (adding
    or removing a file changes its mtime; edits are picked up by Jinja's auto-reload)."""
    try:
        stamp = folder.stat().st_mtime_ns
    except OSError:
        return ()
    cached = _LISTINGS.get(folder)
    if cached is None or cached[0] != stamp:
        names = tuple(sorted(p.name for p in folder.glob(f"*{SUFFIX}") if p.is_file()))
        cached = (stamp, names)
        _LISTINGS[folder] = cached
    return cached[1]


def pick_template(templates_dir: Path, name: str, locale: str | None) -> Path | None:
    """The file for ``name`` in ``locale``, with the documented fallback; None if none (and
    for a ``_`` layout or partial)."""
    if name.startswith("_"):
        return None
    return _pick(templates_dir, name, locale, _listing(templates_dir))


@functools.lru_cache(maxsize=4096)
def _pick(folder: Path, name: str, locale: str | None, listing: tuple[str, ...]) -> Path | None:
    files = dict(_files_of(folder, name, listing))
    for candidate in locale_candidates(locale):
        if candidate in files:
            return files[candidate]
    return None
