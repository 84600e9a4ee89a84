"""taskguard.aio — an asyncio worker on psycopg 3's AsyncConnection.

    from taskguard.aio import AsyncWorker

    worker = AsyncWorker(queue="default", concurrency=10)

    @worker.task("send_email")
    async def send_email(task):            # a plain def runs in a thread
        await mailer.send(**task.args)
        return {"sent": True}

    asyncio.run(worker.run())              # until SIGTERM/SIGINT or stop()

The same contract as taskguard.worker.Worker: claims in batches (LISTEN on
channel ``taskguard`` wakes it, ``poll_interval`` is the fallback), runs up
to ``concurrency`` handlers at once, heartbeats every held task, reports
with the attempt it was handed (complete/fail), sends failures with
describe_exception(), fails a task_name without a handler as
``taskguard.NoHandler``.  Shutdown is graceful: no more claims, running
handlers finish and report, claimed tasks not started are released
(``taskguard.release``: ready again, attempt unused).  A lost connection is
re-made with backoff.
"""

import asyncio
import inspect
import json
import logging
import os
import signal
import socket
from datetime import timedelta

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from .worker import (CHANNEL, NoHandler, Task, _CONNECTION_LOST, _text, describe_exception,
                     no_handler_message)

__all__ = ["AsyncWorker", "AsyncTask"]

log = logging.getLogger("taskguard.aio")


class AsyncTask(Task):
    """One claimed task, as an AsyncWorker's handler sees it."""

    async def heartbeat(self):
        """Extend the lease now (the worker also does it in the background).
        False when the lease was taken over: stop, your result will be refused."""
        return await self._worker._heartbeat_one(self)


class AsyncWorker:
    """Claims tasks of one queue and runs their (async or plain) handlers.

    conninfo, queue, name, batch, lease, heartbeat_every, poll_interval,
    reconnect_max: as for taskguard.Worker; concurrency: handlers at once.
    """

    def __init__(self, conninfo="", queue="default", name=None, batch=10, concurrency=1,
                 lease=timedelta(minutes=5), heartbeat_every=None, poll_interval=5.0,
                 reconnect_max=5.0):
        if not isinstance(lease, timedelta):
            lease = timedelta(seconds=float(lease))
        if lease <= timedelta(0):
            raise ValueError("lease must be positive")
        if int(concurrency) < 1 or int(batch) < 1:
            raise ValueError("batch and concurrency must be at least 1")
        self.conninfo = conninfo
        self.queue = queue
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.batch = int(batch)
        self.concurrency = int(concurrency)
        self.lease = lease
        self.heartbeat_every = (float(heartbeat_every) if heartbeat_every
                                else lease.total_seconds() / 3)
        self.poll_interval = float(poll_interval)
        self.reconnect_max = float(reconnect_max)
        self.handlers = {}
        self.stats = {"claimed": 0, "completed": 0, "failed": 0, "lost": 0, "reconnects": 0,
                      "released": 0}
        self._conn = None
        self._stopping = None       # asyncio.Event, made inside the running loop
        self._wake = None
        self._held = {}             # id -> Task: claimed, not finished (heartbeated)
        self._running = set()       # asyncio tasks of the handlers in progress

    def task(self, task_name):
        """Decorator: run fn(task) (a coroutine function or a plain one) for task_name."""
        def register(fn):
            self.handlers[task_name] = fn
            return fn
        return register

    def stop(self):
        """Graceful shutdown: run() returns once the running handlers are done."""
        if self._stopping is not None:
            self._stopping.set()

    # -- the loop -----------------------------------------------------------

    async def run(self, install_signals=True):
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        loop = asyncio.get_running_loop()
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop)
        self._conn = await self._connect()
        listener = asyncio.create_task(self._listen())
        beater = asyncio.create_task(self._heartbeat_loop())
        slots = asyncio.Semaphore(self.concurrency)
        try:
            while not self._stopping.is_set():
                try:
                    tasks = await self._claim()
                except _CONNECTION_LOST as exc:
                    log.warning("database connection problem (%s); reconnecting", exc)
                    await self._reconnect()
                    continue
                if not tasks:
                    await self._wait_for_work()
                    continue
                for k, task in enumerate(tasks):
                    if not await self._slot(slots):
                        await self._release_unstarted(tasks[k:])
                        break
                    run = asyncio.create_task(self._run_one(task, slots))
                    self._running.add(run)
                    run.add_done_callback(self._running.discard)
                # claim the next batch once a slot is free
                if await self._slot(slots):
                    slots.release()
        finally:
            self._stopping.set()
            if self._running:
                await asyncio.gather(*self._running, return_exceptions=True)
            for t in (listener, beater):
                t.cancel()
            await asyncio.gather(listener, beater, return_exceptions=True)
            if install_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
            await self._conn.close()
        log.info("stopped: %s", self.stats)

    async def _slot(self, slots):
        """Take a free slot (True), or give up when stop() comes first (False)."""
        if self._stopping.is_set():
            return False
        got = asyncio.ensure_future(slots.acquire())
        stop = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait({got, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not got.done():
            got.cancel()
            try:
                await got
            except asyncio.CancelledError:
                return False
        if self._stopping.is_set():
            slots.release()
            return False
        return True

    async def _claim(self):
        self._wake.clear()
        cur = self._conn.cursor(row_factory=dict_row)
        await cur.execute("SELECT * FROM taskguard.claim(%s, %s, batch => %s, lease => %s)",
                          (self.queue, self.name, self.batch, self.lease))
        tasks = [AsyncTask(row, self) for row in await cur.fetchall()]
        self._held.update((t.id, t) for t in tasks)
        self.stats["claimed"] += len(tasks)
        return tasks

    async def _wait_for_work(self):
        waits = [asyncio.create_task(self._wake.wait()), asyncio.create_task(self._stopping.wait())]
        await asyncio.wait(waits, timeout=self.poll_interval, return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            w.cancel()

    async def _run_one(self, task, slots):
        try:
            if task.lease_lost:
                self.stats["lost"] += 1
                return
            handler = self.handlers.get(task.name)
            try:
                if handler is None:
                    raise NoHandler(no_handler_message(task.name, self.name))
                if inspect.iscoroutinefunction(handler):
                    result = await handler(task)
                else:
                    result = await asyncio.to_thread(handler, task)
            except Exception as exc:   # every failure goes to taskguard
                self._held.pop(task.id, None)
                await self._fail(task, exc)
            else:
                self._held.pop(task.id, None)
                await self._complete(task, result)
        except psycopg.Error as exc:
            log.warning("%r: result not sent (%s); its lease will hand it on", task, exc)
        finally:
            self._held.pop(task.id, None)
            slots.release()

    async def _complete(self, task, result):
        try:
            result = None if result is None else _text(json.dumps(result))
        except (TypeError, ValueError) as exc:
            return await self._fail(task, exc)
        try:
            cur = await self._conn.execute("SELECT taskguard.complete(%s, %s::jsonb, %s)",
                                           (task.id, result, task.attempt))
        except psycopg.DataError as exc:
            return await self._fail(task, exc)
        if (await cur.fetchone())[0]:
            self.stats["completed"] += 1
        else:
            self.stats["lost"] += 1
            log.warning("%r: complete refused (lease taken over or task cancelled)", task)

    async def _fail(self, task, exc):
        error_type, message, context = describe_exception(exc)
        cur = await self._conn.execute(
            "SELECT failure_type FROM taskguard.fail(%s, %s, %s, %s, %s)",
            (task.id, error_type, message, Jsonb(context), task.attempt))
        if (await cur.fetchone())[0] is None:
            self.stats["lost"] += 1
        else:
            self.stats["failed"] += 1

    async def _release_unstarted(self, tasks):
        tasks = [t for t in tasks if not t.lease_lost]
        for t in tasks:
            self._held.pop(t.id, None)
        if not tasks:
            return 0
        try:
            cur = await self._conn.execute(
                "SELECT count(*) FILTER (WHERE r) FROM unnest(%s::bigint[], %s::int[]) u(id, a),"
                " LATERAL taskguard.release(u.id, u.a) r",
                ([t.id for t in tasks], [t.attempt for t in tasks]))
            n = (await cur.fetchone())[0]
        except psycopg.Error as exc:
            log.warning("releasing %d unstarted tasks failed (%s); their leases will expire",
                        len(tasks), exc)
            return 0
        self.stats["released"] += n
        return n

    # -- connections, LISTEN, heartbeats ----------------------------------------

    async def _connect(self):
        return await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)

    async def _reconnect(self):
        delay = 0.25
        try:
            await self._conn.close()
        except psycopg.Error:
            pass
        while not self._stopping.is_set():
            try:
                self._conn = await self._connect()
                self.stats["reconnects"] += 1
                self._wake.set()
                return True
            except psycopg.OperationalError as exc:
                log.warning("reconnect failed (%s); next try in %.2f s", exc, delay)
                try:
                    await asyncio.wait_for(self._stopping.wait(), delay)
                except asyncio.TimeoutError:
                    pass
                delay = min(delay * 2, self.reconnect_max)
        return False

    async def _listen(self):
        """A connection of its own LISTENs; a NOTIFY naming our queue wakes the loop."""
        delay = 0.25
        while True:
            try:
                async with await self._connect() as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    delay = 0.25
                    self._wake.set()        # anything enqueued while we were away
                    async for notify in conn.notifies():
                        if notify.payload == self.queue:
                            self._wake.set()
            except psycopg.OperationalError as exc:
                log.warning("LISTEN connection lost (%s); again in %.2f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.reconnect_max)

    async def _heartbeat_one(self, task):
        cur = await self._conn.execute("SELECT taskguard.heartbeat(%s, %s, %s)",
                                       (task.id, self.lease, task.attempt))
        alive = (await cur.fetchone())[0]
        if not alive:
            task.lease_lost = True
        return alive

    async def _heartbeat_loop(self):
        while True:
            await asyncio.sleep(self.heartbeat_every)
            for task in list(self._held.values()):
                if task.lease_lost:
                    continue
                try:
                    if not await self._heartbeat_one(task):
                        if task.id in self._held:
                            log.warning("%r: lease taken over", task)
                except psycopg.Error as exc:
                    log.warning("heartbeat failed (%s); will retry", exc)
                    break
