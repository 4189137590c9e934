"""bench:exec's peer: no-op tasks on Dask's LocalCluster (2 worker processes x 1 thread).

Run with Debian's interpreter, which has python3-distributed:
    /usr/bin/python3 bench/peers/dask-noop.py [--tasks N] [--latency-calls N] [--workers N]
Prints one JSON document on stdout: throughput of N no-op tasks submitted at once, and the
round-trip latencies of sequential submit -> result calls. Cluster start-up is not timed.
"""

import argparse
import json
import logging
import statistics
import sys
import time


def noop(i):
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--latency-calls", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    import dask
    import distributed
    from distributed import Client, LocalCluster, wait

    started = time.perf_counter()
    with LocalCluster(
        n_workers=args.workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=logging.ERROR,
    ) as cluster, Client(cluster) as client:
        client.wait_for_workers(args.workers)
        # Warm-up: every worker has deserialised the function once before timing starts.
        client.gather(client.map(noop, range(100), pure=False))
        startup = time.perf_counter() - started

        t0 = time.perf_counter()
        futures = client.map(noop, range(args.tasks), pure=False)
        wait(futures)
        client.gather(futures)
        throughput_seconds = time.perf_counter() - t0
        del futures

        latencies = []
        for i in range(args.latency_calls):
            t = time.perf_counter()
            client.submit(noop, i, pure=False).result()
            latencies.append((time.perf_counter() - t) * 1000)

    json.dump(
        {
            "peer": "dask.distributed LocalCluster",
            "dask": dask.__version__,
            "distributed": distributed.__version__,
            "python": sys.version.split()[0],
            "workers": args.workers,
            "threadsPerWorker": 1,
            "startupSeconds": startup,
            "tasks": args.tasks,
            "throughputSeconds": throughput_seconds,
            "tasksPerSecond": args.tasks / throughput_seconds,
            "latencyCalls": args.latency_calls,
            "medianLatencyMs": statistics.median(latencies),
        },
        sys.stdout,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
