# Rewrites an unpacked envpack Conda bundle's prefix placeholders for the directory it now lives in (stdlib only).
#
# Run by the bundle's own interpreter as `<env>/bin/python3 <env>/.envpack/relocate.py`; the new
# prefix is the directory that holds `.envpack/`. It reads `.envpack/relocate.json`:
#   {"version": 1, "placeholder": P, "files": [{"path", "mode": "text"|"binary", "sha256",
#    "placeholder"?: overrides P, "shebang"?: true}]}
# where sha256 is the file's content as packed (placeholders in it).
#
# Guarantees:
# - Every file is read and its new content computed and checked (binary lengths included)
#   before anything is written; on any problem it exits 1 and modifies nothing.
# - New contents go to temporary files next to their targets and are renamed into place, so a
#   running executable is never written in place; a journal names the prefix being written so
#   a run interrupted between renames is completed by the next run.
# - `.envpack/relocated.json` records the prefix relocated to and each file's resulting sha256:
#   running again for the same prefix does nothing, for another prefix it relocates from the
#   recorded one (the bundle was moved).
import sys

# Nothing of this run may change the environment beyond the relocated files.
sys.dont_write_bytecode = True

import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402

SPEC = "relocate.json"
MARKER = "relocated.json"
JOURNAL = "relocating.json"
# Kernels before 5.1 read only 128 bytes of "#!" lines; longer ones go through /usr/bin/env, as conda does.
SHEBANG_MAX = 127


class RelocationError(Exception):
    pass


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def read_json(path):
    try:
        with open(path, "rb") as handle:
            return json.loads(handle.read().decode("utf-8"))
    except FileNotFoundError:
        return None


def write_json_atomic(path, value):
    temp = "%s.tmp-%d" % (path, os.getpid())
    with open(temp, "wb") as handle:
        handle.write(json.dumps(value, indent=1, sort_keys=True).encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)


def binary_replace(data, old, new, path):
    """Replaces every NUL-terminated run starting with `old`, keeping the file length: a shorter
    prefix is padded with NULs after the run's terminator, a longer one consumes that padding."""
    pattern = re.compile(re.escape(old) + b"[^\0]*?\0")
    out = bytearray()
    pos = 0
    match = pattern.search(data, pos)
    while match is not None:
        out += data[pos : match.start()]
        run = match.group()
        delta = (len(new) - len(old)) * run.count(old)
        out += run.replace(old, new)
        end = match.end()
        if delta < 0:
            out += b"\0" * -delta
        elif delta > 0:
            if data[end : end + delta] != b"\0" * delta:
                raise RelocationError(
                    "%s: no room for a prefix of %d bytes in a binary string"
                    % (path, len(new))
                )
            end += delta
        pos = end
        match = pattern.search(data, pos)
    out += data[pos:]
    if len(out) != len(data):
        raise RelocationError("%s: binary relocation changed the file length" % path)
    return bytes(out)


def fix_shebang(data, new):
    """An absolute "#!<new>/…" line the kernel cannot read (too long, or with white space in the
    prefix) becomes "#!/usr/bin/env <program>"; the bundle's bin is first on PATH when it runs."""
    if not data.startswith(b"#!"):
        return data
    end = data.find(b"\n")
    line = data if end < 0 else data[:end]
    match = re.match(rb"#!\s*(\S+)(.*)$", line, re.S)
    if match is None:
        return data
    executable, options = match.group(1), match.group(2)
    if not executable.startswith(new + b"/"):
        return data
    if len(line) <= SHEBANG_MAX and not re.search(rb"\s", new):
        return data
    program = executable.rsplit(b"/", 1)[-1]
    shebang = b"#!/usr/bin/env " + program + options
    return shebang + (b"" if end < 0 else data[end:])


def plan(root, spec, marker, journal):
    new = root.encode("utf-8")
    default_placeholder = spec["placeholder"]
    changes = []
    problems = []
    for item in spec["files"]:
        rel = item["path"]
        path = os.path.join(root, rel)
        placeholder = item.get("placeholder", default_placeholder).encode("utf-8")
        try:
            info = os.lstat(path)
            if not os.path.isfile(path) or os.path.islink(path):
                problems.append("%s: not a regular file" % rel)
                continue
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as error:
            problems.append("%s: %s" % (rel, error.strerror or error))
            continue
        digest = sha256(data)
        if digest == item["sha256"]:
            old = placeholder
        elif journal is not None and journal["files"].get(rel) == digest:
            old = journal["prefix"].encode("utf-8")
        elif marker is not None and marker["files"].get(rel) == digest:
            old = marker["prefix"].encode("utf-8")
        else:
            problems.append("%s: changed since the bundle was unpacked" % rel)
            continue
        try:
            if item["mode"] == "binary":
                if len(new) > len(placeholder):
                    problems.append(
                        "%s: binary file has room for a prefix of at most %d bytes"
                        % (rel, len(placeholder))
                    )
                    continue
                updated = binary_replace(data, old, new, rel)
            else:
                updated = data.replace(old, new)
            if item.get("shebang"):
                updated = fix_shebang(updated, new)
        except RelocationError as error:
            problems.append(str(error))
            continue
        changes.append((rel, path, data, updated, info.st_mode & 0o7777))
    return changes, problems


def apply(root, meta_dir, changes):
    pending = []
    try:
        for rel, path, data, updated, mode in changes:
            if updated == data:
                continue
            temp = os.path.join(
                os.path.dirname(path),
                ".%s.envpack-relocate-%d" % (os.path.basename(path), os.getpid()),
            )
            pending.append((temp, path))
            with open(temp, "wb") as handle:
                handle.write(updated)
            os.chmod(temp, mode)
        record = {
            "version": 1,
            "prefix": root,
            "files": {rel: sha256(updated) for rel, _, _, updated, _ in changes},
        }
        write_json_atomic(os.path.join(meta_dir, JOURNAL), record)
        while pending:
            temp, path = pending[0]
            os.replace(temp, path)
            pending.pop(0)
        write_json_atomic(os.path.join(meta_dir, MARKER), record)
        os.unlink(os.path.join(meta_dir, JOURNAL))
    finally:
        for temp, _ in pending:
            try:
                os.unlink(temp)
            except FileNotFoundError:
                pass


def main():
    meta_dir = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(meta_dir)
    spec = read_json(os.path.join(meta_dir, SPEC))
    if spec is None or spec.get("version") != 1:
        sys.stderr.write(
            "envpack-relocate: %s is missing or of an unknown version\n"
            % os.path.join(meta_dir, SPEC)
        )
        return 1
    marker = read_json(os.path.join(meta_dir, MARKER))
    journal = read_json(os.path.join(meta_dir, JOURNAL))
    if journal is None and marker is not None and marker.get("prefix") == root:
        return 0
    changes, problems = plan(root, spec, marker, journal)
    if problems:
        sys.stderr.write(
            "envpack-relocate: cannot relocate the environment to %s (%d bytes); "
            "nothing was modified:\n" % (root, len(root.encode("utf-8")))
        )
        for problem in problems:
            sys.stderr.write("  - %s\n" % problem)
        if any("room for a prefix" in p for p in problems):
            sys.stderr.write(
                "hint: unpack the bundle under a shorter directory path.\n"
            )
        return 1
    try:
        apply(root, meta_dir, changes)
    except OSError as error:
        sys.stderr.write(
            "envpack-relocate: writing the relocated files under %s failed: %s\n"
            % (root, error)
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
