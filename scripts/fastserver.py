"""A loopback server that is never the bottleneck: a bare asyncio protocol answering as Vozo does.

``python scripts/fastserver.py PORT POLLS``: every ``GET /<anything>/<task_id>`` is counted per
task id; the first ``POLLS - 1`` answers say ``processing``, the next says ``done`` with a URL.
``GET /count`` answers the number of requests served. HTTP/1.1 keep-alive, no body parsing:
the bench's clients send only GETs. Run by ``scripts/bench.py`` in its own process.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import ClassVar

RUNNING = b'{"task_id":"%s","status":"processing"}'
DONE = b'{"task_id":"%s","status":"done","video_url":"https://videos.example/%s.mp4"}'


class Vendor(asyncio.Protocol):
    polls: ClassVar[dict[bytes, int]] = {}
    served: ClassVar[int] = 0

    def __init__(self, done_after: int) -> None:
        self.done_after = done_after
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            path = head.split(b" ", 2)[1]
            if path == b"/count":
                body = json.dumps({"served": Vendor.served}).encode()
            else:
                Vendor.served += 1
                task = path.rsplit(b"/", 1)[-1]
                n = Vendor.polls[task] = Vendor.polls.get(task, 0) + 1
                body = (DONE % (task, task)) if n >= self.done_after else (RUNNING % task)
            self.transport.write(  # type: ignore[attr-defined]
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
            )


async def main(port: int, done_after: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Vendor(done_after), "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
