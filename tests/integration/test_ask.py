"""ASK through pgwarden, with the stand-in LLM (contrib/fake-llm) as the model.

The tenant here shares one database with another tenant, as a SaaS schema
does: a row filter keeps each to its own rows. Its policy hides a table
(payroll_secrets), hides a column (customers.risk_flag_internal) and masks
one (customers.ssn). The other tenant's rows carry a marker value; none of
these may ever reach the model, which the prompt test checks over every
request the stand-in received during the module.

Every test scripts the stand-in for its own questions. Questions are asked
with $q$...$q$ quoting where they contain quotes.
"""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import psycopg.errors
import pytest

import pgwire
from askutil import FakeLLM, audit_records, exact, llm_section, prompt_text, sql_reply, \
    user_messages, wait_for_audit
from conftest import HOST, wait_until

DB = "askshop"
OTHER_MARKER = "ZORBLATQUUX"  # in the other tenant's rows only
HIDDEN_TABLE = "payroll_secrets"
HIDDEN_COLUMN = "risk_flag_internal"
SSNS = ["555-01-7001", "555-01-7002", "555-01-7003"]  # masked for everyone
OTHER_SSNS = ["666-02-8001", "666-02-8002"]

SCHEMA_SQL = f"""
CREATE TABLE customers (
    id integer PRIMARY KEY,
    tenant_id text NOT NULL,
    name text NOT NULL,
    city text,
    ssn text,
    {HIDDEN_COLUMN} text
);
COMMENT ON TABLE customers IS 'People who buy from the shop';
CREATE TABLE orders (
    id integer PRIMARY KEY,
    tenant_id text NOT NULL,
    customer_id integer REFERENCES customers,
    total numeric(10, 2) NOT NULL,
    placed_at date NOT NULL
);
CREATE TABLE {HIDDEN_TABLE} (id integer PRIMARY KEY, employee text, salary integer);
CREATE TABLE side_effects (n integer);
INSERT INTO customers VALUES
    (1, 'acme', 'Ada Acme', 'Springfield', '{SSNS[0]}', 'flag-a1'),
    (2, 'acme', 'Abe Acme', 'Shelbyville', '{SSNS[1]}', 'flag-a2'),
    (3, 'acme', 'Amy Acme', 'Springfield', '{SSNS[2]}', 'flag-a3'),
    (11, 'globex', '{OTHER_MARKER} One', '{OTHER_MARKER}ville', '{OTHER_SSNS[0]}', 'flag-g1'),
    (12, 'globex', '{OTHER_MARKER} Two', '{OTHER_MARKER}ville', '{OTHER_SSNS[1]}', 'flag-g2');
INSERT INTO orders VALUES
    (1, 'acme', 1, 100.00, '2023-03-01'),
    (2, 'acme', 1, 250.00, '2024-02-01'),
    (3, 'acme', 2, 40.00, '2023-07-15'),
    (4, 'acme', 3, 75.50, '2024-05-20'),
    (11, 'globex', 11, 9999.00, '2023-01-01'),
    (12, 'globex', 12, 8888.00, '2024-01-01');
INSERT INTO {HIDDEN_TABLE} VALUES (1, 'Ada', 123456);
GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader;
"""

POLICY = f"""
[tenant.{DB}]
backend = {{backend}}
id = acme

[table.public.customers]
row_filter = tenant_id = $tenant
mask.ssn = null
mask.{HIDDEN_COLUMN} = hide

[table.public.orders]
row_filter = tenant_id = $tenant

[table.public.{HIDDEN_TABLE}]
hidden = yes

[table.public.side_effects]
"""

USERS = {"alice": DB, "admin": DB}


@pytest.fixture(scope="module")
def shop(postgres):
    with postgres.connect() as su:
        su.execute(f"DROP DATABASE IF EXISTS {DB}")
        su.execute(f"CREATE DATABASE {DB}")
    with postgres.connect(DB) as conn:
        conn.execute(SCHEMA_SQL)
    return postgres


class Seen:
    """Every request the module's stand-ins received, kept across resets."""

    def __init__(self):
        self.entries = []
        self.llms = []

    def watch(self, llm):
        self.llms.append(llm)
        original_reset = llm.reset

        def reset():
            self.entries.extend(llm.log())
            original_reset()
        llm.reset = reset
        return llm

    def all(self):
        return self.entries + [e for llm in self.llms if llm.proc.poll() is None
                               for e in llm.log()]


@pytest.fixture(scope="module")
def seen():
    return Seen()


@pytest.fixture(scope="module")
def llm(seen):
    fake = seen.watch(FakeLLM())
    yield fake
    fake.stop()


def make_gateway(pgwarden, shop, llm, tmp_path_factory, settings=None, **llm_overrides):
    """A pgwarden for the shop tenant, its [llm] pointing at llm, auditing to a file."""
    audit = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    base = {"audit_log": str(audit), "pool_size": "10"}
    base.update(settings or {})
    extra = POLICY.replace("{backend}", shop.conninfo(DB)) + llm_section(llm, **llm_overrides)
    gw = pgwarden(settings=base, users=USERS, extra=extra)
    gw.audit_path = audit
    return gw


@pytest.fixture(scope="module")
def gw(pgwarden, shop, llm, tmp_path_factory):
    return make_gateway(pgwarden, shop, llm, tmp_path_factory)


@pytest.fixture
def conn(gw):
    c = gw.connect("alice", DB)
    c.notices = []
    c.add_notice_handler(lambda d: c.notices.append(d.message_primary))
    yield c
    c.close()


# --------------------------------------------------------------------------
# Running a statement on each protocol
# --------------------------------------------------------------------------

PROTOCOLS = ["simple", "extended", "prepared"]


def run(conn, sql, protocol):
    """(column names, rows) of sql sent over the given protocol."""
    if protocol == "simple":
        cur = psycopg.ClientCursor(conn)  # Query message
        cur.execute(sql)
    else:
        cur = conn.cursor()  # Parse/Bind/Describe/Execute/Sync
        cur.execute(sql, prepare=(protocol == "prepared"))
    names = [c.name for c in cur.description] if cur.description else None
    rows = cur.fetchall() if cur.description else None
    cur.close()
    return names, rows


TOTALS_Q = "what is the total of each customer's orders"
TOTALS_SQL = ("SELECT c.name, sum(o.total) AS spent FROM customers c "
              "JOIN orders o ON o.customer_id = c.id GROUP BY c.name ORDER BY c.name")
TOTALS_ROWS = [("Abe Acme", 40), ("Ada Acme", 350), ("Amy Acme", 75.5)]


def normalized(rows):
    return [tuple(float(v) if hasattr(v, "as_tuple") else v for v in r) for r in rows]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_ask_returns_rows_and_a_notice_with_the_sql(llm, conn, protocol):
    llm.script([{"match": exact(TOTALS_Q), "reply": sql_reply(TOTALS_SQL)}])
    names, rows = run(conn, f"ASK {TOTALS_Q}", protocol)
    assert names == ["name", "spent"]
    # Only this tenant's rows, although the model's SQL has no tenant filter.
    assert normalized(rows) == TOTALS_ROWS
    assert any(n.startswith("ask: ") and "sum(o.total)" in n for n in conn.notices), conn.notices


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_explain_ask_returns_the_sql_without_running_it(llm, gw, conn, protocol):
    question = f"which customers are there, slowly ({protocol})"
    # pg_sleep is an allowed function in the harness config: were this SQL
    # run, the statement would take 3 s.
    model_sql = "SELECT name, pg_sleep(3) FROM customers"
    llm.script([{"match": exact(question), "reply": sql_reply(model_sql)}])
    start = time.monotonic()
    names, rows = run(conn, f"EXPLAIN ASK {question}", protocol)
    elapsed = time.monotonic() - start
    assert names == ["sql"]
    assert rows == [(model_sql,)]
    assert elapsed < 2.5, f"EXPLAIN ASK took {elapsed:.1f}s: the SQL ran"
    rec = wait_for_audit(gw.audit_path, lambda r: r.get("question") == question)
    assert rec.get("generated_sql") == model_sql
    # What ran is the SQL as a literal, not the SQL.
    assert rec.get("rewritten", "").endswith("::text AS sql"), rec


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_ask_as_a_relation_inside_select(llm, conn, protocol):
    question = "orders per year"
    llm.script([{"match": exact(question), "reply": sql_reply(
        "SELECT extract(year FROM placed_at)::int AS year, count(*) AS n "
        "FROM orders GROUP BY 1")}])
    names, rows = run(conn, f"SELECT * FROM ask('{question}') AS t ORDER BY year", protocol)
    assert names == ["year", "n"]
    assert rows == [(2023, 2), (2024, 2)]
    assert any(n.startswith("ask: ") for n in conn.notices)


def test_describe_reports_the_generated_querys_columns(llm, conn):
    question = "customer cities"
    llm.script([{"match": exact(question),
                 "reply": sql_reply("SELECT id AS customer_id, city, 1.5::float8 AS weight "
                                    "FROM customers ORDER BY id")}])
    cur = conn.cursor()
    cur.execute(f"ASK {question}", prepare=True)
    assert [(c.name, c.type_code) for c in cur.description] == [
        ("customer_id", 23), ("city", 25), ("weight", 701)]
    assert [r[:2] for r in cur.fetchall()] == [(1, "Springfield"), (2, "Shelbyville"),
                                              (3, "Springfield")]
    # And a statement prepared explicitly (Parse, Describe statement):
    with conn.cursor() as c2:
        c2.execute(f"SELECT * FROM ask('{question}') AS t", prepare=True)
        assert [d.name for d in c2.description] == ["customer_id", "city", "weight"]
        assert len(c2.fetchall()) == 3


# --------------------------------------------------------------------------
# The model misbehaving
# --------------------------------------------------------------------------


def test_a_dml_answer_is_refused_and_nothing_changes(llm, gw, conn, shop):
    question = "delete the old orders"
    llm.script([{"match": "", "reply": sql_reply("DELETE FROM orders WHERE placed_at < '2024-01-01'")}])
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as exc:
        conn.execute(f"ASK {question}")
    diag = exc.value.diag
    assert "DELETE FROM orders" in (diag.message_detail or ""), diag.message_detail
    assert llm.calls() == 3  # max_attempts: every round answered DML
    with shop.connect(DB) as su:
        assert su.execute("SELECT count(*) FROM orders").fetchone()[0] == 6
    assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 4  # still usable


def test_a_wrong_column_is_corrected_by_the_second_attempt(llm, conn):
    question = "average order value"
    # The retry prompt carries the error, not the question, in its last user
    # message: the rule matches either, so its replies play two attempts.
    llm.script([{"match": r"/^average order value$|does not exist/",
                 "replies": [sql_reply("SELECT avg(amount) AS avg FROM orders"),
                             sql_reply("SELECT avg(total)::numeric(10,2) AS avg FROM orders")]}])
    rows = conn.execute(f"ASK {question}").fetchall()
    assert normalized(rows) == [(116.38,)]
    log = llm.log()
    assert len(log) == 2
    second = prompt_text(log[1])
    assert "amount" in second and "does not exist" in second, second
    assert any("avg(total)" in n for n in conn.notices)


def test_a_retry_prompt_does_not_confirm_a_hidden_name(llm, conn):
    # The model guesses the hidden column; the error it gets back must not
    # tell it that the column exists.
    question = "customer risk flags"
    llm.script([{"match": r"/^customer risk flags$|That SQL failed/",
                 "replies": [sql_reply(f"SELECT name, {HIDDEN_COLUMN} FROM customers"),
                             sql_reply("SELECT name FROM customers ORDER BY 1")]}])
    assert len(conn.execute(f"ASK {question}").fetchall()) == 3
    log = llm.log()
    assert len(log) == 2
    error_message = user_messages(log[1])[-1]
    assert error_message.startswith("That SQL failed"), error_message
    assert HIDDEN_COLUMN not in error_message, error_message


def test_model_unavailable_fails_fast_and_the_session_survives(llm, conn):
    llm.script([{"match": "", "status": 500, "error_message": "model overloaded"}])
    start = time.monotonic()
    with pytest.raises(psycopg.errors.SystemError) as exc:  # 58000
        conn.execute("ASK how many customers are there")
    elapsed = time.monotonic() - start
    assert exc.value.sqlstate == "58000"
    assert "500" in str(exc.value)
    assert elapsed < 5, f"took {elapsed:.1f}s"
    assert conn.execute("SELECT count(*) FROM customers").fetchone() == (3,)


def test_unreachable_model(pgwarden, shop, tmp_path_factory):
    dead = FakeLLM()
    dead.stop()  # its port now refuses connections
    gw = make_gateway(pgwarden, shop, dead, tmp_path_factory)
    with gw.connect("alice", DB) as conn:
        start = time.monotonic()
        with pytest.raises(psycopg.Error) as exc:
            conn.execute("ASK how many customers are there")
        assert exc.value.sqlstate == "58000", str(exc.value)
        assert "unreachable" in str(exc.value) or "connect" in str(exc.value).lower()
        assert time.monotonic() - start < 5
        assert conn.execute("SELECT 1").fetchone() == (1,)
    gw.stop()


def test_429_with_retry_after_then_success(llm, conn):
    question = "how many orders"
    llm.script([{"match": exact(question), "status": 429, "retry_after": 1, "times": 1,
                 "reply": sql_reply("SELECT count(*) AS n FROM orders")}])
    start = time.monotonic()
    assert conn.execute(f"ASK {question}").fetchall() == [(4,)]
    elapsed = time.monotonic() - start
    log = llm.log()
    assert [e["status"] for e in log] == [429, 200]
    # Retry-After: 1 was honoured, not hammered and not ignored.
    assert log[1]["time"] - log[0]["time"] >= 0.9
    assert elapsed < 5


def test_malformed_answer_is_a_clear_error(llm, conn):
    llm.script([{"match": "", "malformed": True}])
    with pytest.raises(psycopg.Error) as exc:
        conn.execute("ASK how many orders are there, malformed")
    assert exc.value.sqlstate == "58000"
    message = str(exc.value).lower()
    assert "json" in message or "malformed" in message or "invalid" in message, message
    assert conn.execute("SELECT 1").fetchone() == (1,)


def test_cannot_answer(llm, conn):
    llm.script([{"match": "", "reply": "CANNOT_ANSWER: there is no weather data"}])
    with pytest.raises(psycopg.errors.FeatureNotSupported) as exc:  # 0A000
        conn.execute("ASK what is the weather tomorrow")
    assert "weather" in str(exc.value)


# --------------------------------------------------------------------------
# Cancel and disconnect while the model thinks
# --------------------------------------------------------------------------


def test_cancel_during_a_slow_model_call(llm, conn):
    llm.script([{"match": "", "delay": 10, "reply": sql_reply("SELECT 1")}])
    timer = threading.Timer(0.5, conn.cancel)
    start = time.monotonic()
    timer.start()
    with pytest.raises(psycopg.errors.QueryCanceled):
        conn.execute("ASK a question that takes a while")
    elapsed = time.monotonic() - start
    timer.join()
    assert elapsed < 1.5, f"cancel took {elapsed - 0.5:.1f}s to arrive"
    llm.script([])
    assert conn.execute("SELECT count(*) FROM customers").fetchone() == (3,)


def test_disconnect_during_a_slow_model_call(llm, gw):
    llm.script([{"match": "", "delay": 5, "reply": sql_reply("SELECT 1")}])
    session = pgwire.Session(HOST, gw.port)
    session.startup("alice", DB, gw.passwords["alice"])
    session.send_query("ASK a question nobody waits for")
    wait_until(lambda: llm.calls() >= 1, 5, "the model call to start")
    session.close(graceful=False)
    assert gw.alive()
    llm.script([{"match": "", "reply": sql_reply("SELECT count(*) FROM orders")}])
    with gw.connect("alice", DB) as again:
        start = time.monotonic()
        assert again.execute("ASK how many orders again").fetchone() == (4,)
        assert time.monotonic() - start < 2
    assert gw.alive()


# --------------------------------------------------------------------------
# Limits, the translation cache, conversations
# --------------------------------------------------------------------------


def test_rate_limit_refuses_without_calling_the_model(pgwarden, shop, llm, tmp_path_factory):
    gw = make_gateway(pgwarden, shop, llm, tmp_path_factory, rate_limit="2/min")
    llm.script([{"match": "", "reply": sql_reply("SELECT count(*) FROM customers")}])
    with gw.connect("alice", DB) as conn:
        assert conn.execute("ASK rate question one").fetchone() == (3,)
        assert conn.execute("ASK rate question two").fetchone() == (3,)
        with pytest.raises(psycopg.Error) as exc:
            conn.execute("ASK rate question three")
        assert exc.value.sqlstate == "53400", str(exc.value)
        assert "rate limit" in str(exc.value)
        assert llm.calls() == 2
        assert conn.execute("SELECT 1").fetchone() == (1,)
    gw.stop()


def test_a_repeated_question_is_answered_from_the_translation_cache(llm, gw):
    question = "list the customer names for the cache test"
    llm.script([{"match": exact(question), "reply": sql_reply("SELECT name FROM customers ORDER BY 1")}])
    for _ in range(2):
        # Fresh sessions: the conversation so far is part of the key.
        with gw.connect("alice", DB) as conn:
            assert [r[0] for r in conn.execute(f"ASK {question}")] == ["Abe Acme", "Ada Acme",
                                                                       "Amy Acme"]
    assert llm.calls() == 1
    # The audit log is written by a thread of its own: wait for both records.
    def both_records():
        rec = [r for r in audit_records(gw.audit_path) if r.get("question") == question]
        return rec[-2:] if len(rec) >= 2 else None

    rec = wait_until(both_records, 5, "both ASK audit records")
    assert [r.get("translation") for r in rec] == ["model", "cache"], rec


def test_a_follow_up_question_sees_the_earlier_one(llm, conn):
    first, follow = "revenue per customer", "same, but only for 2023"
    first_sql = "SELECT customer_id, sum(total) AS revenue FROM orders GROUP BY 1 ORDER BY 1"
    follow_sql = ("SELECT customer_id, sum(total) AS revenue FROM orders "
                  "WHERE extract(year FROM placed_at) = 2023 GROUP BY 1 ORDER BY 1")
    llm.script([{"match": exact(first), "reply": sql_reply(first_sql)},
                {"match": exact(follow), "reply": sql_reply(follow_sql)}])
    assert normalized(conn.execute(f"ASK {first}").fetchall()) == [(1, 350), (2, 40), (3, 75.5)]
    assert normalized(conn.execute(f"ASK {follow}").fetchall()) == [(1, 100), (2, 40)]
    second = llm.log()[1]
    users = user_messages(second)
    assert users[-1].strip().endswith(follow)
    text = prompt_text(second)
    assert first in text and "GROUP BY 1 ORDER BY 1" in text


# --------------------------------------------------------------------------
# The API key
# --------------------------------------------------------------------------


def test_api_key_is_sent_and_never_logged(pgwarden, shop, tmp_path_factory, seen):
    key = "sk-test-7f3a9c1e5b"
    keyed = seen.watch(FakeLLM(expect_key=key))
    try:
        gw = make_gateway(pgwarden, shop, keyed, tmp_path_factory,
                          settings={"admin_users": "admin"}, api_key=key)
        keyed.script([{"match": "", "reply": sql_reply("SELECT count(*) FROM orders")}])
        with gw.connect("alice", DB) as conn:
            assert conn.execute("ASK how many orders with a key").fetchone() == (4,)
        log = keyed.log()
        assert log and all(e["key_matches"] for e in log)
        assert key not in gw.log_text()
        wait_until(lambda: any("ASK how many orders with a key" in str(r.get("sql", "")) or
                               r.get("question") == "how many orders with a key"
                               for r in audit_records(gw.audit_path)), 5, "the ASK's audit record")
        assert key not in gw.audit_path.read_text()
        with gw.connect("admin", "pgwarden") as admin:
            shown = repr(admin.execute("SHOW LLM").fetchall())
        assert key not in shown and "(set)" in shown, shown
        gw.stop()
        assert key not in gw.log_text()
    finally:
        keyed.reset()
        keyed.stop()


# --------------------------------------------------------------------------
# Concurrency
# --------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_a_hundred_simultaneous_asks_take_about_as_long_as_one(pgwarden, shop, llm,
                                                              tmp_path_factory):
    gw = make_gateway(pgwarden, shop, llm, tmp_path_factory,
                      settings={"pool_size": "120", "pool_timeout": "30s"})
    llm.script([{"match": "/^concurrent question/", "delay": 2,
                 "reply": sql_reply("SELECT count(*) FROM customers")}])
    n = 100
    conns = [gw.connect("alice", DB) for _ in range(n)]
    other = gw.connect("alice", DB)
    other.execute("SELECT 1").fetchone()
    try:
        # A fresh gateway: the ASKs also read the tenant's prompt schema.
        barrier = threading.Barrier(n)

        def ask(i):
            barrier.wait()
            return conns[i].execute(f"ASK concurrent question {i}").fetchone()

        with ThreadPoolExecutor(n) as pool:
            start = time.monotonic()
            futures = [pool.submit(ask, i) for i in range(n)]
            wait_until(lambda: llm.calls() >= 20, 5, "the model calls to start")
            t0 = time.monotonic()
            assert other.execute("SELECT count(*) FROM orders").fetchone() == (4,)
            plain = time.monotonic() - t0
            results = [f.result() for f in futures]
            total = time.monotonic() - start
        assert results == [(3,)] * n
        print(f"\n100 simultaneous ASKs (model delay 2 s): {total:.2f} s; "
              f"plain SELECT meanwhile: {plain * 1000:.0f} ms")
        assert llm.calls() == n
        assert total < 6, f"100 ASKs took {total:.1f}s"
        assert plain < 0.5, f"a plain SELECT took {plain:.2f}s during the ASKs"
    finally:
        for c in conns + [other]:
            c.close()
        gw.stop()


# --------------------------------------------------------------------------
# Anthropic-shaped provider, token budget
# --------------------------------------------------------------------------


def test_anthropic_provider(pgwarden, shop, llm, tmp_path_factory):
    gw = make_gateway(pgwarden, shop, llm, tmp_path_factory, provider="anthropic")
    llm.script([{"match": "", "reply": sql_reply("SELECT count(*) AS n FROM customers")}])
    with gw.connect("alice", DB) as conn:
        assert conn.execute("ASK how many customers, anthropic").fetchone() == (3,)
    log = llm.log()
    assert [e["provider"] for e in log] == ["anthropic"]
    assert log[0]["body"].get("system"), "the schema goes in the system field"
    gw.stop()


def test_token_budget_refuses_without_calling_the_model(pgwarden, shop, llm, tmp_path_factory):
    gw = make_gateway(pgwarden, shop, llm, tmp_path_factory, token_budget="1000")
    llm.script([{"match": "", "prompt_tokens": 2000, "completion_tokens": 10,
                 "reply": sql_reply("SELECT count(*) FROM orders")}])
    with gw.connect("alice", DB) as conn:
        assert conn.execute("ASK budget question one").fetchone() == (4,)
        with pytest.raises(psycopg.Error) as exc:
            conn.execute("ASK budget question two")
        assert exc.value.sqlstate == "53400", str(exc.value)
        assert llm.calls() == 1
        assert conn.execute("SELECT 1").fetchone() == (1,)
    gw.stop()


# --------------------------------------------------------------------------
# What the prompt shows, and what the client sees while an ASK runs
# --------------------------------------------------------------------------


def test_a_question_sharing_no_word_with_the_schema_gets_all_of_it(llm, conn):
    # Issue 13: the local choice used to send an empty Schema: section.
    question = "give me a summary of everything"
    llm.script([{"match": exact(question), "reply": sql_reply("SELECT count(*) FROM orders")}])
    assert conn.execute(f"ASK {question}").fetchone() == (4,)
    system = llm.log()[0]["body"]["messages"][0]["content"]
    for table in ("CREATE TABLE customers", "CREATE TABLE orders", "CREATE TABLE side_effects"):
        assert table in system, system
    assert HIDDEN_TABLE not in system


def test_a_schema_over_the_budget_is_chosen_and_never_empty(pgwarden, shop, llm,
                                                            tmp_path_factory):
    gw = make_gateway(pgwarden, shop, llm, tmp_path_factory, schema_budget="64B",
                      min_tables="1", max_tables="1")
    llm.script([{"match": "", "reply": sql_reply("SELECT count(*) FROM orders")}])
    with gw.connect("alice", DB) as conn:
        conn.execute("ASK how many orders were placed").fetchone()
        conn.execute("ASK a question that names nothing at all").fetchone()
    systems = [e["body"]["messages"][0]["content"] for e in llm.log()]
    assert len(systems) == 2
    # The question's table, and only it, within a 1-table limit.
    assert "CREATE TABLE orders" in systems[0] and "CREATE TABLE customers" not in systems[0]
    # No word in common: still one table, never none.
    assert systems[1].count("CREATE TABLE") == 1, systems[1]
    gw.stop()


def progress(notices):
    return [n for n in notices if n.startswith("ask: ")]


def test_progress_notices_arrive_in_order(llm, gw):
    question = "average order amount, with a retry"
    llm.script([{"match": r"/^average order amount, with a retry$|That SQL failed/",
                 "replies": [sql_reply("SELECT avg(amount) FROM orders"),
                             sql_reply("SELECT avg(total)::numeric(10,2) AS avg FROM orders")]}])
    with gw.connect("alice", DB) as conn:
        notices = []
        conn.add_notice_handler(lambda d: notices.append(d.message_primary))
        assert normalized(conn.execute(f"ASK {question}").fetchall()) == [(116.38,)]
    seen = progress(notices)
    assert len(seen) == 4, seen
    assert seen[0].startswith("ask: the whole schema (3 tables)"), seen
    assert seen[1] == "ask: attempt 1 of 3", seen
    assert seen[2].startswith("ask: attempt 2 of 3: the previous SQL failed: "), seen
    assert "does not exist" in seen[2], seen
    assert seen[3] == "ask: SELECT avg(total)::numeric(10,2) AS avg FROM orders", seen


def test_progress_respects_client_min_messages(llm, gw):
    question = "how many customers, quietly"
    llm.script([{"match": exact(question), "reply": sql_reply("SELECT count(*) FROM customers")}])
    with gw.connect("alice", DB) as conn:
        notices = []
        conn.add_notice_handler(lambda d: notices.append(d.message_primary))
        conn.execute("SET client_min_messages = warning")
        assert conn.execute(f"ASK {question}").fetchone() == (3,)
        conn.execute("SET client_min_messages = notice")
        llm.script([{"match": "", "reply": sql_reply("SELECT count(*) FROM customers")}])
        assert conn.execute("ASK how many customers, aloud").fetchone() == (3,)
    # Quiet: only the final NOTICE with the SQL (unchanged); aloud: progress too.
    seen = progress(notices)
    assert seen[0] == "ask: SELECT count(*) FROM customers", seen
    assert seen[1].startswith("ask: the whole schema"), seen
    assert seen[2] == "ask: attempt 1 of 3", seen


@pytest.mark.parametrize("kind", ["column", "table"])
def test_a_hidden_name_and_an_unknown_name_get_the_same_errors(llm, conn, kind):
    # Issue 7.6: what comes back (to the model and to the client) must not
    # tell a hidden name from one that does not exist.
    if kind == "column":
        hidden_sql, unknown_sql = (f"SELECT {HIDDEN_COLUMN} FROM customers",
                                   "SELECT zzq_no_such_col FROM customers")
    else:
        hidden_sql, unknown_sql = (f"SELECT * FROM {HIDDEN_TABLE}",
                                   "SELECT * FROM zzq_no_such_tab")
    results = []
    for sql, name in ((hidden_sql, HIDDEN_COLUMN if kind == "column" else HIDDEN_TABLE),
                      (unknown_sql, "zzq_no_such_col" if kind == "column" else "zzq_no_such_tab")):
        question = f"oracle probe {kind} {len(results)}"
        llm.script([{"match": "", "reply": sql_reply(sql)}])
        with pytest.raises(psycopg.Error) as exc:
            conn.execute(f"ASK {question}")
        retries = [user_messages(e)[-1] for e in llm.log()[1:]]
        client = str(exc.value.diag.message_primary)
        results.append((exc.value.sqlstate, client.replace(name, "NAME"),
                        [r.replace(name, "NAME") for r in retries]))
        assert HIDDEN_COLUMN not in client and HIDDEN_TABLE not in client, client
        for r in retries:
            assert HIDDEN_COLUMN not in r and HIDDEN_TABLE not in r, r
    assert results[0] == results[1], results


PALETTE_POLICY = """
[table.public.zz_palette]
row_filter = tenant_id = $tenant
mask.secret_shade = null
"""


def test_the_value_index_finds_a_table_by_the_tenants_own_values(pgwarden, shop, llm,
                                                                  tmp_path_factory):
    # One table at most, so only the ranking decides which: a question that
    # names a value finds its table. Values come from the tenant's own,
    # filtered rows: another tenant's value finds nothing, and neither they
    # nor a masked column's values ever reach a prompt.
    with shop.connect(DB) as su:
        su.execute("CREATE TABLE zz_palette (id integer PRIMARY KEY, tenant_id text, shade text, "
                   "secret_shade text)")
        su.execute("INSERT INTO zz_palette VALUES (1, 'acme', 'Vermilion', 'hush-acme'), "
                   "(2, 'acme', 'Saffron', 'hush-acme2'), "
                   "(3, 'globex', 'Cerulean', 'hush-globex')")
        su.execute("GRANT SELECT ON zz_palette TO reader")
    try:
        audit = tmp_path_factory.mktemp("audit") / "audit.jsonl"
        extra = (POLICY.replace("{backend}", shop.conninfo(DB)) + PALETTE_POLICY +
                 llm_section(llm, schema_budget="300B", min_tables="1", max_tables="1",
                             sample_values="yes"))
        gw = pgwarden(settings={"audit_log": str(audit)}, users=USERS, extra=extra)
        llm.script([{"match": "", "reply": sql_reply("SELECT count(*) FROM zz_palette")}])
        with gw.connect("alice", DB) as conn:
            assert conn.execute("ASK which rows are vermilion").fetchone() == (2,)
            conn.execute("ASK which rows are cerulean").fetchone()
        systems = [e["body"]["messages"][0]["content"] for e in llm.log()]
        assert len(systems) == 2
        assert "CREATE TABLE zz_palette" in systems[0], systems[0]
        assert "'Vermilion'" in systems[0], systems[0]
        assert "CREATE TABLE zz_palette" not in systems[1], systems[1]
        for text in systems:
            for word in ("Cerulean", "hush-", OTHER_MARKER, *SSNS, *OTHER_SSNS, "flag-"):
                assert word not in text, (word, text)
        gw.stop()
    finally:
        with shop.connect(DB) as su:
            su.execute("DROP TABLE zz_palette")


def test_ddl_on_the_backend_shows_up_in_the_next_prompt(llm, gw, shop):
    with gw.connect("alice", DB) as conn:
        llm.script([{"match": "", "reply": sql_reply("SELECT count(*) FROM side_effects")}])
        conn.execute("ASK how many side effects, before").fetchone()
        assert "zz_added_col" not in llm.log()[-1]["body"]["messages"][0]["content"]
        with shop.connect(DB) as su:
            su.execute("ALTER TABLE side_effects ADD COLUMN zz_added_col integer")
        tries = []
        try:
            def shown():
                # A new question each time: a repeated one is answered
                # from the translation cache without a prompt.
                tries.append(1)
                llm.reset()
                conn.execute(f"ASK how many side effects, after {len(tries)}").fetchone()
                return "zz_added_col" in llm.log()[-1]["body"]["messages"][0]["content"]
            wait_until(shown, 15, "the new column in the prompt")
        finally:
            with shop.connect(DB) as su:
                su.execute("ALTER TABLE side_effects DROP COLUMN zz_added_col")


# --------------------------------------------------------------------------
# Nothing the tenant may not see reaches the model
# --------------------------------------------------------------------------


def test_prompts_never_carry_hidden_names_other_tenants_or_masked_values(llm, conn, seen):
    # Last in the module: it checks every request the stand-ins received,
    # after a few questions of its own so it has material when run alone.
    llm.script([{"match": "", "reply": sql_reply("SELECT name, city, ssn FROM customers")}])
    for q in ("show every customer with their ssn", "who works here and what do they earn",
              "which cities do customers live in"):
        conn.execute(f"ASK {q}").fetchall()
    entries = seen.all()
    assert len(entries) >= 3
    # Sanity: the prompt does show the visible schema.
    assert any("customers" in prompt_text(e) and "city" in prompt_text(e) for e in entries)
    forbidden = [HIDDEN_TABLE, HIDDEN_COLUMN, OTHER_MARKER, "flag-a1", "flag-g1", "123456",
                 *SSNS, *OTHER_SSNS]
    for e in entries:
        # What pgwarden wrote: the system prompt and the user messages.
        # Assistant messages only repeat the model's own earlier answers.
        body = e["body"]
        text = json.dumps([body.get("system", "")] + [
            m for m in body.get("messages", []) if m.get("role") != "assistant"])
        for word in forbidden:
            assert word.lower() not in text.lower(), f"{word!r} reached the model: {text[:2000]}"
