"""Differential tests (issue 3): what tenant A gets through pgwarden is exactly
what the same query gives on a database holding only A's rows with the masks
already applied (isoref_a, built by isolation_data from the same generator).

Every query of sql/analytic.sql runs twice through pgwarden: as a simple
Query (psycopg text cursor without parameters) and through the extended
protocol (binary cursor), and a few more carry $n parameters.
"""

import datetime
import re
from pathlib import Path

import pytest

import isolation_data as data

QUERIES = data.load_corpus(Path(__file__).with_name("sql") / "analytic.sql")


@pytest.fixture(scope="module")
def conns(postgres, pgwarden):
    gw = data.start_gateway(pgwarden, postgres)
    through = gw.connect("alice", "isoa")
    direct = postgres.connect(data.REF_DB)
    for conn in (through, direct):
        conn.execute("SET TIME ZONE 'UTC'")
    yield through, direct
    through.close()
    direct.close()


def run(conn, sql, params=None, binary=False):
    with conn.cursor(binary=binary) as cur:
        cur.execute(sql, params)
        names = [d.name for d in cur.description]
        types = [d.type_code for d in cur.description]
        return names, types, cur.fetchall()


def compare(got, want, order):
    names, types, rows = got
    want_names, want_types, want_rows = want
    assert names == want_names
    assert types == want_types
    if order == "bag":
        rows, want_rows = sorted(rows, key=repr), sorted(want_rows, key=repr)
    assert len(rows) == len(want_rows)
    assert rows == want_rows


def _id(i, sql):
    return f"{i:02d} " + re.sub(r"\s+", " ", sql)[:60]


def test_enough_queries():
    assert len(QUERIES) >= 45
    assert {order for order, _ in QUERIES} <= {"ordered", "bag"}


@pytest.mark.parametrize("binary", [False, True], ids=["simple", "extended"])
@pytest.mark.parametrize("order, sql", QUERIES,
                         ids=[_id(i, sql) for i, (_, sql) in enumerate(QUERIES)])
def test_same_result_as_tenant_only_database(conns, order, sql, binary):
    through, direct = conns
    want = run(direct, sql)
    assert want[2], "a differential query must return rows to be worth comparing"
    compare(run(through, sql, binary=binary), want, order)


PARAMETERIZED = [
    ("ordered", "SELECT id, amount FROM orders WHERE customer_id = %s AND amount > %s ORDER BY id",
     (3, 100)),
    ("ordered", "SELECT name FROM customers WHERE city = ANY(%s) ORDER BY id", (["Oslo", "Lyon"],)),
    ("bag", "SELECT count(*) FROM orders WHERE placed_on >= %s AND status = %s",
     (datetime.date(2024, 6, 1), "paid")),
    ("bag", "WITH x AS (SELECT * FROM orders WHERE region = %s) "
            "SELECT status, count(*), sum(amount) FROM x GROUP BY status", ("west",)),
    ("ordered", "SELECT id, amount FROM orders ORDER BY amount DESC, id LIMIT %s OFFSET %s", (7, 3)),
    ("bag", "SELECT c.name, o.id FROM customers c JOIN orders o ON o.customer_id = c.id "
            "WHERE o.id BETWEEN %s AND %s", (40, 60)),
    ("bag", "SELECT * FROM customers WHERE id = %s OR email LIKE %s", (5, "%test")),
    ("bag", "SELECT region, count(*) FILTER (WHERE amount > %s) FROM orders GROUP BY region", (250,)),
]


@pytest.mark.parametrize("order, sql, params", PARAMETERIZED,
                         ids=[_id(i, s) for i, (_, s, _) in enumerate(PARAMETERIZED)])
def test_parameters_same_result(conns, order, sql, params):
    through, direct = conns
    want = run(direct, sql, params)
    assert want[2]
    compare(run(through, sql, params), want, order)
    compare(run(through, sql, params, binary=True), want, order)


def test_other_tenants_ids_give_nothing(conns):
    """Looking up tenant B's keys by parameter finds nothing, as on A's database."""
    through, _ = conns
    assert run(through, "SELECT * FROM customers WHERE id = %s", (1001,))[2] == []
    assert run(through, "SELECT * FROM orders WHERE id = ANY(%s)", ([100001, 100002],))[2] == []


def test_reference_database_is_what_the_policy_promises(postgres):
    """The reference itself: A's rows only, masked values never the originals."""
    with postgres.connect(data.REF_DB) as conn:
        rows = conn.execute("SELECT * FROM customers ORDER BY id").fetchall()
        orders = conn.execute("SELECT count(*), min(tenant_id), max(tenant_id) FROM orders").fetchone()
    assert len(rows) == data.N_CUSTOMERS and orders == (data.N_ORDERS, data.TENANT_A, data.TENANT_A)
    assert not any(data.MARKER in str(v) for row in rows for v in row)
    assert rows[0][3] == "x" * 15 + "test"          # partial email
    assert rows[0][4] == "***" and rows[0][5] is None  # redact phone, null ssn
