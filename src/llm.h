/*
 * llm.h — pgwarden's client for LLM providers: one HTTP call in, the model's
 * text (or a user-readable reason it failed) out, on the caller's event loop.
 *
 * Two provider shapes are spoken: OpenAI chat completions (which also covers
 * Ollama, vLLM and llama.cpp servers through base_url) and Anthropic Messages.
 * Each worker thread owns one PgwLlm bound to its own event_base; the HTTP
 * transfers run through curl's multi interface driven by that base, so a slow
 * model never blocks another client on the same worker. Nothing is shared
 * between PgwLlm instances except curl's global state (llm_global_init).
 *
 * This module knows nothing about SQL, schemas or tenants: the ask module
 * builds the prompt and reads SQL out of the answer. It must never write the
 * API key into a log line or an error message.
 */
#ifndef PGW_LLM_H
#define PGW_LLM_H

#include <time.h>

#include "config.h" /* PgwLlmProvider */
#include "pgw.h"

struct event_base;

typedef struct PgwLlm PgwLlm;
typedef struct PgwLlmCall PgwLlmCall;

typedef struct PgwLlmMessage {
    const char *role; /* "user" or "assistant" */
    const char *content;
} PgwLlmMessage;

typedef struct PgwLlmOptions {
    PgwLlmProvider provider;
    const char *base_url; /* e.g. https://api.openai.com/v1; the endpoint path is appended */
    const char *model;
    const char *api_key; /* NULL or "": no key sent (local servers) */
    int timeout_ms; /* per attempt; <= 0: 30 s */
    int max_attempts; /* transport attempts in all (429, 5xx, connection errors); <= 0: 1 */
} PgwLlmOptions;

typedef struct PgwLlmResult {
    int ok; /* 1: text is the model's answer */
    char *text; /* the answer (ok) or NULL */
    char *error; /* !ok: what went wrong, fit for a user; never contains the API key */
    long http_status; /* of the last attempt; 0 if no HTTP answer */
    long prompt_tokens, completion_tokens; /* as the provider reported them; 0 if not */
    int attempts; /* HTTP requests made */
    double latency_ms; /* from llm_call to the result, backoff waits included */
} PgwLlmResult;

/* Called on the event loop when a call ends; res (and the call) are freed
 * when it returns, so keep copies of what you need and forget the call. */
typedef void (*PgwLlmDone)(void *arg, PgwLlmResult *res);

/* The [llm] settings of a config snapshot as call options. The strings are
 * borrowed from cfg; llm_call copies what it keeps. */
void llm_options_from_config(PgwLlmOptions *opt, const PgwConfig *cfg);

/* Once per process, before any worker thread starts. */
int llm_global_init(void) PGW_WUR;
void llm_global_cleanup(void);

/* A client bound to base (one per worker). NULL if curl cannot be set up. */
PgwLlm *llm_new(struct event_base *base);
/* Aborts every call still running (their done() is not called). Call it
 * before freeing base, and never from inside a done() callback. */
void llm_free(PgwLlm *llm);

/*
 * Start a call: system prompt (may be NULL) and the conversation msgs[0..n).
 * Everything needed is copied, so the arguments may be freed on return.
 * done(arg, res) is called later on the event loop — never inside llm_call —
 * with the answer or the error; bad options (no base_url, no model) are
 * reported that way too. Returns NULL only if llm or done is NULL.
 */
PgwLlmCall *llm_call(PgwLlm *llm, const PgwLlmOptions *opt, const char *system,
                     const PgwLlmMessage *msgs, size_t nmsgs, PgwLlmDone done, void *arg);
/* Cancel a call that has not finished (client cancel or disconnect): the
 * transfer or backoff wait stops, done() is never called, the call is freed. */
void llm_abort(PgwLlmCall *call);

/* Number of calls in progress on this client (for SHOW LLM and tests). */
int llm_active_calls(const PgwLlm *llm);

/* ---- pure helpers (no I/O), unit-tested ---- */

/* The JSON request body for provider p; malloc'd, NULL if model or a message
 * is missing. OpenAI: system becomes the first message (role "system").
 * Anthropic: "system" is a top-level field and max_tokens is set. */
char *llm_request_body(PgwLlmProvider p, const char *model, const char *system,
                       const PgwLlmMessage *msgs, size_t n);

/* Read the answer text and token counts out of a provider's 2xx body.
 * 0 on success (*text malloc'd); -1 with err filled if the body is not JSON,
 * is an error object, or lacks the answer text. Token counts are 0 when the
 * provider did not report them. */
int llm_parse_response(PgwLlmProvider p, const char *body, size_t len, char **text,
                       long *prompt_tokens, long *completion_tokens, char *err,
                       size_t errlen) PGW_WUR;

/* The provider's own message from an error body ({"error":{"message":…}}),
 * malloc'd, or NULL if there is none. */
char *llm_error_message(const char *body, size_t len);

/* A Retry-After value (delay-seconds or an HTTP-date) as milliseconds from
 * now (dates in the past give 0); -1 if unparsable. _at takes "now". */
int llm_retry_after_ms(const char *header_value);
int llm_retry_after_ms_at(const char *header_value, time_t now);

#endif
