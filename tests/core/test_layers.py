"""The folders of `rlt` are layers, and imports only go down: a test reads every import statement (also the ones
inside functions) of every module, so a new upward import fails here, not in a reviewer's head."""

import ast
from pathlib import Path

import rlt

ROOT = Path(rlt.__file__).resolve().parent
# lowest first; a module may import its own layer and the layers below it
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("core", ("rlt.config", "rlt.types", "rlt.seeds", "rlt.artifacts", "rlt.overrides", "rlt.diagnostics")),
    ("domain", ("rlt.execution", "rlt.rl", "rlt.models", "rlt.sim", "rlt.robot", "rlt.teleop", "rlt.bags",
                "rlt.serving", "rlt.sync")),
    ("application", ("rlt.app", "rlt.bench", "rlt.commands", "rlt.cli")),
)
# the learning layers never reach into the simulator: the RL stage and the models run on a robot's data too
FORBIDDEN: dict[str, tuple[str, ...]] = {"rlt.rl": ("rlt.sim", "rlt.robot", "rlt.models"),
                                         "rlt.models": ("rlt.robot", "rlt.rl")}


def _layer(module: str) -> int:
    for index, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    raise AssertionError(f"{module} is in no layer of tests/core/test_layers.py: add its folder to LAYERS")


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(module: str, path: Path) -> set[str]:
    names = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, up level - 1
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            names |= {base} | {f"{base}.{a.name}" for a in node.names}
    return {n for n in names if n == "rlt" or n.startswith("rlt.")}


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """The module `name` refers to (`from rlt.sim import env` names rlt.sim.env; a class name its module)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def test_imports_only_go_down_the_layers():
    modules = _modules()
    upward = []
    for module, path in sorted(modules.items()):
        if module == "rlt":
            continue
        for name in _imports(module, path):
            target = _known(name, modules)
            if target in (None, "rlt"):
                continue
            if _layer(target) > _layer(module):
                upward.append(f"{module} ({LAYERS[_layer(module)][0]}) imports {target} "
                              f"({LAYERS[_layer(target)][0]})")
            for owner, banned in FORBIDDEN.items():
                if module.startswith(owner + ".") and any(target.startswith(b + ".") for b in banned):
                    upward.append(f"{module} imports {target}: {owner} must not depend on {', '.join(banned)}")
    assert not upward, "\n".join(upward)
    assert len(modules) > 60  # it really read the package


def test_the_checker_sees_a_violation(tmp_path):
    """The scan finds an import inside a function body, the kind a lazy import hides."""
    path = tmp_path / "fake.py"
    path.write_text("def f():\n    from rlt.app.session import SimSession\n    return SimSession\n")
    assert "rlt.app.session.SimSession" in _imports("rlt.sim.fake", path)
    assert _layer("rlt.app.session") > _layer("rlt.sim.fake")
