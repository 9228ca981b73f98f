"""The README's Celery quick start, runnable (``make celery-demo`` runs it against a local Redis
and the sandbox). From this folder::

    celery -A renders worker --loglevel INFO        # the worker: it follows every tracked job
    python renders.py duomi:8cb280b3-442e-1db2      # track jobs; each callback prints in the worker's log

``REDIS_URL`` (default ``redis://localhost:6379/0``) is the broker and videojobs' store; the
worker's client reads ``<SLUG>_API_KEY`` and ``<SLUG>_BASE_URL`` as ``videojobs.Client()`` does.
Importing this module tracks nothing: ``track()`` runs only in ``main()``.
"""

import os
import sys

from celery import Celery

from videojobs.celery import install, track

app = Celery("renders", broker=os.environ.get("REDIS_URL", "redis://localhost:6379/0"))
app.conf.broker_transport_options = {"visibility_timeout": 300}  # > a callback's backoff + time limit (150 s)
app.conf.broker_connection_retry_on_startup = True  # a worker started before Redis waits for it
install(app)  # registers videojobs.poll and videojobs.deliver


@app.task(name="renders.video_ready")
def video_ready(result: dict) -> None:  # status.to_dict() + "exception" (None, or its type and message)
    error, job_error = result["exception"], result.get("error") or {}  # exception: a timeout, a 404 ...
    ended = f"{error['type']}: {error['message']}" if error else result["state"]
    video = " ".join(result.get("video_urls") or []) or result.get("video_id") or job_error.get("message", "")
    print(f"video_ready: {result['ref']} {ended} {video}", flush=True)  # in the worker's log


def main(refs: list[str]) -> None:
    for ref in refs:
        track(ref, on_done=video_ready.s(), timeout=3600)  # returns at once; the worker polls
        print("tracking", ref)


if __name__ == "__main__":
    main(sys.argv[1:])
