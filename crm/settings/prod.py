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
