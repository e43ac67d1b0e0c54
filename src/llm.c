/*
 * llm.c — see llm.h. HTTP calls to an LLM provider, run by curl's multi
 * interface on a worker's libevent base.
 *
 * Integration: curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION)
 * and when it next needs a timeout (CURLMOPT_TIMERFUNCTION); we turn those
 * into libevent events on the worker's base, and when one fires we hand it
 * back with curl_multi_socket_action and then collect finished transfers with
 * curl_multi_info_read. No call here ever waits: DNS uses curl's threaded
 * resolver, backoff waits are event timers.
 *
 * One PgwLlmCall is one logical question; it may make several HTTP attempts.
 * 429, 408 and 5xx answers and connection failures are retried with
 * exponential backoff (or the provider's Retry-After), as long as the next
 * attempt can start before the call's deadline (timeout_ms × max_attempts
 * after it began). A timed-out attempt is not retried: the configured timeout
 * is how long a user is willing to wait for the model, and retrying would
 * multiply it. Malformed answers are not retried either: a provider that
 * answers nonsense once will usually do it again, and the ask module's own
 * correction rounds are the better place to spend attempts.
 *
 * The API key is held in the request headers and in one copy used to scrub
 * it out of any text we produce (a provider may echo it in an error); curl's
 * verbose output, which would print headers, is never turned on.
 */
#include "llm.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "log.h"

#define LLM_DEFAULT_TIMEOUT_MS 30000
#define LLM_CONNECT_TIMEOUT_MS 10000
#define LLM_BACKOFF_BASE_MS 250
#define LLM_BACKOFF_CAP_MS 8000
#define LLM_RETRY_AFTER_CAP_MS 30000
#define LLM_MAX_ANSWER_BYTES (4u << 20)
#define LLM_PROVIDER_MESSAGE_MAX 300
#define ANTHROPIC_VERSION "2023-06-01"
#define ANTHROPIC_MAX_TOKENS 1024

#ifdef PACKAGE_VERSION
#define LLM_USER_AGENT "pgwarden/" PACKAGE_VERSION
#else
#define LLM_USER_AGENT "pgwarden"
#endif

/* One socket curl asked us to watch. */
typedef struct LlmSocket {
    PgwLlm *llm;
    curl_socket_t fd;
    struct event *ev;
    struct LlmSocket *prev, *next;
} LlmSocket;

typedef enum {
    CALL_RUNNING, /* an HTTP attempt is in the multi handle */
    CALL_BACKOFF, /* timer fires: start the next attempt */
    CALL_FINISHING, /* timer fires: deliver the result (errors found before any I/O) */
} CallState;

struct PgwLlmCall {
    PgwLlm *llm;
    PgwLlmCall *prev, *next;
    PgwLlmProvider provider;
    char *api_key; /* only to scrub it from error text */
    char *url;
    char *body;
    struct curl_slist *headers;
    CURL *easy;
    bool in_multi;
    bool in_done;
    struct event *timer;
    CallState state;
    int timeout_ms;
    int max_attempts;
    struct timespec started;
    double deadline_ms; /* since started: no attempt begins after it */
    PgwBuf answer;
    bool answer_too_large;
    int retry_after_ms; /* from the last response's Retry-After; -1: none */
    int retry_after_precise_ms; /* from retry-after-ms (OpenAI); -1: none */
    char curl_error[CURL_ERROR_SIZE];
    PgwLlmResult res;
    PgwLlmDone done;
    void *arg;
};

struct PgwLlm {
    struct event_base *base;
    CURLM *multi;
    struct event *timer; /* curl's next timeout */
    PgwLlmCall *calls;
    LlmSocket *sockets;
    int ncalls;
    uint64_t rng;
};

static void collect_finished(PgwLlm *llm);
static void start_attempt(PgwLlmCall *call);

/* ---- small helpers ---- */

static double ms_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - t0->tv_sec) * 1000.0 + (now.tv_nsec - t0->tv_nsec) / 1e6;
}

static uint64_t llm_random(PgwLlm *llm)
{
    /* xorshift64: jitter only needs to spread clients apart, not be secret. */
    uint64_t x = llm->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    llm->rng = x;
    return x;
}

/* text with every occurrence of secret replaced by "***"; malloc'd. */
static char *scrub_secret(const char *text, const char *secret)
{
    PgwBuf out;
    size_t slen = secret ? strlen(secret) : 0;

    buf_init(&out);
    for (const char *p = text; *p;) {
        const char *hit = slen ? strstr(p, secret) : NULL;
        if (!hit) {
            buf_append_str(&out, p);
            break;
        }
        buf_append(&out, p, (size_t)(hit - p));
        buf_append_str(&out, "***");
        p = hit + slen;
    }
    return buf_steal_str(&out);
}

static const char *http_reason(long status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized: check the [llm] api_key";
    case 403:
        return "Forbidden: check the [llm] api_key";
    case 404:
        return "Not Found: check the [llm] base_url and model";
    case 408:
        return "Request Timeout";
    case 413:
        return "Payload Too Large";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 529:
        return "Overloaded";
    default:
        return NULL;
    }
}

static bool status_is_retryable(long status)
{
    return status == 408 || status == 429 || status >= 500;
}

static bool curl_error_is_retryable(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return true;
    default:
        return false;
    }
}

/* ---- pure helpers ---- */

char *llm_request_body(PgwLlmProvider p, const char *model, const char *system,
                       const PgwLlmMessage *msgs, size_t n)
{
    json_t *root = NULL, *messages = NULL;
    char *out = NULL;

    if (!model || !*model)
        return NULL;
    root = json_object();
    messages = json_array();
    if (!root || !messages)
        goto fail;
    json_object_set_new(root, "model", json_string(model));
    if (p == PGW_LLM_ANTHROPIC) {
        json_object_set_new(root, "max_tokens", json_integer(ANTHROPIC_MAX_TOKENS));
        if (system && *system)
            json_object_set_new(root, "system", json_string(system));
    } else if (system && *system) {
        json_array_append_new(messages,
                              json_pack("{s:s, s:s}", "role", "system", "content", system));
    }
    for (size_t i = 0; i < n; i++) {
        if (!msgs[i].role || !msgs[i].content)
            goto fail;
        json_t *m = json_pack("{s:s, s:s}", "role", msgs[i].role, "content", msgs[i].content);
        /* json_pack refuses text that is not valid UTF-8. */
        if (!m)
            goto fail;
        json_array_append_new(messages, m);
    }
    json_object_set(root, "messages", messages);
    out = json_dumps(root, JSON_COMPACT);
fail:
    json_decref(messages);
    json_decref(root);
    return out;
}

/* Copy at most LLM_PROVIDER_MESSAGE_MAX bytes of s, control characters as spaces. */
static char *clean_provider_text(const char *s, size_t len)
{
    size_t n = len < LLM_PROVIDER_MESSAGE_MAX ? len : LLM_PROVIDER_MESSAGE_MAX;
    char *out = pgw_strndup(s, n);
    for (char *p = out; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    }
    return out;
}

static const char *error_text_of(json_t *root)
{
    json_t *err = json_object_get(root, "error");
    if (json_is_string(err))
        return json_string_value(err);
    if (json_is_object(err) && json_is_string(json_object_get(err, "message")))
        return json_string_value(json_object_get(err, "message"));
    if (json_is_string(json_object_get(root, "message")))
        return json_string_value(json_object_get(root, "message"));
    return NULL;
}

char *llm_error_message(const char *body, size_t len)
{
    json_t *root = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    char *out = NULL;

    if (json_is_object(root)) {
        const char *msg = error_text_of(root);
        if (msg && *msg)
            out = clean_provider_text(msg, strlen(msg));
    }
    json_decref(root);
    return out;
}

static long token_count(json_t *usage, const char *key)
{
    json_t *v = json_object_get(usage, key);
    return json_is_integer(v) && json_integer_value(v) > 0 ? (long)json_integer_value(v) : 0;
}

/* Join the "text" of every {"type":"text"} block of a content array. */
static int join_text_blocks(json_t *blocks, PgwBuf *out)
{
    size_t i;
    json_t *b;
    int found = 0;

    json_array_foreach(blocks, i, b)
    {
        json_t *type = json_object_get(b, "type");
        json_t *text = json_object_get(b, "text");
        if (json_is_string(text) &&
            (!type || (json_is_string(type) && strcmp(json_string_value(type), "text") == 0))) {
            buf_append_str(out, json_string_value(text));
            found = 1;
        }
    }
    return found;
}

int llm_parse_response(PgwLlmProvider p, const char *body, size_t len, char **text,
                       long *prompt_tokens, long *completion_tokens, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = NULL;
    PgwBuf out;

    buf_init(&out);
    *text = NULL;
    *prompt_tokens = *completion_tokens = 0;
    root = body ? json_loadb(body, len, 0, &jerr) : NULL;
    if (!root) {
        snprintf(err, errlen, "LLM answer was not valid JSON");
        goto fail;
    }
    if (!json_is_object(root)) {
        snprintf(err, errlen, "LLM answer was not a JSON object");
        goto fail;
    }
    if (json_object_get(root, "error")) {
        const char *msg = error_text_of(root);
        if (!msg)
            msg = "no message";
        char *clean = clean_provider_text(msg, strlen(msg));
        snprintf(err, errlen, "LLM answered with an error: %s", clean);
        free(clean);
        goto fail;
    }
    if (p == PGW_LLM_ANTHROPIC) {
        json_t *content = json_object_get(root, "content");
        if (!json_is_array(content) || !join_text_blocks(content, &out)) {
            snprintf(err, errlen, "LLM answer had no text content");
            goto fail;
        }
        json_t *usage = json_object_get(root, "usage");
        /* Prompt caching moves input tokens into two other counters; a
         * token budget should see all of them. */
        *prompt_tokens = token_count(usage, "input_tokens") +
                         token_count(usage, "cache_creation_input_tokens") +
                         token_count(usage, "cache_read_input_tokens");
        *completion_tokens = token_count(usage, "output_tokens");
    } else {
        json_t *choices = json_object_get(root, "choices");
        if (!json_is_array(choices) || json_array_size(choices) == 0) {
            snprintf(err, errlen, "LLM answer had no choices");
            goto fail;
        }
        json_t *message = json_object_get(json_array_get(choices, 0), "message");
        json_t *content = json_object_get(message, "content");
        if (json_is_string(content)) {
            buf_append_str(&out, json_string_value(content));
        } else if (json_is_array(content) && join_text_blocks(content, &out)) {
            /* some compatible servers send content parts */
        } else if (json_is_string(json_object_get(message, "refusal"))) {
            char *clean =
                clean_provider_text(json_string_value(json_object_get(message, "refusal")),
                                    json_string_length(json_object_get(message, "refusal")));
            snprintf(err, errlen, "LLM refused to answer: %s", clean);
            free(clean);
            goto fail;
        } else {
            snprintf(err, errlen, "LLM answer had no message content");
            goto fail;
        }
        json_t *usage = json_object_get(root, "usage");
        *prompt_tokens = token_count(usage, "prompt_tokens");
        *completion_tokens = token_count(usage, "completion_tokens");
    }
    json_decref(root);
    *text = buf_steal_str(&out); /* an empty answer is still an answer */
    return 0;
fail:
    json_decref(root);
    buf_free(&out);
    *prompt_tokens = *completion_tokens = 0;
    return -1;
}

int llm_retry_after_ms_at(const char *value, time_t now)
{
    static const char *const days[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
    char copy[128];
    size_t len;

    if (!value)
        return -1;
    while (*value == ' ' || *value == '\t')
        value++;
    len = strlen(value);
    while (len && isspace((unsigned char)value[len - 1]))
        len--;
    if (len == 0 || len >= sizeof(copy))
        return -1;
    memcpy(copy, value, len);
    copy[len] = '\0';

    if (isdigit((unsigned char)copy[0])) {
        /* delay-seconds; a fraction is not in the RFC but some servers send one */
        char *end;
        errno = 0;
        double s = strtod(copy, &end);
        if (*end || errno == ERANGE || s < 0)
            return -1;
        return s * 1000.0 >= INT_MAX ? INT_MAX : (int)(s * 1000.0 + 0.5);
    }
    /* HTTP-date: all three RFC 7231 forms begin with a day name; curl's
     * parser is lenient, so ask for that first. */
    bool day = false;
    for (size_t i = 0; i < PGW_ARRAY_LEN(days); i++)
        day |= strncasecmp(copy, days[i], 3) == 0;
    if (!day)
        return -1;
    time_t t = curl_getdate(copy, NULL);
    if (t == (time_t)-1)
        return -1;
    if (t <= now)
        return 0;
    return (double)(t - now) * 1000.0 >= INT_MAX ? INT_MAX : (int)((t - now) * 1000);
}

int llm_retry_after_ms(const char *value)
{
    return llm_retry_after_ms_at(value, time(NULL));
}

/* ---- curl ↔ libevent ---- */

static void socket_free(LlmSocket *s)
{
    PgwLlm *llm = s->llm;
    if (s->prev)
        s->prev->next = s->next;
    else
        llm->sockets = s->next;
    if (s->next)
        s->next->prev = s->prev;
    if (s->ev)
        event_free(s->ev);
    free(s);
}

static void on_socket_event(evutil_socket_t fd, short what, void *arg)
{
    LlmSocket *s = arg;
    PgwLlm *llm = s->llm; /* s may be freed inside socket_action */
    int flags = 0, running;

    if (what & EV_READ)
        flags |= CURL_CSELECT_IN;
    if (what & EV_WRITE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(llm->multi, fd, flags, &running);
    collect_finished(llm);
}

static void on_curl_timer(evutil_socket_t fd, short what, void *arg)
{
    PgwLlm *llm = arg;
    int running;

    curl_multi_socket_action(llm->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    collect_finished(llm);
}

/* CURLMOPT_SOCKETFUNCTION: watch (or stop watching) one socket. */
static int curl_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    PgwLlm *llm = userp;
    LlmSocket *s = socketp;
    short events = EV_PERSIST;

    if (what == CURL_POLL_REMOVE) {
        if (s) {
            curl_multi_assign(llm->multi, fd, NULL);
            socket_free(s);
        }
        return 0;
    }
    if (!s) {
        s = pgw_calloc(1, sizeof(*s));
        s->llm = llm;
        s->fd = fd;
        s->next = llm->sockets;
        if (s->next)
            s->next->prev = s;
        llm->sockets = s;
        curl_multi_assign(llm->multi, fd, s);
    }
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= EV_READ;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= EV_WRITE;
    /* Same socket, new interest: reuse the event rather than reallocate. */
    if (s->ev) {
        event_del(s->ev);
        if (event_assign(s->ev, llm->base, fd, events, on_socket_event, s) != 0)
            goto fail;
    } else {
        s->ev = event_new(llm->base, fd, events, on_socket_event, s);
    }
    if (!s->ev || event_add(s->ev, NULL) != 0)
        goto fail;
    return 0;
fail:
    log_error("llm: cannot watch a socket of an LLM transfer");
    return -1;
}

/* CURLMOPT_TIMERFUNCTION: curl wants on_curl_timer after timeout_ms (-1: never). */
static int curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    PgwLlm *llm = userp;

    if (timeout_ms < 0) {
        evtimer_del(llm->timer);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    return evtimer_add(llm->timer, &tv) == 0 ? 0 : -1;
}

/* ---- calls ---- */

static size_t on_body(char *data, size_t size, size_t n, void *userp)
{
    PgwLlmCall *call = userp;
    size_t len = size * n;

    if (call->answer.len + len > LLM_MAX_ANSWER_BYTES) {
        call->answer_too_large = true;
        return 0; /* makes curl fail the transfer with CURLE_WRITE_ERROR */
    }
    buf_append(&call->answer, data, len);
    return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *userp)
{
    PgwLlmCall *call = userp;
    size_t len = size * n;
    char value[128];

    /* A new status line (after a 100 Continue, say) starts a new response. */
    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        call->retry_after_ms = -1;
        call->retry_after_precise_ms = -1;
        return len;
    }
    const char *colon = memchr(data, ':', len);
    if (!colon)
        return len;
    size_t name_len = (size_t)(colon - data);
    size_t value_len = len - name_len - 1;
    if (value_len >= sizeof(value))
        return len;
    memcpy(value, colon + 1, value_len);
    value[value_len] = '\0';
    if (name_len == 11 && strncasecmp(data, "retry-after", 11) == 0) {
        call->retry_after_ms = llm_retry_after_ms(value);
    } else if (name_len == 14 && strncasecmp(data, "retry-after-ms", 14) == 0) {
        char *end;
        double ms = strtod(value, &end);
        while (isspace((unsigned char)*end))
            end++;
        if (!*end && end != value && ms >= 0 && ms < INT_MAX)
            call->retry_after_precise_ms = (int)ms;
    }
    return len;
}

static void call_free(PgwLlmCall *call)
{
    PgwLlm *llm = call->llm;

    if (call->in_multi)
        curl_multi_remove_handle(llm->multi, call->easy);
    if (call->easy)
        curl_easy_cleanup(call->easy);
    curl_slist_free_all(call->headers);
    if (call->timer)
        event_free(call->timer);
    if (call->prev)
        call->prev->next = call->next;
    else
        llm->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    llm->ncalls--;
    if (call->api_key) {
        explicit_bzero(call->api_key, strlen(call->api_key));
        free(call->api_key);
    }
    free(call->url);
    free(call->body);
    buf_free(&call->answer);
    free(call->res.text);
    free(call->res.error);
    free(call);
}

/* Hand the result to the caller, then free the call. */
static void deliver(PgwLlmCall *call)
{
    call->res.latency_ms = ms_since(&call->started);
    call->in_done = true;
    call->done(call->arg, &call->res);
    call_free(call);
}

/* Record the error a user will see (API key scrubbed), with the attempt count. */
static void set_error(PgwLlmCall *call, const char *fmt, ...) PGW_PRINTF(2, 3);
static void set_error(PgwLlmCall *call, const char *fmt, ...)
{
    char text[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (call->res.attempts > 1) {
        size_t used = strlen(text);
        snprintf(text + used, sizeof(text) - used, " (after %d attempts)", call->res.attempts);
    }
    free(call->res.error);
    call->res.error = scrub_secret(text, call->api_key);
    call->res.ok = 0;
}

/* Report an error found before any I/O, from the event loop. */
static void finish_soon(PgwLlmCall *call, const char *error)
{
    static const struct timeval now = {0, 0};

    set_error(call, "%s", error);
    call->state = CALL_FINISHING;
    if (evtimer_add(call->timer, &now) != 0)
        log_error("llm: cannot schedule the end of an LLM call");
}

static void on_call_timer(evutil_socket_t fd, short what, void *arg)
{
    PgwLlmCall *call = arg;

    if (call->state == CALL_BACKOFF)
        start_attempt(call);
    else if (call->state == CALL_FINISHING)
        deliver(call);
}

static void start_attempt(PgwLlmCall *call)
{
    buf_reset(&call->answer);
    call->answer_too_large = false;
    call->retry_after_ms = -1;
    call->retry_after_precise_ms = -1;
    call->curl_error[0] = '\0';
    call->res.attempts++;
    if (curl_multi_add_handle(call->llm->multi, call->easy) != CURLM_OK) {
        finish_soon(call, "LLM call could not be started (curl refused the transfer)");
        return;
    }
    call->in_multi = true;
    call->state = CALL_RUNNING;
}

/* Wait and try again if the error allows it and time remains; else deliver. */
static void retry_or_deliver(PgwLlmCall *call, bool retryable)
{
    if (!retryable || call->res.attempts >= call->max_attempts) {
        deliver(call);
        return;
    }
    int wait_ms;
    int hinted =
        call->retry_after_precise_ms >= 0 ? call->retry_after_precise_ms : call->retry_after_ms;
    if (hinted >= 0) {
        wait_ms = hinted < LLM_RETRY_AFTER_CAP_MS ? hinted : LLM_RETRY_AFTER_CAP_MS;
    } else {
        int shift = call->res.attempts - 1 < 10 ? call->res.attempts - 1 : 10;
        int full = LLM_BACKOFF_BASE_MS << shift;
        if (full > LLM_BACKOFF_CAP_MS)
            full = LLM_BACKOFF_CAP_MS;
        /* "equal jitter": between half and all of the step */
        wait_ms = full / 2 + (int)(llm_random(call->llm) % (uint64_t)(full / 2 + 1));
    }
    if (ms_since(&call->started) + wait_ms > call->deadline_ms) {
        /* Waiting would outlast the call's deadline: fail now, not later. */
        deliver(call);
        return;
    }
    struct timeval tv = {wait_ms / 1000, (wait_ms % 1000) * 1000};
    call->state = CALL_BACKOFF;
    if (evtimer_add(call->timer, &tv) != 0)
        deliver(call);
}

/* One HTTP attempt ended with curl code rc: decide what the call does next. */
static void attempt_finished(PgwLlmCall *call, CURLcode rc)
{
    long status = 0;
    char err[512];

    curl_multi_remove_handle(call->llm->multi, call->easy);
    call->in_multi = false;
    curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status);
    call->res.http_status = status;

    if (rc != CURLE_OK) {
        const char *why = call->curl_error[0] ? call->curl_error : curl_easy_strerror(rc);
        if (call->answer_too_large) {
            set_error(call, "LLM answer was larger than %u MB", LLM_MAX_ANSWER_BYTES >> 20);
            retry_or_deliver(call, false);
        } else if (rc == CURLE_OPERATION_TIMEDOUT) {
            set_error(call, "LLM provider did not answer within %d ms", call->timeout_ms);
            retry_or_deliver(call, false);
        } else {
            set_error(call, "LLM provider unreachable: %s", why);
            retry_or_deliver(call, curl_error_is_retryable(rc));
        }
        return;
    }
    if (status >= 200 && status < 300) {
        char *text;
        if (llm_parse_response(call->provider, (const char *)call->answer.data, call->answer.len,
                               &text, &call->res.prompt_tokens, &call->res.completion_tokens, err,
                               sizeof(err)) == 0) {
            free(call->res.error);
            call->res.error = NULL;
            call->res.text = text;
            call->res.ok = 1;
            deliver(call);
        } else {
            set_error(call, "%s", err);
            retry_or_deliver(call, false);
        }
        return;
    }

    /* An HTTP error: say which, with the provider's own words when it gave any. */
    const char *reason = http_reason(status);
    char *detail = llm_error_message((const char *)call->answer.data, call->answer.len);
    if (!detail && call->answer.len)
        detail = clean_provider_text((const char *)call->answer.data, call->answer.len);
    set_error(call, "LLM answered HTTP %ld%s%s%s%s%s", status, reason ? " (" : "",
              reason ? reason : "", reason ? ")" : "", detail ? ": " : "", detail ? detail : "");
    free(detail);
    retry_or_deliver(call, status_is_retryable(status));
}

static void collect_finished(PgwLlm *llm)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(llm->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode rc = msg->data.result; /* msg dies with remove_handle */
        PgwLlmCall *call = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&call);
        if (call)
            attempt_finished(call, rc);
    }
}

#define SETOPT(h, opt, val)                                                                        \
    do {                                                                                           \
        if (curl_easy_setopt((h), (opt), (val)) != CURLE_OK)                                       \
            goto fail;                                                                             \
    } while (0)

/* Build the easy handle for the call's requests; 0 or -1. */
static int call_prepare(PgwLlmCall *call, const PgwLlmOptions *opt) PGW_WUR;
static int call_prepare(PgwLlmCall *call, const PgwLlmOptions *opt)
{
    PgwBuf b;
    struct curl_slist *h = NULL;
    const char *endpoint = call->provider == PGW_LLM_ANTHROPIC ? "/messages" : "/chat/completions";
    size_t base_len = strlen(opt->base_url);

    buf_init(&b);
    while (base_len && opt->base_url[base_len - 1] == '/')
        base_len--;
    buf_append(&b, opt->base_url, base_len);
    buf_append_str(&b, endpoint);
    call->url = buf_steal_str(&b);

    /* An empty "Expect:" stops curl waiting for 100 Continue on large prompts. */
    static const char *const fixed[] = {"Content-Type: application/json",
                                        "Accept: application/json", "Expect:"};
    for (size_t i = 0; i < PGW_ARRAY_LEN(fixed); i++) {
        struct curl_slist *n = curl_slist_append(h, fixed[i]);
        if (!n)
            goto fail;
        h = n;
    }
    if (call->provider == PGW_LLM_ANTHROPIC) {
        struct curl_slist *n = curl_slist_append(h, "anthropic-version: " ANTHROPIC_VERSION);
        if (!n)
            goto fail;
        h = n;
    }
    if (call->api_key) {
        buf_printf(&b, "%s%s",
                   call->provider == PGW_LLM_ANTHROPIC ? "x-api-key: " : "Authorization: Bearer ",
                   call->api_key);
        char *line = buf_steal_str(&b);
        struct curl_slist *n = curl_slist_append(h, line);
        explicit_bzero(line, strlen(line));
        free(line);
        if (!n)
            goto fail;
        h = n;
    }
    call->headers = h;
    h = NULL;

    call->easy = curl_easy_init();
    if (!call->easy)
        goto fail;
    SETOPT(call->easy, CURLOPT_URL, call->url);
    SETOPT(call->easy, CURLOPT_HTTPHEADER, call->headers);
    SETOPT(call->easy, CURLOPT_POSTFIELDS, call->body);
    SETOPT(call->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(call->body));
    SETOPT(call->easy, CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(call->easy, CURLOPT_WRITEDATA, call);
    SETOPT(call->easy, CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(call->easy, CURLOPT_HEADERDATA, call);
    SETOPT(call->easy, CURLOPT_PRIVATE, call);
    SETOPT(call->easy, CURLOPT_ERRORBUFFER, call->curl_error);
    SETOPT(call->easy, CURLOPT_TIMEOUT_MS, (long)call->timeout_ms);
    SETOPT(call->easy, CURLOPT_CONNECTTIMEOUT_MS,
           (long)(call->timeout_ms < LLM_CONNECT_TIMEOUT_MS ? call->timeout_ms
                                                            : LLM_CONNECT_TIMEOUT_MS));
    SETOPT(call->easy, CURLOPT_NOSIGNAL, 1L); /* worker threads: no SIGALRM */
    SETOPT(call->easy, CURLOPT_USERAGENT, LLM_USER_AGENT);
    SETOPT(call->easy, CURLOPT_ACCEPT_ENCODING, "");
#if LIBCURL_VERSION_NUM >= 0x075500
    SETOPT(call->easy, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    SETOPT(call->easy, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    return 0;
fail:
    curl_slist_free_all(h);
    buf_free(&b);
    return -1;
}

PgwLlmCall *llm_call(PgwLlm *llm, const PgwLlmOptions *opt, const char *system,
                     const PgwLlmMessage *msgs, size_t nmsgs, PgwLlmDone done, void *arg)
{
    PgwLlmCall *call;

    if (!llm || !opt || !done)
        return NULL;
    call = pgw_calloc(1, sizeof(*call));
    call->llm = llm;
    call->next = llm->calls;
    if (call->next)
        call->next->prev = call;
    llm->calls = call;
    llm->ncalls++;
    clock_gettime(CLOCK_MONOTONIC, &call->started);
    call->provider = opt->provider;
    call->done = done;
    call->arg = arg;
    call->timeout_ms = opt->timeout_ms > 0 ? opt->timeout_ms : LLM_DEFAULT_TIMEOUT_MS;
    call->max_attempts = opt->max_attempts > 0 ? opt->max_attempts : 1;
    call->deadline_ms = (double)call->timeout_ms * call->max_attempts;
    call->api_key = opt->api_key && *opt->api_key ? pgw_strdup(opt->api_key) : NULL;
    buf_init(&call->answer);
    call->timer = evtimer_new(llm->base, on_call_timer, call);
    if (!call->timer) {
        /* Without a timer the result cannot be delivered later; refuse now. */
        log_error("llm: cannot create a timer for an LLM call");
        call_free(call);
        return NULL;
    }

    if (!opt->base_url || !*opt->base_url) {
        finish_soon(call, "LLM is not configured: [llm] base_url is empty");
        return call;
    }
    if (!opt->model || !*opt->model) {
        finish_soon(call, "LLM is not configured: [llm] model is empty");
        return call;
    }
    call->body = llm_request_body(opt->provider, opt->model, system, msgs, nmsgs);
    if (!call->body) {
        finish_soon(call, "LLM request could not be built (a message is missing or not UTF-8)");
        return call;
    }
    if (call_prepare(call, opt) != 0) {
        finish_soon(call, "LLM request could not be set up (curl refused an option)");
        return call;
    }
    start_attempt(call);
    return call;
}

void llm_abort(PgwLlmCall *call)
{
    /* Inside done() the call is already ending and is freed on return. */
    if (!call || call->in_done)
        return;
    call_free(call);
}

int llm_active_calls(const PgwLlm *llm)
{
    return llm ? llm->ncalls : 0;
}

void llm_options_from_config(PgwLlmOptions *opt, const PgwConfig *cfg)
{
    memset(opt, 0, sizeof(*opt));
    opt->provider = cfg->llm_provider;
    opt->base_url = cfg->llm_base_url;
    opt->model = cfg->llm_model;
    opt->api_key = cfg->llm_api_key;
    opt->timeout_ms = cfg->llm_timeout_ms;
    opt->max_attempts = cfg->llm_max_attempts;
}

/* ---- lifetime ---- */

int llm_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

void llm_global_cleanup(void)
{
    curl_global_cleanup();
}

PgwLlm *llm_new(struct event_base *base)
{
    PgwLlm *llm = pgw_calloc(1, sizeof(*llm));
    struct timespec now;

    llm->base = base;
    clock_gettime(CLOCK_REALTIME, &now);
    llm->rng = ((uint64_t)now.tv_nsec << 20) ^ (uint64_t)now.tv_sec ^ (uintptr_t)llm;
    if (llm->rng == 0)
        llm->rng = 0x9e3779b97f4a7c15ull;
    llm->timer = evtimer_new(base, on_curl_timer, llm);
    llm->multi = curl_multi_init();
    if (!llm->timer || !llm->multi)
        goto fail;
    if (curl_multi_setopt(llm->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb) != CURLM_OK ||
        curl_multi_setopt(llm->multi, CURLMOPT_SOCKETDATA, llm) != CURLM_OK ||
        curl_multi_setopt(llm->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb) != CURLM_OK ||
        curl_multi_setopt(llm->multi, CURLMOPT_TIMERDATA, llm) != CURLM_OK)
        goto fail;
    return llm;
fail:
    if (llm->multi)
        curl_multi_cleanup(llm->multi);
    if (llm->timer)
        event_free(llm->timer);
    free(llm);
    return NULL;
}

void llm_free(PgwLlm *llm)
{
    if (!llm)
        return;
    while (llm->calls)
        call_free(llm->calls);
    /* Cleanup may still tell us to forget sockets of cached connections. */
    curl_multi_cleanup(llm->multi);
    while (llm->sockets)
        socket_free(llm->sockets);
    event_free(llm->timer);
    free(llm);
}
