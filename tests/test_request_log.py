"""Logs: one JSON line per request in production, JSON for the service's own lines, text in development,
and the traceback of every 500."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from tests.conftest import Api
from tests.program import Customer, Program, order_event, t


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"environment": "production"}


def _json_lines(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def _requests(err: str) -> list[dict[str, Any]]:
    return [line for line in _json_lines(err) if line["logger"] == "app.request"]


async def test_each_request_is_one_json_line(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    partner, key = await api.register()
    capsys.readouterr()
    response = await api.client.get(f"/v1/partners/{partner['id']}", headers={**api.bearer(key), "X-Request-ID": "r-1"})
    assert response.status_code == 200
    [line] = _requests(capsys.readouterr().err)
    assert isinstance(line.pop("duration_ms"), float)
    assert isinstance(line.pop("time"), str)
    assert line == {
        "level": "info",
        "logger": "app.request",
        "message": f"GET /v1/partners/{partner['id']} 200",
        "request_id": "r-1",
        "client": "127.0.0.1",
        "method": "GET",
        "route": "/v1/partners/{partner_id}",
        "path": f"/v1/partners/{partner['id']}",
        "status": 200,
        "caller_kind": "partner",
        "partner_id": partner["id"],
        "webhook_id": None,
    }


async def test_refusals_and_unknown_routes_are_logged_with_their_status(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    await api.client.get("/v1/partners", headers={"Authorization": "Bearer qpa_wrong"})
    await api.client.get("/v1/nothing-here")
    await api.client.get("/v1/partners", headers=api.admin)
    lines = _requests(capsys.readouterr().err)
    assert [(line["route"], line["status"], line["caller_kind"]) for line in lines] == [
        ("/v1/partners", 401, None),
        (None, 404, None),
        ("/v1/partners", 200, "admin"),
    ]


async def test_a_webhook_request_names_its_webhook_id(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    program = Program(api)
    customer = Customer.new()
    program.at("2026-03-02T09:00:00Z")
    capsys.readouterr()
    event = order_event(customer, [], placed_at=t("2026-03-01T09:00:00Z"))
    await program.send(event, webhook_id="msg_logged_1")
    [line] = _requests(capsys.readouterr().err)
    assert (line["route"], line["webhook_id"], line["method"]) == ("/v1/webhooks/store", "msg_logged_1", "POST")


async def test_a_500_is_logged_with_its_traceback(
    api: Api, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr("app.routers.partners.partners.get", broken)
    app = api.client._transport.app  # type: ignore[attr-defined]
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        capsys.readouterr()
        response = await client.get(
            "/v1/partners/0b7e6a36-4bd4-4a47-9a3b-4d0f2f3b0a11", headers={**api.admin, "X-Request-ID": "r-500"}
        )
    assert response.status_code == 500 and response.json()["code"] == "internal_error"
    lines = _json_lines(capsys.readouterr().err)
    [error] = [line for line in lines if line["logger"] == "app.errors"]
    assert (error["level"], error["message"], error["request_id"]) == ("error", "unexpected error", "r-500")
    assert error["exception"].startswith("Traceback (most recent call last):")
    assert error["exception"].endswith("RuntimeError: the disk is on fire")
    [request] = [line for line in lines if line["logger"] == "app.request"]
    assert (request["status"], request["request_id"], request["caller_kind"]) == (500, "r-500", "admin")


@pytest.mark.parametrize("settings_overrides", [{"environment": "test"}])
async def test_development_logs_are_plain_text(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    await api.client.get("/health/live", headers={"X-Request-ID": "r-text"})
    [line] = [line for line in capsys.readouterr().err.splitlines() if "app.request" in line]
    assert not line.startswith("{")
    assert line.split(" ", 2)[2] == (
        "INFO app.request [request r-text] GET /health/live 200 client=127.0.0.1 method=GET route=/health/live "
        "path=/health/live status=200 duration_ms=" + line.split("duration_ms=")[1]
    )


@pytest.fixture
def live_settings_overrides() -> dict[str, Any]:
    return {"environment": "production"}


async def test_a_body_broken_off_mid_stream_is_logged_as_a_client_error(
    live_api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    port = int(str(live_api.client.base_url).rsplit(":", 1)[1])
    routes = [
        ("/v1/partners", b"application/json", {}),
        ("/v1/customer-imports/csv", b"text/csv", live_api.admin),
        ("/v1/webhooks/store", b"application/json", {}),
    ]
    capsys.readouterr()
    answers = []
    for path, content_type, headers in routes:
        extra = b"".join(f"{name}: {value}\r\n".encode() for name, value in headers.items())
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode()
            + b"Content-Type: "
            + content_type
            + b"\r\nTransfer-Encoding: chunked\r\n"
            + extra
            + b"\r\n"
        )
        for broken_off in (b"not-a-chunk-size\r\n", b""):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(head + b"8\r\ncompany,\r\n" + broken_off)
            await writer.drain()
            if broken_off:  # bad framing: the server answers 400 itself and closes
                answers.append((await reader.read()).split(b"\r\n", 1)[0])
            writer.close()  # else the client goes away before the end of the body
            await writer.wait_closed()
    await asyncio.sleep(0.3)  # the server notices the last connection's end
    assert answers == [b"HTTP/1.1 400 Bad Request"] * 3
    err = capsys.readouterr().err
    lines = _requests(err)
    assert sorted((line["path"], line["status"]) for line in lines) == sorted(
        (path, 400) for path, _, _ in routes for _ in range(2)
    )
    assert "Traceback" not in err and '"level": "error"' not in err
