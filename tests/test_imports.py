"""The integer and build paths run without torch: `chat --board reference`, `build`, `test` and the
firmware's host side import numpy, never torch (about 1.4 s of start-up before the first byte)."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

TORCH_FREE = ["tinyagent.cli", "tinyagent.integer.config", "tinyagent.integer.intmodel", "tinyagent.integer.reference", "tinyagent.agent.conversation",
              "tinyagent.training.run", "tinyagent.targets.build", "tinyagent.codegen.generate", "tinyagent.codegen.arena", "tinyagent.device.chat",
              "tinyagent.device.conformance", "tinyagent.agent.simulated_hal"]


@pytest.mark.parametrize("module", TORCH_FREE)
def test_module_imports_without_torch(module):
    code = f"import sys, {module}; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False", f"{module} imports torch"


def test_reference_chat_starts_without_torch(tmp_path):
    code = ("import io, sys\nfrom tinyagent.cli import DEFAULT_RUN\nfrom tinyagent.device.chat import chat\n"
            "chat(board='reference', run=DEFAULT_RUN, stdin=io.StringIO('hello\\n'), stdout=io.StringIO())\n"
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"


PACKAGE = Path(__file__).resolve().parents[1] / "host" / "tinyagent"
# The pipeline, bottom to top: a module imports only from its own layer or one below it.
LAYERS = ["errors", "fileio", "agent", "integer", "training", "codegen", "targets", "device", "compare", "cli",
          "__main__"]


def _imports(path: Path) -> set[str]:
    """The tinyagent modules the module at `path` imports anywhere in it (top level or inside a
    function), as dotted names under tinyagent ("training.run", "errors")."""
    here = path.relative_to(PACKAGE).with_suffix("").parts[:-1]  # its package, e.g. ("training",)
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(here[:len(here) - (node.level - 1)])
            if node.module:
                out.add(".".join(base + node.module.split(".")))
            else:
                out |= {".".join(base + [a.name]) for a in node.names}
        elif isinstance(node, (ast.ImportFrom, ast.Import)):
            names = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            out |= {n.split(".", 1)[1] for n in names if n and n.startswith("tinyagent.")}
    return out


def _layer(name: str) -> int:
    return LAYERS.index(name.split(".")[0])


def test_no_module_imports_one_above_it():
    """The tree is the pipeline: agent < integer < training < codegen < targets < device < compare < cli
    (errors and fileio under all of them); an arrow only points down or inside a layer."""
    up = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        if name.endswith("__init__"):
            assert path.read_text() == "", f"{name}: a package's __init__ imports nothing"
            continue
        up += [f"{name} -> {dep}" for dep in _imports(path) if _layer(dep) > _layer(name)]
    assert not up, up


def test_every_module_is_in_a_layer():
    for path in PACKAGE.rglob("*.py"):
        if path != PACKAGE / "__init__.py":
            assert path.relative_to(PACKAGE).parts[0].removesuffix(".py") in LAYERS, path


def test_training_arrows_point_down():
    """The loop (train.py) below the stages (distill, prune, quantize) below the chain (chain.py): no
    circle, no lazy import to break one."""
    t = PACKAGE / "training"
    stages = {"training.chain", "training.distill", "training.prune", "training.quantize", "training.gate"}
    assert not _imports(t / "train.py") & stages
    for stage in ("distill", "prune", "quantize"):
        assert "training.chain" not in _imports(t / f"{stage}.py"), stage
    assert stages - {"training.chain"} | {"training.train"} <= _imports(t / "chain.py")
