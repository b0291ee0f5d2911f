/* optim.c — AdamW (Loshchilov & Hutter 2019), warm-up + cosine schedule, global-norm clipping. */
#include <math.h>

#include "core/cpu.h"
#include "train.h"

float pare_lr_at(int64_t s, int64_t steps, int64_t warmup, float lr, float min_ratio)
{
    if (warmup > 0 && s < warmup) return lr * (float)(s + 1) / (float)warmup;
    if (steps <= warmup) return lr;
    double prog = (double)(s - warmup) / (double)(steps - warmup);
    if (prog > 1) prog = 1;
    double c = 0.5 * (1 + cos(3.141592653589793 * prog));
    return (float)(lr * (min_ratio + (1 - min_ratio) * c));
}

PARE_HOT void pare_adamw_step(pare_model *m, float lr, float beta1, float beta2, float eps, float weight_decay, int64_t t)
{
    double bc1 = 1 - pow(beta1, (double)t), bc2 = 1 - pow(beta2, (double)t);
    for (int64_t i = 0; i < m->nparams; i++) {
        pare_param *p = &m->params[i];
        if (!p->trainable || !p->grad) continue;
        float wd = p->ndim >= 2 ? weight_decay : 0.0f;
        float *w = p->blob->data, *g = p->grad, *mm = p->adam_m, *vv = p->adam_v;
        int64_t n = pare_param_numel(p);
#pragma omp parallel for if (n > 65536)
        for (int64_t k = 0; k < n; k++) {
            mm[k] = beta1 * mm[k] + (1 - beta1) * g[k];
            vv[k] = beta2 * vv[k] + (1 - beta2) * g[k] * g[k];
            float mh = (float)(mm[k] / bc1), vh = (float)(vv[k] / bc2);
            w[k] -= lr * (mh / (sqrtf(vh) + eps) + wd * w[k]);
        }
    }
}

float pare_clip_grad_norm(pare_model *m, float max_norm)
{
    double ss = 0;
    for (int64_t i = 0; i < m->nparams; i++) {
        const pare_param *p = &m->params[i];
        if (!p->trainable || !p->grad) continue;
        int64_t n = pare_param_numel(p);
        for (int64_t k = 0; k < n; k++) ss += (double)p->grad[k] * p->grad[k];
    }
    float norm = (float)sqrt(ss);
    pare_clip_to_norm(m, norm, max_norm);
    return norm;
}

void pare_clip_to_norm(pare_model *m, float norm, float max_norm)
{
    if (!(max_norm > 0 && norm > max_norm)) return;
    float s = max_norm / (norm + 1e-6f);
    for (int64_t i = 0; i < m->nparams; i++) {
        pare_param *p = &m->params[i];
        if (!p->trainable || !p->grad) continue;
        int64_t n = pare_param_numel(p);
        for (int64_t k = 0; k < n; k++) p->grad[k] *= s;
    }
}
