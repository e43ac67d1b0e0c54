"""BI tools' own SQL through pgwarden, compared with a single-tenant reference
(issue 12).

For every case of every tool file in ../shared/clients (see its README: the
statements pgAdmin 4, Metabase, Grafana, DBeaver, Superset/SQLAlchemy 1.4,
SQLAlchemy 2.0, pgjdbc, Npgsql, psqlODBC and knex send, with their sources
named in each file's header) and of this project's own corpus of further
metadata statements (sql/compat_extra.sql, same format), the statement runs
through pgwarden as tenant acme and directly against catref_acme, the same
schema minus every hidden object holding only acme's rows, as the same
backend role. A tool works through pgwarden when:
  * every statement that succeeds on the reference succeeds through
    pgwarden, with the same column names, type OIDs and typmods, and one
    that fails fails with the same SQLSTATE (a hidden object fails exactly
    as the reference, which does not have it, fails);
  * the rows are the same where they can be (no OID-valued column, not a
    listing of cluster-wide roles or databases, which pgwarden narrows on
    purpose: ROWS_DIFFER says why for each);
  * nothing hidden (names, the other tenant, the backend database's real
    name) appears anywhere in what comes back.
Cases without a `-- protocol:` line run on both protocols. psql.sql holds
meta-commands: test_psql.py runs those with psql itself.
"""

import json
import re
from pathlib import Path

import pytest

import catalog_data as data

REPO = Path(__file__).resolve().parents[2]
SHARED_CLIENTS = data.shared_clients_dir(REPO)
OWN_CORPUS = Path(__file__).with_name("sql") / "compat_extra.sql"

# Types whose values are OIDs (or depend on the physical layout): rows with
# them differ between two databases by construction.
OID_TYPES = {26, 24, 2202, 2203, 2204, 2205, 2206, 3734, 3769, 4089, 4096, 4191, 27, 28, 29,
             5069, 30, 1028, 1033, 1034, 2207, 2208, 2209, 2210, 2211, 194}

# Cases whose rows differ from the reference by design (case name prefix ->
# why). Columns and types must still match.
ROWS_DIFFER = {
    "roles": "only the session's own role (and the predefined pg_* roles) exist for a tenant",
    "databases": "only the tenant's database exists for it",
    "settings": "server file, connection and replication settings are not shown",
    "volume": "volume figures of row-filtered relations and of the catalogs read as NULL",
    "owners": "names of roles other than the session's own read as NULL",
    "version": "the reference is another database of the same server",
    "sessions": "only the session's own backend and its locks exist for a tenant",
}


def case_reason(tool, name, sql):
    """Why rows of this case may differ from the reference, or None."""
    low = sql.lower()
    if re.search(r"\bpg_roles\b|\bpg_user\b|\bpg_auth_members\b|\bpg_shdescription\b", low):
        return ROWS_DIFFER["roles"]
    if re.search(r"\bpg_database\b", low):
        return ROWS_DIFFER["databases"]
    if re.search(r"\bpg_stat_activity\b|\bpg_locks\b", low):
        return ROWS_DIFFER["sessions"]
    if re.search(r"\bpg_settings\b|pg_show_all_settings", low):
        return ROWS_DIFFER["settings"]
    if re.search(r"reltuples|relpages|pg_stat_|pg_statio_|_size\(", low):
        return ROWS_DIFFER["volume"]
    if re.search(r"owner|pg_get_userbyid|grantor|grantee|relacl|datacl|nspacl", low):
        return ROWS_DIFFER["owners"]
    return None


class Case:
    def __init__(self, tool, name):
        self.tool, self.name = tool, name
        self.protocol = None
        self.params = None
        self.expect_error = False
        self.expect_state = None
        self.statements = [""]

    @property
    def sql(self):
        return "\n".join(self.statements)


def parse_client_file(path):
    cases, case, directives = [], None, False
    for line in path.read_text().splitlines():
        if line.startswith("-- case:"):
            case = Case(path.stem, line[len("-- case:"):].strip())
            cases.append(case)
            directives = True
            continue
        if case is None:
            continue
        if directives and line.startswith("-- protocol:"):
            case.protocol = line.split(":", 1)[1].strip()
            continue
        if directives and line.startswith("-- params:"):
            case.params = line.split(":", 1)[1].strip()
            continue
        if directives and line.startswith("-- expect:"):
            words = line.split(":", 1)[1].split()
            case.expect_error = words[:1] == ["error"]
            case.expect_state = words[1] if len(words) > 1 else None
            continue
        directives = False
        if line.strip() == "-- next":
            case.statements.append("")
            continue
        case.statements[-1] += line + "\n"
    for c in cases:
        c.statements = [s.strip() for s in c.statements if s.strip()]
    return [c for c in cases if c.statements]


def all_cases():
    files = sorted(p for p in SHARED_CLIENTS.glob("*.sql") if p.name != "psql.sql")
    files.append(OWN_CORPUS)
    out = []
    for path in files:
        for case in parse_client_file(path):
            protocols = [case.protocol] if case.protocol else (
                ["extended"] if case.params else ["simple", "extended"])
            for proto in protocols:
                out.append(pytest.param(case, proto, id=f"{case.tool}:{case.name}:{proto}"))
    return out


CASES = all_cases()


@pytest.fixture(scope="module")
def gw(postgres, pgwarden):
    return data.start_gateway(pgwarden, postgres)


@pytest.fixture(scope="module")
def placeholders(postgres):
    """{{oid:schema.name}}, {{nsoid:schema}} and {{dboid}} (the connected
    database) resolved in each database."""
    cache = {}

    def resolve(db, text):
        def one(m):
            key = (db, m.group(1), m.group(2))
            if key not in cache:
                with postgres.connect(db) as conn:
                    if m.group(1) == "dboid":
                        row = conn.execute("SELECT oid FROM pg_database "
                                           "WHERE datname = current_database()").fetchone()
                    elif m.group(1) == "oid":
                        row = conn.execute("SELECT to_regclass(%s)::oid", (m.group(2),)).fetchone()
                    else:
                        row = conn.execute("SELECT oid FROM pg_namespace WHERE nspname = %s",
                                           (m.group(2),)).fetchone()
                cache[key] = str(row[0]) if row and row[0] is not None else "0"
            return cache[key]
        return re.sub(r"\{\{(oid|nsoid|dboid):?([^}]*)\}\}", one, text)
    return resolve


@pytest.fixture(scope="module")
def type_names(postgres):
    """Column types compared by name: user types (the enum mood) have other
    OIDs in the reference database."""
    cache = {}

    def name(db, oid):
        if (db, oid) not in cache:
            with postgres.connect(db) as conn:
                cache[(db, oid)] = conn.execute("SELECT format_type(%s, NULL)", (oid,)).fetchone()[0]
        return cache[(db, oid)]

    def columns(db, cols):
        return [(n, t if t < 16384 else name(db, t), m) for n, t, m in cols]
    return columns


@pytest.fixture(scope="module")
def sessions(gw, postgres):
    opened = {}

    def get(kind, protocol):
        key = (kind, protocol)
        if key not in opened:
            if kind == "gw":
                conninfo = gw.conninfo("alice", data.TENANT)
            else:
                conninfo = data.reference_conninfo(postgres)
            opened[key] = data.Session(conninfo)
        return opened[key]
    yield get
    for s in opened.values():
        s.close()


def run_case(session, protocol, statements, params):
    session.reset()
    out = []
    for i, sql in enumerate(statements):
        out.append(session.run(protocol, sql, params if i == 0 and params else ()))
    session.reset()
    return out


def normalize(rows):
    """Rows as comparable text: the reference database's name is the
    tenant's, and names made of OIDs (TOAST tables, information_schema's
    not-null constraints) lose their numbers."""
    def one(v):
        if v is None:
            return ""
        v = v.replace(data.REF_DB, data.TENANT)
        v = re.sub(r"pg_toast_\d+", "pg_toast_N", v)
        return re.sub(r"\b\d+_\d+_\d+_not_null\b", "N_not_null", v)
    return sorted(tuple(one(v) for v in r) for r in rows)


def check_no_leak(case, results):
    """Nothing hidden the statement did not write itself (an error may echo
    the client's own words, in its text or its parameters)."""
    text = "\n".join(r.text() for step in results for r in step)
    own = (case.sql + (case.params or "")).lower()
    leaked = [w for w in data.leaks(text) + [w for w in (data.SHARED_DB,) if w in text]
              if w.lower() not in own]
    assert not leaked, f"{leaked} visible in {case.tool}:{case.name}:\n{text[:3000]}"


@pytest.mark.parametrize("case, protocol", CASES)
def test_tool_statement(case, protocol, sessions, placeholders, type_names):
    params = json.loads(placeholders(data.SHARED_DB, case.params)) if case.params else ()
    ref_params = json.loads(placeholders(data.REF_DB, case.params)) if case.params else ()
    got = run_case(sessions("gw", protocol), protocol,
                   [placeholders(data.SHARED_DB, s) for s in case.statements], params)
    want = run_case(sessions("ref", protocol), protocol,
                    [placeholders(data.REF_DB, s) for s in case.statements], ref_params)
    check_no_leak(case, got)
    if case.expect_error:
        errors = [r.error for step in got for r in step if r.error]
        assert errors, f"expected an error, got {[[r.rows[:3] for r in s] for s in got]}"
        if case.expect_state:
            assert errors[0][0] == case.expect_state, errors
        ref_errors = [r.error for step in want for r in step if r.error]
        if ref_errors:
            assert errors[0] == ref_errors[0], "a hidden object must fail as a missing one"
        return
    reason = case_reason(case.tool, case.name, case.sql)
    for step, (g, w) in enumerate(zip(got, want)):
        assert len(g) == len(w), f"step {step}: {len(g)} results, reference {len(w)}"
        for gr, wr in zip(g, w):
            if wr.error:
                assert gr.error and gr.error[0] == wr.error[0], (
                    f"step {step}: reference failed with {wr.error}, pgwarden gave "
                    f"{gr.error or gr.rows[:3]}")
                continue
            assert gr.error is None, f"step {step}: {gr.error}"
            assert type_names(data.SHARED_DB, gr.columns) == type_names(data.REF_DB, wr.columns), (
                f"step {step}: columns differ")
            if reason is not None:
                continue
            if any(c[1] in OID_TYPES for c in wr.columns):
                assert len(gr.rows) == len(wr.rows), (
                    f"step {step}: {len(gr.rows)} rows, reference {len(wr.rows)}\n"
                    f"{normalize(gr.rows)[:20]}\n{normalize(wr.rows)[:20]}")
                continue
            assert normalize(gr.rows) == normalize(wr.rows), f"step {step}: rows differ"


def test_every_tool_file_is_read():
    tools = {c.values[0].tool for c in CASES}
    expected = {p.stem for p in SHARED_CLIENTS.glob("*.sql")} - {"psql"}
    assert expected <= tools, expected - tools
    assert len(CASES) > 200
