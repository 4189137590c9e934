# The task wrapper of Python apps: runs one function of a .py file with JSON arguments. Standard
# library only: it runs with the bundle's python. Under a bundle (ENVPACK_ENV set, as on a remote
# worker) a relative file is the bundle's, "" its entry. Messages (protocol 1) are TaskRequest,
# TaskReply, RuntimeConnect and RuntimeWire in src/core/task.ts:
#   request: {"type": "run", "protocol", "id", "file", "function", "args", "cwd"}
#   reply:   {"type": "result", "protocol", "id", "ok", "value"?, "error"?: {"name", "message", "stack"}}
# One-shot (no argument): one request on stdin, its reply on file descriptor 3 (so the app's own
# stdout is never mistaken for it).
# Remote warm mode (`--connect`, a long-lived Work Queue task, as runtime/module-runner.mjs): a
# RuntimeConnect on stdin says where the manager is; this connects back, answers the manager's
# challenge with HMAC-SHA256(token, nonce) and runs requests one at a time in `work/`, which is
# measured and emptied after each. Each task is measured from the runtime at rest: its peak is the
# resident high-water mark since its start (reset through /proc/self/clear_refs), and a task that
# grew the runtime has its garbage collected before it is answered.
import gc
import hashlib
import hmac
import importlib.util
import json
import os
import queue
import shutil
import socket
import sys
import threading
import time
import traceback

PROTOCOL = 1
MB = 1048576.0
# Growth over the resident MB at rest after which a task's garbage is collected before its answer.
TIDY_MB = 16


def in_bundle(path):
    """Under a bundle (ENVPACK_ENV, set by envpack-run) a relative path is the bundle's, "" its entry."""
    env = os.environ.get("ENVPACK_ENV")
    if env is None or os.path.isabs(path):
        return path
    if path == "":
        with open(os.path.join(env, ".envpack", "bundle.json")) as f:
            entries = json.load(f).get("entries") or []
        if not entries:
            raise ValueError("%s: the bundle names no entry" % env)
        path = entries[0]
    return os.path.join(env, path)


def describe(error):
    return {"name": type(error).__name__, "message": str(error), "stack": traceback.format_exc()}


def load(path):
    """Executes the .py file as a fresh module (its directory first on sys.path)."""
    folder = os.path.dirname(os.path.abspath(path))
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location("envpack_app", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def call(module, path, task):
    fn = getattr(module, task["function"], None)
    if not callable(fn):
        raise TypeError("%s has no function %s" % (path, task["function"]))
    return fn(*task["args"])


def encode(reply, outcome):
    """The reply as one JSON line; a value that is not JSON becomes the task's error."""
    try:
        return json.dumps(dict(reply, **outcome), allow_nan=False)
    except (TypeError, ValueError) as error:
        return json.dumps(dict(reply, ok=False, error={
            "name": "TypeError",
            "message": "the result is not JSON-serialisable: %s" % error,
        }))


def once():
    task = json.load(sys.stdin)
    out = os.fdopen(3, "w")
    reply = {"type": "result", "protocol": PROTOCOL, "id": task.get("id", "")}
    try:
        os.chdir(task["cwd"])
        path = in_bundle(task["file"])
        outcome = {"ok": True, "value": call(load(path), path, task)}
    except BaseException as error:  # the app's failure is the result, whatever it is
        outcome = {"ok": False, "error": describe(error)}
    out.write(encode(reply, outcome))
    out.close()


def status_mb(field):
    """A /proc/self/status field in MB (VmRSS, VmHWM), or None where there is no /proc."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except FileNotFoundError:
        return None
    return None


def reset_high_water():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except (FileNotFoundError, PermissionError):
        return False


def sweep(folder):
    """MB of the files left in the sandbox (allocated blocks); then empties it."""
    total = 0
    for root, dirs, files in os.walk(folder):
        for name in files:
            total += os.lstat(os.path.join(root, name)).st_blocks * 512
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    return total / MB


class Warm:
    """One warm runtime's state: its sandbox, its loaded modules and its resident MB at rest."""

    def __init__(self, sandbox):
        self.sandbox = sandbox
        self.modules = {}
        self.paths = {}
        self.can_measure = reset_high_water()
        self.rest = status_mb("VmRSS") or 0.0
        self.cpu_mark = time.process_time()

    def module(self, path):
        # A module that failed to load is tried again by the next task.
        if path not in self.modules:
            self.modules[path] = load(path)
        return self.modules[path]

    def tidy(self, end):
        """After a task that grew the runtime: collect its garbage, so the next starts at rest."""
        if end - self.rest <= TIDY_MB:
            self.rest = min(self.rest, end)
            return False
        gc.collect()
        self.rest = status_mb("VmRSS") or end
        return True

    def run(self, task):
        reply = {"type": "result", "protocol": PROTOCOL, "id": task.get("id", "")}
        if self.can_measure:
            reset_high_water()
        try:
            os.makedirs(self.sandbox, exist_ok=True)
            # Every task starts in the sandbox, whatever the last one did with its cwd.
            os.chdir(self.sandbox)
            path = self.paths.get(task["file"])
            if path is None:
                path = self.paths[task["file"]] = in_bundle(task["file"])
            outcome = {"ok": True, "value": call(self.module(path), path, task)}
        except BaseException as error:  # the app's failure is the result, whatever it is
            outcome = {"ok": False, "error": describe(error)}
        now = time.process_time()
        disk = 0.0
        try:
            disk = sweep(self.sandbox)
        except OSError as error:
            outcome = {"ok": False, "error": describe(error)}
        rss = status_mb("VmRSS") or 0.0
        peak = status_mb("VmHWM") if self.can_measure else None
        used = now - self.cpu_mark
        # A collection's CPU is neither this task's nor the next one's.
        self.cpu_mark = time.process_time() if self.tidy(rss) else now
        reply.update(cpuMs=used * 1000, rssMB=rss, restMB=self.rest, diskMB=disk)
        if peak is not None:
            reply["peakMB"] = peak
        return encode(reply, outcome)


def connect():
    config = json.load(sys.stdin)
    warm = Warm(os.path.join(os.getcwd(), "work"))
    conn = socket.create_connection((config["host"], config["port"]))
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    lines = queue.Queue()

    def read():
        # The manager owns this process: when its connection ends, leave at once (even mid-task).
        with conn.makefile("rb") as stream:
            for line in stream:
                lines.put(line)
        os._exit(0)

    def write(text):
        conn.sendall(text.encode("utf-8") + b"\n")

    write("envpack-runtime %d %s" % (PROTOCOL, config["runtimeId"]))
    threading.Thread(target=read, daemon=True).start()
    token = bytes.fromhex(config["token"])
    while True:
        message = json.loads(lines.get())
        kind = message.get("type")
        if kind == "challenge":
            answer = hmac.new(token, message["nonce"].encode("utf-8"), hashlib.sha256).hexdigest()
            write(json.dumps({"type": "hello", "protocol": PROTOCOL, "answer": answer,
                              "pid": os.getpid(), "restMB": warm.rest}))
        elif kind == "run":
            write(warm.run(message))
        elif kind == "exit":
            conn.close()
            os._exit(0)


if __name__ == "__main__":
    if sys.argv[1:] == ["--connect"]:
        connect()
    else:
        once()
