"""psql's meta-commands through pgwarden (issue 12): every command of `\\?`
that reads the catalog, in its plain, S and + forms and with patterns, runs
without error, shows nothing hidden, and prints the same headers (title,
column titles, footer section titles) as the same command run directly
against the single-tenant reference. The SQL is whatever psql 15 itself
builds (src/bin/psql/describe.c); psql.sql of ../shared/clients adds the
cases a user would try first.
"""

import os
import re
import shutil
import subprocess

import pytest

import catalog_data as data
from conftest import HOST, REPO

PSQL = shutil.which("psql") or "/usr/lib/postgresql/15/bin/psql"
SHARED_CLIENTS = data.shared_clients_dir(REPO)

# Every catalog-reading meta-command of psql 15's \?, with the variants a
# user types. Arguments name visible objects (customers, orders, the view
# customer_regions, the sequence orders_id_seq, the index customers_pkey).
COMMANDS = [
    r"\d", r"\d+", r"\dS", r"\dS+", r"\d customers", r"\d+ customers", r"\d orders",
    r"\d+ orders", r"\d+ big_facts", r"\d customers_pkey", r"\d+ orders_customer_idx",
    r"\d orders_id_seq", r"\d customer_regions", r"\d+ customer_regions",
    # describes every relation, query after query: the suite's longest test
    # and the nearest to its limit, so it runs alone (conftest.py, "Parallel runs")
    pytest.param(r"\d *", marks=pytest.mark.serial),
    r"\da", r"\daS", r"\dA", r"\dA+", r"\dAc", r"\dAc+ btree", r"\dAf", r"\dAf+ btree",
    r"\dAo", r"\dAo+ btree integer_ops", r"\dAp", r"\dAp+ btree integer_ops",
    r"\db", r"\db+", r"\dc", r"\dcS+", r"\dconfig", r"\dconfig+", r"\dconfig *", r"\dC",
    r"\dC+", r"\dd", r"\ddS", r"\dd customers", r"\dD", r"\dDS+", r"\ddp", r"\dE", r"\dES+",
    r"\des", r"\des+", r"\det", r"\det+", r"\deu", r"\deu+", r"\dew", r"\dew+", r"\df",
    r"\df+", r"\dfa", r"\dfn", r"\dfp", r"\dft", r"\dfw", r"\dfS", r"\dfS+ lower", r"\dF",
    r"\dF+", r"\dFd", r"\dFd+", r"\dFp", r"\dFp+", r"\dFt", r"\dFt+", r"\dg", r"\dgS+",
    r"\di", r"\di+", r"\diS+", r"\dl", r"\dl+", r"\dL", r"\dLS+", r"\dm", r"\dm+", r"\dn",
    r"\dn+", r"\dnS+", r"\do", r"\doS+", r"\doS+ +", r"\dO", r"\dOS+", r"\dp",
    r"\dp customers", r"\dP", r"\dPitn+", r"\drds", r"\dRp", r"\dRp+", r"\dRs", r"\dRs+",
    r"\ds", r"\ds+", r"\dsS+", r"\dt", r"\dt+", r"\dtS+", r"\dt public.*", r"\dT", r"\dT+",
    r"\dTS+", r"\dT mood", r"\du", r"\du+", r"\duS+", r"\dv", r"\dv+", r"\dvS+", r"\dx",
    r"\dx+", r"\dX", r"\dy", r"\dy+", r"\l", r"\l+", r"\sf pg_catalog.lower(text)",
    r"\sf+ pg_catalog.upper(text)", r"\sv customer_regions", r"\sv+ customer_regions",
    r"\z", r"\z customers", r"\lo_list", r"\lo_list+", r"\conninfo",
]

# Objects that exist only for the other tenant's eyes: asked for by name,
# each must read as "not found", exactly as on the reference (which has
# none of them).
HIDDEN_COMMANDS = [
    r"\d internal_notes", r"\d+ internal_notes", r"\d public.internal_notes",
    r"\d internal_notes_pkey", r"\d internal_notes_id_seq", r"\d notes_view",
    r"\d vault.secret_keys", r"\dn vault", r"\dt vault.*", r"\df note_checker",
    r"\sv notes_view", r"\dd internal_notes", r"\dX notes_stats", r"\dp internal_notes",
]


@pytest.fixture(scope="module")
def gw(postgres, pgwarden):
    return data.start_gateway(pgwarden, postgres)


def run_psql(args, env_extra, command):
    env = dict(os.environ, PGCONNECT_TIMEOUT="10", PAGER="", PSQL_PAGER="", **env_extra)
    lines = command.split("\n")
    argv = [PSQL, "-X", "-v", "ON_ERROR_STOP=1"] + args
    for line in lines:
        argv += ["-c", line]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60,
                          stdin=subprocess.DEVNULL)


def via_gateway(gw, command):
    return run_psql(["-h", HOST, "-p", str(gw.port), "-U", "alice", "-d", data.TENANT],
                    {"PGPASSWORD": gw.passwords["alice"]}, command)


def direct(postgres, command):
    return run_psql(["-h", HOST, "-p", str(postgres.port), "-U", data.ROLE, "-d", data.REF_DB],
                    {"PGOPTIONS": "-c search_path=public"}, command)


def headers(text):
    """What must read the same: titles, column title lines, footer section
    titles, 'Did not find' messages; OIDs and the database's name made
    comparable."""
    out = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if re.fullmatch(r"[-+]+", nxt.strip()) and nxt.strip():
            out.append(("columns", re.sub(r"\s+", " ", line.strip())))
        elif re.match(r"^\s{2,}\S.*\S\s*$", line) and re.fullmatch(r"[-+]+", nxt.strip() or "x"):
            out.append(("title", line.strip()))
        elif re.match(r"^[A-Z][A-Za-z -]+:$", line.strip()):
            out.append(("section", line.strip()))
    return [(k, v.replace(data.REF_DB, data.TENANT)) for k, v in out]


def assert_nothing_hidden(text, command):
    leaked = [w for w in data.leaks(text) + [w for w in (data.SHARED_DB,) if w in text]
              if w.lower() not in command.lower()]
    assert not leaked, f"{leaked} visible in {command}:\n{text[:3000]}"


@pytest.mark.parametrize("command", COMMANDS)
def test_meta_command(gw, postgres, command):
    got = via_gateway(gw, command)
    want = direct(postgres, command)
    assert_nothing_hidden(got.stdout + got.stderr, command)
    assert "ERROR" not in got.stderr, got.stderr
    if want.returncode != 0:
        # The reference role lacks a privilege (\\db+ sizes pg_global, \\dRs reads
        # pg_subscription): through pgwarden the command works, with the
        # figures NULL and the rows it may not see absent.
        assert "ERROR" in want.stderr or "Did not find" in want.stderr, want.stderr
        return
    assert got.returncode == 0, got.stderr
    assert headers(got.stdout) == headers(want.stdout), (
        f"{command}\n--- pgwarden\n{got.stdout[:3000]}\n--- reference\n{want.stdout[:3000]}")


@pytest.mark.parametrize("command", HIDDEN_COMMANDS)
def test_hidden_object_is_not_found(gw, postgres, command):
    got = via_gateway(gw, command)
    want = direct(postgres, command)
    assert_nothing_hidden(got.stdout + got.stderr, command)
    assert got.returncode == want.returncode, got.stderr
    assert got.stderr.replace(data.TENANT, "DB") == want.stderr.replace(data.REF_DB, "DB")
    assert headers(got.stdout) == headers(want.stdout)


def psql_cases():
    path = SHARED_CLIENTS / "psql.sql"
    cases, current = [], None
    for line in path.read_text().splitlines():
        if line.startswith("-- case:"):
            current = {"name": line[8:].strip(), "error": False, "lines": []}
            cases.append(current)
        elif current is None or not line.strip():
            continue
        elif line.startswith("-- expect: error"):
            current["error"] = True
        elif not line.startswith("--"):
            current["lines"].append(line)
    return [pytest.param(c, id=c["name"]) for c in cases if c["lines"]]


@pytest.mark.parametrize("case", psql_cases())
def test_shared_psql_case(gw, postgres, case):
    command = "\n".join(case["lines"])
    got = via_gateway(gw, command)
    want = direct(postgres, command)
    assert_nothing_hidden(got.stdout + got.stderr, command)
    if case["error"]:
        assert got.returncode != 0 and want.returncode != 0
        assert got.stderr.replace(data.TENANT, "DB") == want.stderr.replace(data.REF_DB, "DB")
        return
    assert got.returncode == 0 and "ERROR" not in got.stderr, got.stderr
    assert headers(got.stdout) == headers(want.stdout), (
        f"--- pgwarden\n{got.stdout[:3000]}\n--- reference\n{want.stdout[:3000]}")
    if command.startswith(r"\copy") or "SELECT" in command:
        assert got.stdout == want.stdout
