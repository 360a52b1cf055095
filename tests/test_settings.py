"""Settings a person sets by hand are checked when pqlbot starts, with a sentence saying what is wrong."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.settings import Settings


def test_the_on_call_rep_is_the_fast_lanes_out_of_hours_taker():
    settings = Settings(_env_file=None, pql_reps="U0ANA:Ana Ruiz,U0BEN:Ben Okafor", pql_on_call=" U0BEN ")
    assert settings.fast_lane.on_call == "U0BEN"
    assert Settings(_env_file=None, pql_reps="U0ANA", pql_on_call="").fast_lane.on_call is None


@pytest.mark.parametrize(("on_call", "says"), [
    ("ben", "is not a Slack user id"),
    ("@ben", "is not a Slack user id"),
    ("U0CY", "is not in PQL_REPS"),
])
def test_an_on_call_rep_who_is_not_a_slack_id_on_the_roster_is_refused_with_a_clear_error(on_call, says):
    with pytest.raises(ValidationError, match=says):
        Settings(_env_file=None, pql_reps="U0ANA,U0BEN", pql_on_call=on_call)
