"""Security: keys stay secret, requests go only where they should, TLS is verified."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import logging
import shutil
import socket
import ssl
import string
import subprocess
import sys
import threading
import time
import urllib.parse
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import videojobs
from tests import attacks_keys, hostile
from tests.attacks_keys import FORMS, KEY, shows_key
from tests.cases import CASES, VENDORS, for_task
from tests.clocks import SimClock
from tests.conftest import KEYS, Recorder, sync_client
from tests.servers import free_port, serve
from videojobs._scrub import MIN_SCRUBBABLE, REDACTED, Scrubber
from videojobs.sandbox import Sandbox

DETERMINISTIC = settings(
    max_examples=60, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """httpx, httpcore and videojobs at DEBUG for one test (their levels restored after it)."""
    loggers = [logging.getLogger(name) for name in ("httpx", "httpcore", "videojobs")]
    levels = [logger.level for logger in loggers]
    caplog.set_level(logging.DEBUG)
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    yield caplog
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


def test_keys_never_reach_the_logs_even_at_debug(debug_logs: pytest.LogCaptureFixture) -> None:
    caplog = debug_logs
    sb = Sandbox(api_key=KEYS["vozo"], retry_after=0)
    with serve(sb) as (_, root):
        keys = dict.fromkeys(VENDORS, KEYS["vozo"])
        clock = SimClock()  # the retry after each 429 and rate control's spacing, without sleeping
        with videojobs.Client(api_keys=keys, base_urls=sb.base_urls(root), max_retries=1, clock=clock) as client:
            for vendor in VENDORS:  # before the 429s: after one, rate control spaces a vendor's calls out
                with pytest.raises(videojobs.NotFoundError):
                    client.status(f"{vendor}:log-e404")
            for vendor in VENDORS:
                client.status(f"{vendor}:log-e429x1")
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
    assert len(clock.sleeps) >= len(VENDORS)  # each 429 was retried: its exchange is in the logs too


# --- keys echoed back in every form (tests/attacks_keys.py) ------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_the_oracle_sees_every_form_of_an_echo(form: str) -> None:
    """The attacks' check is not vacuous: it finds the key in every form they echo it in."""
    assert shows_key(FORMS[form](KEY), KEY)
    assert shows_key(f'{{"x": "{FORMS[form](KEY)}"}}'.encode(), KEY)
    assert not shows_key(Scrubber([KEY]).scrub(FORMS[form](KEY)), KEY)


@pytest.mark.parametrize("attack", attacks_keys.ATTACKS)
def test_an_echoed_key_shows_nowhere_a_user_reads(attack: str) -> None:
    """Status, repr, to_dict(), raw, errors and tracebacks, DEBUG logs, the CLI plain, -v and --json."""
    start = time.monotonic()
    result = attacks_keys.run(attack)
    assert result["typed"], result
    assert result["safe"], result
    # A guard against a hang, not the attack's limit: scripts/attacks.py times each attack against
    # ATTACKS in a fresh process; here, on a loaded machine among other tests, three times that.
    assert time.monotonic() - start < attacks_keys.ATTACKS[attack] * 3, result


# keys as a vendor may issue them: printable ASCII without whitespace, the awkward characters likely
AWKWARD = st.text(
    st.sampled_from(string.ascii_letters + string.digits + "-_=/+&<>'\"%.~:;@!*"),
    min_size=MIN_SCRUBBABLE,
    max_size=48,
)
PRINTABLE = st.characters(min_codepoint=0x21, max_codepoint=0x7E)


def _strings(node: Any) -> Iterator[str]:
    """Every string of a decoded JSON document: object keys and values, at any depth."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


@DETERMINISTIC
@given(key=AWKWARD, forms=st.lists(st.sampled_from(sorted(FORMS)), min_size=1, max_size=4), before=st.text(max_size=8))
def test_every_form_of_any_key_is_scrubbed_and_the_json_still_parses(key: str, forms: list[str], before: str) -> None:
    echoes = [FORMS[form](key) for form in forms]
    document = {"status": "failed", "url": f"https://x.example/v?token={echoes[0]}", "nested": {"a": [echoes]}}
    raw = json.dumps(document).encode()
    raw = raw[:-1] + b', "%s": "%s%s"}' % (echoes[-1].encode(), json.dumps(before)[1:-1].encode(), echoes[0].encode())
    scrubbed = Scrubber([key]).scrub_bytes(raw)
    decoded = json.loads(scrubbed)  # never cut an escape in half
    assert not shows_key(scrubbed, key)
    for text in _strings(decoded):
        assert not shows_key(text, key), text
        assert not shows_key(urllib.parse.unquote(text), key), text


@pytest.mark.parametrize("key", ["abc%41defghijklmnop", "%7Eabcdefghijk", "key-%30%31%32-tail"])
def test_a_key_that_holds_a_percent_escape_is_scrubbed_in_every_form(key: str) -> None:
    """Anchors are looked for in the answer as sent too, not only with its escapes resolved: a key
    may itself hold "%41", which resolving would turn into "A"."""
    scrubber = Scrubber([key])
    for name, form in FORMS.items():
        raw = f'{{"message": "bad token {form(key)}"}}'.encode()
        assert not shows_key(scrubber.scrub_bytes(raw), key), name
        assert not shows_key(scrubber.scrub(raw.decode()), key), name


HONEST = [state.body for case in CASES.values() for state in case.states] + [case.error_body for case in CASES.values()]


@DETERMINISTIC
@given(key=st.text(PRINTABLE, min_size=MIN_SCRUBBABLE, max_size=40))
def test_honest_answers_pass_the_scrubber_unchanged(key: str) -> None:
    scrubber = Scrubber([key])
    for body in HONEST:
        for raw in (json.dumps(body).encode(), json.dumps(body, ensure_ascii=True).replace("/", "\\/").encode()):
            assume(not shows_key(raw, key))
            assert scrubber.scrub_bytes(raw) == raw


@DETERMINISTIC
@given(key=st.text(PRINTABLE, min_size=1, max_size=MIN_SCRUBBABLE - 1))
def test_a_key_too_short_to_scrub_never_changes_an_answer(key: str) -> None:
    scrubber = Scrubber([key])
    for body in HONEST:
        raw = json.dumps(body).encode()
        assert scrubber.scrub_bytes(raw) == raw
        assert scrubber.scrub(raw.decode()) == raw.decode()


def test_a_key_too_short_to_scrub_is_used_and_said_once(caplog: pytest.LogCaptureFixture) -> None:
    rec = Recorder(httpx.Response(200, json=CASES["vozo"].states[0].body))
    with caplog.at_level(logging.WARNING, logger="videojobs"):
        for _ in range(2):
            with sync_client(rec, api_keys={"vozo": "dOnE7"}) as client:
                status = client.status("vozo:t")
    assert [r.headers["authorization"] for r in rec.requests] == ["Bearer dOnE7"] * 2
    assert status.vendor_state == CASES["vozo"].states[0].body["status"]
    (warning,) = [r for r in caplog.records if "too short to scrub" in r.getMessage()]
    assert "(length 5)" in warning.getMessage()
    assert "dOnE7" not in warning.getMessage()


def test_a_logged_traceback_is_scrubbed_too(caplog: pytest.LogCaptureFixture) -> None:
    rec = Recorder(httpx.Response(200, json=CASES["vozo"].states[0].body))
    with sync_client(rec, api_keys={"vozo": KEY}) as client, caplog.at_level(logging.DEBUG, logger="videojobs"):
        client.status("vozo:t")  # the vendor's handle, and its key, exist from the first call
        gson = FORMS["Gson-escaped (\\u003d)"](KEY)
        try:
            raise ValueError(f"a callback's error quoting {gson}")
        except ValueError:
            logging.getLogger("videojobs").exception("on_update raised")
    assert REDACTED in caplog.text
    assert not shows_key(caplog.text, KEY)


@DETERMINISTIC
@given(key=AWKWARD, data=st.data())
def test_a_key_cut_short_in_an_exception_is_scrubbed(key: str, data: st.DataObject) -> None:
    """A transport error quotes a line cut short: any MIN_SCRUBBABLE of the key's characters in a
    row goes, in its message, its bytes and the exception behind it."""
    start = data.draw(st.integers(0, len(key) - MIN_SCRUBBABLE))
    piece = key[start : data.draw(st.integers(start + MIN_SCRUBBABLE, len(key)))]
    cause = ValueError(b"line: b'xx" + piece.encode() + b"...'")
    error = videojobs.NetworkError(f"could not parse {piece}...", vendor="vozo")
    error.__cause__ = cause
    Scrubber([key]).scrub_exception(error)
    for text in (str(error), repr(cause.args[0])):
        assert piece not in text, text
        assert REDACTED in text, text


@DETERMINISTIC
@given(key=AWKWARD, data=st.data())
def test_no_piece_of_a_key_in_any_case_survives_in_an_exception(key: str, data: st.DataObject) -> None:
    """Pieces of the key, upper- or lower-cased, among other text: none of its MIN_SCRUBBABLE-
    character runs is left (checked window by window, apart from the scrubber's own search)."""
    parts = data.draw(st.lists(st.one_of(st.text(PRINTABLE, max_size=12), st.just(key)), min_size=1, max_size=6))
    text = "".join(data.draw(st.sampled_from([p, p.upper(), p.lower()])) for p in parts)
    error = videojobs.NetworkError(text, vendor="vozo")
    Scrubber([key]).scrub_exception(error)
    left, folded = error.message.lower(), key.lower()
    windows = {left[i : i + MIN_SCRUBBABLE] for i in range(len(left) - MIN_SCRUBBABLE + 1)}
    assert not any(window in folded for window in windows), error.message


def test_a_character_whose_lower_case_is_longer_does_not_turn_case_off() -> None:
    """``"İ".lower()`` is two characters: the whole text was then compared as it is, and a key
    echoed upper-cased beside one passed."""
    key = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx0123456789"
    assert Scrubber([key]).scrub_all("reason: \u0130 " + key.upper()) == "reason: \u0130 [REDACTED]"


def test_a_logged_traceback_loses_pieces_of_a_key_in_any_case(caplog: pytest.LogCaptureFixture) -> None:
    from videojobs._scrub import LOG_SCRUBBER

    key = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx0123456789"
    LOG_SCRUBBER.add(key)
    try:
        with caplog.at_level(logging.DEBUG, logger="videojobs"):
            try:
                raise RuntimeError(f"vendor said: {key.upper()} / cut {key[:20]}")
            except RuntimeError:
                logging.getLogger("videojobs").warning("sweep failed", exc_info=True)
        shown = caplog.text.lower()
    finally:
        LOG_SCRUBBER.discard(key)
    assert "sweep failed" in shown
    assert key[:20].lower() not in shown
    assert key[8:30].lower() not in shown


def test_pieces_are_found_in_time_linear_in_the_text_whatever_the_keys_length() -> None:
    """A 2,000-character key (a JWT): its pieces' pattern took 0.4 s to compile and a 60 KB text
    0.3 s to scan; 65 keys emptied the pattern cache and each log record rebuilt them."""
    import random

    key = "".join(random.Random(7).choices(string.ascii_letters + string.digits, k=2000))
    text = ("x" * 1000 + key[500:560].upper()) * 60
    scrubber = Scrubber([key])
    counted = _count_calls(scrubber, text)
    # the pieces' set is made once, and the scan makes no call a character: about 2,000 calls
    # here, where compiling a pattern of the key's 1,993 pieces made 220,000
    assert counted < 20_000
    assert key[500:560].upper() not in scrubber.scrub_all(text)


def _count_calls(scrubber: Scrubber, text: str) -> int:
    """Python-level calls made scrubbing ``text`` (a machine-independent measure of the work)."""
    import sys

    calls = 0

    def count(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    sys.setprofile(count)
    try:
        scrubber.scrub_all(text)
    finally:
        sys.setprofile(None)
    return calls


def test_honest_text_in_an_exception_is_kept() -> None:
    error = videojobs.NetworkError("could not reach the vendor: 502 Bad Gateway from proxy sk-other", vendor="vozo")
    Scrubber([KEY, "sk-sandbox-0123456789"]).scrub_exception(error)
    assert str(error) == "vozo: could not reach the vendor: 502 Bad Gateway from proxy sk-other"


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
    rec = Recorder(httpx.Response(200, json=for_task(vendor, CASES[vendor].states[0].body, task_id)))
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


@pytest.fixture
def tls_sandbox(self_signed: tuple[Path, Path]) -> Iterator[tuple[Sandbox, dict[str, str]]]:
    """The sandbox behind TLS with the self-signed certificate, and its base URLs."""
    cert, key = self_signed
    port = free_port()
    sb = Sandbox(file_root=f"https://127.0.0.1:{port}/files")  # the videos, served here too
    config = uvicorn.Config(
        sb, host="127.0.0.1", port=port, log_level="critical", ssl_certfile=str(cert), ssl_keyfile=str(key)
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield sb, sb.base_urls(f"https://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.mark.network
def test_tls_is_verified_unless_turned_off(
    self_signed: tuple[Path, Path], tls_sandbox: tuple[Sandbox, dict[str, str]]
) -> None:
    cert, _ = self_signed
    sb, urls = tls_sandbox
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


@pytest.mark.network
def test_closing_the_client_ends_a_call_reading_over_tls_at_once(self_signed: tuple[Path, Path]) -> None:
    """The plain-TCP twin (test_boundary) is what the close's shutdown fixed; over TLS closing the
    pool already woke the reader. This holds that the shutdown, done on the TLS socket's file
    descriptor under its reading thread, leaves the call ending at once and typed over TLS too.
    The vendor here takes the request and never answers."""
    cert, key = self_signed
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    arrived, release = threading.Semaphore(0), threading.Event()

    def vendor() -> None:
        raw, _ = listener.accept()
        with server_side.wrap_socket(raw, server_side=True) as conn:
            conn.recv(65536)  # the request; no answer
            arrived.release()
            release.wait(6 * hostile.CLOSE_GUARD)

    host = threading.Thread(target=vendor, daemon=True)
    host.start()
    client = videojobs.Client(
        api_keys={"vozo": KEY},
        base_urls={"vozo": f"https://127.0.0.1:{listener.getsockname()[1]}"},
        verify=ssl.create_default_context(cafile=str(cert)),
        request_timeout=600,
        max_retries=0,
    )
    try:
        (ended,) = hostile.closed_mid_calls(client, [lambda: client.status("vozo:t")], arrived)
    finally:
        release.set()
        host.join(10)
        listener.close()
    assert isinstance(ended, videojobs.UsageError)
    assert "was closed while the call was under way" in str(ended)


@pytest.mark.network
def test_the_shared_tls_context_follows_ssl_cert_file(
    self_signed: tuple[Path, Path],
    tls_sandbox: tuple[Sandbox, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """verify=True's context is made once per process and shared (certifi's roots cost 18-28 ms
    to load, once per vendor and file client before), yet still trusts what httpx's would: a
    client made after SSL_CERT_FILE changes, sync or async, trusts the new file."""
    cert, _ = self_signed
    sb, urls = tls_sandbox
    keys = sb.api_keys()
    with (
        videojobs.Client(api_keys=keys, base_urls=urls, max_retries=0) as first,
        pytest.raises(videojobs.NetworkError) as info,
    ):
        first.status("vozo:tls")  # certifi's roots: the shared context now exists
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value.__cause__)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    with videojobs.Client(api_keys=keys, base_urls=urls, max_retries=0) as sync:
        assert sync.status("vozo:tls").vendor == "vozo"

    async def poll() -> str:
        async with videojobs.AsyncClient(api_keys=keys, base_urls=urls, max_retries=0) as client:
            return (await client.status("colossyan:tls")).vendor

    assert asyncio.run(poll()) == "colossyan"
    monkeypatch.delenv("SSL_CERT_FILE")
    with (
        videojobs.Client(api_keys=keys, base_urls=urls, max_retries=0) as again,
        pytest.raises(videojobs.NetworkError),
    ):
        again.status("vozo:tls")


def test_verify_true_shares_one_context_and_false_turns_checks_off() -> None:
    from videojobs._tls import tls_context

    shared = tls_context(True)
    assert tls_context(True) is shared
    assert shared.verify_mode == ssl.CERT_REQUIRED
    assert shared.check_hostname
    insecure = tls_context(False)
    assert insecure is not shared
    assert insecure.verify_mode == ssl.CERT_NONE
    assert not insecure.check_hostname
    own = ssl.create_default_context()
    assert tls_context(own) is own


def test_a_client_of_every_vendor_loads_the_trusted_roots_once() -> None:
    """Each vendor's transport (and before, each one loaded certifi's roots: 18-28 ms of CPU a
    vendor) shares the process's one context for verify=True: at most one new SSLContext."""

    def contexts() -> int:
        return sum(1 for thing in gc.get_objects() if isinstance(thing, ssl.SSLContext))

    before = contexts()
    with videojobs.Client(api_keys=dict.fromkeys(videojobs.known_vendors(), KEY)) as client:
        for vendor in videojobs.known_vendors():
            client.vendor(vendor)
        assert contexts() - before <= 1


def test_a_vendor_reached_over_plain_http_loads_no_roots() -> None:
    """A vendor's transport for an http:// base URL (a sandbox, a loopback stand-in) makes no TLS
    connection, on either face: certifi's roots are not loaded for it (35-40 ms of a 20-job
    wait_all's set-up), nor, on the async face, certifi itself (3 ms; the sync face's httpcore
    imports it with its own modules); an https:// vendor's are. In a fresh interpreter: the tests before may
    have made the shared context already."""
    code = f"""
import asyncio, sys, videojobs
from videojobs import _tls
plain = {{"vozo": "http://127.0.0.1:9", "duomi": "http://localhost:9/api"}}
async def main():
    async with videojobs.AsyncClient(api_keys={{"vozo": "{KEY}"}}, base_urls=plain) as client:
        client.vendor("vozo")
asyncio.run(main())
assert "certifi" not in sys.modules, "certifi imported by the async face for plain HTTP"
with videojobs.Client(api_keys={{"vozo": "{KEY}", "duomi": "{KEY}"}}, base_urls=plain) as client:
    client.vendor("vozo"), client.vendor("duomi")
assert _tls._shared is None, "roots loaded for plain HTTP"
with videojobs.Client(api_keys={{"vozo": "{KEY}"}}, base_urls={{"vozo": "https://127.0.0.1:9"}}) as client:
    client.vendor("vozo")
assert _tls._shared is not None, "no roots for HTTPS"
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:9", "https://127.0.0.1:9"])
def test_a_callers_own_transport_reads_no_environment_proxy(base_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``transport=``, the environment's proxy is the caller's transport's business: one
    httpx cannot use (SOCKS, on a developer's machine) is no error of the client's."""
    monkeypatch.setenv("ALL_PROXY", "socks5://127.0.0.1:1080")
    answer = {"task_id": "t", "status": "processing"}
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=answer))
    with videojobs.Client(api_keys={"vozo": KEY}, base_urls={"vozo": base_url}, transport=transport) as client:
        assert client.status("vozo:t").state is videojobs.State.RUNNING


@pytest.mark.network
def test_the_context_of_a_plain_http_vendor_fails_closed(tls_sandbox: tuple[Sandbox, dict[str, str]]) -> None:
    """What a plain-HTTP vendor's transport gets instead verifies as verify=True does but trusts
    no root: a TLS handshake made with it anyway fails."""
    from videojobs._tls import closed_context

    sb, urls = tls_sandbox
    with (
        videojobs.Client(api_keys=sb.api_keys(), base_urls=urls, max_retries=0, verify=closed_context()) as client,
        pytest.raises(videojobs.NetworkError) as info,
    ):
        client.status("vozo:tls")
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value.__cause__)


def test_a_rewritten_ssl_cert_file_is_read_again(
    self_signed: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shared context is keyed by the file's size and time too: a bundle rotated in place
    (a mounted secret) is trusted by the next client made, as when each client loaded its own."""
    from videojobs._tls import tls_context

    bundle = tmp_path / "roots.pem"
    bundle.write_bytes(self_signed[0].read_bytes())
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    first = tls_context(True)
    assert tls_context(True) is first
    bundle.write_bytes(self_signed[0].read_bytes() + b"\n")
    assert tls_context(True) is not first
    gone = weakref.ref(first)  # and the old one is not kept for ever (one a rotation, in a long-lived worker)
    del first
    gc.collect()
    assert gone() is None


@pytest.mark.parametrize("content", [None, b"not a certificate"])
def test_an_unusable_ssl_cert_file_is_a_configuration_error(
    content: bytes | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SSL_CERT_FILE naming a missing file, or one with no certificate in it: a typed error that
    names the variable when the client first needs TLS (a bare OSError escaped before)."""
    bundle = tmp_path / "roots.pem"
    if content is not None:
        bundle.write_bytes(content)
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    with (
        videojobs.Client(api_keys={"vozo": KEY}, max_retries=0) as client,
        pytest.raises(videojobs.ConfigurationError, match="SSL_CERT_FILE") as info,
    ):
        client.status("vozo:t")
    assert isinstance(info.value.__cause__, OSError | ssl.SSLError)


SECRET = "sk-proj-Qz8SECRETtokenAbCdEf0123456789"


@pytest.mark.parametrize(
    "misplaced",
    [
        lambda: videojobs.Client().status(SECRET),  # a key where the job goes
        lambda: videojobs.Client(api_keys={SECRET: "vozo"}),  # the mapping the wrong way round
        lambda: videojobs.Client(api_keys={"vozo": SECRET}, base_urls={"vozo": SECRET}).status("vozo:t"),
        lambda: videojobs.Client(api_keys={"vozo": SECRET}, base_urls={"vozo": f"ftp://me:{SECRET}@h/x"}).status(
            "vozo:t"
        ),
        lambda: videojobs.Client(api_keys={"vozo": SECRET}, base_urls={"vozo": f"htps://me:Qz8/{SECRET}@h"}).status(
            "vozo:t"
        ),
        lambda: videojobs.Client().status(f"7f3c2a91-b5de:{SECRET}"),  # an id:secret key where the job goes
        lambda: videojobs.Client().status(f"vozo: {SECRET}"),
    ],
    ids=[
        "as a job",
        "as a vendor",
        "as a base URL",
        "in a base URL's password",
        "a password with a slash",
        "an id:secret key",
        "as a task id with a space",
    ],
)
def test_a_key_typed_in_the_wrong_place_is_not_repeated(misplaced: Any) -> None:
    """Each message quoted the value it refused whole: a key put where a job reference, a vendor
    or a base URL goes was repeated to the terminal, the logs, an error tracker."""
    with pytest.raises(videojobs.VideoJobsError) as info:
        misplaced()
    assert "SECRET" not in str(info.value)
    assert any(shown in str(info.value) for shown in ("'... (", "://...'"))  # a glimpse, said to be one


def test_a_refused_base_url_keeps_its_host_when_the_at_sign_is_in_its_query_only() -> None:
    from videojobs._base import shown_url

    assert shown_url("htps://api.vozo.ai/v1?email=a@b") == "'htps://api.vozo.ai/...'"
    assert shown_url(f"htps://me:Qz8/{SECRET}@h/v1") == "'htps://...'"


def test_a_key_typed_where_the_cli_takes_a_job_or_a_base_url_is_not_repeated(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from videojobs._cli import main

    for argv in (
        ["status", SECRET],
        ["status", "--api-key", f"vozo={SECRET}", "--base-url", f"vozo={SECRET}", "vozo:t"],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "SECRET" not in err
        assert "'sk-pro'..." in err


def test_a_key_no_vendor_would_take_is_scrubbed_all_the_same() -> None:
    """A zero-width space pasted after a key in a worker's environment: the scrubber of the
    client's keys (what videojobs.celery reads a failed callback's error through) raised a bare
    UnicodeEncodeError holding the key, and Celery logged it."""
    pytest.importorskip("celery")
    from videojobs.celery import _reason

    pasted = "sk-live-SECRETabcdef1234\u200b"
    with videojobs.Client(environ={"JIMMYAI_API_KEY": pasted}, api_keys={"vozo": b"sk-live-BYTESabcdef1234"}) as client:  # type: ignore[dict-item]
        reason = _reason(RuntimeError(f"the vendor refused {pasted} and sk-live-SECRETabcdef1234"), client)
    assert reason == f"RuntimeError: the vendor refused {REDACTED}\\u200b and {REDACTED}"


def test_a_failed_callbacks_reason_keeps_no_piece_of_a_key_nor_an_upper_cased_one() -> None:
    """A callback's error quoting a key's start ("Incorrect API key provided: sk-...", as vendors
    word it) or the key upper-cased was kept so in the failed callback's record: it was scrubbed
    of the key's forms, not of its pieces (a log line of the same words was)."""
    pytest.importorskip("celery")
    from videojobs.celery import _reason

    key = "sk-live-SECRETabcdef1234-pieces"
    with videojobs.Client(api_keys={"vozo": key}) as client:
        reason = _reason(RuntimeError(f"Incorrect API key provided: {key[:18]}... ({key.upper()})"), client)
    assert "SECRET" not in reason.upper()
    assert reason == f"RuntimeError: Incorrect API key provided: {REDACTED}... ({REDACTED})"


_RUNS_BEFORE_AN_ECHO = r"""
import sys
from videojobs._scrub import Scrubber

for key in ("sk-proj-Qz8SECRETtokenAbCdEf0123456789", "sk-SECRET\\\\cdefgh12", "\\\\SECRET/def%5Cxyz12",
            "cSECRET0123456789abcdef", "\\SECRETkey/abc=12"):
    scrubber = Scrubber([key])
    for run in ("\\", "%5C", "%5c", "%255C", "%255c", "\\%5C", "u005c", key[:6] + "\\" * 2000):
        text = run * ((150_000 if run.endswith("c") else 40_000 if len(run) < 10 else 12_000) // len(run)) + key + run * 10 + "\\u%04x" % ord(key[0]) + key[1:]
        assert "SECRET" not in scrubber.scrub(text), (key, run)  # bytes are scanned by the same pattern
print("ok")
"""


def test_runs_of_backslashes_before_an_echo_are_scanned_in_linear_time() -> None:
    """The pattern backtracked into runs of backslashes (as is or %5C): 24,000 %5C before an
    echo held a status call for 71 s, 2,000 backslashes took the scan 111 s; a key holding a
    backslash of its own let each of them take any share of a run (minutes for a megabyte);
    the c of every %5c began a match (the first letter of every sk- key's base64), and the
    next character's escape read the rest of the run (quadratic).
    Each case is a second or less now; a subprocess with a timeout holds it (were it quadratic
    again, 200 KB of them would take hours)."""
    done = subprocess.run([sys.executable, "-c", _RUNS_BEFORE_AN_ECHO], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


_A_LONG_KEY_ECHOED = r"""
import random, string
from videojobs._scrub import Scrubber

key = "eyJ" + "".join(random.Random(7).choices(string.ascii_letters + string.digits + "-_.", k=30_000))
scrubber = Scrubber([key])
# a URL's plain "&" is no HTML reference: the key as it is still stands for every form
body = '{"message": "invalid token ' + key + '", "code": 401, "docs": "https://x.example/?a=1&b=2"}'
assert key not in scrubber.scrub(body)
assert key.encode() not in scrubber.scrub_bytes(body.encode())
print("ok")
"""


def test_a_long_key_echoed_as_it_is_is_redacted_without_compiling_its_pattern() -> None:
    """A vendor echoing a JWT-sized key (an answer with no backslash and no "%", where only the key
    as it is can stand) compiled the key's pattern first: about a millisecond a character, so
    2,000 characters held a status call (and the event loop) for 3.5 s, 30,000 for a minute.
    Such a text is scrubbed by the key as it is (a subprocess with a timeout holds it)."""
    done = subprocess.run([sys.executable, "-c", _A_LONG_KEY_ECHOED], capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_a_key_holding_a_backslash_is_redacted_in_an_echo_with_neither_backslash_nor_percent() -> None:
    """The plain-echo shortcut took any text without a backslash or a "%" for one where only the
    key as it is can stand; a key's own backslash may be echoed as "u005c" alone (a shell's
    ``read`` without -r strips the escape's backslash), and that echo was left whole."""
    scrubber = Scrubber(["sk-live\\9f3kQ7wZ2pLx"])
    assert scrubber.scrub("invalid key sk-liveu005c9f3kQ7wZ2pLx") == f"invalid key {REDACTED}"
    assert scrubber.scrub_bytes(b"invalid key sk-liveu005c9f3kQ7wZ2pLx") == f"invalid key {REDACTED}".encode()


def test_the_request_headers_an_error_keeps_are_redacted_whatever_record_holds_them() -> None:
    """aiohttp 3.10's RequestInfo is an attrs class (a NamedTuple from 3.11): its Authorization
    stayed in the error behind a NetworkError. A record that cannot be rebuilt is dropped whole."""
    import collections

    import attrs

    @attrs.frozen
    class Info:  # aiohttp 3.10's shape
        url: str
        headers: dict[str, str]

    class Stubborn(collections.namedtuple("Stubborn", "headers")):  # a hostile record
        def _replace(self, **_: object) -> Stubborn:
            raise ValueError("no")

    error = RuntimeError(Info("https://x", {"Authorization": f"Bearer {SECRET}"}), Stubborn({"x": SECRET}), (SECRET,))
    error.request_info = Info("https://x", {"Authorization": "Bearer short"})  # type: ignore[attr-defined]
    Scrubber([SECRET]).scrub_exception(error)
    assert "SECRET" not in repr(error.args)
    assert error.args[0].headers == {"Authorization": REDACTED}
    assert error.args[1:] == (REDACTED, (REDACTED,))
    assert error.request_info.headers == {"Authorization": REDACTED}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "key", ["sk-abcd\\u005cEFGH1234", "sk-abcd\\%5cEFGH1234", "\\%255CSECRET1234", "sk-ab\\\\u005CEF12"]
)
def test_a_key_whose_backslash_is_followed_by_what_an_escape_looks_like_is_scrubbed(key: str) -> None:
    """A key's backslashes matched as one possessive run also took the "u005c" or "%5c" the
    key goes on with, and then found nothing: such a key was not redacted even as is."""
    scrubber = Scrubber([key])
    for echo in (key, json.dumps(key)[1:-1], urllib.parse.quote(key, safe=""), json.dumps(json.dumps(key))):
        assert not shows_key(scrubber.scrub(f'{{"message": "bad token {echo}"}}'), key), echo


def test_a_password_that_holds_a_question_mark_shows_no_host_either() -> None:
    from videojobs._base import shown_url

    assert shown_url(f"htps://me:Qz8?{SECRET}@api.vozo.ai/v1") == "'htps://...'"
    assert shown_url("htps://api.vozo.ai:8443/v1") == "'htps://api.vozo.ai:8443/...'"


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(
    ("vendor", "status", "body"),
    [
        # OpenAI's shape (ezmodel): the message quotes the start of the key it refused
        ("ezmodel", 401, '{"error": {"message": "Incorrect API key provided: START...", "code": "UPPER"}}'),
        ("vozo", 400, '{"code": "UPPER", "message": "token START... is not valid"}'),
        # JimmyAI's envelope: HTTP 200, its code and msg the error
        ("jimmyai", 200, '{"code": "40100", "msg": "key START... refused (UPPER)", "data": null}'),
        ("duomi", 200, "<html>bad token START...</html>"),  # not JSON: the message quotes a snippet
    ],
    ids=["openai-401", "vozo-400", "jimmyai-envelope", "not-json"],
)
def test_a_piece_of_the_key_quoted_in_an_error_answer_is_not_in_the_errors_words(
    mode: str, vendor: str, status: int, body: str
) -> None:
    """A vendor's error quoting two thirds of the key it refused (or all of it upper-cased): the
    error's message and code lose the pieces, as a transport error's words do (the body, whole-key
    scrubbed, stays in ``raw``)."""
    key = KEYS[vendor]
    text = body.replace("START", key[: len(key) * 2 // 3]).replace("UPPER", key.upper())

    def scenario(request: hostile.Request, conn: socket.socket) -> None:
        data = text.encode()
        conn.sendall(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n%s" % (status, len(data), data))

    kwargs: dict[str, Any] = {"api_keys": {vendor: key}, "max_retries": 0, "request_timeout": 5}
    with hostile.hostile(scenario) as url:
        kwargs["base_urls"] = {vendor: url}
        if mode == "sync":
            with videojobs.Client(**kwargs) as client, pytest.raises(videojobs.VideoJobsError) as info:
                client.status(f"{vendor}:t")
        else:

            async def go() -> None:
                async with videojobs.AsyncClient(**kwargs) as client:
                    await client.status(f"{vendor}:t")

            with pytest.raises(videojobs.VideoJobsError) as info:
                asyncio.run(go())
    error = info.value
    assert isinstance(error, (videojobs.APIError, videojobs.MalformedResponseError)), error
    assert REDACTED in error.message
    for words in (str(error), repr(error), error.message, error.code or ""):
        assert not shows_key(words, key), words


@pytest.mark.network
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_video_over_tls_is_saved_whole(
    mode: str, self_signed: tuple[Path, Path], tls_sandbox: tuple[Sandbox, dict[str, str]], tmp_path: Path
) -> None:
    """Over TLS a read hands over one record (16 KiB) whatever is asked: a 3 MB body comes in
    hundreds of reads, the first through h11 and the rest straight off the TLS stream."""
    from videojobs.sandbox._files import sha256_of

    cert, _ = self_signed
    sb, urls = tls_sandbox
    kwargs: dict[str, Any] = {"api_keys": sb.api_keys(), "base_urls": urls,
                              "verify": ssl.create_default_context(cafile=str(cert))}  # fmt: skip
    task = f"tls{mode}-at_done-sz3m"
    if mode == "sync":
        with videojobs.Client(**kwargs) as client:
            job = client.status(f"vozo:{task}")
            got = client.download(job, tmp_path)
    else:

        async def run() -> tuple[videojobs.JobStatus, videojobs.Download]:
            async with videojobs.AsyncClient(**kwargs) as client:
                job = await client.status(f"vozo:{task}")
                return job, await client.download(job, tmp_path)

        job, got = asyncio.run(run())
    assert job.video_urls[0].startswith("https://127.0.0.1:")  # the file comes over TLS too
    assert got.bytes == 3 * 1024 * 1024
    assert got.sha256 == sha256_of(task, got.bytes)
    assert hashlib.sha256(got.path.read_bytes()).hexdigest() == got.sha256  # the bytes on disk are those hashed


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_key_rotated_on_the_typed_client_is_scrubbed_as_the_first_was(mode: str) -> None:
    """A key set on ``.typed``'s httpx client after it was made is sent (the sync lane learns
    headers anew); a vendor echoing it showed it whole in the error, ``raw`` and logs."""
    old, new = "sk-rotate-old-0123456789abcdef", "sk-rotate-new-fedcba9876543210"

    def echo(request: hostile.Request, conn: socket.socket) -> None:
        sent = request.headers.get("authorization", "")
        body = json.dumps({"code": "BAD_KEY", "message": f"invalid token {sent} ({sent.partition(' ')[2]})"})
        conn.sendall(b"HTTP/1.1 401 X\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body.encode()))

    kwargs: dict[str, Any] = {"api_keys": {"vozo": old}, "max_retries": 0}
    with hostile.hostile(echo) as url:
        kwargs["base_urls"] = {"vozo": url}
        if mode == "sync":
            with videojobs.Client(**kwargs) as client:
                client.vendor("vozo").typed.get_httpx_client().headers["Authorization"] = f"Bearer {new}"
                with pytest.raises(videojobs.AuthenticationError) as info:
                    client.status("vozo:t")
        else:

            async def go() -> None:
                async with videojobs.AsyncClient(**kwargs) as client:
                    client.vendor("vozo").typed.get_async_httpx_client().headers["Authorization"] = f"Bearer {new}"
                    await client.status("vozo:t")

            with pytest.raises(videojobs.AuthenticationError) as info:
                asyncio.run(go())
    error = info.value
    assert REDACTED in error.message
    for words in (str(error), repr(error), error.message, error.raw):
        assert not shows_key(words, new), words
        assert not shows_key(words, old), words


@pytest.mark.parametrize("quoted", ["start", "upper"])
def test_the_keys_start_or_the_key_upper_cased_is_not_in_a_jobs_error_nor_an_errors_raw(quoted: str) -> None:
    """A review's hostile vendor: a failed job whose reason quotes the key's start ("Incorrect API
    key provided: sk-...", as vendors word a refusal), or the key upper-cased, reached the job's
    error, ``to_dict()`` (the CLI's output, what Celery stores) and a 401's ``raw``: the answer's
    bytes were scrubbed of the key's forms, not of its start, nor in another case."""
    key = "sk-live-Ab3dEf9hIjKlMnOpQr-st"
    echo = f"{key[:16]}..." if quoted == "start" else key.upper()
    failed = {"id": "t1", "state": "error", "progress": 10, "message": f"Incorrect API key provided: {echo}",
              "data": {"videos": []}, "create_time": 1, "update_time": 2, "action": "generate"}  # fmt: skip
    with (
        hostile.hostile(hostile.answer(200, json.dumps(failed).encode())) as url,
        videojobs.Client(api_keys={"duomi": key}, base_urls={"duomi": url}, max_retries=0) as client,
    ):
        status = client.status("duomi:t1")
    assert status.state is videojobs.State.FAILED
    assert status.error is not None
    assert status.error.message == f"Incorrect API key provided: {REDACTED}" + ("..." if quoted == "start" else "")
    for shown in (repr(status), json.dumps(status.to_dict()), repr(status.raw)):
        assert echo not in shown
        assert key[: MIN_SCRUBBABLE + 4].lower() not in shown.lower()
    refused = json.dumps({"code": "401", "message": f"invalid token {echo}"}).encode()
    with (
        hostile.hostile(hostile.answer(401, refused)) as url,
        videojobs.Client(api_keys={"duomi": key}, base_urls={"duomi": url}, max_retries=0) as client,
        pytest.raises(videojobs.AuthenticationError) as caught,
    ):
        client.status("duomi:t1")
    assert echo.encode() not in (caught.value.raw or b"")
    assert REDACTED.encode() in (caught.value.raw or b"")


def test_an_answer_naming_only_the_kind_of_key_is_left_as_it_is() -> None:
    """The key's first eight characters are often its kind, the same for every key of the vendor
    (``sk-proj-``): an answer that names the kind, or another key of it, is not an echo."""
    key = "sk-proj-Ab3dEf9hIjKlMnOpQr"
    scrubber = Scrubber([key])
    honest = b'{"hint": "keys look like sk-proj-XXXX", "other": "sk-proj-Zz9yXw8v"}'
    assert scrubber.scrub_bytes(honest) == honest
    assert scrubber.scrub_bytes(b'"SK-PROJ-AB3DEF9HIJ"') == f'"{REDACTED}"'.encode()
