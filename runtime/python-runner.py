# The task wrapper of Python apps: runs one function of a .py file with JSON arguments and writes
# the JSON result to file descriptor 3. Standard library only: it runs with the bundle's python.
# Messages (protocol 1) are TaskRequest and TaskReply in src/core/task.ts:
#   stdin: {"type": "run", "protocol", "id", "file", "function", "args", "cwd"}
#   fd 3:  {"type": "result", "protocol", "id", "ok", "value"?, "error"?: {"name", "message", "stack"}}
import importlib.util
import json
import os
import sys
import traceback

PROTOCOL = 1


def main():
    task = json.load(sys.stdin)
    out = os.fdopen(3, "w")
    reply = {"type": "result", "protocol": PROTOCOL, "id": task.get("id", "")}
    try:
        os.chdir(task["cwd"])
        sys.path.insert(0, os.path.dirname(os.path.abspath(task["file"])))
        spec = importlib.util.spec_from_file_location("envpack_app", task["file"])
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        fn = getattr(module, task["function"], None)
        if not callable(fn):
            raise TypeError("%s has no function %s" % (task["file"], task["function"]))
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
