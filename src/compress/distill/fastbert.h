/* fastbert.h — FastBERT (Liu et al. 2020, "FastBERT: a Self-distilling BERT with Adaptive Inference
 * Time"): a small student classifier after every encoder layer of a trained classification model,
 * trained by self-distillation against the model's own final classifier, and early-exit inference where
 * an example leaves at the first layer whose student is confident enough.
 *
 *     pare_options o;  pare_opts_resolve(&o, &pare_fastbert_exits_schema, kv, n);   // hidden, seed
 *     pare_model *fb;  PARE_TRY(pare_fastbert_add_exits(&fb, model, &o));          // model unchanged
 *     pare_fastbert_distill_opts fo = {.temperature = 1, .kl = PARE_FASTBERT_KL_STUDENT_TEACHER};
 *     PARE_TRY(pare_fastbert_distill(fb, &task.train, &train_opts, &fo, NULL, NULL, &tr));
 *     pare_fastbert_result r;
 *     PARE_TRY(pare_fastbert_run(fb, &task.test, 0, task.test.n, 64, 0.3, &r));   // speed 0.3
 *     // r.pred[i], r.layer[i] (1..L), r.seconds, r.accuracy, r.mean_layer
 *     pare_fastbert_result_free(&r);
 *
 * Students (docs/distillation-fastbert.md). Exit l (0 ≤ l < L−1; the final classifier is the last
 * layer's exit) reads the output of encoder layer l (for a pre-LayerNorm model through a LayerNorm of its
 * own, as the final head reads ln_f), pools it as the model's head does ([CLS] or mean), then
 * hidden > 0: Linear(C→hidden) → tanh → Linear(hidden→classes); hidden = 0: Linear(C→classes). Nodes
 * "exit.<l>.{ln,pool,dense,act,head}", parameters under the same names; "exit.<l>.head" is the logits.
 * FastBERT's own students (a 128-wide self-attention over the sequence, then two Linears) are larger;
 * ours are the model's own pooled head, narrowed (docs: what was chosen and why).
 *
 * Self-distillation: the backbone and the final classifier are frozen (trainable = 0 for the run, then
 * restored) and run without dropout; each student's logits s_l are pulled towards the final
 * classifier's t by Σ_l T²·KL(softmax(s_l/T) ‖ softmax(t/T)), the paper's direction (the student's
 * distribution first: the KLDIV_REV loss op), or with kl = teacher_student Hinton's
 * Σ_l T²·KL(softmax(t/T) ‖ softmax(s_l/T)) (KLDIV). t is the final classifier's output in the same
 * forward (loss nodes appended for the run, as distillation terms are); the labels are not used.
 * Backward stops at the frozen backbone: the executor skips every node from which no trainable parameter
 * is reachable (exec.h), so a step costs one forward of the model and the students' backward.
 *
 * Early exit: with a batch, exit l's normalised entropy H(p)/log(C) ∈ [0, 1] is computed for every
 * example still running; those with H/log C ≤ speed leave with that exit's prediction (speed = 0: none
 * leave, every example takes the final classifier: the full model's logits exactly), the rest are
 * compacted to the front of the executor's buffers (pare_exec_keep_examples) and the next layer runs
 * on them only. A model without exits runs whole (layer = L for every example): the same code measures
 * the baseline.
 *
 * Deliberately not here: FastBERT's pre-training and fine-tuning of the backbone (the model given is
 * already trained), students with self-attention, an exit for a per-token head (taggers, LMs).
 */
#ifndef PARE_FASTBERT_H
#define PARE_FASTBERT_H

#include "core/options.h"
#include "data/task.h"
#include "graph/graph.h"
#include "train/train.h"

extern const pare_schema pare_fastbert_exits_schema; /* hidden, seed: `pare help fastbert_exits` */

/* A clone of m with a student classifier after each of its first L−1 encoder layers (m unchanged).
 * PARE_EINVAL naming the problem for a model without a classification head: kind decoder (a causal LM)
 * or tagger, a regression head, fewer than 2 encoder layers, no pooling node, exits already there. */
pare_status pare_fastbert_add_exits(pare_model **out, const pare_model *m, const pare_options *o);

/* The exits of m: *n of them (0 for a model without), and per exit the index of its logits node
 * ("exit.<l>.head") in node[] (at most max). L (may be NULL): m's encoder layers. */
pare_status pare_fastbert_exits(const pare_model *m, int64_t *node, int max, int *n, int64_t *L);

/* The direction of the students' divergence from the final classifier. */
typedef enum pare_fastbert_kl {
    PARE_FASTBERT_KL_STUDENT_TEACHER = 0, /* KL(p_s ‖ p_t), FastBERT's D_KL(p_s, p_t) (the default) */
    PARE_FASTBERT_KL_TEACHER_STUDENT,     /* KL(p_t ‖ p_s), Hinton's soft targets (what pare used before) */
    PARE_FASTBERT_KL_COUNT
} pare_fastbert_kl;

typedef struct pare_fastbert_distill_opts {
    float temperature;   /* softmax temperature T > 0; each term is scaled by T² */
    pare_fastbert_kl kl; /* which direction */
} pare_fastbert_distill_opts;

extern const pare_schema pare_fastbert_distill_schema; /* temperature, kl: `pare help fastbert_distill` */

/* The options of o (resolved against pare_fastbert_distill_schema) as the struct. */
pare_fastbert_distill_opts pare_fastbert_distill_opts_of(const pare_options *o);

/* Self-distillation of m's exits on d (its labels unused) with the training options o (train.h's schema)
 * and fo (NULL: temperature 1, the paper's direction); progress and the result as pare_train. m's
 * backbone and final classifier are bit-identical afterwards. PARE_EINVAL for a model without exits, a
 * temperature that is not > 0 or an unknown direction. */
pare_status pare_fastbert_distill(pare_model *m, const pare_dataset *d, const pare_options *o,
                                  const pare_fastbert_distill_opts *fo, pare_progress_fn progress, void *ud,
                                  pare_train_result *out);

typedef struct pare_fastbert_result {
    int64_t n, nclass, L;  /* examples, classes, encoder layers */
    int32_t *pred;         /* (n) predicted class */
    int32_t *layer;        /* (n) the layer, 1..L, after which the example left (L: the final classifier) */
    float *entropy;        /* (n) normalised entropy of the classifier it left by, in [0, 1] */
    float *logits;         /* (n, nclass) that classifier's logits */
    double seconds;        /* wall time of binding and running the batches (executor made before the clock) */
    double accuracy;       /* of pred against d's labels */
    double mean_layer;     /* mean of layer[] */
} pare_fastbert_result;

/* Normalised entropy H(softmax(z))/log(C) of logits z (C ≥ 2), clamped to [0, 1]. */
double pare_fastbert_entropy(const float *z, int64_t C);

/* Early-exit inference over examples [first, first + n) of d in batches of `batch`, at threshold speed
 * ∈ [0, 1] (PARE_EINVAL naming "speed" outside it). r's arrays are allocated here (free them with
 * pare_fastbert_result_free, which is safe on a zeroed or failed result). */
pare_status pare_fastbert_run(pare_model *m, const pare_dataset *d, int64_t first, int64_t n, int64_t batch, double speed,
                              pare_fastbert_result *r);
void pare_fastbert_result_free(pare_fastbert_result *r);

#endif
