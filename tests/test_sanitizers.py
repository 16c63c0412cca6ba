"""TA_HOST_SANITIZE=1 builds the host board (and the C test harness) with ASan and UBSan, and a report
cannot go unnoticed: a planted bug in a tool handler ends the program at its first report with exit
code 86, the chat fails with one line saying so, and the report names the bug. These tests set the
variable themselves, so they check the mechanism in every run; `.ci/run` then runs the C-facing tests
a second time with it set (docs/robustness.md).
"""
from __future__ import annotations

import re

import pytest

from tinyagent.cli import DEFAULT_RUN
from tinyagent.device.chat import open_device
from tinyagent.device.protocol import ask
from tinyagent.errors import EXIT_DEVICE, TinyAgentError
from tinyagent.targets.boards import REPO_ROOT, load_board
from tinyagent.targets.build import build
from tinyagent.targets.toolchain import SANITIZE_CFLAGS, SANITIZE_ENV, with_sanitizers

EXIT_SANITIZER = 86  # conftest.py's exitcode for ASAN_OPTIONS / UBSAN_OPTIONS

PLANTED = """
#include <limits.h>
#include <stdlib.h>
static void planted_bug(void)
{
    const char *kind = getenv("TA_PLANTED_BUG");
    volatile int i = 8, big = INT_MAX;
    char small[4] = {0};
    char *volatile p = small;       /* through a pointer: UBSan's bounds check does not see it */
    if (kind != NULL && kind[0] == 'a') {
        p[i] = 1;                   /* ASan: stack-buffer-overflow */
    } else if (kind != NULL && kind[0] == 'u') {
        small[0] = (char)(big + i); /* UBSan: signed integer overflow */
    }
    (void)small[0];
}
"""


def test_the_flags_apply_to_the_host_board_only(monkeypatch):
    monkeypatch.delenv(SANITIZE_ENV, raising=False)
    assert with_sanitizers(load_board("host")) == load_board("host")
    for off in ("0", "", "no"):
        monkeypatch.setenv(SANITIZE_ENV, off)
        assert with_sanitizers(load_board("host")) == load_board("host")
    monkeypatch.setenv(SANITIZE_ENV, "1")
    host = with_sanitizers(load_board("host"))
    assert host.toolchain.cflags[-len(SANITIZE_CFLAGS):] == SANITIZE_CFLAGS  # -O1 after the board's -O2
    assert "-fsanitize=address,undefined" in host.toolchain.ldflags
    assert with_sanitizers(load_board("mps2-an386")) == load_board("mps2-an386")


@pytest.fixture(scope="module")
def planted_build(tmp_path_factory):
    """The shipped model on a sanitized host build whose tool handlers carry a planted bug."""
    root = tmp_path_factory.mktemp("planted")
    src = (REPO_ROOT / "firmware/ta_tools_default.c").read_text()
    tools = root / "tools_planted.c"
    handlers = re.compile(r"(ta_status ta_tool_\w+\(const ta_call \*call, char \*result, size_t cap\)\n\{\n)")
    planted, n = handlers.subn(r"\1    planted_bug();\n", src)
    assert n >= 2, "the default tool handlers changed shape"
    tools.write_text(planted.replace('#include "ta_tools.h"\n', '#include "ta_tools.h"\n' + PLANTED, 1))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(SANITIZE_ENV, "1")
        r = build("host", root / "build", DEFAULT_RUN, tools_c=str(tools))
    assert "sanitized build" in r.plan.stack_note
    return root / "build"


@pytest.mark.parametrize("kind, says", [("asan", "stack-buffer-overflow"),
                                        ("ubsan", "signed integer overflow")])
def test_a_planted_bug_fails_the_chat_with_its_report(planted_build, tmp_path, monkeypatch, kind, says):
    logs = tmp_path / "logs"
    logs.mkdir()
    opts = f"halt_on_error=1:abort_on_error=0:exitcode={EXIT_SANITIZER}"
    monkeypatch.setenv("ASAN_OPTIONS", f"{opts}:log_path={logs}/asan")  # not the session's folder
    monkeypatch.setenv("UBSAN_OPTIONS", opts)
    monkeypatch.setenv("TA_PLANTED_BUG", "none")
    with open_device("host", str(planted_build), None, 115200) as con:
        assert "[led on] -> on" in ask(con, "turn on the light")  # the handler runs, harmless
    monkeypatch.setenv("TA_PLANTED_BUG", kind)
    con = open_device("host", str(planted_build), None, 115200)
    with pytest.raises(TinyAgentError) as e:
        ask(con, "turn on the light", timeout=20)
    stderr = con.stderr_summary()
    assert con.close() == EXIT_SANITIZER
    msg = str(e.value)
    assert e.value.code == EXIT_DEVICE and "\n" not in msg
    assert con.port in msg and f"exited with code {EXIT_SANITIZER}" in msg
    # ASan writes its report to log_path; GCC's UBSan ignores log_path and prints to stderr, whose
    # first line the error quotes
    report = "".join(p.read_text() for p in logs.iterdir()) + stderr
    assert says in report and "tools_planted.c" in report, (report, msg)
    assert kind == "asan" or says in msg
