"""Settings, read from environment variables (see README.md, "Configuration")."""

import os
import re
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name: str, default: str) -> bool:
    value = os.getenv(name, default).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def envint(name: str, default: str) -> int:
    value = os.getenv(name, default)
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from None


DATA_DIR = Path(os.getenv("SHIKOMI_DATA_DIR", BASE_DIR / "var")).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)
# `evaluate` copies the metric modules it loads (ours are local, training/evaluation/modules) into
# a cache; keep it in the data folder, which the server and the worker can always write.
os.environ.setdefault("HF_MODULES_CACHE", str(DATA_DIR / "hf-modules"))
UPLOAD_DIR = DATA_DIR / "uploads"
ARTIFACT_DIR = DATA_DIR / "artifacts"


def _secret_key() -> str:
    if key := os.getenv("SECRET_KEY"):
        return key
    # Generated once into an ignored local file, so sessions survive restarts.
    path = Path(os.getenv("SECRET_KEY_FILE", BASE_DIR / ".secret_key"))
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = envbool("DEBUG", "false")
ALLOWED_HOSTS = [h.strip() for h in os.getenv("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [o for o in os.getenv("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "js_lib_htmx",
    "template_partials",
    "django_huey",
    "axes",
    "knox",
    "csp",
    "curation",
    "training",
    "accounts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "curation.core.middleware.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it answers a locked-out sign-in after the others have run.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # First, so a locked-out user is refused before the password is checked.
    "config.auth.RequestThrottledBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "curation.workspace.navigation.menu_context",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.getenv("DATABASE_URL", f"sqlite:///{DATA_DIR / 'shikomi.sqlite3'}"),
        conn_max_age=envint("DATABASE_CONN_MAX_AGE", "0"),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the Huey consumer write to one file: WAL lets readers go on
    # during an import, and IMMEDIATE transactions wait for the lock instead of failing.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    if test_name := os.getenv("SHIKOMI_TEST_DB"):
        # A file, not memory, so a real Huey consumer in another process sees test data.
        DATABASES["default"]["TEST"] = {"NAME": test_name}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("ja", "日本語")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.getenv("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Uploads larger than this are streamed to a temporary file, never held in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_TEMP_DIR = None

# Import limits (README.md, "Configuration").
SHIKOMI_MAX_UPLOAD_BYTES = envint("SHIKOMI_MAX_UPLOAD_BYTES", str(2 * 1024**3))
# Sources (curation/sources/): rows one SQL query may return, objects and bytes one bucket import
# may read; past them an import writes nothing and says which limit it met.
SHIKOMI_SOURCE_MAX_ROWS = envint("SHIKOMI_SOURCE_MAX_ROWS", "1000000")
SHIKOMI_SOURCE_MAX_OBJECTS = envint("SHIKOMI_SOURCE_MAX_OBJECTS", "1000")
SHIKOMI_SOURCE_MAX_BYTES = envint("SHIKOMI_SOURCE_MAX_BYTES", str(SHIKOMI_MAX_UPLOAD_BYTES))
SHIKOMI_MAX_ROW_BYTES = envint("SHIKOMI_MAX_ROW_BYTES", str(1024**2))

REDIS_URL = os.getenv("REDIS_URL", "")
# Two queues by kind of work (docs/deployment.md), each consumed by its own processes:
# `manage.py djangohuey --queue light` for imports, rules, quality scans, exports and work on
# remote servers; `--queue heavy` for training, evaluation and generation on a local model, the
# queue GPU machines consume. `make run` (`manage.py serve`) starts one consumer for each.
QUEUES = ("light", "heavy")
_QUEUE_BASE = {
    "immediate": envbool("HUEY_IMMEDIATE", "false"),
    "consumer": {
        "worker_type": "thread",
        # An idle worker polls a SQLite queue every initial_delay seconds, growing by backoff
        # up to max_delay. With Huey's own 10 s cap the first job after an idle minute waited
        # 4 to 6 s; at 0.5 s it starts within half a second, for about 4 cheap queries a second
        # while idle (bench/queue_latency.py; docs/benchmarks.md). Redis does not poll: below.
        "initial_delay": 0.1,
        "backoff": 1.15,
        "max_delay": 0.5,
    },
}
if REDIS_URL:
    # Blocking: each worker waits in BRPOP and gets a job the moment it is queued; read_timeout
    # is how long one wait lasts before the worker looks at its stop flag (and so how long a
    # stopping consumer may take to notice).
    _QUEUE_BASE |= {"huey_class": "huey.RedisHuey", "url": REDIS_URL, "blocking": True, "read_timeout": 1}
else:
    _QUEUE_BASE |= {
        "huey_class": "huey.SqliteHuey",
        "filename": os.getenv("HUEY_FILE", str(DATA_DIR / "huey.sqlite3")),
    }
DJANGO_HUEY = {
    "default": "light",
    "queues": {
        queue: _QUEUE_BASE
        | {
            "name": f"{os.getenv('HUEY_NAME', 'shikomi')}-{queue}",
            # Light work is short and many at once; a heavy task holds a device for its run.
            "consumer": _QUEUE_BASE["consumer"]
            | {"workers": envint(f"HUEY_{queue.upper()}_WORKERS", "2" if queue == "light" else "1")},
        }
        for queue in QUEUES
    },
}

# Leases (curation/core/background.py): a worker renews the heartbeat of the work it runs every
# SHIKOMI_HEARTBEAT_SECONDS; work whose heartbeat is older than SHIKOMI_LEASE_SECONDS is marked
# interrupted by any live consumer (its worker died), and a training run is queued again from
# its last checkpoint up to SHIKOMI_AUTO_RESUMES times.
SHIKOMI_HEARTBEAT_SECONDS = envint("SHIKOMI_HEARTBEAT_SECONDS", "10")
SHIKOMI_LEASE_SECONDS = envint("SHIKOMI_LEASE_SECONDS", "60")
SHIKOMI_AUTO_RESUMES = envint("SHIKOMI_AUTO_RESUMES", "3")
if not 0 < SHIKOMI_HEARTBEAT_SECONDS < SHIKOMI_LEASE_SECONDS:
    raise ImproperlyConfigured("SHIKOMI_HEARTBEAT_SECONDS must be more than 0 and less than SHIKOMI_LEASE_SECONDS.")

# One process per run (training/runs/process.py): a consumer trains and evaluates each run in a
# child process pinned to one of its devices, one run per device on the machine at a time (a lock
# file per device under DATA_DIR/locks). SHIKOMI_DEVICES: "cuda:0,cuda:1" or "cpu", or GPUs that
# train one run together, one process each ("cuda:0+cuda:1,cuda:2+cuda:3"); empty: every
# CUDA device torch sees, else the CPU. SHIKOMI_CPU_THREADS: a CPU child's threads (0: every core).
SHIKOMI_RUN_IN_CHILD = envbool("SHIKOMI_RUN_IN_CHILD", "true")
SHIKOMI_DEVICES = [d.strip() for d in os.getenv("SHIKOMI_DEVICES", "").split(",") if d.strip()]
if _bad := [d for d in SHIKOMI_DEVICES if not re.fullmatch(r"cpu|cuda:\d+(?:\+cuda:\d+)*", d)]:
    raise ImproperlyConfigured(
        "SHIKOMI_DEVICES takes 'cpu', 'cuda:N' or GPUs that train one run together ('cuda:0+cuda:1'), "
        f"separated by commas, not {', '.join(_bad)}"
    )
SHIKOMI_CPU_THREADS = envint("SHIKOMI_CPU_THREADS", "0")
# Processes one training run is launched with (torchrun, gloo on CPU); on CUDA, a device slot
# with several GPUs ("cuda:0+cuda:1" in SHIKOMI_DEVICES) gives one process per GPU.
SHIKOMI_PROCESSES_PER_RUN = envint("SHIKOMI_PROCESSES_PER_RUN", "1")

# Artifacts (a run's frozen data, checkpoints, trained model and logs; uploads kept for their
# import) go through the "artifacts" storage (curation/core/storage.py): by default the
# artifacts folder itself (ARTIFACT_DIR, and UPLOAD_DIR for uploads; nothing is copied), or an
# S3-compatible bucket when SHIKOMI_S3_BUCKET is set, shared by workers on several machines
# (django-storages; credentials from the usual AWS_* variables or the machine's role;
# AWS_S3_ADDRESSING_STYLE=path for servers without bucket host names). Any FileSystemStorage
# here is taken to be ARTIFACT_DIR: to share a folder instead, point SHIKOMI_DATA_DIR at it.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "artifacts": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(ARTIFACT_DIR)},
    },
}
if bucket := os.getenv("SHIKOMI_S3_BUCKET", ""):
    STORAGES["artifacts"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "location": os.getenv("SHIKOMI_S3_PREFIX", "artifacts"),
            "endpoint_url": os.getenv("AWS_S3_ENDPOINT_URL") or None,
            "region_name": os.getenv("AWS_DEFAULT_REGION") or None,
            "addressing_style": os.getenv("AWS_S3_ADDRESSING_STYLE") or None,
            "file_overwrite": True,
            "default_acl": None,
            "querystring_auth": True,
        },
    }

# A process that runs tasks (a consumer) gives back the cached models, tokenizers and embedding
# model it has not used for this many seconds (llm/loading.py); 0 releases them about a second
# after their last use.
try:
    SHIKOMI_MODEL_IDLE_SECONDS = float(os.getenv("SHIKOMI_MODEL_IDLE_SECONDS", "300"))
except ValueError:
    SHIKOMI_MODEL_IDLE_SECONDS = -1.0
if not 0 <= SHIKOMI_MODEL_IDLE_SECONDS < float("inf"):
    raise ImproperlyConfigured(
        "SHIKOMI_MODEL_IDLE_SECONDS must be a number of seconds, 0 or more, "
        f"not {os.getenv('SHIKOMI_MODEL_IDLE_SECONDS')!r}"
    )

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: an unauthenticated API call gets 401 with WWW-Authenticate.
        # django-rest-knox's tokens (hashed at rest), named and tied to the password.
        "accounts.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "curation.core.errors.exception_handler",
    # ?format= names an export format here, not a DRF renderer.
    "URL_FORMAT_OVERRIDE": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Shikomi API",
    "DESCRIPTION": "Prepare fine-tuning data, fine-tune, and judge the result.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Two models have a "kind" and a "status" with different choices: name their enums apart.
    "ENUM_NAME_OVERRIDES": {
        "RuleKindEnum": "curation.models.LabelingRule.Kind",
        "RuleRunStatusEnum": "curation.models.RuleRun.Status",
        # Unnamed, these collide too, and `check --deploy` (tests/test_deploy.py) reports it.
        "ExampleStatusEnum": "curation.models.Example.Status",
        "CheckStatusEnum": ["pass", "warn", "fail"],
        "ScoreEnum": [(score, score) for score in range(1, 6)],  # training.evaluation.judging.SCORES
        "LabelSourceEnum": ["person", "rules", "none"],  # where an example's label came from
        "ProjectKindEnum": "curation.models.Project.Kind",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"stamped": {"format": "[%(asctime)s] %(levelname)s:%(name)s:%(threadName)s:%(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler"},
        "stamped": {"class": "logging.StreamHandler", "formatter": "stamped"},
    },
    "root": {"handlers": ["console"], "level": os.getenv("LOG_LEVEL", "WARNING")},
    "loggers": {
        # The consumer attaches its own handler to "huey"; passing records on would print twice.
        "huey": {"propagate": False},
        # What the model cache loads, releases and keeps (llm/loading.py), in the worker's log
        # beside Huey's own lines.
        "shikomi.models": {
            "handlers": ["stamped"],
            "level": os.getenv("SHIKOMI_MODELS_LOG_LEVEL", "INFO"),
            "propagate": False,
        },
        # Heartbeats started, work marked interrupted, runs queued again (curation/models/leases.py).
        "shikomi.leases": {"handlers": ["stamped"], "level": "INFO", "propagate": False},
    },
}

# Import progress and other short-lived state shared by the web server and the consumer.
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
        }
    }

# --- Trust: connections, secrets and model folders (docs/security.md) ---
# The secrets a connection may send are exactly the environment variables whose names start
# with this prefix: an admin picks one by name, nobody can name DATABASE_URL or SECRET_KEY.
SHIKOMI_SECRET_PREFIX = os.getenv("SHIKOMI_SECRET_PREFIX", "SHIKOMI_SECRET_")
if not SHIKOMI_SECRET_PREFIX.strip():
    raise ImproperlyConfigured("SHIKOMI_SECRET_PREFIX must not be empty: it would allow every environment variable")
# Model folders of "folder" connections are paths relative to this directory, and only inside it.
SHIKOMI_MODELS_DIR = Path(os.getenv("SHIKOMI_MODELS_DIR", DATA_DIR / "models")).resolve()

# --- Trust: outbound requests (docs/security.md) ---
# Networks (10.0.0.0/8, ::1) and host names that connections may reach although they are not
# public: loopback, private and internal addresses are refused otherwise (llm/outbound.py,
# curation/connections/outbound.py).
# Link-local and cloud metadata addresses are refused whatever this says. On a single machine
# (no Redis) the default allows loopback, where a local model server usually listens; set it to
# an empty value to refuse that too.
_OUTBOUND_ALLOW_DEFAULT = "" if REDIS_URL else "127.0.0.0/8,::1"
SHIKOMI_OUTBOUND_ALLOW = [
    entry.strip() for entry in os.getenv("SHIKOMI_OUTBOUND_ALLOW", _OUTBOUND_ALLOW_DEFAULT).split(",") if entry.strip()
]
# Parsed here too, so that an entry that is neither a network nor a host name stops the start.
from curation.connections.outbound import parse_allow_list  # noqa: E402

parse_allow_list(SHIKOMI_OUTBOUND_ALLOW)

# --- Hugging Face Hub: where an admin may push an export with its data card (docs/datasets.md) ---
# The Hub's address is the operator's alone (an admin chooses the repository, never the host);
# it passes the outbound guard before anything is sent. The token is one of the operator's
# secrets (SHIKOMI_SECRET_PREFIX), chosen by name. A push runs while the admin waits: exports
# larger than SHIKOMI_HUB_MAX_BYTES (the files together, uncompressed) are refused.
SHIKOMI_HUB_ENDPOINT = os.getenv("SHIKOMI_HUB_ENDPOINT", "https://huggingface.co").rstrip("/")
SHIKOMI_HUB_MAX_BYTES = envint("SHIKOMI_HUB_MAX_BYTES", str(200 * 1024**2))

# --- Trust: limits on any single request (docs/security.md) ---
# Examples written through the pages and the API obey SHIKOMI_MAX_ROW_BYTES (above) as imported
# rows do, and every example, imported or not, has at most this many messages.
SHIKOMI_MAX_MESSAGES = envint("SHIKOMI_MAX_MESSAGES", "1000")
# A search is one LIKE per word: bound the words and the text, so no query grows without end.
SHIKOMI_MAX_SEARCH_WORDS = envint("SHIKOMI_MAX_SEARCH_WORDS", "20")
SHIKOMI_MAX_SEARCH_CHARS = envint("SHIKOMI_MAX_SEARCH_CHARS", "500")
# Ids named in one bulk request (a page of the browser sends 50; "all matching" sends none).
SHIKOMI_MAX_BULK_IDS = envint("SHIKOMI_MAX_BULK_IDS", "10000")
# What an uploaded Parquet file or dataset archive decodes to, whatever its size on disk.
SHIKOMI_MAX_DECODED_BYTES = envint("SHIKOMI_MAX_DECODED_BYTES", str(8 * 1024**3))
# Per project: unfinished generation jobs (synthetic and augmentation) and evaluations, and the
# tokens one job may ask the model for (prompts x candidates x max_new_tokens).
SHIKOMI_MAX_OPEN_GENERATION_JOBS = envint("SHIKOMI_MAX_OPEN_GENERATION_JOBS", "3")
SHIKOMI_MAX_OPEN_EVALUATIONS = envint("SHIKOMI_MAX_OPEN_EVALUATIONS", "2")
SHIKOMI_MAX_JOB_TOKENS = envint("SHIKOMI_MAX_JOB_TOKENS", "4000000")

# --- Accounts: sign-in throttling and API tokens (docs/security.md) ---
# django-axes counts failed sign-ins (the login page, the token endpoint, Django admin) per
# username *and* address, so one person mistyping cannot lock out a colleague and a stranger
# guessing cannot lock out the team. Unlock early: `manage.py axes_reset_username <name>`.
AXES_FAILURE_LIMIT = envint("SHIKOMI_LOGIN_FAILURE_LIMIT", "20")
AXES_COOLOFF_TIME = timedelta(minutes=envint("SHIKOMI_LOGIN_COOLOFF_MINUTES", "30"))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "config.auth.lockout_response"
# Behind reverse proxies the peer address is the proxy's; with SHIKOMI_PROXY_COUNT = n the
# client is the address the outermost of our n proxies put in X-Forwarded-For.
SHIKOMI_PROXY_COUNT = envint("SHIKOMI_PROXY_COUNT", "0")
AXES_CLIENT_IP_CALLABLE = "config.auth.client_ip"

KNOX_TOKEN_MODEL = "accounts.APIToken"
# Knox's own migrations create its AuthToken table even when the model is swapped for ours,
# leaving an unused table that references auth_user (PostgreSQL then refuses to empty
# auth_user alone, as the test suite's flush does). Without them nothing of knox's is created.
MIGRATION_MODULES = {"knox": None}
_token_days = envint("SHIKOMI_API_TOKEN_DAYS", "90")
REST_KNOX = {
    # `Authorization: Token <key>`, as with the tokens before; 0 days: tokens never expire.
    "AUTH_HEADER_PREFIX": "Token",
    "TOKEN_TTL": timedelta(days=_token_days) if _token_days else None,
}

# --- Deployment: HTTPS, cookies and Content-Security-Policy (docs/security.md) ---
# Served over HTTPS (by a proxy in front, or by the WSGI server): SHIKOMI_HTTPS=true turns on
# secure cookies, the redirect from http and HSTS together; each has its own variable to
# override it. Off by default, because `make run` serves plain http on 127.0.0.1, where
# secure cookies would make signing in impossible.
SHIKOMI_HTTPS = envbool("SHIKOMI_HTTPS", "false")
_https = "true" if SHIKOMI_HTTPS else "false"
SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", _https)
CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", _https)
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", _https)
# Browsers remember HSTS for this long: try a first HTTPS deployment with 3600, then a year.
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", "31536000" if SHIKOMI_HTTPS else "0")
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", _https)
# Consent to the browsers' preload list binds the whole domain and every subdomain to HTTPS:
# the domain's owner decides, so it stays off unless set.
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", "false")
# Only a proxy that sets X-Forwarded-Proto itself (and drops one a client sent) may be
# trusted with it; otherwise any client could claim https. Behind a TLS-terminating proxy
# with SHIKOMI_HTTPS, this must be on, or every request is redirected to https forever.
if envbool("SHIKOMI_TRUST_X_FORWARDED_PROTO", "false"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Always on (Django's defaults, stated so that nobody turns them off by accident).
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# No script reads the CSRF cookie: the token travels in hx-headers on <body> and in forms.
CSRF_COOKIE_HTTPONLY = True

# Content-Security-Policy (django-csp), in every setup, so that the browser tests see a
# violation as soon as a template or script needs more: scripts and styles from our own
# static files only, no inline script, no eval (htmx's is off: templates/base.html).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        # style="..." attributes carry each label's colour (style="--c: #0f766e") and a few
        # layout details across the templates; attributes cannot load anything or hold script,
        # and <style> elements stay refused (style-src above).
        "style-src-attr": ["'unsafe-inline'"],
        # Swagger UI's icons (/api/docs/) are data: URIs in its stylesheet.
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "upgrade-insecure-requests": SHIKOMI_HTTPS,
    },
}
