"""The Slack surface: ids, Block Kit, the Web API gateway, and the listeners Bolt calls."""
