"""gunicorn settings shared by every web process (ASGI via uvicorn-worker).

Registration in Consul happens once per process group, in the master: after
the workers are up (``when_ready``) and before exit (``on_exit``).
"""

import os

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "uvicorn_worker.UvicornWorker"
graceful_timeout = 10
timeout = int(os.environ.get("WORKER_TIMEOUT", "60"))
keepalive = 5
accesslog = None  # access lines carry paths; request logging is the app's, ids only
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()


def _settings():
    from chassis.config import Settings

    return Settings.from_env(os.environ.get("SERVICE_NAME", "unknown"))


def when_ready(server):
    from chassis.discovery import register

    register(_settings())


def on_exit(server):
    from chassis.discovery import deregister

    try:
        deregister(_settings())
    except Exception as exc:
        server.log.warning("consul deregistration failed: %s", type(exc).__name__)
