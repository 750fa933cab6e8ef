"""What the numbers were measured on: printed above the table and copied into BENCHMARKS.md."""

from __future__ import annotations

import os
import platform
import sqlite3
from importlib import metadata
from pathlib import Path


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def postgres_version(url: str) -> str:
    import sqlalchemy as sa

    from storage.db import normalize_url

    engine = sa.create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            return str(conn.exec_driver_sql("SHOW server_version").scalar()).split()[0]
    finally:
        engine.dispose()


def facts() -> list[tuple[str, str]]:
    packages = ", ".join(
        f"{name} {metadata.version(name)}" for name in ("slack_bolt", "slack_sdk", "SQLAlchemy", "gunicorn", "httpx")
    )
    rows = [
        ("cores", f"{os.cpu_count()} × {_cpu_model()}"),
        ("memory", _memory()),
        ("os", f"{platform.system()} {platform.release()}"),
        ("python", platform.python_version()),
        ("sqlite", sqlite3.sqlite_version),
    ]
    url = os.environ.get("TEST_DATABASE_URL", "").strip()
    if url:
        try:
            rows.append(("postgresql", postgres_version(url)))
        except Exception as error:  # the bench still runs on SQLite; say why PostgreSQL is missing
            rows.append(("postgresql", f"unreachable ({type(error).__name__})"))
    else:
        rows.append(("postgresql", "not measured (TEST_DATABASE_URL unset)"))
    rows.append(("packages", packages))
    return rows
