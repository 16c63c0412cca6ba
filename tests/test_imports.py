"""The integer and build paths run without torch: `chat --board reference`, `build`, `test` and the
firmware's host side import numpy, never torch (about 1.4 s of start-up before the first byte)."""
import subprocess
import sys

import pytest

TORCH_FREE = ["tinyagent.cli", "tinyagent.config", "tinyagent.intmodel", "tinyagent.reference", "tinyagent.agent",
              "tinyagent.run", "tinyagent.build", "tinyagent.generate", "tinyagent.memplan", "tinyagent.device",
              "tinyagent.conformance", "tinyagent.simulate"]


@pytest.mark.parametrize("module", TORCH_FREE)
def test_module_imports_without_torch(module):
    code = f"import sys, {module}; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False", f"{module} imports torch"


def test_reference_chat_starts_without_torch(tmp_path):
    code = ("import io, sys\nfrom tinyagent.cli import DEFAULT_RUN\nfrom tinyagent.device import chat\n"
            "chat(board='reference', run=DEFAULT_RUN, stdin=io.StringIO('hello\\n'), stdout=io.StringIO())\n"
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"


def _imports(module: str) -> set[str]:
    """The tinyagent modules `module` imports anywhere in it (top level or inside a function)."""
    import ast

    from tinyagent.spec import REPO_ROOT

    tree = ast.parse((REPO_ROOT / "host" / "tinyagent" / f"{module}.py").read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            out |= {node.module} if node.module else {a.name for a in node.names}
    return out


def test_training_arrows_point_down():
    """The loop (train.py) below the stages (distill, prune, quantize) below the chain (chain.py): no
    circle, no lazy import to break one."""
    assert not _imports("train") & {"chain", "distill", "prune", "quantize", "gate"}
    for stage in ("distill", "prune", "quantize"):
        assert "chain" not in _imports(stage), stage
    assert {"train", "distill", "prune", "quantize", "gate"} <= _imports("chain")
