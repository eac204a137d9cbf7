"""Run LiteLLM's proxy in front of several OpenAI-compatible servers, one model name over all.

Why: users who outgrow one LM Studio machine put a gateway in front of several.
LiteLLM's proxy balances one model name over many backends, retries and
cools a dead backend down; ``lmstudio_provider`` points at the proxy and works
unchanged. This script writes the proxy's config and starts it, so the
README's recipe and the test suite's gateway tier run the same setup.

Setup (Python 3.10 or newer; LiteLLM needs it)::

    pip install 'litellm[proxy]==1.108.7' prisma==0.15.0

Usage::

    # LM Studio on two machines, one model name routed to both
    python scripts/gateway.py --backend http://10.0.0.5:1234 --backend http://10.0.0.6:1234 \\
        --model qwen2.5-7b-instruct --port 4000 --master-key sk-my-gateway-key

    # try it here: two local llama.cpp servers (scripts/local_llm_server.py) behind it
    python scripts/gateway.py --local 2 --port 4000 --master-key sk-my-gateway-key

Once the proxy answers ``GET /health/liveliness`` it prints exactly one line,
``serving smollm2-135m-instruct at http://127.0.0.1:PORT over 2 backends``, and
serves until Ctrl-C or SIGTERM, then stops everything it started (exit 0).
With ``--port 0`` the proxy binds a free port and the line says which. Missing
packages: a line on stderr saying what to install, exit 2. The module can be
imported without side effects: the tests use its functions.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

HOST = "127.0.0.1"
LOCAL_MODEL = "smollm2-135m-instruct"
START_TIMEOUT_S = 90.0  # until the proxy names its port
READY_TIMEOUT_S = 90.0  # then until it answers there
EXIT_MISSING_DEPS = 2
EXIT_START_FAILED = 1
INSTALL_HINT = "install it with: pip install 'litellm[proxy]==1.108.7' prisma==0.15.0"
SCRIPTS = Path(__file__).resolve().parent
#: uvicorn's start-up line; with --port 0 it names the port it bound.
_RUNNING = re.compile(r"Uvicorn running on http://[^:]+:(\d+)")


def litellm_available() -> bool:
    """Whether LiteLLM's proxy can be started by this interpreter."""
    try:
        return importlib.util.find_spec("litellm") is not None
    except (ImportError, ValueError):
        return False


def litellm_config(
    backends: list[str],
    model: str,
    *,
    master_key: str | None = None,
    backend_key: str | None = None,
    num_retries: int = 2,
    cooldown_time: float = 5.0,
) -> dict[str, object]:
    """The proxy's config: every backend serves ``model``; a failing one is skipped at once.

    ``allowed_fails: 0`` cools a backend down after its first failure, so the
    router sends the next call elsewhere; with retries alone a dead backend
    still costs some calls an HTTP 500.
    """
    entries = [
        {
            "model_name": model,
            "litellm_params": {
                "model": f"openai/{model}",  # LiteLLM's client for any OpenAI-compatible server
                "api_base": backend.rstrip("/") + "/v1",
                "api_key": backend_key or "none",  # LM Studio ignores it unless auth is on
            },
        }
        for backend in backends
    ]
    config: dict[str, object] = {
        "model_list": entries,
        "litellm_settings": {"num_retries": num_retries},
        "router_settings": {"allowed_fails": 0, "cooldown_time": cooldown_time},
    }
    if master_key:
        config["general_settings"] = {"master_key": master_key}
    return config


def start_local_backend(port: int = 0) -> tuple[subprocess.Popen[str], str]:
    """Start ``scripts/local_llm_server.py`` (with embeddings); return it and its URL."""
    process = subprocess.Popen(
        [sys.executable, str(SCRIPTS / "local_llm_server.py"), "--port", str(port), "--embeddings"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()  # the one line it prints when ready
    if not line.startswith("serving "):
        stop(process)
        raise RuntimeError(f"the local llama.cpp server did not start (exit {process.poll()})")
    return process, line.rsplit(" at ", 1)[-1].strip()


def start_proxy(
    config: dict[str, object], port: int = 0, *, verbose: bool = False
) -> tuple[subprocess.Popen[str], str]:
    """Start LiteLLM's proxy on ``config``; return it and its URL once it answers."""
    folder = tempfile.mkdtemp(prefix="lmstudio-gateway-")
    path = os.path.join(folder, "config.yaml")
    with open(path, "w", encoding="utf-8") as file:
        json.dump(config, file, indent=1)  # JSON is YAML: no YAML writer needed
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}  # offline: no price list fetch
    start = "import sys; from litellm import run_server; sys.exit(run_server())"
    options = ["--config", path, "--host", HOST, "--port", str(port)]
    process = subprocess.Popen(
        [sys.executable, "-c", start, *options],  # LiteLLM's own CLI, on this interpreter
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        bound = _bound_port(process, verbose)
        url = f"http://{HOST}:{bound}"
        if not _answers(url + "/health/liveliness", READY_TIMEOUT_S):
            stop(process)
            raise RuntimeError(f"LiteLLM's proxy did not answer at {url}")
    finally:  # read at start-up; it holds the keys, so it does not stay behind
        shutil.rmtree(folder, ignore_errors=True)
    return process, url


def _bound_port(process: subprocess.Popen[str], verbose: bool) -> int:
    """Read the proxy's output until uvicorn names its port, for at most
    START_TIMEOUT_S even if it goes silent; keep draining it after, or a full
    pipe would stall the proxy."""
    lines: queue.Queue[str | None] = queue.Queue()
    found_it = threading.Event()  # then lines are only drained, not kept

    def drain() -> None:
        for line in process.stdout or ():
            if verbose:
                sys.stderr.write(line)
            if not found_it.is_set():
                lines.put(line)
        lines.put(None)  # the proxy exited

    threading.Thread(target=drain, name="litellm-output", daemon=True).start()
    deadline, ended, last = time.monotonic() + START_TIMEOUT_S, False, ""
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            ended = True
            break
        found = _RUNNING.search(line)
        if found:
            found_it.set()
            return int(found.group(1))
        last = " ".join(line.split())[:200] or last  # the reason, when it gives up
    stop(process)
    if not ended:
        raise RuntimeError(f"LiteLLM's proxy named no port within {START_TIMEOUT_S:g} s")
    said = f": {last}" if last else ""
    raise RuntimeError(f"LiteLLM's proxy did not start (exit {process.returncode}){said}")


def _answers(url: str, timeout: float) -> bool:
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never HTTP_PROXY
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with direct.open(url, timeout=5) as response:
                response.read()
                return True
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    return False


def stop(process: subprocess.Popen[str]) -> None:
    """End a child politely, then firmly."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="LiteLLM's proxy in front of several LM Studio (or llama.cpp) servers, "
        "one model name routed to all of them."
    )
    parser.add_argument(
        "--backend",
        action="append",
        default=[],
        metavar="URL",
        help="a server's root URL, e.g. http://10.0.0.5:1234 (repeat for each machine)",
    )
    parser.add_argument(
        "--local",
        type=int,
        default=0,
        metavar="N",
        help="start N local llama.cpp servers (scripts/local_llm_server.py) as backends",
    )
    parser.add_argument(
        "--model",
        default=LOCAL_MODEL,
        help="the model name clients ask for, served by every backend (default: %(default)s)",
    )
    parser.add_argument("--port", type=int, default=4000, help="the proxy's port; 0 picks one")
    parser.add_argument("--master-key", metavar="KEY", help="the key clients must send")
    parser.add_argument(
        "--backend-key", metavar="KEY", help="the key the proxy sends to the backends"
    )
    parser.add_argument("--verbose", action="store_true", help="show LiteLLM's own log")
    args = parser.parse_args(argv)
    if not args.backend and args.local < 1:
        parser.error("give --backend URL (repeatable) or --local N")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not litellm_available():
        print(f"gateway: LiteLLM is not installed; {INSTALL_HINT}", file=sys.stderr)
        return EXIT_MISSING_DEPS
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    children: list[subprocess.Popen[str]] = []
    try:
        backends = list(args.backend)
        for _ in range(args.local):
            process, url = start_local_backend()
            children.append(process)
            backends.append(url)
        config = litellm_config(
            backends, args.model, master_key=args.master_key, backend_key=args.backend_key
        )
        proxy, url = start_proxy(config, args.port, verbose=args.verbose)
        children.append(proxy)
        print(f"serving {args.model} at {url} over {len(backends)} backends", flush=True)
        while not stopping.wait(0.5):
            if proxy.poll() is not None:
                print(f"gateway: LiteLLM's proxy exited ({proxy.returncode})", file=sys.stderr)
                return EXIT_START_FAILED
    except RuntimeError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return EXIT_START_FAILED
    finally:
        for child in reversed(children):
            stop(child)
    return 0


if __name__ == "__main__":
    sys.exit(main())
