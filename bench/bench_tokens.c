/* bench_tokens.c — forward latency of token-pruned encoders (prune_tokens, docs/pruning-tokens.md) against
 * the dense model, beside the FLOP share.
 *
 *   build/bench/bench_tokens [model=mini|base] [threads=1] [pairs=15] [T=128] [keep="1;0.7;0.5;0.3"]...
 *   (keep= may repeat; by default four schedules per model)
 *
 * Models (random weights: latency does not depend on them): mini is the zoo's bert-mini shape (4 layers, d 256,
 * 4 heads, FFN 1024, post-LN, [CLS] + tanh pooler, 5 classes), base BERT-base's (12 layers, d 768, 12 heads,
 * FFN 3072). Batch 1 × T tokens, every position a token (the case a fixed share shortens most).
 * A measurement: `pairs` interleaved pairs (one dense forward, one pruned forward, each warmed up first);
 * share = median over pairs of pruned_ms / dense_ms, lo / hi the pairs' min and max, so a burst of another
 * process on the shared machine spoils one pair, not the share; share_cpu the same of the calling thread's
 * CPU time (meaningful at threads=1: the model's own cost while other processes hold the cores). Nothing is
 * asserted.
 *
 * Output, one line per schedule: tokens model=mini T=128 keep=1;0.7;0.5;0.3 flops=... flop_share=... ms=...
 *   dense_ms=... share=... lo=... hi=... share_cpu=... threads=1 load=...
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "compress/pass.h"
#include "graph/exec.h"
#include "model/transformer.h"

static double thread_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

typedef struct runner { pare_exec *x; double ms, cpu_ms; } runner;

static pare_status run_once(void *ctx, double *ms)
{
    runner *r = ctx;
    const int64_t t0 = pare_now_ns();
    const double c0 = thread_ms();
    PARE_TRY(pare_exec_forward(r->x));
    r->cpu_ms = thread_ms() - c0;
    *ms = r->ms = (double)(pare_now_ns() - t0) * 1e-6;
    return PARE_OK;
}

static int by_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void die(const char *what)
{
    fprintf(stderr, "bench_tokens: %s: %s\n", what, pare_errmsg());
    exit(1);
}

static pare_exec *executor(pare_model *m, int64_t T, int64_t vocab)
{
    pare_exec *x;
    if (pare_exec_new(&x, m, 1, T, PARE_EXEC_INFER) != PARE_OK) die("executor");
    int32_t *tok = malloc(sizeof *tok * (size_t)T);
    for (int64_t i = 0; i < T; i++) tok[i] = (int32_t)((i * 7919 + 13) % vocab);
    if (pare_exec_bind(x, tok, NULL, NULL) != PARE_OK) die("bind");
    free(tok);
    return x;
}

int main(int argc, char **argv)
{
    const char *model = "mini", *keeps[16];
    int threads = 1, pairs = 15, nkeep = 0;
    int64_t T = 128;
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "model=", 6)) model = argv[i] + 6;
        else if (!strncmp(argv[i], "threads=", 8)) threads = atoi(argv[i] + 8);
        else if (!strncmp(argv[i], "pairs=", 6)) pairs = atoi(argv[i] + 6);
        else if (!strncmp(argv[i], "T=", 2)) T = atoll(argv[i] + 2);
        else if (!strncmp(argv[i], "keep=", 5) && nkeep < 16) keeps[nkeep++] = argv[i] + 5;
        else {
            fprintf(stderr, "bench_tokens: unknown argument '%s' (model= threads= pairs= T= keep=)\n", argv[i]);
            return 2;
        }
    }
    int base = !strcmp(model, "base");
    if (!nkeep) {
        static const char *mini_k[] = {"1;0.9;0.8;0.7", "1;0.7;0.5;0.3", "1;0.5;0.3;0.2", "1;0.3;0.2;0.1"};
        static const char *base_k[] = {"1;1;1;0.9;0.8;0.7;0.6;0.5;0.4;0.3;0.2;0.1", "1;0.8;0.6;0.5;0.4;0.3;0.25;0.2;0.15;0.1",
                                       "1;0.7;0.5;0.3"};
        nkeep = base ? 3 : 4;
        for (int i = 0; i < nkeep; i++) keeps[i] = base ? base_k[i] : mini_k[i];
    }
    omp_set_num_threads(threads);
    const int64_t V = 8000;
    pare_kv kv[] = {
        {"kind", PARE_KV_STR, 0, "encoder"},  {"vocab", PARE_KV_NUM, (double)V, NULL}, {"max_T", PARE_KV_NUM, (double)T, NULL},
        {"d", PARE_KV_NUM, base ? 768 : 256, NULL}, {"heads", PARE_KV_NUM, base ? 12 : 4, NULL},
        {"layers", PARE_KV_NUM, base ? 12 : 4, NULL}, {"ffn", PARE_KV_NUM, base ? 3072 : 1024, NULL},
        {"classes", PARE_KV_NUM, 5, NULL},    {"norm", PARE_KV_STR, 0, "post"},      {"emb_norm", PARE_KV_BOOL, 1, NULL},
        {"pooler", PARE_KV_STR, 0, "tanh"},   {"act", PARE_KV_STR, 0, "gelu_erf"},   {"type_vocab", PARE_KV_NUM, 2, NULL},
    };
    pare_options o;
    pare_model *dense = NULL;
    if (pare_opts_resolve(&o, &pare_model_schema, kv, (int)(sizeof kv / sizeof kv[0])) != PARE_OK ||
        pare_transformer_build(&dense, &o) != PARE_OK)
        die("model");
    runner d = {executor(dense, T, V), 0, 0};
    bench_warm(run_once, &d, 3);
    const int64_t dflops = pare_exec_flops(d.x, NULL);
    printf("# bench_tokens: model=%s T=%lld threads=%d pairs=%d, dense forward FLOPs %lld\n", model, (long long)T, threads,
           pairs, (long long)dflops);
    double *sh = malloc(sizeof *sh * (size_t)pairs), *shc = malloc(sizeof *shc * (size_t)pairs);
    double *pm = malloc(sizeof *pm * (size_t)pairs), *dm = malloc(sizeof *dm * (size_t)pairs);
    for (int k = 0; k < nkeep; k++) {
        pare_model *pm_model = NULL;
        pare_kv pk[] = {{"keep", PARE_KV_STR, 0, keeps[k]}};
        if (pare_apply(&pm_model, dense, "prune_tokens", pk, 1) != PARE_OK) die(keeps[k]);
        runner p = {executor(pm_model, T, V), 0, 0};
        bench_warm(run_once, &p, 3);
        bench_warm(run_once, &d, 1);
        for (int i = 0; i < pairs; i++) {
            double ms;
            if (run_once(&d, &ms) != PARE_OK || run_once(&p, &ms) != PARE_OK) die("forward");
            sh[i] = p.ms / d.ms, shc[i] = p.cpu_ms / d.cpu_ms, pm[i] = p.ms, dm[i] = d.ms;
        }
        qsort(sh, (size_t)pairs, sizeof *sh, by_double);
        qsort(shc, (size_t)pairs, sizeof *shc, by_double);
        qsort(pm, (size_t)pairs, sizeof *pm, by_double);
        qsort(dm, (size_t)pairs, sizeof *dm, by_double);
        const int64_t pflops = pare_exec_flops(p.x, NULL);
        printf("tokens model=%s T=%lld keep=%s flops=%lld flop_share=%.3f ms=%.2f dense_ms=%.2f share=%.3f lo=%.3f "
               "hi=%.3f share_cpu=%.3f threads=%d load=%s\n",
               model, (long long)T, keeps[k], (long long)pflops, (double)pflops / (double)dflops, pm[pairs / 2],
               dm[pairs / 2], sh[pairs / 2], sh[0], sh[pairs - 1], shc[pairs / 2], threads, load_note());
        fflush(stdout);
        pare_exec_free(p.x);
        pare_model_free(pm_model);
    }
    free(sh), free(shc), free(pm), free(dm);
    pare_exec_free(d.x);
    pare_model_free(dense);
    return 0;
}
