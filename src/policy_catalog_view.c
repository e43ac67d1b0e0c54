/*
 * policy_catalog_view.c — the catalog relations of the virtual catalog (see
 * policy_catalog.h): the rule table that says, for every pg_catalog and
 * information_schema relation a client may name, which of its rows a tenant
 * sees and which of its values are rewritten, and the derived table built
 * from a rule for one statement. The visible sets and the template language
 * the rules are written in (%V, %{rel} ...) are policy_catalog.c's; this file
 * only writes rules and asks policy_catalog_expand to turn them into SQL.
 *
 * It must never show a row a rule does not select, and it never invents a
 * rule: a relation missing from the table is refused (fail closed). What a
 * rule must check is argued in policy_catalog.c's opening prose: a row can
 * name objects only through its own columns, so a rule checks every column
 * that names one. Three things are this file's own:
 *  - Rows of views that describe objects of several kinds, told apart by an
 *    object_type column (information_schema.data_type_privileges,
 *    element_types, usage_privileges, role_usage_grants), are checked per
 *    kind with the kind's own visibility rule, and a kind the rule does not
 *    name shows nothing (a later PostgreSQL adding one fails closed). A
 *    TABLE row's dtd_identifier is a column number, checked against the
 *    hidden columns: a row numbered 11 of a table showing 10 columns is the
 *    hidden column's existence.
 *  - Values that print another object's definition: a column default that
 *    uses an invisible object (policy_catalog.c, %d) reads as NULL in
 *    information_schema.columns, as pg_attrdef leaves its row out; so does
 *    a domain's default (pg_type.typdefault, typdefaultbin,
 *    information_schema.domains), and a view's definition whose rule does
 *    (pg_views, pg_matviews, information_schema.views); a trigger or a
 *    row-security policy that does shows in no view.
 *  - System columns. A view carries the system columns a statement names,
 *    but only tableoid (a constant: the catalog's own OID) and xmin (pgAdmin
 *    reads it to detect concurrent changes) keep their values. ctid is the
 *    row's physical place in the shared catalog: the gaps between the ctids
 *    of visible rows count the hidden rows between them (customers' hidden
 *    column left (56,11) out between (56,10) and (56,12) in pg_attribute);
 *    xmax, cmin and cmax tell of other transactions' work on the row. Those
 *    read as NULL of their own type, so a statement naming them still runs.
 *
 * Split from policy_catalog.c (which keeps the sets and the templates) when
 * that file reached the size limit.
 */
#include "policy_catalog.h"
#include "policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Catalog relations                                                          */
/* ------------------------------------------------------------------------ */

typedef struct Override {
    const char *column;
    const char *expr; /* a template over the row (alias r) */
} Override;

#define CAT_STATS 0x01u /* figures NULL unless the stat_key relation is unfiltered */
#define CAT_TENANT_DB 0x02u /* datname is the tenant's database name */
#define CAT_COLUMNS 0x04u /* never SELECT *: a column the role may not read */

typedef struct CatalogRule {
    const char *schema;
    const char *name;
    const char *filter; /* NULL: readable as is; "": refused */
    unsigned flags;
    const char *stat_key; /* CAT_STATS: the OID column; NULL: figures always NULL */
    Override overrides[4];
} CatalogRule;

#define REFUSED ""
/* Readable unchanged: only for relations whose rows describe no database
 * object at all (no schema, function, type, relation or role): the server's
 * constants (and pg_am, below). Everything that lists objects has a rule, and a relation with
 * no rule is refused (fail closed). tests/unit/test_catalog.c pins the list
 * of AS_IS relations, so adding one is a deliberate act. */
#define AS_IS NULL
#define PG(name, filter)                                                                           \
    {                                                                                              \
        "pg_catalog", name, filter, 0, NULL,                                                       \
        {                                                                                          \
            {                                                                                      \
                NULL, NULL                                                                         \
            }                                                                                      \
        }                                                                                          \
    }
#define IS(name, filter)                                                                           \
    {                                                                                              \
        "information_schema", name, filter, 0, NULL,                                               \
        {                                                                                          \
            {                                                                                      \
                NULL, NULL                                                                         \
            }                                                                                      \
        }                                                                                          \
    }
#define STATS(name, key)                                                                           \
    {                                                                                              \
        "pg_catalog", name, "r." key " IN (SELECT s.o FROM %{rel} s)", CAT_STATS, key,             \
        {                                                                                          \
            {                                                                                      \
                NULL, NULL                                                                         \
            }                                                                                      \
        }                                                                                          \
    }

/* Figures about the whole cluster (every tenant's work): the row stays, its
 * figures read as NULL. */
#define CLUSTER_STATS(name)                                                                        \
    {                                                                                              \
        "pg_catalog", name, "true", CAT_STATS, NULL,                                               \
        {                                                                                          \
            {                                                                                      \
                NULL, NULL                                                                         \
            }                                                                                      \
        }                                                                                          \
    }

#define IN_REL(col) "r." col " IN (SELECT s.o FROM %{rel} s)"
#define TBL(s, t) "%V(r." s ", r." t ")"
#define TBL_COL(s, t, c) "%V(r." s ", r." t ") AND NOT %C(r." s ", r." t ", r." c ")"
#define FIGURE(col)                                                                                \
    {                                                                                              \
        col, "CASE WHEN r.oid IN (SELECT s.o FROM %{unf} s) THEN r." col " END"                    \
    }

/* Rows of information_schema views that describe objects of several kinds
 * (data_type_privileges, element_types): each kind by its own visibility
 * rule, a kind not named here shows nothing. A TABLE row (a column of a
 * table or view) is numbered by the column's attnum (in dtd), which is
 * checked against the hidden columns: a hidden column's number is its
 * existence. */
#define OBJECT_KIND(dtd)                                                                           \
    "(CASE r.object_type WHEN 'TABLE' THEN %V(r.object_schema, r.object_name) AND NOT "            \
    "%H((SELECT vc.oid FROM pg_catalog.pg_class vc JOIN pg_catalog.pg_namespace vn ON vn.oid = "   \
    "vc.relnamespace WHERE vn.nspname = r.object_schema AND vc.relname = r.object_name), "         \
    "(" dtd ")::pg_catalog.text::pg_catalog.int2) WHEN 'USER-DEFINED TYPE' THEN "                  \
    "%Y(r.object_schema, r.object_name) WHEN 'DOMAIN' THEN %Y(r.object_schema, r.object_name) "    \
    "WHEN 'ROUTINE' THEN %f(r.object_schema, r.object_name) ELSE false END)"
/* usage_privileges and role_usage_grants: the same per kind; collations as
 * information_schema.collations shows them, foreign data wrappers and
 * servers as their own views do. */
#define USAGE_KIND                                                                                 \
    "(CASE r.object_type WHEN 'SEQUENCE' THEN %V(r.object_schema, r.object_name) WHEN 'DOMAIN' "   \
    "THEN %Y(r.object_schema, r.object_name) WHEN 'COLLATION' THEN %N(r.object_schema) WHEN "      \
    "'FOREIGN DATA WRAPPER' THEN true WHEN 'FOREIGN SERVER' THEN true ELSE false END)"
/* information_schema.columns: the column's default uses an invisible
 * object (pg_attrdef's rule leaves it out). */
#define COLUMN_DEFAULT_HIDDEN                                                                      \
    "(r.table_schema::pg_catalog.text, r.table_name::pg_catalog.text, "                            \
    "r.ordinal_position::pg_catalog.int4) IN (SELECT vn.nspname::pg_catalog.text, "                \
    "vc.relname::pg_catalog.text, vd.adnum::pg_catalog.int4 FROM pg_catalog.pg_attrdef vd JOIN "   \
    "pg_catalog.pg_class vc ON vc.oid = vd.adrelid JOIN pg_catalog.pg_namespace vn ON vn.oid = "   \
    "vc.relnamespace WHERE %d(pg_attrdef, vd.oid))"

/* A view (by schema and name columns) whose rule uses an invisible object:
 * its definition text reads as NULL, as pg_rewrite leaves the rule out. */
#define VIEW_RULE_HIDDEN(s, v)                                                                     \
    "(r." s "::pg_catalog.text, r." v                                                              \
    "::pg_catalog.text) IN (SELECT vn.nspname::pg_catalog.text, "                                  \
    "vc.relname::pg_catalog.text FROM pg_catalog.pg_rewrite vw JOIN pg_catalog.pg_class vc ON "    \
    "vc.oid = vw.ev_class JOIN pg_catalog.pg_namespace vn ON vn.oid = vc.relnamespace WHERE "      \
    "%d(pg_rewrite, vw.oid))"

static const CatalogRule catalog_rules[] = {
    /* pg_catalog tables */
    PG("pg_aggregate", "r.aggfnoid IN (SELECT s.o FROM %{proc} s) AND %p(r.aggtransfn) AND "
                       "%p(r.aggfinalfn) AND %p(r.aggcombinefn) AND %p(r.aggserialfn) AND "
                       "%p(r.aggdeserialfn) AND %p(r.aggmtransfn) AND %p(r.aggminvtransfn) AND "
                       "%p(r.aggmfinalfn) AND %c(pg_operator, r.aggsortop) AND "
                       "%y(r.aggtranstype) AND %y(r.aggmtranstype)"),
    /* Access methods are the server's (CREATE ACCESS METHOD is for
     * superusers only), read as is like its constants, so EXPLAIN over them
     * stays allowed. Known limit: a handler installed in a schema the tenant
     * cannot see prints with that schema's name through amhandler. */
    PG("pg_am", AS_IS),
    PG("pg_amop", "%c(pg_opfamily, r.amopfamily) AND %c(pg_operator, r.amopopr) AND "
                  "%y(r.amoplefttype) AND %y(r.amoprighttype) AND %c(pg_opfamily, "
                  "r.amopsortfamily) AND %c(pg_am, r.amopmethod)"),
    PG("pg_amproc", "%c(pg_opfamily, r.amprocfamily) AND %p(r.amproc) AND "
                    "%y(r.amproclefttype) AND %y(r.amprocrighttype)"),
    PG("pg_attrdef",
       IN_REL("adrelid") " AND NOT %H(r.adrelid, r.adnum) AND NOT %d(pg_attrdef, r.oid)"),
    PG("pg_attribute", IN_REL("attrelid") " AND NOT %H(r.attrelid, r.attnum)"),
    PG("pg_auth_members", "r.roleid IN (SELECT s.o FROM %{role} s) AND r.member IN (SELECT s.o "
                          "FROM %{role} s)"),
    PG("pg_authid", REFUSED),
    PG("pg_cast", "%y(r.castsource) AND %y(r.casttarget) AND %p(r.castfunc)"),
    {"pg_catalog",
     "pg_class",
     IN_REL("oid"),
     0,
     NULL,
     /* relnatts counts only the columns the tenant sees (a hidden column
      * before visible ones leaves a gap in attnum: README, known limits). */
     {FIGURE("reltuples"),
      FIGURE("relpages"),
      FIGURE("relallvisible"),
      {"relnatts", "%A(r.oid, r.relnatts)"}}},
    PG("pg_collation", "%n(r.collnamespace)"),
    PG("pg_constraint", "r.oid IN (SELECT s.o FROM %{con} s)"),
    PG("pg_conversion", "%n(r.connamespace) AND %p(r.conproc)"),
    {"pg_catalog",
     "pg_database",
     "r.datname = pg_catalog.current_database()",
     CAT_TENANT_DB,
     NULL,
     {{NULL, NULL}}},
    PG("pg_db_role_setting",
       "(r.setdatabase = 0 OR r.setdatabase IN (SELECT s.o FROM %{db} s)) AND "
       "(r.setrole = 0 OR r.setrole IN (SELECT s.o FROM %{role} s))"),
    PG("pg_default_acl", "r.defaclrole IN (SELECT s.o FROM %{role} s)"),
    PG("pg_depend", "%O(r.classid, r.objid, r.objsubid) AND %O(r.refclassid, r.refobjid, "
                    "r.refobjsubid)"),
    PG("pg_description", "%O(r.classoid, r.objoid, r.objsubid)"),
    PG("pg_enum", "r.enumtypid IN (SELECT s.o FROM %{type} s)"),
    PG("pg_event_trigger", "%p(r.evtfoid)"),
    /* An extension's objects live in its schema; its configuration tables
     * must all be visible. */
    PG("pg_extension", "%n(r.extnamespace) AND (r.extconfig IS NULL OR r.extconfig OPERATOR("
                       "pg_catalog.<@) ARRAY(SELECT vs.o FROM %{rel} vs))"),
    PG("pg_foreign_data_wrapper", "%p(r.fdwhandler) AND %p(r.fdwvalidator)"),
    PG("pg_foreign_server", "true"),
    PG("pg_foreign_table", IN_REL("ftrelid")),
    PG("pg_index", IN_REL("indexrelid")),
    PG("pg_inherits", IN_REL("inhrelid") " AND " IN_REL("inhparent")),
    PG("pg_init_privs", "%O(r.classoid, r.objoid, r.objsubid)"),
    PG("pg_language", "%p(r.lanplcallfoid) AND %p(r.laninline) AND %p(r.lanvalidator)"),
    PG("pg_largeobject", REFUSED),
    /* Large objects belong to no tenant: none exist for one. */
    PG("pg_largeobject_metadata", "false"),
    PG("pg_namespace", "r.oid IN (SELECT s.o FROM %{nsp} s)"),
    PG("pg_opclass", "%n(r.opcnamespace) AND %c(pg_opfamily, r.opcfamily) AND %y(r.opcintype) "
                     "AND %y(r.opckeytype) AND %c(pg_am, r.opcmethod)"),
    /* An operator is shown when its schema is visible and every function and
     * type it names is: a row that named an invisible function would print
     * it through oprcode (regproc output is schema.name). Rows are left out
     * rather than showing NULL: these columns are NOT NULL in PostgreSQL and
     * tools join on them, and the policy pins every operator a statement
     * uses to pg_catalog anyway, so nothing usable disappears. */
    PG("pg_operator", "%n(r.oprnamespace) AND %p(r.oprcode) AND %p(r.oprrest) AND "
                      "%p(r.oprjoin) AND %y(r.oprleft) AND %y(r.oprright) AND %y(r.oprresult)"),
    PG("pg_opfamily", "%n(r.opfnamespace) AND %c(pg_am, r.opfmethod)"),
    PG("pg_parameter_acl", "true"),
    PG("pg_partitioned_table", IN_REL("partrelid")),
    /* A policy's expressions may hold a subquery, whose raw tree lists every
     * column of the relations it reads (hidden ones too, as ev_action
     * does): such a tree reads as NULL; pg_policies prints what is used. */
    {"pg_catalog",
     "pg_policy",
     IN_REL("polrelid") " AND NOT %d(pg_policy, r.oid)",
     0,
     NULL,
     {{"polqual", "CASE WHEN pg_catalog.strpos(r.polqual::pg_catalog.text, 'RANGETBLENTRY') = 0 "
                  "THEN r.polqual END"},
      {"polwithcheck", "CASE WHEN pg_catalog.strpos(r.polwithcheck::pg_catalog.text, "
                       "'RANGETBLENTRY') = 0 THEN r.polwithcheck END"}}},
    /* A SQL-standard body's raw tree lists every column of the relations
     * it reads, hidden ones too: a user function's reads as NULL
     * (pg_get_functiondef prints what it uses). */
    {"pg_catalog",
     "pg_proc",
     "r.oid IN (SELECT s.o FROM %{proc} s)",
     0,
     NULL,
     {{"prosqlbody", "CASE WHEN r.oid < 16384::pg_catalog.oid THEN r.prosqlbody END"}}},
    /* A publication names no schema object itself (its tables and schemas
     * are the two catalogs below, filtered). */
    PG("pg_publication", "true"),
    PG("pg_publication_namespace", "%n(r.pnnspid)"), /* psql's \d reads it */
    PG("pg_publication_rel", IN_REL("prrelid")),
    PG("pg_range", "r.rngtypid IN (SELECT s.o FROM %{type} s) AND %y(r.rngsubtype) AND "
                   "%y(r.rngmultitypid) AND %p(r.rngcanonical) AND %p(r.rngsubdiff) AND "
                   "%c(pg_collation, r.rngcollation) AND %c(pg_opclass, r.rngsubopc)"),
    PG("pg_replication_origin", REFUSED),
    /* A rule's raw trees list every column of every relation they read
     * (a range table entry's column names), hidden ones too: read them
     * through pg_get_ruledef/pg_get_viewdef, which print what is used. */
    {"pg_catalog",
     "pg_rewrite",
     IN_REL("ev_class") " AND NOT %d(pg_rewrite, r.oid)",
     0,
     NULL,
     {{"ev_action", "NULL"}, {"ev_qual", "NULL"}}},
    PG("pg_seclabel", "%O(r.classoid, r.objoid, r.objsubid)"),
    PG("pg_sequence", IN_REL("seqrelid")),
    PG("pg_shdepend", REFUSED),
    PG("pg_shdescription", "%S(r.classoid, r.objoid)"),
    PG("pg_shseclabel", "%S(r.classoid, r.objoid)"),
    PG("pg_statistic", REFUSED),
    PG("pg_statistic_ext", IN_REL("stxrelid") " AND NOT %d(pg_statistic_ext, r.oid)"),
    PG("pg_statistic_ext_data", REFUSED),
    /* Subscriptions describe replication from elsewhere: none for a tenant
     * (and subconninfo is never read, so the view stays readable). */
    {"pg_catalog", "pg_subscription", "false", CAT_COLUMNS, NULL, {{"subconninfo", "NULL"}}},
    PG("pg_subscription_rel", REFUSED),
    PG("pg_tablespace", "true"),
    PG("pg_transform", "%y(r.trftype) AND %p(r.trffromsql) AND %p(r.trftosql) AND "
                       "%c(pg_language, r.trflang)"),
    PG("pg_trigger", "r.oid IN (SELECT s.o FROM %{trig} s)"),
    PG("pg_ts_config", "%n(r.cfgnamespace) AND %c(pg_ts_parser, r.cfgparser)"),
    PG("pg_ts_config_map", "%c(pg_ts_config, r.mapcfg) AND %c(pg_ts_dict, r.mapdict)"),
    PG("pg_ts_dict", "%n(r.dictnamespace) AND %c(pg_ts_template, r.dicttemplate)"),
    PG("pg_ts_parser", "%n(r.prsnamespace) AND %p(r.prsstart) AND %p(r.prstoken) AND "
                       "%p(r.prsend) AND %p(r.prsheadline) AND %p(r.prslextype)"),
    PG("pg_ts_template", "%n(r.tmplnamespace) AND %p(r.tmplinit) AND %p(r.tmpllexize)"),
    /* A domain's default is printed text (typdefault) and a tree
     * pg_get_expr prints: NULL when it uses an invisible object. */
    {"pg_catalog",
     "pg_type",
     "r.oid IN (SELECT s.o FROM %{type} s)",
     0,
     NULL,
     {{"typdefault", "CASE WHEN %d(pg_type, r.oid) THEN NULL ELSE r.typdefault END"},
      {"typdefaultbin", "CASE WHEN %d(pg_type, r.oid) THEN NULL ELSE r.typdefaultbin END"}}},
    PG("pg_user_mapping", REFUSED),
    /* pg_catalog views */
    /* What the server has installed (control files), not database objects. */
    PG("pg_available_extension_versions", AS_IS),
    PG("pg_available_extensions", AS_IS),
    PG("pg_backend_memory_contexts", REFUSED),
    PG("pg_config", REFUSED),
    /* The statement text of one's own cursors and prepared statements is the
     * rewrite, which spells out the policy: not shown. */
    {"pg_catalog", "pg_cursors", "true", 0, NULL, {{"statement", "NULL"}}},
    PG("pg_file_settings", REFUSED),
    PG("pg_group", REFUSED),
    PG("pg_hba_file_rules", REFUSED),
    PG("pg_ident_file_mappings", REFUSED),
    PG("pg_indexes", TBL("schemaname", "tablename") " AND " TBL("schemaname", "indexname")),
    /* One's own locks on objects the tenant can see (reading a view locks
     * the relations under it). */
    {"pg_catalog",
     "pg_locks",
     "r.pid = pg_catalog.pg_backend_pid() AND (r.relation IS NULL OR " IN_REL(
         "relation") ") AND (r.classid IS NULL OR %O(r.classid, r.objid, r.objsubid))",
     0,
     NULL,
     {{"transactionid", "NULL"}}},
    {"pg_catalog",
     "pg_matviews",
     TBL("schemaname", "matviewname"),
     0,
     NULL,
     {{"definition", "CASE WHEN " VIEW_RULE_HIDDEN(
                         "schemaname", "matviewname") " THEN NULL ELSE r.definition END"}}},
    {"pg_catalog",
     "pg_policies",
     TBL("schemaname", "tablename") " AND (r.schemaname, r.tablename, r.policyname) IN (SELECT "
                                    "vn.nspname, vc.relname, vp.polname FROM "
                                    "pg_catalog.pg_policy vp JOIN pg_catalog.pg_class vc ON "
                                    "vc.oid = vp.polrelid JOIN pg_catalog.pg_namespace vn ON "
                                    "vn.oid = vc.relnamespace WHERE NOT %d(pg_policy, vp.oid))",
     0,
     NULL,
     {{"roles", "ARRAY(SELECT vx.x FROM pg_catalog.unnest(r.roles) vx(x) WHERE %R(vx.x))"}}},
    /* Not the parameter probe's, which a failed probe may leave behind for
     * the next client of a transaction-pooled session (policy.c). */
    {"pg_catalog",
     "pg_prepared_statements",
     "NOT pg_catalog.starts_with(r.name, '" PGW_PARAM_PROBE_PREFIX "')",
     0,
     NULL,
     {{"statement", "NULL"}}},
    /* Prepared transactions, replication and the progress of maintenance
     * commands belong to the cluster, never to a read-only tenant: none exist
     * for it. */
    PG("pg_prepared_xacts", "false"),
    PG("pg_publication_tables", REFUSED),
    PG("pg_replication_origin_status", REFUSED),
    PG("pg_replication_slots", "false"),
    PG("pg_roles", "r.oid IN (SELECT s.o FROM %{role} s)"),
    PG("pg_rules", TBL("schemaname", "tablename")),
    PG("pg_seclabels", "%O(r.classoid, r.objoid, r.objsubid)"),
    /* A sequence's last value counts every tenant's rows. */
    {"pg_catalog",
     "pg_sequences",
     TBL("schemaname", "sequencename"),
     0,
     NULL,
     {{"last_value", "NULL"}}},
    PG("pg_settings", "%G(r.name)"),
    PG("pg_shadow", REFUSED),
    PG("pg_shmem_allocations", REFUSED),
    /* Other sessions are other tenants: only one's own backend exists. Its
     * query text is the rewrite, which spells out the policy, and
     * transaction ids count every tenant's writes. */
    {"pg_catalog",
     "pg_stat_activity",
     "r.pid = pg_catalog.pg_backend_pid()",
     CAT_TENANT_DB,
     NULL,
     {{"query", "NULL"}, {"query_id", "NULL"}, {"backend_xid", "NULL"}, {"backend_xmin", "NULL"}}},
    STATS("pg_stat_all_indexes", "indexrelid"),
    CLUSTER_STATS("pg_stat_archiver"),
    CLUSTER_STATS("pg_stat_bgwriter"),
    STATS("pg_stat_all_tables", "relid"),
    {"pg_catalog",
     "pg_stat_database",
     "r.datname = pg_catalog.current_database()",
     CAT_STATS | CAT_TENANT_DB,
     NULL,
     {{NULL, NULL}}},
    {"pg_catalog",
     "pg_stat_database_conflicts",
     "r.datname = pg_catalog.current_database()",
     CAT_STATS | CAT_TENANT_DB,
     NULL,
     {{NULL, NULL}}},
    PG("pg_stat_gssapi", "r.pid = pg_catalog.pg_backend_pid()"),
    PG("pg_stat_progress_analyze", "false"),
    PG("pg_stat_progress_basebackup", "false"),
    PG("pg_stat_progress_cluster", "false"),
    PG("pg_stat_progress_copy", "false"),
    PG("pg_stat_progress_create_index", "false"),
    PG("pg_stat_progress_vacuum", "false"),
    PG("pg_stat_replication", "false"),
    PG("pg_stat_replication_slots", "false"),
    CLUSTER_STATS("pg_stat_slru"),
    PG("pg_stat_ssl", "r.pid = pg_catalog.pg_backend_pid()"),
    STATS("pg_stat_sys_indexes", "indexrelid"),
    STATS("pg_stat_sys_tables", "relid"),
    PG("pg_stat_subscription", "false"),
    PG("pg_stat_subscription_stats", "false"),
    PG("pg_stat_user_functions", "r.funcid IN (SELECT s.o FROM %{proc} s)"),
    STATS("pg_stat_user_indexes", "indexrelid"),
    STATS("pg_stat_user_tables", "relid"),
    CLUSTER_STATS("pg_stat_wal"),
    PG("pg_stat_wal_receiver", "false"),
    STATS("pg_stat_xact_all_tables", "relid"),
    STATS("pg_stat_xact_sys_tables", "relid"),
    PG("pg_stat_xact_user_functions", "r.funcid IN (SELECT s.o FROM %{proc} s)"),
    STATS("pg_stat_xact_user_tables", "relid"),
    STATS("pg_statio_all_indexes", "indexrelid"),
    STATS("pg_statio_all_sequences", "relid"),
    STATS("pg_statio_all_tables", "relid"),
    STATS("pg_statio_sys_indexes", "indexrelid"),
    STATS("pg_statio_sys_sequences", "relid"),
    STATS("pg_statio_sys_tables", "relid"),
    STATS("pg_statio_user_indexes", "indexrelid"),
    STATS("pg_statio_user_sequences", "relid"),
    STATS("pg_statio_user_tables", "relid"),
    /* Column statistics hold values (most common values, histograms) of
     * every tenant's rows: not shown at all. */
    PG("pg_stats", REFUSED),
    PG("pg_stats_ext", REFUSED),
    PG("pg_stats_ext_exprs", REFUSED),
    PG("pg_tables", TBL("schemaname", "tablename")),
    PG("pg_timezone_abbrevs", AS_IS),
    PG("pg_timezone_names", AS_IS),
    PG("pg_user", "r.usesysid IN (SELECT s.o FROM %{role} s)"),
    /* One's own user mappings, without their options (passwords). */
    {"pg_catalog",
     "pg_user_mappings",
     "r.umuser IN (SELECT s.o FROM %{role} s)",
     0,
     NULL,
     {{"umoptions", "NULL"}}},
    {"pg_catalog",
     "pg_views",
     TBL("schemaname", "viewname"),
     0,
     NULL,
     {{"definition", "CASE WHEN " VIEW_RULE_HIDDEN(
                         "schemaname", "viewname") " THEN NULL ELSE r.definition END"}}},
    /* information_schema */
    IS("administrable_role_authorizations", "%R(r.grantee) AND %R(r.role_name)"),
    IS("applicable_roles", "%R(r.grantee) AND %R(r.role_name)"),
    IS("attributes", "%Y(r.udt_schema, r.udt_name) AND (r.attribute_udt_name IS NULL OR "
                     "%Y(r.attribute_udt_schema, r.attribute_udt_name))"),
    IS("character_sets", "true"),
    IS("check_constraints", "%K(r.constraint_schema, r.constraint_name)"),
    IS("collation_character_set_applicability", "%N(r.collation_schema)"),
    IS("collations", "%N(r.collation_schema)"),
    IS("column_column_usage",
       TBL_COL("table_schema", "table_name",
               "column_name") " AND NOT %C(r.table_schema, r.table_name, r.dependent_column)"),
    IS("column_domain_usage", TBL_COL("table_schema", "table_name", "column_name")),
    IS("column_options", TBL_COL("table_schema", "table_name", "column_name")),
    IS("column_privileges", TBL_COL("table_schema", "table_name", "column_name")),
    IS("column_udt_usage", TBL_COL("table_schema", "table_name", "column_name")),
    /* A default (or generation expression) that uses an invisible object
     * (%d) reads as NULL, as pg_attrdef leaves its row out. */
    {"information_schema",
     "columns",
     TBL_COL("table_schema", "table_name", "column_name"),
     0,
     NULL,
     {{"column_default", "CASE WHEN " COLUMN_DEFAULT_HIDDEN " THEN NULL ELSE r.column_default END"},
      {"generation_expression",
       "CASE WHEN " COLUMN_DEFAULT_HIDDEN " THEN NULL ELSE r.generation_expression END"}}},
    IS("constraint_column_usage",
       TBL_COL("table_schema", "table_name",
               "column_name") " AND %K(r.constraint_schema, r.constraint_name)"),
    IS("constraint_table_usage",
       TBL("table_schema", "table_name") " AND %K(r.constraint_schema, r.constraint_name)"),
    IS("data_type_privileges", OBJECT_KIND("r.dtd_identifier")),
    IS("domain_constraints",
       "%Y(r.domain_schema, r.domain_name) AND %K(r.constraint_schema, r.constraint_name)"),
    IS("domain_udt_usage", "%Y(r.domain_schema, r.domain_name) AND %Y(r.udt_schema, r.udt_name)"),
    {"information_schema",
     "domains",
     "%Y(r.domain_schema, r.domain_name) AND (r.udt_name IS NULL OR %Y(r.udt_schema, r.udt_name))",
     0,
     NULL,
     {{"domain_default",
       "CASE WHEN (r.domain_schema::pg_catalog.text, r.domain_name::pg_catalog.text) IN (SELECT "
       "vn.nspname::pg_catalog.text, vt.typname::pg_catalog.text FROM pg_catalog.pg_type vt JOIN "
       "pg_catalog.pg_namespace vn ON vn.oid = vt.typnamespace WHERE vt.typtype = 'd' AND "
       "%d(pg_type, vt.oid)) THEN NULL ELSE r.domain_default END"}}},
    IS("element_types",
       OBJECT_KIND("r.collection_type_identifier") " AND (r.udt_name IS NULL OR "
                                                   "%Y(r.udt_schema, r.udt_name))"),
    IS("enabled_roles", "%R(r.role_name)"),
    IS("foreign_data_wrapper_options", "true"),
    IS("foreign_data_wrappers", "true"),
    IS("foreign_server_options", "true"),
    IS("foreign_servers", "true"),
    IS("foreign_table_options", TBL("foreign_table_schema", "foreign_table_name")),
    IS("foreign_tables", TBL("foreign_table_schema", "foreign_table_name")),
    IS("information_schema_catalog_name", "true"),
    IS("key_column_usage",
       TBL_COL("table_schema", "table_name",
               "column_name") " AND %K(r.constraint_schema, r.constraint_name)"),
    IS("parameters", "%f(r.specific_schema, r.specific_name)"),
    IS("referential_constraints",
       "%K(r.constraint_schema, r.constraint_name) AND (r.unique_constraint_name IS NULL OR "
       "%K(r.unique_constraint_schema, r.unique_constraint_name))"),
    IS("role_column_grants", TBL_COL("table_schema", "table_name", "column_name")),
    IS("role_routine_grants", "%f(r.specific_schema, r.specific_name)"),
    IS("role_table_grants", TBL("table_schema", "table_name")),
    IS("role_udt_grants", "%Y(r.udt_schema, r.udt_name)"),
    IS("role_usage_grants", USAGE_KIND),
    IS("routine_column_usage", "%f(r.specific_schema, r.specific_name) AND " TBL_COL(
                                   "table_schema", "table_name", "column_name")),
    IS("routine_privileges", "%f(r.specific_schema, r.specific_name)"),
    IS("routine_routine_usage",
       "%f(r.specific_schema, r.specific_name) AND %f(r.routine_schema, r.routine_name)"),
    IS("routine_sequence_usage",
       "%f(r.specific_schema, r.specific_name) AND " TBL("sequence_schema", "sequence_name")),
    IS("routine_table_usage",
       "%f(r.specific_schema, r.specific_name) AND " TBL("table_schema", "table_name")),
    IS("routines", "%f(r.specific_schema, r.specific_name)"),
    IS("schemata", "%N(r.schema_name)"),
    IS("sequences", TBL("sequence_schema", "sequence_name")),
    /* The SQL standard's feature lists: constants of the server version. */
    IS("sql_features", AS_IS),
    IS("sql_implementation_info", AS_IS),
    IS("sql_parts", AS_IS),
    IS("sql_sizing", AS_IS),
    IS("table_constraints",
       TBL("table_schema", "table_name") " AND %K(r.constraint_schema, r.constraint_name)"),
    IS("table_privileges", TBL("table_schema", "table_name")),
    IS("tables", TBL("table_schema", "table_name")),
    IS("transforms", "%Y(r.udt_schema, r.udt_name)"),
    IS("triggered_update_columns",
       TBL_COL("event_object_schema", "event_object_table", "event_object_column")),
    IS("triggers",
       TBL("event_object_schema",
           "event_object_table") " AND "
                                 "(r.event_object_schema::pg_catalog.text, r.event_object_table::pg_catalog.text, "
                                 "r.trigger_name::pg_catalog.text) IN (SELECT vn.nspname::pg_catalog.text, "
                                 "vc.relname::pg_catalog.text, vg.tgname::pg_catalog.text FROM "
                                 "pg_catalog.pg_trigger vg JOIN pg_catalog.pg_class vc ON vc.oid = vg.tgrelid "
                                 "JOIN pg_catalog.pg_namespace vn ON vn.oid = vc.relnamespace WHERE vg.oid IN "
                                 "(SELECT vs.o FROM %{trig} vs))"),
    IS("udt_privileges", "%Y(r.udt_schema, r.udt_name)"),
    IS("usage_privileges", USAGE_KIND),
    IS("user_defined_types", "%Y(r.user_defined_type_schema, r.user_defined_type_name)"),
    IS("user_mapping_options", REFUSED),
    IS("user_mappings", REFUSED),
    IS("view_column_usage", TBL("view_schema", "view_name") " AND " TBL_COL(
                                "table_schema", "table_name", "column_name")),
    IS("view_routine_usage",
       TBL("table_schema", "table_name") " AND %f(r.specific_schema, r.specific_name)"),
    IS("view_table_usage",
       TBL("view_schema", "view_name") " AND " TBL("table_schema", "table_name")),
    {"information_schema",
     "views",
     TBL("table_schema", "table_name"),
     0,
     NULL,
     {{"view_definition",
       "CASE WHEN " VIEW_RULE_HIDDEN("table_schema",
                                     "table_name") " THEN NULL ELSE r.view_definition END"}}},
};

static const CatalogRule *catalog_rule(const char *schema, const char *name)
{
    for (size_t i = 0; i < PGW_ARRAY_LEN(catalog_rules); i++)
        if (strcmp(catalog_rules[i].name, name) == 0 &&
            strcmp(catalog_rules[i].schema, schema) == 0)
            return &catalog_rules[i];
    return NULL;
}


const char *policy_catalog_rule_at(size_t i, const char **schema)
{
    if (i >= PGW_ARRAY_LEN(catalog_rules))
        return NULL;
    *schema = catalog_rules[i].schema;
    return catalog_rules[i].name;
}

PgwCatalogAccess policy_catalog_access(const char *schema, const char *name)
{
    const CatalogRule *rule = catalog_rule(schema, name);
    if (rule == NULL)
        return PGW_CATALOG_UNKNOWN;
    if (rule->filter == NULL)
        return PGW_CATALOG_AS_IS;
    return rule->filter[0] == '\0' ? PGW_CATALOG_REFUSED : PGW_CATALOG_FILTERED;
}

unsigned policy_catalog_syscol(const char *column)
{
    static const struct {
        const char *name;
        unsigned bit;
    } syscols[] = {
        {"tableoid", PGW_SYSCOL_TABLEOID}, {"ctid", PGW_SYSCOL_CTID}, {"xmin", PGW_SYSCOL_XMIN},
        {"xmax", PGW_SYSCOL_XMAX},         {"cmin", PGW_SYSCOL_CMIN}, {"cmax", PGW_SYSCOL_CMAX},
    };
    for (size_t i = 0; i < PGW_ARRAY_LEN(syscols); i++)
        if (strcmp(syscols[i].name, column) == 0)
            return syscols[i].bit;
    return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Columns a stats view keeps whatever the relation: what it is about. */
static bool stats_identity(const char *column)
{
    static const char *const identity[] = {"relid",        "indexrelid",  "schemaname", "relname",
                                           "indexrelname", "datid",       "datname",    "funcid",
                                           "funcname",     "stats_reset", "name"};
    for (size_t i = 0; i < PGW_ARRAY_LEN(identity); i++)
        if (strcmp(identity[i], column) == 0)
            return true;
    return false;
}

static bool is_role_name_type(const char *type)
{
    return strcmp(type, "name") == 0 || strcmp(type, "information_schema.sql_identifier") == 0;
}

/* The expression (a template over alias r) that replaces a column, or NULL
 * when the column is shown as it is. */
static const char *column_override(const CatalogRule *rule, const PgwSchemaColumn *c, char *tmp,
                                   size_t tmplen)
{
    for (size_t i = 0; i < PGW_ARRAY_LEN(rule->overrides) && rule->overrides[i].column; i++)
        if (strcmp(rule->overrides[i].column, c->name) == 0)
            return rule->overrides[i].expr;
    bool infoschema = strcmp(rule->schema, "information_schema") == 0;
    if (strcmp(c->type, "aclitem[]") == 0) {
        snprintf(tmp, tmplen, "%%D(r.\"%s\")", c->name);
        return tmp;
    }
    if ((rule->flags & CAT_TENANT_DB) && strcmp(c->name, "datname") == 0)
        return "%T";
    if (infoschema && (ends_with(c->name, "_catalog") || strcmp(c->name, "catalog_name") == 0)) {
        snprintf(tmp, tmplen, "CASE WHEN r.\"%s\" IS NULL THEN NULL ELSE %%T END", c->name);
        return tmp;
    }
    if (is_role_name_type(c->type) &&
        (ends_with(c->name, "owner") || strcmp(c->name, "grantor") == 0 ||
         strcmp(c->name, "grantee") == 0)) {
        snprintf(tmp, tmplen, "CASE WHEN %%R(r.\"%s\") THEN r.\"%s\" END", c->name, c->name);
        return tmp;
    }
    if ((rule->flags & CAT_STATS) && !stats_identity(c->name)) {
        if (rule->stat_key == NULL)
            return "NULL";
        snprintf(tmp, tmplen, "CASE WHEN r.%s IN (SELECT s.o FROM %%{unf} s) THEN r.\"%s\" END",
                 rule->stat_key, c->name);
        return tmp;
    }
    return NULL;
}

static bool column_used(const PgwCatalogCtx *cc, const char *column)
{
    return cc->column_used == NULL || cc->column_used(cc->column_arg, column);
}

int policy_catalog_view(PgwCatalogCtx *cc, PgwBuf *b, const char *schema, const char *name,
                        const PgwSchemaTable *t)
{
    const CatalogRule *rule = catalog_rule(schema, name);
    if (rule == NULL || rule->filter == NULL || rule->filter[0] == '\0')
        return -1;
    char tmp[512];
    /* Columns the statement can read keep their rewritten values; with none
     * of those, the view is the catalog's own rows (SELECT *: shortest, and
     * a column nobody reads shows nothing). */
    bool columns =
        (cc->syscols != 0 && t != NULL && t->relkind == 'r') || (rule->flags & CAT_COLUMNS);
    if (t == NULL) {
        columns = rule->overrides[0].column != NULL ||
                  (rule->flags & (CAT_STATS | CAT_TENANT_DB | CAT_COLUMNS)) ||
                  strcmp(schema, "information_schema") == 0;
        if (columns)
            return -1; /* values to rewrite, and no column list to do it with */
    }
    for (size_t i = 0; !columns && t != NULL && i < t->ncolumns; i++)
        columns = column_used(cc, t->columns[i].name) &&
                  column_override(rule, &t->columns[i], tmp, sizeof(tmp)) != NULL;
    if (!columns) {
        buf_printf(b, "(SELECT * FROM %s.%s r WHERE ", rule->schema, rule->name);
        policy_catalog_expand(cc, b, rule->filter);
        return 0;
    }
    buf_append_str(b, "(SELECT ");
    size_t n = 0;
    for (size_t i = 0; i < t->ncolumns; i++) {
        const PgwSchemaColumn *c = &t->columns[i];
        if (!column_used(cc, c->name) && !(i + 1 == t->ncolumns && n == 0))
            continue;
        const char *expr = column_override(rule, c, tmp, sizeof(tmp));
        if (n++ > 0)
            buf_append_str(b, ", ");
        if (expr == NULL) {
            buf_append_str(b, "r.");
            policy_append_ident(b, c->name);
            continue;
        }
        buf_append_str(b, "CAST((");
        policy_catalog_expand(cc, b, expr);
        buf_printf(b, ") AS %s) AS ", c->type);
        policy_append_ident(b, c->name);
    }
    if (t->relkind == 'r') {
        /* tableoid and xmin as they are, the others NULL of their type
         * (see the opening comment). */
        static const struct {
            const char *name, *value;
        } syscols[] = {
            {"tableoid", "r.tableoid"},
            {"ctid", "NULL::pg_catalog.tid"},
            {"xmin", "r.xmin"},
            {"xmax", "NULL::pg_catalog.xid"},
            {"cmin", "NULL::pg_catalog.cid"},
            {"cmax", "NULL::pg_catalog.cid"},
        };
        for (size_t i = 0; i < PGW_ARRAY_LEN(syscols); i++)
            if (cc->syscols & policy_catalog_syscol(syscols[i].name)) {
                if (strncmp(syscols[i].value, "r.", 2) == 0)
                    buf_printf(b, ", %s", syscols[i].value);
                else
                    buf_printf(b, ", %s AS %s", syscols[i].value, syscols[i].name);
            }
    }
    buf_printf(b, " FROM %s.%s r WHERE ", rule->schema, rule->name);
    policy_catalog_expand(cc, b, rule->filter);
    return 0;
}

PgwCatalogAccess policy_catalog_rule_filter(const char *schema, const char *name,
                                            const char **filter)
{
    const CatalogRule *rule = catalog_rule(schema, name);
    *filter = rule != NULL ? rule->filter : NULL;
    return policy_catalog_access(schema, name);
}
