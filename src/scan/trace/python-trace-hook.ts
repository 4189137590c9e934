// The bootstrap a traced Python app loads as `sitecustomize` (from a temporary directory put first
// on PYTHONPATH): an audit hook records what the process imports and reads.

/**
 * Python source (stdlib only). It takes itself off `sys.path`, imports the environment's own
 * `sitecustomize` if there is one (this one shadows it), and appends to $ENVPACK_TRACE_OUT one
 * absolute path a line: files opened for reading (`open` audit events, which include the sources
 * and caches the import system reads), extension modules (`import` events carry their file), and
 * at exit every loaded module's `__file__`. The first line, `#envpack-trace`, proves the hook ran:
 * `python -I`, `-E` or `-S` do not load it.
 */
export const PYTHON_TRACE_HOOK = `# envpack --trace: records the files this Python process imports and reads.
import atexit
import os
import sys


def _envpack_trace():
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    out = os.environ.get("ENVPACK_TRACE_OUT")
    if not out:
        return
    log = open(out, "a", encoding="utf-8", errors="surrogateescape", buffering=1)
    writes = os.O_WRONLY | os.O_RDWR

    def record(path):
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if isinstance(path, str) and path and "\\n" not in path:
            log.write(os.path.abspath(path) + "\\n")

    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            if mode is None:
                if isinstance(flags, int) and flags & writes:
                    return
            elif any(c in mode for c in "wax+"):
                return
            if not isinstance(path, int):
                record(path)
        elif event == "import" and len(args) > 1 and args[1]:
            record(args[1])

    def loaded():
        for module in list(sys.modules.values()):
            record(getattr(module, "__file__", None))
        log.flush()

    log.write("#envpack-trace\\n")
    atexit.register(loaded)
    sys.addaudithook(hook)


_envpack_trace()
del _envpack_trace

# This module shadows the environment's own sitecustomize: run that one too.
del sys.modules["sitecustomize"]
try:
    import sitecustomize  # noqa: F401
except ModuleNotFoundError as error:
    if error.name != "sitecustomize":
        raise
`;
