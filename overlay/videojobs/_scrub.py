r"""Keys out of what a vendor sends back: every form an echo can take becomes ``[REDACTED]``.

Pure logic, no I/O: ``_exchange`` runs :meth:`Scrubber.scrub_bytes` on every answer's decoded
bytes before anything reads them (``raw``, messages, the JSON, the typed model, ``JobStatus``),
and its log filter runs :meth:`Scrubber.scrub` on log records.

What is scrubbed, for a key of at least :data:`MIN_SCRUBBABLE` characters:

- the key as is;
- the key with any of its characters JSON-escaped (``\u003d`` or ``\u003D`` for ``=``, as Gson
  does for ``= < > & '``; every character ``\uXXXX``; ``\/``, ``\"``, ``\\``; a Python repr's
  ``\'``), at any depth (a JSON document inside a JSON string: ``\\u003d``);
- the key percent-encoded (``%3D`` or ``%3d``; ``quote``, ``quote_plus``, ``encodeURIComponent``,
  or every byte, ``%73%6B``), twice (``%253D``), percent-encoded then JSON-escaped, and
  JSON-escaped then percent-encoded (``\/`` as ``%5C%2F``); all these forms mixed in one echo;
- the key in base64, standard or URL-safe, at any offset: a ``Basic base64(user:key)`` echoed;
- the key in HTML: numeric character references (``&#115;``, ``&#x73;``, for any of its
  characters) and the named ones an HTML escaper writes (``&amp;``), as a proxy's error page has;
- the key's bytes in hex, lower or upper case (a dump of the request's header);
- in bytes, the key's start, :data:`MIN_START` characters or more, in any ASCII case (a vendor
  quoting a refused key's start, a header echoing it upper-cased);
- in bytes, the key as is in UTF-16 or UTF-32 (either byte order): a body in those encodings is
  refused as JSON (``_translate.loads``), but its bytes are kept in ``raw`` and quoted in messages.

Why the bytes, and not the decoded JSON: decoding JSON only resolves escapes, and the pattern
matches the key under every escape, so every string of the decoded JSON (keys and values, at any
depth) is scrubbed by construction, and so is the ``raw`` body kept for errors, which is never
decoded. One place, one pass.

Cost: the pattern is built once per key (cached). An answer is searched with it only when it
could hold an echo: when it holds the key's longest run of unreserved characters (for most keys,
the whole key), looked for with escaped ASCII characters (``\u00XX``) and percent-encoded
unreserved ones (``%73``, which honest encoders never write) resolved first, when there are any.
Otherwise the check is a few ``in`` tests and at most a regex scan: a few microseconds for a
typical answer.

In an exception (:meth:`Scrubber.scrub_exception`) and a log record, also any
:data:`MIN_SCRUBBABLE` or more of the key's characters in a row, in any case: a transport error
quotes a line it could not parse cut short (aiohttp: its first 100 bytes), and the cut can fall
inside the key; a status line or header may echo it upper-cased. So too in the words an error
built from an answer quotes (its message and code, a snippet of its body: :meth:`Scrubber.scrub_all`
through ``Exchange.quote``): a vendor refusing a key often quotes its start ("Incorrect API key
provided: sk-proj-Ab3d..."). That error's ``raw`` body is scrubbed of the key's forms, not of its
pieces (a piece search runs a character at a time: megabytes of it would hold the call for seconds). Anything in an exception that
is not text (aiohttp's parsed answer in a ``ServerDisconnectedError``) is kept unless what it
shows holds a key, then replaced by the text it shows, scrubbed.

Not scrubbed: keys shorter than :data:`MIN_SCRUBBABLE`; other transformations of a key (a hash,
base32, hex with separators, other HTML named references, a changed case of anything but the key's start outside an exception or a log record, base64 then percent-encoded byte by byte, base64
wrapped in lines (MIME's 76 characters) across the key, percent-encoded three times, every
character ``\uXXXX``-escaped and then percent-encoded, a piece of a key other than its start outside an exception).
"""

from __future__ import annotations

import base64
import collections
import functools
import os
import re
import string
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeVar

if TYPE_CHECKING:
    import logging

__all__ = ["LOG_SCRUBBER", "MIN_SCRUBBABLE", "MIN_START", "REDACTED", "LogScrubber", "Scrubber", "scrubbable"]

MIN_SCRUBBABLE: Final = 8
"""Keys shorter than this are sent but not scrubbed. A short string turns up in honest text (a
one-character key is in most words: ``"done"`` became ``"d[REDACTED]ne"``; four characters in ids
and URLs), so scrubbing it would corrupt answers; and a key that short protects nothing anyway.
Real keys are 20 characters and more; the sandbox's, ``sk-sandbox``, has 10."""

MIN_START: Final = 12
"""Characters of a key's start that are scrubbed from an answer's bytes in any case, with as much
of the rest as follows (see ``_Key.starts_b``). More than :data:`MIN_SCRUBBABLE`: a key's first
eight are often its kind, the same for every key of a vendor (OpenAI's ``sk-proj-``), and an
answer naming that kind is not an echo; twelve hold four of the key's own."""

REDACTED: Final = "[REDACTED]"
CREDENTIAL_HEADERS: Final = frozenset({"authorization", "proxy-authorization", "x-api-key"})
"""Request headers whose whole value is a credential: an error that keeps the request's headers
(aiohttp's ``ClientResponseError.request_info``) keeps ``[REDACTED]`` there, even for a key too
short to scrub by its text."""
_REDACTED_B: Final = REDACTED.encode("ascii")

_UNRESERVED: Final = frozenset(string.ascii_letters + string.digits + "-._~")
"""RFC 3986 §2.3: characters percent-encoders leave as they are (quote, quote_plus, encodeURIComponent)."""

_ALNUM: Final = frozenset(string.ascii_letters + string.digits)

_SHORT_ESCAPES: Final = frozenset("/\"'\\")
r"""Characters with a short backslash escape: JSON's ``\/ \" \\``, and ``\'`` in a Python repr (httpcore's logs)."""

_WIDE: Final = ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
"""Encodings in which an ASCII key's bytes hold NULs: looked for only in bytes that hold a NUL."""

_NAMED: Final = {"&": "|&amp;", "<": "|&lt;", ">": "|&gt;", '"': "|&quot;", "'": "|&apos;"}
"""Regex alternatives: the HTML named references of the characters an HTML escaper replaces."""

_ESCAPED_ASCII: Final = "\\u00"
"""What every ``\\uXXXX`` escape of an ASCII character contains."""


def scrubbable(key: str) -> bool:
    """Whether ``key`` is long enough to be scrubbed (see :data:`MIN_SCRUBBABLE`)."""
    return len(key) >= MIN_SCRUBBABLE


def _hex(code: int) -> str:
    """Regex: ``code`` as two hex digits, either case."""
    return "".join(f"[{d}{d.upper()}]" if d.isalpha() else d for d in f"{code:02x}")


_RUN: Final = r"(?:\\|%(?:25)?5[cC]){1,64}+"
r"""Regex: the backslashes of a JSON escape, as is or percent-encoded (once or twice: a JSON text
put in a URL's query, where PHP's ``json_encode`` writes ``/`` as ``\/``, is ``%5C%2F``),
possessive (no backtracking into it) and at most 64 long (JSON nested six deep): what
follows a run in an echo is no backslash, so giving one back finds nothing, and trying made a
scan quadratic in a run's length (24,000 ``%5C`` before an echo held a status call for 71 s).
Bounded, because a match may start inside a run all the same (the ``c`` of ``%5c`` is the first
letter of every ``sk-`` key's base64), and each start then reads at most 64 of it. The key's
own backslashes are :data:`_KEY_BACKSLASHES`."""
_WHOLE_RUN: Final = r"(?:\\|%(?:25)?5[cC])++"
""":data:`_RUN` unbounded, for an echo's first character: it starts only at a run's start
(:data:`_LEAD`), so the whole run is read once, however long (an escape nested past six deep)."""
_RUN_AFTER_BACKSLASH: Final = r"(?:\\|%(?:25)?5[cC]){0,64}+"
""":data:`_RUN` for the character after a run of the key's own backslashes, which may have taken
this escape's backslashes with it (possessive, it gives none back): none is needed."""
_KEY_BACKSLASHES: Final = r"(?:\\|%(?:25)?5[cC]|u00(?:5[cC])|&#0{0,8}92;|&#[xX]0{0,8}5[cC];){1,256}+"
r"""Regex: a run of backslashes in the key itself, in every form (as is, escaped as ``\\`` or
``\u005c``, percent-encoded, an HTML reference; at most 256 units), as one possessive run: each backslash of the
run matched apart could take any share of a long run of them (a key holding ``\`` made a scan
of a megabyte of backslashes take minutes). It takes a run of one or more, so an echo with fewer
of the key's backslashes than the key has is redacted too. Before what a unit may begin with
(``u``, ``%``), :func:`_needle` lets it give back (bounded)."""
_FIRST_KEY_BACKSLASHES: Final = r"(?:\\|%(?:25)?5[cC]|u00(?:5[cC])|&#0{0,8}92;|&#[xX]0{0,8}5[cC];)++"
""":data:`_KEY_BACKSLASHES` unbounded, for a key that starts with backslashes (see :data:`_WHOLE_RUN`)."""
_LEAD: Final = r"(?<!\\)(?<!%5[cC])(?<!%255[cC])"
"""An echo starts where a run of backslashes does, never inside one: without it, a run of n
was tried from each of its n characters."""


def _escaped(chars: str, first: bool = False, after_backslash: bool = False) -> str:
    """Regex: one of ``chars`` (ASCII), as is or JSON-escaped up to six deep (the escape's
    backslashes percent-encoded too, and then a short escape's character)."""
    literal = re.escape(chars) if len(chars) == 1 else "[" + "".join(re.escape(c) for c in chars) + "]"
    # the first starts only where a run does (_LEAD), so it may read all of it: linear
    run = _LEAD + _WHOLE_RUN if first else _RUN_AFTER_BACKSLASH if after_backslash else _RUN
    forms = [literal, run + "u00(?:" + "|".join(_hex(ord(c)) for c in chars) + ")"]
    short = [c for c in chars if c in _SHORT_ESCAPES]
    if short:
        escaped = [re.escape(c) for c in short] + [f"%(?:25)?{_hex(ord(c))}" for c in short]
        forms.append(run + "(?:" + "|".join(escaped) + ")")
    return "(?:" + "|".join(forms) + ")"


def _char(c: str, every_byte: bool = True, first: bool = False, after_backslash: bool = False) -> str:
    """Regex: the character ``c`` in every form of the module docstring: percent-encoded when it is
    reserved, and when it is not too (encoders that encode every byte do) unless ``every_byte``
    is False (a base64 core's letters and digits: that echo is base64 already)."""
    escaped = _escaped(c, first, after_backslash)
    if first and c in "cC":  # not the c of a %5c: every sk- key's base64 starts with one, and a
        # match begun at each %5c of a run read up to 64 more of it (over a second a megabyte)
        escaped = r"(?<!%5)(?<!%255)" + escaped
    forms = [escaped]
    if every_byte:  # an HTML page's numeric character references (&#115; &#x73;), named ones for & < > " '
        # first: "&" as is must not take the start of "&#38;" and leave the rest
        forms.insert(0, f"&#0{{0,8}}{ord(c)};|&#[xX]0{{0,8}}{_hex(ord(c))};" + _NAMED.get(c, ""))
    if every_byte or c not in _UNRESERVED:
        digits = "".join(_escaped("".join(dict.fromkeys(d + d.upper()))) for d in f"{ord(c):02x}")
        forms.append(_escaped("%", first, after_backslash) + "(?:" + _escaped("2") + _escaped("5") + ")?" + digits)
    return "(?:" + "|".join(forms) + ")"


def _needle(text: str, every_byte: bool = True) -> str:
    """Regex: ``text`` with each character in every form (:func:`_char`), each run of backslashes
    as one (:data:`_KEY_BACKSLASHES`); an echo starts only where a run of backslashes does."""
    parts = []
    runs = re.findall(r"\\+|[^\\]", text)
    for i, run in enumerate(runs):
        if run[0] == "\\":  # the first: only at a run's start (_LEAD), so the whole run may be read
            token = _LEAD + r"(?<!u005[cC])" + _FIRST_KEY_BACKSLASHES if i == 0 else _KEY_BACKSLASHES
            if i + 1 < len(runs) and runs[i + 1] in "u%":  # the key goes on with what a run's unit
                token = token.removesuffix("+")  # may be ("\\u005c", "\\%5c"): it may give that back
            parts.append(token)
        else:
            parts.append(_char(run, every_byte, i == 0, after_backslash=i > 0 and runs[i - 1][0] == "\\"))
    return "".join(parts)


def _base64_cores(key: bytes) -> list[str]:
    """The part of ``base64(prefix + key + suffix)`` that depends on the key alone, for a prefix
    of each length modulo 3 (the characters that also hold bits of the prefix or the suffix are
    left out); in both alphabets."""
    cores: dict[str, None] = {}
    for offset in range(3):
        encoded = base64.b64encode(bytes(offset) + key).decode("ascii")
        core = encoded[-(-8 * offset // 6) : 8 * (offset + len(key)) // 6]
        cores[core] = None
        cores[core.translate(str.maketrans("+/", "-_"))] = None
    return list(cores)


def _anchor(needle: str, keep: frozenset[str]) -> str:
    """The longest run of ``needle``'s characters in ``keep``: unreserved characters are only ever
    written as themselves or ``\\u00XX``-escaped, so every form of the needle holds this run once
    its ``\\u00XX`` escapes are resolved (see :func:`_probes`)."""
    runs = re.split("[^" + re.escape("".join(sorted(keep))) + "]", needle)
    return max(runs, key=len)


_ASCII_ESCAPE: Final = re.compile(r"\\u00([2-7][0-9a-fA-F])")
_ASCII_ESCAPE_B: Final = re.compile(_ASCII_ESCAPE.pattern.encode("ascii"))
_PERCENT_UNRESERVED: Final = re.compile(r"%(?:25)?(3[0-9]|[46][1-9a-fA-F]|[57][0-9aA]|2[dDeE]|5[fF]|7[eE])")
"""An unreserved character (letter, digit, ``-._~``) percent-encoded, once or twice: honest
encoders leave these as they are (RFC 3986 2.3), so an answer rarely holds one, and the anchors
are looked for with them resolved only when it does."""
_PERCENT_UNRESERVED_B: Final = re.compile(_PERCENT_UNRESERVED.pattern.encode("ascii"))
_ENTITY: Final = re.compile(r"&#0{0,8}(3[2-9]|[4-9][0-9]|1[01][0-9]|12[0-6]);|&#[xX]0{0,8}([2-7][0-9a-fA-F]);")
"""An HTML numeric reference to a printable ASCII character (``&#115;``, ``&#x73;``)."""
_ENTITY_B: Final = re.compile(_ENTITY.pattern.encode("ascii"))
_REFERENCE: Final = re.compile(r"&(?:#|amp;|lt;|gt;|quot;|apos;)")
"""Any HTML reference a form of a key may hold (a plain ``&``, as a URL's query has, is none)."""
_REFERENCE_B: Final = re.compile(_REFERENCE.pattern.encode("ascii"))


def _probes(text: str) -> list[str]:
    """Where anchors are looked for: ``text`` as sent; then with its escapes of printable ASCII
    characters resolved and its other backslashes dropped (a needle's anchor holds no
    backslash); then with its percent-encoded unreserved characters decoded too (an anchor holds
    only unreserved characters). All three: a key may itself hold ``%41``, which decoding turns
    into ``A``. Only the first when ``text`` holds no escape."""
    probes = [text]
    if _ESCAPED_ASCII in text:
        text = _ASCII_ESCAPE.sub(lambda m: chr(int(m[1], 16)), text).replace("\\", "")
        probes.append(text)
    if "%" in text and _PERCENT_UNRESERVED.search(text):
        probes.append(_PERCENT_UNRESERVED.sub(lambda m: chr(int(m[1], 16)), text))
    if "&#" in text:  # an HTML page's numeric references: resolved to look for the anchors
        probes.append(_ENTITY.sub(lambda m: chr(int(m[1]) if m[1] else int(m[2], 16)), text))
    return probes


def _probes_b(data: bytes) -> list[bytes]:
    probes = [data]
    if b"\\u00" in data:
        data = _ASCII_ESCAPE_B.sub(lambda m: bytes((int(m[1], 16),)), data).replace(b"\\", b"")
        probes.append(data)
    if b"%" in data and _PERCENT_UNRESERVED_B.search(data):
        probes.append(_PERCENT_UNRESERVED_B.sub(lambda m: bytes((int(m[1], 16),)), data))
    if b"&#" in data:
        probes.append(_ENTITY_B.sub(lambda m: bytes((int(m[1]) if m[1] else int(m[2], 16),)), data))
    return probes


class _Key:
    """One key's pattern (compiled on first use: an echo is rare, and compiling takes milliseconds)
    and its anchors (see :func:`_anchor`), which decide whether the pattern is needed at all."""

    __slots__ = (
        "_pattern",
        "_pattern_b",
        "_pieces",
        "anchors",
        "anchors_b",
        "folded_b",
        "key",
        "literals",
        "literals_b",
        "source",
        "start_b",
        "wide",
    )

    def __init__(self, key: str) -> None:
        raw = key.encode("ascii")  # keys are checked to be printable ASCII (_base.check_key)
        cores = _base64_cores(raw)
        # A run of backslashes just before an echo goes with it: no escape is left cut in half.
        hexes = (raw.hex(), raw.hex().upper())  # a dump of the header's bytes
        needles = [_needle(key), *(_needle(core, every_byte=False) for core in cores), *hexes]
        self.source = r"(?:(?<!\\)\\++)?(?:" + "|".join(needles) + ")"
        # base64's letters and digits make one anchor for both alphabets (+/ or -_)
        anchors = [_anchor(key, _UNRESERVED), *(_anchor(core, _ALNUM) for core in cores), *hexes]
        self.anchors = tuple(dict.fromkeys(anchors))
        self.anchors_b = tuple(a.encode("ascii") for a in self.anchors)
        # every form but the key's and base64's own characters holds a backslash or a "%": in a
        # text with neither, these are all an echo can be (see _literal). Not for a key holding a
        # backslash: its run may be matched as "u005c" alone, and the escape after it needs none.
        self.literals = tuple(dict.fromkeys((key, *cores, *hexes))) if "\\" not in key else ()
        self.literals_b = tuple(n.encode("ascii") for n in self.literals)
        self._pattern: re.Pattern[str] | None = None
        self._pieces: frozenset[str] | None = None
        self._pattern_b: re.Pattern[bytes] | None = None
        self.wide = tuple((key.encode(wide), REDACTED.encode(wide)) for wide in _WIDE)
        self.key = key
        self.folded_b = raw.lower()  # bytes.lower() folds ASCII only: the same length
        self.start_b = self.folded_b[:MIN_START]

    def starts_b(self, data: bytes) -> bytes:
        """``data`` without the key's start, :data:`MIN_START` characters of it or more (all of
        it if shorter), in any ASCII case: a vendor refusing a key quotes its start ("Incorrect
        API key provided: sk-proj-Ab3d...") and a status line or a header may echo it upper-cased,
        and either reached ``raw``, a job's error and the CLI's output. Found where it starts,
        then followed as far as it goes: time in the answer's length (a fold and a search), not a
        piece search at every character (see :meth:`scrub_pieces`)."""
        folded = data.lower()
        i = folded.find(self.start_b)
        if i < 0:  # the usual answer
            return data
        key, start = self.folded_b, 0
        out: list[bytes] = []
        while i >= 0:
            end = i + len(self.start_b)
            while end < len(data) and end - i < len(key) and folded[end] == key[end - i]:
                end += 1
            out += (data[start:i], _REDACTED_B)
            start = end
            i = folded.find(self.start_b, end)
        return b"".join(out) + data[start:]

    def forms_b(self, data: bytes) -> bytes:
        if b"\x00" in data:  # never in a UTF-8 answer's text; each wide echo becomes REDACTED in its encoding
            for echo, redacted in self.wide:
                data = data.replace(echo, redacted)
        probes = _probes_b(data) if b"\\u00" in data or b"%" in data or b"&#" in data else (data,)
        for probe in probes:  # the usual answer: one probe, a few "in" tests
            for anchor in self.anchors_b:
                if anchor in probe:
                    if self.literals_b and b"\\" not in data and b"%" not in data and not _REFERENCE_B.search(data):
                        return _literal(data, self.literals_b, _REDACTED_B)
                    if self._pattern_b is None:
                        self._pattern_b = re.compile(self.source.encode("ascii"))
                    return self._pattern_b.sub(_REDACTED_B, data)
        return data

    def scrub(self, text: str) -> str:
        probes = _probes(text) if _ESCAPED_ASCII in text or "%" in text or "&#" in text else (text,)
        for probe in probes:
            for anchor in self.anchors:
                if anchor in probe:
                    if self.literals and "\\" not in text and "%" not in text and not _REFERENCE.search(text):
                        return _literal(text, self.literals, REDACTED)
                    if self._pattern is None:
                        self._pattern = re.compile(self.source)
                    return self._pattern.sub(REDACTED, text)
        return text

    def scrub_pieces(self, text: str) -> str:
        """``text`` without any run of :data:`MIN_SCRUBBABLE` or more characters that the key
        holds in a row (what a quote cut short leaves of it), in ASCII's any case (a status line
        or a header echoed upper-cased: h11 and aiohttp quote it whole). Each position is looked
        up in the set of the key's pieces: time in the text's length, whatever the key's (one
        regex of every piece took 0.4 s to compile for a 2,000-character key, and scanned slower
        than this as keys grew). Keys are printable ASCII (``_base.check_key``), so folding
        ASCII alone loses nothing and never changes a text's length (``"İ".lower()`` does)."""
        pieces = self.pieces
        width, size = MIN_SCRUBBABLE, len(text)
        folded = text.translate(_ASCII_LOWER)
        out: list[str] = []
        start = i = 0
        while i + width <= size:
            if folded[i : i + width] not in pieces:
                i += 1
                continue
            end = i + width
            while end < size and folded[end - width + 1 : end + 1] in pieces:
                end += 1
            out += (text[start:i], REDACTED)
            start = i = end
        return "".join(out) + text[start:] if out else text

    @property
    def pieces(self) -> frozenset[str]:
        """Every :data:`MIN_SCRUBBABLE`-character piece of the key, ASCII lower-cased (made once)."""
        if self._pieces is None:
            folded = self.key.translate(_ASCII_LOWER)
            self._pieces = frozenset(folded[i : i + MIN_SCRUBBABLE] for i in range(len(folded) - MIN_SCRUBBABLE + 1))
        return self._pieces


_ASCII_LOWER: Final = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


AnyStr = TypeVar("AnyStr", str, bytes)


def _literal(text: AnyStr, needles: tuple[AnyStr, ...], redacted: AnyStr) -> AnyStr:
    """The key's pattern on a text without a backslash, a "%" or an HTML reference: each of its
    forms but the literal ones needs one, so the pattern comes down to the needles as they are. Without
    compiling it: that takes about a millisecond a character of the key (a JWT-sized key of
    2,000 characters, echoed, held a status call for 3.5 s, the event loop with it)."""
    for needle in needles:
        text = text.replace(needle, redacted)
    return text


_NOT_KEY: Final = re.compile(r"[^\x21-\x7e]+")
"""What no key holds: whitespace, control and non-ASCII characters."""


@functools.lru_cache(maxsize=64)
def _compiled(key: str) -> _Key:
    return _Key(key)


class Scrubber:
    """Scrubs some keys from bytes and text; keys shorter than MIN_SCRUBBABLE are left out.

    Built once per client and vendor: the patterns are compiled once per key per process."""

    __slots__ = ("_keys",)

    def __init__(self, keys: Iterable[str]) -> None:
        self._keys: tuple[_Key, ...] = ()
        self.add(*keys)

    def add(self, *keys: str) -> None:
        """Scrub ``keys`` too from now on (a key set on a client after it was made: see
        ``_sessions._Handle``); one already scrubbed is not added twice."""
        # a key as sent is printable ASCII (_base.check_key); one that is not (a zero-width space
        # pasted into an environment variable, bytes from a secrets manager) is never sent, but may
        # be quoted: each printable run of it long enough to scrub is scrubbed as a key
        runs = (run for key in keys if isinstance(key, str) for run in _NOT_KEY.split(key))
        known = {k.key for k in self._keys}
        new = tuple(_compiled(run) for run in dict.fromkeys(runs) if scrubbable(run) and run not in known)
        if new:
            self._keys = (*self._keys, *new)  # one assignment: a thread scrubbing meanwhile sees either

    def scrub_bytes(self, data: bytes) -> bytes:
        keys = self._keys
        for key in keys:  # every key's forms first: a start cut short must not hide another's echo
            data = key.forms_b(data)
        for key in keys:
            data = key.starts_b(data)
        return data

    def keys(self) -> tuple[str, ...]:
        """The keys scrubbed (for one scrubber of two: see ``LogScrubber.scrub_all``)."""
        return tuple(key.key for key in self._keys)

    def scrub(self, text: str) -> str:
        for key in self._keys:
            text = key.scrub(text)
        return text

    def __repr__(self) -> str:
        return f"<Scrubber: {len(self._keys)} keys redacted>"

    def scrub_exception(self, exc: BaseException) -> None:
        """Scrub, in place, what an exception and the ones behind it (cause, context) show: their
        ``args``, string and bytes attributes and notes, pieces of a key too (see the module's
        docstring). A transport error quotes the header or status line it could not parse, and a
        vendor may have put the key in one. Credential headers are redacted whatever the keys
        (none long enough to scrub as text: a proxy's ``Proxy-Authorization`` is still one)."""
        seen: set[int] = set()
        memo: dict[object, object] = {}  # one text quoted in args, message and reprs across the chain: scrubbed once

        def scrubbed(value: object) -> object:
            if not isinstance(value, (str, bytes)):
                return self._scrub_value(value)
            if value not in memo:
                memo[value] = self._scrub_value(value)
            return memo[value]

        pending: list[BaseException] = [exc]
        while pending:
            current = pending.pop()
            if id(current) in seen:
                continue
            seen.add(id(current))
            current.args = tuple(scrubbed(arg) for arg in current.args)
            attributes = vars(current)
            for name, value in list(attributes.items()):
                if name == "headers" and isinstance(value, Mapping):  # aiohttp's: the answer's
                    try:
                        attributes[name] = self._scrub_headers(value)
                    except Exception:  # headers that cannot even be read: none are kept
                        attributes[name] = {}
                elif not isinstance(value, BaseException):  # those are walked below, as causes
                    attributes[name] = scrubbed(value)
            pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)

    def scrub_all(self, text: str) -> str:
        """``text`` without the keys, pieces of them too (for a message built from a transport's words)."""
        scrubbed = self._scrub_value(text)
        assert isinstance(scrubbed, str)
        return scrubbed

    def _scrub_value(self, value: object) -> object:
        if value is None or isinstance(value, (bool, int, float)):
            return value
        if isinstance(value, str):
            text = self.scrub(value)
            for key in self._keys:
                text = key.scrub_pieces(text)
            return text
        if isinstance(value, bytes):  # the pieces of a key in bytes: as Latin-1, one character a byte
            data = self.scrub_bytes(value)
            for key in self._keys:
                data = key.scrub_pieces(data.decode("latin-1")).encode("latin-1")
            return data
        if isinstance(value, list):
            return [self._scrub_value(v) for v in value]
        if _has_headers(value):
            # aiohttp's RequestInfo (a ClientResponseError's args[0] and request_info; a NamedTuple
            # since aiohttp 3.11, an attrs class before): the request's own headers, the
            # Authorization that carries the key among them; and its pure-Python parser's
            # RawResponseMessage, whose reason and raw_headers are the answer's as sent
            try:
                headers = self._scrub_headers(value.headers)  # type: ignore[attr-defined]
                if isinstance(value, tuple):
                    rest = {f: self._scrub_value(getattr(value, f)) for f in value._fields if f != "headers"}  # type: ignore[attr-defined]
                    return value._replace(headers=headers, **rest)  # type: ignore[attr-defined]
                import attrs

                return attrs.evolve(value, headers=headers)  # type: ignore[misc]
            except Exception:  # an object that will not be rebuilt: nothing of it is kept
                return REDACTED
        if type(value) is tuple:  # a plain one (a record of a transport's, aiohttp's ConnectionKey, stays whole)
            return tuple(self._scrub_value(v) for v in value)
        # anything else (aiohttp's C parser's RawResponseMessage, a ServerDisconnectedError's
        # message: the answer's status line and headers as sent): kept as it is unless what it
        # shows holds a key, then as the text it shows, scrubbed
        try:
            shown = repr(value)
        except Exception:  # an object that cannot even say what it is: nothing of it is kept
            return REDACTED
        scrubbed = self._scrub_value(shown)
        return value if scrubbed == shown else scrubbed

    def _scrub_headers(self, headers: Mapping[Any, Any]) -> Mapping[Any, Any]:
        """Headers as an error keeps them: a credential header's value whole, any key in the others."""
        items = [
            (name, REDACTED if str(name).lower() in CREDENTIAL_HEADERS else self._scrub_value(value))
            for name, value in headers.items()
        ]
        if type(headers).__module__.partition(".")[0] == "multidict":  # aiohttp's, kept of its kind
            import multidict

            copy: multidict.CIMultiDict[Any] = multidict.CIMultiDict(items)
            return multidict.CIMultiDictProxy(copy) if isinstance(headers, multidict.CIMultiDictProxy) else copy
        return dict(items)


def _has_headers(value: object) -> bool:
    """A record with a ``headers`` field of headers (a NamedTuple's, or an attrs class's)."""
    kind = type(value)
    if "headers" in getattr(kind, "_fields", ()):
        return isinstance(getattr(value, "headers", None), Mapping)
    fields = getattr(kind, "__attrs_attrs__", None)
    return (
        fields is not None
        and any(f.name == "headers" for f in fields)
        and isinstance(getattr(value, "headers", None), Mapping)
    )


# --- log records: the keys of open clients, scrubbed from what httpx, httpcore and aiohttp log ---


class LogScrubber:
    """Redacts the keys of open clients, in every form ``_scrub`` knows, from log records of
    httpx, httpcore, aiohttp and videojobs: the message, and the traceback when there is one.

    httpcore's DEBUG trace logs response headers as they come, and a proxy may echo the
    Authorization header in one. The filter sits on those libraries' loggers; it costs
    nothing unless a DEBUG record is made, since they check ``isEnabledFor`` first.
    """

    LOGGERS: Final = (  # a logger's filters see only the records made on it, not its children's
        "videojobs",
        "videojobs.celery",
        "httpx",
        "httpcore.connection",
        "httpcore.http11",
        "httpcore.http2",
        "httpcore.proxy",
        "httpcore.socks",
        "aiohttp.client",
        "aiohttp.internal",
    )

    def __init__(self) -> None:
        self._keys: collections.Counter[str] = collections.Counter()
        self._secrets = Scrubber(())
        self._lock = threading.Lock()
        self._installed = False
        self._warned: set[str] = set()

    def renew_lock(self) -> None:
        """A new lock, in a child process just forked (the parent's may be held there for ever)."""
        self._lock = threading.Lock()

    def add(self, key: str) -> None:
        """Redact ``key`` from now on (until as many ``discard`` as ``add``); a key too short to
        scrub is said once per process, on the ``videojobs`` logger (without the key)."""
        import logging  # on the first client's first vendor, not on import videojobs

        with self._lock:
            self._keys[key] += 1
            self._secrets = Scrubber(self._keys)
            if not self._installed:
                for name in self.LOGGERS:
                    logging.getLogger(name).addFilter(self)
                self._installed = True
            warn = not scrubbable(key) and key not in self._warned
            self._warned.add(key)
        if warn:
            logging.getLogger("videojobs").warning(
                "an API key shorter than %d characters (length %d) is too short to scrub: it is sent "
                "as is, but an answer, error or log line that echoes it shows it",
                MIN_SCRUBBABLE,
                len(key),
            )

    def discard(self, key: str) -> None:
        with self._lock:
            self._keys[key] -= 1
            if self._keys[key] <= 0:
                del self._keys[key]
            self._secrets = Scrubber(self._keys)

    def scrub(self, text: str) -> str:
        """``text`` without the key of any open client, in any form an echo takes."""
        return self._secrets.scrub(text)

    def scrub_all(self, text: str, *more: str) -> str:
        """``text`` without the key of any open client, and ``more``, pieces of them too (as a
        log record's words). One scrubber for all: one after another, the first one's pieces cut
        into the second's echo (a percent-encoded key lost its start to another key's piece, and
        the rest of it was no longer an echo to see)."""
        secrets = self._secrets
        if more:
            secrets = Scrubber((*secrets.keys(), *more))
        return secrets.scrub_all(text)

    def filter(self, record: logging.LogRecord) -> bool:  # logging accepts any object with filter()
        secrets = self._secrets
        message = record.getMessage()
        scrubbed = secrets.scrub_all(message)  # pieces too: httpcore logs a cut or split echo as sent
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        if record.exc_info and not record.exc_text:
            import logging

            # Formatters keep exc_text as it is set here: the traceback (and its causes) scrubbed
            record.exc_text = secrets.scrub_all(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = secrets.scrub_all(record.exc_text)
        if record.stack_info:
            record.stack_info = secrets.scrub_all(record.stack_info)
        return True


LOG_SCRUBBER: Final = LogScrubber()


def _after_fork() -> None:
    """A lock held by another thread at fork() (a client opened or closed there) is never let go in
    the child, whose first vendor call (which adds its key here) then waited for it for ever."""
    LOG_SCRUBBER.renew_lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
