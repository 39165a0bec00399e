"""Production. It refuses to start rather than run unsafe: without SECRET_KEY (there is no
fallback key to sign sessions with) or with DEBUG on (tracebacks and settings shown to anyone)."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import mailers
from .env import env_bool, env_int, env_required

SECRET_KEY = env_required("SECRET_KEY", "production signs sessions, password resets and CSRF tokens with it; "
                                        "set a long random value (python -c 'import secrets; print(secrets.token_urlsafe(50))').")
if env_bool("DEBUG", False):
    raise ImproperlyConfigured("DEBUG is on with crm.settings.prod: production never runs with DEBUG; "
                               "unset DEBUG, or use crm.settings.dev on a development machine.")
DEBUG = False
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True

# Static files are served by the app itself (whitenoise) in production.
MIDDLEWARE = [MIDDLEWARE[0], "whitenoise.middleware.WhiteNoiseMiddleware", *MIDDLEWARE[1:]]  # noqa: F405

MAILERS = mailers("django.core.mail.backends.smtp.EmailBackend")

# Persistent database connections (issue 13, point 3). Opening a PostgreSQL connection costs a
# request several milliseconds (a backend process forked, authentication; more with TLS) - more
# than the framework's whole floor. Each web worker and each Celery worker process keeps its
# connection for DB_CONN_MAX_AGE seconds; CONN_HEALTH_CHECKS checks a kept connection before the
# first query of each request, so one the database dropped (a restart, a failover) is replaced
# instead of failing the request. Not psycopg's pool (OPTIONS["pool"]): psycopg_pool is not a
# dependency, and with gunicorn's single-threaded sync workers a pool holds one connection per
# process anyway. Size PostgreSQL's max_connections for web workers + worker concurrency + beat.
# Only for PostgreSQL: the embedded SQLite database opens a file, not a connection to a server.
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":  # noqa: F405
    DATABASES["default"]["CONN_MAX_AGE"] = env_int("DB_CONN_MAX_AGE", 600)  # noqa: F405
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True  # noqa: F405
