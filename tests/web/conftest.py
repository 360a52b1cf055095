"""What the web tests share: a real `pqlbot serve` per module, on each store backend (tests/web/served.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import BACKENDS
from tests.web.served import Served, serving


@pytest.fixture(scope="module", params=BACKENDS)
def served(request, tmp_path_factory) -> Iterator[Served]:
    with serving(request.param, tmp_path_factory.mktemp("served")) as server:
        yield server
