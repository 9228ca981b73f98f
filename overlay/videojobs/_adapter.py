"""The vendor adapter protocol, the lenient field reader and the salvaging model parser.

An adapter is the only vendor-specific code in the overlay: which generated endpoint and
model, the state table, and how the typed model becomes a :class:`JobStatus`. Keys,
requests, deadlines, errors and waiting are shared.

Degrade, don't drop: the job's *state* is what must be readable. ``parse_model`` parses
with the generated model and, when the answer does not fit it, leaves out the smallest
parts that break it (each named in ``JobStatus.problems``); :class:`Fields` reads each
remaining field the same way (a missing, out-of-range or wrongly typed field becomes None
and a problem). Only an answer without a readable state (or envelope) is :class:`Unreadable`.

Meaning: ``Fields.videos`` is the one reader of video fields. A video is an absolute
http(s) URL (or, for a vendor that returns one, a video id) on a *succeeded* job: any other
string, or a URL on a job in another state, is left out and named; a succeeded job with no
usable video is named (:data:`NO_VIDEO`). Progress outside its documented range is left
out and named, never clamped.

A sixth vendor: see the docstring of ``videojobs._registry``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from types import ModuleType
from typing import Any, ClassVar, Final, Protocol, TypeVar, runtime_checkable
from urllib.parse import urlsplit

from ._status import JobError, JobStatus, State

__all__ = [
    "NO_VIDEO",
    "BaseAdapter",
    "EnvelopeError",
    "Fields",
    "ForeignAnswer",
    "Unreadable",
    "VendorAdapter",
    "is_video_url",
    "not_a_video_url",
    "parse_model",
]

PARSE_ERRORS: Final = (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError, RecursionError)
"""What the generated models' ``from_dict`` raise on an answer that does not fit them."""

MAX_SALVAGE_TRIALS: Final = 256
"""Parses ``parse_model`` may try to find what to leave out; an answer needing more is read for
what the spec requires only (:data:`TOO_MANY_ODD`), with as many again. (A real status answer has
a dozen fields; this bounds the work a hostile one can cause.)"""

TOO_MANY_ODD: Final = (
    "the answer: too many fields do not fit the vendor's spec to tell them apart; what the spec "
    "requires was read, and the fields that fit whole (the rest is in raw)"
)

MS_THRESHOLD: Final = 100_000_000_000
"""A Unix time above this (year 5138 in seconds) can only be milliseconds. Used only by an
adapter that assumes its vendor may send milliseconds (``Fields(millis=True)``)."""

EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC).timestamp()
LATEST: Final = datetime(2200, 1, 1, tzinfo=UTC).timestamp()
"""Timestamps outside [2000, 2200) are not plausible for a video job: reported, not used."""

VIDEO_SCHEMES: Final = frozenset({"http", "https"})
"""What a video URL may be: ``Client.download`` fetches the file over HTTP(S), nothing else."""

NO_VIDEO: Final = "video: the job succeeded but its answer has no usable video URL or id"
"""The problem named for a succeeded job whose answer holds no usable video (every vendor)."""

MAX_URL: Final = 16_384
"""The longest video URL kept, in characters: twice the request line most servers and CDNs take
(nginx's and Apache's 8 KiB buffers, CloudFront's 8,192 bytes), so no fetchable URL is refused; a
megabyte of one made every ``repr`` and line that shows the status a megabyte."""

SHOWN_CHARS: Final = 40
"""How much of an unusable string a problem quotes (enough to recognize it, never a page)."""


def not_a_video_url(url: object) -> str | None:
    """What is wrong with ``url`` as a video's address; None for an absolute http(s) URL with a
    host (and a readable port), as ``urllib.parse`` reads it. The one definition: adapters keep
    only such URLs, downloads fetch nothing else.

    Printable, without surrounding whitespace (``urlsplit`` itself strips leading blanks and
    control characters, so they are refused before it sees them). Says what kind of string it
    is, never the string: a URL's query may be a signature.
    """
    if not isinstance(url, str) or not url.strip():
        return "is empty"
    if len(url) > MAX_URL:
        return f"is {len(url):,} characters long, more than any server takes ({MAX_URL:,} at most here)"
    if not url.isprintable() or url != url.strip():
        return "has blanks or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number in range
        host = parts.hostname
    except ValueError:  # a malformed netloc ("http://[::1") or port
        return "is not a well-formed URL"
    scheme = parts.scheme.lower()
    if scheme not in VIDEO_SCHEMES:
        return f"is a {scheme[:20]}: URL, not http(s)" if scheme else "is not an absolute http(s) URL"
    if not host:
        return "is not an absolute http(s) URL with a host"
    return None


def is_video_url(text: str) -> bool:
    """True for an absolute http(s) URL with a host (see :func:`not_a_video_url`)."""
    return not_a_video_url(text) is None


def _shown(text: str) -> str:
    """A vendor string quoted for a problem: repr (control characters escaped), cut at SHOWN_CHARS."""
    return repr(text[:SHOWN_CHARS]) + ("…" if len(text) > SHOWN_CHARS else "")


class Unreadable(Exception):
    """The answer has no readable state (or envelope): nothing to degrade to."""


class ForeignAnswer(Exception):
    """The answer names another job than the one asked about (see ``VendorAdapter.echoed_id``)."""


class EnvelopeError(Exception):
    """A vendor's error wrapped in a 2xx answer (JimmyAI's ``code``).

    ``status_hint`` is the HTTP status the vendor's code stands for, when the adapter knows it.
    """

    def __init__(self, code: str | None, message: str, status_hint: int | None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status_hint = status_hint


# --- the lenient field reader -------------------------------------------------------------------


def is_unset(value: Any) -> bool:
    # Every generated package has its own Unset class; they share the name.
    return value is None or type(value).__name__ == "Unset"


def json_type(value: Any) -> str:
    """How JSON would name a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return f"a {type(value).__name__}"


MAX_VENDOR_WORD: Final = 200
"""The longest error code or state word kept, in characters (an API error's code is cut so too:
``_translate.SNIPPET``); a megabyte of one made every line that shows the status a megabyte."""

MAX_ERROR_MESSAGE: Final = 2000
"""The longest failed job's message kept, in characters (pages quote one or two sentences; an
API error's is cut to 200): the rest of a vendor's answer stays in ``raw``."""


MAX_PROBLEMS: Final = 50
"""The most problems one answer names; past them one line counts the rest (their fields are in
``raw``). Each unusable item of a list is a problem of its own, and a 4 MB answer of 380,000
empty video URLs made a 21 MB ``problems``, a 22 MB ``repr`` and as many DEBUG log records a poll."""


def more_problems(count: int) -> str:
    """The line that stands for the problems past :data:`MAX_PROBLEMS`."""
    return f"and {count:,} more problems of this answer, not listed (its raw answer has every field)"


class Fields:
    """Reads a typed model's fields; what it cannot use becomes None and a line in ``problems``
    (at most :data:`MAX_PROBLEMS` of them; ``more`` counts the rest)."""

    __slots__ = ("millis", "more", "problems", "unfit")

    def __init__(self, *, millis: bool = False) -> None:
        self.problems: list[str] = []
        self.more = 0  # problems past MAX_PROBLEMS, counted, not kept
        self.millis = millis  # read a Unix time above MS_THRESHOLD as milliseconds (the adapter's assumption)
        self.unfit: str | None = None  # the salvage's words for a required field that did not fit: why none was read

    def problem(self, field: str, reason: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(f"{field}: {reason}")
        else:
            self.more += 1

    def named(self) -> list[str]:
        """The problems, the count of those past :data:`MAX_PROBLEMS` last."""
        return [*self.problems, more_problems(self.more)] if self.more else self.problems

    def _absent(self, value: Any, field: str, required: bool) -> bool:
        if is_unset(value):
            if required:
                self.problem(field, "missing (the vendor's spec says it is always there)")
            return True
        return False

    def text(self, value: Any, field: str, *, required: bool = False) -> str | None:
        if self._absent(value, field, required):
            return None
        if not isinstance(value, str):
            self.problem(field, f"expected a string, got {json_type(value)}")
            return None
        return value

    def identifier(self, value: Any, field: str) -> str | None:
        """An id the caller will use (a video's, to fetch it): a string with something in it and no
        control character; an empty one is no id, a blank or garbled one a problem too."""
        text = self.text(value, field)
        if not text:
            return None
        if text.isspace() or not text.isprintable():
            self.problem(field, "expected an id, got a blank one or one with control characters")
            return None
        if len(text) > MAX_VENDOR_WORD:  # a cut id names nothing: left out whole
            self.problem(field, f"expected an id, got {len(text):,} characters; left out")
            return None
        return text

    def number(self, value: Any, field: str, *, required: bool = False) -> float | None:
        if self._absent(value, field, required):
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.problem(field, f"expected a number, got {json_type(value)}")
            return None
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            got = "NaN" if number != number else "one too large to use"  # JSON's NaN, or Infinity / 1e400
            self.problem(field, f"expected a finite number, got {got}")
            return None
        return number

    def percent(self, value: Any, field: str, *, required: bool = False) -> float | None:
        """A 0-100 progress as 0.0-1.0; outside 0-100 (by any amount) it is None and a problem.

        Not clamped: a vendor that says 101 or -1 is not saying 100 or 0, and ``number / 100``
        of a number within 0-100 is within 0.0-1.0 exactly (IEEE division is monotonic).
        """
        number = self.number(value, field, required=required)
        if number is None:
            return None
        if not 0.0 <= number <= 100.0:
            self.problem(field, f"expected 0-100, got {number:.15g}; left out")
            return None
        return number / 100.0 + 0.0  # + 0.0: -0.0 reads as 0.0

    def fraction(self, value: Any, maximum: Any, field: str, max_field: str) -> float | None:
        """``value / maximum`` as 0.0-1.0 (Colossyan's progress / maximumProgress).

        A value without a usable maximum has no known scale: None and a problem, never a guess.
        Outside 0..maximum (by any amount) it is None and a problem, as :meth:`percent`. 0 out of
        0 is None, and no problem: nothing is lost (it was a problem on every poll of a queued job).
        """
        number = self.number(value, field)
        if number is None:
            return None  # no progress reported (a maximum alone says nothing)
        top = self.number(maximum, max_field)
        if number == 0 and top == 0:  # 0 of 0: a job with no scale yet (queued) has made no progress to tell
            return None
        if top is None:
            self.problem(field, f"{number:.15g} without a usable {max_field}, so on no known scale; left out")
            return None
        if top <= 0 or not 0.0 <= number <= top:
            self.problem(field, f"{number:.15g} out of {top:.15g} is not a progress; left out")
            return None
        return number / top + 0.0

    def videos(self, state: State, found: Iterable[tuple[Any, str]], *, video_id: str | None = None) -> tuple[str, ...]:
        """The video URLs of a job in ``state``, from the answer's ``(value, field name)`` pairs.

        Kept: absolute http(s) URLs (:func:`is_video_url`) on a succeeded job. Left out and
        named: any other string (an empty one only on a succeeded job: elsewhere it means "no
        video yet"), and a URL on a job in another state (only a succeeded job has a video).
        A URL the answer gives again is left out and named (one video, one file). A succeeded
        job left with no URL and no ``video_id`` is named as :data:`NO_VIDEO`.
        """
        urls: list[str] = []
        kept: set[str] = set()  # what urls holds, looked up in constant time (an answer may list 100,000)
        succeeded = state is State.SUCCEEDED
        for value, field in found:
            text = self.text(value, field)
            if text is None:
                continue
            if not text or text.isspace():
                if succeeded:
                    self.problem(field, f"{_shown(text)} is not a video URL; left out")
            elif (wrong := not_a_video_url(text)) is not None:
                self.problem(field, f"{_shown(text)} {wrong}; left out")
            elif not succeeded:
                self.problem(
                    field, f"a video URL on a job that is {state.value}; left out (only a succeeded job has a video)"
                )
            elif text in kept:  # one video named twice: saved twice, as two files, it would cost a download
                self.problem(field, "the same URL as a video before it; left out")
            else:
                urls.append(text)
                kept.add(text)
        if succeeded and not urls and video_id is None:
            self.problems.append(NO_VIDEO)
        return tuple(urls)

    def unix_time(self, value: Any, field: str, *, required: bool = False) -> datetime | None:
        """A Unix timestamp in seconds (or milliseconds above MS_THRESHOLD, if ``millis``) as an aware UTC datetime."""
        number = self.number(value, field, required=required)
        if number is None:
            return None
        seconds = number / 1000.0 if self.millis and number > MS_THRESHOLD else number
        if not EARLIEST <= seconds < LATEST:
            self.problem(field, f"{number:.15g} is not a plausible Unix time")
            return None
        return datetime.fromtimestamp(seconds, tz=UTC)


# --- parsing with the generated models, salvaging what fits --------------------------------------

M = TypeVar("M")


class _OutOfTrials(Exception):
    pass


class _Trials:
    """Runs the model's ``from_dict`` on candidates, at most MAX_SALVAGE_TRIALS times."""

    def __init__(self, parse: Callable[[Any], Any]) -> None:
        self.parse = parse
        self.left = MAX_SALVAGE_TRIALS

    def error(self, candidate: Any) -> BaseException | None:
        if self.left <= 0:
            raise _OutOfTrials
        self.left -= 1
        try:
            self.parse(candidate)
        except PARSE_ERRORS as exc:
            return exc
        return None


Accepts = Callable[[Any], BaseException | None]


def parse_model(model: type[M], body: Any, fields: Fields) -> M:
    """``model.from_dict(body)``; if the answer does not fit, the same with the parts that break it left out.

    Each part left out is named in ``fields.problems``. Raises :class:`Unreadable` when not
    even a reduced answer parses (no state, a state of the wrong type, not an object).
    """
    from_dict: Callable[[Any], M] = model.from_dict  # type: ignore[attr-defined]
    try:
        return from_dict(body)
    except PARSE_ERRORS as exc:
        first = exc
    if not isinstance(body, dict):
        raise Unreadable(f"expected a JSON object, got {json_type(body)}")
    noted, more = len(fields.problems), fields.more
    try:
        kept = _salvage_dict(body, _Trials(from_dict).error, fields, "")
    except _OutOfTrials:  # the fields that do not fit are too many to tell apart: what the spec requires
        del fields.problems[noted:]  # (the state among it) is read, the rest left out, said once
        fields.more = more
        try:
            kept = _salvage_dict(body, _Trials(from_dict).error, fields, "", core=True)
        except _OutOfTrials:
            raise Unreadable("too many fields do not fit the vendor's spec") from first
        if kept is not None:
            fields.problems.append(TOO_MANY_ODD)
    if kept is None:
        raise Unreadable(_why(first, fields.unfit)) from first
    return from_dict(kept)


def _why(exc: BaseException, unfit: str | None) -> str:
    if isinstance(exc, KeyError) and exc.args:
        return f"{exc.args[0]} is missing"
    return unfit or "the state is not what the vendor's spec describes"


def _salvage(value: Any, accepts: Accepts, fields: Fields, path: str, core: bool = False) -> Any | None:
    if isinstance(value, dict):
        return _salvage_dict(value, accepts, fields, path, core)
    if isinstance(value, list):
        return [] if core and accepts([]) is None else _salvage_list(value, accepts, fields, path, core)
    return None


def _salvage_dict(
    value: dict[str, Any], accepts: Accepts, fields: Fields, path: str, core: bool = False
) -> dict[str, Any] | None:
    """The largest part of ``value`` (found by halving) that ``accepts``; None if not even its
    required keys. ``core``: its required keys, and the others that fit whole (a list among the
    required ones as short as it may be)."""
    kept: dict[str, Any] = {}
    while (exc := accepts(kept)) is not None:  # grow the required keys, one KeyError at a time
        key = exc.args[0] if isinstance(exc, KeyError) and exc.args else None
        if not isinstance(key, str) or key not in value or key in kept:
            return None
        fitted = _fit_key(kept, key, value[key], accepts, fields, path, report=False, core=core)
        if fitted is _NOTHING:
            where = f"{path}.{key}" if path else key
            if not (fields.unfit or "").startswith((f"{where}.", f"{where}[")):  # the deepest one says most
                fields.unfit = f"{where} is {json_type(value[key])}, which does not fit the vendor's spec"
            return None
        kept[key] = fitted

    def add(keys: list[str]) -> None:
        if not keys:
            return
        if accepts({**kept, **{k: value[k] for k in keys}}) is None:
            kept.update((k, value[k]) for k in keys)
        elif len(keys) == 1:
            if core:  # a key that does not fit whole is left out, not taken apart
                return
            fitted = _fit_key(kept, keys[0], value[keys[0]], accepts, fields, path, report=True)
            if fitted is not _NOTHING:
                kept[keys[0]] = fitted
        else:
            half = len(keys) // 2
            add(keys[:half])
            add(keys[half:])

    add([k for k in value if k not in kept])
    return kept


_NOTHING: Final = object()


def _folded(states: Mapping[str, State]) -> dict[str, tuple[State, str]]:
    """A state table by its words case-folded (a word whose entries so name different states is
    left out: ambiguous; ``Done``, ``done`` and ``DONE`` all succeeded are one)."""
    return _folded_items(tuple(states.items()))


@functools.cache  # one per adapter's table, made when a word first misses it
def _folded_items(items: tuple[tuple[str, State], ...]) -> dict[str, tuple[State, str]]:
    table: dict[str, tuple[State, str]] = {}
    clashes: set[str] = set()
    for word, state in items:
        fold = word.casefold()
        if fold in table and table[fold][0] is not state:
            clashes.add(fold)
        table.setdefault(fold, (state, word))
    return {fold: known for fold, known in table.items() if fold not in clashes}


def _fit_key(
    kept: dict[str, Any],
    key: str,
    value: Any,
    accepts: Accepts,
    fields: Fields,
    path: str,
    *,
    report: bool,
    core: bool = False,
) -> Any:
    """``value`` if it fits beside ``kept``; else the part of it that does; else _NOTHING (reported)."""
    where = f"{path}.{key}" if path else key
    if accepts({**kept, key: value}) is None:
        return value
    part = _salvage(value, lambda sub: accepts({**kept, key: sub}), fields, where, core)
    if part is not None:
        return part
    if report and value is not None:  # a null where the spec has an optional object (OpenAI's
        # "error": null on every video that has not failed) is the field left out: nothing lost
        fields.problem(where, f"{json_type(value)} that does not fit the vendor's spec; left out")
    return _NOTHING


def _salvage_list(
    value: list[Any], accepts: Accepts, fields: Fields, path: str, core: bool = False
) -> list[Any] | None:
    if accepts([]) is not None:
        return None
    kept: list[Any] = []

    def add(indices: list[int]) -> None:
        if not indices:
            return
        if accepts(kept + [value[i] for i in indices]) is None:
            kept.extend(value[i] for i in indices)
        elif len(indices) == 1:
            i = indices[0]
            part = _salvage(value[i], lambda sub: accepts([*kept, sub]), fields, f"{path}[{i}]", core)
            if part is not None:
                kept.append(part)
            else:
                fields.problem(f"{path}[{i}]", f"{json_type(value[i])} that does not fit the vendor's spec; left out")
        else:
            half = len(indices) // 2
            add(indices[:half])
            add(indices[half:])

    add(list(range(len(value))))
    return kept


# --- which job an answer is for -----------------------------------------------------------------


def check_echo(where: tuple[str, ...], task_id: str, body: Any, fields: Fields) -> None:
    """Raise :class:`ForeignAnswer` when the answer's field at ``where`` (an adapter's ``echoed_id``)
    holds an id other than ``task_id``: it is another job's answer (one left on a kept-alive
    connection by a proxy or a server that answered twice is read as the next request's, whatever
    that asked about), and its state, videos and error are that job's.

    Compared exactly, as strings (the vendors that echo the id type it a string). Degrade, don't
    drop: an answer without the field (absent, null, an empty string, or a path that crosses no
    object) says nothing of its job and passes; one of another type is not compared, and named."""
    if not where:
        return
    value: Any = body
    for key in where:
        if not isinstance(value, Mapping):
            return
        value = value.get(key)
    if value is None or value == "":
        return
    field = ".".join(where)
    if not isinstance(value, str):
        fields.problem(
            field, f"expected the job's id, got {json_type(value)}; which job the answer is for is not checked"
        )
        return
    if value != task_id:
        raise ForeignAnswer(f"{field} is {_shown(value)}")


# --- the protocol and the base class -------------------------------------------------------------


@runtime_checkable
class VendorAdapter(Protocol):
    """What the overlay needs from one vendor. Implemented by ``videojobs.vendors.<slug>``."""

    name: ClassVar[str]
    """The vendor's slug: ``vozo``. Also the prefix of its env variables (``VOZO_API_KEY``)."""

    default_base_url: ClassVar[str]
    """The server URL in the vendor's spec."""

    states: ClassVar[Mapping[str, State]]
    """Every status value the vendor documents (and known aliases) → State."""

    client_class: ClassVar[type[Any]]
    """The generated ``AuthenticatedClient``."""

    endpoint: ClassVar[ModuleType]
    """The generated endpoint module; the overlay uses its public ``build_request_kwargs``."""

    model: ClassVar[type[Any]]
    """The generated model of the 200 answer."""

    millis: ClassVar[bool]
    """Whether the vendor's Unix times may be in milliseconds (an assumption the adapter names)."""

    echoed_id: ClassVar[tuple[str, ...]]
    """Where the vendor's answer repeats the id of the job asked about, as the keys leading to it
    from the top of the answer (``("id",)``; ``()``: nowhere). Only a field the vendor's page
    documents as that id: an answer whose field holds another id is refused as for another job
    (see :func:`check_echo`), so a field that merely looks like it would fail every call."""

    def check_envelope(self, body: Any) -> EnvelopeError | None:
        """For a vendor that wraps errors in a 2xx answer: the error in ``body``, if any.
        Raise Unreadable if the envelope itself cannot be read."""
        ...

    def to_status(self, task_id: str, model: Any, fields: Fields) -> JobStatus:
        """Map the typed 200 model to a JobStatus, reading fields through ``fields``.
        Raise Unreadable only when the state cannot be read."""
        ...


class _FromSpec:
    """A class attribute read once from the vendor's spec, shipped in its generated package."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: object, owner: type[BaseAdapter]) -> str:
        value = owner.spec_server()
        setattr(owner, self.name, value)  # read once per adapter class
        return value


def _pickle_unset_as_itself(package: str) -> None:
    """Make a generated package's ``UNSET`` pickle and copy as itself (``copyreg``, the registry
    for classes one does not own). Its models test ``value is not UNSET``, and a pickled or
    deep-copied ``JobStatus`` (multiprocessing, Celery's pickle serializer) brought back a new
    ``Unset()`` in ``raw``: ``raw.to_dict()`` then held it and was no longer JSON."""
    import copyreg
    import importlib

    try:
        unset = importlib.import_module(f"{package}.types").UNSET
    except (ImportError, AttributeError):  # not an openapi-python-client package: nothing to mend
        return
    if type(unset).__name__ == "Unset":  # its own class, not a shared one (an object() would be every object's)
        copyreg.pickle(type(unset), _as_unset)


def _as_unset(unset: object) -> str:
    return "UNSET"  # pickle and copy read a string as "the module's global of that name": the same object


class BaseAdapter:
    """Shared parts of the adapters. Subclasses set the class variables and ``to_status``;
    what the vendor's spec says (its server) is read from the spec, not restated here."""

    name: ClassVar[str]
    default_base_url: ClassVar[str] = _FromSpec()  # type: ignore[assignment]
    states: ClassVar[Mapping[str, State]]
    client_class: ClassVar[type[Any]]
    endpoint: ClassVar[ModuleType]
    model: ClassVar[type[Any]]
    millis: ClassVar[bool] = False
    echoed_id: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        endpoint = cls.__dict__.get("endpoint")
        if isinstance(endpoint, ModuleType):
            _pickle_unset_as_itself(endpoint.__name__.partition(".")[0])

    @classmethod
    def spec_server(cls) -> str:
        """The first server URL of the spec in the adapter's generated package (``openapi.json``)."""
        import importlib.resources
        import json

        package = cls.endpoint.__name__.partition(".")[0]
        doc = json.loads(importlib.resources.files(package).joinpath("openapi.json").read_text(encoding="utf-8"))
        url: str = doc["servers"][0]["url"]
        return url

    def check_envelope(self, body: Any) -> EnvelopeError | None:
        return None

    @staticmethod
    def final_progress(state: State, progress: float | None) -> float | None:
        """A succeeded job is at 1.0, whatever the vendor last said (for adapters kept elsewhere,
        which import only ``videojobs``'s public names)."""
        return final_progress(state, progress)

    def state(self, vendor_state: Any, field: str, fields: Fields | None = None) -> tuple[State, str]:
        """``(State, the vendor's word)``; a word not in the table is UNKNOWN, never an error. A
        word the table has in another case or with spaces around it (``"Done"``, ``" finished"``)
        is read as that word: UNKNOWN never ends, so a finished job's wait would run to its
        deadline and its video be left out. With ``fields``, either is named in ``problems``."""
        if is_unset(vendor_state):
            left_out = f"{field}: "  # there, but of a type the spec does not allow: the salvage left it out
            said = next((p for p in fields.problems if p.startswith(left_out)), None) if fields is not None else None
            raise Unreadable(said.removesuffix("; left out") if said else f"{field} is missing")
        word = getattr(vendor_state, "value", vendor_state)
        if not isinstance(word, str):
            raise Unreadable(f"{field} is {json_type(word)}, not a word")
        state = self.states.get(word)
        if state is not None:
            return state, word
        if len(word) > MAX_VENDOR_WORD:  # no table's word: kept as vendor_state, cut as a code is
            if fields is not None:
                fields.problem(field, f"a state word of {len(word)} characters, not one the vendor documents; cut")
            return State.UNKNOWN, word[:MAX_VENDOR_WORD] + "…"
        known = _folded(self.states).get(word.strip().casefold())
        if known is not None:
            if fields is not None:
                fields.problem(field, f"{_shown(word)} read as {known[1]!r}, the word the vendor documents")
            return known[0], word
        if fields is not None:
            fields.problem(field, f"{_shown(word)} is not a state the vendor documents; the job's state is unknown")
        return State.UNKNOWN, word

    def job_error(
        self, state: State, fields: Fields, *, message: str | None, code: str | None = None, default: str
    ) -> JobError | None:
        """The JobError of a failed or canceled job; an error the vendor reports on another state is a problem.
        A message with nothing to read in it (blank, or control characters only) is no message:
        ``default`` stands in, and it is a problem; an empty code is no code."""
        if message is not None and not any(ch.isprintable() and not ch.isspace() for ch in message):
            if message:
                fields.problem("error", "the vendor's error message is blank (or control characters only)")
            message = None
        if message is not None and len(message) > MAX_ERROR_MESSAGE:
            fields.problem(
                "error", f"the vendor's error message is {len(message)} characters: cut to {MAX_ERROR_MESSAGE}"
            )
            message = message[:MAX_ERROR_MESSAGE] + "…"
        if code is not None and len(code) > MAX_VENDOR_WORD:
            fields.problem("error", f"the vendor's error code is {len(code)} characters: cut to {MAX_VENDOR_WORD}")
            code = code[:MAX_VENDOR_WORD] + "…"
        code = code or None
        if state in (State.FAILED, State.CANCELED):
            return JobError(code=code, message=message or default)
        if message or code:  # an empty message is no error
            fields.problem("error", f"an error is reported on a job that is {state.value}; ignored")
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def final_progress(state: State, progress: float | None) -> float | None:
    """A succeeded job is at 1.0, whatever the vendor last said."""
    return 1.0 if state is State.SUCCEEDED else progress
