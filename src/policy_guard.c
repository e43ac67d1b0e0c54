/*
 * policy_guard.c — the bounds the policy checks before anything recursive
 * runs on a statement: how deeply its parse tree nests, and whether the
 * calling thread has the stack the parse needs.
 *
 * Everything that handles a parse tree recurses once per nesting level:
 * libpg_query's parser output (about 175 bytes of stack per input byte in
 * the worst case, a chain like 1+1+1...), protobuf-c's unpack (about 1 kB
 * per level), our walks, the deparser and the verification. A statement of
 * a few kilobytes can nest thousands of levels, and one that overflows a
 * thread's stack kills the whole process, so:
 *
 *  - policy_guard_depth() reads libpg_query's packed protobuf iteratively,
 *    with an explicit stack, driven by the protobuf-c descriptors (so it
 *    knows which length-delimited fields are messages), and stops at the
 *    configured max_nesting_depth. The policy refuses deeper statements
 *    with 54001 before unpacking them; from then on every recursion is
 *    bounded by that depth.
 *  - libpg_query's own parse cannot be checked beforehand (it is what finds
 *    the depth), so it runs on a stack that can hold the worst case for the
 *    statement's length, and the rest of the rewrite on one that can hold
 *    the depth just measured: policy_guard_run() uses the calling thread
 *    when enough of its stack is left, else a helper thread created with
 *    that much. Only genuinely long or deep statements pay for a thread.
 *    The runtime normally makes the helper unnecessary (see policy.h: long
 *    statements go to a policy thread with PGW_POLICY_STACK_SIZE), but the
 *    policy does not trust its caller for the one failure that is fatal.
 *
 * The per-byte and per-level figures were measured with libpg_query 15-4
 * and protobuf-c 1.4 (see the report in policy.h); they carry a margin and
 * are tripled in AddressSanitizer builds, whose frames are larger.
 */
#define _GNU_SOURCE
#include "policy.h"
#include "policy_int.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

/* ---- depth of a packed message ---- */

typedef struct Frame {
    const ProtobufCMessageDescriptor *desc;
    size_t end;
} Frame;

static bool read_varint(const uint8_t *data, size_t len, size_t *pos, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*pos >= len)
            return false;
        uint8_t b = data[(*pos)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *out = v;
            return true;
        }
    }
    return false;
}

bool policy_guard_depth(const uint8_t *data, size_t len, int max, int *depth)
{
    if (max < 1)
        max = 1;
    Frame *stack = malloc(((size_t)max + 1) * sizeof(*stack));
    if (stack == NULL)
        return false;
    int top = 0, deepest = 1;
    stack[0] = (Frame){&pg_query__parse_result__descriptor, len};
    size_t pos = 0;
    bool ok = true;
    while (ok) {
        while (top >= 0 && pos == stack[top].end)
            top--;
        if (top < 0)
            break;
        uint64_t tag, n;
        if (pos > stack[top].end || !read_varint(data, stack[top].end, &pos, &tag)) {
            ok = false;
            break;
        }
        switch (tag & 7) {
        case 0: /* varint */
            ok = read_varint(data, stack[top].end, &pos, &n);
            break;
        case 1: /* 64-bit */
            ok = stack[top].end - pos >= 8;
            pos += 8;
            break;
        case 5: /* 32-bit */
            ok = stack[top].end - pos >= 4;
            pos += 4;
            break;
        case 2: { /* length-delimited: a message, a string or a packed array */
            if (!read_varint(data, stack[top].end, &pos, &n) || n > stack[top].end - pos) {
                ok = false;
                break;
            }
            const ProtobufCFieldDescriptor *f =
                protobuf_c_message_descriptor_get_field(stack[top].desc, (unsigned)(tag >> 3));
            if (f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                if (top + 1 >= max) {
                    deepest = max + 1;
                    ok = false;
                    break;
                }
                stack[++top] = (Frame){f->descriptor, pos + (size_t)n};
                if (top + 1 > deepest)
                    deepest = top + 1;
            } else {
                pos += (size_t)n;
            }
            break;
        }
        default: /* groups: never produced by libpg_query */
            ok = false;
        }
    }
    free(stack);
    if (depth != NULL)
        *depth = deepest;
    return ok;
}

/* ---- stack ---- */

#if defined(__SANITIZE_ADDRESS__)
#define STACK_FACTOR 3
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define STACK_FACTOR 3
#endif
#endif
#ifndef STACK_FACTOR
#define STACK_FACTOR 1
#endif

/* Measured worst cases (x86-64, -O2): libpg_query's parse of a statement
 * of n bytes needs up to 175 n bytes (SELECT 1+1+...+1); unpack, walk,
 * deparse and verification about 800 bytes per nesting level (protobuf-c
 * unpack dominates); the figures below carry a margin of two. */
#ifndef PARSE_BYTES_PER_BYTE /* overridable to measure (contrib/bench/policy_stack) */
#define PARSE_BYTES_PER_BYTE 200u
#define REWRITE_BYTES_PER_LEVEL 1536u
#define STACK_BASE (512u * 1024)
#endif

static _Thread_local uintptr_t stack_low; /* lowest usable address; 0: not known yet */

/* Bytes of stack left below the caller's frame; 0 when unknown. */
static size_t stack_left(void)
{
    char here;
    if (stack_low == 0) {
        pthread_attr_t a;
        void *addr;
        size_t size;
        if (pthread_getattr_np(pthread_self(), &a) != 0)
            return 0;
        int rc = pthread_attr_getstack(&a, &addr, &size);
        pthread_attr_destroy(&a);
        if (rc != 0)
            return 0;
        /* Keep clear of the guard page and what the C library may use. */
        stack_low = (uintptr_t)addr + 64 * 1024;
    }
    uintptr_t sp = (uintptr_t)&here;
    return sp > stack_low ? sp - stack_low : 0;
}

typedef struct Job {
    int (*fn)(void *);
    void *arg;
    int rc;
} Job;

static void *job_main(void *p)
{
    Job *j = p;
    j->rc = j->fn(j->arg);
    return NULL;
}

size_t policy_guard_parse_stack(size_t len)
{
    return (STACK_BASE + (size_t)PARSE_BYTES_PER_BYTE * len) * STACK_FACTOR;
}

size_t policy_guard_rewrite_stack(int depth)
{
    /* The rewritten tree nests a few levels deeper than the client's (the
     * derived tables, catalog views and OID wrappers spliced in). */
    size_t levels = (size_t)(depth > 0 ? depth : 0) + 64;
    return (STACK_BASE + (size_t)REWRITE_BYTES_PER_LEVEL * levels) * STACK_FACTOR;
}

int policy_guard_run(size_t need, int (*fn)(void *), void *arg)
{
    if (stack_left() >= need)
        return fn(arg);
    Job j = {fn, arg, -1};
    pthread_attr_t a;
    pthread_t th;
    if (pthread_attr_init(&a) != 0)
        return -1;
    size_t page = 64 * 1024;
    int rc = pthread_attr_setstacksize(&a, (need + page - 1) / page * page);
    if (rc == 0)
        rc = pthread_create(&th, &a, job_main, &j);
    pthread_attr_destroy(&a);
    if (rc != 0)
        return -1;
    pthread_join(th, NULL);
    return j.rc;
}
