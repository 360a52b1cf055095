"""HubSpot, through the official `hubspot-api-client` (its host is HUBSPOT_API_URL, so tests point it at a stand-in).

What a lead's changes do there (each an outbox notice, bot/services/tracking.py, sent by bot/integrations/delivery.py
in order per lead; what is written is read from the store when it is sent):

- raise: the contact upserted by email (an account lead's company too, by domain, and the two associated) with
  `pql_score`, `pql_tier`, `pql_status`, `pql_signals` (the evidence sentences) and `pql_triggered_at`; a task for the
  rep's HubSpot owner with the signal summary, the talk track and a link to the Slack alert, due at the SLA deadline,
  associated with the contact;
- owner (assigned, claimed, reassigned): the task's owner, due date and body (the alert's link, once posted);
- touch: an engagement on the contact of the touch's channel (an email, a call; LinkedIn as a note) with its note;
- disposition: `pql_disposition` and `pql_status` on the contact, the task completed;
- close (converted, opted out): `pql_status`, the task completed.

Exactly once: the ids of what pqlbot made are kept in crm_records the moment HubSpot answers, so a retry updates
them instead of making more; contacts and companies are searched by email and domain before one is created; and a
task or engagement whose earlier attempt may have reached HubSpot unanswered (the notice has attempts) is searched
for (its subject, its timestamp) before it is created. Updates set values, so repeating one changes nothing.

Reps are matched to HubSpot owners by email (PQL_REP_EMAILS, `pqlbot crm owners`); a rep with no owner leaves the task
unowned. Errors: 401, 403, a missing property (`pqlbot crm setup` makes them) and other 4xx won't heal; 429 waits
for Retry-After (HubSpot's limit is per app); 5xx and connection failures are retried.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

import sqlalchemy as sa
import urllib3
from hubspot import Client
from sqlalchemy.dialects import postgresql, sqlite
from urllib3.util.retry import Retry

from bot import store
from bot.domain.kit import EMAIL_LABELS, TOUCH_CHANNELS
from bot.integrations.errors import TryLater, WontHeal, by_status
from bot.settings import Settings
from bot.store.models import CrmRecord, Notice, Pql, Touch, TrialUser
from templates import render, sentences

log = logging.getLogger(__name__)
words = sentences("crm/words.j2")
_RECORDS = CrmRecord.__table__

GROUP = "pqlbot"
#: The custom properties `pqlbot crm setup` makes on contacts and companies: name -> (label, type, field type).
PROPERTIES = {
    "pql_score": ("PQL score", "number", "number"),
    "pql_tier": ("PQL tier", "string", "text"),
    "pql_status": ("PQL status", "string", "text"),
    "pql_signals": ("PQL signals", "string", "textarea"),
    "pql_triggered_at": ("PQL triggered at", "datetime", "date"),
    "pql_disposition": ("PQL disposition", "string", "text"),
}
OBJECTS = ("contacts", "companies")
#: A touch's channel -> the engagement object it is logged as, and its properties' prefix.
ENGAGEMENTS = {"email": "emails", "call": "calls", "linkedin": "notes"}
OWNERS_FOR = 600.0  # seconds the owner list is kept before it is read again
TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Owner:
    id: str
    email: str | None
    name: str


class HubSpot:
    """A small client over hubspot-api-client: the calls pqlbot makes, each failure mapped to TryLater or WontHeal."""

    def __init__(self, token: str, url: str = "https://api.hubapi.com", *, rep_emails: dict[str, str] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        no_retries = Retry(total=0, connect=0, read=0, redirect=0, status=0, raise_on_status=False)  # the outbox's
        self.client = Client.create(access_token=token, host=url.rstrip("/"), retry=no_retries)
        self.rep_emails = {rep: email.lower() for rep, email in (rep_emails or {}).items()}
        self._clock, self._owners, self._owners_at = clock, None, 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> HubSpot:
        return cls(settings.hubspot_access_token.get_secret_value(), settings.hubspot_api_url,
                   rep_emails=settings.rep_emails)

    # -- calls -------------------------------------------------------------------------------------------------

    def call(self, fn: Callable, *args, **kwargs):  # noqa: ANN201 (whatever the client answers)
        try:
            return fn(*args, _request_timeout=TIMEOUT, **kwargs)
        except urllib3.exceptions.HTTPError as error:
            raise TryLater(f"hubspot_{type(error).__name__}") from None
        except Exception as error:
            status = getattr(error, "status", None)
            if not isinstance(status, int) or not hasattr(error, "body"):
                raise
            if status == 0:
                raise TryLater("hubspot_connection") from None
            body = error.body if isinstance(error.body, bytes | str) else b""
            body = body.encode() if isinstance(body, str) else body
            if status == 400 and b"PROPERTY_DOESNT_EXIST" in body:
                raise WontHeal("missing_property") from None
            raise by_status(status, error.headers, what="hubspot") from None

    @property
    def objects(self):  # noqa: ANN201
        return self.client.crm.objects

    def create(self, object_type: str, properties: dict) -> str:
        from hubspot.crm.objects import SimplePublicObjectInputForCreate

        made = self.call(self.objects.basic_api.create, object_type,
                         SimplePublicObjectInputForCreate(properties=_strings(properties), associations=[]))
        return str(made.id)

    def update(self, object_type: str, object_id: str, properties: dict) -> None:
        from hubspot.crm.objects import SimplePublicObjectInput

        self.call(self.objects.basic_api.update, object_type, object_id,
                  SimplePublicObjectInput(properties=_strings(properties)))

    def find(self, object_type: str, name: str, value: str) -> str | None:
        """The first object whose property `name` equals `value` (HubSpot's search, EQ)."""
        from hubspot.crm.objects import Filter, FilterGroup, PublicObjectSearchRequest

        request = PublicObjectSearchRequest(filter_groups=[FilterGroup(filters=[
            Filter(property_name=name, operator="EQ", value=value)])], properties=[name], limit=1)
        found = self.call(self.objects.search_api.do_search, object_type, request)
        return str(found.results[0].id) if found.results else None

    def associate(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        self.call(self.client.crm.associations.v4.basic_api.create_default, from_type, from_id, to_type, to_id)

    def owners(self, *, fresh: bool = False) -> list[Owner]:
        """HubSpot's owners (users who may own records), read again after OWNERS_FOR seconds."""
        if fresh or self._owners is None or self._clock() - self._owners_at > OWNERS_FOR:
            found, after = [], None
            while True:
                page = self.call(self.client.crm.owners.owners_api.get_page, limit=100, archived=False,
                                 **({"after": after} if after else {}))
                found += [Owner(str(o.id), (o.email or "").lower() or None,
                                " ".join(p for p in (o.first_name, o.last_name) if p) or (o.email or str(o.id)))
                          for o in page.results]
                after = page.paging.next.after if page.paging and page.paging.next else None
                if not after:
                    break
            self._owners, self._owners_at = found, self._clock()
        return self._owners

    def owner_of(self, rep_id: str | None) -> str | None:
        """The HubSpot owner id of a rep, by their email; None when they have none."""
        email = self.rep_emails.get(rep_id or "")
        return next((o.id for o in self.owners() if email and o.email == email), None)

    def pages(self, object_type: str, properties: list[str]) -> Iterator:
        """Every object of a type with these properties, page by page."""
        after = None
        while True:
            page = self.call(self.objects.basic_api.get_page, object_type, limit=100, properties=properties,
                             archived=False, **({"after": after} if after else {}))
            yield from page.results
            after = page.paging.next.after if page.paging and page.paging.next else None
            if not after:
                return

    # -- `pqlbot crm setup` ------------------------------------------------------------------------------------

    def setup(self) -> list[str]:
        """Make the pqlbot property group and the pql_* properties on contacts and companies where missing;
        returns what was made ("contacts.pql_score", ...). Running it again makes nothing."""
        from hubspot.crm.properties import PropertyCreate, PropertyGroupCreate

        made = []
        for object_type in OBJECTS:
            api = self.client.crm.properties
            groups = {g.name for g in self.call(api.groups_api.get_all, object_type).results}
            if GROUP not in groups:
                self.call(api.groups_api.create, object_type,
                          PropertyGroupCreate(name=GROUP, label="pqlbot", display_order=-1))
            have = {p.name for p in self.call(api.core_api.get_all, object_type, archived=False).results}
            for name, (label, kind, field_type) in PROPERTIES.items():
                if name in have:
                    continue
                self.call(api.core_api.create, object_type, PropertyCreate(
                    name=name, label=label, type=kind, field_type=field_type, group_name=GROUP,
                    description=f"Set by pqlbot: {label.lower()}."))
                made.append(f"{object_type}.{name}")
        return made


def _strings(properties: dict) -> dict[str, str]:
    return {name: "" if value is None else str(value) for name, value in properties.items()}


def _ms(at: datetime) -> str:
    return str(int(at.timestamp() * 1000))


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- the ids pqlbot made -------------------------------------------------------------------------------------------

def known(engine: sa.Engine, key: str) -> str | None:
    with engine.connect() as connection:
        return connection.scalar(sa.select(_RECORDS.c.object_id).where(_RECORDS.c.key == key))


def remember(engine: sa.Engine, key: str, object_id: str, now: datetime) -> None:
    with engine.begin() as connection:
        module = postgresql if connection.dialect.name == "postgresql" else sqlite
        connection.execute(module.insert(_RECORDS).values(key=key, object_id=object_id, at=now)
                           .on_conflict_do_update(index_elements=["key"], set_={"object_id": object_id}))


# -- a lead's changes ----------------------------------------------------------------------------------------------

@dataclass(slots=True)
class _Lead:
    pql: Pql
    user: TrialUser | None
    domain: str | None
    touch: Touch | None


def _read(engine: sa.Engine, notice: Notice) -> _Lead:
    with store.session(engine) as session:
        pql = session.get(Pql, notice.pql_id)
        if pql is None:
            raise WontHeal("lead_gone")
        user = session.get(TrialUser, pql.user_id)
        touch = session.get(Touch, notice.payload["touch_id"]) if notice.payload.get("touch_id") else None
        domain = None
        if pql.level == "account":
            key = pql.account_key or ""
            domain = key.removeprefix("domain:") if key.startswith("domain:") else (user.domain if user else None)
        return _Lead(pql, user, domain, touch)


class Sync:
    """What each change does in HubSpot (see the module docstring)."""

    def __init__(self, hub: HubSpot, *, tz: tzinfo) -> None:
        self.hub, self.tz = hub, tz

    def __call__(self, engine: sa.Engine, notice: Notice, now: datetime) -> None:
        lead = _read(engine, notice)
        op = notice.payload["op"]
        getattr(self, "raise_" if op == "raise" else op)(engine, notice, lead, now)

    # -- the ops

    def raise_(self, engine: sa.Engine, notice: Notice, lead: _Lead, now: datetime) -> None:
        contact = self._contact(engine, lead, now)
        if lead.domain:
            company = self._company(engine, lead, now)
            if contact:
                self.hub.associate("contacts", contact, "companies", company)
        task = known(engine, f"task:{lead.pql.id}")
        properties = self._task(lead, now)
        if task is None and notice.attempts:  # an earlier attempt may have made it, unanswered
            task = self.hub.find("tasks", "hs_task_subject", properties["hs_task_subject"])
        if task is None:
            task = self.hub.create("tasks", {**properties, "hs_task_status": "NOT_STARTED"})
        else:
            self.hub.update("tasks", task, properties)
        remember(engine, f"task:{lead.pql.id}", task, now)
        if contact:
            self.hub.associate("tasks", task, "contacts", contact)

    def owner(self, engine: sa.Engine, notice: Notice, lead: _Lead, now: datetime) -> None:
        task = known(engine, f"task:{lead.pql.id}")
        if task is None:
            log.warning("lead %s has no HubSpot task to give its owner", lead.pql.id)
            return
        self.hub.update("tasks", task, self._task(lead, now))

    def touch(self, engine: sa.Engine, notice: Notice, lead: _Lead, now: datetime) -> None:
        touch = lead.touch
        if touch is None:
            raise WontHeal("touch_gone")
        key = f"touch:{touch.id}"
        if known(engine, key):
            return
        object_type = ENGAGEMENTS[touch.channel]
        owner = self.hub.owner_of(touch.rep_id)
        note = touch.note or ""
        stamp = _ms(touch.at)
        properties = {"hs_timestamp": stamp, "hubspot_owner_id": owner or ""}
        if touch.channel == "email":
            subject = f"{lead.pql.ref}: {EMAIL_LABELS.get(touch.email_key or '', 'Email')}"
            properties |= {"hs_email_direction": "EMAIL", "hs_email_status": "SENT", "hs_email_subject": subject,
                           "hs_email_text": note}
        elif touch.channel == "call":
            properties |= {"hs_call_title": f"{lead.pql.ref}: call", "hs_call_direction": "OUTBOUND",
                           "hs_call_body": note}
        else:
            properties |= {"hs_note_body": f"{TOUCH_CHANNELS[touch.channel]} ({lead.pql.ref}): {note}".rstrip(": ")}
        made = self.hub.find(object_type, "hs_timestamp", stamp) if notice.attempts else None
        made = made or self.hub.create(object_type, properties)
        remember(engine, key, made, now)
        contact = self._contact_id(engine, lead)
        if contact:
            self.hub.associate(object_type, made, "contacts", contact)

    def disposition(self, engine: sa.Engine, notice: Notice, lead: _Lead, now: datetime) -> None:
        self._finish(engine, lead, {"pql_status": lead.pql.state,
                                    "pql_disposition": notice.payload.get("disposition") or lead.pql.disposition})

    def close(self, engine: sa.Engine, notice: Notice, lead: _Lead, now: datetime) -> None:
        self._finish(engine, lead, {"pql_status": lead.pql.state})

    # -- parts

    def _finish(self, engine: sa.Engine, lead: _Lead, properties: dict) -> None:
        contact = self._contact_id(engine, lead)
        if contact:
            self.hub.update("contacts", contact, properties)
        if task := known(engine, f"task:{lead.pql.id}"):
            self.hub.update("tasks", task, {"hs_task_status": "COMPLETED"})

    def _contact_id(self, engine: sa.Engine, lead: _Lead) -> str | None:
        email = (lead.user.email or "").lower() if lead.user else ""
        return known(engine, f"contact:{email}") if email else None

    def _contact(self, engine: sa.Engine, lead: _Lead, now: datetime) -> str | None:
        user = lead.user
        email = (user.email or "").lower() if user else ""
        if not email:
            return None
        properties = {"email": email, **self._pql_properties(lead)}
        if user.first_name:
            properties["firstname"] = user.first_name
        if user.last_name:
            properties["lastname"] = user.last_name
        if user.title:
            properties["jobtitle"] = user.title
        return self._upsert(engine, "contacts", f"contact:{email}", "email", email, properties, now)

    def _company(self, engine: sa.Engine, lead: _Lead, now: datetime) -> str:
        properties = {"domain": lead.domain, **self._pql_properties(lead)}
        if lead.user and lead.user.company_name:
            properties["name"] = lead.user.company_name
        return self._upsert(engine, "companies", f"company:{lead.domain}", "domain", lead.domain, properties, now)

    def _upsert(self, engine: sa.Engine, object_type: str, key: str, by: str, value: str, properties: dict,
                now: datetime) -> str:
        object_id = known(engine, key) or self.hub.find(object_type, by, value)
        if object_id is None:
            object_id = self.hub.create(object_type, properties)
        else:
            self.hub.update(object_type, object_id, properties)
        remember(engine, key, object_id, now)
        return object_id

    def _pql_properties(self, lead: _Lead) -> dict:
        pql = lead.pql
        return {"pql_score": pql.score, "pql_tier": pql.tier, "pql_status": pql.state,
                "pql_signals": "\n".join(s.get("evidence") or s.get("label") or s["name"] for s in pql.signals),
                "pql_triggered_at": _iso(pql.created_at)}

    def _task(self, lead: _Lead, now: datetime) -> dict:
        pql, user = lead.pql, lead.user
        who = (user.name or user.email or pql.user_id) if user else pql.user_id
        strongest = next((s for s in pql.signals if s.get("name") == pql.strongest_signal), None)
        link = None
        if pql.alert_channel and pql.alert_ts:
            link = f"https://slack.com/archives/{pql.alert_channel}/p{pql.alert_ts.replace('.', '')}"
        body = render("crm/task.txt.j2", ref=pql.ref, who=who, company=user.company_name if user else None,
                      tier=pql.tier.replace("_", " "), score=pql.score,
                      evidence=[s.get("evidence") or s["name"] for s in pql.signals],
                      talk_track=(strongest or {}).get("talk_track"), link=link)
        owner = self.hub.owner_of(pql.claimed_by or pql.rep_id)
        return {"hs_task_subject": words("task_subject", ref=pql.ref, who=who, tier=pql.tier.replace("_", " ")),
                "hs_task_body": body, "hs_timestamp": _ms(pql.sla_due_at or now), "hs_task_type": "TODO",
                "hs_task_priority": "HIGH" if pql.tier in ("fast_lane", "high") else "MEDIUM",
                "hubspot_owner_id": owner or ""}


def hubspot_sender(hub: HubSpot, *, tz: tzinfo) -> Callable[[sa.Engine, Notice, datetime], None]:
    return Sync(hub, tz=tz)
