-- client: pgwarden's own corpus of BI-tool metadata statements, beyond ../shared/clients
-- Rendered by hand from the tools' public sources (Jinja/HoneySQL/Java string building
-- filled in for PostgreSQL 15 and this fixture: database acme, schema public, tables
-- customers / orders, index orders_customer_idx); {{dboid}} stands for the connected
-- database's OID as the tool would have read it from pg_database.
--   pgAdmin 4 (pgadmin-org/pgadmin4, web/pgadmin/...): dashboard/templates/dashboard/sql/
--     (dashboard_stats, 10_plus/activity, 9.6_plus/locks, prepared, config),
--     browser/.../tables/templates/tables/sql/12_plus/properties.sql, 16_plus/stats.sql,
--     default/coll_table_stats.sql; indexes/sql/default/nodes.sql, 15_plus/properties.sql,
--     11_plus/column_details.sql, 16_plus/stats.sql; foreign_key/sql/default/properties.sql;
--     triggers/sql/pg/10_plus/properties.sql; sequences/sql/default/nodes.sql,
--     15_plus/properties.sql, default/stats.sql; views/pg/default/sql/nodes.sql and the
--     9.3_plus properties.sql; functions/templates/procedure/pg/sql/11_plus/properties.sql.
--   DBeaver (dbeaver/dbeaver, plugins/org.jkiss.dbeaver.ext.postgresql/.../model/):
--     PostgreSchema.java (TableCache lookup and children, ConstraintCache by schema,
--     IndexCache by schema, ProceduresCache), PostgreTableBase statistics, PostgreViewBase
--     definition, PostgreSequence (pg_sequences), PostgreTrigger cache, PostgreDatabase
--     (extensions, languages, access methods, tablespaces, collations), session manager.
--   SQLAlchemy 2.0 (lib/sqlalchemy/dialects/postgresql/base.py): has_table, has_sequence,
--     get_sequence_names, get_materialized_view_names, get_view_definition, _load_enums,
--     _load_domains, get_multi_table_comment, server/initialize probes.
--   Metabase (src/metabase/driver/postgres.clj): extension probes, table privileges with
--     an expression relation argument, column comments, JSON field unfolding sample.
--   Grafana (grafana-postgresql-datasource): macro time-series and table pickers with
--     search_path schemas.
--   pgjdbc / psqlODBC / Npgsql: catalog calls their drivers build (getPseudoColumns,
--     getVersionColumns, getClientInfoProperties-style probes, SQLTables/SQLColumns
--     variants, SQLSpecialColumns, Npgsql's PostgresMinimalDatabaseInfo check).
-- Cases named with a '(hidden)' ask about internal_notes or the vault schema and must
-- answer as the reference (which has neither) answers.

-- case: pgAdmin dashboard: dashboard_stats (all charts, database)
/*pga4dash*/
SELECT 'session_stats' AS chart_name, row_to_json(t)::jsonb AS chart_data
FROM (SELECT
   (SELECT count(*) FROM pg_stat_activity WHERE datname = (SELECT datname FROM pg_database WHERE oid = {{dboid}})) AS "Total",
   (SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND datname = (SELECT datname FROM pg_database WHERE oid = {{dboid}}))  AS "Active",
   (SELECT count(*) FROM pg_stat_activity WHERE state = 'idle' AND datname = (SELECT datname FROM pg_database WHERE oid = {{dboid}}))  AS "Idle"
) t
UNION ALL
SELECT 'tps_stats' AS chart_name, row_to_json(t)::jsonb AS chart_data
FROM (SELECT
   (SELECT sum(xact_commit) + sum(xact_rollback) FROM pg_stat_database WHERE datname = (SELECT datname FROM pg_database WHERE oid = {{dboid}})) AS "Transactions",
   (SELECT sum(xact_commit) FROM pg_stat_database WHERE datname = (SELECT datname FROM pg_database WHERE oid = {{dboid}})) AS "Commits",
   (SELECT sum(xact_rollback) FROM pg_stat_database WHERE datname = (SELECT datname FROM pg_database WHERE oid = {{dboid}})) AS "Rollbacks"
) t
UNION ALL
SELECT 'ti_stats' AS chart_name, row_to_json(t)::jsonb AS chart_data
FROM (SELECT
   (SELECT sum(tup_inserted) FROM pg_stat_database WHERE datname = (SELECT datname FROM pg_database WHERE oid = {{dboid}})) AS "Inserts",
   (SELECT sum(tup_updated) FROM pg_stat_database WHERE datname = (SELECT datname FROM pg_database WHERE oid = {{dboid}})) AS "Updates",
   (SELECT sum(tup_deleted) FROM pg_stat_database WHERE datname = (SELECT datname FROM pg_database WHERE oid = {{dboid}})) AS "Deletes"
) t
UNION ALL
SELECT 'to_stats' AS chart_name, row_to_json(t)::jsonb AS chart_data
FROM (SELECT
   (SELECT sum(tup_fetched) FROM pg_stat_database WHERE datname = (SELECT datname FROM pg_database WHERE oid = {{dboid}})) AS "Fetched",
   (SELECT sum(tup_returned) FROM pg_stat_database WHERE datname = (SELECT datname FROM pg_database WHERE oid = {{dboid}})) AS "Returned"
) t
UNION ALL
SELECT 'bio_stats' AS chart_name, row_to_json(t)::jsonb AS chart_data
FROM (SELECT
   (SELECT sum(blks_read) FROM pg_stat_database WHERE datname = (SELECT datname FROM pg_database WHERE oid = {{dboid}})) AS "Reads",
   (SELECT sum(blks_hit) FROM pg_stat_database WHERE datname = (SELECT datname FROM pg_database WHERE oid = {{dboid}})) AS "Hits"
) t

-- case: pgAdmin dashboard: activity (sessions of the database)
/*pga4dash*/
SELECT
    pid,
    datname,
    usename,
    application_name,
    client_addr,
    to_char(backend_start, 'YYYY-MM-DD HH24:MI:SS TZ') AS backend_start,
    state,
    wait_event_type || ': ' || wait_event AS wait_event,
    pg_blocking_pids(pid) AS blocking_pids,
    query,
    to_char(state_change, 'YYYY-MM-DD HH24:MI:SS TZ') AS state_change,
    to_char(query_start, 'YYYY-MM-DD HH24:MI:SS TZ') AS query_start,
    backend_type
FROM
    pg_stat_activity
WHERE
    datname = (SELECT datname FROM pg_database WHERE oid = {{dboid}})
ORDER BY pid

-- case: pgAdmin dashboard: locks
SELECT
    pid,
    locktype,
    datname,
    relation::regclass,
    page,
    tuple,
    virtualxid
    transactionid,
    classid::regclass,
    objid,
    objsubid,
    virtualtransaction,
    mode,
    granted,
    fastpath
FROM
    pg_locks l
    LEFT OUTER JOIN pg_database d ON (l.database = d.oid)
WHERE
    datname = (SELECT datname FROM pg_database WHERE oid = {{dboid}})
ORDER BY
    pid, locktype

-- case: pgAdmin dashboard: prepared transactions
/*pga4dash*/
SELECT
    gid,
    database,
    owner,
    transaction,
    pg_catalog.to_char(prepared, 'YYYY-MM-DD HH24:MI:SS TZ') AS prepared
FROM
    pg_catalog.pg_prepared_xacts
WHERE
    database = (SELECT datname FROM pg_catalog.pg_database WHERE oid = {{dboid}})
ORDER BY
    gid, database, owner

-- case: pgAdmin dashboard: configuration (settings)
/*pga4dash*/
SELECT
    name,
    category,
    setting,
    unit,
    short_desc
FROM
    pg_catalog.pg_show_all_settings()
ORDER BY
    category

-- case: pgAdmin dashboard: replication slots
select * from pg_replication_slots

-- case: pgAdmin dashboard: replication stats
select * from pg_stat_replication

-- case: pgAdmin browser: table properties.sql (12_plus, customers)
SELECT rel.oid, rel.relname AS name, rel.reltablespace AS spcoid,rel.relacl AS relacl_str,
  (CASE WHEN length(spc.spcname::text) > 0 OR rel.relkind = 'p' THEN spc.spcname ELSE
    (SELECT sp.spcname FROM pg_database dtb
    JOIN pg_tablespace sp ON dtb.dattablespace=sp.oid
    WHERE dtb.oid = {{dboid}}::oid)
  END) as spcname,
  (select nspname FROM pg_namespace WHERE oid = {{nsoid:public}}::oid ) as schema,
  pg_get_userbyid(rel.relowner) AS relowner, rel.relkind,
  (CASE WHEN rel.relkind = 'p' THEN true ELSE false END) AS is_partitioned,
  rel.relhassubclass, rel.reltuples::bigint, des.description, con.conname, con.conkey,
	EXISTS(select 1 FROM pg_trigger
			JOIN pg_proc pt ON pt.oid=tgfoid AND pt.proname='logtrigger'
			JOIN pg_proc pc ON pc.pronamespace=pt.pronamespace AND pc.proname='slonyversion'
			WHERE tgrelid=rel.oid) AS isrepl,
	(SELECT count(*) FROM pg_trigger WHERE tgrelid=rel.oid AND tgisinternal = FALSE) AS triggercount,
	(SELECT ARRAY(SELECT CASE WHEN (nspname NOT LIKE 'pg\_%') THEN
            quote_ident(nspname)||'.'||quote_ident(c.relname)
            ELSE quote_ident(c.relname) END AS inherited_tables
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhparent
    JOIN pg_namespace n ON n.oid=c.relnamespace
    WHERE i.inhrelid = rel.oid ORDER BY inhseqno)) AS coll_inherits,
  (SELECT count(*)
		FROM pg_inherits i
      JOIN pg_class c ON c.oid = i.inhparent
      JOIN pg_namespace n ON n.oid=c.relnamespace
		WHERE i.inhrelid = rel.oid) AS inherited_tables_cnt,
	(CASE WHEN rel.relpersistence = 'u' THEN true ELSE false END) AS relpersistence,
	substring(array_to_string(rel.reloptions, ',') FROM 'fillfactor=([0-9]*)') AS fillfactor,
	substring(array_to_string(rel.reloptions, ',') FROM 'parallel_workers=([0-9]*)') AS parallel_workers,
	substring(array_to_string(rel.reloptions, ',') FROM 'toast_tuple_target=([0-9]*)') AS toast_tuple_target,
	(substring(array_to_string(rel.reloptions, ',') FROM 'autovacuum_enabled=([a-z|0-9]*)'))::BOOL AS autovacuum_enabled,
	substring(array_to_string(rel.reloptions, ',') FROM 'autovacuum_vacuum_threshold=([0-9]*)') AS autovacuum_vacuum_threshold,
	(substring(array_to_string(tst.reloptions, ',') FROM 'autovacuum_enabled=([a-z|0-9]*)'))::BOOL AS toast_autovacuum_enabled,
	rel.reloptions AS reloptions, tst.reloptions AS toast_reloptions, rel.reloftype,
	CASE WHEN typ.typname IS NOT NULL THEN (select quote_ident(nspname) FROM pg_namespace WHERE oid = {{nsoid:public}}::oid )||'.'||quote_ident(typ.typname) ELSE typ.typname END AS typname,
	typ.typrelid AS typoid, rel.relrowsecurity as rlspolicy, rel.relforcerowsecurity as forcerlspolicy,
	(CASE WHEN rel.reltoastrelid = 0 THEN false ELSE true END) AS hastoasttable,
	(SELECT array_agg(provider || '=' || label) FROM pg_seclabels sl1 WHERE sl1.objoid=rel.oid AND sl1.objsubid=0) AS seclabels,
	(CASE WHEN rel.oid <= 16383::oid THEN true ElSE false END) AS is_sys_table
    , (CASE WHEN rel.relkind = 'p' THEN pg_get_partkeydef({{oid:public.customers}}::oid) ELSE '' END) AS partition_scheme
FROM pg_class rel
  LEFT OUTER JOIN pg_tablespace spc on spc.oid=rel.reltablespace
  LEFT OUTER JOIN pg_description des ON (des.objoid=rel.oid AND des.objsubid=0 AND des.classoid='pg_class'::regclass)
  LEFT OUTER JOIN pg_constraint con ON con.conrelid=rel.oid AND con.contype='p'
  LEFT OUTER JOIN pg_class tst ON tst.oid = rel.reltoastrelid
  LEFT JOIN pg_type typ ON rel.reloftype=typ.oid
WHERE rel.relkind IN ('r','s','t','p') AND rel.relnamespace = {{nsoid:public}}::oid
AND NOT rel.relispartition
  AND rel.oid = {{oid:public.customers}}::oid
ORDER BY rel.relname;

-- case: pgAdmin browser: table properties.sql (12_plus, whole schema)
SELECT rel.oid, rel.relname AS name, pg_get_userbyid(rel.relowner) AS relowner, rel.relkind,
  rel.relhassubclass, rel.reltuples::bigint, des.description, con.conname, con.conkey,
  (SELECT count(*) FROM pg_trigger WHERE tgrelid=rel.oid AND tgisinternal = FALSE) AS triggercount,
  (CASE WHEN rel.reltoastrelid = 0 THEN false ELSE true END) AS hastoasttable
FROM pg_class rel
  LEFT OUTER JOIN pg_tablespace spc on spc.oid=rel.reltablespace
  LEFT OUTER JOIN pg_description des ON (des.objoid=rel.oid AND des.objsubid=0 AND des.classoid='pg_class'::regclass)
  LEFT OUTER JOIN pg_constraint con ON con.conrelid=rel.oid AND con.contype='p'
  LEFT OUTER JOIN pg_class tst ON tst.oid = rel.reltoastrelid
  LEFT JOIN pg_type typ ON rel.reloftype=typ.oid
WHERE rel.relkind IN ('r','s','t','p') AND rel.relnamespace = {{nsoid:public}}::oid
AND NOT rel.relispartition
ORDER BY rel.relname;

-- case: pgAdmin browser: table statistics (16_plus stats.sql, orders)
SELECT
    seq_scan AS "Sequential scans",
    seq_tup_read AS "Sequential tuples read",
    idx_scan AS "Index scans",
    idx_tup_fetch AS "Index tuples fetched",
    n_tup_ins AS "Tuples inserted",
    n_tup_upd AS "Tuples updated",
    n_tup_del AS "Tuples deleted",
    n_tup_hot_upd AS "Tuples HOT updated",
    n_live_tup AS "Live tuples",
    n_dead_tup AS "Dead tuples",
    heap_blks_read AS "Heap blocks read",
    heap_blks_hit AS "Heap blocks hit",
    idx_blks_read AS "Index blocks read",
    idx_blks_hit AS "Index blocks hit",
    toast_blks_read AS "Toast blocks read",
    toast_blks_hit AS "Toast blocks hit",
    tidx_blks_read AS "Toast index blocks read",
    tidx_blks_hit AS "Toast index blocks hit",
    last_vacuum AS "Last vacuum",
    last_autovacuum AS "Last autovacuum",
    last_analyze AS "Last analyze",
    last_autoanalyze AS "Last autoanalyze",
    pg_catalog.pg_relation_size(stat.relid) AS "Table size",
    CASE WHEN cl.reltoastrelid = 0 THEN NULL ELSE pg_catalog.pg_size_pretty(pg_catalog.pg_relation_size(cl.reltoastrelid)
        + COALESCE((SELECT SUM(pg_catalog.pg_relation_size(indexrelid))
                        FROM pg_catalog.pg_index WHERE indrelid=cl.reltoastrelid)::int8, 0))
        END AS "Toast table size",
    COALESCE((SELECT SUM(pg_catalog.pg_relation_size(indexrelid))
                                FROM pg_catalog.pg_index WHERE indrelid=stat.relid)::int8, 0)
        AS "Indexes size"
FROM
    pg_catalog.pg_stat_all_tables stat
JOIN
    pg_catalog.pg_statio_all_tables statio ON stat.relid = statio.relid
JOIN
    pg_catalog.pg_class cl ON cl.oid=stat.relid
WHERE
    stat.relid = {{oid:public.orders}}::oid

-- case: pgAdmin browser: tables collection statistics (coll_table_stats.sql)
SELECT
    st.relname AS "Table name",
    pg_catalog.pg_relation_size(st.relid)
        + CASE WHEN cl.reltoastrelid = 0 THEN 0 ELSE pg_catalog.pg_relation_size(cl.reltoastrelid)
        + COALESCE((SELECT SUM(pg_catalog.pg_relation_size(indexrelid))
                        FROM pg_catalog.pg_index WHERE indrelid=cl.reltoastrelid)::int8, 0) END
        + COALESCE((SELECT SUM(pg_catalog.pg_relation_size(indexrelid))
                        FROM pg_catalog.pg_index WHERE indrelid=st.relid)::int8, 0) AS "Total Size",
    n_tup_ins AS "Tuples inserted",
    n_tup_upd AS "Tuples updated",
    n_tup_del AS "Tuples deleted",
    n_tup_hot_upd AS "Tuples HOT updated",
    n_live_tup AS "Live tuples",
    n_dead_tup AS "Dead tuples",
    last_vacuum AS "Last vacuum",
    last_autovacuum AS "Last autovacuum",
    last_analyze AS "Last analyze",
    last_autoanalyze AS "Last autoanalyze",
    vacuum_count AS "Vacuum counter",
    autovacuum_count AS "Autovacuum counter",
    analyze_count AS "Analyze counter",
    autoanalyze_count AS "Autoanalyze counter"
FROM
    pg_catalog.pg_stat_all_tables st
JOIN
    pg_catalog.pg_class cl on cl.oid=st.relid and cl.relkind IN ('r','s','t','p')
WHERE
    schemaname = 'public'
ORDER BY st.relname;

-- case: pgAdmin browser: indexes nodes.sql (orders)
SELECT DISTINCT ON(cls.relname) cls.oid, cls.relname as name,
(SELECT (CASE WHEN count(i.inhrelid) > 0 THEN true ELSE false END) FROM pg_inherits i WHERE i.inhrelid = cls.oid) as is_inherited
FROM pg_catalog.pg_index idx
    JOIN pg_catalog.pg_class cls ON cls.oid=indexrelid
    JOIN pg_catalog.pg_class tab ON tab.oid=indrelid
    LEFT OUTER JOIN pg_catalog.pg_tablespace ta on ta.oid=cls.reltablespace
    JOIN pg_catalog.pg_namespace n ON n.oid=tab.relnamespace
    JOIN pg_catalog.pg_am am ON am.oid=cls.relam
    LEFT JOIN pg_catalog.pg_depend dep ON (dep.classid = cls.tableoid AND dep.objid = cls.oid AND dep.refobjsubid = '0' AND dep.refclassid=(SELECT oid FROM pg_catalog.pg_class WHERE relname='pg_constraint') AND dep.deptype='i')
    LEFT OUTER JOIN pg_catalog.pg_constraint con ON (con.tableoid = dep.refclassid AND con.oid = dep.refobjid)
WHERE indrelid = {{oid:public.orders}}::OID
    AND conname is NULL
    ORDER BY cls.relname

-- case: pgAdmin browser: index properties.sql (15_plus, orders_customer_idx)
SELECT DISTINCT ON (cls.relname)
  cls.oid,
  cls.relname AS name,
  idx.indrelid,
  idx.indkey,
  idx.indisclustered,
  idx.indisvalid,
  idx.indisunique,
  idx.indisprimary,
  n.nspname,
  idx.indnatts,
  COALESCE(cls.reltablespace, 0) AS spcoid,
  idx.indnullsnotdistinct,
  COALESCE(
    CASE
          WHEN (cls.reltablespace <> 0 OR cls.relkind = 'I') THEN ta.spcname
          ELSE (
              SELECT sp.spcname
              FROM pg_catalog.pg_database dtb
              JOIN pg_catalog.pg_tablespace sp ON dtb.dattablespace = sp.oid
              WHERE dtb.oid = {{dboid}}::oid
              LIMIT 1
          )
      END, 'pg_default'
  ) AS spcname,
  con.conname,
  tab.relname AS tabname,
  idx.indclass,
  con.oid AS conoid,
  CASE
      WHEN con.contype IN ('p', 'u', 'x') THEN desp.description
      ELSE des.description
  END AS description,
  pg_catalog.pg_get_expr(idx.indpred, idx.indrelid, true) AS indconstraint,
  con.contype,
  con.condeferrable,
  con.condeferred,
  am.amname,
  EXISTS (
      SELECT 1 FROM pg_inherits inh WHERE inh.inhrelid = cls.oid
  ) AS is_inherited,
    COALESCE(
        substring(array_to_string(cls.reloptions, ',') FROM 'fillfactor=([0-9]*)')::int,
        CASE am.amname
            WHEN 'btree' THEN 100
            WHEN 'gist' THEN 90
            ELSE NULL
        END
    ) AS fillfactor,
    COALESCE(
        CASE am.amname
            WHEN 'btree' THEN substring(array_to_string(cls.reloptions, ',') FROM 'deduplicate_items=([a-z]*)')::boolean
            ELSE NULL
        END,
        CASE am.amname WHEN 'btree' THEN TRUE ELSE NULL END
    ) AS deduplicate_items
        , (cls.oid <= 16383::oid) AS is_sys_idx
FROM pg_catalog.pg_index idx
    JOIN pg_catalog.pg_class cls ON cls.oid = idx.indexrelid
    JOIN pg_catalog.pg_class tab ON tab.oid = idx.indrelid
    LEFT JOIN pg_catalog.pg_tablespace ta ON ta.oid = cls.reltablespace
    JOIN pg_catalog.pg_namespace n ON n.oid = tab.relnamespace
    JOIN pg_catalog.pg_am am ON am.oid = cls.relam
    LEFT JOIN pg_catalog.pg_depend dep ON dep.classid = cls.tableoid
        AND dep.objid = cls.oid
        AND dep.refobjsubid = 0
        AND dep.refclassid = (SELECT oid FROM pg_catalog.pg_class WHERE relname = 'pg_constraint')
        AND dep.deptype = 'i'
    LEFT JOIN pg_catalog.pg_constraint con ON con.tableoid = dep.refclassid AND con.oid = dep.refobjid
    LEFT JOIN pg_catalog.pg_description des ON des.objoid = cls.oid AND des.classoid = 'pg_class'::regclass
    LEFT JOIN pg_catalog.pg_description desp ON desp.objoid = con.oid AND desp.objsubid = 0 AND desp.classoid = 'pg_constraint'::regclass
WHERE idx.indrelid = {{oid:public.orders}}::OID
    AND con.conname IS NULL
    AND cls.oid = {{oid:public.orders_customer_idx}}::OID
ORDER BY cls.relname;

-- case: pgAdmin browser: index column_details.sql (11_plus)
SELECT
    i.indexrelid,
    CASE i.indoption[i.attnum - 1]
    WHEN 0 THEN ARRAY['ASC', 'NULLS LAST']
    WHEN 1 THEN ARRAY['DESC', 'NULLS LAST']
    WHEN 2 THEN ARRAY['ASC', 'NULLS FIRST']
    WHEN 3 THEN ARRAY['DESC', 'NULLS FIRST']
    ELSE ARRAY['UNKNOWN OPTION' || i.indoption[i.attnum - 1]::text, '']
    END::text[] AS options,
    i.attnum,
    pg_get_indexdef(i.indexrelid, i.attnum, true) as attdef,
    CASE WHEN (o.opcdefault = FALSE) THEN o.opcname ELSE null END AS opcname,
    op.oprname AS oprname,
	CASE WHEN length(nspc.nspname) > 0 AND length(coll.collname) > 0  THEN
	  concat(quote_ident(nspc.nspname), '.', quote_ident(coll.collname))
	ELSE '' END AS collnspname
FROM (
      SELECT
          indexrelid, i.indoption, i.indclass,
          unnest(ARRAY(SELECT generate_series(1, i.indnkeyatts) AS n)) AS attnum
      FROM
          pg_index i
      WHERE i.indexrelid = {{oid:public.orders_status_id_idx}}::OID
) i
    LEFT JOIN pg_opclass o ON (o.oid = i.indclass[i.attnum - 1])
    LEFT OUTER JOIN pg_constraint c ON (c.conindid = i.indexrelid)
    LEFT OUTER JOIN pg_operator op ON (op.oid = c.conexclop[i.attnum])
    LEFT JOIN pg_attribute a ON (a.attrelid = i.indexrelid AND a.attnum = i.attnum)
    LEFT OUTER JOIN pg_collation coll ON a.attcollation=coll.oid
    LEFT OUTER JOIN pg_namespace nspc ON coll.collnamespace=nspc.oid
ORDER BY i.attnum;

-- case: pgAdmin browser: index statistics (16_plus stats.sql)
SELECT
    idx_scan AS "Index scans",
    idx_tup_read AS "Index tuples read",
    idx_tup_fetch AS "Index tuples fetched",
    idx_blks_read AS "Index blocks read",
    idx_blks_hit AS "Index blocks hit",
    pg_catalog.pg_relation_size({{oid:public.orders_customer_idx}}::OID) AS "Index size",
    last_idx_scan AS "Last index scan"
FROM
    pg_catalog.pg_stat_all_indexes stat
    JOIN pg_catalog.pg_statio_all_indexes statio ON stat.indexrelid = statio.indexrelid
    JOIN pg_catalog.pg_class cl ON cl.oid=stat.indexrelid
    WHERE stat.indexrelid = {{oid:public.orders_customer_idx}}::OID

-- case: pgAdmin browser: foreign key properties.sql (orders)
SELECT
      convalidated,
      ct.oid,
      conname as name,
      condeferrable,
      condeferred,
      confupdtype,
      confdeltype,
      CASE confmatchtype
        WHEN 's' THEN FALSE
        WHEN 'f' THEN TRUE
      END AS confmatchtype,
      conkey,
      confkey,
      confrelid,
      nl.nspname as fknsp,
      cl.relname as fktab,
      nr.nspname as refnsp,
      cr.relname as reftab,
      description as comment
FROM pg_constraint ct
JOIN pg_class cl ON cl.oid=conrelid
JOIN pg_namespace nl ON nl.oid=cl.relnamespace
JOIN pg_class cr ON cr.oid=confrelid
JOIN pg_namespace nr ON nr.oid=cr.relnamespace
LEFT OUTER JOIN pg_description des ON (des.objoid=ct.oid AND des.classoid='pg_constraint'::regclass)
WHERE contype='f' AND
conrelid = {{oid:public.orders}}::oid
ORDER BY conname

-- case: pgAdmin browser: foreign keys referencing customers (a hidden table's key must not show)
SELECT ct.conname, cl.relname AS fktab, cr.relname AS reftab
FROM pg_constraint ct
JOIN pg_class cl ON cl.oid=conrelid
JOIN pg_class cr ON cr.oid=confrelid
WHERE contype='f' AND confrelid = {{oid:public.customers}}::oid
ORDER BY conname

-- case: pgAdmin browser: trigger properties.sql (10_plus, customers)
SELECT t.oid,t.tgname AS name, t.xmin, t.*, relname, CASE WHEN relkind = 'r' THEN TRUE ELSE FALSE END AS parentistable,
    nspname, des.description, l.lanname, p.prosrc, p.proname AS tfunction,
    COALESCE(substring(pg_get_triggerdef(t.oid), 'WHEN (.*) EXECUTE PROCEDURE'),
    substring(pg_get_triggerdef(t.oid), 'WHEN (.*)  \$trigger')) AS whenclause,
    (string_to_array(encode(tgargs, 'escape'), E'\\000')::text[])[1:tgnargs] AS custom_tgargs,
    (CASE WHEN t.oid <= 16383::oid THEN true ElSE false END) AS is_sys_trigger,
    (CASE WHEN tgconstraint != 0::OID THEN true ElSE false END) AS is_constraint_trigger,
    (CASE WHEN tgenabled = 'O' THEN true ElSE false END) AS is_enable_trigger,
    tgoldtable,
    tgnewtable
FROM pg_trigger t
    JOIN pg_class cl ON cl.oid=tgrelid
    JOIN pg_namespace na ON na.oid=relnamespace
    LEFT OUTER JOIN pg_description des ON (des.objoid=t.oid AND des.classoid='pg_trigger'::regclass)
    LEFT OUTER JOIN pg_proc p ON p.oid=t.tgfoid
    LEFT OUTER JOIN pg_language l ON l.oid=p.prolang
WHERE NOT tgisinternal
    AND tgrelid = {{oid:public.customers}}::OID
ORDER BY tgname;

-- case: pgAdmin browser: every user trigger of the database (hidden note_trigger must not show)
SELECT t.tgname, cl.relname, p.proname FROM pg_trigger t JOIN pg_class cl ON cl.oid = t.tgrelid
LEFT JOIN pg_proc p ON p.oid = t.tgfoid WHERE NOT t.tgisinternal ORDER BY 1

-- case: pgAdmin browser: sequences nodes.sql (schema public)
SELECT cl.oid as oid, relname as name, relnamespace as schema, description as comment
FROM pg_catalog.pg_class cl
LEFT OUTER JOIN pg_catalog.pg_description des ON (des.objoid=cl.oid
    AND des.classoid='pg_class'::regclass)
WHERE
    relkind = 'S'
    AND relnamespace = '{{nsoid:public}}'::oid
ORDER BY relname

-- case: pgAdmin browser: sequence properties.sql (15_plus, schema public)
SELECT
    cl.oid as oid,
    cl.relname as name,
    nsp.nspname as schema,
    pg_catalog.pg_get_userbyid(cl.relowner) AS seqowner,
    description as comment,
    pg_catalog.array_to_string(cl.relacl::text[], ', ') as acl,
    (SELECT pg_catalog.array_agg(provider || '=' || label) FROM pg_catalog.pg_seclabels sl1 WHERE sl1.objoid=cl.oid) AS securities,
    depcl.relname AS owned_table,
    att.attname AS owned_column,
    (CASE WHEN cl.relpersistence = 'u' THEN true ELSE false END) AS relpersistence
FROM pg_catalog.pg_class cl
    LEFT OUTER JOIN pg_catalog.pg_namespace nsp ON cl.relnamespace = nsp.oid
    LEFT OUTER JOIN pg_catalog.pg_description des ON (des.objoid=cl.oid
        AND des.classoid='pg_class'::regclass)
	LEFT OUTER JOIN pg_catalog.pg_depend dep ON (dep.objid=cl.oid and deptype = 'a')
	LEFT JOIN pg_catalog.pg_attribute att ON dep.refobjid=att.attrelid AND dep.refobjsubid=att.attnum
	LEFT JOIN pg_catalog.pg_class depcl ON depcl.oid = att.attrelid
WHERE cl.relkind = 'S' AND cl.relnamespace  = {{nsoid:public}}::oid
ORDER BY cl.relname

-- case: pgAdmin browser: sequence statistics (orders_id_seq)
SELECT
    blks_read AS "Blocks read",
    blks_hit AS "Blocks hit"
FROM
    pg_catalog.pg_statio_all_sequences
WHERE
    relid = {{oid:public.orders_id_seq}}::OID

-- case: pgAdmin browser: views nodes.sql (schema public)
SELECT
    c.oid,
    c.relname AS name
FROM pg_catalog.pg_class c
WHERE
  c.relkind = 'v'
    AND c.relnamespace = {{nsoid:public}}::oid
ORDER BY
    c.relname

-- case: pgAdmin browser: view properties.sql (schema public)
SELECT
    c.oid,
    c.xmin,
    c.relkind,
    description AS comment,
    (CASE WHEN length(spc.spcname::text) > 0 THEN spc.spcname ELSE 'pg_default' END) as spcname,
    c.relname AS name,
    nsp.nspname AS schema,
    c.reltablespace AS spcoid,
    c.relispopulated AS ispopulated,
    pg_catalog.pg_get_userbyid(c.relowner) AS owner,
    pg_catalog.array_to_string(c.relacl::text[], ', ') AS acl,
    pg_catalog.pg_get_viewdef(c.oid) AS definition,
    (SELECT
        pg_catalog.array_agg(provider || '=' || label)
     FROM
        pg_catalog.pg_seclabels sl1
     WHERE
        sl1.objoid=c.oid AND sl1.objsubid=0
    ) AS seclabels,
    (substring(pg_catalog.array_to_string(c.reloptions, ',')
        FROM 'security_barrier=([a-z|0-9]*)'))::boolean AS security_barrier
FROM pg_class c
LEFT OUTER JOIN pg_catalog.pg_namespace nsp on nsp.oid = c.relnamespace
LEFT OUTER JOIN pg_catalog.pg_tablespace spc on spc.oid=c.reltablespace
LEFT OUTER JOIN pg_catalog.pg_description des ON (des.objoid=c.oid and des.objsubid=0 AND des.classoid='pg_class'::regclass)
    WHERE ((c.relhasrules AND (EXISTS (
        SELECT
            r.rulename
        FROM
            pg_catalog.pg_rewrite r
        WHERE
            ((r.ev_class = c.oid)
                AND (pg_catalog.bpchar(r.ev_type) = '1'::bpchar)) )))
            AND (c.relkind = 'v'::char)
          )
    AND c.relnamespace = {{nsoid:public}}::oid
ORDER BY
    c.relname

-- case: pgAdmin browser: procedure properties.sql (11_plus, schema public)
SELECT
    pr.oid, pr.xmin, pr.*, pr.prosrc AS prosrc_c,
    pr.proname AS name, pg_get_function_result(pr.oid) AS prorettypename,
    typns.nspname AS typnsp, lanname, proargnames, oidvectortypes(proargtypes) AS proargtypenames,
    pg_get_expr(proargdefaults, 'pg_catalog.pg_class'::regclass) AS proargdefaultvals,
    pronargdefaults, proconfig, pg_get_userbyid(proowner) AS funcowner, description,
    (CASE WHEN
        pg_catalog.pg_get_function_identity_arguments(pr.oid) <> ''
    THEN
        pr.proname || '(' || pg_catalog.pg_get_function_identity_arguments(pr.oid) || ')'
    ELSE
        pr.proname
    END) AS name_with_args,
    (SELECT
        array_agg(provider || '=' || label)
    FROM
        pg_seclabel sl1
    WHERE
        sl1.objoid=pr.oid) AS seclabels
FROM
    pg_proc pr
JOIN
    pg_type typ ON typ.oid=prorettype
JOIN
    pg_namespace typns ON typns.oid=typ.typnamespace
JOIN
    pg_language lng ON lng.oid=prolang
LEFT OUTER JOIN
    pg_description des ON (des.objoid=pr.oid AND des.classoid='pg_proc'::regclass)
WHERE
    pr.prokind = 'p'
    AND typname NOT IN ('trigger', 'event_trigger')
    AND pronamespace = {{nsoid:public}}::oid
ORDER BY
    proname;

-- case: pgAdmin browser: trigger functions of schema public (hidden note_checker must not show)
SELECT pr.oid, pr.proname || '(' || COALESCE(pg_catalog.pg_get_function_identity_arguments(pr.oid), '') || ')' AS name,
    lanname, pg_get_userbyid(proowner) AS funcowner, description
FROM pg_catalog.pg_proc pr
JOIN pg_catalog.pg_type typ ON typ.oid=prorettype
JOIN pg_catalog.pg_language lng ON lng.oid=prolang
LEFT OUTER JOIN pg_catalog.pg_description des ON (des.objoid=pr.oid AND des.classoid='pg_proc'::regclass)
WHERE pr.prokind IN ('f', 'w') AND typname IN ('trigger', 'event_trigger')
AND pronamespace = {{nsoid:public}}::oid
ORDER BY proname

-- case: pgAdmin browser: types of schema public (the hidden table's row type must not show)
SELECT t.oid, t.typname AS name, format_type(t.oid, NULL) AS alias, pg_get_userbyid(t.typowner) AS typeowner,
    e.typname AS element, description, ct.oid AS taboid, nsp.nspname AS schema,
    (CASE WHEN (t.typcollation != 0) THEN TRUE ELSE FALSE END) AS is_collatable
FROM pg_type t
    LEFT OUTER JOIN pg_type e ON e.oid=t.typelem
    LEFT OUTER JOIN pg_class ct ON ct.oid=t.typrelid AND ct.relkind <> 'c'
    LEFT OUTER JOIN pg_description des ON (des.objoid=t.oid AND des.classoid='pg_type'::regclass)
    LEFT OUTER JOIN pg_namespace nsp ON nsp.oid = t.typnamespace
WHERE t.typtype != 'd' AND t.typname NOT LIKE E'\\_%' AND t.typnamespace = {{nsoid:public}}::oid
    AND ct.oid is NULL
ORDER BY t.typname;

-- case: pgAdmin browser: schemas properties (not the hidden vault schema)
SELECT
    nsp.oid,
    nsp.nspname AS name,
    pg_catalog.pg_get_userbyid(nsp.nspowner) AS namespaceowner,
    nsp.nspacl,
    pg_catalog.obj_description(nsp.oid, 'pg_namespace') AS description,
    pg_catalog.has_schema_privilege(nsp.oid, 'CREATE') AS can_create,
    (SELECT pg_catalog.array_agg(provider || '=' || label) FROM pg_catalog.pg_seclabels sl1 WHERE sl1.objoid=nsp.oid) AS seclabels
FROM
    pg_catalog.pg_namespace nsp
WHERE
    nsp.nspname NOT LIKE 'pg\_%' AND nsp.nspname <> 'information_schema'
ORDER BY 1, nsp.nspname;

-- case: pgAdmin browser: database properties
SELECT db.oid AS did, db.datname AS name, ta.spcname AS spcname, db.datallowconn,
    pg_catalog.has_database_privilege(db.oid, 'CREATE') AS cancreate,
    pg_catalog.pg_get_userbyid(db.datdba) AS datowner, db.datistemplate AS is_template,
    pg_catalog.pg_encoding_to_char(db.encoding) AS encoding, db.datcollate, db.datctype,
    db.datconnlimit, pg_catalog.shobj_description(db.oid, 'pg_database') AS comments
FROM pg_catalog.pg_database db
    LEFT OUTER JOIN pg_catalog.pg_tablespace ta ON db.dattablespace = ta.oid
WHERE db.oid = {{dboid}}::OID

-- case: pgAdmin browser: extensions nodes
SELECT x.oid, pg_catalog.pg_get_userbyid(extowner) AS owner, x.extname AS name, n.nspname AS schema,
    x.extrelocatable AS relocatable, x.extversion AS version, e.comment
FROM pg_catalog.pg_extension x
    LEFT JOIN pg_catalog.pg_namespace n ON x.extnamespace=n.oid
    JOIN pg_catalog.pg_available_extensions() e(name, default_version, comment) ON x.extname=e.name
ORDER BY x.extname

-- case: pgAdmin browser: roles of the server (login roles)
SELECT r.oid, r.rolname, r.rolcanlogin, r.rolsuper,
    pg_catalog.shobj_description(r.oid, 'pg_authid') AS description
FROM pg_catalog.pg_roles r ORDER BY r.rolcanlogin, r.rolname

-- case: pgAdmin query tool: table's primary key for View Data
SELECT at.attname, at.attnum, ty.typname
FROM pg_catalog.pg_attribute at LEFT JOIN pg_catalog.pg_type ty ON (ty.oid = at.atttypid)
WHERE attrelid={{oid:public.customers}}::oid AND attnum = ANY (
    (SELECT con.conkey FROM pg_catalog.pg_class rel LEFT OUTER JOIN pg_catalog.pg_constraint con ON con.conrelid=rel.oid
    AND con.contype='p' WHERE rel.relkind IN ('r','s','t', 'p') AND rel.oid = {{oid:public.customers}}::oid)::oid[])

-- case: pgAdmin query tool: hidden table's columns by OID guess (hidden)
SELECT at.attname, at.attnum FROM pg_catalog.pg_attribute at
WHERE attrelid = (SELECT oid FROM pg_catalog.pg_class WHERE relname = 'internal_notes') AND attnum > 0

-- case: DBeaver TableCache: lookup statement (no name)
SELECT c.oid,c.*,d.description,(select array_agg(i.inhparent) from pg_catalog.pg_inherits i where i.inhrelid = c.oid) parents
FROM pg_catalog.pg_class c
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0
WHERE c.relnamespace={{nsoid:public}} AND c.relkind not in ('i','c')

-- case: DBeaver TableCache: lookup hidden table by name (hidden)
SELECT c.oid,c.*,d.description
FROM pg_catalog.pg_class c
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0
WHERE c.relnamespace={{nsoid:public}} AND c.relkind not in ('i','c') AND relname='internal_notes'

-- case: DBeaver TableCache: children of schema public
SELECT c.relname,a.*,pg_catalog.pg_get_expr(ad.adbin, ad.adrelid, true) as def_value,dsc.description
FROM pg_catalog.pg_attribute a
INNER JOIN pg_catalog.pg_class c ON (a.attrelid=c.oid)
LEFT OUTER JOIN pg_catalog.pg_attrdef ad ON (a.attrelid=ad.adrelid AND a.attnum = ad.adnum)
LEFT OUTER JOIN pg_catalog.pg_description dsc ON (c.oid=dsc.objoid AND a.attnum = dsc.objsubid)
WHERE NOT a.attisdropped AND c.relnamespace={{nsoid:public}} AND c.relkind not in ('i','c')  ORDER BY a.attnum

-- case: DBeaver ConstraintCache: constraints by schema
SELECT c.oid,c.*,t.relname as tabrelname,rt.relnamespace as refnamespace
FROM pg_catalog.pg_constraint c
INNER JOIN pg_catalog.pg_class t ON t.oid=c.conrelid
LEFT OUTER JOIN pg_catalog.pg_class rt ON rt.oid=c.confrelid
WHERE t.relnamespace={{nsoid:public}}
ORDER BY c.oid

-- case: DBeaver IndexCache: indexes by schema
SELECT i.*,i.indkey as keys,c.relname,c.relnamespace,c.relam,tc.relname as tabrelname,dsc.description,pg_catalog.pg_get_expr(i.indexprs, i.indrelid, true) as expr
FROM pg_catalog.pg_index i
INNER JOIN pg_catalog.pg_class c ON c.oid=i.indexrelid
INNER JOIN pg_catalog.pg_class tc ON tc.oid=i.indrelid
LEFT OUTER JOIN pg_catalog.pg_description dsc ON i.indexrelid=dsc.objoid
WHERE  c.relnamespace={{nsoid:public}} ORDER BY c.relname

-- case: DBeaver ProceduresCache: procedures of schema public
SELECT p.oid,p.*,d.description
FROM pg_catalog.pg_proc p
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=p.oid
WHERE p.pronamespace={{nsoid:public}}
ORDER BY p.proname

-- case: DBeaver PostgreTableBase: table statistics (sizes)
select pg_catalog.pg_total_relation_size({{oid:public.orders}}) as total_rel_size, pg_catalog.pg_relation_size({{oid:public.orders}}) as rel_size

-- case: DBeaver PostgreTableBase: statistics of an index (pg_relation_size of an index)
SELECT pg_catalog.pg_relation_size({{oid:public.orders_customer_idx}})

-- case: DBeaver PostgreTableBase: row count estimate
select c.reltuples from pg_catalog.pg_class c where c.oid = {{oid:public.orders}}

-- case: DBeaver PostgreViewBase: view definition
select pg_catalog.pg_get_viewdef({{oid:public.customer_regions}}, true)

-- case: DBeaver PostgreViewBase: hidden view definition by OID guess (hidden)
select pg_catalog.pg_get_viewdef((SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relname = 'notes_view'), true)

-- case: DBeaver PostgreSequence: pg_sequences by name
SELECT * from pg_catalog.pg_sequences WHERE schemaname='public' AND sequencename='orders_id_seq'

-- case: DBeaver PostgreSequence: the hidden table's sequence (hidden)
SELECT * from pg_catalog.pg_sequences WHERE schemaname='public' AND sequencename='internal_notes_id_seq'

-- case: DBeaver PostgreSequence: pg_sequence joined with pg_class
SELECT c.relname, s.seqtypid::regtype, s.seqstart, s.seqincrement, s.seqmax, s.seqmin, s.seqcache, s.seqcycle
FROM pg_catalog.pg_sequence s JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid
WHERE c.relnamespace = {{nsoid:public}} ORDER BY 1

-- case: DBeaver TriggerCache: triggers of customers
SELECT x.oid,x.*,p.pronamespace as func_schema_id,d.description
FROM pg_catalog.pg_trigger x
LEFT OUTER JOIN pg_catalog.pg_proc p ON p.oid=x.tgfoid
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=x.oid
WHERE x.tgrelid={{oid:public.customers}} AND NOT x.tgisinternal

-- case: DBeaver ExtensionCache: extensions
SELECT e.oid, cfg.tbls, n.nspname as schema_name, e.*
FROM pg_catalog.pg_extension e
join pg_namespace n on n.oid =e.extnamespace
left join (
    select x.ext_oid, array_agg(x.tbl) as tbls from (
        select e.oid as ext_oid, unnest(e.extconfig) as tbl from pg_catalog.pg_extension e
    ) x group by x.ext_oid
) cfg on cfg.ext_oid = e.oid
ORDER BY e.oid

-- case: DBeaver LanguageCache / AccessMethodCache / CollationCache
SELECT l.oid,l.* FROM pg_catalog.pg_language l ORDER BY l.oid
-- next
SELECT am.oid,am.* FROM pg_catalog.pg_am am ORDER BY am.oid
-- next
SELECT c.oid,c.* FROM pg_catalog.pg_collation c WHERE c.collnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'pg_catalog') ORDER BY c.oid LIMIT 20

-- case: DBeaver TablespaceCache
SELECT t.oid,t.*,pg_catalog.pg_tablespace_location(t.oid) loc
FROM pg_catalog.pg_tablespace t ORDER BY t.oid

-- case: DBeaver EventTriggerCache / ForeignDataWrapperCache / ForeignServerCache
SELECT e.oid,e.* FROM pg_catalog.pg_event_trigger e ORDER BY e.evtname
-- next
SELECT l.oid,l.*,p.pronamespace as handler_schema_id FROM pg_catalog.pg_foreign_data_wrapper l
LEFT OUTER JOIN pg_catalog.pg_proc p ON p.oid=l.fdwhandler ORDER BY l.fdwname
-- next
SELECT l.oid,l.* FROM pg_catalog.pg_foreign_server l ORDER BY l.srvname

-- case: DBeaver session manager: sessions
SELECT sa.* FROM pg_catalog.pg_stat_activity sa WHERE datname = current_database() ORDER BY sa.pid

-- case: DBeaver lock manager: locks with their sessions
SELECT l.locktype, l.relation::regclass AS relation, l.mode, l.granted, a.usename, a.application_name
FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
WHERE l.pid = pg_catalog.pg_backend_pid() AND l.relation = {{oid:public.orders}}

-- case: DBeaver dependencies: objects depending on customers
SELECT DISTINCT dep.deptype, dep.classid::regclass AS classid, cl.relname, cl.relkind
FROM pg_catalog.pg_depend dep
JOIN pg_catalog.pg_rewrite rw ON dep.classid = 'pg_catalog.pg_rewrite'::regclass AND dep.objid = rw.oid
JOIN pg_catalog.pg_class cl ON cl.oid = rw.ev_class
WHERE dep.refobjid = {{oid:public.customers}} AND dep.refclassid = 'pg_catalog.pg_class'::regclass
ORDER BY cl.relname

-- case: SQLAlchemy 2.0: has_table(customers)
-- protocol: extended
-- params: ["customers"]
SELECT pg_catalog.pg_class.relname
FROM pg_catalog.pg_class JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_class.relnamespace
WHERE pg_catalog.pg_class.relname = $1::VARCHAR AND pg_catalog.pg_class.relkind = ANY (ARRAY['r', 'p', 'f', 'v', 'm']) AND pg_catalog.pg_table_is_visible(pg_catalog.pg_class.oid) AND pg_catalog.pg_namespace.nspname != 'pg_catalog'

-- case: SQLAlchemy 2.0: has_table(internal_notes) (hidden)
-- protocol: extended
-- params: ["internal_notes"]
SELECT pg_catalog.pg_class.relname
FROM pg_catalog.pg_class JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_class.relnamespace
WHERE pg_catalog.pg_class.relname = $1::VARCHAR AND pg_catalog.pg_class.relkind = ANY (ARRAY['r', 'p', 'f', 'v', 'm']) AND pg_catalog.pg_table_is_visible(pg_catalog.pg_class.oid) AND pg_catalog.pg_namespace.nspname != 'pg_catalog'

-- case: SQLAlchemy 2.0: has_sequence / get_sequence_names
-- protocol: extended
-- params: ["orders_id_seq", "public"]
SELECT pg_catalog.pg_class.relname
FROM pg_catalog.pg_class JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_class.relnamespace
WHERE pg_catalog.pg_class.relname = $1::VARCHAR AND pg_catalog.pg_class.relkind = ANY (ARRAY['S']) AND pg_catalog.pg_namespace.nspname = $2::VARCHAR
-- next
SELECT pg_catalog.pg_class.relname
FROM pg_catalog.pg_class JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_class.relnamespace
WHERE pg_catalog.pg_class.relkind = ANY (ARRAY['S']) AND pg_catalog.pg_table_is_visible(pg_catalog.pg_class.oid) AND pg_catalog.pg_namespace.nspname != 'pg_catalog'

-- case: SQLAlchemy 2.0: get_materialized_view_names / get_view_definition
-- protocol: extended
-- params: ["customer_regions"]
SELECT pg_catalog.pg_class.relname
FROM pg_catalog.pg_class JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_class.relnamespace
WHERE pg_catalog.pg_class.relkind = ANY (ARRAY['m']) AND pg_catalog.pg_table_is_visible(pg_catalog.pg_class.oid) AND pg_catalog.pg_namespace.nspname != 'pg_catalog'
-- next
SELECT pg_catalog.pg_get_viewdef(pg_catalog.pg_class.oid, true) AS pg_get_viewdef
FROM pg_catalog.pg_class JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_class.relnamespace
WHERE pg_catalog.pg_class.relkind = ANY (ARRAY['v', 'm']) AND pg_catalog.pg_class.relname = $1::VARCHAR AND pg_catalog.pg_table_is_visible(pg_catalog.pg_class.oid) AND pg_catalog.pg_namespace.nspname != 'pg_catalog'

-- case: SQLAlchemy 2.0: get_view_definition(notes_view) (hidden)
-- protocol: extended
-- params: ["notes_view"]
SELECT pg_catalog.pg_get_viewdef(pg_catalog.pg_class.oid, true) AS pg_get_viewdef
FROM pg_catalog.pg_class JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_class.relnamespace
WHERE pg_catalog.pg_class.relkind = ANY (ARRAY['v', 'm']) AND pg_catalog.pg_class.relname = $1::VARCHAR AND pg_catalog.pg_table_is_visible(pg_catalog.pg_class.oid) AND pg_catalog.pg_namespace.nspname != 'pg_catalog'

-- case: SQLAlchemy 2.0: _load_enums
SELECT pg_catalog.pg_type.typname AS name, pg_catalog.pg_type_is_visible(pg_catalog.pg_type.oid) AS visible, pg_catalog.pg_namespace.nspname AS schema, lbl_agg.labels AS labels
FROM pg_catalog.pg_type JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_type.typnamespace LEFT OUTER JOIN (SELECT pg_catalog.pg_enum.enumtypid AS enumtypid, array_agg(CAST(pg_catalog.pg_enum.enumlabel AS TEXT) ORDER BY pg_catalog.pg_enum.enumsortorder) AS labels
FROM pg_catalog.pg_enum GROUP BY pg_catalog.pg_enum.enumtypid) AS lbl_agg ON pg_catalog.pg_type.oid = lbl_agg.enumtypid
WHERE pg_catalog.pg_type.typtype = 'e' ORDER BY pg_catalog.pg_namespace.nspname, pg_catalog.pg_type.typname

-- case: SQLAlchemy 2.0: _load_domains
SELECT pg_catalog.format_type(pg_catalog.pg_type.typbasetype, pg_catalog.pg_type.typtypmod) AS attype, NOT pg_catalog.pg_type.typnotnull AS nullable, pg_catalog.pg_type.typdefault AS "default", pg_catalog.pg_type_is_visible(pg_catalog.pg_type.oid) AS visible, pg_catalog.pg_type.typname AS name, pg_catalog.pg_namespace.nspname AS schema, domain_constraints.condefs, domain_constraints.connames, pg_catalog.pg_collation.collname
FROM pg_catalog.pg_type JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_type.typnamespace LEFT OUTER JOIN pg_catalog.pg_collation ON pg_catalog.pg_type.typcollation = pg_catalog.pg_collation.oid LEFT OUTER JOIN (SELECT pg_catalog.pg_constraint.contypid AS contypid, array_agg(pg_catalog.pg_get_constraintdef(pg_catalog.pg_constraint.oid, true)) AS condefs, array_agg(CAST(pg_catalog.pg_constraint.conname AS TEXT)) AS connames
FROM pg_catalog.pg_constraint
WHERE pg_catalog.pg_constraint.contypid != 0 GROUP BY pg_catalog.pg_constraint.contypid) AS domain_constraints ON pg_catalog.pg_type.oid = domain_constraints.contypid
WHERE pg_catalog.pg_type.typtype = 'd' ORDER BY pg_catalog.pg_namespace.nspname, pg_catalog.pg_type.typname

-- case: SQLAlchemy 2.0: get_multi_table_comment (schema public)
-- protocol: extended
-- params: ["public"]
SELECT pg_catalog.pg_class.relname, pg_catalog.pg_description.description
FROM pg_catalog.pg_class LEFT OUTER JOIN pg_catalog.pg_description ON pg_catalog.pg_class.oid = pg_catalog.pg_description.objoid AND pg_catalog.pg_description.objsubid = 0 AND pg_catalog.pg_description.classoid = CAST('pg_catalog.pg_class' AS REGCLASS) JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_class.relnamespace
WHERE pg_catalog.pg_class.relkind = ANY (ARRAY['r', 'p', 'f', 'v', 'm']) AND pg_catalog.pg_namespace.nspname = $1::VARCHAR ORDER BY 1

-- case: SQLAlchemy 2.0: initialize probes
select pg_catalog.version()
-- next
select current_schema()
-- next
show transaction isolation level
-- next
show standard_conforming_strings
-- next
SELECT CAST('test plain returns' AS VARCHAR(60)) AS anon_1
-- next
SELECT CAST('test unicode returns' AS VARCHAR(60)) AS anon_1

-- case: Metabase: extension probes
SELECT extname FROM pg_extension WHERE extname IN ('postgis', 'timescaledb', 'citext')
-- next
SELECT exists(SELECT 1 FROM pg_type WHERE typname = 'citext')

-- case: Metabase: has_table_privilege with an expression relation argument
SELECT n.nspname AS schema, c.relname AS table,
  has_table_privilege(concat(quote_ident(n.nspname), '.', quote_ident(c.relname)), 'SELECT') AS select,
  has_table_privilege(concat(quote_ident(n.nspname), '.', quote_ident(c.relname)), 'INSERT') AS insert,
  has_any_column_privilege(concat(quote_ident(n.nspname), '.', quote_ident(c.relname)), 'UPDATE') AS update
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname = 'public' ORDER BY 2

-- case: Metabase: column comments of customers
SELECT a.attname AS column_name, col_description(a.attrelid, a.attnum) AS comment
FROM pg_attribute a WHERE a.attrelid = 'public.customers'::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum

-- case: Metabase: JSON/unfolding sample of a table
SELECT "public"."orders"."status" AS "status", "public"."orders"."total" AS "total" FROM "public"."orders" ORDER BY "public"."orders"."id" LIMIT 10

-- case: Metabase: regclass of a bound parameter (hidden)
-- protocol: extended
-- params: ["public.internal_notes"]
-- expect: error 42P01
SELECT CAST($1 AS regclass)::oid IS NOT NULL AS found

-- case: Grafana: table picker with search_path schemas
SELECT quote_ident(table_name) AS "table" FROM information_schema.tables
WHERE quote_ident(table_schema) NOT IN ('information_schema', 'pg_catalog', '_timescaledb_cache', '_timescaledb_catalog', '_timescaledb_internal', '_timescaledb_config', 'timescaledb_information', 'timescaledb_experimental')
  AND table_type = 'BASE TABLE' AND quote_ident(table_schema) IN (SELECT CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END FROM generate_series(array_lower(string_to_array(current_setting('search_path'),','),1), array_upper(string_to_array(current_setting('search_path'),','),1)) AS i, string_to_array(current_setting('search_path'),',') AS s)
ORDER BY 1

-- case: Grafana: column picker of a hidden table (hidden)
SELECT quote_ident(column_name) AS "column", data_type AS "type" FROM information_schema.columns
WHERE CASE WHEN array_length(parse_ident('internal_notes'),1) = 2
  THEN quote_ident(table_schema) = (parse_ident('internal_notes'))[1] AND quote_ident(table_name) = (parse_ident('internal_notes'))[2]
  ELSE quote_ident(table_name) = 'internal_notes' AND quote_ident(table_schema) IN (SELECT CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END FROM generate_series(array_lower(string_to_array(current_setting('search_path'),','),1), array_upper(string_to_array(current_setting('search_path'),','),1)) AS i, string_to_array(current_setting('search_path'),',') AS s)
  END ORDER BY 1

-- case: pgjdbc: getPseudoColumns / getVersionColumns (ctid, xmin of a table)
SELECT a.attname, a.attnum, a.atttypid::regtype FROM pg_catalog.pg_attribute a
WHERE a.attrelid = 'public.orders'::regclass AND a.attnum < 0 ORDER BY a.attnum

-- case: pgjdbc: getBestRowIdentifier via pg_index (orders)
SELECT a.attname, a.atttypid, atttypmod FROM pg_catalog.pg_class ct
  JOIN pg_catalog.pg_attribute a ON (ct.oid = a.attrelid)
  JOIN pg_catalog.pg_namespace n ON (ct.relnamespace = n.oid)
  JOIN (SELECT i.indexrelid, i.indrelid, i.indisprimary, information_schema._pg_expandarray(i.indkey) AS keys FROM pg_catalog.pg_index i) i
    ON (a.attnum = (i.keys).x AND a.attrelid = i.indrelid)
WHERE true AND n.nspname = 'public' AND ct.relname = 'orders' AND i.indisprimary ORDER BY a.attnum

-- case: pgjdbc: getTypeInfo of the enum and the row types (hidden row type must not show)
SELECT t.typname, t.typtype, t.typrelid <> 0 AS is_row FROM pg_catalog.pg_type t
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = 'public' ORDER BY 1

-- case: pgjdbc: array type of a hidden row type by name (hidden)
SELECT t.oid, t.typname FROM pg_catalog.pg_type t WHERE t.typname = '_internal_notes'

-- case: psqlODBC: SQLTables (all tables and views)
select relname, nspname, relkind from pg_catalog.pg_class c, pg_catalog.pg_namespace n where relkind in ('r', 'v', 'm', 'f', 'p') and nspname not in ('pg_catalog', 'information_schema', 'pg_toast', 'pg_temp_1') and n.oid = relnamespace order by nspname, relname

-- case: psqlODBC: SQLTables (schemas only)
select nspname from pg_catalog.pg_namespace n where true order by nspname

-- case: psqlODBC: SQLSpecialColumns (PG 12+ shape)
select c.relhasrules, c.relkind, false as relhasoids from pg_catalog.pg_namespace u, pg_catalog.pg_class c where u.oid = c.relnamespace and c.relname = 'orders' and u.nspname = 'public'

-- case: psqlODBC: SQLColumns with attidentity and attgenerated (customers)
select n.nspname, c.relname, a.attname, a.atttypid, t.typname, a.attnum, a.attlen, a.atttypmod, a.attnotnull, c.relhasrules, c.relkind, c.oid, pg_get_expr(d.adbin, d.adrelid), case t.typtype when 'd' then t.typbasetype else 0 end, t.typtypmod, false, '', c.relhassubclass from (((pg_catalog.pg_class c inner join pg_catalog.pg_namespace n on n.oid = c.relnamespace and c.relname like 'customers' and n.nspname like 'public') inner join pg_catalog.pg_attribute a on (not a.attisdropped) and a.attnum > 0 and a.attrelid = c.oid) inner join pg_catalog.pg_type t on t.oid = a.atttypid) left outer join pg_attrdef d on a.atthasdef and d.adrelid = a.attrelid and d.adnum = a.attnum order by n.nspname, c.relname, attnum

-- case: Npgsql: PostgresMinimalDatabaseInfo server checks
SELECT current_setting('server_version_num')::int AS server_version_num, current_setting('integer_datetimes') AS integer_datetimes
-- next
SELECT typname, oid FROM pg_type WHERE typname IN ('hstore', 'citext', 'geometry', 'ltree') ORDER BY 1

-- case: information_schema: every table constraint and its columns (hidden ones must not show)
SELECT tc.table_name, tc.constraint_name, tc.constraint_type, kcu.column_name, ccu.table_name AS foreign_table
FROM information_schema.table_constraints tc
LEFT JOIN information_schema.key_column_usage kcu ON tc.constraint_name = kcu.constraint_name AND tc.table_schema = kcu.table_schema
LEFT JOIN information_schema.constraint_column_usage ccu ON ccu.constraint_name = tc.constraint_name AND ccu.table_schema = tc.table_schema
WHERE tc.table_schema = 'public' AND tc.constraint_type IN ('PRIMARY KEY', 'FOREIGN KEY', 'UNIQUE')
ORDER BY 1, 2, 4

-- case: information_schema: routines and views of schema public
SELECT routine_name, routine_type, data_type FROM information_schema.routines WHERE routine_schema = 'public' ORDER BY 1
-- next
SELECT table_name, check_option, is_updatable FROM information_schema.views WHERE table_schema = 'public' ORDER BY 1
-- next
SELECT trigger_name, event_object_table FROM information_schema.triggers WHERE trigger_schema = 'public' ORDER BY 1
