"""Settings shared by every environment. Values that differ come from the environment."""

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP
from django.utils.translation import gettext_lazy as _

from .env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent

SECRET_KEY = env_str("SECRET_KEY", "dev-only-insecure-key-change-me")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_htmx",
    "django_filters",
    "guardian",
    "axes",
    "crm",
    "clients",
    "deals",
    "tasks",
    "messenger",
    "imports",
    "robots",
    "partners",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "crm.middleware.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    # Axes last: it answers locked-out logins before the view runs.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "crm.urls"
WSGI_APPLICATION = "crm.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "crm.permissions.template_context",
            ],
            # {% url %} that keeps its answers (crm/templatetags/urls.py)
            "builtins": ["crm.templatetags.urls"],
        },
    },
    {
        # The few fragments drawn hundreds of times a page (the board's cards, the clients table's
        # rows) are Jinja2 templates, compiled to Python: crm/fragments.py, called by template tags.
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "NAME": "fragments",
        "DIRS": [BASE_DIR / "fragments"],
        "APP_DIRS": False,
        "OPTIONS": {"environment": "crm.fragments.environment", "autoescape": True},
    },
]

# SQLite when DATABASE_URL is unset (the embedded default), PostgreSQL when it is set. A new
# connection per request here; production keeps them (prod.py, DB_CONN_MAX_AGE).
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django binds parameters on the client and prepares nothing (prepare_threshold None). The
    # few statements sent through crm.raw.prepared_cursor() (a server-binding cursor) are
    # prepared at their first execution on a connection; every other cursor binds on the client
    # and is never prepared, whatever this number. A pooler in transaction mode (PgBouncer before
    # 1.21) would need it set back to None.
    options = DATABASES["default"].setdefault("OPTIONS", {})
    options["prepare_threshold"] = 0
    # Those statements are LIMIT-bounded index walks whose plan does not depend on their
    # parameters; PostgreSQL's default (plan_cache_mode auto) kept planning the board's cards
    # statement at every execution (its generic estimate of unnest($1) is 10 stages, not the 8 a
    # custom plan sees), which is the cost preparing it was to save. The mode applies to prepared
    # statements and PL/pgSQL only: the ORM's statements are planned as ever, and the counters'
    # trigger statements (deals/migrations/0005) have no parameters to plan for.
    options["options"] = " ".join(filter(None, [options.get("options", ""), "-c plan_cache_mode=force_generic_plan"]))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "crm.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "crm.backends.RoleBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "crm:login"
LOGIN_REDIRECT_URL = "clients:list"
LOGOUT_REDIRECT_URL = "crm:login"

# Failed logins are throttled per username and address (django-axes).
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = 0.25  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "crm/locked_out.html"
AXES_USERNAME_FORM_FIELD = "username"

GUARDIAN_RAISE_403 = False
ANONYMOUS_USER_NAME = None  # guardian: no anonymous user row

LANGUAGE_CODE = "ru"
LANGUAGES = [("ru", _("Russian")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "Europe/Moscow")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Uploads (import files, document templates): web and workers must share this folder.
MEDIA_ROOT = env_str("MEDIA_ROOT") or BASE_DIR / "media"

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie
X_FRAME_OPTIONS = "DENY"

# Content Security Policy (Django 6): no inline script or style anywhere.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
    "base-uri": [CSP.SELF],
    "object-src": [CSP.NONE],
}

# Phone numbers without a country code are read in this region.
PHONE_DEFAULT_REGION = env_str("PHONE_DEFAULT_REGION", "RU")

REDIS_URL = env_str("REDIS_URL", "")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# Sessions: with Redis, read from the cache and written through to the database, so a request
# costs no session query (the board's poll answers in three: the user, the permissions and the
# line's change token) and a flushed cache loses nobody's session. Without Redis, the database
# alone: a cache in local memory is one per process, and a session ended in one would live on in
# another's copy.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db" if REDIS_URL else "django.contrib.sessions.backends.db"

# Celery: Redis in production and tests; a broker on disk for the embedded default.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {}
    if REDIS_URL or env_str("CELERY_BROKER_URL")
    else {
        "data_folder_in": str(BASE_DIR / "var" / "broker"),
        "data_folder_out": str(BASE_DIR / "var" / "broker"),
        "processed_folder": str(BASE_DIR / "var" / "broker-processed"),
        "control_folder": str(BASE_DIR / "var" / "broker-control"),  # else kombu writes control/ where it runs
        "store_processed": False,
    }
)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Every task runs under a time limit: at the soft one it gets SoftTimeLimitExceeded (time to save
# its place), at the hard one its process is killed. These are the defaults; a task that may
# legitimately run longer says so on its decorator (import_run and job_run: 1500 s / 1800 s).
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 300)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 360)
# Redis hands an unacknowledged message (we acknowledge late) to another worker once the
# visibility timeout has passed, whether or not the first worker is still running it. It is
# therefore kept well above the longest hard time limit of any task (1800 s, import_run and
# job_run) and above any countdown a task is queued with: a message redelivered while its task
# still runs would start a second run of it. Resuming the work of a killed worker is not the
# visibility timeout's job but the beat sweeps', within a minute (jobs_resume, imports_resume: a
# heartbeat older than JOB_STALE_SECONDS / IMPORT_STALE_SECONDS); a redelivery an hour on finds
# the work done or resumed and changes nothing.
# tests/crm/test_settings.py checks every registered task's limits against it.
BROKER_VISIBILITY_TIMEOUT = 3600
if CELERY_TASK_TIME_LIMIT >= BROKER_VISIBILITY_TIMEOUT:
    raise ImproperlyConfigured(f"CELERY_TASK_TIME_LIMIT ({CELERY_TASK_TIME_LIMIT} s) must stay under the broker's "
                               f"visibility timeout ({BROKER_VISIBILITY_TIMEOUT} s), or a running task is started twice.")
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {**CELERY_BROKER_TRANSPORT_OPTIONS, "visibility_timeout": BROKER_VISIBILITY_TIMEOUT}
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", "celery")
# Where this installation is reached from outside: links in messages (a robot's {link}) start with it.
PUBLIC_URL = env_str("PUBLIC_URL", "http://127.0.0.1:8000")
# Partners' postbacks (partners.postbacks): requests per partner per minute before 429.
POSTBACK_RATE_PER_MINUTE = env_int("POSTBACK_RATE_PER_MINUTE", 1200)
IMPORT_STALE_SECONDS = env_int("IMPORT_STALE_SECONDS", 30)
IMPORT_CHUNK_ROWS = env_int("IMPORT_CHUNK_ROWS", 5000)  # rows per committed chunk: what a crash can cost (two are written at once)
# The job model (crm.jobs): a running job stamps its heartbeat every JOB_HEARTBEAT_SECONDS; the
# sweep (every 30 s, and when a worker starts) queues again a job whose heartbeat is older than
# JOB_STALE_SECONDS; a job started more than JOB_MAX_ATTEMPTS times fails with a message.
JOB_HEARTBEAT_SECONDS = env_int("JOB_HEARTBEAT_SECONDS", 5)
JOB_STALE_SECONDS = env_int("JOB_STALE_SECONDS", 60)
# Shifts (issue 14): an open shift with no sign of life for this long is closed by the beat's sweep.
SHIFT_IDLE_HOURS = env_int("SHIFT_IDLE_HOURS", 12)
JOB_MAX_ATTEMPTS = env_int("JOB_MAX_ATTEMPTS", 5)
# Exports above this many rows, and documents for more than this many clients, are made by the
# worker as a job (crm/exports.py); the owner is notified with the download link.
EXPORT_INLINE_MAX_ROWS = env_int("EXPORT_INLINE_MAX_ROWS", 10_000)
DOCUMENTS_INLINE_MAX = env_int("DOCUMENTS_INLINE_MAX", 50)
EXPORT_PROGRESS_ROWS = env_int("EXPORT_PROGRESS_ROWS", 1_000)
CELERY_TIMEZONE = TIME_ZONE



def mailers(default_backend: str) -> dict:
    """Django 6.1 mailers: MAILER_BACKEND overrides the environment's default backend."""
    backend = env_str("MAILER_BACKEND", default_backend)
    options = {}
    if backend.endswith("smtp.EmailBackend"):
        options = {
            "host": env_str("SMTP_HOST", "127.0.0.1"),
            "port": env_int("SMTP_PORT", 25),
            "username": env_str("SMTP_USER"),
            "password": env_str("SMTP_PASSWORD"),
            "use_tls": env_bool("SMTP_TLS", False),
            "timeout": env_int("SMTP_TIMEOUT", 15),
        }
    return {"default": {"BACKEND": backend, "OPTIONS": options}}


MAILERS = mailers("django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "voronka@localhost")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "WARNING")},
}

# Task reminders go out this long before the deadline (and again once it has passed).
TASK_REMINDER_BEFORE_MINUTES = env_int("TASK_REMINDER_BEFORE_MINUTES", 60)

# The clients table: rows per page, and the point past which the total is shown as "N+".
CLIENTS_PAGE_SIZE = 50
CLIENTS_COUNT_CAP = 10_000

# SMS: an HTTP gateway in production, the console in the embedded default (messenger/backends).
SMS_BACKEND = env_str("SMS_BACKEND", "messenger.backends.sms.ConsoleBackend")
SMS_GATEWAY_URL = env_str("SMS_GATEWAY_URL", "")
SMS_GATEWAY_TOKEN = env_str("SMS_GATEWAY_TOKEN", "")
SMS_GATEWAY_TIMEOUT = env_int("SMS_GATEWAY_TIMEOUT", 10)
# The messenger (issue 15): attachments up to this size; channel secrets are encrypted with a key
# derived from CHANNEL_SECRET_KEY (else SECRET_KEY: changing it makes stored secrets unreadable).
MESSENGER_MAX_ATTACHMENT_BYTES = env_int("MESSENGER_MAX_ATTACHMENT_BYTES", 20 * 1024 * 1024)
CHANNEL_SECRET_KEY = env_str("CHANNEL_SECRET_KEY", "")
# Where the Telegram channel finds the Bot API (tests run their own on 127.0.0.1).
TELEGRAM_API_BASE = env_str("TELEGRAM_API_BASE", "https://api.telegram.org")
# Throttle for mass sends (providers limit the rate); 0 sends as fast as the channel takes them.
MASS_SEND_RATE_PER_SECOND = env_int("MASS_SEND_RATE_PER_SECOND", 0)
# A delivery claimed longer ago than this by a worker that vanished is looked at again on resume.
MASS_SEND_STALE_SECONDS = env_int("MASS_SEND_STALE_SECONDS", 300)

# Requests to user-configured URLs (crm.outbound) never reach these networks unless listed here
# (e.g. "10.0.0.0/8" for a bridge inside your own network). Comma-separated CIDRs.
OUTBOUND_ALLOWED_NETWORKS = [n.strip() for n in env_str("OUTBOUND_ALLOWED_NETWORKS", "").split(",") if n.strip()]
