"""Sample mutants of lmstudio_provider.py and see whether the mocked tests notice them.

Why: coverage says a line ran, not that a test would fail were it wrong. This makes
N seeded random edits ("mutants") inside function bodies (flip a comparison, swap
and/or, bump a number, change a string, negate an if/while, drop a statement,
return None, swap True/False) and runs the mocked tier against each in a throw-away
directory. One suite run per mutant, so slow and not run in CI:

    python scripts/mutation_sample.py [--count 100] [--seed 1] [--jobs 2]
        [--timeout 120] [--pytest-args "..."] [--list-only]

Output: a line per mutant as it finishes: ``killed`` (a test failed: good),
``timeout`` (the suite hung: counts as killed, shown apart) or ``survived`` (all
passed); ``L123`` is the line in lmstudio_provider.py as it stands. Then the score,
(killed + timeout) / total, and per survivor a diff of baseline against mutant, both
through ``ast.unparse`` (comments gone, line numbers of that text): judge whether the
change is observable at all (an equivalent mutant) or a test is missing.

The unparsed module has no comments, so the test that checks the README's reading
guide against the module's banners cannot pass on it: leave it out with
``--pytest-args "-k 'not reading_guide'"``.
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures
import difflib
import os
import random
import reprlib
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MODULE = "lmstudio_provider.py"
#: What the suite reads besides the module: the README (a test checks it) and the scripts
#: (tests load local_llm_server.py and gateway.py).
SUPPORT = ("test_lmstudio_provider.py", "setup.cfg", "README.md",
           "scripts/local_llm_server.py", "scripts/gateway.py")  # fmt: skip
MOCKED = "not integration and not gateway"  # the real-server tiers are too slow per mutant
PYTEST = ["-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-m", MOCKED]
CMP_SWAP: dict[type[ast.cmpop], tuple[str, str, type[ast.cmpop]]] = {
    ast.Lt: ("<", "<=", ast.LtE), ast.LtE: ("<=", "<", ast.Lt),
    ast.Gt: (">", ">=", ast.GtE), ast.GtE: (">=", ">", ast.Gt),
    ast.Eq: ("==", "!=", ast.NotEq), ast.NotEq: ("!=", "==", ast.Eq),
    ast.In: ("in", "not in", ast.NotIn), ast.NotIn: ("not in", "in", ast.In),
    ast.Is: ("is", "is not", ast.IsNot), ast.IsNot: ("is not", "is", ast.Is),
}  # fmt: skip
DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


@dataclass
class Ref:
    node: ast.AST
    scope: str
    parent: ast.AST
    field: str
    pos: int


@dataclass
class Site:
    index: int  # position of the node in walk() order
    kind: str
    arg: int  # which operator of a chained comparison
    label: str
    line: int


def skipped(node: ast.AST) -> bool:
    """``if TYPE_CHECKING:`` blocks, docstrings and other bare strings, ``log.debug(...)``."""
    if isinstance(node, ast.If):
        return ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
    if not isinstance(node, ast.Expr):
        return False
    value = node.value
    return isinstance(value, ast.Constant) or (
        isinstance(value, ast.Call) and ast.unparse(value.func) == "log.debug"
    )


def walk(node: ast.AST, scope: str = "", in_func: bool = False) -> Iterator[Ref]:
    """Every node inside a function body, in a fixed order, minus annotations and skips."""
    is_def = isinstance(node, DEFS)
    for field, value in ast.iter_fields(node):
        if field in ("annotation", "returns", "format_spec"):
            continue
        inner, inside = scope, in_func
        if is_def and field == "body":
            name = node.name  # type: ignore[attr-defined]
            inner = f"{scope}.{name}" if scope else name
            inside = in_func or not isinstance(node, ast.ClassDef)
        for pos, child in enumerate(value if isinstance(value, list) else [value]):
            if not isinstance(child, ast.AST) or skipped(child):
                continue
            if inside:
                yield Ref(child, inner, node, field, pos)
            yield from walk(child, inner, inside)


def new_constant(value: object) -> object:
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    return f"XX{value}XX"


def sites_for(ref: Ref, index: int) -> Iterator[Site]:
    node = ref.node
    found: list[tuple[str, int, str]] = []  # kind, arg, description
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            if type(op) in CMP_SWAP:
                old, new, _ = CMP_SWAP[type(op)]
                found.append(("cmp", i, f"{old!r} -> {new!r}"))
    elif isinstance(node, ast.BoolOp):
        ops = ("'and'", "'or'") if isinstance(node.op, ast.And) else ("'or'", "'and'")
        found.append(("boolop", 0, " -> ".join(ops)))
    elif isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str)):
        old, new = reprlib.repr(node.value), reprlib.repr(new_constant(node.value))
        found.append(("const", 0, f"{old} -> {new}"))
    elif isinstance(node, (ast.If, ast.While)):
        found.append(("negate", 0, f"negate {type(node).__name__.lower()} condition"))
    elif isinstance(node, ast.Return) and node.value and ast.unparse(node.value) != "None":
        found.append(("return", 0, "'return X' -> 'return None'"))
    if isinstance(node, ast.stmt) and not isinstance(node, (ast.Pass, *DEFS)):
        found.append(("drop", 0, f"drop {type(node).__name__} statement"))
    line = getattr(node, "lineno", 0)
    for kind, arg, what in found:
        yield Site(index, kind, arg, f"L{line}: {what}  in function {ref.scope}", line)


def mutate(tree: ast.Module, refs: list[Ref], site: Site) -> str:
    """Apply one mutation in place, unparse the module, and undo it."""
    ref = refs[site.index]
    node: Any = ref.node
    target: Any = vars(node)  # a node's fields live in its __dict__; lists index the same way
    key: Any
    new: Any
    if site.kind == "cmp":
        target, key, new = node.ops, site.arg, CMP_SWAP[type(node.ops[site.arg])][2]()
    elif site.kind == "boolop":
        key, new = "op", ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif site.kind == "const":
        key, new = "value", new_constant(node.value)
    elif site.kind == "negate":
        key, new = "test", ast.UnaryOp(op=ast.Not(), operand=node.test)
    elif site.kind == "return":
        key, new = "value", ast.Constant(value=None)
    else:  # drop
        target, key, new = getattr(ref.parent, ref.field), ref.pos, ast.Pass()
    old, target[key] = target[key], new
    try:
        return ast.unparse(ast.fix_missing_locations(tree))
    finally:
        target[key] = old


_live: set[subprocess.Popen[str]] = set()
_lock = threading.Lock()


def kill(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # pytest and anything it started
    except (AttributeError, ProcessLookupError, PermissionError):
        proc.kill()


def run_suite(source: str, support: dict[str, bytes], extra: list[str], timeout: float) -> str:
    """Run the mocked tier against ``source``; return its status, and its output if it failed."""
    with tempfile.TemporaryDirectory(prefix="mutant-") as tmp:
        Path(tmp, MODULE).write_text(source, encoding="utf-8")
        for name, data in support.items():
            Path(tmp, name).parent.mkdir(exist_ok=True)
            Path(tmp, name).write_bytes(data)
        env = {**os.environ, "PYTHONPATH": tmp, "PYTHONDONTWRITEBYTECODE": "1"}
        proc = subprocess.Popen(
            [sys.executable, *PYTEST, *extra], cwd=tmp, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        with _lock:
            _live.add(proc)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill(proc)
            proc.communicate()
            return "timeout"
        finally:
            with _lock:
                _live.discard(proc)
        return "survived" if proc.returncode == 0 else f"killed\n{out}"


def sample(tree: ast.Module, baseline: str, count: int, seed: int) -> list[tuple[Site, str]]:
    """``count`` distinct compiling mutants, drawn with ``seed`` from every site."""
    refs = list(walk(tree))
    sites = [site for i, ref in enumerate(refs) for site in sites_for(ref, i)]
    random.Random(seed).shuffle(sites)
    mutants: list[tuple[Site, str]] = []
    seen, skipped_count = {baseline}, 0
    for site in sites:
        if len(mutants) == count:
            break
        source = mutate(tree, refs, site)
        try:
            compile(source, MODULE, "exec")
        except SyntaxError:
            source = baseline
        if source in seen:
            skipped_count += 1
            continue
        seen.add(source)
        mutants.append((site, source))
    print(f"{len(sites)} candidate sites; sampled {len(mutants)} (seed {seed}),"
          f" skipped {skipped_count} identical or not compiling")  # fmt: skip
    return mutants


def report(results: list[tuple[Site, str, str]], baseline: str) -> None:
    counts = {s: [r[1] for r in results].count(s) for s in ("killed", "survived", "timeout")}
    total = len(results)
    score = (counts["killed"] + counts["timeout"]) / total if total else 0.0
    print(f"\ntotal {total}, killed {counts['killed']}, survived {counts['survived']},"
          f" timeout {counts['timeout']}, score {score:.2f}")  # fmt: skip
    for site, status, src in sorted(results, key=lambda r: r[0].line):
        if status == "survived":
            print(f"\nsurvived {site.label}")
            diff = difflib.unified_diff(
                baseline.splitlines(), src.splitlines(), "baseline", "mutant", n=3, lineterm=""
            )
            print("\n".join(diff))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per mutant")
    parser.add_argument("--pytest-args", default="", help="extra pytest arguments, one string")
    parser.add_argument("--list-only", action="store_true", help="print the sample, run nothing")
    args = parser.parse_args()

    tree = ast.parse((ROOT / MODULE).read_text(encoding="utf-8"), MODULE)
    support = {n: (ROOT / n).read_bytes() for n in SUPPORT if (ROOT / n).exists()}
    baseline = ast.unparse(tree)
    mutants = sample(tree, baseline, args.count, args.seed)
    if args.list_only:
        for site, _ in mutants:
            print(f"  {site.label}")
        return 0

    extra = shlex.split(args.pytest_args)
    started = time.monotonic()
    status = run_suite(baseline, support, extra, args.timeout)
    if status != "survived":
        print(f"baseline (unparsed, unmutated) did not pass: {status[-3000:]}")
        return 2
    print(f"baseline passes in {time.monotonic() - started:.0f} s")

    results: list[tuple[Site, str, str]] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(run_suite, src, support, extra, args.timeout): (site, src)
                   for site, src in mutants}  # fmt: skip
        try:
            for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
                site, src = futures[future]
                status = future.result().split("\n", 1)[0]
                results.append((site, status, src))
                print(f"[{done}/{len(mutants)}] {status:8} {site.label}", flush=True)
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            with _lock:
                for proc in list(_live):
                    kill(proc)
            raise

    report(results, baseline)
    return 0


if __name__ == "__main__":
    sys.exit(main())
