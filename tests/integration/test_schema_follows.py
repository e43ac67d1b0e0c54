"""The policy's picture of the schema follows DDL on the backend without a
RELOAD, in the default mode ([cache] invalidation = ttl): the change
service's catalog check (every two seconds, one plain connection per backend
database) marks the tenant's pool, which reads the schema again before its
next statement. With invalidation = replication the same check runs beside
the streams (test_invalidation.py)."""

import psycopg
import pytest

from conftest import wait_until

TABLE = "follow_ddl"
EXTRA = f"\n[table.public.{TABLE}]\nrow_filter = owner = $tenant\n"


def setup_table(postgres):
    with postgres.connect("acme") as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        conn.execute(f"CREATE TABLE {TABLE} (id int, owner text, label text)")
        conn.execute(f"INSERT INTO {TABLE} VALUES (1, 'acme', 'mine'), (2, 'globex', 'theirs')")
        conn.execute(f"GRANT SELECT ON {TABLE} TO reader")


def drop_table(postgres):
    with postgres.connect("acme") as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")


def rows(conn, sql):
    return conn.execute(sql).fetchall()


def test_a_new_column_is_usable_without_reload_in_ttl_mode(pgwarden, postgres):
    setup_table(postgres)
    try:
        gw = pgwarden(extra=EXTRA)
        with gw.connect("alice", "acme") as conn:
            # the row filter holds and the policy knows three columns
            assert rows(conn, f"SELECT * FROM {TABLE}") == [(1, "acme", "mine")]
            with postgres.connect("acme") as direct:
                direct.execute(f"ALTER TABLE {TABLE} ADD COLUMN note text DEFAULT 'added'")

            def usable():
                try:
                    return rows(conn, f"SELECT id, note FROM {TABLE}") == [(1, "added")]
                except psycopg.Error:
                    return False

            wait_until(usable, 15, "the new column to be usable through pgwarden")
            # SELECT * follows too, and the filter still holds on the new shape
            assert rows(conn, f"SELECT * FROM {TABLE}") == [(1, "acme", "mine", "added")]
        assert "configuration reloaded" not in gw.log_text()
    finally:
        drop_table(postgres)


def test_a_new_type_is_usable_without_reload(pgwarden, postgres):
    """The policy refuses a type name its snapshot does not list (a hidden
    relation's row type and a missing type must take the same path,
    test_hidden_paths.py), so a type created on the backend (an enum: no
    pg_class row) must reach the snapshot by itself."""
    with postgres.connect("acme") as conn:
        conn.execute("DROP TYPE IF EXISTS follow_mood")
    try:
        gw = pgwarden()
        with gw.connect("alice", "acme") as conn:
            with pytest.raises(psycopg.errors.UndefinedObject):
                conn.execute("SELECT 'ok'::follow_mood")
            with postgres.connect("acme") as direct:
                direct.execute("CREATE TYPE follow_mood AS ENUM ('ok', 'meh')")

            def usable():
                try:
                    return rows(conn, "SELECT 'ok'::follow_mood") == [("ok",)]
                except psycopg.Error:
                    return False

            wait_until(usable, 15, "the new type to be usable through pgwarden")
    finally:
        with postgres.connect("acme") as conn:
            conn.execute("DROP TYPE IF EXISTS follow_mood")


def test_the_catalog_check_is_not_a_pool_session(pgwarden, postgres):
    """The check's connection names itself, so it is never taken for (or
    counted as) one of the tenant's backend sessions."""
    gw = pgwarden()
    with postgres.connect() as su:
        def checking():
            return su.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                              "'pgwarden catalog' AND datname = 'acme'").fetchone()[0] >= 1
        wait_until(checking, 10, "the catalog check's connection")
    gw.stop()
