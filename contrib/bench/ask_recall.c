/*
 * ask_recall.c — how often does ASK's local table choice put every table a
 * question needs into the prompt, on one large schema?
 *
 * All eleven defog-data databases are loaded side by side, each as its own
 * schema named after the database (several share table names: author,
 * writes, city, ...). The schema is built from the .sql files' CREATE TABLE
 * statements (parsed with libpg_query) with the .json column descriptions
 * as column comments, turned into the rows ask_schema_introspection_sql()
 * would return, and handed to ask_schema_build() with default_access = allow:
 * the same path the gateway takes, no database needed.
 *
 * For every sql-eval question whose gold SQL reads a table, the gold tables
 * are the relations its query reads (RangeVars minus CTE names, qualified by
 * the question's database). A question counts as recalled when, for at least
 * one of its accepted gold queries, all of them are among the tables
 * ask_select_tables() picks (at most MAX). The question alone is used, never
 * its database name or instructions.
 *
 * Also timed: ask_select_tables() + ask_build_prompt() per question — the
 * gateway's own work per ASK on this schema, the model call excluded.
 *
 * Usage: ask_recall [DATASETS_DIR] [MAX]   (default /work/shared/datasets, 10)
 *        -v lists the misses.
 */
#include <ctype.h>
#include <dirent.h>
#include <jansson.h>
#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ask.h"
#include "policy_walk.h"
#include "ask_schema.h"
#include "buf.h"

static const char *const databases[] = {
    "academic", "advising",  "atis",        "broker",  "car_dealership", "derm_treatment",
    "ewallet",  "geography", "restaurants", "scholar", "yelp",
};
#define NDB (sizeof(databases) / sizeof(databases[0]))

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    PgwBuf b;
    buf_init(&b);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_append(&b, chunk, n);
    fclose(f);
    return buf_steal_str(&b);
}

static char *lower(const char *s)
{
    char *c = pgw_strdup(s);
    for (char *p = c; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return c;
}


static PgQuery__ParseResult *parse(const char *sql)
{
    PgQueryProtobufParseResult pr = pg_query_parse_protobuf(sql);
    PgQuery__ParseResult *tree = NULL;
    if (pr.error == NULL)
        tree = pg_query__parse_result__unpack(NULL, pr.parse_tree.len,
                                              (const uint8_t *)pr.parse_tree.data);
    pg_query_free_protobuf_parse_result(pr);
    return tree;
}

/* ---- schema rows from CREATE TABLE ---- */

typedef struct Rows {
    size_t n, cap;
    char **v; /* n * ASK_SCHEMA_NCOLS */
} Rows;

static char *row_cell(const char *s)
{
    return s != NULL ? pgw_strdup(s) : NULL;
}

static void add_row(Rows *r, char *const cells[ASK_SCHEMA_NCOLS])
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 256;
        r->v = pgw_realloc(r->v, r->cap * ASK_SCHEMA_NCOLS * sizeof(char *));
    }
    memcpy(r->v + r->n * ASK_SCHEMA_NCOLS, cells, ASK_SCHEMA_NCOLS * sizeof(char *));
    r->n++;
}

static const char *sval(const PgQuery__Node *n)
{
    return n != NULL && n->node_case == PG_QUERY__NODE__NODE_STRING ? n->string->sval : "";
}

/* format_type()-like spelling of a TypeName. */
static void type_text(PgwBuf *b, const PgQuery__TypeName *tn)
{
    static const char *const names[][2] = {
        {"int2", "smallint"},
        {"int4", "integer"},
        {"int8", "bigint"},
        {"float4", "real"},
        {"float8", "double precision"},
        {"bool", "boolean"},
        {"varchar", "character varying"},
        {"bpchar", "character"},
        {"timestamp", "timestamp without time zone"},
        {"timestamptz", "timestamp with time zone"},
    };
    const char *name = sval(tn->names[tn->n_names - 1]);
    const char *shown = name;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(name, names[i][0]) == 0)
            shown = names[i][1];
    if (strcmp(name, "serial") == 0)
        shown = "integer";
    buf_append_str(b, shown);
    if (tn->n_typmods > 0) {
        buf_append_byte(b, '(');
        for (size_t i = 0; i < tn->n_typmods; i++) {
            const PgQuery__Node *m = tn->typmods[i];
            if (m->node_case == PG_QUERY__NODE__NODE_A_CONST &&
                m->a_const->val_case == PG_QUERY__A__CONST__VAL_IVAL)
                buf_printf(b, "%s%d", i ? "," : "", m->a_const->ival->ival);
        }
        buf_append_byte(b, ')');
    }
    if (tn->n_array_bounds > 0)
        buf_append_str(b, "[]");
}

/* Column descriptions from <db>.json: table (lower) -> column (lower) -> text. */
static const char *json_comment(json_t *meta, const char *table, const char *column)
{
    const char *key;
    json_t *cols;
    json_object_foreach(meta, key, cols)
    {
        if (strcasecmp(key, table) != 0)
            continue;
        size_t i;
        json_t *c;
        json_array_foreach(cols, i, c)
        {
            const char *name = json_string_value(json_object_get(c, "column_name"));
            const char *desc = json_string_value(json_object_get(c, "column_description"));
            if (name != NULL && strcasecmp(name, column) == 0)
                return desc != NULL && *desc != '\0' ? desc : NULL;
        }
    }
    return NULL;
}

typedef struct TableDef {
    Rows *rows;
    const char *db;
    json_t *meta;
} TableDef;

static void constraint_flags(const PgQuery__Constraint *c, bool *not_null, bool *pk,
                             const char **ref_table, const char **ref_col)
{
    if (c->contype == PG_QUERY__CONSTR_TYPE__CONSTR_NOTNULL)
        *not_null = true;
    if (c->contype == PG_QUERY__CONSTR_TYPE__CONSTR_PRIMARY) {
        *pk = true;
        *not_null = true;
    }
    if (c->contype == PG_QUERY__CONSTR_TYPE__CONSTR_FOREIGN && c->pktable != NULL) {
        *ref_table = c->pktable->relname;
        *ref_col = c->n_pk_attrs > 0 ? sval(c->pk_attrs[0]) : "id";
    }
}

static void add_create(TableDef *td, const PgQuery__CreateStmt *cs)
{
    const char *table = cs->relation->relname;
    /* Table-level PRIMARY KEY / FOREIGN KEY constraints first. */
    size_t ncols = 0;
    for (size_t i = 0; i < cs->n_table_elts; i++)
        if (cs->table_elts[i]->node_case == PG_QUERY__NODE__NODE_COLUMN_DEF)
            ncols++;
    int attnum = 0;
    for (size_t i = 0; i < cs->n_table_elts; i++) {
        const PgQuery__Node *e = cs->table_elts[i];
        if (e->node_case != PG_QUERY__NODE__NODE_COLUMN_DEF)
            continue;
        const PgQuery__ColumnDef *cd = e->column_def;
        bool not_null = cd->is_not_null, pk = false;
        const char *ref_table = NULL, *ref_col = NULL;
        for (size_t k = 0; k < cd->n_constraints; k++)
            if (cd->constraints[k]->node_case == PG_QUERY__NODE__NODE_CONSTRAINT)
                constraint_flags(cd->constraints[k]->constraint, &not_null, &pk, &ref_table,
                                 &ref_col);
        for (size_t k = 0; k < cs->n_table_elts; k++) {
            const PgQuery__Node *t = cs->table_elts[k];
            if (t->node_case != PG_QUERY__NODE__NODE_CONSTRAINT)
                continue;
            const PgQuery__Constraint *c = t->constraint;
            if (c->contype == PG_QUERY__CONSTR_TYPE__CONSTR_PRIMARY)
                for (size_t j = 0; j < c->n_keys; j++)
                    if (strcmp(sval(c->keys[j]), cd->colname) == 0)
                        pk = not_null = true;
            if (c->contype == PG_QUERY__CONSTR_TYPE__CONSTR_FOREIGN && c->pktable != NULL)
                for (size_t j = 0; j < c->n_fk_attrs; j++)
                    if (strcmp(sval(c->fk_attrs[j]), cd->colname) == 0) {
                        ref_table = c->pktable->relname;
                        ref_col = j < c->n_pk_attrs ? sval(c->pk_attrs[j]) : "id";
                    }
        }
        PgwBuf type;
        buf_init(&type);
        type_text(&type, cd->type_name);
        char num[16];
        snprintf(num, sizeof(num), "%d", ++attnum);
        char *cells[ASK_SCHEMA_NCOLS] = {
            row_cell(td->db),
            row_cell(table),
            row_cell("r"),
            NULL,
            row_cell(num),
            row_cell(cd->colname),
            buf_steal_str(&type),
            row_cell(not_null ? "t" : "f"),
            row_cell(json_comment(td->meta, table, cd->colname)),
            row_cell(pk ? "t" : "f"),
            row_cell(ref_table != NULL ? td->db : NULL),
            row_cell(ref_table),
            row_cell(ref_col),
        };
        add_row(td->rows, cells);
    }
}

static void visit_create(const ProtobufCMessage *m, void *arg)
{
    if (m->descriptor == &pg_query__create_stmt__descriptor)
        add_create(arg, (const PgQuery__CreateStmt *)m);
}

static int load_db(const char *dir, const char *db, Rows *rows)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/defog-data/%s/%s.sql", dir, db, db);
    char *sql = read_file(path);
    if (sql == NULL) {
        fprintf(stderr, "cannot read %s\n", path);
        return -1;
    }
    snprintf(path, sizeof(path), "%s/defog-data/%s/%s.json", dir, db, db);
    json_error_t jerr;
    json_t *json = json_load_file(path, 0, &jerr);
    PgQuery__ParseResult *tree = parse(sql);
    free(sql);
    if (tree == NULL) {
        fprintf(stderr, "cannot parse the %s schema\n", db);
        json_decref(json);
        return -1;
    }
    TableDef td = {rows, db, json != NULL ? json_object_get(json, "table_metadata") : NULL};
    policy_walk_messages(&tree->base, visit_create, &td);
    pg_query__parse_result__free_unpacked(tree, NULL);
    json_decref(json);
    return 0;
}

/* ---- questions ---- */

/* RFC 4180 CSV: returns fields of one record, advancing *p; NULL at end. */
static size_t csv_record(const char **p, char **fields, size_t max)
{
    const char *s = *p;
    if (*s == '\0')
        return 0;
    size_t n = 0;
    for (;;) {
        PgwBuf b;
        buf_init(&b);
        if (*s == '"') {
            s++;
            for (;;) {
                if (*s == '\0')
                    break;
                if (*s == '"' && s[1] == '"') {
                    buf_append_byte(&b, '"');
                    s += 2;
                } else if (*s == '"') {
                    s++;
                    break;
                } else {
                    buf_append_byte(&b, (uint8_t)*s++);
                }
            }
        }
        while (*s != '\0' && *s != ',' && *s != '\n' && *s != '\r')
            buf_append_byte(&b, (uint8_t)*s++);
        char *f = buf_steal_str(&b);
        if (n < max)
            fields[n++] = f;
        else
            free(f);
        if (*s == ',') {
            s++;
            continue;
        }
        while (*s == '\r' || *s == '\n')
            s++;
        break;
    }
    *p = s;
    return n;
}

/* {a,b} -> a and {} -> 1 outside string literals: one valid query. */
static char *expand_braces(const char *q)
{
    PgwBuf b;
    buf_init(&b);
    bool in_str = false;
    for (const char *p = q; *p; p++) {
        if (*p == '\'')
            in_str = !in_str;
        if (!in_str && *p == '{') {
            const char *end = strchr(p, '}');
            if (end == NULL)
                break;
            if (end == p + 1) {
                buf_append_str(&b, "1");
            } else {
                size_t n = strcspn(p + 1, ",}");
                buf_append(&b, p + 1, n);
            }
            p = end;
            continue;
        }
        buf_append_byte(&b, (uint8_t)*p);
    }
    return buf_steal_str(&b);
}

typedef struct Names {
    size_t n;
    char *v[64];
} Names;

static void names_add(Names *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], name) == 0)
            return;
    if (s->n < 64)
        s->v[s->n++] = lower(name);
}

typedef struct Gold {
    Names rels, ctes;
} Gold;

static void visit_gold(const ProtobufCMessage *m, void *arg)
{
    Gold *g = arg;
    if (m->descriptor == &pg_query__range_var__descriptor)
        names_add(&g->rels, ((const PgQuery__RangeVar *)m)->relname);
    if (m->descriptor == &pg_query__common_table_expr__descriptor)
        names_add(&g->ctes, ((const PgQuery__CommonTableExpr *)m)->ctename);
}

static void names_free(Names *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    s->n = 0;
}

typedef struct DbStat {
    int questions, recalled;
} DbStat;

static int db_index(const char *db)
{
    for (size_t i = 0; i < NDB; i++)
        if (strcmp(db, databases[i]) == 0)
            return (int)i;
    return -1;
}

static bool picked_has(const PgwAskSchema *schema, const size_t *picked, size_t n, const char *db,
                       const char *table)
{
    long t = ask_schema_find_table(schema, db, table);
    for (size_t k = 0; t >= 0 && k < n; k++)
        if (picked[k] == (size_t)t)
            return true;
    return false;
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

int main(int argc, char **argv)
{
    const char *dir = "/work/shared/datasets";
    size_t max = 10;
    bool verbose = false;
    int pos = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0)
            verbose = true;
        else if (pos++ == 0)
            dir = argv[i];
        else
            max = (size_t)atoi(argv[i]);
    }

    Rows rows = {0};
    for (size_t i = 0; i < NDB; i++)
        if (load_db(dir, databases[i], &rows) != 0)
            return 2;
    PgwConfig cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.default_access = PGW_ACCESS_ALLOW;
    PgwAskSchema *schema =
        ask_schema_build(&cfg, NULL, rows.n, ASK_SCHEMA_NCOLS, (const char *const *)rows.v);
    if (schema == NULL)
        return 2;
    size_t ntables = ask_schema_ntables(schema);
    char *ddl = ask_schema_ddl(schema, NULL, 0);
    printf("schema: %zu databases, %zu tables, %zu columns, full DDL %zu bytes\n", NDB, ntables,
           rows.n, strlen(ddl));
    free(ddl);

    static const char *const files[] = {"questions_gen_postgres.csv", "instruct_basic_postgres.csv",
                                        "instruct_advanced_postgres.csv", "idk.csv"};
    DbStat stats[NDB] = {{0}};
    int total = 0, recalled = 0, no_tables = 0, first_recalled = 0;
    double elapsed = 0.0, prompt_bytes = 0.0;
    size_t *picked = pgw_malloc(max * sizeof(size_t));
    for (size_t fi = 0; fi < sizeof(files) / sizeof(files[0]); fi++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/sql-eval/%s", dir, files[fi]);
        char *csv = read_file(path);
        if (csv == NULL) {
            fprintf(stderr, "cannot read %s\n", path);
            return 2;
        }
        const char *p = csv;
        char *hdr[16];
        size_t nh = csv_record(&p, hdr, 16);
        int qcol = -1, scol = -1, dcol = -1;
        for (size_t i = 0; i < nh; i++) {
            if (strcmp(hdr[i], "question") == 0)
                qcol = (int)i;
            if (strcmp(hdr[i], "query") == 0)
                scol = (int)i;
            if (strcmp(hdr[i], "db_name") == 0)
                dcol = (int)i;
            free(hdr[i]);
        }
        char *f[16];
        size_t nf;
        while ((nf = csv_record(&p, f, 16)) > 0) {
            if ((size_t)qcol >= nf || (size_t)scol >= nf || (size_t)dcol >= nf)
                goto next;
            int db = db_index(f[dcol]);
            if (db < 0)
                goto next;
            /* Each accepted gold query's tables. */
            char *expanded = expand_braces(f[scol]);
            PgQuerySplitResult split = pg_query_split_with_scanner(expanded);
            Names alts[16];
            size_t nalts = 0;
            for (int s = 0; split.error == NULL && s < split.n_stmts && nalts < 16; s++) {
                char *one = pgw_strndup(expanded + split.stmts[s]->stmt_location,
                                        (size_t)split.stmts[s]->stmt_len);
                PgQuery__ParseResult *tree = parse(one);
                free(one);
                if (tree == NULL)
                    continue;
                Gold g = {0};
                policy_walk_messages(&tree->base, visit_gold, &g);
                pg_query__parse_result__free_unpacked(tree, NULL);
                Names *a = &alts[nalts];
                a->n = 0;
                for (size_t i = 0; i < g.rels.n; i++) {
                    bool cte = false;
                    for (size_t k = 0; k < g.ctes.n; k++)
                        cte = cte || strcmp(g.rels.v[i], g.ctes.v[k]) == 0;
                    if (!cte)
                        names_add(a, g.rels.v[i]);
                }
                names_free(&g.rels);
                names_free(&g.ctes);
                if (a->n > 0)
                    nalts++;
            }
            pg_query_free_split_result(split);
            free(expanded);
            if (nalts == 0) {
                no_tables++;
                goto next;
            }

            double t0 = now_us();
            size_t n = ask_select_tables(schema, f[qcol], NULL, 0, max, picked);
            PgwAskPrompt prompt;
            if (ask_build_prompt(schema, picked, n, NULL, NULL, 0, f[qcol], NULL, NULL, &prompt) !=
                0)
                return 2;
            elapsed += now_us() - t0;
            prompt_bytes += (double)strlen(prompt.system);
            ask_prompt_free(&prompt);

            bool any = false;
            for (size_t a = 0; a < nalts; a++) {
                bool all = true;
                for (size_t i = 0; i < alts[a].n && all; i++)
                    all = picked_has(schema, picked, n, databases[db], alts[a].v[i]);
                if (a == 0 && all)
                    first_recalled++;
                any = any || all;
            }
            total++;
            stats[db].questions++;
            if (any) {
                recalled++;
                stats[db].recalled++;
            } else if (verbose) {
                printf("MISS [%s] %s\n  gold:", databases[db], f[qcol]);
                for (size_t i = 0; i < alts[0].n; i++)
                    printf(" %s", alts[0].v[i]);
                printf("\n  picked:");
                for (size_t k = 0; k < n; k++) {
                    const char *sn, *tn;
                    ask_schema_table_name(schema, picked[k], &sn, &tn);
                    printf(" %s.%s", sn, tn);
                }
                printf("\n");
            }
            for (size_t a = 0; a < nalts; a++)
                names_free(&alts[a]);
        next:
            for (size_t i = 0; i < nf; i++)
                free(f[i]);
        }
        free(csv);
    }

    printf("questions with gold tables: %d (skipped %d whose gold SQL reads no table)\n", total,
           no_tables);
    printf("recall with at most %zu tables: %.1f%% (%d/%d); first gold query only: %.1f%%\n", max,
           100.0 * recalled / total, recalled, total, 100.0 * first_recalled / total);
    for (size_t i = 0; i < NDB; i++)
        printf("  %-15s %5.1f%% (%d/%d)\n", databases[i],
               stats[i].questions ? 100.0 * stats[i].recalled / stats[i].questions : 0.0,
               stats[i].recalled, stats[i].questions);
    printf("ask_select_tables + ask_build_prompt: %.1f us per question (average system prompt "
           "%.0f bytes)\n",
           elapsed / total, prompt_bytes / total);

    free(picked);
    ask_schema_free(schema);
    for (size_t i = 0; i < rows.n * ASK_SCHEMA_NCOLS; i++)
        free(rows.v[i]);
    free(rows.v);
    return 0;
}
