"""Drivers against a Seshat node: psycopg 3 (text and binary) and asyncpg
(binary, prepared). Run by tests/tests/sql_drivers.rs with the node's
PostgreSQL port; any failed assertion or error fails the test."""

import asyncio
import datetime
import decimal
import sys
import uuid

import asyncpg
import psycopg
from psycopg.types import TypeInfo

PORT = int(sys.argv[1])
UTC = datetime.timezone.utc
ROW = (
    1, True, -2, 3_000_000_000, 1.5, 2.25, decimal.Decimal("3.25"), "text é", "var", b"\x00\xff",
    datetime.date(2024, 1, 2), datetime.datetime(2024, 1, 2, 3, 4, 5, 678000),
    datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), uuid.UUID(int=5),
)
COLUMNS = ("id int PRIMARY KEY, b bool, s smallint, big bigint, r real, d double precision, n numeric(10,2),"
           " t text, v varchar(5), bt bytea, dd date, ts timestamp, tz timestamptz, u uuid")


def psycopg_checks():
    with psycopg.connect(f"host=127.0.0.1 port={PORT} user=app dbname=appdb", autocommit=True) as c:
        assert c.execute("SELECT version()").fetchone()[0].startswith("PostgreSQL 15.0 (Seshat")
        assert c.info.server_version >= 150000
        c.execute(f"CREATE TABLE types ({COLUMNS})")
        marks = ", ".join(["%s"] * len(ROW))
        c.execute(f"INSERT INTO types VALUES ({marks})", ROW)
        bmarks = ", ".join(["%b"] * len(ROW))
        c.execute(f"INSERT INTO types VALUES ({bmarks})", (2,) + ROW[1:])
        assert c.execute("SELECT * FROM types WHERE id = 1").fetchone() == ROW
        binary = c.cursor(binary=True).execute("SELECT * FROM types WHERE id = 2").fetchone()
        assert binary == (2,) + ROW[1:], binary
        # Server-side prepared statements (prepared after 5 uses), then
        # DEALLOCATE ALL as psycopg sends it to reset its cache.
        for i in range(8):
            assert c.execute("SELECT t FROM types WHERE id = %s", (1,), prepare=True).fetchone() == ("text é",)
        c.execute("DEALLOCATE ALL")
        assert c.execute("SELECT t FROM types WHERE id = %s", (2,), prepare=True).fetchone() == ("text é",)
        # Session parameters.
        for name, value in [("search_path", "public"), ("application_name", "drivers"), ("TimeZone", "UTC"),
                            ("client_min_messages", "warning"), ("extra_float_digits", "3")]:
            c.execute(f"SET {name} = '{value}'")
            assert c.execute(f"SHOW {name}").fetchone()[0] == value, name
        c.execute("RESET application_name")
        assert c.execute("SHOW application_name").fetchone()[0] == ""
        c.execute("RESET ALL")
        assert c.execute("SHOW extra_float_digits").fetchone()[0] == "1"
        with c.transaction():
            c.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            assert c.execute("SHOW transaction_isolation").fetchone()[0] == "serializable"
        # statement_timeout is honoured.
        c.execute("CREATE TABLE big (n int)")
        c.execute("INSERT INTO big SELECT g FROM generate_series(1, 3000) g")
        c.execute("SET statement_timeout = '100ms'")
        try:
            c.execute("SELECT count(*) FROM big a, big b, big c").fetchone()
            raise AssertionError("statement_timeout did not stop the query")
        except psycopg.errors.QueryCanceled as error:
            assert "statement timeout" in str(error), error
        c.execute("SET statement_timeout = 0")
        assert c.execute("SELECT count(*) FROM big").fetchone() == (3000,)
        # Type lookups by name (to_regtype), as psycopg's adapters do.
        info = TypeInfo.fetch(c, "uuid")
        assert (info.name, info.oid) == ("uuid", 2950), info
        # COPY both ways.
        with c.cursor().copy("COPY types (id, t) FROM STDIN") as copy:
            for i in range(10, 20):
                copy.write_row((i, f"row {i}"))
        with c.cursor().copy("COPY (SELECT id, t FROM types WHERE id >= 10 ORDER BY id) TO STDOUT") as copy:
            rows = list(copy.rows())
        assert rows[0] == ("10", "row 10") and len(rows) == 10, rows
        # Errors keep their SQLSTATE; the connection goes on.
        try:
            c.execute("SELECT * FROM nope")
            raise AssertionError("no error")
        except psycopg.errors.UndefinedTable:
            pass
        assert c.execute("SELECT 1").fetchone() == (1,)


async def asyncpg_checks():
    c = await asyncpg.connect(host="127.0.0.1", port=PORT, user="app", database="appdb")
    try:
        assert (await c.fetchval("SELECT version()")).startswith("PostgreSQL 15.0 (Seshat")
        row = await c.fetchrow("SELECT * FROM types WHERE id = $1", 1)
        assert tuple(row) == ROW, row
        await c.execute(f"INSERT INTO types VALUES ({', '.join(f'${i + 1}' for i in range(len(ROW)))})",
                        3, *ROW[1:])
        assert tuple(await c.fetchrow("SELECT * FROM types WHERE id = 3")) == (3,) + ROW[1:]
        statement = await c.prepare("SELECT n + $1 FROM types WHERE id = $2")
        assert await statement.fetchval(decimal.Decimal("0.75"), 1) == decimal.Decimal("4.00")
        await c.executemany("INSERT INTO types (id, t) VALUES ($1, $2)", [(30, "a"), (31, "b")])
        async with c.transaction():
            await c.execute("UPDATE types SET t = 'in tx' WHERE id = 30")
        assert await c.fetchval("SELECT t FROM types WHERE id = 30") == "in tx"
        await c.copy_to_table("types", source=__import__("io").BytesIO(b"40,copied\n"), columns=["id", "t"],
                              format="csv")
        assert await c.fetchval("SELECT t FROM types WHERE id = 40") == "copied"
        assert await c.fetchval("SELECT typname FROM pg_catalog.pg_type WHERE oid = $1", 2950) == "uuid"
    finally:
        await c.close()


psycopg_checks()
asyncio.run(asyncpg_checks())
print("drivers: psycopg", psycopg.__version__, "and asyncpg", asyncpg.__version__, "passed")
