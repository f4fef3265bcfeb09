"""`python demo.py` on a free loopback port, for tests and benchmarks: started as a child process, waited
for until it answers, and stopped by its own PID (nothing else is touched)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from digit_studio import resources
from digit_studio.errors import DigitStudioError


@dataclass
class Server:
    process: subprocess.Popen
    url: str

    def rss_mb(self) -> float:
        """The server's resident memory now (VmRSS from /proc/<pid>/status), in MB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise DigitStudioError(f"no VmRSS for process {self.process.pid}")


@contextlib.contextmanager
def running_studio(log: Path | None = None, python: str | Path = sys.executable, cwd: Path = resources.ROOT,
                   env: dict[str, str] | None = None, timeout: float = 120) -> Iterator[Server]:
    """The studio of `python` (demo.py of the checkout) serving until the block ends; its output goes to
    `log` (or nowhere)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    output = log.open("w") if log else subprocess.DEVNULL
    process = subprocess.Popen(
        [str(python), str(resources.ROOT / "demo.py"), "--host", "127.0.0.1", "--port", str(port)], cwd=cwd,
        env={**(os.environ if env is None else env), "GRADIO_ANALYTICS_ENABLED": "False"},
        stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise DigitStudioError(f"demo.py exited with {process.returncode}" + (f"; see {log}" if log else ""))
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise DigitStudioError(f"demo.py did not answer within {timeout:.0f} s") from None
                time.sleep(0.5)
        yield Server(process, url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        if log:
            output.close()
