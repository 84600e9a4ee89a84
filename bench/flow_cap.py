#!/usr/bin/python3
"""bench/flow_cap.py — a binding cap with real workers: 8 Python workers (taskguard.Worker, LISTEN/NOTIFY,
poll_interval 5 s), cap 4 on the queue, each task sleeps 50 ms: the allowance is
4 / 0.05 = 80 tasks/s.  Prints ratio: flow_binding_cap_vs_allowance and
metric: flow_claims_per_task (claim() calls per task handed out: the workers sleep on
LISTEN until a freed slot's NOTIFY wakes them, so this stays a small constant).
Run by bench/flow.sh with Debian's python3 (python3-psycopg), PG* variables set."""
import os, sys, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python"))
import psycopg
from taskguard import Worker, enqueue_many

dsn = f"dbname={sys.argv[1]} options='-c track_functions=all'"
n = 400
with psycopg.connect(dsn, autocommit=True) as c:
    c.execute("DELETE FROM taskguard.flow_limit WHERE name = 'capq'")
    c.execute("INSERT INTO taskguard.flow_limit (scope, name, max_running) VALUES ('queue', 'capq', 4)")
    c.execute("DELETE FROM taskguard.task WHERE queue = 'capq'")
    calls0 = c.execute("SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions WHERE funcname = 'claim'").fetchone()[0]
    enqueue_many(c, "nap", [{}] * n, queue="capq")
    workers = []
    for i in range(8):
        w = Worker(dsn, queue="capq", name=f"cap{i}", batch=1, poll_interval=5.0)
        w.task("nap")(lambda task: time.sleep(0.05))
        workers.append(w)
    t0 = time.monotonic()
    threads = [threading.Thread(target=w.run, kwargs={"install_signals": False}) for w in workers]
    for t in threads: t.start()
    while c.execute("SELECT count(*) FROM taskguard.task WHERE queue = 'capq' AND status = 'succeeded'").fetchone()[0] < n:
        time.sleep(0.05)
    dt = time.monotonic() - t0
    for w in workers: w.stop()
    for t in threads: t.join()
    time.sleep(0.6)
    calls = c.execute("SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions WHERE funcname = 'claim'").fetchone()[0] - calls0
    print(f"binding cap 4, 50 ms tasks, 8 workers: {n / dt:.1f} tasks/s of an allowance of 80")
    print(f"metric: flow_claims_per_task {calls / n:.2f}")
    print(f"ratio: flow_binding_cap_vs_allowance {n / dt / 80:.2f}")
    c.execute("DELETE FROM taskguard.flow_limit WHERE name = 'capq'")
