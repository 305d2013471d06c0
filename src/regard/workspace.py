"""A workspace: ``regard.toml``, its campaigns and templates.

:func:`load_config` reads a workspace's config with every provider table checked by its
adapter. :func:`create_workspace` writes a new one: ``regard.toml``, ``config.example.toml``
(every key, documented), example campaigns and templates, from the packaged skeleton
(``regard/skeleton``; read through importlib.resources, so it works from an installed wheel
as well as from a checkout)."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from regard.config import Config, read_config
from regard.errors import InputError
from regard.providers import check_provider_tables

SKELETON_PARTS = ("regard.toml", "config.example.toml", "campaigns", "templates")


def load_config(explicit: str | Path | None = None) -> Config:
    """The config (``--config PATH``, else ``$REGARD_CONFIG``, else ./regard.toml), read
    and validated, each ``[providers.NAME]`` checked by its adapter (and built once, so
    what it needs from the rest of the config is reported now, not at dispatch). Every
    problem raises ConfigError naming the file, line and key."""
    config = read_config(explicit)
    check_provider_tables(config)
    return config


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
