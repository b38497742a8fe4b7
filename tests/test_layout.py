"""The layered layout (issue 13), read from the imports themselves: each floor imports only the floors below it.

Floors, bottom to top (README "Layout"): ``datasets`` · ``lab.core`` · ``lab.nn`` · ``baselines`` and ``metrics``
· ``lab.models`` · ``lab.codec`` · ``lab.evaluation`` · ``lab.train`` · ``lab.deploy`` · ``lab.reports`` ·
``lab.conference`` · ``lab.cli`` and ``lab.ui``. Every ``import``/``from ... import`` counts, at module level or
inside a function (a lazy import is still a dependency). Not counted: ``__main__.py`` files (entry points that
nothing imports) and the registry's list of built-in model modules, imported by name so that they register
themselves (plugin discovery, as entry points would be: ``lab.core.registry.BUILTIN_MODULES``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: bottom to top; a tuple is one floor of folders that may not import each other
FLOORS: list[tuple[str, ...]] = [
    ("datasets",),
    ("lab.core",),
    ("lab.nn",),
    ("baselines", "metrics"),
    ("lab.models",),
    ("lab.codec",),
    ("lab.evaluation",),
    ("lab.train",),
    ("lab.deploy",),
    ("lab.reports",),
    ("lab.conference",),
    ("lab.cli", "lab.ui"),
]
PACKAGES = ("lab", "baselines", "metrics", "datasets")


def _folder(module: str) -> str | None:
    """The floor folder a dotted module name belongs to (``lab`` itself counts as ``lab.core``)."""
    for floor in FLOORS:
        for f in floor:
            if module == f or module.startswith(f + "."):
                return f
    if module == "lab":
        return "lab.core"
    return None


def _level(folder: str) -> int:
    return next(i for i, floor in enumerate(FLOORS) if folder in floor)


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every import statement in the file, relative imports resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((node.lineno, mod))
            # ``from lab import core`` names a sub-package: count it as that package
            out += [(node.lineno, f"{mod}.{a.name}") for a in node.names if _folder(f"{mod}.{a.name}") != _folder(mod)]
    return [(ln, m) for ln, m in out if m.split(".")[0] in PACKAGES]


def _source_files() -> list[Path]:
    files = []
    for pkg in PACKAGES:
        files += [p for p in (ROOT / pkg).rglob("*.py") if p.name != "__main__.py"]
    return sorted(files)


def _edges() -> list[tuple[str, str, str]]:
    """(importer folder, imported folder, where) for imports that cross floor folders."""
    edges = []
    for path in _source_files():
        src = _folder(_module_name(path))
        assert src is not None, f"{path.relative_to(ROOT)} is in no floor of the layout: add its folder to FLOORS"
        for line, mod in _imports(path):
            dst = _folder(mod)
            if dst is not None and dst != src:
                edges.append((src, dst, f"{path.relative_to(ROOT)}:{line} imports {mod}"))
    return edges


def test_every_source_file_is_on_a_floor():
    assert _source_files(), "no source files found"
    missing = [str(p.relative_to(ROOT)) for p in _source_files() if _folder(_module_name(p)) is None]
    assert not missing, f"files outside every floor: {missing}"


def test_each_floor_imports_only_floors_below_it():
    bad = [where for src, dst, where in _edges() if _level(dst) >= _level(src)]
    assert not bad, "imports that go up or sideways a floor:\n" + "\n".join(bad)


def test_baselines_and_metrics_take_only_core_and_nn_from_lab():
    bad = [where for src, dst, where in _edges()
           if src in ("baselines", "metrics") and dst.startswith("lab") and dst not in ("lab.core", "lab.nn")]
    assert not bad, "\n".join(bad)


def test_no_folder_level_import_cycle():
    graph: dict[str, set[str]] = {}
    for src, dst, _ in _edges():
        graph.setdefault(src, set()).add(dst)

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    cycles = sorted(f for f in graph if f in reach(f))
    assert not cycles, f"folders on an import cycle: {cycles}"


@pytest.mark.parametrize("case", ["up", "cycle"])
def test_the_rule_catches_a_violation(case, tmp_path):
    """The checks above can fail: a planted upward import is reported with its file and line."""
    pkg = tmp_path / "lab" / "core"
    pkg.mkdir(parents=True)
    (tmp_path / "lab" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "bad.py").write_text("import os\n\nfrom lab.ui import handlers\n")
    if case == "cycle":
        ui = tmp_path / "lab" / "ui"
        ui.mkdir()
        (ui / "__init__.py").write_text("from lab.core import bad\n")
    for pkg_name in ("baselines", "metrics", "datasets"):
        (tmp_path / pkg_name).mkdir()
    globals()["ROOT"], saved = tmp_path, ROOT
    try:
        edges = _edges()
        assert ("lab.core", "lab.ui", "lab/core/bad.py:3 imports lab.ui") in edges
        with pytest.raises(AssertionError, match="lab/core/bad.py:3"):
            test_each_floor_imports_only_floors_below_it()
        if case == "cycle":
            with pytest.raises(AssertionError, match="lab.core"):
                test_no_folder_level_import_cycle()
    finally:
        globals()["ROOT"] = saved
