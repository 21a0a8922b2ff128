"""Metric ingestion throughput on PostgreSQL: the real endpoint against bare baselines.

Run by hand (never from the test suite); all load goes to 127.0.0.1 and every phase is bounded
in time::

    .venv/bin/python benchmarks/ingest_bench.py                 # throwaway database
    .venv/bin/python benchmarks/ingest_bench.py --database-url postgresql+asyncpg://...

It measures, in one run, with rounds alternating between the contenders (medians printed):

(a) batches of 1000 metric points: ``POST /v1/products/{p}/signals/metrics`` served by uvicorn
    (1 worker, auth, validation, storage, commit) against a bare FastAPI endpoint on uvicorn that
    parses the same JSON and COPYs it (target ratio >= 0.7), and against raw asyncpg
    ``copy_records_to_table`` in this process (the ceiling);
(b) one small metric point per request: the real endpoint against a bare FastAPI endpoint doing
    one asyncpg INSERT per request (target ratio >= 0.7). Once the key is cached, the real
    endpoint's answers come from the metrics lane (``signals/fastlane.py``), whose pool skips the
    reset query that the bare endpoint's default asyncpg pool runs on every release;
(c) evaluation of a product with 50 numeric features (reference 1e5 rows, window 1e4): end to end
    as ``POST :evaluate`` runs it against the statistics engine alone on the same arrays (target
    <= 2x); the code is ``evaluation_bench.py``, run here after (a) and (b) (``--skip-evaluation``
    leaves it out).

Load comes from ``wrk`` when installed (``apt-get install wrk``), else from an httpx client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# module level: the endpoints' string annotations are resolved against these globals
from fastapi import FastAPI, Request, Response

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BATCH = 1000
COLUMNS = ("product_id", "name", "value", "event_time", "received_at", "model_version", "labels")
TOKEN = "rtk_benchbnc_" + "b" * 43


# --- the bare baseline server (run as a subprocess: `ingest_bench.py --serve-bare`) ---


def bare_app(dsn: str, product_id: int) -> Any:
    """FastAPI with two endpoints that do the minimum: parse JSON, write with asyncpg."""
    import asyncpg

    pool: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        pool["p"] = await asyncpg.create_pool(dsn, min_size=4, max_size=10)
        yield
        await pool["p"].close()

    app = FastAPI(lifespan=lifespan)

    def record(p: dict[str, Any], now: datetime) -> tuple[Any, ...]:
        t = p.get("time")
        labels = p.get("labels")
        return (
            product_id,
            p["name"],
            float(p["value"]),
            datetime.fromisoformat(t) if t else now,
            now,
            p.get("model_version"),
            json.dumps(labels) if labels else None,
        )

    @app.post("/bulk")
    async def bulk(request: Request) -> Response:
        body = json.loads(await request.body())
        now = datetime.now(UTC)
        records = [record(p, now) for p in body["points"]]
        async with pool["p"].acquire() as conn:
            await conn.copy_records_to_table("metric_points", records=records, columns=COLUMNS)
        return Response(json.dumps({"accepted": len(records)}), media_type="application/json")

    @app.post("/one")
    async def one(request: Request) -> Response:
        body = json.loads(await request.body())
        now = datetime.now(UTC)
        (rec,) = [record(p, now) for p in body["points"]]
        async with pool["p"].acquire() as conn:
            await conn.execute(
                "INSERT INTO metric_points (product_id, name, value, event_time, received_at,"
                " model_version, labels) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                *rec,
            )
        return Response(json.dumps({"accepted": 1}), media_type="application/json")

    return app


def serve_bare(dsn: str, product_id: int, port: int) -> None:
    import uvicorn

    uvicorn.run(
        bare_app(dsn, product_id),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        loop="uvloop",
        http="httptools",
    )


# --- setup ---


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def libpq(url: str) -> str:
    return re.sub(r"^postgresql\+asyncpg://", "postgresql://", url)


async def create_database() -> tuple[str, str]:
    import asyncpg

    name = f"retrigger_bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name, f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


async def drop_database(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def prepare(url: str) -> int:
    """Migrate, then create a team, a product and an ingest key; returns the product id."""
    import retrigger.db.all_models  # noqa: F401
    from retrigger.auth import service as auth_service
    from retrigger.auth.schemas import ApiKeyCreate
    from retrigger.auth.scopes import SYSTEM, Scope
    from retrigger.config import Settings
    from retrigger.db import migrate
    from retrigger.db.session import Database
    from retrigger.products.models import Product
    from retrigger.teams.models import Team

    db = Database.from_settings(Settings(database_url=url))
    try:
        await migrate.upgrade(db.engine)
        async with db.session_scope() as session:
            team = Team(name="bench", description="")
            session.add(team)
            await session.flush()
            product = Product(
                name="bench-model", team_id=team.id, description="", tags=[], features=[]
            )
            session.add(product)
            await session.flush()
            await auth_service.create(
                session,
                principal=SYSTEM,
                key_in=ApiKeyCreate(name="bench", team="bench", scopes=[Scope.ingest]),
                token=TOKEN,
            )
            return product.id
    finally:
        await db.dispose()


def start(cmd: list[str], env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    out = log.open("wb")
    proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server did not start: {log.read_text()}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


# --- load ---


def batch_body(n: int) -> bytes:
    t0 = datetime.now(UTC) - timedelta(minutes=30)
    points = [
        {
            "name": "score_mean" if i % 2 else "accuracy",
            "value": round(0.5 + (i % 97) / 200, 4),
            "time": (t0 + timedelta(milliseconds=i)).isoformat().replace("+00:00", "Z"),
            "model_version": "v3",
            "labels": {"shard": str(i % 4)},
        }
        for i in range(n)
    ]
    return json.dumps({"points": points}).encode()


SMALL_BODY = json.dumps({"points": [{"name": "latency_ms", "value": 12.5}]}).encode()


def wrk_load(url: str, body: bytes, headers: dict[str, str], seconds: float, conns: int) -> float:
    """Requests per second measured by wrk; refuses to report if any response was not 2xx."""
    with tempfile.TemporaryDirectory() as tmp:
        body_file = Path(tmp) / "body.json"
        body_file.write_bytes(body)
        script = Path(tmp) / "post.lua"
        header_lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
        script.write_text(
            f'wrk.method = "POST"\n'
            f'local f = io.open("{body_file}", "rb")\nwrk.body = f:read("*all")\nf:close()\n'
            f'wrk.headers["Content-Type"] = "application/json"\n{header_lines}\n'
        )
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{conns}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "10s",
                "-s",
                str(script),
                url,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 30,
            check=True,
        ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"failed requests during load:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None:
        raise RuntimeError(out)
    return float(match.group(1))


async def httpx_load(
    url: str, body: bytes, headers: dict[str, str], seconds: float, conns: int
) -> float:
    import httpx

    done = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=conns, max_keepalive_connections=conns)
    hdrs = {**headers, "Content-Type": "application/json"}
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                r = await client.post(url, content=body, headers=hdrs)
                if r.status_code >= 300:
                    raise RuntimeError(f"{r.status_code}: {r.text[:300]}")
                done += 1

        start_t = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(conns)))
        elapsed = time.perf_counter() - start_t
    return done / elapsed


def load(url: str, body: bytes, headers: dict[str, str], seconds: float, conns: int) -> float:
    if shutil.which("wrk"):
        return wrk_load(url, body, headers, seconds, conns)
    return asyncio.run(httpx_load(url, body, headers, seconds, conns))


async def raw_copy_rate(
    dsn: str, product_id: int, body: bytes, seconds: float, conns: int
) -> float:
    """Rows/s of asyncpg ``copy_records_to_table`` alone on ``conns`` connections at once
    (records built once, outside the clock): the ceiling for any endpoint."""
    import asyncpg

    now = datetime.now(UTC)
    points = json.loads(body)["points"]
    records = [
        (
            product_id,
            p["name"],
            p["value"],
            datetime.fromisoformat(p["time"]),
            now,
            p["model_version"],
            json.dumps(p["labels"]),
        )
        for p in points
    ]
    pool = await asyncpg.create_pool(dsn, min_size=conns, max_size=conns)
    rows = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal rows
        async with pool.acquire() as conn:
            while time.perf_counter() < deadline:
                await conn.copy_records_to_table("metric_points", records=records, columns=COLUMNS)
                rows += len(records)

    try:
        start_t = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(conns)))
        return rows / (time.perf_counter() - start_t)
    finally:
        await pool.close()


async def truncate(dsn: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("TRUNCATE metric_points")
    finally:
        await conn.close()


# --- main ---


def serve_real_frozen(port: int) -> None:
    """The real app after ``gc.freeze()`` (``--gc-freeze``): shows what the collector's walks
    over the app's long-lived objects cost per request."""
    import gc

    import uvicorn

    from retrigger.main import app_factory

    app = app_factory()
    gc.collect()
    gc.freeze()
    uvicorn.run(
        app, host="127.0.0.1", port=port, log_level="warning", loop="uvloop", http="httptools"
    )


def uvicorn_cmd(port: int, *, gc_freeze: bool = False) -> list[str]:
    """The real app, as `retrigger serve` runs it: uvicorn, one worker, uvloop + httptools."""
    if gc_freeze:
        return [sys.executable, __file__, "--serve-real-frozen", "--port", str(port)]
    cmd = [sys.executable, "-m", "uvicorn", "retrigger.main:app_factory", "--factory"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    cmd += ["--loop", "uvloop", "--http", "httptools", "--log-level", "warning"]
    return [*cmd, "--no-access-log"]


def run(args: argparse.Namespace) -> None:
    owned: str | None = None
    url = args.database_url
    if url is None:
        owned, url = asyncio.run(create_database())
    dsn = libpq(url)
    procs: list[subprocess.Popen[bytes]] = []
    logs = Path(tempfile.mkdtemp(prefix="ingest_bench_"))
    try:
        product_id = asyncio.run(prepare(url))
        env = {k: v for k, v in os.environ.items() if not k.startswith("RETRIGGER_")}
        env.update(
            RETRIGGER_DATABASE_URL=url,
            RETRIGGER_LOG_LEVEL="WARNING",
            RETRIGGER_MAX_BODY_BYTES=str(64 << 20),
        )
        real_port, open_port, bare_port = free_port(), free_port(), free_port()
        real_cmd = uvicorn_cmd(real_port, gc_freeze=args.gc_freeze)
        procs.append(start(real_cmd, env, real_port, logs / "real.log"))
        # the same app without authentication, to show what the API key lookup costs
        noauth_env = {**env, "RETRIGGER_AUTH": "disabled"}
        open_cmd = uvicorn_cmd(open_port, gc_freeze=args.gc_freeze)
        procs.append(start(open_cmd, noauth_env, open_port, logs / "open.log"))
        bare_cmd = [sys.executable, __file__, "--serve-bare", "--dsn", dsn]
        bare_cmd += ["--product-id", str(product_id), "--port", str(bare_port)]
        procs.append(start(bare_cmd, env, bare_port, logs / "bare.log"))

        auth = {"Authorization": f"Bearer {TOKEN}"}
        path = "/v1/products/bench-model/signals/metrics"
        real = f"http://127.0.0.1:{real_port}{path}"
        open_ = f"http://127.0.0.1:{open_port}{path}"
        bare = f"http://127.0.0.1:{bare_port}"
        big = batch_body(BATCH)
        secs, rounds, conns = args.seconds, args.rounds, args.connections
        tool = "wrk" if shutil.which("wrk") else "httpx"
        print(
            f"real app{' after gc.freeze()' if args.gc_freeze else ''}; "
            f"load: {tool}, {conns} connections, {rounds} rounds x {secs:g} s per contender, "
            f"alternating; uvicorn 1 worker each; batch {BATCH} points ({len(big) / 1024:.0f} KiB)"
        )
        for target, body, headers in (
            (real, big, auth),
            (bare + "/bulk", big, {}),
            (real, SMALL_BODY, auth),
            (open_, SMALL_BODY, {}),
            (bare + "/one", SMALL_BODY, {}),
        ):
            load(target, body, headers, 1, 2)  # warm-up: pools, prepared statements

        contenders: dict[str, Any] = {
            "a_real": lambda: load(real, big, auth, secs, conns) * BATCH,
            "a_bare": lambda: load(bare + "/bulk", big, {}, secs, conns) * BATCH,
            "a_raw": lambda: asyncio.run(raw_copy_rate(dsn, product_id, big, secs, conns)),
            "b_real": lambda: load(real, SMALL_BODY, auth, secs, conns),
            "b_open": lambda: load(open_, SMALL_BODY, {}, secs, conns),
            "b_bare": lambda: load(bare + "/one", SMALL_BODY, {}, secs, conns),
        }
        results: dict[str, list[float]] = {k: [] for k in contenders}
        for _ in range(rounds):
            for name, measure in contenders.items():
                asyncio.run(truncate(dsn))
                results[name].append(measure())

        med = {k: statistics.median(v) for k, v in results.items()}
        labels = {
            "a_real": ("(a) real endpoint, batches of 1000", "rows/s"),
            "a_bare": ("(a) bare FastAPI + COPY", "rows/s"),
            "a_raw": ("(a) raw asyncpg COPY, no HTTP", "rows/s"),
            "b_real": ("(b) real endpoint, 1 point", "req/s"),
            "b_open": ("(b) real endpoint, auth disabled", "req/s"),
            "b_bare": ("(b) bare FastAPI + 1 INSERT", "req/s"),
        }
        print(f"\n{'measurement':40} {'median':>12}  unit    rounds")
        for key, (label, unit) in labels.items():
            spread = ", ".join(f"{x:,.0f}" for x in results[key])
            print(f"{label:40} {med[key]:>12,.0f}  {unit:6}  [{spread}]")
        print(f"\n{'ratio':40} {'value':>12}  target")
        for label, value, target in (
            ("(a) real / bare COPY endpoint", med["a_real"] / med["a_bare"], 0.7),
            ("(a) real / raw asyncpg COPY", med["a_real"] / med["a_raw"], None),
            ("(b) real / bare INSERT endpoint", med["b_real"] / med["b_bare"], 0.7),
            ("(b) auth disabled / bare INSERT", med["b_open"] / med["b_bare"], None),
        ):
            verdict = (
                "(information)"
                if target is None
                else (f">= {target:.2f}  {'ok' if value >= target else 'MISSED'}")
            )
            print(f"{label:40} {value:>12.2f}  {verdict}")
        if not args.skip_evaluation:
            import evaluation_bench

            print("\n(c) evaluation of 50 features, reference 1e5 rows, window 1e4 rows")
            ratio = asyncio.run(
                evaluation_bench.main_async(
                    argparse.Namespace(database_url=None, repeats=args.evaluation_repeats)
                )
            )
            verdict = f"<= 2.00  {'ok' if ratio <= 2 else 'MISSED'}"
            print(f"{'(c) end-to-end / stats alone':40} {ratio:>12.2f}  {verdict}")
    finally:
        for proc in procs:
            stop(proc)
        if owned is not None:
            asyncio.run(drop_database(owned))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="postgresql+asyncpg://... (default: throwaway db)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of one round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per contender")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections")
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="serve the real app after gc.freeze() (an experiment, not how `serve` runs)",
    )
    parser.add_argument(
        "--skip-evaluation", action="store_true", help="leave out (c), the evaluation cost"
    )
    parser.add_argument(
        "--evaluation-repeats", type=int, default=7, help="repeats of (c), medians printed"
    )
    parser.add_argument("--serve-bare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-real-frozen", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dsn", help=argparse.SUPPRESS)
    parser.add_argument("--product-id", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(args.dsn, args.product_id, args.port)
        return
    if args.serve_real_frozen:
        serve_real_frozen(args.port)
        return
    run(args)


if __name__ == "__main__":
    main()
