"""The bench side of `sandbox_host.py`: start it, talk to it, stop it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Any, Self

HOST_SCRIPT = Path(__file__).resolve().parent / "sandbox_host.py"


class SandboxHost:
    """The three sandbox servers running in a child process.

    `details` holds what `sandbox_host.py` announced: addresses, CA files, credentials.
    """

    def __init__(self, chats: int = 16) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, str(HOST_SCRIPT), "--chats", str(chats)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        first = self._read()
        if "ready" not in first:
            self.close()
            raise RuntimeError(f"the sandbox host did not start: {first}")
        self.details: dict[str, Any] = first["ready"]

    def _read(self) -> dict[str, Any]:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            code = self._proc.wait(timeout=10)
            raise RuntimeError(f"the sandbox host exited (status {code}); see its stderr above")
        return json.loads(line)

    def request(self, op: str, **params: Any) -> dict[str, Any]:
        """Send one request line, return the answer line."""
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps({"op": op, **params}) + "\n")
        self._proc.stdin.flush()
        answer = self._read()
        if answer.get("error"):
            raise RuntimeError(f"sandbox host: {answer['error']}")
        return answer

    def set_latency(self, seconds: float) -> None:
        self.request("latency", seconds=seconds)

    def mark(self) -> dict[str, int]:
        return self.request("mark")

    def telegram_photos(self, since: int = 0) -> list[dict[str, Any]]:
        return self.request("telegram_photos", since=since)["photos"]

    def counters(self) -> dict[str, dict[str, int]]:
        return self.request("counters")

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                self.request("stop")
                self._proc.wait(timeout=30)
            except (OSError, RuntimeError, subprocess.TimeoutExpired, ValueError):
                self._proc.kill()
                self._proc.wait(timeout=10)
        for stream in (self._proc.stdin, self._proc.stdout):
            if stream is not None:
                stream.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
