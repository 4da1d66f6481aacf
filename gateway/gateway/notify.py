"""Sending people their one-time codes, behind one port.

``FileNotifier`` (development and tests) appends one JSON line per message to
``NOTIFY_FILE``; ``GovUkNotifyClient`` (production) calls the GOV.UK Notify
API (``POST /v2/notifications/email`` or ``/sms``, a JWT signed with the API
key's secret, a template id per message kind). Nothing else in the gateway
knows how a message travels.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

log = logging.getLogger(__name__)

KINDS = ("invitation", "password_reset")
_PHONE = re.compile(r"^\+?[0-9 ]{7,20}$")


class NotifyError(Exception):
    """The message could not be handed over."""


class Notifier(ABC):
    @abstractmethod
    async def send(self, kind: str, to: str, personalisation: dict[str, str]) -> None:
        """Send message ``kind`` (one of ``KINDS``) to an e-mail address or phone number."""


class FileNotifier(Notifier):
    """Development: one JSON line per message ``{id, kind, to, personalisation, sent_at}``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    async def send(self, kind, to, personalisation):
        line = json.dumps({"id": uuid.uuid4().hex, "kind": kind, "to": to, "personalisation": personalisation,
                           "sent_at": time.time()})

        def write() -> None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as out:
                out.write(line + "\n")

        await asyncio.to_thread(write)
        log.info("notification %s written to %s", kind, self.path)


class GovUkNotifyClient(Notifier):
    """GOV.UK Notify, API-shaped: ``api_key`` is ``{name}-{service id}-{secret key}`` (both UUIDs)."""

    def __init__(self, api_key: str, templates: dict[str, str], http: Callable[[], aiohttp.ClientSession],
                 base_url: str = "https://api.notifications.service.gov.uk", clock: Callable[[], float] = time.time):
        if len(api_key) < 74:
            raise ValueError("NOTIFY_API_KEY is not a GOV.UK Notify API key")
        self.service_id = api_key[-73:-37]
        self.secret = api_key[-36:]
        self.templates = templates
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.clock = clock

    def _auth(self) -> str:
        from joserfc import jwt
        from joserfc.jwk import OctKey

        token = jwt.encode({"alg": "HS256", "typ": "JWT"}, {"iss": self.service_id, "iat": int(self.clock())},
                           OctKey.import_key(self.secret))
        return "Bearer " + token

    def request_for(self, kind: str, to: str, personalisation: dict[str, str]) -> tuple[str, dict[str, Any]]:
        template = self.templates.get(kind)
        if not template:
            raise NotifyError(f"no GOV.UK Notify template for {kind}")
        if _PHONE.match(to):
            return "/v2/notifications/sms", {"phone_number": to, "template_id": template,
                                              "personalisation": personalisation}
        return "/v2/notifications/email", {"email_address": to, "template_id": template,
                                            "personalisation": personalisation}

    async def send(self, kind, to, personalisation):
        path, body = self.request_for(kind, to, personalisation)
        try:
            async with self.http().post(self.base_url + path, json=body,
                                        headers={"Authorization": self._auth()}) as resp:
                if resp.status != 201:
                    raise NotifyError(f"GOV.UK Notify answered {resp.status}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise NotifyError(f"GOV.UK Notify unreachable: {type(exc).__name__}") from exc


def parse_templates(value: str) -> dict[str, str]:
    """``invitation=<uuid>,password_reset=<uuid>``"""
    out = {}
    for part in (value or "").split(","):
        kind, _, template = part.partition("=")
        if kind.strip() and template.strip():
            out[kind.strip()] = template.strip()
    return out
