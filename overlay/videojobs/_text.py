"""Vendor text made safe to print on a terminal: pure, no I/O.

A vendor's answer (a state word, an error message, a URL) and a user's job reference reach the
terminal through the command line. Written as is, a string carrying ``ESC ]0;title BEL`` renames
the terminal window, ``ESC [2J`` clears the screen, ``\\r`` overwrites the line already printed,
U+202E turns the rest of the line around, and ``ESC ]8;;url`` makes a hidden hyperlink: a hostile
server rewrites what the user sees. This is the class of bug behind kubectl's CVE-2021-25743
(https://github.com/kubernetes/kubernetes/issues/101695), fixed in kubernetes/kubernetes#112553
by passing every printed cell through ``printers.EscapeTerminal`` (cli-runtime
``pkg/printers/terminal.go``), which shows ESC as ``^[`` and ``\\r`` as ``\\r``.

:func:`printable` goes further than kubectl, because a terminal acts on more than ESC and CR:

- every C0 control (U+0000-U+001F, so also BEL, backspace, tab and newline: a vendor string is
  one field of one line, and a newline inside it could forge a line of our own output), DEL
  (U+007F) and every C1 control (U+0080-U+009F: U+009B is an 8-bit CSI, U+009D an OSC, to some
  terminals);
- the Unicode bidirectional marks, embeddings, overrides and isolates (U+061C, U+200E, U+200F,
  U+202A-U+202E, U+2066-U+2069: the "Trojan Source" characters, CVE-2021-42574), and the line and
  paragraph separators U+2028/U+2029;
- lone surrogates (U+D800-U+DFFF, which JSON's ``\\ud800`` lets a vendor send): they cannot be
  written as UTF-8 at all, and would end the command with a ``UnicodeEncodeError``;
- what a terminal draws as nothing: every format character (Unicode category Cf: zero-width
  space, joiners, the word joiner, the byte-order mark, the soft hyphen, the tag characters that
  can spell hidden text) and the other default-ignorable code points (the combining grapheme
  joiner, variation selectors, Hangul fillers): ``abc`` and ``a\\u200bbc`` would look the same.
  An emoji's variation selector or joiner is shown as an escape too: a vendor's status is read
  for what it says, not drawn.

Each is shown as a visible Python-style escape (``\\x1b``, ``\\r``, ``\\u202e``), never emitted. As
kubectl's, the result is for people, not reversible: a vendor's literal backslash is kept as is.
Everything else (accents, CJK, emoji) passes unchanged. JSON output does not use this: it is
exact data, and ``json.dumps`` (``ensure_ascii``) writes all of these as ``\\u`` escapes already.

The function runs for every row of every frame of the live view, so it is a compiled search
(clean text, the usual case, is returned as is) and a precomputed ``str.translate`` table.
"""

from __future__ import annotations

import functools
import re

_NAMED = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}

UNSAFE_RANGES: tuple[tuple[int, int], ...] = (
    (0x00, 0x1F),  # C0 controls (ESC is 0x1B, BEL 0x07, BS 0x08, CR 0x0D)
    (0x7F, 0x9F),  # DEL and the C1 controls (0x9B: CSI, 0x9D: OSC on 8-bit terminals)
    (0xAD, 0xAD),  # SOFT HYPHEN
    (0x034F, 0x034F),  # COMBINING GRAPHEME JOINER
    (0x0600, 0x0605),  # Arabic number signs (format)
    (0x061C, 0x061C),  # ARABIC LETTER MARK
    (0x06DD, 0x06DD),  # ARABIC END OF AYAH (format)
    (0x070F, 0x070F),  # SYRIAC ABBREVIATION MARK (format)
    (0x0890, 0x0891),  # Arabic pound and piastre marks above (format)
    (0x08E2, 0x08E2),  # ARABIC DISPUTED END OF AYAH (format)
    (0x115F, 0x1160),  # Hangul choseong and jungseong fillers
    (0x17B4, 0x17B5),  # Khmer inherent vowels
    (0x180B, 0x180F),  # Mongolian free variation selectors, vowel separator
    (0x200B, 0x200F),  # zero-width space, non-joiner, joiner; LEFT-TO-RIGHT / RIGHT-TO-LEFT MARK
    (0x2028, 0x202E),  # LINE / PARAGRAPH SEPARATOR; bidi embeddings and overrides (U+202E: RLO)
    (0x2060, 0x206F),  # word joiner, invisible operators, bidi isolates, deprecated format
    (0x3164, 0x3164),  # HANGUL FILLER
    (0xD800, 0xDFFF),  # lone surrogates: not encodable, a crash on write
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFEFF, 0xFEFF),  # ZERO WIDTH NO-BREAK SPACE (byte-order mark)
    (0xFFA0, 0xFFA0),  # HALFWIDTH HANGUL FILLER
    (0xFFF0, 0xFFFB),  # unassigned specials; interlinear annotation (format)
    (0x110BD, 0x110BD),  # KAITHI NUMBER SIGN (format)
    (0x110CD, 0x110CD),  # KAITHI NUMBER SIGN ABOVE (format)
    (0x13430, 0x1343F),  # Egyptian hieroglyph format controls
    (0x1BCA0, 0x1BCA3),  # shorthand format controls
    (0x1D173, 0x1D17A),  # musical symbol format controls
    (0xE0000, 0xE0FFF),  # tag characters (hidden text), variation selectors supplement
)
"""Inclusive code point ranges never written to a terminal (see the module docstring): the
controls, the bidi characters, the surrogates, every format character (category Cf) and every
default-ignorable code point of Unicode 15 (DerivedCoreProperties.txt)."""


def _escape(code: int) -> str:
    if code in _NAMED:
        return _NAMED[code]
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


@functools.cache
def _table() -> dict[int, str]:
    """The escapes, made when a text first needs one (6,321 of them: 4.5 ms, which every
    ``import`` of the error classes, here for ``str()``, would otherwise pay)."""
    return {code: _escape(code) for low, high in UNSAFE_RANGES for code in range(low, high + 1)}


_UNSAFE = re.compile("[" + "".join(f"\\U{low:08x}-\\U{high:08x}" for low, high in UNSAFE_RANGES) + "]")


def printable(text: str) -> str:
    """``text`` with every control, bidi, invisible and unencodable character shown as a visible escape.

    >>> printable("done\\x1b]0;pwned\\x07 \\u202eevil")
    'done\\\\x1b]0;pwned\\\\x07 \\\\u202eevil'

    Idempotent: what it returns contains none of those characters.
    """
    if _UNSAFE.search(text) is None:
        return text
    return text.translate(_table())


def is_printable(text: str) -> bool:
    """True when :func:`printable` would leave ``text`` unchanged."""
    return _UNSAFE.search(text) is None


WORDS_QUOTED = 200
"""The most of a dependency's or a server's own words an error quotes, in characters (as much as
of a vendor's body: ``_translate.SNIPPET``)."""


def their_words(exc: BaseException | str, limit: int = WORDS_QUOTED) -> str:
    """What a transport, a parser or a store said in ``exc``, for one of our messages: on one line
    (aiohttp's parser errors run over several) and cut at ``limit`` characters (h11 and aiohttp
    quote a bad status line or header whole: 60,000 characters of one were a 60 KB message)."""
    try:
        full = str(exc)
    except Exception:  # a dependency's __str__ that fails on what it holds: its kind is still told
        full = f"({type(exc).__name__} whose text could not be read)"
    one = " ".join(full[: limit * 4].split())
    return one[:limit] + "…" if len(one) > limit or len(full) > limit * 4 else one
