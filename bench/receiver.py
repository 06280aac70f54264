"""The deliveries scenario's webhook receiver: a raw asyncio HTTP/1.1 server on 127.0.0.1, run in a
process of its own so it never competes with the measuring process's event loop.

    BENCH_RECEIVER_SECRET=whsec_... python bench/receiver.py --port 8123

Every POST is a delivery: the receiver notes its arrival time (wall clock, `time.time()`, the clock
the service's `occurred_at` is read from), its `webhook-id`, and whether the `standardwebhooks`
reference library verifies it with the subscription's secret (every `--verify-every`-th delivery; 1,
the default, verifies all). It answers 200 at once, or 401 to a delivery that fails verification (the
service then records a failed attempt, as with a real subscriber). Two GETs report to the benchmark:

- `/_bench/count`: `{"received": n, "verified": n, "refused": n}`;
- `/_bench/records`: `[[webhook_id, arrival_epoch_s, verified (true, false, or null when not checked)], ...]`.

SIGTERM or SIGINT stop it. The secret comes in the environment, never on the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

OK = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"ok":true}'
REFUSED = b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n"
MAX_HEAD = 64 * 1024


class Receiver:
    def __init__(self, secret: str, verify_every: int) -> None:
        self.webhook = Webhook(secret)
        self.verify_every = max(1, verify_every)
        self.records: list[tuple[str, float, bool | None]] = []
        self.verified = 0
        self.refused = 0

    def deliver(self, headers: dict[str, str], body: bytes) -> bool:
        """Note one delivery; whether to answer 200."""
        arrived = time.time()
        webhook_id = headers.get("webhook-id", "")
        checked: bool | None = None
        if len(self.records) % self.verify_every == 0:
            try:
                self.webhook.verify(body, headers)
                checked = True
                self.verified += 1
            except WebhookVerificationError:
                checked = False
                self.refused += 1
        self.records.append((webhook_id, arrived, checked))
        return checked is not False

    def report(self, path: str) -> bytes:
        data: Any
        if path == "/_bench/count":
            data = {"received": len(self.records), "verified": self.verified, "refused": self.refused}
        elif path == "/_bench/records":
            data = self.records
        else:
            return b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
        body = json.dumps(data).encode()
        head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
        return head.encode() + body

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path = [*lines[0].split(" "), "", ""][:2]
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    name, sep, value = line.partition(":")
                    if sep:
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
                if method == "POST":
                    writer.write(OK if self.deliver(headers, body) else REFUSED)
                else:
                    writer.write(self.report(path.split("?", 1)[0]))
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            return
        finally:
            writer.close()


async def serve(port: int, receiver: Receiver) -> None:
    server = await asyncio.start_server(receiver.connection, "127.0.0.1", port, limit=MAX_HEAD, backlog=256)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"receiver listening on 127.0.0.1:{port}", file=sys.stderr, flush=True)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/receiver.py", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--verify-every", type=int, default=1, help="verify every n-th delivery (default 1: all)")
    args = parser.parse_args(argv)
    secret = os.environ.get("BENCH_RECEIVER_SECRET", "")
    if not secret:
        print("BENCH_RECEIVER_SECRET is not set", file=sys.stderr)
        return 2
    asyncio.run(serve(args.port, Receiver(secret, args.verify_every)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
