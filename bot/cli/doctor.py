"""`pqlbot doctor`: check the configuration as `pqlbot serve` would use it (bot/doctor), line by line."""

from __future__ import annotations

import argparse

from pydantic import ValidationError

from bot.settings import Settings


def add(doctor: argparse.ArgumentParser, name: str) -> None:
    doctor.description = (
        "Check the configuration as `pqlbot serve` would use it, line by line: the store is reachable, writable and "
        "migrated; the rules file is valid; INGEST_TOKEN is set and not the example's; the Slack token works, has the "
        "manifest's scopes and the bot is in the alerts channel; every rep and the manager are real Slack users; the "
        "Socket Mode token works. Exits 0 when all is well, 1 otherwise.")
    doctor.set_defaults(run=run, settings_failed=settings_failed)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from bot import doctor

    findings = doctor.examine(settings)
    for finding in findings:
        print(finding.line())
    found = doctor.problems(findings)
    unknown = sum(1 for f in findings if f.ok is None)
    if found:
        print(f"\n{len(found)} problem{'s' * (len(found) != 1)} to fix" + (f", {unknown} not checked" if unknown
                                                                            else "") + ".")
        return 1
    print("\nAll is well." if not unknown else f"\nNo problems; {unknown} not checked (Slack unreachable).")
    return 0


def settings_failed(error: ValidationError) -> int:
    """Settings that do not even parse: each one on its own line, with what is wrong."""
    for problem in error.errors():
        name = str(problem["loc"][0]).upper() if problem["loc"] else "settings"
        print(f"FAIL  {name}: {problem['msg'].removeprefix('Value error, ')}")
    print(f"\n{len(error.errors())} setting{'s' * (len(error.errors()) != 1)} to fix.")
    return 1
