"""The SES transport: SESv2 ``SendEmail`` with the raw MIME message, through boto3.

A module of its own so that boto3 and botocore (about 16 MB per process) are imported only by a
process that sends through SES, not by every worker that loads the provider registry.
"""

from __future__ import annotations

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

from digest.delivery.transport import ConnectionFailure, Failure, SendResult, Throttled, TransientError
from digest.providers.ses import NAME
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
    name = NAME
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
