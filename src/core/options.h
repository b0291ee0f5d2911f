/* options.h — declared option schemas and the one generic validator.
 *
 * Every pass, task and model builder declares its options once, as a pare_schema: key, type,
 * default, range or choices, one line of doc. Values arrive as key/value pairs (from a Lua table or
 * `key=value` words on the command line) and pare_opts_resolve() checks them all against the schema:
 * an unknown key, a wrong type or an out-of-range value is rejected with a message that names the key
 * and lists the valid keys or choices. `pare help <name>` prints the same schema (pare_schema_print).
 *
 *     static const pare_opt_spec opts[] = {
 *         {"bits", PARE_OPT_INT, "8", 2, 8, NULL, "weight bit-width"},
 *         {"granularity", PARE_OPT_ENUM, "per_channel", 0, 0, "per_tensor|per_channel", "scale sharing"},
 *     };
 *     static const pare_schema schema = {"dynamic_int8", "doc...", opts, 2};
 *     pare_options o;  PARE_TRY(pare_opts_resolve(&o, &schema, kv, nkv));
 *     int bits = (int)pare_opt_num(&o, "bits");
 */
#ifndef PARE_OPTIONS_H
#define PARE_OPTIONS_H

#include <stdio.h>

#include "status.h"

typedef enum pare_opt_type {
    PARE_OPT_INT,    /* integer within [min, max] */
    PARE_OPT_FLOAT,  /* number within [min, max] */
    PARE_OPT_BOOL,   /* true/false */
    PARE_OPT_STRING, /* free text (a path, a pattern) */
    PARE_OPT_ENUM,   /* one of choices "a|b|c" */
    PARE_OPT_TYPE_COUNT
} pare_opt_type;

typedef struct pare_opt_spec {
    const char *key;
    pare_opt_type type;
    const char *def; /* default, as text; NULL = required */
    double min, max; /* inclusive range for INT/FLOAT (ignored when min > max) */
    const char *choices; /* ENUM: "a|b|c" */
    const char *doc;
} pare_opt_spec;

typedef struct pare_schema {
    const char *name;
    const char *doc;
    const pare_opt_spec *opts;
    int nopts;
} pare_schema;

#define PARE_MAX_OPTS 48
#define PARE_OPT_STR_MAX 256

/* One key/value as given by a caller; exactly one of the value kinds is set. */
typedef enum pare_kv_kind { PARE_KV_NUM, PARE_KV_STR, PARE_KV_BOOL } pare_kv_kind;
typedef struct pare_kv {
    const char *key;
    pare_kv_kind kind;
    double num;      /* PARE_KV_NUM, PARE_KV_BOOL (0/1) */
    const char *str; /* PARE_KV_STR */
} pare_kv;

typedef struct pare_optval {
    double num;                  /* INT, FLOAT, BOOL, and ENUM's index into choices */
    char str[PARE_OPT_STR_MAX];  /* STRING, ENUM (the choice), and the text of any value */
    int given;                   /* set by the caller rather than defaulted */
} pare_optval;

typedef struct pare_options {
    const pare_schema *schema;
    pare_optval v[PARE_MAX_OPTS]; /* indexed like schema->opts */
} pare_options;

/* Validate kv[0..n) against schema and fill out (defaults for keys not given).
 * A string value for a numeric or bool key is parsed ("0.5", "true"), so `key=value` words work. */
pare_status pare_opts_resolve(pare_options *out, const pare_schema *s, const pare_kv *kv, int n);
/* Defaults only. */
pare_status pare_opts_defaults(pare_options *out, const pare_schema *s);

/* Getters by key. The key must be in the schema (an engine invariant: asserted). */
double pare_opt_num(const pare_options *o, const char *key);
int pare_opt_int(const pare_options *o, const char *key);
int pare_opt_bool(const pare_options *o, const char *key);
const char *pare_opt_str(const pare_options *o, const char *key);
int pare_opt_given(const pare_options *o, const char *key);

/* Print the schema as a human-readable table: key, type, default, range/choices, doc. */
void pare_schema_print(FILE *f, const pare_schema *s);
/* "bits, granularity, ..." into buf. */
const char *pare_schema_keys(const pare_schema *s, char *buf, size_t n);

#endif
