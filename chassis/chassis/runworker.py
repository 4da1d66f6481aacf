"""Run a service's nameko worker: ``python -m chassis.runworker <module>:<Class or factory> [run|declare]``.

A factory is called with the service's ``Settings`` and returns the worker class.

``declare`` declares the worker's queues and bindings and exits (deployment runs
it before any publisher starts); ``run`` declares them and serves until
SIGINT/SIGTERM, stopping gracefully.
"""

import eventlet

eventlet.monkey_patch()  # must precede every other import in a nameko process

import importlib
import logging
import signal
import sys

from nameko.runners import ServiceRunner

from .config import Settings
from .events import declare_topology
from .logs import configure_logging
from .nameko_deps import SETTINGS_KEY

log = logging.getLogger("chassis.runworker")


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    target, command = argv[0], (argv[1] if len(argv) > 1 else "run")
    module_name, _, attr = target.partition(":")
    found = getattr(importlib.import_module(module_name), attr)
    settings = Settings.from_env(found.name if isinstance(found, type) else module_name.split(".")[0])
    # a class is the worker; a function builds it from the settings (handlers chosen by configuration)
    worker_cls = found if isinstance(found, type) else found(settings)
    configure_logging(settings.log_level, settings.service_name + "-worker")
    queues = declare_topology(settings.amqp_uri, worker_cls)
    log.info("declared %d handler queues", len(queues))
    if command == "declare":
        return 0
    runner = ServiceRunner(config={"AMQP_URI": settings.amqp_uri, SETTINGS_KEY: settings})
    runner.add_service(worker_cls)
    stopping = eventlet.event.Event()

    def on_signal(signum, frame):
        if not stopping.ready():
            stopping.send(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    runner.start()
    log.info("worker %s started", settings.service_name)
    stopping.wait()
    log.info("worker %s stopping", settings.service_name)
    with eventlet.Timeout(10, False):
        runner.stop()
    runner.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
