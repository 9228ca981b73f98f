"""Security: keys stay secret, requests go only where they should, TLS is verified."""

from __future__ import annotations

import logging
import shutil
import ssl
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

import videojobs
from tests.cases import CASES, VENDORS
from tests.conftest import KEYS, Recorder, sync_client
from tests.servers import free_port, serve
from videojobs.sandbox import Sandbox


def test_keys_never_reach_the_logs_even_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "videojobs"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    sb = Sandbox(api_key=KEYS["vozo"], retry_after=0)
    with serve(sb) as (_, root):
        keys = dict.fromkeys(VENDORS, KEYS["vozo"])
        with videojobs.Client(api_keys=keys, base_urls=sb.base_urls(root), max_retries=1) as client:
            for vendor in VENDORS:
                client.status(f"{vendor}:log-e429x1")
                with pytest.raises(videojobs.NotFoundError):
                    client.status(f"{vendor}:log-e404")
        wrong = dict.fromkeys(VENDORS, "sk-wrong-9999")
        with (
            videojobs.Client(api_keys=wrong, base_urls=sb.base_urls(root)) as bad,
            pytest.raises(videojobs.AuthenticationError),
        ):
            bad.status("duomi:x")
    text = "\n".join(f"{r.name} {r.getMessage()} {r.args!r}" for r in caplog.records)
    assert "HTTP Request: GET" in text  # httpx did log at DEBUG/INFO
    assert "send_request_headers" in text  # and httpcore
    assert KEYS["vozo"] not in text
    assert "sk-wrong-9999" not in text


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirects_are_not_followed_with_the_key(status: int) -> None:
    rec = Recorder(httpx.Response(status, headers={"Location": "https://evil.example.net/steal"}))
    with sync_client(rec, max_retries=3) as client, pytest.raises(videojobs.APIError) as info:
        client.status("ezmodel:t1")
    assert [r.url.host for r in rec.requests] == ["www.ezmodel.cloud"]
    assert info.value.status_code == status


@pytest.mark.parametrize(
    "task_id",
    [
        "../../admin",
        "..%2F..%2Fadmin",
        "x?fault=401",
        "x#frag",
        "//evil.example.net/x",
        "http://evil.example.net/",
        "a/b",
        "%00",
        "é ü",
    ],
)
@pytest.mark.parametrize("vendor", VENDORS)
def test_task_ids_cannot_steer_the_request(vendor: str, task_id: str) -> None:
    rec = Recorder(httpx.Response(200, json=CASES[vendor].states[0].body))
    with sync_client(rec) as client:
        client.status(f"{vendor}:{task_id}")
    (request,) = rec.requests
    base = httpx.URL(CASES[vendor].base_url)
    assert request.url.host == base.host
    assert request.url.query == b""
    assert request.url.fragment == ""
    prefix = CASES[vendor].path.format(id="")
    raw_path = request.url.raw_path.decode()
    assert raw_path.startswith(base.raw_path.decode().rstrip("/") + prefix)
    segment = raw_path[len(base.raw_path.decode().rstrip("/") + prefix) :]
    assert "/" not in segment
    assert "?" not in segment
    assert httpx.URL("http://h/" + segment).path[1:] == task_id  # the id comes back whole


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a self-signed certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.mark.network
def test_tls_is_verified_unless_turned_off(self_signed: tuple[Path, Path]) -> None:
    cert, key = self_signed
    sb = Sandbox()
    port = free_port()
    config = uvicorn.Config(
        sb, host="127.0.0.1", port=port, log_level="critical", ssl_certfile=str(cert), ssl_keyfile=str(key)
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        urls = sb.base_urls(f"https://127.0.0.1:{port}")
        with (
            videojobs.Client(api_keys=sb.api_keys(), base_urls=urls, max_retries=0) as default,
            pytest.raises(videojobs.NetworkError) as info,
        ):
            default.status("vozo:tls")
        assert isinstance(info.value.__cause__, httpx.ConnectError)
        assert "CERTIFICATE_VERIFY_FAILED" in str(info.value.__cause__)
        with videojobs.Client(api_keys=sb.api_keys(), base_urls=urls, verify=False) as insecure:
            assert insecure.status("vozo:tls").vendor == "vozo"
        trusted = ssl.create_default_context(cafile=str(cert))
        with videojobs.Client(api_keys=sb.api_keys(), base_urls=urls, verify=trusted) as pinned:
            assert pinned.status("vozo:tls").vendor == "vozo"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
