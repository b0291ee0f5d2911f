/* transform.h — weight transforms: an operand of a node replaced, in forward, by a function of its master
 * value and some auxiliary parameters, with the technique's own gradient rule in backward. Pruning masks
 * and QAT's fake quantization are two kinds of one mechanism, not branches inside the Linear op.
 *
 *     operand (rows, cols) ──► kind.forward(master, aux params) ──► effective operand ──► the op's f32 path
 *     d(master) += kind.backward(d(effective))        d(aux) += ... (learned scales)
 *
 * The kinds are one table of traits (transform.c), indexed by the append-only pare_tf_kind and guarded by
 * a static assert, like the storage formats of format.h; one file per kind (tf_mask.c, tf_fakequant.c).
 *
 * Where they live: on the node (pare_node.tf[0..ntf), graph.h), at most one per operand. The state is a
 * plain struct of ints, pare_transform in graph.h: the kind, the operand, small attributes and the indices of
 * its auxiliary parameters in the model (a mask, log-scales), which are ordinary named parameters. So
 * pare_model_clone copies transforms with the nodes, and a checkpoint saves them as those ints plus the
 * parameters it already saves by name.
 *
 *     // prune half of a layer's weights; training keeps them at zero; inference runs at f32 speed
 *     float *mask = ...;                      // (N, K) of 0 and 1
 *     PARE_TRY(pare_model_set_mask(m, "enc.0.ffn.up", mask, N, K));
 *     ...train, evaluate...
 *     PARE_TRY(pare_model_set_mask(m, "enc.0.ffn.up", NULL, 0, 0));   // the masters are intact
 *
 * Today's operands: the weight of a Linear (param[0]) and its input activation (in[0]); transforms act
 * when the weight is stored in f32 (a quantized format runs its own kernel; masks are refused on
 * quantized weights, and the quantization passes refuse masked weights: bake the mask first).
 * Deliberately not here: chains of several transforms on one operand (a mask and fake quantization on
 * the same weight; the attach functions refuse it clearly), transforms on ops other than Linear, and the
 * passes that choose masks (pruning criteria live in src/compress/). An inference executor keeps one
 * packed copy per weight parameter: a weight shared by several Linear nodes must carry the same
 * transforms on each (pare's builders share none).
 *
 * Entry points: pare_model_set_mask / pare_model_bake_mask (C API of masks), pare_node_attach /
 * pare_node_detach / pare_node_transform (what passes use), pare_tf_get (the traits), and for the Linear
 * op and the executor pare_tf_workspace / pare_tf_forward / pare_tf_backward / pare_tf_foldable /
 * pare_tf_fold_weight. How to add a kind: docs/weight-transforms.md.
 */
#ifndef PARE_TRANSFORM_H
#define PARE_TRANSFORM_H

#include <stddef.h>
#include <stdint.h>

#include "graph.h"

struct pare_exec;

/* pare_tf_kind, pare_tf_operand and pare_transform (the state) are in graph.h, beside the node. */

/* What the kinds are given: the operand (rows, cols), the model (aux params), the transform. scratch
 * holds the kind's own floats (traits.scratch of them), the same buffer in forward and in the backward
 * that follows the recomputed forward. */
typedef struct pare_tf_ctx {
    pare_model *m;
    const pare_node *n;
    const pare_transform *t;
    int64_t rows, cols;
    float *scratch;
    int update;               /* 1 in a training executor's forward: data-following state may move
                                 (QAT's fixed scales); 0 at inference and in backward's recompute */
    int train;                /* 1 in a training executor (its forward and backward's recompute), 0 at inference
                                 and when folding: stochastic kinds (head gates) sample only when 1 */
    struct pare_rng *rng;     /* the training executor's generator (NULL when train is 0) */
} pare_tf_ctx;

typedef struct pare_tf_traits {
    const char *name;  /* "mask", "fake_quant" */
    int simulated;     /* 1: the model computes what no kernel runs (fake quantization): labelled simulated */
    int foldable;      /* 1: the effective operand depends on parameters only: an inference executor folds it
                          into its packed copy of the weight once (a masked layer runs at the unmasked speed) */
    /* y (rows, cols) = the effective operand from x, the master (rows, cols). */
    pare_status (*forward)(const pare_tf_ctx *c, float *y, const float *x);
    /* Adds the technique's gradient: into dx (rows, cols) from dy (rows, cols) (dx NULL: not needed) and
     * into the aux parameters' gradients. Called right after forward on the same scratch. */
    void (*backward)(const pare_tf_ctx *c, float *dx, const float *dy, const float *x);
    /* Floats of scratch for an operand of (rows, cols) (NULL: none). */
    int64_t (*scratch)(const pare_transform *t, int64_t rows, int64_t cols);
    /* Aux parameters the kind needs (their count, the rest of aux are -1). */
    int naux;
    /* One line for tables ("mask 50.0% zero", "fake_quant int8 lsq"); writes buf. */
    const char *(*describe)(const pare_model *m, const pare_transform *t, char *buf, size_t n);
} pare_tf_traits;

/* The traits of a kind (NULL for an out-of-range value). */
const pare_tf_traits *pare_tf_get(int kind);
const char *pare_tf_name(int kind);
extern const pare_tf_traits pare_tf_mask, pare_tf_fake_quant, pare_tf_head_gate;
extern const pare_tf_traits pare_tf_quant_noise; /* tf_quantnoise.c */

/* ---- hard-concrete head gates (tf_headgate.c; Louizos et al. 2018, Voita et al. 2019) ----
 * On an attention output projection W_o (N, K = H·D): W_eff[:, h·D + d] = W_o[:, h·D + d] · z_h, which is
 * the head's output times z_h. With s̄ = s·(ζ − γ) + γ and z = min(1, max(0, s̄)):
 *     training  s = sigmoid((log u − log(1 − u) + log α) / β),  u ~ U(0, 1) drawn per head per forward
 *     inference s = sigmoid(log α)
 * and the L0 penalty's term per head P(z ≠ 0) = sigmoid(log α − β·log(−γ/ζ)). */
#define PARE_HC_BETA (2.0 / 3.0)
#define PARE_HC_GAMMA (-0.1)
#define PARE_HC_ZETA 1.1
/* z for one head; *dz = ∂z/∂log α (0 where the clamp is active). train 0: u is not read. */
double pare_hc_gate(double log_alpha, double u, int train, double *dz);
/* P(z ≠ 0) for one head, and *dp = its derivative in log α (may be NULL). */
double pare_hc_nonzero(double log_alpha, double *dp);

/* ---- on nodes ---- */
/* The transform on an operand of node n, or NULL. */
const pare_transform *pare_node_transform(const pare_node *n, pare_tf_operand operand);
/* The first transform of a kind on n, or NULL. */
const pare_transform *pare_node_find_transform(const pare_node *n, pare_tf_kind kind);
/* Attach t to node `node` (a Linear); PARE_EINVAL naming the node when the operand already has one, the
 * kind or operand is out of range, or an aux index is not a parameter of m. */
pare_status pare_node_attach(pare_model *m, int64_t node, const pare_transform *t);
/* Drop the transform on an operand (none: nothing happens). Its aux parameters stay in the model. */
void pare_node_detach(pare_model *m, int64_t node, pare_tf_operand operand);
/* 1 if any Linear of m carries a simulated transform (fake quantization). */
int pare_model_has_simulated_tf(const pare_model *m);

/* ---- masks (C API) ----
 * name: a Linear node ("enc.0.ffn.up") or its weight ("enc.0.ffn.up.weight"). mask (rows, cols) must be
 * the weight's shape and hold only 0 and 1; it is copied into the non-trainable parameter
 * "<weight>.mask" (made on first use, reused after), so replacing a mask is calling this again. NULL
 * removes the mask (the f32 masters were never written: the weights come back). PARE_EINVAL with a
 * message naming the parameter for an unknown name, a non-Linear, a shape or a value that does not fit,
 * a weight stored in a quantized format (attach masks to the f32 model, then quantize it after
 * pare_model_bake_mask), or a weight already under fake quantization (one transform per operand). */
pare_status pare_model_set_mask(pare_model *m, const char *name, const float *mask, int64_t rows, int64_t cols);
/* Write W ⊙ M into the weight's f32 master (made private to m) and drop the mask: the pruned zeros become
 * part of the weight, which the quantization passes can then quantize. PARE_EINVAL if it has no mask. */
pare_status pare_model_bake_mask(pare_model *m, const char *name);

/* ---- for the Linear op and the executor (ops.c, exec.c) ----
 * Scratch bytes of n's transforms at M rows: the effective operands, in training their gradients too. */
size_t pare_tf_workspace(const struct pare_exec *x, const pare_node *n, int64_t M);
/* *W (N,K) and *in (M,K): the effective operands of Linear n (the masters where no transform acts), in the
 * executor's workspace. update: 1 in a training forward (see pare_tf_ctx). */
pare_status pare_tf_forward(struct pare_exec *x, const pare_node *n, int64_t M, int update, const float **W,
                            const float **in);
/* Linear backward through n's transforms: recomputes the effective operands, runs the f32 backward into
 * scratch gradients for the transformed operands, then each kind's rule into the masters' gradients. */
void pare_tf_backward(struct pare_exec *x, const pare_node *n, int64_t M, float *dx, float *dW, float *dbias,
                      const float *dy);
/* 1 when every transform of n acts on the weight and is foldable: an inference executor packs the
 * effective weight once and runs the plain f32 kernel. */
int pare_tf_foldable(const pare_node *n);
/* The effective weight (N,K) of Linear n into W, for packing. */
pare_status pare_tf_fold_weight(pare_model *m, const pare_node *n, float *W);

#endif
