"""Per-call overhead of LMStudioClient.chat() against bare requests, in one run.

Why: the client adds config, retries, size limits, error mapping and parsing on
top of ``requests``; this checks that a plain, non-streaming call stays within
10% of the bare ``requests.Session().post(...).json()`` it replaces.

How: a local ThreadingHTTPServer on 127.0.0.1 (a free port, in a child process)
answers
``POST /v1/chat/completions`` with a fixed small chat completion (Content-Length,
HTTP/1.1 keep-alive). Rounds alternate the two sides so machine noise hits both
alike; it prints the median calls per CPU-second of each and their ratio
(target >= 0.95):

    python scripts/bench_calls.py [--calls 500] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import lmstudio_provider as lp  # from the repo root, put on the path above

PATH = "/v1/chat/completions"
REPLY = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello there!"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    }
).encode()
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
    len(REPLY),
    REPLY,
)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: one connection for a whole run
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if self.path != PATH:
            self.send_error(404)
            return
        self.wfile.write(RESPONSE)  # status, headers and body in one write

    def log_message(self, *args: Any) -> None:
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True


def _serve(port: Any) -> None:
    server = Server(("127.0.0.1", 0), Handler)
    port.send(server.server_address[1])
    server.serve_forever()


def start_server() -> tuple[str, Callable[[], None]]:
    """Serve from a child process, so the server does not share the client's GIL."""
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_serve, args=(child,), daemon=True)
    process.start()
    port = parent.recv()

    def stop() -> None:
        process.terminate()
        process.join()

    return f"http://127.0.0.1:{port}", stop


def time_calls(call: Callable[[], str], calls: int) -> float:
    """Calls per second of this process's CPU time (the server's is not counted, nor a
    virtual machine's stolen time); checks every answer."""
    started = time.process_time()
    for _ in range(calls):
        if call() != "Hello there!":
            raise SystemExit("wrong answer from the bench server")
    return calls / (time.process_time() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=500, help="calls per side per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.calls < 1 or args.rounds < 1:
        parser.error("--calls and --rounds must be >= 1")

    url, stop = start_server()
    config = lp.LMStudioConfig.from_env(environ={}, base_url=url)  # ignore LMSTUDIO_* here
    client = lp.LMStudioClient(config)
    session = requests.Session()
    payload = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    timeout = (config.connect_timeout, config.timeout)

    def bare() -> str:
        response = session.post(url + PATH, json=payload, timeout=timeout)
        response.raise_for_status()
        return str(response.json()["choices"][0]["message"]["content"])

    def ours() -> str:
        return client.chat("hi", model="m").content

    sides: dict[str, Callable[[], str]] = {"requests": bare, "lmstudio_provider": ours}
    rates: dict[str, list[float]] = {name: [] for name in sides}
    try:
        for call in sides.values():  # warm up: connections, caches, code paths
            time_calls(call, min(args.calls, 50))
        for round_ in range(args.rounds):
            order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
            for name in order:
                rates[name].append(time_calls(sides[name], args.calls))
    finally:
        client.close()
        session.close()
        stop()

    median = {name: statistics.median(values) for name, values in rates.items()}
    print(f"{args.rounds} rounds x {args.calls} calls, POST {PATH} on {url}")
    for name, values in rates.items():
        spread = ", ".join(f"{v:.0f}" for v in values)
        print(f"  {name:<18} {median[name]:8.0f} calls/s median  ({spread})")
    ratio = median["lmstudio_provider"] / median["requests"]
    verdict = "ok" if ratio >= 0.95 else "BELOW TARGET"
    print(f"  ratio lmstudio_provider/requests: {ratio:.3f} (target >= 0.95: {verdict})")


if __name__ == "__main__":
    main()
