"""A real Redis Sentinel group on loopback: a master, a replica and three sentinels.

Every process is a `redis-server` (the sentinels run it with `--sentinel` and a generated
config file), started by pid and stopped by pid. Quorum 2, a master counted down after one
second without an answer, so a failover takes a few seconds.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

import redis

from tests.support.harness import wait_for
from worker.dev.local_redis import LocalRedis, find_redis_server, free_port

MASTER_NAME = "mymaster"
SENTINEL_CONFIG = """\
port {port}
bind 127.0.0.1
dir {dir}
sentinel resolve-hostnames no
sentinel monitor {name} 127.0.0.1 {master} 2
sentinel down-after-milliseconds {name} 1000
sentinel failover-timeout {name} 10000
sentinel parallel-syncs {name} 1
"""


class SentinelGroup:
    """Master, replica and three sentinels; `url` is REDIS_URL in kombu's sentinel:// form."""

    def __init__(self, name: str = MASTER_NAME) -> None:
        self.name = name
        self.master = LocalRedis()
        self.replica = LocalRedis(extra=("--replicaof", "127.0.0.1", str(self.master.port)))
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.sentinels: list[subprocess.Popen[bytes]] = []
        self.dir = Path(tempfile.mkdtemp(prefix="relay-sentinel-"))

    @property
    def url(self) -> str:
        return ";".join(f"sentinel://127.0.0.1:{port}/0" for port in self.sentinel_ports)

    def start(self) -> SentinelGroup:
        self.master.start()
        self.replica.start()
        wait_for(self._replica_in_sync, 20, "the replica to sync")
        for port in self.sentinel_ports:
            self.sentinels.append(self._start_sentinel(port))
        wait_for(self._sentinels_know_each_other, 30, "the sentinels to find each other")
        return self

    def master_port(self) -> int | None:
        """The master's port as the first sentinel that answers names it."""
        for port in self.sentinel_ports:
            client = redis.Redis(port=port, socket_timeout=1, decode_responses=True)
            try:
                found = client.sentinel_get_master_addr_by_name(self.name)
                return int(found[1]) if found else None
            except redis.RedisError:
                continue
            finally:
                client.close()
        return None

    def kill_master(self) -> float:
        """SIGKILL the master, as a crash would; return when it happened (monotonic)."""
        self.master.kill()
        return time.monotonic()

    def wait_failover(self, timeout: float = 30) -> None:
        wait_for(lambda: self.master_port() == self.replica.port, timeout, "a new master")

    def stop(self) -> None:
        for process in self.sentinels:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.replica.stop()
        self.master.stop()

    def _start_sentinel(self, port: int) -> subprocess.Popen[bytes]:
        folder = self.dir / str(port)
        folder.mkdir()
        config = folder / "sentinel.conf"  # sentinels rewrite their own config: a file each
        config.write_text(
            SENTINEL_CONFIG.format(port=port, dir=folder, name=self.name, master=self.master.port)
        )
        with open(folder / "sentinel.log", "wb") as log:
            return subprocess.Popen(
                [find_redis_server(), str(config), "--sentinel"],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _replica_in_sync(self) -> bool:
        client = redis.Redis(port=self.replica.port, decode_responses=True)
        try:
            return client.info("replication").get("master_link_status") == "up"
        finally:
            client.close()

    def _sentinels_know_each_other(self) -> bool:
        for port in self.sentinel_ports:
            client = redis.Redis(port=port, socket_timeout=1, decode_responses=True)
            try:
                state = client.sentinel_master(self.name)
                if int(state["num-other-sentinels"]) < 2 or int(state["num-slaves"]) < 1:
                    return False
            except redis.RedisError:
                return False
            finally:
                client.close()
        return True
