"""CPU of one statement through SQLAlchemy Core against the same statement on the raw driver.

    python -m bench.sql_overhead [--statements 5000] [--database-url URL]

A one-row SELECT by primary key on a scratch table of 100 rows, compiled once (as the write
path's statements are), timed by this process's CPU (`time.process_time`) in a tight loop,
first as `Connection.execute(...).first()`, then as psycopg2's `cursor.execute` and
`fetchone` with the statement text SQLAlchemy compiled. The difference is what SQLAlchemy's
execution adds per statement (parameters, the execution context, the result): the part of a
statement's cost that leaving the ORM for Core does not remove.
"""

from __future__ import annotations

import argparse
import time
import uuid

from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, create_engine, select


def parse() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench.sql_overhead", description=__doc__)
    parser.add_argument("--statements", type=int, default=5000)
    parser.add_argument(
        "--database-url", default="postgresql+psycopg2://postgres@127.0.0.1:5432/test"
    )
    return parser.parse_args()


def main() -> int:
    """Time both ways and print microseconds of CPU per statement."""
    args = parse()
    engine = create_engine(args.database_url)
    metadata = MetaData()
    table = Table(
        f"bench_sql_overhead_{uuid.uuid4().hex[:8]}",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("a", String),
        Column("b", String),
        Column("c", Integer),
    )
    metadata.create_all(engine)
    try:
        with engine.begin() as conn:
            rows = [{"id": i, "a": f"a{i}", "b": f"b{i}", "c": i} for i in range(100)]
            conn.execute(table.insert(), rows)
        statement = select(table.c.a, table.c.b, table.c.c).where(table.c.id == bindparam("x"))
        n = args.statements
        with engine.connect() as conn:
            for i in range(500):  # warm-up: the compiled cache, the connection
                conn.execute(statement, {"x": i % 100}).first()
            started = time.process_time()
            for i in range(n):
                conn.execute(statement, {"x": i % 100}).first()
            core = (time.process_time() - started) / n
            text = str(statement.compile(dialect=engine.dialect))
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            started = time.process_time()
            for i in range(n):
                cursor.execute(text, {"x": i % 100})
                cursor.fetchone()
            raw = (time.process_time() - started) / n
    finally:
        metadata.drop_all(engine)
        engine.dispose()
    print(
        f"{n} statements: SQLAlchemy Core {core * 1e6:.0f} us, raw driver {raw * 1e6:.0f} us "
        f"of CPU each; SQLAlchemy adds {(core - raw) * 1e6:.0f} us"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
