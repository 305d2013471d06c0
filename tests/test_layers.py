"""The package layering of docs/architecture.md: every import points down, none in a cycle,
and SQL is spoken in the store alone. Read from the source with ``ast``, type-only imports
included, so a cycle cannot hide behind ``TYPE_CHECKING`` or a function-local import."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "regard"

# bottom-up: a unit may import units of lower layers (and itself), nothing else
LAYERS: list[set[str]] = [
    {"regard", "times", "errors", "processes", "collecting"},
    {"validation", "grammar", "channels", "synthetic"},
    {"config"},
    {"store"},
    {"providers"},
    {"triggers"},
    {"campaigns"},
    {"render"},
    {"engine"},
    {"delivery"},
    {"report"},
    {"runner", "workspace", "forget"},
    {"sources"},
    {"server"},
    {"daemon"},
    {"demo"},
    {"cli"},
    {"__main__"},
]
LAYER = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit(module: str) -> str:
    """``regard.store.lifecycle`` → ``store``; ``regard`` → ``regard``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def imports(*, typing: bool = True) -> dict[str, set[str]]:
    """Module → the regard modules it imports, anywhere in its body (``typing=False``:
    leaving out the imports under ``if TYPE_CHECKING:``, which never run)."""
    paths = {module_name(p): p for p in SRC.rglob("*.py")}
    found: dict[str, set[str]] = defaultdict(set)
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped: set[int] = set()
        if not typing:
            for node in ast.walk(tree):
                if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                    skipped.update(id(n) for n in ast.walk(node))
        found[name] = set()
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, node.module] if node.module else parts)
                # ``from regard.delivery import claims`` imports the module regard.delivery.claims
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in paths else base for a in node.names
                ]
            else:
                continue
            found[name].update(t for t in targets if t == "regard" or t.startswith("regard."))
    return found


def test_every_unit_has_a_layer() -> None:
    units = {unit(m) for m in imports()} | {
        unit(module_name(p)) for p in SRC.rglob("*.py") if "skeleton" not in p.parts
    }
    assert units - set(LAYER) == set(), "add the new package or module to LAYERS"


def test_imports_point_down_the_layers() -> None:
    upward = sorted(
        f"{module} imports {target}"
        for module, targets in imports().items()
        for target in targets
        if unit(target) != unit(module) and LAYER[unit(target)] >= LAYER[unit(module)]
    )
    assert upward == []


def test_no_import_cycle_among_modules() -> None:
    graph = imports(typing=False)
    modules = set(graph)
    # importing a package runs its __init__: ``regard.store.x`` depends on ``regard.store``
    edges = {m: {t for t in targets if t in modules and t != m} for m, targets in graph.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(edges.get(m, ())):
            if state.get(t) == 1:
                cycles.append([*stack[stack.index(t) :], t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(modules):
        if m not in state:
            visit(m)
    assert cycles == []


SQL = re.compile(
    r"\bimport sqlite3\b|\.execute(many)?\(|\b(SELECT|INSERT INTO|UPDATE|DELETE FROM)\s"
)


def test_sql_is_spoken_in_the_store_alone() -> None:
    outside = sorted(
        f"{path.relative_to(SRC.parent)}:{n}"
        for path in SRC.rglob("*.py")
        if "store" not in path.relative_to(SRC).parts[:1]
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if SQL.search(line)
    )
    assert outside == []
