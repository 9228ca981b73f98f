"""References, keys, base URLs and a client's own arguments: what is checked before any request (no I/O)."""

from __future__ import annotations

import os
import re
import reprlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from ._exceptions import ConfigurationError, InvalidReferenceError, UsageError, VideoJobsError
from ._registry import known_vendors, targets

if TYPE_CHECKING:
    import ssl

    from ._adapter import VendorAdapter

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_DOWNLOADS",
    "DEFAULT_MAX_REQUESTS",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_REQUEST_TIMEOUT",
    "VendorSettings",
    "check_callback",
    "check_environ",
    "check_flag",
    "check_rate_limits",
    "check_seconds",
    "check_task_id",
    "check_transport",
    "check_vendor_mapping",
    "check_verify",
    "check_whole",
    "glimpse",
    "refer",
    "resolve_settings",
    "shown_url",
    "split_ref",
]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

DEFAULT_REQUEST_TIMEOUT: Final = 30.0
"""One request attempt's deadline (``request_timeout``), connect to last byte: httpx's default is 5 s per
socket operation, which a slow vendor's render queue outlasts; 30 s bounds the whole attempt."""
DEFAULT_MAX_RETRIES: Final = 2
DEFAULT_MAX_REQUESTS: Final = 64
"""Status requests in flight at once in a ``wait_all``, over every vendor: enough to keep thousands
of jobs polled at their policies' pace, few enough that a stalled vendor holds no more sockets."""
DEFAULT_MAX_CONNECTIONS: Final = DEFAULT_MAX_REQUESTS
"""Connections per vendor: as many as ``wait_all`` has requests in flight, so one vendor can use
them all. At 10, a vendor answering in 300 ms got at most 33 polls a second from a wait_all of
thousands of jobs, and on loopback 10 connections cost 8 us of client CPU a poll against 64 (less
batching per loop turn). Connections open on demand: a status() loop keeps one. (httpcore's pool
scans its connections on every request, encode/httpcore#928: 64 is a few microseconds.)"""
DEFAULT_MAX_DOWNLOADS: Final = 4
"""Jobs saving their files at once (``wait_all(dest=)``, ``download_all``): a few streams fill a
link; more only split it (and open more files and ``.part`` files at once)."""
DEFAULT_MAX_RESPONSE_BYTES: Final = 4 * 1024 * 1024
"""A status answer is a few hundred bytes; 4 MiB (decoded) leaves room for any real one."""


# --- references and task ids ---------------------------------------------------------------------


GLIMPSE: Final = 12
"""Characters of a value a message quotes whole, when the value may be a key typed in the wrong
place (an API key is longer: 20 and more); a longer one is shown by its first six and length."""


def glimpse(value: str) -> str:
    """``value`` quoted for a message that refuses it, short of a key put where it does not go."""
    if len(value) <= GLIMPSE:
        return repr(value)
    return f"{value[:6]!r}... ({len(value)} characters)"


def shown_url(value: object) -> str:
    """A refused base URL as a message shows it: scheme and host (never a user name, password,
    path or query), or a glimpse of a value that is no URL at all (it may be a key)."""
    if not isinstance(value, str):
        return f"of type {type(value).__name__}"
    scheme, sep, rest = value.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]{0,15}", scheme):
        if "@" in value:  # "user:password@host" without its scheme: not even its start
            return f"of {len(value)} characters"
        return glimpse(value)
    host = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    port = host.rpartition(":")[2] if ":" in host else ""
    if "@" in re.split(r"[?#]", rest, maxsplit=1)[0] or (port and not port.isdigit()):
        # a user name and password (one with "/", "?" or "#" in it ends no host, or ends it
        # with a "port" that is none): nothing of it is shown
        return repr(f"{scheme}://...")
    return repr(f"{scheme}://{host}" + ("/..." if len(rest) > len(host) else ""))


def split_ref(ref: str) -> tuple[str, str]:
    """``"vozo:task-123"`` → ``("vozo", "task-123")``, split on the first colon."""
    if not isinstance(ref, str):
        raise InvalidReferenceError(f"a job reference is a string '<vendor>:<task id>', not {type(ref).__name__}")
    slug, sep, task_id = ref.partition(":")
    if not sep or not slug:  # no colon: it may be a key typed where a job goes (only a glimpse of it)
        raise InvalidReferenceError(
            f"{glimpse(ref)} is not a job reference: expected '<vendor>:<task id>', e.g. 'vozo:task-123'"
        )
    if slug not in targets():
        raise ConfigurationError(
            f"unknown vendor {glimpse(slug)} in a job reference; {nearest(slug)}known vendors: "
            f"{', '.join(known_vendors())}"
        )
    return slug, check_task_id(slug, task_id)


def nearest(name: str) -> str:
    """A hint for an unknown vendor name: the known one it most likely meant ("did you mean vozo? "),
    or "" (only known names are shown: ``name`` may be a key typed in the wrong place)."""
    import difflib  # an error's path only

    known = targets()
    if name.lower() in known:
        return f"did you mean {name.lower()} (vendor names are lower case)? "
    near = difflib.get_close_matches(name.lower(), list(known), n=2, cutoff=0.6)
    return f"did you mean {' or '.join(near)}? " if near else ""


def refer(exc: VideoJobsError, ref: object) -> VideoJobsError:
    """``exc`` with ``error.ref`` set to the job reference its call was about, unless ``ref`` names
    no known vendor: a string that is no reference at all may be a key pasted where a job goes,
    and its error's message shows only a glimpse of it (``split_ref``); ``ref`` would show it whole."""
    if isinstance(ref, str) and ref.partition(":")[0] in targets() and ":" in ref:
        exc.ref = ref
    return exc


MAX_TASK_ID: Final = 1024
"""The longest task id sent, in characters. Vendors' ids are 20-64; percent-encoded (12 bytes for
a 4-byte character) the longest stays under httpx's 64 KiB URL limit, past which the request
could not even be built."""


def check_task_id(vendor: str, task_id: str) -> str:
    """Refuse ids that cannot be sent as one path segment; everything else is percent-encoded."""
    if not isinstance(task_id, str):
        raise InvalidReferenceError(f"task id must be a string, not {type(task_id).__name__}", vendor=vendor)
    if len(task_id) > MAX_TASK_ID:
        raise InvalidReferenceError(f"task id is {len(task_id):,} characters, more than {MAX_TASK_ID:,}", vendor=vendor)
    if not task_id.isascii():
        try:
            task_id.encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate: what a command-line argument not in UTF-8 becomes
            raise InvalidReferenceError(
                f"task id {glimpse(task_id)} is not text that can be sent (it holds a lone surrogate, as a "
                "command-line argument that is not UTF-8 does)",
                vendor=vendor,
            ) from exc
    if task_id in ("", ".", ".."):
        what = "empty" if not task_id else f"{task_id!r} (it would be normalized out of the URL path)"
        raise InvalidReferenceError(f"task id is {what}", vendor=vendor)
    if _CONTROL.search(task_id):
        raise InvalidReferenceError(f"task id {glimpse(task_id)} contains control characters", vendor=vendor)
    if task_id != task_id.strip():  # "vozo: abc" (a space after the colon) was sent as %20abc: a 404
        raise InvalidReferenceError(f"task id {glimpse(task_id)} has spaces around it", vendor=vendor)
    return task_id


# --- settings: keyword arguments, then the environment, then the spec ---------------------------


class VendorSettings(NamedTuple):
    """What one vendor is reached with. The key never shows in ``repr()``.

    A NamedTuple (frozen, compared by value), not an attrs class: ``import videojobs`` loads this
    module to check a client's arguments, and attrs (as httpx) loads with the first vendor used.
    """

    name: str
    base_url: str
    api_key: str

    def __repr__(self) -> str:
        return f"VendorSettings(name={self.name!r}, base_url={self.base_url!r})"


def env_name(vendor: str, what: str) -> str:
    return f"{vendor.upper()}_{what}"


def base_url_problem(base_url: object, *, credentials: bool = False) -> str | None:
    """What is wrong with a vendor's base URL (or, ``credentials`` allowed, a proxy's), in words
    that follow its name (None: nothing)."""
    import httpx  # once a vendor, as its session opens: ``import videojobs`` does not load httpx

    try:
        url = httpx.URL(base_url)  # type: ignore[arg-type]
        host = url.host  # decodes an IDNA host: a name IDNA refuses ("xn--zz") raises here, not later
    except (httpx.InvalidURL, TypeError, UnicodeError):
        return "is not a URL"
    if url.scheme not in ("http", "https") or not host:  # a proxy too: socks5 is not one either face takes
        return "is not an absolute http(s) URL"
    if not _is_ip(host):
        try:
            host.encode("idna")  # what a lookup needs: an empty label ("a..b") or one over 63 fails there
        except UnicodeError:
            return "has a host name that cannot be looked up (an empty label, or one over 63 characters)"
    if url.userinfo and not credentials:  # the sync face sent them as Basic auth, not the key; aiohttp: ValueError
        return "holds a user name or password: the API key is set apart, and sent as the vendor asks"
    if url.port is not None and not 0 < url.port < 65536:
        return "has a port out of 1-65535"
    return None


def environment_proxy_url(base_url: str) -> str | None:
    """The proxy the environment names for ``base_url``, as urllib (and httpx) read it: the lower-case
    variable before the upper-case one, the scheme's (``HTTP(S)_PROXY``) before ``ALL_PROXY``,
    none when ``NO_PROXY`` exempts the host; ``http://`` when it has no scheme (``proxy:3128``).
    That one is checked as base URLs are (credentials allowed): a proxy no request could go
    through was a bare ValueError, UnicodeError or ImportError at the first request (the async
    face's showed its password). The others are never read: they are not used."""
    import urllib.request

    import httpx

    url = httpx.URL(base_url)
    hosts = [url.host] if url.port is None else [url.host, f"{url.host}:{url.port}"]  # NO_PROXY=host:port too
    if any(urllib.request.proxy_bypass_environment(h) for h in hosts):  # type: ignore[attr-defined]  # not in typeshed
        return None
    proxies = urllib.request.getproxies_environment()
    kind = url.scheme if proxies.get(url.scheme) else "all"
    chosen = proxies.get(kind)
    if not chosen:
        return None
    named = proxies[kind]
    if "://" not in chosen:
        chosen = f"http://{chosen}"
    problem = base_url_problem(chosen, credentials=True)
    if problem is not None:
        import os

        # which variable urllib read (it reads any case: Https_Proxy too), the lower-case one first
        names = sorted((n for n in os.environ if n.lower() == f"{kind}_proxy"), key=lambda n: n != n.lower())
        where = next((n for n in names if os.environ[n] == named), "")
        raise ConfigurationError(
            f"the proxy the environment names for {url.scheme}:// URLs"
            + (f" ({where})" if where else "")
            + f", {shown_url(chosen)}, {problem}"
        )
    return chosen


OTHER_LOOP: Final = (
    "this AsyncClient is in use on another event loop that is still open; "
    "an AsyncClient's connections belong to one loop: create one client per loop"
)
"""An AsyncClient's vendors and file client used from a second open loop (``_sessions``, ``_client``)."""


def basic_credential(user: str, password: str) -> str:
    """A Basic credential's value, as httpx makes a proxy's: ``user:password`` in UTF-8, base64."""
    import base64

    return base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def proxy_secrets(base_url: str) -> list[str]:
    """What of the proxy the environment names for ``base_url`` is a secret, for the scrubbers: its
    password, ``user:password`` and the Basic credential made of them (a proxy may quote the
    ``Proxy-Authorization`` it was sent in a 407, a status line it breaks, a page). None when
    there is no proxy, or one no request could use (refused where it would be used)."""
    from urllib.parse import unquote, urlsplit

    try:
        chosen = environment_proxy_url(base_url)
    except ConfigurationError:
        return []
    parts = urlsplit(chosen or "")
    if parts.password is None and not parts.username:
        return []
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    pair, basic = f"{user}:{password}", basic_credential(user, password)
    # with no password, the user name is the credential (a token as the user: http://APIKEY:@proxy)
    secret = password or user
    return [s for s in dict.fromkeys((secret, pair, basic)) if len(s) >= MIN_SECRET]


MIN_SECRET: Final = 8
"""The shortest of a proxy's secrets scrubbed (``_scrub.MIN_SCRUBBABLE``: shorter ones corrupt
answers and protect nothing; the Basic value is always this long): a shorter one is not passed
to the scrubbers, which would warn about it as a too-short API key."""


def _is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def resolve_settings(
    adapter: type[VendorAdapter],
    api_keys: Mapping[str, str],
    base_urls: Mapping[str, str],
    environ: Mapping[str, str],
) -> VendorSettings:
    vendor = adapter.name
    key_var, url_var = env_name(vendor, "API_KEY"), env_name(vendor, "BASE_URL")
    key = api_keys.get(vendor) or environ.get(key_var)
    if not key:
        raise ConfigurationError(f"no API key: pass api_keys={{{vendor!r}: ...}} or set {key_var}", vendor=vendor)
    source = f"api_keys[{vendor!r}]" if api_keys.get(vendor) else key_var
    check_key(key, source, vendor)
    base_url = base_urls.get(vendor) or environ.get(url_var) or adapter.default_base_url
    problem = base_url_problem(base_url)
    if problem is not None:  # httpx's own words are not chained: they quote the URL, password and all
        where = f"base_urls[{vendor!r}]" if base_urls.get(vendor) else url_var
        raise ConfigurationError(f"base URL {shown_url(base_url)} (from {where}) {problem}", vendor=vendor)
    return VendorSettings(name=vendor, base_url=str(base_url).rstrip("/"), api_key=key)


def check_key(key: object, source: str, vendor: str) -> None:
    """A key must be printable ASCII without whitespace (an HTTP header value; a stray space,
    zero-width space or byte-order mark from a copy-paste is the usual culprit). The error names
    where the key came from and what is wrong, never the key."""
    if not isinstance(key, str):
        raise ConfigurationError(f"the API key from {source} must be a string, not {type(key).__name__}", vendor=vendor)
    for position, ch in enumerate(key, 1):
        if ch.isascii() and ch.isprintable() and not ch.isspace():
            continue
        if ch.isspace():
            what = "whitespace"
        elif ch.isascii():
            what = "a control character"
        else:
            what = f"a non-ASCII character (U+{ord(ch):04X})"
        raise ConfigurationError(
            f"the API key from {source} contains {what} at position {position}; keys are printable ASCII",
            vendor=vendor,
        )


def check_vendor_mapping(name: str, mapping: Mapping[str, Any] | None) -> dict[str, Any]:
    """A copy of a per-vendor mapping argument, refusing unknown slugs (typos)."""
    if mapping is None:
        return {}
    if not isinstance(mapping, Mapping):
        raise ConfigurationError(f"{name} must be a mapping of vendor slug to value, not {type(mapping).__name__}")
    unknown = sorted(str(n) for n in set(mapping) - set(targets()))
    if unknown:  # a mapping the wrong way round ({key: "vozo"}) has a key for a name: glimpses only
        raise ConfigurationError(
            f"{name} names unknown vendor(s) {', '.join(map(glimpse, unknown))}; "
            f"{''.join(nearest(n) for n in unknown[:1])}known vendors: "
            f"{', '.join(known_vendors())}"
        )
    return dict(mapping)


# --- a client's own arguments -------------------------------------------------------------------


MAX_WHOLE: Final = 2**53
"""The largest count or size taken (``max_retries``, ``max_response_bytes`` ...): the largest
whole number a float holds exactly; they meet floats (a status call's budget is its timeout
times ``max_retries + 1``), and ``10**400`` would overflow one."""
MAX_SECONDS: Final = 1e9
"""The longest timeout taken, about 31 years (a deadline past it means none: pass None where a
call takes it). A socket's timeout must fit the platform's time_t (``socket.settimeout(1e10)``
overflows), and ``10**400`` seconds would overflow a float."""


def check_whole(name: str, value: object, minimum: int) -> int:
    """A whole-number argument (``max_retries``, ``max_requests``, ``max_downloads`` ...), checked:
    a :class:`UsageError` naming the argument and the value (an argument, not the environment)."""
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_WHOLE:
        limit = " (at most 2**53)" if isinstance(value, int) and value > MAX_WHOLE else ""
        raise UsageError(f"{name} must be a whole number >= {minimum}{limit}, not {reprlib.repr(value)}")
    return value


def check_many(name: str, items: object) -> list[Any]:
    """A batch's jobs as a list: any iterable but a string (whose characters would each be taken
    for a job), checked (a :class:`UsageError`)."""
    if isinstance(items, (str, bytes)):
        raise UsageError(f"{name} must be a list of jobs, not one {type(items).__name__} ({reprlib.repr(items)}): "
                         "wrap it in a list")  # fmt: skip
    if not isinstance(items, Iterable):
        raise UsageError(f"{name} must be a list (an iterable) of jobs, not {type(items).__name__}")
    return list(items)


def check_seconds(name: str, value: object, what: str = "a positive number of seconds") -> float:
    """A positive number of seconds (or of requests per second) up to :data:`MAX_SECONDS`,
    checked (a :class:`UsageError` that says ``what`` it must be)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_SECONDS:
        limit = f" (at most {MAX_SECONDS:g})" if isinstance(value, (int, float)) and value > MAX_SECONDS else ""
        raise UsageError(f"{name} must be {what}{limit}, not {reprlib.repr(value)}")
    return float(value)


def check_timeout(name: str, value: object) -> float | None:
    """A call's whole timeout: :func:`check_seconds`, or None (no deadline)."""
    return None if value is None else check_seconds(name, value, "a positive number of seconds or None")


def check_callback(name: str, value: object) -> None:
    """A callback argument (``on_update``, ``on_poll_error``, ``on_progress``): None, or a plain
    callable. It is called, never awaited: an ``async def`` would only make coroutines that never
    run (and a lambda that returns one is refused when it does: ``_exceptions.not_awaited``)."""
    if value is None:
        return
    if not callable(value):
        raise UsageError(f"{name} must be a function or None, not {type(value).__name__}")
    if _is_async(value):
        raise UsageError(
            f"{name} must be a plain function, not an async one: it is called, never awaited "
            "(from a plain one, start a task with asyncio.get_running_loop().create_task())"
        )


def check_policy(value: object) -> None:
    """``policy``: None, or an object with a plain ``next_delay(history)`` (a class is refused:
    ``FixedPolicy`` for ``FixedPolicy(5)`` failed only after each job's first poll)."""
    if value is None:
        return
    if isinstance(value, type):
        raise UsageError(f"policy must be a policy object, not the class {value.__name__}: pass {value.__name__}(...)")
    next_delay = getattr(value, "next_delay", None)
    if not callable(next_delay):
        raise UsageError(
            f"policy must have a next_delay(history) method (see PollingPolicy), not {type(value).__name__}"
        )
    if _is_async(next_delay):
        raise UsageError(f"policy {type(value).__name__}.next_delay must be a plain method, not an async one")


def _is_async(fn: object) -> bool:
    import inspect  # loaded by then (attrs imports it); not on ``import videojobs``'s path

    call = None if inspect.isroutine(fn) else type(fn).__dict__.get("__call__")  # an object's async __call__
    return inspect.iscoroutinefunction(fn) or (call is not None and inspect.iscoroutinefunction(call))


def check_flag(name: str, value: object) -> bool:
    """A yes/no argument: a bool (or anything with a truth value) but a string, whose ``"false"``
    would read as true (a :class:`UsageError`)."""
    if isinstance(value, (str, bytes)):
        raise UsageError(f"{name} must be True or False, not {reprlib.repr(value)}")
    return bool(value)


def check_verify(value: object) -> bool | ssl.SSLContext:
    """``verify``: True, False or an :class:`ssl.SSLContext`. httpx's older forms are refused: a
    path (a CA bundle: ``ssl.create_default_context(cafile=...)`` or ``SSL_CERT_FILE``), or any
    other object, which one face would take for True and the other reject at the first request."""
    if isinstance(value, bool):
        return value
    import ssl  # loaded by then if a context was passed; ``Client()`` alone does not load it

    if isinstance(value, ssl.SSLContext):
        return value
    raise UsageError(
        f"verify must be True, False or an ssl.SSLContext, not {type(value).__name__}"
        + (
            " (for a CA bundle: ssl.create_default_context(cafile=...), or SSL_CERT_FILE)"
            if isinstance(value, str)
            else ""
        )
    )


def check_transport(value: object, asynchronous: bool) -> None:
    """``transport``: an httpx transport of the face's kind (``httpx.BaseTransport`` for
    ``Client``, ``httpx.AsyncBaseTransport`` for ``AsyncClient``). httpx is loaded by then: the
    caller made the transport with it."""
    import httpx

    wanted = httpx.AsyncBaseTransport if asynchronous else httpx.BaseTransport
    if not isinstance(value, wanted):
        face = "AsyncClient" if asynchronous else "Client"
        raise UsageError(f"transport must be an httpx.{wanted.__name__} for {face}, not {type(value).__name__}")


def check_environ(value: Mapping[str, str] | None) -> Mapping[str, str]:
    """``environ``: a mapping of variable name to value, or None for ``os.environ``."""
    if value is None:
        return os.environ
    if not isinstance(value, Mapping):
        raise UsageError(f"environ must be a mapping of variable name to value, not {type(value).__name__}")
    return value


def check_rate_limits(rate_limits: Mapping[str, float | None] | None) -> dict[str, float | None]:
    """``rate_limits``: known vendors only, each a positive rate or None."""
    checked: dict[str, float | None] = check_vendor_mapping("rate_limits", rate_limits)
    for slug, rate in checked.items():
        if rate is not None:
            check_seconds(f"rate_limits[{slug!r}]", rate, "a positive number of requests per second")
    return checked
