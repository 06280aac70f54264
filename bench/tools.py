"""The native load generators (wrk, hey, pgbench): installing them, running them, reading their numbers."""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
WRK_SCRIPT = BENCH_DIR / "wrk.lua"

# tool -> Debian package that brings it
PACKAGES = {"wrk": "wrk", "hey": "hey", "pgbench": "postgresql-client"}


ROOT = Path(__file__).resolve().parent.parent


def partners_command() -> list[str]:
    """The service's own command, `partners`, as this environment runs it."""
    script = Path(sys.executable).parent / "partners"
    return [str(script)] if script.exists() else [sys.executable, "-m", "app.cli"]


def partners_cli(args: Sequence[str], *, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    """`partners ...`, as an operator runs it (its output captured)."""
    return subprocess.run(  # noqa: S603 - our own CLI
        [*partners_command(), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def log_tail(path: Path, size: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return ""


def start_until_ready(
    command: Sequence[str],
    *,
    env: dict[str, str],
    log_path: Path,
    ready: Callable[[], bool],
    what: str,
    timeout: float,
    poll: float,
) -> subprocess.Popen[bytes]:
    """Start one of our own processes in a session of its own, its output appended to `log_path`,
    and return it once `ready()` says so (an OSError, a refused connection say, means not yet).
    Raises if it exits first, or stops it and raises if it is not ready within `timeout` s."""
    with log_path.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 - our own CLI or script
            list(command), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited at start ({process.returncode}):\n{log_tail(log_path)}")
        try:
            if ready():
                return process
        except OSError:
            pass
        time.sleep(poll)
    stop_process(process, group=True)
    raise RuntimeError(f"{what} was not ready within {timeout:g} s:\n{log_tail(log_path)}")


def stop_process(process: subprocess.Popen[Any] | None, *, group: bool = False, grace: float = 10) -> None:
    """SIGTERM (to its process group with `group`), then SIGKILL if it has not ended after `grace`."""
    if process is None or process.poll() is not None:
        return
    kill = os.killpg if group else os.kill
    try:
        kill(process.pid, signal.SIGTERM)
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass


class Schedule:
    """Open-loop slots shared by concurrent senders: slot n is due at start + n / rate, whether or not
    the slots before it were answered. `take` waits for the next slot's moment and returns its
    number, or None once `total` were taken; `late` counts slots taken more than 0.1 s late."""

    def __init__(self, total: int, rate: float) -> None:
        self.total, self.rate = total, rate
        self.start = time.monotonic()
        self.late = 0
        self._next = 0

    async def take(self) -> int | None:
        if self._next >= self.total:
            return None
        n = self._next
        self._next += 1
        delay = self.start + n / self.rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.1:
            self.late += 1
        return n


class ToolMissing(RuntimeError):
    """A load generator is not installed and could not be installed."""


def _run(cmd: Sequence[str], *, timeout: float, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed argument lists built here, never a shell
        list(cmd), capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )


def ensure_tools(names: Sequence[str] = ("wrk", "hey", "pgbench"), *, install: bool = True) -> dict[str, str]:
    """Paths of the tools; installs missing ones with apt-get (root only). Raises ToolMissing."""
    found = {name: shutil.which(name) for name in names}
    missing = [name for name, path in found.items() if path is None]
    if missing and install:
        apt = shutil.which("apt-get")
        if apt is None or os.geteuid() != 0:
            raise ToolMissing(
                f"{', '.join(missing)} not installed and cannot install them here (needs apt-get as root): "
                f"apt-get install -y {' '.join(sorted({PACKAGES[m] for m in missing}))}"
            )
        packages = sorted({PACKAGES[m] for m in missing})
        print(f"installing {', '.join(packages)} with apt-get ...", file=sys.stderr, flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        update = _run([apt, "update"], timeout=300, env=env)
        if update.returncode != 0:
            print(f"apt-get update failed (trying the install anyway):\n{update.stderr[-2000:]}", file=sys.stderr)
        result = _run([apt, "install", "-y", "--no-install-recommends", *packages], timeout=600, env=env)
        if result.returncode != 0:
            raise ToolMissing(f"apt-get install {' '.join(packages)} failed:\n{result.stderr[-2000:]}")
        found = {name: shutil.which(name) for name in names}
        missing = [name for name, path in found.items() if path is None]
    if missing:
        raise ToolMissing(f"not installed: {', '.join(missing)}")
    return {name: path for name, path in found.items() if path is not None}


@dataclass
class Measure:
    """One row of the result table."""

    scenario: str
    kind: str
    """`service` (HTTP through the service), `baseline` (fixed pgbench script) or `service-sql`
    (the statements the service issued for one request, replayed by pgbench)."""
    tool: str
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    errors: int
    requests: int
    duration_s: float
    concurrency: int
    peak_rss_mb: float | None = None
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "kind": self.kind,
            "tool": self.tool,
            "requests_per_s": round(self.rps, 1),
            "p50_ms": rounded(self.p50_ms),
            "p99_ms": rounded(self.p99_ms),
            "errors": self.errors,
            "requests": self.requests,
            "duration_s": round(self.duration_s, 2),
            "concurrency": self.concurrency,
            "peak_rss_mb_per_worker": rounded(self.peak_rss_mb, 1),
            "notes": self.notes,
            **({"extra": self.extra} if self.extra else {}),
        }


def rounded(value: float | None, digits: int = 3) -> float | None:
    """`value` rounded to `digits`, or None when there is none."""
    return None if value is None else round(value, digits)


def percentile(sorted_values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


# --- wrk ------------------------------------------------------------------------------------------


def run_wrk(
    wrk: str,
    *,
    scenario: str,
    url: str,
    requests_prefix: Path,
    threads: int,
    connections: int,
    duration: float,
    record_prefix: Path | None = None,
) -> Measure:
    """Closed-loop load: `connections` connections, each sending the next pre-built request as soon as
    the previous answer arrived. Requests come from `<requests_prefix>.<thread>` (see wrk.lua)."""
    args = [str(requests_prefix)]
    if record_prefix is not None:
        args.append(str(record_prefix))
    cmd = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(WRK_SCRIPT),
        url,
        "--",
        *args,
    ]
    result = _run(cmd, timeout=duration + 60)
    line = next((x for x in result.stdout.splitlines() if x.startswith("BENCH_WRK ")), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stdout[-2000:]} {result.stderr[-2000:]}")
    data = json.loads(line.removeprefix("BENCH_WRK "))
    duration_s = data["duration_us"] / 1e6
    errors = sum(int(data["errors"][k]) for k in ("connect", "read", "write", "status", "timeout"))
    measure = Measure(
        scenario=scenario,
        kind="service",
        tool="wrk",
        rps=data["requests"] / duration_s if duration_s else 0.0,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=errors,
        requests=int(data["requests"]),
        duration_s=duration_s,
        concurrency=connections,
        extra={"errors_by_kind": data["errors"], "max_ms": data["max_us"] / 1000},
    )
    if data.get("wrapped"):
        measure.notes.append(f"request list exhausted {data['wrapped']} time(s): requests were sent again")
    return measure


# --- hey ------------------------------------------------------------------------------------------


HEY_WORKER_RATE = 50.0
"""Requests per second one hey worker sends at most (one every 20 ms, well above a read's latency)."""


def run_hey(
    hey: str,
    *,
    scenario: str,
    url: str,
    headers: dict[str, str],
    rate: float,
    connections: int,
    duration: float,
) -> Measure:
    """Open-loop-ish load at a fixed total rate (hey's -q is per worker, so it gets rate / workers).

    hey's workers start their tickers together, so N workers deliver bursts of N requests at once:
    64 workers at 450/s are 64 simultaneous requests every 140 ms, a saturating burst that measures
    queueing, not latency at 60 % load (measured here: p50 97 ms, p99 389 ms with 64 workers; p50 5 ms,
    p99 10 ms with 4 at the same rate). So each worker sends at most HEY_WORKER_RATE per second and
    the workers are as few as that allows (never more than `connections`): arrivals stay spread.
    """
    workers = max(1, min(connections, math.ceil(rate / HEY_WORKER_RATE)))
    cmd = [hey, "-z", f"{max(1, round(duration))}s", "-c", str(workers), "-q", f"{rate / workers:.4f}", "-t", "10"]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    cmd.append(url)
    result = _run(cmd, timeout=duration + 60)
    if result.returncode != 0:
        raise RuntimeError(f"hey failed ({result.returncode}): {result.stderr[-2000:]}")
    measure = parse_hey(result.stdout, scenario=scenario, concurrency=workers, rate=rate)
    measure.notes.append(f"{workers} hey worker(s) at {rate / workers:.1f}/s each")
    if measure.rps < 0.95 * rate:
        measure.notes.append(
            f"held only {measure.rps:.0f}/s of the {rate:.0f}/s asked: the latency is not at that rate"
        )
    return measure


def parse_hey(text: str, *, scenario: str, concurrency: int, rate: float) -> Measure:
    def seconds(pattern: str) -> float | None:
        match = re.search(pattern, text)
        return float(match.group(1)) if match else None

    total = seconds(r"Total:\s+([\d.]+) secs") or 0.0
    rps = seconds(r"Requests/sec:\s+([\d.]+)") or 0.0
    p50 = seconds(r"50%+ in ([\d.]+) secs")
    p99 = seconds(r"99%+ in ([\d.]+) secs")
    codes = {int(c): int(n) for c, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", text)}
    error_block = text.split("Error distribution:", 1)[1] if "Error distribution:" in text else ""
    transport_errors = sum(int(n) for n in re.findall(r"^\s+\[(\d+)\]", error_block, flags=re.MULTILINE))
    bad_status = sum(n for c, n in codes.items() if c >= 400)
    answered = sum(codes.values())
    return Measure(
        scenario=scenario,
        kind="service",
        tool="hey",
        rps=rps,
        p50_ms=p50 * 1000 if p50 is not None else None,
        p99_ms=p99 * 1000 if p99 is not None else None,
        errors=bad_status + transport_errors,
        requests=answered + transport_errors,
        duration_s=total,
        concurrency=concurrency,
        extra={"target_rate": round(rate, 1), "status_codes": codes},
    )


# --- pgbench --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PgTarget:
    host: str
    port: int
    user: str
    database: str


def run_pgbench(
    pgbench: str,
    *,
    scenario: str,
    kind: str,
    target: PgTarget,
    scripts: Sequence[tuple[Path, int]],
    variables: dict[str, str | int],
    clients: int,
    threads: int,
    duration: float,
    log_dir: Path,
    mode: str = "prepared",
) -> Measure:
    """pgbench at the same concurrency; latencies from its per-transaction log, exact percentiles."""
    log_dir.mkdir(parents=True, exist_ok=True)
    for old in log_dir.glob("pgb*"):
        old.unlink()
    prefix = log_dir / "pgb"
    cmd = [
        pgbench,
        "-n",
        "-M",
        mode,
        "-c",
        str(clients),
        "-j",
        str(max(1, min(threads, clients))),
        "-T",
        str(max(1, round(duration))),
        "-l",
        f"--log-prefix={prefix}",
        "-h",
        target.host,
        "-p",
        str(target.port),
        "-U",
        target.user,
    ]
    for name, value in variables.items():
        cmd += ["-D", f"{name}={value}"]
    for path, weight in scripts:
        cmd += ["-f", f"{path}@{weight}"]
    cmd.append(target.database)
    result = _run(cmd, timeout=duration + 120, cwd=log_dir)
    output = result.stdout + result.stderr
    tps_match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", output)
    if tps_match is None:
        raise RuntimeError(f"pgbench failed ({result.returncode}):\n{output[-3000:]}")
    latencies: list[float] = []
    failed = 0
    for log in log_dir.glob("pgb.*"):
        with log.open() as handle:
            for row in handle:
                parts = row.split()
                if len(parts) < 3:
                    continue
                if parts[2].isdigit():
                    latencies.append(int(parts[2]) / 1000)
                else:
                    failed += 1
    latencies.sort()
    failed_match = re.search(r"number of failed transactions: (\d+)", output)
    aborted = re.search(r"(\d+) of \d+ clients? aborted", output) or re.search(r"client \d+ aborted", output)
    errors = max(failed, int(failed_match.group(1)) if failed_match else 0)
    measure = Measure(
        scenario=scenario,
        kind=kind,
        tool="pgbench",
        rps=float(tps_match.group(1)),
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        errors=errors,
        requests=len(latencies) + failed,
        duration_s=float(duration),
        concurrency=clients,
        extra={"mode": mode, "scripts": [f"{p.name}@{w}" for p, w in scripts]},
    )
    if result.returncode != 0 or aborted:
        measure.errors = max(measure.errors, 1)
        measure.notes.append("pgbench reported aborted clients: " + output.strip().splitlines()[-1][:300])
    return measure


# --- memory of the uvicorn workers ----------------------------------------------------------------


def _status_kb(pid: int, field_name: str) -> int | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{field_name}:\s+(\d+) kB", text, flags=re.MULTILINE)
    return int(match.group(1)) if match else None


def processes() -> Iterator[tuple[int, list[str], str]]:
    """Every process /proc lets us read: (pid, the fields of its stat after the command's name, so that
    the parent's pid is [1] and the user and system CPU ticks [11] and [12], its command line)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        yield int(entry.name), stat.rpartition(")")[2].split(), cmdline


def worker_pids(server_pid: int) -> list[int]:
    """The uvicorn worker processes of a `partners serve` process (itself when it runs one worker)."""
    children = [pid for pid, fields, cmdline in processes() if int(fields[1]) == server_pid and "spawn_main" in cmdline]
    return sorted(children) or [server_pid]


class RssMonitor:
    """Samples the resident memory (VmRSS) of the workers while a scenario runs."""

    def __init__(self, server_pid: int, interval: float = 0.2) -> None:
        self.server_pid = server_pid
        self.interval = interval
        self.peak_kb: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> RssMonitor:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        deadline = time.monotonic() + 3600
        pids: list[int] = []
        listed_at = 0.0
        while not self._stop.is_set() and time.monotonic() < deadline:
            if time.monotonic() - listed_at > 5:  # a scan of /proc costs more than the samples
                pids, listed_at = worker_pids(self.server_pid), time.monotonic()
            self.sample(pids)
            self._stop.wait(self.interval)

    def sample(self, pids: Sequence[int]) -> None:
        for pid in pids:
            rss = _status_kb(pid, "VmRSS")
            if rss is not None:
                self.peak_kb[pid] = max(self.peak_kb.get(pid, 0), rss)

    def peak_mb(self) -> float | None:
        """The largest peak of any one worker, MB."""
        return max(self.peak_kb.values()) / 1024 if self.peak_kb else None


def high_water_marks_mb(server_pid: int) -> dict[int, float]:
    """VmHWM of each worker: the kernel's own peak RSS since the worker started."""
    marks: dict[int, float] = {}
    for pid in worker_pids(server_pid):
        hwm = _status_kb(pid, "VmHWM")
        if hwm is not None:
            marks[pid] = hwm / 1024
    return marks


# --- a fixed-rate sender of pre-built requests ------------------------------------------------------


@dataclass
class Paced:
    """What `send_paced` did: requests sent and answered, answers by status, the rate it held."""

    sent: int
    statuses: dict[int, int]
    errors: int
    duration_s: float

    @property
    def rate(self) -> float:
        return self.sent / self.duration_s if self.duration_s > 0 else 0.0


async def read_status(reader: asyncio.StreamReader) -> int:
    """The status of the next HTTP/1.1 answer on `reader`, its body read past."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return status


def _never() -> bool:
    return False


async def send_slots(
    host: str,
    port: int,
    schedule: Schedule,
    request: Callable[[int], bytes],
    *,
    connections: int,
    stopped: Callable[[], bool] = _never,
) -> tuple[int, dict[int, int], int]:
    """Send `request(n)` for each slot n of `schedule` over `connections` keep-alive connections, each
    waiting for its answer before it takes the next slot (a connection that fails is opened again and
    its request counts as an error), until the slots run out or `stopped()` says so: (requests sent,
    answers by status, errors)."""
    statuses: dict[int, int] = {}
    errors = sent = 0

    async def connection() -> None:
        nonlocal errors, sent
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while not stopped() and (n := await schedule.take()) is not None and not stopped():
                sent += 1
                try:
                    writer.write(request(n))
                    await writer.drain()
                    status = await read_status(reader)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(max(1, connections))))
    return sent, statuses, errors


def send_paced(
    host: str, port: int, requests: Sequence[bytes], *, rate: float, duration: float, connections: int
) -> Paced:
    """Open loop: request n leaves at start + n / rate (or as soon as a connection is free after that),
    over `connections` keep-alive connections, for `duration` seconds or until the list runs out.
    wrk has no fixed rate and hey takes one request, so signed webhooks at a fixed rate go this way."""
    schedule = Schedule(min(len(requests), max(1, int(rate * duration))), rate)
    _, statuses, errors = asyncio.run(send_slots(host, port, schedule, lambda n: requests[n], connections=connections))
    return Paced(schedule.total, statuses, errors, max(time.monotonic() - schedule.start, 1e-9))
