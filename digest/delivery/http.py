"""What the HTTP provider transports share: a pooled ``requests.Session`` that retries only when
retrying cannot send a message twice, and the mapping of whole-request failures onto errors.

Retried at this level (the request was certainly not processed): connection failures before the
request went out, and ``429 Too Many Requests`` / ``503 Service Unavailable`` replies. Never retried
here: read timeouts and other 5xx replies, after which the provider may have accepted the messages;
those come back as transient failures and the ledger retries them later with the same Message-ID.
"""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from digest.delivery.transport import PermanentError, TransientError

TIMEOUT = (5.0, 60.0)  # seconds: connect, read
MAX_RETRY_AFTER = 30.0  # seconds: never sleep longer inside a task on a provider's Retry-After


class _BoundedRetry(Retry):
    def get_retry_after(self, response: Any) -> float | None:
        value = super().get_retry_after(response)
        return None if value is None else min(value, MAX_RETRY_AFTER)


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
        raise TransientError(f"{provider}: cannot reach {url}: {exc}") from exc
    except requests.Timeout as exc:
        raise TransientError(f"{provider}: no reply from {url} in time: {exc}") from exc


def raise_for_request(response: requests.Response, provider: str) -> None:
    """Whole-request failures: bad credentials are permanent (an operator must act), throttling and
    server errors transient. Both leave the rows for a later retry; the per-message cases are the
    transport's to map."""
    status = response.status_code
    if status in (401, 403):
        raise PermanentError(f"{provider} refused the API token (HTTP {status}): check DIGEST_API_TOKEN")
    if status == 429 or status >= 500:
        raise TransientError(f"{provider} answered HTTP {status}: {response.text[:300]}")
