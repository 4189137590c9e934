# The task wrapper of Python apps: runs one function of a .py file with JSON arguments and writes
# the JSON result to file descriptor 3. Standard library only: it runs with the bundle's python.
# Under a bundle (ENVPACK_ENV set, as on a remote worker) a relative file is the bundle's, "" its entry.
# Messages (protocol 1) are TaskRequest and TaskReply in src/core/task.ts:
#   stdin: {"type": "run", "protocol", "id", "file", "function", "args", "cwd"}
#   fd 3:  {"type": "result", "protocol", "id", "ok", "value"?, "error"?: {"name", "message", "stack"}}
import importlib.util
import json
import os
import sys
import traceback

PROTOCOL = 1


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


def main():
    task = json.load(sys.stdin)
    out = os.fdopen(3, "w")
    reply = {"type": "result", "protocol": PROTOCOL, "id": task.get("id", "")}
    try:
        os.chdir(task["cwd"])
        path = in_bundle(task["file"])
        sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
        spec = importlib.util.spec_from_file_location("envpack_app", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        fn = getattr(module, task["function"], None)
        if not callable(fn):
            raise TypeError("%s has no function %s" % (path, task["function"]))
        text = json.dumps(dict(reply, ok=True, value=fn(*task["args"])))
    except BaseException as error:  # the app's failure is the result, whatever it is
        text = json.dumps(dict(reply, ok=False, error={
            "name": type(error).__name__,
            "message": str(error),
            "stack": traceback.format_exc(),
        }))
    out.write(text)
    out.close()


main()
