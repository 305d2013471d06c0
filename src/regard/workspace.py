"""A new workspace: ``regard.toml``, ``config.example.toml`` (every key, documented), example
campaigns and templates, from the packaged skeleton (``regard/skeleton``; read through
importlib.resources, so it works from an installed wheel as well as from a checkout)."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from regard.errors import InputError

SKELETON_PARTS = ("regard.toml", "config.example.toml", "campaigns", "templates")


def skeleton_files() -> Iterator[tuple[str, Traversable]]:
    """(relative path, packaged file) of everything a new workspace gets."""
    root = resources.files("regard") / "skeleton"
    for part in SKELETON_PARTS:
        yield from _walk(root / part, part)


def _walk(node: Traversable, relative: str) -> Iterator[tuple[str, Traversable]]:
    if node.is_file():
        yield relative, node
    elif node.is_dir():
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            if child.name.startswith((".", "__")):
                continue
            yield from _walk(child, f"{relative}/{child.name}")


def create_workspace(folder: Path) -> list[Path]:
    """Write the starter workspace into ``folder`` (created if needed); returns the files.

    Never overwrites: if any of the files already exists, nothing is written and
    InputError names every one of them.
    """
    files = [(folder / relative, source) for relative, source in skeleton_files()]
    existing = [target for target, _ in files if target.exists()]
    if existing:
        names = "\n".join(f"  {p}" for p in existing)
        raise InputError(
            f"{folder}: would overwrite existing files, so nothing was written:\n{names}\n"
            "(move them away, or run `regard init` in another folder)"
        )
    make_folder(folder)
    try:
        for target, source in files:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    except OSError as exc:
        raise InputError(f"{folder}: cannot write the workspace: {exc.strerror or exc}") from None
    return [target for target, _ in files]


def make_folder(folder: Path) -> None:
    """Create ``folder`` and its parents; a path that cannot be a folder raises InputError."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"{folder}: cannot create the folder: {exc.strerror or exc} (pass another DIR)"
        ) from None
