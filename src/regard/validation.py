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
from types import UnionType
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """A model that rejects unknown keys and is immutable once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def read_toml(path: Path) -> tuple[dict[str, Any], str]:
    """Parse ``path``; a syntax error or bytes that are not UTF-8 become ValueError naming
    ``path:line``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror or exc}") from None
    text = utf8_text(path, data)
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        where = f"{path}:{m.group(1)}" if m else str(path)
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise ValueError(f"{where}: TOML syntax: {reason}") from None


def utf8_text(path: Path, data: bytes) -> str:
    """``data``, the content of ``path``, decoded; bytes that are not UTF-8 become ValueError
    naming ``path:line`` (an editor saving Latin-1 or UTF-16 is the usual cause)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ValueError(f"{path}:{line}: the file is not UTF-8 text (save it as UTF-8)") from None


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


def nearest_line(text: str, loc: Sequence[str | int]) -> int | None:
    """The line of ``loc``, else of its nearest parent that is written in the file (a
    missing key points at its table)."""
    for end in range(len(loc), 0, -1):
        line = key_line(text, loc[:end])
        if line:
            return line
    return None


def _unwrap(annotation: Any) -> Any:
    """The type inside ``Annotated[...]`` and ``X | None``."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return _unwrap(members[0])
    return annotation


def _union_models(annotation: Any) -> list[type[BaseModel]]:
    if get_origin(annotation) not in (Union, UnionType):
        return []
    members = [_unwrap(a) for a in get_args(annotation)]
    return [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]


def _tags(model: type[BaseModel], discriminator: str) -> tuple[Any, ...]:
    field = model.model_fields.get(discriminator)
    return get_args(field.annotation) if field and get_origin(field.annotation) is Literal else ()


def _child(annotation: Any, part: str | int) -> tuple[Any, str]:
    """The annotation one step down ``part`` and the discriminator of its union, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(str(part))
        if field is None:
            return None, ""
        return _unwrap(field.annotation), str(field.discriminator or "type")
    origin = get_origin(annotation)
    if origin is dict:
        return _unwrap(get_args(annotation)[1]), "type"
    if origin in (list, tuple, set, frozenset) and get_args(annotation):
        return _unwrap(get_args(annotation)[0]), "type"
    return None, ""


def walk(model: type[BaseModel], loc: Sequence[str | int]) -> tuple[list[str | int], Any, str]:
    """Follow a pydantic error location through ``model``.

    Returns the location as the user wrote it (without the tags pydantic inserts for a
    discriminated union, like ``post_purchase`` in ``trigger.post_purchase.delay``, nor its
    ``function-…`` validator steps), the annotation reached, and its union discriminator.
    """
    visible: list[str | int] = []
    current: Any = model
    discriminator = "type"
    for part in loc:
        if isinstance(part, str) and part.startswith("function-"):
            continue
        members = _union_models(current)
        if members:
            chosen = [m for m in members if part in _tags(m, discriminator)]
            if chosen:
                current = chosen[0]
                continue
        visible.append(part)
        current, discriminator = _child(current, part)
    return visible, current, discriminator


def _fields_at(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """The field names a model accepts at the parent of ``loc`` (for did-you-mean)."""
    _, parent, _ = walk(model, loc[:-1])
    if isinstance(parent, type) and issubclass(parent, BaseModel):
        return list(parent.model_fields)
    return []


def _did_you_mean(word: Any, choices: Sequence[Any]) -> str:
    guess = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {guess[0]!r}?)" if guess else ""


def describe(
    exc: ValidationError, model: type[BaseModel], path: Path, text: str, prefix: Sequence[str] = ()
) -> list[str]:
    """One line per problem: ``FILE:LINE: key.path: reason`` with a did-you-mean for typos."""
    problems = []
    for err in exc.errors():
        visible, reached, discriminator = walk(model, err["loc"])
        loc = [*prefix, *visible]
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc.append(discriminator)
        dotted = ".".join(str(p) for p in loc) or "(top level)"
        line = nearest_line(text, loc)
        where = f"{path}:{line}" if line else str(path)
        problems.append(f"{where}: {dotted}: {_reason(err, model, reached, discriminator)}")
    return problems


def _reason(err: Any, model: type[BaseModel], reached: Any, discriminator: str) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        hint = _did_you_mean(err["loc"][-1], _fields_at(model, list(err["loc"])))
        return f"unknown key{hint}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tags = [t for m in _union_models(reached) for t in _tags(m, discriminator)]
        listing = ", ".join(str(t) for t in tags)
        if kind == "union_tag_not_found":
            return f"required key is missing (one of: {listing})"
        what = f"{err['loc'][-1]} {discriminator}" if err["loc"] else discriminator
        tag = err["ctx"]["tag"]
        return f"unknown {what} {tag!r}{_did_you_mean(tag, tags)}; one of: {listing}"
    if kind == "missing":
        return "required key is missing"
    if kind == "literal_error":
        value = err["input"]
        choices = get_args(reached) if get_origin(reached) is Literal else ()
        return f"{value!r} is not one of {err['ctx']['expected']}{_did_you_mean(value, choices)}"
    return str(err["msg"]).removeprefix("Value error, ")


def validate(model: type[M], data: Any, path: Path, text: str) -> M:
    """Validate ``data`` (parsed from ``path``) or raise ValueError listing every problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValueError("\n".join(describe(exc, model, path, text))) from None
