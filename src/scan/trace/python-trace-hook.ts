// The bootstrap a traced Python app loads as `sitecustomize` (from a temporary directory put first
// on PYTHONPATH): an audit hook records what the process imports and reads.

/**
 * Python source (stdlib only). It takes itself off `sys.path`, imports the environment's own
 * `sitecustomize` if there is one (this one shadows it), and appends to $ENVPACK_TRACE_OUT one
 * record a line: a plain absolute path for files opened for reading (`open` audit events, which
 * include the sources and caches the import system reads), extension modules (`import` events
 * carry their file), and at exit every loaded module's `__file__`; `#listdir<TAB>path` for a
 * directory the app listed (`os.listdir`/`os.scandir` events, which `pathlib`, `glob`, `os.walk`
 * and `pkgutil` go through; the import system's and `importlib.metadata`'s own listings are left
 * out); `#import<TAB>module<TAB>file<TAB>line` for each module imported through `__import__`
 * or `importlib.import_module` (wrapped, as it raises no event of its own), with the calling
 * line outside importlib. The first line, `#envpack-trace`, proves the hook ran: `python -I`,
 * `-E` or `-S` do not load it.
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
    me = __file__
    machinery = os.sep + "importlib" + os.sep

    def text(path):
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if isinstance(path, os.PathLike):
            path = os.fspath(path)
        if isinstance(path, str) and path and "\\n" not in path and "\\t" not in path:
            return os.path.abspath(path)
        return None

    def record(path):
        path = text(path)
        if path is not None:
            log.write(path + "\\n")

    def is_machinery(name):
        return name.startswith("<frozen importlib") or name.startswith("<frozen zipimport") or machinery in name

    def caller(frame):
        while frame is not None:
            name = frame.f_code.co_filename
            if name != me and not is_machinery(name):
                return None if name.startswith("<") else frame
            frame = frame.f_back
        return None

    def record_import(module, frame):
        frame = caller(frame)
        path = frame and text(frame.f_code.co_filename)
        if path is not None and isinstance(module, str) and module:
            log.write("#import\\t%s\\t%s\\t%d\\n" % (module, path, frame.f_lineno))

    def record_listing(path, frame):
        while frame is not None:
            if is_machinery(frame.f_code.co_filename):
                return
            frame = frame.f_back
        path = text(os.curdir if path is None else path)
        if path is not None:
            log.write("#listdir\\t" + path + "\\n")

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
        elif event == "import":
            if len(args) > 1 and args[1]:
                record(args[1])
            record_import(args[0], sys._getframe(1))
        elif event == "os.listdir" or event == "os.scandir":
            if not isinstance(args[0], int):
                record_listing(args[0], sys._getframe(1))

    def loaded():
        for module in list(sys.modules.values()):
            record(getattr(module, "__file__", None))
        log.flush()

    import importlib

    import_module = importlib.import_module

    def traced_import_module(name, package=None):
        module = import_module(name, package)
        record_import(module.__name__ if name.startswith(".") else name, sys._getframe(1))
        return module

    traced_import_module.__doc__ = import_module.__doc__
    importlib.import_module = traced_import_module
    log.write("#envpack-trace\\n")
    atexit.register(loaded)
    sys.addaudithook(hook)


_envpack_trace()
del _envpack_trace

# This module shadows the environment's own sitecustomize: run that one too. The import system
# takes the module back out of sys.modules when this one ends, so an entry must be there.
_envpack_self = sys.modules.pop("sitecustomize")
try:
    import sitecustomize  # noqa: F401
except ModuleNotFoundError as error:
    if error.name != "sitecustomize":
        raise
    sys.modules["sitecustomize"] = _envpack_self
del _envpack_self
`;
