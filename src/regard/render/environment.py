"""The sandboxed Jinja environment messages are rendered in.

Which file a message is rendered from is :mod:`regard.campaigns.templates`. A message file
may ``{% extends %}`` a layout, ``{% include %}`` a partial and ``{% import %}`` macros from
the same folder (by convention ``_``-prefixed files, which are not messages): each block is
rendered in a context prepared by :func:`prepared_context`, which runs the template's top
level once with every block silenced, so the inheritance chain, top-level imports and
``{% set %}`` are in place for every block. A file of the HTML environment that holds a
``<style>`` element has its CSS inlined into ``style`` attributes by css-inline when it is
loaded (once per file and change, never per message). Rendering is
sandboxed (no private attributes, no mutation of data), a name that does not exist or a
value that is empty is an error rather than an empty string, and a template cannot make the
renderer spin or allocate without bound: ``range`` has a budget per message, large repeat
counts, powers and padding widths are refused, and each block's output is capped.
"""

from __future__ import annotations

import functools
import itertools
import re
import types
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from jinja2 import (
    BaseLoader,
    Environment,
    FileSystemLoader,
    Template,
    Undefined,
    UndefinedError,
)
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.runtime import Context
from jinja2.sandbox import (
    ImmutableSandboxedEnvironment,
    SandboxedEscapeFormatter,
    SandboxedFormatter,
)
from markupsafe import Markup

from regard.campaigns.templates import (
    SUFFIX,
    is_message_file,
    locale_candidates,
    pick_template,
    template_files,
)
from regard.render.context import Empty, Missing, Record
from regard.render.inline import has_stylesheet, inline_css

MAX_BLOCK_CHARS = 100_000  # far more than any e-mail, SMS or card needs; also the longest text
# or list one operation of a template may build
MAX_RANGE_ITEMS = 10_000  # all range() calls of one message together
MAX_NUMBER_ARGUMENT = 10_000  # widths, counts and repeat factors passed to filters and methods
MAX_EXPONENT = 64
MAX_POWER_BITS = 4096  # 2**4096 has 1234 digits: more than any message needs
MAX_RENDER_SECONDS = 5.0  # one message in its worker process; a typical one takes 1 ms
MAX_RENDER_MEMORY = 256 * 2**20  # address space one render may add to its worker's own

# a printf-style conversion: %(key)-08.3f, %*d, %.*s, %%
_PERCENT_SPEC = re.compile(
    r"%(?:\((?P<key>[^)]*)\))?[-#0 +]*(?P<width>\*|\d+)?(?:\.(?P<precision>\*|\d*))?"
    r"[hlL]?(?P<type>.)",
    re.DOTALL,
)
# a str.format spec (after its nested fields are filled in): [[fill]align][sign][z][#][0]
# [width][grouping][.precision][type]
_FORMAT_SPEC = re.compile(r"(?:.?[<>=^])?[-+ ]?z?#?0?(?P<width>\d*)[,_]?(?:\.(?P<precision>\d+))?")


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


def _check_size(size: int, what: str) -> None:
    """Refuse an operation whose result would be longer than the block cap, before it is
    built."""
    if size > MAX_BLOCK_CHARS:
        raise SecurityError(f"{what} would build a text longer than {MAX_BLOCK_CHARS} characters")


def _width(text: str | None, what: str) -> int:
    """A width or precision written in a format (digits), checked like any number argument."""
    if not text:
        return 0
    if len(text) > len(str(MAX_NUMBER_ARGUMENT)) or int(text) > MAX_NUMBER_ARGUMENT:
        raise SecurityError(f"the {what} {text} is too large for a template format")
    return int(text)


def _check_percent(template: str, values: Any) -> None:
    """``template % values`` builds at most the widths and precisions its conversions ask
    for (``*`` taking its number from ``values``) besides the values' own text: refuse it
    when those are too large, before anything is built."""
    positional = list(values) if isinstance(values, tuple) else [values]
    taken = 0
    total = len(template)
    for spec in _PERCENT_SPEC.finditer(template):
        for part in ("width", "precision"):
            text = spec.group(part)
            if text == "*":
                number = positional[taken] if taken < len(positional) else 0
                taken += 1
                _check_number(number)
                total += abs(number) if isinstance(number, int) else 0
            else:
                total += _width(text, part)
        if spec.group("type") != "%" and spec.group("key") is None:
            taken += 1
    _check_size(total, "this format")


def _text_size(value: Any) -> int:
    return len(value) if isinstance(value, str) else len(str(value))


def _method_size(name: str, text: str, args: tuple[Any, ...]) -> int | None:
    """The length of what the str method ``name`` of ``text`` would return with ``args``,
    for the methods whose result can be far longer than their input (None: any other)."""
    if name == "expandtabs":
        size = args[0] if args and isinstance(args[0], int) else 8
        return len(text) + text.count("\t") * max(size, 0)
    if name == "replace" and len(args) >= 2 and isinstance(args[0], str):
        return _replaced_size(text, args[0], str(args[1]), args[2] if len(args) > 2 else -1)
    if name == "join" and args:
        return _joined_size(text, args[0])
    if name == "translate" and args and hasattr(args[0], "values"):
        longest = max((_text_size(v) for v in args[0].values() if v is not None), default=1)
        return len(text) * max(longest, 1)
    return None


def _replaced_size(text: str, old: str, new: str, count: Any) -> int:
    found = len(text) + 1 if old == "" else text.count(old)
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(text) + found * (len(new) - len(old))


def _joined_size(separator: str, items: Any) -> int:
    if not isinstance(items, list | tuple | str):
        return 0  # an iterator: join itself is linear in what it is given
    sizes = sum(_text_size(item) for item in items)
    return sizes + len(separator) * max(len(items) - 1, 0)


def _bounded_filter(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """Jinja's filters whose output can be far longer than their input, checked first."""
    if name == "replace":

        @functools.wraps(fn)
        def replace(eval_ctx: Any, s: Any, old: Any, new: Any, count: Any = None) -> Any:
            _check_size(
                _replaced_size(str(s), str(old), str(new), -1 if count is None else count),
                "replace",
            )
            return fn(eval_ctx, s, old, new, count)

        return replace
    if name == "join":

        @functools.wraps(fn)
        def join(eval_ctx: Any, value: Any, d: Any = "", attribute: Any = None) -> Any:
            if attribute is None:
                value = list(value) if not isinstance(value, list | tuple | str) else value
                _check_size(_joined_size(str(d), value), "join")
            return fn(eval_ctx, value, d, attribute)

        return join
    if name == "indent":

        @functools.wraps(fn)
        def indent(s: Any, width: Any = 4, first: bool = False, blank: bool = False) -> Any:
            prefix = len(width) if isinstance(width, str) else width
            if isinstance(prefix, int):
                _check_size(len(str(s)) + (str(s).count("\n") + 1) * prefix, "indent")
            return fn(s, width, first, blank)

        return indent
    if name == "format":

        @functools.wraps(fn)
        def format_(value: Any, *args: Any, **kwargs: Any) -> Any:
            _check_percent(str(value), kwargs or args)
            return fn(value, *args, **kwargs)

        return format_
    return fn


def _limit_arguments(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A filter whose parameters (not the value it filters) must be modest numbers."""
    skip = 2 if getattr(fn, "jinja_pass_arg", None) else 1

    @functools.wraps(fn)
    def limited(*args: Any, **kwargs: Any) -> Any:
        for value in (*args[skip:], *kwargs.values()):
            _check_number(value)
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
    if (
        isinstance(left, int)
        and isinstance(right, int)
        and left.bit_length() + right.bit_length() > MAX_POWER_BITS
    ):
        raise SecurityError(f"products beyond {MAX_POWER_BITS} bits are refused")
    return left * right


def _add(left: Any, right: Any) -> Any:
    if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
        _check_size(len(left) + len(right), "this addition")
    return left + right


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
    if isinstance(left, str):
        _check_percent(left, right)
    return left % right


def _is_format(fn: Any) -> bool:
    """Whether ``fn`` is a text's ``format``/``format_map`` as the sandbox wraps it: its
    arguments are the values it formats, any number (its widths are bounded)."""
    method = getattr(fn, "__wrapped__", None)
    return getattr(method, "__name__", None) in ("format", "format_map") and isinstance(
        getattr(method, "__self__", None), str
    )


class _BoundedFields:
    """What a template's ``str.format`` may build: widths and precisions of at most
    MAX_NUMBER_ARGUMENT (also when a nested field supplies them, ``{:>{}}``), and no more
    than the block cap in all."""

    _built = 0

    def format_field(self, value: Any, format_spec: str) -> Any:
        spec = _FORMAT_SPEC.match(format_spec)
        if spec is not None:
            width = _width(spec.group("width"), "width")
            precision = _width(spec.group("precision"), "precision")
            self._built += width + precision
            _check_size(self._built, "this format")
        return super().format_field(value, format_spec)  # type: ignore[misc]


class _Formatter(_BoundedFields, SandboxedFormatter):
    pass


class _EscapeFormatter(_BoundedFields, SandboxedEscapeFormatter):
    pass


def _printable(value: Any) -> Any:
    """What ``{{ … }}`` prints: never a method, function or class, whose text is Python's
    repr with a memory address (``{{ now.astimezone }}``, a call without its brackets)."""
    if callable(value) and not isinstance(value, str | Undefined):
        name = getattr(value, "__name__", type(value).__name__)
        raise SecurityError(f"{name} is a method or function: call it ({name}()) to print it")
    return value


class InliningLoader(FileSystemLoader):
    """The templates folder, with the CSS of HTML layouts inlined as they are read."""

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        source, filename, uptodate = super().get_source(environment, template)
        if has_stylesheet(source):
            try:
                source = inline_css(source)
            except ValueError as exc:
                raise TemplateSyntaxError(str(exc), 1, template, filename) from None
        return source, filename, uptodate


class MessageEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox of regard's templates; see the module docstring for what it refuses."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, templates_dir: Path, *, autoescape: bool) -> None:
        loader: BaseLoader = (
            InliningLoader(str(templates_dir))
            if autoescape
            else FileSystemLoader(str(templates_dir))
        )
        super().__init__(
            loader=loader,
            autoescape=autoescape,
            undefined=Missing,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            auto_reload=False,  # Templates.refresh checks the files once per batch
            cache_size=0,  # the templates are kept in self.loaded instead
            finalize=_printable,
        )
        self.loaded = {}
        self.globals["range"] = budget_range
        self.globals.pop("lipsum", None)
        self.binop_table.update({"*": _mul, "**": _pow, "%": _mod, "+": _add})
        # format's arguments are the values it formats: any number (its widths are bounded)
        self.filters = {
            name: _bounded_filter(name, fn)
            if name == "format"
            else _limit_arguments(_bounded_filter(name, fn))
            for name, fn in self.filters.items()
        }

    loaded: dict[str, tuple[Template, int]]  # each template, and the round it was checked in
    round: int = 0

    def _load_template(self, name: str, globals: Any) -> Template:
        # each template compiled once and checked against its file once per round (a
        # render batch: refresh() starts the next), not at every lookup: a message's render
        # looks up its file, its layout and its macros in both environments
        found = self.loaded.get(name)
        if found is not None and (found[1] == self.round or found[0].is_up_to_date):
            template = found[0]
            if globals:
                template.globals.update(globals)
        else:
            template = super()._load_template(name, globals)
        if found is None or found[1] != self.round or found[0] is not template:
            self.loaded[name] = (template, self.round)
        return template

    def refresh(self) -> None:
        """Start a new round: each template is checked against its file at its first use."""
        self.round += 1

    def make_globals(self, d: Any = None) -> Any:
        # a plain dict, not Jinja's ChainMap: every import and include compares a context's
        # globals with the template's, and a ChainMap makes that a loop in Python. The
        # environment's globals are set once, in __init__, so a copy sees them all.
        return {**self.globals, **(d or {})}

    def add_filters(self, filters: dict[str, Callable[..., Any]]) -> None:
        """regard's own filters (trusted code: their arguments are not limited)."""
        self.filters.update(filters)

    def getattr(self, obj: Any, attribute: str) -> Any:
        # a record's fields are its only attributes: skip the attribute lookup that fails
        if type(obj) is Record:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        # a key of a dict the template made ({% set t = {...} %}, t.phone): what Jinja finds
        # after the attribute lookup fails, without raising and catching that failure
        if type(obj) is dict and attribute in obj and not hasattr(dict, attribute):
            return obj[attribute]
        return super().getattr(obj, attribute)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        if __obj is not budget_range and not _is_format(__obj):
            for value in (*args, *kwargs.values()):
                _check_number(value)
        text = getattr(__obj, "__self__", None)
        if isinstance(text, str) and isinstance(__obj, types.BuiltinMethodType):
            size = _method_size(__obj.__name__, text, args)
            if size is not None:
                _check_size(size, __obj.__name__)
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """Jinja's sandboxed ``str.format``, with a formatter that bounds what it builds."""
        if not isinstance(value, types.MethodType | types.BuiltinMethodType) or (
            value.__name__ not in ("format", "format_map")
        ):
            return None
        template = value.__self__
        if not isinstance(template, str):
            return None
        kind = type(template)
        is_map = value.__name__ == "format_map"

        def wrapper(*args: Any, **kwargs: Any) -> str:
            formatter: SandboxedFormatter = (
                _EscapeFormatter(self, escape=template.escape)
                if isinstance(template, Markup)
                else _Formatter(self)
            )
            if is_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                return kind(formatter.vformat(template, (), args[0]))
            return kind(formatter.vformat(template, args, kwargs))

        return functools.update_wrapper(wrapper, value)


def _silent(context: Context) -> Iterator[str]:
    return iter(())


class _SilencedBlocks(dict[str, list[Callable[[Context], Iterator[str]]]]):
    """A context's blocks while its template's top level runs: every block renders
    nothing, and the blocks an ``{% extends %}`` adds are still recorded."""

    def __getitem__(self, name: str) -> list[Callable[[Context], Iterator[str]]]:
        return [_silent]


# what the top level of a compiled template calls when it does more than print text and
# blocks: {% extends %} and {% include %} load a template, {% import %} makes a module,
# {% set %} writes the context's vars, {% macro %} defines one
_TOP_LEVEL_WORK = frozenset(
    {"get_template", "get_or_select_template", "select_template", "_get_default_module",
     "_get_default_module_async", "make_module", "vars", "exported_vars", "Macro"}
)  # fmt: skip


def _only_blocks(template: Template) -> bool:
    """Whether the template's top level is nothing but blocks and text (no extends, import,
    set or macro): then its top level need not run before its blocks. Read from the names
    its compiled top level uses, so nothing is parsed twice."""
    return not (_TOP_LEVEL_WORK & set(template.root_render_func.__code__.co_names))


def prepared_context(template: Template, variables: dict[str, Any]) -> Context:
    """A context in which any block of ``template`` renders as it would in the whole
    template: the layouts it extends have added their blocks (a block the message does not
    define is the layout's, ``super()`` reaches the layout's), and its top-level
    ``{% import %}``, ``{% from %}`` and ``{% set %}`` are done. ``variables`` are the
    context's only parent (globals merged in by the caller)."""
    context = template.new_context(variables, shared=True)
    if _only_blocks(template):
        return context
    blocks = _SilencedBlocks(context.blocks)
    context.blocks = blocks
    size = 0
    for chunk in template.root_render_func(context):
        size += len(chunk)  # text outside blocks is no part of any message: dropped
        if size > MAX_BLOCK_CHARS:
            raise SecurityError(f"the text outside blocks is longer than {MAX_BLOCK_CHARS}")
    context.blocks = dict(blocks)
    return context


def render_block(context: Context, block: str) -> str:
    """One ``{% block %}`` rendered in ``context`` (from :func:`prepared_context`), capped
    in size."""
    size = 0
    chunks: list[str] = []
    produced = context.blocks[block][0](context)
    while part := list(itertools.islice(produced, 64)):  # counted 64 pieces at a time
        size += sum(map(len, part))
        if size > MAX_BLOCK_CHARS:
            raise SecurityError(f"block {block} is longer than {MAX_BLOCK_CHARS} characters")
        chunks += part
    return "".join(chunks)


def template_line(exc: BaseException) -> tuple[str, int] | None:
    """The template file and line an exception raised while rendering came from: the
    innermost template frame (a layout's, a partial's or the message's own)."""
    found = None
    tb = exc.__traceback__
    while tb is not None:
        template = tb.tb_frame.f_globals.get("__jinja_template__")
        if isinstance(template, Template) and template.filename:
            found = (template.filename, template.get_corresponding_lineno(tb.tb_lineno))
        tb = tb.tb_next
    return found


__all__ = [
    "MAX_RENDER_MEMORY",
    "MAX_RENDER_SECONDS",
    "SUFFIX",
    "Empty",
    "MessageEnvironment",
    "Missing",
    "SecurityError",
    "UndefinedError",
    "budget_range",
    "is_message_file",
    "locale_candidates",
    "pick_template",
    "prepared_context",
    "render_block",
    "reset_budget",
    "template_files",
    "template_line",
]
