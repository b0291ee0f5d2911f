/* bench.c — forward-pass latency (after a warm-up until stable: eval/warmup.h), memory and FLOPs. */
#include "bench.h"

#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "core/rng.h"
#include "core/timer.h"
#include "graph/exec.h"
#include "graph/ops.h"

static int64_t status_kib(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    size_t kl = strlen(key);
    long long v = 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == ':') {
            sscanf(line + kl + 1, "%lld", &v);
            break;
        }
    fclose(f);
    return (int64_t)v * 1024;
}

int64_t pare_mem_rss_bytes(void) { return status_kib("VmRSS"); }
int64_t pare_mem_hwm_bytes(void) { return status_kib("VmHWM"); }

int pare_mem_reset_peak(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return 0;
    int ok = fputs("5", f) >= 0;
    return (fclose(f) == 0) && ok;
}

static pare_status timed_forward(void *ctx, double *ms)
{
    const int64_t t0 = pare_now_ns();
    PARE_TRY(pare_exec_forward(ctx));
    *ms = (double)(pare_now_ns() - t0) * 1e-6;
    return PARE_OK;
}

pare_status pare_bench_forward(pare_model *m, int64_t B, int64_t T, const pare_warmup_opts *w, int64_t repeats,
                               uint64_t seed, pare_bench_result *out)
{
    memset(out, 0, sizeof *out);
    if (repeats < 1) return pare_fail(PARE_EINVAL, "bench: repeats=%lld must be >= 1", (long long)repeats);
    PARE_TRY(pare_warmup_check(w, "bench"));
    int32_t *tokens = pare_alloc((size_t)(B * T) * sizeof(int32_t));
    out->samples_ms = pare_alloc((size_t)repeats * sizeof(double));
    out->cpu_samples_ms = pare_alloc((size_t)repeats * sizeof(double));
    if (!tokens || !out->samples_ms || !out->cpu_samples_ms) {
        pare_free(tokens);
        pare_free(out->samples_ms);
        pare_free(out->cpu_samples_ms);
        out->samples_ms = out->cpu_samples_ms = NULL;
        return PARE_ENOMEM;
    }
    pare_rng rng;
    pare_rng_seed(&rng, seed);
    for (int64_t i = 0; i < B * T; i++) tokens[i] = (int32_t)(1 + pare_rng_below(&rng, (uint64_t)(m->vocab - 1)));

    out->peak_was_reset = pare_mem_reset_peak();
    int64_t rss0 = pare_mem_rss_bytes(), resident0 = (int64_t)(pare_model_size_bytes(m) + pare_model_packed_bytes(m));
    pare_exec *x = NULL;
    pare_status st = pare_exec_new(&x, m, B, T, PARE_EXEC_INFER);
    if (st == PARE_OK) st = pare_exec_bind(x, tokens, NULL, NULL);
    pare_warmup_result wr = {0};
    if (st == PARE_OK) st = pare_warmup(&wr, w, INT64_MAX, timed_forward, x);
    out->warmup_runs = wr.runs, out->warmup_s = wr.seconds, out->warmup_stable = wr.stable;
    out->warmup_first_ms = wr.first_ms;
    for (int64_t i = 0; st == PARE_OK && i < repeats; i++) {
        int64_t t0 = pare_now_ns(), c0 = pare_cpu_ns();
        st = pare_exec_forward(x);
        out->samples_ms[i] = (double)(pare_now_ns() - t0) * 1e-6;
        out->cpu_samples_ms[i] = (double)(pare_cpu_ns() - c0) * 1e-6;
    }
    if (st == PARE_OK) { /* a separate profiled pass, so the timed samples carry no clock reads per op */
        int64_t runs = repeats < 5 ? repeats : 5;
        x->profile = 1;
        for (int64_t i = 0; st == PARE_OK && i < runs; i++) st = pare_exec_forward(x);
        for (int i = 0; i < PARE_OP_COUNT; i++) out->ms_by_op[i] = (double)x->op_ns[i] * 1e-6 / (double)runs;
    }
    if (st == PARE_OK) {
        out->repeats = repeats;
        out->activation_bytes = x->planned_bytes;
        out->weight_bytes = pare_model_size_bytes(m);
        out->packed_bytes = pare_model_packed_bytes(m) + x->packed_bytes;
        out->planned_bytes = out->activation_bytes + out->weight_bytes + out->packed_bytes;
        out->process_peak_bytes = pare_mem_hwm_bytes();
        out->measured_peak_bytes = resident0 + (out->process_peak_bytes - rss0);
        out->flops = pare_exec_flops(x, out->flops_by_op);
    } else {
        pare_free(out->samples_ms);
        pare_free(out->cpu_samples_ms);
        out->samples_ms = out->cpu_samples_ms = NULL;
    }
    pare_exec_free(x);
    pare_free(tokens);
    return st;
}
