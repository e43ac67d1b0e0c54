# Hostile statements about catalogs, names, types, statistics, databases and
# roles (issue 7 classes 3, 4, 5), sent by tenant acme of catalog_data.py.
# Format: EXPECT | SQL [| PARAMS]   (PARAMS: a JSON list of values or
# {"v": value, "t": type OID}; such a line runs on the extended protocol only)
# EXPECT: ok, err, a SQLSTATE, any, null (every value NULL, or no row),
#         empty (no row), same (the statement has {{...}} placeholders and is
#         run twice, once naming a hidden object and once a missing one of
#         the same kind: both runs must answer alike, token for token).
# Placeholders (hidden | missing):
#   {{rel}} internal_notes | zz_missing_rel     {{qrel}} public.internal_notes
#   {{view}} notes_view     {{seq}} internal_notes_id_seq   {{idx}} internal_notes_pkey
#   {{relid}} {{viewid}} {{seqid}} {{idxid}} OIDs of those | unused OIDs
#   {{typ}} internal_notes (row type) {{arrtyp}} _internal_notes  {{typid}} {{arrtypid}}
#   {{conid}} {{fkid}} constraint OIDs  {{trigid}} {{ritrigid}} trigger OIDs
#   {{ruleid}} {{stxid}} {{attrdefid}} {{procid}} note_checker's OID
#   {{proc}} note_checker   {{nsp}} vault   {{nspid}}  {{vrel}} vault.secret_keys
#   {{role}} postgres (exists, not the tenant's)   {{roleid}} its OID (10)
#   {{db}} postgres (another database)   {{dbid}} its OID
# Every statement also must not let any hidden name, the other tenant's id or
# rows, or a volume figure of a row-filtered table reach the client.


# --- reg* casts of a name, from every source ---
same  | SELECT '{{rel}}'::regclass
same  | SELECT '{{rel}}'::text::regclass
same  | SELECT (SELECT x::regclass FROM (VALUES ('{{rel}}')) s(x))
same  | SELECT (WITH c(x) AS (SELECT '{{rel}}'::text) SELECT x::regclass FROM c)
same  | SELECT (SELECT (SELECT '{{rel}}'::text)::regclass)
same  | SELECT ('' || '{{rel}}')::regclass
same  | SELECT format('%s', '{{rel}}')::regclass
same  | SELECT lower('{{rel}}')::regclass
same  | SELECT (CASE WHEN true THEN '{{rel}}' END)::regclass
same  | SELECT (ARRAY['{{rel}}'])[1]::regclass
same  | SELECT '{{qrel}}'::regclass
same  | SELECT '{{qrel}}'::text::regclass
same  | SELECT (SELECT x::regclass FROM (VALUES ('{{qrel}}')) s(x))
same  | SELECT (WITH c(x) AS (SELECT '{{qrel}}'::text) SELECT x::regclass FROM c)
same  | SELECT (SELECT (SELECT '{{qrel}}'::text)::regclass)
same  | SELECT ('' || '{{qrel}}')::regclass
same  | SELECT format('%s', '{{qrel}}')::regclass
same  | SELECT lower('{{qrel}}')::regclass
same  | SELECT (CASE WHEN true THEN '{{qrel}}' END)::regclass
same  | SELECT (ARRAY['{{qrel}}'])[1]::regclass
same  | SELECT '{{view}}'::regclass
same  | SELECT '{{view}}'::text::regclass
same  | SELECT (SELECT x::regclass FROM (VALUES ('{{view}}')) s(x))
same  | SELECT (WITH c(x) AS (SELECT '{{view}}'::text) SELECT x::regclass FROM c)
same  | SELECT (SELECT (SELECT '{{view}}'::text)::regclass)
same  | SELECT ('' || '{{view}}')::regclass
same  | SELECT format('%s', '{{view}}')::regclass
same  | SELECT lower('{{view}}')::regclass
same  | SELECT (CASE WHEN true THEN '{{view}}' END)::regclass
same  | SELECT (ARRAY['{{view}}'])[1]::regclass
same  | SELECT '{{seq}}'::regclass
same  | SELECT '{{seq}}'::text::regclass
same  | SELECT (SELECT x::regclass FROM (VALUES ('{{seq}}')) s(x))
same  | SELECT (WITH c(x) AS (SELECT '{{seq}}'::text) SELECT x::regclass FROM c)
same  | SELECT (SELECT (SELECT '{{seq}}'::text)::regclass)
same  | SELECT ('' || '{{seq}}')::regclass
same  | SELECT format('%s', '{{seq}}')::regclass
same  | SELECT lower('{{seq}}')::regclass
same  | SELECT (CASE WHEN true THEN '{{seq}}' END)::regclass
same  | SELECT (ARRAY['{{seq}}'])[1]::regclass
same  | SELECT '{{idx}}'::regclass
same  | SELECT '{{idx}}'::text::regclass
same  | SELECT (SELECT x::regclass FROM (VALUES ('{{idx}}')) s(x))
same  | SELECT (WITH c(x) AS (SELECT '{{idx}}'::text) SELECT x::regclass FROM c)
same  | SELECT (SELECT (SELECT '{{idx}}'::text)::regclass)
same  | SELECT ('' || '{{idx}}')::regclass
same  | SELECT format('%s', '{{idx}}')::regclass
same  | SELECT lower('{{idx}}')::regclass
same  | SELECT (CASE WHEN true THEN '{{idx}}' END)::regclass
same  | SELECT (ARRAY['{{idx}}'])[1]::regclass
same  | SELECT '{{vrel}}'::regclass
same  | SELECT '{{vrel}}'::text::regclass
same  | SELECT (SELECT x::regclass FROM (VALUES ('{{vrel}}')) s(x))
same  | SELECT (WITH c(x) AS (SELECT '{{vrel}}'::text) SELECT x::regclass FROM c)
same  | SELECT (SELECT (SELECT '{{vrel}}'::text)::regclass)
same  | SELECT ('' || '{{vrel}}')::regclass
same  | SELECT format('%s', '{{vrel}}')::regclass
same  | SELECT lower('{{vrel}}')::regclass
same  | SELECT (CASE WHEN true THEN '{{vrel}}' END)::regclass
same  | SELECT (ARRAY['{{vrel}}'])[1]::regclass
same  | SELECT '{{typ}}'::regtype
same  | SELECT '{{typ}}'::text::regtype
same  | SELECT (SELECT x::regtype FROM (VALUES ('{{typ}}')) s(x))
same  | SELECT (WITH c(x) AS (SELECT '{{typ}}'::text) SELECT x::regtype FROM c)
same  | SELECT (SELECT (SELECT '{{typ}}'::text)::regtype)
same  | SELECT ('' || '{{typ}}')::regtype
same  | SELECT format('%s', '{{typ}}')::regtype
same  | SELECT lower('{{typ}}')::regtype
same  | SELECT (CASE WHEN true THEN '{{typ}}' END)::regtype
same  | SELECT (ARRAY['{{typ}}'])[1]::regtype
same  | SELECT '{{arrtyp}}'::regtype
same  | SELECT '{{arrtyp}}'::text::regtype
same  | SELECT (SELECT x::regtype FROM (VALUES ('{{arrtyp}}')) s(x))
same  | SELECT (WITH c(x) AS (SELECT '{{arrtyp}}'::text) SELECT x::regtype FROM c)
same  | SELECT (SELECT (SELECT '{{arrtyp}}'::text)::regtype)
same  | SELECT ('' || '{{arrtyp}}')::regtype
same  | SELECT format('%s', '{{arrtyp}}')::regtype
same  | SELECT lower('{{arrtyp}}')::regtype
same  | SELECT (CASE WHEN true THEN '{{arrtyp}}' END)::regtype
same  | SELECT (ARRAY['{{arrtyp}}'])[1]::regtype
same  | SELECT '{{proc}}'::regproc
same  | SELECT '{{proc}}'::text::regproc
same  | SELECT (SELECT x::regproc FROM (VALUES ('{{proc}}')) s(x))
same  | SELECT (WITH c(x) AS (SELECT '{{proc}}'::text) SELECT x::regproc FROM c)
same  | SELECT (SELECT (SELECT '{{proc}}'::text)::regproc)
same  | SELECT ('' || '{{proc}}')::regproc
same  | SELECT format('%s', '{{proc}}')::regproc
same  | SELECT lower('{{proc}}')::regproc
same  | SELECT (CASE WHEN true THEN '{{proc}}' END)::regproc
same  | SELECT (ARRAY['{{proc}}'])[1]::regproc
same  | SELECT '{{nsp}}'::regnamespace
same  | SELECT '{{nsp}}'::text::regnamespace
same  | SELECT (SELECT x::regnamespace FROM (VALUES ('{{nsp}}')) s(x))
same  | SELECT (WITH c(x) AS (SELECT '{{nsp}}'::text) SELECT x::regnamespace FROM c)
same  | SELECT (SELECT (SELECT '{{nsp}}'::text)::regnamespace)
same  | SELECT ('' || '{{nsp}}')::regnamespace
same  | SELECT format('%s', '{{nsp}}')::regnamespace
same  | SELECT lower('{{nsp}}')::regnamespace
same  | SELECT (CASE WHEN true THEN '{{nsp}}' END)::regnamespace
same  | SELECT (ARRAY['{{nsp}}'])[1]::regnamespace
same  | SELECT '{{role}}'::regrole
same  | SELECT '{{role}}'::text::regrole
same  | SELECT (SELECT x::regrole FROM (VALUES ('{{role}}')) s(x))
same  | SELECT (WITH c(x) AS (SELECT '{{role}}'::text) SELECT x::regrole FROM c)
same  | SELECT (SELECT (SELECT '{{role}}'::text)::regrole)
same  | SELECT ('' || '{{role}}')::regrole
same  | SELECT format('%s', '{{role}}')::regrole
same  | SELECT lower('{{role}}')::regrole
same  | SELECT (CASE WHEN true THEN '{{role}}' END)::regrole
same  | SELECT (ARRAY['{{role}}'])[1]::regrole
same  | SELECT '{{proc}}()'::regprocedure
same  | SELECT 'public.{{proc}}()'::regprocedure
same  | SELECT 'public.{{proc}}'::regproc
same  | SELECT '{{typ}}[]'::regtype
same  | SELECT 'public.{{typ}}'::regtype
same  | SELECT '{{proc}}()'::text::regprocedure
same  | SELECT 'public.{{proc}}()'::text::regprocedure
same  | SELECT 'public.{{proc}}'::text::regproc
same  | SELECT '{{typ}}[]'::text::regtype
same  | SELECT 'public.{{typ}}'::text::regtype
same  | SELECT (SELECT x::regprocedure FROM (VALUES ('{{proc}}()')) s(x))
same  | SELECT (SELECT x::regprocedure FROM (VALUES ('public.{{proc}}()')) s(x))
same  | SELECT (SELECT x::regproc FROM (VALUES ('public.{{proc}}')) s(x))
same  | SELECT (SELECT x::regtype FROM (VALUES ('{{typ}}[]')) s(x))
same  | SELECT (SELECT x::regtype FROM (VALUES ('public.{{typ}}')) s(x))
same  | SELECT (WITH c(x) AS (SELECT '{{proc}}()'::text) SELECT x::regprocedure FROM c)
same  | SELECT (WITH c(x) AS (SELECT 'public.{{proc}}()'::text) SELECT x::regprocedure FROM c)
same  | SELECT (WITH c(x) AS (SELECT 'public.{{proc}}'::text) SELECT x::regproc FROM c)
same  | SELECT (WITH c(x) AS (SELECT '{{typ}}[]'::text) SELECT x::regtype FROM c)
same  | SELECT (WITH c(x) AS (SELECT 'public.{{typ}}'::text) SELECT x::regtype FROM c)

# --- OIDs of hidden objects given to casts and functions ---
same  | SELECT {{relid}}::regclass
same  | SELECT {{relid}}::regclass::text
same  | SELECT {{viewid}}::regclass
same  | SELECT {{seqid}}::regclass
same  | SELECT {{idxid}}::regclass
same  | SELECT {{typid}}::regtype
same  | SELECT {{arrtypid}}::regtype
same  | SELECT {{procid}}::regproc
same  | SELECT {{procid}}::regprocedure
same  | SELECT {{nspid}}::regnamespace
same  | SELECT {{roleid}}::regrole
same  | SELECT format_type({{typid}}, NULL)
same  | SELECT format_type({{arrtypid}}, -1)
same  | SELECT oidvectortypes('23 {{typid}} 25'::oidvector)
same  | SELECT oidvectortypes((SELECT x::oidvector FROM (VALUES ('{{arrtypid}} 0')) s(x)))
same  | SELECT pg_relation_is_updatable({{relid}}, true), pg_column_is_updatable({{relid}}, 1::int2, true)
same  | SELECT row_security_active({{relid}}), pg_get_replica_identity_index({{relid}})
same  | SELECT pg_index_has_property({{idxid}}, 'clusterable'), pg_index_column_has_property({{idxid}}, 1, 'asc')
null  | SELECT pg_sequence_last_value('orders_id_seq')
null  | SELECT pg_catalog.pg_sequence_last_value(c.oid) FROM pg_class c WHERE c.relkind = 'S'
same  | SELECT obj_description({{relid}}, 'pg_class')
same  | SELECT obj_description({{relid}})
same  | SELECT col_description({{relid}}, 1)
same  | SELECT col_description({{relid}}, 2)
same  | SELECT obj_description({{typid}}, 'pg_type')
same  | SELECT obj_description({{procid}}, 'pg_proc')
same  | SELECT obj_description({{nspid}}, 'pg_namespace')
same  | SELECT obj_description({{conid}}, 'pg_constraint')
same  | SELECT shobj_description({{dbid}}, 'pg_database')
same  | SELECT shobj_description({{roleid}}, 'pg_authid')
same  | SELECT pg_get_viewdef({{viewid}})
same  | SELECT pg_get_viewdef({{viewid}}, true)
same  | SELECT pg_get_indexdef({{idxid}})
same  | SELECT pg_get_indexdef({{idxid}}, 1, true)
same  | SELECT pg_get_constraintdef({{conid}})
same  | SELECT pg_get_constraintdef({{fkid}}, true)
same  | SELECT pg_get_triggerdef({{trigid}})
same  | SELECT pg_get_triggerdef({{ritrigid}}, true)
same  | SELECT pg_get_ruledef({{ruleid}})
same  | SELECT pg_get_statisticsobjdef({{stxid}})
same  | SELECT pg_get_statisticsobjdef_columns({{stxid}})
same  | SELECT pg_get_functiondef({{procid}})
same  | SELECT pg_get_function_arguments({{procid}})
same  | SELECT pg_get_function_result({{procid}})
same  | SELECT pg_get_function_identity_arguments({{procid}})
same  | SELECT pg_get_partkeydef({{relid}})
same  | SELECT pg_table_is_visible({{relid}})
same  | SELECT pg_type_is_visible({{typid}})
same  | SELECT pg_function_is_visible({{procid}})
same  | SELECT pg_statistics_obj_is_visible({{stxid}})
same  | SELECT has_table_privilege({{relid}}, 'SELECT')
same  | SELECT has_any_column_privilege({{relid}}, 'SELECT')
same  | SELECT has_column_privilege({{relid}}, 1::int2, 'SELECT')
same  | SELECT has_sequence_privilege({{seqid}}, 'USAGE')
same  | SELECT has_type_privilege({{typid}}, 'USAGE')
same  | SELECT has_function_privilege({{procid}}, 'EXECUTE')
same  | SELECT has_schema_privilege({{nspid}}, 'USAGE')
same  | SELECT has_database_privilege({{dbid}}, 'CONNECT')
same  | SELECT pg_get_userbyid({{roleid}})
same  | SELECT pg_has_role({{roleid}}, 'MEMBER')
same  | SELECT pg_relation_size({{relid}})
same  | SELECT pg_total_relation_size({{relid}})
same  | SELECT pg_table_size({{relid}})
same  | SELECT pg_indexes_size({{relid}})
same  | SELECT pg_relation_size({{idxid}})
same  | SELECT pg_stat_get_live_tuples({{relid}})
same  | SELECT pg_stat_get_numscans({{relid}})
same  | SELECT pg_partition_root({{relid}})
same  | SELECT pg_relation_is_publishable({{relid}})
same  | SELECT pg_get_expr(NULL, {{relid}})
same  | SELECT pg_describe_object('pg_class'::regclass, {{relid}}, 0)
same  | SELECT pg_describe_object('pg_class'::regclass, {{relid}}, 2)
same  | SELECT pg_describe_object('pg_type'::regclass, {{typid}}, 0)
same  | SELECT pg_describe_object('pg_constraint'::regclass, {{conid}}, 0)
same  | SELECT pg_describe_object('pg_trigger'::regclass, {{trigid}}, 0)
same  | SELECT pg_describe_object('pg_proc'::regclass, {{procid}}, 0)
same  | SELECT pg_describe_object('pg_attrdef'::regclass, {{attrdefid}}, 0)
same  | SELECT (pg_identify_object('pg_class'::regclass, {{relid}}, 0)).identity
same  | SELECT (pg_identify_object_as_address('pg_class'::regclass, {{relid}}, 0)).object_names
same  | SELECT (SELECT x FROM (VALUES ({{relid}}::oid)) s(x))::regclass
same  | SELECT format_type((SELECT x FROM (VALUES ({{typid}}::oid)) s(x)), NULL)
same  | SELECT pg_get_constraintdef((SELECT x FROM (VALUES ({{conid}}::oid)) s(x)))
same  | SELECT obj_description((SELECT x FROM (VALUES ({{relid}}::oid)) s(x)), 'pg_class')
same  | SELECT pg_get_viewdef((SELECT x FROM (VALUES ({{viewid}}::oid)) s(x)))
same  | SELECT has_table_privilege((SELECT x FROM (VALUES ({{relid}}::oid)) s(x)), 'SELECT')
same  | SELECT (WITH c(x) AS (SELECT {{relid}}::oid) SELECT x FROM c)::regclass
same  | SELECT format_type((WITH c(x) AS (SELECT {{typid}}::oid) SELECT x FROM c), NULL)
same  | SELECT pg_get_constraintdef((WITH c(x) AS (SELECT {{conid}}::oid) SELECT x FROM c))
same  | SELECT obj_description((WITH c(x) AS (SELECT {{relid}}::oid) SELECT x FROM c), 'pg_class')
same  | SELECT pg_get_viewdef((WITH c(x) AS (SELECT {{viewid}}::oid) SELECT x FROM c))
same  | SELECT has_table_privilege((WITH c(x) AS (SELECT {{relid}}::oid) SELECT x FROM c), 'SELECT')
same  | SELECT ({{relid}} + 0)::regclass
same  | SELECT format_type(({{typid}} + 0), NULL)
same  | SELECT pg_get_constraintdef(({{conid}} + 0))
same  | SELECT obj_description(({{relid}} + 0), 'pg_class')
same  | SELECT pg_get_viewdef(({{viewid}} + 0))
same  | SELECT has_table_privilege(({{relid}} + 0), 'SELECT')
same  | SELECT {{relid}}::int8::regclass
same  | SELECT format_type({{typid}}::int8, NULL)
same  | SELECT pg_get_constraintdef({{conid}}::int8)
same  | SELECT obj_description({{relid}}::int8, 'pg_class')
same  | SELECT pg_get_viewdef({{viewid}}::int8)
same  | SELECT has_table_privilege({{relid}}::int8, 'SELECT')
same  | SELECT * FROM pg_identify_object('pg_class'::regclass, {{relid}}, 0)
same  | SELECT * FROM pg_partition_ancestors({{relid}})
same  | SELECT * FROM pg_partition_tree({{relid}})
same  | SELECT pg_describe_object(c, o, 0) FROM (VALUES ('pg_class'::regclass::oid, {{relid}}::oid)) v(c, o)
same  | SELECT obj_description(o, c) FROM (VALUES ({{relid}}::oid, 'pg_class'::name)) v(o, c)

# --- scanning OID ranges: only visible objects answer ---
any   | SELECT string_agg(g::oid::regclass::text, ',') FROM generate_series(16000, 17500) g
any   | SELECT string_agg(format_type(g::oid, NULL), ',') FROM generate_series(16000, 17500) g
any   | SELECT string_agg(obj_description(g::oid, 'pg_class'), ',') FROM generate_series(16000, 17500) g
any   | SELECT string_agg(pg_get_constraintdef(g::oid), ',') FROM generate_series(16000, 17500) g
any   | SELECT string_agg(pg_get_triggerdef(g::oid), ',') FROM generate_series(16000, 17500) g
any   | SELECT string_agg(pg_get_viewdef(g::oid), ',') FROM generate_series(16000, 17500) g
any   | SELECT string_agg(pg_get_indexdef(g::oid), ',') FROM generate_series(16000, 17500) g
any   | SELECT string_agg(g::oid::regtype::text, ',') FROM generate_series(16000, 17500) g
any   | SELECT string_agg(g::oid::regproc::text, ',') FROM generate_series(16000, 17500) g
any   | SELECT string_agg(pg_get_statisticsobjdef(g::oid), ',') FROM generate_series(16000, 17500) g
any   | SELECT string_agg(pg_get_functiondef(g::oid), ',') FROM generate_series(16000, 17500) g
any   | SELECT string_agg(col_description(g::oid, 1), ',') FROM generate_series(16000, 17500) g
any   | SELECT string_agg(pg_describe_object('pg_class'::regclass, g::oid, 0), ',') FROM generate_series(16000, 17500) g
any   | SELECT string_agg(g::oid::regnamespace::text, ',') FROM generate_series(16000, 17500) g
any   | SELECT string_agg(pg_get_userbyid(g::oid), ',') FROM generate_series(16000, 17500) g
any   | SELECT string_agg(has_table_privilege(g::oid, 'SELECT')::text, ',') FROM generate_series(16000, 17500) g
any   | SELECT string_agg(pg_relation_size(g::oid)::text, ',') FROM generate_series(16000, 17500) g
any   | SELECT string_agg(pg_get_ruledef(g::oid), ',') FROM generate_series(16000, 17500) g

# --- names to privilege and lookup functions ---
same  | SELECT has_table_privilege('{{rel}}', 'SELECT')
same  | SELECT has_table_privilege((SELECT '{{rel}}'::text), 'SELECT')
same  | SELECT has_table_privilege('{{qrel}}', 'SELECT')
same  | SELECT has_table_privilege((SELECT '{{qrel}}'::text), 'SELECT')
same  | SELECT has_table_privilege('alice', '{{rel}}', 'SELECT')
same  | SELECT has_table_privilege('alice', (SELECT '{{rel}}'::text), 'SELECT')
same  | SELECT has_table_privilege(current_user, '{{view}}', 'SELECT')
same  | SELECT has_table_privilege(current_user, (SELECT '{{view}}'::text), 'SELECT')
same  | SELECT has_any_column_privilege('{{rel}}', 'SELECT')
same  | SELECT has_any_column_privilege((SELECT '{{rel}}'::text), 'SELECT')
same  | SELECT has_column_privilege('{{rel}}', 'note', 'SELECT')
same  | SELECT has_column_privilege((SELECT '{{rel}}'::text), 'note', 'SELECT')
same  | SELECT has_column_privilege('customers', 'zz_{{rel}}', 'SELECT')
same  | SELECT has_sequence_privilege('{{seq}}', 'USAGE')
same  | SELECT has_sequence_privilege((SELECT '{{seq}}'::text), 'USAGE')
same  | SELECT has_schema_privilege('{{nsp}}', 'USAGE')
same  | SELECT has_schema_privilege((SELECT '{{nsp}}'::text), 'USAGE')
same  | SELECT has_type_privilege('{{typ}}', 'USAGE')
same  | SELECT has_type_privilege((SELECT '{{typ}}'::text), 'USAGE')
same  | SELECT has_type_privilege('{{arrtyp}}', 'USAGE')
same  | SELECT has_type_privilege((SELECT '{{arrtyp}}'::text), 'USAGE')
same  | SELECT has_function_privilege('{{proc}}()', 'EXECUTE')
same  | SELECT has_function_privilege((SELECT '{{proc}}()', 'EXECUTE')
same  | SELECT has_function_privilege('public.{{proc}}()', 'EXECUTE')
same  | SELECT has_database_privilege('{{db}}', 'CONNECT')
same  | SELECT has_database_privilege((SELECT '{{db}}'::text), 'CONNECT')
same  | SELECT has_table_privilege('{{role}}', 'customers', 'SELECT')
same  | SELECT has_table_privilege((SELECT '{{role}}'::text), 'customers', 'SELECT')
same  | SELECT pg_has_role('{{role}}', 'MEMBER')
same  | SELECT pg_has_role((SELECT '{{role}}'::text), 'MEMBER')
same  | SELECT pg_has_role(current_user, '{{role}}', 'MEMBER')
same  | SELECT pg_has_role(current_user, (SELECT '{{role}}'::text), 'MEMBER')
same  | SELECT to_regclass('{{rel}}')
same  | SELECT to_regclass((SELECT '{{rel}}'::text))
same  | SELECT to_regclass('{{qrel}}')
same  | SELECT to_regclass((SELECT '{{qrel}}'::text))
same  | SELECT to_regclass('{{vrel}}')
same  | SELECT to_regclass((SELECT '{{vrel}}'::text))
same  | SELECT to_regtype('{{typ}}')
same  | SELECT to_regtype((SELECT '{{typ}}'::text))
same  | SELECT to_regtype('{{arrtyp}}')
same  | SELECT to_regtype((SELECT '{{arrtyp}}'::text))
same  | SELECT to_regproc('{{proc}}')
same  | SELECT to_regproc((SELECT '{{proc}}'::text))
same  | SELECT to_regprocedure('{{proc}}()')
same  | SELECT to_regprocedure((SELECT '{{proc}}()')
same  | SELECT to_regnamespace('{{nsp}}')
same  | SELECT to_regnamespace((SELECT '{{nsp}}'::text))
same  | SELECT to_regrole('{{role}}')
same  | SELECT to_regrole((SELECT '{{role}}'::text))
same  | SELECT pg_get_viewdef('{{view}}')
same  | SELECT pg_get_viewdef((SELECT '{{view}}'::text))
same  | SELECT pg_relation_size('{{rel}}')
same  | SELECT pg_relation_size((SELECT '{{rel}}'::text))
same  | SELECT pg_total_relation_size('{{qrel}}')
same  | SELECT pg_total_relation_size((SELECT '{{qrel}}'::text))
same  | SELECT pg_table_size('{{rel}}')
same  | SELECT pg_table_size((SELECT '{{rel}}'::text))
same  | SELECT pg_indexes_size('{{rel}}')
same  | SELECT pg_indexes_size((SELECT '{{rel}}'::text))
same  | SELECT pg_get_serial_sequence('{{rel}}', 'id')
same  | SELECT pg_get_serial_sequence((SELECT '{{rel}}'::text), 'id')
same  | SELECT pg_get_serial_sequence('customers', 'zz_{{rel}}')
same  | SELECT pg_partition_root('{{rel}}')
same  | SELECT pg_partition_root((SELECT '{{rel}}'::text))
same  | SELECT pg_relation_is_publishable('{{rel}}')
same  | SELECT pg_relation_is_publishable((SELECT '{{rel}}'::text))
same  | SELECT pg_database_size('{{db}}')
same  | SELECT pg_database_size((SELECT '{{db}}'::text))
same  | SELECT current_setting('zz_{{rel}}.x', true)

# --- row and array types of hidden relations ---
same  | SELECT NULL::{{typ}}
same  | SELECT NULL::{{arrtyp}}
same  | SELECT NULL::public.{{typ}}
same  | SELECT NULL::{{typ}}[]
same  | SELECT ROW(1, 1, 'x')::{{typ}}
same  | SELECT CAST(NULL AS {{typ}})
same  | SELECT pg_typeof(NULL::{{typ}})
same  | SELECT json_populate_record(NULL::{{typ}}, '{}')
same  | SELECT jsonb_populate_record(NULL::{{typ}}, '{}')
same  | SELECT (json_populate_record(NULL::{{typ}}, '{}')).*
same  | SELECT (NULL::{{typ}}).note
same  | SELECT '{}'::{{arrtyp}}
same  | SELECT array_length('{}'::{{typ}}[], 1)
same  | SELECT to_json(NULL::{{typ}})
same  | SELECT * FROM unnest('{}'::{{arrtyp}})
same  | SELECT * FROM json_populate_recordset(NULL::{{typ}}, '[]')
same  | SELECT * FROM json_to_record('{}') AS x(a {{typ}})
same  | SELECT * FROM json_to_record('{}') AS x(a {{arrtyp}})
err   | PREPARE p1(regclass) AS SELECT $1
same  | PREPARE p2({{typ}}) AS SELECT $1
same  | PREPARE p3({{arrtyp}}) AS SELECT 1
same  | PREPARE p4(int, {{typ}}) AS SELECT $1
err   | SELECT NULL::vault.secret_keys
42501 | PREPARE p5(regtype) AS SELECT $1
42501 | PREPARE p6(regproc[]) AS SELECT 1
42501 | SELECT * FROM json_to_record('{"a": "x"}') AS x(a regclass)
42501 | SELECT '{customers}'::regclass[]
42501 | SELECT ARRAY['customers']::regclass[]
42501 | SELECT '{internal_notes}'::_regclass

# --- protocol Parse with reg* and user-defined parameter types ---
42501 | SELECT $1::text | [{"v": "internal_notes", "t": 2205}]
42501 | SELECT 1 WHERE $1 IS NOT NULL | [{"v": "customers", "t": 2205}]
42501 | SELECT $1::text | [{"v": "internal_notes", "t": 2206}]
42501 | SELECT 1 WHERE $1 IS NOT NULL | [{"v": "customers", "t": 2206}]
42501 | SELECT $1::text | [{"v": "internal_notes", "t": 24}]
42501 | SELECT 1 WHERE $1 IS NOT NULL | [{"v": "customers", "t": 24}]
42501 | SELECT $1::text | [{"v": "internal_notes", "t": 2202}]
42501 | SELECT 1 WHERE $1 IS NOT NULL | [{"v": "customers", "t": 2202}]
42501 | SELECT $1::text | [{"v": "internal_notes", "t": 2203}]
42501 | SELECT 1 WHERE $1 IS NOT NULL | [{"v": "customers", "t": 2203}]
42501 | SELECT $1::text | [{"v": "internal_notes", "t": 2204}]
42501 | SELECT 1 WHERE $1 IS NOT NULL | [{"v": "customers", "t": 2204}]
42501 | SELECT $1::text | [{"v": "internal_notes", "t": 4089}]
42501 | SELECT 1 WHERE $1 IS NOT NULL | [{"v": "customers", "t": 4089}]
42501 | SELECT $1::text | [{"v": "internal_notes", "t": 4096}]
42501 | SELECT 1 WHERE $1 IS NOT NULL | [{"v": "customers", "t": 4096}]
42501 | SELECT $1::text | [{"v": "internal_notes", "t": 4191}]
42501 | SELECT 1 WHERE $1 IS NOT NULL | [{"v": "customers", "t": 4191}]
42501 | SELECT $1::text | [{"v": "internal_notes", "t": 3734}]
42501 | SELECT 1 WHERE $1 IS NOT NULL | [{"v": "customers", "t": 3734}]
42501 | SELECT $1::text | [{"v": "internal_notes", "t": 3769}]
42501 | SELECT 1 WHERE $1 IS NOT NULL | [{"v": "customers", "t": 3769}]
42501 | SELECT $1::text | [{"v": "internal_notes", "t": 2210}]
42501 | SELECT 1 WHERE $1 IS NOT NULL | [{"v": "customers", "t": 2210}]
42501 | SELECT $1::text | [{"v": "internal_notes", "t": 2211}]
42501 | SELECT 1 WHERE $1 IS NOT NULL | [{"v": "customers", "t": 2211}]
42501 | SELECT $1::text | [{"v": "internal_notes", "t": 1008}]
42501 | SELECT 1 WHERE $1 IS NOT NULL | [{"v": "customers", "t": 1008}]
42501 | SELECT $1 | [{"v": "(1,1,x)", "t": "{{typid}}"}]
42501 | SELECT $1 | [{"v": "{}", "t": "{{arrtypid}}"}]
42501 | SELECT ($1).note | [{"v": "(1,1,x)", "t": "{{typid}}"}]
42501 | SELECT 1 | ["x", {"v": "(1)", "t": "{{typid}}"}]
ok    | SELECT $1::regclass | [{"v": "customers", "t": 25}]
ok    | SELECT $1::regclass | ["public.customers"]
42P01 | SELECT $1::regclass | [{"v": "internal_notes", "t": 25}]
42P01 | SELECT $1::regclass | ["public.internal_notes"]
42P01 | SELECT $1::regclass | ["zz_missing_rel"]
ok    | SELECT has_table_privilege($1, 'SELECT') | ["customers"]
42P01 | SELECT has_table_privilege($1, 'SELECT') | ["internal_notes"]
null  | SELECT to_regclass($1) | ["internal_notes"]
same  | SELECT $1::oid::regclass | ["{{relid}}"]
same  | SELECT format_type($1, NULL) | ["{{typid}}"]
same  | SELECT obj_description($1, 'pg_class') | ["{{relid}}"]
same  | SELECT pg_get_constraintdef($1) | ["{{conid}}"]
same  | SELECT pg_get_viewdef($1) | ["{{viewid}}"]
same  | SELECT pg_get_viewdef($1::oid) | ["{{viewid}}"]
same  | SELECT pg_get_viewdef($1) | ["{{view}}"]
same  | SELECT $1::regclass | ["{{rel}}"]
same  | SELECT $1::regclass | ["{{qrel}}"]
same  | SELECT $1::regtype | ["{{typ}}"]
same  | SELECT $1::regproc | ["{{proc}}"]
same  | SELECT to_regclass($1) | ["{{rel}}"]
same  | SELECT has_table_privilege($1, 'SELECT') | ["{{rel}}"]
same  | SELECT has_table_privilege($1, $2, 'SELECT') | ["{{role}}", "customers"]
same  | SELECT has_schema_privilege($1, 'USAGE') | ["{{nsp}}"]
same  | SELECT pg_relation_size($1) | ["{{rel}}"]
same  | SELECT pg_relation_size($1::oid) | ["{{relid}}"]
same  | SELECT pg_get_triggerdef($1) | ["{{ritrigid}}"]
ok    | SELECT col_description(CAST(CAST($1 AS regclass) AS oid), 1) | ["public.customers"]
42P01 | SELECT col_description(CAST(CAST($1 AS regclass) AS oid), 1) | ["public.internal_notes"]

# --- catalog rows about hidden objects -----------------------------------------
empty | SELECT * FROM pg_class WHERE relname = 'internal_notes'
empty | SELECT * FROM pg_class WHERE oid = {{relid}}
empty | SELECT * FROM pg_class WHERE relname LIKE 'internal%'
empty | SELECT * FROM pg_class WHERE relname ~ 'notes'
empty | SELECT * FROM pg_class WHERE relnamespace = {{nspid}}
empty | SELECT * FROM pg_class c WHERE c.oid IN (SELECT g::oid FROM generate_series(16384, 70000) g) AND c.relname ~ 'note'
empty | SELECT relname FROM pg_class WHERE 1/(CASE WHEN relname = 'internal_notes' THEN 0 ELSE 1 END) = 1 AND relname = 'internal_notes'
any   | SELECT count(*) FROM pg_class WHERE 1/(CASE WHEN relname = 'internal_notes' THEN 0 ELSE 1 END) = 1
empty | SELECT * FROM pg_type WHERE typname IN ('internal_notes', '_internal_notes', 'secret_keys', '_secret_keys')
empty | SELECT * FROM pg_type WHERE oid = {{typid}} OR oid = {{arrtypid}}
empty | SELECT * FROM pg_type WHERE typrelid = {{relid}}
empty | SELECT * FROM pg_type t WHERE t.typelem = {{typid}}
empty | SELECT * FROM pg_attribute WHERE attrelid = {{relid}}
empty | SELECT * FROM pg_attribute WHERE attname = 'note' AND attrelid IN (SELECT oid FROM pg_class)
empty | SELECT * FROM pg_attrdef WHERE adrelid = {{relid}}
empty | SELECT * FROM pg_attrdef WHERE oid = {{attrdefid}}
empty | SELECT * FROM pg_index WHERE indrelid = {{relid}} OR indexrelid = {{idxid}}
empty | SELECT * FROM pg_constraint WHERE conrelid = {{relid}} OR confrelid = {{relid}}
empty | SELECT * FROM pg_constraint WHERE conname LIKE 'internal%'
empty | SELECT * FROM pg_constraint WHERE oid IN ({{conid}}, {{fkid}})
empty | SELECT * FROM pg_trigger WHERE tgrelid = {{relid}}
empty | SELECT * FROM pg_trigger WHERE tgconstrrelid = {{relid}}
empty | SELECT * FROM pg_trigger WHERE oid IN ({{trigid}}, {{ritrigid}})
empty | SELECT * FROM pg_trigger WHERE tgname = 'note_trigger' OR tgname LIKE 'RI_ConstraintTrigger_a%' AND tgconstraint = {{fkid}}
empty | SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE tgconstrrelid <> 0 AND tgconstrrelid NOT IN (SELECT oid FROM pg_class)
empty | SELECT * FROM pg_rewrite WHERE ev_class = {{viewid}} OR oid = {{ruleid}}
empty | SELECT * FROM pg_statistic_ext WHERE stxrelid = {{relid}} OR stxname = 'notes_stats'
empty | SELECT * FROM pg_depend WHERE objid IN ({{relid}}, {{typid}}, {{conid}}, {{trigid}}, {{seqid}}, {{idxid}}) OR refobjid IN ({{relid}}, {{typid}}, {{procid}})
empty | SELECT * FROM pg_depend WHERE refobjid = {{nspid}}
empty | SELECT * FROM pg_description WHERE objoid IN ({{relid}}, {{viewid}})
empty | SELECT * FROM pg_description WHERE description LIKE '%hidden%'
empty | SELECT * FROM pg_proc WHERE proname = 'note_checker' OR oid = {{procid}}
empty | SELECT * FROM pg_namespace WHERE nspname = 'vault' OR oid = {{nspid}}
empty | SELECT * FROM pg_sequence WHERE seqrelid = {{seqid}}
empty | SELECT * FROM pg_inherits WHERE inhrelid = {{relid}} OR inhparent = {{relid}}
empty | SELECT * FROM pg_policy WHERE polrelid = {{relid}}
empty | SELECT * FROM pg_init_privs WHERE objoid = {{relid}}
empty | SELECT * FROM pg_seclabel WHERE objoid = {{relid}}
empty | SELECT * FROM pg_seclabels WHERE objoid = {{relid}}
empty | SELECT * FROM pg_tables WHERE tablename = 'internal_notes' OR schemaname = 'vault'
empty | SELECT * FROM pg_views WHERE viewname = 'notes_view'
empty | SELECT * FROM pg_indexes WHERE tablename = 'internal_notes' OR indexname LIKE 'internal%'
empty | SELECT * FROM pg_sequences WHERE sequencename = 'internal_notes_id_seq'
empty | SELECT * FROM pg_rules WHERE tablename = 'notes_view'
empty | SELECT * FROM pg_policies WHERE tablename = 'internal_notes'
empty | SELECT * FROM pg_stat_user_tables WHERE relname = 'internal_notes'
empty | SELECT * FROM pg_stat_all_tables WHERE relid = {{relid}}
empty | SELECT * FROM pg_statio_user_tables WHERE relid = {{relid}}
empty | SELECT * FROM pg_stat_user_indexes WHERE indexrelid = {{idxid}}
empty | SELECT * FROM pg_statio_all_sequences WHERE relid = {{seqid}}
empty | SELECT * FROM pg_stat_user_functions WHERE funcid = {{procid}}
any   | SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'
any   | SELECT nspname FROM pg_namespace
any   | SELECT typname FROM pg_type WHERE typtype = 'c'
any   | SELECT t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t
any   | SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
any   | SELECT pg_describe_object(classid, objid, objsubid), pg_describe_object(refclassid, refobjid, refobjsubid) FROM pg_depend
any   | SELECT obj_description(objoid, (SELECT relname FROM pg_class WHERE oid = classoid)) FROM pg_description
any   | SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef
any   | SELECT pg_get_indexdef(indexrelid) FROM pg_index
any   | SELECT stxname, pg_get_statisticsobjdef(oid) FROM pg_statistic_ext
any   | SELECT evtname FROM pg_event_trigger
any   | SELECT * FROM pg_publication_rel
any   | SELECT proname FROM pg_proc WHERE pronamespace <> 'pg_catalog'::regnamespace
any   | SELECT string_agg(relname, ',') FROM pg_class
any   | SELECT string_agg(typname, ',') FROM pg_type
any   | SELECT string_agg(conname, ',') FROM pg_constraint
any   | SELECT string_agg(attname, ',') FROM pg_attribute
any   | SELECT string_agg(tgname, ',') FROM pg_trigger
any   | SELECT string_agg(description, ',') FROM pg_description
any   | SELECT string_agg(nspname, ',') FROM pg_namespace
any   | SELECT string_agg(proname, ',') FROM pg_proc
any   | SELECT string_agg(rulename, ',') FROM pg_rewrite
any   | SELECT string_agg(stxname, ',') FROM pg_statistic_ext
any   | SELECT string_agg(schemaname || '.' || tablename, ',') FROM pg_tables
any   | SELECT string_agg(indexdef, ',') FROM pg_indexes
any   | SELECT string_agg(definition, ',') FROM pg_views
any   | SELECT relname, relacl::text FROM pg_class WHERE relacl IS NOT NULL
any   | SELECT nspname, nspacl::text FROM pg_namespace
any   | SELECT x FROM (SELECT relname AS x FROM pg_class UNION SELECT typname FROM pg_type UNION SELECT conname FROM pg_constraint) u
any   | WITH RECURSIVE d AS (SELECT objid, refobjid FROM pg_depend UNION SELECT p.objid, p.refobjid FROM pg_depend p JOIN d ON d.refobjid = p.objid) SELECT count(*) FROM d
any   | SELECT c.relname FROM pg_class c, LATERAL (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid LIMIT 1) x
any   | SELECT (SELECT relname FROM pg_class WHERE oid = g::oid) FROM generate_series(16384, 17000) g
any   | SELECT count(*) FROM pg_class WHERE oid::regclass::text ~ 'note'
any   | SELECT count(*) FROM pg_type WHERE typname::regtype::text ~ 'note'
any   | DECLARE cat1 CURSOR FOR SELECT relname FROM pg_class; FETCH ALL FROM cat1; CLOSE cat1
any   | COPY (SELECT relname FROM pg_class) TO STDOUT
any   | COPY pg_class TO STDOUT
any   | COPY pg_type (typname) TO STDOUT
any   | PREPARE cat2 AS SELECT relname FROM pg_class WHERE oid = $1; EXECUTE cat2({{relid}}); DEALLOCATE cat2
any   | EXECUTE cat3(obj_description({{relid}}, 'pg_class'))

# --- information_schema ------------------------------------------------------
empty | SELECT * FROM information_schema.tables WHERE table_name IN ('internal_notes', 'notes_view', 'secret_keys')
empty | SELECT * FROM information_schema.columns WHERE table_name = 'internal_notes'
empty | SELECT * FROM information_schema.views WHERE table_name = 'notes_view'
empty | SELECT * FROM information_schema.schemata WHERE schema_name = 'vault'
empty | SELECT * FROM information_schema.table_constraints WHERE table_name = 'internal_notes'
empty | SELECT * FROM information_schema.table_constraints WHERE constraint_name LIKE 'internal%'
empty | SELECT * FROM information_schema.check_constraints WHERE constraint_name LIKE 'internal%'
empty | SELECT * FROM information_schema.check_constraints WHERE check_clause LIKE '%note%'
empty | SELECT * FROM information_schema.referential_constraints WHERE constraint_name LIKE 'internal%'
empty | SELECT * FROM information_schema.key_column_usage WHERE table_name = 'internal_notes'
empty | SELECT * FROM information_schema.constraint_column_usage WHERE constraint_name LIKE 'internal%'
empty | SELECT * FROM information_schema.constraint_table_usage WHERE constraint_name LIKE 'internal%'
empty | SELECT * FROM information_schema.triggers WHERE event_object_table = 'internal_notes'
empty | SELECT * FROM information_schema.routines WHERE routine_name = 'note_checker'
empty | SELECT * FROM information_schema.parameters WHERE specific_name LIKE 'note_checker%'
empty | SELECT * FROM information_schema.sequences WHERE sequence_name = 'internal_notes_id_seq'
empty | SELECT * FROM information_schema.table_privileges WHERE table_name = 'internal_notes'
empty | SELECT * FROM information_schema.column_privileges WHERE table_name = 'internal_notes'
empty | SELECT * FROM information_schema.view_table_usage WHERE table_name = 'internal_notes'
empty | SELECT * FROM information_schema.view_column_usage WHERE view_name = 'notes_view'
empty | SELECT * FROM information_schema.role_table_grants WHERE table_name = 'internal_notes'
empty | SELECT * FROM information_schema.element_types WHERE object_name = 'internal_notes'
any   | SELECT string_agg(table_name, ',') FROM information_schema.tables
any   | SELECT string_agg(column_name, ',') FROM information_schema.columns
any   | SELECT string_agg(constraint_name, ',') FROM information_schema.table_constraints
any   | SELECT string_agg(check_clause, ',') FROM information_schema.check_constraints
any   | SELECT string_agg(schema_name, ',') FROM information_schema.schemata
any   | SELECT DISTINCT table_catalog FROM information_schema.tables
any   | SELECT catalog_name FROM information_schema.information_schema_catalog_name
any   | SELECT grantor, grantee FROM information_schema.table_privileges
any   | SELECT * FROM information_schema.enabled_roles
any   | SELECT * FROM information_schema.applicable_roles

# --- statistics: another tenant's volume ----------------------------------------
null  | SELECT reltuples, relpages, relallvisible FROM pg_class WHERE relname = 'big_facts'
null  | SELECT reltuples FROM pg_class WHERE relname IN ('customers', 'orders', 'big_facts_pkey', 'orders_customer_idx')
null  | SELECT reltuples FROM pg_class WHERE relname = 'pg_class'
null  | SELECT relpages FROM pg_class WHERE relname = 'pg_attribute'
null  | SELECT n_live_tup, n_dead_tup, seq_scan, n_tup_ins FROM pg_stat_user_tables WHERE relname = 'big_facts'
null  | SELECT n_live_tup FROM pg_stat_all_tables WHERE relname = 'pg_class'
null  | SELECT heap_blks_read, heap_blks_hit FROM pg_statio_user_tables WHERE relname = 'big_facts'
null  | SELECT idx_scan, idx_tup_read FROM pg_stat_user_indexes WHERE relname = 'big_facts'
null  | SELECT idx_blks_read FROM pg_statio_user_indexes WHERE relname = 'big_facts'
null  | SELECT n_tup_ins FROM pg_stat_xact_user_tables WHERE relname = 'big_facts'
null  | SELECT pg_relation_size('big_facts'), pg_table_size('big_facts'), pg_total_relation_size('big_facts'), pg_indexes_size('big_facts')
null  | SELECT pg_relation_size('big_facts_pkey')
null  | SELECT pg_relation_size('pg_class'), pg_total_relation_size('pg_catalog.pg_attribute')
null  | SELECT pg_relation_size(oid) FROM pg_class WHERE relname = 'big_facts'
null  | SELECT pg_relation_size(x) FROM (VALUES ('big_facts')) v(x)
null  | SELECT pg_relation_size(x::regclass) FROM (VALUES ('big_facts')) v(x)
null  | SELECT pg_relation_size('big_facts', 'main'), pg_relation_size('big_facts', 'fsm')
null  | SELECT pg_stat_get_live_tuples('big_facts'::regclass), pg_stat_get_numscans('big_facts'::regclass)
null  | SELECT pg_stat_get_tuples_inserted(oid) FROM pg_class WHERE relname = 'big_facts'
null  | SELECT pg_database_size(current_database())
null  | SELECT pg_database_size('acme')
null  | SELECT pg_database_size(oid) FROM pg_database
null  | SELECT pg_tablespace_size('pg_default')
null  | SELECT xact_commit, tup_returned, blks_read FROM pg_stat_database
null  | SELECT last_value FROM pg_sequences WHERE sequencename = 'orders_id_seq'
ok    | SELECT pg_relation_size('products')
ok    | SELECT reltuples FROM pg_class WHERE relname = 'products'
ok    | SELECT n_live_tup FROM pg_stat_user_tables WHERE relname = 'products'
42501 | SELECT * FROM pg_stats
42501 | SELECT most_common_vals::text FROM pg_stats WHERE tablename = 'pg_class' AND attname = 'relname'
42501 | SELECT histogram_bounds::text FROM pg_catalog.pg_stats WHERE tablename = 'big_facts'
42501 | SELECT * FROM pg_stats_ext
42501 | SELECT * FROM pg_statistic
42501 | SELECT * FROM pg_statistic_ext_data
# Other sessions are other tenants: only one's own exists, without its query
# text (the rewrite) or transaction ids (every tenant's writes count).
ok    | SELECT * FROM pg_stat_activity
empty | SELECT * FROM pg_stat_activity WHERE pid <> pg_backend_pid()
empty | SELECT * FROM pg_catalog.pg_stat_activity a WHERE a.datname <> current_database()
null  | SELECT query FROM pg_stat_activity
null  | SELECT query_id, backend_xid, backend_xmin FROM pg_stat_activity
null  | SELECT a.query FROM pg_stat_activity a JOIN pg_database d ON d.oid = a.datid
empty | SELECT 1 FROM pg_stat_activity WHERE query LIKE '%tenant%'
ok    | SELECT count(*) FROM pg_stat_activity WHERE datname = (SELECT datname FROM pg_database WHERE oid = (SELECT oid FROM pg_database WHERE datname = current_database()))
empty | SELECT x FROM pg_stat_activity, unnest(pg_blocking_pids(pid)) x
empty | SELECT x FROM unnest(pg_blocking_pids(1)) x
empty | SELECT x FROM unnest(pg_catalog.pg_safe_snapshot_blocking_pids(pg_backend_pid())) x
ok    | SELECT * FROM pg_locks
empty | SELECT * FROM pg_locks WHERE pid <> pg_backend_pid()
empty | SELECT * FROM pg_locks WHERE relation IS NOT NULL AND relation NOT IN (SELECT oid FROM pg_class)
null  | SELECT transactionid FROM pg_locks
empty | SELECT l.* FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE a.pid <> pg_backend_pid()
ok    | SELECT relation::regclass, classid::regclass, mode FROM pg_locks
err   | SELECT * FROM pg_stat_statements
null  | SELECT checkpoints_timed, buffers_alloc FROM pg_stat_bgwriter
null  | SELECT archived_count, last_archived_wal FROM pg_stat_archiver
null  | SELECT wal_records, wal_bytes FROM pg_stat_wal
null  | SELECT blks_hit, blks_read FROM pg_stat_slru
empty | SELECT * FROM pg_stat_replication
empty | SELECT * FROM pg_stat_wal_receiver
empty | SELECT * FROM pg_stat_subscription
empty | SELECT * FROM pg_stat_progress_vacuum
empty | SELECT * FROM pg_stat_progress_create_index
empty | SELECT * FROM pg_prepared_xacts
empty | SELECT * FROM pg_replication_slots
42883 | SELECT * FROM pg_stat_get_activity(NULL)
42883 | SELECT pg_stat_get_db_xact_commit(oid) FROM pg_database
42883 | SELECT pg_stat_get_backend_pid(1)
42883 | SELECT currval('orders_id_seq')
42P01 | SELECT last_value FROM orders_id_seq
42P01 | SELECT * FROM internal_notes_id_seq
any   | SELECT * FROM pg_stat_user_tables
any   | SELECT * FROM pg_statio_all_tables
any   | SELECT * FROM pg_stat_all_indexes
any   | SELECT * FROM pg_statio_all_indexes
any   | SELECT * FROM pg_statio_user_sequences
any   | SELECT * FROM pg_stat_database
any   | SELECT * FROM pg_stat_database_conflicts
any   | SELECT relname, reltuples, relpages FROM pg_class
any   | SELECT sum(reltuples) FROM pg_class
any   | SELECT sum(relpages) FROM pg_class
any   | SELECT sum(pg_relation_size(oid)) FROM pg_class
any   | SELECT sum(n_live_tup) FROM pg_stat_all_tables
any   | SELECT * FROM pg_stat_gssapi
any   | SELECT * FROM pg_stat_ssl

# --- databases and roles ---------------------------------------------------------
ok    | SELECT current_database()
ok    | SELECT current_catalog
ok    | SELECT datname FROM pg_database
any   | SELECT * FROM pg_database
any   | SELECT datname, datacl::text FROM pg_database WHERE datname <> 'acme'
empty | SELECT * FROM pg_database WHERE datname IN ('catshared', 'postgres', 'template1', 'catref_acme')
empty | SELECT * FROM pg_database WHERE oid = {{dbid}}
null  | SELECT has_database_privilege('catshared', 'CONNECT')
null  | SELECT has_database_privilege('postgres', 'CONNECT')
null  | SELECT has_database_privilege({{dbid}}, 'CONNECT')
ok    | SELECT has_database_privilege('acme', 'CONNECT')
ok    | SELECT has_database_privilege(current_database(), 'CONNECT')
null  | SELECT shobj_description({{dbid}}, 'pg_database')
any   | SELECT * FROM pg_shdescription
any   | SELECT * FROM pg_db_role_setting
any   | SELECT rolname FROM pg_roles
any   | SELECT * FROM pg_roles
any   | SELECT * FROM pg_user
any   | SELECT * FROM pg_auth_members
empty | SELECT * FROM pg_roles WHERE rolname IN ('postgres', 'reader', 'iso_writer')
empty | SELECT * FROM pg_roles WHERE oid = 10
empty | SELECT * FROM pg_roles WHERE rolsuper
null  | SELECT pg_get_userbyid(10)
null  | SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'customers'
null  | SELECT tableowner FROM pg_tables WHERE tablename = 'customers'
null  | SELECT to_regrole('postgres')
null  | SELECT 'postgres'::regrole
null  | SELECT 10::regrole
null  | SELECT has_table_privilege('postgres', 'customers', 'SELECT')
null  | SELECT has_table_privilege(10, 'customers', 'SELECT')
null  | SELECT pg_has_role('postgres', 'MEMBER')
null  | SELECT pg_has_role(10, 'USAGE')
ok    | SELECT has_table_privilege('public', 'customers', 'SELECT')
ok    | SELECT has_table_privilege(current_user, 'customers', 'SELECT')
ok    | SELECT pg_get_userbyid(oid) FROM pg_roles WHERE rolname = current_user
42501 | SELECT * FROM pg_authid
42501 | SELECT * FROM pg_shadow
42501 | SELECT * FROM pg_group
42501 | SELECT * FROM pg_hba_file_rules
42501 | SELECT * FROM pg_shdepend
any   | SELECT grantor, grantee FROM information_schema.role_table_grants
any   | SELECT array_to_string(relacl, ',') FROM pg_class WHERE relname = 'customers'
any   | SELECT (aclexplode(relacl)).grantor FROM pg_class WHERE relacl IS NOT NULL

# --- settings ------------------------------------------------------------------------
42501 | SELECT current_setting('data_directory')
42501 | SELECT current_setting('hba_file')
42501 | SELECT current_setting('config_file', true)
42501 | SHOW data_directory
42501 | SHOW hba_file
42501 | SHOW ident_file
42501 | SHOW listen_addresses
42501 | SHOW port
42501 | SHOW unix_socket_directories
42501 | SHOW shared_preload_libraries
null  | SELECT current_setting(x) FROM (VALUES ('data_directory')) v(x)
null  | SELECT current_setting(lower('DATA_DIRECTORY'))
empty | SELECT * FROM pg_settings WHERE name IN ('data_directory', 'hba_file', 'config_file', 'port', 'listen_addresses')
empty | SELECT * FROM pg_show_all_settings() s WHERE name = 'data_directory'
empty | SELECT name FROM pg_catalog.pg_show_all_settings() WHERE name ~ 'file$'
any   | SELECT string_agg(name || '=' || setting, ',') FROM pg_settings
any   | SHOW ALL
ok    | SELECT set_config('bytea_output', 'hex', false) FROM pg_show_all_settings() WHERE name = 'bytea_output'
ok    | SELECT current_setting('server_version_num')
ok    | SHOW search_path
42883 | SELECT pg_show_all_settings()
42883 | SELECT * FROM pg_file_settings_nope()
42501 | SELECT * FROM pg_file_settings
42501 | SELECT * FROM pg_config

# --- reserved names -------------------------------------------------------------------
42501 | WITH pgwarden_rel AS (SELECT oid AS o FROM pg_class) SELECT relname FROM pg_class
42501 | SELECT * FROM (WITH pgwarden_rel AS (SELECT 1) SELECT relname FROM pg_class) x
42501 | WITH RECURSIVE pgwarden_type(o) AS (SELECT 1::oid) SELECT typname FROM pg_type
42501 | SELECT relname FROM pg_class pgwarden_v
42501 | SELECT * FROM customers pgwarden_w
42501 | SELECT 1 FROM (SELECT 1) pgwarden_x
42P01 | SELECT * FROM pgwarden_rel
any   | SELECT pgwarden_arg FROM (SELECT 1 AS pgwarden_arg) x
any   | SELECT obj_description(pgwarden_arg, 'pg_class') FROM (SELECT {{relid}}::oid AS pgwarden_arg) x
