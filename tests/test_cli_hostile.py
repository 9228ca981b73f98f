"""A hostile vendor against every output path of the command, piped and on a pseudo-terminal.

The scenarios are :mod:`tests.attacks_cli` (the same ones ``scripts/attacks.py`` runs): each
test here runs one and then checks what a user relies on, beyond the attack's own verdict. The
sanitizer itself (:func:`videojobs._text.printable`) is checked first, by property.
"""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import attacks_cli
from tests.attacks_cli import EVIL, MARKUP, PATHS, USER_REF
from videojobs import JobStatus, State
from videojobs._cli import PrintableFormatter, _logs
from videojobs._cli_output import result_json, result_line
from videojobs._text import UNSAFE_RANGES, is_printable, printable

DETERMINISTIC = settings(derandomize=True, max_examples=300, deadline=None, database=None)
UNSAFE = [chr(code) for low, high in UNSAFE_RANGES for code in range(low, high + 1)]

# --- the sanitizer ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07"),  # a window title
        ("\x1b[2J", "\\x1b[2J"),  # clear the screen
        ("a\rb\nc\td\x08", "a\\rb\\nc\\td\\x08"),  # overwrite, forge a line, move, erase
        ("\x9b31m\x9d\x85\x7f", "\\x9b31m\\x9d\\x85\\x7f"),  # 8-bit CSI, OSC, NEL; DEL
        ("abc\u202edef\u2066\u2069\u200e\u200f\u061c", "abc\\u202edef\\u2066\\u2069\\u200e\\u200f\\u061c"),
        ("\u2028\u2029", "\\u2028\\u2029"),
        ("x\ud800", "x\\ud800"),  # a lone surrogate: not even writable as UTF-8
        ("succeeded (done) é 漢字 🎬 [link=x]y[/link] \\x1b", "succeeded (done) é 漢字 🎬 [link=x]y[/link] \\x1b"),
    ],
)
def test_printable_shows_every_control_and_bidi_character_as_an_escape(text: str, shown: str) -> None:
    assert printable(text) == shown


def test_clean_text_is_returned_as_is() -> None:
    text = "duomi:abc  succeeded (done)  https://videos.example/a.mp4 (expires in 5 min)"
    assert printable(text) is text  # the fast path: nothing copied for the usual row


@DETERMINISTIC
@given(st.text(alphabet=st.one_of(st.characters(codec=None), st.sampled_from(UNSAFE))))
def test_printable_output_never_holds_an_unsafe_character(text: str) -> None:
    shown = printable(text)
    assert is_printable(shown)
    assert not any(ch in shown for ch in UNSAFE)
    assert printable(shown) == shown  # idempotent: printing twice changes nothing
    shown.encode("utf-8")  # always writable
    assert shown == "".join(printable(ch) for ch in text)  # character by character: the rest is kept, in order
    if not any(ch in text for ch in UNSAFE):
        assert shown == text


# Default_Ignorable_Code_Point (Unicode 15, DerivedCoreProperties.txt) outside category Cf:
# drawn as nothing by terminals, so "abc" and "a\u115fbc" would look alike
DEFAULT_IGNORABLE_NOT_CF = [0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, *range(0x180B, 0x1810), 0x3164,
                            *range(0xFE00, 0xFE10), 0xFFA0, *range(0xFFF0, 0xFFF9), *range(0xE0100, 0xE01F0)]  # fmt: skip


def test_every_control_bidi_and_invisible_code_point_is_covered() -> None:
    import unicodedata

    for code in [*range(0x20), *range(0x7F, 0xA0), 0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F)]:
        assert not is_printable(chr(code)), hex(code)
    for code in range(0x2066, 0x206A):
        assert not is_printable(chr(code)), hex(code)
    # every format character this Python's Unicode database knows (zero-width space, joiners, BOM,
    # soft hyphen, tag characters ...), and the other default-ignorable ones
    formats = [code for code in range(0x110000) if unicodedata.category(chr(code)) == "Cf"]
    assert len(formats) > 150  # the oracle is not empty
    for code in [*formats, *DEFAULT_IGNORABLE_NOT_CF]:
        assert not is_printable(chr(code)), hex(code)
        assert printable(chr(code)).isascii(), hex(code)  # shown as a visible escape
    assert is_printable(" ~\xa0é€中文🎬")


# --- the text the command builds ------------------------------------------------------------------


AS_READ = EVIL.replace("\ud800", "\ufffd")
"""EVIL once an answer is read: its unpaired surrogate is U+FFFD (and named in ``problems``)."""


def _hostile_status() -> JobStatus:
    return JobStatus(vendor="duomi", task_id="odd", state=State.UNKNOWN, vendor_state=EVIL, progress=0.4)


def test_json_keeps_the_vendors_exact_text_escaped_by_json() -> None:
    line = result_json(_hostile_status(), "duomi:odd")
    assert line.isascii()  # ensure_ascii: ESC, C1, bidi and the surrogate are all \\u escapes
    assert "\\u001b]0;pwned\\u0007\\u001b[2J\\r\\u202e\\u009b31m" in line
    assert json.loads(line)["vendor_state"] == EVIL  # exact data, not the printable form


def test_a_log_record_with_vendor_text_is_one_printable_line() -> None:
    formatter = PrintableFormatter("%(levelname)s %(message)s")
    record = logging.LogRecord("videojobs", logging.DEBUG, __file__, 1, "answer: %s", (EVIL,), None)
    line = formatter.format(record)
    assert "\n" not in line
    assert is_printable(line)
    assert MARKUP in line
    try:
        raise ValueError(EVIL)
    except ValueError:
        record = logging.LogRecord("videojobs", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    lines = formatter.format(record).splitlines()
    assert lines[0] == "ERROR failed"
    assert lines[1] == "Traceback (most recent call last):"  # a traceback keeps its lines
    assert all(is_printable(line) for line in lines)


@pytest.mark.parametrize("verbose", [False, True])
def test_library_warnings_reach_stderr_printable_and_only_while_the_command_runs(verbose: bool) -> None:
    logger = logging.getLogger("videojobs")
    before = (list(logger.handlers), logger.level)
    err = io.StringIO()
    with _logs(err, verbose):
        logger.warning("the vendor said %s", EVIL)
        logger.debug("answer %s", EVIL)
    assert (list(logger.handlers), logger.level) == before  # main() may run again in this process
    lines = err.getvalue().splitlines()
    assert len(lines) == (2 if verbose else 1)  # DEBUG only with -v
    assert all(is_printable(line) and MARKUP in line for line in lines)
    if not verbose:
        assert lines[0].startswith("videojobs: WARNING: the vendor said \\x1b]0;pwned\\x07")


def test_a_result_line_is_built_from_vendor_text_and_printed_safely() -> None:
    out = io.StringIO()
    from videojobs._cli_output import Display

    display = Display(out, io.StringIO(), mode="plain", json_lines=False, color=False)
    display.result(_hostile_status(), USER_REF)
    assert out.getvalue() == printable(result_line(_hostile_status(), USER_REF)) + "\n"
    assert is_printable(out.getvalue().rstrip("\n"))


# --- every output path, in a real process, against a hostile vendor on loopback ---------------------------


@pytest.mark.parametrize("name", list(attacks_cli.ATTACKS))
def test_every_output_path_shows_vendor_text_and_obeys_none_of_it(name: str) -> None:
    if PATHS[name].tty:
        pytest.importorskip("pexpect")
        pytest.importorskip("pyte")
    outcome = attacks_cli.attack(name)
    row = attacks_cli.judge(name, outcome)
    assert row["safe"], outcome.unsafe
    assert row["typed"], row["outcome"]
    assert outcome.code == PATHS[name].code
    text = outcome.text()
    if PATHS[name].code == 2:  # the user's own text, in a usage error
        assert "\\x1b]0;pwned\\x07\\u202e" in text
        return
    assert "mine-\\u202eevil" in text  # the user's own reference is shown escaped too
    if PATHS[name].argv[0] == "download":  # what it prints is the ref, the path and the library's words
        return
    if "--json" in PATHS[name].argv:
        rows = {row["ref"]: row for row in map(json.loads, outcome.out.decode().splitlines())}
        assert rows["duomi:fail"]["error"]["message"] == AS_READ  # exact data, escaped by JSON only
        assert rows[USER_REF]["ref"] == USER_REF
        odd = rows["duomi:odd"]
        assert (odd.get("vendor_state") or odd["last_status"]["vendor_state"]) == AS_READ
        return
    assert MARKUP in text  # the markup is shown as text, never read
    assert "\\x1b]0;pwned\\x07\\x1b[2J\\r\\u202e\\x9b31m" in text  # and what it hid is visible
    if not PATHS[name].tty:  # other scripts pass: as they are, or escaped where the stream cannot hold them
        assert ("\\u6f22\\u5b57" if PATHS[name].env else "漢字") in text
    if PATHS[name].tty:
        assert "pwned" not in outcome.title
        joined = "".join(outcome.screen)
        assert "duomi:fail" in joined
        if PATHS[name].argv[0] == "status":
            assert outcome.screen[0].split() == ["job", "state", "progress", "video", "/", "error"]  # not cleared
        else:
            assert "timed out" in joined  # the live rows of the jobs that never end
