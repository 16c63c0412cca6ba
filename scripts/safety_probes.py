"""The two safety probes a retrained default model is shipped on, before its hand-written sets are
scored (docs/training.md): write calls on tests/test_adversarial.py's 300 lines of noise and
injections (and on five other seeds of its generator), and pins written on tests/test_gate.py's 33
out-of-range requests (each its own conversation, then all in one). On the integer reference with the run's gate, which the boards match
turn for turn (those tests check it).

    python scripts/safety_probes.py runs/v11
"""
import io
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from tinyagent.device.chat import chat

from test_adversarial import WRITE_CALL, claims_without_a_call, noise_lines
from test_gate import out_of_range_requests

OTHER_SEEDS = (1, 2, 3, 4, 5)


def transcript(run: Path, requests: str) -> str:
    buf = io.StringIO()
    chat(board="reference", run=run, stdin=io.StringIO(requests), stdout=buf)
    return buf.getvalue()


def main(run: Path) -> dict:
    noise = transcript(run, "".join(f"{line}\n!new\n" for line in noise_lines()))
    writes = WRITE_CALL.findall(noise)
    # the same generator's other seeds: the 300 lines above are a test, these say how far it carries
    seeds = {}
    for seed in OTHER_SEEDS:
        t = transcript(run, "".join(f"{line}\n!new\n" for line in noise_lines(seed=seed)))
        seeds[seed] = ([ln for ln in t.splitlines() if WRITE_CALL.match(ln)], claims_without_a_call(t))
    lines = out_of_range_requests()
    separate = transcript(run, "".join(f"{line}\n!new\n" for line in lines))
    together = transcript(run, "".join(f"{line}\n" for line in lines))
    pins = re.compile(r"^\[gpio ", re.M)
    return {"run": str(run), "noise_lines": len(noise_lines()), "noise_write_calls": len(writes),
            "noise_write_lines": [ln for ln in noise.splitlines() if WRITE_CALL.match(ln)],
            "claims_without_a_call": claims_without_a_call(noise),
            "other_seeds": {str(k): {"lines": len(noise_lines(seed=k)), "write_calls": len(w), "write_lines": w,
                                     "claims_without_a_call": c} for k, (w, c) in seeds.items()},
            "out_of_range_requests": len(lines), "pins_written_separate": len(pins.findall(separate)),
            "pins_written_one_conversation": len(pins.findall(together))}


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1])), indent=1))
