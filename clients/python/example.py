#!/usr/bin/python3
"""A taskguard worker with a realistic mix of tasks, some of which fail.

    ./example.py enqueue            # put the demo workload on queue 'default'
    ./example.py work               # work on it until Ctrl-C (or SIGTERM)

Connection settings come from the usual PG* environment variables (or pass
--dsn).  Each handler stands for a kind of real work and fails the way such
work fails, so the dead-letter queue (SELECT * FROM taskguard.dlq) shows what
taskguard makes of each failure:

  send_email     succeeds
  sync_crm       requests ConnectionError on its first runs -> TRANSIENT_NETWORK,
                 retried with backoff, then succeeds: record RESOLVED
  refresh_stats  a real deadlock_detected (40P01) from PostgreSQL on its first
                 run -> TRANSIENT_DATABASE, retried, then succeeds
  import_row     ValueError on a malformed row -> PERMANENT_INVALID_INPUT, ABANDONED
  post_ledger    a PostgreSQL error with SQLSTATE 42501 -> CONFIGURATION_PERMISSIONS
                 (decided by the sqlstate the worker sends in the context)
  call_partner   HTTP 503 -> EXTERNAL_SERVICE_UNAVAILABLE (retried);
                 HTTP 429 with Retry-After -> TRANSIENT_RATE_LIMIT, retry not before it
  render_report  runs longer than its lease: the worker's heartbeats keep it
  resize_image   no handler on this worker -> CONFIGURATION_MISSING_ENV, ABANDONED
"""

import argparse
import logging
import os
import sys
import time

import psycopg
import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from taskguard import Worker  # noqa: E402

DSN = ""
_db = None


def db():
    """The handlers' own connection (the worker's connections are its own)."""
    global _db
    if _db is None or _db.closed:
        _db = psycopg.connect(DSN, autocommit=True)
    return _db


def register(worker):
    @worker.task("send_email")
    def send_email(task):
        return {"sent_to": task.args["to"], "worker": worker.name}

    @worker.task("sync_crm")
    def sync_crm(task):
        if task.attempt <= task.args.get("fail_attempts", 0):
            raise requests.exceptions.ConnectionError(
                "HTTPSConnectionPool(host='crm.internal', port=443): "
                "Failed to establish a new connection: [Errno 111] Connection refused")
        return {"synced": task.args["contact"]}

    @worker.task("refresh_stats")
    def refresh_stats(task):
        if task.attempt <= task.args.get("fail_attempts", 0):
            db().execute("DO $$ BEGIN RAISE EXCEPTION 'deadlock detected' "
                         "USING ERRCODE = 'deadlock_detected'; END $$")
        return {"refreshed": True}

    @worker.task("import_row")
    def import_row(task):
        fields = task.args["row"].split(";")
        if len(fields) != 4:
            raise ValueError(f"expected 4 fields, got {len(fields)}")
        return {"imported": fields[0]}

    @worker.task("post_ledger")
    def post_ledger(task):
        # A neutral message: only the SQLSTATE tells what went wrong.
        db().execute("DO $$ BEGIN RAISE EXCEPTION 'ledger write refused' "
                     "USING ERRCODE = '42501'; END $$")

    @worker.task("call_partner")
    def call_partner(task):
        # Stands for requests.post(...).raise_for_status() against a partner API.
        response = requests.Response()
        response.status_code = task.args["status"]
        response.reason = {429: "Too Many Requests", 503: "Service Unavailable"}.get(
            response.status_code, "Error")
        response.url = "https://partner.example/api/orders"
        if "retry_after" in task.args:
            response.headers["Retry-After"] = str(task.args["retry_after"])
        response.raise_for_status()
        return {"status": response.status_code}

    @worker.task("render_report")
    def render_report(task):
        time.sleep(task.args["seconds"])
        return {"pages": 3}

    @worker.task("nap")
    def nap(task):
        # the shutdown test's long task (with --asyncio it runs in a thread)
        time.sleep(task.args.get("seconds", 1))
        return {"slept": task.args.get("seconds", 1)}


def enqueue(conn, queue):
    """The demo workload: 20 e-mails and one of each failing kind."""
    conn.execute("SELECT taskguard.enqueue_many('send_email', "
                 "(SELECT array_agg(jsonb_build_object('to', 'user' || i || '@example.com')) "
                 " FROM generate_series(1, 20) i), queue => %s)", (queue,))
    for name, args in [
            ("render_report", '{"seconds": 2.5}'),
            ("sync_crm", '{"contact": 7, "fail_attempts": 2}'),
            ("refresh_stats", '{"fail_attempts": 1}'),
            ("import_row", '{"row": "42;ana"}'),
            ("post_ledger", '{"amount": 10}'),
            ("call_partner", '{"status": 503}'),
            ("call_partner", '{"status": 429, "retry_after": 120}'),
            ("resize_image", '{"img": 1}')]:
        conn.execute("SELECT taskguard.enqueue(%s, %s::jsonb, queue => %s)", (name, args, queue))


def main():
    global DSN
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["enqueue", "work"])
    parser.add_argument("--dsn", default="", help="libpq connection string (default: PG* env)")
    parser.add_argument("--queue", default="default")
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--lease", type=float, default=300, help="seconds")
    parser.add_argument("--heartbeat", type=float, default=None,
                        help="seconds between heartbeats (default: a third of the lease)")
    parser.add_argument("--poll", type=float, default=5, help="seconds between polls")
    parser.add_argument("--name", default=None)
    parser.add_argument("--asyncio", action="store_true",
                        help="run taskguard.aio.AsyncWorker instead of the threaded Worker")
    parser.add_argument("--concurrency", type=int, default=1, help="handlers at once (--asyncio)")
    opts = parser.parse_args()
    DSN = opts.dsn
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    if opts.command == "enqueue":
        with psycopg.connect(DSN, autocommit=True) as conn:
            enqueue(conn, opts.queue)
        return
    if opts.asyncio:
        import asyncio

        from taskguard.aio import AsyncWorker
        worker = AsyncWorker(DSN, queue=opts.queue, name=opts.name, batch=opts.batch,
                             concurrency=opts.concurrency, lease=opts.lease,
                             heartbeat_every=opts.heartbeat, poll_interval=opts.poll)
        register(worker)
        asyncio.run(worker.run())
        logging.info("stopped: %s", worker.stats)
        return
    worker = Worker(DSN, queue=opts.queue, name=opts.name, batch=opts.batch,
                    lease=opts.lease, heartbeat_every=opts.heartbeat, poll_interval=opts.poll)
    register(worker)
    worker.run()
    logging.info("stopped: %s", worker.stats)


if __name__ == "__main__":
    main()
