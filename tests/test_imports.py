"""The import graph of `visualizer` runs one way: a module imports only from its own layer or the
ones below it, and no modules import each other in a circle. Imports are read from the source
with `ast`, those inside functions included (a late import is still a dependency). A module no
layer names fails too, so that a new one is placed on purpose."""

import ast
from graphlib import CycleError, TopologicalSorter
from itertools import pairwise
from pathlib import Path

import visualizer

PACKAGE = Path(visualizer.__file__).parent
ROOT = PACKAGE.parent

# Lowest first. A module is in the layer that names it or the nearest package above it (not
# `visualizer`: that names only its __init__).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("ground", ("visualizer", "visualizer.errors", "visualizer.paths", "visualizer.clock",
                "visualizer.signals", "visualizer.detail", "visualizer.frame",
                "visualizer.architecture", "visualizer.interventions", "visualizer.running_norm",
                "visualizer.progress", "visualizer.config", "visualizer.refusals",
                "visualizer.logs", "visualizer.heap")),
    ("data", ("visualizer.measures", "visualizer.moments", "visualizer.anatomy",
              "visualizer.features", "visualizer.handoff", "visualizer.trace",
              "visualizer.network", "visualizer.wire", "visualizer.cues")),
    ("model", ("visualizer.model",)),
    ("sound", ("visualizer.sound",)),
    ("gl", ("visualizer.gl",)),  # context, window-order textures, shader library
    ("safety", ("visualizer.safety",)),
    ("record", ("visualizer.record",)),
    ("sources", ("visualizer.sources",)),
    ("render", ("visualizer.render",)),
    ("runs", ("visualizer.tracer", "visualizer.server", "visualizer.report",
              "visualizer.attract", "visualizer.film")),  # one command's work, and the kiosk's
    #                                                      attract loop
    ("front ends", ("visualizer.terminal", "visualizer.live", "visualizer.kiosk",
                    "visualizer.bench", "visualizer.run_flags")),
    ("soak", ("visualizer.soak",)),
    ("cli", ("visualizer.cli", "visualizer.__main__")),
]  # fmt: skip


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _module(name: str) -> str:
    """The module that `name` (a module, or a name defined in one) comes from."""
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _imports(name: str, path: Path) -> list[tuple[str, int]]:
    """(imported module of the package, line) for each import in the module `name`."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                above = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*above, base] if base else above)
            targets = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found += [(_module(t), node.lineno) for t in targets
                  if t == "visualizer" or t.startswith("visualizer.")]  # fmt: skip
    return sorted({(target, line) for target, line in found if target != name})


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(name: str) -> int | None:
    for level, (_, members) in enumerate(LAYERS):
        if name in members:
            return level
    package = name.rpartition(".")[0]
    return _layer(package) if package.startswith("visualizer.") else None


def _where(name: str, line: int) -> str:
    return f"{MODULES[name].relative_to(ROOT)}:{line}"


def test_every_module_is_in_a_layer():
    unplaced = [name for name in MODULES if _layer(name) is None]
    assert not unplaced, f"in no layer of LAYERS: {', '.join(unplaced)}"


def test_no_import_runs_up_a_layer():
    # a module in no layer fails the test above
    level = {name: n for name in MODULES if (n := _layer(name)) is not None}
    upward = [f"{_where(name, line)}: {name} ({LAYERS[level[name]][0]}) imports {target} "
              f"({LAYERS[level[target]][0]}), a layer above it"
              for name, targets in GRAPH.items() if name in level for target, line in targets
              if target in level and level[target] > level[name]]  # fmt: skip
    assert not upward, "\n".join(upward)


def test_no_modules_import_each_other_in_a_circle():
    graph = {name: {target for target, _ in targets} for name, targets in GRAPH.items()}
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as error:
        circle = error.args[1]  # each imports the one before it; the first is the last
        steps = [f"{_where(b, line)}: {b} imports {a}" for a, b in pairwise(circle)
                 for target, line in GRAPH[b] if target == a]  # fmt: skip
        raise AssertionError("a circle of imports:\n" + "\n".join(reversed(steps))) from None
