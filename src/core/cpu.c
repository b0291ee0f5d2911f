/* cpu.c — cpuid-based feature detection for x86-64; all zero elsewhere. */
#include "cpu.h"
#include "status.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
static unsigned long long xgetbv0(void)
{
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}
#endif

static pare_cpu cpu;
static pthread_once_t detected = PTHREAD_ONCE_INIT;

static void detect(pare_cpu *c)
{
    memset(c, 0, sizeof *c);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    c->logical_cores = n > 0 ? (int)n : 1;
    snprintf(c->model, sizeof c->model, "unknown");
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, cc, d;
    if (!__get_cpuid(1, &a, &b, &cc, &d)) return;
    c->sse42 = (cc >> 20) & 1;
    c->fma = (cc >> 12) & 1;
    c->f16c = (cc >> 29) & 1;
    int osxsave = (cc >> 27) & 1, avx = (cc >> 28) & 1;
    unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
    int ymm_ok = (xcr0 & 0x6) == 0x6, zmm_ok = (xcr0 & 0xe6) == 0xe6, amx_ok = (xcr0 & 0x60000) == 0x60000;
    c->avx = avx && ymm_ok;
    if (!c->avx) c->fma = c->f16c = 0;
    if (__get_cpuid_count(7, 0, &a, &b, &cc, &d)) {
        c->avx2 = c->avx && ((b >> 5) & 1);
        if (zmm_ok) {
            c->avx512f = (b >> 16) & 1;
            c->avx512dq = (b >> 17) & 1;
            c->avx512bw = (b >> 30) & 1;
            c->avx512vl = (b >> 31) & 1;
            c->avx512vnni = (cc >> 11) & 1;
        }
        if (amx_ok) {
            c->amx_bf16 = (d >> 22) & 1;
            c->amx_tile = (d >> 24) & 1;
            c->amx_int8 = (d >> 25) & 1;
        }
        if (__get_cpuid_count(7, 1, &a, &b, &cc, &d)) {
            c->avxvnni = c->avx && ((a >> 4) & 1);
            c->avx512bf16 = zmm_ok && ((a >> 5) & 1);
        }
    }
    unsigned brand[12];
    if (__get_cpuid(0x80000000, &a, &b, &cc, &d) && a >= 0x80000004) {
        for (unsigned i = 0; i < 3; i++)
            __get_cpuid(0x80000002 + i, &brand[4 * i], &brand[4 * i + 1], &brand[4 * i + 2], &brand[4 * i + 3]);
        char s[49];
        memcpy(s, brand, 48);
        s[48] = '\0';
        char *p = s;
        while (*p == ' ') p++;
        size_t len = strlen(p);
        while (len && p[len - 1] == ' ') p[--len] = '\0';
        snprintf(c->model, sizeof c->model, "%s", p);
    }
#endif
}

static void detect_once(void) { detect(&cpu); }

const pare_cpu *pare_cpu_get(void)
{
    pthread_once(&detected, detect_once);
    return &cpu;
}

const char *pare_cpu_features_str(char *buf, int n)
{
    const pare_cpu *c = pare_cpu_get();
    struct { int on; const char *name; } f[] = {
        {c->sse42, "sse4.2"},      {c->avx, "avx"},           {c->avx2, "avx2"},       {c->fma, "fma"},
        {c->f16c, "f16c"},         {c->avx512f, "avx512f"},   {c->avx512bw, "avx512bw"}, {c->avx512vl, "avx512vl"},
        {c->avx512vnni, "avx512vnni"}, {c->avx512bf16, "avx512bf16"}, {c->avxvnni, "avxvnni"},
        {c->amx_tile, "amx-tile"}, {c->amx_int8, "amx-int8"}, {c->amx_bf16, "amx-bf16"},
    };
    int used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].on && used < n) used += snprintf(buf + used, (size_t)(n - used), used ? " %s" : "%s", f[i].name);
    return buf;
}

int pare_cpu_tier(int need_vnni)
{
#if defined(__x86_64__) || defined(__i386__)
    const pare_cpu *c = pare_cpu_get();
    int avx2 = c->avx2 && c->fma && c->f16c;
    if (avx2 && c->avx512f && c->avx512bw && c->avx512vl && (!need_vnni || c->avx512vnni)) return PARE_TIER_AVX512;
    if (avx2) return PARE_TIER_AVX2;
#else
    (void)need_vnni;
#endif
    return PARE_TIER_SCALAR;
}

static const char *const tier_names[] = {"scalar", "avx2", "avx512"};

const char *pare_cpu_tier_name(int tier) { return tier >= 0 && tier <= PARE_TIER_AVX512 ? tier_names[tier] : "?"; }

pare_status pare_cpu_tier_cap(int *cap, const char *name, const char *what)
{
    if (name && !strcmp(name, "auto")) {
        __atomic_store_n(cap, PARE_TIER_AVX512, __ATOMIC_RELAXED);
        return PARE_OK;
    }
    for (int i = 0; name && i <= PARE_TIER_AVX512; i++)
        if (!strcmp(name, tier_names[i])) {
            if (pare_cpu_tier(0) < i)
                return pare_fail(PARE_ENOTSUP, "%s isa '%s': this CPU lacks it (best: %s)", what, name,
                                 pare_cpu_tier_name(pare_cpu_tier(0)));
            __atomic_store_n(cap, i, __ATOMIC_RELAXED);
            return PARE_OK;
        }
    return pare_fail(PARE_EINVAL, "%s isa '%s': valid: auto, avx512, avx2, scalar", what, name ? name : "(null)");
}
