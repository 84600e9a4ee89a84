"""taskguard.worker — a small worker loop for taskguard queues, on psycopg 3.

One dependency (psycopg, Debian's python3-psycopg).  A Worker LISTENs
on channel ``taskguard``, claims ready tasks of its queue in batches, runs the
handler registered for each task_name, and reports back with the attempt it was
handed: ``complete(id, result, attempt)`` or ``fail(id, error_type, message,
context, attempt)``.  While a batch is held, a second connection heartbeats
every task of it that is not finished, so a long task keeps its lease and the
tasks waiting behind it in the batch keep theirs.

    worker = Worker(queue="default")

    @worker.task("send_email")
    def send_email(task):
        mailer.send(**task.args)
        return {"sent": True}          # stored as the task's result

    worker.run()                       # until SIGTERM/SIGINT

SIGTERM/SIGINT (or stop()) is a graceful shutdown: no more claims, the task
whose handler runs is finished and reported, and the tasks of the batch that
have not started are given back with ``taskguard.release(id, attempt)``:
ready again at once, their attempt not used.  A task_name with no handler
fails as ``taskguard.NoHandler`` ("... is not configured on this worker"),
which taskguard classifies CONFIGURATION_MISSING_ENV: not retried, kept in
the DLQ until the handler is deployed and an operator runs dlq_retry.

An exception becomes a failure: its qualified type name (``requests.exceptions.
ConnectionError``), its message, and a context with what taskguard's classifier
reads — ``sqlstate`` from psycopg errors, ``http_status`` and
``retry_after_seconds`` from requests-style errors (anything with
``.response.status_code``) — plus a bounded traceback.  taskguard then decides
retry or dead-letter by its policy; the worker does not retry on its own.

A lost connection (server restart, failover) is re-made with backoff.  Give
``conninfo`` a list of connection strings (primary and standbys) and each
reconnect tries them in turn and keeps the first that accepts writes, so
the worker follows a promoted standby.  A complete()/fail() cut off by the loss
is sent again on the new connection with the same attempt: it lands if the
lease is still the worker's, returns false if the task was reaped meanwhile —
never twice.
"""

import json
import logging
import os
import select
import signal
import socket
import threading
import time
import traceback
from datetime import timedelta

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

__all__ = ["Worker", "Task", "NoHandler", "describe_exception", "error_type_name"]

log = logging.getLogger("taskguard.worker")

CHANNEL = "taskguard"
# Errors after which the session is gone or cannot write (the server went away,
# or it is now a standby): reconnect, possibly elsewhere.
_CONNECTION_LOST = (psycopg.OperationalError, psycopg.errors.ReadOnlySqlTransaction)
TRACEBACK_LIMIT = 4000          # characters of traceback kept in the context


def error_type_name(exc):
    """The exception's type as taskguard classifies it: module-qualified,
    except for builtins (``ValueError``, ``ConnectionError``); a class may
    name its own with a ``taskguard_error_type`` attribute."""
    cls = type(exc)
    own = getattr(cls, "taskguard_error_type", None)
    if isinstance(own, str) and own:
        return own
    mod = cls.__module__
    if mod in (None, "builtins", "__main__"):
        return cls.__qualname__
    return f"{mod}.{cls.__qualname__}"


def _http_status(exc):
    """HTTP status of a requests/httpx-style error (exc.response.status_code)
    or of an error that carries its own status_code/status."""
    response = getattr(exc, "response", None)
    for holder, attr in ((response, "status_code"), (response, "status"),
                         (exc, "status_code"), (exc, "status")):
        value = getattr(holder, attr, None) if holder is not None else None
        if isinstance(value, int) and 100 <= value <= 599:
            return value, response
    return None, response


def _retry_after(response):
    """Retry-After in seconds (the numeric form only), or None."""
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    try:
        value = headers.get("Retry-After")
        if value is None:
            return None
        seconds = max(0.0, float(value))
        return int(seconds) if seconds.is_integer() else seconds
    except (TypeError, ValueError, AttributeError):
        return None


def _text(value):
    """PostgreSQL text and jsonb hold no NUL characters."""
    return value.replace("\x00", "\ufffd")


def describe_exception(exc, with_traceback=True):
    """(error_type, message, context) for fail() or record_failure()."""
    context = {}
    sqlstate = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    if isinstance(sqlstate, str) and sqlstate:
        context["sqlstate"] = sqlstate
    status, response = _http_status(exc)
    if status is not None:
        context["http_status"] = status
        retry_after = _retry_after(response)
        if retry_after is not None:
            context["retry_after_seconds"] = retry_after
    if with_traceback and exc.__traceback__ is not None:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        context["traceback"] = _text(tb[-TRACEBACK_LIMIT:])
    message = _text(str(exc)) or error_type_name(exc)
    return error_type_name(exc), message, context


class NoHandler(Exception):
    """A task_name with no handler on this worker.  Sent as error_type
    ``taskguard.NoHandler`` (the Node worker sends the same) with a message
    saying "not configured", which taskguard classifies as
    CONFIGURATION_MISSING_ENV: no retries until an operator deploys the
    handler and runs dlq_retry."""

    taskguard_error_type = "taskguard.NoHandler"


def no_handler_message(task_name, worker_name):
    """The message both workers send for a task without a handler."""
    return (f"no handler for task {task_name!r} on worker {worker_name}: "
            "the task is not configured on this worker")


UnknownTask = NoHandler     # the name of 0.1.0


class Task:
    """One claimed task, as a handler sees it."""

    def __init__(self, row, worker):
        self.id = row["id"]
        self.name = row["task_name"]
        self.args = row["args"]
        self.queue = row["queue"]
        self.attempt = row["attempts"]
        self.tenant = row["tenant"]
        self.service = row["service"]
        self._worker = worker
        self.lease_lost = False     # set when a heartbeat found the lease taken over

    def heartbeat(self):
        """Extend the lease now (the worker also does it in the background).
        False when the lease was taken over: stop, your result will be refused."""
        return self._worker._heartbeat_one(self, self._worker._conn)

    def __repr__(self):
        return f"<Task {self.id} {self.name} attempt {self.attempt}>"


class Worker:
    """Claims tasks of one queue and runs their handlers.

    conninfo     libpq connection string ('' = the PG* environment variables),
                 or a list of them tried in turn (e.g. primary, then standby)
    queue        the queue to work on
    name         stored in task.worker (default host:pid)
    batch        tasks claimed at once (each is held, and heartbeated, until run)
    lease        lease per claim and per heartbeat (seconds or timedelta)
    heartbeat_every  seconds between heartbeats (default: a third of the lease)
    poll_interval    seconds to wait for a NOTIFY before claiming anyway
    reconnect_max    longest wait between reconnect attempts (seconds)
    """

    def __init__(self, conninfo="", queue="default", name=None, batch=10,
                 lease=timedelta(minutes=5), heartbeat_every=None, poll_interval=5.0,
                 reconnect_max=5.0):
        if not isinstance(lease, timedelta):
            lease = timedelta(seconds=float(lease))
        if lease <= timedelta(0):
            raise ValueError("lease must be positive")
        self.conninfos = ([conninfo] if isinstance(conninfo, str) else list(conninfo)) or [""]
        self.conninfo = self.conninfos[0]
        self.reconnect_max = float(reconnect_max)
        self.queue = queue
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.batch = int(batch)
        self.lease = lease
        self.heartbeat_every = (float(heartbeat_every) if heartbeat_every
                                else lease.total_seconds() / 3)
        self.poll_interval = float(poll_interval)
        self.handlers = {}
        self._conn = None
        self._woken = False
        self._stop = threading.Event()
        self._held = {}                     # id -> Task, claimed and not finished
        self._held_lock = threading.Lock()
        self.stats = {"claimed": 0, "completed": 0, "failed": 0, "lost": 0, "reconnects": 0,
                      "released": 0}

    # -- registration -------------------------------------------------------

    def task(self, task_name):
        """Decorator: run fn(task) for tasks named task_name."""
        def register(fn):
            self.handlers[task_name] = fn
            return fn
        return register

    # -- the loop -----------------------------------------------------------

    def run(self, install_signals=True):
        """Work until stop() (or SIGTERM/SIGINT): the running task is finished,
        the claimed tasks not started are released (ready again, attempt kept)."""
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self.stop())
        self._connect()
        beater = threading.Thread(target=self._heartbeat_loop, name="taskguard-heartbeat",
                                  daemon=True)
        beater.start()
        try:
            while not self._stop.is_set():
                try:
                    if not self.run_batch():
                        self._wait_for_work()
                except _CONNECTION_LOST as exc:
                    log.warning("database connection problem (%s); reconnecting", exc)
                    self._reconnect()
        finally:
            self._stop.set()
            beater.join(timeout=5)
            if self._conn is not None:
                self._conn.close()

    def stop(self):
        """Ask run() to return once the running task is done; the rest of the
        batch is released.  Safe from a signal handler or another thread."""
        self._stop.set()

    def run_batch(self):
        """Claim up to `batch` tasks and run them; returns how many were claimed."""
        self._woken = False
        rows = self._conn.cursor(row_factory=dict_row).execute(
            "SELECT * FROM taskguard.claim(%s, %s, batch => %s, lease => %s)",
            (self.queue, self.name, self.batch, self.lease)).fetchall()
        tasks = [Task(row, self) for row in rows]
        with self._held_lock:
            self._held.update((t.id, t) for t in tasks)
        self.stats["claimed"] += len(tasks)
        try:
            for k, task in enumerate(tasks):
                if self._stop.is_set():
                    self._release_unstarted(tasks[k:])
                    break
                self._run_one(task)
        finally:
            with self._held_lock:
                for task in tasks:
                    self._held.pop(task.id, None)
        return len(tasks)

    def _run_one(self, task):
        if task.lease_lost:         # taken over while it waited in the batch
            self.stats["lost"] += 1
            return
        handler = self.handlers.get(task.name)
        try:
            if handler is None:
                raise NoHandler(no_handler_message(task.name, self.name))
            result = handler(task)
        except Exception as exc:   # every failure goes to taskguard, the loop goes on
            self._unhold(task)
            self._fail(task, exc)
        else:
            self._unhold(task)
            self._complete(task, result)

    def _release_unstarted(self, tasks):
        """Give back claimed tasks whose handlers did not start (shutdown):
        ready again now, their attempt not used.  On a lost connection they
        are left to their lease, which hands them on as a failed attempt."""
        tasks = [t for t in tasks if not t.lease_lost]
        if not tasks:
            return 0
        try:
            n = self._conn.execute(
                "SELECT count(*) FILTER (WHERE r) FROM unnest(%s::bigint[], %s::int[]) u(id, a),"
                " LATERAL taskguard.release(u.id, u.a) r",
                ([t.id for t in tasks], [t.attempt for t in tasks])).fetchone()[0]
        except psycopg.Error as exc:
            log.warning("releasing %d unstarted tasks failed (%s); their leases will expire",
                        len(tasks), exc)
            return 0
        self.stats["released"] += n
        log.info("shutdown: released %d claimed tasks not started", n)
        return n

    def _unhold(self, task):
        """No more heartbeats for a task whose handler is done: one racing its
        complete() would find the task finished and report a take-over."""
        with self._held_lock:
            self._held.pop(task.id, None)

    def _complete(self, task, result):
        try:
            result = None if result is None else _text(json.dumps(result))
        except (TypeError, ValueError) as exc:   # a result that is not JSON
            return self._fail(task, exc)
        try:
            done = self._report(task, "SELECT taskguard.complete(%s, %s::jsonb, %s)",
                                (task.id, result, task.attempt))[0]
        except psycopg.DataError as exc:         # e.g. \u0000 inside the result
            return self._fail(task, exc)
        if done:
            self.stats["completed"] += 1
        else:
            self.stats["lost"] += 1
            log.warning("%r: complete refused (lease taken over or task cancelled)", task)

    def _fail(self, task, exc):
        error_type, message, context = describe_exception(exc)
        row = self._report(
            task, "SELECT failure_type, action, next_retry_at "
            "FROM taskguard.fail(%s, %s, %s, %s, %s)",
            (task.id, error_type, message, Jsonb(context), task.attempt))
        if row[0] is None:
            self.stats["lost"] += 1
            log.warning("%r: fail refused (lease taken over or task cancelled)", task)
            return
        self.stats["failed"] += 1
        log.info("%r failed: %s: %s -> %s %s %s", task, error_type, message, *row)

    def _report(self, task, sql, params):
        """Run complete()/fail() for task; on a lost connection reconnect and send
        it again.  The attempt it carries makes that safe: a call that had
        committed, or whose lease was reaped meanwhile, changes nothing the
        second time (false / NULL).  Gives up when stop() is asked while the
        database is away; the lease then hands the task to another run."""
        while True:
            try:
                return self._conn.execute(sql, params).fetchone()
            except _CONNECTION_LOST as exc:
                log.warning("%r: result not acknowledged (%s); reconnecting to send it again",
                            task, exc)
                if not self._reconnect():
                    raise

    # -- waiting: LISTEN/NOTIFY with a poll fallback ---------------------------

    def _on_notify(self, notify):
        if notify.payload == self.queue:
            self._woken = True

    def _wait_for_work(self):
        """Return when a NOTIFY names our queue, after poll_interval, or on stop()."""
        deadline = time.monotonic() + self.poll_interval
        while not self._woken and not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            # short slices so that stop() is seen soon even without a signal
            ready, _, _ = select.select([self._conn.fileno()], [], [], min(left, 0.5))
            if ready:
                self._conn.execute("SELECT 1")   # delivers pending notifies to _on_notify

    # -- connections ----------------------------------------------------------

    def _open(self):
        """A connection to the first of conninfos that accepts writes: a standby
        is skipped, so after a failover the promoted one is found."""
        errors = []
        for conninfo in self.conninfos:
            try:
                conn = psycopg.connect(conninfo, autocommit=True)
            except psycopg.OperationalError as exc:
                errors.append(str(exc).strip())
                continue
            try:
                # as libpq's target_session_attrs=read-write asks
                if conn.execute("SHOW transaction_read_only").fetchone()[0] == "off":
                    self.conninfo = conninfo
                    return conn
                errors.append("server is read-only (a standby?)")
            except psycopg.Error as exc:
                errors.append(str(exc).strip())
            conn.close()
        raise psycopg.OperationalError("; ".join(errors) or "no connection string")

    def _connect(self):
        conn = self._open()
        try:
            conn.add_notify_handler(self._on_notify)
            conn.execute(f"LISTEN {CHANNEL}")
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _reconnect(self):
        """Reconnect with backoff until connected (True) or stop() (False)."""
        delay = 0.25
        if self._conn is not None:
            self._conn.close()
        while not self._stop.is_set():
            try:
                self._connect()
                self.stats["reconnects"] += 1
                log.warning("reconnected (server %d of %d: %s port %s)",
                            self.conninfos.index(self.conninfo) + 1, len(self.conninfos),
                            self._conn.info.host, self._conn.info.port)
                return True
            except psycopg.OperationalError as exc:
                log.warning("reconnect failed (%s); next try in %.2f s", exc, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, self.reconnect_max)
        return False

    # -- heartbeats -----------------------------------------------------------

    def _heartbeat_one(self, task, conn):
        alive = conn.execute("SELECT taskguard.heartbeat(%s, %s, %s)",
                             (task.id, self.lease, task.attempt)).fetchone()[0]
        if not alive:
            task.lease_lost = True
        return alive

    def _heartbeat_loop(self):
        conn = None
        while not self._stop.wait(self.heartbeat_every):
            with self._held_lock:
                held = list(self._held.values())
            if not held:
                continue
            try:
                if conn is None or conn.closed:
                    conn = self._open()
                for task in held:
                    if task.lease_lost or self._heartbeat_one(task, conn):
                        continue
                    with self._held_lock:   # false for a task that just finished is fine
                        if task.id in self._held:
                            log.warning("%r: lease taken over", task)
            except psycopg.Error as exc:
                log.warning("heartbeat failed (%s); will retry", exc)
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()
