"""A small, blocking client for LM Studio's local server, in one file.

LM Studio serves an OpenAI-compatible API and richer native routes on
http://localhost:1234. This module speaks both, turns LM Studio's quirky error
bodies into exceptions you can catch precisely, and needs only ``requests``::

    from lmstudio_provider import LMStudioClient, ServerUnreachableError

    with LMStudioClient() as client:        # reads LMSTUDIO_BASE_URL and friends
        for model in client.list_models():
            print(model.id, model.state)
        reply = client.chat("Name three primes.", temperature=0)
        print(reply.content, reply.usage)
        for chunk in client.chat_stream("Tell me a joke."):
            print(chunk.content, end="", flush=True)
        vectors = client.embed(["apple", "pear"]).embeddings

Command line: ``python -m lmstudio_provider --help``.
Documentation: the README.md beside this file in its source tree (the sdist
carries it too); a vendored copy should keep this header.
"""
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The lmstudio-provider authors

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import itertools
import json
import logging
import math
import os
import random
import re
import socket
import sys
import threading
import time
import urllib.parse
import weakref
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    ClassVar,
    Generic,
    Optional,
    Protocol,
    TypeVar,
    Union,
    runtime_checkable,
)

import requests

__version__ = "0.1.0"

__all__ = [
    # errors and the error table
    "LMStudioError",
    "ConfigError",
    "ServerUnreachableError",
    "RequestTimeoutError",
    "MalformedResponseError",
    "StreamError",
    "ToolLoopError",
    "APIError",
    "BadRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "RateLimitError",
    "ServerError",
    "EndpointNotFoundError",
    "ModelNotFoundError",
    "NoModelLoadedError",
    "ModelLoadError",
    "ContextLengthExceededError",
    "STATUS_ERRORS",
    "CODE_ERRORS",
    "MESSAGE_ERRORS",
    "error_from_response",
    # config and cache
    "LMStudioConfig",
    "normalize_base_url",
    "TTLCache",
    # data types
    "Usage",
    "ModelInfo",
    "ChatResponse",
    "ChatChunk",
    "CompletionResponse",
    "CompletionChunk",
    "EmbeddingResponse",
    "Stats",
    "ModelCapabilities",
    "LoadedModel",
    "DownloadStatus",
    "NativeChatResponse",
    "NativeEvent",
    "TextDelta",
    "ReasoningDelta",
    "LoadProgress",
    "PromptProgress",
    "ToolCallEvent",
    "NativeStats",
    "ModelProvider",
    # streaming and the client
    "iter_sse",
    "ChatStream",
    "CompletionStream",
    "EventStream",
    "NativeChatStream",
    "LMStudioClient",
    "Chat",
    "retry_after_seconds",
    "tool_schema",
    "REASONING_EFFORTS",
    "LOAD_OPTIONS",
    "discover",
    # command line
    "main",
]


# ============================================================================
# Constants
# ============================================================================

DEFAULT_BASE_URL = "http://localhost:1234"
USER_AGENT = f"lmstudio-provider/{__version__} python-requests/{requests.__version__}"

#: Where each config field is read from; the first variable that is set wins.
ENV_VARS: dict[str, tuple[str, ...]] = {
    "base_url": ("LMSTUDIO_BASE_URL", "LMSTUDIO_ENDPOINT", "LM_STUDIO_API_BASE"),
    "api_key": (
        "LMSTUDIO_API_KEY",
        "LM_API_TOKEN",
        "LMSTUDIO_API_TOKEN",
        "LM_STUDIO_API_KEY",
    ),
    "model": ("LMSTUDIO_MODEL",),
    "timeout": ("LMSTUDIO_TIMEOUT",),
    "deadline": ("LMSTUDIO_DEADLINE",),
    "connect_timeout": ("LMSTUDIO_CONNECT_TIMEOUT",),
    "max_retries": ("LMSTUDIO_MAX_RETRIES",),
    "cache_ttl": ("LMSTUDIO_CACHE_TTL",),
    "max_response_bytes": ("LMSTUDIO_MAX_RESPONSE_BYTES",),
    "retry_on_timeout": ("LMSTUDIO_RETRY_ON_TIMEOUT",),
    "split_think": ("LMSTUDIO_SPLIT_THINK",),
}

#: Path suffixes users paste from other clients: one is dropped, any prefix before it
#: (a gateway's ``/litellm``, an nginx ``location /lmstudio/``) is kept on every route.
API_PREFIXES = ("/api/v0", "/api/v1", "/v1")

#: Statuses worth another attempt: the server is busy or a proxy hiccuped.
#: 500 is not here: LM Studio's 500s are deterministic.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0
#: A server asking us to wait longer than this is told "no" at once.
MAX_RETRY_AFTER = 60.0

#: Seconds; the socket layer overflows on more (a day, 86400, is "no limit" enough).
MAX_TIMEOUT = 1e7

#: How much of a server's error text goes into an exception message.
MESSAGE_LIMIT = 300
#: ... of a quoted body, and of one model id; lists of ids stop after this many.
QUOTE_LIMIT = 200
ID_LIMIT = 80
MAX_LISTED_IDS = 5
VALID_ROLES = frozenset({"system", "user", "assistant", "tool"})
#: ``reasoning=`` -> the ``reasoning_effort`` that /v1/chat/completions takes. It has no
#: "on": that asks for the middle effort; "none" turns thinking off (LM Studio 0.4.17).
REASONING_EFFORTS = {
    "off": "none",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "on": "medium",
}
EMBEDDING_TYPE = "embeddings"

START_SERVER_ADVICE = (
    "start the server in LM Studio's Developer tab or with `lms server start`, "
    "or set LMSTUDIO_BASE_URL"
)

log = logging.getLogger("lmstudio_provider")

T = TypeVar("T")
JSONDict = dict[str, Any]
Messages = Union[str, Sequence[Mapping[str, Any]]]


# ============================================================================
# Errors and the error-mapping table
# ============================================================================


class LMStudioError(Exception):
    """Base of everything this module raises: one ``except`` catches it all."""


class ConfigError(LMStudioError, ValueError):
    """A setting is unusable; the message names the variable and the value."""


class ServerUnreachableError(LMStudioError, ConnectionError):
    """No HTTP answer at all: nothing listens, DNS failed, or the socket died."""


class RequestTimeoutError(LMStudioError, TimeoutError):
    """The server went quiet for longer than allowed, or a ``deadline`` passed.

    In the middle of a stream, ``partial`` holds the text received so far.
    """

    def __init__(self, message: str, partial: str = "") -> None:
        super().__init__(message)
        self.partial = partial


class MalformedResponseError(LMStudioError):
    """The server answered, but not with the JSON this call needs."""


class StreamError(LMStudioError):
    """A stream was cut short; ``partial`` holds the text received so far."""

    def __init__(self, message: str, partial: str = "") -> None:
        super().__init__(message)
        self.partial = partial


class ToolLoopError(LMStudioError):
    """``run_tools`` gave up: the model still wanted tools after ``max_rounds``."""

    def __init__(self, message: str, messages: list[JSONDict] | None = None) -> None:
        super().__init__(message)
        #: The conversation so far, tool results included, for inspection.
        self.messages = messages or []


class APIError(LMStudioError):
    """The server answered with an error; the subclass says which kind."""

    #: What the user can do about it; appended to the message.
    hint: ClassVar[str] = ""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.body = body


class BadRequestError(APIError):
    """HTTP 400/422: the server refused the request as sent."""


class AuthenticationError(APIError):
    """HTTP 401: the server requires an API token, or rejected ours."""

    hint = "set LMSTUDIO_API_KEY to a token from LM Studio's server settings"


class PermissionDeniedError(APIError):
    """HTTP 403."""


class NotFoundError(APIError):
    """HTTP 404."""


class RateLimitError(APIError):
    """HTTP 429: the server is busy."""


class ServerError(APIError):
    """HTTP 5xx."""


class EndpointNotFoundError(NotFoundError):
    """LM Studio's "Unexpected endpoint or method" body, which may come with 200."""

    hint = "the base URL is probably wrong: use the server root, such as http://localhost:1234"


class ModelNotFoundError(NotFoundError):
    """No model with that identifier is downloaded or loaded."""

    hint = "run `lmstudio-provider models` to see the ids"


class NoModelLoadedError(APIError):
    """The server has no model to answer with."""

    hint = "load a model in LM Studio or with `lms load MODEL`, or pass model="


class ModelLoadError(APIError):
    """The model failed to load, or was unloaded while in use."""


class ContextLengthExceededError(BadRequestError):
    """The prompt does not fit in the loaded model's context window."""

    hint = "shorten the input or load the model with a larger context length"


#: HTTP status -> exception; 5xx not listed here map to ServerError.
STATUS_ERRORS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    422: BadRequestError,
    429: RateLimitError,
}

#: ``error.code`` or ``error.type`` in the body -> exception; beats the status.
CODE_ERRORS: dict[str, type[APIError]] = {
    "model_not_found": ModelNotFoundError,
    "invalid_api_key": AuthenticationError,
    "context_length_exceeded": ContextLengthExceededError,
    "exceed_context_size_error": ContextLengthExceededError,
}

#: Patterns in the server's message -> exception, first match wins; they beat
#: the code and the status, because LM Studio reuses statuses loosely.
MESSAGE_ERRORS: tuple[tuple[str, type[APIError]], ...] = (
    (r"unexpected endpoint or method", EndpointNotFoundError),
    (r"no models? loaded", NoModelLoadedError),
    (r"failed to load model|model is unloaded", ModelLoadError),
    (
        r"greater than the context length|does not fit in (the )?context"
        r"|exceeds the available context size",
        ContextLengthExceededError,
    ),
    (
        r"invalid model identifier|model \S+ not found|invalid model name passed in model=",
        ModelNotFoundError,
    ),
    (r"does not support images", BadRequestError),
)


_compiled_patterns: list[tuple[re.Pattern[str], type[APIError]]] = []


def _message_patterns() -> list[tuple[re.Pattern[str], type[APIError]]]:
    """MESSAGE_ERRORS compiled on first use: errors are rare, imports are not."""
    if not _compiled_patterns:
        _compiled_patterns.extend(
            (re.compile(pattern, re.IGNORECASE), cls) for pattern, cls in MESSAGE_ERRORS
        )
    return _compiled_patterns


def _as_text(value: Any) -> str:
    """Server data as text for a message; never fails, whatever its shape or depth."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError, RecursionError):
        return f"<{type(value).__name__}>"


def _one_line(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """Collapse whitespace and cap the length: messages must fit one log line."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _copy_json(value: Any, leaf: Callable[[Any], Any]) -> Any:
    """A copy of a JSON value with ``leaf`` applied to every key and scalar. Iterative:
    a body can be nested as deep as the JSON reader allows, past Python's stack."""

    def fresh(item: Any) -> Any:
        return type(item)() if isinstance(item, (dict, list)) else leaf(item)

    if not isinstance(value, (dict, list)):
        return leaf(value)
    top = fresh(value)
    pending = [(value, top)]
    while pending:
        source, target = pending.pop()
        pairs = source.items() if isinstance(source, dict) else enumerate(source)
        for key, item in pairs:
            new = fresh(item)
            if isinstance(target, dict):
                target[leaf(str(key))] = new
            else:
                target.append(new)
            if isinstance(item, (dict, list)):
                pending.append((item, new))
    return top


class _Redactor:
    """The one place where text from a server enters an error message.

    Every quoted piece loses its secrets (the API key, a password in the base
    URL) first, then becomes one line, then is shortened: in the other order a
    key straddling the cut would leak half of itself. ``copy`` gives error
    bodies the same treatment.
    """

    def __init__(self, secrets: Mapping[str, str] | None = None) -> None:
        #: secret -> what replaces it; longest first, so a key holding a password stays whole
        found = {s: label for s, label in (secrets or {}).items() if s and len(s) >= 4}
        self._secrets = sorted(found.items(), key=lambda item: -len(item[0]))

    def hide(self, text: str) -> str:
        for secret, label in self._secrets:
            if secret in text:
                text = text.replace(secret, label)
        return text

    def quote(self, value: Any, limit: int = QUOTE_LIMIT) -> str:
        """Server text or JSON, safe for a message: no secret, one line, at most ``limit``."""
        return _one_line(self.hide(_as_text(value)), limit)

    def ids(self, values: Sequence[Any], limit: int = MAX_LISTED_IDS) -> str:
        """Server ids as a bounded list: each one quoted, then "and 41 more"."""
        shown = ", ".join(repr(self.quote(value, ID_LIMIT)) for value in values[:limit])
        more = len(values) - limit
        return shown + (f" and {more} more" if more > 0 else "")

    def copy(self, value: Any) -> Any:
        """A copy of a JSON value without the secrets."""
        if not self._secrets:
            return value
        return _copy_json(value, lambda item: self.hide(item) if isinstance(item, str) else item)


_NO_SECRETS = _Redactor()


def _error_fields(body: Any) -> tuple[str, str | None, str | None]:
    """(message, code, type) from an OpenAI- or LM Studio-style error body."""
    if not isinstance(body, dict):
        return "", None, None
    error = body.get("error")
    if isinstance(error, dict):
        message = error.get("message") or body.get("message") or ""
        code = error.get("code")
        kind = error.get("type")
        return (
            _as_text(message),
            None if code is None else _as_text(code),
            kind if isinstance(kind, str) else None,
        )
    if error:
        return _as_text(error), None, None
    return _as_text(body.get("message") or ""), None, None


def _api_error_from(
    status_code: int, body: Any, text: str, reason: str, attempts: int, redactor: _Redactor
) -> APIError:
    message, code, kind = _error_fields(body)
    cls: type[APIError] | None = None
    for pattern, candidate in _message_patterns():
        if message and pattern.search(message):
            cls = candidate
            break
    if cls is None:
        cls = CODE_ERRORS.get(code or "") or CODE_ERRORS.get(kind or "")
    if cls is None:
        cls = STATUS_ERRORS.get(status_code)
    if cls is None:
        cls = ServerError if status_code >= 500 else APIError

    if not message and not text.lstrip().startswith("<"):
        message = text  # plain text says more than the status
    if message.strip():
        message = redactor.quote(message, MESSAGE_LIMIT)
        if status_code >= 400:
            message += f" (HTTP {status_code})"
    else:  # an HTML error page from a proxy, or nothing: the status line is enough
        message = f"HTTP {status_code} {redactor.quote(reason, 80)}".strip()
    parts = [message]
    if attempts > 1:
        parts.append(f"after {attempts} attempts")
    if cls.hint:
        parts.append(cls.hint)
    return cls(
        "; ".join(parts),
        status_code=status_code,
        code=None if code is None else redactor.quote(code, 80),
        body=redactor.copy(body),
    )


def error_from_response(
    status_code: int,
    body: Any = None,
    *,
    text: str = "",
    reason: str = "",
    attempts: int = 1,
    secrets: Iterable[str] = (),
) -> APIError:
    """Build the exception for an error answer; the tables above decide the class.

    ``body`` is the parsed JSON (or None), ``text`` the raw body for non-JSON
    answers. A 200 carrying ``{"error": ...}`` is an error too. ``secrets``
    (an API key, say) never reach the message, ``code`` or the kept ``body``.
    """
    hidden = [secrets] if isinstance(secrets, str) else secrets  # one key, not its letters
    return _api_error_from(
        status_code, body, text, reason, attempts, _Redactor(dict.fromkeys(hidden, "<secret>"))
    )


# ============================================================================
# Config
# ============================================================================


def _without_password(url: str) -> str:
    """``http://me:pw@host`` as ``http://me:***@host``: a URL in a message keeps its secret."""
    return re.sub(r"(//[^/@:]*:)[^/]*@", r"\1***@", url)  # to the last @: "p@ss" is one


def _shown(value: Any, limit: int = 80) -> str:
    """A caller's value in a message: its repr, one line, bounded, whatever it is."""
    try:
        text = repr(value)
    except Exception:  # a 5,000-digit int, a broken __repr__
        text = f"<{type(value).__name__}>"
    return _one_line(_without_password(text), limit)


def normalize_base_url(url: str, *, source: str = "base_url") -> str:
    """Reduce any form users paste (``localhost:1234/v1/``) to the server's root, where
    ``/v1/...`` and ``/api/v1/...`` start; behind a gateway that root has a path."""
    from urllib.parse import urlsplit  # already loaded by requests; local for clarity

    text = str(url).strip()
    shown = _shown(url, 200)
    if not text:
        raise ConfigError(f"{source} is empty")
    if "://" not in text:
        text = "http://" + text
    try:
        parts = urlsplit(text)
    except ValueError:  # "Invalid IPv6 URL": unbalanced brackets
        raise ConfigError(f"{source}={shown} is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ConfigError(f"{source}={shown} has scheme {scheme!r}; use http:// or https://")
    if not parts.hostname:
        raise ConfigError(f"{source}={shown} has no host name")
    try:
        parts.port  # noqa: B018 - urlsplit validates the port lazily
    except ValueError:
        raise ConfigError(f"{source}={shown} has an invalid port") from None
    if parts.query or parts.fragment:
        raise ConfigError(f"{source}={shown} must not carry a query or fragment")
    path = parts.path.rstrip("/")
    for suffix in API_PREFIXES:  # longest first: "/api/v1" also ends in "/v1"
        if path.endswith(suffix):
            path = path[: -len(suffix)]
            break  # only one: a doubled "/v1/v1" reaches the server and says so
    return f"{scheme}://{parts.netloc}{path}"


def _parse_number(value: Any, source: str, *, integer: bool, allow_zero: bool) -> int | float:
    """Parse and range-check one numeric setting, naming ``source`` on failure."""
    try:
        if isinstance(value, bool):
            raise ValueError
        number: int | float
        if integer:
            if isinstance(value, float):  # 3.0 is 3; 2.5 is no count of retries or bytes
                if not math.isfinite(value):
                    raise OverflowError
                if not value.is_integer():
                    raise ValueError
            number = int(value) if not isinstance(value, str) else int(value.strip())
            if not isinstance(value, str) and number != value:  # Decimal("2.5"), Fraction
                raise ValueError
        else:
            number = float(value)
    except OverflowError:  # float(10**400), int(float("inf"))
        raise ConfigError(f"{source}={_shown(value)} must be a finite number") from None
    except (TypeError, ValueError):
        kind = "a whole number" if integer else "a number of seconds"
        raise ConfigError(f"{source}={_shown(value)} is not {kind}") from None
    if math.isnan(number) or math.isinf(number):
        raise ConfigError(f"{source}={_shown(value)} must be a finite number")
    if number < 0 or (number == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{source}={_shown(value)} must be {bound}")
    return number


def _parse_flag(value: Any, source: str) -> bool:
    """Accept the usual spellings of yes and no, from code or the environment."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{source}={_shown(value)} is not a yes/no value (use 1 or 0)")


@dataclass(frozen=True, repr=False)
class LMStudioConfig:
    """Connection settings: explicit argument > environment variable > default.

    Build it with :meth:`from_env`; constructing it directly validates too.
    """

    base_url: str = DEFAULT_BASE_URL
    api_key: str | None = None
    model: str | None = None
    #: Read timeout, seconds. Long on purpose: a model loading just in time
    #: can take minutes before the first byte.
    timeout: float = 300.0
    #: Seconds a whole call may take, retries included (for a stream: until its
    #: first byte); None for no limit. Read timeouts count per read, so only this
    #: stops a server that sends one byte at a time.
    deadline: float | None = None
    #: Connect timeout, seconds. Short: a local server accepts at once or never.
    connect_timeout: float = 5.0
    max_retries: int = 2
    #: How long the model list is trusted, seconds; 0 disables the cache.
    cache_ttl: float = 300.0
    max_response_bytes: int = 64 * 1024 * 1024
    #: Retry a POST whose answer timed out (the model may still be generating).
    retry_on_timeout: bool = False
    #: Move a leading ``<think>...</think>`` out of the content into ``reasoning``.
    split_think: bool = False
    #: Proxies for this client alone, as requests takes them (``{"http": URL,
    #: "https": URL}``); they replace ``HTTP(S)_PROXY``, and a scheme left out
    #: goes direct. None: the environment's, except for a loopback base URL,
    #: which never goes through a proxy (a corporate proxy cannot reach your
    #: localhost). Not read from the environment: that is what it overrides.
    proxies: Mapping[str, str] | None = field(default=None, hash=False)

    _NUMBERS: ClassVar[dict[str, tuple[bool, bool]]] = {
        # field: (integer, zero allowed)
        "timeout": (False, False),
        "deadline": (False, False),
        "connect_timeout": (False, False),
        "max_retries": (True, True),
        "cache_ttl": (False, True),
        "max_response_bytes": (True, False),
    }

    def __post_init__(self) -> None:
        self._validate({})

    def _validate(self, sources: Mapping[str, str]) -> None:
        """Check and normalise every field; ``sources`` names where each came from."""
        assign = object.__setattr__  # the dataclass is frozen
        url_source = sources.get("base_url", "base_url")
        assign(self, "base_url", normalize_base_url(self.base_url, source=url_source))
        for name, (integer, allow_zero) in self._NUMBERS.items():
            source = sources.get(name, name)
            if name == "deadline" and self.deadline is None:
                continue  # the one number that may be absent
            value = _parse_number(
                getattr(self, name), source, integer=integer, allow_zero=allow_zero
            )
            if name in ("timeout", "connect_timeout", "deadline") and value >= MAX_TIMEOUT:
                # sockets reject more
                shown = _shown(getattr(self, name))
                raise ConfigError(f"{source}={shown} must be below {MAX_TIMEOUT:g}")
            assign(self, name, value if integer else float(value))
        if self.api_key is not None:
            key = str(self.api_key).strip()
            if any(ord(ch) > 255 or ch.isspace() for ch in key):
                source = sources.get("api_key", "api_key")
                raise ConfigError(f"{source} holds whitespace or a non-Latin-1 character")
            assign(self, "api_key", key or None)
        if self.model is not None and not str(self.model).strip():
            raise ConfigError(f"{sources.get('model', 'model')} is empty")
        for name in ("retry_on_timeout", "split_think"):
            assign(self, name, _parse_flag(getattr(self, name), sources.get(name, name)))
        if self.proxies is not None:
            if not isinstance(self.proxies, Mapping) or not all(
                isinstance(k, str) and isinstance(v, (str, type(None)))
                for k, v in self.proxies.items()
            ):
                raise ConfigError(
                    f"proxies={_shown(self.proxies)} must map schemes to proxy URLs, "
                    'like {"http": "http://proxy:3128"}'
                )
            assign(self, "proxies", dict(self.proxies))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> LMStudioConfig:
        """Read the settings; an override of ``None`` means "not given"."""
        env = os.environ if environ is None else environ
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown config option(s): {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for name in known:
            if overrides.get(name) is not None:
                values[name] = overrides[name]
                continue
            for var in ENV_VARS.get(name, ()):
                raw = env.get(var)
                if raw is not None and raw.strip():
                    values[name] = raw.strip()
                    sources[name] = var
                    break
        config = cls.__new__(cls)
        for f in fields(cls):
            object.__setattr__(config, f.name, values.get(f.name, f.default))
        config._validate(sources)
        return config

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "api_key":
                shown.append(f"api_key={'<set>' if value else None}")
            elif f.name == "base_url":
                shown.append(f"base_url={_without_password(value)!r}")
            elif f.name == "proxies" and value is not None:
                hidden = {k: v and _without_password(v) for k, v in value.items()}
                shown.append(f"proxies={hidden!r}")
            else:
                shown.append(f"{f.name}={value!r}")
        return f"LMStudioConfig({', '.join(shown)})"


# ============================================================================
# Cache
# ============================================================================

_MISSING: Any = object()


def _fresh_copy(error: BaseException) -> BaseException:
    """The same error (class, message, attributes) as a new object without a traceback;
    the error itself if its class cannot be rebuilt from its args."""
    import copy

    try:
        clone = copy.copy(error)
    except Exception:
        return error
    clone.__traceback__ = None
    return clone


class TTLCache:
    """A dict whose entries expire; safe across threads.

    ``get_or_load`` runs the loader in one thread per key while the others
    wait for its result, so eight threads on a cold cache make one request.
    The clock is injectable so tests never sleep.
    """

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._data: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}
        self._failed: dict[str, BaseException] = {}

    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                return default
            if self._clock() >= entry[0]:
                del self._data[key]
                return default
            return entry[1]

    def set(self, key: str, value: Any) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            self._data[key] = (self._clock() + self.ttl, value)

    def get_or_load(self, key: str, load: Callable[[], T]) -> T:
        """The cached value, or ``load()``'s, computed once across threads."""
        value = self.get(key, _MISSING)
        if value is not _MISSING:
            return value  # type: ignore[no-any-return]
        with self._lock:
            key_lock = self._loading.setdefault(key, threading.Lock())
            seen = self._failed.get(key)
        with key_lock:
            value = self.get(key, _MISSING)  # another thread may have loaded it
            if value is not _MISSING:
                return value  # type: ignore[no-any-return]
            failed = self._failed.get(key)
            if failed is not None and failed is not seen:
                # The load this thread waited for failed: raise its own copy, so
                # tracebacks do not pile up on one shared object across threads.
                clone = _fresh_copy(failed)
                raise clone from (failed if clone is not failed else None)
            try:
                loaded = load()
            except Exception as exc:
                self._failed[key] = exc
                raise
            self._failed.pop(key, None)
            self.set(key, loaded)
            return loaded

    def pop(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        with self._lock:
            now = self._clock()
            return sum(1 for expires, _ in self._data.values() if now < expires)


# ============================================================================
# Data types
# ============================================================================


# Making a dataclass compiles (``exec``) an ``__init__`` for it, and more: for the
# dozen data types below that was a third of this module's import time, while a
# program builds a few of them. So each becomes a dataclass when it is first built
# or inspected (``dataclasses.fields``), once, under a lock; type checkers see a
# plain ``@dataclass``. ``_Record`` writes ``repr()`` and ``==`` once for all.
_making_dataclasses = threading.RLock()


def _make_dataclass(cls: type) -> None:
    with _making_dataclasses:
        if "__dataclass_fields__" in cls.__dict__ or "_dataclass_making" in cls.__dict__:
            return
        for base in cls.__mro__[-1:0:-1]:  # a subclass's fields start with its bases'
            if "_dataclass_options" in base.__dict__:
                _make_dataclass(base)
        cls._dataclass_making = True  # type: ignore[attr-defined]
        try:  # the class's own __init__ appears in one step: no thread sees it half made
            dataclass(**cls._dataclass_options)(cls)  # type: ignore[attr-defined]
        finally:
            del cls._dataclass_making  # type: ignore[attr-defined]


if TYPE_CHECKING:
    from dataclasses import dataclass as _record

    _LazyDataclass = type
else:

    def _record(**options: Any) -> Callable[[type[T]], type[T]]:
        def later(cls: type[T]) -> type[T]:
            cls._dataclass_options = options  # _Record.__init__ applies them
            return cls

        return later

    class _LazyDataclass(type):
        """Answers ``__dataclass_fields__`` and friends by making the dataclass first;
        ``inspect.signature`` (help(), editors) asks for ``__signature__`` first."""

        def __getattr__(cls, name: str) -> Any:
            wanted = name.startswith("__dataclass_") or name == "__signature__"
            if wanted and hasattr(cls, "_dataclass_options"):
                _make_dataclass(cls)
                if name in cls.__dict__:
                    return cls.__dict__[name]
                if name == "__signature__":
                    return None  # none of its own: inspect goes on to the new __init__
            raise AttributeError(f"type object {cls.__name__!r} has no attribute {name!r}")


class _Record(metaclass=_LazyDataclass):
    """``repr()`` and ``==`` for the data types below, written once: fields marked
    ``repr=False`` or ``compare=False`` are left out, as a generated method would.
    Defining ``__eq__`` makes the records unhashable, like non-frozen dataclasses.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Only the first time a type is built: make it a dataclass, which gives it
        an ``__init__`` of its own, and build with that."""
        cls = type(self)
        _make_dataclass(cls)
        cls.__init__(self, *args, **kwargs)

    def __repr__(self) -> str:
        _make_dataclass(type(self))  # built without __init__ (unpickled, say)
        shown = (f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.repr)  # type: ignore[arg-type]
        return f"{type(self).__name__}({', '.join(shown)})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        _make_dataclass(type(self))
        return all(
            getattr(self, f.name) == getattr(other, f.name)
            for f in fields(self)  # type: ignore[arg-type]
            if f.compare
        )


def _is_finite(number: float) -> bool:
    """math.isfinite without the OverflowError for an int like 10**400."""
    try:
        return math.isfinite(number)
    except OverflowError:
        return False


# Servers send what they like: a field of the wrong type counts as absent, and so does
# a number no real server sends (an integer beyond 64 bits, which a float cannot hold
# for a division; 1e400, which JSON reads as infinity).
def _int_or_none(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63:
        return value
    return None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@_record(repr=False, eq=False)  # _Record provides both
class Usage(_Record):
    """Token counts as the server reported them (any may be missing)."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    #: Of the completion tokens, those spent thinking (reasoning models).
    reasoning_tokens: int | None = None

    @classmethod
    def from_json(cls, data: Any) -> Usage | None:
        if not isinstance(data, dict):
            return None
        details = data.get("completion_tokens_details")
        thought = details.get("reasoning_tokens") if isinstance(details, dict) else None
        return cls(
            _int_or_none(data.get("prompt_tokens")),
            _int_or_none(data.get("completion_tokens")),
            _int_or_none(data.get("total_tokens")),
            _int_or_none(thought),
        )


def _model_type(value: Any) -> str | None:
    """v0 says "embeddings", v1 says "embedding": callers see one spelling."""
    if not isinstance(value, str):
        return None
    return EMBEDDING_TYPE if value in ("embedding", "embeddings") else value


def _params_string(count: Any) -> str | None:
    """A parameter count as LM Studio writes it: 134515008 -> "135M", 7615616512 -> "7.62B"."""
    count = _int_or_none(count)
    if count is None or count <= 0:
        return None
    if count >= 999.5e6:  # what would round to 1000M is 1B
        return f"{count / 1e9:.3g}B"
    return f"{count / 1e6:.3g}M"


@_record(frozen=True, repr=False, eq=False)  # frozen: shared through the cache
class ModelInfo(_Record):
    """One model as the server describes it; fields it does not report are None.

    ``type`` is ``"llm"``, ``"vlm"`` or ``"embeddings"`` whichever route
    answered; ``state`` is ``"loaded"``/``"not-loaded"``, or None when the
    server does not say (the plain OpenAI route).
    """

    id: str
    type: str | None = None
    state: str | None = None
    publisher: str | None = None
    arch: str | None = None
    quantization: str | None = None
    format: str | None = None
    max_context_length: int | None = None
    loaded_context_length: int | None = None
    capabilities: tuple[str, ...] = ()
    display_name: str | None = None
    size_bytes: int | None = None
    params_string: str | None = None
    #: ``(instance_id, context_length)`` for each loaded copy (LM Studio 0.4+).
    loaded_instances: tuple[tuple[str, int | None], ...] = ()
    raw: JSONDict = field(default_factory=dict, repr=False, compare=False)

    def __hash__(self) -> int:  # frozen, so usable in sets and as a dict key
        return hash(self.id)

    @property
    def is_loaded(self) -> bool:
        return self.state == "loaded"

    @property
    def is_embedding(self) -> bool:
        if self.type is not None:
            return self.type == EMBEDDING_TYPE
        return "embed" in self.id.lower()  # the OpenAI route says nothing; guess

    @classmethod
    def from_v0(cls, data: JSONDict) -> ModelInfo:
        """From ``/api/v0/models`` (LM Studio 0.3.6+)."""
        capabilities = data.get("capabilities")
        return cls(
            id=_str_or_none(data.get("id")) or "",
            type=_model_type(data.get("type")),
            state=_str_or_none(data.get("state")),
            publisher=_str_or_none(data.get("publisher")),
            arch=_str_or_none(data.get("arch")),
            quantization=_str_or_none(data.get("quantization")),
            format=_str_or_none(data.get("compatibility_type")),
            max_context_length=_int_or_none(data.get("max_context_length")),
            loaded_context_length=_int_or_none(data.get("loaded_context_length")),
            capabilities=tuple(c for c in capabilities if isinstance(c, str))
            if isinstance(capabilities, list)
            else (),
            raw=data,
        )

    @classmethod
    def from_v1(cls, data: JSONDict) -> ModelInfo:
        """From ``/api/v1/models`` (LM Studio 0.4+)."""
        instances = []
        listed = data.get("loaded_instances")
        for instance in listed if isinstance(listed, list) else ():
            instance_id = _str_or_none(instance.get("id")) if isinstance(instance, dict) else None
            if instance_id is not None:
                config = instance.get("config")
                context = config.get("context_length") if isinstance(config, dict) else None
                instances.append((instance_id, _int_or_none(context)))
        quantization = data.get("quantization")
        if isinstance(quantization, dict):
            quantization = quantization.get("name")
        caps = data.get("capabilities")
        capabilities: list[str] = []
        if isinstance(caps, dict):
            if caps.get("vision"):
                capabilities.append("vision")
            if caps.get("trained_for_tool_use") or caps.get("tool_use"):
                capabilities.append("tool_use")
            if caps.get("reasoning"):
                capabilities.append("reasoning")
        return cls(
            id=_str_or_none(data.get("key")) or _str_or_none(data.get("id")) or "",
            type=_model_type(data.get("type")),
            state="loaded" if instances else "not-loaded",
            publisher=_str_or_none(data.get("publisher")),
            arch=_str_or_none(data.get("architecture")) or _str_or_none(data.get("arch")),
            quantization=_str_or_none(quantization),
            format=_str_or_none(data.get("format")),
            max_context_length=_int_or_none(data.get("max_context_length")),
            loaded_context_length=instances[0][1] if instances else None,
            capabilities=tuple(capabilities),
            display_name=_str_or_none(data.get("display_name")),
            size_bytes=_int_or_none(data.get("size_bytes")),
            params_string=_str_or_none(data.get("params_string")),
            loaded_instances=tuple(instances),
            raw=data,
        )

    @classmethod
    def from_openai(cls, data: JSONDict) -> ModelInfo:
        """From ``/v1/models``: an id, and what llama.cpp adds in ``meta``."""
        meta = data.get("meta")
        meta = meta if isinstance(meta, dict) else {}
        return cls(
            id=_str_or_none(data.get("id")) or "",
            publisher=_str_or_none(data.get("owned_by")),
            quantization=_str_or_none(meta.get("ftype")),
            max_context_length=_int_or_none(meta.get("n_ctx_train")),
            loaded_context_length=_int_or_none(meta.get("n_ctx")),
            size_bytes=_int_or_none(meta.get("size")),
            params_string=_params_string(meta.get("n_params")),
            raw=data,
        )


def _float_or_none(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and _is_finite(value):
        return float(value)
    return None


def _fraction_or_none(value: Any) -> float | None:
    """A progress figure, kept within 0.0 to 1.0 whatever the server says."""
    number = _float_or_none(value)
    return None if number is None else min(max(number, 0.0), 1.0)


_DRAFT_COUNTS = (
    "draft_tokens_count",
    "accepted_draft_tokens_count",
    "rejected_draft_tokens_count",
    "ignored_draft_tokens_count",
)


@_record(repr=False, eq=False)  # _Record provides both
class Stats(_Record):
    """LM Studio's own measurements, from the native ``/api/v0`` routes."""

    tokens_per_second: float | None = None
    time_to_first_token: float | None = None
    generation_time: float | None = None
    stop_reason: str | None = None
    #: Speculative decoding (``draft_model=``): tokens the draft model proposed, and
    #: how many the main model accepted, rejected or ignored.
    draft_tokens_count: int | None = None
    accepted_draft_tokens_count: int | None = None
    rejected_draft_tokens_count: int | None = None
    ignored_draft_tokens_count: int | None = None

    @classmethod
    def from_json(cls, data: Any) -> Stats | None:
        if not isinstance(data, dict):
            return None
        return cls(
            _float_or_none(data.get("tokens_per_second")),
            _float_or_none(data.get("time_to_first_token")),
            _float_or_none(data.get("generation_time")),
            data.get("stop_reason") if isinstance(data.get("stop_reason"), str) else None,
            *(_int_or_none(data.get(name)) for name in _DRAFT_COUNTS),
        )


@_record(repr=False, eq=False)  # _Record provides both
class ModelCapabilities(_Record):
    """What a model can do, in the terms a caller chooses a model by."""

    type: str | None
    context_length: int | None
    vision: bool = False
    tool_use: bool = False
    reasoning: bool = False
    #: What ``reasoning=`` this model takes, and what it does without (LM Studio 0.4+).
    reasoning_options: tuple[str, ...] = ()
    reasoning_default: str | None = None

    @classmethod
    def of(cls, model: ModelInfo) -> ModelCapabilities:
        caps = model.raw.get("capabilities")
        thinking = caps.get("reasoning") if isinstance(caps, dict) else None
        thinking = thinking if isinstance(thinking, dict) else {}
        options = thinking.get("allowed_options")
        return cls(
            type=model.type,
            context_length=model.loaded_context_length or model.max_context_length,
            vision="vision" in model.capabilities or model.type == "vlm",
            tool_use="tool_use" in model.capabilities,
            reasoning="reasoning" in model.capabilities,
            reasoning_options=tuple(o for o in options if isinstance(o, str))
            if isinstance(options, list)
            else (),
            reasoning_default=_str_or_none(thinking.get("default")),
        )


@_record(repr=False, eq=False)  # _Record provides both
class LoadedModel(_Record):
    """A loaded instance: the answer to :meth:`LMStudioClient.load_model`, or the
    instance :meth:`LMStudioClient.ensure_loaded` found."""

    instance_id: str
    load_time_seconds: float | None = None
    raw: JSONDict = field(default_factory=dict, repr=False, compare=False)
    #: The settings LM Studio applied, its defaults included (None when it did not say).
    load_config: JSONDict | None = None


@_record(repr=False, eq=False)  # _Record provides both
class DownloadStatus(_Record):
    """Where a download started by :meth:`LMStudioClient.download_model` stands.

    ``status`` is ``"downloading"``, ``"paused"``, ``"completed"``, ``"failed"``
    or ``"already_downloaded"`` (which has no job id).
    """

    status: str
    job_id: str | None = None
    downloaded_bytes: int | None = None
    total_size_bytes: int | None = None
    bytes_per_second: float | None = None
    #: When LM Studio expects it done (ISO 8601), while downloading.
    estimated_completion: str | None = None
    raw: JSONDict = field(default_factory=dict, repr=False, compare=False)

    @property
    def fraction(self) -> float | None:
        """How much has arrived, 0.0 to 1.0, when the sizes are known."""
        done, total = self.downloaded_bytes, self.total_size_bytes
        return _fraction_or_none(done / total) if done is not None and total and total > 0 else None

    @classmethod
    def from_json(cls, data: Any) -> DownloadStatus | None:
        if not isinstance(data, dict) or not _str_or_none(data.get("status")):
            return None
        return cls(
            status=data["status"],
            job_id=_str_or_none(data.get("job_id")),
            downloaded_bytes=_int_or_none(data.get("downloaded_bytes")),
            total_size_bytes=_int_or_none(data.get("total_size_bytes")),
            bytes_per_second=_float_or_none(data.get("bytes_per_second")),
            estimated_completion=_str_or_none(data.get("estimated_completion")),
            raw=data,
        )


@_record(repr=False, eq=False)  # _Record provides both
class ChatResponse(_Record):
    """A finished chat completion; equal whether it came whole or streamed.

    Only the answer is compared: ids, timings and raw bodies differ per request.
    """

    id: str | None = field(compare=False)
    model: str | None
    content: str
    reasoning: str = ""
    #: OpenAI-shaped: ``{"id", "type", "function": {"name", "arguments"}}``.
    tool_calls: list[JSONDict] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage | None = None
    #: The decoded JSON, when a JSON schema was asked for.
    parsed: Any = field(default=None, compare=False)
    #: With ``stats=True``: LM Studio's timings and the model that answered.
    stats: Stats | None = field(default=None, compare=False)
    model_info: JSONDict | None = field(default=None, repr=False, compare=False)
    #: Seconds from sending the request to the end of the answer, client-side.
    elapsed: float | None = field(default=None, compare=False)
    raw: JSONDict = field(default_factory=dict, repr=False, compare=False)

    @property
    def message(self) -> JSONDict:
        """The assistant message, ready to append to the conversation."""
        message: JSONDict = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = self.tool_calls
        return message


@_record(repr=False, eq=False)  # _Record provides both
class ChatChunk(_Record):
    """One streamed piece of a chat answer; ``raw`` is the event's JSON."""

    content: str = ""
    reasoning: str = ""
    #: The raw deltas; the assembled calls are on ``stream.response``.
    tool_calls: list[JSONDict] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage | None = None
    raw: JSONDict = field(default_factory=dict, repr=False, compare=False)


@_record(repr=False, eq=False)  # _Record provides both
class CompletionResponse(_Record):
    """A finished text completion (raw prompt, no chat template)."""

    id: str | None = field(compare=False)
    model: str | None
    text: str
    finish_reason: str | None = None
    usage: Usage | None = None
    stats: Stats | None = field(default=None, compare=False)
    model_info: JSONDict | None = field(default=None, repr=False, compare=False)
    elapsed: float | None = field(default=None, compare=False)
    raw: JSONDict = field(default_factory=dict, repr=False, compare=False)


@_record(repr=False, eq=False)  # _Record provides both
class CompletionChunk(_Record):
    """One streamed piece of a text completion."""

    text: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    raw: JSONDict = field(default_factory=dict, repr=False, compare=False)


@_record(repr=False, eq=False)  # _Record provides both
class EmbeddingResponse(_Record):
    """Vectors in the order of the inputs, whatever order the server used."""

    embeddings: list[list[float]]
    model: str | None = None
    usage: Usage | None = None
    elapsed: float | None = field(default=None, compare=False)
    raw: JSONDict = field(default_factory=dict, repr=False, compare=False)


@_record(repr=False, eq=False)  # _Record provides both
class NativeStats(_Record):
    """What LM Studio's native chat measured (``/api/v1/chat``)."""

    input_tokens: int | None = None
    total_output_tokens: int | None = None
    reasoning_output_tokens: int | None = None
    tokens_per_second: float | None = None
    time_to_first_token_seconds: float | None = None
    #: Present when the request had to load the model first.
    model_load_time_seconds: float | None = None

    @classmethod
    def from_json(cls, data: Any) -> NativeStats | None:
        if not isinstance(data, dict):
            return None
        return cls(
            *(_int_or_none(data.get(n)) for n in ("input_tokens", "total_output_tokens",
                                                   "reasoning_output_tokens")),
            *(_float_or_none(data.get(n)) for n in ("tokens_per_second",
                                                     "time_to_first_token_seconds",
                                                     "model_load_time_seconds")),
        )  # fmt: skip


@_record(repr=False, eq=False)  # _Record provides both
class NativeChatResponse(_Record):
    """An answer of LM Studio's native chat (:meth:`LMStudioClient.respond`).

    ``tool_calls`` are the ``tool_call`` (and ``invalid_tool_call``) output items
    of the server-side tools (MCP servers, plugins), each with its ``output``.
    Pass the response as ``previous_response_id=`` to continue the conversation.
    """

    text: str
    reasoning: str = ""
    tool_calls: list[JSONDict] = field(default_factory=list)
    stats: NativeStats | None = field(default=None, compare=False)
    response_id: str | None = field(default=None, compare=False)
    model_instance_id: str | None = None
    raw: JSONDict = field(default_factory=dict, repr=False, compare=False)


@_record(repr=False, eq=False)  # _Record provides both
class NativeEvent(_Record):
    """One event of :meth:`LMStudioClient.respond_stream`; the subclasses below
    (:class:`TextDelta`, :class:`LoadProgress`, ...) say which kind with ``isinstance``.

    ``type`` is LM Studio's event name: ``message.delta`` and ``reasoning.delta``
    carry ``text``; ``model_load.progress`` and ``prompt_processing.progress``
    carry ``progress`` (0.0 to 1.0); the rest of the event is in ``raw``.
    """

    type: str
    text: str = ""
    progress: float | None = None
    raw: JSONDict = field(default_factory=dict, repr=False, compare=False)


class TextDelta(NativeEvent):
    """``message.delta``: the next piece of the answer, in ``text``."""


class ReasoningDelta(NativeEvent):
    """``reasoning.delta``: the next piece of the model's reasoning, in ``text``."""


class LoadProgress(NativeEvent):
    """``model_load.*``: a model loads for this request; ``fraction`` done (None at
    ``start`` and ``end``)."""

    @property
    def fraction(self) -> float | None:
        return self.progress


class PromptProgress(NativeEvent):
    """``prompt_processing.*``: the prompt is read; ``fraction`` done."""

    @property
    def fraction(self) -> float | None:
        return self.progress


class ToolCallEvent(NativeEvent):
    """``tool_call.*``: a server-side tool (MCP, plugin) starts, gets its arguments,
    succeeds (its ``output``) or fails."""

    @property
    def tool(self) -> str | None:
        return _str_or_none(self.raw.get("tool"))

    @property
    def output(self) -> Any:
        return self.raw.get("output")


#: Event name (or its prefix) -> the NativeEvent subclass that stands for it.
_NATIVE_EVENT_TYPES: tuple[tuple[str, type[NativeEvent]], ...] = (
    ("message.delta", TextDelta),
    ("reasoning.delta", ReasoningDelta),
    ("model_load.", LoadProgress),
    ("prompt_processing.", PromptProgress),
    ("tool_call.", ToolCallEvent),
)


def _function_part(data: Any) -> tuple[JSONDict, str]:
    """A tool call's ``function`` dict and its arguments as text (some servers send an object)."""
    function = data.get("function") if isinstance(data, dict) else None
    function = function if isinstance(function, dict) else {}
    arguments = function.get("arguments")
    if arguments is not None and not isinstance(arguments, str):
        arguments = _as_text(arguments)
    return function, arguments or ""


def _tool_call(data: Any) -> JSONDict:
    """Normalise one tool call to the OpenAI shape, whichever server sent it."""
    function, arguments = _function_part(data)
    data = data if isinstance(data, dict) else {}
    return {  # strings or None: the call goes back to the server in the next request
        "id": _str_or_none(data.get("id")),
        "type": _str_or_none(data.get("type")) or "function",
        "function": {"name": _str_or_none(function.get("name")), "arguments": arguments},
    }


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest end of ``text`` that could begin ``tag``."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


class _ThinkSplitter:
    """Moves a leading ``<think>...</think>`` from content to reasoning.

    Fed piece by piece, so tags split across stream chunks still match; the
    whole-answer path uses it too, which keeps streamed and plain results equal.
    """

    OPEN, CLOSE = "<think>", "</think>"

    def __init__(self) -> None:
        self._state = "start"  # start -> thinking -> after -> answer
        self._held = ""

    def feed(self, text: str) -> tuple[str, str]:
        """Returns ``(content, reasoning)`` that can be released now."""
        if self._state == "answer" or not text:
            return text, ""
        self._held += text
        content = reasoning = ""
        if self._state == "start":
            head = self._held.lstrip()
            if head.startswith(self.OPEN):
                self._state, self._held = "thinking", head[len(self.OPEN) :]
            elif self.OPEN.startswith(head):
                return "", ""  # could still become "<think>": wait
            else:
                self._state, content, self._held = "answer", self._held, ""
                return content, ""
        if self._state == "thinking":
            end = self._held.find(self.CLOSE)
            if end < 0:
                keep = _partial_suffix(self._held, self.CLOSE)
                reasoning = self._held[: len(self._held) - keep]
                self._held = self._held[len(self._held) - keep :]
                return "", reasoning
            reasoning, self._held = self._held[:end], self._held[end + len(self.CLOSE) :]
            self._state = "after"
        if self._state == "after":  # drop the blank lines between think and answer
            self._held = self._held.lstrip()
            if self._held:
                self._state, content, self._held = "answer", self._held, ""
        return content, reasoning

    def flush(self) -> tuple[str, str]:
        held, self._held = self._held, ""
        if self._state == "thinking":
            return "", held  # cut off while thinking: it was all reasoning
        return ("" if self._state == "after" else held), ""


def _split_think(content: str, reasoning: str) -> tuple[str, str]:
    splitter = _ThinkSplitter()
    content_a, reasoning_a = splitter.feed(content)
    content_b, reasoning_b = splitter.flush()
    return content_a + content_b, reasoning + reasoning_a + reasoning_b


def _delta_reasoning(part: Mapping[str, Any]) -> str:
    value = part.get("reasoning_content") or part.get("reasoning")
    return value if isinstance(value, str) else ""


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _finish_reason(value: Any) -> str | None:
    """``""`` is no finish reason: a stream of them that is then cut is not complete."""
    return _str_or_none(value)


def _not_json(
    data: str | bytes, exc: Exception, what: str, redactor: _Redactor, wanted: str = "JSON"
) -> MalformedResponseError:
    deep = " (nested too deeply)" if isinstance(exc, RecursionError) else ""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return MalformedResponseError(f"{what} is not {wanted}{deep}: {redactor.quote(text)}")


def _loads(data: str | bytes, what: str, redactor: _Redactor, wanted: str = "JSON") -> Any:
    """Every decode of a server's JSON goes through here: any failure, invalid UTF-8
    and nesting deep enough to exhaust the stack included, is MalformedResponseError."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise _not_json(data, exc, what, redactor, wanted) from None


def _first_choice(body: Any, what: str, redactor: _Redactor) -> JSONDict:
    """The first choice, or a MalformedResponseError naming what was missing."""
    if not isinstance(body, dict):
        raise MalformedResponseError(f"{what}: expected a JSON object, got {redactor.quote(body)}")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise MalformedResponseError(f"{what}: the answer has no choices: {redactor.quote(body)}")
    return choices[0]


def _parse_chat(body: Any, split_think: bool, redactor: _Redactor) -> ChatResponse:
    choice = _first_choice(body, "chat completion", redactor)
    message = choice.get("message")
    if not isinstance(message, dict):
        raise MalformedResponseError(
            f"chat completion: choice has no message: {redactor.quote(body)}"
        )
    content, reasoning = _text(message.get("content")), _delta_reasoning(message)
    if split_think:
        content, reasoning = _split_think(content, reasoning)
    calls = message.get("tool_calls")
    return ChatResponse(
        id=_str_or_none(body.get("id")),
        model=_str_or_none(body.get("model")),
        content=content,
        reasoning=reasoning,
        tool_calls=[_tool_call(c) for c in calls if isinstance(c, dict)]
        if isinstance(calls, list)
        else [],
        finish_reason=_finish_reason(choice.get("finish_reason")),
        usage=Usage.from_json(body.get("usage")),
        stats=Stats.from_json(body.get("stats")),
        model_info=body.get("model_info") if isinstance(body.get("model_info"), dict) else None,
        raw=body,
    )


def _parse_json_content(content: str, finish_reason: str | None, redactor: _Redactor) -> Any:
    """Decode structured output; a fenced block (```json ... ```) is accepted too."""
    text = content.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0] if text.rstrip().endswith("```") else text
    advice = "; the answer was cut by max_tokens" if finish_reason == "length" else ""
    return _loads(text, "the model's answer", redactor, f"the JSON asked for{advice}")


_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _type_hints(owner: Any, where: str) -> dict[str, Any]:
    """Resolved annotations (``from __future__ import annotations`` leaves strings)."""
    import typing

    try:
        return typing.get_type_hints(owner)
    except Exception as exc:  # a name the owner's module lacks, "X | None" before 3.10
        raise ValueError(f"{where}: its type hints cannot be resolved ({exc})") from None


def _is_typed_dict(cls: type) -> bool:
    return issubclass(cls, dict) and hasattr(cls, "__required_keys__")


def _is_required(f: Any) -> bool:
    import dataclasses

    return bool(f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)


def _record_fields(cls: type, where: str) -> tuple[dict[str, Any], list[str], set[str]]:
    """A dataclass's or TypedDict's type hints, field names in order, and the names
    JSON must hold: what a schema asks for and what a parsed answer is checked for."""
    import dataclasses

    hints = _type_hints(cls, where)
    if dataclasses.is_dataclass(cls):
        names = [f.name for f in dataclasses.fields(cls)]
        return hints, names, {f.name for f in dataclasses.fields(cls) if _is_required(f)}
    return hints, list(hints), set(getattr(cls, "__required_keys__", hints))


def _schema_of(hint: Any, where: str, inside: tuple[type, ...] = ()) -> JSONDict:
    """The JSON Schema of a type hint: the one translation that tool parameters and
    typed structured output share. Anything it does not know is the caller's
    ValueError, naming ``where``."""
    import dataclasses
    import enum
    import typing

    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint in _JSON_TYPES:
        return {"type": _JSON_TYPES[hint]}
    if hint is None or hint is type(None):
        return {"type": "null"}
    if origin is typing.Union or type(hint).__name__ == "UnionType":  # Optional, X | Y
        return {"anyOf": [_schema_of(arg, where, inside) for arg in args]}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return {"enum": [member.value for member in hint]}
    if hint is list or origin is list:
        items = {"items": _schema_of(args[0], where, inside)} if args else {}
        return {"type": "array", **items}
    if origin is dict and args and args[0] is str:
        return {"type": "object", "additionalProperties": _schema_of(args[1], where, inside)}
    if isinstance(hint, type) and (dataclasses.is_dataclass(hint) or _is_typed_dict(hint)):
        if hint in inside:
            raise ValueError(f"{where} holds a {hint.__name__} inside itself: no JSON Schema")
        hints, names, needed = _record_fields(hint, where)
        properties = {n: _schema_of(hints[n], f"{where}.{n}", (*inside, hint)) for n in names}
        return {
            "type": "object",
            "properties": properties,
            "required": [n for n in names if n in needed],
            "additionalProperties": False,
        }
    name = getattr(hint, "__name__", None) or repr(hint)
    raise ValueError(f"{where} has type {name}, which has no JSON Schema here")


def _schema_for_type(cls: type) -> JSONDict:
    """The schema a type asks for: pydantic's own, or one built from its type hints."""
    pydantic_schema = getattr(cls, "model_json_schema", None)
    if callable(pydantic_schema):
        return dict(pydantic_schema())
    import dataclasses

    if not (dataclasses.is_dataclass(cls) or _is_typed_dict(cls)):
        raise ValueError(
            f"json_schema={cls.__name__} is not a dataclass, a TypedDict or a class with "
            "model_json_schema()"
        )
    return _schema_of(cls, cls.__name__)


#: What each JSON type of _schema_of's takes, and what a complaint calls it. A float
#: takes an integer too, as JSON Schema's "number" does; an integer never takes a bool.
_JSON_CHECKS: dict[Any, tuple[str, Callable[[Any], bool]]] = {
    str: ("a string", lambda value: isinstance(value, str)),
    int: ("an integer", lambda value: isinstance(value, int) and not isinstance(value, bool)),
    float: (
        "a number",
        lambda value: isinstance(value, (int, float)) and not isinstance(value, bool),
    ),
    bool: ("true or false", lambda value: isinstance(value, bool)),
    type(None): ("null", lambda value: value is None),
}


class _TypedJSON:
    """Structured output checked against the type that asked for it, and built.

    The schema sent is a request: LM Studio's grammar may not hold the model to it
    (and JSON found in the reasoning was never held), so each promise of
    ``_schema_of`` is checked here, and a misfit names the field's path. The
    model's text, a dict key in a path included, goes through the redactor."""

    def __init__(self, redactor: _Redactor) -> None:
        self.redactor = redactor

    def build(self, data: Any, hint: Any, where: str) -> Any:
        """``data`` as ``hint`` asks: dataclasses and enums built, the rest as parsed."""
        import dataclasses
        import enum
        import typing

        origin, args = typing.get_origin(hint), typing.get_args(hint)
        hint = type(None) if hint is None else hint
        if hint in _JSON_CHECKS:
            return self.plain(data, hint, where)
        if origin is typing.Union or type(hint).__name__ == "UnionType":  # Optional, X | Y
            return self.union(data, args, where)
        if origin is typing.Literal:
            return self.choice(data, args, where)
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            return hint(self.choice(data, [member.value for member in hint], where))
        if hint is list or origin is list:
            return self.items(data, args[0] if args else None, where)
        if origin is dict:
            return self.entries(data, args[1], where)
        if isinstance(hint, type) and (dataclasses.is_dataclass(hint) or _is_typed_dict(hint)):
            return self.record(data, hint, where)
        return data  # _schema_of took no other type

    def misfit(self, where: str, expected: str, data: Any) -> MalformedResponseError:
        shown = self.redactor.quote(data, 80)
        shown = repr(shown) if isinstance(data, str) else shown  # "41" is not 41
        return MalformedResponseError(f"{where}: expected {expected}, got {shown}")

    def plain(self, data: Any, hint: Any, where: str) -> Any:
        expected, fits = _JSON_CHECKS[hint]
        if not fits(data):
            raise self.misfit(where, expected, data)
        return data

    def union(self, data: Any, args: tuple[Any, ...], where: str) -> Any:
        """Null for Optional; else the first member that fits, or the only one's complaint."""
        present = [arg for arg in args if arg is not type(None)]
        if data is None and len(present) < len(args):
            return None
        if len(present) == 1:
            return self.build(data, present[0], where)
        for arg in present:
            with contextlib.suppress(MalformedResponseError):
                return self.build(data, arg, where)
        names = " or ".join(getattr(arg, "__name__", None) or repr(arg) for arg in present)
        raise self.misfit(where, names, data)

    def choice(self, data: Any, allowed: Sequence[Any], where: str) -> Any:
        """The allowed value equal to ``data``; JSON's true is not 1, nor 1 true."""
        for value in allowed:
            if value == data and isinstance(value, bool) == isinstance(data, bool):
                return value
        shown = _one_line(", ".join(repr(value) for value in allowed), 120)
        raise self.misfit(where, f"one of {shown}", data)

    def items(self, data: Any, item_hint: Any, where: str) -> list[Any]:
        if not isinstance(data, list):
            raise self.misfit(where, "a JSON array", data)
        if item_hint is None:  # a bare list: any items
            return data
        return [self.build(item, item_hint, f"{where}[{n}]") for n, item in enumerate(data)]

    def entries(self, data: Any, value_hint: Any, where: str) -> dict[str, Any]:
        """A dict[str, ...]; each key in a path is the model's text, so quoted."""
        if not isinstance(data, dict):
            raise self.misfit(where, "a JSON object", data)
        return {
            key: self.build(value, value_hint, f"{where}[{self.redactor.quote(key, ID_LIMIT)!r}]")
            for key, value in data.items()
        }

    def record(self, data: Any, cls: type, where: str) -> Any:
        """A dataclass built from a JSON object, or a TypedDict's object with its declared
        keys checked (others are kept, as a dict would)."""
        import dataclasses

        if not isinstance(data, dict):
            raise self.misfit(where, "a JSON object", data)
        hints, names, needed = _record_fields(cls, where)
        values = {}
        for name in names:
            if name in data:
                values[name] = self.build(data[name], hints[name], f"{where}.{name}")
            elif name in needed:
                raise MalformedResponseError(f"{where}: the JSON has no {name!r}")
        return cls(**values) if dataclasses.is_dataclass(cls) else {**data, **values}


def _as_type(data: Any, target: type, redactor: _Redactor) -> Any:
    """Structured output as an instance of the type that asked for it."""
    validate = getattr(target, "model_validate", None)
    try:
        if callable(validate):
            return validate(data)
        return _TypedJSON(redactor).build(data, target, target.__name__)
    except MalformedResponseError:
        raise
    except Exception as exc:  # pydantic's ValidationError, a dataclass's __post_init__
        reason = redactor.quote(str(exc) or type(exc).__name__, 160)
        raise MalformedResponseError(
            f"the model's JSON does not fit {target.__name__}: {reason}"
        ) from None


def _structured(
    content: str, reasoning: str, finish_reason: str | None, target: Any, redactor: _Redactor
) -> Any:
    """The JSON asked for: from the content or, when a reasoning model put it in its
    reasoning and left the content without it (lmstudio-bug-tracker#1698), from
    there; as an instance of ``target`` when a type asked for it."""
    try:
        data = _parse_json_content(content, finish_reason, redactor)
    except MalformedResponseError as failure:
        if not reasoning.strip():
            raise
        try:
            data = _parse_json_content(reasoning, finish_reason, redactor)
        except MalformedResponseError:
            raise MalformedResponseError(
                "the model's answer is not the JSON asked for, in its content "
                f"({redactor.quote(content, 120)!r}) or in its reasoning "
                f"({redactor.quote(reasoning, 120)!r})"
            ) from failure
        log.debug("the JSON asked for came in the reasoning; the content had none")
    return data if target is None else _as_type(data, target, redactor)


def _parse_completion(body: Any, redactor: _Redactor) -> CompletionResponse:
    choice = _first_choice(body, "text completion", redactor)
    return CompletionResponse(
        id=_str_or_none(body.get("id")),
        model=_str_or_none(body.get("model")),
        text=_text(choice.get("text")),
        finish_reason=_finish_reason(choice.get("finish_reason")),
        usage=Usage.from_json(body.get("usage")),
        stats=Stats.from_json(body.get("stats")),
        model_info=body.get("model_info") if isinstance(body.get("model_info"), dict) else None,
        raw=body,
    )


def _parse_embeddings(body: Any, count: int, redactor: _Redactor) -> EmbeddingResponse:
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise MalformedResponseError(
            f"embeddings: the answer has no data list: {redactor.quote(body)}"
        )
    ordered: list[list[float] | None] = [None] * count
    for position, item in enumerate(data):
        vector = item.get("embedding") if isinstance(item, dict) else None
        index = item.get("index", position) if isinstance(item, dict) else position
        if not isinstance(vector, list) or not isinstance(index, int) or not 0 <= index < count:
            raise MalformedResponseError(f"embeddings: bad item: {redactor.quote(item)}")
        ordered[index] = vector
    if any(vector is None for vector in ordered):
        raise MalformedResponseError(
            f"embeddings: {count} inputs sent, {len(data)} vectors received"
        )
    return EmbeddingResponse(
        embeddings=[v for v in ordered if v is not None],
        model=_str_or_none(body.get("model")),
        usage=Usage.from_json(body.get("usage")),
        raw=body,
    )


def _parse_native(body: Any, redactor: _Redactor) -> NativeChatResponse:
    output = body.get("output") if isinstance(body, dict) else None
    if not isinstance(output, list):
        raise MalformedResponseError(f"native chat: no output in {redactor.quote(body)}")
    items = [item for item in output if isinstance(item, dict)]
    return NativeChatResponse(
        text="".join(_text(i.get("content")) for i in items if i.get("type") == "message"),
        reasoning="".join(_text(i.get("content")) for i in items if i.get("type") == "reasoning"),
        tool_calls=[i for i in items if i.get("type") in ("tool_call", "invalid_tool_call")],
        stats=NativeStats.from_json(body.get("stats")),
        response_id=_str_or_none(body.get("response_id")),
        model_instance_id=_str_or_none(body.get("model_instance_id")),
        raw=body,
    )


def _model_list(
    body: Any, key: str, parse: Callable[[JSONDict], ModelInfo]
) -> list[ModelInfo] | None:
    """The models under ``body[key]``, None for another shape; entries without an id are dropped."""
    entries = body.get(key) if isinstance(body, dict) else None
    if not isinstance(entries, list):
        return None
    models = (parse(entry) for entry in entries if isinstance(entry, dict))
    return [model for model in models if model.id]


def _models_v1(body: Any) -> list[ModelInfo] | None:
    return _model_list(body, "models", ModelInfo.from_v1)


def _models_v0(body: Any) -> list[ModelInfo] | None:
    return _model_list(body, "data", ModelInfo.from_v0)


def _models_openai(body: Any) -> list[ModelInfo] | None:
    return _model_list(body, "data", ModelInfo.from_openai)


def _substituted(asked: Any, answered: Any, redactor: _Redactor) -> str | None:
    """What to say when another model answered than the one asked for (llama.cpp
    serves what it loaded under any name; a gateway may fall back), else None."""
    if not (isinstance(asked, str) and isinstance(answered, str) and answered):
        return None

    def plain(name: str) -> str:  # no publisher, variant or instance ("id:2") suffix
        return re.sub(r":\d+$", "", name.lower().split("@", 1)[0].rsplit("/", 1)[-1])

    if plain(asked) == plain(answered):
        return None
    asked, answered = redactor.quote(asked, ID_LIMIT), redactor.quote(answered, ID_LIMIT)
    return f"asked for model {asked!r}, {answered!r} answered"


#: Where the model list lives, richest first, with the parser for each shape.
MODEL_ROUTES: tuple[tuple[str, Callable[[Any], list[ModelInfo] | None]], ...] = (
    ("/api/v1/models", _models_v1),
    ("/api/v0/models", _models_v0),
    ("/v1/models", _models_openai),
)


@runtime_checkable
class ModelProvider(Protocol):
    """The seam to write code against: an LM Studio client, or a fake in tests."""

    name: str

    def list_models(self, *, refresh: bool = False) -> list[ModelInfo]: ...

    def supports_model(self, model_id: str) -> bool: ...

    def model_capabilities(self, model_id: str) -> ModelCapabilities | None: ...

    def chat(
        self, messages: Messages, *, model: str | None = None, **options: Any
    ) -> ChatResponse: ...

    def chat_stream(
        self, messages: Messages, *, model: str | None = None, **options: Any
    ) -> Iterator[ChatChunk]: ...

    def embed(
        self, input: str | Sequence[str], *, model: str | None = None
    ) -> EmbeddingResponse: ...


# ============================================================================
# Transport: send, retry, read within limits
# ============================================================================


class _Deadline:
    """When a whole call must be over: ``deadline`` seconds after it began.

    Read timeouts count per read, so a server dripping a byte at a time could
    otherwise hold a call for ever; retries and backoff count too.
    """

    def __init__(self, seconds: Any, clock: Callable[[], float]) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise ValueError(f"deadline must be a number of seconds, not {_shown(seconds)}")
        if not (_is_finite(seconds) and 0 < seconds < MAX_TIMEOUT):
            shown = _shown(seconds)
            raise ValueError(f"deadline must be > 0 and below {MAX_TIMEOUT:g} s, not {shown}")
        self.seconds = float(seconds)
        self._clock = clock
        self._ends = clock() + self.seconds

    def left(self, what: str, attempts: int, cause: BaseException | None = None) -> float:
        """Seconds left; past the deadline, raises the error that says so."""
        left = self._ends - self._clock()
        if left <= 0:
            raise self.passed(what, attempts) from cause
        return left

    def passed(self, what: str, attempts: int) -> RequestTimeoutError:
        tries = f" after {attempts} attempt{'s' if attempts != 1 else ''}" if attempts else ""
        return RequestTimeoutError(
            f"{what}: the deadline of {self.seconds:g} s passed{tries}; "
            "pass a longer deadline= or raise LMSTUDIO_DEADLINE"
        )


def _check_timeout(timeout: Any) -> float:
    try:
        seconds = float(timeout)
    except (TypeError, ValueError, OverflowError):
        seconds = math.nan
    if not 0 < seconds < MAX_TIMEOUT:  # NaN fails this too
        raise ValueError(f"timeout must be > 0 and below {MAX_TIMEOUT:g} s, not {_shown(timeout)}")
    return seconds


def _encode(payload: Any) -> bytes:
    """The request body, encoded before anything is sent: a value JSON cannot carry
    is the caller's ``ValueError``, naming the option, not a TypeError from deep inside."""
    try:
        return json.dumps(payload, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError, RecursionError):
        pass
    if not isinstance(payload, dict):  # client.request(json=[...]): no option to name
        raise ValueError(f"json={_shown(payload)} cannot be sent as JSON")
    for name, value in payload.items():
        try:
            json.dumps({name: value}, allow_nan=False)
        except (TypeError, ValueError, RecursionError) as exc:
            reason = _one_line(str(exc) or type(exc).__name__, 120)
            shown = _one_line(name, 80) if isinstance(name, str) else _shown(name)
            raise ValueError(f"{shown} cannot be sent as JSON: {reason}") from None
    raise ValueError("the request cannot be sent as JSON")  # pragma: no cover


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The server's requested delay, None when it asked for none, inf when unusable."""
    value: float | None = None
    milliseconds = headers.get("retry-after-ms")
    header = headers.get("retry-after")
    try:
        if milliseconds is not None:
            value = float(milliseconds) / 1000.0
        elif header is not None:
            try:
                value = float(header)
            except ValueError:
                from email.utils import parsedate_to_datetime

                when = parsedate_to_datetime(header)
                value = max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return math.inf
    if value is None:
        return None
    if not math.isfinite(value) or value < 0:
        return math.inf
    return value


def _never_connected(exc: BaseException) -> bool:
    """True when the request cannot have reached the server (safe to retry).

    requests wraps urllib3's errors; the class name is matched so this file
    imports nothing but requests. urllib3's NameResolutionError derives from
    NewConnectionError, and requests turns other connect timeouts into
    ``requests.ConnectTimeout`` itself.
    """
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if not isinstance(exc, requests.ConnectionError):
        return False
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return any(cls.__name__ == "NewConnectionError" for cls in type(reason).__mro__)


#: How resolvers say "no such host": glibc, urllib3 2, macOS, Windows.
_NAME_NOT_FOUND = ("name or service", "resolution", "failed to resolve", "nodename", "getaddrinfo")


def _connect_failure_reason(exc: BaseException) -> str:
    text = str(exc).lower()
    if "refused" in text:
        return "connection refused"
    if any(sign in text for sign in _NAME_NOT_FOUND):
        return "host name not found"
    if "timed out" in text:
        return "connection timed out"
    return "cannot connect"


def _is_timeout(exc: BaseException | None) -> bool:
    """True for socket, urllib3 and requests read timeouts alike, also when wrapped:
    requests re-raises urllib3's ReadTimeoutError as a ConnectionError in iter_content."""
    for _ in range(4):
        if exc is None:
            return False
        if isinstance(exc, (TimeoutError, socket.timeout, requests.Timeout)) or any(
            "Timeout" in cls.__name__ for cls in type(exc).__mro__
        ):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _is_corrupt_encoding(exc: BaseException) -> bool:
    """A gzip or deflate body that does not decompress (urllib3's DecodeError,
    requests' ContentDecodingError): the server answered, with broken bytes."""
    return any(cls.__name__ in ("DecodeError", "ContentDecodingError") for cls in type(exc).__mro__)


def _read1_to_the_end(fp: Any, release: Callable[[], None] = lambda: None) -> Iterator[bytes]:
    """What http.client's read1 returns as it arrives; unlike read(), read1 says
    nothing when the body ends before its Content-Length, so that is checked here.
    At the end, ``release`` gives the connection back to the pool: urllib3 does that
    only for reads it made itself, and closing the response would close the socket."""
    while True:
        data = fp.read1(65536)
        if not data:
            left = getattr(fp, "length", None)  # http.client counts down the Content-Length
            if left:
                import http.client

                raise http.client.IncompleteRead(b"", left)
            if left == 0:  # all the Content-Length promised: the connection can serve again
                release()
            return
        yield data


def _arriving(response: requests.Response) -> Iterator[bytes]:
    """The body, decoded, in the pieces the network delivers, each as soon as it is here.

    Streams need each event the moment it arrives, and deadlines need control
    back between reads; ``iter_content(n)`` would wait for ``n`` bytes.
    """
    raw = response.raw
    if raw.chunked and raw.supports_chunked_reads():
        # LM Studio and llama.cpp send one event per HTTP chunk; urllib3's chunk
        # reader costs a third of what read1() does per chunk.
        # At most 64 KiB of a chunk per read: one huge (or gzip-bombed) chunk must not
        # pass max_response_bytes before anyone can count it.
        chunks: Iterator[bytes] = raw.read_chunked(65536, decode_content=True)
        return chunks
    read1 = getattr(raw, "read1", None)  # urllib3 >= 2.3: whatever has arrived
    if read1 is not None:
        return iter(lambda: read1(65536, decode_content=True), b"")
    if response.headers.get("Content-Encoding"):
        return response.iter_content(65536)  # older urllib3: it decodes, http.client cannot
    return _read1_to_the_end(raw._fp, raw.release_conn)  # older urllib3, plain body


def _content_length(response: requests.Response) -> int | None:
    """The declared body size; one that is not a plain number is the server's fault."""
    declared = response.headers.get("Content-Length")
    if declared is None:
        return None
    text = declared.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 20):
        raise MalformedResponseError(
            f"the server sent an invalid Content-Length: {_one_line(declared, 40)!r}"
        )
    return int(text)


def _set_read_timeout(response: requests.Response, seconds: float) -> None:
    """Give an open response's socket another read timeout (urllib3 1.26 and 2.x).

    The socket hangs off the pooled connection, or, once http.client has let go
    of it (``Connection: close``), only off the reader of the body.
    """
    raw = response.raw
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    if sock is None:
        reader = getattr(getattr(raw, "_fp", None), "fp", None)
        sock = getattr(getattr(reader, "raw", None), "_sock", None)
    if sock is not None:
        sock.settimeout(seconds)


def _read_up_to(
    response: requests.Response, limit: int, ends: _Deadline | None, read_timeout: float
) -> bytes:
    """Read a body as it arrives, stopping at ``limit`` bytes (decoded) or at ``ends``."""
    pieces: list[bytes] = []
    size = 0
    try:
        for piece in _arriving(response):
            size += len(piece)
            if size > limit:
                raise MalformedResponseError(
                    f"the response exceeded max_response_bytes={limit}; stopped reading"
                )
            pieces.append(piece)
            if ends is not None:  # the next read may wait only for what the deadline leaves
                _set_read_timeout(response, min(read_timeout, ends.left("reading the body", 0)))
    except LMStudioError:
        raise
    except Exception as exc:  # requests', urllib3's and the socket's own errors
        if ends is not None:
            ends.left("reading the body", 0, cause=exc)  # raises if the deadline is why
        if _is_corrupt_encoding(exc):
            raise MalformedResponseError(
                f"the compressed body is corrupt ({type(exc).__name__})"
            ) from exc
        if _is_timeout(exc):
            raise RequestTimeoutError(
                f"LM Studio stopped sending the body for {read_timeout:g} s"
            ) from exc
        raise ServerUnreachableError(
            f"the connection broke while reading the body ({type(exc).__name__})"
        ) from exc
    return b"".join(pieces)


def _is_loopback(host: str | None) -> bool:
    """localhost, 127.0.0.0/8 and ::1: this machine, which no proxy can reach for us."""
    if not host:
        return False
    host = host.rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name
        return False


#: requests' keys for the environment's proxies; None for each means "go direct".
_NO_PROXIES: dict[str, Any] = {"http": None, "https": None, "all": None}


def _proxies_for(url: str, configured: Mapping[str, str] | None) -> dict[str, Any] | None:
    """The ``proxies=`` for requests: the configured ones alone; none for a loopback
    host (Go's net/http makes the same exception); else None, the environment's."""
    from urllib.parse import urlsplit

    if configured is not None:
        return {**_NO_PROXIES, **configured}  # a None drops that key's environment proxy
    if _is_loopback(urlsplit(url).hostname):
        return dict(_NO_PROXIES)
    return None


def _proxy_in_use(
    url: str, configured: Mapping[str, str] | None, session: Mapping[str, str] | None = None
) -> tuple[str, str]:
    """The proxy a request to ``url`` went through, and where it was set: requests
    prefers the environment's to those of the caller's ``session.proxies``."""
    proxies = _proxies_for(url, configured)
    if proxies is not None:
        return _without_password(requests.utils.select_proxy(url, proxies) or "?"), "proxies="
    proxy = requests.utils.select_proxy(url, requests.utils.get_environ_proxies(url))
    if proxy is None and session:
        chosen = requests.utils.select_proxy(url, dict(session))
        if chosen:
            return _without_password(chosen), "session.proxies"
    proxy = proxy or "?"
    scheme = url.split(":", 1)[0]
    for name in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY", "all_proxy", "ALL_PROXY"):
        if os.environ.get(name) == proxy:
            return _without_password(proxy), name
    return _without_password(proxy), "the system's proxy settings"


def _url_secrets(url: str) -> list[str]:
    """A password in a URL as a server could echo it: as written, decoded (``%40`` is the
    ``@`` that requests sends), and inside the Basic credentials requests builds from it."""
    import base64

    parts = urllib.parse.urlsplit(url)
    if not parts.password:
        return []
    user, password = (urllib.parse.unquote(part or "") for part in (parts.username, parts.password))
    basic = base64.b64encode(f"{user}:{password}".encode("latin-1", "replace")).decode()
    return [parts.password, password, basic]


class _Transport:
    """How one client talks HTTP: send, retry, read a body within limits.

    Every request goes through :meth:`send`; whether another attempt may help
    is :meth:`_should_retry`, how long to wait first :meth:`_retry_delay`.
    Errors come out mapped by the error table, with the secrets redacted.
    """

    def __init__(
        self,
        config: LMStudioConfig,
        session: requests.Session,
        sleep: Callable[[float], None],
        rng: random.Random,
        clock: Callable[[], float],
    ) -> None:

        self._config = config
        self._session = session
        self._sleep = sleep
        self._rng = rng
        self._clock = clock
        self._headers = {"User-Agent": USER_AGENT, "Content-Type": "application/json"}
        if config.api_key:
            self._headers["Authorization"] = f"Bearer {config.api_key}"
        self.redactor = _Redactor(
            {
                config.api_key or "": "<api key>",
                **dict.fromkeys(_url_secrets(config.base_url), "***"),
            }
        )
        #: The base URL as messages show it: without a password.
        self.where = _without_password(config.base_url)
        self._proxies = _proxies_for(config.base_url, config.proxies)

    def request_json(
        self,
        method: str,
        path: str,
        payload: JSONDict | None = None,
        *,
        timeout: float | None = None,
        retries: int | None = None,
        deadline: float | _Deadline | None = None,
        empty_ok: bool = False,
    ) -> Any:
        """Send, read within the size limit, parse, and check for an error body."""
        ends = self.deadline(deadline)
        response, read_timeout = self.send(
            method, path, payload, timeout=timeout, retries=retries, ends=ends
        )
        data = self._read_body(response, read_timeout, ends)
        if empty_ok and not data.strip():  # a 204, or a route that answers with nothing
            return None
        if not data.strip():
            raise MalformedResponseError(
                f"{self._what(method, path)}: empty body (HTTP {response.status_code}); "
                "expected JSON"
            )
        what = f"{self._what(method, path)}: the body (HTTP {response.status_code})"
        body = _loads(data, what, self.redactor)
        if isinstance(body, dict) and body.get("error"):  # LM Studio's "200 but error"
            raise _api_error_from(response.status_code, body, "", "", 1, self.redactor)
        return body

    def _what(self, method: str, path: str) -> str:
        """A request as messages and log records name it. A path can hold server text
        (a download's job id), so it is quoted like any: no secret, one line, bounded."""
        return f"{method} {self.redactor.quote(path)}"

    def open_stream(
        self,
        path: str,
        payload: Any,
        timeout: float | None,
        deadline: _Deadline | None,
        method: str = "POST",
    ) -> dict[str, Any]:
        """Send a streaming request; an error answer raises before any chunk.

        Returns the keyword arguments of the stream class that will read it.
        """
        started = self._clock()
        ends = self.deadline(deadline)
        response, read_timeout = self.send(
            method, path, payload, timeout=timeout, accept="text/event-stream", ends=ends
        )
        content_type = response.headers.get("Content-Type", "")
        if "json" in content_type:  # an error body, or a server that ignored stream=true
            data = self._read_body(response, read_timeout, ends)
            body = self._error_body(data)
            if isinstance(body, dict) and body.get("error"):
                raise _api_error_from(response.status_code, body, "", "", 1, self.redactor)
            got = self.redactor.quote(content_type)
            raise MalformedResponseError(
                f"{self._what(method, path)}: expected an event stream, got {got}"
                f": {self.redactor.quote(data.decode('utf-8', 'replace'))}"
            )
        if ends is not None:  # the deadline covered the wait; the stream has the read timeout
            _set_read_timeout(response, read_timeout)
        return {
            "response": response,
            "read_timeout": read_timeout,
            "max_bytes": self._config.max_response_bytes,
            "started": started,
            "clock": self._clock,
            "redactor": self.redactor,
            "asked": payload.get("model") if isinstance(payload, dict) else None,
        }

    def send(
        self,
        method: str,
        path: str,
        payload: JSONDict | None = None,
        *,
        timeout: float | None = None,
        retries: int | None = None,
        accept: str = "application/json",
        ends: _Deadline | None = None,
    ) -> tuple[requests.Response, float]:
        """Send with retries; returns a 2xx response whose body is not read yet.

        ``ends`` (from ``deadline``) bounds every wait, retries and backoff included.
        """
        what = self._what(method, path)
        read_timeout = _check_timeout(self._config.timeout if timeout is None else timeout)
        body = None if payload is None else _encode(payload)
        headers = {**self._headers, "Accept": accept}
        if body is None:
            del headers["Content-Type"]
        attempts = 1 + (self._config.max_retries if retries is None else retries)
        for attempt in range(1, attempts + 1):
            try:
                response = self._request(
                    method, path, body, headers, read_timeout, ends, (attempt, attempts)
                )
            except requests.RequestException as exc:
                error: LMStudioError = self._failure(exc, what, read_timeout, attempt)
                if attempt < attempts and self._should_retry(method, exc, error):
                    self._wait(self._retry_delay(attempt, {}, error), ends, what, attempt)
                    continue
                raise error from exc
            if response.status_code < 400:
                return response, read_timeout
            error, asked = self._error_answer(response, read_timeout, attempt, ends)
            status = response.status_code
            del response  # the traceback of the error must not keep the connection alive
            if self._should_retry(method, status, error):
                delay = self._retry_delay(attempt, asked, error)  # raises if too long
                if attempt < attempts:
                    self._wait(delay, ends, what, attempt)
                    continue
            raise error
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _request(
        self,
        method: str,
        path: str,
        body: bytes | None,
        headers: Mapping[str, str],
        read_timeout: float,
        ends: _Deadline | None,
        attempts: tuple[int, int],
    ) -> requests.Response:
        """One attempt (number ``attempts[0]`` of ``attempts[1]``), its timeouts cut to
        what the deadline leaves, logged either way."""
        what = self._what(method, path)
        attempt = attempts[0]
        connect, read = self._config.connect_timeout, read_timeout
        if ends is not None:
            left = ends.left(what, attempt - 1)
            connect, read = min(connect, left), min(read, left)
        started = self._clock()
        try:
            response = self._session.request(
                method,
                self._config.base_url + path,
                data=body,
                headers=headers,
                timeout=(connect, read),
                stream=True,
                proxies=self._proxies,
            )
        except requests.RequestException as exc:
            self._log(what, type(exc).__name__, started, attempts)
            if ends is not None:
                ends.left(what, attempt, cause=exc)  # raises once it has passed
            raise
        except ValueError as exc:  # urllib3 refused the host name ("a..b")
            raise ConfigError(
                f"base_url={self.where!r} cannot be used: {self.redactor.quote(str(exc), 120)}"
            ) from exc
        self._log(what, response.status_code, started, attempts)
        return response

    # -- the retry policy ---------------------------------------------------
    def _should_retry(self, method: str, failure: Exception | int, error: LMStudioError) -> bool:
        """Whether another attempt may help.

        Yes when the request never reached the server; when a GET (or, with
        ``retry_on_timeout``, a POST: the model may still be generating) timed
        out; when a GET lost its connection; when the server or a proxy said it
        is busy (429, 502, 503, 504) and the body named no other error. LM
        Studio's 500s are deterministic: never.
        """
        if isinstance(failure, int):  # an HTTP status
            return failure in RETRY_STATUSES and type(error) in (RateLimitError, ServerError)
        if _never_connected(failure):
            return True
        if isinstance(failure, requests.Timeout):
            return method == "GET" or self._config.retry_on_timeout
        return isinstance(failure, requests.ConnectionError) and method == "GET"

    def _retry_delay(self, attempt: int, asked: Mapping[str, str], error: LMStudioError) -> float:
        """Seconds before the next attempt: the server's Retry-After when it gave one,
        else exponential backoff with full jitter, which spreads out clients that
        failed together. A server asking for more than MAX_RETRY_AFTER gets its
        error back at once."""
        delay = retry_after_seconds(asked)
        if delay is None:
            return self._rng.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1)))
        if delay > MAX_RETRY_AFTER:
            wanted = asked.get("retry-after-ms") or asked.get("retry-after")
            error.args = (
                f"{error}; the server asked to wait {self.redactor.quote(wanted, 60)!r},"
                f" more than {MAX_RETRY_AFTER:g} s: try again later",
            )
            raise error
        return delay

    def pause(self, seconds: float, ends: _Deadline | None, what: str) -> None:
        """Sleep between polls, never past the deadline."""
        if ends is not None and ends.left(what, 0) < seconds:
            raise ends.passed(what, 0)
        self._sleep(seconds)

    def _wait(self, delay: float, ends: _Deadline | None, what: str, attempt: int) -> None:
        """Sleep before a retry, unless the deadline would pass first."""
        if ends is not None and ends.left(what, attempt) <= delay:
            raise ends.passed(what, attempt)
        self._sleep(delay)

    # -- failures -------------------------------------------------------------
    def _failure(
        self, exc: requests.RequestException, what: str, read_timeout: float, attempt: int
    ) -> LMStudioError:
        """The error for a failure below HTTP."""
        tries = f", after {attempt} attempts" if attempt > 1 else ""
        if isinstance(exc, requests.exceptions.ProxyError):  # the proxy failed, not LM Studio
            from urllib.parse import urlsplit

            proxy, source = _proxy_in_use(
                self._config.base_url, self._config.proxies, self._session.proxies
            )
            host = urlsplit(self._config.base_url).hostname
            bypass = f"add {host} to NO_PROXY"
            if source in ("proxies=", "session.proxies"):  # NO_PROXY cannot override these
                bypass = f"change {source}"
            return ServerUnreachableError(
                f"{what}: the proxy {proxy} (from {source}) did not reach {self.where} "
                f"({_connect_failure_reason(exc)}{tries}); fix the proxy, or {bypass}"
            )
        if _never_connected(exc):
            reason = _connect_failure_reason(exc)
            return ServerUnreachableError(
                f"cannot reach LM Studio at {self.where} ({reason}{tries}); {START_SERVER_ADVICE}"
            )
        if isinstance(exc, requests.Timeout):
            return RequestTimeoutError(
                f"{what}: LM Studio at {self.where} sent nothing for {read_timeout:g} s"
                f"{tries}; a model loading just in time can take minutes: "
                "raise LMSTUDIO_TIMEOUT or pass timeout="
            )
        if isinstance(exc, requests.ConnectionError):
            return ServerUnreachableError(
                f"{what}: LM Studio at {self.where} closed the connection without "
                f"an answer ({type(exc).__name__}{tries})"
            )
        reason = self.redactor.quote(_without_password(str(exc)))
        return LMStudioError(f"{what}: request failed: {reason}")

    def _error_answer(
        self,
        response: requests.Response,
        read_timeout: float,
        attempt: int,
        ends: _Deadline | None,
    ) -> tuple[APIError, dict[str, str]]:
        """The error for an HTTP error answer, and its Retry-After headers."""
        try:
            data = self._read_body(response, read_timeout, ends)
        except LMStudioError:
            data = b""
        error = _api_error_from(
            response.status_code,
            self._error_body(data),
            data.decode("utf-8", "replace"),
            response.reason or "",
            attempt,
            self.redactor,
        )
        names = ("retry-after", "retry-after-ms")
        asked = {name: response.headers[name] for name in names if name in response.headers}
        return error, asked

    def _error_body(self, data: bytes) -> Any:
        """The JSON of an error answer, or None when it has none we can read."""
        try:
            return _loads(data, "the error body", self.redactor) if data.strip() else None
        except MalformedResponseError:
            return None

    # -- reading ----------------------------------------------------------------
    def _read_body(
        self, response: requests.Response, read_timeout: float, ends: _Deadline | None
    ) -> bytes:
        """The whole body, refusing one larger than ``max_response_bytes`` early."""
        limit = self._config.max_response_bytes
        try:
            declared = _content_length(response)
            if declared is not None and declared > limit:
                raise MalformedResponseError(
                    f"the response is {declared} bytes, more than max_response_bytes={limit}"
                )
            return _read_up_to(response, limit, ends, read_timeout)
        finally:
            response.close()

    def deadline(self, deadline: float | _Deadline | None) -> _Deadline | None:
        """A call's deadline: started by the client already, or from seconds (or config)."""
        if isinstance(deadline, _Deadline):
            return deadline
        seconds = self._config.deadline if deadline is None else deadline
        return None if seconds is None else _Deadline(seconds, self._clock)

    def _log(
        self, what: str, outcome: str | int, started: float, attempts: tuple[int, int]
    ) -> None:
        elapsed = self._clock() - started
        log.debug("%s -> %s in %.3fs (attempt %d/%d)", what, outcome, elapsed, *attempts)


# ============================================================================
# Streaming: server-sent events from bytes to chunks
# ============================================================================


_BOM = b"\xef\xbb\xbf"
_decode_json = json.JSONDecoder().raw_decode


class _SSELines:
    """Cuts a byte stream into lines as the SSE spec reads them.

    A leading UTF-8 BOM is skipped; ``\\n``, ``\\r\\n`` and ``\\r`` all end a
    line, also when the network splits a ``\\r\\n``; a line arriving in many
    chunks is joined once, so the cost stays linear in the input.
    """

    def __init__(self) -> None:
        self._pending: list[bytes] = []  # the pieces of a line whose end has not arrived
        self._start: bytes | None = b""  # the first bytes, until known not to be a BOM
        self._after_cr = False  # the last chunk ended in "\\r": a "\\n" next is its end
        #: Nothing held back: the next chunk starts a line of its own.
        self.clean = False

    def feed(self, chunk: bytes | None) -> list[bytes]:
        """The lines ``chunk`` completes; at the end (None), the last line even without
        its end, then a blank line that ends its event."""
        if chunk is None:
            last = self._start if self._start is not None else b"".join(self._pending)
            return [last, b""]
        if not chunk:
            return []  # nothing: not even the end of a "\\r\\n" split around it
        if self._start is not None:
            chunk = self._start + chunk
            if len(chunk) < len(_BOM) and _BOM.startswith(chunk):
                self._start = chunk
                return []  # could still be a BOM: wait for more
            chunk, self._start = chunk[3:] if chunk.startswith(_BOM) else chunk, None
        if self._after_cr and chunk[:1] == b"\n":
            chunk = chunk[1:]
        self._after_cr = chunk[-1:] == b"\r"
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = chunk.split(b"\n")
        if self._pending:
            self._pending.append(lines[0])
            if len(lines) == 1:
                return []  # still inside one long line
            lines[0] = b"".join(self._pending)
            self._pending = []
        tail = lines.pop()
        if tail:
            self._pending.append(tail)
        self.clean = not (tail or self._after_cr)
        return lines


def iter_sse(chunks: Iterable[bytes]) -> Iterator[tuple[str, str]]:
    """Yield ``(event, data)`` for each server-sent event as soon as it is complete.

    Works on bytes and splits lines before decoding, so a UTF-8 character cut
    in two by the network survives; line ends and a BOM as the spec says (see
    :class:`_SSELines`). A last event without its blank line is delivered.
    """
    lines = _SSELines()
    event = ""
    data: list[str] = []
    for chunk in itertools.chain(chunks, (None,)):  # None: the body ended
        if (
            lines.clean
            and chunk
            and chunk[-2:] == b"\n\n"
            and chunk[:5] == b"data:"
            and chunk.find(b"\n") == len(chunk) - 2
            and b"\r" not in chunk
            and not data
        ):  # the hot path: one chunk holds one whole one-line event, as LM Studio sends
            start = 6 if chunk[5:6] == b" " else 5  # one space after the colon is not data
            yield event or "message", chunk[start:-2].decode("utf-8", "replace")
            event = ""
            continue
        for line in lines.feed(chunk):
            if line[:5] == b"data:":
                value = line[5:].decode("utf-8", "replace")
                data.append(value[1:] if value[:1] == " " else value)
            elif not line:  # a blank line dispatches the event
                if data:
                    yield event or "message", "\n".join(data)
                    data = []
                event = ""
            elif line[:6] == b"event:":
                event = line[6:].decode("utf-8", "replace").strip()
            # comments (":...") and other fields (id:, retry:) are ignored


ChunkT = TypeVar("ChunkT")


ResultT = TypeVar("ResultT")


_StreamT = TypeVar("_StreamT", bound="_Stream[Any, Any]")


class _Stream(Generic[ChunkT, ResultT]):
    """An iterator of chunks over one streaming HTTP response.

    It is also a context manager; ``close()`` (or leaving a ``for`` loop early,
    or dropping the last reference) drops the connection at once, which tells
    LM Studio to stop generating. Errors inside the stream raise through the
    same error table as plain calls; a stream cut short raises :class:`StreamError`.
    """

    _what = "stream"
    #: Whether the body's end ends the stream; if not, it takes [DONE] or a finish
    #: reason (``_ending``), and a body that stops without one was cut.
    _open_ended = False
    _ending = "[DONE] or a finish_reason"

    def __init__(
        self,
        response: requests.Response,
        *,
        read_timeout: float,
        max_bytes: int,
        started: float,
        clock: Callable[[], float] = time.monotonic,
        redactor: _Redactor = _NO_SECRETS,
        asked: str | None = None,
    ) -> None:
        self._response = response
        self._redactor = redactor
        self._asked = asked
        self._read_timeout = read_timeout
        self._max_bytes = max_bytes
        self._closed = False
        self._complete = False
        self._eof = False
        self._result: ResultT | None = None
        self._built = False  # _result is the answer (None may be one: EventStream's)
        self._error: LMStudioError | None = None
        self._pieces: list[str] = []  # recent text deltas, joined into _blocks now and then
        self._blocks: list[str] = []  # so memory follows the text, not the chunk count
        self._finish_reason: str | None = None
        self._usage: Usage | None = None
        self._id: str | None = None
        self._model: str | None = None
        self._last: JSONDict = {}
        self._clock = clock
        self._started = started
        #: Client-side seconds from sending the request to the first text.
        self.time_to_first_token: float | None = None
        self._elapsed: float | None = None
        # The generator sees the stream through a weak proxy. A strong reference
        # would make a cycle (stream -> generator -> stream), and a dropped stream
        # would keep its connection (and LM Studio generating) until the garbage
        # collector ran; this way the last reference going closes it at once.
        me: Any = weakref.proxy(self)
        self._chunks: Generator[ChunkT, None, None] = _Stream._generate(me)

    # -- the iterator protocol -------------------------------------------
    def __iter__(self) -> Iterator[ChunkT]:
        # A fresh generator per loop: when a loop breaks early and drops it,
        # its close() reaches _generate's finally and frees the connection.
        yield from self._chunks

    def __next__(self) -> ChunkT:
        return next(self._chunks)  # after close(), the closed generator just stops

    def __enter__(self: _StreamT) -> _StreamT:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            self.close()

    def close(self) -> None:
        """Release the connection now; safe to call more than once."""
        if not self._closed:
            self._closed = True
            self._response.close()
            if not getattr(self._chunks, "gi_running", False):  # not from inside it
                self._chunks.close()  # so later loops end at once instead of reading

    @property
    def response(self) -> ResultT:
        """The whole answer, once the stream has been read to its end.

        After the stream failed, the failure (a :class:`StreamError`, say) again.
        """
        if self._error is not None:
            raise self._error
        if not self._built:
            if self._closed:  # left early: it will never have an answer
                raise self._cut("the stream was closed before its end")
            raise RuntimeError("the stream is not finished: iterate it to the end or call text()")
        return self._result  # type: ignore[return-value]  # built: ResultT, None included

    def text(self) -> str:
        """Read the rest of the stream and return all of its text (or raise its failure)."""
        for _ in self._chunks:
            pass
        if self._error is not None:
            raise self._error
        if not self._complete:  # closed before its end: what came is not the answer
            raise self._cut("the stream was closed before its end")
        return self._text_so_far()

    def _text_so_far(self) -> str:
        return "".join(self._blocks) + "".join(self._pieces)

    def _add_text(self, text: str) -> None:
        """Keep a delta for ``response``."""
        self._pieces.append(text)
        if len(self._pieces) >= 1024:
            self._fold()

    def _fold(self) -> None:
        """A 4-byte delta costs ~60 bytes as its own string: every 1,024 become one."""
        self._blocks.append("".join(self._pieces))
        self._pieces.clear()

    # -- the wire (self is the weak proxy in these two generators) ---------
    def _read_bytes(self) -> Iterator[bytes]:
        total, limit = 0, self._max_bytes
        try:
            for data in _arriving(self._response):
                total += len(data)
                if total > limit:
                    raise MalformedResponseError(
                        f"{self._what}: the response exceeded max_response_bytes="
                        f"{limit}; stopped reading"
                    )
                yield data
        except LMStudioError:
            raise
        except Exception as exc:  # any failure to read is a cut stream
            raise self._read_failure(exc) from exc
        self._eof = True

    def _read_failure(self, exc: Exception) -> LMStudioError:
        partial = self._redactor.hide(self._text_so_far())
        if _is_corrupt_encoding(exc):
            return MalformedResponseError(
                f"{self._what}: the compressed body is corrupt ({type(exc).__name__}) "
                f"after {len(partial)} characters"
            )
        if _is_timeout(exc):
            return RequestTimeoutError(
                f"{self._what}: no data from the server for {self._read_timeout:g} s "
                f"after {len(partial)} characters; raise LMSTUDIO_TIMEOUT or pass timeout=",
                partial=partial,
            )
        return StreamError(
            f"{self._what}: the connection broke after {len(partial)} characters "
            f"({type(exc).__name__}); the answer is incomplete",
            partial=partial,
        )

    def _generate(self) -> Generator[ChunkT, None, None]:
        try:
            for event, data in iter_sse(_Stream._read_bytes(self)):
                if data == "[DONE]":
                    self._complete = True
                    break
                yield self._take(event, data)
            if not (self._complete or self._open_ended) and self._finish_reason is None:
                raise self._cut(f"the server ended the stream without {self._ending}")
            self._complete = True
            tail = self._flush()
            if tail is not None:
                yield tail
            self._elapsed = self._clock() - self._started
            self._result = self._build()
            self._built = True
        except LMStudioError as exc:
            self._error = exc  # built with the redactor: no secret to take out here
            raise
        finally:
            # Dropped in a reference cycle, the garbage collector may clear the proxy
            # first; the stream's own __del__ closes the connection then.
            with contextlib.suppress(ReferenceError):
                self.close()

    def _take(self, event: str, data: str) -> ChunkT:
        """One event to one chunk; the error table for errors sent inside the stream."""
        try:  # not _loads: this is the hot path, and a cut is no JSON error
            obj, end = _decode_json(data)  # json.loads's own work, without its wrapper
        except (ValueError, RecursionError):
            end = -1
        if end != len(data):  # whitespace around it, or not JSON at all: the long way
            try:
                obj = json.loads(data)
            except (ValueError, RecursionError) as exc:
                if self._eof:  # the body ended inside this line: a cut stream
                    raise self._cut("the stream ended inside an event") from None
                what = f"{self._what}: a data line"
                raise _not_json(data, exc, what, self._redactor) from None
        if not isinstance(obj, dict):
            raise MalformedResponseError(
                f"{self._what}: a data line is not a JSON object: {self._redactor.quote(data)}"
            )
        if event == "error" or obj.get("error"):
            error = _api_error_from(200, obj, "", "", 1, self._redactor)
            if self._pieces or self._blocks:  # text arrived: keep it, and the class as cause
                raise self._cut(f"the server sent an error ({error})") from error
            raise error
        if not self._last:
            self._id, self._model = _str_or_none(obj.get("id")), _str_or_none(obj.get("model"))
            note = _substituted(self._asked, self._model, self._redactor)
            if note:
                log.info("%s", note)
        self._last = obj
        if obj.get("usage"):
            self._usage = Usage.from_json(obj["usage"])
        chunk = self._parse(obj)
        if self.time_to_first_token is None and (self._pieces or self._blocks):
            self.time_to_first_token = self._clock() - self._started
        return chunk

    def _cut(self, what: str) -> StreamError:
        partial = self._redactor.hide(self._text_so_far())
        return StreamError(
            f"{self._what}: {what} after {len(partial)} characters; the answer is incomplete",
            partial=partial,
        )

    # -- what subclasses fill in -----------------------------------------
    def _parse(self, obj: JSONDict) -> ChunkT:
        raise NotImplementedError

    def _flush(self) -> ChunkT | None:
        return None

    def _build(self) -> ResultT:
        raise NotImplementedError


#: Delta fields beyond the text that need ChatStream._extras.
_DELTA_EXTRAS = frozenset({"reasoning_content", "reasoning", "tool_calls"})


class ChatStream(_Stream[ChatChunk, ChatResponse]):
    """Chunks of a chat answer; ``response`` is the assembled :class:`ChatResponse`."""

    _what = "chat stream"

    def __init__(
        self,
        response: requests.Response,
        *,
        split_think: bool = False,
        expect_json: bool = False,
        parse_as: type | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(response, **kwargs)
        self._expect_json = expect_json
        self._parse_as = parse_as
        self._reasoning: list[str] = []
        self._calls: dict[int, JSONDict] = {}
        self._splitter = _ThinkSplitter() if split_think else None

    def _parse(self, obj: JSONDict) -> ChatChunk:
        choices = obj.get("choices")
        usage = self._usage if obj.get("usage") else None
        if not choices or type(choices) is not list or type(choices[0]) is not dict:
            return ChatChunk(usage=usage, raw=obj)  # the usage chunk has no choices
        choice = choices[0]
        delta = choice.get("delta")
        if type(delta) is not dict:
            delta = {}
        content = delta.get("content")
        if type(content) is not str:
            content = ""
        finish = choice.get("finish_reason") or None  # "" is no finish reason
        if finish is not None and type(finish) is not str:
            finish = None
        calls: list[JSONDict] = []
        if self._splitter is None and _DELTA_EXTRAS.isdisjoint(delta):
            reasoning = ""  # a plain text delta: most of any stream
        else:
            content, reasoning, calls = self._extras(delta, content, finish)
        if content:
            self._pieces.append(content)  # _add_text, inlined: once per token
            if len(self._pieces) >= 1024:
                self._fold()
        if finish is not None:
            self._finish_reason = finish
        return ChatChunk(content, reasoning, calls, finish, usage, obj)

    def _extras(
        self, delta: JSONDict, content: str, finish: str | None
    ) -> tuple[str, str, list[JSONDict]]:
        """Reasoning, tool-call pieces and ``split_think``: what a plain text delta lacks."""
        reasoning = _delta_reasoning(delta)
        if self._splitter is not None:  # a leading <think> block moves to reasoning
            content, thought = self._splitter.feed(content)
            reasoning += thought
            if finish is not None:
                more_content, more_thought = self._splitter.flush()
                content, reasoning = content + more_content, reasoning + more_thought
        if reasoning:
            self._reasoning.append(reasoning)
        calls = delta.get("tool_calls")
        if type(calls) is not list:
            return content, reasoning, []
        for piece in calls:
            self._add_call_piece(piece)
        return content, reasoning, calls

    def _add_call_piece(self, piece: Any) -> None:
        """Tool calls arrive in pieces keyed by index: the first names, the rest append."""
        if not isinstance(piece, dict):
            return
        index = piece.get("index")
        index = index if isinstance(index, int) else len(self._calls)
        function, arguments = _function_part(piece)
        call = self._calls.get(index)
        if call is None:
            self._calls[index] = _tool_call(piece)
            return
        if arguments:
            call["function"]["arguments"] += arguments
        call["id"] = call["id"] or piece.get("id")
        call["function"]["name"] = call["function"]["name"] or function.get("name")

    def _flush(self) -> ChatChunk | None:
        if self._splitter is None:
            return None
        content, reasoning = self._splitter.flush()
        if not content and not reasoning:
            return None
        if content:
            self._add_text(content)
        if reasoning:
            self._reasoning.append(reasoning)
        return ChatChunk(content=content, reasoning=reasoning)

    def _build(self) -> ChatResponse:
        content = self._text_so_far()
        reasoning = "".join(self._reasoning)
        parsed = None
        if self._expect_json and not self._calls:
            parsed = _structured(
                content, reasoning, self._finish_reason, self._parse_as, self._redactor
            )
        return ChatResponse(
            id=self._id,
            model=self._model,
            content=content,
            reasoning=reasoning,
            tool_calls=[self._calls[i] for i in sorted(self._calls)],
            finish_reason=self._finish_reason,
            usage=self._usage,
            parsed=parsed,
            elapsed=self._elapsed,
            raw=self._last,
        )


class CompletionStream(_Stream[CompletionChunk, CompletionResponse]):
    """Chunks of a text completion; ``response`` is the whole :class:`CompletionResponse`."""

    _what = "completion stream"

    def _parse(self, obj: JSONDict) -> CompletionChunk:
        choices = obj.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        usage = self._usage if obj.get("usage") else None
        if not isinstance(choice, dict):
            return CompletionChunk(usage=usage, raw=obj)
        text = _text(choice.get("text"))
        if text:
            self._add_text(text)
        finish = _finish_reason(choice.get("finish_reason"))
        if finish is not None:
            self._finish_reason = finish
        return CompletionChunk(text, finish, usage, obj)

    def _build(self) -> CompletionResponse:
        return CompletionResponse(
            id=self._id,
            model=self._model,
            text=self._text_so_far(),
            finish_reason=self._finish_reason,
            usage=self._usage,
            elapsed=self._elapsed,
            raw=self._last,
        )


class EventStream(_Stream[tuple[str, Any], Optional[tuple[str, Any]]]):
    """The server-sent events of :meth:`LMStudioClient.request` as ``(event, data)``:
    the ``event:`` name (``"message"`` when none, as the SSE standard has it) and the
    parsed JSON of its data.

    It ends with the body or a ``[DONE]`` line; ``response`` is the last event
    (LM Studio's native chat ends with one that holds the whole result). Error
    events raise through the error table; a broken connection is a StreamError.
    """

    _what = "event stream"
    _open_ended = True

    def _take(self, event: str, data: str) -> tuple[str, Any]:
        self._last_event = (event, super()._take(event, data))
        return self._last_event

    def _parse(self, obj: JSONDict) -> Any:
        return obj

    def _build(self) -> tuple[str, Any] | None:
        return getattr(self, "_last_event", None)


class NativeChatStream(_Stream[NativeEvent, NativeChatResponse]):
    """The events of LM Studio's native chat; ``response`` is built from ``chat.end``.

    As for :class:`ChatStream`: nothing is buffered, a stream cut before
    ``chat.end`` raises :class:`StreamError` with the text so far in ``.partial``,
    ``error`` events go through the error table, and leaving early closes it.
    """

    _what = "native chat stream"
    _ending = "chat.end"

    def __init__(self, response: requests.Response, **kwargs: Any) -> None:
        super().__init__(response, **kwargs)
        self._event = ""
        self._reasoning: list[str] = []
        self._end: JSONDict | None = None

    def _take(self, event: str, data: str) -> NativeEvent:
        self._event = event
        return super()._take(event, data)

    def _parse(self, obj: JSONDict) -> NativeEvent:
        kind = _str_or_none(obj.get("type")) or self._event
        text = _text(obj.get("content")) if kind.endswith(".delta") else ""
        if kind == "message.delta" and text:
            self._add_text(text)
        elif kind == "reasoning.delta" and text:
            self._reasoning.append(text)
        elif kind == "chat.end":
            result = obj.get("result")
            self._end = result if isinstance(result, dict) else obj
            self._complete = True
        progress = _fraction_or_none(obj.get("progress")) if kind.endswith(".progress") else None
        cls = next((c for name, c in _NATIVE_EVENT_TYPES if kind.startswith(name)), NativeEvent)
        return cls(kind, text, progress, obj)

    def _build(self) -> NativeChatResponse:
        if self._end is None:  # an OpenAI-style [DONE] ended it: not this protocol's end
            raise self._cut(f"the server ended the stream without {self._ending}")
        return _parse_native(self._end, self._redactor)


# ============================================================================
# Client
# ============================================================================


def _check_messages(messages: Any) -> list[JSONDict]:
    """A string is one user message; anything else must be a list of role dicts."""
    if isinstance(messages, str):
        if not messages:
            raise ValueError("messages must not be empty")
        return [{"role": "user", "content": messages}]
    if not isinstance(messages, (list, tuple)):
        raise ValueError(
            f"messages must be a string or a list of dicts, not {type(messages).__name__}"
        )
    if not messages:
        raise ValueError("messages must not be empty")
    checked = []
    for position, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise ValueError(f"messages[{position}] must be a dict, not {type(message).__name__}")
        role = message.get("role")
        if role is None:
            raise ValueError(f"messages[{position}] has no 'role'")
        if not isinstance(role, str) or role not in VALID_ROLES:
            raise ValueError(
                f"messages[{position}] has role {_shown(role)}; use one of "
                f"{', '.join(sorted(VALID_ROLES))}"
            )
        checked.append(dict(message))
    return checked


#: The image formats LM Studio reads, by the bytes their files start with (WebP: below).
_IMAGE_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


#: What a data URL may say it holds: the formats above, base64-encoded.
_IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")


def _image_type(data: bytes) -> str | None:
    for signature, mime in _IMAGE_SIGNATURES:
        if data.startswith(signature):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _image_bytes(image: Any, where: str) -> bytes:
    """The bytes of a path, of bytes, or of a binary file object."""
    if isinstance(image, (bytes, bytearray, memoryview)):
        return bytes(image)
    if isinstance(image, (str, os.PathLike)):
        try:
            with open(image, "rb") as file:
                return file.read()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise ValueError(f"{where}: cannot read {_shown(os.fspath(image))}: {reason}") from None
    read = getattr(image, "read", None)
    if callable(read):
        data = read()
        if isinstance(data, bytes):
            return data
        raise ValueError(f"{where} is a file opened as text; open it with 'rb'")
    raise ValueError(f"{where} must be a path, bytes or a binary file, not {type(image).__name__}")


def _checked_data_url(url: str, where: str) -> str:
    """A data URL the caller made, checked as a file's bytes are: a wrong type or a
    broken payload would otherwise reach the model as an image it cannot see."""
    import base64

    header, comma, payload = url.partition(",")
    params = [part.strip().lower() for part in header[len("data:") :].split(";")]
    mime = "image/jpeg" if params[0] == "image/jpg" else params[0]  # a common spelling
    if not comma or params[-1] != "base64" or mime not in _IMAGE_TYPES:
        raise ValueError(
            f"{where} is a data URL of {_shown(header[len('data:') :], 40)}, not "
            "data:image/<png|jpeg|gif|webp>;base64,..."
        )
    payload = "".join(payload.split())  # base64 wrapped at 76 columns is still base64
    try:
        data = base64.b64decode(payload, validate=True)
    except ValueError:  # binascii.Error, or a character outside ASCII
        raise ValueError(f"{where} is a data URL whose payload is not valid base64") from None
    found = _image_type(data)
    if found != mime:
        raise ValueError(
            f"{where} is a data URL of {mime}, but its bytes are "
            f"{found or 'not a PNG, JPEG, GIF or WebP image'}"
        )
    return f"data:{mime};base64,{payload}"  # as every server reads it


def _image_part(image: Any, where: str) -> JSONDict:
    """One image as an OpenAI content part, inlined as a data URL: LM Studio fetches
    no URLs, and a hidden download here would be network I/O nobody asked for."""
    if isinstance(image, str) and image[:11].lower() == "data:image/":
        return {"type": "image_url", "image_url": {"url": _checked_data_url(image, where)}}
    if isinstance(image, str) and image.lower().startswith(("http://", "https://")):
        raise ValueError(
            f"{where} is a URL, and LM Studio does not fetch images: download it first "
            "and pass the file or its bytes"
        )
    data = _image_bytes(image, where)
    mime = _image_type(data)
    if mime is None:
        raise ValueError(f"{where} is not a PNG, JPEG, GIF or WebP image")
    import base64

    url = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    return {"type": "image_url", "image_url": {"url": url}}


def _with_images(messages: list[JSONDict], images: Any) -> bool:
    """Turn ``images`` (for the last user message) and each message's own ``images``
    into content parts, in place; True when there were any."""
    if images is not None:
        if not isinstance(images, (list, tuple)):
            raise ValueError(
                f"images must be a list of paths, bytes or files, not {_shown(images)}"
            )
        users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
        if not users:
            raise ValueError("images go with a user message, and there is none")
        last = messages[users[-1]]
        last["images"] = [*(last.get("images") or ()), *images]
    found = False
    for position, message in enumerate(messages):
        pictures = message.pop("images", None)
        if pictures is None:
            continue
        where = f"messages[{position}].images"
        if not isinstance(pictures, (list, tuple)):
            raise ValueError(f"{where} must be a list, not {_shown(pictures)}")
        content = message.get("content")
        parts: list[Any] = list(content) if isinstance(content, list) else []
        if isinstance(content, str) and content:
            parts.append({"type": "text", "text": content})
        parts += [_image_part(image, f"{where}[{n}]") for n, image in enumerate(pictures)]
        message["content"] = parts
        found = found or bool(pictures)
    return found


def _check_sampling(temperature: Any, max_tokens: Any) -> None:
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
            raise ValueError(f"temperature must be a number, not {_shown(temperature)}")
        if not _is_finite(temperature):
            raise ValueError(f"temperature must be finite, not {_shown(temperature)}")
    if max_tokens is not None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
            raise ValueError(f"max_tokens must be an integer, not {_shown(max_tokens)}")
        if max_tokens == 0 or max_tokens < -1:
            shown = _shown(max_tokens)
            raise ValueError(f"max_tokens must be >= 1, or -1 for no limit, not {shown}")


def _reasoning_effort(reasoning: Any) -> str | None:
    if reasoning is None:
        return None
    if isinstance(reasoning, str) and reasoning in REASONING_EFFORTS:
        return REASONING_EFFORTS[reasoning]
    valid = ", ".join(repr(name) for name in REASONING_EFFORTS)
    raise ValueError(f"reasoning must be one of {valid}, not {_shown(reasoning)}")


def _check_tools(tools: Any) -> list[Any] | None:
    if tools is None:
        return None
    if not isinstance(tools, (list, tuple)) or not all(isinstance(t, Mapping) for t in tools):
        raise ValueError(f"tools must be a list of tool dicts, not {_shown(tools)}")
    return [dict(tool) for tool in tools]


def _check_model_name(model: Any, what: str = "model") -> None:
    if not isinstance(model, str) or not model.strip():
        raise ValueError(f"{what} must be a non-empty string, not {_shown(model)}")


def _ask_for_stream(payload: JSONDict, include_usage: bool) -> None:
    payload["stream"] = True
    if include_usage:
        options = dict(payload.get("stream_options") or {})
        options.setdefault("include_usage", True)
        payload["stream_options"] = options


def _response_format(
    response_format: Mapping[str, Any] | None,
    json_schema: Mapping[str, Any] | type | None,
    schema_name: str | None,
) -> Mapping[str, Any] | None:
    """LM Studio takes only ``json_schema`` or ``text``: build or translate to it."""
    if response_format is not None and not isinstance(response_format, Mapping):
        raise ValueError("response_format must be a dict such as {'type': 'json_schema', ...}")
    if json_schema is not None:
        if response_format is not None:
            raise ValueError("pass json_schema or response_format, not both")
        if isinstance(json_schema, type):
            schema, title = _schema_for_type(json_schema), json_schema.__name__
        elif isinstance(json_schema, Mapping):
            schema, title = dict(json_schema), json_schema.get("title") or "response"
        else:
            raise ValueError(
                "json_schema must be a JSON Schema dict, a dataclass, a TypedDict or a class "
                f"with model_json_schema() (pydantic), not {_shown(json_schema)}"
            )
        name = schema_name or str(title)
        return {
            "type": "json_schema",
            "json_schema": {"name": name, "strict": True, "schema": schema},
        }
    if response_format is not None and response_format.get("type") == "json_object":
        # OpenAI's "any JSON object", which LM Studio rejects with HTTP 400.
        return {
            "type": "json_schema",
            "json_schema": {"name": "json_object", "strict": True, "schema": {"type": "object"}},
        }
    return response_format


def _needs_native_route(error: APIError, path: str, base_url: str, what: str) -> APIError:
    """A 404 on a native route means an older (or non-LM Studio) server."""
    needed = "0.4" if path.startswith("/api/v1") else "0.3.6"
    detail = str(error)
    if type(error).hint:  # "the base URL is probably wrong" is wrong here: the server is old
        detail = detail.replace(f"; {type(error).hint}", "")
    return EndpointNotFoundError(
        f"{what} needs LM Studio {needed} or newer: {base_url} does not serve {path} ({detail})",
        status_code=error.status_code,
        code=error.code,
        body=error.body,
    )


def _without_publisher(name: str) -> str:
    return name.lower().rsplit("/", 1)[-1]


def _without_variant(name: str) -> str:
    return _without_publisher(name).split("@", 1)[0]


#: How resolve_model loosens a name, one step at a time.
_MODEL_NAME_RULES: tuple[Callable[[str], str], ...] = (
    str.lower,
    _without_publisher,
    _without_variant,
)


def _resolve_hint(text: str, function: Callable[..., Any], where: str) -> Any:
    """One hint written as a string (``from __future__ import annotations``)."""
    try:
        return eval(text, dict(getattr(function, "__globals__", {})))  # what get_type_hints does
    except Exception as exc:
        raise ValueError(f"{where}: its type hint {text!r} cannot be resolved ({exc})") from None


def _argument_docs(docstring: str) -> dict[str, str]:
    """Parameter descriptions from a docstring's ``Args:`` section (Google style)."""
    described: dict[str, str] = {}
    section: int | None = None  # the indent of "Args:", once inside the section
    name, name_depth = None, 0
    for line in docstring.splitlines():
        stripped = line.strip()
        depth = len(line) - len(line.lstrip())
        if section is None:
            if stripped in ("Args:", "Arguments:", "Parameters:"):
                section = depth
            continue
        if not stripped:
            continue
        if depth <= section:  # the next section
            break
        found = re.match(r"(\w+)\s*(\([^)]*\))?\s*:\s*(.*)", stripped)
        if found and (name is None or depth <= name_depth):
            name, name_depth = found.group(1), depth
            described[name] = found.group(3)
        elif name is not None:  # a description's next line
            described[name] = f"{described[name]} {stripped}".strip()
    return described


def tool_schema(function: Callable[..., Any], name: str | None = None) -> JSONDict:
    """An OpenAI tool description built from a function's signature and docstring.

    Parameter types become JSON Schema as for typed structured output (``str``,
    ``int``, ``float``, ``bool``, ``Optional``, ``list[...]``, ``dict[str, ...]``,
    ``Literal``, enums, dataclasses, TypedDicts); parameters without a default
    are required; an ``Args:`` section in the docstring describes each one.
    Anything else needs an explicit schema.
    """
    import inspect

    tool_name = name or function.__name__
    try:
        hints = _type_hints(function, f"tool {tool_name!r}")
    except ValueError:
        hints = {}
    docstring = inspect.getdoc(function) or ""
    described = _argument_docs(docstring)
    properties: JSONDict = {}
    required = []
    for parameter in inspect.signature(function).parameters.values():
        where = f"tool {tool_name!r}: parameter {parameter.name!r}"
        hint = hints.get(parameter.name, parameter.annotation)
        if isinstance(hint, str):  # another hint of the function did not resolve: this one may
            hint = _resolve_hint(hint, function, where)
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise ValueError(f"{where} takes any number of values, which a model cannot send")
        if hint is parameter.empty:
            raise ValueError(f"{where} needs a type hint; or give the tool as (function, schema)")
        try:
            properties[parameter.name] = _schema_of(hint, where)
        except ValueError as exc:
            raise ValueError(f"{exc}; give the tool as (function, schema)") from None
        if parameter.name in described:
            properties[parameter.name]["description"] = described[parameter.name]
        if parameter.default is parameter.empty:
            required.append(parameter.name)
    description = docstring.split("\n\n", 1)[0].replace("\n", " ")
    return {
        "type": "function",
        "function": {
            "name": tool_name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


def _prepare_tools(
    tools: Mapping[str, Callable[..., Any] | tuple[Callable[..., Any], Mapping[str, Any]]],
) -> tuple[dict[str, Callable[..., Any]], list[JSONDict]]:
    if not isinstance(tools, Mapping) or not tools:
        raise ValueError("tools must be a non-empty dict of name -> function")
    functions: dict[str, Callable[..., Any]] = {}
    schemas = []
    for name, spec in tools.items():
        if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[1], Mapping):
            function, given = spec
            if "function" in given:  # a whole OpenAI tool
                schema: JSONDict = {"type": "function", **given}
            elif "parameters" in given:  # the function part of one
                schema = {"type": "function", "function": dict(given)}
            else:  # just the JSON Schema of the parameters
                schema = {"type": "function", "function": {"parameters": dict(given)}}
            schema["function"] = {**schema["function"], "name": name}
        elif callable(spec):
            function, schema = spec, tool_schema(spec, name)
        else:
            raise ValueError(f"tools[{name!r}] must be a function or a (function, schema) pair")
        if not callable(function):
            raise ValueError(f"tools[{name!r}] is not callable")
        functions[name] = function
        schemas.append(schema)
    return functions, schemas


def _run_tool(functions: Mapping[str, Callable[..., Any]], call: JSONDict) -> str:
    """Run one requested call; every failure becomes text the model can act on."""
    name = call["function"]["name"]
    raw = call["function"]["arguments"] or "{}"
    function = functions.get(name) if isinstance(name, str) else None
    if function is None:
        return f"error: there is no tool named {_shown(name)}; the tools are {', '.join(functions)}"
    try:
        arguments = _loads(raw, "the arguments", _NO_SECRETS)
    except MalformedResponseError:
        shown = _one_line(raw, 100)
        return f"error: the arguments are not valid JSON ({shown}); send a JSON object"
    if not isinstance(arguments, dict):
        return "error: the arguments must be a JSON object"
    try:
        result = function(**arguments)
    except Exception as exc:  # the model may fix its call; a crash helps nobody
        log.debug("tool %s raised %s", name, type(exc).__name__)
        return f"error: {name} raised {type(exc).__name__}: {_one_line(str(exc))}"
    return result if isinstance(result, str) else _as_text(result)


#: What LM Studio's load endpoint takes besides the model (its documentation, 0.4),
#: and how each is checked: a count of 1 or more, or a flag.
LOAD_OPTIONS: dict[str, type] = {
    "context_length": int,
    "eval_batch_size": int,
    "flash_attention": bool,
    "num_experts": int,
    "offload_kv_cache_to_gpu": bool,
}


def _load_options(**options: Any) -> JSONDict:
    """The load options given (None: not given), checked before anything is sent."""
    checked: JSONDict = {}
    for name, value in options.items():
        kind = LOAD_OPTIONS.get(name)
        if kind is None:
            hint = "; an idle ttl goes with chat() and friends" if name == "ttl" else ""
            valid = ", ".join(LOAD_OPTIONS)
            raise ValueError(f"unknown load option {name!r}{hint}; the options are {valid}")
        if value is None:
            continue
        if kind is int and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be a whole number of 1 or more, not {_shown(value)}")
        if kind is bool and not isinstance(value, bool):
            raise ValueError(f"{name} must be True or False, not {_shown(value)}")
        checked[name] = value
    return checked


def _loaded_instances(model: ModelInfo) -> list[JSONDict]:
    """A model's loaded instances with their settings: LM Studio 0.4 lists them; older
    servers say only "loaded", with one context length."""
    listed = model.raw.get("loaded_instances")
    if isinstance(listed, list):
        return [i for i in listed if isinstance(i, dict) and isinstance(i.get("id"), str)]
    if model.is_loaded:
        context = model.loaded_context_length
        return [{"id": model.id, "config": {} if context is None else {"context_length": context}}]
    return []


#: What respond() and respond_stream() take besides LM Studio's own fields.
_NATIVE_ARGUMENTS = frozenset(
    {"model", "previous_response_id", "system_prompt", "reasoning", "context_length",
     "integrations", "store", "images"}
)  # fmt: skip


def _native_input(given: Any, images: Any) -> Any:
    """The native chat's ``input``: text, or items with the images as data URLs."""
    if isinstance(given, str):
        if not given.strip():
            raise ValueError("input must not be empty")
        if not images:
            return given
        items: list[Any] = [{"type": "message", "content": given}]
    elif isinstance(given, (list, tuple)) and given and all(isinstance(i, Mapping) for i in given):
        items = [dict(item) for item in given]
    else:
        raise ValueError(f"input must be a string or a list of input items, not {_shown(given)}")
    if images is not None:
        if not isinstance(images, (list, tuple)):
            raise ValueError(
                f"images must be a list of paths, bytes or files, not {_shown(images)}"
            )
        for n, image in enumerate(images):
            url = _image_part(image, f"images[{n}]")["image_url"]["url"]
            items.append({"type": "image", "data_url": url})
    return items


def _tool_choice_hint(error: BadRequestError, payload: Any) -> BadRequestError:
    """LM Studio answers the object form of ``tool_choice`` with HTTP 400
    (lmstudio-bug-tracker#670); gateways to other servers take it, so it is sent
    as given and the error says what LM Studio takes instead."""
    choice = payload.get("tool_choice") if isinstance(payload, dict) else None
    if type(error) is not BadRequestError or error.status_code != 400:
        return error
    if not isinstance(choice, Mapping):
        return error
    return BadRequestError(
        f"{error}; LM Studio takes tool_choice as 'auto', 'none' or 'required', not an object",
        status_code=error.status_code,
        code=error.code,
        body=error.body,
    )


def _arguments_of(call: JSONDict) -> Any:
    """A call's arguments for ``on_tool_call``: the object, or the text that was no JSON."""
    raw = call["function"]["arguments"] or "{}"
    try:
        return _loads(raw, "the arguments", _NO_SECRETS)
    except MalformedResponseError:
        return raw


def _merge_options(
    payload: JSONDict,
    options: Mapping[str, Any],
    params: Mapping[str, Any],
    extra_body: Mapping[str, Any] | None,
) -> JSONDict:
    """Options that are None are not sent; ``extra_body`` is sent as given, last."""
    if extra_body is not None and not isinstance(extra_body, Mapping):
        raise ValueError(f"extra_body must be a dict, not {_shown(extra_body)}")
    for source in (options, params):
        for name, value in source.items():
            if value is not None:
                payload[name] = value
    if extra_body:
        payload.update(extra_body)
    return payload


class LMStudioClient:
    """A blocking client for one LM Studio server, over one ``requests.Session``.

    Safe to share across threads. ``LMStudioClient()`` reads the environment;
    keyword arguments override it (see :class:`LMStudioConfig`). ``sleep``,
    ``rng`` and ``clock`` are seams for tests: nothing there needs to wait.
    It satisfies :class:`ModelProvider`.
    """

    name: str = "lmstudio"

    def __init__(
        self,
        config: LMStudioConfig | None = None,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        **overrides: Any,
    ) -> None:
        given = {name: value for name, value in overrides.items() if value is not None}
        if config is None:
            config = LMStudioConfig.from_env(**given)
        elif given:
            from dataclasses import replace

            config = replace(config, **given)
        # Declared: pyright reads the installed stub (a copy of this file) without flow analysis.
        self.config: LMStudioConfig = config
        self._session = session if session is not None else requests.Session()
        self._owns_session = session is None
        self._clock = clock
        self._cache = TTLCache(config.cache_ttl, clock=clock)
        self._transport = _Transport(config, self._session, sleep, rng or random.Random(), clock)
        self._redactor = self._transport.redactor
        #: The base URL as messages show it: without a password.
        self._where = self._transport.where
        #: The route that last gave the model list: "/v1/models" means no native routes.
        self._models_route: str | None = None

    def __repr__(self) -> str:
        return f"LMStudioClient(base_url={self._where!r}, model={self.config.model!r})"

    def __enter__(self) -> LMStudioClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close pooled connections (only those of a session this client made)."""
        if self._owns_session:
            self._session.close()

    def clear_cache(self) -> None:
        """Forget the model list, e.g. after loading a model outside this client."""
        self._cache.clear()

    # -- models ----------------------------------------------------------
    def list_models(self, *, refresh: bool = False) -> list[ModelInfo]:
        """Every model the server knows, from the richest route it speaks.

        Asks ``/api/v1/models`` (LM Studio 0.4+), then ``/api/v0/models``, then
        the OpenAI ``/v1/models``; the route that answered is remembered.
        Cached for ``cache_ttl`` seconds; ``refresh=True`` asks again.
        """
        if refresh:
            self._cache.pop("models")
        return self._models(None)

    def _models(self, ends: _Deadline | None) -> list[ModelInfo]:
        return list(self._cache.get_or_load("models", lambda: self._fetch_models(ends)))

    def _fetch_models(self, ends: _Deadline | None = None) -> tuple[ModelInfo, ...]:
        remembered = self._cache.get("models_route")
        routes = sorted(MODEL_ROUTES, key=lambda route: route[0] != remembered)
        for position, (path, parse) in enumerate(routes):
            last = position == len(routes) - 1
            try:
                body = self._request_json("GET", path, deadline=ends)
            except NotFoundError as exc:
                if isinstance(exc, ModelNotFoundError) or last:
                    raise
                continue  # an older or non-LM Studio server: try the next route
            models = parse(body)
            if models is not None:
                self._cache.set("models_route", path)
                self._models_route = path
                return tuple(models)
            if last:
                raise MalformedResponseError(
                    f"GET {path}: no model list in {self._redactor.quote(body)}"
                )
        raise AssertionError("unreachable: the last route returns or raises")

    def get_model(self, model_id: str) -> ModelInfo:
        """One model from the (cached) list; a miss names the closest ids."""
        _check_model_name(model_id)
        models = self.list_models()
        for model in models:
            if model.id == model_id:
                return model
        raise self._model_missing(model_id, [m.id for m in models])

    def supports_model(self, model_id: str) -> bool:
        """Whether the server lists ``model_id`` (from the cache when warm)."""
        _check_model_name(model_id)
        return any(model.id == model_id for model in self.list_models())

    def model_capabilities(self, model_id: str) -> ModelCapabilities | None:
        """Context length, vision, tool use and reasoning of a model, or None if unknown.

        Answered from the cached model list: no request when it is warm.
        """
        _check_model_name(model_id)
        models = self.list_models()
        try:
            resolved = self._resolve_in(model_id, [m.id for m in models])
        except ModelNotFoundError:
            return None
        return next(ModelCapabilities.of(m) for m in models if m.id == resolved)

    def resolve_model(self, name: str) -> str:
        """The server's id for a name that almost matches it.

        Tried in order: the exact id; the same ignoring case; ignoring a
        publisher prefix on either side (``qwen2.5-7b-instruct`` finds
        ``lmstudio-community/qwen2.5-7b-instruct``); also ignoring a variant
        suffix (``@q4_k_m``). Two candidates at one step are an error, not a guess.
        """
        _check_model_name(name)
        return self._resolve_in(name, [m.id for m in self.list_models()])

    def _resolve_in(self, name: str, ids: list[str]) -> str:
        """:meth:`resolve_model` within one model list: a caller holding a list gets an
        id from that list, not from a newer one fetched in between."""
        if name in ids:
            return name
        for normal in _MODEL_NAME_RULES:
            wanted = normal(name)
            matches = [i for i in ids if normal(i) == wanted]
            if len(matches) == 1:
                return matches[0]
            if matches:
                raise ModelNotFoundError(
                    f"model {_shown(name)} is ambiguous: it matches "
                    f"{self._redactor.ids(matches)}; pass one of these ids",
                    code="model_not_found",
                )
        raise self._model_missing(name, ids)

    def load_model(
        self,
        model: str,
        *,
        context_length: int | None = None,
        eval_batch_size: int | None = None,
        flash_attention: bool | None = None,
        num_experts: int | None = None,
        offload_kv_cache_to_gpu: bool | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
        extra_body: Mapping[str, Any] | None = None,
        **unknown: Any,
    ) -> LoadedModel:
        """Load a model now (LM Studio 0.4+), instead of on its first request.

        Args:
            model: the model to load, an LLM or an embedding model.
            context_length: tokens the model considers.
            eval_batch_size: prompt tokens processed together (llama.cpp engine).
            flash_attention: optimised attention (llama.cpp engine).
            num_experts: experts used by a mixture-of-experts model.
            offload_kv_cache_to_gpu: keep the KV cache in GPU memory.
            timeout: seconds to wait for the answer; loading can take minutes.
            deadline: seconds the whole call may take.
            extra_body: more fields, sent as given (a new option, say); any other
                keyword is a ValueError naming the options there are.

        Returns the instance and ``load_config``, the settings LM Studio applied.
        These are the options LM Studio's load endpoint documents; an idle
        ``ttl`` belongs to models loaded just in time: pass it to :meth:`chat`.
        """
        _check_model_name(model)
        options = _load_options(
            context_length=context_length,
            eval_batch_size=eval_batch_size,
            flash_attention=flash_attention,
            num_experts=num_experts,
            offload_kv_cache_to_gpu=offload_kv_cache_to_gpu,
            **unknown,
        )
        options["echo_load_config"] = True
        payload = _merge_options({"model": model}, options, {}, extra_body)
        # No retries: after a proxy's 502/504 the load may be running, and a second
        # request would load a second instance.
        body = self._native(
            "/api/v1/models/load",
            payload,
            timeout,
            "loading models over HTTP",
            retries=0,
            deadline=deadline,
        )
        self.clear_cache()
        instance_id = None
        if isinstance(body, dict):  # an early 0.4 draft of the docs says model_instance_id
            instance_id = body.get("instance_id") or body.get("model_instance_id")
        if not isinstance(instance_id, str):
            raise MalformedResponseError(
                f"model load: no instance_id in {self._redactor.quote(body)}"
            )
        config = body.get("load_config")
        return LoadedModel(
            instance_id,
            _float_or_none(body.get("load_time_seconds")),
            raw=body,
            load_config=config if isinstance(config, dict) else None,
        )

    def ensure_loaded(
        self, model: str, *, timeout: float | None = None, **load_options: Any
    ) -> LoadedModel:
        """A loaded instance of ``model``, loading one only when none is loaded, or
        none with the ``load_options`` given (another ``context_length``, say).

        With a warm model list and a matching instance, no request is made.
        ``load_options`` are those of :meth:`load_model`.
        """
        _check_model_name(model)
        wanted = _load_options(**load_options)
        models = self._models(None)
        resolved = self._resolve_in(model, [m.id for m in models])
        known = next(m for m in models if m.id == resolved)
        for instance in _loaded_instances(known):
            config = instance.get("config")
            config = config if isinstance(config, dict) else {}
            if all(config.get(name) == value for name, value in wanted.items()):
                return LoadedModel(str(instance["id"]), raw=instance, load_config=config or None)
        return self.load_model(known.id, timeout=timeout, **wanted)

    def download_model(
        self,
        model: str,
        *,
        quantization: str | None = None,
        wait: bool = True,
        poll: float = 1.0,
        on_progress: Callable[[DownloadStatus], None] | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> DownloadStatus:
        """Download a model to LM Studio's machine (LM Studio 0.4+).

        Args:
            model: a catalog id (``"qwen/qwen3-4b"``) or a Hugging Face URL.
            quantization: which one of a Hugging Face model (``"Q4_K_M"``).
            wait: poll until the download ends; False returns the first status.
            poll: seconds between status requests.
            on_progress: called with every status, the first and the last included.
            timeout: seconds to wait for each answer.
            deadline: seconds the whole call may take, waiting included.

        The model list is refreshed once a download completes. A ``failed``
        download raises :class:`ModelLoadError`.
        """
        _check_model_name(model)
        if not (isinstance(poll, (int, float)) and not isinstance(poll, bool) and 0 < poll < 3600):
            raise ValueError(f"poll must be a number of seconds above 0, not {_shown(poll)}")
        if on_progress is not None and not callable(on_progress):
            raise ValueError(f"on_progress must be callable, not {_shown(on_progress)}")
        ends = self._limits(timeout, deadline)
        payload = _merge_options({"model": model}, {"quantization": quantization}, {}, None)
        path = "/api/v1/models/download"
        what = "downloading models over HTTP"
        body = self._native(path, payload, timeout, what, retries=0, deadline=ends)
        while True:
            status = self._download_status(body, model)
            if on_progress is not None:
                on_progress(status)
            if status.status in ("completed", "already_downloaded"):
                self.clear_cache()
                return status
            if not wait:
                return status
            self._transport.pause(poll, ends, f"waiting for the download of {model!r}")
            job = urllib.parse.quote(status.job_id or "", safe="")  # a job id is no route
            body = self._request_json("GET", f"{path}/status/{job}", timeout=timeout, deadline=ends)

    def _download_status(self, body: Any, model: str) -> DownloadStatus:
        status = DownloadStatus.from_json(body)
        if status is None or (status.job_id is None and status.status != "already_downloaded"):
            raise MalformedResponseError(
                f"model download: no status and job id in {self._redactor.quote(body)}"
            )
        if status.status == "failed":
            said = body.get("message") or body.get("reason")
            detail = f": {self._redactor.quote(said)}" if said else " (status 'failed')"
            raise ModelLoadError(
                f"downloading {self._redactor.quote(model, ID_LIMIT)!r} failed{detail}",
                body=self._redactor.copy(body),
            )
        return status

    def unload_model(self, instance_id: str) -> None:
        """Unload one loaded instance (its id is in ``ModelInfo.loaded_instances``)."""
        _check_model_name(instance_id, "instance_id")
        payload = {"instance_id": instance_id}
        self._native("/api/v1/models/unload", payload, None, "unloading models over HTTP")
        self.clear_cache()

    def _native(
        self,
        path: str,
        payload: JSONDict,
        timeout: float | None,
        what: str,
        retries: int | None = None,
        deadline: float | _Deadline | None = None,
    ) -> Any:
        try:
            return self._request_json(
                "POST", path, payload, timeout=timeout, retries=retries, deadline=deadline
            )
        except NotFoundError as exc:
            if isinstance(exc, ModelNotFoundError):
                raise
            raise _needs_native_route(exc, path, self._where, what) from exc

    def _model_missing(self, model_id: str, ids: Sequence[str]) -> ModelNotFoundError:
        return ModelNotFoundError(
            f"model {_shown(model_id)} is not on the server; {self._closest(model_id, ids)}",
            code="model_not_found",
        )

    def _closest(self, model_id: str, ids: Sequence[str]) -> str:
        import difflib

        close = difflib.get_close_matches(model_id, ids, n=3, cutoff=0.3)
        if close:
            return f"did you mean {self._redactor.ids(close)}?"
        if ids:
            return f"available: {self._redactor.ids(ids)}"
        return "the server lists no models"

    def _pick_model(
        self, model: str | None, *, embedding: bool = False, ends: _Deadline | None = None
    ) -> str:
        """Explicit model > config.model > the first loaded model of the right kind."""
        if model is not None:
            _check_model_name(model)
            return model
        if self.config.model is not None:
            return self.config.model
        models = self._models(ends)
        fitting = [m for m in models if m.is_embedding == embedding]
        loaded = [m for m in fitting if m.is_loaded]
        if loaded:
            return loaded[0].id
        if models and all(m.state is None for m in models):
            # A plain OpenAI server reports neither type nor state: every listed
            # model is servable, so take the likeliest kind, else the first.
            return (fitting or models)[0].id
        kind = "embedding model" if embedding else "language model"
        downloaded = self._redactor.ids([m.id for m in fitting])
        raise NoModelLoadedError(
            f"no {kind} is loaded at {self._where}"
            + (f" (downloaded: {downloaded})" if downloaded else "")
            + f"; {NoModelLoadedError.hint}"
        )

    # -- generation --------------------------------------------------------
    def chat(
        self,
        messages: Messages,
        *,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        stop: str | Sequence[str] | None = None,
        seed: int | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        response_format: Mapping[str, Any] | None = None,
        json_schema: Mapping[str, Any] | type | None = None,
        schema_name: str | None = None,
        reasoning: str | None = None,
        images: Sequence[Any] | None = None,
        split_think: bool | None = None,
        stats: bool = False,
        timeout: float | None = None,
        deadline: float | None = None,
        extra_body: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> ChatResponse:
        """One chat completion. ``params`` pass through (``top_p``, ``ttl``, ...).

        ``json_schema`` asks for structured output and fills ``reply.parsed``;
        ``reasoning`` (``"off"``, ``"low"``, ``"medium"``, ``"high"``, ``"on"``) sets
        how much a reasoning model thinks, sent as ``reasoning_effort``; ``images``
        (paths, bytes or binary files; PNG, JPEG, GIF or WebP) go with the last user
        message, inlined as data URLs;
        ``stats=True`` uses LM Studio's native route to fill ``reply.stats``.
        """
        ends = self._limits(timeout, deadline)
        payload, expect_json = self._chat_payload(
            messages,
            model,
            params,
            extra_body,
            ends,
            temperature=temperature,
            max_tokens=max_tokens,
            stop=stop,
            seed=seed,
            tools=_check_tools(tools),
            tool_choice=tool_choice,
            response_format=_response_format(response_format, json_schema, schema_name),
            reasoning_effort=_reasoning_effort(reasoning),
            images=images,
        )
        if payload.get("stream"):
            raise ValueError("stream=True: use chat_stream() for a streamed answer")
        started = self._clock()
        body = self._generate("/v1/chat/completions", payload, timeout, ends, native=stats)
        reply = _parse_chat(body, self._split_think(split_think), self._redactor)
        if expect_json and not reply.tool_calls:
            target = json_schema if isinstance(json_schema, type) else None
            reply.parsed = _structured(
                reply.content, reply.reasoning, reply.finish_reason, target, self._redactor
            )
        reply.elapsed = self._clock() - started
        return reply

    def chat_stream(
        self,
        messages: Messages,
        *,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        stop: str | Sequence[str] | None = None,
        seed: int | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        response_format: Mapping[str, Any] | None = None,
        json_schema: Mapping[str, Any] | type | None = None,
        schema_name: str | None = None,
        reasoning: str | None = None,
        images: Sequence[Any] | None = None,
        split_think: bool | None = None,
        include_usage: bool = True,
        timeout: float | None = None,
        deadline: float | None = None,
        extra_body: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> ChatStream:
        """Like :meth:`chat`, token by token. The request is sent before this
        returns, so connection and HTTP errors raise here, not in the loop."""
        ends = self._limits(timeout, deadline)
        payload, expect_json = self._chat_payload(
            messages,
            model,
            params,
            extra_body,
            ends,
            temperature=temperature,
            max_tokens=max_tokens,
            stop=stop,
            seed=seed,
            tools=_check_tools(tools),
            tool_choice=tool_choice,
            response_format=_response_format(response_format, json_schema, schema_name),
            reasoning_effort=_reasoning_effort(reasoning),
            images=images,
        )
        _ask_for_stream(payload, include_usage)
        return ChatStream(
            **self._open_stream("/v1/chat/completions", payload, timeout, ends),
            split_think=self._split_think(split_think),
            expect_json=expect_json,
            parse_as=json_schema if isinstance(json_schema, type) else None,
        )

    def complete(
        self,
        prompt: str,
        *,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        stop: str | Sequence[str] | None = None,
        seed: int | None = None,
        stats: bool = False,
        timeout: float | None = None,
        deadline: float | None = None,
        extra_body: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> CompletionResponse:
        """A raw text completion: the prompt goes to the model without a chat template."""
        ends = self._limits(timeout, deadline)
        payload = self._completion_payload(
            prompt,
            model,
            params,
            extra_body,
            ends,
            temperature=temperature,
            max_tokens=max_tokens,
            stop=stop,
            seed=seed,
        )
        started = self._clock()
        body = self._generate("/v1/completions", payload, timeout, ends, native=stats)
        done = _parse_completion(body, self._redactor)
        done.elapsed = self._clock() - started
        return done

    def complete_stream(
        self,
        prompt: str,
        *,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        stop: str | Sequence[str] | None = None,
        seed: int | None = None,
        include_usage: bool = True,
        timeout: float | None = None,
        deadline: float | None = None,
        extra_body: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> CompletionStream:
        """Like :meth:`complete`, piece by piece."""
        ends = self._limits(timeout, deadline)
        payload = self._completion_payload(
            prompt,
            model,
            params,
            extra_body,
            ends,
            temperature=temperature,
            max_tokens=max_tokens,
            stop=stop,
            seed=seed,
        )
        _ask_for_stream(payload, include_usage)
        return CompletionStream(**self._open_stream("/v1/completions", payload, timeout, ends))

    def embed(
        self,
        input: str | Sequence[str],
        *,
        model: str | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> EmbeddingResponse:
        """Vectors for one text or a list of texts, in input order."""
        texts = [input] if isinstance(input, str) else input
        if not isinstance(texts, (list, tuple)) or not texts:
            raise ValueError("input must be a string or a non-empty list of strings")
        if not all(isinstance(text, str) for text in texts):
            raise ValueError("input must contain only strings")
        ends = self._limits(timeout, deadline)
        payload: JSONDict = {"input": input if isinstance(input, str) else list(texts)}
        payload = self._with_model(_merge_options(payload, {}, {}, extra_body), model, True, ends)
        started = self._clock()
        body = self._generate("/v1/embeddings", payload, timeout, ends)
        result = _parse_embeddings(body, len(texts), self._redactor)
        result.elapsed = self._clock() - started
        return result

    def run_tools(
        self,
        messages: Messages,
        tools: Mapping[str, Callable[..., Any] | tuple[Callable[..., Any], Mapping[str, Any]]],
        *,
        model: str | None = None,
        max_rounds: int = 8,
        on_tool_call: Callable[[str, Any, str], None] | None = None,
        **chat_options: Any,
    ) -> ChatResponse:
        """Let the model call Python functions until it answers in words.

        Args:
            messages: the conversation so far, or one user message as a string.
            tools: names to callables, described from their signatures and
                docstrings (see :func:`tool_schema`), or to ``(callable, schema)``.
            model: the model (default: as for :meth:`chat`).
            max_rounds: requests at most. The last of several offers no tools (and
                no ``tool_choice``), so the model must answer in words with what it
                has, as LM Studio's SDK ``act()`` does; :class:`ToolLoopError` only
                if it still asks (or if the one round of ``max_rounds=1`` asks).
            on_tool_call: called after each tool runs with its name, its
                arguments (the parsed object, or the raw text when it was not
                JSON) and the result sent back.
            chat_options: passed to :meth:`chat` (``temperature``, ...).

        A tool's failure (bad JSON arguments, an unknown name, an exception)
        goes back to the model as the tool's result, so it can correct itself.
        """
        if isinstance(max_rounds, bool) or not isinstance(max_rounds, int) or max_rounds < 1:
            raise ValueError(f"max_rounds must be an integer >= 1, not {max_rounds!r}")
        if on_tool_call is not None and not callable(on_tool_call):
            raise ValueError(f"on_tool_call must be callable, not {_shown(on_tool_call)}")
        functions, schemas = _prepare_tools(tools)
        conversation = _check_messages(messages)
        _with_images(conversation, chat_options.pop("images", None))  # read files once
        last_round = {k: v for k, v in chat_options.items() if k != "tool_choice"}
        for round_number in range(1, max_rounds + 1):
            if round_number < max_rounds or max_rounds == 1:
                reply = self.chat(conversation, model=model, tools=schemas, **chat_options)
                offered = True
            else:  # the last of several: no tools, so the model answers with what it has
                reply = self.chat(conversation, model=model, **last_round)
                offered = False
            if not reply.tool_calls:
                return reply
            if not offered:
                conversation.append(reply.message)
                break
            for number, call in enumerate(reply.tool_calls):
                call["id"] = call.get("id") or f"call_{len(conversation)}_{number}"
            conversation.append(reply.message)
            for call in reply.tool_calls:
                result = _run_tool(functions, call)
                conversation.append({"role": "tool", "tool_call_id": call["id"], "content": result})
                if on_tool_call is not None:
                    on_tool_call(call["function"]["name"], _arguments_of(call), result)
        last = "which offered none" if max_rounds > 1 else "the only one"
        raise ToolLoopError(
            f"the model still asked for tools in round {max_rounds} of max_rounds={max_rounds}, "
            f"{last}; raise max_rounds or make the task smaller",
            conversation,
        )

    # -- LM Studio's native chat (0.4+) ---------------------------------------
    def respond(
        self,
        input: str | Sequence[Mapping[str, Any]],
        *,
        model: str | None = None,
        previous_response_id: str | NativeChatResponse | None = None,
        system_prompt: str | None = None,
        reasoning: str | None = None,
        context_length: int | None = None,
        integrations: Sequence[Any] | None = None,
        store: bool = True,
        images: Sequence[Any] | None = None,
        on_progress: Callable[[NativeEvent], None] | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
        **options: Any,
    ) -> NativeChatResponse:
        """One answer from LM Studio's own chat route, ``/api/v1/chat`` (LM Studio 0.4+).

        Use it over :meth:`chat` for what only this route does: progress while a
        model loads or a long prompt is processed (``on_progress``), LM Studio's
        stats, stateful conversations and server-side tools (MCP).

        Args:
            input: the user's message, or LM Studio's input items.
            model: the model (default: as for :meth:`chat`).
            previous_response_id: continue that conversation: a ``response_id``,
                or the :class:`NativeChatResponse` itself.
            system_prompt: the system prompt.
            reasoning: ``"off"``, ``"low"``, ``"medium"``, ``"high"`` or ``"on"``.
            context_length: load the model with this context, when it loads.
            integrations: LM Studio plugins and ephemeral MCP servers, as documented
                (``{"type": "ephemeral_mcp", "server_label": ..., "server_url": ...}``).
            store: keep the conversation on the server, for ``previous_response_id``.
            images: paths, bytes or binary files, as for :meth:`chat`.
            on_progress: called with each ``model_load.*`` and ``prompt_processing.*``
                event; the answer is then read as a stream.
            timeout: seconds to wait for each read.
            deadline: seconds the whole call may take.
            options: more fields as LM Studio names them (``temperature``, ``top_p``,
                ``top_k``, ``min_p``, ``repeat_penalty``, ``max_output_tokens``).
        """
        if on_progress is not None and not callable(on_progress):
            raise ValueError(f"on_progress must be callable, not {_shown(on_progress)}")
        arguments: JSONDict = {
            "model": model, "previous_response_id": previous_response_id,
            "system_prompt": system_prompt, "reasoning": reasoning,
            "context_length": context_length, "integrations": integrations, "store": store,
            "images": images,
        }  # fmt: skip
        if on_progress is not None:
            stream = self.respond_stream(
                input, timeout=timeout, deadline=deadline, **arguments, **options
            )
            with stream:
                for event in stream:
                    if event.type.startswith(("model_load.", "prompt_processing.")):
                        on_progress(event)
            return stream.response
        ends = self._limits(timeout, deadline)
        payload = self._native_chat_payload(input, arguments, options, ends)
        body = self._native("/api/v1/chat", payload, timeout, "respond()", deadline=ends)
        return _parse_native(body, self._redactor)

    def respond_stream(
        self,
        input: str | Sequence[Mapping[str, Any]],
        *,
        timeout: float | None = None,
        deadline: float | None = None,
        **arguments: Any,
    ) -> NativeChatStream:
        """Like :meth:`respond`, as LM Studio's events arrive: text and reasoning
        deltas, model-load and prompt progress, tool calls; ``response`` at the end."""
        ends = self._limits(timeout, deadline)
        options = {k: arguments.pop(k) for k in list(arguments) if k not in _NATIVE_ARGUMENTS}
        payload = self._native_chat_payload(input, arguments, options, ends)
        payload["stream"] = True
        try:
            opened = self._open_stream("/api/v1/chat", payload, timeout, ends)
        except NotFoundError as exc:
            if isinstance(exc, ModelNotFoundError):
                raise
            raise _needs_native_route(exc, "/api/v1/chat", self._where, "respond()") from exc
        return NativeChatStream(**opened)

    def _native_chat_payload(
        self, input: Any, arguments: Mapping[str, Any], options: JSONDict, ends: _Deadline | None
    ) -> JSONDict:
        """The body of ``/api/v1/chat``, checked before anything is sent."""
        reasoning = arguments.get("reasoning")
        if reasoning is not None:
            _reasoning_effort(reasoning)  # the same names; the native route takes them as is
        previous = arguments.get("previous_response_id")
        if isinstance(previous, NativeChatResponse):
            previous = previous.response_id
            if previous is None:
                raise ValueError("that response has no response_id: it was not stored")
        store = arguments.get("store", True)
        if not isinstance(store, bool):
            raise ValueError(f"store must be True or False, not {_shown(store)}")
        fields = {
            "input": _native_input(input, arguments.get("images")),
            "system_prompt": arguments.get("system_prompt"),
            "reasoning": reasoning,
            "context_length": arguments.get("context_length"),
            "integrations": arguments.get("integrations"),
            "store": store,
            "previous_response_id": previous,
        }
        payload = _merge_options({}, fields, options, None)
        _check_sampling(options.get("temperature"), None)
        return self._with_model(payload, arguments.get("model"), False, ends)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        stream: bool = False,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> Any:
        """Any route of the server, for what this client does not wrap yet (a route
        a new LM Studio adds, say), with what every wrapped call gets: the base URL
        and key, timeouts, retries, the size limit and the error table.

        Args:
            method: the HTTP method, such as ``"GET"`` or ``"POST"``.
            path: the route below the base URL, such as ``"/api/v1/models"``; never
                a whole URL, so the key cannot go to another host.
            json: the body, sent as JSON; None sends none.
            params: the query string, such as ``{"limit": 10}``.
            stream: read server-sent events: returns an :class:`EventStream` of
                ``(event, data)`` pairs instead of the parsed body.
            timeout: seconds to wait for each read (default: the config's).
            deadline: seconds the whole call may take, retries included.

        Returns:
            The parsed JSON body (None for an empty one), or the EventStream.
        """
        if not (isinstance(method, str) and method.isalpha() and method.isascii()):
            raise ValueError(f"method must be an HTTP method such as 'GET', not {_shown(method)}")
        if not isinstance(path, str) or not path.startswith("/") or path.startswith("//"):
            raise ValueError(f"path must be a route such as '/api/v1/models', not {_shown(path)}")
        if any(ch.isspace() for ch in path) or "?" in path or "#" in path:
            raise ValueError(f"path {_shown(path)} must be a bare route: give the query as params=")
        if params is not None and not isinstance(params, Mapping):
            raise ValueError(f"params must be a dict of query fields, not {_shown(params)}")
        if params:
            from urllib.parse import urlencode

            path += "?" + urlencode(params, doseq=True)
        ends = self._limits(timeout, deadline)
        if stream:
            kwargs = self._transport.open_stream(path, json, timeout, ends, method.upper())
            return EventStream(**kwargs)
        return self._transport.request_json(
            method.upper(), path, json, timeout=timeout, deadline=ends, empty_ok=True
        )

    def is_available(self, *, deep: bool = False) -> bool:
        """A quick probe of ``/v1/models``; never raises for a missing server.

        Args:
            deep: also ask a model for one token. Behind a gateway the model list
                answers while every backend is down; only a generation proves
                that a model answers (it may wait for one to load).
        """
        try:
            self._request_json(
                "GET", "/v1/models", timeout=min(self.config.timeout, 5.0), retries=0
            )
            if deep:
                self.chat("Say OK.", max_tokens=1, temperature=0)
        except LMStudioError:
            return False
        return True

    # -- payloads ------------------------------------------------------------
    def _split_think(self, value: bool | None) -> bool:
        return self.config.split_think if value is None else value

    def _chat_payload(
        self,
        messages: Messages,
        model: str | None,
        params: Mapping[str, Any],
        extra_body: Mapping[str, Any] | None,
        ends: _Deadline | None,
        **options: Any,
    ) -> tuple[JSONDict, bool]:
        """The request body, and whether the answer must be JSON."""
        checked = _check_messages(messages)
        _check_sampling(options["temperature"], options["max_tokens"])
        seeing = _with_images(checked, options.pop("images"))
        payload = _merge_options({"messages": checked}, options, params, extra_body)
        payload = self._with_model(payload, model, False, ends)
        if seeing:
            self._check_vision(payload["model"])
        response_format = payload.get("response_format")
        expect_json = isinstance(response_format, Mapping) and (
            response_format.get("type") == "json_schema"
        )
        return payload, expect_json

    def _completion_payload(
        self,
        prompt: str,
        model: str | None,
        params: Mapping[str, Any],
        extra_body: Mapping[str, Any] | None,
        ends: _Deadline | None,
        **options: Any,
    ) -> JSONDict:
        if not isinstance(prompt, str):
            raise ValueError(f"prompt must be a string, not {type(prompt).__name__}")
        _check_sampling(options["temperature"], options["max_tokens"])
        payload = _merge_options({"prompt": prompt}, options, params, extra_body)
        return self._with_model(payload, model, False, ends)

    def _check_vision(self, model: Any) -> None:
        """Images for a model LM Studio lists without vision: BadRequestError before any
        request, the class the server's "does not support images" maps to. Only from a
        warm model list of the native routes: no request is made to find out."""
        models = self._cache.get("models")
        if not models or not isinstance(model, str):
            return
        known = next((m for m in models if m.id == model), None)
        if known is None or known.type is None or ModelCapabilities.of(known).vision:
            return  # unknown, or from /v1/models, which says nothing of vision
        seeing = [m.id for m in models if ModelCapabilities.of(m).vision]
        others = f"; models that do: {self._redactor.ids(seeing)}" if seeing else ""
        raise BadRequestError(
            f"model {self._redactor.quote(model, ID_LIMIT)!r} does not support images "
            f"(LM Studio lists no vision capability for it){others}"
        )

    def _with_model(
        self, body: JSONDict, model: str | None, embedding: bool, ends: _Deadline | None
    ) -> JSONDict:
        """The body with the model first (unless ``extra_body`` named one). When choosing
        one takes a request (the model list), the body is checked to encode before that
        request goes out, and the call's deadline covers it."""
        if "model" in body:
            return body
        if model is None and self.config.model is None:
            _encode(body)
        return {"model": self._pick_model(model, embedding=embedding, ends=ends), **body}

    def _limits(self, timeout: Any, deadline: Any) -> _Deadline | None:
        """Check a call's timeout and start its deadline, before anything is sent."""
        if timeout is not None:
            _check_timeout(timeout)
        return self._transport.deadline(deadline)

    def _generate(
        self,
        path: str,
        payload: JSONDict,
        timeout: float | None,
        deadline: _Deadline | None,
        *,
        native: bool = False,
    ) -> Any:
        """POST a generation; name close model ids when the server knows no such model."""
        if native:  # /v1/chat/completions -> /api/v0/chat/completions: same body, plus stats
            path = "/api/v0" + path[len("/v1") :]
        try:
            body = self._request_json("POST", path, payload, timeout=timeout, deadline=deadline)
        except NotFoundError as exc:
            if native and not isinstance(exc, ModelNotFoundError):
                raise _needs_native_route(exc, path, self._where, "stats=True") from exc
            raise
        answered = body.get("model") if isinstance(body, dict) else None
        note = _substituted(payload.get("model"), answered, self._redactor)
        if note:
            log.info("%s", note)
        return body

    # -- the transport's answers, with what only the client knows ------------
    def _request_json(
        self, method: str, path: str, payload: JSONDict | None = None, **options: Any
    ) -> Any:
        try:
            return self._transport.request_json(method, path, payload, **options)
        except ModelNotFoundError as exc:
            raise self._with_closest_ids(exc, payload) from None
        except BadRequestError as exc:
            hinted = _tool_choice_hint(exc, payload)
            if hinted is exc:
                raise
            raise hinted from None

    def _open_stream(
        self, path: str, payload: JSONDict, timeout: float | None, deadline: _Deadline | None
    ) -> dict[str, Any]:
        try:
            return self._transport.open_stream(path, payload, timeout, deadline)
        except ModelNotFoundError as exc:
            raise self._with_closest_ids(exc, payload) from None
        except BadRequestError as exc:
            hinted = _tool_choice_hint(exc, payload)
            if hinted is exc:
                raise
            raise hinted from None

    def _with_closest_ids(self, error: ModelNotFoundError, payload: JSONDict | None) -> APIError:
        """For a model the server does not know, the closest ids from the (cached) list."""
        model = payload.get("model") if payload else None  # unload names an instance
        if not isinstance(model, str):
            return error
        try:
            ids = [m.id for m in self.list_models()]
        except LMStudioError:
            return error
        detail = self._closest(model, ids)
        return ModelNotFoundError(
            f"{error}; {detail}", status_code=error.status_code, code=error.code, body=error.body
        )


class Chat:
    """A conversation that remembers both sides, for scripts and teaching::

        chat = Chat(client, system="Answer in one sentence.")
        print(chat.send("Name a prime.").content)
        for chunk in chat.stream("And another?"):
            print(chunk.content, end="", flush=True)

    An exchange joins ``messages`` only once the answer is whole: a failed call, or a
    stream left early, leaves the conversation as it was. ``usage`` adds up the
    tokens so far; ``options`` (``model``, ``temperature``, ...) go with every call.
    """

    def __init__(self, client: LMStudioClient, *, system: str | None = None, **options: Any):
        self.client = client
        self.system = system
        self.options = options
        self.messages: list[JSONDict] = []
        self.usage = Usage(0, 0, 0)
        self.reset()

    def reset(self) -> None:
        """Forget the exchanges (the system message stays) and the usage."""
        self.messages = [{"role": "system", "content": self.system}] if self.system else []
        self.usage = Usage(0, 0, 0)

    def send(self, text: str, **options: Any) -> ChatResponse:
        """Ask, wait for the whole answer, and remember both."""
        asked = self._ask(text, options)
        reply = self.client.chat([*self.messages, asked], **{**self.options, **options})
        self._remember(asked, reply)
        return reply

    def stream(self, text: str, **options: Any) -> Generator[ChatChunk, None, None]:
        """Ask, and yield the answer as it arrives; remembered once it is whole."""
        asked = self._ask(text, options)
        with self.client.chat_stream(
            [*self.messages, asked], **{**self.options, **options}
        ) as stream:
            yield from stream
        self._remember(asked, stream.response)

    def _ask(self, text: str, options: JSONDict) -> JSONDict:
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"text must be a non-empty string, not {_shown(text)}")
        asked: list[JSONDict] = [{"role": "user", "content": text}]
        _with_images(asked, options.pop("images", None))  # read once, remembered as sent
        return asked[0]

    def _remember(self, asked: JSONDict, reply: ChatResponse) -> None:
        self.messages += [asked, reply.message]
        if reply.usage is not None:
            self.usage = Usage(
                *(
                    (getattr(self.usage, name) or 0) + (getattr(reply.usage, name) or 0)
                    for name in ("prompt_tokens", "completion_tokens", "total_tokens")
                )
            )


# ============================================================================
# Discovery: finding a server
# ============================================================================


#: Where discover() looks after the configured URL.
DISCOVERY_URLS = (DEFAULT_BASE_URL, "http://127.0.0.1:1234")


DISCOVERY_TTL = 30.0


#: What discover() found per list of URLs and key: the first URL that answers (or
#: None), and the URLs before it that answer only with a key they were not given.
_discovered = TTLCache(DISCOVERY_TTL)

#: What one probe can find: a model list, or a server that wants a key.
_ANSWERS = "answers"
_NEEDS_KEY = "needs a key"


def _discovery_candidates(
    candidates: Iterable[str] | None, environ: Mapping[str, str] | None
) -> tuple[list[str], str | None, str | None]:
    """The root URLs to probe, in order, without repeats; the configured one; its API key."""
    urls = []
    configured = api_key = None
    env = os.environ if environ is None else environ
    names = ENV_VARS["base_url"] + ENV_VARS["api_key"]  # another bad setting must not hide them
    try:
        config = LMStudioConfig.from_env({name: env[name] for name in names if name in env})
        urls.append(config.base_url)
        configured, api_key = config.base_url, config.api_key
    except ConfigError:
        pass  # a bad URL should not stop the search
    urls.extend(DISCOVERY_URLS)
    if isinstance(candidates, str):
        candidates = [candidates]
    if candidates is not None and not isinstance(candidates, Iterable):
        raise ValueError(f"candidates must be a list of URLs, not {_shown(candidates)}")
    for candidate in candidates or ():
        try:
            urls.append(normalize_base_url(candidate))
        except ConfigError:
            continue
    return list(dict.fromkeys(urls)), configured, api_key


#: How much of one probe's answer discover() reads (decompressed): a model list is small.
DISCOVERY_MAX_BYTES = 1024 * 1024


def _probe_answer(url: str, timeout: float, api_key: str | None) -> str | None:
    """What ``url`` says to ``GET /v1/models``: a JSON model list, a 401 to a probe
    without a key, or nothing we know; at most ``timeout`` s and 1 MiB of reading."""
    headers = {"User-Agent": USER_AGENT}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    ends = _Deadline(timeout, time.monotonic)
    try:
        with requests.get(
            url + "/v1/models",
            headers=headers,
            timeout=(timeout, timeout),
            stream=True,
            proxies=_proxies_for(url, None),
        ) as response:
            if response.status_code == 401 and not api_key:
                return _NEEDS_KEY
            if response.status_code != 200:
                return None
            data = _read_up_to(response, DISCOVERY_MAX_BYTES, ends, timeout)
        body = _loads(data, "the model list", _NO_SECRETS)
    except (requests.RequestException, LMStudioError):
        return None
    if isinstance(body, dict) and not body.get("error") and isinstance(body.get("data"), list):
        return _ANSWERS
    return None


def _probe(url: str, timeout: float, api_key: str | None) -> str | None:
    """One probe with a hard limit: a server that sends its headers a byte at a time
    could hold requests past any read timeout, so the probe runs in a thread that
    is left behind (it ends at its own timeouts) once ``timeout`` has passed."""
    answer: list[str | None] = []

    def probe() -> None:
        try:
            answer.append(_probe_answer(url, timeout, api_key))
        except Exception:  # a URL urllib3 cannot parse, say: not a server, and no traceback
            answer.append(None)

    worker = threading.Thread(
        target=probe,
        name="lmstudio-discover",
        daemon=True,
    )
    worker.start()
    worker.join(timeout)
    return answer[0] if answer else None


def _survey(
    candidates: Iterable[str] | None, timeout: float, environ: Mapping[str, str] | None
) -> tuple[str | None, tuple[str, ...]]:
    """The first URL that answers, and those before it that want a key.

    The key goes only to the configured base URL: a candidate is another
    machine, and may not be the user's.
    """
    seconds = _check_timeout(timeout)
    urls, configured, api_key = _discovery_candidates(candidates, environ)

    def look() -> tuple[str | None, tuple[str, ...]]:
        locked: list[str] = []
        for url in urls:
            answer = _probe(url, seconds, api_key if url == configured else None)
            if answer == _ANSWERS:
                return url, tuple(locked)
            if answer == _NEEDS_KEY:
                log.info("a server at %s answers only with an API key", _without_password(url))
                locked.append(url)
        return None, tuple(locked)

    # the key changes the answer, so it is part of the cache key (as a digest: no copy kept)
    key = hashlib.sha256((api_key or "").encode()).hexdigest()
    return _discovered.get_or_load("\n".join((key, *urls)), look)


def discover(
    candidates: Iterable[str] | None = None,
    *,
    timeout: float = 0.5,
    environ: Mapping[str, str] | None = None,
) -> str | None:
    """The root URL of the first LM Studio server that answers, or None.

    Probes the configured base URL, then ``localhost:1234`` and ``127.0.0.1:1234``,
    then ``candidates``; a server counts when ``/v1/models`` returns a JSON
    model list. The configured API key is sent to the configured URL only; a
    candidate that answers 401 without it is skipped (and logged at INFO). Each
    probe gets ``timeout`` seconds in all, even from a server that drips one
    byte at a time, so the whole call takes at most ``timeout`` times the
    number of URLs. Results are kept for 30 s per list of URLs and key.
    Never raises for a closed port or a bad candidate.
    """
    return _survey(candidates, timeout, environ)[0]


if TYPE_CHECKING:  # mypy proves that the client is a ModelProvider

    def _is_a_provider(client: LMStudioClient) -> ModelProvider:
        return client


# ============================================================================
# Command line
# ============================================================================


#: The subcommands, what each does, and whether it uses ``--model``; in the order
#: ``--help`` lists them. ``--base-url`` and ``--json`` work with every one.
_COMMANDS = (
    ("models", "list the server's models", False),
    ("health", "check that the server answers", True),
    ("chat", "chat with a model (streams the answer)", True),
    ("complete", "complete raw text, without a chat template", True),
    ("embed", "print the embedding of a text as JSON", True),
    ("load", "load a model now (LM Studio 0.4+)", True),
    ("download", "download a model to LM Studio's machine (LM Studio 0.4+)", False),
    ("unload", "unload a loaded model instance (LM Studio 0.4+)", False),
)


def _count(text: str) -> int:
    """A token or context count on the command line: 1 or more (-1: no limit)."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1 and value != -1:
        raise argparse.ArgumentTypeError(f"must be 1 or more (or -1 for no limit), not {value}")
    return value


def _positive(text: str) -> int:
    """A context length: 1 or more."""
    import argparse

    value = _count(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _temperature(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (_is_finite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def _schema_file(path: str) -> JSONDict:
    """``--json-schema FILE``: a JSON Schema read from a file, checked before any request."""
    import argparse

    try:
        with open(path, encoding="utf-8") as file:
            schema = json.load(file)
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot read {path!r}: {exc.strerror}") from None
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{path!r} is not JSON: {exc}") from None
    if not isinstance(schema, dict):
        raise argparse.ArgumentTypeError(f"{path!r} holds no JSON Schema object")
    return schema


def _text_argument(text: str) -> str:
    import argparse

    if not text.strip():
        raise argparse.ArgumentTypeError("is empty")
    return text


def _add_chat_arguments(chat: Any) -> None:
    chat.add_argument("--system", help="a system message to send first")
    chat.add_argument(
        "--reasoning", choices=tuple(REASONING_EFFORTS), help="how much a reasoning model thinks"
    )
    chat.add_argument(
        "--image", action="append", metavar="FILE", help="an image for the model (repeatable)"
    )
    chat.add_argument("--stats", action="store_true", help="print speed and token counts to stderr")
    chat.add_argument(
        "--mcp",
        action="append",
        metavar="URL",
        help="an MCP server whose tools LM Studio may run (repeatable; LM Studio 0.4+)",
    )
    chat.add_argument(
        "--json-schema",
        type=_schema_file,
        metavar="FILE",
        help="answer in JSON that fits the JSON Schema in FILE",
    )
    chat.add_argument(
        "--show-reasoning", action="store_true", help="print the model's reasoning to stderr"
    )


def _add_command_arguments(commands: Mapping[str, Any]) -> None:
    commands["chat"].add_argument(
        "prompt", type=_text_argument, nargs="?", help="omit it: a session on a terminal, "
        "or the text on standard input",
    )  # fmt: skip
    commands["complete"].add_argument("prompt", type=_text_argument)
    for name in ("chat", "complete"):
        command = commands[name]
        command.add_argument("--max-tokens", type=_count, help="at most this many tokens")
        command.add_argument("--temperature", type=_temperature)
        command.add_argument("--no-stream", action="store_true", help="wait for the whole answer")
    _add_chat_arguments(commands["chat"])
    commands["health"].add_argument(
        "--deep", action="store_true", help="also ask a model for one token"
    )
    commands["embed"].add_argument("text", type=_text_argument)
    commands["load"].add_argument(
        "model_key", metavar="MODEL", nargs="?", help="the model to load (or give --model)"
    )
    commands["load"].add_argument("--context-length", type=_positive)
    commands["unload"].add_argument("instance_id", metavar="INSTANCE_ID", type=_text_argument)
    commands["download"].add_argument("model_key", metavar="MODEL", type=_text_argument)
    commands["download"].add_argument("--quantization", help="of a Hugging Face model: Q4_K_M")
    commands["models"].add_argument(
        "--loaded", action="store_true", help="only the models that are loaded"
    )


def _build_parser() -> Any:
    import argparse

    def add_common(parser: argparse.ArgumentParser, default: Any, model: bool) -> None:
        # On the main parser and on each subcommand, so options go either side of
        # the command; SUPPRESS keeps a subcommand from erasing an earlier value.
        parser.add_argument(
            "--base-url", default=default, help=f"server root (default: {DEFAULT_BASE_URL})"
        )
        if model:
            parser.add_argument("--model", help="model id (default: a loaded one)")
        parser.add_argument(
            "--json", action="store_true", default=default or False, help="print JSON"
        )

    parser = argparse.ArgumentParser(
        prog="lmstudio-provider", description="Talk to LM Studio's local server."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_common(parser, None, model=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands = {}
    for name, what, model in _COMMANDS:
        commands[name] = sub.add_parser(name, help=what, description=what)
        add_common(commands[name], argparse.SUPPRESS, model)
    _add_command_arguments(commands)
    return parser


def _prompt_problem(args: Any) -> str | None:
    """``chat`` without a PROMPT: piped input is the prompt; a terminal is a session."""
    if sys.stdin is None:  # started with stdin closed (0<&-)
        return "chat needs a PROMPT: standard input is closed"
    if sys.stdin.isatty():
        return "chat --json needs a PROMPT: a conversation prints text" if args.json else None
    try:
        args.prompt = sys.stdin.read()  # piped: the whole input is the one prompt
    except UnicodeDecodeError as exc:
        return f"standard input is not {exc.encoding} text ({exc.reason} at byte {exc.start})"
    return None if args.prompt.strip() else "chat needs a PROMPT, or text on standard input"


def _usage_problem(args: Any) -> str | None:
    """What argparse cannot check alone, before any request is sent."""
    if args.base_url is not None:
        try:
            normalize_base_url(args.base_url, source="--base-url")
        except ConfigError as exc:
            return str(exc)
    if args.command == "chat" and args.prompt is None:
        problem = _prompt_problem(args)
        if problem:
            return problem
    if getattr(args, "model", None) is not None:
        try:
            _check_model_name(args.model, "--model")
        except ValueError as exc:
            return str(exc)
    for image in getattr(args, "image", None) or ():  # found before any request
        try:
            _image_part(image, f"--image {image!r}")
        except ValueError as exc:
            return str(exc)
    if args.command == "load":
        if args.model_key is None and args.model is None:
            return "load needs a MODEL (or --model)"
        if None not in (args.model_key, args.model) and args.model_key != args.model:
            return f"load got two models: {args.model_key!r} and --model {args.model!r}"
    return None


def _json_text(value: Any, indent: int | None = None) -> str:
    """``--json`` output. A server's 1e400 reads as infinity and NaN is accepted too, but
    neither is JSON, so whoever reads our output would choke: they are written as null."""
    try:
        try:
            return json.dumps(value, indent=indent, allow_nan=False)
        except ValueError:
            finite = _copy_json(
                value, lambda x: None if x in (math.inf, -math.inf) or x != x else x
            )
            return json.dumps(finite, indent=indent)
    except RecursionError:  # indented output recurses: deep bodies print up to ~900 levels
        raise MalformedResponseError("the answer is nested too deeply to print as JSON") from None


def _print_models(client: LMStudioClient, as_json: bool, loaded: bool = False) -> None:
    models = [m for m in client.list_models() if m.is_loaded or not loaded]
    if as_json:
        print(_json_text([m.raw for m in models], indent=2))
        return
    if not models:
        print("no models (download one in LM Studio or with `lms get`)")
        return
    rows = [("ID", "TYPE", "STATE", "CONTEXT", "QUANT")]
    for m in models:
        context = m.loaded_context_length or m.max_context_length
        rows.append(
            (m.id, m.type or "-", m.state or "-", str(context or "-"), m.quantization or "-")
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def _print_stream(parts: Iterable[tuple[str, str]]) -> None:
    """Text to stdout and reasoning to stderr as they arrive, each ending its line."""
    thinking = False
    try:
        for content, reasoning in parts:
            if reasoning:
                sys.stderr.write(reasoning)
                sys.stderr.flush()
                thinking = True
            if content:
                if thinking:  # the answer starts on a line of its own
                    sys.stderr.write("\n")
                    thinking = False
                sys.stdout.write(content)
                sys.stdout.flush()
    finally:  # also when the stream breaks: the error line must not trail the text
        if thinking:
            sys.stderr.write("\n")
        print(flush=True)


def _native_fits(client: LMStudioClient, args: Any) -> bool:
    """Whether ``chat`` takes LM Studio's native route: when the model list came from
    ``/api/v1/models`` (no request just to find out: picking a model needs that list
    anyway), or ``--mcp`` asks for it; not for what only ``/v1`` does (``--json-schema``)."""
    if args.json_schema is not None:
        return False
    if args.mcp:
        return True
    if args.model is None and client.config.model is None:
        client.list_models()  # to pick a model, as chat_stream would
    return client._models_route == "/api/v1/models"


def _native_parts(events: Iterable[NativeEvent], show_reasoning: bool) -> Iterator[tuple[str, str]]:
    """Text and reasoning for _print_stream; progress drawn on a terminal meanwhile."""
    terminal = sys.stderr.isatty()
    drawn = False
    for event in events:
        if event.progress is not None and terminal:
            what = "loading the model" if event.type.startswith("model_load") else "reading"
            sys.stderr.write(f"\r\x1b[K{what}: {event.progress:.0%}")
            sys.stderr.flush()
            drawn = True
        elif event.text and event.type in ("message.delta", "reasoning.delta"):
            if drawn:  # the answer replaces the progress line
                sys.stderr.write("\r\x1b[K")
                drawn = False
            if event.type == "message.delta":
                yield event.text, ""
            elif show_reasoning:
                yield "", event.text
    if drawn:
        sys.stderr.write("\r\x1b[K")


def _print_stats(
    usage: Usage | None, first_token: float | None, native: NativeStats | None = None
) -> None:
    """``--stats``: LM Studio's own figures when the native route gave them, else the
    token counts and what this client measured."""
    if native is not None:
        line = (
            f"stats: {native.input_tokens} tokens in, {native.total_output_tokens} out, "
            f"{native.tokens_per_second} tokens/s, first token after "
            f"{native.time_to_first_token_seconds} s"
        )
        if native.model_load_time_seconds is not None:
            line += f", model loaded in {native.model_load_time_seconds} s"
    else:
        counts = "no token counts"
        if usage is not None:
            counts = f"{usage.prompt_tokens} tokens in, {usage.completion_tokens} out"
        first = f"{first_token:.3f} s" if first_token is not None else "-"
        line = f"stats: {counts}, first token after {first} (measured here)"
    print(line, file=sys.stderr)


def _native_chat(client: LMStudioClient, args: Any) -> str | None:
    """The answer through ``/api/v1/chat``: a progress line while a model loads or a long
    prompt is processed (on a terminal), then the text; stored nowhere (``store: false``)."""
    servers = [
        {"type": "ephemeral_mcp", "server_label": f"mcp{n + 1}", "server_url": url}
        for n, url in enumerate(args.mcp or ())
    ]
    stream = client.respond_stream(
        args.prompt,
        model=args.model,
        system_prompt=args.system,
        reasoning=args.reasoning,
        images=args.image,
        integrations=servers or None,
        store=False,
        max_output_tokens=args.max_tokens,
        temperature=args.temperature,
    )
    with stream:
        _print_stream(_native_parts(stream, args.show_reasoning))
    reply = stream.response
    if args.stats:
        _print_stats(None, None, reply.stats)
    return reply.model_instance_id


def _run_generation(client: LMStudioClient, args: Any) -> str | None:
    """Print the answer; returns the model that gave it, as the server says."""
    options = {"model": args.model, "max_tokens": args.max_tokens, "temperature": args.temperature}
    if args.command == "chat" and not (args.json or args.no_stream) and _native_fits(client, args):
        return _native_chat(client, args)
    if args.command == "chat":
        options["reasoning"] = args.reasoning
        options["images"] = args.image
        options["json_schema"] = args.json_schema
        messages: list[JSONDict] = [{"role": "user", "content": args.prompt}]
        if args.system:
            messages.insert(0, {"role": "system", "content": args.system})
        if args.json or args.no_stream:
            reply = client.chat(messages, **options)
            if args.json:
                print(_json_text(reply.raw, indent=2))
                return reply.model
            if args.show_reasoning and reply.reasoning:
                print(reply.reasoning, file=sys.stderr)
            print(reply.content)
            return reply.model
        with client.chat_stream(messages, **options) as stream:
            _print_stream((c.content, c.reasoning if args.show_reasoning else "") for c in stream)
        if args.stats:
            _print_stats(stream.response.usage, stream.time_to_first_token)
        return stream.response.model
    if args.json or args.no_stream:
        done = client.complete(args.prompt, **options)
        print(_json_text(done.raw, indent=2) if args.json else done.text)
        return done.model
    with client.complete_stream(args.prompt, **options) as pieces:
        _print_stream((piece.text, "") for piece in pieces)
    return pieces.response.model


def _find_for_health(client: LMStudioClient) -> str:
    """Where a server answers: the configured URL, or one LM Studio usually uses."""
    url = client.config.base_url
    found, locked = _survey(None, 0.5, None)
    if found is not None:
        return found
    try:  # discovery skips a server that refuses our key (401): that is not "no server"
        client.list_models(refresh=True)
        return url
    except (AuthenticationError, PermissionDeniedError):
        raise
    except LMStudioError:
        pass
    if locked:
        raise AuthenticationError(
            f"a server answers at {locked[0]} but wants an API key; set LMSTUDIO_API_KEY "
            f"and LMSTUDIO_BASE_URL={locked[0]} (the key goes only to the base URL)",
            status_code=401,
        )
    probed = _discovery_candidates(None, None)[0]
    raise ServerUnreachableError(
        f"no LM Studio server answers at {', '.join(probed)}; {START_SERVER_ADVICE}"
    )


def _health(client: LMStudioClient, args: Any) -> None:
    """Say what answers where: LM Studio with its own routes, or an OpenAI-compatible
    server (a gateway, llama.cpp) without them; ``--deep`` asks a model for one token."""
    from dataclasses import replace

    url = client.config.base_url
    found = url if args.base_url is not None else _find_for_health(client)
    report: JSONDict = {"url": _without_password(found)}
    config = client.config
    if found != url:  # another machine, maybe not the user's: it gets no key
        config = replace(config, base_url=found, api_key=None)
    with LMStudioClient(config) as checked:
        models = checked.list_models(refresh=True)
        native = checked._models_route != "/v1/models"
        report["server"] = "lmstudio" if native else "openai-compatible"
        report["models"] = len(models)
        if any(m.state is not None for m in models):
            report["loaded"] = sum(1 for m in models if m.is_loaded)
        if args.deep:
            started = time.monotonic()
            reply = checked.chat("Say OK.", model=args.model, max_tokens=1, temperature=0)
            report["answered_by"] = reply.model
            report["answered_in"] = round(time.monotonic() - started, 3)
    if args.json:
        print(_json_text(report))
        return
    what = "LM Studio" if native else "an OpenAI-compatible server without LM Studio's routes"
    counts = f"{len(models)} model(s)"
    if "loaded" in report:
        counts += f", {report['loaded']} loaded"
    line = f"ok: {what} answers at {report['url']} ({counts})"
    if args.deep:
        line += f"; {report['answered_by'] or 'a model'} answered in {report['answered_in']:g} s"
    if found != url:
        line += f"; set LMSTUDIO_BASE_URL={report['url']} to use it"
    print(line)


def _load(client: LMStudioClient, model: str, context_length: int | None, as_json: bool) -> None:
    """Load a model; on a terminal, count the seconds while LM Studio works."""
    done = threading.Event()
    started = time.monotonic()

    def show_progress() -> None:
        while not done.wait(1.0):
            sys.stderr.write(f"\rloading {model}... {time.monotonic() - started:.0f} s")
            sys.stderr.flush()

    ticker = threading.Thread(target=show_progress, daemon=True)
    if sys.stderr.isatty():
        ticker.start()
    try:
        loaded = client.load_model(model, context_length=context_length)
    finally:
        done.set()
        if ticker.is_alive():
            ticker.join()
            sys.stderr.write("\n")
    if as_json:
        print(_json_text(loaded.raw))
        return
    seconds = loaded.load_time_seconds
    took = f" in {seconds:.1f} s" if seconds is not None else ""
    print(f"loaded {model} as {loaded.instance_id}{took}")


def _size(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        shown = f"{count:.0f}" if unit == "B" else f"{count:.1f}"
        if float(shown) < 1000 or unit == "GB":  # as rounded: 999.6 B is "1.0 KB"
            return f"{shown} {unit}"
        count /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def _progress_line(model: str, status: DownloadStatus) -> str:
    """``downloading M: 42% of 2.3 GB, 8.1 MB/s, 2m10s left``, from what is known."""
    total, done, rate = status.total_size_bytes, status.downloaded_bytes, status.bytes_per_second
    fraction = status.fraction
    line = f"downloading {model}: " + (f"{fraction:.0%}" if fraction is not None else status.status)
    if total:
        line += f" of {_size(total)}"
    if rate and rate > 0:
        line += f", {_size(rate)}/s"
        if total and done is not None and rate >= 1:  # below 1 B/s: no end in sight
            left = max(total - done, 0) / rate
            line += f", {int(left // 60)}m{int(left % 60):02d}s left"
    return line


def _download(client: LMStudioClient, model: str, quantization: str | None, as_json: bool) -> None:
    """Download with progress: one line redrawn on a terminal, one per 10% when piped."""
    terminal = sys.stderr.isatty()
    reported = [-1]  # the last tenth shown when piped; on a terminal, 0 once drawn

    def progress(status: DownloadStatus) -> None:
        if status.status == "already_downloaded" or as_json:
            return
        if terminal:
            sys.stderr.write("\r\x1b[K" + _progress_line(model, status))
            sys.stderr.flush()
            reported[0] = 0
            return
        tenth = int((status.fraction or 0.0) * 10)
        if tenth > reported[0]:
            reported[0] = tenth
            print(_progress_line(model, status), file=sys.stderr, flush=True)

    try:
        status = client.download_model(model, quantization=quantization, on_progress=progress)
    finally:
        if terminal and reported[0] == 0:
            sys.stderr.write("\n")  # end the redrawn line, also when the download failed
    if as_json:
        print(_json_text(status.raw))
    elif status.status == "already_downloaded":
        print(f"{model} is already downloaded")
    else:
        print(f"downloaded {model}")


def _session_command(chat: Chat, text: str) -> None:
    if text == "/reset":
        chat.reset()
        print("(the conversation starts again)", file=sys.stderr)
    elif text.startswith("/model"):
        name = text[len("/model") :].strip()
        if name:
            chat.options["model"] = name
        print(f"(model: {chat.options.get('model') or 'a loaded one'})", file=sys.stderr)
    elif text:
        print(f"(unknown command {text.split()[0]}: /reset, /model NAME, /exit)", file=sys.stderr)


def _session(client: LMStudioClient, args: Any) -> None:
    """``chat`` without a prompt on a terminal: a conversation, answers streamed.
    ``/reset``, ``/model NAME``, ``/exit``; Ctrl-D quits; Ctrl-C stops one answer."""
    options = {"model": args.model, "max_tokens": args.max_tokens,
               "temperature": args.temperature, "reasoning": args.reasoning}  # fmt: skip
    chat = Chat(client, system=args.system, **{k: v for k, v in options.items() if v is not None})
    images = args.image  # they go with the first message
    print("(a conversation: /reset, /model NAME, /exit; Ctrl-D quits)", file=sys.stderr)
    while True:
        try:
            text = input("> ").strip()
        except EOFError:
            print(file=sys.stderr)
            return
        except UnicodeDecodeError as exc:  # the line is lost; the session is not
            print(
                f"lmstudio-provider: error: that line is not {exc.encoding} text", file=sys.stderr
            )
            continue
        except KeyboardInterrupt:  # at the prompt: a fresh line, as a shell does
            print(file=sys.stderr)
            continue
        if text in ("/exit", "/quit"):
            return
        if text.startswith("/") or not text:
            _session_command(chat, text)
            continue
        chunks = chat.stream(text, **({"images": images} if images else {}))
        try:
            _print_stream((c.content, c.reasoning if args.show_reasoning else "") for c in chunks)
            images = None
        except KeyboardInterrupt:
            print("(stopped; that exchange is forgotten)", file=sys.stderr)
        except (LMStudioError, ValueError) as exc:  # the session goes on
            print(f"lmstudio-provider: error: {exc}", file=sys.stderr)
        finally:
            chunks.close()  # ends the request now if the answer was cut short


def _run_command(client: LMStudioClient, args: Any) -> str | None:
    """Run one command; returns the model that answered a generation, else None."""
    if args.command == "models":
        _print_models(client, args.json, args.loaded)
    elif args.command == "download":
        _download(client, args.model_key, args.quantization, args.json)
    elif args.command == "health":
        _health(client, args)
    elif args.command == "load":
        _load(client, args.model_key or args.model, args.context_length, args.json)
    elif args.command == "unload":
        client.unload_model(args.instance_id)
        print(
            _json_text({"unloaded": args.instance_id})
            if args.json
            else f"unloaded {args.instance_id}"
        )
    elif args.command == "embed":
        result = client.embed(args.text, model=args.model)
        print(_json_text(result.raw if args.json else result.embeddings[0]))
        return result.model
    elif args.command == "chat" and args.prompt is None:
        _session(client, args)
    else:
        return _run_generation(client, args)
    return None


def _is_usage_error(exc: Exception) -> bool:
    """The library's ValueError is bad input, found before any request; a ConfigError
    comes from the environment (LMSTUDIO_TIMEOUT=abc), not the command line."""
    return isinstance(exc, ValueError) and not isinstance(exc, (LMStudioError, UnicodeError))


@contextlib.contextmanager
def _lenient_output() -> Iterator[None]:
    """A model can send text no terminal encodes (a lone surrogate from a JSON escape):
    it is shown as "?" while the command runs, instead of ending it half-way."""
    streams = [s for s in (sys.stdout, sys.stderr) if hasattr(s, "reconfigure")]
    before = [s.errors for s in streams]
    for stream in streams:
        stream.reconfigure(errors="replace")
    try:
        yield
    finally:
        for stream, errors in zip(streams, before):
            stream.reconfigure(errors=errors)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit status (1 for errors, 2 for usage)."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
        problem = _usage_problem(args)
        if problem:
            parser.error(problem)
    except SystemExit as exc:  # --help, --version, or a usage error
        return exc.code if isinstance(exc.code, int) else 2
    try:
        with LMStudioClient(base_url=args.base_url) as client, _lenient_output():
            answered = _run_command(client, args)
        asked = getattr(args, "model", None) or client.config.model
        note = _substituted(asked, answered, client._redactor)
        if note:  # llama.cpp answers any name with what it loaded
            print(f"lmstudio-provider: note: {note}", file=sys.stderr)
    except (LMStudioError, ValueError) as exc:
        print(f"lmstudio-provider: error: {exc}", file=sys.stderr)
        return 2 if _is_usage_error(exc) else 1
    except KeyboardInterrupt:
        print(file=sys.stderr)  # end the half-written line
        return 130
    except BrokenPipeError:  # `... | head`: the reader has all it wanted
        with contextlib.suppress(Exception):  # and Python's last flush must not complain
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
