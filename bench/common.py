"""Shared set-up for the bench scripts: a separate PostgreSQL database, Django configured for it."""

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"  # gitignored: generated files, uploads, broker messages
BENCH_DB = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/voronka_bench")


def setup_django():
    """Django on the bench database, with bench_settings (the test settings, with uploads and the
    on-disk broker under bench/out, so a fresh clone needs no var/ and no bench message ever
    reaches a development worker)."""
    sys.path.insert(0, str(ROOT))
    for folder in ("media", "broker", "broker-processed", "broker-control"):
        (OUT / folder).mkdir(parents=True, exist_ok=True)
    os.environ["DATABASE_URL"] = BENCH_DB
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench_settings")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    import django

    django.setup()


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return round(ordered[index], 1)


def summary(samples: list[float]) -> tuple[float, float]:
    return percentile(samples, 0.50), percentile(samples, 0.95)


def git_state() -> dict:
    """The commit measured, whether the work tree differed from it, and whether it did outside the
    bench scripts and CI (then the figures are not the commit's). Read-only git calls: no index
    refresh, no lock."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, env=env, capture_output=True,
                                text=True, check=True).stdout.strip()
        status = subprocess.run(["git", "--no-optional-locks", "status", "--porcelain"], cwd=ROOT, env=env,
                                capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {"commit": "unknown", "dirty": None, "dirty_outside_bench": None}
    paths = [line[3:] for line in status.splitlines() if line.strip()]
    return {"commit": commit, "dirty": bool(paths),
            "dirty_outside_bench": any(not path.startswith(("bench/", ".ci/")) for path in paths)}


def emit(result: dict) -> None:
    """Bench scripts end with one JSON object on the last line, with the commit it measured."""
    print(json.dumps({**result, **git_state()}, ensure_ascii=False), flush=True)


__all__ = ["setup_django", "summary", "emit", "statistics", "git_state", "ROOT", "OUT", "BENCH_DB"]
