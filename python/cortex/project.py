"""A project directory packed as the CLI packs it (docs/cli.md#cortex-deploy).

The same files are uploaded as by ``cortex deploy``: everything under the directory but dot-files
and dot-folders, ``__pycache__``, ``*.pyc``/``*.pyo``/``*.pyd``, names starting with
``cortex-debug-`` and the paths ``.cortexignore`` (gitignore syntax) excludes; the root ``.env``
is added back. The archive is a tar with sorted entries, mtime 0 and owner 0, so the same files
give the same bytes and the operator keeps one copy of them.
"""

import hashlib
import io
import os
import tarfile

from cortex.exceptions import CortexException
from cortex.ignore_rules import IgnoreRules

MAX_PROJECT_BYTES = 512 * 1024 * 1024  # the operator's limit


def _ignore_rules(root):
    path = os.path.join(root, ".cortexignore")
    if not os.path.isfile(path):
        return None
    try:
        with open(path, errors="replace") as f:
            return IgnoreRules(f.read())
    except OSError as e:
        raise CortexException(f"{path}: {e}") from None


def _generated(name):
    return any(name.endswith(ext) and len(name) > len(ext) for ext in (".pyc", ".pyo", ".pyd"))


def list_files(root):
    """The project's files, relative and '/'-separated, sorted."""
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        raise CortexException(f"{root}: directory does not exist")
    if root in ("/", os.path.expanduser("~")):
        what = "file system" if root == "/" else "home directory"
        raise CortexException(f"{root}: refusing to upload a whole {what}; choose a project "
                              "directory")
    rules = _ignore_rules(root)
    files = []

    def walk(rel_dir):
        directory = os.path.join(root, rel_dir) if rel_dir else root
        try:
            entries = list(os.scandir(directory))
        except OSError as e:
            raise CortexException(f"listing {directory}: {e}") from None
        for entry in entries:
            name = entry.name
            rel = f"{rel_dir}/{name}" if rel_dir else name
            is_dir = entry.is_dir(follow_symlinks=False)
            if name.startswith(".") or name.startswith("cortex-debug-"):
                continue
            if (is_dir and name == "__pycache__") or (not is_dir and _generated(name)):
                continue
            if rules is not None and rules.ignored(rel, is_dir):
                continue
            if is_dir:
                walk(rel)
            elif entry.is_file(follow_symlinks=True):  # a link to a file: its contents
                files.append(rel)

    walk("")
    if os.path.isfile(os.path.join(root, ".env")):
        files.append(".env")
    return sorted(files)


def _entry(name, data, executable):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o755 if executable else 0o644
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def pack(root, extra=None):
    """The project under ``root`` (None: no directory) plus ``extra`` ({path: bytes}, which wins
    over a file of the same path) as (archive bytes, its sha256 hex id)."""
    contents = {}
    try:
        listed = list_files(root) if root is not None else []
        sizes = {rel: os.stat(os.path.join(root, rel)).st_size for rel in listed}
        total = sum(sizes.values()) + sum(len(d) for d in (extra or {}).values())
        if total > MAX_PROJECT_BYTES:  # before anything is read
            raise CortexException(f"the project is {total / 1048576:.1f} MiB, over the "
                                  f"{MAX_PROJECT_BYTES // 1048576} MiB limit")
        for rel in listed:
            path = os.path.join(root, rel)
            with open(path, "rb") as f:
                contents[rel] = (f.read(), bool(os.stat(path).st_mode & 0o111))
    except OSError as e:
        raise CortexException(f"reading the project: {e}") from None
    for rel, data in (extra or {}).items():
        contents[rel] = (data, False)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in sorted(contents):
            data, executable = contents[rel]
            tar.addfile(_entry(rel, data, executable), io.BytesIO(data))
    archive = buffer.getvalue()
    return archive, hashlib.sha256(archive).hexdigest()
