/* group_lasso.c — group lasso (Yuan & Lin 2006; Wen et al. 2016 for networks): the L2,1 penalty
 * λ Σ_g ‖W_g‖₂ over groups of br × bc of the effective weights of the selected layers, added to the
 * training loss through the training loop's after_backward hook (schedule.c): its gradient λ W_g / ‖W_g‖
 * pushes whole groups toward zero, which block pruning then removes. Groups of norm 0 (already pruned)
 * get the subgradient 0. Masked weights get no penalty gradient (the mask already holds them at 0).
 * Deliberately not here: a proximal (exact-zero) update; the penalty is a plain gradient term. */
#include "prune_internal.h"

#include <math.h>

#include "graph/transform.h"

double pare_group_lasso(pare_model *m, const int64_t *idx, int64_t n, double lambda, int br, int bc)
{
    double pen = 0;
    for (int64_t i = 0; i < n; i++) {
        const pare_node *nd = &m->nodes[idx[i]];
        pare_param *w = &m->params[nd->param[0]];
        const pare_transform *t = pare_node_transform(nd, PARE_TF_WEIGHT);
        const float *mk = t && t->kind == PARE_TF_MASK ? m->params[t->aux[0]].blob->data : NULL;
        int64_t N = w->shape[0], K = w->shape[1];
        const float *W = w->blob->data;
        for (int64_t a = 0; a < N; a += br)
            for (int64_t b = 0; b < K; b += bc) {
                double ss = 0;
                for (int64_t r = a; r < a + br && r < N; r++)
                    for (int64_t c = b; c < b + bc && c < K; c++) {
                        double x = mk ? W[r * K + c] * mk[r * K + c] : W[r * K + c];
                        ss += x * x;
                    }
                double norm = sqrt(ss);
                pen += lambda * norm;
                if (norm == 0 || !w->grad) continue;
                for (int64_t r = a; r < a + br && r < N; r++)
                    for (int64_t c = b; c < b + bc && c < K; c++) {
                        int64_t j = r * K + c;
                        if (!mk || mk[j] != 0.0f) w->grad[j] += (float)(lambda * W[j] / norm);
                    }
            }
    }
    return pen;
}
