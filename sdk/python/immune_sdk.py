"""
Agent Immune SDK for Python (standard library only, Python 3.8+).

Reports an agent's vitals to the Agent Immune control plane and carries its
decisions back: the agent's lifecycle status, a ``quarantined`` flag, a
``guard()`` that raises ``QuarantinedError`` while the agent is contained, and
healing directives handed to ``on_directive`` and acknowledged.

    from immune_sdk import ImmuneReporter

    reporter = ImmuneReporter(agent_id="my-agent", base_url="http://localhost:8090",
                              api_key=os.environ["INGEST_API_KEY"])
    # After each task:
    reporter.report(input_tokens=812, output_tokens=233, latency_ms=450,
                    tool_calls=2, model="gpt-4o", success=True)

report() never blocks: records are queued and a background thread sends them
in batches, retries outages with backoff, and drops (and counts) the oldest
records when its bounded buffer is full. The buffer is flushed at interpreter
exit. See docs/AGENTS.md for the agent-side contract.
"""

from __future__ import annotations

import atexit
import hashlib
import hmac
import json
import logging
import math
import random
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

__all__ = [
    "ImmuneReporter",
    "ImmuneSdkError",
    "QuarantinedError",
    "CONTAINED_STATUSES",
    "verify_signature",
    "system_prompt_hash",
]

__version__ = "0.1.0"

#: States in which the agent should not execute tasks. Probation is not one: the agent runs and is watched.
CONTAINED_STATUSES = frozenset({"quarantined", "pending_approval", "healing", "rejected", "exhausted"})

_AGENT_ID = re.compile(r"^[A-Za-z0-9._:@/-]{1,128}$")
_COUNTS = ("input_tokens", "output_tokens", "token_count", "tool_calls", "retries")
_LABELS = {"model": 128, "provider": 64, "error_type": 128, "prompt_hash": 128}
_LISTS = {"tool_names": 256, "mcp_servers": 64}
_MAX = 1e12
_ACK_ATTEMPTS = 3
_SEEN_DIRECTIVES = 64

log = logging.getLogger("immune_sdk")


class ImmuneSdkError(Exception):
    """Every problem handed to ``on_error``.

    ``kind`` is one of: ``invalid`` (report() got a value the control plane would
    refuse; not queued), ``rejected`` (the control plane refused records with a
    4xx other than 429; dropped), ``overflow`` (buffer full; oldest dropped),
    ``unavailable`` (unreachable, 5xx or 429; records kept and retried),
    ``ack`` (a directive acknowledgement failed or was refused), ``directive``
    (on_directive raised), ``closed`` (report() after close()).
    """

    def __init__(self, kind: str, message: str, status: Optional[int] = None, code: Optional[str] = None, records: int = 0):
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.code = code
        self.records = records


class QuarantinedError(RuntimeError):
    """Raised by ``guard()`` while the control plane holds the agent contained."""

    def __init__(self, agent_id: str, status: str):
        super().__init__(
            "agent '%s' is %s by Agent Immune: stop executing tasks until it is released or put on probation" % (agent_id, status)
        )
        self.agent_id = agent_id
        self.status = status


DirectiveResult = Union[None, bool, str, Dict[str, Any]]


def _ack_body(result: DirectiveResult) -> Dict[str, Any]:
    """None/True = applied, False = not applied, a string = applied with that detail, or {"ok", "detail"}."""
    if result is None or result is True:
        return {"ok": True}
    if result is False:
        return {"ok": False}
    if isinstance(result, str):
        return {"ok": True, "detail": result[:500]}
    if isinstance(result, dict) and isinstance(result.get("ok"), bool):
        body = {"ok": result["ok"]}
        if result.get("detail") is not None:
            body["detail"] = str(result["detail"])[:500]
        return body
    return {"ok": True}


def system_prompt_hash(messages: Any) -> str:
    """First 16 hex chars of SHA-256 of the system (or developer) messages' text, joined by newlines; '' when none.

    Same as the TypeScript SDK's systemPromptHash and the OTLP receiver's hash of gen_ai.system_instructions.
    """
    if not isinstance(messages, list):
        return ""
    parts = []
    for m in messages:
        if isinstance(m, dict) and m.get("role") in ("system", "developer"):
            content = m.get("content")
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):
                parts.append("\n".join(p if isinstance(p, str) else str(p.get("text", "")) if isinstance(p, dict) else "" for p in content))
            else:
                parts.append("")
    if not parts:
        return ""
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:16]


def verify_signature(secret: str, raw_body: Union[bytes, str], headers: Any, now: Optional[float] = None, tolerance: float = 300.0) -> bool:
    """True when a control-URL request was signed by a control plane holding ``secret`` (WEBHOOK_SECRET).

    ``X-Immune-Signature`` is ``sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`` and ``X-Immune-Timestamp``
    must lie within ``tolerance`` seconds of now. Verify the raw body bytes before parsing them.
    ``headers`` is any mapping with ``get`` (case-insensitive ones such as http.server's are fine).
    """
    if not secret:
        return False

    def header(name: str) -> str:
        v = headers.get(name) or headers.get(name.lower()) or headers.get(name.title())
        return v if isinstance(v, str) else ""

    ts = header("X-Immune-Timestamp")
    sig = header("X-Immune-Signature")
    if not ts.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(ts)) > tolerance:
        return False
    body = raw_body.decode("utf-8") if isinstance(raw_body, (bytes, bytearray)) else raw_body
    expected = "sha256=" + hmac.new(secret.encode("utf-8"), ("%s.%s" % (ts, body)).encode("utf-8"), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, sig)


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ImmuneSdkError("invalid", "%s must be a positive number (got %r)" % (name, value))
    return float(value)


def _whole(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ImmuneSdkError("invalid", "%s must be a whole number >= 1 (got %r)" % (name, value))
    return value


def _check_url(name: str, url: str) -> str:
    parsed = urllib.parse.urlparse(url if isinstance(url, str) else "")
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ImmuneSdkError("invalid", "%s must be an http(s) URL (got %r)" % (name, url))
    return url


def _record_error(fields: Dict[str, Any]) -> Optional[str]:
    """Why a record would be refused by the control plane (naming the field), or None."""
    for f in _COUNTS:
        v = fields.get(f)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not v.is_integer()) or v < 0 or v > _MAX:
            return "field '%s' must be a whole number between 0 and 1e12 (got %r)" % (f, v)
    for f in ("latency_ms", "cost", "timestamp"):
        v = fields.get(f)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 or v > _MAX:
            return "field '%s' must be a finite number >= 0 (got %r)" % (f, v)
    for f, limit in _LABELS.items():
        v = fields.get(f)
        if v is not None and (not isinstance(v, str) or len(v) > limit):
            return "field '%s' must be a string of at most %d characters" % (f, limit)
    for f, limit in _LISTS.items():
        v = fields.get(f)
        if v is not None and (not isinstance(v, (list, tuple)) or len(v) > limit or any(not isinstance(s, str) or len(s) > 128 for s in v)):
            return "field '%s' must be a list of at most %d strings of at most 128 characters" % (f, limit)
    if not isinstance(fields.get("success"), bool):
        return "field 'success' must be True or False"
    return None


class _Answer:
    __slots__ = ("status", "body", "retry_after", "network_error")

    def __init__(self, status: int = 0, body: Any = None, retry_after: Optional[float] = None, network_error: Optional[str] = None):
        self.status = status
        self.body = body
        self.retry_after = retry_after
        self.network_error = network_error

    @property
    def ok(self) -> bool:
        return self.network_error is None and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        return self.network_error is not None or self.status == 429 or self.status >= 500

    def describe(self) -> Tuple[str, Optional[str], Optional[int]]:
        """(message, code, index) from an {ok:false, error, code, index} body."""
        if self.network_error is not None:
            return self.network_error, None, None
        b = self.body
        if isinstance(b, dict):
            msg = b.get("error") if isinstance(b.get("error"), str) else json.dumps(b)[:200]
            code = b.get("code") if isinstance(b.get("code"), str) else None
            index = b.get("index") if isinstance(b.get("index"), int) and not isinstance(b.get("index"), bool) else None
            return "HTTP %d: %s" % (self.status, msg), code, index
        text = b if isinstance(b, str) else ""
        return ("HTTP %d: %s" % (self.status, text[:200])) if text else "HTTP %d" % self.status, None, None


class ImmuneReporter:
    """Reports an agent's vitals to Agent Immune and follows its decisions.

    The first seven parameters are the seed prototype's (``api_key`` and ``on_error`` added);
    the rest are keyword-only. Times are in seconds.
    """

    def __init__(
        self,
        agent_id: str,
        base_url: str = "http://localhost:8090",
        agent_type: str = "external",
        model: str = "",
        api_key: Optional[str] = None,
        timeout: float = 5.0,
        on_error: Optional[Callable[[ImmuneSdkError], None]] = None,
        *,
        on_directive: Optional[Callable[[Dict[str, str]], DirectiveResult]] = None,
        on_status: Optional[Callable[[str, Optional[str]], None]] = None,
        control_url: Optional[str] = None,
        provider: Optional[str] = None,
        mcp_servers: Optional[List[str]] = None,
        batch_size: int = 100,
        flush_interval: float = 1.0,
        max_buffer: int = 10000,
        poll_interval: float = 2.0,
        retry_backoff: float = 0.5,
        max_backoff: float = 30.0,
        flush_on_exit: bool = True,
        exit_timeout: float = 3.0,
    ):
        if not isinstance(agent_id, str) or not _AGENT_ID.match(agent_id):
            raise ImmuneSdkError("invalid", "agent_id must be 1-128 characters of A-Z a-z 0-9 . _ : @ / - (got %r)" % (agent_id,))
        self.agent_id = agent_id
        self.agent_type = agent_type
        self.model = model or ""
        self._base = _check_url("base_url", base_url).rstrip("/")
        if control_url is not None:
            _check_url("control_url", control_url)
        if api_key is not None and not isinstance(api_key, str):
            # The seed's fifth positional parameter was timeout; here it is api_key (pass timeout= by name).
            raise ImmuneSdkError("invalid", "api_key must be a string (got %r); pass timeout=... by name" % (api_key,))
        self._api_key = api_key
        self._timeout = _positive("timeout", timeout)
        self._on_error = on_error
        self._on_directive = on_directive
        self._on_status = on_status
        self._control_url = control_url
        self._provider = provider
        self._mcp_servers = list(mcp_servers) if mcp_servers is not None else None
        self._batch_limit = _whole("batch_size", batch_size)
        self._max_buffer = max(_whole("max_buffer", max_buffer), self._batch_limit)
        self._flush_interval = _positive("flush_interval", flush_interval)
        self._poll_interval = _positive("poll_interval", poll_interval)
        self._retry_backoff = _positive("retry_backoff", retry_backoff)
        self._max_backoff = _positive("max_backoff", max_backoff)
        self._exit_timeout = _positive("exit_timeout", exit_timeout)

        self._lock = threading.Condition()
        self._queue: List[Dict[str, Any]] = []
        self._inflight = 0
        self._acks = 0
        self._sent = 0
        self._dropped = 0
        self._failed = 0
        self._directives = 0
        self._failures = 0
        self._retry_at = 0.0
        self._last_send = time.monotonic()
        self._last_contact = 0.0
        self._flush_wanted = False
        self._registered = False
        self._overflowing = False
        self._closed = False
        self._status: Optional[str] = None
        self._seen: List[str] = []

        self._thread = threading.Thread(target=self._run, name="immune-sdk-%s" % agent_id, daemon=True)
        self._thread.start()
        self._atexit = self._flush_at_exit if flush_on_exit else None
        if self._atexit is not None:
            atexit.register(self._atexit)

    # ──────────────────────────── public API ────────────────────────────

    def report(
        self,
        input_tokens: int = 0,
        output_tokens: int = 0,
        latency_ms: float = 0,
        tool_calls: int = 0,
        retries: int = 0,
        success: bool = True,
        cost: float = 0.0,
        model: Optional[str] = None,
        error_type: str = "",
        prompt_hash: str = "",
        *,
        token_count: Optional[int] = None,
        provider: Optional[str] = None,
        tool_names: Optional[List[str]] = None,
        mcp_servers: Optional[List[str]] = None,
        timestamp: Optional[float] = None,
    ) -> bool:
        """Queues one task's vitals. Returns False (and tells on_error) when the record is invalid or the
        reporter is closed. Never raises for bad values, never waits for the network."""
        fields: Dict[str, Any] = {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "latency_ms": latency_ms,
            "tool_calls": tool_calls,
            "retries": retries,
            "success": success,
            "cost": cost,
            "model": model if model is not None else (self.model or None),
            "error_type": error_type,
            "prompt_hash": prompt_hash,
            "token_count": token_count,
            "provider": provider,
            "tool_names": list(tool_names) if tool_names is not None else None,
            "mcp_servers": list(mcp_servers) if mcp_servers is not None else None,
            "timestamp": timestamp if timestamp is not None else time.time(),
        }
        if self._closed:
            with self._lock:
                self._dropped += 1
            self._error("closed", "report() after close(): the record for agent '%s' was not sent" % self.agent_id, records=1)
            return False
        problem = _record_error(fields)
        if problem is not None:
            with self._lock:
                self._dropped += 1
            self._error("invalid", "report() for agent '%s': %s; the record was not queued" % (self.agent_id, problem), records=1)
            return False
        record = {k: (int(v) if k in _COUNTS else v) for k, v in fields.items() if v is not None}
        record["agent_id"] = self.agent_id
        record["agent_type"] = self.agent_type
        with self._lock:
            self._queue.append(record)
            overflow = self._trim_locked()
            if len(self._queue) >= self._batch_limit:
                self._lock.notify_all()
        if overflow:
            self._overflow_error(overflow)
        return True

    @property
    def status(self) -> Optional[str]:
        """Lifecycle status from the latest answer (None before the first)."""
        return self._status

    @property
    def quarantined(self) -> bool:
        """True while the control plane holds the agent contained."""
        return self._status in CONTAINED_STATUSES

    def guard(self) -> None:
        """Raises QuarantinedError while the agent is contained; call it before each task."""
        status = self._status
        if status in CONTAINED_STATUSES:
            raise QuarantinedError(self.agent_id, status)  # type: ignore[arg-type]

    def stats(self) -> Dict[str, int]:
        """{sent, dropped, failed, buffered, directives} since creation (see the TypeScript SDK for the meanings)."""
        with self._lock:
            return {
                "sent": self._sent,
                "dropped": self._dropped,
                "failed": self._failed,
                "buffered": len(self._queue) + self._inflight,
                "directives": self._directives,
            }

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Sends everything buffered (and pending acknowledgements). True when nothing is left; False if
        ``timeout`` seconds passed first (the records stay queued and keep being retried)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._flush_wanted = True
            self._lock.notify_all()
            while self._queue or self._inflight or self._acks:
                if not self._thread.is_alive():
                    return False
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._lock.wait(0.5 if remaining is None else min(remaining, 0.5))
            return True

    def close(self, timeout: float = 5.0) -> None:
        """Flushes (up to ``timeout`` seconds), then stops; what could not be sent is counted as dropped.
        Safe to call twice."""
        if self._closed:
            return
        with self._lock:
            self._retry_at = min(self._retry_at, time.monotonic())
        self.flush(timeout)
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        self._thread.join(timeout=max(self._timeout, 1.0) + 1.0)
        if self._atexit is not None:
            atexit.unregister(self._atexit)
        self._drop_unsent()

    # ──────────────────────────── sending ────────────────────────────

    def _flush_at_exit(self) -> None:
        with self._lock:
            self._retry_at = 0.0  # one last immediate attempt even when backing off: there is no later
        self.flush(self._exit_timeout)
        self._drop_unsent()

    def _drop_unsent(self) -> None:
        with self._lock:
            n = len(self._queue)
            self._dropped += n
            self._queue = []
        if n:
            self._error("unavailable", "%d record(s) of agent '%s' could not be sent in time and were dropped" % (n, self.agent_id), records=n)

    def _run(self) -> None:
        """The sender thread: batches, retries, polls. Only this thread sends vitals."""
        while True:
            with self._lock:
                while True:
                    if self._closed:
                        return
                    now = time.monotonic()
                    due = bool(self._queue) and now >= self._retry_at and (
                        self._flush_wanted or len(self._queue) >= self._batch_limit or now - self._last_send >= self._flush_interval
                    )
                    poll_due = self.quarantined and now - self._last_contact >= self._poll_interval
                    if due or poll_due:
                        break
                    waits = [self._flush_interval, self._poll_interval]
                    if self._retry_at > now:
                        waits.append(self._retry_at - now)
                    self._lock.wait(max(0.005, min(waits)))
            try:
                if due:
                    self._send_all()
                if poll_due:
                    self._poll()
            except Exception as e:  # never let the sender thread die
                log.exception("immune_sdk sender failed: %s", e)
                with self._lock:
                    self._retry_at = time.monotonic() + self._max_backoff

    def _send_all(self) -> None:
        while True:
            with self._lock:
                if not self._queue or time.monotonic() < self._retry_at:
                    if not self._queue:
                        self._flush_wanted = False
                    self._last_send = time.monotonic()
                    self._lock.notify_all()
                    return
            if not self._registered and not self._register():
                return
            with self._lock:
                batch = self._queue[: self._batch_limit]
                del self._queue[: self._batch_limit]
                self._inflight = len(batch)
            answer = self._request("POST", "/api/v1/ingest", batch)
            with self._lock:
                self._inflight = 0
                self._settle_locked(batch, answer)
                self._lock.notify_all()

    def _settle_locked(self, batch: List[Dict[str, Any]], a: _Answer) -> None:
        if a.ok:
            self._sent += len(batch)
            self._recovered_locked()
            self._read_ingest_answer(a.body)
            return
        message, code, index = a.describe()
        if a.retryable:
            self._requeue_locked(batch)
            self._unavailable_locked("ingest %s" % message if a.network_error is None else "cannot reach %s: %s" % (self._base, message), a.retry_after, len(batch), a.status or None, code)
            return
        self._recovered_locked()
        if a.status == 413 and len(batch) > 1:
            # Too large for the server's body limit: halve the batches rather than lose records.
            self._batch_limit = max(1, len(batch) // 2)
            self._requeue_locked(batch)
            return
        if index is not None and 0 <= index < len(batch):
            # The server names the one bad record: drop it, resend the others.
            del batch[index]
            self._dropped += 1
            self._requeue_locked(batch)
            self._error("rejected", "the control plane refused a record of agent '%s' (%s); it was dropped" % (self.agent_id, message), a.status, code, 1)
            return
        self._dropped += len(batch)
        self._error(
            "rejected",
            "the control plane refused %d record(s) of agent '%s' (%s); they were dropped because resending cannot succeed" % (len(batch), self.agent_id, message),
            a.status,
            code,
            len(batch),
        )

    def _register(self) -> bool:
        body: Dict[str, Any] = {"agent_id": self.agent_id, "agent_type": self.agent_type}
        if self.model:
            body["model"] = self.model
        if self._provider is not None:
            body["provider"] = self._provider
        if self._mcp_servers is not None:
            body["mcp_servers"] = self._mcp_servers
        if self._control_url is not None:
            body["control_url"] = self._control_url
        a = self._request("POST", "/api/v1/agents/register", body)
        with self._lock:
            if a.retryable:
                message, code, _ = a.describe()
                self._unavailable_locked("register %s" % message if a.network_error is None else "cannot reach %s: %s" % (self._base, message), a.retry_after, len(self._queue), a.status or None, code)
                return False
            self._registered = True
            if a.ok:
                self._last_contact = time.monotonic()
        if not a.ok:
            message, code, _ = a.describe()
            self._error("rejected", "registration of agent '%s' was refused (%s); vitals are still sent" % (self.agent_id, message), a.status, code)
        return True

    def _requeue_locked(self, batch: List[Dict[str, Any]]) -> None:
        self._queue[0:0] = batch
        overflow = self._trim_locked()
        if overflow:
            self._overflow_error(overflow)

    def _trim_locked(self) -> int:
        """Keeps the buffer bounded by dropping the oldest records; returns how many were dropped if this starts an overflow."""
        excess = len(self._queue) - self._max_buffer
        if excess <= 0:
            self._overflowing = False
            return 0
        del self._queue[:excess]
        self._dropped += excess
        if self._overflowing:
            return 0
        self._overflowing = True
        return excess

    def _overflow_error(self, n: int) -> None:
        self._error("overflow", "the buffer of agent '%s' is full (%d records): dropping the oldest" % (self.agent_id, self._max_buffer), records=n)

    def _unavailable_locked(self, message: str, retry_after: Optional[float], records: int, status: Optional[int], code: Optional[str]) -> None:
        self._failed += 1
        self._failures += 1
        if retry_after is not None:
            delay = retry_after
        else:
            # Exponential backoff with full jitter, so a fleet that lost the control plane does not return in lockstep.
            ceiling = min(self._max_backoff, self._retry_backoff * 2 ** (self._failures - 1))
            delay = max(self._retry_backoff / 2, ceiling * random.random())
        self._retry_at = time.monotonic() + delay
        if self._failures == 1:  # once per outage, not once per retry
            self._error("unavailable", "%s; %d record(s) kept and retried with backoff" % (message, records), status, code, records)

    def _recovered_locked(self) -> None:
        self._failures = 0
        self._retry_at = 0.0
        self._last_contact = time.monotonic()

    def _request(self, method: str, path: str, body: Any = None) -> _Answer:
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode("utf-8")
        req = urllib.request.Request(self._base + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        req.add_header("User-Agent", "agent-immune-python/%s" % __version__)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self._api_key:
            req.add_header("X-API-KEY", self._api_key)
        try:
            with urllib.request.urlopen(req, timeout=self._timeout) as res:
                return _Answer(res.status, _parse(res.read()), _retry_after(res.headers.get("Retry-After")))
        except urllib.error.HTTPError as e:
            try:
                raw = e.read()
            except Exception:
                raw = b""
            return _Answer(e.code, _parse(raw), _retry_after(e.headers.get("Retry-After") if e.headers else None))
        except (urllib.error.URLError, socket.timeout, OSError, ValueError) as e:
            reason = getattr(e, "reason", e)
            return _Answer(network_error=str(reason) or e.__class__.__name__)

    # ──────────────────────────── directives ────────────────────────────

    def _read_ingest_answer(self, body: Any) -> None:
        if not isinstance(body, dict):
            return
        agents = body.get("agents")
        mine = agents.get(self.agent_id) if isinstance(agents, dict) else body
        if isinstance(mine, dict):
            self._apply_state(mine)

    def _apply_state(self, state: Dict[str, Any]) -> None:
        status = state.get("status")
        if isinstance(status, str):
            self._set_status(status)
        d = state.get("directive")
        if not isinstance(d, dict) or not isinstance(d.get("id"), str) or not isinstance(d.get("action"), str) or d["id"] in self._seen:
            return
        self._seen.append(d["id"])
        if len(self._seen) > _SEEN_DIRECTIVES:
            self._seen.pop(0)
        self._directives += 1
        directive = {"id": d["id"], "action": d["action"], "diagnosis": d.get("diagnosis") if isinstance(d.get("diagnosis"), str) else ""}
        if self._on_directive is None:
            # Nothing to apply it: the control plane moves to probation after its acknowledgement timeout.
            return
        self._acks += 1
        try:
            threading.Thread(target=self._run_directive, args=(directive,), name="immune-sdk-directive", daemon=True).start()
        except RuntimeError:  # interpreter shutting down (atexit flush): no new threads; the control plane times the directive out
            self._acks -= 1

    def _set_status(self, status: str) -> None:
        previous = self._status
        if previous == status:
            return
        self._status = status
        if self._on_status is not None:
            try:
                self._on_status(status, previous)
            except Exception:
                log.exception("immune_sdk on_status failed")

    def _run_directive(self, d: Dict[str, str]) -> None:
        """Runs on its own thread so a slow handler never holds up reporting."""
        try:
            try:
                body = _ack_body(self._on_directive(d))  # type: ignore[misc]
            except Exception as e:
                body = {"ok": False, "detail": ("on_directive failed: %s" % e)[:500]}
                self._error("directive", "on_directive for %s (%s) raised: %s; acknowledged as not applied" % (d["action"], d["id"], e))
            self._acknowledge(d, body)
        finally:
            with self._lock:
                self._acks -= 1
                self._lock.notify_all()

    def _acknowledge(self, d: Dict[str, str], body: Dict[str, Any]) -> None:
        path = "/api/v1/agents/%s/directives/%s/ack" % (urllib.parse.quote(self.agent_id, safe=""), urllib.parse.quote(d["id"], safe=""))
        last = ""
        for attempt in range(1, _ACK_ATTEMPTS + 1):
            a = self._request("POST", path, body)
            if a.ok:
                with self._lock:
                    self._last_contact = time.monotonic()
                agent = a.body.get("agent") if isinstance(a.body, dict) else None
                if isinstance(agent, dict) and isinstance(agent.get("status"), str):
                    self._set_status(agent["status"])
                return
            message, code, _ = a.describe()
            if not a.retryable:
                why = (
                    "the directive is no longer pending (superseded by an operator, or its acknowledgement window passed)"
                    if a.status == 404
                    else "refused"
                )
                self._error("ack", "acknowledgement of %s (%s) for agent '%s': %s - %s" % (d["action"], d["id"], self.agent_id, why, message), a.status, code)
                return
            last = message
            if attempt < _ACK_ATTEMPTS:
                time.sleep(min(5.0, self._retry_backoff * 2 ** (attempt - 1)))
        self._error(
            "ack",
            "acknowledgement of %s (%s) for agent '%s' failed after %d attempts (%s); the control plane will judge fresh vitals after its timeout"
            % (d["action"], d["id"], self.agent_id, _ACK_ATTEMPTS, last),
        )

    def _poll(self) -> None:
        """While contained and silent, asks for the status and directive (a stopped agent sends no vitals)."""
        a = self._request("GET", "/api/v1/agents/%s/directive" % urllib.parse.quote(self.agent_id, safe=""))
        with self._lock:
            self._last_contact = time.monotonic()
            if a.ok and isinstance(a.body, dict):
                self._apply_state(a.body)
            elif a.status == 404:
                # The control plane no longer knows the agent (restarted without state): resume; the next report registers again.
                self._status = None
                self._registered = False

    def _error(self, kind: str, message: str, status: Optional[int] = None, code: Optional[str] = None, records: int = 0) -> None:
        err = ImmuneSdkError(kind, message, status, code, records)
        if self._on_error is None:
            log.warning("%s", message)
            return
        try:
            self._on_error(err)
        except Exception:
            log.exception("immune_sdk on_error failed")


def _parse(raw: bytes) -> Any:
    text = raw.decode("utf-8", "replace") if raw else ""
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _retry_after(v: Optional[str]) -> Optional[float]:
    if v is None:
        return None
    try:
        s = float(v)
    except ValueError:
        return None
    return min(s, 300.0) if s >= 0 and math.isfinite(s) else None
