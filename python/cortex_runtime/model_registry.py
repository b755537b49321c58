"""The models in a worker's memory: a registry over the manifest the replica front writes.

The replica front fetches every model version into a content-addressed directory and describes
them in a JSON manifest (``spec["models_manifest"]``; docs/models.md):

    {"generation": 3, "models": {"NAME": {"versions": {"1": {"path": "...", "timestamp": 17..}}}}}

``ModelRegistry`` reads it, loads models lazily on first use with the user's loader function and
keeps them in memory (Cortex v0.24 spec section 5):

* Live reloading (no cache): a watcher thread re-reads the manifest when it changes. Once a model
  has been used, a new highest version, or a version whose path changed (re-uploaded content), is
  loaded in the background; ``latest`` moves to it only when it is ready, so requests never wait
  for a reload and the old version keeps answering meanwhile. Versions and models that left the
  manifest are dropped.
* Caching (``predictor.models.cache_size``): models are loaded on demand on the request path and
  at most ``cache_size`` (name, version) pairs are in memory at any moment, loads in progress
  included: the least recently used one is evicted before a new one is loaded. Versions that are
  not on disk (their manifest path is null) are asked for through the wants file, and the request
  waits for the front to download them.

At most one load runs per (name, version); callers of the same key wait for it, callers of other
models do not.
"""

import json
import os
import sys
import threading
import time
from collections import OrderedDict

from .loader import UserError

__all__ = [
    "SINGLE_MODEL_NAME",
    "ModelError",
    "ModelNotFound",
    "ModelRegistry",
    "read_manifest",
]

SINGLE_MODEL_NAME = "_cortex_default"
DEFAULT_WATCH_S = 1.0
DOWNLOAD_TIMEOUT_S = 600.0  # caching: how long a request waits for its model to download
MAX_WANTS = 1000  # caching: the most recently used versions the front is told about


class ModelError(UserError):
    """An error of get_model/predict meant for the user (Cortex's UserRuntimeException)."""


class ModelNotFound(ModelError):
    """The (name, version) is not in the manifest."""


def _log(message):
    try:
        sys.stderr.write(message + "\n")
        sys.stderr.flush()
    except Exception:
        pass


def read_manifest(path, with_wants_seq=False, with_generation=False):
    """{name: {version: {"path": str or None, "timestamp": int, "error": str or None}}}.

    ``path`` is None for a version that is not on disk (caching: fetched when wanted).
    With ``with_wants_seq``, returns (models, the "wants_seq" the front last served), and with
    ``with_generation`` also the manifest's generation.
    """
    with open(path, "rb") as f:
        doc = json.load(f)
    if not isinstance(doc, dict) or not isinstance(doc.get("models", {}), dict):
        raise ValueError(f"{path}: the models manifest must be a JSON object with a models map")
    models = {}
    for name, model in (doc.get("models") or {}).items():
        versions = {}
        raw = model.get("versions") if isinstance(model, dict) else None
        for version, entry in (raw or {}).items():
            if not isinstance(entry, dict) or not (entry.get("path") is None
                                                   or isinstance(entry.get("path"), str)):
                raise ValueError(f"{path}: model {name} version {version} has no path")
            versions[str(version)] = {"path": entry.get("path"),
                                      "timestamp": int(entry.get("timestamp") or 0),
                                      "error": entry.get("error")}
        models[str(name)] = versions
    if with_wants_seq:
        served = int(doc.get("wants_seq") or 0)
        if with_generation:
            return models, served, int(doc.get("generation") or 0)
        return models, served
    return models


def _version_key(version):
    return int(version) if version.isdigit() else -1


def _highest(versions):
    return max(versions, key=_version_key) if versions else None


def _dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


class _Loaded:
    __slots__ = ("path", "timestamp", "model", "bytes")

    def __init__(self, path, timestamp, model, size=0):
        self.path = path
        self.timestamp = timestamp
        self.model = model
        self.bytes = size  # the size of the version's files: what "resident" metrics report


class ModelRegistry:
    """Models in memory, over the manifest at ``manifest_path``.

    ``load_fn(path)`` builds the in-memory model from a version's directory. ``cache_size``
    (None: live reloading) bounds how many (name, version) pairs are held. ``watch=False`` reads
    the manifest once (BatchAPI: Cortex stops reloading after the first pass).
    """

    def __init__(self, manifest_path, load_fn, cache_size=None, watch=True, watch_s=None,
                 log=_log):
        self.manifest_path = manifest_path
        self.load_fn = load_fn
        self.cache_size = int(cache_size) if cache_size else None
        self.log = log
        if watch_s is None:
            watch_s = float(os.environ.get("CORTEX_MODEL_WATCH_S") or DEFAULT_WATCH_S)
        self.watch_s = max(0.01, watch_s)

        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # a load finished or a slot was freed
        self._manifest = {}
        self._stat = None
        self._loaded = {}  # (name, version) -> _Loaded
        self._lru = OrderedDict()  # (name, version) -> None, least recently used first
        self._loading = {}  # (name, version) -> path being loaded
        self._reserved = 0  # cache mode: loads in progress, counted against cache_size
        self._latest = {}  # name -> the version "latest" serves (live reloading)
        self._used = set()  # names used at least once: their new versions load in the background
        self._background = set()  # (name, version, path) being loaded in the background
        self._failed = set()  # (name, version, path) whose background load failed
        self._counters = {"hits": 0, "misses": 0, "evictions": 0, "loads": 0,
                          "load_failures": 0}
        # Caching: what the front keeps on disk follows the versions wanted, most recent last.
        self._wanted = OrderedDict()  # (name, version) -> None
        self._wants_seq = 0  # the last wants written
        self._wants_served = 0  # the last wants the front answered (manifest "wants_seq")
        self.wants_path = manifest_path + ".wants"
        self._wants_lock = threading.Lock()  # one wants writer at a time
        self._refresh_lock = threading.Lock()  # one manifest reader at a time
        self._generation = -1  # the manifest's generation last applied
        self.download_timeout_s = DOWNLOAD_TIMEOUT_S
        self._stop = threading.Event()

        try:
            self._stat = self._stat_manifest()
            self._manifest, self._wants_served, self._generation = read_manifest(
                manifest_path, True, with_generation=True)
        except (OSError, ValueError) as e:
            raise UserError(f"cannot read the models manifest {manifest_path}", str(e)) from e
        self._watcher = None
        if watch:
            self._watcher = threading.Thread(target=self._watch, name="model-watcher",
                                             daemon=True)
            self._watcher.start()

    # -- the manifest ------------------------------------------------------------------------

    def _stat_manifest(self):
        st = os.stat(self.manifest_path)
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _watch(self):
        written = None
        while not self._stop.wait(self.watch_s):
            try:
                self.refresh()
                written = self._write_stats(written)
            except Exception as e:  # never let the watcher die
                self.log(f"error: models manifest watcher: {type(e).__name__}: {e}")

    def _write_stats(self, written):
        """Writes stats() beside the manifest for the front's /metrics, when they changed."""
        stats = self.stats()
        if stats == written:
            return written
        index = os.environ.get("CORTEX_PROCESS_INDEX", "0")
        path = f"{self.manifest_path}.stats.{index}"
        with open(path + ".tmp", "w") as f:
            json.dump(stats, f)
        os.replace(path + ".tmp", path)
        return stats

    def close(self):
        self._stop.set()

    def refresh(self, force=False):
        """Re-reads the manifest if it changed; returns True when it was applied.

        One caller at a time (the watcher, and in caching mode the requests that wait for a
        download), and never an older generation after a newer one.
        """
        with self._refresh_lock:
            try:
                stat = self._stat_manifest()
                if not force and stat == self._stat:
                    return False
                manifest, served, generation = read_manifest(self.manifest_path, True,
                                                             with_generation=True)
            except (OSError, ValueError) as e:
                self.log(f"error: cannot read the models manifest {self.manifest_path}: {e}")
                return False
            self._stat = stat
            if generation < self._generation:
                return False
            self._generation = generation
            self._apply(manifest, served)
            return True

    def _apply(self, manifest, wants_served=0):
        to_load = []
        with self._lock:
            self._manifest = manifest
            self._wants_served = max(self._wants_served, wants_served)
            # Drop what left the manifest.
            for key in list(self._loaded):
                name, version = key
                if version not in manifest.get(name, {}):
                    self._drop(key, "unloaded")
            self._used &= set(manifest)
            for name in list(self._latest):
                versions = manifest.get(name)
                if not versions:
                    del self._latest[name]
                elif self._latest[name] not in versions:
                    # The served version is gone: serve the highest (loaded lazily if needed).
                    self._latest[name] = _highest(versions)
            self._failed = {f for f in self._failed
                            if manifest.get(f[0], {}).get(f[1], {}).get("path") == f[2]}
            if self.cache_size is None:
                to_load = self._plan_background(manifest)
            self._changed.notify_all()
        for name, version, path in to_load:
            threading.Thread(target=self._load_in_background, args=(name, version, path),
                             name=f"model-load-{name}-{version}", daemon=True).start()

    def _plan_background(self, manifest):
        """(name, version, path) to load in the background (lock held)."""
        plan = []
        wanted = set()
        for name in self._used:  # used models: their new highest version
            versions = manifest.get(name, {})
            top = _highest(versions)
            if top is not None:
                wanted.add((name, top))
        for key in self._loaded:  # loaded versions whose content changed
            wanted.add(key)
        for name, version in sorted(wanted):
            entry = manifest.get(name, {}).get(version)
            if entry is None:
                continue
            path = entry["path"]
            loaded = self._loaded.get((name, version))
            if loaded is not None and loaded.path == path:
                if self._latest.get(name) != version and version == _highest(manifest[name]):
                    self._latest[name] = version
                continue
            job = (name, version, path)
            if job in self._background or job in self._failed:
                continue
            self._background.add(job)
            plan.append(job)
        return plan

    def _load_in_background(self, name, version, path):
        job = (name, version, path)
        try:
            self._load(name, version, background=True)
        except ModelNotFound:
            pass
        except Exception:
            with self._lock:
                self._failed.add(job)
        finally:
            with self._lock:
                self._background.discard(job)

    # -- loading -----------------------------------------------------------------------------

    def _drop(self, key, how):
        """Removes a loaded model (lock held)."""
        if self._loaded.pop(key, None) is not None:
            self._lru.pop(key, None)
            if key in self._wanted:
                self._wanted.move_to_end(key, last=False)
            self.log(f"model {key[0]} version {key[1]} {how}")

    def _entry(self, name, version):
        entry = self._manifest.get(name, {}).get(version)
        if entry is None:
            raise ModelNotFound(f"model {name} of version {version} wasn't found")
        return entry

    def _load(self, name, version, background=False):
        """Returns the model for (name, version), loading it if needed (one load per key)."""
        key = (name, version)
        with self._lock:
            while True:
                entry = self._entry(name, version)
                loaded = self._loaded.get(key)
                if loaded is not None and (loaded.path == entry["path"] or
                                           (not background and self.cache_size is None) or
                                           (entry["path"] is None and
                                            loaded.timestamp == entry["timestamp"])):
                    # Up to date (in caching mode its files may have left the disk since), or
                    # (live reloading) new content for this version is being loaded in the
                    # background: the copy in memory answers meanwhile.
                    # Up to date, or (live reloading) new content for this version is being
                    # loaded in the background: the copy in memory answers meanwhile.
                    if background:
                        self._promote(name, version)
                        return loaded.model
                    self._counters["hits"] += 1
                    if self.cache_size is not None:
                        self._lru.move_to_end(key)
                        self._touch(key)
                    return loaded.model
                if key not in self._loading:
                    break
                self._changed.wait()
            path = entry["path"]
            self._loading[key] = path
            if not background:
                self._counters["misses"] += 1
            if self.cache_size is not None:
                try:
                    self._reserve(key)
                except BaseException:
                    del self._loading[key]
                    self._changed.notify_all()
                    raise
                self._touch(key)
        try:
            if path is None:
                path = self._download(name, version)
                with self._lock:
                    self._loading[key] = path
            try:
                model = self.load_fn(path)
                size = _dir_bytes(path)
            except Exception as e:
                reason = str(e) or type(e).__name__
                with self._lock:
                    self._counters["load_failures"] += 1
                self.log(f"error: model {name} version {version} failed to load: {reason}")
                raise ModelError(
                    f"failed (re-)loading model {name} of version {version} "
                    f"(thread {threading.get_ident()})", reason) from e
            with self._lock:
                self._counters["loads"] += 1
                current = self._manifest.get(name, {}).get(version)
                if current is None or current["path"] != path:
                    # Left the manifest (or changed again) while loading: do not register it.
                    self.log(f"model {name} version {version} loaded but no longer current; "
                             "dropped")
                    if current is None:
                        raise ModelNotFound(f"model {name} of version {version} wasn't found")
                    return model
                reloaded = key in self._loaded
                self._loaded[key] = _Loaded(path, current["timestamp"], model, size)
                if self.cache_size is not None:
                    self._lru[key] = None
                    self._lru.move_to_end(key)
                self._promote(name, version)
            self.log(f"model {name} version {version} loaded"
                     + (" (replacing its previous content)" if reloaded else ""))
            return model
        finally:
            with self._lock:
                self._loading.pop(key, None)
                if self.cache_size is not None:
                    self._reserved -= 1
                    if key not in self._loaded and key in self._wanted:
                        # Not loaded after all (a failed download or load): the least recently
                        # wanted, so the front never keeps it over a model that is loading.
                        self._wanted.move_to_end(key, last=False)
                self._changed.notify_all()

    def _touch(self, key):
        """Caching: `key` is the most recently wanted (lock held).

        Only models in memory or being loaded are touched, and a model evicted from memory
        becomes the least recently wanted, so those in memory or loading are always the most
        recent ones; there are at most cache_size <= disk_cache_size of them, so the front
        never deletes the files of a model while it loads.
        """
        self._wanted[key] = None
        self._wanted.move_to_end(key)
        while len(self._wanted) > MAX_WANTS:
            self._wanted.popitem(last=False)

    def _write_wants(self):
        """Caching: writes the wants file (a new seq, the wanted versions most recent first).

        One writer at a time, with the seq and the list taken together, so the file's seqs only
        grow and the latest file holds the latest list. Returns the seq written.
        """
        with self._wants_lock:
            with self._lock:
                self._wants_seq = max(self._wants_seq, self._wants_served) + 1
                seq = self._wants_seq
                wants = [[n, v] for n, v in reversed(self._wanted)]
            tmp = f"{self.wants_path}.{os.getpid()}.tmp"
            with open(tmp, "w") as f:
                json.dump({"seq": seq, "wants": wants}, f)
            os.replace(tmp, self.wants_path)
            return seq

    def _download(self, name, version):
        """Caching: asks the front for (name, version) on disk and waits; returns its path."""
        seq = self._write_wants()
        deadline = time.monotonic() + self.download_timeout_s
        while True:
            self.refresh()
            with self._lock:
                served = self._wants_served >= seq
                if served:
                    entry = self._entry(name, version)
                    if entry["path"] is not None:
                        return entry["path"]
                    if entry.get("error"):
                        raise ModelError(f"failed (re-)loading model {name} of version {version}",
                                         f"cannot download it: {entry['error']}")
                    # Served, but not kept (a later want of another thread came first).
                    self._touch((name, version))
            if served:
                seq = self._write_wants()
            if time.monotonic() > deadline:
                raise ModelError(f"model {name} of version {version} was not downloaded within "
                                 f"{self.download_timeout_s:.0f} s")
            time.sleep(0.005)

    def _promote(self, name, version):
        """After a load: latest moves to the highest version once it is in memory (lock held)."""
        if version == _highest(self._manifest.get(name, {})):
            self._latest[name] = version

    def _reserve(self, key):
        """Cache mode: frees room for one more model before it loads (lock held)."""
        while True:
            held = len(self._loaded) + self._reserved
            if key in self._loaded:
                # A stale copy of this key: replace it rather than hold both.
                self._drop(key, "unloaded (replaced by new content)")
                continue
            if held < self.cache_size:
                self._reserved += 1
                return
            victim = next(iter(self._lru), None)
            if victim is not None:
                self._counters["evictions"] += 1
                self._drop(victim, "unloaded (evicted from the cache)")
                continue
            self._changed.wait()  # every slot is a load in progress

    # -- the public side ---------------------------------------------------------------------

    def names(self):
        with self._lock:
            return sorted(self._manifest)

    def versions(self, name):
        with self._lock:
            return sorted(self._manifest.get(name, {}), key=_version_key)

    def has_model(self, name):
        with self._lock:
            return name in self._manifest

    def metadata(self):
        """{name: {"versions": [str], "timestamps": [int]}} from the manifest."""
        with self._lock:
            out = {}
            for name in sorted(self._manifest):
                versions = sorted(self._manifest[name], key=_version_key)
                out[name] = {"versions": versions,
                             "timestamps": [self._manifest[name][v]["timestamp"]
                                            for v in versions]}
            return out

    def resolve_version(self, name, version="latest"):
        """The version that ``version`` means for ``name`` now."""
        if version != "latest":
            return version
        with self._lock:
            return self._resolve_latest(name)

    def _resolve_latest(self, name):
        versions = self._manifest.get(name)
        if versions is None:
            raise ModelNotFound(f"'{name}' model wasn't found in the list of available models")
        if not versions:
            raise ModelNotFound(f"'{name}' model's versions have been removed; add at least a "
                                "version to the model to resume operations")
        served = self._latest.get(name) if self.cache_size is None else None
        if served is not None and served in versions and (name, served) in self._loaded:
            return served
        return _highest(versions)

    def get(self, name, version="latest"):
        """The loaded model (what the loader function returned) for (name, version)."""
        if version == "latest":
            with self._lock:
                version = self._resolve_latest(name)
        model = self._load(name, version)
        if self.cache_size is None and name not in self._used:
            # First use: from now on, new versions of this model load in the background.
            with self._lock:
                self._used.add(name)
                to_load = self._plan_background(self._manifest)
            for job in to_load:
                threading.Thread(target=self._load_in_background, args=job,
                                 name=f"model-load-{job[0]}-{job[1]}", daemon=True).start()
        return model

    def peek(self, name, version):
        """The model in memory for (name, version), or None; never loads."""
        with self._lock:
            loaded = self._loaded.get((name, version))
            return None if loaded is None else loaded.model

    def loaded_versions(self):
        """[(name, version)] in memory now."""
        with self._lock:
            return sorted(self._loaded)

    def stats(self):
        """Counters for metrics: hits, misses, evictions, loads, load_failures, loaded."""
        with self._lock:
            out = dict(self._counters)
            out["loaded"] = len(self._loaded)
            out["resident_bytes"] = sum(m.bytes for m in self._loaded.values())
            out["loading"] = len(self._loading)
            if self.cache_size is not None:
                out["cache_size"] = self.cache_size
            return out

    def wait_idle(self, timeout=10.0):
        """Waits until no load is in progress (tests); returns False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._loading or self._background:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 0.05))
            return True
