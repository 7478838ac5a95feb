"""Keep a sandbox's state between processes (the demo continues where it stopped).

A sandbox app keeps everything in ``app.state.sandbox`` (records, OAuth grants, rate
windows). It is pickled with its locks replaced by fresh ones on load, and restored
*into* the live state object, because the app's routers hold that object. The live
fault/statistics control and the public base URL (the port may differ) are kept."""

from __future__ import annotations

import _thread
import copyreg
import io
import pickle
import threading
from typing import Any

_KEEP = ("control", "public_base", "base_url")


def _new_lock(_kind: str):
    return threading.RLock() if _kind == "rlock" else threading.Lock()


def _reduce_lock(_lock):
    return _new_lock, ("lock",)


def _reduce_rlock(_lock):
    return _new_lock, ("rlock",)


class _Pickler(pickle.Pickler):
    dispatch_table = copyreg.dispatch_table.copy()
    dispatch_table[_thread.LockType] = _reduce_lock
    dispatch_table[type(threading.RLock())] = _reduce_rlock


def snapshot_state(app) -> bytes:
    state = app.state.sandbox
    buffer = io.BytesIO()
    kept = {name: state.__dict__.pop(name) for name in _KEEP if name in state.__dict__}
    try:
        _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(state)
    finally:
        state.__dict__.update(kept)
    return buffer.getvalue()


def restore_state(app, data: bytes) -> None:
    restored: Any = pickle.loads(data)
    live = app.state.sandbox
    if type(restored) is not type(live):
        raise TypeError(f"snapshot holds {type(restored).__name__}, not {type(live).__name__}")
    for name, value in restored.__dict__.items():
        if name not in _KEEP:
            live.__dict__[name] = value
