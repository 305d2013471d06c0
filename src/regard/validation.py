"""Turn TOML files into validated models, with errors that say file, line, key and a fix.

Shared by the config and the campaigns: both are TOML validated by pydantic models that
forbid unknown keys. A typo gets a did-you-mean drawn from the model's own field names.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """A model that rejects unknown keys and is immutable once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def read_toml(path: Path) -> tuple[dict[str, Any], str]:
    """Parse ``path``; a syntax error becomes ValueError naming ``path:line``."""
    text = path.read_text(encoding="utf-8")
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        where = f"{path}:{m.group(1)}" if m else str(path)
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise ValueError(f"{where}: TOML syntax: {reason}") from None


def key_line(text: str, loc: Sequence[str | int]) -> int | None:
    """The line of ``loc`` (a key path like ``("limits", "contact_max")``) in TOML ``text``.

    A best effort that understands ``[table]`` headers, dotted headers and ``key =`` lines;
    it is only used to point a person at the right place.
    """
    keys = [str(k) for k in loc if isinstance(k, str)]
    if not keys:
        return None
    lines = text.splitlines()
    current: list[str] = []
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        header = re.match(r"^\[\[?\s*([^\]]+?)\s*\]\]?", stripped)
        if header:
            current = [p.strip().strip('"') for p in header.group(1).split(".")]
            if current == keys:
                return number
            continue
        assign = re.match(r'^"?([A-Za-z0-9_\-]+)"?\s*=', stripped)
        if assign and [*current, assign.group(1)] == keys[: len(current) + 1]:
            if len(keys) == len(current) + 1:
                return number
            inline = keys[len(current) + 1 :]
            if all(re.search(rf"\b{re.escape(k)}\s*=", stripped) for k in inline):
                return number
    return None


def _fields_at(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """The field names a model accepts at the parent of ``loc`` (for did-you-mean)."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return []
            current = _model_in(field.annotation)
        else:
            current = None
        if current is None:
            return []
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def describe(
    exc: ValidationError, model: type[BaseModel], path: Path, text: str, prefix: Sequence[str] = ()
) -> list[str]:
    """One line per problem: ``FILE:LINE: key.path: reason`` with a did-you-mean for typos."""
    problems = []
    for err in exc.errors():
        loc = [*prefix, *[p for p in err["loc"] if not _is_union_tag(p)]]
        dotted = ".".join(str(p) for p in loc) or "(top level)"
        line = key_line(text, loc)
        where = f"{path}:{line}" if line else str(path)
        if err["type"] == "extra_forbidden":
            known = _fields_at(model, list(err["loc"]))
            guess = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
            hint = f" (did you mean {guess[0]!r}?)" if guess else ""
            problems.append(f"{where}: {dotted}: unknown key{hint}")
        elif err["type"] == "missing":
            problems.append(f"{where}: {dotted}: required key is missing")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {dotted}: {msg}")
    return problems


def _is_union_tag(part: str | int) -> bool:
    # pydantic inserts the tag of a discriminated union (e.g. "post_purchase") into loc;
    # such a tag is not a key the user wrote
    return (isinstance(part, str) and part.startswith("function-")) or part in _UNION_TAGS


_UNION_TAGS: set[str | int] = set()


def register_union_tags(*tags: str) -> None:
    """Declare discriminator values that pydantic puts into error locations."""
    _UNION_TAGS.update(tags)


def validate(model: type[M], data: Any, path: Path, text: str) -> M:
    """Validate ``data`` (parsed from ``path``) or raise ValueError listing every problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValueError("\n".join(describe(exc, model, path, text))) from None
