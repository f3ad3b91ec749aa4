"""``digest serve`` runs the web app under uvicorn: a real process answering real HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from digest.config import Settings
from digest.delivery.sink import free_port


def test_digest_serve_answers_the_sign_up_page(settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DIGEST_VAR_DIR": str(settings.var_dir),
        "DIGEST_DATABASE_URL": settings.database_url,
        "DIGEST_SECRET_KEY": settings.secret_key,
        "DIGEST_SMTP_URL": settings.smtp_url,
    }
    env.pop("DIGEST_BROKER_URL", None)
    digest = Path(sys.executable).parent / "digest"
    proc = subprocess.Popen(
        [str(digest), "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    status, body = response.status, response.read().decode()
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else "digest serve exited"
                assert time.monotonic() < deadline, "digest serve did not answer within 30 s"
                time.sleep(0.2)
        assert status == 200 and "Subscribe" in body
        forged = urllib.request.Request(
            f"http://127.0.0.1:{port}/unsubscribe/forged", data=b"List-Unsubscribe=One-Click", method="POST"
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(forged, timeout=5)
        assert refused.value.code == 400
    finally:
        proc.terminate()
        proc.wait(10)
