"""Import cost of lmstudio_provider against requests alone, in one run.

Starts a fresh interpreter per sample, alternating the two imports so that
machine noise hits both alike, and prints the medians of their CPU time and
the ratio:

    python scripts/bench_import.py [--runs 41]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=41)
    runs = parser.parse_args().runs
    # Write the .pyc first, as pip does on install; otherwise we time the compiler.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(
        [sys.executable, "-c", "import lmstudio_provider"], check=True, cwd=ROOT, env=env
    )
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
