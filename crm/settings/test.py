"""Tests run on PostgreSQL (DATABASE_URL is set by scripts/test)."""

from .base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
AXES_FAILURE_LIMIT = 5
# Uploaded import files during tests (a worker process started by a test is told the test's own folder).
MEDIA_ROOT = __import__("os").environ.get("MEDIA_ROOT") or BASE_DIR / "var" / "test-media"  # noqa: F405
# Worker processes started by a test may be slowed per chunk, so a kill lands mid-import.
IMPORT_CHUNK_PAUSE_SECONDS = float(__import__("os").environ.get("IMPORT_CHUNK_PAUSE_SECONDS", "0"))
# The tests' own servers (the fake Bot API, the bridge, the SMS gateway) listen on the loopback.
OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.1/32"]
