/* Request bodies to exec_specs.
 *
 * The body is first checked by api_json_check_ex (which refuses what json-c
 * would let through or silently change), then parsed by json-c, then every
 * field is validated here.  The resulting spec points into memory that
 * req->priv owns: the json-c tree (strings are used in place, never copied)
 * and the few arrays built here (argv, envp, decoded stdin). */
#include "api/request.h"

#include <json-c/json.h> /* json_object_object_foreach needs linkhash.h too */
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/encode.h"
#include "common/signame.h"

enum field {
    F_COMMAND,
    F_FILE,
    F_ARGS,
    F_CWD,
    F_ENV,
    F_SHELL,
    F_ARGV0,
    F_STDIN,
    F_STDIN_ENCODING,
    F_ENCODING,
    F_TIMEOUT_MS,
    F_KILL_SIGNAL,
    F_MAX_BUFFER,
    F_UID,
    F_GID,
    F_STEPS,
    F_KIND,
    F_MODULE,
    F_EXEC_PATH,
    F_EXEC_ARGV,
    F_BACKPRESSURE,
    F__COUNT
};

static const char *const field_names[F__COUNT] = {
    [F_COMMAND] = "command",
    [F_FILE] = "file",
    [F_ARGS] = "args",
    [F_CWD] = "cwd",
    [F_ENV] = "env",
    [F_SHELL] = "shell",
    [F_ARGV0] = "argv0",
    [F_STDIN] = "stdin",
    [F_STDIN_ENCODING] = "stdin_encoding",
    [F_ENCODING] = "encoding",
    [F_TIMEOUT_MS] = "timeout_ms",
    [F_KILL_SIGNAL] = "kill_signal",
    [F_MAX_BUFFER] = "max_buffer",
    [F_UID] = "uid",
    [F_GID] = "gid",
    [F_STEPS] = "steps",
    [F_KIND] = "kind",
    [F_MODULE] = "module",
    [F_EXEC_PATH] = "exec_path",
    [F_EXEC_ARGV] = "exec_argv",
    [F_BACKPRESSURE] = "backpressure",
};

static const char *const kind_names[] = {
    [API_EXEC] = "exec",         [API_EXECFILE] = "execFile", [API_SPAWN] = "spawn",
    [API_PIPELINE] = "pipeline", [API_FORK] = "fork",         [API_JOB] = "job",
};

const char *api_kind_name(enum api_kind kind)
{
    return (unsigned)kind < sizeof kind_names / sizeof kind_names[0] ? kind_names[kind] : "?";
}

#define BIT(f) (1u << (f))
/* Options every kind takes at the top level. */
#define SHARED_FIELDS                                                                              \
    (BIT(F_CWD) | BIT(F_ENV) | BIT(F_SHELL) | BIT(F_STDIN) | BIT(F_STDIN_ENCODING) |               \
     BIT(F_ENCODING) | BIT(F_TIMEOUT_MS) | BIT(F_KILL_SIGNAL) | BIT(F_UID) | BIT(F_GID))

static const unsigned kind_fields[] = {
    [API_EXEC] = SHARED_FIELDS | BIT(F_COMMAND) | BIT(F_ARGV0) | BIT(F_MAX_BUFFER),
    [API_EXECFILE] = SHARED_FIELDS | BIT(F_FILE) | BIT(F_ARGS) | BIT(F_ARGV0) | BIT(F_MAX_BUFFER),
    [API_SPAWN] = SHARED_FIELDS | BIT(F_COMMAND) | BIT(F_ARGS) | BIT(F_ARGV0),
    /* cwd, env and shell are the defaults of the steps. */
    [API_PIPELINE] = SHARED_FIELDS | BIT(F_STEPS),
    [API_FORK] = (SHARED_FIELDS & ~BIT(F_SHELL)) | BIT(F_MODULE) | BIT(F_ARGS) | BIT(F_EXEC_PATH) |
                 BIT(F_EXEC_ARGV),
};

#define STEP_FIELDS                                                                                \
    (BIT(F_COMMAND) | BIT(F_ARGS) | BIT(F_CWD) | BIT(F_ENV) | BIT(F_SHELL) | BIT(F_ARGV0))

#define MAX_ID 4294967294ull /* (uid_t)-1 means "unchanged" to the kernel */

/* What req->priv points to. */
struct mem {
    struct json_object *root;
    void **blocks;
    size_t nblocks, cap;
};

struct ctx {
    const struct api_config *cfg;
    struct mem *mem;
    struct api_error *err;
    const char *prefix; /* "" or "steps[1]." */
};

static char *const empty_env[] = {NULL};

static void *mem_alloc(struct ctx *c, size_t n)
{
    struct mem *m = c->mem;
    if (m->nblocks == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 8;
        void **blocks = realloc(m->blocks, cap * sizeof *blocks);
        if (!blocks) goto nomem;
        m->blocks = blocks;
        m->cap = cap;
    }
    void *p = calloc(1, n ? n : 1);
    if (!p) goto nomem;
    m->blocks[m->nblocks++] = p;
    return p;
nomem:
    api_error_set(c->err, API_ERR_UNAVAILABLE, NULL, "out of memory");
    return NULL;
}

/* Format a field name for errors into buf; a name too long for
 * api_error.field is cut. */
__attribute__((format(printf, 3, 4))) static const char *fieldf(char *buf, size_t size,
                                                                const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return buf;
}

/* The name of a field as errors report it: prefix + name. */
static const char *path(const struct ctx *c, char *buf, size_t size, const char *name)
{
    return fieldf(buf, size, "%s%s", c->prefix, name);
}

/* Sort the members of obj into f[] by name, refusing names not in allowed.
 * A member whose value is null counts as absent, as in Node. */
static int collect(struct ctx *c, struct json_object *obj, unsigned allowed,
                   struct json_object *f[F__COUNT])
{
    memset(f, 0, F__COUNT * sizeof *f);
    json_object_object_foreach(obj, key, val)
    {
        int i = 0;
        while (i < F__COUNT && (strcmp(key, field_names[i]) != 0 || !(allowed & BIT(i))))
            i++;
        if (i == F__COUNT) {
            char p[sizeof c->err->field];
            path(c, p, sizeof p, key);
            return api_error_set(c->err, API_ERR_INVALID_ARG_VALUE, p, "unknown field \"%s\"", p);
        }
        f[i] = val;
    }
    return 0;
}

/* A string that becomes a C string: no NUL inside. */
static int cstring(struct ctx *c, struct json_object *v, const char *field, bool nonempty,
                   const char **out)
{
    if (!json_object_is_type(v, json_type_string))
        return api_error_set(c->err, API_ERR_INVALID_ARG_TYPE, field, "\"%s\" must be a string",
                             field);
    const char *s = json_object_get_string(v);
    size_t len = (size_t)json_object_get_string_len(v);
    if (strlen(s) != len)
        return api_error_set(c->err, API_ERR_INVALID_ARG_VALUE, field,
                             "\"%s\" must not contain NUL bytes", field);
    if (nonempty && len == 0)
        return api_error_set(c->err, API_ERR_INVALID_ARG_VALUE, field, "\"%s\" must not be empty",
                             field);
    *out = s;
    return 0;
}

/* An integer in [min, max].  json-c clamps integers it cannot hold to
 * INT64_MIN / INT64_MAX (UINT64_MAX for the unsigned ones) without telling;
 * every max here is far below INT64_MAX, so a clamped value is refused as
 * out of range, never used. */
static int integer(struct ctx *c, struct json_object *v, const char *field, uint64_t min,
                   uint64_t max, uint64_t *out)
{
    if (!json_object_is_type(v, json_type_int))
        return api_error_set(c->err, API_ERR_INVALID_ARG_TYPE, field, "\"%s\" must be an integer",
                             field);
    int64_t x = json_object_get_int64(v);
    if (x < 0 || (uint64_t)x < min || (uint64_t)x > max)
        return api_error_set(c->err, API_ERR_INVALID_ARG_VALUE, field,
                             "\"%s\" must be an integer from %llu to %llu", field,
                             (unsigned long long)min, (unsigned long long)max);
    *out = (uint64_t)x;
    return 0;
}

/* One of the names in choices (NULL-terminated); returns its index. */
static int choice(struct ctx *c, struct json_object *v, const char *field,
                  const char *const *choices, int *out)
{
    const char *s;
    if (cstring(c, v, field, false, &s)) return -1;
    for (int i = 0; choices[i]; i++) {
        if (strcmp(s, choices[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    return api_error_set(c->err, API_ERR_INVALID_ARG_VALUE, field,
                         "\"%s\" must be \"%s\" or \"%s\"", field, choices[0], choices[1]);
}

static const char *default_shell(const struct ctx *c)
{
    return c->cfg->default_shell ? c->cfg->default_shell : "/bin/sh";
}

/* "shell": true (the default shell), a shell, or false; *out is NULL for no
 * shell.  Absent leaves *out as it is (the caller's default). */
static int shell_field(struct ctx *c, struct json_object *v, const char **out)
{
    char p[sizeof c->err->field];
    path(c, p, sizeof p, "shell");
    if (!v) return 0;
    if (json_object_is_type(v, json_type_boolean)) {
        *out = json_object_get_boolean(v) ? default_shell(c) : NULL;
        return 0;
    }
    if (json_object_is_type(v, json_type_string)) return cstring(c, v, p, true, out);
    return api_error_set(c->err, API_ERR_INVALID_ARG_TYPE, p,
                         "\"%s\" must be a boolean or a string", p);
}

static int env_field(struct ctx *c, struct json_object *v, char *const **out)
{
    char p[sizeof c->err->field];
    path(c, p, sizeof p, "env");
    if (!json_object_is_type(v, json_type_object))
        return api_error_set(c->err, API_ERR_INVALID_ARG_TYPE, p,
                             "\"%s\" must be an object of strings", p);
    size_t count = (size_t)json_object_object_length(v);
    if (count > API_MAX_ENV)
        return api_error_set(c->err, API_ERR_INVALID_ARG_VALUE, p,
                             "\"%s\" must have at most %d entries", p, API_MAX_ENV);

    /* Validate first, then build "KEY=VALUE" strings in one block. */
    size_t total = 0;
    json_object_object_foreach(v, key, val)
    {
        char kp[sizeof c->err->field];
        fieldf(kp, sizeof kp, "%s.%s", p, key);
        if (!key[0])
            return api_error_set(c->err, API_ERR_INVALID_ARG_VALUE, p,
                                 "\"%s\" keys must not be empty", p);
        if (strchr(key, '='))
            return api_error_set(c->err, API_ERR_INVALID_ARG_VALUE, kp,
                                 "\"%s\" keys must not contain \"=\"", p);
        const char *s;
        if (cstring(c, val, kp, false, &s)) return -1;
        total += strlen(key) + 1 + (size_t)json_object_get_string_len(val) + 1;
    }
    char **envp = mem_alloc(c, (count + 1) * sizeof *envp);
    char *block = envp ? mem_alloc(c, total) : NULL;
    if (!block) return -1;
    size_t i = 0;
    json_object_object_foreach(v, key2, val2)
    {
        size_t klen = strlen(key2), vlen = (size_t)json_object_get_string_len(val2);
        envp[i++] = block;
        memcpy(block, key2, klen);
        block[klen] = '=';
        memcpy(block + klen + 1, json_object_get_string(val2), vlen + 1);
        block += klen + 1 + vlen + 1;
    }
    envp[i] = NULL;
    *out = envp;
    return 0;
}

/* Where a process description (the body of exec/execFile/spawn, or a pipeline
 * step) inherits from: the pipeline's top-level cwd, env and shell. */
struct proc_defaults {
    const char *cwd;
    char *const *envp;
    const char *shell;
};

/* Fill proc from the fields f of one process description. */
static int build_proc(struct ctx *c, enum api_kind kind, struct json_object **f,
                      const struct proc_defaults *d, struct exec_proc *proc)
{
    char p[sizeof c->err->field];
    enum field prog_field = kind == API_EXECFILE ? F_FILE : F_COMMAND;
    const char *prog;
    if (cstring(c, f[prog_field], path(c, p, sizeof p, field_names[prog_field]), true, &prog))
        return -1;

    struct json_object *args = f[F_ARGS];
    size_t nargs = 0;
    if (args) {
        path(c, p, sizeof p, "args");
        if (!json_object_is_type(args, json_type_array))
            return api_error_set(c->err, API_ERR_INVALID_ARG_TYPE, p,
                                 "\"%s\" must be an array of strings", p);
        nargs = json_object_array_length(args);
        if (nargs > API_MAX_ARGS)
            return api_error_set(c->err, API_ERR_INVALID_ARG_VALUE, p,
                                 "\"%s\" must have at most %d entries", p, API_MAX_ARGS);
    }
    const char **argv = mem_alloc(c, (nargs + 4) * sizeof *argv);
    if (!argv) return -1;
    size_t cmdlen = strlen(prog);
    for (size_t i = 0; i < nargs; i++) {
        char ap[sizeof c->err->field];
        fieldf(ap, sizeof ap, "%sargs[%zu]", c->prefix, i);
        if (cstring(c, json_object_array_get_idx(args, i), ap, false, &argv[i + 1])) return -1;
        cmdlen += 1 + strlen(argv[i + 1]);
    }

    const char *shell = d->shell;
    if (kind == API_EXEC) {
        shell = default_shell(c);
        if (f[F_SHELL] && json_object_is_type(f[F_SHELL], json_type_boolean) &&
            !json_object_get_boolean(f[F_SHELL]))
            return api_error_set(c->err, API_ERR_INVALID_ARG_VALUE, "shell",
                                 "\"shell\" cannot be false for exec, which always runs a "
                                 "shell (use execFile)");
    }
    if (shell_field(c, f[F_SHELL], &shell)) return -1;

    const char *argv0 = NULL;
    if (f[F_ARGV0] && cstring(c, f[F_ARGV0], path(c, p, sizeof p, "argv0"), false, &argv0))
        return -1;

    proc->cwd = d->cwd;
    if (f[F_CWD] && cstring(c, f[F_CWD], path(c, p, sizeof p, "cwd"), true, &proc->cwd)) return -1;
    proc->envp = d->envp;
    if (f[F_ENV] && env_field(c, f[F_ENV], &proc->envp)) return -1;

    if (shell) {
        /* As Node: the program and its args joined by spaces, unquoted. */
        char *cmd = mem_alloc(c, cmdlen + 1), *w = cmd;
        if (!cmd) return -1;
        w = stpcpy(w, prog);
        for (size_t i = 0; i < nargs; i++) {
            *w++ = ' ';
            w = stpcpy(w, argv[i + 1]);
        }
        argv[0] = argv0 ? argv0 : shell;
        argv[1] = "-c";
        argv[2] = cmd;
        argv[3] = NULL;
        proc->file = shell;
    } else {
        argv[0] = argv0 ? argv0 : prog;
        argv[nargs + 1] = NULL;
        proc->file = prog;
    }
    proc->argv = (char *const *)argv;
    return 0;
}

/* An array of strings into dst (which has room for it), for errors named
 * name[i]. Returns the count or -1. */
static long string_array(struct ctx *c, struct json_object *v, const char *name, const char **dst,
                         size_t room)
{
    if (!v) return 0;
    if (!json_object_is_type(v, json_type_array))
        return api_error_set(c->err, API_ERR_INVALID_ARG_TYPE, name,
                             "\"%s\" must be an array of strings", name);
    size_t n = json_object_array_length(v);
    if (n > room)
        return api_error_set(c->err, API_ERR_INVALID_ARG_VALUE, name,
                             "\"%s\" must have at most %zu entries", name, room);
    for (size_t i = 0; i < n; i++) {
        char ap[sizeof c->err->field];
        fieldf(ap, sizeof ap, "%s[%zu]", name, i);
        if (cstring(c, json_object_array_get_idx(v, i), ap, false, &dst[i])) return -1;
    }
    return (long)n;
}

/* The environment of a fork child: envp without the variables Node's IPC
 * reads, plus the two that name the channel. NODE_UNIQUE_ID is dropped: it
 * would make the child a cluster worker. */
static int fork_env(struct ctx *c, char *const *envp, char *const **out)
{
    static const char *const drop[] = {"NODE_CHANNEL_FD=", "NODE_CHANNEL_SERIALIZATION_MODE=",
                                       "NODE_UNIQUE_ID="};
    size_t n = 0;
    while (envp[n])
        n++;
    char **env = mem_alloc(c, (n + 3) * sizeof *env);
    if (!env) return -1;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool keep = true;
        for (size_t d = 0; d < sizeof drop / sizeof drop[0]; d++)
            if (strncmp(envp[i], drop[d], strlen(drop[d])) == 0) keep = false;
        if (keep) env[k++] = envp[i];
    }
    env[k++] = "NODE_CHANNEL_FD=3";
    env[k++] = "NODE_CHANNEL_SERIALIZATION_MODE=json";
    env[k] = NULL;
    *out = env;
    return 0;
}

/* fork: exec_path [exec_argv...] module [args...], with the channel. */
static int build_fork(struct ctx *c, struct json_object **f, const struct proc_defaults *d,
                      struct api_request *req)
{
    const char *module, *exec_path = "node";
    if (cstring(c, f[F_MODULE], "module", true, &module)) return -1;
    if (f[F_EXEC_PATH] && cstring(c, f[F_EXEC_PATH], "exec_path", true, &exec_path)) return -1;
    const char **argv = mem_alloc(c, (2 * API_MAX_ARGS + 3) * sizeof *argv);
    struct exec_proc *proc = mem_alloc(c, sizeof *proc);
    if (!argv || !proc) return -1;
    size_t n = 0;
    argv[n++] = exec_path;
    long k = string_array(c, f[F_EXEC_ARGV], "exec_argv", argv + n, API_MAX_ARGS);
    if (k < 0) return -1;
    n += (size_t)k;
    argv[n++] = module;
    k = string_array(c, f[F_ARGS], "args", argv + n, API_MAX_ARGS);
    if (k < 0) return -1;
    n += (size_t)k;
    argv[n] = NULL;
    proc->file = exec_path;
    proc->argv = (char *const *)argv;
    proc->cwd = d->cwd;
    if (f[F_CWD] && cstring(c, f[F_CWD], "cwd", true, &proc->cwd)) return -1;
    char *const *envp = d->envp;
    if (f[F_ENV] && env_field(c, f[F_ENV], &envp)) return -1;
    if (fork_env(c, envp, &proc->envp)) return -1;
    req->spec.procs = proc;
    req->spec.nprocs = 1;
    req->spec.channel = true;
    return 0;
}

static int pipeline_steps(struct ctx *c, struct json_object *steps, const struct proc_defaults *d,
                          struct exec_spec *spec)
{
    if (!json_object_is_type(steps, json_type_array))
        return api_error_set(c->err, API_ERR_INVALID_ARG_TYPE, "steps",
                             "\"steps\" must be an array of objects");
    size_t n = json_object_array_length(steps);
    if (n < 2 || n > API_MAX_STEPS)
        return api_error_set(c->err, API_ERR_INVALID_ARG_VALUE, "steps",
                             "\"steps\" must have from 2 to %d entries", API_MAX_STEPS);
    struct exec_proc *procs = mem_alloc(c, n * sizeof *procs);
    if (!procs) return -1;
    for (size_t i = 0; i < n; i++) {
        char prefix[32], p[32];
        fieldf(prefix, sizeof prefix, "steps[%zu].", i);
        fieldf(p, sizeof p, "steps[%zu]", i);
        struct json_object *step = json_object_array_get_idx(steps, i);
        if (!json_object_is_type(step, json_type_object))
            return api_error_set(c->err, API_ERR_INVALID_ARG_TYPE, p, "\"%s\" must be an object",
                                 p);
        struct json_object *f[F__COUNT];
        c->prefix = prefix;
        int r = collect(c, step, STEP_FIELDS, f);
        if (!r) r = build_proc(c, API_SPAWN, f, d, &procs[i]);
        c->prefix = "";
        if (r) return -1;
    }
    spec->procs = procs;
    spec->nprocs = n;
    return 0;
}

/* A signal given by name ("SIGTERM") or number. */
static int signal_value(struct ctx *c, struct json_object *ks, const char *field, int *out)
{
    if (json_object_is_type(ks, json_type_string)) {
        const char *name;
        if (cstring(c, ks, field, false, &name)) return -1;
        *out = sig_from_name(name);
        if (*out < 0)
            return api_error_set(c->err, API_ERR_INVALID_ARG_VALUE, field,
                                 "\"%s\": unknown signal \"%.64s\"", field, name);
        return 0;
    }
    if (json_object_is_type(ks, json_type_int)) {
        int64_t sig = json_object_get_int64(ks);
        if (sig < 1 || sig > INT_MAX || !sig_valid((int)sig))
            return api_error_set(c->err, API_ERR_INVALID_ARG_VALUE, field,
                                 "\"%s\": %lld is not a valid signal number", field,
                                 (long long)sig);
        *out = (int)sig;
        return 0;
    }
    return api_error_set(c->err, API_ERR_INVALID_ARG_TYPE, field,
                         "\"%s\" must be a signal name or number", field);
}

/* The options of the whole job. */
static int job_options(struct ctx *c, enum api_kind kind, struct json_object **f,
                       struct api_request *req)
{
    static const char *const encodings[] = {"utf8", "base64", NULL};
    struct exec_spec *spec = &req->spec;
    int enc = API_UTF8;

    if (f[F_ENCODING] && choice(c, f[F_ENCODING], "encoding", encodings, &enc)) return -1;
    req->encoding = enc;

    enc = API_UTF8;
    if (f[F_STDIN_ENCODING] && choice(c, f[F_STDIN_ENCODING], "stdin_encoding", encodings, &enc))
        return -1;
    spec->stdin_mode = EXEC_STDIN_NULL;
    if (f[F_STDIN]) {
        if (!json_object_is_type(f[F_STDIN], json_type_string))
            return api_error_set(c->err, API_ERR_INVALID_ARG_TYPE, "stdin",
                                 "\"stdin\" must be a string");
        const char *s = json_object_get_string(f[F_STDIN]);
        size_t n = (size_t)json_object_get_string_len(f[F_STDIN]);
        spec->stdin_mode = EXEC_STDIN_DATA;
        spec->stdin_data = s;
        spec->stdin_len = n;
        if (enc == API_BASE64) {
            unsigned char *data = mem_alloc(c, n / 4 * 3);
            if (!data) return -1;
            long len = api_base64_decode(s, n, data);
            if (len < 0)
                return api_error_set(c->err, API_ERR_INVALID_ARG_VALUE, "stdin",
                                     "\"stdin\" is not valid base64 (RFC 4648, padded)");
            spec->stdin_data = (const char *)data;
            spec->stdin_len = (size_t)len;
        }
    }

    uint64_t v = 0;
    if (f[F_TIMEOUT_MS] && integer(c, f[F_TIMEOUT_MS], "timeout_ms", 0, API_MAX_TIMEOUT_MS, &v))
        return -1;
    uint64_t cap = c->cfg->max_timeout_ms;
    if (cap && v > cap)
        return api_error_set(c->err, API_ERR_INVALID_ARG_VALUE, "timeout_ms",
                             "\"timeout_ms\" must not exceed the server's maximum of %llu",
                             (unsigned long long)cap);
    spec->timeout_ms = v ? v : cap;

    spec->kill_signal = SIGTERM;
    if (f[F_KILL_SIGNAL] && signal_value(c, f[F_KILL_SIGNAL], "kill_signal", &spec->kill_signal))
        return -1;

    req->max_buffer = 0;
    if (kind == API_EXEC || kind == API_EXECFILE) {
        v = API_DEFAULT_MAX_BUFFER;
        if (f[F_MAX_BUFFER] && integer(c, f[F_MAX_BUFFER], "max_buffer", 1, API_MAX_MAX_BUFFER, &v))
            return -1;
        req->max_buffer_set = f[F_MAX_BUFFER] != NULL;
        req->max_buffer = (size_t)v;
    }

    spec->uid = spec->gid = -1;
    if (f[F_UID]) {
        if (integer(c, f[F_UID], "uid", 0, MAX_ID, &v)) return -1;
        spec->uid = (int64_t)v;
    }
    if (f[F_GID]) {
        if (integer(c, f[F_GID], "gid", 0, MAX_ID, &v)) return -1;
        spec->gid = (int64_t)v;
    }
    return 0;
}

static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static int parse(struct ctx *c, enum api_kind kind, const char *body, size_t len,
                 struct api_request *req)
{
    if (len > INT_MAX - 1)
        return api_error_set(c->err, API_ERR_PAYLOAD_TOO_LARGE, NULL, "request body too large");
    if (api_json_check_ex(body, len, API_MAX_DEPTH, API_JSON_NO_NUL_KEYS, c->err)) return -1;

    /* The text is valid JSON: its first and last non-blank bytes delimit it. */
    size_t start = 0, end = len;
    while (start < end && is_blank(body[start]))
        start++;
    while (end > start && is_blank(body[end - 1]))
        end--;
    if (body[start] != '{')
        return api_error_set(c->err, API_ERR_INVALID_ARG_TYPE, NULL,
                             "the request body must be a JSON object");

    struct json_tokener *tok = json_tokener_new_ex(API_MAX_DEPTH);
    if (!tok) return api_error_set(c->err, API_ERR_UNAVAILABLE, NULL, "out of memory");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    c->mem->root = json_tokener_parse_ex(tok, body + start, (int)(end - start));
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    json_tokener_free(tok);
    if (!c->mem->root || jerr != json_tokener_success) {
        /* Not expected after the check; json-c also fails this way on ENOMEM. */
        return api_error_set(c->err, API_ERR_INVALID_JSON, NULL, "invalid JSON: %s",
                             json_tokener_error_desc(jerr));
    }

    unsigned allowed = 0;
    if (kind == API_JOB) {
        /* POST /v1/jobs: "kind" says which request this is. */
        struct json_object *k = NULL;
        const char *name = NULL;
        if (!json_object_object_get_ex(c->mem->root, "kind", &k) || !k ||
            !json_object_is_type(k, json_type_string))
            return api_error_set(c->err, API_ERR_INVALID_ARG_TYPE, "kind",
                                 "\"kind\" must be one of \"exec\", \"execFile\", \"spawn\", "
                                 "\"pipeline\", \"fork\"");
        name = json_object_get_string(k);
        for (int i = 0; i < API_JOB; i++)
            if (strcmp(name, kind_names[i]) == 0) kind = (enum api_kind)i;
        if (kind == API_JOB)
            return api_error_set(c->err, API_ERR_INVALID_ARG_VALUE, "kind",
                                 "\"kind\" must be one of \"exec\", \"execFile\", \"spawn\", "
                                 "\"pipeline\", \"fork\"");
        req->kind = kind;
        allowed = BIT(F_KIND) | BIT(F_BACKPRESSURE);
    }
    allowed |= kind_fields[kind];
    if (kind == API_FORK) allowed |= BIT(F_BACKPRESSURE); /* POST /v1/fork is a job too */

    struct json_object *f[F__COUNT];
    if (collect(c, c->mem->root, allowed, f)) return -1;

    struct proc_defaults d = {NULL, c->cfg->default_env ? c->cfg->default_env : empty_env, NULL};
    if (kind == API_PIPELINE) {
        if (f[F_CWD] && cstring(c, f[F_CWD], "cwd", true, &d.cwd)) return -1;
        if (f[F_ENV] && env_field(c, f[F_ENV], &d.envp)) return -1;
        if (shell_field(c, f[F_SHELL], &d.shell)) return -1;
        if (pipeline_steps(c, f[F_STEPS], &d, &req->spec)) return -1;
    } else if (kind == API_FORK) {
        if (build_fork(c, f, &d, req)) return -1;
    } else {
        struct exec_proc *proc = mem_alloc(c, sizeof *proc);
        if (!proc || build_proc(c, kind, f, &d, proc)) return -1;
        req->spec.procs = proc;
        req->spec.nprocs = 1;
    }
    if (f[F_BACKPRESSURE]) {
        if (!json_object_is_type(f[F_BACKPRESSURE], json_type_boolean))
            return api_error_set(c->err, API_ERR_INVALID_ARG_TYPE, "backpressure",
                                 "\"backpressure\" must be a boolean");
        req->backpressure = json_object_get_boolean(f[F_BACKPRESSURE]);
    }
    return job_options(c, kind, f, req);
}

int api_request_parse(enum api_kind kind, const char *body, size_t len,
                      const struct api_config *cfg, struct api_request *req, struct api_error *err)
{
    memset(req, 0, sizeof *req);
    struct mem *mem = calloc(1, sizeof *mem);
    if (!mem) return api_error_set(err, API_ERR_UNAVAILABLE, NULL, "out of memory");
    req->kind = kind;
    req->priv = mem;
    struct ctx c = {cfg, mem, err, ""};
    if ((unsigned)kind > API_JOB) {
        api_error_set(err, API_ERR_INTERNAL, NULL, "unknown request kind %d", (int)kind);
    } else if (parse(&c, kind, body, len, req) == 0) {
        return 0;
    }
    api_request_free(req);
    return -1;
}

void api_request_free(struct api_request *req)
{
    struct mem *mem = req->priv;
    if (mem) {
        for (size_t i = 0; i < mem->nblocks; i++)
            free(mem->blocks[i]);
        free(mem->blocks);
        if (mem->root) json_object_put(mem->root);
        free(mem);
    }
    memset(req, 0, sizeof *req);
}

int api_signal_parse(const char *body, size_t len, int *sig, struct api_error *err)
{
    struct mem mem = {0};
    struct ctx c = {NULL, &mem, err, ""};
    int r = -1;
    if (api_json_check_ex(body, len, API_MAX_DEPTH, API_JSON_NO_NUL_KEYS, err)) return -1;
    struct json_tokener *tok = json_tokener_new_ex(API_MAX_DEPTH);
    if (tok) {
        mem.root = json_tokener_parse_ex(tok, body, (int)len); /* by length: no NUL needed */
        json_tokener_free(tok);
    }
    if (!mem.root || !json_object_is_type(mem.root, json_type_object)) {
        api_error_set(err, API_ERR_INVALID_ARG_TYPE, NULL, "the request body must be a JSON object");
        goto out;
    }
    struct json_object *v = NULL;
    json_object_object_foreach(mem.root, key, val)
    {
        if (strcmp(key, "signal") != 0) {
            api_error_set(err, API_ERR_INVALID_ARG_VALUE, key, "unknown field \"%.64s\"", key);
            goto out;
        }
        v = val;
    }
    if (!v) {
        api_error_set(err, API_ERR_INVALID_ARG_TYPE, "signal", "\"signal\" must be a signal name or number");
        goto out;
    }
    r = signal_value(&c, v, "signal", sig);
out:
    json_object_put(mem.root);
    return r;
}
