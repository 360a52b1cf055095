"""The security suite reuses the Slack workspace harness (signed requests in, a Web API stand-in out)."""

from tests.slack.conftest import standin, workspace  # noqa: F401 (fixtures, re-exported for these tests)
