"""Run a sandbox app on a real TCP port: in a background thread (tests, the demo) or in
the foreground (``python -m koppel.sandbox``)."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class SandboxServer:
    """A uvicorn server in a daemon thread. Use as a context manager or start()/stop().

    ``url`` is the base URL (``http://127.0.0.1:PORT``). Many concurrent requests are
    served (uvicorn's event loop plus FastAPI's thread pool for sync endpoints), so the
    apps behind it must be thread-safe."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0,
                 log_level: str = "warning") -> None:
        self.app = app
        self.host = host
        self.port = port or free_port(host)
        self.config = uvicorn.Config(app, host=host, port=self.port, log_level=log_level,
                                     access_log=False, lifespan="off",
                                     timeout_keep_alive=30)
        self.server = uvicorn.Server(self.config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> "SandboxServer":
        self._thread = threading.Thread(target=self.server.run, name=f"sandbox:{self.port}",
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"sandbox on port {self.port} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> "SandboxServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
