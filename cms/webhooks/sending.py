"""The sending loop: one asyncio loop per worker process, in a background thread.

Jobs are handed to the loop and sent over one HTTP client (keep-alive
connections to every endpoint); each outcome goes on the ``results`` queue for
the recorder. A caller waits for its jobs only briefly: a hanging endpoint
keeps one coroutine busy until its timeout, never a worker process.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
import threading
import time
from collections.abc import Sequence

from cms.webhooks.transport.sender import Job, Lanes, Result, Sender

MAX_OUTSTANDING = 20_000  # jobs queued in one process's loop before submitters wait
FIRST_ON_THE_WIRE = 4  # requests of a batch sent one by one before the rest start together


class SendingLoop:
    def __init__(
        self,
        sender: Sender,
        results: queue.SimpleQueue[Result | None],
        *,
        retry_limit: int,
        stopping: threading.Event,
    ) -> None:
        self.sender = sender
        self.loop = asyncio.new_event_loop()
        self._results = results
        self._retry_limit = retry_limit
        self._stopping = stopping
        self._lanes: Lanes | None = None  # created inside the loop
        self._outstanding = 0
        self._room = threading.Condition()
        self._waiters = 0  # threads waiting on _room: only then is it worth a notify

    def run(self) -> None:
        """Until ``close`` stops the loop; should it ever fail, the supervisor runs it again."""
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def open(self, timeout: float = 10.0) -> None:
        asyncio.run_coroutine_threadsafe(self.sender.open(), self.loop).result(timeout=timeout)

    async def _send_one(self, job: Job) -> Result:
        if self._lanes is None:
            self._lanes = Lanes(retry_limit=self._retry_limit)
        async with self._lanes.slot(job):
            result = await self.sender.send(job)
        self._results.put(result)
        with self._room:
            self._outstanding -= 1
            if self._waiters:
                self._room.notify_all()
        return result

    async def _send_batch(self, jobs: Sequence[Job]) -> list[Result]:
        tasks = []
        for n, job in enumerate(jobs):
            tasks.append(asyncio.ensure_future(self._send_one(job)))
            if n < FIRST_ON_THE_WIRE:
                # Let this request reach the wire before the next is prepared: aiohttp
                # writes a body in a task of its own, which would otherwise run only
                # once every request of the batch had been prepared (1.5 ms for ten).
                await asyncio.sleep(0)
        return list(await asyncio.gather(*tasks))

    def submit(self, jobs: Sequence[Job]) -> concurrent.futures.Future[list[Result]]:
        """Start sending ``jobs`` on the loop; outcomes are recorded whatever the caller does."""
        with self._room:
            while self._outstanding > MAX_OUTSTANDING and not self._stopping.is_set():
                self._wait_for_room(1.0)
            self._outstanding += len(jobs)
        return asyncio.run_coroutine_threadsafe(self._send_batch(jobs), self.loop)

    def send_and_wait(self, jobs: Sequence[Job], wait: float) -> None:
        if not jobs:
            return
        future = self.submit(jobs)
        # Slow endpoints finish in the background; their leases cover a crash.
        with contextlib.suppress(concurrent.futures.TimeoutError):
            future.result(timeout=wait)

    def drain(self, deadline: float) -> None:
        """Wait (until ``deadline``, monotonic) for the sends in progress to finish."""
        with self._room:
            while self._outstanding > 0 and time.monotonic() < deadline:
                self._wait_for_room(0.1)

    def _wait_for_room(self, timeout: float) -> None:
        self._waiters += 1
        try:
            self._room.wait(timeout=timeout)
        finally:
            self._waiters -= 1

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.sender.close(), self.loop).result(timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
