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
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, Template, UndefinedError
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from regard.render.context import Empty, Missing, Record

SUFFIX = ".j2"
MAX_BLOCK_CHARS = 100_000  # far more than any e-mail, SMS or card needs
MAX_RANGE_ITEMS = 10_000  # all range() calls of one message together
MAX_NUMBER_ARGUMENT = 10_000  # widths, counts and repeat factors passed to filters and methods
MAX_EXPONENT = 64
MAX_POWER_BITS = 4096  # 2**4096 has 1234 digits: more than any message needs
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
    """The names of the template files in ``templates_dir`` (``thank-you.de.j2``, …)."""
    return _listing(templates_dir)


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
    """The file for ``name`` in ``locale``, with the documented fallback; None if none."""
    return _pick(templates_dir, name, locale, _listing(templates_dir))


@functools.lru_cache(maxsize=4096)
def _pick(folder: Path, name: str, locale: str | None, listing: tuple[str, ...]) -> Path | None:
    files = dict(_files_of(folder, name, listing))
    for candidate in locale_candidates(locale):
        if candidate in files:
            return files[candidate]
    return None


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
    if (
        isinstance(left, int)
        and isinstance(right, int)
        and right * abs(left).bit_length() > MAX_POWER_BITS
    ):
        raise SecurityError(f"powers beyond {MAX_POWER_BITS} bits are refused")
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

    def getattr(self, obj: Any, attribute: str) -> Any:
        # a record's fields are its only attributes: skip the attribute lookup that fails
        if type(obj) is Record:
            return obj[attribute] if attribute in obj else self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)

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


def render_block(template: Template, block: str, context: Context) -> str:
    """One ``{% block %}`` of ``template`` rendered in ``context`` (from
    ``template.new_context(variables)``), capped in size."""
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
