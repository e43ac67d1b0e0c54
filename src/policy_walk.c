/*
 * policy_walk.c — descriptor-driven traversal and comparison of protobuf
 * parse trees (see policy_walk.h).
 *
 * protobuf-c describes every field of every message with its type, label,
 * offset and, for oneofs and repeated fields, a quantifier offset. That is
 * enough to find every child message without a switch over node types, so
 * this file stays correct for node types it has never heard of.
 */
#include "policy_walk.h"

#include <string.h>

#define MEMBER(type, msg, off) (*(type *)((char *)(msg) + (off)))

static bool field_present(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f)
{
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return MEMBER(uint32_t, msg, f->quantifier_offset) == f->id;
    return true;
}

static int visit_slot(ProtobufCMessage **slot, PgwNodeVisitor fn, void *arg)
{
    if (*slot == NULL)
        return 0;
    if ((*slot)->descriptor == &pg_query__node__descriptor)
        return fn((PgQuery__Node **)slot, arg);
    return policy_walk_children(*slot, fn, arg);
}

static const ProtobufCFieldDescriptor *node_field(const PgQuery__Node *node);

int policy_walk_children(ProtobufCMessage *msg, PgwNodeVisitor fn, void *arg)
{
    if (msg == NULL)
        return 0;
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    if (d == &pg_query__node__descriptor) {
        /* A Node is a oneof of ~250 message types: go straight to the set
         * one instead of testing every field. */
        const ProtobufCFieldDescriptor *f = node_field((PgQuery__Node *)msg);
        return f != NULL ? visit_slot(&MEMBER(ProtobufCMessage *, msg, f->offset), fn, arg) : 0;
    }
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE || !field_present(msg, f))
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = MEMBER(size_t, msg, f->quantifier_offset);
            ProtobufCMessage **arr = MEMBER(ProtobufCMessage **, msg, f->offset);
            for (size_t j = 0; j < n; j++)
                if (visit_slot(&arr[j], fn, arg) < 0)
                    return -1;
        } else if (visit_slot(&MEMBER(ProtobufCMessage *, msg, f->offset), fn, arg) < 0) {
            return -1;
        }
    }
    return 0;
}

static const ProtobufCFieldDescriptor *node_field(const PgQuery__Node *node)
{
    if (node == NULL || node->node_case == PG_QUERY__NODE__NODE__NOT_SET)
        return NULL;
    return protobuf_c_message_descriptor_get_field(&pg_query__node__descriptor,
                                                   (unsigned)node->node_case);
}

ProtobufCMessage *policy_walk_inner(PgQuery__Node *node)
{
    const ProtobufCFieldDescriptor *f = node_field(node);
    return f != NULL ? MEMBER(ProtobufCMessage *, node, f->offset) : NULL;
}

const char *policy_walk_node_name(const PgQuery__Node *node)
{
    const ProtobufCFieldDescriptor *f = node_field(node);
    return f != NULL ? f->name : "unknown";
}

static bool is_position_field(const char *name)
{
    return strcmp(name, "location") == 0 || strcmp(name, "stmt_location") == 0 ||
           strcmp(name, "stmt_len") == 0;
}

static size_t scalar_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    default:
        return 4;
    }
}

static bool value_equal(const ProtobufCFieldDescriptor *f, const void *a, const void *b)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_MESSAGE:
        return policy_walk_equal(*(ProtobufCMessage *const *)a, *(ProtobufCMessage *const *)b);
    case PROTOBUF_C_TYPE_STRING: {
        const char *x = *(char *const *)a, *y = *(char *const *)b;
        return strcmp(x != NULL ? x : "", y != NULL ? y : "") == 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *x = a, *y = b;
        return x->len == y->len && (x->len == 0 || memcmp(x->data, y->data, x->len) == 0);
    }
    default:
        return memcmp(a, b, scalar_size(f->type)) == 0;
    }
}

static size_t value_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    default:
        return scalar_size(f->type);
    }
}

bool policy_walk_equal(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    if (a->descriptor != b->descriptor)
        return false;
    const ProtobufCMessageDescriptor *d = a->descriptor;
    if (d == &pg_query__node__descriptor) {
        const PgQuery__Node *x = (const PgQuery__Node *)a, *y = (const PgQuery__Node *)b;
        if (x->node_case != y->node_case)
            return false;
        const ProtobufCFieldDescriptor *f = node_field(x);
        return f == NULL || policy_walk_equal(MEMBER(ProtobufCMessage *, x, f->offset),
                                              MEMBER(ProtobufCMessage *, y, f->offset));
    }
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type == PROTOBUF_C_TYPE_INT32 && is_position_field(f->name))
            continue;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            bool pa = field_present(a, f), pb = field_present(b, f);
            if (pa != pb)
                return false;
            if (!pa)
                continue;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t na = MEMBER(size_t, a, f->quantifier_offset);
            size_t nb = MEMBER(size_t, b, f->quantifier_offset);
            if (na != nb)
                return false;
            const char *xa = MEMBER(const char *, a, f->offset);
            const char *xb = MEMBER(const char *, b, f->offset);
            size_t sz = value_size(f);
            for (size_t j = 0; j < na; j++)
                if (!value_equal(f, xa + j * sz, xb + j * sz))
                    return false;
        } else if (!value_equal(f, (const char *)a + f->offset, (const char *)b + f->offset)) {
            return false;
        }
    }
    return true;
}

void policy_walk_messages(const ProtobufCMessage *m, PgwMessageVisitor fn, void *arg)
{
    if (m == NULL)
        return;
    fn(m, arg);
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            ProtobufCMessage *const *v = *(ProtobufCMessage *const *const *)(base + f->offset);
            for (size_t k = 0; k < n; k++)
                policy_walk_messages(v[k], fn, arg);
            continue;
        }
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(base + f->quantifier_offset) != f->id)
            continue;
        policy_walk_messages(*(ProtobufCMessage *const *)(base + f->offset), fn, arg);
    }
}
