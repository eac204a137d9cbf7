"""Import cost of lmstudio_provider against requests alone, in one run.

Starts a fresh interpreter per sample, alternating the two imports so that
machine noise hits both alike, and prints the medians of their CPU time and
the ratio:

    python scripts/bench_import.py [--runs 41]
    python scripts/bench_import.py --callgrind   # instruction counts: the same every run
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def sample(module: str) -> float:
    """CPU seconds (user + system) of a fresh interpreter importing ``module``.

    CPU time, not wall time: on a shared 2-core machine the wall clock of the
    same import swings by a third from run to run, its CPU time far less.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True, cwd=ROOT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def instructions(module: str) -> int:
    """Instructions a fresh interpreter runs to import ``module`` (valgrind's callgrind):
    the same count run after run, whatever else the machine does."""
    import re
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={folder}/out",
             os.path.realpath(sys.executable), "-c", f"import {module}"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        )  # fmt: skip
    found = re.search(r"Collected : (\d+)", done.stderr)
    assert found, done.stderr
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=41)
    parser.add_argument(
        "--callgrind", action="store_true", help="count instructions instead (needs valgrind)"
    )
    options = parser.parse_args()
    runs = options.runs
    # Write the .pyc first, as pip does on install; otherwise we time the compiler.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(
        [sys.executable, "-c", "import lmstudio_provider"], check=True, cwd=ROOT, env=env
    )
    if options.callgrind:
        base_count, our_count = instructions("requests"), instructions("lmstudio_provider")
        print(f"import requests          {base_count:>13,} instructions")
        print(f"import lmstudio_provider {our_count:>13,} instructions")
        print(f"ratio {our_count / base_count:.4f}")
        return
    times: dict[str, list[float]] = {"requests": [], "lmstudio_provider": []}
    for _ in range(runs):
        for module in times:
            times[module].append(sample(module))
    base = statistics.median(times["requests"])
    ours = statistics.median(times["lmstudio_provider"])
    print(f"python -c 'import requests'          median {base * 1000:7.1f} ms of CPU")
    print(f"python -c 'import lmstudio_provider' median {ours * 1000:7.1f} ms of CPU")
    print(f"overhead {100 * (ours / base - 1):+.1f}%  ({runs} runs each, alternating)")


if __name__ == "__main__":
    main()
