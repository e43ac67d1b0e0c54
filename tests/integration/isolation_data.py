"""Shared data for the isolation, differential and catalog tests (issue 3).

One generator feeds two databases:
  * `isoshared`: two tenants' rows side by side, reached through pgwarden as
    tenant A (user alice, dbname `isoa`) or tenant B (user bob, dbname `isob`);
  * `isoref_a`: only tenant A's rows, with the policy's masks already applied
    and hidden objects absent, queried directly as superuser: what tenant A
    must see through pgwarden.

Every value tenant A must never see — the other tenant's rows, masked and
hidden values — contains MARKER, and numeric secrets are SECRET_NUMBER, so a
leak is a substring search over everything that comes back.

The backend role pgwarden uses (iso_writer) may write: if a hostile statement
slipped through, the database would change and the tests would notice.
`Raw` speaks to pgwarden with libpq directly, so the protocol is certain:
`simple()` sends Query ('Q'), `extended()` sends Parse/Bind/Describe/Execute/Sync.
`Wire` sends the extended protocol by hand, with parameter type OIDs in the
Parse message (libpq leaves them unspecified).

The `trap` schema plays "someone created a function": functions and operators
named like built-ins that, when run, read every tenant's rows and say so in a
NOTICE. A gateway whose search_path includes trap must never call them.

The oracle generator (issue 7, class 1) builds statements from predicates
that raise an error on every row of tenant B and on none of tenant A's,
placed in every position a qual can take; through pgwarden each must answer
exactly what the same statement answers on isoref_a.
"""

import hashlib
import datetime
import struct

import psycopg
import pytest
from psycopg import pq

import pgwire

MARKER = "ZZLEAK"
SECRET_NUMBER = 987654321
SECRETS = (MARKER, str(SECRET_NUMBER), MARKER.lower())

SHARED_DB = "isoshared"
REF_DB = "isoref_a"
TENANT_A = "acme_a"                 # $tenant of tenant A
TENANT_B = "globex_" + MARKER       # tenant B's id is itself a secret for A
BACKEND_ROLE = "iso_writer"

N_CUSTOMERS = 40
N_ORDERS = 3000
STATUSES = ("new", "paid", "shipped", "cancelled")
REGIONS = ("north", "south", "east", "west")
CITIES = ("Lyon", "Oslo", "Porto", "Graz", "Turku")

PRODUCTS = [
    (1, "widget", "tools", "9.99"), (2, "gadget", "tools", "24.50"),
    (3, "gizmo", "toys", "5.00"), (4, "doohickey", "toys", "12.25"),
    (5, "sprocket", "parts", "0.75"), (6, "flange", "parts", "3.10"),
    (7, "lamp", "home", "40.00"), (8, "rug", "home", "99.95"),
]

SCHEMA_SQL = """
CREATE TABLE products (
    id integer PRIMARY KEY, name text NOT NULL, category text NOT NULL, price numeric(10, 2)
);
CREATE TABLE customers (
    id integer PRIMARY KEY,
    tenant_id text NOT NULL,
    name text NOT NULL,
    email text,
    phone text,
    ssn text,
    loyalty_code text,
    city text,
    signup_date date,
    credit_limit integer{hidden_column}
);
CREATE TABLE orders (
    id integer PRIMARY KEY,
    tenant_id text NOT NULL,
    customer_id integer NOT NULL,
    product_id integer NOT NULL,
    amount integer NOT NULL,
    status text NOT NULL,
    region text NOT NULL,
    placed_on date NOT NULL,
    note text
);
CREATE INDEX orders_customer_idx ON orders (customer_id);
"""

HIDDEN_SQL = f"""
CREATE TABLE audit_secrets (id integer PRIMARY KEY, tenant_id text, secret text, amount integer);
INSERT INTO audit_secrets VALUES
    (1, '{TENANT_A}', '{MARKER} audit one', {SECRET_NUMBER}),
    (2, '{TENANT_B}', '{MARKER} audit two', {SECRET_NUMBER});
CREATE TABLE "Vault" (id integer, "Secret" text);
INSERT INTO "Vault" VALUES (1, '{MARKER} vault');
CREATE TABLE staff_salaries (id integer, who text, salary integer);
INSERT INTO staff_salaries VALUES (1, '{MARKER} boss', {SECRET_NUMBER});
CREATE VIEW secret_view AS SELECT * FROM audit_secrets;
CREATE SCHEMA hush;
CREATE TABLE hush.keyring (id integer, k text);
INSERT INTO hush.keyring VALUES (1, '{MARKER} key');
CREATE SEQUENCE ticket_seq;
CREATE FUNCTION leak_fn() RETURNS text LANGUAGE sql
    AS $$ SELECT secret FROM audit_secrets LIMIT 1 $$;
"""

# Functions and operators named like built-ins, in a schema of their own: if
# one ever runs, every tenant's names come back in a NOTICE.
TRAP_SQL = """
CREATE SCHEMA trap;
CREATE FUNCTION trap.spill() RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    RAISE NOTICE 'trap ran: %', (SELECT string_agg(name || ' ' || coalesce(ssn, ''), ', ')
                                 FROM public.customers);
    RETURN 1;
END $$;
CREATE FUNCTION trap.length(customers) RETURNS integer LANGUAGE sql AS 'SELECT trap.spill()';
CREATE FUNCTION trap.lower(integer) RETURNS integer LANGUAGE sql AS 'SELECT trap.spill()';
CREATE FUNCTION trap.upper(integer) RETURNS integer LANGUAGE sql AS 'SELECT trap.spill()';
CREATE FUNCTION trap.abs(text) RETURNS integer LANGUAGE sql AS 'SELECT trap.spill()';
CREATE FUNCTION trap.md5(integer) RETURNS text LANGUAGE sql AS 'SELECT trap.spill()::text';
CREATE FUNCTION trap.count(customers) RETURNS integer LANGUAGE sql AS 'SELECT trap.spill()';
CREATE FUNCTION trap.eq_rows(customers, customers) RETURNS boolean LANGUAGE sql
    AS 'SELECT trap.spill() = 1';
CREATE FUNCTION trap.eq_int_text(integer, text) RETURNS boolean LANGUAGE sql
    AS 'SELECT trap.spill() = 1';
CREATE FUNCTION trap.cat(integer, integer) RETURNS text LANGUAGE sql
    AS 'SELECT trap.spill()::text';
CREATE OPERATOR trap.= (LEFTARG = customers, RIGHTARG = customers, FUNCTION = trap.eq_rows);
CREATE OPERATOR trap.= (LEFTARG = integer, RIGHTARG = text, FUNCTION = trap.eq_int_text);
CREATE OPERATOR trap.< (LEFTARG = integer, RIGHTARG = text, FUNCTION = trap.eq_int_text);
CREATE OPERATOR trap.~~ (LEFTARG = integer, RIGHTARG = text, FUNCTION = trap.eq_int_text);
CREATE OPERATOR trap.|| (LEFTARG = integer, RIGHTARG = integer, FUNCTION = trap.cat);
"""

# The policy under test; `extra` for the conftest pgwarden factory.
POLICY = f"""
[table.public.customers]
row_filter = tenant_id = $tenant
mask.email = partial
mask.phone = redact
mask.ssn = null
mask.loyalty_code = hash
mask.internal_rating = hide

[table.public.orders]
row_filter = tenant_id = $tenant

[table.public.products]

[table.public.audit_secrets]
hidden = yes

[table.public."Vault"]
hidden = yes
"""

# Names of objects tenant A must not learn exist (hidden or not in the policy).
HIDDEN_NAMES = ("audit_secrets", "Vault", "staff_salaries", "secret_view", "internal_rating",
                "keyring")


# --------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------


def customers(tenant):
    """Rows (id, tenant_id, name, email, phone, ssn, loyalty_code, city,
    signup_date, credit_limit, internal_rating)."""
    rows = []
    for i in range(1, N_CUSTOMERS + 1):
        if tenant == TENANT_A:
            rows.append((
                i, TENANT_A, f"Customer {i:02d}", f"{MARKER}.c{i}@acme.test",
                f"{MARKER}-555-{i:04d}", f"{MARKER}-{i:03d}-11", f"{MARKER}-L{i}",
                CITIES[i % len(CITIES)], datetime.date(2023, 1, 1) + datetime.timedelta(days=9 * i),
                1000 + 250 * (i % 7), SECRET_NUMBER,
            ))
        else:
            rows.append((
                1000 + i, TENANT_B, f"{MARKER} Rival {i}", f"{MARKER}.r{i}@globex.test",
                f"{MARKER}-666-{i:04d}", f"{MARKER}-{i:03d}-22", f"{MARKER}-R{i}",
                f"{MARKER}ville", datetime.date(2023, 1, 1) + datetime.timedelta(days=7 * i),
                SECRET_NUMBER, SECRET_NUMBER,
            ))
    return rows


def orders(tenant):
    """Rows (id, tenant_id, customer_id, product_id, amount, status, region,
    placed_on, note)."""
    rows = []
    for i in range(1, N_ORDERS + 1):
        if tenant == TENANT_A:
            rows.append((
                i, TENANT_A, 1 + (i * 7) % N_CUSTOMERS, 1 + (i * 3) % len(PRODUCTS),
                10 + (i * 37) % 490, STATUSES[i % 4], REGIONS[(i // 3) % 4],
                datetime.date(2024, 1, 1) + datetime.timedelta(days=(i * 11) % 366),
                None if i % 5 else f"note {i}",
            ))
        else:
            rows.append((
                100000 + i, TENANT_B, 1000 + 1 + i % N_CUSTOMERS, 1 + i % len(PRODUCTS),
                SECRET_NUMBER, f"{MARKER}-paid", f"{MARKER}land",
                datetime.date(2024, 1, 1) + datetime.timedelta(days=i % 366),
                f"{MARKER} note {i}",
            ))
    return rows


# The gateways of these tests key the hash mask (mask_key) so the expected
# values can be computed here; unkeyed, a tenant could hash guesses itself.
MASK_KEY = "isolation-test-key"


def md5_text(value):
    """src/policy_rel.c: md5(mask_key || v::text)."""
    return None if value is None else hashlib.md5((MASK_KEY + str(value)).encode()).hexdigest()


def partial(value):
    """src/policy_rel.c: the last 4 characters of values of 8 or more, the
    rest (or all of a shorter value) as x's."""
    if value is None:
        return None
    if len(value) < 8:
        return "x" * len(value)
    return "x" * (len(value) - 4) + value[-4:]


def redact(value):
    return None if value is None else "***"


def masked_customer(row):
    """What tenant A sees of one of its customers (internal_rating hidden)."""
    (cid, tenant, name, email, phone, ssn, loyalty, city, signup, limit, _rating) = row
    return (cid, tenant, name, partial(email), redact(phone), None, md5_text(loyalty),
            city, signup, limit)


# --------------------------------------------------------------------------
# Databases
# --------------------------------------------------------------------------


def _exists(conn, dbname):
    return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()


def _load(conn, customer_rows, order_rows, hidden_column):
    conn.execute(SCHEMA_SQL.format(
        hidden_column=",\n    internal_rating integer" if hidden_column else ""))
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO products VALUES (%s, %s, %s, %s)", PRODUCTS)
        width = len(customer_rows[0])
        cur.executemany(f"INSERT INTO customers VALUES ({', '.join(['%s'] * width)})",
                        customer_rows)
        with cur.copy("COPY orders FROM STDIN") as copy:
            for row in order_rows:
                copy.write_row(row)


def ensure_databases(postgres):
    """Create isoshared and isoref_a once per PostgreSQL cluster."""
    with postgres.connect() as conn:
        if _exists(conn, SHARED_DB) and _exists(conn, REF_DB):
            return
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s",
                            (BACKEND_ROLE,)).fetchone():
            conn.execute(f"CREATE ROLE {BACKEND_ROLE} LOGIN")
        conn.execute(f"CREATE DATABASE {SHARED_DB}")
        conn.execute(f"CREATE DATABASE {REF_DB}")
    with postgres.connect(SHARED_DB) as conn:
        _load(conn, customers(TENANT_A) + customers(TENANT_B),
              orders(TENANT_A) + orders(TENANT_B), hidden_column=True)
        conn.execute(HIDDEN_SQL)
        conn.execute(TRAP_SQL)
        conn.execute(f"GRANT USAGE ON SCHEMA trap TO {BACKEND_ROLE}")
        # The backend role can write: only pgwarden stands in the way.
        conn.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public, hush TO {BACKEND_ROLE}")
        conn.execute(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {BACKEND_ROLE}")
        conn.execute(f"GRANT USAGE, CREATE ON SCHEMA public, hush TO {BACKEND_ROLE}")
        conn.execute("ANALYZE")
    with postgres.connect(REF_DB) as conn:
        _load(conn, [masked_customer(r) for r in customers(TENANT_A)], orders(TENANT_A),
              hidden_column=False)
        conn.execute("ANALYZE")


def gateway_extra(postgres):
    """Tenant sections and the policy, appended to the factory's config."""
    backend = f"host=127.0.0.1 port={postgres.port} dbname={SHARED_DB} user={BACKEND_ROLE}"
    return (f"\n[tenant.isoa]\nbackend = {backend}\nid = {TENANT_A}\n"
            f"\n[tenant.isob]\nbackend = {backend}\nid = {TENANT_B}\n" + POLICY)


GATEWAY_USERS = {"alice": "isoa", "bob": "isob", "admin": "isoa"}
GATEWAY_SETTINGS = {"default_access": "deny", "allowed_functions": None,
                    "search_path": "public", "audit_log": "audit.jsonl", "mask_key": MASK_KEY}


def start_gateway(pgwarden, postgres, **settings):
    ensure_databases(postgres)
    return pgwarden(settings={**GATEWAY_SETTINGS, **settings}, users=GATEWAY_USERS,
                    extra=gateway_extra(postgres))


def snapshot(postgres):
    """Row counts and content checksums of every table, plus the set of
    relations, functions and roles: what a hostile statement could change."""
    out = {}
    with postgres.connect(SHARED_DB) as conn:
        tables = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2").fetchall()
        for schema, table in tables:
            ident = f'"{schema}"."{table}"'
            out[ident] = conn.execute(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
                f"FROM {ident} t").fetchone()
        out["relations"] = conn.execute(
            "SELECT string_agg(oid::regclass::text || ':' || relkind::text, ',' ORDER BY oid) "
            "FROM pg_class WHERE relnamespace NOT IN "
            "('pg_catalog'::regnamespace, 'information_schema'::regnamespace, "
            "'pg_toast'::regnamespace)").fetchone()
        out["functions"] = conn.execute(
            "SELECT count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace"
        ).fetchone()
        out["sequence"] = conn.execute(
            "SELECT last_value, is_called FROM ticket_seq").fetchone()
        out["roles"] = conn.execute(
            "SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles").fetchone()
        out["settings"] = conn.execute(
            "SELECT string_agg(setdatabase || ':' || array_to_string(setconfig, ';'), ',') "
            "FROM pg_db_role_setting").fetchone()
    return out


# --------------------------------------------------------------------------
# A raw libpq session: exactly one protocol per call
# --------------------------------------------------------------------------

ERROR_FIELDS = [pq.DiagnosticField.SQLSTATE, pq.DiagnosticField.MESSAGE_PRIMARY,
                pq.DiagnosticField.MESSAGE_DETAIL, pq.DiagnosticField.MESSAGE_HINT,
                pq.DiagnosticField.CONTEXT, pq.DiagnosticField.INTERNAL_QUERY,
                pq.DiagnosticField.SCHEMA_NAME, pq.DiagnosticField.TABLE_NAME,
                pq.DiagnosticField.COLUMN_NAME, pq.DiagnosticField.DATATYPE_NAME,
                pq.DiagnosticField.CONSTRAINT_NAME]


class Outcome:
    """Everything one statement sent back, as text."""

    def __init__(self):
        self.columns = []       # column names of every result
        self.rows = []          # rows of every result, values as str or None
        self.errors = []        # (sqlstate, message, every field joined)
        self.notices = []       # every field of every notice, joined
        self.statuses = []

    @property
    def sqlstate(self):
        return self.errors[0][0] if self.errors else None

    def everything(self):
        parts = list(self.columns) + [e[2] for e in self.errors] + list(self.notices)
        for row in self.rows:
            parts += ["" if v is None else v for v in row]
        return "\n".join(parts)

    def leaks(self, secrets=SECRETS):
        text = self.everything()
        return [s for s in secrets if s in text]


def _fields(res):
    values = []
    for f in ERROR_FIELDS:
        v = res.error_field(f)
        if v:
            values.append(v.decode("utf-8", "replace"))
    return values


class Raw:
    """One libpq connection to pgwarden."""

    def __init__(self, conninfo):
        self.conninfo = conninfo
        self.pgconn = None
        self._pending_notices = []
        self.connect()

    def connect(self):
        if self.pgconn is not None:
            self.pgconn.finish()
        self.pgconn = pq.PGconn.connect(self.conninfo.encode())
        if self.pgconn.status != pq.ConnStatus.OK:
            raise AssertionError("cannot connect: "
                                 + self.pgconn.error_message.decode(errors="replace"))
        self.pgconn.notice_handler = lambda res: self._pending_notices.append(
            "\n".join(_fields(res)))

    def close(self):
        if self.pgconn is not None:
            self.pgconn.finish()
            self.pgconn = None

    @property
    def ok(self):
        return (self.pgconn is not None and self.pgconn.status == pq.ConnStatus.OK
                and self.pgconn.transaction_status == pq.TransactionStatus.IDLE)

    def _collect(self):
        out = Outcome()
        while True:
            res = self.pgconn.get_result()
            if res is None:
                break
            out.statuses.append(res.status)
            if res.status == pq.ExecStatus.FATAL_ERROR:
                fields = _fields(res)
                state = (res.error_field(pq.DiagnosticField.SQLSTATE) or b"").decode()
                message = (res.error_field(pq.DiagnosticField.MESSAGE_PRIMARY) or b"").decode(
                    "utf-8", "replace")
                out.errors.append((state, message, "\n".join(fields)))
            elif res.status in (pq.ExecStatus.COPY_OUT, pq.ExecStatus.COPY_IN,
                                pq.ExecStatus.COPY_BOTH):
                self._drain_copy(res, out)
            for i in range(res.nfields):
                out.columns.append((res.fname(i) or b"").decode("utf-8", "replace"))
            for r in range(res.ntuples):
                out.rows.append(tuple(
                    None if res.get_value(r, c) is None
                    else res.get_value(r, c).decode("utf-8", "replace")
                    for c in range(res.nfields)))
        out.notices, self._pending_notices = self._pending_notices, []
        return out

    def _drain_copy(self, res, out):
        if res.status == pq.ExecStatus.COPY_OUT:
            while True:
                n, data = self.pgconn.get_copy_data(0)
                if n < 0:
                    break
                out.rows.append((bytes(data).decode("utf-8", "replace"),))
        else:
            # COPY FROM STDIN reached the client: end it with an error.
            self.pgconn.put_copy_end(b"isolation test refuses to send data")

    def simple(self, sql):
        """Simple Query protocol ('Q')."""
        self.pgconn.send_query(sql.encode())
        return self._collect()

    def extended(self, sql, params=None):
        """Extended protocol (Parse/Bind/Describe/Execute/Sync), even without $n."""
        encoded = None if params is None else [
            None if p is None else str(p).encode() for p in params]
        self.pgconn.send_query_params(sql.encode(), encoded)
        return self._collect()

    def run(self, protocol, sql, params=None):
        if protocol == "simple":
            assert params is None
            return self.simple(sql)
        return self.extended(sql, params)

    def reset(self):
        """Leave any transaction the statement opened; reconnect if broken."""
        if self.pgconn is None or self.pgconn.status != pq.ConnStatus.OK:
            self.connect()
            return
        if self.pgconn.transaction_status != pq.TransactionStatus.IDLE:
            self.simple("ROLLBACK")


class Wire:
    """The extended protocol by hand (pgwire.Session): Parse carries the
    parameter type OIDs, which libpq always leaves unspecified."""

    def __init__(self, port, user="alice", dbname="isoa", password="alice-secret"):
        self.session = pgwire.Session("127.0.0.1", port)
        self.session.startup(user, dbname, password)

    def close(self):
        self.session.close()

    def _msg(self, kind, payload):
        self.session._send(kind, payload)

    def run(self, sql, params=(), types=()):
        """Parse (with types) / Bind (text values) / Describe / Execute / Sync."""
        types = list(types) + [0] * (len(params) - len(types))
        parse = b"\0" + sql.encode() + b"\0" + struct.pack("!H", len(types))
        parse += b"".join(struct.pack("!I", t) for t in types)
        self._msg(b"P", parse)
        bind = b"\0\0" + struct.pack("!H", 0) + struct.pack("!H", len(params))
        for v in params:
            if v is None:
                bind += struct.pack("!i", -1)
            else:
                data = str(v).encode()
                bind += struct.pack("!i", len(data)) + data
        bind += struct.pack("!H", 0)
        self._msg(b"B", bind)
        self._msg(b"D", b"P\0")
        self._msg(b"E", b"\0" + struct.pack("!i", 0))
        self._msg(b"S", b"")
        out = Outcome()
        while True:
            kind, payload = self.session.read_message()
            if kind == b"T":
                (n,) = struct.unpack("!H", payload[:2])
                pos = 2
                for _ in range(n):
                    end = payload.index(b"\0", pos)
                    out.columns.append(payload[pos:end].decode(errors="replace"))
                    pos = end + 1 + 18
            elif kind == b"D":
                (n,) = struct.unpack("!H", payload[:2])
                pos, row = 2, []
                for _ in range(n):
                    (ln,) = struct.unpack("!i", payload[pos:pos + 4])
                    pos += 4
                    row.append(None if ln < 0 else payload[pos:pos + ln].decode(errors="replace"))
                    pos += max(ln, 0)
                out.rows.append(tuple(row))
            elif kind in (b"E", b"N"):
                fields = pgwire.Session._fields(payload)
                text = "\n".join(fields.values())
                if kind == b"E":
                    out.errors.append((fields.get("C", ""), fields.get("M", ""), text))
                else:
                    out.notices.append(text)
            elif kind == b"Z":
                return out


# --------------------------------------------------------------------------
# The oracle generator
# --------------------------------------------------------------------------

# Predicates over an orders row (alias o) that raise an error on every row of
# tenant B and on no row of tenant A. None writes the secret number: B's
# amount is 987654321, A's amounts are below 500; B's text columns start
# with the marker (Z...), A's do not.
_ZB = "(CASE WHEN o.region LIKE 'Z%' THEN 0 ELSE 1 END)"
ORDER_ORACLES = [
    ("division", f"1 / {_ZB} = 1"),
    ("division-amount", "1 / (o.amount - 987654320 - 1) <> 7"),
    ("int2-overflow", "o.amount::int2 > 0"),
    ("mul-overflow", "o.amount * 10000 > 0"),
    ("add-overflow", "o.amount + 2147000000 > 0"),
    ("power-overflow", "power(o.amount, 100) > 0"),
    ("sqrt-negative", "sqrt(987654320 - o.amount) > 0"),
    ("array-shape", "ARRAY[ARRAY[1], CASE WHEN o.status LIKE 'Z%' THEN ARRAY[1, 2] "
                    "ELSE ARRAY[1] END] IS NOT NULL"),
    ("text-to-int", "(CASE WHEN o.region LIKE 'Z%' THEN o.region ELSE '1' END)::int = 1"),
    ("text-to-date", "(CASE WHEN o.status LIKE 'Z%' THEN 'x' ELSE '2024-01-01' END)::date "
                     "IS NOT NULL"),
    ("substr-negative", "substr(o.region, 1, CASE WHEN o.region LIKE 'Z%' THEN -1 ELSE 1 END) "
                        "IS NOT NULL"),
    ("bad-regex", "o.region ~ (CASE WHEN o.region LIKE 'Z%' THEN '(' ELSE '.' END)"),
    ("bad-json", "(CASE WHEN o.status LIKE 'Z%' THEN '{' ELSE '{}' END)::jsonb IS NOT NULL"),
    ("make-date", "make_date(2024, CASE WHEN o.region LIKE 'Z%' THEN 13 ELSE 1 END, 1) "
                  "IS NOT NULL"),
    ("chr-zero", "chr(CASE WHEN o.region LIKE 'Z%' THEN 0 ELSE 65 END) = 'A'"),
    ("row-compare", f"ROW(0, 1 / {_ZB}) > ROW(0, 0)"),
    ("any-array", f"1 = ANY(ARRAY[1 / {_ZB}])"),
    ("in-list", f"1 IN (1 / {_ZB}, 2)"),
    ("between", f"1 BETWEEN 0 AND 1 / {_ZB}"),
    ("distinct", f"o.id IS DISTINCT FROM 1 / {_ZB}"),
    ("coalesce", f"COALESCE(NULL, 1 / {_ZB}) = 1"),
    ("greatest", f"GREATEST(0, 1 / {_ZB}) = 1"),
    ("nullif", f"NULLIF(1 / {_ZB}, 5) = 1"),
    ("collate", "(CASE WHEN o.region COLLATE \"C\" BETWEEN 'Z' AND 'Z~' THEN 1 / (o.id - o.id) "
                "ELSE 1 END) = 1"),
    ("to-date-fmt", "to_date(CASE WHEN o.region LIKE 'Z%' THEN 'zz' ELSE '2024-01-01' END, "
                    "'YYYY-MM-DD') IS NOT NULL"),
    ("id-any", f"o.id = ANY(ARRAY[o.id, 1 / {_ZB}])"),
]

# Where a qual can sit. {p} is the predicate over orders alias o.
POSITIONS = [
    ("where", "SELECT o.id FROM orders o WHERE {p} ORDER BY o.id"),
    ("where-key", "SELECT o.id FROM orders o WHERE o.id = 100001 AND {p}"),
    ("where-range", "SELECT o.id FROM orders o WHERE o.id > 99990 AND o.id < 100010 AND {p} "
                    "ORDER BY 1"),
    ("where-or", "SELECT o.id FROM orders o WHERE o.id < 3 OR {p} ORDER BY o.id"),
    ("where-not", "SELECT count(*) FROM orders o WHERE NOT ({p})"),
    ("join-on", "SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id AND {p} "
                "ORDER BY o.id"),
    ("left-join-on", "SELECT c.id, o.id FROM customers c LEFT JOIN orders o "
                     "ON o.customer_id = c.id AND {p} ORDER BY 1, 2"),
    ("join-where", "SELECT o.id FROM customers c JOIN orders o ON o.customer_id = c.id "
                   "WHERE {p} ORDER BY o.id"),
    ("cross-join", "SELECT o.id FROM products p, orders o WHERE p.id = o.product_id AND {p} "
                   "ORDER BY 1"),
    ("having", "SELECT o.id FROM orders o GROUP BY o.id, o.amount, o.region, o.status "
               "HAVING {p} ORDER BY o.id"),
    ("cte-body", "WITH x AS (SELECT o.* FROM orders o WHERE {p}) SELECT id FROM x ORDER BY id"),
    ("cte-outer", "WITH o AS (SELECT * FROM orders) SELECT o.id FROM o WHERE {p} ORDER BY o.id"),
    ("cte-materialized", "WITH o AS MATERIALIZED (SELECT * FROM orders) SELECT o.id FROM o "
                         "WHERE {p} ORDER BY o.id"),
    ("derived", "SELECT o.id FROM (SELECT * FROM orders) o WHERE {p} ORDER BY o.id"),
    ("derived-inner", "SELECT s.id FROM (SELECT o.id FROM orders o WHERE {p}) s ORDER BY s.id"),
    ("lateral", "SELECT l.id FROM customers c, LATERAL (SELECT o.id FROM orders o "
                "WHERE o.customer_id = c.id AND {p}) l ORDER BY 1"),
    ("in-subquery", "SELECT c.id FROM customers c WHERE c.id IN (SELECT o.customer_id "
                    "FROM orders o WHERE {p}) ORDER BY 1"),
    ("exists", "SELECT c.id FROM customers c WHERE EXISTS (SELECT 1 FROM orders o "
               "WHERE o.customer_id = c.id AND {p}) ORDER BY 1"),
    ("exists-or", "SELECT c.id FROM customers c WHERE c.id < 0 OR EXISTS (SELECT 1 FROM orders o "
                  "WHERE o.customer_id = c.id AND {p}) ORDER BY 1"),
    ("not-exists", "SELECT c.id FROM customers c WHERE NOT EXISTS (SELECT 1 FROM orders o "
                   "WHERE o.customer_id = c.id AND {p}) ORDER BY 1"),
    ("scalar-subquery", "SELECT c.id FROM customers c WHERE (SELECT count(*) FROM orders o "
                        "WHERE o.customer_id = c.id AND {p}) >= 0 ORDER BY 1"),
    ("union", "SELECT o.id FROM orders o WHERE {p} UNION ALL SELECT -1 ORDER BY 1"),
    ("union-inside", "SELECT o.id FROM (SELECT * FROM orders UNION ALL SELECT * FROM orders) o "
                     "WHERE {p} ORDER BY 1"),
    ("values-join", "SELECT o.id FROM orders o JOIN (VALUES (1), (2)) v(x) "
                    "ON o.customer_id = v.x AND {p} ORDER BY 1"),
    ("select-list", "SELECT o.id, ({p}) FROM orders o ORDER BY o.id"),
    ("order-by", "SELECT o.id FROM orders o ORDER BY ({p}), o.id"),
    ("group-by", "SELECT ({p}), count(*) FROM orders o GROUP BY 1"),
    ("aggregate-filter", "SELECT count(*) FILTER (WHERE {p}) FROM orders o"),
    ("window-filter", "SELECT o.id, count(*) FILTER (WHERE {p}) OVER () FROM orders o "
                      "ORDER BY o.id LIMIT 5"),
    ("case", "SELECT CASE WHEN {p} THEN 1 ELSE 0 END FROM orders o ORDER BY o.id LIMIT 5"),
    ("copy", "COPY (SELECT o.id FROM orders o WHERE {p} ORDER BY o.id) TO STDOUT"),
]

# Positions that need several statements: (setup..., the one whose rows count, teardown...)
MULTI_POSITIONS = [
    ("cursor", ["DECLARE gz CURSOR WITH HOLD FOR SELECT o.id FROM orders o WHERE {p} "
                "ORDER BY o.id", "FETCH ALL FROM gz", "CLOSE gz"], 1),
    ("prepare", ["PREPARE pz AS SELECT o.id FROM orders o WHERE {p} ORDER BY o.id",
                 "EXECUTE pz", "DEALLOCATE pz"], 1),
]


def oracle_statements():
    """(id, statement) for every predicate in every single-statement position."""
    return [(f"{pos}/{name}", template.format(p=pred))
            for pos, template in POSITIONS for name, pred in ORDER_ORACLES]


def reference_sql(statement):
    """What to run on isoref_a for a statement: COPY (q) TO STDOUT -> q."""
    if statement.startswith("COPY ("):
        return statement[len("COPY ("):statement.rindex(") TO STDOUT")]
    return statement


def load_corpus(path):
    """Lines 'EXPECT | SQL'; '#' lines are comments; a line ending in '\\'
    continues on the next. Returns [(id, expect, sql)]."""
    entries = []
    pending = ""
    for raw_line in path.read_text().splitlines():
        line = raw_line.rstrip()
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + "\n"
            continue
        line = pending + line
        pending = ""
        expect, _, sql = line.partition("|")
        entries.append((expect.strip(), sql.strip()))
    return entries


# ---- what the red-team modules (test_redteam*.py) share ------------------

# Names hidden from A beyond HIDDEN_NAMES: the schemas hush and trap (not in
# the policy, so not in A's visible set), their functions, the sequence.
REDTEAM_HIDDEN_NAMES = HIDDEN_NAMES + ("hush", "trap.", "leak_fn", "eq_int_text", "eq_rows",
                                       "ticket_seq")
# Everything of B's a red-team case checks for, besides hidden names.
REDTEAM_SECRETS = SECRETS + (TENANT_B,)


class Sessions:
    """One libpq session as alice to a gateway per key (a protocol, say),
    opened on first use and reset before every use."""

    def __init__(self, gateway):
        self.gateway = gateway
        self.opened = {}

    def __call__(self, key):
        if key not in self.opened:
            self.opened[key] = Raw(self.gateway.conninfo("alice", "isoa"))
        self.opened[key].reset()
        return self.opened[key]

    def close(self):
        for raw in self.opened.values():
            raw.close()


def hidden_names_not_in(sql, names):
    """The hidden names a statement does not spell itself (an error may echo
    what the tenant wrote; that is not a leak)."""
    lowered = sql.lower()
    return tuple(n for n in names if n.lower() not in lowered)


def case_id(i, sql, *parts):
    """A readable pytest id for corpus line i."""
    words = " ".join(sql.split())[:60]
    return f"{i:03d} {words}-" + "-".join(parts)


def corpus_param(i, sql, known_bugs, values, parts):
    """One corpus case: a strict xfail when known_bugs names its statement."""
    reason = known_bugs.get(sql)
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(*values, marks=marks, id=case_id(i, sql, *parts))


def assert_clean(outcome, sql, secrets, names, extra=()):
    """Nothing of B, no masked value, no hidden name reached A."""
    leaked = outcome.leaks(tuple(secrets) + hidden_names_not_in(sql, names) + tuple(extra))
    assert not leaked, f"{leaked} reached tenant A:\n{outcome.everything()[:2000]}"


def assert_still_a(raw, protocol="simple"):
    """The connection still works, as tenant A, with A's rows only."""
    raw.reset()
    check = raw.run(protocol, "SELECT count(*), min(tenant_id), max(tenant_id) FROM customers")
    assert not check.errors, f"connection unusable afterwards: {check.errors}"
    assert check.rows == [(str(N_CUSTOMERS), TENANT_A, TENANT_A)]
    assert raw.ok


def check_oracle_lines(postgres, corpus):
    """An 'oracle' line is only a test if its predicate really fires: it must
    fail on the shared database read directly (B's rows and the hidden
    objects are there) and succeed on tenant A's reference copy."""
    ensure_databases(postgres)
    vacuous, broken = [], []
    with postgres.connect(SHARED_DB) as shared, postgres.connect(REF_DB) as ref:
        for expect, sql in corpus:
            if expect != "oracle":
                continue
            for conn, want_error, bad in ((shared, True, vacuous), (ref, False, broken)):
                try:
                    if sql.startswith("COPY"):
                        with conn.cursor().copy(sql) as copy:
                            for _ in copy:
                                pass
                    else:
                        conn.execute(sql).fetchall()
                    failed = False
                except psycopg.Error:
                    failed = True
                conn.rollback()
                if failed != want_error:
                    bad.append(sql)
    assert not vacuous, "never fire on the shared database:\n" + "\n".join(vacuous)
    assert not broken, "fail on tenant A's own data:\n" + "\n".join(broken)
