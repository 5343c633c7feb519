"""MiniStack, a second local AWS engine, as a child process that leaves nothing behind.

MiniStack runs in a virtualenv of its own (``.venv-ministack``: it pins an older botocore
than the project). Its Lambda workers are subprocesses on its own interpreter that inherit its
environment and unpack each function's code under ``TMPDIR`` (and keep it there). So it starts
with a minimal environment (no stage variables or endpoint of this shell can leak into the
functions), in its own process group, with ``TMPDIR`` pointed at a folder deleted on stop (each
worker unpacks some 66 MB there and MiniStack leaves it after shutdown), and stopping it ends
the whole group, workers included.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import IO

from emulator.template import ROOT

VENV = ROOT / ".venv-ministack"
EXECUTABLE = VENV / "bin" / "ministack"
DEFAULT_PORT = 4566
"""MiniStack's usual port; ``make deploy-local MINISTACK_PORT=...`` changes it."""
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
REGION = "us-east-1"
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TZ")
"""The only variables of this shell MiniStack (and so every function) gets."""
LOG_LINES = 200


class MiniStackFailed(RuntimeError):
    """MiniStack did not start, or stopped; the message ends with what it printed."""


class MiniStack:
    """``with MiniStack(port) as server:`` runs it on 127.0.0.1 until the block ends."""

    def __init__(self, port: int = DEFAULT_PORT, executable: Path = EXECUTABLE) -> None:
        self.port = port
        self.executable = executable
        self.endpoint = f"http://127.0.0.1:{port}"
        self.tmpdir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: deque[str] = deque(maxlen=LOG_LINES)
        self._reader: threading.Thread | None = None

    def __enter__(self) -> "MiniStack":
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, timeout: float = 60) -> None:
        if not self.executable.exists():
            raise MiniStackFailed(
                f"{self.executable} is missing: `make deploy-local` and `make test` install it"
            )
        self.tmpdir = Path(tempfile.mkdtemp(prefix=scratch_prefix(self.port), dir=scratch_root()))
        environment = {k: os.environ[k] for k in PASSED_THROUGH if k in os.environ}
        environment.update(
            GATEWAY_PORT=str(self.port),
            BIND_HOST="127.0.0.1",
            TMPDIR=str(self.tmpdir),
            MINISTACK_REGION=REGION,
            PYTHONUNBUFFERED="1",
            **CREDENTIALS,
        )
        self._process = subprocess.Popen(  # noqa: S603 (our own virtualenv's executable)
            [str(self.executable)],
            cwd=self.tmpdir,
            env=environment,
            start_new_session=True,  # its own process group: Ctrl+C reaches us, we stop it
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert self._process.stdout is not None
        self._reader = threading.Thread(
            target=self._collect, args=(self._process.stdout,), daemon=True
        )
        self._reader.start()
        try:
            self._wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise

    def _collect(self, stream: IO[bytes]) -> None:
        for line in stream:
            self._log.append(line.decode(errors="replace").rstrip())

    def log(self) -> str:
        """MiniStack's last lines of output."""
        return "\n".join(self._log)

    def _wait_healthy(self, timeout: float) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                time.sleep(0.2)  # let the reader take its last words
                raise MiniStackFailed(
                    f"MiniStack exited with {self._process.returncode} on port {self.port}:\n"
                    + self.log()
                )
            try:
                url = f"{self.endpoint}/_ministack/health"
                with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (loopback)
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        raise MiniStackFailed(
            f"MiniStack did not answer on port {self.port} within {timeout:.0f}s:\n" + self.log()
        )

    def stop(self) -> None:
        """End MiniStack and its workers (the whole process group), then delete ``TMPDIR``."""
        process, self._process = self._process, None
        if process is not None:
            _end_group(process)
            if self._reader is not None:
                self._reader.join(timeout=5)
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None


def scratch_root() -> Path:
    """Where MiniStack's ``TMPDIR`` goes: in memory (``/dev/shm``) when there is one.

    Each worker unpacks the zip (2,800 files, 66 MB) and a busy stack has a dozen workers; on
    this project's machines deleting that from disk took over a minute, from memory a second.
    """
    shm = Path("/dev/shm")  # noqa: S108 (a folder of our own is made inside it)
    if shm.is_dir() and os.access(shm, os.W_OK):
        return shm
    return Path(tempfile.gettempdir())


def scratch_prefix(port: int) -> str:
    return f"blog-ministack-{port}-"


def _end_group(process: subprocess.Popen[bytes], grace: float = 10) -> None:
    """SIGTERM the group, wait, then SIGKILL what is left: workers outlive a stopped server."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            process.poll()
            if not _group_alive(process.pid):
                break
            time.sleep(0.1)
    process.wait()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def check_interpreter() -> None:
    """The functions' compiled wheels (pydantic_core) are for this project's Python 3.11."""
    python = VENV / "bin" / "python"
    version = subprocess.run(  # noqa: S603 (our own virtualenv's interpreter)
        [str(python), "-c", "import sys; print(*sys.version_info[:2], sep='.')"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    wanted = "{}.{}".format(*sys.version_info[:2])
    if version != wanted:
        raise MiniStackFailed(
            f"{python} is Python {version}, but the functions' wheels are built for {wanted}: "
            f"delete {VENV} and run `make deploy-local` again with PYTHON=python{wanted}"
        )
