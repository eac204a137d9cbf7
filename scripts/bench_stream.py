"""Streaming throughput and memory of ``LMStudioClient.chat_stream``, in one run.

Why: a chat stream sits between the network and the caller's loop, so its cost
per chunk should stay close to the least any ``requests`` code must pay, and
its memory should grow only with the text it keeps for ``stream.response``,
never with the number of chunks.

How: a local server on 127.0.0.1 (a free port, in a child process, so that it
does not share the client's interpreter lock) answers
``POST /v1/chat/completions`` and ``POST /v1/completions`` with a pre-rendered
event stream as fast as the socket allows, in two framings: **one SSE event per
HTTP chunk**, as llama.cpp and LM Studio send it (each event flushed as its own
``Transfer-Encoding: chunked`` chunk), and 16 KB HTTP chunks, which hide the
per-chunk cost. For each framing and route the script alternates, round after round,

(a) a minimal loop of ``requests.post(..., stream=True)`` + ``iter_lines()``
    + ``json.loads`` of each ``data:`` line, and
(b) ``LMStudioClient(base_url=...).chat_stream(...)`` / ``complete_stream(...)``,

prints the median chunks per CPU-second of each and the ratio (b)/(a) (target >= 0.95),
then measures with ``tracemalloc`` the peak memory of consuming a large and a
small stream. Run it from a checkout, no install needed:

    python scripts/bench_stream.py [--chunks 20000] [--rounds 9]
                                   [--memory-chunks 200000] [--profile]
    python scripts/bench_stream.py --callgrind [--chunks 4000]

``--callgrind`` counts instructions instead (valgrind): each loop reads a stream of
``chunks`` and of twice as many events in a fresh interpreter, and the difference
divided by ``chunks`` is its cost per event, start-up and warm-up taken out. The
counts hardly move from run to run, where CPU-time rounds on a shared machine
swing by a third.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import multiprocessing
import os
import pstats
import re
import socket
import socketserver
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lmstudio_provider import LMStudioClient  # noqa: E402

PATH = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
BIG_CHUNK = 16 * 1024  # payload bytes per HTTP chunk in the buffered framing
TOKEN = "tok "
EVENTS = {  # route -> (a content event, the finishing event)
    PATH: (
        b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","model":"m",'
        b'"choices":[{"index":0,"delta":{"content":"tok "},"finish_reason":null}]}\n\n',
        b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","model":"m",'
        b'"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n',
    ),
    COMPLETIONS: (
        b'data: {"id":"cmpl-1","object":"text_completion","model":"m",'
        b'"choices":[{"index":0,"text":"tok ","finish_reason":null}]}\n\n',
        b'data: {"id":"cmpl-1","object":"text_completion","model":"m",'
        b'"choices":[{"index":0,"text":"","finish_reason":"stop"}]}\n\n',
    ),
}
EVENT, FINISH = EVENTS[PATH]
USAGE = (
    'data: {{"id":"chatcmpl-1","object":"chat.completion.chunk","model":"m","choices":[],'
    '"usage":{{"prompt_tokens":1,"completion_tokens":{n},"total_tokens":{total}}}}}\n\n'
)
DONE = b"data: [DONE]\n\n"
STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/event-stream\r\n"
    b"Cache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


def render_body(chunks: int, per_event: bool = False, path: str = PATH) -> bytes:
    """The whole chunked-encoded response body: ``chunks`` content events and the tail,
    one event per HTTP chunk (``per_event``) or in 16 KB HTTP chunks."""
    event, finish = EVENTS[path]
    usage = USAGE.format(n=chunks, total=chunks + 1).encode()
    events = [event] * chunks + [finish, usage, DONE]
    if per_event:
        pieces = events
    else:
        payload = b"".join(events)
        pieces = [payload[i : i + BIG_CHUNK] for i in range(0, len(payload), BIG_CHUNK)]
    framed = [b"%x\r\n%b\r\n" % (len(piece), piece) for piece in pieces]
    framed.append(b"0\r\n\r\n")
    return b"".join(framed)


class SSEServer(socketserver.ThreadingTCPServer):
    """Serves ``bodies[path]`` to each POST."""

    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, bodies: dict[str, bytes]) -> None:
        super().__init__(("127.0.0.1", 0), SSEHandler)
        self.bodies = bodies


class SSEHandler(socketserver.BaseRequestHandler):
    """Reads each request head and its Content-Length body; keeps the connection alive."""

    def handle(self) -> None:
        sock: socket.socket = self.request
        server = self.server
        assert isinstance(server, SSEServer)
        pending = b""
        try:
            while True:
                while b"\r\n\r\n" not in pending:
                    data = sock.recv(65536)
                    if not data:
                        return
                    pending += data
                head, _, pending = pending.partition(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                method, path = lines[0].split(b" ")[:2]
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(pending) < length:
                    data = sock.recv(65536)
                    if not data:
                        return
                    pending += data
                pending = pending[length:]
                if method == b"POST" and path.decode() in server.bodies:
                    sock.sendall(STREAM_HEAD)
                    sock.sendall(server.bodies[path.decode()])
                else:
                    sock.sendall(NOT_FOUND)
        except OSError:  # the client hung up mid-stream
            return


def _serve(bodies: dict[str, bytes], port: Any) -> None:
    server = SSEServer(bodies)
    port.send(server.server_address[1])
    server.serve_forever()


def start_server(bodies: dict[str, bytes]) -> tuple[str, Callable[[], None]]:
    """Serve ``bodies`` from a child process; returns (base URL, stop)."""
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_serve, args=(bodies, child), daemon=True)
    process.start()
    port = parent.recv()

    def stop() -> None:
        process.terminate()
        process.join()

    return f"http://127.0.0.1:{port}", stop


def raw_loop(base_url: str, path: str = PATH) -> int:
    """(a) The least code that reads the stream: returns the number of content chunks."""
    if path == PATH:
        body: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}]}
    else:
        body = {"prompt": "hi"}
    response = requests.post(
        base_url + path, json={"model": "m", **body, "stream": True}, stream=True, timeout=30
    )
    response.raise_for_status()
    count = 0
    with response:
        for line in response.iter_lines():
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                break
            choices = json.loads(data)["choices"]
            if not choices:
                continue
            text = choices[0]["delta"].get("content") if path == PATH else choices[0]["text"]
            if text:
                count += 1
    return count


def client_loop(client: LMStudioClient, path: str = PATH) -> int:
    """(b) The client under test: returns the number of content chunks."""
    count = 0
    if path == PATH:
        with client.chat_stream("hi", model="m") as stream:
            for chunk in stream:
                if chunk.content:
                    count += 1
    else:
        with client.complete_stream("hi", model="m") as pieces:
            for piece in pieces:
                if piece.text:
                    count += 1
    return count


def rate(loop: Callable[[], int], chunks: int) -> float:
    """Chunks per second of this process's CPU time: the server runs in another
    process, so waiting for it is not counted, and neither is a virtual machine's
    stolen time, which made wall-clock rounds swing by 2x here."""
    started = time.process_time()
    got = loop()
    elapsed = time.process_time() - started
    if got != chunks:
        raise SystemExit(f"expected {chunks} content chunks, got {got}")
    return chunks / elapsed


def peak_memory(client: LMStudioClient, keep_chunks: bool = False) -> tuple[int, int]:
    """Peak traced bytes while consuming one chat stream, and the aggregate's length."""
    kept: list[Any] = []
    tracemalloc.start()
    try:
        with client.chat_stream("hi", model="m") as stream:
            for chunk in stream:
                if keep_chunks:
                    kept.append(chunk)
            text = len(stream.response.content)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--chunks", type=int, help="events per stream (20,000; 4,000 with --callgrind)"
    )
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--memory-chunks", type=int, default=200_000)
    parser.add_argument("--profile", action="store_true", help="cProfile one chat_stream loop")
    parser.add_argument(
        "--callgrind", action="store_true", help="count instructions instead (needs valgrind)"
    )
    parser.add_argument("--read", nargs=3, metavar=("URL", "PATH", "LOOP"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.read:  # one loop, for --callgrind
        url, path, loop = args.read
        if loop == "bare":
            raw_loop(url, path)
        else:
            client_loop(LMStudioClient(base_url=url, max_retries=0), path)
        return
    if args.callgrind:
        count_instructions(args.chunks or 4_000)
        return
    chunks: int = args.chunks or 20_000
    small, large = min(20_000, args.memory_chunks), args.memory_chunks

    for per_event in (True, False):
        framing = "one event per HTTP chunk" if per_event else "16 KB HTTP chunks"
        bodies = {path: render_body(chunks, per_event, path) for path in (PATH, COMPLETIONS)}
        url, stop = start_server(bodies)
        client = LMStudioClient(base_url=url, max_retries=0)
        try:
            raw_loop(url)  # warm up: imports, connection pool, the CPU's clock
            client_loop(client)
            size = len(bodies[PATH]) / 1e6
            print(f"throughput, {framing}: {chunks} chunks ({size:.1f} MB), {args.rounds} rounds")
            for path, name in ((PATH, "chat_stream    "), (COMPLETIONS, "complete_stream")):
                compare(url, client, path, name, chunks, args.rounds)
            if args.profile and per_event:
                profiler = cProfile.Profile()
                profiler.runcall(client_loop, client)
                print("cProfile of one chat_stream loop, by own time:")
                pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(15)
        finally:
            client.close()
            stop()
    memory(small, large)


def compare(
    url: str, client: LMStudioClient, path: str, name: str, chunks: int, rounds: int
) -> None:
    """Alternate (a) and (b) for ``rounds`` rounds; print the medians and their ratio."""
    rates: dict[str, list[float]] = {"raw": [], "client": []}
    for _ in range(rounds):
        rates["raw"].append(rate(lambda: raw_loop(url, path), chunks))
        rates["client"].append(rate(lambda: client_loop(client, path), chunks))
    raw, ours = statistics.median(rates["raw"]), statistics.median(rates["client"])
    paired = [b / a for a, b in zip(rates["raw"], rates["client"])]
    verdict = "OK" if ours / raw >= 0.95 else "BELOW TARGET"
    print(
        f"  {name}: bare loop {raw:9,.0f}/s, client {ours:9,.0f}/s, ratio {ours / raw:.3f}"
        f" ({verdict}; rounds {min(paired):.2f}..{max(paired):.2f})"
    )


def instructions(url: str, path: str, loop: str) -> int:
    """Instructions a fresh interpreter runs to read one stream with ``loop``."""
    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={folder}/out",
             os.path.realpath(sys.executable), __file__, "--read", url, path, loop],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    found = re.search(r"Collected : (\d+)", done.stderr)
    assert found, done.stderr
    return int(found.group(1))


def count_instructions(chunks: int) -> None:
    """Instructions per event of each loop, for both framings and both routes."""
    print(f"instructions per event (callgrind; streams of {chunks} and {2 * chunks} events)")
    for per_event in (True, False):
        framing = "one event per HTTP chunk" if per_event else "16 KB HTTP chunks"
        servers = [
            start_server({path: render_body(n, per_event, path) for path in (PATH, COMPLETIONS)})
            for n in (chunks, 2 * chunks)
        ]
        try:
            jobs = [
                (path, loop, url)
                for path in (PATH, COMPLETIONS)
                for loop in ("bare", "client")
                for url, _ in servers
            ]
            with ThreadPoolExecutor(os.cpu_count()) as pool:
                counts = list(pool.map(lambda job: instructions(job[2], job[0], job[1]), jobs))
        finally:
            for _, stop in servers:
                stop()
        print(f"  {framing}:")
        for i, name in enumerate(("chat_stream    ", "complete_stream")):
            bare_small, bare_large, ours_small, ours_large = counts[4 * i : 4 * i + 4]
            bare, ours = (bare_large - bare_small) / chunks, (ours_large - ours_small) / chunks
            verdict = "OK" if bare / ours >= 0.95 else "BELOW TARGET"
            print(
                f"    {name}: bare loop {bare:8,.0f}, client {ours:8,.0f};"
                f" speed ratio {bare / ours:.3f} ({verdict})"
            )


def memory(small: int, large: int) -> None:
    print("peak memory (tracemalloc) while consuming chat_stream:")
    peaks: dict[int, int] = {}
    for n in sorted({small, large}):
        url, stop = start_server({PATH: render_body(n)})  # rendered before tracing starts
        with LMStudioClient(base_url=url, max_retries=0) as client:
            peak, text = peak_memory(client)
        stop()
        peaks[n] = peak
        print(
            f"  {n:>9,} chunks: peak {peak / 1e6:7.2f} MB = {peak / n * 1000 / 1e3:6.2f}"
            f" KB per 1,000 chunks; aggregate text {text:,} chars"
        )
    if large > small:
        slope = (peaks[large] - peaks[small]) / (large - small)
        print(
            f"  growth {slope:.1f} bytes per extra chunk "
            f"(the aggregate's text itself: {len(TOKEN)} bytes per chunk)"
        )
    url, stop = start_server({PATH: render_body(small)})
    with LMStudioClient(base_url=url, max_retries=0) as client:
        kept, _ = peak_memory(client, keep_chunks=True)
    stop()
    print(
        f"  for contrast, list(stream) of {small:,} chunks: peak {kept / 1e6:.2f} MB"
        f" = {kept / small:.0f} bytes per chunk"
    )


if __name__ == "__main__":
    main()
