#!/usr/bin/python3
"""Writes the bundle_fuzzer seed corpus (fuzz/corpus/bundle_fuzzer/): small tar archives, one a
valid project and the others what ExtractBundle must refuse. Run it from anywhere; the files
are committed, so this is needed only to change them."""
import io
import os
import tarfile

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "bundle_fuzzer")


def tar(name, entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for e in entries:
            info = tarfile.TarInfo(e["name"])
            info.type = e.get("type", tarfile.REGTYPE)
            info.mode = e.get("mode", 0o644)
            info.linkname = e.get("link", "")
            data = e.get("data", b"")
            regular = info.type == tarfile.REGTYPE
            info.size = len(data) if regular else 0
            t.addfile(info, io.BytesIO(data) if regular else None)
    data = buf.getvalue()
    # Keep the end-of-archive marker (two zero blocks) but not the record padding after it.
    end = (len(data.rstrip(b"\0")) + 511) // 512 * 512 + 1024
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data[:end])


os.makedirs(OUT, exist_ok=True)
tar("project.tar", [
    {"name": "src", "type": tarfile.DIRTYPE, "mode": 0o755},
    {"name": "predictor.py", "data": b"class PythonPredictor:\n    pass\n"},
    {"name": "src/run.sh", "data": b"#!/bin/sh\n", "mode": 0o755},
    {"name": "cortex.yaml", "data": b"- name: a\n"},
])
tar("dotdot.tar", [{"name": "../../escaped", "data": b"x"}])
tar("absolute.tar", [{"name": "/tmp/absolute", "data": b"x"}])
tar("symlink.tar", [
    {"name": "link", "type": tarfile.SYMTYPE, "link": "../.."},
    {"name": "link/x", "data": b"x"},
])
tar("conflict.tar", [{"name": "a", "data": b"x"}, {"name": "a/b", "data": b"y"}])
