"""Settings for the bench scripts: the test settings (as before), with the uploaded files and
the on-disk Celery broker (when no broker URL is configured) under bench/out, which is gitignored
and created by common.setup_django. A bench never writes into var/ or media/, and a mass send's
message never reaches a development worker's queue. The URLs are the application's plus the
framework floor's view (bench_urls.py)."""

from crm.settings.test import *  # noqa: F403
from crm.settings.test import BASE_DIR, CELERY_BROKER_URL

BENCH_OUT = BASE_DIR / "bench" / "out"
MEDIA_ROOT = BENCH_OUT / "media"
if CELERY_BROKER_URL == "filesystem://":
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BENCH_OUT / "broker"),
        "data_folder_out": str(BENCH_OUT / "broker"),
        "processed_folder": str(BENCH_OUT / "broker-processed"),
        "control_folder": str(BENCH_OUT / "broker-control"),  # kombu's default is "control" in the cwd
        "store_processed": False,
    }

# The application's URLs plus the framework floor's view (/_bench/floor/), which exists only here.
ROOT_URLCONF = "bench_urls"

# Sessions as production keeps them (crm/settings/base.py with REDIS_URL): read from the cache,
# written through to the database. In the cache of this process (one process per bench run), so
# a page costs no session query, as it does not behind Redis.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

# A bench that runs the application as production does (bench/inbound.py's gunicorn) asks for the
# cache production has with REDIS_URL: Redis, shared by every process.
if __import__("os").environ.get("BENCH_REDIS_CACHE") and __import__("os").environ.get("REDIS_URL"):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": __import__("os").environ["REDIS_URL"]}}
