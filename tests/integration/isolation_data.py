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
"""

import hashlib
import datetime

import psycopg
from psycopg import pq

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


def md5_text(value):
    return None if value is None else hashlib.md5(str(value).encode()).hexdigest()


def partial(value):
    """src/policy.c: repeat('x', length(v) - 4) || right(v, 4)."""
    if value is None:
        return None
    return "x" * max(len(value) - 4, 0) + value[-4:]


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
                    "search_path": "public"}


def start_gateway(pgwarden, postgres):
    ensure_databases(postgres)
    return pgwarden(settings=GATEWAY_SETTINGS, users=GATEWAY_USERS,
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
