"""Sequences (issue 14 brief, item 5): what a tenant may learn of them.

A sequence is shared by every tenant that writes the table owning it, so
its value and its activity count the other tenants' rows: big_facts holds
1,000 of acme's rows and 20,000 of globex's, and big_facts_id_seq stands at
21,000. The policy lists the sequences that readable tables own (psql's \\ds,
pg_get_serial_sequence and column defaults name them, as PostgreSQL would)
but shows none of their figures, and reading one as a relation fails closed
with exactly the answer a nonexistent relation gets (42P01), so a client
learns nothing from trying. The catalogs and the shared database are
catalog_data's (acme sees customers, orders, big_facts, products; the
hidden internal_notes owns internal_notes_id_seq).
"""

import psycopg
import pytest

import catalog_data as data

VOLUME_SECRETS = ("21000", "21001", "20000", "2000")  # big_facts_id_seq, orders_id_seq


@pytest.fixture(scope="module")
def gw(postgres, pgwarden):
    return data.start_gateway(pgwarden, postgres)


def run(gw, sql):
    """(rows, None) or (None, (sqlstate, message)) through pgwarden as acme."""
    with gw.connect("alice", data.TENANT) as conn:
        try:
            return conn.execute(sql).fetchall(), None
        except psycopg.Error as exc:
            return None, (exc.sqlstate, exc.diag.message_primary)


def reference_error(postgres, sql):
    """What PostgreSQL itself answers (the single-tenant reference)."""
    with psycopg.connect(data.reference_conninfo(postgres), autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as info:
            conn.execute(sql)
    return info.value.sqlstate, info.value.diag.message_primary


@pytest.mark.parametrize("sql,name", [
    ("SELECT last_value FROM big_facts_id_seq", "big_facts_id_seq"),
    ("SELECT * FROM public.orders_id_seq", "public.orders_id_seq"),
    ("TABLE orders_id_seq", "orders_id_seq"),
    ("SELECT s.is_called FROM customers c, big_facts_id_seq s", "big_facts_id_seq"),
    ("SELECT (SELECT last_value FROM big_facts_id_seq) AS n", "big_facts_id_seq"),
    ("SELECT last_value FROM internal_notes_id_seq", "internal_notes_id_seq"),  # hidden owner
])
def test_reading_a_sequence_fails_as_a_missing_relation(gw, postgres, sql, name):
    """The answer is PostgreSQL's own for a relation that does not exist:
    the same SQLSTATE and message as the reference gives for a name that
    really is missing, whether the sequence's table is readable or hidden."""
    rows, err = run(gw, sql)
    assert rows is None, rows
    missing = sql.replace(name, name.replace("_seq", "_nosuch"))
    expected = reference_error(postgres, missing)
    assert err == (expected[0], expected[1].replace("_nosuch", "_seq")), (err, expected)
    assert err[0] == "42P01"


@pytest.mark.parametrize("sql", [
    "SELECT nextval('big_facts_id_seq')",
    "SELECT currval('big_facts_id_seq')",
    "SELECT setval('big_facts_id_seq', 1)",
    "SELECT lastval()",
])
def test_sequence_functions_do_not_exist_for_a_tenant(gw, sql):
    rows, err = run(gw, sql)
    assert rows is None and err[0] == "42883", (rows, err)


@pytest.mark.parametrize("sql", [
    "SELECT pg_sequence_last_value('big_facts_id_seq'::regclass)",
    "SELECT last_value FROM pg_sequences WHERE sequencename = 'big_facts_id_seq'",
    "SELECT blks_read, blks_hit FROM pg_statio_user_sequences WHERE relname = 'big_facts_id_seq'",
    "SELECT blks_read, blks_hit FROM pg_statio_all_sequences WHERE relname = 'big_facts_id_seq'",
    "SELECT pg_stat_get_blocks_fetched('big_facts_id_seq'::regclass), "
    "pg_stat_get_blocks_hit('big_facts_id_seq'::regclass)",
])
def test_a_visible_sequence_shows_no_figures(gw, sql):
    """The sequence is there (one row), its value and counters are NULL:
    nextval calls of every tenant move the counters as they move the value."""
    rows, err = run(gw, sql)
    assert err is None, err
    assert len(rows) == 1 and all(v is None for v in rows[0]), rows


def test_sequences_of_readable_tables_are_listed_like_postgresql_lists_them(gw):
    rows, err = run(gw, "SELECT schemaname, sequencename, data_type::text, start_value, "
                        "increment_by FROM pg_sequences ORDER BY sequencename")
    assert err is None, err
    names = [r[1] for r in rows]
    assert "big_facts_id_seq" in names and "orders_id_seq" in names, names
    assert ("public", "big_facts_id_seq", "bigint", 1, 1) in rows
    assert run(gw, "SELECT pg_get_serial_sequence('big_facts', 'id')") == (
        [("public.big_facts_id_seq",)], None)
    rows, err = run(gw, "SELECT relname FROM pg_class WHERE relkind = 'S'")
    assert err is None and "big_facts_id_seq" in [r[0] for r in rows], (rows, err)


def test_the_sequence_of_a_hidden_table_does_not_exist(gw, postgres):
    for sql in ("SELECT relname FROM pg_class WHERE relkind = 'S'",
                "SELECT sequencename FROM pg_sequences",
                "SELECT relname FROM pg_statio_all_sequences"):
        rows, err = run(gw, sql)
        assert err is None and "internal_notes_id_seq" not in [r[0] for r in rows], (sql, rows)
    assert run(gw, "SELECT to_regclass('internal_notes_id_seq')") == ([(None,)], None)
    rows, err = run(gw, "SELECT 'internal_notes_id_seq'::regclass")
    assert rows is None, rows
    assert err == reference_error(postgres, "SELECT 'internal_notes_id_seq'::regclass"), err


def test_no_answer_about_sequences_carries_the_other_tenants_volume(gw):
    """Every catalog answer about sequences, as text: the figures that count
    globex's rows (21,000 ids drawn from big_facts_id_seq, orders_id_seq set
    to 2,000) appear nowhere."""
    seen = []
    for sql in ("SELECT * FROM pg_sequences", "SELECT * FROM pg_statio_all_sequences",
                "SELECT * FROM pg_statio_user_sequences", "SELECT * FROM pg_sequence",
                "SELECT * FROM information_schema.sequences",
                "SELECT relname, relpages, reltuples FROM pg_class WHERE relkind = 'S'"):
        rows, err = run(gw, sql)
        assert err is None, (sql, err)
        assert rows, sql
        seen.append(repr(rows))
    text = "\n".join(seen)
    found = [s for s in VOLUME_SECRETS if f" {s}," in text or f"({s}," in text
             or f" {s})" in text]
    assert not found, (found, text[:2000])
