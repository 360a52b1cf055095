"""Who a user is and where they work, from the calls a product really sends: the signup's properties, identify
traits and the account's group traits. Each field keeps the time it was sent, and the newest wins.

What is read (anything else is kept with the event and not used):

- email: signup `email`; identify `email`.
- first_name, last_name: signup `first_name`, `last_name`; identify `firstName`/`first_name`, `lastName`/`last_name`,
  else `name` split at its first space.
- title: signup `title`; identify `title`.
- company_name: signup `company_name`; identify `company` (text), `company.name` or `company_name`; group `name`.
- company_size: signup `company_size`; identify `company_size`, `employees`, `company.employee_count` or
  `company.employees`; group `employees`, `employee_count` or `company_size`.
- industry: identify `industry` or `company.industry`; group `industry`.
- plan: signup `plan`; identify `plan`; group `plan`.
- domain (the account's): group `domain`, else the host of its `website`.

A value that cannot be used (an email that is not one, a size that is not a whole number from 0) is left out,
never a reason to refuse the call: products send traits for many purposes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_INT_MAX = 2**31 - 1  # what the store's company size column holds
#: The fields a profile has, in the order they are shown.
FIELDS = ("email", "first_name", "last_name", "title", "company_name", "company_size", "industry", "plan",
          "signup_source", "domain")


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    return None


def _email(value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
    text = text.lower()
    return text if _EMAIL.match(text) else None


def _size(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip().replace(",", "")
        if not value.isdigit():
            return None
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and 0 <= value <= _INT_MAX:
        return value
    return None


def _domain(value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
    host = re.sub(r"^[a-z][a-z0-9+.-]*://", "", text.lower()).split("/", 1)[0].split(":", 1)[0]
    host = host.removeprefix("www.")
    return host if "." in host and " " not in host else None


def _first(*values: Any) -> Any:
    return next((value for value in values if value is not None), None)


def _clean(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


def from_signup(props: Mapping[str, Any]) -> dict[str, Any]:
    """The profile fields a signup_complete's (validated) properties give."""
    return _clean({
        "email": props.get("email"), "first_name": props.get("first_name"), "last_name": props.get("last_name"),
        "title": props.get("title"), "company_name": props.get("company_name"),
        "company_size": props.get("company_size"), "plan": props.get("plan"),
        "signup_source": props.get("signup_source"),
    })


def from_traits(traits: Mapping[str, Any]) -> dict[str, Any]:
    """The profile fields an identify call's traits give."""
    company = traits.get("company")
    company = company if isinstance(company, Mapping) else {"name": company}
    name = _text(traits.get("name"))
    first_word, _, rest = (name or "").partition(" ")
    return _clean({
        "email": _email(traits.get("email")),
        "first_name": _first(_text(traits.get("firstName")), _text(traits.get("first_name")), _text(first_word)),
        "last_name": _first(_text(traits.get("lastName")), _text(traits.get("last_name")), _text(rest)),
        "title": _text(traits.get("title")),
        "company_name": _first(_text(company.get("name")), _text(traits.get("company_name"))),
        "company_size": _first(_size(traits.get("company_size")), _size(traits.get("employees")),
                               _size(company.get("employee_count")), _size(company.get("employees"))),
        "industry": _first(_text(traits.get("industry")), _text(company.get("industry"))),
        "plan": _text(traits.get("plan")),
    })


def from_group(traits: Mapping[str, Any]) -> dict[str, Any]:
    """The profile fields a group call's traits give the users of that account."""
    return _clean({
        "company_name": _text(traits.get("name")),
        "company_size": _first(_size(traits.get("employees")), _size(traits.get("employee_count")),
                               _size(traits.get("company_size"))),
        "industry": _text(traits.get("industry")),
        "plan": _text(traits.get("plan")),
        "domain": _first(_domain(traits.get("domain")), _domain(traits.get("website"))),
    })


#: An account's group traits as the scorer reads them: field -> (when it was sent, value), the newest of each.
GroupTraits = dict[str, tuple[Any, Any]]


def newer(held: Mapping[str, tuple[Any, Any]], traits: Mapping[str, Any], sent_at: Any) -> GroupTraits | None:
    """`held` with the fields a group call's traits give (`from_group`), where sent later than what is held; None
    when the call changes nothing."""
    merged: GroupTraits | None = None
    for name, value in from_group(traits).items():
        kept = held.get(name)
        if kept is None or sent_at > kept[0]:
            if merged is None:
                merged = dict(held)
            merged[name] = (sent_at, value)
    return merged
