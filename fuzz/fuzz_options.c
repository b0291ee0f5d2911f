/* fuzz_options.c — the option validator (pare_opts_resolve, src/core/options.c) against every
 * schema the engine declares: the model builder's, each task's, each pass's, each attention variant's.
 *
 * Input: the first byte picks the schema (modulo their number); the rest are lines, one key/value
 * each, whose first character says how the value arrives (as the Lua binding and the command line
 * give them):  s key=text (a string, parsed by the key's type)   n key=number (strtod: nan, inf...)
 *              b key=0|1 (a boolean)                              anything else: the line as key, no value
 * A resolved set of options must answer every getter of its schema, with values in range; the schema
 * printers must stay inside their buffers. */
#include <limits.h>
#include <math.h>

#include "attn/attn.h"
#include "compress/pass.h"
#include "data/task.h"
#include "fuzz_util.h"
#include "model/transformer.h"

#define MAX_SCHEMAS 64
#define MAX_KV 64

static const pare_schema *schemas[MAX_SCHEMAS];
static int nschemas;
static FILE *devnull;

static void collect(void)
{
    schemas[nschemas++] = &pare_model_schema;
    for (int i = 0; i < pare_task_count() && nschemas < MAX_SCHEMAS; i++)
        schemas[nschemas++] = pare_task_schema(pare_task_name(i));
    for (int i = 0; i < pare_pass_count() && nschemas < MAX_SCHEMAS; i++) schemas[nschemas++] = pare_pass_at(i)->schema;
    for (int i = 0; i < pare_attn_count() && nschemas < MAX_SCHEMAS; i++) schemas[nschemas++] = pare_attn_at(i)->schema;
    devnull = fopen("/dev/null", "w");
    FUZZ_ASSERT(devnull);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!nschemas) collect();
    fuzz_in in = {data, size};
    const pare_schema *s = schemas[fuzz_byte(&in) % (unsigned)nschemas];
    FUZZ_ASSERT(s && s->nopts <= PARE_MAX_OPTS);

    /* the lines, copied so each can be NUL-terminated and split in place */
    char *text = malloc(in.n + 1);
    FUZZ_ASSERT(text);
    memcpy(text, in.p, in.n);
    text[in.n] = '\0';
    pare_kv kv[MAX_KV];
    int n = 0;
    for (char *line = text, *next; line && n < MAX_KV; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        pare_kv *k = &kv[n++];
        char *eq = strchr(line + (line[0] != 0), '=');
        if (!eq || !strchr("snb", line[0]) || !line[0]) {
            *k = (pare_kv){line, PARE_KV_STR, 0, ""};
            continue;
        }
        *eq = '\0';
        k->key = line + 1;
        if (line[0] == 's') k->kind = PARE_KV_STR, k->str = eq + 1;
        else if (line[0] == 'n') k->kind = PARE_KV_NUM, k->num = strtod(eq + 1, NULL), k->str = NULL;
        else k->kind = PARE_KV_BOOL, k->num = eq[1] == '1', k->str = NULL;
    }

    pare_options o;
    if (pare_opts_resolve(&o, s, kv, n) == PARE_OK) {
        FUZZ_ASSERT(o.schema == s);
        for (int i = 0; i < s->nopts; i++) {
            const pare_opt_spec *sp = &s->opts[i];
            double v = pare_opt_num(&o, sp->key);
            const char *str = pare_opt_str(&o, sp->key);
            FUZZ_ASSERT(str && strlen(str) < PARE_OPT_STR_MAX);
            (void)pare_opt_given(&o, sp->key);
            switch (sp->type) {
            case PARE_OPT_INT:
                FUZZ_ASSERT(v == floor(v));
                /* fallthrough */
            case PARE_OPT_FLOAT:
                if (sp->min <= sp->max) FUZZ_ASSERT(v >= sp->min && v <= sp->max);
                /* pare_opt_int is for options whose range fits an int (callers' contract) */
                if (sp->type == PARE_OPT_INT && sp->min <= sp->max && sp->min >= INT_MIN && sp->max <= INT_MAX)
                    FUZZ_ASSERT(pare_opt_int(&o, sp->key) == (int)v);
                break;
            case PARE_OPT_BOOL: FUZZ_ASSERT(v == 0 || v == 1); (void)pare_opt_bool(&o, sp->key); break;
            case PARE_OPT_ENUM: {
                /* the index names the choice held as text */
                const char *c = sp->choices;
                for (int k = 0; k < (int)v; k++) c = strchr(c, '|') + 1;
                FUZZ_ASSERT(!strncmp(c, str, strlen(str)) && (c[strlen(str)] == '|' || !c[strlen(str)]));
                break;
            }
            default: break;
            }
        }
    } else {
        FUZZ_ASSERT(pare_errmsg()[0]);
    }
    char keys[64];
    size_t cap = 1 + (size % sizeof keys);
    pare_schema_keys(s, keys, cap);
    FUZZ_ASSERT(strlen(keys) < cap);
    pare_schema_print(devnull, s);
    free(text);
    return 0;
}
