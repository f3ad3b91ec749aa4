"""What the HTTP provider transports share: a pooled ``requests.Session`` that retries only when
retrying cannot send a message twice, and the mapping of whole-request failures onto errors.

Retried at this level (the request was certainly not processed): connection failures before the
request went out, and ``429 Too Many Requests`` / ``503 Service Unavailable`` replies. Never retried
here: read timeouts and other 5xx replies, after which the provider may have accepted the messages;
those come back as transient failures and the ledger retries them later with the same Message-ID.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Self

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import MaxRetryError
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from digest.delivery.transport import ConnectionFailure, Throttled, TransientError

TIMEOUT = (5.0, 60.0)  # seconds: connect, read
MAX_RETRY_AFTER = 5.0  # seconds: never sleep longer inside a task on a provider's Retry-After


class _BoundedRetry(Retry):
    """Waits inside the call only for short Retry-After values; a longer one ends the call, so the
    transport raises Throttled and every worker holds back (the circuit) instead of this one sleeping."""

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        wait = super().get_retry_after(response) if response is not None else None
        if wait is not None and wait > MAX_RETRY_AFTER:
            # urllib3 hands the response back (raise_on_status is off): the transport throttles.
            raise MaxRetryError(_pool, url or "", None)  # type: ignore[arg-type]
        return super().increment(method, url, response, error, _pool, _stacktrace)


def api_session(headers: dict[str, str], *, retries: int = 3, backoff: float = 0.5) -> requests.Session:
    """A Session with keep-alive, the provider's auth headers and the safe retry policy above."""
    retry = _BoundedRetry(
        total=retries,
        connect=retries,
        read=0,
        other=0,
        status=retries,
        status_forcelist=(429, 503),
        allowed_methods=frozenset({"POST"}),
        backoff_factor=backoff,
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry, pool_connections=1, pool_maxsize=4)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update({"Accept": "application/json", "User-Agent": "digest", **headers})
    return session


def post_json(session: requests.Session, url: str, payload: Any, provider: str) -> requests.Response:
    """POST; raise TransientError for failures where nothing can be said per message."""
    try:
        return session.post(url, json=payload, timeout=TIMEOUT)
    except requests.ConnectionError as exc:
        raise ConnectionFailure(f"{provider}: cannot reach {url}: {exc}") from exc
    except requests.Timeout as exc:
        raise TransientError(f"{provider}: no reply from {url} in time: {exc}") from exc


def raise_for_request(response: requests.Response, provider: str) -> None:
    """Whole-request failures: refused credentials are the account's (ConnectionFailure: the circuit
    opens until an operator or a probe finds them working), throttling asks every worker to wait
    (Throttled, with the provider's Retry-After), server errors are temporary. None of them fails a
    row; the per-message cases are the transport's to map."""
    status = response.status_code
    if status in (401, 403):
        raise ConnectionFailure(
            f"{provider} refused the API token (HTTP {status}): {response.text[:300]} (check DIGEST_API_TOKEN)"
        )
    if status == 429:
        raise Throttled(f"{provider} answered HTTP 429: {response.text[:300]}", retry_after(response))
    if status >= 500:
        raise TransientError(f"{provider} answered HTTP {status}: {response.text[:300]}")


def retry_after(response: requests.Response) -> float | None:
    """The Retry-After header in seconds (delta-seconds or an HTTP date), if there is one."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def probe_get(session: requests.Session, url: str, provider: str) -> None:
    """A cheap authenticated GET that says whether the API and the key work now."""
    try:
        response = session.get(url, timeout=TIMEOUT)
    except requests.RequestException as exc:
        raise ConnectionFailure(f"{provider}: cannot reach {url}: {exc}") from exc
    raise_for_request(response, provider)
    if response.status_code >= 400:
        raise ConnectionFailure(f"{provider} answered HTTP {response.status_code} to {url}: {response.text[:300]}")
