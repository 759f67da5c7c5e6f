"""The shape of the house, read from the code's own imports: no import cycle, no import of a higher
layer, no oversized file or function, and modules that stay light (a config, the gridworld lab)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "rewardlab"

# The layers, bottom first; a module may import its own layer or a lower one (docs/DESIGN.md).
# A name is a module or a package (every module under it); the longest matching name wins.
LAYERS = [
    ["rewardlab", "rewardlab.errors", "rewardlab.seeding", "rewardlab.progress",
     "rewardlab.common", "rewardlab.userfiles"],
    ["rewardlab.specs", "rewardlab.flops", "rewardlab.cache", "rewardlab.training", "rewardlab.models",
     "rewardlab.sequences",
     "rewardlab.sandbox", "rewardlab.sandbox_child", "rewardlab.label", "rewardlab.provenance"],
    ["rewardlab.tasks", "rewardlab.inputs", "rewardlab.measure", "rewardlab.offline",
     "rewardlab.detect"],
    ["rewardlab.policy"],
    ["rewardlab.pool", "rewardlab.preferences"],
    ["rewardlab.rewards.base", "rewardlab.rewards.guard"],
    ["rewardlab.context"],
    ["rewardlab.rewards"],
    ["rewardlab.optimize"],
    ["rewardlab.verdict", "rewardlab.report"],
    ["rewardlab.config", "rewardlab.gridworld", "rewardlab.write_reward"],
    ["rewardlab.study"],
    ["rewardlab.sweep", "rewardlab.integrations", "rewardlab.config_reference"],
    ["rewardlab.api", "rewardlab.seeds"],
    ["rewardlab.cli", "rewardlab.cli_groups", "rewardlab.__main__"],
]  # fmt: skip
LAYERS[0][0] = "rewardlab.__init__"  # the package's own file (lazy `rewardlab.run` excepted)


def _modules() -> dict[str, Path]:
    out = {}
    for p in PACKAGE.rglob("*.py"):
        parts = p.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out


MODULES = _modules()


def _type_checking_only(tree: ast.AST) -> set[int]:
    """ids of the nodes under an ``if TYPE_CHECKING:`` block."""
    skip = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test):
            skip |= {id(s) for s in ast.walk(n)}
    return skip


def _imported(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The package modules `node` (in `module`) imports: each named module, or the module a name
    is taken from."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:
            pkg = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
            parts = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
            base = ".".join(parts + ([node.module] if node.module else []))
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
    out = []
    for n in names:
        while n not in MODULES and "." in n:
            n = n.rpartition(".")[0]
        if n in MODULES and n.startswith("rewardlab"):
            out.append(n)
    return out


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports at module or function level (type-checking-only
    imports excepted), with the packages an import runs on the way (importing ``a.b.c`` runs
    ``a.b``'s ``__init__`` unless the importer is inside ``a.b`` already)."""
    graph: dict[str, set[str]] = {}
    for m, path in MODULES.items():
        tree = ast.parse(path.read_text())
        skip = _type_checking_only(tree)
        edges = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in skip:
                for t in _imported(m, node):
                    edges.add(t)
                    parent = t.rpartition(".")[0]
                    while parent and not (m == parent or m.startswith(parent + ".")):
                        edges.add(parent)
                        parent = parent.rpartition(".")[0]
        edges.discard(m)
        graph[m] = edges
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph`, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                return stack[stack.index(t) :] + [t]
            if t not in state and (found := visit(t)):
                return found
        state[m] = 2
        stack.pop()
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def layer(module: str) -> int:
    """The layer of `module`: that of the longest name in `LAYERS` it is or lies under."""
    name = "rewardlab.__init__" if module == "rewardlab" else module
    best = None
    for i, names in enumerate(LAYERS):
        for n in names:
            if (name == n or name.startswith(n + ".")) and (best is None or len(n) > len(best[1])):
                best = (i, n)
    assert best is not None, f"{module} is in no layer of LAYERS"
    return best[0]


def test_the_cycle_finder_finds_a_planted_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle():
    assert _cycle(import_graph()) is None


def test_no_module_imports_a_higher_layer():
    up = [
        f"{m} (layer {layer(m)}) -> {t} (layer {layer(t)})"
        for m, targets in import_graph().items()
        for t in targets
        if layer(t) > layer(m) and not (m == "rewardlab" and t == "rewardlab.api")
    ]
    assert up == []


def test_no_file_over_500_lines_and_no_function_over_80():
    long_files, long_functions = [], []
    for name, path in MODULES.items():
        text = path.read_text()
        if text.count("\n") > 500:
            long_files.append(f"{name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > 80:
                    long_functions.append(f"{name}.{node.name}: {n} lines")
    assert long_files == [] and long_functions == []


def _loaded_after(module: str) -> set[str]:
    """The top-level names in sys.modules after importing `module` in a fresh interpreter."""
    code = (
        f"import sys, {module}; print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize(
    ("module", "uses"), [("rewardlab.config", "pydantic"), ("rewardlab.cli", "typer")]
)
def test_a_config_is_read_without_torch_matplotlib_or_transformers(module, uses):
    loaded = _loaded_after(module)
    assert uses in loaded  # the check sees what was imported
    assert not loaded & {"torch", "matplotlib", "transformers", "trl", "datasets"}


def test_a_bad_config_is_an_error_before_any_of_them_loads(tmp_path):
    code = (
        "import sys\nfrom rewardlab.config import load_config\nfrom rewardlab.errors import "
        "RewardLabError\ntry:\n    load_config('quick', ['polcy.epochs=1'])\n"
        "except RewardLabError as e:\n    print(e)\nprint('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "unknown key 'polcy'" in out.stdout and out.stdout.split()[-1] == "False"


@pytest.mark.parametrize(
    "module", sorted(m for m in MODULES if m.startswith("rewardlab.gridworld"))
)
def test_the_gridworld_lab_loads_no_language_model_stack(module):
    loaded = _loaded_after(module)
    assert not loaded & {"transformers", "trl", "datasets", "peft"}
