"""The sandbox's cost per call: a trivial reward program scored through `score_program` (a fresh
confined interpreter per batch) against the same function called in process, for batches of 1,
64 and 1,024 samples, with the user and mount namespaces (where the machine has them) and
without, alternating, median of `--repeats`. The last line reads

    ratios sandbox_ms_per_call=X (namespaces) sandbox_ms_no_namespaces=Y in_process_ms=Z

    python benchmarks/bench_sandbox.py [--repeats 9]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from rewardlab.sandbox import check_available, score_program

PROGRAM = (
    "def reward(prompts, completions, **kw):\n    return [float(len(c)) for c in completions]\n"
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=9)
    args = ap.parse_args()
    print(f"layers: {check_available()}")
    env: dict = {}
    exec(PROGRAM, env)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "prog.py"
        path.write_text(PROGRAM)
        rows = []
        for n in (1, 64, 1024):
            prompts, comps = ["p"] * n, [f"c{i}" for i in range(n)]
            t = {"ns": [], "no_ns": [], "in_process": []}
            for _ in range(args.repeats):
                for key, call, kw in (
                    ("ns", score_program, {}),
                    ("no_ns", score_program, {"_namespaces": False}),
                    ("in_process", None, {}),
                ):
                    t0 = time.perf_counter()
                    if call is None:
                        env["reward"](prompts, comps)
                    else:
                        call(path, prompts, comps, **kw)
                    t[key].append((time.perf_counter() - t0) * 1000)
            med = {k: statistics.median(v) for k, v in t.items()}
            rows.append(med)
            print(f"batch {n:5d}: sandbox {med['ns']:.1f} ms, without namespaces "
                  f"{med['no_ns']:.1f} ms, in process {med['in_process']:.3f} ms")  # fmt: skip
    mid = rows[1]
    print(f"ratios sandbox_ms_per_call={mid['ns']:.1f} (namespaces) "
          f"sandbox_ms_no_namespaces={mid['no_ns']:.1f} in_process_ms={mid['in_process']:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
