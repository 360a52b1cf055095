"""Socket Mode that fails cleanly: a token Slack refuses stops `pqlbot serve` with one line; Slack unreachable
at start is retried in the background (ingestion and the sweeps run meanwhile); drops after that are
slack_sdk's to reconnect (its SocketModeClient reconnects on its own once it has connected once)."""

from __future__ import annotations

import logging
import threading

from bot.slack.gateway import BAD_TOKEN, FAILURES, error_code

log = logging.getLogger(__name__)
#: Seconds between attempts to connect while Slack cannot be reached at start: doubling from the first, up to
#: the last (one warning line per attempt, so a long outage writes a line a minute, not a flood).
FIRST_WAIT, LONGEST_WAIT = 2.0, 60.0


class SocketModeRefused(Exception):
    """Slack refuses the app-level token: `str()` says so, with the fix, in one line."""


class Connection:
    """Connects a Bolt `SocketModeHandler` (`handler.connect()`), now or, while Slack is unreachable, later."""

    def __init__(self, handler: object, *, first_wait: float = FIRST_WAIT, longest_wait: float = LONGEST_WAIT):
        self.handler, self.first_wait, self.longest_wait = handler, first_wait, longest_wait
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Connect once; SocketModeRefused for a token Slack refuses; any other failure is retried in a thread."""
        if self._attempt(first=True):
            return
        self._thread = threading.Thread(target=self._keep_trying, name="pqlbot-socket-mode", daemon=True)
        self._thread.start()

    def _attempt(self, *, first: bool = False) -> bool:
        try:
            self.handler.connect()
        except FAILURES as error:
            code = error_code(error)
            if code in BAD_TOKEN:
                raise SocketModeRefused(f"SLACK_APP_TOKEN: Slack refuses it ({code}): generate a new App-Level Token "
                                        "with connections:write (Basic Information) and turn Socket Mode on") from None
            log.warning("Socket Mode: cannot connect to Slack (%s)%s; ingestion and the sweeps run meanwhile",
                        code, ", retrying" if first else "")
            return False
        self.connected.set()
        log.info("Socket Mode: connected")
        return True

    def _keep_trying(self) -> None:
        wait = self.first_wait
        while not self._stop.wait(wait):
            try:
                if self._attempt():
                    return
            except SocketModeRefused as refused:  # revoked while we waited: nothing more will help
                log.error("%s", refused)
                return
            wait = min(wait * 2, self.longest_wait)

    def close(self) -> None:
        self._stop.set()
        self.handler.close()
