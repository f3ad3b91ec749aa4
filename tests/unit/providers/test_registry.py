"""The provider registry: every DIGEST_TRANSPORT value is registered once, builds its transport from
Settings (or names the missing variable), and the webhook route finds providers through it."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from digest import providers
from digest.config import TRANSPORTS, Settings
from digest.providers.ses.transport import SESTransport
from digest.wiring import ConfigError, make_transport


def test_every_transport_name_is_registered_once() -> None:
    assert list(providers.providers()) == list(TRANSPORTS)
    assert {n for n, p in providers.providers().items() if p.events is not None} == {"postmark", "sendgrid", "ses"}


@pytest.mark.parametrize(
    ("transport", "missing"),
    [("postmark", "DIGEST_API_TOKEN"), ("sendgrid", "DIGEST_API_TOKEN"), ("ses", "DIGEST_SES_REGION")],
)
def test_a_provider_without_its_settings_names_the_variable(tmp_path: Path, transport: str, missing: str) -> None:
    with pytest.raises(ConfigError, match=missing):
        make_transport(Settings(var_dir=tmp_path, secret_key="k", transport=transport))


def test_ses_is_built_from_its_settings(tmp_path: Path) -> None:
    built = make_transport(
        Settings(var_dir=tmp_path, secret_key="k", transport="ses", ses_region="eu-west-1", ses_configuration_set="cs")
    )
    assert isinstance(built, SESTransport) and built.configuration_set == "cs"
    assert built.client.meta.region_name == "eu-west-1"
    built.close()


def test_the_webhook_route_answers_404_for_providers_that_do_not_call_back(web: TestClient) -> None:
    assert web.post("/webhooks/smtp", content=b"{}").status_code == 404
    assert web.post("/webhooks/nobody", content=b"{}").status_code == 404
    assert web.post("/webhooks/ses/inbound", content=b"{}").status_code == 404
