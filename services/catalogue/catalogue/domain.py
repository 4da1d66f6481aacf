"""The catalogue's rules, in plain Python (no pymongo, no flask, no nameko).

Who may do what:

| operation | who |
| --- | --- |
| publish a tool version, create/rename a council | a person with role ``platform_operator`` |
| list tools, read a tool | any authenticated caller |
| list councils | operator: all; anyone else: their own |
| read a council | operator, or a caller of that council |
| a council's tools and their history | operator, or the council_admin of that council |
| enable / disable a tool in a council | the council_admin of that council (a person) |
| the tools on in a council | the gateway (any council), or a person of that council (their own audience) |
| a council's sign-in settings: read | the gateway (any council), the operator, the council_admin of that council |
| a council's sign-in settings: change | the operator, or the council_admin of that council |

Something a caller may not see answers 404, never 403: a caller of another
council gets 404 for anything of this one.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema

from chassis.identity import AUDIENCES, Identity
from chassis.problems import Conflict, Forbidden, InvalidInput, NotFound, Unprocessable

PLATFORM_OPERATOR = "platform_operator"
COUNCIL_ADMIN = "council_admin"
ENABLED, DISABLED = "enabled", "disabled"

MANIFEST_SCHEMA_PATH = Path(__file__).resolve().parents[3] / "contracts" / "tool-manifest.schema.json"


# --- records -----------------------------------------------------------------------


@dataclass(frozen=True)
class Council:
    council_id: str
    name: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ToolVersion:
    version: str
    published_at: datetime
    published_by: str


@dataclass(frozen=True)
class Tool:
    """A published tool at its current (greatest) version."""

    tool_id: str
    manifest: dict[str, Any]
    published_at: datetime

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def audiences(self) -> list[str]:
        return list(self.manifest["audiences"])

    @property
    def scopes(self) -> list[str]:
        return list(self.manifest["scopes"])


@dataclass(frozen=True)
class Enablement:
    """A tool's state in one council. ``revision`` counts the changes (optimistic concurrency)."""

    council_id: str
    tool_id: str
    enabled: bool
    audiences: list[str]
    scopes: list[str]
    changed_at: datetime
    changed_by: str
    revision: int


@dataclass(frozen=True)
class HistoryRecord:
    action: str  # enabled | disabled
    audiences: list[str]
    scopes: list[str]
    by: str
    at: datetime


@dataclass(frozen=True)
class OidcSettings:
    """A council's OpenID Connect provider for its staff (authorization code + PKCE)."""

    issuer: str
    client_id: str
    allowed_domains: list[str]
    client_secret_env: str | None = None  # the name of a gateway env var holding the secret; never the secret


@dataclass(frozen=True)
class SignInSettings:
    """How a council's people sign in. ``updated_at``/``updated_by`` are None while never set."""

    council_id: str
    oidc: OidcSettings | None = None
    staff_totp_required: bool = False
    updated_at: datetime | None = None
    updated_by: str | None = None


@dataclass(frozen=True)
class Change:
    """One enable/disable, as the store must write it: the new state, the history record, the event."""

    council_id: str
    tool_id: str
    action: str
    audiences: list[str]  # enabled: the new audiences; disabled: those switched off
    scopes: list[str]  # enabled: the scopes granted; disabled: those withdrawn
    by: str
    at: datetime
    expected_revision: int  # the revision the change was decided on; 0 when never enabled


@dataclass(frozen=True)
class CouncilTool:
    tool: Tool
    enablement: Enablement | None

    @property
    def enabled(self) -> bool:
        return self.enablement is not None and self.enablement.enabled


@dataclass(frozen=True)
class EnabledTool:
    tool: Tool
    audiences: list[str]
    scopes: list[str]


@dataclass
class ToolDetail:
    tool: Tool
    versions: list[ToolVersion] = field(default_factory=list)


# --- the repository's interface -------------------------------------------------------


class CatalogueStore(ABC):
    """What the rules need from storage; ``store.MongoCatalogueStore`` and the test fake implement it."""

    @abstractmethod
    def get_council(self, council_id: str) -> Council | None: ...

    @abstractmethod
    def list_councils(self) -> list[Council]: ...

    @abstractmethod
    def put_council(self, council_id: str, name: str, who: Identity, at: datetime) -> tuple[Council, bool]:
        """Create or rename; True when created."""

    @abstractmethod
    def get_tool(self, tool_id: str) -> Tool | None: ...

    @abstractmethod
    def list_tools(self) -> list[Tool]: ...

    @abstractmethod
    def list_versions(self, tool_id: str) -> list[ToolVersion]:
        """Every published version, newest first."""

    @abstractmethod
    def publish(self, manifest: dict[str, Any], who: Identity, at: datetime, expected_current: str | None) -> Tool:
        """Store a new version and make it current; ``Conflict`` when the current one is no longer
        ``expected_current`` (a concurrent publish) or the version exists already."""

    @abstractmethod
    def get_enablement(self, council_id: str, tool_id: str) -> Enablement | None: ...

    @abstractmethod
    def list_enablements(self, council_id: str) -> list[Enablement]: ...

    @abstractmethod
    def apply_change(self, change: Change, who: Identity) -> Enablement:
        """Write the new state, the history record and the outbox event in one transaction;
        ``Conflict`` when the enablement's revision is no longer ``change.expected_revision``."""

    @abstractmethod
    def history(self, council_id: str, tool_id: str) -> list[HistoryRecord]:
        """Newest first."""

    @abstractmethod
    def get_sign_in(self, council_id: str) -> SignInSettings | None: ...

    @abstractmethod
    def put_sign_in(self, settings: SignInSettings, who: Identity) -> SignInSettings:
        """Replace a council's sign-in settings (audited)."""


# --- semver ------------------------------------------------------------------------------

_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)


def semver_key(version: str) -> tuple:
    """A sort key giving semver precedence (build metadata ignored; a pre-release sorts before its release)."""
    match = _SEMVER.match(version)
    if not match:
        raise InvalidInput(f"version: {version!r} is not a semantic version (MAJOR.MINOR.PATCH).")
    major, minor, patch, pre = match.groups()
    core = (int(major), int(minor), int(patch))
    if pre is None:
        return (*core, 1, ())
    idents = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (*core, 0, idents)


def check_new_version(new: str, existing: list[str]) -> None:
    """A new version must be greater than every published one (409 otherwise)."""
    new_key = semver_key(new)
    for old in existing:
        if semver_key(old) == new_key:
            raise Conflict(f"Version {new} is already published (as {old}); publish a greater version.")
    if existing:
        current = max(existing, key=semver_key)
        if new_key < semver_key(current):
            raise Conflict(f"Version {new} is lower than the current version {current}; publish a greater version.")


# --- manifests ------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _manifest_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(MANIFEST_SCHEMA_PATH.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _field_path(error: jsonschema.ValidationError) -> str:
    out = ""
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(manifest)"


def validate_manifest(manifest: dict[str, Any]) -> None:
    """400 naming the failing field when the manifest breaks tool-manifest.schema.json."""
    errors = sorted(_manifest_validator().iter_errors(manifest), key=lambda e: (list(e.absolute_path), e.message))
    if errors:
        error = jsonschema.exceptions.best_match(errors) or errors[0]
        raise InvalidInput(f"{_field_path(error)}: {error.message}")


# --- who may do what --------------------------------------------------------------------------


def is_operator(who: Identity) -> bool:
    return who.is_person and who.has_role(PLATFORM_OPERATOR)


def require_operator(who: Identity) -> None:
    if not is_operator(who):
        raise Forbidden("Only a platform operator may do this.")


def is_admin_of(who: Identity, council_id: str) -> bool:
    return who.is_person and who.council_id == council_id and who.has_role(COUNCIL_ADMIN)


def require_council_admin(who: Identity, council_id: str) -> None:
    """Changing a council's tools: its council admin only."""
    if is_admin_of(who, council_id):
        return
    if is_operator(who) or who.council_id == council_id:
        raise Forbidden("Only a council administrator of this council may switch its tools on or off.")
    raise NotFound("No such council.")


def require_council_admin_or_operator(who: Identity, council_id: str) -> None:
    """Reading a council's tools and history."""
    if is_operator(who) or is_admin_of(who, council_id):
        return
    if who.council_id == council_id:
        raise Forbidden("Only a council administrator of this council may see this.")
    raise NotFound("No such council.")


def may_see_council(who: Identity, council_id: str) -> bool:
    return is_operator(who) or who.council_id == council_id


# --- operations ------------------------------------------------------------------------------


def now() -> datetime:
    """UTC, to the millisecond (what MongoDB keeps), so what a write answers equals what a read gives."""
    t = datetime.now(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def _council(store: CatalogueStore, council_id: str) -> Council:
    council = store.get_council(council_id)
    if council is None:
        raise NotFound("No such council.")
    return council


def _tool(store: CatalogueStore, tool_id: str) -> Tool:
    tool = store.get_tool(tool_id)
    if tool is None:
        raise NotFound("No such tool.")
    return tool


def list_tools(store: CatalogueStore, who: Identity) -> list[Tool]:
    return sorted(store.list_tools(), key=lambda t: t.tool_id)


def get_tool(store: CatalogueStore, who: Identity, tool_id: str) -> ToolDetail:
    return ToolDetail(_tool(store, tool_id), store.list_versions(tool_id))


def publish_tool(store: CatalogueStore, who: Identity, tool_id: str, manifest: dict[str, Any]) -> tuple[ToolDetail, bool]:
    """Publish a version; True when the tool is new."""
    require_operator(who)
    validate_manifest(manifest)
    if manifest["id"] != tool_id:
        raise InvalidInput(f"id: the manifest's id {manifest['id']!r} is not the tool id in the path {tool_id!r}.")
    current = store.get_tool(tool_id)
    existing = [v.version for v in store.list_versions(tool_id)] if current else []
    check_new_version(manifest["version"], existing)
    tool = store.publish(manifest, who, now(), current.version if current else None)
    return ToolDetail(tool, store.list_versions(tool_id)), current is None


def list_councils(store: CatalogueStore, who: Identity) -> list[Council]:
    if is_operator(who):
        return sorted(store.list_councils(), key=lambda c: c.council_id)
    if not who.council_id:
        return []
    own = store.get_council(who.council_id)
    return [own] if own else []


def get_council(store: CatalogueStore, who: Identity, council_id: str) -> Council:
    if not may_see_council(who, council_id):
        raise NotFound("No such council.")
    return _council(store, council_id)


def put_council(store: CatalogueStore, who: Identity, council_id: str, name: str) -> tuple[Council, bool]:
    require_operator(who)
    name = name.strip()
    if not name:
        raise InvalidInput("name: a council needs a name.")
    return store.put_council(council_id, name, who, now())


def council_tools(store: CatalogueStore, who: Identity, council_id: str) -> list[CouncilTool]:
    require_council_admin_or_operator(who, council_id)
    _council(store, council_id)
    states = {e.tool_id: e for e in store.list_enablements(council_id)}
    return [CouncilTool(tool, states.get(tool.tool_id)) for tool in list_tools(store, who)]


def _ordered_subset(asked: list[str], offered: list[str], what: str) -> list[str]:
    unknown = [x for x in asked if x not in offered]
    if unknown:
        raise Unprocessable(
            f"{what}: {', '.join(unknown)} not among the tool's {what} ({', '.join(offered) or 'none'})."
        )
    return [x for x in offered if x in asked]


def enable_tool(store: CatalogueStore, who: Identity, council_id: str, tool_id: str,
                audiences: list[str], scopes: list[str]) -> Enablement:
    """Switch a tool on (or change it) for audiences, granting scopes."""
    require_council_admin(who, council_id)
    _council(store, council_id)
    tool = _tool(store, tool_id)
    if not audiences:
        raise Unprocessable("audiences: switch the tool on for at least one audience (or disable it).")
    audiences = _ordered_subset(audiences, tool.audiences, "audiences")
    scopes = _ordered_subset(scopes, tool.scopes, "scopes")
    current = store.get_enablement(council_id, tool_id)
    if current and current.enabled and current.audiences == audiences and current.scopes == scopes:
        return current  # nothing changes: no history, no event
    change = Change(council_id, tool_id, ENABLED, audiences, scopes, who.subject, now(),
                    current.revision if current else 0)
    return store.apply_change(change, who)


def disable_tool(store: CatalogueStore, who: Identity, council_id: str, tool_id: str) -> bool:
    """Switch a tool off; False when it was not on (nothing recorded). Never deletes data."""
    require_council_admin(who, council_id)
    _council(store, council_id)
    _tool(store, tool_id)
    current = store.get_enablement(council_id, tool_id)
    if current is None or not current.enabled:
        return False
    change = Change(council_id, tool_id, DISABLED, current.audiences, current.scopes, who.subject, now(),
                    current.revision)
    store.apply_change(change, who)
    return True


def tool_history(store: CatalogueStore, who: Identity, council_id: str, tool_id: str) -> list[HistoryRecord]:
    require_council_admin_or_operator(who, council_id)
    _council(store, council_id)
    _tool(store, tool_id)
    return store.history(council_id, tool_id)


def enabled_tools(store: CatalogueStore, who: Identity, council_id: str, audience: str | None) -> list[EnabledTool]:
    """The tools on in a council (for an audience). A person always gets their own audience's."""
    if who.is_gateway:
        pass
    elif who.is_person and who.council_id == council_id:
        audience = who.audience
        if audience not in AUDIENCES:
            return []
    else:
        raise NotFound("No such council.")
    _council(store, council_id)
    tools = {t.tool_id: t for t in store.list_tools()}
    out = []
    for state in sorted(store.list_enablements(council_id), key=lambda e: e.tool_id):
        tool = tools.get(state.tool_id)
        if tool is None or not state.enabled:
            continue
        # a later version may have dropped an audience or a scope: never grant more than it asks for now
        on_for = [a for a in tool.audiences if a in state.audiences]
        granted = [s for s in tool.scopes if s in state.scopes]
        if not on_for or (audience is not None and audience not in on_for):
            continue
        out.append(EnabledTool(tool, on_for, granted))
    return out


# --- sign-in settings -------------------------------------------------------------------------

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
_SECRET_ENV = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")


def _check_issuer(issuer: str) -> str:
    """https, or http on loopback only (a development provider); no query or fragment."""
    from urllib.parse import urlsplit

    parts = urlsplit(issuer)
    host = (parts.hostname or "").lower()
    loopback = host in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise InvalidInput("oidc.issuer: must be an https URL (http only on loopback, for development).")
    if not host or parts.query or parts.fragment or parts.username or parts.password:
        raise InvalidInput("oidc.issuer: must be a plain URL with a host and no query, fragment or credentials.")
    return issuer.rstrip("/")


def parse_oidc(body: dict[str, Any] | None) -> OidcSettings | None:
    if body is None:
        return None
    domains = sorted({d.strip().lower() for d in body["allowed_domains"]})
    bad = [d for d in domains if not _DOMAIN.match(d)]
    if bad or not domains:
        raise InvalidInput(f"oidc.allowed_domains: not e-mail domains: {', '.join(bad) or '(none)'}.")
    secret_env = body.get("client_secret_env")
    if secret_env is not None and not _SECRET_ENV.match(secret_env):
        raise InvalidInput("oidc.client_secret_env: the name of an environment variable (A-Z, 0-9, _).")
    return OidcSettings(_check_issuer(body["issuer"].strip()), body["client_id"].strip(), domains, secret_env)


def _require_sign_in_reader(who: Identity, council_id: str) -> None:
    if who.is_gateway or is_operator(who) or is_admin_of(who, council_id):
        return
    if who.council_id == council_id:
        raise Forbidden("Only a council administrator of this council may see this.")
    raise NotFound("No such council.")


def get_sign_in(store: CatalogueStore, who: Identity, council_id: str) -> SignInSettings:
    """A council's sign-in settings (defaults while never set): the gateway, the operator, its admin."""
    _require_sign_in_reader(who, council_id)
    _council(store, council_id)
    return store.get_sign_in(council_id) or SignInSettings(council_id)


def put_sign_in(store: CatalogueStore, who: Identity, council_id: str, body: dict[str, Any]) -> SignInSettings:
    """Replace a council's sign-in settings: the operator or the council's admin."""
    if not (is_operator(who) or is_admin_of(who, council_id)):
        if who.council_id == council_id:
            raise Forbidden("Only a council administrator of this council may change how its people sign in.")
        raise NotFound("No such council.")
    _council(store, council_id)
    settings = SignInSettings(council_id, parse_oidc(body.get("oidc")), bool(body.get("staff_totp_required")),
                              now(), who.subject)
    return store.put_sign_in(settings, who)
