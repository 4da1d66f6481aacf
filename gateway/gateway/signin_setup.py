"""Builds the sign-in parts of one gateway process (called from ``Gateway.startup``)."""

from __future__ import annotations

import logging

from .notify import FileNotifier, GovUkNotifyClient, Notifier, NotifyError, parse_templates
from .oidc import OidcRelyingParty
from .passwords import Passwords
from .ratelimit import Limit, Limiter
from .signin import SignIn
from .signin_store import MemorySignInStore, MongoSignInStore, SignInStore

log = logging.getLogger(__name__)

PERSON_SIGNED_OUT = ("gateway", "person_signed_out")


class UnconfiguredNotifier(Notifier):
    async def send(self, kind, to, personalisation):
        raise NotifyError("no notifier is configured")


def build_notifier(gateway) -> Notifier:
    config = gateway.config
    if config.notifier == "govuk":
        try:
            return GovUkNotifyClient(config.notify_api_key, parse_templates(config.notify_templates),
                                     lambda: gateway.http, config.notify_base_url)
        except ValueError:
            log.error("NOTIFIER=govuk without a valid NOTIFY_API_KEY: no invitation or reset can be sent")
            return UnconfiguredNotifier()
    if gateway.settings.production:
        log.warning("NOTIFIER=%s in production: codes are written to %s", config.notifier, config.notify_file)
    return FileNotifier(config.notify_file)


def build_signin(gateway, db=None, store: SignInStore | None = None, notifier: Notifier | None = None) -> SignIn:
    """The sign-in flows of this process: MongoDB when ``db`` is given, else memory (tests)."""
    config = gateway.config
    store = store or (MongoSignInStore(db) if db is not None else MemorySignInStore())
    limits = {
        "login": Limit(config.max_failures, config.quiet_seconds, config.lock_seconds, config.max_lock_seconds),
        "ip": Limit(config.ip_max_failures, config.quiet_seconds, config.lock_seconds, config.max_lock_seconds),
    }
    signin = SignIn(store, gateway.sessions, gateway.access, gateway.access.catalogue,
                    notifier or build_notifier(gateway), Limiter(store, limits), Passwords(),
                    gateway.identity_provider, config.machine_token_seconds)
    signin.oidc = OidcRelyingParty(lambda: gateway.http, gateway.settings.production)
    return signin
