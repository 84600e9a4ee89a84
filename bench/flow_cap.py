#!/usr/bin/python3
"""bench/flow_cap.py DB [TASK_MS [N [LABEL]]] — a binding cap with real workers: 8 Python
workers (taskguard.Worker, batch 1, LISTEN/NOTIFY, poll_interval 5 s), a cap of 4 on the
queue, each task sleeps TASK_MS (default 50): the cap's allowance is 4 / TASK_MS tasks/s.

Prints, for N tasks (default 400):
  ratio: cap_throughput_vs_allowance[_LABEL]   tasks/s (first start to last finish, as the
         table records them) over the allowance;
  ratio: cap_throughput_vs_achievable[_LABEL]  the same over 4 / (a worker's median cycle:
         claim + task + complete, as the worker times it) — what is left once the round
         trips and commits that every task pays are counted: the wake-ups' own loss;
  metric: flow_claims_per_task[_LABEL]         claim() calls per task handed out.
In the scheduler's database (taskguard.database) a freed slot that the finishing worker
does not take back within 5 ms is notified by the scheduler; elsewhere the finishing
task's commit notifies the waiting queue (docs/flow.md "Waking the workers a limit holds
back").  Run by bench/flow.sh with Debian's python3 (python3-psycopg), PG* variables set."""
import os, statistics, sys, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python"))
import psycopg
from taskguard import Worker, enqueue_many

db = sys.argv[1]
task_ms = float(sys.argv[2]) if len(sys.argv) > 2 else 50.0
n = int(sys.argv[3]) if len(sys.argv) > 3 else 400
label = ("_" + sys.argv[4]) if len(sys.argv) > 4 else ""
cap, nworkers = 4, 8
allowance = cap / (task_ms / 1000.0)
dsn = f"dbname={db} options='-c track_functions=all'"


class TimedWorker(Worker):
    """Times each cycle that handed out a task: claim + task + complete."""
    cycles = []

    def run_batch(self):
        t0 = time.monotonic()
        got = super().run_batch()
        if got:
            TimedWorker.cycles.append(time.monotonic() - t0)
        return got


with psycopg.connect(dsn, autocommit=True) as c:
    served = c.execute("SELECT current_setting('taskguard.database', true) = current_database()").fetchone()[0]
    c.execute("DELETE FROM taskguard.flow_limit WHERE name = 'capq'")
    c.execute("INSERT INTO taskguard.flow_limit (scope, name, max_running) VALUES ('queue', 'capq', %s)", (cap,))
    c.execute("DELETE FROM taskguard.task WHERE queue = 'capq'")
    calls0 = c.execute("SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions WHERE funcname = 'claim'").fetchone()[0]
    enqueue_many(c, "nap", [{}] * n, queue="capq")
    workers = []
    for i in range(nworkers):
        w = TimedWorker(dsn, queue="capq", name=f"cap{i}", batch=1, poll_interval=5.0)
        w.task("nap")(lambda task: time.sleep(task_ms / 1000.0))
        workers.append(w)
    threads = [threading.Thread(target=w.run, kwargs={"install_signals": False}) for w in workers]
    for t in threads: t.start()
    while c.execute("SELECT count(*) FROM taskguard.task WHERE queue = 'capq' AND status = 'succeeded'").fetchone()[0] < n:
        time.sleep(0.05)
    for w in workers: w.stop()
    for t in threads: t.join()
    time.sleep(0.6)                 # pg_stat_user_functions is flushed at most every 0.5 s
    calls = c.execute("SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions WHERE funcname = 'claim'").fetchone()[0] - calls0
    span = c.execute("SELECT extract(epoch FROM max(finished_at) - min(started_at))::float8 FROM taskguard.task "
                     "WHERE queue = 'capq'").fetchone()[0]
    cycle = statistics.median(TimedWorker.cycles)
    tput = n / span
    print(f"binding cap {cap}, {task_ms:g} ms tasks, {nworkers} workers, {n} tasks "
          f"({'the scheduler' if served else 'no scheduler'} in database {db}): {tput:.1f} tasks/s "
          f"of an allowance of {allowance:.1f}; a worker's cycle (claim, task, complete) median "
          f"{cycle * 1000:.1f} ms: {cap / cycle:.1f} tasks/s achievable")
    print(f"metric: flow_claims_per_task{label} {calls / n:.2f}")
    print(f"ratio: cap_throughput_vs_allowance{label} {tput / allowance:.2f}")
    print(f"ratio: cap_throughput_vs_achievable{label} {tput / (cap / cycle):.2f}")
    c.execute("DELETE FROM taskguard.flow_limit WHERE name = 'capq'")
    c.execute("DELETE FROM taskguard.task WHERE queue = 'capq'")
