"""Error answers of the pages are pages, in the visitor's language and with the right status; the
machine routes (/api/, the provider webhooks) keep their JSON."""

from __future__ import annotations

from fastapi.testclient import TestClient

from digest.wiring import Services

SPANISH = {"accept-language": "es-ES,es;q=0.9"}


def _is_spanish_page(response, status: int) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-language"] == "es"
    assert '<html lang="es"' in response.text
    return response.text


def test_an_unknown_page_is_a_404_page_in_spanish(web: TestClient) -> None:
    text = _is_spanish_page(web.get("/no-such-page", headers=SPANISH), 404)
    assert "Página no encontrada" in text and "Page not found" not in text
    assert "Ir a la página de inicio" in text
    french = web.get("/no-such-page?lang=fr")
    assert french.status_code == 404 and "Page introuvable" in french.text


def test_a_malformed_address_is_a_422_page_and_a_wrong_method_a_405_page_in_spanish(web: TestClient) -> None:
    text = _is_spanish_page(web.get("/issues/not-a-number", headers=SPANISH), 422)
    assert "Falta algo en la solicitud o no es válido" in text and "int_parsing" not in text
    wrong_method = web.delete("/subscribe", headers=SPANISH)
    text = _is_spanish_page(wrong_method, 405)
    assert "Esta página no se puede usar de este modo" in text and "Method Not Allowed" not in text
    assert "allow" in {k.lower() for k in wrong_method.headers}


def test_an_oversized_form_is_a_413_page_in_spanish(web: TestClient) -> None:
    body = "email=" + "x" * (70 * 1024)
    response = web.post(
        "/subscribe", content=body, headers={**SPANISH, "content-type": "application/x-www-form-urlencoded"}
    )
    text = _is_spanish_page(response, 413)
    assert "Lo que ha enviado es demasiado grande" in text and "request body over the limit" not in text


def test_a_form_without_its_csrf_token_is_a_403_page_in_spanish(web: TestClient) -> None:
    response = web.post("/editor/login?lang=es", data={"email": "ed@example.org", "password": "x" * 12})
    text = _is_spanish_page(response, 403)
    assert "Este formulario ha caducado" in text and "CSRF" not in text


def test_the_api_and_webhooks_keep_json(web: TestClient) -> None:
    missing = web.get("/api/no-such-route", headers=SPANISH)
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/json")
    assert missing.json() == {"detail": "Not Found"}
    big = web.post("/api/summaries", content=b"x", headers={"content-length": str(1 << 40)})
    assert big.status_code == 413 and big.headers["content-type"].startswith("application/json")
    hook = web.get("/webhooks/postmark", headers=SPANISH)
    assert hook.headers["content-type"].startswith("application/json")


def test_a_server_error_is_a_500_page_in_spanish(services: Services) -> None:
    from digest.web.app import create_app

    app = create_app(services)

    def boom() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/boom", boom)
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as client:
        text = _is_spanish_page(client.get("/boom", headers=SPANISH), 500)
    assert "Algo ha fallado por nuestra parte" in text and "boom" not in text
