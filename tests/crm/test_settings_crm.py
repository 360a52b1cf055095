"""The CRM and webhook settings: checked at start with a sentence saying what is wrong."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.integrations import senders
from bot.settings import Settings


def test_a_webhook_url_without_a_secret_is_refused():
    with pytest.raises(ValidationError, match="PQL_WEBHOOK_URL is set without PQL_WEBHOOK_SECRET"):
        Settings(_env_file=None, pql_webhook_url="https://example.com/hook")


def test_a_webhook_url_that_is_not_http_is_refused():
    with pytest.raises(ValidationError, match="is not an http"):
        Settings(_env_file=None, pql_webhook_url="example.com/hook", pql_webhook_secret="s")


def test_rep_emails_are_read_per_rep_in_lower_case():
    settings = Settings(_env_file=None, pql_rep_emails=" U0ANA:Ana@Acme.com , U0BEN:ben@acme.com,U0CAT")
    assert settings.rep_emails == {"U0ANA": "ana@acme.com", "U0BEN": "ben@acme.com"}


def test_each_configured_integration_gets_a_sender_and_nothing_else_does():
    assert Settings(_env_file=None).sinks == frozenset() and senders(Settings(_env_file=None)) == {}
    both = Settings(_env_file=None, pql_webhook_url="https://example.com/hook", pql_webhook_secret="s",
                    hubspot_access_token="pat-x")
    assert both.sinks == {"webhook", "hubspot"} and set(senders(both)) == {"webhook", "hubspot"}
