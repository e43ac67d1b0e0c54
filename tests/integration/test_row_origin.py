"""RowDescription of masked columns (issue 12's last point): a column the
policy masks keeps the table OID and column number PostgreSQL reports for
the column itself, so pgjdbc's ResultSetMetaData.getTableName and
isNullable (and every client that reads those fields) see the table.

Each statement runs through pgwarden (catalog_data's shared database, where
customers has a row filter and customers.ssn is masked null) and directly
against the single-tenant reference (the same tables, ssn NULL in the data):
every field of every column must match, the table OID compared as the name
pg_class gives it on each side (the two databases number tables apart).
"""

import struct

import psycopg
import pytest

import catalog_data as data
import pgwire
from conftest import DEFAULT_TIMEOUT, HOST

STATEMENTS = [
    "SELECT id, ssn FROM customers ORDER BY id",
    "SELECT * FROM customers ORDER BY id",
    "SELECT c.ssn, o.total FROM customers c JOIN orders o ON o.customer_id = c.id ORDER BY o.id",
    "SELECT ssn FROM (SELECT ssn, id FROM customers) x ORDER BY id",
    "WITH c AS (SELECT * FROM customers) SELECT name, ssn FROM c ORDER BY id",
    "SELECT x.s FROM (SELECT ssn AS s, id FROM customers WHERE ssn IS NULL) x ORDER BY x.id",
    "SELECT ssn, count(*) FROM customers GROUP BY ssn",
    "SELECT coalesce(ssn, 'none') AS ssn FROM customers ORDER BY id",  # an expression: 0/0
]


@pytest.fixture(scope="module")
def gw(postgres, pgwarden):
    return data.start_gateway(pgwarden, postgres)


def row_description(payload):
    (n,) = struct.unpack("!H", payload[:2])
    pos, out = 2, []
    for _ in range(n):
        end = payload.index(b"\0", pos)
        name = payload[pos:end].decode()
        pos = end + 1
        out.append((name,) + struct.unpack("!IhIhih", payload[pos:pos + 18]))
        pos += 18
    return out  # (name, table oid, attnum, type oid, typlen, typmod, format)


class Raw:
    """One raw protocol session; both the simple and the extended protocol."""

    def __init__(self, host, port, user, dbname, password):
        self.s = pgwire.Session(host, port, timeout=DEFAULT_TIMEOUT)
        self.s.startup(user, dbname, password, options="-c search_path=public")

    def until_ready(self):
        out = []
        while True:
            kind, payload = self.s.read_message()
            out.append((kind, payload))
            if kind == b"Z":
                return out

    def simple(self, sql):
        self.s.send_query(sql)
        msgs = self.until_ready()
        errors = [pgwire.Session._fields(p) for k, p in msgs if k == b"E"]
        assert not errors, (sql, errors)
        desc = [row_description(p) for k, p in msgs if k == b"T"]
        rows = [p for k, p in msgs if k == b"D"]
        return desc[0], rows

    def described(self, sql):
        """Parse + Describe(statement) + Sync: the RowDescription pgjdbc
        reads before it executes."""
        self.s._send(b"P", b"\0" + sql.encode() + b"\0" + struct.pack("!H", 0))
        self.s._send(b"D", b"S\0")
        self.s._send(b"S", b"")
        msgs = self.until_ready()
        errors = [pgwire.Session._fields(p) for k, p in msgs if k == b"E"]
        assert not errors, (sql, errors)
        return [row_description(p) for k, p in msgs if k == b"T"][0]

    def names_of(self, oids):
        """table OID -> relname, by this side's own catalog."""
        wanted = sorted({o for o in oids if o})
        if not wanted:
            return {}
        _, rows = self.simple("SELECT oid, relname FROM pg_catalog.pg_class WHERE oid IN ("
                              + ", ".join(str(o) for o in wanted) + ")")
        out = {}
        for p in rows:
            values, pos = [], 2
            for _ in range(2):
                (n,) = struct.unpack("!i", p[pos:pos + 4])
                values.append(p[pos + 4:pos + 4 + n].decode())
                pos += 4 + n
            out[int(values[0])] = values[1]
        return out

    def close(self):
        self.s.close()


def comparable(raw, desc):
    names = raw.names_of([d[1] for d in desc])
    return [(d[0], names.get(d[1], d[1]) if d[1] else 0) + d[2:] for d in desc]


@pytest.fixture(scope="module")
def sides(gw, postgres):
    through = Raw(HOST, gw.port, "alice", data.TENANT, gw.passwords["alice"])
    info = dict(x.split("=", 1) for x in postgres.conninfo(data.REF_DB, data.ROLE).split())
    reference = Raw(info.get("host", HOST), int(info["port"]), info["user"], info["dbname"],
                    info.get("password"))
    yield through, reference
    through.close()
    reference.close()


@pytest.mark.parametrize("sql", STATEMENTS)
def test_row_description_matches_postgresql_for_masked_columns(sides, sql):
    through, reference = sides
    got, rows = through.simple(sql)
    want, _ = reference.simple(sql)
    assert comparable(through, got) == comparable(reference, want)
    assert rows, sql


@pytest.mark.parametrize("sql", STATEMENTS[:3])
def test_described_statement_keeps_the_origin(sides, sql):
    through, reference = sides
    assert comparable(through, through.described(sql)) == \
        comparable(reference, reference.described(sql))


def test_masked_column_has_its_table_and_number_and_stays_masked(sides):
    """The origin is the column's own (customers, attnum 5) and the value
    is still NULL for every row, although the shared table has SSNs."""
    through, _ = sides
    desc, rows = through.simple("SELECT ssn, id FROM customers ORDER BY id")
    assert comparable(through, desc)[0][:3] == ("ssn", "customers", 5)
    assert len(rows) == 5
    for p in rows:
        (n,) = struct.unpack("!i", p[2:6])
        assert n == -1, p  # NULL


def test_masked_value_never_shows_whatever_the_query_does_with_it(gw):
    """The NULL source is an outer join that never matches: filters,
    joins and aggregates over the masked column still see only NULL."""
    with gw.connect("alice", data.TENANT) as conn:
        assert conn.execute("SELECT count(ssn), count(*) FROM customers").fetchone() == (0, 5)
        assert conn.execute("SELECT count(*) FROM customers WHERE ssn IS NOT NULL"
                            ).fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM customers a JOIN customers b "
                            "ON a.ssn = b.ssn").fetchone() == (0,)
        with pytest.raises(psycopg.Error):
            conn.execute("SELECT pgwarden_m1 FROM customers")
