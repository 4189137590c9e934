"""bench:wq's peer: no-op command tasks through Debian's C Work Queue manager (python3-workqueue).

Run with Debian's interpreter, which has the bindings:
    /usr/bin/python3 bench/peers/wq-cmanager.py [--tasks N] [--latency-calls N] [--warmup N] [--workers N]
With --monitor every task is wrapped in resource_monitor (measured and limited, as envpack's
manager does by default). Listens on 127.0.0.1 (a free port) and prints {"port": P} as its first stdout line; the caller
then starts the worker(s). Once --workers (default 1) have connected and run the untimed warm-up tasks, it prints
{"phase": "timed-start"}, waits for a line on stdin, times N `true` tasks (1 core each) submitted
at once, prints {"phase": "timed-end"} and waits for a line again, then sequential submit -> result round trips, tells the
workers to exit and prints one JSON document as its last stdout line. A task that fails is
counted (and its first cause kept), not fatal.
"""

import argparse
import json
import statistics
import sys
import time


failures = {"count": 0, "first": None}


def drain(q, count):
    """Waits for `count` tasks; returns them. A task that did not succeed is counted, not fatal
    (under load resource_monitor itself sometimes aborts), and its first cause kept."""
    done = []
    while len(done) < count:
        t = q.wait(5)
        if t is None:
            continue
        if t.result != 0 or t.return_status != 0:
            failures["count"] += 1
            if failures["first"] is None:
                failures["first"] = "task %d: result %d, exit %d" % (
                    t.id,
                    t.result,
                    t.return_status,
                )
        done.append(t)
    return done


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--latency-calls", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--command", default="true")
    parser.add_argument(
        "--monitor",
        action="store_true",
        help="wrap every task in resource_monitor, as envpack's manager does",
    )
    args = parser.parse_args()

    import work_queue as wq

    q = wq.WorkQueue(port=0)
    if args.monitor:
        q.enable_monitoring()
    print(json.dumps({"port": q.port}), flush=True)

    def task():
        t = wq.Task(args.command)
        t.specify_cores(1)
        return t

    # Untimed: the workers connect and run a few tasks.
    while q.stats.workers_connected < args.workers:
        q.wait(1)  # accepts connections; returns at once while no task is queued
        time.sleep(0.05)
    for _ in range(args.warmup):
        q.submit(task())
    drain(q, args.warmup)
    warmup_failed = failures["count"]

    # The caller reads the workers' CPU at each mark, then answers with a line.
    def mark(phase):
        print(json.dumps({"phase": phase}), flush=True)
        sys.stdin.readline()

    mark("timed-start")
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    for _ in range(args.tasks):
        q.submit(task())
    drain(q, args.tasks)
    failed = failures["count"] - warmup_failed
    throughput_seconds = time.perf_counter() - t0
    timed_cpu = time.process_time() - cpu0
    mark("timed-end")

    latencies = []
    before_latency = failures["count"]
    for _ in range(args.latency_calls):
        t = time.perf_counter()
        q.submit(task())
        drain(q, 1)
        latencies.append((time.perf_counter() - t) * 1000)

    q.shutdown_workers(0)
    json.dump(
        {
            "peer": "Debian cctools C manager (python3-workqueue)",
            "python": sys.version.split()[0],
            "monitor": args.monitor,
            "tasks": args.tasks,
            "throughputSeconds": throughput_seconds,
            "tasksPerSecond": args.tasks / throughput_seconds,
            "latencyCalls": args.latency_calls,
            "medianLatencyMs": statistics.median(latencies),
            # Tasks that did not succeed: of the timed ones, of the round trips, and the first.
            "failed": failed,
            "latencyFailed": failures["count"] - before_latency,
            "firstFailure": failures["first"],
            # This process's CPU (the C manager runs inside it), for every task of the run.
            "cpuSeconds": time.process_time(),
            "allTasks": args.warmup + args.tasks + args.latency_calls,
            # The same for the timed tasks alone.
            "timedCpuSeconds": timed_cpu,
        },
        sys.stdout,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
