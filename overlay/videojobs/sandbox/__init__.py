"""The vendor sandbox: all five vendors' status endpoints, simulated offline.

One ASGI application, two ways to run it::

    sandbox = Sandbox(clock=ScaledClock(60))        # a 2-minute job plays in 2 seconds
    client = videojobs.Client(**sandbox.client_kwargs())   # embedded: no port, no key to set
    # or videojobs.AsyncClient(**sandbox.client_kwargs(asynchronous=True))

    $ videojobs sandbox --port 8710                 # a real server (uvicorn)
    $ python -m videojobs.sandbox --port 8710       # the same
    $ curl -H 'Authorization: Bearer sk-sandbox' http://127.0.0.1:8710/v1/videos/tasks/demo-1

Every vendor is served at its real path (Colossyan under ``/api/v1``), answers in the
exact shapes its page documents, and accepts the key ``sk-sandbox`` (``api_key=``).

Jobs
----
Any task id is a job: the id chooses its script, so results are reproducible. Unless the
id says otherwise, the script is drawn (seeded by the id) from a realistic population:
queue ~ Exp(8 s), run lognormal with median 90 s (10 s - 20 min), progress a noisy
S-curve in whole percent, a third of the jobs sitting at 99 % before the end. The id's
dash-separated tokens choose the rest (others are free text):

    ok | fail | cancel      outcome (default ok; cancel is Colossyan's "deleted")
    q<s>  d<s>  stall<s>    queue, run and 99 %-stall seconds        e.g. demo-q2-d30-stall5
    novideo                 succeeds with no URL and no video id
    at_<vendor state>       always reports that state                e.g. j1-at_preprocessing_finished
    e<fault>x<n>            the first n polls get the fault          e.g. j2-e429x2
    e<fault>                every poll gets the fault                e.g. j3-e404

``POST /sandbox/jobs {"vendor": "duomi", "run": 30, "outcome": "failed", "faults": {"429": 2}}``
creates a job now and answers ``{"vendor", "id", "ref"}`` (the id spells the options out);
``GET /sandbox/jobs`` lists jobs with their phase and poll counts; ``GET /sandbox/health``
(with ``served``, ``throttled`` and ``refused`` counts per vendor);
``POST /sandbox/outage {"vendor": "duomi", "seconds": 60}`` makes a vendor answer 503 for a while;
``POST /sandbox/limits {"vendor": "duomi", "rate": 20}`` changes (or sets) its rate limit from now on;
``POST /sandbox/reset`` starts afresh (no jobs, no counts, the clock and timestamps back at the start).

Faults on demand
----------------
Per job (``e<fault>`` tokens, or ``faults`` when created), or per request with the query
``?fault=<name>`` or the header ``X-Sandbox-Fault: <name>``:

    401        the vendor's 401 (JimmyAI: HTTP 200 with code 40100), as for a wrong key
    404        the vendor's not-found answer (JimmyAI: HTTP 200 with code 40400; its page lists
               no error codes: the sandbox sends the HTTP status and ``00``, as ``20000`` is 200)
    429        too many requests, with ``Retry-After`` (``retry_after=``, default 1 s; whole seconds, up)
    500        JSON 500;  502  nginx's HTML page;  520  Cloudflare's plain-text 520
    html       HTTP 200 with an HTML maintenance page
    malformed  HTTP 200 with the real body cut in half
    slow       the real answer after ``slow_seconds`` (default 5 s, real time)
    drop       the connection is cut mid-answer

A wrong key always gets the vendor's 401. ``Sandbox(auto_create=False)`` answers 404 for
ids it has not created.
"""

from ._app import Answer, Sandbox
from ._clock import ScaledClock
from ._jobs import Script, Snapshot, script_for

__all__ = ["Answer", "Sandbox", "ScaledClock", "Script", "Snapshot", "script_for"]
