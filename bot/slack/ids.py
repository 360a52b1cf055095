"""Every Slack action, view and block id pqlbot uses, in one place (the manifest test reads these too)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, ValidationError


class Action(StrEnum):
    CLAIM = "pql-claim"
    DETAILS = "pql-details"
    LOG_TOUCH = "pql-log-touch"
    SET_DISPOSITION = "pql-set-disposition"
    PAUSE = "rep-pause"  # App Home: pause / resume my assignments
    REASSIGN = "pql-reassign"  # escalation DMs: the manager moves a lead (opens a modal)
    CLAIM_FOR = "pql-claim-for"  # escalation DMs: the manager claims a lead for a rep (opens a modal)
    RELEASE = "pql-release"  # stale-claim DMs: the manager takes a lead back to the pool
    SHARE_REVIEW = "pql-share-review"  # a private /pql-review: post it to the PQL channel (value: the week)
    HAND_OFF = "pql-hand-off"  # the alert, with teams: hand the lead to another team (opens a modal)


class View(StrEnum):
    DETAILS = "pql-details-modal"
    LOG_TOUCH = "pql-touch-modal"
    SET_DISPOSITION = "pql-disposition-modal"
    REASSIGN = "pql-reassign-modal"
    CLAIM_FOR = "pql-claim-for-modal"
    HAND_OFF = "pql-hand-off-modal"


class Input(StrEnum):
    """block_id / action_id pairs of modal inputs (block id == action id keeps parsing simple)."""

    TOUCH_CHANNEL = "touch-channel"
    TOUCH_EMAIL = "touch-email"
    TOUCH_NOTE = "touch-note"
    TOUCH_REPLIED = "touch-replied"
    DISPOSITION = "disposition"
    DISPOSITION_REASON = "disposition-reason"
    REP = "rep"
    TEAM = "team"
    HANDOFF_NOTE = "handoff-note"


class Command(StrEnum):
    CLAIM = "/claim"
    PQL = "/pql"
    REVIEW = "/pql-review"


class LeadRef(BaseModel):
    """What a button or modal carries: the lead it acts on. Sent as the button `value` / `private_metadata`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pql_id: int

    def encode(self) -> str:
        return self.model_dump_json()

    @classmethod
    def decode(cls, value: str | None) -> LeadRef:
        try:
            return cls.model_validate_json(value or "")
        except ValidationError:
            raise ValueError(f"not a lead reference: {value!r}") from None
