"""The Python tree passes ruff's pyflakes checks (unused names, undefined names) and keeps every import
block sorted: stdlib, third party, tinyagent, then the tests' own helpers ([tool.ruff] in pyproject.toml).
`ruff check --fix host tests scripts fuzz` sorts them."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "host", "tests", "scripts", "fuzz"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
