"""The sandboxed Jinja environment messages are rendered in, and how a template file is found.

Templates are ``<name>[.<locale>].j2`` in the templates folder; a contact's locale picks
``<name>.<locale>.j2``, then ``<name>.<language>.j2``, then ``<name>.j2``. Rendering is
sandboxed (no private attributes, no mutation of data), a name that does not exist or a
value that is empty is an error rather than an empty string, and a template cannot make the
renderer spin or allocate without bound: ``range`` has a budget per message, large repeat
counts, powers and padding widths are refused, and each block's output is capped.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, Template, UndefinedError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

SUFFIX = ".j2"
MAX_BLOCK_CHARS = 100_000  # far more than any e-mail, SMS or card needs
MAX_RANGE_ITEMS = 10_000  # all range() calls of one message together
MAX_NUMBER_ARGUMENT = 10_000  # widths, counts and repeat factors passed to filters and methods
MAX_EXPONENT = 64
_WIDE_FORMAT = re.compile(r"\d{5,}")


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


def template_files(templates_dir: Path, name: str) -> dict[str, Path]:
    """The files of template ``name``: locale suffix (``""`` for ``<name>.j2``) → path."""
    found: dict[str, Path] = {}
    if not templates_dir.is_dir():
        return found
    base = templates_dir / f"{name}{SUFFIX}"
    if base.is_file():
        found[""] = base
    for path in sorted(templates_dir.glob(f"{glob_escape(name)}.*{SUFFIX}")):
        locale = path.name[len(name) + 1 : -len(SUFFIX)]
        if locale and "." not in locale and path.is_file():
            found[locale] = path
    return found


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def pick_template(templates_dir: Path, name: str, locale: str | None) -> Path | None:
    """The file for ``name`` in ``locale``, with the documented fallback; None if none."""
    files = template_files(templates_dir, name)
    for candidate in locale_candidates(locale):
        if candidate in files:
            return files[candidate]
    return None


class Missing(StrictUndefined):
    """A name or field that does not exist: printing, testing or iterating it is an error."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        from regard.render.context import Record

        hint = self._undefined_hint
        if hint:
            return hint
        obj = self._undefined_obj
        if isinstance(obj, Record):
            return f"{obj._label} has no field {self._undefined_name!r}"
        return super()._undefined_message


class Empty(Missing):
    """A field that exists but has no value for this contact (NULL in the store).

    It is false in ``{% if %}``, empty in loops and takes ``| default(...)``, but printing it
    is an error: a message must never read "Hallo ,".
    """

    __slots__ = ()

    def __bool__(self) -> bool:  # type: ignore[override]
        return False

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        return iter(())

    def __len__(self) -> int:  # type: ignore[override]
        return 0

    def __eq__(self, other: object) -> bool:  # type: ignore[override]
        return other is None or isinstance(other, Empty)

    def __ne__(self, other: object) -> bool:  # type: ignore[override]
        return not self.__eq__(other)

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(None)

    def __contains__(self, item: object) -> bool:  # type: ignore[override]
        return False


_range_budget: ContextVar[list[int]] = ContextVar("range_budget")


def budget_range(*args: int) -> range:
    """``range`` with a budget shared by all calls of one message."""
    numbers = range(*args)
    budget = _range_budget.get(None)
    if budget is None:
        budget = [MAX_RANGE_ITEMS]
        _range_budget.set(budget)
    budget[0] -= len(numbers)
    if len(numbers) > MAX_RANGE_ITEMS or budget[0] < 0:
        raise SecurityError(
            f"range() of more than {MAX_RANGE_ITEMS} items in one message is refused"
        )
    return numbers


def reset_budget() -> None:
    """Start the range budget of a new message."""
    _range_budget.set([MAX_RANGE_ITEMS])


def _check_number(value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_NUMBER_ARGUMENT:
        raise SecurityError(f"the number {value} is too large for a template argument")


def _limit_arguments(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A filter whose parameters (not the value it filters) must be modest numbers."""
    skip = 2 if getattr(fn, "jinja_pass_arg", None) else 1

    @functools.wraps(fn)
    def limited(*args: Any, **kwargs: Any) -> Any:
        for value in (*args[skip:], *kwargs.values()):
            _check_number(value)
        for value in args[skip - 1 : skip]:
            if isinstance(value, str) and _WIDE_FORMAT.search(value) and fn.__name__ == "do_format":
                raise SecurityError("format widths of five digits and more are refused")
        return fn(*args, **kwargs)

    return limited


def _mul(left: Any, right: Any) -> Any:
    for seq, count in ((left, right), (right, left)):
        if (
            isinstance(seq, str | list | tuple)
            and isinstance(count, int)
            and len(seq) * count > MAX_BLOCK_CHARS
        ):
            raise SecurityError("repeating a text or list this often is refused")
    return left * right


def _pow(left: Any, right: Any) -> Any:
    if isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
        raise SecurityError(f"powers above {MAX_EXPONENT} are refused")
    return left**right


def _mod(left: Any, right: Any) -> Any:
    if isinstance(left, str) and _WIDE_FORMAT.search(left):
        raise SecurityError("format widths of five digits and more are refused")
    return left % right


class MessageEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox of regard's templates; see the module docstring for what it refuses."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self, templates_dir: Path, *, autoescape: bool) -> None:
        super().__init__(
            loader=FileSystemLoader(str(templates_dir)),
            autoescape=autoescape,
            undefined=Missing,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            auto_reload=True,
        )
        self.globals["range"] = budget_range
        self.globals.pop("lipsum", None)
        self.binop_table.update({"*": _mul, "**": _pow, "%": _mod})
        self.filters = {name: _limit_arguments(fn) for name, fn in self.filters.items()}

    def add_filters(self, filters: dict[str, Callable[..., Any]]) -> None:
        """regard's own filters (trusted code: their arguments are not limited)."""
        self.filters.update(filters)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        if __obj is not budget_range:
            for value in (*args, *kwargs.values()):
                _check_number(value)
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None and _WIDE_FORMAT.search(str(value.__self__)):

            def refuse(*args: Any, **kwargs: Any) -> str:
                raise SecurityError("format widths of five digits and more are refused")

            return refuse
        return wrapped


def render_block(template: Template, block: str, variables: dict[str, Any]) -> str:
    """One ``{% block %}`` of ``template`` rendered with ``variables``, capped in size."""
    context = template.new_context(variables)
    size = 0
    chunks: list[str] = []
    for chunk in template.blocks[block](context):
        size += len(chunk)
        if size > MAX_BLOCK_CHARS:
            raise SecurityError(f"block {block} is longer than {MAX_BLOCK_CHARS} characters")
        chunks.append(chunk)
    return "".join(chunks)


def template_line(template: Template, exc: BaseException) -> int | None:
    """The template line an exception raised while rendering ``template`` came from."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == template.filename:
            line = template.get_corresponding_lineno(tb.tb_lineno)
        tb = tb.tb_next
    return line


__all__ = [
    "Empty",
    "MessageEnvironment",
    "Missing",
    "SecurityError",
    "UndefinedError",
    "budget_range",
    "locale_candidates",
    "pick_template",
    "render_block",
    "reset_budget",
    "template_files",
    "template_line",
]
