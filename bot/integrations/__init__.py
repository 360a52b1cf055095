"""The integrations fed by the outbox: the signed webhook (webhook.py) and HubSpot (hubspot.py), each behind its own
small client, and their sender (delivery.py), which runs beside Slack's and never holds it up."""

from __future__ import annotations

from bot.settings import Settings


def senders(settings: Settings) -> dict:
    """The configured integrations' senders, by notice kind (bot/integrations/delivery.py)."""
    from bot.integrations.delivery import webhook_sender
    from bot.integrations.webhook import Webhook

    found = {}
    if settings.pql_webhook_url and settings.pql_webhook_secret:
        found["webhook"] = webhook_sender(Webhook(settings.pql_webhook_url,
                                                  settings.pql_webhook_secret.get_secret_value()))
    if settings.hubspot_access_token:
        from bot.integrations.hubspot import HubSpot, hubspot_sender

        found["hubspot"] = hubspot_sender(HubSpot.from_settings(settings), tz=settings.tz)
    return found
