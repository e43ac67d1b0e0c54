/*
 * test_llm.c — unit tests for the LLM client (src/llm.c).
 *
 * What a user would notice if the client were wrong: a provider rejecting
 * pgwarden's requests, an answer misread (or a malformed one taken for SQL),
 * an ASK hanging past its timeout, a rate-limited provider hammered instead of
 * waited for, an API key leaking into an error message, or one slow model
 * call freezing every other client on the worker.
 *
 * The pure parts (request bodies, response parsing, Retry-After) are tables.
 * The rest runs real HTTP on a libevent loop against contrib/fake-llm, the
 * stand-in provider, started once for the whole suite on a free port; each
 * test installs the rules it needs with POST /_script and reads what the
 * server received from GET /_log. Those tests are skipped, with a message,
 * when /usr/bin/python3 is missing.
 */
#include <check.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "llm.h"

#ifndef TEST_SRCDIR
#define TEST_SRCDIR "."
#endif

#ifndef PYTHON
#define PYTHON "/usr/bin/python3"
#endif
#define FAKE_KEY "sk-test-SECRET-4711"

/* ---- request bodies ---- */

static const PgwLlmMessage one_question[] = {{"user", "top customers?"}};
static const PgwLlmMessage conversation[] = {
    {"user", "orders per month"},
    {"assistant", "SELECT 1"},
    {"user", "same, but 2023"},
};
static const PgwLlmMessage tricky_text[] = {{"user", "say \"hi\"\nnaïve ✓"}};
static const PgwLlmMessage missing_content[] = {{"user", NULL}};
static const PgwLlmMessage bad_utf8[] = {{"user", "\xff\xfe"}};

static const struct {
    const char *name;
    PgwLlmProvider provider;
    const char *model, *system;
    const PgwLlmMessage *msgs;
    size_t n;
    const char *expect; /* NULL: refused */
} body_cases[] = {
    {"openai with system", PGW_LLM_OPENAI, "gpt-4o-mini", "Be terse.", one_question, 1,
     "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"system\",\"content\":\"Be terse.\"},"
     "{\"role\":\"user\",\"content\":\"top customers?\"}]}"},
    {"openai without system", PGW_LLM_OPENAI, "m", NULL, one_question, 1,
     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"top customers?\"}]}"},
    {"openai empty system", PGW_LLM_OPENAI, "m", "", one_question, 1,
     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"top customers?\"}]}"},
    {"openai conversation", PGW_LLM_OPENAI, "m", "S", conversation, 3,
     "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"S\"},"
     "{\"role\":\"user\",\"content\":\"orders per month\"},"
     "{\"role\":\"assistant\",\"content\":\"SELECT 1\"},"
     "{\"role\":\"user\",\"content\":\"same, but 2023\"}]}"},
    {"anthropic with system", PGW_LLM_ANTHROPIC, "claude-x", "Be terse.", one_question, 1,
     "{\"model\":\"claude-x\",\"max_tokens\":1024,\"system\":\"Be terse.\","
     "\"messages\":[{\"role\":\"user\",\"content\":\"top customers?\"}]}"},
    {"anthropic without system", PGW_LLM_ANTHROPIC, "claude-x", NULL, conversation, 3,
     "{\"model\":\"claude-x\",\"max_tokens\":1024,\"messages\":["
     "{\"role\":\"user\",\"content\":\"orders per month\"},"
     "{\"role\":\"assistant\",\"content\":\"SELECT 1\"},"
     "{\"role\":\"user\",\"content\":\"same, but 2023\"}]}"},
    {"escaping", PGW_LLM_OPENAI, "m", "a\\b", tricky_text, 1,
     "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"a\\\\b\"},"
     "{\"role\":\"user\",\"content\":\"say \\\"hi\\\"\\nnaïve ✓\"}]}"},
    {"no model", PGW_LLM_OPENAI, NULL, "S", one_question, 1, NULL},
    {"empty model", PGW_LLM_ANTHROPIC, "", "S", one_question, 1, NULL},
    {"message without content", PGW_LLM_OPENAI, "m", "S", missing_content, 1, NULL},
    {"invalid UTF-8", PGW_LLM_OPENAI, "m", "S", bad_utf8, 1, NULL},
};

START_TEST(test_request_body)
{
    char *got = llm_request_body(body_cases[_i].provider, body_cases[_i].model,
                                 body_cases[_i].system, body_cases[_i].msgs, body_cases[_i].n);
    if (!body_cases[_i].expect)
        ck_assert_msg(got == NULL, "%s: expected refusal, got %s", body_cases[_i].name, got);
    else
        ck_assert_msg(got && strcmp(got, body_cases[_i].expect) == 0, "%s:\n got %s\nwant %s",
                      body_cases[_i].name, got ? got : "(null)", body_cases[_i].expect);
    free(got);
}
END_TEST

/* ---- response parsing ---- */

static const struct {
    const char *name;
    PgwLlmProvider provider;
    const char *body;
    const char *text; /* NULL: must fail */
    long prompt, completion;
    const char *error; /* substring of the error when it fails */
} parse_cases[] = {
    {"openai answer", PGW_LLM_OPENAI,
     "{\"id\":\"x\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":"
     "{\"role\":\"assistant\",\"content\":\"```sql\\nSELECT 1\\n```\"},"
     "\"finish_reason\":\"stop\"}],"
     "\"usage\":{\"prompt_tokens\":120,\"completion_tokens\":9,\"total_tokens\":129}}",
     "```sql\nSELECT 1\n```", 120, 9, NULL},
    {"openai without usage", PGW_LLM_OPENAI,
     "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"hi\"}}]}", "hi", 0, 0, NULL},
    {"openai empty content", PGW_LLM_OPENAI, "{\"choices\":[{\"message\":{\"content\":\"\"}}]}", "",
     0, 0, NULL},
    {"openai content parts", PGW_LLM_OPENAI,
     "{\"choices\":[{\"message\":{\"content\":[{\"type\":\"text\",\"text\":\"SELECT \"},"
     "{\"type\":\"text\",\"text\":\"2\"}]}}]}",
     "SELECT 2", 0, 0, NULL},
    {"openai empty choices", PGW_LLM_OPENAI, "{\"choices\":[]}", NULL, 0, 0, "no choices"},
    {"openai no choices", PGW_LLM_OPENAI, "{\"id\":\"x\"}", NULL, 0, 0, "no choices"},
    {"openai null content", PGW_LLM_OPENAI, "{\"choices\":[{\"message\":{\"content\":null}}]}",
     NULL, 0, 0, "no message content"},
    {"openai refusal", PGW_LLM_OPENAI,
     "{\"choices\":[{\"message\":{\"content\":null,\"refusal\":\"not allowed\"}}]}", NULL, 0, 0,
     "refused to answer: not allowed"},
    {"openai error object", PGW_LLM_OPENAI,
     "{\"error\":{\"message\":\"model overloaded\",\"type\":\"server_error\"}}", NULL, 0, 0,
     "error: model overloaded"},
    {"openai malformed", PGW_LLM_OPENAI, "{\"choices\": [ {\"message\": ", NULL, 0, 0,
     "not valid JSON"},
    {"not an object", PGW_LLM_OPENAI, "[1,2]", NULL, 0, 0, "not a JSON object"},
    {"empty body", PGW_LLM_OPENAI, "", NULL, 0, 0, "not valid JSON"},
    {"html error page", PGW_LLM_ANTHROPIC, "<html>502</html>", NULL, 0, 0, "not valid JSON"},
    {"anthropic answer", PGW_LLM_ANTHROPIC,
     "{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"text\","
     "\"text\":\"SELECT 3\"}],\"stop_reason\":\"end_turn\","
     "\"usage\":{\"input_tokens\":50,\"output_tokens\":4}}",
     "SELECT 3", 50, 4, NULL},
    {"anthropic several blocks", PGW_LLM_ANTHROPIC,
     "{\"content\":[{\"type\":\"thinking\",\"thinking\":\"hmm\"},"
     "{\"type\":\"text\",\"text\":\"A\"},"
     "{\"type\":\"tool_use\",\"id\":\"t\"},{\"type\":\"text\",\"text\":\"B\"}]}",
     "AB", 0, 0, NULL},
    {"anthropic cached tokens", PGW_LLM_ANTHROPIC,
     "{\"content\":[{\"type\":\"text\",\"text\":\"x\"}],\"usage\":{\"input_tokens\":5,"
     "\"cache_creation_input_tokens\":100,\"cache_read_input_tokens\":20,\"output_tokens\":2}}",
     "x", 125, 2, NULL},
    {"anthropic no text block", PGW_LLM_ANTHROPIC,
     "{\"content\":[{\"type\":\"tool_use\",\"id\":\"t\"}]}", NULL, 0, 0, "no text content"},
    {"anthropic empty content", PGW_LLM_ANTHROPIC, "{\"content\":[]}", NULL, 0, 0,
     "no text content"},
    {"anthropic openai-shaped body", PGW_LLM_ANTHROPIC,
     "{\"choices\":[{\"message\":{\"content\":\"hi\"}}]}", NULL, 0, 0, "no text content"},
    {"anthropic error", PGW_LLM_ANTHROPIC,
     "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}",
     NULL, 0, 0, "error: Overloaded"},
};

START_TEST(test_parse_response)
{
    char *text = (char *)"untouched", err[256] = "";
    long prompt = -1, completion = -1;
    const char *body = parse_cases[_i].body;
    /* An exact-length heap copy, so an over-read is visible under valgrind. */
    char *copy = malloc(strlen(body) + 1);
    memcpy(copy, body, strlen(body) + 1);

    int rc = llm_parse_response(parse_cases[_i].provider, copy, strlen(body), &text, &prompt,
                                &completion, err, sizeof(err));
    if (parse_cases[_i].text) {
        ck_assert_msg(rc == 0, "%s: failed: %s", parse_cases[_i].name, err);
        ck_assert_str_eq(text, parse_cases[_i].text);
        ck_assert_int_eq(prompt, parse_cases[_i].prompt);
        ck_assert_int_eq(completion, parse_cases[_i].completion);
        free(text);
    } else {
        ck_assert_msg(rc == -1, "%s: accepted", parse_cases[_i].name);
        ck_assert_ptr_null(text);
        ck_assert_msg(strstr(err, parse_cases[_i].error), "%s: error \"%s\" lacks \"%s\"",
                      parse_cases[_i].name, err, parse_cases[_i].error);
        ck_assert_int_eq(prompt, 0);
    }
    free(copy);
}
END_TEST

static const struct {
    const char *body;
    const char *expect; /* NULL: no message */
} error_message_cases[] = {
    {"{\"error\":{\"message\":\"Rate limit reached\",\"type\":\"requests\"}}",
     "Rate limit reached"},
    {"{\"type\":\"error\",\"error\":{\"type\":\"x\",\"message\":\"Overloaded\"}}", "Overloaded"},
    {"{\"error\":\"model not found\"}", "model not found"},
    {"{\"message\":\"bad\\nrequest\"}", "bad request"},
    {"{\"error\":{\"code\":42}}", NULL},
    {"<html>Bad Gateway</html>", NULL},
    {"", NULL},
};

START_TEST(test_error_message)
{
    const char *b = error_message_cases[_i].body;
    char *got = llm_error_message(b, strlen(b));
    if (error_message_cases[_i].expect)
        ck_assert_msg(got && strcmp(got, error_message_cases[_i].expect) == 0, "%s -> %s", b,
                      got ? got : "(null)");
    else
        ck_assert_msg(got == NULL, "%s -> %s", b, got);
    free(got);
}
END_TEST

/* ---- Retry-After ---- */

#define RFC_DATE_EPOCH 784111777 /* Sun, 06 Nov 1994 08:49:37 GMT */

static const struct {
    const char *value;
    time_t now;
    int expect;
} retry_cases[] = {
    {"5", 0, 5000},
    {" 2 ", 0, 2000},
    {"0", 0, 0},
    {"1.5", 0, 1500},
    {"99999999999", 0, INT_MAX},
    {"-1", 0, -1},
    {"+3", 0, -1},
    {"5s", 0, -1},
    {"soon", 0, -1},
    {"", 0, -1},
    {"   ", 0, -1},
    {NULL, 0, -1},
    {"Sun, 06 Nov 1994 08:49:37 GMT", RFC_DATE_EPOCH - 10, 10000},
    {"Sunday, 06-Nov-94 08:49:37 GMT", RFC_DATE_EPOCH - 3, 3000},
    {"Sun Nov  6 08:49:37 1994", RFC_DATE_EPOCH - 60, 60000},
    {"Sun, 06 Nov 1994 08:49:37 GMT", RFC_DATE_EPOCH + 100, 0},
    {"Funday, 06 Nov 1994 08:49:37 GMT", 0, -1},
    {"Sun, garbage", 0, -1},
};

START_TEST(test_retry_after)
{
    int got = llm_retry_after_ms_at(retry_cases[_i].value, retry_cases[_i].now);
    ck_assert_msg(got == retry_cases[_i].expect, "\"%s\": got %d, want %d",
                  retry_cases[_i].value ? retry_cases[_i].value : "(null)", got,
                  retry_cases[_i].expect);
}
END_TEST

START_TEST(test_retry_after_now)
{
    /* The wall-clock form: a date 30 s ahead is about 30 s away. */
    char date[64];
    time_t later = time(NULL) + 30;
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", gmtime(&later));
    int got = llm_retry_after_ms(date);
    ck_assert_msg(got >= 28000 && got <= 30000, "%s -> %d", date, got);
}
END_TEST

START_TEST(test_options_from_config)
{
    PgwConfig cfg;
    PgwLlmOptions opt;

    memset(&cfg, 0, sizeof(cfg));
    cfg.llm_provider = PGW_LLM_ANTHROPIC;
    cfg.llm_base_url = (char *)"https://api.anthropic.com/v1";
    cfg.llm_model = (char *)"claude-x";
    cfg.llm_api_key = (char *)"k";
    cfg.llm_timeout_ms = 1234;
    cfg.llm_max_attempts = 4;
    llm_options_from_config(&opt, &cfg);
    ck_assert_int_eq(opt.provider, PGW_LLM_ANTHROPIC);
    ck_assert_str_eq(opt.base_url, "https://api.anthropic.com/v1");
    ck_assert_str_eq(opt.model, "claude-x");
    ck_assert_str_eq(opt.api_key, "k");
    ck_assert_int_eq(opt.timeout_ms, 1234);
    ck_assert_int_eq(opt.max_attempts, 4);
}
END_TEST

/* ---- the fake provider ---- */

static pid_t fake_pid = -1;
static int fake_port;
static char fake_url[64];

static void fake_start(void)
{
    int fds[2];
    char line[128] = "";

    if (access(PYTHON, X_OK) != 0)
        return;
    if (pipe(fds) != 0)
        return;
    fake_pid = fork();
    if (fake_pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl(PYTHON, PYTHON, TEST_SRCDIR "/contrib/fake-llm/fake_llm.py", "--port", "0",
              "--expect-key", FAKE_KEY, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *out = fdopen(fds[0], "r");
    if (!out || !fgets(line, sizeof(line), out) || sscanf(line, "LISTENING %d", &fake_port) != 1)
        fake_port = 0;
    if (out)
        fclose(out);
    snprintf(fake_url, sizeof(fake_url), "http://127.0.0.1:%d/v1", fake_port);
}

static void fake_stop(void)
{
    if (fake_pid > 0) {
        kill(fake_pid, SIGTERM);
        waitpid(fake_pid, NULL, 0);
        fake_pid = -1;
    }
}

static size_t collect(char *data, size_t size, size_t n, void *userp)
{
    buf_append(userp, data, size * n);
    return size * n;
}

/* A blocking request to the fake's control endpoints (fine in a test). */
static char *fake_request(const char *path, const char *post_body)
{
    char url[128];
    PgwBuf out;
    CURL *h = curl_easy_init();
    long status = 0;

    buf_init(&out);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", fake_port, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &out);
    if (post_body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, post_body);
    ck_assert_int_eq(curl_easy_perform(h), CURLE_OK);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    ck_assert_msg(status == 200, "fake %s answered %ld", path, status);
    return buf_steal_str(&out);
}

static void fake_script(const char *rules)
{
    free(fake_request("/_script", rules));
    free(fake_request("/_reset", ""));
}

static json_t *fake_log(void)
{
    char *text = fake_request("/_log", NULL);
    json_t *log = json_loads(text, 0, NULL);
    free(text);
    ck_assert(json_is_array(log));
    return log;
}

static void setup_fake_test(void)
{
    ck_assert_msg(fake_port > 0, "the fake LLM did not start");
}

/* ---- running calls on an event loop ---- */

typedef struct Outcome {
    int done; /* times done() was called */
    int ok;
    char text[512];
    char error[512];
    long status, prompt, completion;
    int attempts;
    double latency_ms;
} Outcome;

typedef struct Loop {
    struct event_base *base;
    PgwLlm *llm;
    int pending;
} Loop;

typedef struct Pending {
    Loop *loop;
    Outcome out;
} Pending;

static void on_done(void *arg, PgwLlmResult *res)
{
    Pending *p = arg;
    p->out.done++;
    p->out.ok = res->ok;
    snprintf(p->out.text, sizeof(p->out.text), "%s", res->text ? res->text : "");
    snprintf(p->out.error, sizeof(p->out.error), "%s", res->error ? res->error : "");
    p->out.status = res->http_status;
    p->out.prompt = res->prompt_tokens;
    p->out.completion = res->completion_tokens;
    p->out.attempts = res->attempts;
    p->out.latency_ms = res->latency_ms;
    ck_assert_msg(res->ok ? res->text != NULL : res->error != NULL, "result without text/error");
    if (--p->loop->pending == 0)
        event_base_loopbreak(p->loop->base);
}

static void loop_init(Loop *l)
{
    l->base = event_base_new();
    ck_assert_ptr_nonnull(l->base);
    l->llm = llm_new(l->base);
    ck_assert_ptr_nonnull(l->llm);
    l->pending = 0;
}

/* Run until every call is done or limit_ms passes; returns the elapsed ms. */
static double loop_run(Loop *l, int limit_ms)
{
    struct timeval limit = {limit_ms / 1000, (limit_ms % 1000) * 1000};
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    event_base_loopexit(l->base, &limit);
    event_base_dispatch(l->base);
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0.tv_sec) * 1000.0 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
}

static void loop_free(Loop *l)
{
    llm_free(l->llm);
    event_base_free(l->base);
}

static PgwLlmOptions options(PgwLlmProvider provider)
{
    PgwLlmOptions o = {
        .provider = provider,
        .base_url = fake_url,
        .model = "fake-model",
        .api_key = FAKE_KEY,
        .timeout_ms = 5000,
        .max_attempts = 3,
    };
    return o;
}

/* One question, run to the end. */
static double ask_one(const PgwLlmOptions *opt, const char *question, Outcome *out)
{
    Loop l;
    Pending p = {&l, {0}};
    PgwLlmMessage msg = {"user", question};

    loop_init(&l);
    l.pending = 1;
    ck_assert_ptr_nonnull(llm_call(l.llm, opt, "You write SQL.", &msg, 1, on_done, &p));
    ck_assert_int_eq(p.out.done, 0); /* never inside llm_call */
    double ms = loop_run(&l, 15000);
    ck_assert_int_eq(llm_active_calls(l.llm), 0);
    loop_free(&l);
    ck_assert_msg(p.out.done == 1, "done() called %d times", p.out.done);
    *out = p.out;
    return ms;
}

static int log_count(void)
{
    json_t *log = fake_log();
    int n = (int)json_array_size(log);
    json_decref(log);
    return n;
}

START_TEST(test_openai_answer)
{
    Outcome o;
    fake_script("[{\"match\": \"top customers\","
                " \"reply\": \"```sql\\nSELECT name FROM customers\\n```\","
                " \"prompt_tokens\": 321, \"completion_tokens\": 12}]");
    PgwLlmOptions opt = options(PGW_LLM_OPENAI);
    ask_one(&opt, "schema here\nQuestion: top customers by revenue", &o);
    ck_assert_msg(o.ok, "error: %s", o.error);
    ck_assert_str_eq(o.text, "```sql\nSELECT name FROM customers\n```");
    ck_assert_int_eq(o.prompt, 321);
    ck_assert_int_eq(o.completion, 12);
    ck_assert_int_eq(o.attempts, 1);
    ck_assert_int_eq(o.status, 200);
    ck_assert(o.latency_ms > 0);

    /* What the provider received: the system prompt first, then the question,
     * and the key as a bearer token. */
    json_t *log = fake_log();
    ck_assert_int_eq(json_array_size(log), 1);
    json_t *req = json_array_get(log, 0);
    ck_assert_str_eq(json_string_value(json_object_get(req, "path")), "/v1/chat/completions");
    ck_assert(json_is_true(json_object_get(req, "key_matches")));
    json_t *body = json_object_get(req, "body");
    ck_assert_str_eq(json_string_value(json_object_get(body, "model")), "fake-model");
    json_t *msgs = json_object_get(body, "messages");
    ck_assert_int_eq(json_array_size(msgs), 2);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(msgs, 0), "role")), "system");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(msgs, 0), "content")),
                     "You write SQL.");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(msgs, 1), "role")), "user");
    ck_assert_str_eq(json_string_value(json_object_get(req, "question")),
                     "top customers by revenue");
    json_decref(log);
}
END_TEST

START_TEST(test_anthropic_answer)
{
    Outcome o;
    fake_script("[{\"match\": \"/orders per month/i\", \"reply\": \"SELECT 42\","
                " \"prompt_tokens\": 77, \"completion_tokens\": 3}]");
    PgwLlmOptions opt = options(PGW_LLM_ANTHROPIC);
    ask_one(&opt, "How many ORDERS PER MONTH?", &o);
    ck_assert_msg(o.ok, "error: %s", o.error);
    ck_assert_str_eq(o.text, "SELECT 42");
    ck_assert_int_eq(o.prompt, 77);
    ck_assert_int_eq(o.completion, 3);

    json_t *log = fake_log();
    json_t *req = json_array_get(log, 0);
    ck_assert_str_eq(json_string_value(json_object_get(req, "path")), "/v1/messages");
    ck_assert(json_is_true(json_object_get(req, "key_matches")));
    json_t *headers = json_object_get(req, "headers");
    ck_assert_str_eq(json_string_value(json_object_get(headers, "anthropic-version")),
                     "2023-06-01");
    json_t *body = json_object_get(req, "body");
    ck_assert_str_eq(json_string_value(json_object_get(body, "system")), "You write SQL.");
    ck_assert_int_eq(json_integer_value(json_object_get(body, "max_tokens")), 1024);
    ck_assert_int_eq(json_array_size(json_object_get(body, "messages")), 1);
    json_decref(log);
}
END_TEST

START_TEST(test_no_key_sent_when_none)
{
    Outcome o;
    fake_script("[]");
    PgwLlmOptions opt = options(PGW_LLM_OPENAI);
    opt.api_key = NULL;
    ask_one(&opt, "anything", &o);
    /* The fake insists on a key, so this is the 401 a user of a keyless setup sees. */
    ck_assert(!o.ok);
    ck_assert_int_eq(o.status, 401);
    ck_assert_int_eq(o.attempts, 1); /* auth errors are not retried */
    ck_assert_msg(strstr(o.error, "HTTP 401") && strstr(o.error, "api_key"), "%s", o.error);
    json_t *log = fake_log();
    ck_assert(json_is_false(json_object_get(json_array_get(log, 0), "key_present")));
    json_decref(log);
}
END_TEST

START_TEST(test_key_never_in_error)
{
    Outcome o;
    /* A provider echoing the key in its error (OpenAI does, partly). */
    fake_script("[{\"match\": \"\", \"status\": 400, \"error_message\": \"bad key " FAKE_KEY
                " for model\"}]");
    PgwLlmOptions opt = options(PGW_LLM_OPENAI);
    ask_one(&opt, "anything", &o);
    ck_assert(!o.ok);
    ck_assert_int_eq(o.status, 400);
    ck_assert_msg(strstr(o.error, "SECRET") == NULL, "key leaked: %s", o.error);
    ck_assert_msg(strstr(o.error, "bad key *** for model"), "%s", o.error);
}
END_TEST

START_TEST(test_rate_limited_then_answers)
{
    Outcome o;
    fake_script("[{\"match\": \"revenue\", \"status\": 429, \"retry_after\": 1, \"times\": 1,"
                " \"reply\": \"SELECT 1\"}]");
    PgwLlmOptions opt = options(PGW_LLM_OPENAI);
    ask_one(&opt, "revenue by month", &o);
    ck_assert_msg(o.ok, "error: %s", o.error);
    ck_assert_str_eq(o.text, "SELECT 1");
    ck_assert_int_eq(o.attempts, 2);
    /* Retry-After: 1 was honoured, not the 250 ms default backoff. */
    ck_assert_msg(o.latency_ms >= 1000, "retried after %.0f ms", o.latency_ms);
    json_t *log = fake_log();
    json_t *first = json_array_get(log, 0), *second = json_array_get(log, 1);
    ck_assert_int_eq(json_array_size(log), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(first, "status")), 429);
    double gap = json_real_value(json_object_get(second, "time")) -
                 json_real_value(json_object_get(first, "time"));
    ck_assert_msg(gap >= 0.95, "second request %.3f s after the first", gap);
    json_decref(log);
}
END_TEST

START_TEST(test_retry_after_beyond_deadline)
{
    Outcome o;
    fake_script("[{\"match\": \"\", \"status\": 429, \"retry_after\": 20}]");
    PgwLlmOptions opt = options(PGW_LLM_OPENAI);
    opt.timeout_ms = 500;
    double ms = ask_one(&opt, "anything", &o);
    /* Waiting 20 s cannot fit in 3 × 500 ms: fail now, not after the wait. */
    ck_assert(!o.ok);
    ck_assert_int_eq(o.attempts, 1);
    ck_assert_msg(strstr(o.error, "HTTP 429 (Too Many Requests)"), "%s", o.error);
    ck_assert_msg(ms < 1000, "took %.0f ms", ms);
}
END_TEST

START_TEST(test_server_error_exhausts_attempts)
{
    Outcome o;
    fake_script("[{\"match\": \"\", \"status\": 500}]");
    PgwLlmOptions opt = options(PGW_LLM_ANTHROPIC);
    ask_one(&opt, "anything", &o);
    ck_assert(!o.ok);
    ck_assert_int_eq(o.attempts, 3);
    ck_assert_int_eq(o.status, 500);
    ck_assert_msg(strstr(o.error, "LLM answered HTTP 500") && strstr(o.error, "scripted failure") &&
                      strstr(o.error, "after 3 attempts"),
                  "%s", o.error);
    /* Backoff waited at least half of 250 ms, then half of 500 ms. */
    ck_assert_msg(o.latency_ms >= 375, "three attempts in %.0f ms", o.latency_ms);
    ck_assert_int_eq(log_count(), 3);
}
END_TEST

START_TEST(test_malformed_not_retried)
{
    Outcome o;
    fake_script("[{\"match\": \"\", \"malformed\": true}]");
    PgwLlmOptions opt = options(PGW_LLM_OPENAI);
    ask_one(&opt, "anything", &o);
    ck_assert(!o.ok);
    ck_assert_int_eq(o.attempts, 1);
    ck_assert_int_eq(o.status, 200);
    ck_assert_str_eq(o.error, "LLM answer was not valid JSON");
    ck_assert_int_eq(log_count(), 1);
}
END_TEST

START_TEST(test_timeout)
{
    Outcome o;
    fake_script("[{\"match\": \"\", \"delay\": 3, \"reply\": \"too late\"}]");
    PgwLlmOptions opt = options(PGW_LLM_OPENAI);
    opt.timeout_ms = 300;
    double ms = ask_one(&opt, "anything", &o);
    ck_assert(!o.ok);
    ck_assert_str_eq(o.error, "LLM provider did not answer within 300 ms");
    ck_assert_int_eq(o.attempts, 1);
    ck_assert_msg(ms >= 290 && ms < 1500, "gave up after %.0f ms", ms);
}
END_TEST

START_TEST(test_unreachable)
{
    Outcome o;
    PgwLlmOptions opt = options(PGW_LLM_OPENAI);
    opt.base_url = "http://127.0.0.1:1/v1"; /* nothing listens on port 1 */
    opt.max_attempts = 2;
    ask_one(&opt, "anything", &o);
    ck_assert(!o.ok);
    ck_assert_int_eq(o.attempts, 2);
    ck_assert_int_eq(o.status, 0);
    ck_assert_msg(strncmp(o.error, "LLM provider unreachable: ", 26) == 0 &&
                      strstr(o.error, "after 2 attempts"),
                  "%s", o.error);
}
END_TEST

START_TEST(test_not_configured)
{
    Outcome o;
    PgwLlmOptions opt = options(PGW_LLM_OPENAI);
    opt.base_url = "";
    ask_one(&opt, "anything", &o); /* asserts done() is not called inside llm_call */
    ck_assert(!o.ok);
    ck_assert_int_eq(o.attempts, 0);
    ck_assert_str_eq(o.error, "LLM is not configured: [llm] base_url is empty");
    opt = options(PGW_LLM_ANTHROPIC);
    opt.model = NULL;
    ask_one(&opt, "anything", &o);
    ck_assert_str_eq(o.error, "LLM is not configured: [llm] model is empty");
}
END_TEST

static void abort_later(evutil_socket_t fd, short what, void *arg)
{
    llm_abort(arg);
}

START_TEST(test_abort_in_flight)
{
    Loop l;
    Pending aborted = {&l, {0}}, kept = {&l, {0}};
    PgwLlmMessage msg = {"user", "slow question"};
    PgwLlmOptions opt = options(PGW_LLM_OPENAI);

    fake_script("[{\"match\": \"slow\", \"delay\": 1, \"reply\": \"SELECT 1\"}]");
    loop_init(&l);
    l.pending = 1; /* only the kept call ends the loop */
    PgwLlmCall *a = llm_call(l.llm, &opt, NULL, &msg, 1, on_done, &aborted);
    ck_assert_ptr_nonnull(llm_call(l.llm, &opt, NULL, &msg, 1, on_done, &kept));
    ck_assert_int_eq(llm_active_calls(l.llm), 2);
    struct timeval at = {0, 100 * 1000};
    struct event *ev = evtimer_new(l.base, abort_later, a);
    evtimer_add(ev, &at);
    loop_run(&l, 5000);
    ck_assert_int_eq(aborted.out.done, 0);
    ck_assert_int_eq(kept.out.done, 1);
    ck_assert_msg(kept.out.ok, "the other call failed: %s", kept.out.error);
    ck_assert_int_eq(llm_active_calls(l.llm), 0);
    event_free(ev);
    loop_free(&l);
}
END_TEST

START_TEST(test_free_with_calls_running)
{
    Loop l;
    Pending p = {&l, {0}};
    PgwLlmMessage msg = {"user", "slow question"};
    PgwLlmOptions opt = options(PGW_LLM_OPENAI);

    fake_script("[{\"match\": \"slow\", \"delay\": 1, \"reply\": \"SELECT 1\"}]");
    loop_init(&l);
    l.pending = 1;
    ck_assert_ptr_nonnull(llm_call(l.llm, &opt, NULL, &msg, 1, on_done, &p));
    loop_run(&l, 200); /* the request is on the wire */
    loop_free(&l); /* a worker shutting down: no done(), no leak, no crash */
    ck_assert_int_eq(p.out.done, 0);
}
END_TEST

#define CONCURRENT 100

START_TEST(test_concurrent_calls)
{
    Loop l;
    Pending p[CONCURRENT];
    PgwLlmMessage msg = {"user", "Question: slow one"};
    PgwLlmOptions opt = options(PGW_LLM_OPENAI);

    fake_script("[{\"match\": \"slow\", \"delay\": 1, \"reply\": \"SELECT 1\"}]");
    loop_init(&l);
    l.pending = CONCURRENT;
    for (int i = 0; i < CONCURRENT; i++) {
        p[i] = (Pending){&l, {0}};
        ck_assert_ptr_nonnull(llm_call(l.llm, &opt, NULL, &msg, 1, on_done, &p[i]));
    }
    double ms = loop_run(&l, 10000);
    for (int i = 0; i < CONCURRENT; i++) {
        ck_assert_int_eq(p[i].out.done, 1);
        ck_assert_msg(p[i].out.ok, "call %d: %s", i, p[i].out.error);
    }
    /* A hundred 1-second answers side by side, not one after another (that
     * would take 100 s). The bound leaves room for a loaded machine: this
     * checks concurrency, not speed. */
    ck_assert_msg(ms >= 1000 && ms < 9500, "%d calls took %.0f ms", CONCURRENT, ms);
    ck_assert_int_eq(log_count(), CONCURRENT);
    loop_free(&l);
}
END_TEST

/* One worker thread: its own base and client, ten slow calls. No Check
 * assertions here (they belong to the test's thread); main checks the counts. */
#define PER_WORKER 10
typedef struct Worker {
    pthread_t thread;
    int ok;
    double ms;
} Worker;

static void *worker_main(void *arg)
{
    Worker *w = arg;
    Loop l = {event_base_new(), NULL, PER_WORKER};
    Pending p[PER_WORKER];
    PgwLlmMessage msg = {"user", "slow"};
    PgwLlmOptions opt = options(PGW_LLM_OPENAI);

    l.llm = llm_new(l.base);
    for (int i = 0; i < PER_WORKER; i++) {
        p[i] = (Pending){&l, {0}};
        if (!llm_call(l.llm, &opt, NULL, &msg, 1, on_done, &p[i]))
            l.pending--;
    }
    w->ms = loop_run(&l, 10000);
    for (int i = 0; i < PER_WORKER; i++)
        w->ok += p[i].out.done == 1 && p[i].out.ok;
    loop_free(&l);
    return NULL;
}

START_TEST(test_two_workers)
{
    Worker w[2] = {{0}};

    fake_script("[{\"match\": \"slow\", \"delay\": 1, \"reply\": \"SELECT 1\"}]");
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&w[i].thread, NULL, worker_main, &w[i]), 0);
    for (int i = 0; i < 2; i++) {
        pthread_join(w[i].thread, NULL);
        ck_assert_msg(w[i].ok == PER_WORKER, "worker %d: %d of %d answered", i, w[i].ok,
                      PER_WORKER);
        ck_assert_msg(w[i].ms < 3000, "worker %d took %.0f ms", i, w[i].ms);
    }
}
END_TEST

static void tick(evutil_socket_t fd, short what, void *arg)
{
    (*(int *)arg)++;
}

START_TEST(test_loop_not_blocked)
{
    /* While a slow call runs, a 50 ms timer on the same loop keeps firing. */
    Loop l;
    Pending p = {&l, {0}};
    PgwLlmMessage msg = {"user", "slow"};
    PgwLlmOptions opt = options(PGW_LLM_OPENAI);
    int ticks = 0;

    fake_script("[{\"match\": \"slow\", \"delay\": 1, \"reply\": \"SELECT 1\"}]");
    loop_init(&l);
    l.pending = 1;
    struct event *ev = event_new(l.base, -1, EV_PERSIST, tick, &ticks);
    struct timeval every = {0, 50 * 1000};
    event_add(ev, &every);
    ck_assert_ptr_nonnull(llm_call(l.llm, &opt, NULL, &msg, 1, on_done, &p));
    loop_run(&l, 5000);
    ck_assert(p.out.ok);
    ck_assert_msg(ticks >= 15, "only %d ticks in a 1 s call", ticks);
    event_free(ev);
    loop_free(&l);
}
END_TEST

static Suite *llm_suite(void)
{
    Suite *s = suite_create("llm");

    TCase *pure = tcase_create("pure");
    tcase_add_loop_test(pure, test_request_body, 0, PGW_ARRAY_LEN(body_cases));
    tcase_add_loop_test(pure, test_parse_response, 0, PGW_ARRAY_LEN(parse_cases));
    tcase_add_loop_test(pure, test_error_message, 0, PGW_ARRAY_LEN(error_message_cases));
    tcase_add_loop_test(pure, test_retry_after, 0, PGW_ARRAY_LEN(retry_cases));
    tcase_add_test(pure, test_retry_after_now);
    tcase_add_test(pure, test_options_from_config);
    suite_add_tcase(s, pure);

    if (access(PYTHON, X_OK) != 0) {
        fprintf(stderr,
                "test_llm: SKIPPED the HTTP tests: %s is missing (needed to run "
                "contrib/fake-llm/fake_llm.py)\n",
                PYTHON);
        return s;
    }
    TCase *http = tcase_create("http");
    tcase_set_timeout(http, 30);
    tcase_add_unchecked_fixture(http, fake_start, fake_stop);
    tcase_add_checked_fixture(http, setup_fake_test, NULL);
    tcase_add_test(http, test_openai_answer);
    tcase_add_test(http, test_anthropic_answer);
    tcase_add_test(http, test_no_key_sent_when_none);
    tcase_add_test(http, test_key_never_in_error);
    tcase_add_test(http, test_rate_limited_then_answers);
    tcase_add_test(http, test_retry_after_beyond_deadline);
    tcase_add_test(http, test_server_error_exhausts_attempts);
    tcase_add_test(http, test_malformed_not_retried);
    tcase_add_test(http, test_timeout);
    tcase_add_test(http, test_unreachable);
    tcase_add_test(http, test_not_configured);
    tcase_add_test(http, test_abort_in_flight);
    tcase_add_test(http, test_free_with_calls_running);
    tcase_add_test(http, test_concurrent_calls);
    tcase_add_test(http, test_loop_not_blocked);
    tcase_add_test(http, test_two_workers);
    suite_add_tcase(s, http);
    return s;
}

int main(void)
{
    /* The fake listens on 127.0.0.1; a proxy from the environment must not
     * stand in between. */
    static const char *const proxies[] = {"http_proxy",  "HTTP_PROXY", "https_proxy",
                                          "HTTPS_PROXY", "all_proxy",  "ALL_PROXY"};
    for (size_t i = 0; i < PGW_ARRAY_LEN(proxies); i++)
        unsetenv(proxies[i]);
    if (llm_global_init() != 0) {
        fprintf(stderr, "test_llm: curl_global_init failed\n");
        return 1;
    }
    SRunner *sr = srunner_create(llm_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    fake_stop();
    llm_global_cleanup();
    return failed == 0 ? 0 : 1;
}
