"""Settings that fail safe (issue 12, point 5): production refuses to start without SECRET_KEY or
with DEBUG on, Celery defaults to production settings, `check --deploy` is clean with the
environment a deployment sets, and every task's time limit stays under the broker's visibility
timeout. Settings are read at import, so each case runs in a fresh process."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable


def deployment_env(**changes: str | None) -> dict[str, str]:
    """What a deployment sets (docker-compose.yml's variables, behind a TLS-terminating proxy);
    a value of None removes the variable."""
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "crm.settings.prod",
        "SECRET_KEY": "0PqL7vU2-xR9kT4yW1nB8mZ3cF6hJ5sD0aG2eQ7iK4oN9pV1tX8uY3wC6bM5lH0r",
        "ALLOWED_HOSTS": "crm.example.com",
        "CSRF_TRUSTED_ORIGINS": "https://crm.example.com",
        "DATABASE_URL": "postgres://voronka:s3cret@db.internal:5432/voronka",
        "REDIS_URL": "redis://redis.internal:6379/0",
        "CELERY_BROKER_URL": "redis://redis.internal:6379/1",
        "MAILER_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "SMTP_HOST": "smtp.internal",
        "SMTP_PORT": "587",
        "SMTP_TLS": "true",
        "MEDIA_ROOT": "/data/media",
    }
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


SHOW_SETTINGS = "import django.conf as c; s = c.settings; print(s.SETTINGS_MODULE, s.DEBUG)"


def test_check_deploy_is_clean_with_production_settings_and_a_deployments_environment():
    result = run([PY, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], deployment_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_deployment_environment_imports_cleanly():
    result = run([PY, "-c", SHOW_SETTINGS], deployment_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["crm.settings.prod", "False"]


@pytest.mark.parametrize("secret", [None, "", "   "], ids=["unset", "empty", "blank"])
def test_production_refuses_to_start_without_a_secret_key(secret):
    result = run([PY, "-c", SHOW_SETTINGS], deployment_env(SECRET_KEY=secret))
    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY is not set" in result.stderr, result.stderr
    assert "crm.settings.prod" not in result.stdout


@pytest.mark.parametrize("debug", ["1", "true", "on", "YES"])
def test_production_refuses_to_start_with_debug_on(debug):
    result = run([PY, "-c", SHOW_SETTINGS], deployment_env(DEBUG=debug))
    assert result.returncode != 0
    assert "ImproperlyConfigured: DEBUG is on with crm.settings.prod" in result.stderr, result.stderr


@pytest.mark.parametrize("debug", ["0", "false", ""])
def test_production_starts_with_debug_explicitly_off(debug):
    result = run([PY, "-c", SHOW_SETTINGS], deployment_env(DEBUG=debug))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["crm.settings.prod", "False"]


SHOW_DATABASE = ("import django; django.setup(); from django.db import connection as c; d = c.settings_dict; "
                 "print(d['ENGINE'], d['CONN_MAX_AGE'], d['CONN_HEALTH_CHECKS'])")


def test_production_keeps_its_postgresql_connections_and_checks_them_before_reuse():
    """Issue 13, point 3: a new connection per request cost ~5 ms, more than the framework floor."""
    result = run([PY, "-c", SHOW_DATABASE], deployment_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.postgresql", "600", "True"]


@pytest.mark.parametrize("age", ["0", "60"])
def test_how_long_production_keeps_a_connection_comes_from_the_environment(age):
    result = run([PY, "-c", SHOW_DATABASE], deployment_env(DB_CONN_MAX_AGE=age))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.postgresql", age, "True"]


def test_production_on_the_embedded_sqlite_database_opens_it_per_request_as_before():
    result = run([PY, "-c", SHOW_DATABASE], deployment_env(DATABASE_URL=None))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.sqlite3", "0", "False"]


def test_a_hard_time_limit_at_or_over_the_visibility_timeout_is_refused():
    result = run([PY, "-c", SHOW_SETTINGS], deployment_env(CELERY_TASK_TIME_LIMIT="3600"))
    assert result.returncode != 0
    assert "CELERY_TASK_TIME_LIMIT (3600 s) must stay under the broker's visibility timeout" in result.stderr, result.stderr


def test_celery_without_a_settings_module_runs_on_production_settings():
    result = run([PY, "-c", "import crm.celery, django.conf; s = django.conf.settings; print(s.SETTINGS_MODULE, s.DEBUG)"],
                 deployment_env(DJANGO_SETTINGS_MODULE=None))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["crm.settings.prod", "False"]


@pytest.mark.parametrize("command", ["worker", "beat"])
def test_a_worker_or_beat_started_without_settings_or_secret_key_refuses_to_start(command, tmp_path):
    env = deployment_env(DJANGO_SETTINGS_MODULE=None, SECRET_KEY=None, DEBUG="1",
                         CELERY_BROKER_URL="redis://127.0.0.1:1/0")  # nothing listens there: it must not get that far
    args = [PY, "-m", "celery", "-A", "crm", command, "--loglevel=warning"]
    args += ["--pool=solo", "-Q", "never-used"] if command == "worker" else ["--schedule", str(tmp_path / "beat-schedule")]
    result = run(args, env, timeout=60)
    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY is not set" in result.stderr, result.stderr


def test_every_task_has_time_limits_under_the_brokers_visibility_timeout(settings):
    """A task still running when its message becomes visible again would be started a second time."""
    from crm.celery import app

    app.loader.import_default_modules()  # the autodiscovered tasks modules
    tasks = {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}
    assert {"crm.tasks.job_run", "crm.tasks.jobs_resume", "tasks.tasks.reminders_send"} <= set(tasks)  # discovery worked
    visibility = settings.BROKER_VISIBILITY_TIMEOUT
    if settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        assert app.conf.broker_transport_options["visibility_timeout"] == visibility
    assert (app.conf.task_soft_time_limit, app.conf.task_time_limit) == (300, 360)
    for name, task in tasks.items():
        soft = task.soft_time_limit or app.conf.task_soft_time_limit
        hard = task.time_limit or app.conf.task_time_limit
        assert 0 < soft < hard < visibility, (name, soft, hard, visibility)
    # the job runner (imports, sends, bulk actions, exports) keeps its own, longer limits: a large
    # file takes more than the default
    assert (tasks["crm.tasks.job_run"].soft_time_limit, tasks["crm.tasks.job_run"].time_limit) == (1500, 1800)


def test_docker_compose_runs_web_worker_and_beat_on_production_settings_with_a_required_secret_key():
    """docker-compose.yml is read, not run (no Docker here): its shared environment must choose the
    production settings, require SECRET_KEY without a default, never set DEBUG, and only set
    variables the settings read."""
    compose = (ROOT / "docker-compose.yml").read_text()
    block = re.search(r"^  environment: &env\n((?:    \S.*\n)+)", compose, re.M)
    assert block, "the x-app environment block moved"
    lines = [line.strip() for line in block.group(1).splitlines() if not line.lstrip().startswith("#")]
    env = dict(line.split(": ", 1) for line in lines)
    assert env["DJANGO_SETTINGS_MODULE"] == "crm.settings.prod"
    assert re.fullmatch(r"\$\{SECRET_KEY:\?[^}]*\}", env["SECRET_KEY"]), env["SECRET_KEY"]
    assert "DEBUG" not in env
    for service in ("web", "worker", "beat"):
        assert re.search(rf"^  {service}:\n    <<: \*app\n", compose, re.M), service
    read = "\n".join(path.read_text() for path in (ROOT / "crm" / "settings").glob("*.py"))
    unread = [name for name in env if name != "DJANGO_SETTINGS_MODULE" and f'"{name}"' not in read]
    assert not unread, f"docker-compose.yml sets variables no setting reads: {unread}"


def test_every_process_of_the_application_collects_young_garbage_after_10000_new_objects():
    """crm.apps: set as the apps load, in a process of its own (no test may have set it)."""
    code = ("import django, gc; django.setup(); "
            "print(gc.get_threshold()[0])")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "crm.settings.test"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "10000"
