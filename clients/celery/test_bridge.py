#!/usr/bin/python3
"""TAP test of the Celery bridge with the example's tasks, in Celery's eager mode
(tasks run in this process), against the database in the PG* variables.
Run by test/t/client_celery.sh."""

import os
import sys
import time
import uuid

os.environ.setdefault("CELERY_BROKER_URL", "memory://")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import psycopg  # noqa: E402

import example  # noqa: E402
from taskguard.celery import Dispatcher  # noqa: E402  (the path example.py set up)

example.app.conf.task_always_eager = True
db = psycopg.connect("", autocommit=True)
run = uuid.uuid4().hex[:12]
n = 0
failed = False


def ok(cond, name):
    global n, failed
    n += 1
    print(f"{'ok' if cond else 'not ok'} {n} - {name}")
    failed |= not cond
    return cond


def is_(got, want, name):
    if not ok(got == want, name):
        print(f"#   got: {got!r}\n#   expected: {want!r}")


def one(sql, *params):
    row = db.execute(sql, params).fetchone()
    return row if row is None or len(row) > 1 else row[0]


def ref(name):
    return f"{run}-{name}"


def record(name, cols="status::text, failure_type::text, retry_count"):
    return one(f"SELECT {cols} FROM taskguard.dlq WHERE task_ref = %s", ref(name))


dispatched = []


def dispatch_until(task_ref, seconds=10):
    """Dispatch batches until task_ref's record was published (a deadline, no fixed sleep)."""
    dispatcher = Dispatcher(example.app)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        records = dispatcher.dispatch_once()
        dispatched.extend(r["task_ref"] for r in records)
        mine = [r for r in records if r["task_ref"] == task_ref]
        if mine:
            return mine[0]
        time.sleep(0.05)
    return None


db.execute("DELETE FROM taskguard.retry_policy WHERE task_name = 'crm.sync_contact'")
db.execute("INSERT INTO taskguard.retry_policy (failure_type, task_name, max_retries, base_delay,"
           " max_delay, jitter) VALUES ('TRANSIENT_NETWORK', 'crm.sync_contact', 5, '50 ms',"
           " '100 ms', 'none')")
db.execute("INSERT INTO taskguard.task_config (task_name, base_priority) VALUES"
           " ('crm.sync_contact', 'HIGH') ON CONFLICT (task_name) DO UPDATE SET base_priority = 'HIGH'")

# -- a transient failure, retried through the dispatcher until it succeeds ------
example.sync_contact.apply_async((7,), {"fail_runs": 2}, task_id=ref("sync"))
is_(record("sync", "status::text, failure_type::text, retry_count, error_type, args, task_id"),
    ("PENDING", "TRANSIENT_NETWORK", 0, "requests.exceptions.ConnectionError",
     {"args": [7], "kwargs": {"fail_runs": 2}}, None),
    "a failed Celery task is recorded with record_failure: its task id is the task_ref")
ok(one("SELECT next_retry_at > last_failed_at FROM taskguard.dlq WHERE task_ref = %s", ref("sync")),
   "with a retry scheduled by taskguard's policy")

published = dispatch_until(ref("sync"))
is_(published and (published["queue"], published["priority"]), ("high", "HIGH"),
    "the dispatcher claims the due retry and publishes it on calculate_priority's queue")
is_(record("sync"), ("PENDING", "TRANSIENT_NETWORK", 1),
    "the re-published run fails again: the same record, retry_count 1")
published = dispatch_until(ref("sync"))
is_(record("sync", "status::text, retry_count, resolution"), ("RESOLVED", 1, "retry"),
    "the next retry succeeds and resolves the record")
is_(example.runs.get("crm.sync_contact"), 3, "the task ran 3 times")
is_(one("SELECT count(*) FROM taskguard.failure_event e JOIN taskguard.dead_letter d"
        " ON d.id = e.failure_id WHERE d.task_ref = %s", ref("sync")), 2,
    "one failure event per failed run")

# -- permanent failures are abandoned, never re-published -----------------------
example.import_row.apply_async(("42;ana",), task_id=ref("import"))
is_(record("import"), ("ABANDONED", "PERMANENT_INVALID_INPUT", 0), "a ValueError is ABANDONED")
example.post_ledger.apply_async((1000,), task_id=ref("ledger"))
is_(record("ledger", "status::text, failure_type::text, error_type, context->>'sqlstate'"),
    ("ABANDONED", "CONFIGURATION_PERMISSIONS", "psycopg.errors.InsufficientPrivilege", "42501"),
    "a psycopg error is recorded with its SQLSTATE, which decides the type")
example.legacy_cleanup.apply_async(("/var/spool/legacy",), task_id=ref("legacy"))
is_(record("legacy", "status::text, failure_type::text, error_type"),
    ("ABANDONED", "CONFIGURATION_PERMISSIONS", "PermissionError"),
    "a plain Celery task's failure is recorded through connect_signals()")
ok(one("SELECT context ? 'traceback' FROM taskguard.dlq WHERE task_ref = %s", ref("legacy")),
   "with its traceback in the context")
dispatch_until("none", seconds=0.5)
ok(not {ref("import"), ref("ledger"), ref("legacy")} & set(dispatched),
   "abandoned records are never re-published")

# -- an operator's retry at a chosen priority reaches the broker queue ------------
# (imports.import_row is not configured: calculate_priority alone says MEDIUM)
db.execute("SELECT taskguard.dlq_retry(ARRAY[id], 'CRITICAL') FROM taskguard.dlq"
           " WHERE task_ref = %s", (ref("import"),))
published = dispatch_until(ref("import"))
is_(published and (published["queue"], published["priority"]), ("critical", "CRITICAL"),
    "a record retried with dlq_retry(ids, 'CRITICAL') is published on the critical queue")
is_(record("import", "status::text, priority::text"), ("ABANDONED", "CRITICAL"),
    "its run fails again and is abandoned again, at the operator's priority")

# -- idempotency ------------------------------------------------------------------
order = int(run[:8], 16)             # a new order each run: keys live for 24 hours
first = example.charge_card.apply_async((order, 2500), task_id=ref("charge1"))
second = example.charge_card.apply_async((order, 2500), task_id=ref("charge2"))
is_((first.result, second.result, example.runs.get(("billing.charge_card", order))),
    ({"charged": order, "amount_cents": 2500}, None, 1),
    "an idempotent task asks idempotency_check: the duplicate call is skipped")
ok(one("SELECT duplicates >= 1 FROM taskguard.idempotency_stats"
       " WHERE task_name = 'billing.charge_card'"), "idempotency_stats counts the duplicate")
example.charge_card.apply_async((order + 1, 250000), task_id=ref("declined1"))
example.charge_card.apply_async((order + 1, 250000), task_id=ref("declined2"))
is_(example.runs.get(("billing.charge_card", order + 1)), 2,
    "a failed run gives its idempotency key back: the same call runs again")
is_(record("declined2"), ("ABANDONED", "BUSINESS_LOGIC_VIOLATION", 0),
    "a declined card (insufficient funds) is a BUSINESS_LOGIC_VIOLATION")

# -- cleanup ------------------------------------------------------------------------
db.execute("DELETE FROM taskguard.failure_event WHERE failure_id IN"
           " (SELECT id FROM taskguard.dead_letter WHERE task_ref LIKE %s)", (run + "-%",))
db.execute("DELETE FROM taskguard.dead_letter WHERE task_ref LIKE %s", (run + "-%",))
db.execute("DELETE FROM taskguard.retry_policy WHERE task_name = 'crm.sync_contact'")
db.execute("DELETE FROM taskguard.task_config WHERE task_name = 'crm.sync_contact'")
print(f"1..{n}")
sys.exit(1 if failed else 0)
