"""`pqlbot tick` (every sweep once, then the outbox once) and `pqlbot owners` as an operator uses them, on
each store backend."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select

from bot.cli import main
from bot.services.pipeline import Pipeline
from bot.services.routing import Router
from bot.settings import Settings
from bot.store import make_engine, open_store
from bot.store.models import Account, AuditEntry, Notice, Pql
from bot.sweeps import runner as sweeps
from tests.scoring.builders import NY, Trial
from tests.standin import SlackStandIn

ANA, BEN, BOSS = "U0ANA", "U0BEN", "U0BOSS"
MONDAY = datetime(2026, 11, 9, 10, 0, tzinfo=NY)
TUESDAY = "2026-11-10T10:30:00-05:00"


@pytest.fixture(autouse=True)
def settings_of_our_own(tmp_path, monkeypatch):
    """A team of two and a manager in New York, whatever the environment or a local .env says."""
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("PQL_TIMEZONE", "America/New_York")
    monkeypatch.setenv("PQL_REPS", f"{ANA}:Ana Ruiz,{BEN}:Ben Okafor")
    monkeypatch.setenv("PQL_MANAGER", BOSS)
    for name in ("PQL_RULES_FILE", "RESCORE_EVERY_HOURS", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "PQL_DAILY_CAP",
                 "PQL_HOLIDAYS", "PQL_BUSINESS_HOURS", "PQL_REASSIGN_ON_SLA_MISS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def store(store_url):
    """The store the commands use, with the router `pqlbot serve` would build; leads made at MONDAY."""
    engine = open_store(store_url)
    settings = Settings(_env_file=None)
    router = Router(settings.calendar, cap=settings.pql_daily_cap, manager=settings.pql_manager)
    yield Pipeline(engine, tz=NY, router=router, clock=lambda: MONDAY)
    engine.dispose()


def make_leads(store: Pipeline, count: int) -> None:
    """`count` medium leads recorded on Monday morning, a few minutes apart (routed as they land)."""
    from bot.services import leads

    with store.session() as session, session.begin():
        leads.sync_roster(session, Settings(_env_file=None).roster, now=MONDAY)
    for n in range(count):
        at = MONDAY + timedelta(minutes=5 * n)
        trial = Trial(f"u{n}", email=f"u{n}@co{n}.com", signup=at - timedelta(days=1))
        trial.activate(1).invite(1).add("integration_connected", at - timedelta(minutes=1), integration_type="dbt")
        store.ingest(trial.events, at=at)


def counts(store: Pipeline) -> tuple[Counter, int, int]:
    """(notices by key prefix, assignments, queued leads)."""
    with store.session() as session:
        keys = Counter(key.split(":")[0] for key in session.exec(select(Notice.key)))
        assignments = session.exec(sa.text("SELECT count(*) FROM assignments")).one()[0]
        queued = len(session.exec(select(Pql).where(Pql.state == "queued")).all())
    return keys, assignments, queued


def sweep_lines(out: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in out.splitlines() if not line.startswith("outbox"))


# pqlbot tick -------------------------------------------------------------------------------------------


def test_tick_runs_every_due_sweep_once_and_again_for_the_same_moment_changes_nothing(store, capsys):
    make_leads(store, 11)  # two reps at the cap of 5: the eleventh waits
    _, assigned, queued = counts(store)
    assert (assigned, queued) == (10, 1)

    assert main(["tick", "--at", TUESDAY]) == 0
    out = capsys.readouterr().out
    done = sweep_lines(out)
    assert list(done) == [name for name, _ in sweeps.default_steps()]  # each sweep once, in order
    assert done["rescore"] == "11" and done["queue"] == "1"
    assert "Slack is off" in out
    after_first = counts(store)
    keys, assigned, queued = after_first
    assert (assigned, queued) == (11, 0)
    # A day later nobody claimed or touched anything: the threads hear of it, and so does the manager, in one
    # <!here> in the channel and one DM listing the 11 (each lead's own escalation folded into the DM).
    assert keys["esc-here"] == keys["esc-sla"] == 11
    assert keys["digest-here"] == keys["digest-manager"] == 1
    assert int(done["escalate"]) == keys["esc-here"] + keys["digest-here"] + keys["digest-manager"]

    assert main(["tick", "--at", TUESDAY]) == 0
    again = sweep_lines(capsys.readouterr().out)
    assert set(again.values()) == {"0"}
    assert counts(store) == after_first


def test_tick_exits_1_and_names_the_sweep_that_failed_while_the_others_still_run(store, capsys, monkeypatch):
    def broken(sweeps, now):
        raise RuntimeError("boom")

    monkeypatch.setattr(sweeps, "default_steps", lambda: [("queue", broken), ("rescore", sweeps.rescore)])
    make_leads(store, 1)
    assert main(["tick", "--at", TUESDAY]) == 1
    out, err = capsys.readouterr()
    assert "queue: FAILED" in out and "rescore: 1" in out
    assert "sweep(s) failed: queue" in err


def test_tick_delivers_the_outbox_once_when_slack_is_configured(store, capsys, monkeypatch):
    make_leads(store, 2)
    with SlackStandIn() as slack:
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
        monkeypatch.setenv("SLACK_API_URL", slack.url)
        assert main(["tick", "--at", TUESDAY]) == 0
        out = capsys.readouterr().out
        assert "outbox: " in out and " 0 failed" in out
        posted = len(slack.calls_to("chat.postMessage"))
        assert posted > 0
        assert main(["tick", "--at", TUESDAY]) == 0
        assert len(slack.calls_to("chat.postMessage")) == posted  # nothing is owed twice
    with store.session() as session:
        notices = list(session.exec(select(Notice)))
    # Everything owed was sent once; the manager's escalations of the two leads were said in one DM (a digest),
    # each lead's own kept "folded" into it, never sent alone.
    assert {n.state for n in notices if not n.key.startswith(("esc-sla:", "esc-2h:"))} == {"sent"}
    assert {n.state for n in notices if n.key.startswith(("esc-sla:", "esc-2h:"))} == {"folded"}
    assert [n.state for n in notices if n.key.startswith("digest-manager:")] == ["sent"]


def test_tick_says_so_when_the_store_cannot_be_opened(monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:9/none")
    assert main(["tick"]) == 2
    assert "tick" in capsys.readouterr().err


# pqlbot owners -----------------------------------------------------------------------------------------


@pytest.fixture
def db(store_url):
    engines = []

    def open_():
        if not engines:
            engines.append(make_engine(store_url))
        return engines[0]

    yield open_
    for engine in engines:
        engine.dispose()


def accounts(db) -> dict[str, tuple[str | None, str | None]]:
    with db().connect() as connection:
        rows = connection.execute(sa.select(Account.__table__)).all()
    return {row.domain: (row.owner_rep_id, row.company_name) for row in rows}


def test_owners_import_stores_the_owners_and_routing_honours_them(store_url, db, tmp_path, capsys):
    csv = tmp_path / "owners.csv"
    csv.write_text(f"domain,rep,company_name\nacme.com,{ANA},Acme Corp\nGlobex.io,<@{BEN}>,\n")
    assert main(["owners", "import", str(csv)]) == 0
    out = capsys.readouterr().out
    assert "2 new, 0 changed, 0 unchanged; 0 line(s) rejected" in out
    assert accounts(db) == {"acme.com": (ANA, "Acme Corp"), "globex.io": (BEN, None)}

    csv.write_text(f"rep,domain\n{BEN},acme.com\n{BEN},globex.io\n")  # columns in any order
    assert main(["owners", "import", str(csv)]) == 0
    assert "0 new, 1 changed, 1 unchanged" in capsys.readouterr().out
    assert accounts(db)["acme.com"] == (BEN, "Acme Corp")  # the company name is kept
    with db().connect() as connection:
        audited = connection.execute(sa.select(AuditEntry.__table__).where(
            AuditEntry.__table__.c.action == "account_owner_set")).all()
    assert [(a.detail["domain"], a.detail["previous"]) for a in audited] == [
        ("acme.com", None), ("globex.io", None), ("acme.com", ANA)]

    assert main(["owners", "list"]) == 0
    listed = capsys.readouterr().out
    assert "acme.com" in listed and "Ben Okafor (U0BEN)" in listed and "2 named account(s)" in listed


def test_owners_import_reports_bad_lines_by_number_stores_the_rest_and_exits_1(store_url, db, tmp_path, capsys):
    csv = tmp_path / "owners.csv"
    csv.write_text("\n".join([
        "domain,rep",  # line 1
        f"acme.com,{ANA}",
        "bigco.com,U0NOBODY",  # not on the roster
        f",{ANA}",
        f"jane@initech.com,{ANA}",  # an email, not a domain
        "",  # blank lines are skipped
        f"ACME.COM,{BEN}",  # listed already
        "umbrella.com,",
        f"hooli.com,{BEN}",
    ]) + "\n")
    assert main(["owners", "import", str(csv)]) == 1
    out, err = capsys.readouterr()
    assert "2 new, 0 changed, 0 unchanged; 5 line(s) rejected" in out
    assert err.splitlines() == [
        "line 3: U0NOBODY is not a rep on the roster (PQL_REPS); bigco.com not stored",
        "line 4: no domain",
        "line 5: 'jane@initech.com' is not a domain (write it like acme.com)",
        "line 7: acme.com is listed already on line 2; this line ignored",
        "line 8: no rep for umbrella.com",
    ]
    assert accounts(db) == {"acme.com": (ANA, None), "hooli.com": (BEN, None)}


@pytest.mark.parametrize(("text", "says"), [
    ("", "the file is empty"),
    ("domain,owner\nacme.com,U0ANA\n", "no rep column"),
    ("site,company_name\n", "no domain or rep column"),
])
def test_owners_import_refuses_a_file_without_the_columns_and_stores_nothing(store_url, db, tmp_path, capsys,
                                                                             text, says):
    csv = tmp_path / "owners.csv"
    csv.write_text(text)
    assert main(["owners", "import", str(csv)]) == 2
    assert says in capsys.readouterr().err
    assert main(["owners", "list"]) == 0
    assert "no named accounts yet" in capsys.readouterr().out


def test_owners_import_of_a_missing_file_exits_2(store_url, capsys):
    assert main(["owners", "import", "nowhere.csv"]) == 2
    assert "No such file" in capsys.readouterr().err


def test_owners_list_flags_an_owner_who_left_the_roster(store_url, db, tmp_path, capsys, monkeypatch):
    csv = tmp_path / "owners.csv"
    csv.write_text(f"domain,rep\nacme.com,{ANA}\nglobex.io,{BEN}\n")
    assert main(["owners", "import", str(csv)]) == 0
    monkeypatch.setenv("PQL_REPS", f"{ANA}:Ana Ruiz")
    capsys.readouterr()
    assert main(["owners", "list"]) == 0
    [globex] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("globex.io")]
    assert globex.endswith("off the roster: round-robin instead")


# The scheduler inside `pqlbot serve` runs the same sweeps ---------------------------------------------------


def test_serve_schedules_every_sweep_once_a_minute_starting_now(engine):
    import threading

    from bot.web import server

    ran = threading.Event()
    settings = Settings(_env_file=None)
    built = server.build(settings, pipeline=Pipeline(engine, tz=NY))
    real = sweeps.Sweeps.run_due

    def run_due(self, now=None):
        ran.set()
        return real(self, now)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sweeps.Sweeps, "run_due", run_due)
        built.start_background()
        try:
            [scheduler] = built.background
            [job] = scheduler.get_jobs()
            assert job.id == "sweeps" and job.trigger.interval == timedelta(minutes=1)
            assert job.coalesce and job.max_instances == 1
            [swept] = job.args
            assert swept.router is not None and swept.pipeline is built.runtime.pipeline
            assert ran.wait(10)  # the first run is at once
        finally:
            built.stop_background()


def test_owners_import_takes_a_crm_exports_websites_as_their_domains(store_url, db, tmp_path, capsys):
    # HubSpot's and Salesforce's exports give a company's website: it was refused as "not a domain", line by line.
    csv = tmp_path / "owners.csv"
    csv.write_text("\n".join([
        "domain,rep,company_name",
        f"https://www.acme.com/,{ANA},Acme",
        f"http://Initech.com/about?ref=crm,{BEN},Initech",
        f"www.hooli.com,{BEN},",
        f"https://user:secret@globex.com:8443/x,{ANA},Globex",
        f"https://not a site/,{ANA},",
    ]) + "\n")
    assert main(["owners", "import", str(csv)]) == 1
    out, err = capsys.readouterr()
    assert "4 new, 0 changed, 0 unchanged; 1 line(s) rejected" in out
    assert err.splitlines() == ["line 6: 'not a site' is not a domain (write it like acme.com)"]
    assert accounts(db) == {"acme.com": (ANA, "Acme"), "initech.com": (BEN, "Initech"), "hooli.com": (BEN, None),
                            "globex.com": (ANA, "Globex")}


def test_owners_import_with_a_teams_file_names_it_as_the_roster(store_url, db, tmp_path, capsys, monkeypatch):
    teams = tmp_path / "teams.toml"
    teams.write_text(f'default = "sdr"\n[teams.sdr]\nescalate_to = "{BOSS}"\n'
                     f'members = [{{ id = "{ANA}", name = "Ana Ruiz" }}]\n')
    monkeypatch.setenv("PQL_TEAMS_FILE", str(teams))
    csv = tmp_path / "owners.csv"
    csv.write_text(f"domain,rep\nacme.com,{ANA}\nbigco.com,{BEN}\n")
    assert main(["owners", "import", str(csv)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"line 3: {BEN} is not a rep on the roster (PQL_TEAMS_FILE); bigco.com not stored"]
