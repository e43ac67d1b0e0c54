/*
 * ask_recall.c — how often does ASK's local table choice put every table a
 * question needs into the prompt, and what does choosing cost?
 *
 * Input: pairs of directories, SCHEMAS_DIR QUESTIONS_DIR. Each database is
 * SCHEMAS_DIR/<db>/<db>.sql (CREATE TABLE and INSERT statements, parsed with
 * libpg_query) with optional column descriptions in <db>/<db>.json (the
 * defog-data layout); questions are every .csv file in QUESTIONS_DIR with the
 * columns question, query (gold SQL, sql-eval notation: {a,b} and several
 * accepted queries separated by ';') and db_name. Default: the eleven
 * defog-data databases and the sql-eval questions under
 * /work/shared/datasets; contrib/bench/ask_data holds more of our own.
 *
 * The schema becomes the rows ask_schema_introspection_sql() would return
 * and goes through ask_schema_build() with default_access = allow: the
 * gateway's path, no database needed. The INSERTs' distinct values of text
 * columns (a column with more than ASK_VALUES_PER_COLUMN does not qualify)
 * become the value rows the gateway reads from the tenant's rows, through
 * ask_values_build().
 *
 * A question's gold tables are the relations its gold SQL reads (RangeVars
 * minus CTE names); it is recalled when all gold tables of one accepted gold
 * query are among the tables chosen. The question text alone is used, never
 * its database name or instructions.
 *
 * Reported: (1) all databases merged side by side, each as a schema named
 * after it, recall of the first MAX tables of the ranking (with and without
 * the value index), per database, questions left with no table, time per
 * question; the choice and prompt within the default budget. (2) Each
 * database alone as a tenant would have it: the whole schema when it fits
 * the default budget, else the choice. (3) The choice's time on COPIES
 * copies of everything side by side (a few hundred tables).
 *
 * Usage: ask_recall [-v] [-n MAX] [-x COPIES] [SCHEMAS_DIR QUESTIONS_DIR]...
 *        -v lists the misses of (1). MAX defaults to 10, COPIES to 3.
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
#include "ask_schema.h"
#include "buf.h"
#include "policy_walk.h"

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

/* ---- databases: tables, columns, values ---- */

typedef struct Column {
    char *table, *name, *type, *comment, *ref_table, *ref_col;
    int attnum;
    bool not_null, pk, textual;
    /* distinct values from the INSERTs, for the value index */
    size_t nvalues, cap;
    char **values;
    bool too_many;
} Column;

typedef struct Db {
    char *name;
    size_t ncols, cap;
    Column *cols;
} Db;

typedef struct Dbs {
    size_t n, cap;
    Db *v;
} Dbs;

static void db_add_column(Db *db, Column c)
{
    if (db->ncols == db->cap) {
        db->cap = db->cap ? db->cap * 2 : 64;
        db->cols = pgw_realloc(db->cols, db->cap * sizeof(Column));
    }
    db->cols[db->ncols++] = c;
}

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

typedef struct Loader {
    Db *db;
    json_t *meta;
} Loader;

static void add_create(Loader *ld, const PgQuery__CreateStmt *cs)
{
    const char *table = cs->relation->relname;
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
        Column col = {0};
        col.table = pgw_strdup(table);
        col.name = pgw_strdup(cd->colname);
        col.type = buf_steal_str(&type);
        const char *comment = ld->meta != NULL ? json_comment(ld->meta, table, cd->colname) : NULL;
        col.comment = comment != NULL ? pgw_strdup(comment) : NULL;
        col.ref_table = ref_table != NULL ? pgw_strdup(ref_table) : NULL;
        col.ref_col = ref_col != NULL ? pgw_strdup(ref_col) : NULL;
        col.attnum = ++attnum;
        col.not_null = not_null;
        col.pk = pk;
        col.textual = strncmp(col.type, "text", 4) == 0 || strncmp(col.type, "character", 9) == 0;
        db_add_column(ld->db, col);
    }
}

static Column *find_col(Db *db, const char *table, const char *name, int attnum)
{
    for (size_t i = 0; i < db->ncols; i++)
        if (strcmp(db->cols[i].table, table) == 0 &&
            (name != NULL ? strcmp(db->cols[i].name, name) == 0 : db->cols[i].attnum == attnum))
            return &db->cols[i];
    return NULL;
}

static void add_value(Column *c, const char *v)
{
    if (c->too_many || !c->textual || *v == '\0')
        return;
    for (size_t i = 0; i < c->nvalues; i++)
        if (strcmp(c->values[i], v) == 0)
            return;
    if (c->nvalues == ASK_VALUES_PER_COLUMN) {
        /* More distinct values than the index takes per column: the
         * column does not qualify at all (as the gateway decides). */
        c->too_many = true;
        return;
    }
    if (c->nvalues == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->values = pgw_realloc(c->values, c->cap * sizeof(char *));
    }
    c->values[c->nvalues++] = pgw_strdup(v);
}

static void add_insert(Loader *ld, const PgQuery__InsertStmt *is)
{
    if (is->relation == NULL || is->select_stmt == NULL ||
        is->select_stmt->node_case != PG_QUERY__NODE__NODE_SELECT_STMT)
        return;
    const char *table = is->relation->relname;
    const PgQuery__SelectStmt *sel = is->select_stmt->select_stmt;
    for (size_t r = 0; r < sel->n_values_lists; r++) {
        const PgQuery__Node *row = sel->values_lists[r];
        if (row->node_case != PG_QUERY__NODE__NODE_LIST)
            continue;
        for (size_t i = 0; i < row->list->n_items; i++) {
            const PgQuery__Node *v = row->list->items[i];
            if (v->node_case == PG_QUERY__NODE__NODE_TYPE_CAST && v->type_cast->arg != NULL)
                v = v->type_cast->arg;
            if (v->node_case != PG_QUERY__NODE__NODE_A_CONST ||
                v->a_const->val_case != PG_QUERY__A__CONST__VAL_SVAL)
                continue;
            const char *name = NULL;
            if (i < is->n_cols && is->cols[i]->node_case == PG_QUERY__NODE__NODE_RES_TARGET)
                name = is->cols[i]->res_target->name;
            Column *c = find_col(ld->db, table, name, (int)i + 1);
            if (c != NULL)
                add_value(c, v->a_const->sval->sval);
        }
    }
}

static void visit_stmt(const ProtobufCMessage *m, void *arg)
{
    if (m->descriptor == &pg_query__create_stmt__descriptor)
        add_create(arg, (const PgQuery__CreateStmt *)m);
    else if (m->descriptor == &pg_query__insert_stmt__descriptor)
        add_insert(arg, (const PgQuery__InsertStmt *)m);
}

static int load_db(const char *dir, const char *name, Db *db)
{
    char path[2048];
    snprintf(path, sizeof(path), "%s/%s/%s.sql", dir, name, name);
    char *sql = read_file(path);
    if (sql == NULL) {
        fprintf(stderr, "cannot read %s\n", path);
        return -1;
    }
    snprintf(path, sizeof(path), "%s/%s/%s.json", dir, name, name);
    json_error_t jerr;
    json_t *json = json_load_file(path, 0, &jerr);
    PgQuery__ParseResult *tree = parse(sql);
    free(sql);
    if (tree == NULL) {
        fprintf(stderr, "cannot parse the %s schema\n", name);
        json_decref(json);
        return -1;
    }
    memset(db, 0, sizeof(*db));
    db->name = pgw_strdup(name);
    Loader ld = {db, json != NULL ? json_object_get(json, "table_metadata") : NULL};
    policy_walk_messages(&tree->base, visit_stmt, &ld);
    pg_query__parse_result__free_unpacked(tree, NULL);
    json_decref(json);
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every <name>/<name>.sql under dir, in name order. */
static int load_dir(const char *dir, Dbs *dbs)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "cannot open %s\n", dir);
        return -1;
    }
    char *names[256];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 256) {
        if (e->d_name[0] == '.')
            continue;
        char path[2048];
        snprintf(path, sizeof(path), "%s/%s/%s.sql", dir, e->d_name, e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        fclose(f);
        names[n++] = pgw_strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(char *), name_cmp);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (rc == 0) {
            if (dbs->n == dbs->cap) {
                dbs->cap = dbs->cap ? dbs->cap * 2 : 16;
                dbs->v = pgw_realloc(dbs->v, dbs->cap * sizeof(Db));
            }
            if (load_db(dir, names[i], &dbs->v[dbs->n]) == 0)
                dbs->n++;
            else
                rc = -1;
        }
        free(names[i]);
    }
    return rc;
}

/* The rows ask_schema_introspection_sql() and the value queries would
 * return for these databases, each as schema nsp (its own name when nsp is
 * NULL). Cells point into the Db structures. */
typedef struct Rows {
    size_t n, cap;
    const char **v;
} Rows;

static void rows_add(Rows *r, const char *const *cells, size_t ncols)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 1024;
        r->v = pgw_realloc(r->v, r->cap * ncols * sizeof(char *));
    }
    memcpy(r->v + r->n * ncols, cells, ncols * sizeof(char *));
    r->n++;
}

typedef struct Built {
    PgwAskSchema *schema;
    PgwAskValues *values;
    size_t ncolumns, nvalues;
} Built;

static char attnums[4096][8];

static void build(Db *const *dbs, size_t ndb, const char *nsp, int copies, Built *out)
{
    Rows rows = {0}, vrows = {0};
    char *copy_names[64 * 16];
    size_t ncopy = 0;
    for (int k = 0; k < copies; k++) {
        for (size_t d = 0; d < ndb; d++) {
            const Db *db = dbs[d];
            const char *schema = nsp != NULL ? nsp : db->name;
            if (copies > 1) {
                char name[256];
                snprintf(name, sizeof(name), "%s_%d", db->name, k + 1);
                schema = copy_names[ncopy++] = pgw_strdup(name);
            }
            for (size_t i = 0; i < db->ncols; i++) {
                const Column *c = &db->cols[i];
                const char *num = attnums[c->attnum < 4096 ? c->attnum : 4095];
                const char *cells[ASK_SCHEMA_NCOLS] = {
                    schema,
                    c->table,
                    "r",
                    NULL,
                    num,
                    c->name,
                    c->type,
                    c->not_null ? "t" : "f",
                    c->comment,
                    c->pk ? "t" : "f",
                    c->ref_table != NULL ? schema : NULL,
                    c->ref_table,
                    c->ref_col,
                };
                rows_add(&rows, cells, ASK_SCHEMA_NCOLS);
                for (size_t j = 0; !c->too_many && j < c->nvalues; j++) {
                    const char *vc[ASK_VALUES_NCOLS] = {schema, c->table, c->name, c->values[j]};
                    rows_add(&vrows, vc, ASK_VALUES_NCOLS);
                }
            }
        }
    }
    PgwConfig cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.default_access = PGW_ACCESS_ALLOW;
    out->schema = ask_schema_build(&cfg, NULL, rows.n, ASK_SCHEMA_NCOLS, rows.v);
    out->values = ask_values_build(out->schema, vrows.n, ASK_VALUES_NCOLS, vrows.v);
    out->ncolumns = rows.n;
    out->nvalues = ask_values_count(out->values);
    free(rows.v);
    free(vrows.v);
    for (size_t i = 0; i < ncopy; i++)
        free(copy_names[i]);
}

static void built_free(Built *b)
{
    ask_values_free(b->values);
    ask_schema_free(b->schema);
}

/* ---- questions ---- */

typedef struct Question {
    char *text;
    size_t db; /* index into the Dbs */
    size_t nalts;
    Names alts[16]; /* each accepted gold query's tables */
} Question;

typedef struct Questions {
    size_t n, cap;
    Question *v;
    int skipped;
} Questions;

static long db_index(const Dbs *dbs, const char *name)
{
    for (size_t i = 0; i < dbs->n; i++)
        if (strcmp(dbs->v[i].name, name) == 0)
            return (long)i;
    return -1;
}

static void gold_tables(const char *query, Question *q)
{
    char *expanded = expand_braces(query);
    PgQuerySplitResult split = pg_query_split_with_scanner(expanded);
    for (int s = 0; split.error == NULL && s < split.n_stmts && q->nalts < 16; s++) {
        char *one =
            pgw_strndup(expanded + split.stmts[s]->stmt_location, (size_t)split.stmts[s]->stmt_len);
        PgQuery__ParseResult *tree = parse(one);
        free(one);
        if (tree == NULL)
            continue;
        Gold g = {0};
        policy_walk_messages(&tree->base, visit_gold, &g);
        pg_query__parse_result__free_unpacked(tree, NULL);
        Names *a = &q->alts[q->nalts];
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
            q->nalts++;
    }
    pg_query_free_split_result(split);
    free(expanded);
}

static int load_questions(const char *dir, const Dbs *dbs, Questions *qs)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "cannot open %s\n", dir);
        return -1;
    }
    char *files[64];
    size_t nfiles = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && nfiles < 64) {
        size_t len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".csv") == 0)
            files[nfiles++] = pgw_strdup(e->d_name);
    }
    closedir(d);
    qsort(files, nfiles, sizeof(char *), name_cmp);
    for (size_t fi = 0; fi < nfiles; fi++) {
        char path[2048];
        snprintf(path, sizeof(path), "%s/%s", dir, files[fi]);
        free(files[fi]);
        char *csv = read_file(path);
        if (csv == NULL)
            continue;
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
        while (qcol >= 0 && scol >= 0 && dcol >= 0 && (nf = csv_record(&p, f, 16)) > 0) {
            long db = (size_t)qcol < nf && (size_t)scol < nf && (size_t)dcol < nf
                          ? db_index(dbs, f[dcol])
                          : -1;
            if (db >= 0) {
                Question q;
                memset(&q, 0, sizeof(q));
                gold_tables(f[scol], &q);
                if (q.nalts == 0) {
                    qs->skipped++;
                } else {
                    q.text = pgw_strdup(f[qcol]);
                    q.db = (size_t)db;
                    if (qs->n == qs->cap) {
                        qs->cap = qs->cap ? qs->cap * 2 : 256;
                        qs->v = pgw_realloc(qs->v, qs->cap * sizeof(Question));
                    }
                    qs->v[qs->n++] = q;
                }
            }
            for (size_t i = 0; i < nf; i++)
                free(f[i]);
        }
        free(csv);
    }
    return 0;
}

/* ---- scoring ---- */

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static bool picked_has(const PgwAskSchema *schema, const size_t *picked, size_t n, const char *nsp,
                       const char *table)
{
    long t = ask_schema_find_table(schema, nsp, table);
    for (size_t i = 0; t < 0 && i < ask_schema_ntables(schema); i++) {
        const char *sn, *tn;
        ask_schema_table_name(schema, i, &sn, &tn);
        if (strcmp(sn, nsp) == 0 && strcasecmp(tn, table) == 0)
            t = (long)i; /* gold names are lower-cased; "Track" was quoted */
    }
    for (size_t k = 0; t >= 0 && k < n; k++)
        if (picked[k] == (size_t)t)
            return true;
    return false;
}

/* 1 when all tables of one accepted gold query are picked; *first: the
 * first gold query's are. */
static bool recalled(const PgwAskSchema *schema, const Question *q, const char *nsp,
                     const size_t *picked, size_t n, bool *first)
{
    bool any = false;
    *first = false;
    for (size_t a = 0; a < q->nalts; a++) {
        bool all = true;
        for (size_t i = 0; i < q->alts[a].n && all; i++)
            all = picked_has(schema, picked, n, nsp, q->alts[a].v[i]);
        if (a == 0)
            *first = all;
        any = any || all;
    }
    return any;
}

static void print_miss(const PgwAskSchema *schema, const Question *q, const char *db,
                       const size_t *picked, size_t n)
{
    printf("MISS [%s] %s\n  gold:", db, q->text);
    for (size_t i = 0; i < q->alts[0].n; i++)
        printf(" %s", q->alts[0].v[i]);
    printf("\n  picked:");
    for (size_t k = 0; k < n; k++) {
        const char *sn, *tn;
        ask_schema_table_name(schema, picked[k], &sn, &tn);
        printf(" %s.%s", sn, tn);
    }
    printf("\n");
}

typedef struct Tally {
    int questions, recalled, first, empty;
} Tally;

/* One pass over the questions against one built schema: recall of the
 * first max tables of the ranking. dbfilter: only that database's
 * questions (-1: all); nsp: the schema its tables are in (NULL: named
 * after the database). */
static void run_ranking(const Built *b, bool with_values, const Dbs *dbs, const Questions *qs,
                        long dbfilter, const char *nsp, size_t max, bool verbose, Tally *total,
                        Tally *perdb, double *us, double *us_max)
{
    size_t *picked = pgw_malloc(max * sizeof(size_t));
    for (size_t i = 0; i < qs->n; i++) {
        const Question *q = &qs->v[i];
        if (dbfilter >= 0 && q->db != (size_t)dbfilter)
            continue;
        double t0 = now_us();
        size_t n = ask_rank_tables(b->schema, with_values ? b->values : NULL, q->text, NULL, 0, max,
                                   picked);
        double dt = now_us() - t0;
        if (us != NULL)
            *us += dt;
        if (us_max != NULL && dt > *us_max)
            *us_max = dt;
        bool first;
        const char *schema = nsp != NULL ? nsp : dbs->v[q->db].name;
        bool ok = recalled(b->schema, q, schema, picked, n, &first);
        Tally *ts[2] = {total, perdb != NULL ? &perdb[q->db] : NULL};
        for (int k = 0; k < 2; k++) {
            if (ts[k] == NULL)
                continue;
            ts[k]->questions++;
            ts[k]->recalled += ok;
            ts[k]->first += first;
            ts[k]->empty += n == 0;
        }
        if (!ok && verbose)
            print_miss(b->schema, q, dbs->v[q->db].name, picked, n);
    }
    free(picked);
}

static void usage(void)
{
    fprintf(stderr, "usage: ask_recall [-v] [-n MAX] [-x COPIES] [SCHEMAS_DIR QUESTIONS_DIR]...\n"
                    "  default: the defog-data and sql-eval directories under "
                    "/work/shared/datasets\n");
}

int main(int argc, char **argv)
{
    size_t max = 10;
    int copies = 3;
    bool verbose = false;
    const char *dirs[32];
    size_t ndirs = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0)
            verbose = true;
        else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            max = (size_t)atoi(argv[++i]);
        else if (strcmp(argv[i], "-x") == 0 && i + 1 < argc)
            copies = atoi(argv[++i]);
        else if (argv[i][0] == '-') {
            usage();
            return 2;
        } else if (ndirs < 32)
            dirs[ndirs++] = argv[i];
    }
    if (ndirs == 0) {
        dirs[ndirs++] = "/work/shared/datasets/defog-data";
        dirs[ndirs++] = "/work/shared/datasets/sql-eval";
    }
    if (ndirs % 2 != 0 || max == 0) {
        usage();
        return 2;
    }
    for (int i = 0; i < 4096; i++)
        snprintf(attnums[i], sizeof(attnums[i]), "%d", i);

    Dbs dbs = {0};
    Questions qs = {0};
    for (size_t i = 0; i < ndirs; i += 2) {
        size_t before = dbs.n;
        if (load_dir(dirs[i], &dbs) != 0)
            return 2;
        Dbs part = {dbs.n - before, 0, dbs.v + before};
        (void)part;
        if (load_questions(dirs[i + 1], &dbs, &qs) != 0)
            return 2;
    }
    if (qs.n == 0) {
        fprintf(stderr, "no questions with gold tables\n");
        return 2;
    }
    Db **all = pgw_malloc(dbs.n * sizeof(Db *));
    for (size_t i = 0; i < dbs.n; i++)
        all[i] = &dbs.v[i];

    /* 1. All databases merged, one schema each: the local choice has to
     * find the question's database too. */
    Built merged;
    build(all, dbs.n, NULL, 1, &merged);
    printf("merged: %zu databases, %zu tables, %zu columns, %zu values indexed, full DDL %zu "
           "bytes\n",
           dbs.n, ask_schema_ntables(merged.schema), merged.ncolumns, merged.nvalues,
           ask_schema_ddl_bytes(merged.schema));
    printf("questions with gold tables: %zu (skipped %d whose gold SQL reads no table)\n", qs.n,
           qs.skipped);
    Tally tot = {0}, novals = {0};
    Tally *perdb = pgw_calloc(dbs.n, sizeof(Tally));
    double us = 0.0, us_max = 0.0;
    run_ranking(&merged, true, &dbs, &qs, -1, NULL, max, verbose, &tot, perdb, &us, &us_max);
    run_ranking(&merged, false, &dbs, &qs, -1, NULL, max, false, &novals, NULL, NULL, NULL);
    printf("merged recall with at most %zu tables: %.1f%% (%d/%d); first gold query only: "
           "%.1f%%; questions with no table: %d\n",
           max, 100.0 * tot.recalled / tot.questions, tot.recalled, tot.questions,
           100.0 * tot.first / tot.questions, tot.empty);
    printf("  without the value index: %.1f%% (%d/%d)\n",
           100.0 * novals.recalled / novals.questions, novals.recalled, novals.questions);
    for (size_t i = 0; i < dbs.n; i++)
        printf("  %-16s %5.1f%% (%d/%d)\n", dbs.v[i].name,
               perdb[i].questions ? 100.0 * perdb[i].recalled / perdb[i].questions : 0.0,
               perdb[i].recalled, perdb[i].questions);
    printf("ranking: %.1f us per question on average, %.1f us at most\n", us / (double)qs.n,
           us_max);

    /* What the gateway does per ASK on the merged schema: choose within
     * the default budget and build the prompt. */
    PgwAskBudget budget;
    ask_budget_default(&budget);
    double prompt_us = 0.0, prompt_bytes = 0.0;
    for (size_t i = 0; i < qs.n; i++) {
        PgwAskPromptInput in = {.schema = merged.schema,
                                .values = merged.values,
                                .budget = &budget,
                                .question = qs.v[i].text};
        PgwAskPrompt prompt;
        double t0 = now_us();
        if (ask_prompt_build(&in, &prompt, NULL) != 0)
            return 2;
        prompt_us += now_us() - t0;
        prompt_bytes += (double)strlen(prompt.system);
        ask_prompt_free(&prompt);
    }
    printf("choice + prompt (budget %zu bytes, %zu-%zu tables): %.1f us per question, average "
           "system prompt %.0f bytes\n",
           budget.schema_bytes, budget.min_tables, budget.max_tables, prompt_us / (double)qs.n,
           prompt_bytes / (double)qs.n);

    /* 2. Each database alone, as a tenant would have it (schema public):
     * the whole schema when it fits the default budget, else the choice. */
    printf("\nper database (schema public, default budget %zu bytes):\n", budget.schema_bytes);
    Tally pd = {0}, pd_rank = {0};
    for (size_t d = 0; d < dbs.n; d++) {
        Built one;
        build(&all[d], 1, "public", 1, &one);
        bool whole = ask_schema_ddl_bytes(one.schema) <= budget.schema_bytes;
        Tally t = {0}, tr = {0};
        run_ranking(&one, true, &dbs, &qs, (long)d, "public", max, false, &tr, NULL, NULL, NULL);
        if (whole) {
            t = tr;
            t.recalled = t.first = t.questions;
        } else {
            t = tr;
        }
        printf("  %-16s %3zu tables %6zu bytes %-7s %5.1f%% (%d/%d); ranked alone, at most %zu: "
               "%5.1f%%\n",
               dbs.v[d].name, ask_schema_ntables(one.schema), ask_schema_ddl_bytes(one.schema),
               whole ? "whole" : "chosen", t.questions ? 100.0 * t.recalled / t.questions : 0.0,
               t.recalled, t.questions, max,
               tr.questions ? 100.0 * tr.recalled / tr.questions : 0.0);
        pd.questions += t.questions;
        pd.recalled += t.recalled;
        pd_rank.questions += tr.questions;
        pd_rank.recalled += tr.recalled;
        built_free(&one);
    }
    printf("per-database recall: %.1f%% (%d/%d); ranking alone at most %zu tables: %.1f%% "
           "(%d/%d)\n",
           100.0 * pd.recalled / pd.questions, pd.recalled, pd.questions, max,
           100.0 * pd_rank.recalled / pd_rank.questions, pd_rank.recalled, pd_rank.questions);

    /* 3. Scale: every database COPIES times side by side, for the time per
     * question on a few hundred tables. */
    if (copies > 1) {
        Built big;
        build(all, dbs.n, NULL, copies, &big);
        double big_us = 0.0, big_max = 0.0;
        size_t *picked = pgw_malloc(max * sizeof(size_t));
        for (size_t i = 0; i < qs.n; i++) {
            double t0 = now_us();
            PgwAskChoice c;
            if (ask_choose(big.schema, big.values, qs.v[i].text, NULL, 0, &budget, &c) != 0)
                return 2;
            double dt = now_us() - t0;
            ask_choice_free(&c);
            big_us += dt;
            if (dt > big_max)
                big_max = dt;
        }
        free(picked);
        printf("\nscale: %d copies, %zu tables, %zu values: choice %.1f us per question on "
               "average, %.1f us at most\n",
               copies, ask_schema_ntables(big.schema), big.nvalues, big_us / (double)qs.n, big_max);
        built_free(&big);
    }

    built_free(&merged);
    free(perdb);
    free(all);
    return 0;
}
