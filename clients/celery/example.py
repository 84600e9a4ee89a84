#!/usr/bin/python3
"""Celery tasks whose failures, retries and duplicates taskguard handles.

    # a worker, consuming the queues taskguard's priorities map to
    celery -A example worker -Q critical,high,default,low,deferred
    # the dispatcher, re-publishing due retries from taskguard's DLQ
    ./example.py dispatch
    # some calls, a few of which fail
    ./example.py send

The broker is CELERY_BROKER_URL (e.g. redis://localhost:6379/0; the default is
a throwaway filesystem broker under /tmp/taskguard-celery), taskguard is
TASKGUARD_DSN ('' = the PG* environment variables).

  crm.sync_contact     requests ConnectionError on its first runs -> TRANSIENT_NETWORK:
                       taskguard schedules a retry, the dispatcher re-publishes it,
                       the run that succeeds resolves the record
  billing.charge_card  idempotent: the same charge twice runs once; a declined card
                       ("insufficient funds") is a BUSINESS_LOGIC_VIOLATION, and gives
                       its idempotency key back, so it can be charged again later
  imports.import_row   ValueError -> PERMANENT_INVALID_INPUT, ABANDONED
  ledger.post          PostgreSQL SQLSTATE 42501 -> CONFIGURATION_PERMISSIONS
  legacy.cleanup       a plain Celery task (no taskguard base class), reported
                       through connect_signals(): PermissionError
"""

import os
import sys

import psycopg
import requests
from celery import Celery

try:        # the installed package (pip install clients/python)
    from taskguard.celery import Dispatcher, TaskguardTask, connect_signals
except ImportError:   # a checkout of the repository: clients/python beside clients/celery
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
    from taskguard.celery import Dispatcher, TaskguardTask, connect_signals  # noqa: E402


def _broker():
    url = os.environ.get("CELERY_BROKER_URL")
    if url:
        return url, {}
    folder = os.environ.get("CELERY_BROKER_DIR", "/tmp/taskguard-celery")
    os.makedirs(os.path.join(folder, "out"), exist_ok=True)
    os.makedirs(os.path.join(folder, "processed"), exist_ok=True)
    return "filesystem://", {"data_folder_in": os.path.join(folder, "out"),
                             "data_folder_out": os.path.join(folder, "out"),
                             "processed_folder": os.path.join(folder, "processed"),
                             "store_processed": False, "polling_interval": 0.2}


broker_url, transport_options = _broker()
app = Celery("example", broker=broker_url)
app.conf.broker_transport_options = transport_options
app.conf.task_default_queue = "default"
connect_signals()

runs = {}          # runs per task in this process (the tests look at it in eager mode)


class CardDeclined(Exception):
    pass


@app.task(base=TaskguardTask, name="crm.sync_contact")
def sync_contact(contact_id, fail_runs=0):
    runs["crm.sync_contact"] = runs.get("crm.sync_contact", 0) + 1
    if sync_contact.taskguard_retry < fail_runs:
        raise requests.exceptions.ConnectionError(
            "HTTPSConnectionPool(host='crm.internal', port=443): "
            "Failed to establish a new connection: [Errno 111] Connection refused")
    return {"synced": contact_id}


@app.task(base=TaskguardTask, name="billing.charge_card", idempotent=True)
def charge_card(order_id, amount_cents):
    runs[("billing.charge_card", order_id)] = runs.get(("billing.charge_card", order_id), 0) + 1
    if amount_cents > 100000:
        raise CardDeclined(f"card declined for order {order_id}: insufficient funds")
    return {"charged": order_id, "amount_cents": amount_cents}


@app.task(base=TaskguardTask, name="imports.import_row")
def import_row(row):
    fields = row.split(";")
    if len(fields) != 4:
        raise ValueError(f"expected 4 fields, got {len(fields)}")
    return fields[0]


@app.task(base=TaskguardTask, name="ledger.post")
def post_ledger(amount_cents):
    # A neutral message: only the SQLSTATE tells what went wrong.  (Tasks use
    # connections of their own, not the bridge's.)
    with psycopg.connect(os.environ.get("TASKGUARD_DSN", ""), autocommit=True) as db:
        db.execute("DO $$ BEGIN RAISE EXCEPTION 'ledger write refused' "
                   "USING ERRCODE = '42501'; END $$")


@app.task(name="legacy.cleanup")
def legacy_cleanup(path):
    raise PermissionError(13, "Permission denied", path)


def send():
    sync_contact.delay(7, fail_runs=2)
    charge_card.delay(1001, 2500)
    charge_card.delay(1001, 2500)          # the duplicate: skipped
    charge_card.delay(1002, 250000)        # declined
    import_row.delay("42;ana")
    post_ledger.delay(1000)
    legacy_cleanup.delay("/var/spool/legacy")


if __name__ == "__main__":
    import logging
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "send":
        send()
    elif command == "dispatch":
        Dispatcher(app).run()
    else:
        sys.exit(__doc__)
