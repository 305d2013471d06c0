"""``${NAME}`` in any string of regard.toml: the environment variable NAME."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from regard.errors import ConfigError

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def unset_message(name: str) -> str:
    return (
        f"environment variable {name} is not set "
        f"(export {name}=… or put it in the service's environment file)"
    )


def substitute_env(
    data: Any,
    path: Path,
    loc: tuple[str, ...] = (),
    unset: list[tuple[tuple[str, ...], str]] | None = None,
    found: list[tuple[tuple[str, ...], str]] | None = None,
) -> Any:
    """Replace ``${NAME}`` in every string of ``data`` by the environment variable NAME.

    A variable that is not set is an error, except inside a ``[providers.NAME]`` table
    when ``unset`` is given: there it is left as written and recorded in ``unset``, since
    a provider's secrets are needed only by the commands that send through it. ``found``
    collects the values substituted inside ``[providers.NAME]`` tables (its secrets)."""
    if isinstance(data, dict):
        return {k: substitute_env(v, path, (*loc, k), unset, found) for k, v in data.items()}
    if isinstance(data, list):
        return [substitute_env(v, path, (*loc, str(i)), unset, found) for i, v in enumerate(data)]
    if isinstance(data, str):

        def repl(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in os.environ:
                if unset is not None and len(loc) > 2 and loc[0] == "providers":
                    unset.append((loc, name))
                    return m.group(0)
                raise ConfigError(f"{path}: {'.'.join(loc)}: {unset_message(name)}")
            value = os.environ[name]
            if found is not None and loc[:1] == ("providers",) and value:
                found.append((loc, value))
            return value

        return _VAR.sub(repl, data)
    return data
