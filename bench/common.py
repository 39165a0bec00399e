"""Shared set-up for the bench scripts: a separate PostgreSQL database, Django configured for it."""

import json
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH_DB = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/voronka_bench")


def setup_django():
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = BENCH_DB
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings.test")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    import django

    django.setup()


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return round(ordered[index], 1)


def summary(samples: list[float]) -> tuple[float, float]:
    return percentile(samples, 0.50), percentile(samples, 0.95)


def emit(result: dict) -> None:
    """Bench scripts end with one JSON object on the last line."""
    print(json.dumps(result, ensure_ascii=False))


__all__ = ["setup_django", "summary", "emit", "statistics"]
