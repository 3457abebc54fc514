"""The shape of the code: every import points down the data flow, no cycle, no giant module.

Read from the source with `ast` (nothing is imported): a module that imports a layer above its
own, a new import cycle (function-level imports included), a module over ~800 lines without a
reason written at its top, or a package holding more than a quarter of the code fails here.
The layers are described in docs/architecture.md.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("config", "simulator", "dashboards", "probes", "evidence", "exporter")

# From the bottom (0) to the top: a module may import its own folder and lower layers only.
# Peers (same layer, different folders) do not import each other.
LAYERS = {
    "config": 0,
    "simulator": 1,
    "dashboards": 1,
    "evidence.standalone": 1,  # shipped alone in bundles: imports nothing of Vigie
    "probes": 2,
    "evidence.ledger": 3,
    "evidence.outages": 4,
    "evidence.report": 5,
    "evidence.bundle": 6,
    "evidence": 7,  # modules that put the folders above together (opening the evidence)
    "exporter": 8,  # the service, its pages and routes, the central page
    "cli": 9,  # the `vigie` command on top
}
# Modules that form one folder of LAYERS although they sit elsewhere (the console script
# `vigie = exporter.cli:main` was promised to users).
GROUPS = {"exporter.cli": "cli", "exporter.demo": "cli", "exporter.commands": "cli"}
MAX_LINES = 800
REASON = "Why it is long:"
# Long modules whose text must not change for this rule, with the reason it would give.
SAID_HERE = {
    # Shipped byte for byte in every bundle and read by third parties: it cannot import the
    # project's helpers (Merkle proofs, signed notes, DER, RFC 3161 are all inside), and
    # editing it changes every bundle.
    "evidence/standalone/verify.py",
}
MAX_SHARE = 0.25


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


MODULES = _sources()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(name: str, path: Path) -> set[str]:
    """Modules of Vigie that `name` imports at run time (anywhere in it, not for typing only)."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text("utf-8")))
    return {module for module in found if module in MODULES and module != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _folder(module: str) -> str:
    """The most specific entry of LAYERS that holds `module`."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in GROUPS:
            return GROUPS[prefix]
        if prefix in LAYERS:
            return prefix
    raise AssertionError(f"{module}: in no layer of LAYERS (add its folder)")


def _upward(graph: dict[str, set[str]]) -> list[str]:
    """Each import of `graph` that points to a higher layer or to a peer folder."""
    wrong = []
    for module, targets in sorted(graph.items()):
        mine = _folder(module)
        for target in sorted(targets):
            theirs = _folder(target)
            if theirs != mine and LAYERS[theirs] >= LAYERS[mine]:
                wrong.append(
                    f"{module} ({mine}, layer {LAYERS[mine]}) imports {target} "
                    f"({theirs}, layer {LAYERS[theirs]})"
                )
    return wrong


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, list[str]]] = [(root, sorted(graph[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, pending = work[-1]
            if pending:
                nxt = pending.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(graph[nxt])))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _line_count(path: Path) -> int:
    return len(path.read_text("utf-8").splitlines())


class TestLayers:
    """Imports point down the data flow: config, probes, ledger, outages, report, bundle, CLI."""

    def test_every_module_has_a_layer(self) -> None:
        """Each module of the package tree belongs to a folder listed in LAYERS."""
        for module in MODULES:
            _folder(module)

    def test_no_import_points_up(self) -> None:
        """No module imports a folder of a higher layer, nor a peer folder of its own layer."""
        wrong = _upward(GRAPH)
        assert not wrong, "imports that point up:\n" + "\n".join(wrong)

    def test_no_import_cycle(self) -> None:
        """No set of modules imports itself round, even through function-level imports."""
        assert not _cycles(GRAPH), f"import cycles: {_cycles(GRAPH)}"

    def test_the_check_sees_an_upward_import_and_a_cycle(self, tmp_path: Path) -> None:
        """A function-level import of the CLI from config, a peer import and a cycle are seen;
        an import for type checking only is not."""
        source = tmp_path / "fake.py"
        source.write_text(
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from exporter.service import Service\n"
            "def f():\n    from exporter.cli import main\n    return main\n",
            encoding="utf-8",
        )
        found = _imports("config.fake", source)
        assert found == {"exporter.cli"}
        assert _upward({"config.fake": found}) != []
        assert _upward({"simulator.x": {"dashboards.build"}}) != []  # peers
        assert _upward({"exporter.cli": {"config.settings"}}) == []
        assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
        assert _cycles({"a": {"b"}, "b": set()}) == []
        assert LAYERS[_folder("evidence.ledger.core")] < LAYERS[_folder("evidence.bundle.export")]
        assert _folder("exporter.commands.export") == _folder("exporter.cli") == "cli"
        assert LAYERS[_folder("config.settings")] < LAYERS[_folder("probes.http")]

    def test_standalone_verifier_imports_no_vigie(self) -> None:
        """The verifier shipped in bundles needs only the standard library and `cryptography`."""
        path = ROOT / "evidence" / "standalone" / "verify.py"
        roots = set()
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                roots.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                roots.add(node.module.split(".")[0])
        outside = roots - set(sys.stdlib_module_names) - {"cryptography", "__future__"}
        assert not outside, f"verify.py imports {sorted(outside)}"


class TestSizes:
    """Modules stay readable and no folder swallows the project."""

    def test_long_module_says_why(self) -> None:
        """A module over ~800 lines says at its top why it is one module."""
        silent = []
        for path in MODULES.values():
            if _line_count(path) > MAX_LINES and str(path.relative_to(ROOT)) not in SAID_HERE:
                doc = ast.get_docstring(ast.parse(path.read_text("utf-8"))) or ""
                if REASON not in doc:
                    silent.append(f"{path.relative_to(ROOT)} ({_line_count(path)} lines)")
        assert not silent, f"over {MAX_LINES} lines with no {REASON!r} at the top: {silent}"

    def test_no_package_holds_a_quarter(self) -> None:
        """No package (its own modules, not its sub-packages) holds over a quarter of the code."""
        total = sum(_line_count(path) for path in MODULES.values())
        per_package: dict[str, int] = {}
        for path in MODULES.values():
            folder = str(path.parent.relative_to(ROOT))
            per_package[folder] = per_package.get(folder, 0) + _line_count(path)
        big = {f: n for f, n in per_package.items() if n > MAX_SHARE * total}
        assert not big, f"over a quarter of {total} lines: {big}"
