"""Import cost of lmstudio_provider against requests alone, in one run.

Starts a fresh interpreter per sample, alternating the two imports so that
machine noise hits both alike, and prints the medians and their ratio:

    python scripts/bench_import.py [--runs 41]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def sample(module: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True, cwd=ROOT)
    return time.perf_counter() - started


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
    print(f"python -c 'import requests'          median {base * 1000:7.1f} ms")
    print(f"python -c 'import lmstudio_provider' median {ours * 1000:7.1f} ms")
    print(f"overhead {100 * (ours / base - 1):+.1f}%  ({runs} runs each, alternating)")


if __name__ == "__main__":
    main()
