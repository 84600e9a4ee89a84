"""taskguard.celery — taskguard's failure taxonomy, DLQ, retries and idempotency
for tasks that Celery runs (taskguard's "external broker" mode, docs/reference.md#dlq).

Three pieces, each usable alone:

* ``TaskguardTask``, a task base class (``@app.task(base=TaskguardTask)``):
  a failure is reported with ``taskguard.record_failure`` (the Celery task id is
  the ``task_ref``, so every run of one task updates one DLQ record); a success
  of a task the dispatcher re-published resolves its record; with
  ``idempotent = True`` it asks ``taskguard.idempotency_check`` before running
  and skips a duplicate (a failed run gives its key back, so a retry can run).
* ``connect_signals()``: the same failure/success reporting for tasks you do
  not want to touch, through Celery's task_failure/task_success signals.
* ``Dispatcher``: claims due retries with ``taskguard.claim_due_retries`` and
  re-publishes each to the broker, with its original task id, on the queue
  of the priority the retry runs at (table taskguard.priority_queue: critical,
  high, default, low, deferred): the one an operator chose with
  ``dlq_retry(ids, priority)``, else ``taskguard.calculate_priority``'s.  Run one (``dispatcher.run()``).

taskguard decides whether and when a failed task runs again, so do not also
use Celery's ``autoretry_for``/``self.retry`` for the same errors: taskguard only
hears of the run that finally failed.  Delivery is at least once: if the broker
fails in the middle of a batch, the batch is rolled back and may be published
again, so make such tasks idempotent.

Connections: one per thread and process, made lazily with ``configure(dsn)`` or
the ``TASKGUARD_DSN`` environment variable ('' = libpq's PG* variables), so it
works in prefork, threads and eager mode alike.  Exception details (type name,
sqlstate, HTTP status, Retry-After) come from taskguard.worker.

    from taskguard.celery import TaskguardTask, Dispatcher, connect_signals
"""

import json
import logging
import os
import threading
from datetime import timedelta

import psycopg
from celery import Task, signals
from psycopg.rows import dict_row

from .worker import describe_exception

__all__ = ["TaskguardTask", "Dispatcher", "connect_signals", "configure", "connection",
           "report_failure", "report_success"]

log = logging.getLogger("taskguard.celery")

# message headers the bridge reads (set them with apply_async(headers=...))
FAILURE_ID = "taskguard_failure_id"      # set by the Dispatcher: the record to resolve
RETRY = "taskguard_retry"                # set by the Dispatcher: 1 for the first retry, …
TENANT = "taskguard_tenant"
CUSTOMER_TIER = "taskguard_customer_tier"

_dsn = os.environ.get("TASKGUARD_DSN", "")
_local = threading.local()


def configure(dsn):
    """Set the libpq connection string (before the first task runs)."""
    global _dsn
    _dsn = dsn


def connection():
    """This thread's autocommit connection (a new one after a fork)."""
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed or _local.pid != os.getpid():
        _local.conn = conn = psycopg.connect(_dsn, autocommit=True)
        _local.pid = os.getpid()
    return conn


def _json(value):
    return json.dumps(value, default=repr).replace("\\u0000", "\\ufffd")


def payload(args, kwargs):
    """How a Celery call is stored as a record's args (and hashed for idempotency)."""
    return {"args": list(args or ()), "kwargs": dict(kwargs or {})}


def _unpack(stored):
    """args, kwargs back from a record's args (other producers' shapes too)."""
    if isinstance(stored, dict) and set(stored) <= {"args", "kwargs"}:
        return list(stored.get("args") or []), dict(stored.get("kwargs") or {})
    if isinstance(stored, list):
        return stored, {}
    if isinstance(stored, dict):
        return [], stored
    return [stored], {}


def _header(request, name):
    """A custom message header: a request attribute on a worker, in
    request.headers when run eagerly."""
    value = getattr(request, name, None)
    if value is None:
        value = (getattr(request, "headers", None) or {}).get(name)
    return value


def report_failure(task, exc, task_id, args, kwargs):
    """record_failure() for one failed run; returns the failure_outcome as a dict
    (None if taskguard could not be reached: the task's own error is not masked)."""
    request = task.request
    error_type, message, context = describe_exception(exc)
    delivery = getattr(request, "delivery_info", None) or {}
    context.update({k: v for k, v in (
        ("queue", delivery.get("routing_key")),
        ("service", getattr(task, "taskguard_service", None)),
        ("customer_tier", _header(request, CUSTOMER_TIER)),
        ("celery_hostname", getattr(request, "hostname", None))) if v is not None})
    try:
        conn = connection()
        with conn.transaction():      # a savepoint inside the Dispatcher's transaction
            return conn.cursor(row_factory=dict_row).execute(
                "SELECT * FROM taskguard.record_failure(%s, %s::jsonb, %s, %s, %s::jsonb, "
                "tenant => %s, task_ref => %s)",
                (task.name, _json(payload(args, kwargs)), error_type, message, _json(context),
                 _header(request, TENANT), task_id)).fetchone()
    except psycopg.Error:
        log.exception("taskguard: could not record the failure of %s[%s]", task.name, task_id)
        return None


def report_success(task):
    """A re-published retry succeeded: resolve its record (resolution 'retry')."""
    failure_id = _header(task.request, FAILURE_ID)
    if failure_id is None:
        return False
    try:
        conn = connection()
        with conn.transaction():
            return conn.execute("SELECT taskguard.resolve(%s, 'retry')",
                                (int(failure_id),)).fetchone()[0]
    except psycopg.Error:
        log.exception("taskguard: could not resolve record %s", failure_id)
        return False


class TaskguardTask(Task):
    """Base class: failures to taskguard's DLQ, optional idempotency."""

    idempotent = False                    # ask idempotency_check before running
    idempotency_ttl = timedelta(hours=24)
    taskguard_service = None              # recorded as the DLQ record's service

    @property
    def taskguard_retry(self):
        """0 on a first run, n on the n-th retry the Dispatcher published."""
        return int(_header(self.request, RETRY) or 0)

    def idempotency_args(self, args, kwargs):
        """What identifies a duplicate (default: all arguments)."""
        return payload(args, kwargs)

    def on_duplicate(self, args, kwargs):
        """The result of a call skipped as a duplicate."""
        log.info("taskguard: %s%r skipped, a duplicate", self.name, tuple(args))
        return None

    def __call__(self, *args, **kwargs):
        if self.request.called_directly:      # a plain function call: no taskguard
            return super().__call__(*args, **kwargs)
        # Run by a worker (or eagerly): the tracer has pushed this run's request;
        # Task.__call__ would push a bare one, hiding its headers.
        if self.idempotent:
            conn = connection()
            with conn.transaction():
                key, fresh = conn.execute(
                    "SELECT k, taskguard.idempotency_check(k, %s, %s) "
                    "FROM taskguard.idempotency_key(%s, %s::jsonb) AS k",
                    (self.idempotency_ttl, self.name, self.name,
                     _json(self.idempotency_args(args, kwargs)))).fetchone()
            if not fresh:
                return self.on_duplicate(args, kwargs)
            self.request.taskguard_key = key
        return self.run(*args, **kwargs)

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        key = getattr(self.request, "taskguard_key", None)
        if key is not None:      # the run did not happen: let a retry through
            try:
                conn = connection()
                with conn.transaction():
                    conn.execute("SELECT taskguard.idempotency_release(%s)", (key,))
            except psycopg.Error:
                log.exception("taskguard: could not release idempotency key of %s", task_id)
        report_failure(self, exc, task_id, args, kwargs)

    def on_success(self, retval, task_id, args, kwargs):
        report_success(self)


def connect_signals():
    """Report failures (and resolve retried records) of every task that does not
    use TaskguardTask, through Celery's signals."""
    def on_failure(sender=None, task_id=None, exception=None, args=None, kwargs=None, **_):
        if sender is not None and not isinstance(sender, TaskguardTask):
            report_failure(sender, exception, task_id, args, kwargs)

    def on_success(sender=None, **_):
        if sender is not None and not isinstance(sender, TaskguardTask):
            report_success(sender)

    signals.task_failure.connect(on_failure, weak=False)
    signals.task_success.connect(on_success, weak=False)


# claim_due_retries gives each record the priority its retry runs at (an
# operator's dlq_retry(..., priority) or recomputed); priority_queue maps it to
# the broker queue (a deleted row: calculate_priority's built-in names).
_CLAIM = """
SELECT d.id, d.task_ref, d.task_name, d.args, d.tenant, d.retry_count,
       d.failure_type, d.priority,
       coalesce(q.queue, CASE d.priority WHEN 'MEDIUM' THEN 'default'
                                         ELSE lower(d.priority::text) END) AS queue
  FROM taskguard.claim_due_retries(%s) AS d
  LEFT JOIN taskguard.priority_queue q ON q.priority = d.priority
"""


class Dispatcher:
    """Re-publishes due retries to the broker (one is enough per deployment;
    several are safe: claim_due_retries hands each record to one of them)."""

    def __init__(self, app, batch=100, interval=1.0):
        self.app = app
        self.batch = batch
        self.interval = interval
        self._stop = threading.Event()

    def dispatch_once(self):
        """Claim and publish one batch, in one transaction; returns the records."""
        conn = connection()
        with conn.transaction():
            records = conn.cursor(row_factory=dict_row).execute(_CLAIM, (self.batch,)).fetchall()
            for record in records:
                self.publish(record)
        return records

    def publish(self, record):
        """Send one record's task to its queue, with its original task id."""
        args, kwargs = _unpack(record["args"])
        headers = {FAILURE_ID: record["id"], RETRY: record["retry_count"] + 1}
        if record["tenant"] is not None:
            headers[TENANT] = record["tenant"]
        options = {"task_id": record["task_ref"], "queue": record["queue"], "headers": headers}
        task = self.app.tasks.get(record["task_name"])
        if task is None:
            self.app.send_task(record["task_name"], args, kwargs, **options)
        elif self.app.conf.task_always_eager:
            try:             # eager: the task runs right here; its errors are recorded
                task.apply_async(args, kwargs, **options)
            except Exception:
                log.debug("eager retry of %s raised", record["task_ref"], exc_info=True)
        else:
            task.apply_async(args, kwargs, **options)
        log.info("taskguard: retry %d of %s[%s] published to %s", headers[RETRY],
                 record["task_name"], record["task_ref"], record["queue"])

    def run(self):
        """Dispatch until stop(): a full batch goes on at once, else wait interval."""
        while not self._stop.is_set():
            try:
                if len(self.dispatch_once()) >= self.batch:
                    continue
            except Exception:
                log.exception("taskguard: dispatch failed; trying again")
            self._stop.wait(self.interval)

    def stop(self):
        self._stop.set()
