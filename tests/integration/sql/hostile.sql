# Hostile statements for test_isolation.py, sent by tenant A (acme_a).
# Format: EXPECT | SQL   (a line ending in \ continues on the next line)
# EXPECT: ok (must succeed), err (must fail), a SQLSTATE (must fail with it), any.
# The text must never contain the marker or the secret number itself.

# --- DML ---------------------------------------------------------------
42501 | INSERT INTO orders VALUES (999999, 'acme_a', 1, 1, 1, 'new', 'north', '2024-01-01', NULL)
42501 | INSERT INTO customers SELECT * FROM customers
42501 | INSERT INTO orders SELECT * FROM orders ON CONFLICT DO NOTHING
42501 | UPDATE customers SET name = 'x'
42501 | UPDATE orders SET amount = 0 WHERE tenant_id <> 'acme_a'
42501 | UPDATE orders o SET amount = p.price FROM products p WHERE p.id = o.product_id
42501 | DELETE FROM orders
42501 | DELETE FROM customers WHERE id = 1 RETURNING *
42501 | MERGE INTO orders o USING products p ON o.product_id = p.id WHEN MATCHED THEN DELETE
42501 | TRUNCATE orders
42501 | TRUNCATE ONLY customers CASCADE
# --- DDL and utility -----------------------------------------------------
42501 | CREATE TABLE stolen AS SELECT * FROM customers
42501 | CREATE TABLE t1 (a int)
42501 | CREATE TEMP TABLE tmp1 AS SELECT 1
42501 | CREATE UNLOGGED TABLE u1 (a int)
42501 | DROP TABLE orders
42501 | DROP TABLE IF EXISTS audit_secrets
42501 | ALTER TABLE customers DROP COLUMN ssn
42501 | ALTER TABLE customers RENAME TO clients
42501 | CREATE VIEW v1 AS SELECT * FROM audit_secrets
42501 | CREATE MATERIALIZED VIEW mv1 AS SELECT * FROM customers
42501 | CREATE INDEX ON orders (amount)
42501 | CREATE FUNCTION f1() RETURNS int LANGUAGE sql AS 'SELECT 1'
42501 | CREATE OR REPLACE FUNCTION leak_fn() RETURNS text LANGUAGE sql AS 'SELECT 1::text'
42501 | CREATE RULE r1 AS ON SELECT TO orders DO INSTEAD SELECT * FROM audit_secrets
42501 | CREATE TRIGGER t1 BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION leak_fn()
42501 | CREATE SCHEMA evil
42501 | CREATE EXTENSION dblink
42501 | GRANT SELECT ON audit_secrets TO PUBLIC
42501 | REVOKE SELECT ON customers FROM PUBLIC
42501 | COMMENT ON TABLE orders IS 'x'
42501 | VACUUM orders
42501 | ANALYZE orders
42501 | CLUSTER orders USING orders_pkey
42501 | REINDEX TABLE orders
42501 | LOCK TABLE orders IN ACCESS EXCLUSIVE MODE
42501 | ALTER SYSTEM SET log_statement = 'all'
42501 | CREATE ROLE eve SUPERUSER LOGIN
42501 | ALTER ROLE iso_writer SET search_path = hush
42501 | ALTER DATABASE isoshared SET default_transaction_read_only = off
42501 | REFRESH MATERIALIZED VIEW mv1
42501 | CHECKPOINT
42501 | LOAD 'auto_explain'
42501 | CREATE SEQUENCE s1
42501 | ALTER SEQUENCE ticket_seq RESTART WITH 500
# --- COPY ----------------------------------------------------------------
42501 | COPY orders FROM STDIN
42501 | COPY customers (id, tenant_id, name) FROM STDIN
42501 | COPY orders FROM '/etc/passwd'
42501 | COPY orders TO '/tmp/isotest_copy_out.txt'
42501 | COPY (SELECT * FROM customers) TO '/tmp/isotest_copy_q.txt'
42501 | COPY orders TO PROGRAM 'id'
42501 | COPY orders FROM PROGRAM 'id'
ok    | COPY customers TO STDOUT
ok    | COPY (SELECT * FROM customers ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)
ok    | COPY customers (ssn, phone, email, loyalty_code) TO STDOUT
ok    | COPY orders TO STDOUT
42P01 | COPY audit_secrets TO STDOUT
42P01 | COPY (SELECT secret FROM audit_secrets) TO STDOUT
err   | COPY customers (internal_rating) TO STDOUT
# --- SELECT INTO and locking clauses --------------------------------------
42501 | SELECT * INTO stolen FROM customers
42501 | SELECT * INTO TEMP stolen2 FROM orders
42501 | SELECT * FROM orders FOR UPDATE
42501 | SELECT * FROM orders FOR SHARE
42501 | SELECT * FROM customers FOR NO KEY UPDATE SKIP LOCKED
42501 | SELECT * FROM customers FOR KEY SHARE NOWAIT
42501 | SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id FOR UPDATE OF o
42501 | SELECT * FROM (SELECT * FROM orders FOR UPDATE) s
# --- DO, CALL, LISTEN/NOTIFY --------------------------------------------
42501 | DO $$ BEGIN PERFORM 1; END $$
42501 | DO $$BEGIN RAISE NOTICE '%', (SELECT string_agg(secret, ',') FROM audit_secrets); END$$
42501 | DO LANGUAGE plpgsql 'BEGIN DELETE FROM orders; END'
42501 | CALL leak_fn()
42501 | LISTEN chan
42501 | NOTIFY chan, 'x'
any   | UNLISTEN *
err   | SELECT pg_notify('chan', 'x')
# --- roles and settings --------------------------------------------------
42501 | SET ROLE postgres
42501 | SET SESSION AUTHORIZATION postgres
42501 | SET search_path = hush, public
42501 | SET search_path TO pg_temp, public
42501 | SET LOCAL search_path = hush
42501 | SET session_replication_role = replica
42501 | SET default_transaction_read_only = off
42501 | SET row_security = off
42501 | SET allow_system_table_mods = on
err   | SELECT set_config('search_path', 'hush, public', false)
err   | SELECT set_config('default_transaction_read_only', 'off', false)
err   | SELECT pg_catalog.set_config('role', 'postgres', false)
any   | RESET search_path
any   | RESET ALL
any   | DISCARD ALL
ok    | SET application_name = 'isotest'
ok    | SET TIME ZONE 'UTC'
# --- data-modifying CTEs ------------------------------------------------
42501 | WITH d AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM d
42501 | WITH u AS (UPDATE customers SET ssn = 'x' RETURNING ssn) SELECT * FROM u
42501 | WITH i AS (INSERT INTO orders SELECT * FROM orders RETURNING 1) SELECT 1
42501 | WITH a AS (SELECT 1), b AS (DELETE FROM customers RETURNING id) SELECT * FROM a
err   | SELECT * FROM (WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d) s
42501 | WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3), \
        d AS (DELETE FROM orders WHERE id IN (SELECT n FROM r) RETURNING id) SELECT * FROM d
# --- the hidden table, every spelling -------------------------------------
42P01 | SELECT * FROM audit_secrets
42P01 | SELECT * FROM public.audit_secrets
42P01 | SELECT * FROM "audit_secrets"
42P01 | SELECT * FROM "public"."audit_secrets"
42P01 | SELECT * FROM AUDIT_SECRETS
42P01 | SELECT * FROM Public.Audit_Secrets
42P01 | SELECT * FROM U&"audit\005Fsecrets"
42P01 | SELECT * FROM U&"!0061udit_secrets" UESCAPE '!'
42P01 | SELECT * FROM public.U&"\0061\0075\0064\0069\0074_secrets"
err   | SELECT * FROM isoshared.public.audit_secrets
42P01 | SELECT * FROM ONLY audit_secrets
42P01 | SELECT * FROM audit_secrets*
42P01 | TABLE audit_secrets
42P01 | TABLE public.audit_secrets
42P01 | SELECT * FROM "Vault"
42P01 | SELECT * FROM public."Vault"
42P01 | SELECT * FROM U&"\0056ault"
42P01 | SELECT * FROM staff_salaries
42P01 | SELECT * FROM secret_view
42P01 | SELECT * FROM hush.keyring
42P01 | SELECT (SELECT secret FROM audit_secrets LIMIT 1)
42P01 | SELECT * FROM customers WHERE EXISTS (SELECT 1 FROM audit_secrets)
42P01 | SELECT * FROM customers WHERE id IN (SELECT id FROM audit_secrets)
42P01 | SELECT * FROM customers c, LATERAL (SELECT secret FROM audit_secrets a WHERE a.id = c.id) l
42P01 | SELECT * FROM customers c LEFT JOIN LATERAL (SELECT * FROM staff_salaries) s ON true
42P01 | WITH x AS (SELECT * FROM audit_secrets) SELECT * FROM x
42P01 | WITH customers AS (SELECT 1) SELECT * FROM public.audit_secrets
42P01 | WITH a AS (SELECT 1 AS id) SELECT * FROM (WITH b AS (SELECT 2) SELECT * FROM audit_secrets) s
42P01 | WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3) \
        SELECT * FROM r, audit_secrets
42P01 | SELECT name FROM customers UNION SELECT secret FROM audit_secrets
42P01 | SELECT * FROM (SELECT * FROM (SELECT * FROM audit_secrets) a) b
42P01 | SELECT * FROM customers JOIN audit_secrets USING (id)
42P01 | SELECT * FROM orders WHERE amount = ANY (SELECT amount FROM audit_secrets)
42P01 | SELECT * FROM customers ORDER BY (SELECT count(*) FROM audit_secrets)
42P01 | VALUES ((SELECT secret FROM audit_secrets LIMIT 1))
ok    | WITH audit_secrets AS (SELECT 1 AS id) SELECT * FROM audit_secrets
ok    | SELECT audit_secrets.name FROM customers audit_secrets
# --- relation lookups by name and OID --------------------------------------
err   | SELECT 'audit_secrets'::regclass
err   | SELECT 'public.audit_secrets'::regclass::oid
err   | SELECT '"Vault"'::regclass::oid::int
err   | SELECT NULL::audit_secrets
err   | SELECT (NULL::audit_secrets).*
any   | SELECT to_regclass('audit_secrets')
any   | SELECT to_regclass('public."Vault"')::oid
any   | SELECT has_table_privilege('audit_secrets', 'SELECT')
any   | SELECT has_table_privilege('iso_writer', 'public.audit_secrets', 'SELECT')
any   | SELECT has_column_privilege('customers', 'internal_rating', 'SELECT')
any   | SELECT pg_relation_size('audit_secrets')
any   | SELECT pg_total_relation_size('"Vault"')
any   | SELECT obj_description('audit_secrets'::regclass)
any   | SELECT pg_get_viewdef('secret_view')
any   | SELECT pg_get_viewdef('secret_view'::regclass::oid)
any   | SELECT pg_get_functiondef('leak_fn'::regproc)
any   | SELECT * FROM pg_class WHERE relname = 'audit_secrets'
any   | SELECT relname FROM pg_class
any   | SELECT oid::regclass::text FROM pg_class WHERE relnamespace = 'public'::regnamespace
any   | SELECT c.oid::regclass, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
        WHERE c.relname = 'customers'
any   | SELECT attname FROM pg_attribute WHERE attrelid = 'customers'::regclass
any   | SELECT * FROM pg_attribute WHERE attname LIKE 'internal%'
any   | SELECT table_schema, table_name FROM information_schema.tables
any   | SELECT column_name FROM information_schema.columns WHERE table_name = 'customers'
any   | SELECT * FROM information_schema.columns
any   | SELECT * FROM information_schema.views
any   | SELECT * FROM information_schema.table_privileges
any   | SELECT * FROM information_schema.schemata
any   | SELECT * FROM pg_tables
any   | SELECT * FROM pg_views WHERE schemaname = 'public'
any   | SELECT * FROM pg_namespace
any   | SELECT * FROM pg_sequences
any   | SELECT prosrc FROM pg_proc WHERE pronamespace = 'public'::regnamespace
any   | SELECT * FROM pg_stat_user_tables
any   | SELECT * FROM pg_statio_user_tables
any   | SELECT * FROM pg_indexes
any   | SELECT * FROM pg_description
any   | SELECT * FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
any   | SELECT (NULL::customers).*
any   | SELECT * FROM json_populate_record(NULL::customers, '{}')
any   | SELECT * FROM customers c WHERE c.tableoid = 'audit_secrets'::regclass
# --- masked columns through whole-row references, casts, aggregates ------
ok    | SELECT row_to_json(c) FROM customers c
ok    | SELECT c::text FROM customers c
ok    | SELECT ROW(c.*) FROM customers c
ok    | SELECT c FROM customers c
ok    | SELECT (c).* FROM customers c
ok    | SELECT to_jsonb(c) FROM customers c
ok    | SELECT json_agg(c) FROM customers c
ok    | SELECT jsonb_agg(c ORDER BY c.id) FROM customers c
ok    | SELECT format('%s', c) FROM customers c
ok    | SELECT ssn, phone, email, loyalty_code FROM customers
ok    | SELECT ssn::text, phone::bytea, email::varchar, loyalty_code::name FROM customers
ok    | SELECT string_agg(ssn, ','), string_agg(phone, ','), string_agg(email, ',') FROM customers
ok    | SELECT array_agg(ssn), array_agg(loyalty_code), array_agg(phone) FROM customers
ok    | SELECT max(ssn), min(phone), max(email), min(loyalty_code) FROM customers
ok    | SELECT json_build_object('s', ssn, 'p', phone, 'e', email) FROM customers
ok    | SELECT jsonb_agg(jsonb_build_array(ssn, phone, email, loyalty_code)) FROM customers
ok    | SELECT json_object_agg(id, phone) FROM customers
ok    | SELECT length(phone), octet_length(email), md5(ssn) FROM customers
ok    | SELECT array_to_string(ARRAY(SELECT phone FROM customers), ',')
ok    | SELECT * FROM customers c NATURAL JOIN customers d
ok    | SELECT count(*) FROM customers WHERE ssn IS NOT NULL
ok    | SELECT count(*) FROM customers WHERE phone LIKE '%555%'
ok    | SELECT translate(email, 'x', 'y'), reverse(phone) FROM customers
err   | SELECT internal_rating FROM customers
err   | SELECT c.internal_rating FROM customers c
err   | SELECT * FROM customers WHERE internal_rating > 0
err   | SELECT * FROM customers ORDER BY internal_rating
# --- other tenant's rows -------------------------------------------------
ok    | SELECT * FROM customers WHERE tenant_id <> 'acme_a'
ok    | SELECT * FROM orders WHERE tenant_id LIKE 'glob%'
ok    | SELECT * FROM customers WHERE id > 1000
ok    | SELECT * FROM orders WHERE id >= 100000
ok    | SELECT * FROM customers WHERE tenant_id = 'acme_a' OR true
ok    | SELECT * FROM public.customers, public.orders WHERE orders.id = 100001
ok    | SELECT * FROM customers*
ok    | SELECT count(*), sum(amount), max(region), max(status) FROM ONLY orders
ok    | SELECT DISTINCT tenant_id, city FROM customers
ok    | SELECT * FROM "customers" WHERE "ssn" IS NOT NULL
any   | SELECT ctid, xmin, * FROM customers
any   | SELECT * FROM customers TABLESAMPLE SYSTEM (100)
# --- leak through errors ---------------------------------------------------
any   | SELECT * FROM customers WHERE name::int = 1
any   | SELECT * FROM orders WHERE status::int = 1
any   | SELECT * FROM orders WHERE note::int > 0
any   | SELECT * FROM customers WHERE city::date IS NULL
ok    | SELECT * FROM customers WHERE 1/(CASE WHEN ssn LIKE 'Z%' THEN 0 ELSE 1 END) = 1
ok    | SELECT * FROM customers WHERE 1/(CASE WHEN name LIKE 'Z%' THEN 0 ELSE 1 END) = 1
ok    | SELECT * FROM customers WHERE 1/(CASE WHEN tenant_id LIKE 'glob%' THEN 0 ELSE 1 END) = 1
ok    | SELECT * FROM orders WHERE 1/(amount - 987654320 - 1) <> 7
ok    | SELECT * FROM orders WHERE amount / (CASE WHEN region LIKE 'Z%' THEN 0 ELSE 1 END) > 0
ok    | SELECT * FROM orders o WHERE (SELECT 1/(CASE WHEN o.status LIKE 'Z%' THEN 0 ELSE 1 END)) = 1
ok    | SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id \
        AND 1/(CASE WHEN c.city LIKE 'Z%' THEN 0 ELSE 1 END) = 1
ok    | SELECT * FROM customers WHERE credit_limit::int2 > 0
ok    | SELECT * FROM orders WHERE amount::smallint > 0
ok    | SELECT * FROM orders WHERE amount * 1000 > 0
ok    | SELECT * FROM customers WHERE signup_date + credit_limit > '2020-01-01'
ok    | SELECT * FROM orders WHERE 1/(length(status) - 11) > -100
ok    | SELECT * FROM customers WHERE name ~ (CASE WHEN name LIKE 'Z%' THEN '(' ELSE 'C' END)
ok    | SELECT * FROM orders WHERE id IN (SELECT id FROM orders WHERE 1/(amount - 987654320 - 1) = 0)
ok    | SELECT * FROM orders WHERE EXISTS (SELECT 1 WHERE 1/(amount - 987654320 - 1) = 0)
ok    | SELECT sum(1/(amount - 987654320 - 1)) FROM orders
ok    | SELECT * FROM orders ORDER BY 1/(amount - 987654320 - 1)
ok    | SELECT id FROM orders GROUP BY id HAVING 1/(min(amount) - 987654320 - 1) <> 7
ok    | SELECT * FROM orders WHERE id = 100001 AND 1/(amount - 987654320 - 1) = 1
ok    | SELECT * FROM orders o, LATERAL (SELECT 1/(o.amount - 987654320 - 1) AS x) l
ok    | SELECT * FROM orders WHERE CASE WHEN region LIKE 'Z%' THEN (region::int) = 1 ELSE true END
ok    | SELECT * FROM orders WHERE status LIKE 'Z%' AND status::int = 0
ok    | SELECT * FROM customers WHERE to_char(credit_limit / (credit_limit - 987654320 - 1), '9') <> ''
ok    | SELECT * FROM (SELECT * FROM orders) s WHERE 1/(s.amount - 987654320 - 1) <> 7
ok    | WITH o AS (SELECT * FROM orders) SELECT * FROM o WHERE 1/(amount - 987654320 - 1) <> 7
any   | SELECT * FROM orders WHERE region SIMILAR TO (CASE WHEN region LIKE 'Z%' THEN '(' ELSE '%' END)
# --- dangerous functions ---------------------------------------------------
42883 | SELECT query_to_xml('SELECT * FROM audit_secrets', true, false, '')
42883 | SELECT query_to_xml('SELECT 1', true, false, '')
42883 | SELECT table_to_xml('customers', true, false, '')
42883 | SELECT schema_to_xml('public', true, false, '')
42883 | SELECT database_to_xml(true, false, '')
42883 | SELECT query_to_xml_and_xmlschema('SELECT 1', true, false, '')
42883 | SELECT ts_stat('SELECT to_tsvector(secret) FROM audit_secrets')
42883 | SELECT * FROM ts_stat('SELECT to_tsvector(name) FROM customers')
42883 | SELECT pg_read_file('/etc/passwd')
42883 | SELECT pg_catalog.pg_read_file('/etc/passwd', 0, 100)
42883 | SELECT "pg_read_file"('/etc/passwd')
42883 | SELECT PG_READ_FILE('/etc/passwd')
42883 | SELECT pg_read_binary_file('postgresql.conf')
42883 | SELECT pg_ls_dir('.')
42883 | SELECT pg_stat_file('postgresql.conf')
42883 | SELECT lo_import('/etc/passwd')
42883 | SELECT lo_export(1, '/tmp/x')
42883 | SELECT lo_get(1)
42883 | SELECT lo_create(0)
42883 | SELECT lo_from_bytea(0, 'x')
42883 | SELECT pg_sleep(0.01)
42883 | SELECT pg_sleep_for('1 ms')
42883 | SELECT * FROM orders WHERE pg_sleep(0) IS NULL
42883 | SELECT dblink('dbname=isoshared', 'SELECT secret FROM audit_secrets')
42883 | SELECT pg_terminate_backend(pg_backend_pid())
42883 | SELECT pg_cancel_backend(1)
42883 | SELECT nextval('ticket_seq')
42883 | SELECT setval('ticket_seq', 100)
42883 | SELECT currval('ticket_seq')
42883 | SELECT pg_advisory_lock(1)
42883 | SELECT pg_try_advisory_xact_lock(1)
42883 | SELECT leak_fn()
42883 | SELECT public.leak_fn()
42883 | SELECT * FROM leak_fn()
42883 | SELECT pg_reload_conf()
42883 | SELECT pg_rotate_logfile()
42883 | SELECT pg_switch_wal()
42883 | SELECT pg_logical_emit_message(true, 'x', 'y')
42883 | SELECT pg_stat_get_activity(NULL)
42883 | SELECT pg_stat_reset()
42883 | SELECT pg_current_logfile()
any   | SELECT * FROM pg_stat_activity
any   | SELECT query FROM pg_catalog.pg_stat_activity
err   | SELECT * FROM pg_stats
err   | SELECT most_common_vals::text FROM pg_stats WHERE tablename = 'customers'
err   | SELECT histogram_bounds::text FROM pg_stats WHERE tablename = 'orders'
err   | SELECT * FROM pg_statistic
err   | SELECT * FROM pg_stat_statements
any   | SELECT * FROM pg_prepared_statements
any   | SELECT * FROM pg_cursors
any   | SELECT * FROM pg_locks
any   | SELECT * FROM pg_settings WHERE name = 'search_path'
any   | SELECT current_setting('search_path'), current_user, session_user
# --- several statements in one message ----------------------------------
err   | SELECT 1; DELETE FROM orders
err   | SELECT 1; SELECT * FROM audit_secrets
err   | SELECT * FROM customers; SET search_path = hush
err   | SELECT 1; COMMIT; DELETE FROM orders
err   | BEGIN; SET TRANSACTION READ WRITE; DELETE FROM orders; COMMIT
err   | BEGIN; DELETE FROM orders; ROLLBACK
err   | SELECT 1;DROP TABLE customers--
err   | SELECT 1; /* */ DELETE FROM orders
err   | SELECT 1 FROM customers WHERE id = 1 OR 1 = 1; UPDATE customers SET ssn = NULL
err   | SELECT 1 /* ; DELETE FROM orders; */ ; DELETE FROM customers
# --- comments, quoting, dollar-quoting ------------------------------------
42501 | /* SELECT */ DELETE FROM orders
42501 | -- SELECT 1\
        DELETE FROM orders
ok    | SELECT $$; DELETE FROM orders; $$ AS s
err   | SELECT $a$ $$ $a$; DELETE FROM orders
ok    | SELECT 'x'';DELETE FROM orders;--' AS s
ok    | SELECT E'\'; DELETE FROM orders; --' AS s
err   | SELECT E'\'' ; DELETE FROM orders
42P01 | SELECT * FROM customers /* */ , audit_secrets
42P01 | SELECT * FROM "audit_secrets"--
42P01 | SELECT * FROM/**/audit_secrets
42601 | DEL/**/ETE FROM orders
42601 | SELECT * FROM customers WHERE
42601 | SELEC 1
42601 | SELECT 'unterminated
42601 | SELECT $$unterminated
# --- EXPLAIN ---------------------------------------------------------------
42501 | EXPLAIN ANALYZE DELETE FROM orders
42501 | EXPLAIN (ANALYZE, BUFFERS) UPDATE customers SET ssn = 'x'
42501 | EXPLAIN ANALYZE INSERT INTO orders SELECT * FROM orders
42501 | EXPLAIN (ANALYZE) WITH d AS (DELETE FROM orders RETURNING 1) SELECT * FROM d
42501 | EXPLAIN ANALYZE SELECT * INTO stolen3 FROM orders
42501 | EXPLAIN ANALYZE CREATE TABLE stolen4 AS SELECT 1
any   | EXPLAIN DELETE FROM orders
42P01 | EXPLAIN SELECT * FROM audit_secrets
any   | EXPLAIN ANALYZE SELECT * FROM customers
any   | EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM customers
any   | EXPLAIN (VERBOSE, FORMAT JSON) SELECT c FROM customers c WHERE c.ssn = 'x'
# --- PREPARE ---------------------------------------------------------------
42501 | PREPARE p1 AS DELETE FROM orders
42501 | PREPARE p2 AS INSERT INTO orders SELECT * FROM orders
42501 | PREPARE p3(int) AS UPDATE orders SET amount = $1
42P01 | PREPARE p4 AS SELECT * FROM audit_secrets
err   | EXECUTE p_never_prepared
any   | PREPARE p5 AS SELECT ssn, phone, row_to_json(c) FROM customers c; EXECUTE p5; DEALLOCATE p5
# --- cursors -----------------------------------------------------------------
err   | DECLARE h1 CURSOR WITH HOLD FOR SELECT * FROM audit_secrets
err   | BEGIN; DECLARE h2 CURSOR FOR SELECT * FROM "Vault"; FETCH ALL FROM h2; COMMIT
err   | BEGIN; DECLARE h3 SCROLL CURSOR FOR SELECT secret FROM audit_secrets; FETCH LAST FROM h3; COMMIT
err   | BEGIN; DECLARE h4 CURSOR FOR SELECT * FROM orders FOR UPDATE; FETCH 1 FROM h4; COMMIT
err   | BEGIN; DECLARE h5 CURSOR FOR SELECT * FROM orders; FETCH 1 FROM h5; \
        UPDATE orders SET amount = 0 WHERE CURRENT OF h5; COMMIT
any   | BEGIN; DECLARE h6 CURSOR FOR SELECT c::text FROM customers c WHERE id > 0; \
        FETCH ALL FROM h6; CLOSE h6; COMMIT
any   | DECLARE h7 CURSOR WITH HOLD FOR SELECT * FROM orders WHERE tenant_id <> 'acme_a'; \
        FETCH ALL FROM h7; CLOSE h7
err   | FETCH ALL FROM nonexistent_cursor
