"""DataProbe: the shape of the chosen data set, loaded once in a worker thread.

The Problems list checks that the graph fits its data (``engine.data_fit``); that needs one
sample's shapes, so the data set is loaded (off the GUI thread; a data set that still has to
be downloaded is not probed until it is) and only its ``DataShape`` is kept, in a cache shared
by every window. ``shape(spec)`` answers at once: the ``DataShape``, the loading error's text,
or None while the data set loads (``ready`` is emitted when it has).
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

from PySide6.QtCore import QObject, Signal

from engine.data_fit import DataShape, describe

MAX_CACHED = 256  # data set variants remembered
PROBE_SAMPLES = 256  # a data set with an "n" option loads only this many to be probed

_cache: dict[str, DataShape | str] = {}
_waiting: dict[str, list[DataProbe]] = {}  # data sets loading -> the probes that asked
_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _key(ds: dict) -> str:
    return json.dumps(ds, sort_keys=True, default=str)


def _load(ds: dict) -> DataShape | str:
    from engine.data import dataset_options, load_dataset

    spec = dict(ds)
    n_opt = dataset_options(spec["name"]).get("n")
    if n_opt is not None and n_opt.kind == "int":
        n = spec.get("n")
        spec["n"] = PROBE_SAMPLES if not isinstance(n, int) else min(n, PROBE_SAMPLES)
    try:
        return describe(load_dataset(spec, seed=0))
    except Exception as e:  # a bad file or option: shown as a problem, never a traceback
        return str(getattr(e, "message", None) or e) or type(e).__name__


class DataProbe(QObject):
    """See the module docstring."""

    ready = Signal()
    _loaded = Signal()  # from the worker thread; queued to this object's thread

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._loaded.connect(self.ready)

    def shape(self, ds: dict | None) -> DataShape | str | None:
        """The data set ``ds``'s shapes, its loading error, or None (loading, or not local)."""
        global _pool
        from engine.data import needs_download

        if not isinstance(ds, dict) or not isinstance(ds.get("name"), str):
            return None
        key = _key(ds)
        with _lock:
            if key in _cache:
                return _cache[key]
            if key in _waiting:
                if self not in _waiting[key]:
                    _waiting[key].append(self)
                return None
        try:
            if needs_download(ds):
                return None
        except Exception:
            return None
        with _lock:
            _waiting[key] = [self]
            if _pool is None:
                _pool = ThreadPoolExecutor(1, thread_name_prefix="data-probe")
        _pool.submit(_run, key, dict(ds))
        return None


def _run(key: str, ds: dict) -> None:
    result = _load(ds)
    with _lock:
        if len(_cache) >= MAX_CACHED:
            _cache.clear()
        _cache[key] = result
        waiting = _waiting.pop(key, [])
    for probe in waiting:
        try:
            probe._loaded.emit()
        except RuntimeError:  # that window (and its probe) closed meanwhile
            pass
