"""Scoring bench: parse, validate and score three weeks of trial sign-ups' Segment events, as `pqlbot score` does.

    .venv/bin/python bench/score.py [--users 100000] [--events 1000000] [--seed 7] [--profile]

The events file is generated once (deterministically, from the seed) into bench/.data/, named by its
parameters, and reused afterwards. It is generated in a child process so that neither its time nor its
memory counts towards the figures measured here.

Measured, in this process and in this order (as bot/cli/__init__.py does it):
- read: reading the file's lines (text, UTF-8), in ~16 MiB batches;
- parse+validate: `parse_event(line, rules)` for every line (invalid lines are counted, as the CLI skips them);
- group+score: `score_users(events, rules, AT, tz=America/New_York)`;
- whole run: read + parse + score, wall time; peak memory is the process's ru_maxrss.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))  # run from anywhere, installed or not

DATA_DIR = BENCH / ".data"
#: Bump when the generator changes what it writes, so stale files are not reused.
GENERATOR_VERSION = 2

TZ = ZoneInfo("America/New_York")
#: Signups are spread over three weeks of Nov 2026; the bench scores as of the morning after.
SIGNUPS_FROM = datetime(2026, 11, 1, tzinfo=TZ)
SIGNUPS_UNTIL = datetime(2026, 11, 22, tzinfo=TZ)
AT = datetime(2026, 11, 22, 9, 0, tzinfo=TZ)
ACTIVE_DAYS = 14  # each user's events fall in the 14 days after signup (or up to AT, if sooner)

TARGET_WHOLE_RUN_S = 10.0  # for DEFAULT_USERS and DEFAULT_EVENTS
DEFAULT_USERS = 100_000
DEFAULT_EVENTS = 1_000_000
BATCH_BYTES = 16 << 20


# --------------------------------------------------------------------------------------------------
# Generation (runs in a child process; not measured)
# --------------------------------------------------------------------------------------------------

_FIRST = ("Sarah", "Tom", "Priya", "Diego", "Mei", "Olu", "Anna", "James", "Fatima", "Lukas", "Chloe", "Ravi",
          "Grace", "Mateo", "Yuki", "Noah", "Amara", "Ivan", "Leah", "Omar", "Sofia", "Ben", "Hana", "Kofi")
_LAST = ("Chen", "Okafor", "Miller", "Garcia", "Novak", "Singh", "Kim", "Rossi", "Dubois", "Hughes", "Tanaka",
         "Mensah", "Larsen", "Silva", "Cohen", "Walsh", "Haddad", "Petrov", "Nguyen", "Brooks", "Ortiz", "Ali")
_WORD1 = ("Bright", "North", "Blue", "Iron", "Silver", "Quiet", "Rapid", "Clear", "Open", "Summit", "Harbor",
          "Cedar", "Granite", "Lumen", "Vector", "Pioneer", "Atlas", "Beacon", "Orbit", "Maple")
_WORD2 = ("Harbor", "Ridge", "Field", "Stone", "Works", "Bridge", "Peak", "Path", "Wave", "Forge", "Grove",
          "Point", "Line", "Labs", "Cloud", "Data", "Logic", "Systems", "Dynamics", "Metrics")
_SUFFIX = ("Inc", "LLC", "Group", "Co", "Technologies", "Partners", "Health", "Logistics", "Software", "")
_TITLES = ("Head of Operations", "VP Engineering", "Product Manager", "Data Analyst", "CTO", "Team Lead",
           "Marketing Manager", "Founder", None, None)
_SOURCES = ("organic", "paid_search", "referral", "webinar", "g2", None)
_INTEGRATIONS = ("slack", "salesforce", "hubspot", "github", "jira", "google_drive", "zapier", "snowflake")
_APP_PATHS = ("/dashboard", "/projects", "/projects/{n}", "/projects/{n}/settings", "/reports", "/reports/{n}",
              "/settings/profile", "/settings/team", "/integrations", "/docs/getting-started", "/search?q=q{n}")
_BILLING_PATHS = ("/pricing", "/pricing/", "/Pricing?plan=team", "/pricing/enterprise", "/billing",
                  "/billing/invoices", "/billing/plan")
_USER_AGENTS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
)


def data_path(users: int, events: int, seed: int) -> Path:
    return DATA_DIR / f"segment-u{users}-e{events}-s{seed}-g{GENERATOR_VERSION}.jsonl"


def events_file(users: int, events: int, seed: int) -> Path:
    """The events file for these parameters, generated first when missing: in a child process, so that
    generation's memory stays out of the caller's peak."""
    path = data_path(users, events, seed)
    if not path.exists():
        subprocess.run([sys.executable, str(Path(__file__).resolve()), "--generate-only", "--users", str(users),
                        "--events", str(events), "--seed", str(seed)], check=True)
    return path


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _companies(rng: random.Random, count: int) -> list[tuple[str, str, int]]:
    """(name, domain, size): ~60% of sizes in 200-2000 (the ICP), ~30% smaller, ~10% larger."""
    out, domains = [], set()
    for _ in range(count):
        name = " ".join(w for w in (rng.choice(_WORD1), rng.choice(_WORD2), rng.choice(_SUFFIX)) if w)
        base = "".join(ch for ch in name.lower() if ch.isalnum())
        domain, n = f"{base}.com", 1
        while domain in domains:
            n += 1
            domain = f"{base}{n}.{rng.choice(('com', 'io', 'co', 'net'))}"
        domains.add(domain)
        r = rng.random()
        size = rng.randint(200, 2000) if r < 0.60 else rng.randint(5, 199) if r < 0.90 else rng.randint(2001, 40000)
        out.append((name, domain, size))
    return out


_FEATURES = ("sso", "audit_log", "admin_panel", "reports", "api_keys")


def _trigger_events(rng: random.Random, signup_ms: int, horizon: int, when) -> list[tuple[str, int, dict]]:  # noqa: ANN001
    """Seeds 000 and 001's trigger events, for a few per cent of users each (the default rules' [triggers]): buying
    clusters (pricing views, an upgrade click and a plan comparison within hours; a usage limit then an upgrade
    click), enterprise features, onboarding, SSO set-ups some never finish, failing integrations, security documents,
    seats provisioned and objects created."""
    out: list[tuple[str, int, dict]] = []
    hour = 3_600_000
    if rng.random() < 0.04:  # an active buyer, or most of one
        t = when()
        for _ in range(rng.choice((2, 3, 3, 4))):
            out.append(("page_view", t, {"page_path": rng.choice(("/pricing", "/pricing/enterprise"))}))
            t += rng.randrange(hour, 20 * hour)
        out.append(("upgrade_clicked", t, {"plan": "team"}))
        out.append(("plan_comparison_viewed", t + rng.randrange(60_000, 10 * hour), {}))
    if rng.random() < 0.03:
        t = when()
        out.append(("usage_limit_hit", t, {"limit": "projects"}))
        if rng.random() < 0.5:
            out.append(("upgrade_clicked", t + rng.randrange(60_000, 30 * hour), {"plan": "team"}))
    if rng.random() < 0.02:
        t = when()
        out.append(("plan_comparison_viewed", t, {}))
        out.append(("page_view", t + rng.randrange(60_000, 5 * 24 * hour), {"page_path": "/billing/plan"}))
    if rng.random() < 0.02:
        out.append(("enterprise_feature_accessed", when(), {"feature": rng.choice(_FEATURES)}))
    if rng.random() < 0.03:
        out.append(("onboarding_completed", when(), {"level": rng.choice(("basic", "basic", "advanced"))}))
    if rng.random() < 0.02:
        t = when()
        out.append(("sso_config_started", t, {"provider": "okta"}))
        if rng.random() < 0.6:
            out.append(("sso_config_completed", t + rng.randrange(hour, 6 * 24 * hour), {"provider": "okta"}))
    if rng.random() < 0.02:
        for _ in range(rng.choice((1, 2, 3, 4))):
            out.append(("integration_failed", when(), {"integration_type": rng.choice(_INTEGRATIONS)}))
    if rng.random() < 0.015:
        out.append(("security_doc_downloaded", when(), {"document": "soc2_report"}))
    if rng.random() < 0.03:
        out.append(("seats_provisioned", when(), {"count": rng.randint(1, 15)}))
    if rng.random() < 0.05:
        for _ in range(rng.randint(1, 20)):
            out.append(("object_created", when(), {"type": "project"}))
    return [(name, min(ms, signup_ms + horizon - 1), props) for name, ms, props in out]


def generate(path: Path, users: int, events: int, seed: int) -> None:
    """Write `events` Segment track calls for `users` users, in timestamp order, to `path`."""
    if events < users:
        raise SystemExit("--events must be at least --users (every user has a signup)")
    rng = random.Random(seed)
    companies = _companies(rng, max(1, users // 3))
    start_ms = int(SIGNUPS_FROM.timestamp() * 1000)
    span_ms = int((SIGNUPS_UNTIL - SIGNUPS_FROM).total_seconds() * 1000)
    at_ms = int(AT.timestamp() * 1000)
    full_ms = ACTIVE_DAYS * 86_400_000

    # Pass 1: who, when, and how active (later signups have had less time, so fewer events).
    people = []
    for i in range(users):
        signup_ms = start_ms + rng.randrange(span_ms)
        horizon = min(full_ms, at_ms - signup_ms)
        weight = rng.lognormvariate(0, 0.9) * horizon / full_ms
        people.append((i, signup_ms, horizon, weight))
    extra = events - users
    total_weight = sum(p[3] for p in people)
    budgets = [int(p[3] / total_weight * extra) for p in people]
    for i in range(extra - sum(budgets)):
        budgets[i % users] += 1

    rows: list[tuple[int, int, str]] = []  # (timestamp ms, sequence, line)
    seq = 0

    for (i, signup_ms, horizon, _), budget in zip(people, budgets, strict=True):
        uid = f"usr_{i:07d}"
        anon = f"{rng.getrandbits(128):032x}"
        company, domain, size = rng.choice(companies)
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        email = f"{first}.{last}{rng.randrange(100) if rng.random() < 0.3 else ''}@{domain}".lower()
        context = {
            "library": {"name": "analytics.js", "version": "next-1.74.0"},
            "ip": f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            "userAgent": rng.choice(_USER_AGENTS),
            "locale": "en-US",
            "timezone": "America/New_York",
        }

        def emit(name: str, ms: int, props: dict, *, valid: bool = True) -> None:
            nonlocal seq
            sent = ms + rng.randrange(1500)
            call = {
                "type": "track",
                "event": name,
                "userId": uid,
                "anonymousId": anon,
                "messageId": f"ajs-next-{rng.getrandbits(128):032x}",
                "timestamp": _iso(ms),
                "sentAt": _iso(sent),
                "receivedAt": _iso(sent + 20 + rng.randrange(400)),
                "properties": props,
                "context": context,
                "version": 2,
            }
            if not valid:  # the odd broken call a real pipe carries: no zone, or no user
                if seq % 2:
                    call["timestamp"] = call["timestamp"].removesuffix("Z")
                else:
                    del call["userId"]
            rows.append((ms, seq, json.dumps(call, separators=(",", ":"))))
            seq += 1

        def when(lo_ms: int = 60_000) -> int:
            return signup_ms + min(horizon - 1, lo_ms + rng.randrange(max(1, horizon - lo_ms)))

        signup_props = {
            "email": email,
            "company_name": company,
            "company_size": size,
            "first_name": first,
            "last_name": last,
            "title": rng.choice(_TITLES),
            "signup_source": rng.choice(_SOURCES),
            "plan": "trial",
        }
        emit("signup_complete", signup_ms, {k: v for k, v in signup_props.items() if v is not None})

        specials: list[tuple[str, int, dict]] = []
        if rng.random() < 0.72:
            activated = signup_ms + min(horizon - 1, rng.randrange(300_000, 3 * 86_400_000))
            specials.append(("activation_complete", activated, {}))
        if rng.random() < 0.30:
            for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
                mate = f"{rng.choice(_FIRST)}.{rng.choice(_LAST)}@{domain}".lower()
                specials.append(("invite_sent", when(), {"invitee_email": mate}))
        if rng.random() < 0.25:
            for kind in rng.sample(_INTEGRATIONS, rng.choice((1, 1, 2))):
                specials.append(("integration_connected", when(), {"integration_type": kind}))
        if rng.random() < 0.015:
            specials.append(("demo_requested", when(), {"source": "in_app"}))
        if rng.random() < 0.03:
            specials.append(("checkout_started", when(), {"plan": rng.choice(("team", "business"))}))
        if rng.random() < 0.04:
            ticket = f"T-{rng.randrange(10**6):06d}"
            opened = when()
            specials.append(("support_ticket_opened", opened, {"ticket_id": ticket}))
            if rng.random() < 0.6 and opened + 3_600_000 < signup_ms + horizon:
                closed = opened + 3_600_000 + rng.randrange(86_400_000)
                specials.append(("support_ticket_closed", closed, {"ticket_id": ticket}))
        specials += _trigger_events(rng, signup_ms, horizon, when)
        specials = specials[:budget]
        for name, ms, props in specials:
            emit(name, min(ms, signup_ms + horizon - 1), props, valid=rng.random() >= 0.0005)

        # The rest of the budget is sessions of page views on a handful of active days.
        left = budget - len(specials)
        days_available = -(-horizon // 86_400_000)
        active = rng.sample(range(days_available), min(days_available, 1 + int(rng.expovariate(1 / 3))))
        while left > 0:
            day_start = rng.choice(active) * 86_400_000
            t = signup_ms + (day_start + rng.randrange(86_400_000)) % horizon
            emit("session_start", t, {}, valid=rng.random() >= 0.0005)
            left -= 1
            for _ in range(min(left, rng.randint(1, 7))):
                t = min(signup_ms + horizon - 1, t + rng.randrange(5_000, 300_000))
                r = rng.random()
                page = rng.choice(_BILLING_PATHS) if r < 0.05 else rng.choice(_APP_PATHS).format(n=rng.randrange(40))
                emit("page_view", t, {"page_path": page, "title": page.strip("/").split("/")[0].title() or "Home"},
                     valid=rng.random() >= 0.0005)
                left -= 1

    rows.sort()
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as out:
        for _, _, line in rows:
            out.write(line)
            out.write("\n")
    os.replace(tmp, path)  # a half-written file is never reused


# --------------------------------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------------------------------


def _maxrss_mib() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1 << 20) if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB on Linux


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}" if seconds > 0 else "inf"


def measure(path: Path, profile: bool, *, at_target_size: bool = True) -> None:
    from scoring import EventError, Status, Tier, load_rules, parse_event, paused_gc, score_users

    rules = load_rules()
    base_mib = _maxrss_mib()
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()

    events, rejected = [], Counter()
    lines = 0
    read_s = parse_s = 0.0
    started = time.perf_counter()
    # As `pqlbot score` does: no cyclic-GC scans while a million acyclic events pile up.
    with paused_gc(), open(path, encoding="utf-8") as stream:
        while True:
            t0 = time.perf_counter()
            batch = stream.readlines(BATCH_BYTES)
            t1 = time.perf_counter()
            read_s += t1 - t0
            if not batch:
                break
            if profiler:
                profiler.enable()
            for line in batch:
                if not line.strip():
                    continue
                try:
                    events.append(parse_event(line, rules))
                except EventError as exc:
                    rejected[str(exc).split(":", 1)[0]] += 1
            if profiler:
                profiler.disable()
            parse_s += time.perf_counter() - t1
            lines += len(batch)
    del batch
    t2 = time.perf_counter()
    if profiler:
        profiler.enable()
    results = score_users(events, rules, AT, tz=TZ)
    if profiler:
        profiler.disable()
    score_s = time.perf_counter() - t2
    whole_s = time.perf_counter() - started
    peak_mib = _maxrss_mib()

    users = len(results)
    verdict = "ok" if whole_s < TARGET_WHOLE_RUN_S else "MISSED"
    if profile:
        verdict = "not judged: cProfile inflates every figure"
    elif not at_target_size:
        verdict = f"not judged: the target is for {DEFAULT_USERS:,} users and {DEFAULT_EVENTS:,} events"
    print(f"read lines:        {read_s:8.2f} s   {_rate(lines, read_s)} lines/s ({lines:,} lines)")
    print(f"parse+validate:    {parse_s:8.2f} s   {_rate(lines, parse_s)} events/s "
          f"({len(events):,} valid, {sum(rejected.values()):,} rejected)")
    print(f"group+score:       {score_s:8.2f} s   {_rate(users, score_s)} users/s, "
          f"{_rate(len(events), score_s)} events/s ({users:,} users)")
    print(f"whole run:         {whole_s:8.2f} s   target < {TARGET_WHOLE_RUN_S:g} s on a 2-core machine: {verdict}")
    print(f"peak memory:       {peak_mib:8.0f} MiB (ru_maxrss; {base_mib:.0f} MiB after imports and rules)")
    statuses = Counter(r.status for r in results)
    print("status:            " + ", ".join(f"{s} {statuses[s]:,}" for s in Status))
    tiers = Counter(r.tier for r in results if r.tier is not None)
    print("tier:              " + ", ".join(f"{t} {tiers[t]:,}" for t in Tier))
    families = Counter(getattr(r, "family", None) for r in results if r.status is Status.QUALIFIED)
    print("family (qualified): " + ", ".join(f"{f} {n:,}" for f, n in sorted(families.items(), key=str)))
    fired = Counter(t.name for r in results for t in getattr(r, "triggers", ()))
    if fired:
        print("triggers:          " + ", ".join(f"{name} {n:,}" for name, n in fired.most_common()))
    if rejected:
        print("rejected:          " + ", ".join(f"{why} {n:,}" for why, n in rejected.most_common()))

    if profiler:
        import pstats

        print("\ncProfile, parse+validate and group+score, top 30 by own time:")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=DEFAULT_USERS, help="trial users (default %(default)s)")
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS, help="events in all (default %(default)s)")
    parser.add_argument("--seed", type=int, default=7, help="random seed for the events file (default %(default)s)")
    parser.add_argument("--profile", action="store_true", help="run parse and score under cProfile; print the top")
    parser.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.users < 1 or args.events < args.users:
        parser.error("need --users >= 1 and --events >= --users")
    path = data_path(args.users, args.events, args.seed)

    if args.generate_only:
        generate(path, args.users, args.events, args.seed)
        return 0
    if path.exists():
        size_mib = path.stat().st_size / (1 << 20)
        print(f"events file:       {path.relative_to(BENCH.parent)} (reused, {size_mib:,.0f} MiB)")
    else:
        t0 = time.perf_counter()
        events_file(args.users, args.events, args.seed)
        print(f"events file:       {path.relative_to(BENCH.parent)} (generated in {time.perf_counter() - t0:.1f} s, "
              f"not measured; {path.stat().st_size / (1 << 20):,.0f} MiB)")
    print(f"scoring as of:     {AT.isoformat()} ({TZ.key}); Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs")
    measure(path, args.profile, at_target_size=(args.users, args.events) == (DEFAULT_USERS, DEFAULT_EVENTS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
