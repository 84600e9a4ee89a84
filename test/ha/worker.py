"""The shipped Python worker (clients/python/taskguard_worker.py) as the HA test
runs it: one `nap` handler, a list of connection strings to follow a failover,
its counters printed as JSON when it stops (SIGTERM)."""
import argparse
import json
import logging
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "clients", "python"))
from taskguard_worker import Worker  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--queue", required=True)
parser.add_argument("--name", required=True)
parser.add_argument("--lease", type=float, default=3)
parser.add_argument("--dsn", action="append", required=True, help="tried in turn")
opts = parser.parse_args()
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

worker = Worker(opts.dsn, queue=opts.queue, name=opts.name, batch=2, lease=opts.lease,
                poll_interval=0.5, reconnect_max=1)


@worker.task("nap")
def nap(task):
    time.sleep(task.args.get("ms", 10) / 1000)
    return {"by": opts.name, "attempt": task.attempt}


worker.run()
print("stats " + json.dumps(worker.stats), flush=True)
