"""Settings, read from the environment (see README.md for every variable).

Development and tests get working defaults through `devtools.runner`, which starts
embedded servers and exports DATABASE_URL, REDIS_URL and STRIPE_* for them.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Any, overload
from urllib.parse import parse_qs, unquote, urlsplit

from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("PORTAL_DATA_DIR", BASE_DIR / ".data"))


@overload
def env(name: str) -> str | None: ...
@overload
def env(name: str, default: str) -> str: ...
def env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def database_from_url(url: str) -> dict[str, Any]:
    """postgresql://user:password@host:port/name, where host may be a
    percent-encoded socket folder (`%2Fpath%2Fto%2Fdir`) or `?host=/path`."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ImproperlyConfigured("DATABASE_URL must be a postgresql:// URL")
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    host, port = unquote(hostport), ""
    if not host.startswith("/") and ":" in hostport:
        host, _, port = hostport.rpartition(":")
    query = parse_qs(parts.query)
    if "host" in query:
        host = query["host"][0]
    return {
        "ENGINE": "django_tenants.postgresql_backend",
        "NAME": unquote(parts.path.lstrip("/")) or "portal",
        "USER": unquote(user),
        "PASSWORD": unquote(password),
        "HOST": host,
        "PORT": port,
        # Persistent connections: search_path is per connection, so never put a
        # transaction-mode pooler in front of this (docs/tenancy.md).
        "CONN_MAX_AGE": int(env("DB_CONN_MAX_AGE", "60")),
        "CONN_HEALTH_CHECKS": True,
        "TEST": {"NAME": env("TEST_DATABASE_NAME")},
    }


def redis_url(url: str, db: int | None) -> str:
    """The same Redis server, another logical database."""
    if db is None:
        return url
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix://{parts.path}?db={db}"
    return parts._replace(path=f"/{db}").geturl()


def celery_url(url: str) -> str:
    """Kombu spells a Unix socket `redis+socket://` and its database `virtual_host`."""
    parts = urlsplit(url)
    if parts.scheme != "unix":
        return url
    db = parse_qs(parts.query).get("db", ["0"])[0]
    return f"redis+socket://{parts.path}?virtual_host={db}"


TESTING = env_bool("PORTAL_TESTING") or "pytest" in sys.modules
DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env("SECRET_KEY") or ""
if not SECRET_KEY:
    if not (DEBUG or TESTING):
        raise ImproperlyConfigured("Set SECRET_KEY (DEBUG is off).")
    SECRET_KEY = "development-only-key-never-used-in-production-0123456789abcdef"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ".localhost,localhost,127.0.0.1")
# The bare host of the deployment (where the platform operator works), used to
# build provider host names: <slug>.<PORTAL_BASE_DOMAIN>.
PORTAL_BASE_DOMAIN = env("PORTAL_BASE_DOMAIN", "localhost")
# Links in e-mails sent without a request (tasks): <scheme>://<provider's primary
# host><port>. `make run` sets http and :8000.
PORTAL_LINK_SCHEME = env("PORTAL_LINK_SCHEME", "https")
PORTAL_LINK_PORT = env("PORTAL_LINK_PORT", "")

# --- Applications: django-tenants splits them by schema -----------------------
SHARED_APPS = [
    "django_tenants",
    "pgtrigger",
    "portal",
    "devtools",
    "providers",
    "accounts",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    # The admin's look (django-unfold): its templates before the admin's own.
    "unfold",
    "unfold.contrib.filters",
    "django.contrib.admin",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "phonenumber_field",
]
TENANT_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.admin",
    "accounts",
    "families",
    "enrollments",
    "benefits",
    "billing",
    "desk",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "providers.Provider"
TENANT_DOMAIN_MODEL = "providers.Domain"
PUBLIC_SCHEMA_URLCONF = "portal.urls_public"
ROOT_URLCONF = "portal.urls"
TENANT_LIMIT_SET_CALLS = True
# A migrated template schema (a provider row without domains): new providers
# get its rows and the migrations' DDL in one transaction (providers/schema.py).
TENANT_BASE_SCHEMA = "provider_template"
TENANT_CREATION_FAKES_MIGRATIONS = True
SHOW_PUBLIC_IF_NO_TENANT_FOUND = False
DATABASE_ROUTERS = ("django_tenants.routers.TenantSyncRouter",)

MIDDLEWARE = [
    "portal.middleware.TenantMiddleware",
    "portal.middleware.ProviderReadyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Sees every response a logged-in person gets (no-store), whichever layer made it.
    "portal.middleware.PrivateResponseMiddleware",
    # Before sessions and CSRF, so its response pass sees their cookies.
    "portal.middleware.EmbeddingMiddleware",
    "providers.middleware.FramingAttemptMiddleware",
    "portal.middleware.ProviderLocaleMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Before CSRF (which reads the form first): a too-large form is shown again.
    "portal.bodylimit.BodyLimitMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "portal.middleware.StaffLanguageMiddleware",
    "families.staff.ViewAsReadOnlyMiddleware",
    "billing.middleware.PayOnlyMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

if not (DEBUG or TESTING):
    # Static files from the web process in production (collectstatic at build).
    MIDDLEWARE.insert(3, "whitenoise.middleware.WhiteNoiseMiddleware")

WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.template.context_processors.tz",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.portal",
                "families.pagecache.csrf_placeholder",
            ],
            "builtins": ["template_partials.templatetags.partials"],
        },
    }
]

# --- The admin's look (django-unfold; the callables are in portal/adminui.py) ---
UNFOLD = {
    "SITE_TITLE": "portal.adminui.site_title",
    "SITE_HEADER": "portal.adminui.site_header",
    "SITE_SUBHEADER": "portal.adminui.site_subheader",
    "SITE_ICON": "portal.adminui.site_icon",
    "SITE_SYMBOL": "portal.adminui.site_symbol",
    "SITE_URL": "/",
    "SHOW_VIEW_ON_SITE": False,
    # The provider's brand colour, per request: the variables are written by
    # templates/unfold/layouts/skeleton.html (portal.theme.Theme.scale).
    "COLORS": {
        "primary": {
            weight: f"var(--brand-{weight})"
            for weight in ["50", *(str(w) for w in range(100, 1000, 100)), "950"]
        },
    },
    "SIDEBAR": {
        "show_search": True,
        "show_all_applications": False,
        "navigation": "portal.adminui.navigation",
    },
}

# --- Data -------------------------------------------------------------------
if not env("DATABASE_URL"):
    raise ImproperlyConfigured(
        "DATABASE_URL is not set. Use `make run` / `make test` (they start an embedded "
        "PostgreSQL) or point DATABASE_URL at a PostgreSQL server."
    )
DATABASES = {"default": database_from_url(env("DATABASE_URL", ""))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL") or ""
if not REDIS_URL:
    raise ImproperlyConfigured("REDIS_URL is not set. Use `make run` / `make test` or set it.")
# The suite gets its own logical database so it never clears a developer's keys.
REDIS_DB = 9 if TESTING else None
# django-redis: each cache keeps one redis.Redis client (per thread), made
# once, over one connection pool per LOCATION, so a call costs only its command.
# It fails open: while Redis is unreachable or answers with an error, reads miss
# and writes drop (add, delete, incr... return None), each logged with its
# traceback to "portal.cache", so pages keep rendering from PostgreSQL. Not
# covered: touch() and django-redis's extras (ttl, expire, lock); nothing here
# calls them. Options are upper-case (lower-case ones are silently ignored), and
# caches sharing a LOCATION share the pool (and timeouts) of the first one used.
REDIS_CACHE_OPTIONS = {
    "IGNORE_EXCEPTIONS": True,
    "SOCKET_CONNECT_TIMEOUT": 0.5,
    "SOCKET_TIMEOUT": 1,
}
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
DJANGO_REDIS_LOGGER = "portal.cache"
CACHES: dict[str, dict[str, Any]] = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": redis_url(REDIS_URL, REDIS_DB),
        "OPTIONS": {**REDIS_CACHE_OPTIONS},
        # Keys carry the provider's schema: no cache entry crosses providers.
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
        "KEY_PREFIX": "portal",
    },
    # Host name -> provider, shared by every provider (portal.middleware.TenantMiddleware).
    # Forgotten on every change; the timeout bounds a lookup racing a change.
    "hosts": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": redis_url(REDIS_URL, REDIS_DB),
        "OPTIONS": {**REDIS_CACHE_OPTIONS},
        "KEY_PREFIX": "portal-hosts",
        "TIMEOUT": 60,
    },
}

CELERY_BROKER_URL = celery_url(redis_url(REDIS_URL, REDIS_DB))
CELERY_RESULT_BACKEND = CELERY_BROKER_URL
CELERY_TASK_ALWAYS_EAGER = TESTING and not env_bool("CELERY_REAL_WORKER")
CELERY_TASK_EAGER_PROPAGATES = True
# Work reports its outcome in the database (document status, payment state),
# never through the result store: queuing a task then needs only the broker,
# and the broker-down fallback (portal.tasks.dispatch) answers at once.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.1, "interval_step": 0.2}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A task whose worker died unacknowledged is handed to another worker after
# this many seconds (longer than the longest task: a 10,000-line statement).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": int(env("CELERY_VISIBILITY_TIMEOUT", "1800")),
    # Look for such tasks on every 10-second tick, not every tenth one.
    "unacked_restore_throttle": 1,
}
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_QUEUE", "portal-test" if TESTING else "portal")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "portal.beat.ProvidersScheduler"
CELERY_BEAT_SCHEDULE = {
    # Entries without `tenant_schemas` are sent once per provider. Hourly, so each
    # provider's midnight (its own time zone) is caught; the work is idempotent.
    "benefits-daily-upkeep": {
        "task": "benefits.tasks.daily_upkeep",
        "schedule": 60 * 60,
    },
    # Places held for waitlisted children: lapsed offers pass to the next in line.
    "enrollments-waitlist-offers": {
        "task": "enrollments.tasks.lapse_waitlist_offers",
        "schedule": 10 * 60,
    },
    # The books' invariants (manage.py check_ledger), daily at a quiet hour:
    # what does not hold becomes a Finding on the staff home.
    "billing-check-ledger": {
        "task": "billing.tasks.check_ledger",
        "schedule": crontab(hour=3, minute=40),
    },
    # Card payments left processing or waiting for 3-D Secure, and Stripe events
    # not processed, are settled from Stripe's answer.
    "billing-reconcile-payments": {
        "task": "billing.tasks.reconcile_payments",
        "schedule": 3 * 60,
    },
}

STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY", "")
STRIPE_PUBLISHABLE_KEY = env("STRIPE_PUBLISHABLE_KEY", "")
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET", "").strip()
if STRIPE_SECRET_KEY and not STRIPE_WEBHOOK_SECRET:
    # With an empty secret no webhook could be trusted: Stripe's word that a
    # payment succeeded or failed would never arrive (or anyone could forge it).
    if not (DEBUG or TESTING):
        raise ImproperlyConfigured(
            "STRIPE_WEBHOOK_SECRET is empty while STRIPE_SECRET_KEY is set: online payments "
            "need it. Copy the signing secret (whsec_...) of the webhook endpoint "
            "/stripe/webhook/ from the Stripe dashboard."
        )
    # Development: a secret of this process only (signed events from elsewhere fail).
    STRIPE_WEBHOOK_SECRET = "whsec_dev_" + secrets.token_hex(16)
# Set only for the local stand-in; real Stripe uses the library's default.
STRIPE_API_BASE = env("STRIPE_API_BASE", "")
# Seconds to wait for Stripe's answer; an answer that does not come is ambiguous
# (Stripe may have acted): the same request is sent again with the same key.
STRIPE_TIMEOUT = float(env("STRIPE_TIMEOUT", "30"))
STRIPE_RETRIES = int(env("STRIPE_RETRIES", "2"))

# --- Accounts ------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["families.backends.PortalBackend"]
LOGIN_URL = "login"
# A path, not a URL name: "/" is the family dashboard on a provider's host and the
# platform's home on the bare host (which has no "dashboard" route).
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"
PASSWORD_RESET_TIMEOUT = 60 * 60 * 24
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Failed logins allowed per e-mail address (and, ten times as many, per client
# address) within the window before further attempts are refused.
LOGIN_THROTTLE_ATTEMPTS = int(env("LOGIN_THROTTLE_ATTEMPTS", "5"))
LOGIN_THROTTLE_WINDOW = int(env("LOGIN_THROTTLE_WINDOW", str(15 * 60)))

# --- Cookies: the portal runs inside an iframe on the provider's website -------
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
SESSION_COOKIE_SAMESITE = "None"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = 60 * 60 * 24 * 14
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
CSRF_COOKIE_SAMESITE = "None"
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
CSRF_FAILURE_VIEW = "portal.errors.csrf_failure"
# Cookies marked Partitioned (CHIPS) by portal.middleware.EmbeddingMiddleware.
SESSION_COOKIE_NAME = "sessionid"
# Sessions are read from the cache and written through to PostgreSQL: a
# Redis outage costs a query, never a login.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
CSRF_COOKIE_NAME = "csrftoken"
PARTITIONED_COOKIES = [SESSION_COOKIE_NAME, CSRF_COOKIE_NAME]

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_PROXY") else None
# Family pages served from the cache (families/pagecache.py); 0 turns it off.
PAGE_CACHE = env_bool("PAGE_CACHE", True)

# Processes a long PDF is laid out with (billing/pdf.py); 0: one per core.
PDF_WORKERS = int(env("PDF_WORKERS", "0"))

# The benchmark's baseline page (devtools/bench.py); never on in production.
BENCH_VIEWS = env_bool("BENCH_VIEWS", False)

SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = int(env("SECURE_HSTS_SECONDS", "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# The portal is meant to be framed by the provider's own websites: that allow
# list is sent as CSP frame-ancestors (portal.middleware), which X-Frame-Options
# cannot express, so Django's clickjacking middleware is deliberately not used.
# commands.E001: `migrate` is django-tenants' (it runs migrate_schemas) and
# `makemigrations` is django-pgtrigger's (its autodetector writes the trigger
# operations); migrate's autodetector only words a reminder about unmade
# migrations, which `makemigrations --check` covers.
SILENCED_SYSTEM_CHECKS = ["security.W002", "commands.E001"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# --- I18n, time, money ------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [
    ("en", "English"),
    ("en-gb", "English (UK)"),
    ("de", "Deutsch"),
    ("fr", "Français"),
    ("es", "Español"),
    ("sl", "Slovenščina"),
]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Dates and numbers in the active language's formats (the provider's language,
# portal.middleware.ProviderLocaleMiddleware). Our "en" is the providers'
# international English: day first and a 24-hour clock, not Django's US "en".
FORMAT_MODULE_PATH = ["portal.formats"]
USE_I18N = True
TIME_ZONE = "UTC"
USE_TZ = True

# --- Files ------------------------------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(DATA_DIR / "media")))
MEDIA_URL = "/media/"
MULTITENANT_RELATIVE_MEDIA_ROOT = "%s"
# A file larger than this is not read at all (portal.bodylimit): the form comes
# back with what was typed and a message. Forms check their own, smaller caps.
UPLOAD_MAX_BYTES = int(env("UPLOAD_MAX_BYTES", str(10 * 1024 * 1024)))
FILE_UPLOAD_HANDLERS = [
    "portal.bodylimit.CappedUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
STORAGES = {
    # Files land under MEDIA_ROOT/<schema>/ and are served only through views
    # that check the provider (and the family where they are private).
    "default": {"BACKEND": "django_tenants.files.storage.TenantFileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or TESTING
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- E-mail -----------------------------------------------------------------------
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "Family portal <no-reply@portal.test>")
EMAIL_BACKEND = env(
    "EMAIL_BACKEND",
    "portal.mail.FolderBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_FOLDER = DATA_DIR / "mail"
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = int(env("EMAIL_PORT", "25"))
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)

PHONENUMBER_DEFAULT_FORMAT = "INTERNATIONAL"
FORMS_URLFIELD_ASSUME_HTTPS = True  # Django 6 behaviour now

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "WARNING")},
}
