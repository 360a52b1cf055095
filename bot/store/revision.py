"""Write a new alembic revision from the models: `python -m bot.store.revision "add touches.replied"`.

Compares the models with a scratch SQLite database at head, so no server is needed.
"""

import sys
import tempfile
from pathlib import Path

from alembic import command

from bot.store import alembic_config, make_engine, migrate


def main(message: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'scratch.db'}")
        migrate(engine)
        versions = sorted(p.name for p in (Path(__file__).parent / "migrations" / "versions").glob("[0-9]*.py"))
        rev_id = f"{len(versions) + 1:04d}"
        with engine.begin() as connection:
            config = alembic_config(engine)
            config.attributes["connection"] = connection
            command.revision(config, message=message, autogenerate=True, rev_id=rev_id)


if __name__ == "__main__":
    main(" ".join(sys.argv[1:]) or "schema change")
