"""A local AWS Lambda Runtime API emulator (stdlib http.server, threaded, 127.0.0.1).

It serves the endpoints a custom runtime uses:

    GET  /2018-06-01/runtime/invocation/next            -> the next queued event (blocks)
    POST /2018-06-01/runtime/invocation/{id}/response   -> records a response
    POST /2018-06-01/runtime/invocation/{id}/error      -> records a function error
    POST /2018-06-01/runtime/init/error                 -> records an init failure

and starts the function (`bootstrap`) as a child process with AWS_LAMBDA_RUNTIME_API
pointing at itself. Events are queued with `invoke()`; `wait()` returns what the function
posted for each. To exercise the client's HTTP handling, every `chunked_every`-th event is
sent with chunked transfer coding and every `close_every`-th with `Connection: close`.

    with Emulator() as emu:
        emu.start_function(["path/to/bootstrap"], env={...})
        rid = emu.invoke(b'{"Age": 40}')
        result = emu.wait([rid])[rid]      # Result(kind="response", body=b'...', ...)
"""
from __future__ import annotations

import dataclasses
import itertools
import os
import queue
import subprocess
import threading
import time
import uuid
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PREFIX = "/2018-06-01/runtime"
MAX_POST = 8 << 20  # what the emulator accepts in a POST (Lambda's own limit is 6 MB)


@dataclasses.dataclass
class Result:
    kind: str                # "response" or "error"
    body: bytes
    headers: dict[str, str]  # lower-case names
    delivered: float         # perf_counter when the event was handed out
    received: float          # perf_counter when the answer arrived

    @property
    def handler_ns(self) -> int | None:
        value = self.headers.get("medinfer-handler-ns")
        return int(value) if value is not None else None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else headers and body in two writes wait on delayed ACKs
    server: "_Server"

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass

    def _reply(self, status: int, body: bytes = b'{"status":"OK"}', close: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802
        emu = self.server.emulator
        if self.path != PREFIX + "/invocation/next":
            self._reply(404, b'{"errorMessage":"not found"}')
            return
        while True:
            if emu.stopping.is_set():
                self._reply(500, b'{"errorMessage":"emulator stopping"}', close=True)
                return
            try:
                request_id, payload, number = emu.events.get(timeout=0.2)
                break
            except queue.Empty:
                continue
        chunked = emu.chunked_every and number % emu.chunked_every == 0
        close = emu.close_every and number % emu.close_every == 0
        # Recorded before the first byte leaves: a function that drops an oversized event
        # after its headers may post the error before this thread runs again.
        with emu.lock:
            emu.delivered[request_id] = time.perf_counter()
        self.send_response(200)
        self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn",
                         "arn:aws:lambda:us-east-1:123456789012:function:noshow-score")
        self.send_header("Lambda-Runtime-Trace-Id", f"Root=1-{number:08x}-{uuid.uuid4().hex[:24]};Sampled=0")
        self.send_header("Content-Type", "application/json")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(payload)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if chunked:
            step = max(1, len(payload) // 3 + 1)
            for i in range(0, len(payload), step):
                piece = payload[i:i + step]
                self.wfile.write(b"%x;ext=1\r\n" % len(piece) + piece + b"\r\n")
            self.wfile.write(b"0\r\nX-Trailer: 1\r\n\r\n")
        else:
            self.wfile.write(payload)

    def do_POST(self):  # noqa: N802
        emu = self.server.emulator
        length = int(self.headers.get("Content-Length", "0"))
        if length > MAX_POST:
            self._reply(413, b'{"errorMessage":"payload too large"}', close=True)
            return
        body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        now = time.perf_counter()
        if self.path == PREFIX + "/init/error":
            with emu.lock:
                emu.init_errors.append((body, headers))
                emu.cond.notify_all()
            self._reply(202)
            return
        parts = self.path.split("/")
        # ['', '2018-06-01', 'runtime', 'invocation', id, 'response'|'error']
        if len(parts) != 6 or parts[3] != "invocation" or parts[5] not in ("response", "error"):
            self._reply(404, b'{"errorMessage":"not found"}')
            return
        request_id, kind = parts[4], parts[5]
        with emu.lock:
            if request_id not in emu.delivered or request_id in emu.results:
                emu.protocol_errors.append(f"unexpected {kind} for {request_id}")
                emu.cond.notify_all()
                self._reply(400, b'{"errorMessage":"InvalidRequestID"}')
                return
            emu.results[request_id] = Result(kind, body, headers, emu.delivered[request_id], now)
            emu.cond.notify_all()
        self._reply(202)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    emulator: "Emulator"

    def handle_error(self, request, client_address):
        import sys
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return  # the function dropped a connection (e.g. after an oversized event): expected
        super().handle_error(request, client_address)


class Emulator:
    def __init__(self, chunked_every: int = 0, close_every: int = 0):
        self.events: queue.Queue = queue.Queue()
        self.delivered: dict[str, float] = {}
        self.results: dict[str, Result] = {}
        self.init_errors: list[tuple[bytes, dict]] = []
        self.protocol_errors: list[str] = []
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.stopping = threading.Event()
        self.chunked_every = chunked_every
        self.close_every = close_every
        self._numbers = itertools.count(1)
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.emulator = self
        self.address = "%s:%d" % self.server.server_address[:2]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self.process: subprocess.Popen | None = None
        self.started_at: float | None = None
        self.stderr_path: str | None = None

    # -- function process --------------------------------------------------------------
    def start_function(self, command: list[str], env: dict[str, str] | None = None, stderr_path: str | None = None,
                       cwd: str | None = None, cpus: set[int] | None = None) -> subprocess.Popen:
        full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        full_env.update(env or {})
        full_env["AWS_LAMBDA_RUNTIME_API"] = self.address
        self.stderr_path = stderr_path
        stderr = open(stderr_path, "wb") if stderr_path else subprocess.DEVNULL
        self.started_at = time.perf_counter()
        # The child inherits this thread's CPU mask (a preexec_fn would force a slow fork of
        # this whole process instead of vfork, and show up in cold-start times).
        previous = os.sched_getaffinity(0)
        if cpus:
            os.sched_setaffinity(0, cpus)
        try:
            self.process = subprocess.Popen(command, env=full_env, stdin=subprocess.DEVNULL, stdout=stderr,
                                            stderr=stderr, cwd=cwd)
        finally:
            if cpus:
                os.sched_setaffinity(0, previous)
        if stderr_path:
            stderr.close()
        return self.process

    def peak_rss_kb(self) -> int | None:
        """VmHWM of the running function process (peak resident set size), in kB."""
        if not self.process:
            return None
        try:
            with open(f"/proc/{self.process.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    # -- events ------------------------------------------------------------------------
    def invoke(self, payload: bytes, request_id: str | None = None) -> str:
        request_id = request_id or str(uuid.uuid4())
        self.events.put((request_id, payload, next(self._numbers)))
        return request_id

    def wait(self, request_ids: list[str], timeout: float = 60.0) -> dict[str, Result]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                missing = [r for r in request_ids if r not in self.results]
                if not missing:
                    return {r: self.results[r] for r in request_ids}
                if self.protocol_errors:
                    raise RuntimeError(f"answers the emulator did not expect: {self.protocol_errors[:3]}")
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(f"the function exited with status {self.process.returncode} "
                                       f"with {len(missing)} events unanswered")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(missing)} of {len(request_ids)} events unanswered after {timeout} s")
                self.cond.wait(min(left, 0.2))

    def wait_init_error(self, timeout: float = 10.0) -> tuple[bytes, dict]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not self.init_errors:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no init error reported")
                self.cond.wait(min(left, 0.2))
            return self.init_errors[0]

    # -- teardown ----------------------------------------------------------------------
    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "Emulator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def unpack_zip(zip_path: Path, folder: Path) -> Path:
    """Extracts the deployment zip as Lambda does (keeping file modes); returns `folder`."""
    with zipfile.ZipFile(zip_path) as z:
        for info in z.infolist():
            z.extract(info, folder)
            mode = info.external_attr >> 16 & 0o777
            if mode:
                os.chmod(folder / info.filename, mode)
    return folder
