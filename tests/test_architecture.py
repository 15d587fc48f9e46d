"""Imports run one way along the pipeline (docs/architecture.md draws it).

The allowed direction, written down: a module may import modules of its own layer and of layers
before it, never of a layer after it::

    foundation -> registry -> fetch -> adapters -> formats -> layout -> report -> loading -> surface

Two things do not count as imports that run:

- imports under ``if TYPE_CHECKING:`` (type names for the checker; never executed);
- the one registration idiom: the registry's tables name built-in entries as strings
  (``"weightport.adapters.hf:HubAdapter"``) and import them by name on first lookup, so the
  registry never imports a later stage. Only the modules in ``IMPORT_BY_NAME`` may call
  ``importlib.import_module``, and only on names the registry tables hold.

The test reads the source (``ast``), so it checks every import, at module level or inside a
function, without running any of them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import weightport

PACKAGE = Path(weightport.__file__).parent

#: The pipeline's stages in order, each with the modules (by dotted prefix) that belong to it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("weightport.errors", "weightport.warnings", "weightport.keys", "weightport.text",
                    "weightport.paths", "weightport.units")),
    ("registry", ("weightport.registry",)),
    ("fetch", ("weightport.fetch", "weightport.digest")),
    ("adapters", ("weightport.adapters",)),
    ("formats", ("weightport.formats",)),
    ("layout", ("weightport.layout",)),
    ("report", ("weightport.report",)),
    ("loading", ("weightport.loading", "weightport.lock")),
    ("surface", ("weightport.mixin", "weightport.hooks", "weightport.init_args", "weightport.cli",
                 "weightport.lightning", "weightport.bench", "weightport")),
]

#: Modules allowed to import by name (the registration idiom), and why.
IMPORT_BY_NAME: dict[str, str] = {
    "weightport": "the lazy public names of the package (``weightport.load_weights`` imports on first use)",
    "weightport.registry.table": "built-in registry entries given as 'module:attribute', imported on lookup",
    "weightport.registry.listing": "the listers that live with the torchvision and timm adapters",
    "weightport.cli.registry": "the command modules, a table of names",
    "weightport.cli.modelspec": "the user's own model class named on the command line (--model pkg.Model)",
    "weightport.formats.safety": "classes the user trusts by name (allow_globals=['pkg.Class'])",
}

#: Mutual imports inside one stage (each side imports the other inside a function), and why they are
#: not a cycle between stages. Anything else is an error.
SAME_STAGE_CYCLES: dict[tuple[str, ...], str] = {
    ("weightport.registry.plugins", "weightport.registry.schemes"):
        "the registration idiom: a lookup discovers plugins, and a plugin registers its adapter",
    ("weightport.registry.alias_source", "weightport.registry.resolve"):
        "an alias resolves its target: resolution is recursive",
    ("weightport.formats.safety", "weightport.formats.walk"):
        "the bounded walk over a file's objects knows the safe loader's stand-ins, which use the walk",
}


def _modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = ast.parse(path.read_text(), str(path))
    return out


def _is_package(name: str) -> bool:
    return (PACKAGE.parent / Path(*name.split(".")) / "__init__.py").exists()


def _layer(module: str) -> int:
    best = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            # the package itself is the surface; a new module under it must be given a layer
            if module == prefix or (prefix != "weightport" and module.startswith(prefix + ".")):
                if best is None or len(prefix) > best[1]:
                    best = (index, len(prefix))
    if best is None:
        raise AssertionError(f"{module} belongs to no layer: add it to LAYERS in tests/test_architecture.py "
                             "and to docs/architecture.md")
    return best[0]


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                skipped.update(id(n) for n in ast.walk(inner))
    return skipped


def _imports(name: str, tree: ast.Module) -> list[tuple[str, int]]:
    """``(imported module, line)`` for every weightport import in ``tree`` that runs."""
    skipped = _type_checking_nodes(tree)
    package = name if _is_package(name) else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "weightport" or target.startswith("weightport."):
                for alias in node.names:  # `from weightport.x import y` may import the module x.y
                    sub = f"{target}.{alias.name}"
                    out.append((sub if (PACKAGE.parent / Path(*sub.split("."))).exists()
                                or (PACKAGE.parent / Path(*sub.split("."))).with_suffix(".py").exists() else target,
                                node.lineno))
        elif isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name.startswith("weightport")]
    return out


MODULES = _modules()


def test_every_module_belongs_to_a_layer():
    for name in MODULES:
        _layer(name)


def test_no_import_runs_against_the_pipeline():
    wrong = []
    for name, tree in MODULES.items():
        for target, line in _imports(name, tree):
            if _layer(target) > _layer(name):
                wrong.append(f"{name}:{line} imports {target} "
                             f"({LAYERS[_layer(name)][0]} -> {LAYERS[_layer(target)][0]})")
    assert not wrong, "imports against the pipeline's direction:\n" + "\n".join(wrong)


def test_imports_by_name_only_where_the_registration_idiom_is_documented():
    found = set()
    for name, tree in MODULES.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and ast.unparse(node.func) in ("importlib.import_module", "import_module",
                                                                          "__import__"):
                found.add(name)
    assert found <= set(IMPORT_BY_NAME), f"imports by name outside the documented idiom: {found - set(IMPORT_BY_NAME)}"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _graph(stages: bool) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, tree in MODULES.items():
        for target, _ in _imports(name, tree):
            a, b = (LAYERS[_layer(name)][0], LAYERS[_layer(target)][0]) if stages else (name, target)
            if a != b and not a.startswith(b + "."):  # a module's own package is imported first anyway
                graph.setdefault(a, set()).add(b)
    return graph


def test_no_import_cycles_between_stages():
    assert _cycles(_graph(stages=True)) == []


def test_mutual_imports_only_where_documented_and_inside_one_stage():
    found = {tuple(c) for c in _cycles(_graph(stages=False))}
    assert found <= set(SAME_STAGE_CYCLES), f"undocumented import cycles: {sorted(found - set(SAME_STAGE_CYCLES))}"
    for cycle in found:
        assert len({_layer(m) for m in cycle}) == 1, cycle


@pytest.mark.parametrize("stage", [layer for layer, _ in LAYERS])
def test_the_architecture_doc_names_every_stage(stage):
    doc = (PACKAGE.parent.parent / "docs" / "architecture.md")
    if not doc.exists():
        pytest.skip("docs/architecture.md is not in this installation")
    assert stage in doc.read_text()
