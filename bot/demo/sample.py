"""The bundled sample: two weeks of a 14-day trial programme, about 50 users, as Segment track events.

`python -m bot.sample` regenerates `bot/data/sample_events.jsonl` in place (`python -m bot.sample -`
prints it instead). Generation is deterministic: fixed seeds, no wall clock, so the committed file
is byte-for-byte what this module produces, and `tests/demo/test_sample.py` checks that.

The story: a data-tooling product's team in New York (America/New_York; EST all fortnight, since
DST ended on Sun 1 Nov 2026). Trials start Mon 2 Nov .. Fri 6 Nov; people work mostly 9:00-18:00
New York time, now and then in the evening; the last events are on Sat 14 Nov. Judge the sample
as of `SAMPLE_AS_OF`, Fri 13 Nov 2026 17:00 New York (22:00 UTC): every outcome below is as of then.

Named users (the rest are `user-01` .. `user-29`, a filler mix where most trials stay below the
threshold). Days are November dates in New York; points are integration 3, invites 3, billing 2,
multi-day 2.

===============  ================================================  ======================  =====
user id          who (company size)                                as of SAMPLE_AS_OF      score
===============  ================================================  ======================  =====
sarah            Sarah Chen, Data Engineer, Acme Corp (800)        qualified, medium       6
    The seed's example: signs up Mon 2; on Fri 6 activates (Snowflake), invites 2, connects dbt.
    Only two active days, so no multi-day points.
tom              Tom Becker, Data Analyst, Quillbyte (50)          excluded                0
    The seed's counter-example: activates on day 1 and stops. company_size_out_of_range.
dana             Dana Whitfield, Head of Data, Northwind (1,200)   qualified, fast_lane    0
    Requests a demo on day 2 (Wed 4); never activated.
marcus           Marcus Osei, Director of Data Eng., Brightline    qualified, fast_lane    0
                 Health (1,800)
    Asks to talk to sales on day 2 (Thu 5).
elena            Elena Petrova, Analytics Eng. Lead, Harborview    qualified, high         10
                 Financial (650)
    All four signals by Thu 5 (the billing view an evening one).
raj              Raj Malhotra, Sr Data Engineer, Cobalt Freight    qualified, high         8
                 (450)
    Integration + invite + billing packed into two days, so no multi-day.
grace            Grace Liu, BI Developer, Pinecrest Retail (300)   qualified, medium       4
    Billing + multi-day. Her client sends Title Case names ("Signed Up", "Page Viewed"): aliases.
owen             Owen Gallagher, Analytics Manager, Lumen          qualified, medium       5
                 Insurance (1,500)
    Invites (sent as "Invite Sent") + billing, over two days.
aisha            Aisha Bello, Data Platform Eng., Verdant Energy   qualified, medium       5
                 (950)
    Integration + multi-day; the third active day is Mon 9.
ben              Ben Alvarez, Analytics Eng., Summit Dental (400)  qualified, medium       5
    Qualifies mid-stream: 0 points on Thu 5 and Fri 6, 2 on Mon 9, crosses with invites on Tue 10.
nina             Nina Park, Data Eng. Manager, Orchard Bank        qualified, high         8
                 (1,100)
    Tier upgrade: medium (6) on Wed 4, high (8) when she comes back on Tue 10.
kevin            Kevin Doyle, kdoyle.data@gmail.com, no company    excluded                3
    personal_email_domain (and company_size_unknown).
test-meridian    test@meridianhealth.org, Meridian Health (700)    excluded                6
    test_account.
hiro             Hiro Tanaka, Staff Data Eng., Globex (5,000)      excluded                8
    company_size_out_of_range.
lucia            Lucía Romero, Data Scientist, Redwood Labs (?)    excluded                7
    company_size_unknown.
sam              Sam Whitaker, Head of Analytics, Keystone         excluded                7
                 Software (350)
    already_converted: checked out self-serve on Thu 5.
leo              Leo Fischer, Data Engineer, Beacon Media (600)    do_not_touch, high      7
    checkout_in_progress: started Fri 13 13:40, 3 h 20 min before SAMPLE_AS_OF, not completed.
hannah           Hannah Schmidt, Analytics Eng., Crestline         do_not_touch, high      8
                 Manufacturing (1,400)
    support_ticket_open: ticket T-4821, opened Mon 9, never closed.
victor           Victor Nguyen, Data Eng. Lead, Silverpine         do_not_touch, medium    5
                 Insurance (750)
    opted_out on Fri 6.
chloe            Chloe Martin, Data Analyst, Fairway Travel (250)  below_threshold         3
    Activated, one signal (a BigQuery integration), two active days.
diego            Diego Ramirez, Data Engineer, Ironbridge Capital  below_threshold         0
                 (900)
    Invites two teammates but never activates: not_activated.
===============  ================================================  ======================  =====

Scores of excluded users are what the points would have been; they are not routed either way.
`expected_outcomes()` and `expected_reasons()` at the bottom say the same in code.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from scoring.result import Status, Tier

SEED = 2026
SAMPLE_TZ = ZoneInfo("America/New_York")
#: Fri 13 Nov 2026, 17:00 in New York: the end of the second trial week, when the sample is judged.
SAMPLE_AS_OF = datetime(2026, 11, 13, 22, 0, tzinfo=UTC)
SAMPLE_PATH = Path(__file__).parent / "data" / "sample_events.jsonl"

_YEAR, _MONTH = 2026, 11
_APP_PAGES = ("/dashboard", "/queries", "/settings")

#: An older client of the product still sends its Title Case tracking-plan names (default_rules.toml
#: maps them back), so the sample exercises alias mapping the way a half-migrated plan would.
_LEGACY_NAMES = {
    "signup_complete": "Signed Up",
    "activation_complete": "Account Activated",
    "invite_sent": "Invite Sent",
    "integration_connected": "Integration Connected",
    "page_view": "Page Viewed",
    "session_start": "Session Started",
}


class _Trial:
    """One user's events, written in New York wall-clock time: `track(6, "14:20", ...)` is Fri 6 Nov."""

    def __init__(self, user_id: str, *, legacy: bool = False) -> None:
        self.user_id = user_id
        self.legacy = legacy
        self.events: list[tuple[datetime, str, dict[str, Any]]] = []
        # Seconds come from the user's own generator, so editing one scenario never moves another's.
        self._seconds = random.Random(f"{SEED}/{user_id}")
        self.domain = ""

    def track(self, day: int, clock: str, event: str, **props: Any) -> _Trial:
        hour, minute = map(int, clock.split(":"))
        local = datetime(_YEAR, _MONTH, day, hour, minute, self._seconds.randrange(60), tzinfo=SAMPLE_TZ)
        at = local.astimezone(UTC)
        if self.events and at <= self.events[-1][0]:
            raise ValueError(f"{self.user_id}: {event} on {day} Nov {clock} is not after the previous event")
        if self.legacy:
            event = _LEGACY_NAMES.get(event, event)
        self.events.append((at, event, props))
        return self

    def signup(self, day: int, clock: str, first: str, last: str, title: str, company: str | None,
               size: int | None, *, domain: str, email: str | None = None,
               source: str = "organic_search") -> _Trial:
        self.domain = domain
        props: dict[str, Any] = {
            "email": email or f"{first}.{last}@{domain}".lower(),
            "first_name": first,
            "last_name": last,
            "title": title,
            "company_name": company,
            "company_size": size,
            "signup_source": source,
            "plan": "trial",
        }
        # Enrichment that found nothing leaves the key out, as Segment sources do.
        return self.track(day, clock, "signup_complete", **{k: v for k, v in props.items() if v is not None})

    def session(self, day: int, clock: str) -> _Trial:
        return self.track(day, clock, "session_start")

    def view(self, day: int, clock: str, path: str) -> _Trial:
        return self.track(day, clock, "page_view", page_path=path)

    def activate(self, day: int, clock: str, kind: str, source: str | None = None) -> _Trial:
        props = {"activation_type": kind} | ({"source_type": source} if source else {})
        return self.track(day, clock, "activation_complete", **props)

    def invite(self, day: int, clock: str, local_part: str) -> _Trial:
        return self.track(day, clock, "invite_sent", invitee_email=f"{local_part}@{self.domain}")

    def integrate(self, day: int, clock: str, integration: str) -> _Trial:
        return self.track(day, clock, "integration_connected", integration_type=integration)


# -- The seed's two examples -------------------------------------------------------------------------


def _sarah() -> _Trial:
    # Seed 002, section 3, to the letter. Nothing between Mon 2 and Fri 6 and nothing after: two
    # active days, so she qualifies on invites + integration alone (6), not on multi-day usage.
    t = _Trial("sarah")
    t.signup(2, "09:14", "Sarah", "Chen", "Data Engineer", "Acme Corp", 800, domain="acme.com",
             email="sarah@acme.com")
    t.session(6, "10:02")
    t.activate(6, "10:31", "first_source_connected", "Snowflake")
    t.invite(6, "11:05", "james.okafor")
    t.invite(6, "11:07", "mei.lin")
    t.integrate(6, "14:20", "dbt")
    return t


def _tom() -> _Trial:
    # The seed's NOT-qualified case: a 50-person startup; he runs a query on day 1 and stops.
    t = _Trial("tom")
    t.signup(2, "09:26", "Tom", "Becker", "Data Analyst", "Quillbyte", 50, domain="quillbyte.io")
    t.session(2, "09:27")
    t.activate(2, "09:48", "first_query_run")
    return t


# -- Qualified ------------------------------------------------------------------------------------------


def _dana() -> _Trial:
    # Fast lane: an explicit ask from an ICP-fit user qualifies at once, activated or not.
    t = _Trial("dana")
    t.signup(3, "13:40", "Dana", "Whitfield", "Head of Data", "Northwind Logistics", 1200,
             domain="northwindlogistics.com", source="g2")
    t.session(3, "13:42").view(3, "13:50", "/dashboard")
    t.session(4, "10:01").view(4, "10:05", "/pricing")
    t.track(4, "10:12", "demo_requested")
    return t


def _marcus() -> _Trial:
    # Fast lane via the other ask; activation alone would have scored nothing.
    t = _Trial("marcus")
    t.signup(4, "11:20", "Marcus", "Osei", "Director of Data Engineering", "Brightline Health", 1800,
             domain="brightlinehealth.com", source="webinar")
    t.session(4, "11:21")
    t.activate(4, "11:58", "first_query_run")
    t.session(5, "15:30").view(5, "15:38", "/pricing")
    t.track(5, "15:45", "contact_sales_requested")
    return t


def _elena() -> _Trial:
    # Every signal, four days running: 10 of 10, high.
    t = _Trial("elena")
    t.signup(2, "10:40", "Elena", "Petrova", "Analytics Engineering Lead", "Harborview Financial", 650,
             domain="harborviewfinancial.com", source="referral")
    t.session(2, "10:41")
    t.activate(2, "11:15", "first_source_connected", "Snowflake")
    t.session(3, "09:30")
    t.integrate(3, "09:48", "Fivetran")
    t.integrate(3, "14:02", "dbt")
    t.invite(3, "14:30", "marco.reyes")
    t.invite(3, "14:31", "anna.kowalski")
    t.session(4, "16:05").view(4, "16:20", "/pricing")
    t.session(5, "21:05").view(5, "21:12", "/billing")  # an evening look at plans, day 4
    return t


def _raj() -> _Trial:
    # High at 8 without multi-day: integration, invite and billing views packed into two days.
    t = _Trial("raj")
    t.signup(3, "14:10", "Raj", "Malhotra", "Senior Data Engineer", "Cobalt Freight", 450,
             domain="cobaltfreight.com", source="paid_search")
    t.session(3, "14:11")
    t.activate(3, "14:55", "first_source_connected", "BigQuery")
    t.integrate(3, "16:10", "BigQuery")
    t.view(3, "16:30", "/billing")
    t.session(4, "10:20")
    t.invite(4, "10:45", "li.wei")
    t.view(4, "11:00", "/pricing")
    return t


def _grace() -> _Trial:
    # Medium at exactly 4 (billing + multi-day), the lowest qualifying score. Her client is the
    # legacy one, so every event of hers arrives under an alias ("Signed Up", "Page Viewed", ...).
    t = _Trial("grace", legacy=True)
    t.signup(2, "15:05", "Grace", "Liu", "BI Developer", "Pinecrest Retail", 300,
             domain="pinecrestretail.com", source="docs")
    t.session(2, "15:06").view(2, "15:20", "/dashboard")
    t.session(3, "09:40")
    t.activate(3, "10:10", "first_query_run")
    t.session(4, "13:15").view(4, "13:30", "/pricing")  # third active day: multi-day met
    t.session(6, "11:00").view(6, "11:12", "/billing")  # second billing day: billing met, 4 points
    t.view(6, "11:20", "/dashboard")
    return t


def _owen() -> _Trial:
    # Medium 5: invites + billing over two days (no multi-day). The invites use the alias name.
    t = _Trial("owen")
    t.signup(4, "09:50", "Owen", "Gallagher", "Analytics Manager", "Lumen Insurance", 1500,
             domain="lumeninsurance.com", source="linkedin")
    t.session(4, "09:51")
    t.activate(4, "10:30", "first_source_connected", "Postgres")
    for clock, who in (("11:02", "ruth.adeyemi"), ("11:03", "carlos.mendes"), ("11:05", "joy.huang")):
        t.track(4, clock, "Invite Sent", invitee_email=f"{who}@lumeninsurance.com")
    t.view(4, "16:40", "/pricing")
    t.session(5, "20:10").view(5, "20:15", "/pricing")  # an evening second look: billing met
    return t


def _aisha() -> _Trial:
    # Medium 5: integration + multi-day; the third active day is after the weekend.
    t = _Trial("aisha")
    t.signup(5, "10:30", "Aisha", "Bello", "Data Platform Engineer", "Verdant Energy", 950,
             domain="verdantenergy.com", source="community")
    t.session(5, "10:31")
    t.activate(5, "11:05", "first_source_connected", "Redshift")
    t.session(6, "14:00")
    t.integrate(6, "14:25", "Airflow")
    t.view(6, "14:40", "/queries")
    t.session(9, "09:15").view(9, "09:20", "/dashboard")
    return t


def _ben() -> _Trial:
    # Qualifies mid-stream, for the streaming demo: 0 points on his first two days, 2 once the third
    # active day lands (Mon 9), then 5 with two invites on Tue 10 afternoon.
    t = _Trial("ben")
    t.signup(5, "16:10", "Ben", "Alvarez", "Analytics Engineer", "Summit Dental Group", 400,
             domain="summitdental.com")
    t.session(5, "16:11")
    t.activate(5, "16:40", "first_query_run")
    t.session(6, "10:30").view(6, "10:35", "/queries")
    t.session(9, "11:00").view(9, "11:04", "/dashboard")
    t.session(10, "13:20")
    t.invite(10, "13:45", "olivia.grant")
    t.invite(10, "13:46", "sam.patel")
    return t


def _nina() -> _Trial:
    # Tier upgrade: integration on day 1 (3, below), invites on day 2 make 6 (medium, Wed 4); she is
    # quiet for a week and comes back on Tue 10, her third active day: multi-day makes 8 (high).
    # One pricing view is not the billing signal, which wants views on two days.
    t = _Trial("nina")
    t.signup(3, "10:15", "Nina", "Park", "Data Engineering Manager", "Orchard Bank", 1100,
             domain="orchardbank.com", source="referral")
    t.session(3, "10:16")
    t.activate(3, "10:50", "first_source_connected", "Databricks")
    t.integrate(3, "15:30", "dbt")
    t.session(4, "09:45")
    t.invite(4, "10:05", "tariq.hassan")
    t.invite(4, "10:06", "emma.larsen")
    t.session(10, "14:00").view(10, "14:10", "/pricing")
    return t


# -- Excluded: each would score, but is not a lead --------------------------------------------------


def _kevin() -> _Trial:
    # A personal address and no company to resolve (so no size either).
    t = _Trial("kevin")
    t.signup(2, "12:30", "Kevin", "Doyle", "Data Engineer", None, None, domain="gmail.com",
             email="kdoyle.data@gmail.com", source="product_hunt")
    t.session(2, "12:31")
    t.activate(2, "12:58", "first_source_connected", "Postgres")
    t.integrate(2, "13:20", "Postgres")
    t.session(3, "19:40").view(3, "19:45", "/queries")
    return t


def _test_meridian() -> _Trial:
    # Someone at Meridian checking the sign-up flow: test@ matches a test-email pattern.
    t = _Trial("test-meridian")
    t.signup(2, "16:00", "QA", "Account", "Data Engineer", "Meridian Health", 700,
             domain="meridianhealth.org", email="test@meridianhealth.org")
    t.session(2, "16:01")
    t.activate(2, "16:12", "first_source_connected", "Snowflake")
    t.invite(2, "16:20", "qa2")
    t.integrate(2, "16:31", "Snowflake")
    t.session(3, "10:00")
    return t


def _hiro() -> _Trial:
    # Enterprise, outside the 200-2,000 ICP: a great trial, but not this motion's lead.
    t = _Trial("hiro")
    t.signup(3, "11:30", "Hiro", "Tanaka", "Staff Data Engineer", "Globex Industries", 5000,
             domain="globex.com", source="paid_search")
    t.session(3, "11:31")
    t.activate(3, "12:05", "first_source_connected", "Databricks")
    t.integrate(3, "12:40", "Databricks")
    t.session(4, "10:10")
    t.invite(4, "10:30", "akira.sato")
    t.session(6, "15:00").view(6, "15:10", "/dashboard")
    return t


def _lucia() -> _Trial:
    # A real company enrichment could not size: ICP fit can't be checked, so she is excluded.
    t = _Trial("lucia")
    t.signup(4, "14:20", "Lucía", "Romero", "Data Scientist", "Redwood Labs", None,
             domain="redwoodlabs.ai", email="lucia.romero@redwoodlabs.ai", source="community")
    t.session(4, "14:21")
    t.activate(4, "14:50", "first_query_run")
    t.integrate(4, "15:30", "BigQuery")
    t.session(5, "10:45").view(5, "10:50", "/pricing")
    t.session(9, "16:00").view(9, "16:05", "/pricing")
    return t


def _sam() -> _Trial:
    # Converted self-serve on day 4: an expansion lead now, not a conversion one.
    t = _Trial("sam")
    t.signup(2, "11:00", "Sam", "Whitaker", "Head of Analytics", "Keystone Software", 350,
             domain="keystonesoftware.com", source="docs")
    t.session(2, "11:01")
    t.activate(2, "11:40", "first_source_connected", "Postgres")
    t.invite(2, "13:10", "dev.chowdhury")
    t.session(4, "09:20").view(4, "09:25", "/pricing")
    t.session(5, "14:00").view(5, "14:05", "/billing")
    t.track(5, "14:10", "checkout_started")
    t.track(5, "14:16", "checkout_completed")
    t.track(5, "14:17", "trial_converted", plan="team", mrr=1500.0, conversion_source="self_serve")
    return t


# -- Do not touch: qualified, but sales must not reach out now ------------------------------------------


def _leo() -> _Trial:
    # High (7), but started checkout at 13:40 on Fri 13, 3 h 20 min before the as-of moment, and has
    # not finished: let him.
    t = _Trial("leo")
    t.signup(4, "13:00", "Leo", "Fischer", "Data Engineer", "Beacon Media", 600,
             domain="beaconmedia.com", source="organic_search")
    t.session(4, "13:01")
    t.activate(4, "13:35", "first_source_connected", "Snowflake")
    t.session(5, "10:00")
    t.integrate(5, "10:25", "Fivetran")
    t.session(9, "15:00").view(9, "15:05", "/pricing")
    t.session(12, "11:30").view(12, "11:40", "/pricing")
    t.session(13, "13:30").view(13, "13:35", "/billing")
    t.track(13, "13:40", "checkout_started")
    return t


def _hannah() -> _Trial:
    # High (8), but her support ticket about the Looker sync is still open.
    t = _Trial("hannah")
    t.signup(2, "13:20", "Hannah", "Schmidt", "Analytics Engineer", "Crestline Manufacturing", 1400,
             domain="crestlinemfg.com", source="organic_search")
    t.session(2, "13:21")
    t.activate(2, "13:55", "first_source_connected", "Postgres")
    t.session(3, "10:15")
    t.integrate(3, "10:40", "Looker")
    t.invite(3, "11:00", "paul.becker")
    t.session(9, "09:30")
    t.track(9, "09:50", "support_ticket_opened", ticket_id="T-4821", subject="Looker sync fails after 2 h")
    return t


def _victor() -> _Trial:
    # Medium (5), but he opted out of sales contact on Fri 6.
    t = _Trial("victor")
    t.signup(3, "09:35", "Victor", "Nguyen", "Data Engineering Lead", "Silverpine Insurance", 750,
             domain="silverpine.com", source="linkedin")
    t.session(3, "09:36")
    t.activate(3, "10:05", "first_query_run")
    t.session(4, "14:30")
    t.integrate(4, "14:50", "Looker")
    t.session(5, "11:10").view(5, "11:15", "/dashboard")
    t.track(6, "08:45", "sales_opt_out", channel="email_preferences")
    return t


# -- Below the threshold ---------------------------------------------------------------------------------


def _chloe() -> _Trial:
    # Activated with one signal (3 points) on two days: not enough.
    t = _Trial("chloe")
    t.signup(5, "11:45", "Chloe", "Martin", "Data Analyst", "Fairway Travel", 250,
             domain="fairwaytravel.com", source="g2")
    t.session(5, "11:46")
    t.activate(5, "12:20", "first_source_connected", "BigQuery")
    t.integrate(5, "14:00", "BigQuery")
    t.session(6, "10:15").view(6, "10:20", "/queries")
    return t


def _diego() -> _Trial:
    # Invites teammates and comes back twice, but never activates: no points count.
    t = _Trial("diego")
    t.signup(2, "14:45", "Diego", "Ramirez", "Data Engineer", "Ironbridge Capital", 900,
             domain="ironbridgecapital.com", source="referral")
    t.session(2, "14:46")
    t.invite(2, "15:10", "nora.fitz")
    t.invite(2, "15:11", "omar.haddad")
    t.session(3, "10:30").view(3, "10:40", "/settings")
    t.session(9, "15:20").view(9, "15:25", "/dashboard")
    return t


NAMED: tuple[Callable[[], _Trial], ...] = (
    _sarah, _tom, _dana, _marcus, _elena, _raj, _grace, _owen, _aisha, _ben, _nina,
    _kevin, _test_meridian, _hiro, _lucia, _sam, _leo, _hannah, _victor, _chloe, _diego,
)

# -- Filler ---------------------------------------------------------------------------------------------

# Invented companies. About two thirds are in the ICP range (two sit on its edges, 200 and 2,000);
# the rest are the small startups and the odd enterprise that sign up for any self-serve trial.
_COMPANIES = (
    ("Bluefin Payments", "bluefinpay.com", 420), ("Cedar & Pine Outfitters", "cedarpine.com", 260),
    ("Larkspur Health", "larkspurhealth.com", 1300), ("Granite Peak Insurance", "granitepeak.com", 900),
    ("Halcyon Travel", "halcyontravel.com", 340), ("Marlow Logistics", "marlowlogistics.com", 1750),
    ("Oakridge Credit Union", "oakridgecu.org", 610), ("Pioneer Grocers", "pioneergrocers.com", 2000),
    ("Quarry Labs", "quarrylabs.io", 200), ("Riverton Media", "rivertonmedia.com", 480),
    ("Saltmarsh Energy", "saltmarshenergy.com", 1100), ("Tangent Robotics", "tangentrobotics.com", 530),
    ("Upland Education", "uplandedu.org", 720), ("Wrenfield Apparel", "wrenfield.com", 380),
    ("Zephyr Mobility", "zephyrmobility.com", 1450), ("Ashgrove Capital", "ashgrovecapital.com", 290),
    ("Brightwater Foods", "brightwaterfoods.com", 850), ("Copperleaf Software", "copperleaf.dev", 240),
    ("Driftwood Hotels", "driftwoodhotels.com", 1600),
    ("Parcelly", "parcelly.io", 35), ("Nimbus Notes", "nimbusnotes.app", 12),
    ("Fernhill Analytics", "fernhill.ai", 80), ("Kitewire", "kitewire.co", 140),
    ("Loopstack", "loopstack.dev", 25), ("Sprocket & Co", "sprocketco.com", 60),
    ("Tallgrass Studio", "tallgrass.studio", 18), ("Mosaic Metrics", "mosaicmetrics.io", 190),
    ("Continental Rail Group", "continentalrail.com", 12000),
    ("Northstar Telecom", "northstartelecom.com", 3500),
)
_FIRST = ("Adam", "Bianca", "Chidi", "Daniela", "Ethan", "Fatima", "Gabriel", "Hana", "Isaac", "Jade",
          "Kofi", "Laura", "Mateo", "Noor", "Oscar", "Paula", "Quinn", "Rosa", "Stefan", "Tara",
          "Umar", "Vera", "Wes", "Ximena", "Yusuf", "Zara", "Liam", "Ingrid", "Arjun", "Maeve")
_LAST = ("Andersen", "Brooks", "Castillo", "Dubois", "Eze", "Foster", "Gupta", "Holm", "Ivanova",
         "Jensen", "Khan", "Lopez", "Murphy", "Nakamura", "O'Neill", "Pereira", "Quint", "Rossi",
         "Silva", "Thompson", "Uddin", "Varga", "Walsh", "Xu", "Yilmaz", "Zimmerman", "Ortiz",
         "Novak", "Bauer", "Kim")
_TITLES = ("Data Engineer", "Senior Data Engineer", "Analytics Engineer", "Data Analyst",
           "Senior Data Analyst", "BI Developer", "Head of Data", "Data Platform Engineer",
           "Analytics Manager", "Data Scientist", "Staff Data Engineer", "Data Engineering Manager")
_SOURCES = ("organic_search", "organic_search", "docs", "referral", "paid_search", "g2", "linkedin",
            "webinar", "community")
_INTEGRATIONS = ("Snowflake", "dbt", "BigQuery", "Redshift", "Databricks", "Postgres", "Fivetran",
                 "Airflow", "Looker")
_ACTIVATIONS = ("first_query_run", "first_source_connected")

#: How many filler trials of each kind. Most trials never get far: that is what makes a PQL signal.
_FILLER_MIX = {
    "tourist": 7,     # signs up, looks around, never activates
    "light": 8,       # activates, uses it a day or two
    "regular": 6,     # activates, comes back on 3+ days: 2 points, not enough alone
    "one_signal": 3,  # activates, invites or integrates, two days: 3 points
    "engaged": 5,     # activates, a signal and 3+ days: qualifies if the company fits
}
_LEGACY_FILLERS = 3  # how many filler users are on the legacy (Title Case) client


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _active_days(rng: random.Random, start: int, count: int) -> list[int]:
    """The signup day plus `count - 1` later days: weekdays up to Fri 13, the odd Saturday."""
    later = [d for d in range(start + 1, 15)
             if d not in (7, 8, 14) or (d != 8 and rng.random() < 0.15)]
    return [start, *sorted(rng.sample(later, min(count - 1, len(later))))]


def _filler_trial(rng: random.Random, number: int, kind: str, company: tuple[str, str, int],
                  first: str, last: str, legacy: bool) -> _Trial:
    name, domain, size = company
    t = _Trial(f"user-{number:02d}", legacy=legacy)
    start = rng.choice((2, 2, 3, 3, 4, 4, 5, 6))  # Monday and midweek sign-ups are likelier
    count = {"tourist": rng.randint(1, 2), "light": rng.randint(1, 2), "regular": rng.randint(3, 5),
             "one_signal": 2, "engaged": rng.randint(3, 5)}[kind]
    days = _active_days(rng, start, count)

    # What happens on which day, in order; page views are sprinkled around these.
    plan: dict[int, list[tuple[str, dict[str, Any]]]] = {day: [] for day in days}
    if kind != "tourist":
        activated = days[1] if len(days) > 1 and rng.random() < 0.3 else days[0]
        plan[activated].append(("activation_complete", {"activation_type": rng.choice(_ACTIVATIONS)}))
        after = [d for d in days if d >= activated]
        if kind in ("one_signal", "engaged"):
            if rng.random() < 0.5:
                plan[rng.choice(after)].append(("integration_connected",
                                               {"integration_type": rng.choice(_INTEGRATIONS)}))
            else:
                invitee = f"{rng.choice(_FIRST)}.{rng.choice(_LAST)}@{domain}".lower().replace("'", "")
                plan[rng.choice(after)].append(("invite_sent", {"invitee_email": invitee}))
        if kind == "regular" and rng.random() < 0.4:  # a single look at pricing: curiosity, not a signal
            plan[rng.choice(days)].append(("page_view", {"page_path": "/pricing"}))
        if kind == "engaged" and len(days) >= 3 and rng.random() < 0.3:
            for day in rng.sample(days[1:], 2):
                plan[day].append(("page_view", {"page_path": rng.choice(("/pricing", "/billing"))}))

    for day in days:
        if day == start:
            clock = rng.randint(10 * 60, 17 * 60)  # after Sarah and Tom, so the demo opens with them
            t.signup(day, _hhmm(clock), first, last, rng.choice(_TITLES), name, size, domain=domain,
                     source=rng.choice(_SOURCES))
            clock += rng.randint(1, 3)
        elif rng.random() < 0.12:
            clock = rng.randint(19 * 60, 21 * 60 + 30)  # a few evenings
        else:
            clock = rng.randint(9 * 60, 17 * 60)
        t.session(day, _hhmm(clock))
        views = [("page_view", {"page_path": rng.choice(_APP_PAGES)}) for _ in range(rng.randint(0, 3))]
        split = rng.randint(0, len(views))
        for event, props in views[:split] + plan[day] + views[split:]:
            clock += rng.randint(2, 25)
            t.track(day, _hhmm(clock), event, **props)
    return t


def _fillers(rng: random.Random) -> list[_Trial]:
    kinds = [kind for kind, count in _FILLER_MIX.items() for _ in range(count)]
    rng.shuffle(kinds)
    companies = rng.sample(_COMPANIES, len(kinds))
    people = zip(rng.sample(_FIRST, len(kinds)), rng.sample(_LAST, len(kinds)), strict=True)
    legacy = set(rng.sample(range(len(kinds)), _LEGACY_FILLERS))
    return [
        _filler_trial(rng, number, kind, company, first, last, number - 1 in legacy)
        for number, (kind, company, (first, last)) in enumerate(zip(kinds, companies, people, strict=True), start=1)
    ]


# -- Output ---------------------------------------------------------------------------------------------


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def events() -> list[dict[str, Any]]:
    """Every event of the sample in Segment's track shape, in timestamp order."""
    trials = [scenario() for scenario in NAMED] + _fillers(random.Random(SEED))
    calls = []
    for trial in trials:
        for n, (at, event, props) in enumerate(trial.events, start=1):
            calls.append({
                "type": "track",
                "event": event,
                "userId": trial.user_id,
                "timestamp": _stamp(at),
                "messageId": f"{trial.user_id}-{n:03d}",
                "properties": props,
            })
    # Same-second ties (rare) fall back to the message id, so the order is total and stable.
    calls.sort(key=lambda call: (call["timestamp"], call["messageId"]))
    return calls


def render() -> str:
    """The sample file's exact content: one JSON object per line."""
    return "".join(json.dumps(call, ensure_ascii=False) + "\n" for call in events())


def write(path: Path = SAMPLE_PATH) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(render().encode("utf-8"))  # bytes: no newline translation on Windows
    return path


# -- What the sample is meant to show, as of SAMPLE_AS_OF -------------------------------------------------


def expected_outcomes() -> dict[str, tuple[Status, Tier | None]]:
    """Each named user's intended (status, tier) as of `SAMPLE_AS_OF`, with the default rules."""
    q, x, dnt, below = Status.QUALIFIED, Status.EXCLUDED, Status.DO_NOT_TOUCH, Status.BELOW_THRESHOLD
    return {
        "sarah": (q, Tier.MEDIUM),
        "tom": (x, None),
        "dana": (q, Tier.FAST_LANE),
        "marcus": (q, Tier.FAST_LANE),
        "elena": (q, Tier.HIGH),
        "raj": (q, Tier.HIGH),
        "grace": (q, Tier.MEDIUM),
        "owen": (q, Tier.MEDIUM),
        "aisha": (q, Tier.MEDIUM),
        "ben": (q, Tier.MEDIUM),
        "nina": (q, Tier.HIGH),
        "kevin": (x, None),
        "test-meridian": (x, None),
        "hiro": (x, None),
        "lucia": (x, None),
        "sam": (x, None),
        "leo": (dnt, Tier.HIGH),
        "hannah": (dnt, Tier.HIGH),
        "victor": (dnt, Tier.MEDIUM),
        "chloe": (below, None),
        "diego": (below, None),
    }


def expected_reasons() -> dict[str, str]:
    """The reason code each excluded, do-not-touch or gated named user is there to show."""
    return {
        "tom": "company_size_out_of_range",
        "kevin": "personal_email_domain",
        "test-meridian": "test_account",
        "hiro": "company_size_out_of_range",
        "lucia": "company_size_unknown",
        "sam": "already_converted",
        "leo": "checkout_in_progress",
        "hannah": "support_ticket_open",
        "victor": "opted_out",
        "diego": "not_activated",
    }


if __name__ == "__main__":
    if sys.argv[1:] == ["-"]:
        sys.stdout.write(render())
    else:
        print(f"wrote {write()}", file=sys.stderr)
