"""`pqlbot score FILE` and `pqlbot backtest FILE` on every core: a file's users shared out between processes.

Why: parsing a call (pydantic), judging a user and replaying one are pure Python, one core each; on two cores a big
file is done in about half the time only if both do half the work. Users are judged and replayed independently of
each other, so they are what is shared out: each process parses, groups and judges (or replays) its own users, and
the command prints what they found. The parse must happen in the process that uses the events: handing a parsed
event from one process to another (pickling it) costs as much as parsing it.

How: the command forks n processes (so that all share the rules, the loaded modules and `hash`'s seed), and they
talk in rounds, through the command: a round's messages say "to process j, this", and the command hands each
process what the others sent it. The command judges nobody itself: it holds none of the millions of objects the
processes make, and they leave at once when the run is over, rather than free them one by one.
- Each process reads the whole file (reading a line is cheap next to parsing it) and parses only its share of the
  lines: a line's share comes from a cheap look at the raw text, the value after `"userId":"` (hashed: its process
  is `hash(value) % n`), or the line's number when there is none. The look is only a guess at whose call it is,
  and nothing depends on it being right: every line is parsed by exactly one process, and its event then goes to
  the process of the user it really belongs to (below).
- Round 1, who is who: each process hands over the links its calls ask for (scoring/identity.py: an anonymous id
  or an alias joined to a user; the first asked for in the file stands) and its group calls. The command puts the
  links in file order and makes them (`chained`), works out every account's group traits from the group calls in
  file order (the command's own reading: `pqlbot score` those up to its `--at`, the backtest every one), and hands
  both to every process.
- Round 2, whose events: each process resolves its events to the users they belong to (`resolve` with those links)
  and hands over those of other processes' users (the user's process: `hash(user id) % n`); the command passes
  them on. Usually none move: they do for an anonymous visitor's calls, an aliased id's, a numeric or escaped id's.
  Rounds 1 and 2 are the same whatever the command: `_own_events` in each process, `_rounds` in the command.
- Then each process does the command's work on its own users' events, in file order (a step of its own):
  - `pqlbot score` (`_judged`): each process judges its users (`score_grouped`) and hands back their verdicts (as
    JSON lines for `--json`) with the line of each user's first call, so the command prints them in the order users
    first appear, as in one process. Invalid lines come back with their numbers and are reported in order.
  - `--json` adds the account roll-up (scoring/accounts.py), shared out too, by account (`hash(account key) % n`):
    each process hands each account's members to the account's process (their first call's line, and the part of
    their tallies an account reads, `Slots`, when it holds anything); that process judges which of its accounts'
    triggers fired, asks the processes that judged those accounts' members for their verdicts, and judges the
    accounts, as `score_users_and_accounts` does. Their lines come back with the line of their members' first call,
    so they follow the users' in the order accounts first appear.
  - `pqlbot backtest` (`_replays`): each process reads its users' histories (bot/calibration/backtest.py
    `Histories`), replays each user through each rules set, here (no worker pool of its own), hands each account's
    members' replays to the account's process (`hash(account key) % n`), which judges its accounts
    (`judge_accounts`), and hands back what the report is made of (`Replays`: the users with a lead or a trigger
    fired, with the line where their history starts, its accounts' outcomes, and the span of the histories). The
    command merges them, in the order users and accounts first appear, into one process's.
- A process that fails or dies makes the command fail with a message saying so (`Failed`); a file that cannot be
  read through (not UTF-8, an I/O error) is done again in one process (None from `score_file`, `backtest_file`),
  which stops where it always has, with the same words.
Standard input and files under `APART_FROM` bytes stay in one process: a process costs more than it saves there,
and standard input cannot be read twice.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import signal
import stat
import traceback
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from multiprocessing.connection import Connection, wait
from multiprocessing.reduction import ForkingPickler
from operator import itemgetter
from typing import TYPE_CHECKING, Any, NoReturn

import orjson

from bot.cli.common import UNREADABLE, open_text
from scoring import Event, EventError, Rules, ScoreResult, parse_event, paused_gc
from scoring import events as ev
from scoring.accounts import Slots, account_part, fired_triggers, group_of, has_account_triggers, score_account
from scoring.engine import group_traits, score_grouped
from scoring.identity import ANONYMOUS, chained, is_anonymous, offers, resolve

if TYPE_CHECKING:  # imported where used: `pqlbot score` has no need of them
    from bot.calibration.backtest import Replays, Window

APART_FROM = 1 << 20  # bytes: a smaller file is scored in the command's own process
_FIRST, _SECOND = itemgetter(0), itemgetter(1)
_USER_KEY = '"userId":"'
Message = Any
Own = tuple[list[tuple[int, Event]], dict]  # a process's own users' events (line, event) and the group traits


class Failed(RuntimeError):
    """A scoring or replay process failed or died: the run is not complete, and says so."""


@dataclass
class Scored:
    """What the processes found, merged: the users' verdicts in the order users first appear (ScoreResults, or
    their JSON lines for `--json`), the accounts' JSON lines after them (`--json` only), the invalid lines
    (number, why) in file order, and how many events were valid."""

    users: list[Any] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)
    invalid: list[tuple[int, str]] = field(default_factory=list)
    events: int = 0


def line_of(result: ScoreResult) -> str:
    """A verdict as `pqlbot score --json` prints it: its JSON object on one line, UTF-8 as it is (orjson: a tenth
    of the standard library's time, a second at 100,000 users)."""
    return orjson.dumps(result.to_json()).decode()


def processes_for(requested: int | None) -> int:
    """How many processes: as asked, else one per CPU this process may run on."""
    if requested is not None:
        return max(1, requested)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def splits(path: str, processes: int) -> bool:
    """Whether `path` is scored (or replayed) in several processes: a regular file of at least APART_FROM bytes, and
    more than one process asked for."""
    if processes < 2 or path == "-":
        return False
    try:
        info = os.stat(path)
    except OSError:
        return False  # the one-process path says what is wrong, in its words
    return stat.S_ISREG(info.st_mode) and info.st_size >= APART_FROM


def score_file(path: str, rules: Rules, at: datetime, tz: tzinfo, *, processes: int,
               as_json: bool) -> Scored | None:
    """The verdicts on the users of file `path` (see the module docstring), by `processes` processes; None when the
    file cannot be read through. Raises `Failed` when a process fails or dies."""
    crew = _Crew(processes, "scoring", lambda k: _share(path, rules, at, tz, k, processes, as_json))
    with crew:
        if (parsed := _rounds(crew, lambda calls: group_traits(calls, at))) is None:
            return None
        invalid, events, found = parsed
        scored = Scored(invalid=invalid, events=events)
        scored.users = [payload for _, payload in sorted((user for users, _ in found for user in users),
                                                         key=_FIRST)]
        if _rolls_up(rules, as_json):
            # Round 3: each account's members to its process; which members' verdicts it wants from which process;
            # those verdicts; the accounts' lines.
            wanted = crew.exchange(_transposed([homes for _, homes in found]))
            verdicts = crew.exchange(_transposed(wanted))
            lines = crew.exchange(_transposed(verdicts))
            scored.accounts = [line for _, line in sorted((line for found in lines for line in found), key=_FIRST)]
        crew.finish()
    return scored


@dataclass
class Backtested:
    """What the processes replayed, merged: one `Replays` for each rules set, as one process would have made them
    (bot/calibration/backtest.py `report` reads them), the invalid lines (number, why) in file order, and how many
    events were valid."""

    replays: list[Replays]
    invalid: list[tuple[int, str]]
    events: int


def backtest_file(path: str, sets: Sequence[Rules], tz: tzinfo, window: Window, *,
                  processes: int) -> Backtested | None:
    """The replays of the users of file `path` through each rules set of `sets` (the file parsed with the first's
    event names: the others must name events the same way), by `processes` processes (see the module docstring);
    None when the file cannot be read through. Raises `Failed` when a process fails or dies."""
    from bot.calibration.backtest import Replays, account_traits

    crew = _Crew(processes, "replay", lambda k: _replays(path, sets, tz, window, k, processes))
    with crew:
        if (parsed := _rounds(crew, account_traits)) is None:
            return None
        invalid, events, homes = parsed
        found = crew.exchange(_transposed(homes))  # round 3: the accounts judged where their members went
        crew.finish()
    return Backtested([Replays.merged([parts[i] for parts in found]) for i in range(len(sets))], invalid, events)


def _rounds(crew: _Crew, traits: Callable[[list[Event]], dict]
            ) -> tuple[list[tuple[int, str]], int, list[Message]] | None:
    """The command's side of rounds 1 and 2 (the module docstring): the links made of those the processes' calls
    ask for, and the accounts' group traits (`traits` of the group calls, in file order), handed to every process;
    then the events of each process's users passed on. Returns the invalid lines in file order, how many events were
    valid, and each process's first message of its own step; None when the file cannot be read through."""
    asks = crew.gather()
    if any(message is None for message in asks):
        return None
    invalid = sorted((bad for *_, rejected, _ in asks for bad in rejected), key=_FIRST)
    calls = sorted((call for _, found, _, _ in asks for call in found), key=_FIRST)
    made = (_links([asked for asked, *_ in asks]), traits([event for _, event in calls]))
    away = crew.exchange([made] * crew.size)
    return invalid, sum(count for *_, count in asks), crew.exchange(_transposed(away))


def _rolls_up(rules: Rules, as_json: bool) -> bool:
    """Whether the run ends with the account roll-up: `--json`, with account triggers in the rules."""
    return as_json and has_account_triggers(rules)


def _transposed(messages: Sequence[Sequence[Message]]) -> list[list[Message]]:
    """Messages of the form "to each process, this" (messages[from][to]) as each process receives them (by sender)."""
    return [[sent[to] for sent in messages] for to in range(len(messages))]


def _links(asked: Sequence[dict[str, tuple[int, int, str]]]) -> dict[str, str]:
    """The links made of those each process's calls ask for (linked id -> (line, place in the call, user)): the first
    asked for in the file stands, and they are made in the order they were first asked for, as in one process."""
    first: dict[str, tuple[int, int, str]] = {}
    for found in asked:
        for alias, where in found.items():
            if alias not in first or where < first[alias]:
                first[alias] = where
    return chained({alias: where[2] for alias, where in sorted(first.items(), key=_SECOND)})  # one link per place


# ---------------------------------------------------------------------------------------------------------------
# One process's share
# ---------------------------------------------------------------------------------------------------------------

def _share(path: str, rules: Rules, at: datetime, tz: tzinfo, k: int, n: int,
           as_json: bool) -> Generator[Message, Message, None]:
    """Process k of n scoring, as a conversation with the command: each `yield` hands a message over and takes the
    reply (see the module docstring for the rounds): its own users' events (`_own_events`), then their verdicts
    (`_judged`). The first message is None when the file cannot be read through."""
    with paused_gc():
        if (own := (yield from _own_events(path, rules, k, n))) is not None:
            yield from _judged(*own, rules, at, tz, k, n, as_json)


def _replays(path: str, sets: Sequence[Rules], tz: tzinfo, window: Window, k: int,
             n: int) -> Generator[Message, Message, None]:
    """Process k of n replaying for `pqlbot backtest`, as `_share` scores: its own users' events (parsed with the
    first rules set's names), read into histories and replayed through each rules set in turn, in this process (the
    command's processes are one per CPU already); hands back their `Replays`, one per rules set."""
    from bot.calibration.backtest import Histories, judge_accounts, replayed

    with paused_gc():
        if (own := (yield from _own_events(path, sets[0], k, n))) is not None:
            histories, groups = Histories.of(own[0]), own[1]
            del own
            found = [replayed(histories, rules, tz=tz, groups=groups, window=window, workers=1) for rules in sets]
            # Round 3: each account's members to its process (`hash(account key) % n`), which judges its accounts.
            homes: list[list[list]] = [[[] for _ in sets] for _ in range(n)]
            for index, replays in enumerate(found):
                for user in replays.users:
                    if user.member is not None:
                        homes[hash(user.member[0]) % n][index].append(user)
            sent = _unpacked((yield _packed(homes, k)), k, homes[k])
            for index, (rules, replays) in enumerate(zip(sets, found, strict=True)):
                replays.accounts = judge_accounts((user for part in sent for user in part[index]), rules, window, tz)
                # The command reads the users with a lead or a trigger fired, not what their accounts read of them.
                replays.users = [user._replace(member=None) for user in replays.users if user.lead or user.fired]
            yield found


def _own_events(path: str, rules: Rules, k: int, n: int) -> Generator[Message, Message, Own | None]:
    """Process k's side of rounds 1 and 2 (the module docstring): its share of the lines parsed, the links its calls
    ask for and its group calls handed over, its events resolved and those of other processes' users handed over.
    Returns its own users' events (line number, event) in file order, and every account's group traits; None (after
    handing over None) when the file cannot be read through."""
    try:
        own, rejected = _parse_share(path, rules, k, n)
    except UNREADABLE:
        yield None
        return None
    asked: dict[str, tuple[int, int, str]] = {}
    calls: list[tuple[int, Event]] = []
    alias_call, group_call, anonymous_key = ev.ALIAS, ev.GROUP, ANONYMOUS
    for number, event in own:  # one pass over half a million calls: `offers` inlined for the common call
        name, user, anonymous = event.name, event.user_id, event.anonymous_id
        if name == alias_call:
            for place, (alias, user) in enumerate(offers(event)):
                if alias not in asked:
                    asked[alias] = (number, place, user)
            continue
        if anonymous is not None and user is not None and (alias := anonymous_key + anonymous) not in asked:
            asked[alias] = (number, 0, user)
        if name == group_call:
            calls.append((number, event))
    links, groups = yield asked, calls, rejected, len(own)

    kept, away = _sort_out(own, links, k, n)
    del own
    kept.extend(moved for sent in _unpacked((yield _packed(away, k)), k, away[k]) for moved in sent)
    kept.sort(key=_FIRST)
    return kept, groups


def _judged(kept: list[tuple[int, Event]], groups: dict, rules: Rules, at: datetime, tz: tzinfo, k: int, n: int,
            as_json: bool) -> Generator[Message, Message, None]:
    """Process k's verdicts on its users (`kept`: their events in file order), each with the line of the user's first
    call; with `--json` and account triggers, its share of the account roll-up after them (`_roll_up`)."""
    by_user: dict[str, list[Event]] = {}  # each user's events, users in the order of their first line
    first: list[int] = []  # that line
    for number, event in kept:
        held = by_user.get(user := event.user_id)
        if held is None:
            by_user[user] = [event]
            first.append(number)
        else:
            held.append(event)
    kept.clear()  # the pairs: freed before judging
    # by_user is kept to the end: freeing half a million events here took 0.4 s of the run (`_run` leaves at once).
    members = score_grouped(by_user, rules, at, tz=tz, groups=groups)
    users = []
    for (result, _), number in zip(members, first, strict=True):
        users.append((number, line_of(result) if as_json else result))
    if not _rolls_up(rules, as_json):
        yield users, None
        return
    homes: list[list[tuple]] = [[] for _ in range(n)]  # each account's members, to its process
    for (result, tally), number in zip(members, first, strict=True):
        if (key := result.account.key) is not None:
            part = account_part(tally, rules)
            homes[hash(key) % n].append((key, result.user_id, number, part if any(part.slots) else None))
    sent = _unpacked((yield users, _packed(homes, k)), k, homes[k])
    yield from _roll_up(sent, members, rules, at, tz, groups, k, n)


def _roll_up(sent: Sequence[list], members: Sequence[tuple[ScoreResult, Any]], rules: Rules, at: datetime,
             tz: tzinfo, groups: dict, k: int, n: int) -> Generator[Message, Message, None]:
    """This process's share of the account roll-up, as `score_users_and_accounts` does it: its accounts' members from
    every process (`sent`: account key, user id, line of their first call, and their `Slots` when an account trigger
    reads any of their events); then which accounts' triggers fired, the verdicts of their members asked of the
    processes that judged them (this one hands over those it is asked for), and each account's line with the line of
    its members' first call, for the command to put them in the order accounts first appear."""
    accounts: dict[str, list[tuple[int, str, Slots | None]]] = {}
    for key, user, first, slots in sorted((member for found in sent for member in found), key=itemgetter(2)):
        accounts.setdefault(key, []).append((first, user, slots))
    fired_in = {}
    for key, found in accounts.items():
        # Only the members with events an account trigger reads can make one fire (`fired_triggers` counts and
        # merges nothing of the others); judged in the order `score_users_and_accounts` judges them.
        readers = sorted(((user, slots) for _, user, slots in found if slots is not None), key=_FIRST)
        if readers and (fired := fired_triggers(readers, rules, at, tz)):
            fired_in[key] = fired
    wanted: list[list[str]] = [[] for _ in range(n)]
    for key in fired_in:
        for _, user, _ in accounts[key]:
            wanted[hash(user) % n].append(user)
    asked = _unpacked((yield _packed(wanted, k)), k, wanted[k])
    held = {user for found in asked for user in found}
    mine = {result.user_id: (result, account_part(tally, rules)) for result, tally in members if result.user_id in held}
    verdicts: dict[str, tuple[ScoreResult, Slots]] = {}
    answers = [{user: mine[user] for user in found} for found in asked]
    for found in _unpacked((yield _packed(answers, k)), k, answers[k]):
        verdicts.update(found)
    lines = []
    for key, fired in fired_in.items():
        found = [verdicts[user] for _, user, _ in accounts[key]]
        result = score_account(key, found, rules, at, tz, groups.get(group_of(key) or ""), fired=fired)
        lines.append((accounts[key][0][0], line_of(result)))
    yield lines


def _packed(parts: Sequence[Any], k: int) -> list[bytes | None]:
    """Process k's message "to each process, this", each other process's part pickled here: the command passes it
    on as it is (unpickling and pickling it again would be its work alone, while the processes wait). Its own part
    stays here (None)."""
    return [None if to == k else pickle.dumps(part, protocol=pickle.HIGHEST_PROTOCOL) for to, part in enumerate(parts)]


def _unpacked(received: Sequence[bytes | None], k: int, mine: Any) -> list[Any]:
    """What each process sent process k (`_packed`), unpickled; `mine`: the part it kept for itself."""
    return [mine if sender == k else pickle.loads(part) for sender, part in enumerate(received)]


def _parse_share(path: str, rules: Rules, k: int, n: int) -> tuple[list[tuple[int, Event]], list[tuple[int, str]]]:
    """Process k's share of the file's lines, parsed: (line number, event) for the valid ones, (line number, why)
    for the others, in file order."""
    own: list[tuple[int, Event]] = []
    rejected: list[tuple[int, str]] = []
    skip = len(_USER_KEY)
    with open_text(path) as stream:
        for number, line in enumerate(stream, start=1):
            start = line.find(_USER_KEY)
            if start >= 0:
                start += skip
                if hash(line[start:line.find('"', start)]) % n != k:
                    continue
            elif number % n != k:
                continue
            if not line.strip():
                continue
            try:
                own.append((number, parse_event(line, rules)))
            except EventError as exc:
                rejected.append((number, str(exc)))
    return own, rejected


def _sort_out(own: Sequence[tuple[int, Event]], links: dict[str, str], k: int,
              n: int) -> tuple[list[tuple[int, Event]], list[list[tuple[int, Event]]]]:
    """The events under the users they belong to: process k's users', and each other process's users'. An anonymous
    visitor's calls that nothing links are dropped: nobody scores them (their group calls were counted already)."""
    kept: list[tuple[int, Event]] = []
    away: list[list[tuple[int, Event]]] = [[] for _ in range(n)]
    for number, event in own:
        user = event.user_id
        if user is None or user in links:  # not the common case, a user's own call with their id linked nowhere
            [event] = resolve([event], links)
            user = event.user_id
        if is_anonymous(user):
            continue
        (kept if (home := hash(user) % n) == k else away[home]).append((number, event))
    return kept, away


# ---------------------------------------------------------------------------------------------------------------
# The processes
# ---------------------------------------------------------------------------------------------------------------


class _Crew:
    """The n processes of one run, seen from the command: each runs its share (a conversation, `_share` or
    `_replays`), and the command passes their messages. `doing`: what they do, in the words of a failure ("scoring",
    "replay"). A context manager: they are forked on entering and stopped on leaving, however it is left."""

    def __init__(self, size: int, doing: str, share: Any) -> None:
        self.size, self.doing, self.share = size, doing, share
        self.finished = False
        self.conns: list[Connection] = []
        self.processes: list = []

    def __enter__(self) -> _Crew:
        context = multiprocessing.get_context("fork")  # the rules and loaded modules come along, unpickled
        pipes = [context.Pipe() for _ in range(self.size)]
        for k, (_, theirs) in enumerate(pipes):
            others = [end for pair in pipes for end in pair if end is not theirs]
            process = context.Process(target=_run, args=(self.share, k, theirs, others),
                                      name=f"pqlbot-{self.doing}-{k + 1}", daemon=True)
            process.start()
            self.processes.append(process)
        for mine, theirs in pipes:
            theirs.close()  # so that a process that dies is seen as gone
            self.conns.append(mine)
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self.processes:
            if not self.finished and process.is_alive():
                process.terminate()  # stopped early: what it would still do is not wanted
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()
        for conn in self.conns:
            conn.close()

    def gather(self) -> list[Message]:
        """Every process's next message, in process order."""
        return [self._receive(k) for k in range(self.size)]

    def exchange(self, replies: Sequence[Message]) -> list[Message]:
        """Hand each process its reply (`replies[k]`; one handed to several is pickled once), and take their next
        messages."""
        pickled: dict[int, Any] = {}
        for k, reply in enumerate(replies):
            if id(reply) not in pickled:
                pickled[id(reply)] = ForkingPickler.dumps(reply)
            try:
                self.conns[k].send_bytes(pickled[id(reply)])
            except OSError:  # a broken pipe: it is gone
                self._gone(k)
        return self.gather()

    def finish(self) -> None:
        """Tell every process the run is over: each leaves at once."""
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.send(None)
        self.finished = True

    def _receive(self, k: int) -> Message:
        """Process k's next message; `Failed` when it failed or died instead."""
        conn, process = self.conns[k], self.processes[k]
        wait([conn, process.sentinel])
        try:
            if conn.poll():
                status, message = conn.recv()
                if status == "ok":
                    return message
                raise Failed(f"{self.doing} process {k + 1} of {self.size} failed:\n{message}")
        except (EOFError, OSError):
            pass
        self._gone(k)

    def _gone(self, k: int) -> NoReturn:
        process = self.processes[k]
        process.join(timeout=5)
        raise Failed(f"{self.doing} process {k + 1} of {self.size} stopped ({_how(process.exitcode)}) before handing "
                     "back its users")


def _how(exitcode: int | None) -> str:
    if exitcode is None:
        return "did not answer"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit status {exitcode}"


def _run(share: Any, k: int, conn: Connection, others: Iterable[Connection]) -> None:
    """Process k: run its share, passing its messages to the command and the replies back; on any error, hand the
    command what went wrong."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the command's to handle: it stops the processes
    for other in others:
        other.close()  # only the command holds the others' ends: one that dies is then seen as gone
    conversation = share(k)
    try:
        message = next(conversation)
        while True:
            conn.send(("ok", message))
            if (reply := conn.recv()) is None:
                os._exit(0)  # the run is over: gone at once, rather than freeing its share's objects one by one
            message = conversation.send(reply)
    except StopIteration:
        pass
    except (EOFError, BrokenPipeError):
        os._exit(1)  # the command is gone: nobody to hand anything to
    except BaseException:  # noqa: BLE001 - whatever it is, the command must hear of it rather than wait
        conn.send(("failed", traceback.format_exc()))
        os._exit(1)
