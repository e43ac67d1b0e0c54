# Red team 2 corpus for test_redteam2.py, sent by tenant A (alice, acme_a) on
# the simple and the extended protocol, against the objects the module's
# fixture adds (RT2_SQL there): a visible table rt2_vis (its last column
# hidden) whose default, check constraint, index, statistics object,
# trigger and row-security policy use objects of the hidden schema hush (a
# function, a trigger function) or the hidden sequence ticket_seq; a column
# of a domain whose default and check call hush's function; and, in hush, a
# composite type, a domain, a collation and a function with an array
# argument.
# Format: EXPECT | SQL   (a line ending in \ continues on the next line)
# EXPECT: ok (must succeed), empty (succeeds with no row), null (succeeds,
# every value NULL), a SQLSTATE (must fail with it), any (only: no leak,
# connection ok). Every line is also checked for hidden names in everything
# that comes back (the text never spells the names it must not learn).

# --- system columns of virtual catalog rows: ctid gaps count hidden rows
# (customers' hidden column sat at (56,11) between (56,10) and (56,12)),
# xmax/cmin/cmax tell of other transactions' work
null   | SELECT a.ctid FROM pg_attribute a WHERE a.attrelid = 'customers'::regclass ORDER BY a.attnum
null   | SELECT a.ctid FROM pg_attribute a WHERE a.attrelid = 'rt2_vis'::regclass
null   | SELECT max(c.ctid), min(c.ctid) FROM pg_class c
null   | SELECT c.ctid FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace ORDER BY c.ctid
null   | SELECT t.ctid FROM pg_type t WHERE t.typnamespace = 'public'::regnamespace
null   | SELECT k.ctid FROM pg_constraint k WHERE k.connamespace = 'public'::regnamespace
null   | SELECT d.ctid FROM pg_depend d WHERE d.refobjid = 'customers'::regclass
null   | SELECT p.ctid FROM pg_proc p WHERE p.proname = 'length'
null   | SELECT c.xmax, c.cmin, c.cmax FROM pg_class c WHERE c.relname = 'orders'
null   | SELECT a.cmin, a.cmax, a.xmax FROM pg_attribute a WHERE a.attrelid = 'customers'::regclass
null   | SELECT n.ctid FROM pg_namespace n
empty  | SELECT a.attname FROM pg_attribute a WHERE a.attrelid = 'customers'::regclass AND a.ctid > '(0,0)'::tid
empty  | SELECT c.relname FROM pg_class c WHERE c.ctid IS NOT NULL AND c.relname = 'orders'
ok     | SELECT c.tableoid::regclass, c.xmin IS NOT NULL FROM pg_class c WHERE c.relname = 'orders'
ok     | SELECT t.xmin, t.* FROM pg_trigger t WHERE false
ok     | SELECT c.oid, c.xmin, c.relname FROM pg_class c WHERE c.relname = 'customers'
# --- views that list objects of several kinds by an object_type column
empty  | SELECT d.object_name FROM information_schema.data_type_privileges d WHERE d.object_type = 'TABLE' AND d.object_name = 'customers' AND d.dtd_identifier = '11'
empty  | SELECT d.object_name FROM information_schema.data_type_privileges d WHERE d.object_type = 'TABLE' AND d.object_name = 'rt2_vis' AND d.dtd_identifier = '4'
empty  | SELECT d.object_schema, d.object_name FROM information_schema.data_type_privileges d WHERE d.object_type = 'ROUTINE' AND d.object_schema NOT IN ('pg_catalog', 'information_schema') AND d.object_name NOT LIKE 'rt2_fn_%'
empty  | SELECT d.object_schema, d.object_name FROM information_schema.data_type_privileges d WHERE d.object_type IN ('USER-DEFINED TYPE', 'DOMAIN') AND d.object_schema NOT IN ('pg_catalog', 'information_schema', 'rt2_types')
empty  | SELECT d.object_schema FROM information_schema.data_type_privileges d WHERE d.object_schema NOT IN ('pg_catalog', 'information_schema', 'public', 'rt2_types')
empty  | SELECT e.object_schema, e.object_name FROM information_schema.element_types e WHERE e.object_schema NOT IN ('pg_catalog', 'information_schema', 'public')
empty  | SELECT e.object_name FROM information_schema.element_types e WHERE e.object_type = 'ROUTINE' AND e.object_schema NOT IN ('pg_catalog', 'information_schema')
empty  | SELECT e.object_name FROM information_schema.element_types e WHERE e.object_type = 'TABLE' AND e.object_name = 'rt2_vis' AND e.collection_type_identifier = '4'
empty  | SELECT u.object_schema, u.object_name FROM information_schema.usage_privileges u WHERE u.object_type = 'COLLATION' AND u.object_schema NOT IN ('pg_catalog', 'information_schema')
empty  | SELECT u.object_schema FROM information_schema.usage_privileges u WHERE u.object_schema NOT IN ('pg_catalog', 'information_schema', 'public', 'rt2_types')
empty  | SELECT u.object_schema FROM information_schema.role_usage_grants u WHERE u.object_schema NOT IN ('pg_catalog', 'information_schema', 'public', 'rt2_types')
any    | SELECT * FROM information_schema.data_type_privileges
any    | SELECT * FROM information_schema.element_types
any    | SELECT * FROM information_schema.usage_privileges
any    | SELECT d.object_type, count(*) FROM information_schema.data_type_privileges d GROUP BY 1 ORDER BY 1
ok     | SELECT d.dtd_identifier FROM information_schema.data_type_privileges d WHERE d.object_name = 'customers' ORDER BY d.dtd_identifier::int
ok     | SELECT e.object_name, e.data_type FROM information_schema.element_types e WHERE e.object_name = 'rt2_vis'
# --- definitions of visible objects that name hidden ones: a default on the
# hidden sequence, a check constraint, an index expression, a statistics
# object, a trigger and a row-security policy calling hush's functions
any    | SELECT c.column_name, c.column_default FROM information_schema.columns c WHERE c.table_name = 'rt2_vis'
any    | SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d
any    | SELECT d.adbin FROM pg_attrdef d
any    | SELECT pg_get_constraintdef(k.oid) FROM pg_constraint k WHERE k.conrelid = 'rt2_vis'::regclass
any    | SELECT pg_get_expr(k.conbin, k.conrelid) FROM pg_constraint k
any    | SELECT k.conname FROM pg_constraint k WHERE k.conrelid = 'rt2_vis'::regclass
any    | SELECT * FROM information_schema.check_constraints
any    | SELECT * FROM information_schema.table_constraints WHERE table_name = 'rt2_vis'
any    | SELECT i.indexdef FROM pg_indexes i WHERE i.tablename = 'rt2_vis'
any    | SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = 'rt2_vis'::regclass
any    | SELECT pg_get_expr(i.indexprs, i.indrelid) FROM pg_index i
any    | SELECT i.indexprs FROM pg_index i WHERE i.indrelid = 'rt2_vis'::regclass
any    | SELECT pg_get_indexdef(c.oid) FROM pg_class c WHERE c.relname LIKE 'rt2%'
any    | SELECT s.stxname, pg_get_statisticsobjdef(s.oid) FROM pg_statistic_ext s
any    | SELECT pg_get_statisticsobjdef_expressions(s.oid) FROM pg_statistic_ext s
any    | SELECT s.stxexprs FROM pg_statistic_ext s
any    | SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t
any    | SELECT t.tgname, t.tgfoid::regproc FROM pg_trigger t
any    | SELECT t.tgfoid::regprocedure FROM pg_trigger t
any    | SELECT * FROM information_schema.triggers
any    | SELECT p.polname, pg_get_expr(p.polqual, p.polrelid) FROM pg_policy p
any    | SELECT * FROM pg_policies
any    | SELECT p.polname, p.polqual, p.polwithcheck FROM pg_policy p
any    | SELECT * FROM pg_policy p
ok     | SELECT p.policyname, p.qual FROM pg_policies p WHERE p.tablename = 'rt2_vis'
any    | SELECT d.refobjid::regproc FROM pg_depend d WHERE d.refclassid = 'pg_proc'::regclass AND d.refobjid >= 16384
any    | SELECT pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid) FROM pg_depend d WHERE d.objid IN (SELECT k.oid FROM pg_constraint k WHERE k.conrelid = 'rt2_vis'::regclass)
any    | SELECT * FROM information_schema.routine_table_usage
any    | SELECT * FROM information_schema.routine_column_usage
# a readable view over a hidden table: its text names the table
any    | SELECT v.definition FROM pg_views v WHERE v.viewname = 'rt2_view'
any    | SELECT * FROM pg_views v WHERE v.schemaname = 'public'
any    | SELECT pg_get_viewdef('rt2_view'::regclass)
any    | SELECT pg_get_viewdef('rt2_view')
any    | SELECT pg_get_viewdef('public.rt2_view', true)
any    | SELECT pg_get_viewdef(c.oid, true) FROM pg_class c WHERE c.relname = 'rt2_view'
any    | SELECT pg_get_viewdef(c.oid) FROM pg_class c WHERE c.relkind = 'v' AND c.relnamespace = 'public'::regnamespace
any    | SELECT v.view_definition FROM information_schema.views v WHERE v.table_name = 'rt2_view'
any    | SELECT pg_get_ruledef(w.oid) FROM pg_rewrite w
any    | SELECT w.ev_action FROM pg_rewrite w
any    | SELECT * FROM information_schema.view_table_usage
any    | SELECT * FROM information_schema.view_column_usage
any    | SELECT p.proname, p.prosqlbody FROM pg_proc p WHERE p.prosqlbody IS NOT NULL
ok     | SELECT count(*) FROM rt2_view
ok     | SELECT pg_get_viewdef('rt2_okview'::regclass)
# a visible domain's default and check call a hidden function
any    | SELECT t.typname, t.typdefault FROM pg_type t WHERE t.typtype = 'd' AND t.oid >= 16384
any    | SELECT pg_get_expr(t.typdefaultbin, 0) FROM pg_type t WHERE t.typdefaultbin IS NOT NULL
any    | SELECT * FROM pg_type t WHERE t.typname LIKE 'rt2%'
any    | SELECT domain_name, domain_default FROM information_schema.domains
any    | SELECT * FROM information_schema.domain_constraints
any    | SELECT pg_get_constraintdef(k.oid) FROM pg_constraint k WHERE k.contypid <> 0
ok     | SELECT d.domain_schema, d.domain_name, d.data_type FROM information_schema.domains d WHERE d.domain_name = 'rt2_flag'
ok     | SELECT u.object_name FROM information_schema.usage_privileges u WHERE u.object_type = 'DOMAIN' AND u.object_schema = 'rt2_types'
ok     | SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a WHERE a.attrelid = 'rt2_vis'::regclass AND a.attname = 'flag'
# row types whose fields look names up (regproc, aclitem[]): building one
# from text resolves the names, failing for a missing function or role and
# succeeding for a hidden one; aclitem itself resolves role names
42501  | SELECT (json_populate_record(NULL::pg_type, '{"typinput": "hush.rt2_chk"}')).typname
42501  | SELECT (jsonb_populate_record(NULL::pg_catalog.pg_aggregate, '{"aggfnoid": "leak_fn"}')).aggkind
42501  | SELECT count(*) FROM jsonb_populate_recordset(NULL::pg_type, '[{"typinput": "hush.rt2_chk"}]')
42501  | SELECT '(leak_fn,n,0,-,-,-,-,-,-,-,-,-,-,-,0,0,0,0,0,0,f,f,,)'::pg_aggregate
42501  | SELECT CAST('(leak_fn,n,0,-,-,-,-,-,-,-,-,-,-,-,0,0,0,0,0,0,f,f,,)' AS pg_catalog.pg_aggregate)
42501  | SELECT (json_populate_record(NULL::pg_operator, '{"oprcode": "hush.rt2_chk"}')).oprname
42501  | SELECT (json_populate_record(NULL::pg_class, '{"relacl": ["postgres=r/postgres"]}')).relname
42501  | SELECT NULL::pg_type[]
42501  | SELECT NULL::_pg_aggregate
42501  | SELECT * FROM jsonb_to_record('{"a": "leak_fn"}') AS x(a pg_aggregate)
42501  | SELECT * FROM jsonb_to_record('{"a": "postgres=r/postgres"}') AS x(a aclitem)
42501  | SELECT 'postgres=r/postgres'::aclitem
42501  | SELECT '{postgres=r/postgres}'::aclitem[]
42501  | SELECT CAST('postgres=r/postgres' AS pg_catalog.aclitem)
42501  | SELECT (json_populate_record(NULL::pg_sequences, '{"data_type": "hush.rt2_dom"}')).sequencename
42501  | PREPARE rt2_p(pg_type) AS SELECT $1 IS NULL
42501  | PREPARE rt2_q(aclitem) AS SELECT $1 IS NULL
ok     | SELECT c.relname, c.relacl::text[] FROM pg_class c WHERE c.relname = 'orders'
ok     | SELECT (aclexplode(c.relacl)).privilege_type FROM pg_class c WHERE c.relname = 'orders'
ok     | SELECT t.typname, t.typinput FROM pg_type t WHERE t.typname = 'int4'
ok     | SELECT (json_populate_record(NULL::orders, '{"id": 5}')).id
# honest uses keep working
ok     | SELECT c.column_name FROM information_schema.columns c WHERE c.table_name = 'rt2_vis' ORDER BY c.ordinal_position
ok     | SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = 'orders'::regclass
ok     | SELECT pg_get_constraintdef(k.oid) FROM pg_constraint k WHERE k.conrelid = 'orders'::regclass
ok     | SELECT count(*) FROM rt2_vis
