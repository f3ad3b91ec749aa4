"""Amazon SES transport: SESv2 ``SendEmail`` with the raw MIME message, through boto3.

SES takes the message as it goes on the wire (``Content.Raw``), so the headers, the List-Unsubscribe
pair and the DKIM signature (if configured here; SES can add its own) arrive as rendered. The
configuration set (``DIGEST_SES_CONFIGURATION_SET``) is where SES publishes bounce and complaint
events to SNS (digest/events/webhooks/ses.py). Credentials come from boto3's usual chain
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, a profile, an instance role); the region from
``DIGEST_SES_REGION``. ``DIGEST_API_URL`` overrides the endpoint (a VPC endpoint, a local stand-in).

Errors map onto failure classes: an account that may not send (suspended, sending paused, an
unverified identity, refused credentials) is the connection's; ``TooManyRequests`` and
``LimitExceeded`` are throttling; ``MessageRejected`` (content) fails that message; 5xx is temporary.
boto3's own retries are off: the ledger and the circuit decide when to try again.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from email.utils import parseaddr
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from digest.config import Settings
from digest.delivery.transport import ConnectionFailure, Failure, SendResult, Throttled, TransientError, Transport
from digest.events.webhooks import ses
from digest.events.webhooks.event import DeliveryEvent
from digest.providers import NotVerified, Provider, ProviderConfigError, WebhookCall
from digest.rendering.message import OutgoingMessage

# Error codes that say the account or its configuration cannot send now, whatever the message.
ACCOUNT_ERRORS = frozenset(
    {
        "AccountSuspendedException",
        "SendingPausedException",
        "MailFromDomainNotVerifiedException",
        "NotFoundException",  # the configuration set does not exist
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "ExpiredTokenException",
    }
)
THROTTLING_ERRORS = frozenset(
    {"TooManyRequestsException", "LimitExceededException", "Throttling", "ThrottlingException"}
)


class SESTransport:
    name = "ses"
    batch_size = 1  # SendEmail takes one message per call
    wants_raw = True  # Content.Raw: the signed MIME bytes, headers (List-Unsubscribe, Feedback-ID) included

    def __init__(
        self,
        region: str,
        *,
        configuration_set: str | None = None,
        endpoint_url: str | None = None,
        client: Any | None = None,
    ):
        self.configuration_set = configuration_set
        # Its own boto3 session: credentials are resolved for this transport, not cached process-wide.
        self.client = client or boto3.session.Session().client(
            "sesv2",
            region_name=region,
            endpoint_url=endpoint_url,
            config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=60),
        )

    def request(self, msg: OutgoingMessage) -> dict[str, Any]:
        """The SendEmail parameters for one message."""
        params: dict[str, Any] = {
            "FromEmailAddress": parseaddr(msg.from_header)[1],
            "Destination": {"ToAddresses": [msg.to_email]},
            "Content": {"Raw": {"Data": msg.raw}},
            "EmailTags": [{"Name": "delivery_id", "Value": str(msg.delivery_id)}],
        }
        if msg.return_path:
            params["FeedbackForwardingEmailAddress"] = msg.return_path
        if self.configuration_set:
            params["ConfigurationSetName"] = self.configuration_set
        return params

    def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        return [self._send_one(msg) for msg in messages]

    def _send_one(self, msg: OutgoingMessage) -> SendResult:
        try:
            answer = self.client.send_email(**self.request(msg))
        except ClientError as exc:
            return _result(msg, exc)
        except (EndpointConnectionError, ConnectTimeoutError, NoCredentialsError) as exc:
            raise ConnectionFailure(f"SES: cannot send: {exc}") from exc
        except (ReadTimeoutError, BotoCoreError) as exc:
            return SendResult.failed(msg.delivery_id, f"SES: {exc}", Failure.TEMPORARY)
        return SendResult.ok(msg.delivery_id, provider_id=str(answer["MessageId"]))

    def probe(self) -> None:
        """``GetAccount``: the credentials work and the account may send."""
        try:
            account = self.client.get_account()
        except ClientError as exc:
            code, status, text = _error(exc)
            if code in THROTTLING_ERRORS or status == 429:
                raise Throttled(f"SES: {code}: {text}") from exc
            if status >= 500:
                raise TransientError(f"SES: {code}: {text}") from exc
            raise ConnectionFailure(f"SES refused the account check: {code}: {text}") from exc
        except BotoCoreError as exc:
            raise ConnectionFailure(f"SES: cannot reach the API: {exc}") from exc
        if not account.get("SendingEnabled", True):
            raise ConnectionFailure("SES: sending is paused for this account")

    def close(self) -> None:
        self.client.close()


def _error(exc: ClientError) -> tuple[str, int, str]:
    error = exc.response.get("Error", {})
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    return str(error.get("Code", "")), status, str(error.get("Message", ""))[:300]


def _result(msg: OutgoingMessage, exc: ClientError) -> SendResult:
    code, status, text = _error(exc)
    error = f"SES {code} (HTTP {status}): {text}"
    if code in ACCOUNT_ERRORS or status in (401, 403):
        failure = Failure.CONNECTION
    elif code == "MessageRejected" and "not verified" in text.lower():
        failure = Failure.CONNECTION  # the sandbox, or an unverified sender identity: no message is to blame
    elif code in THROTTLING_ERRORS or status == 429:
        failure = Failure.THROTTLED
    elif status >= 500:
        failure = Failure.TEMPORARY
    else:
        failure = Failure.MESSAGE
    return SendResult.failed(msg.delivery_id, error, failure)


# ---------------------------------------------------------------------------------------------
# The registration


def _transport(settings: Settings) -> Transport:
    if not settings.ses_region:
        raise ProviderConfigError("DIGEST_TRANSPORT=ses needs DIGEST_SES_REGION (e.g. eu-west-1)")
    return SESTransport(
        settings.ses_region, configuration_set=settings.ses_configuration_set, endpoint_url=settings.api_url
    )


_verifiers: dict[tuple[int, frozenset[str]], ses.SNSVerifier] = {}
_lock = threading.Lock()


def _verifier(call: WebhookCall) -> ses.SNSVerifier:
    """One verifier (and certificate cache) per fetch function and topic list."""
    key = (id(call.fetch), frozenset(call.settings.ses_topic_arns))
    with _lock:
        if key not in _verifiers:
            _verifiers[key] = ses.SNSVerifier(call.fetch, key[1])
        return _verifiers[key]


def _events(call: WebhookCall) -> list[DeliveryEvent]:
    try:
        return ses.read(call.body, _verifier(call))
    except ses.SignatureError as exc:
        raise NotVerified(f"SNS message refused: {exc}") from None


PROVIDER = Provider("ses", _transport, events=_events)
