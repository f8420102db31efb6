"""Streamboard's settings: the embedded defaults, overridden by the environment.

Every variable is read once, here, through ``dashboard.environment``; see the
README for the list. Unset means the embedded default: a SQLite file and an
in-memory channel layer, one server process plus a task worker.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from dashboard.environment import (
    env_bool,
    env_float,
    env_int,
    env_list,
    env_str,
    parse_log_rotation,
    parse_log_sources,
)
from streams import conf

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("STREAMBOARD_VAR_DIR", str(BASE_DIR / "var"))).resolve()

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        # The embedded default: a key that is stable for this checkout but
        # never committed. Production sets SECRET_KEY.
        key_file = VAR_DIR / "secret_key"
        if not key_file.exists():
            VAR_DIR.mkdir(parents=True, exist_ok=True)
            key_file.write_text(secrets.token_urlsafe(50))
        SECRET_KEY = key_file.read_text().strip()
    else:
        SECRET_KEY = "insecure-development-key"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "channels",
    # Before django_tasks_db: its db_worker command (with the job liveness timer) wins.
    "streams",
    "django_tasks_db",
    "dashboard",
]

MIDDLEWARE = [
    # First, so it runs after every other middleware's response step.
    "streams.http.release.StreamReleaseMiddleware",
    # Stream views skip the thread hops of the middleware below (it runs their steps inline).
    "streams.http.lane.StreamLaneMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "dashboard.urls"
ASGI_APPLICATION = "dashboard.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

try:
    DATABASES = {
        "default": dj_database_url.parse(
            env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'streamboard.sqlite3'}"),
            conn_max_age=0,
        )
    }
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {exc}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the server read while the worker writes; the timeout rides out
    # the short write locks of progress updates.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        "QUEUES": ["default"],
    }
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
MEDIA_ROOT = VAR_DIR / "media"

LOGIN_URL = "admin:login"

# Streamboard's own settings. ``streams.conf`` holds every default and is the
# only reader; a variable left unset keeps conf's default (the README lists them).
STREAMBOARD_DEMO_LOG = VAR_DIR / "logs" / "demo.log"
if log_sources := env_str("STREAMBOARD_LOGS", ""):
    STREAMBOARD_LOGS = parse_log_sources(log_sources)  # unset: the demo log alone
# Rotated files of a file source, as glob patterns on names in its directory
# (unset: logrotate's numbered and dated names, Python's dated ones).
if log_rotation := env_str("STREAMBOARD_LOG_ROTATION", ""):
    STREAMBOARD_LOG_ROTATION = parse_log_rotation(log_rotation)
    conf.check_log_rotation(
        STREAMBOARD_LOG_ROTATION,
        STREAMBOARD_LOGS if log_sources else {conf.DEMO_SOURCE: STREAMBOARD_DEMO_LOG},
    )
if export_dir := env_str("STREAMBOARD_EXPORT_DIR", ""):
    STREAMBOARD_EXPORT_DIR = Path(export_dir)  # unset: MEDIA_ROOT / "exports"


def _float(name: str, minimum: float) -> float:
    return env_float(name, float(conf.DEFAULTS[name]), minimum=minimum)


STREAMBOARD_HEARTBEAT_SECONDS = _float("STREAMBOARD_HEARTBEAT_SECONDS", minimum=0.05)
STREAMBOARD_QUEUE_SIZE = env_int(
    "STREAMBOARD_QUEUE_SIZE", conf.DEFAULTS["STREAMBOARD_QUEUE_SIZE"], minimum=1
)
# ``redis:`` log sources (``manage.py ship_log``): how many entries a stream
# keeps, and how old they may grow (0: no age bound).
STREAMBOARD_REDIS_LOG_MAXLEN = env_int(
    "STREAMBOARD_REDIS_LOG_MAXLEN", conf.DEFAULTS["STREAMBOARD_REDIS_LOG_MAXLEN"], minimum=0
)
STREAMBOARD_REDIS_LOG_MAX_AGE_SECONDS = _float("STREAMBOARD_REDIS_LOG_MAX_AGE_SECONDS", minimum=0.0)
# Push-mode delivery of live log frames under ``manage.py serve`` (streams.http.push).
STREAMBOARD_PUSH = env_bool("STREAMBOARD_PUSH", conf.DEFAULTS["STREAMBOARD_PUSH"])
STREAMBOARD_QUEUE_BYTES = env_int(
    "STREAMBOARD_QUEUE_BYTES", conf.DEFAULTS["STREAMBOARD_QUEUE_BYTES"], minimum=1024
)
# Background exports (ExportJob): rows per chunk, an optional pause per chunk
# (to watch a bar on small data), how often progress is saved and published,
# how often a server polls job rows when the channel layer does not cross
# processes, and after how long without a heartbeat a running job is stale.
STREAMBOARD_EXPORT_CHUNK_SIZE = env_int(
    "STREAMBOARD_EXPORT_CHUNK_SIZE", conf.DEFAULTS["STREAMBOARD_EXPORT_CHUNK_SIZE"], minimum=1
)
STREAMBOARD_EXPORT_CHUNK_DELAY = _float("STREAMBOARD_EXPORT_CHUNK_DELAY", minimum=0.0)
STREAMBOARD_EXPORT_PROGRESS_SECONDS = _float("STREAMBOARD_EXPORT_PROGRESS_SECONDS", minimum=0.01)
STREAMBOARD_EXPORT_POLL_SECONDS = _float("STREAMBOARD_EXPORT_POLL_SECONDS", minimum=0.01)
STREAMBOARD_EXPORT_STALE_SECONDS = _float("STREAMBOARD_EXPORT_STALE_SECONDS", minimum=0.1)
# Tracked jobs of every kind: how often each worker reaps stale ones (unset: a
# quarter of the stale threshold), how long finished ones (and their files)
# are kept, and how often each worker prunes.
if "STREAMBOARD_JOB_REAP_SECONDS" in os.environ:
    STREAMBOARD_JOB_REAP_SECONDS = env_float("STREAMBOARD_JOB_REAP_SECONDS", 0.0, minimum=0.05)
STREAMBOARD_JOB_RETENTION_DAYS = _float("STREAMBOARD_JOB_RETENTION_DAYS", minimum=0.0)
STREAMBOARD_JOB_PRUNE_SECONDS = _float("STREAMBOARD_JOB_PRUNE_SECONDS", minimum=1.0)
STREAMBOARD_JOB_CHUNK_DELAY = _float("STREAMBOARD_JOB_CHUNK_DELAY", minimum=0.0)
# Redaction of log lines on their way out: built-in kinds (email, bearer,
# api_key, card), comma-separated; "none" turns it off. Custom patterns are
# dicts {"name", "pattern", "replacement"} appended here in code.
STREAMBOARD_REDACT: list[str | dict[str, str]] = [
    kind
    for kind in env_list("STREAMBOARD_REDACT", list(conf.DEFAULTS["STREAMBOARD_REDACT"]))
    if kind != "none"
]
# What may be exported, per model: an allow-list of fields (never secrets; the
# system check streams.E001 refuses password/token/key-like names). A model
# that is not listed here is not exportable at all.
STREAMBOARD_EXPORTS: dict[str, list[str]] = {
    "dashboard.order": [
        "id",
        "uuid",
        "reference",
        "customer",
        "status",
        "quantity",
        "amount",
        "note",
        "placed_on",
        "is_gift",
        "metadata",
        "created_at",
        "updated_at",
    ],
    "dashboard.customer": ["id", "name", "email", "country", "created_at"],
    "auth.user": [
        "id",
        "username",
        "first_name",
        "last_name",
        "email",
        "is_staff",
        "is_active",
        "date_joined",
        "last_login",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "daphne": {"level": "WARNING"},
        "django.channels.server": {"level": "WARNING"},
        # The tailer's inotify watcher would log every change to a followed file.
        "watchfiles": {"level": "WARNING"},
    },
}
