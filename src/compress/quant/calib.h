/* calib.h — calibration: observers at the inputs of Linear layers, and the range choices of static
 * quantization (min-max, percentile, KL divergence, MSE search).
 *
 *     pare_calib c;
 *     PARE_TRY(pare_calibrate(&c, model, calib_set, 128, 16, nodes, n, PARE_CALIB_HIST));
 *     float lo, hi;
 *     PARE_TRY(pare_calib_range(&lo, &hi, &c.s[0], PARE_CALIB_KL, 99.99, 8, 1));
 *     pare_calib_free(&c);
 *
 * The model runs in f32 on an inference executor over the first `samples` examples of the set; an
 * observer sees each selected Linear's input before the Linear runs. Only the valid (unpadded) token
 * rows are observed: padded positions never matter to a prediction, and counting them would bend the
 * ranges towards the PAD embedding. With PARE_CALIB_HIST a second pass fills a histogram of 4096 bins
 * over [-a, a], a = max |x| found by the first; the percentile, KL and MSE choices read it, so their
 * thresholds are exact to a bin (a/2048).
 *
 * What it does not do: observe anything but Linear inputs (attention BMM ranges are dynamic).
 */
#ifndef PARE_CALIB_H
#define PARE_CALIB_H

#include "compress/quant/gptq.h"
#include "data/task.h"
#include "graph/exec.h"
#include "graph/graph.h"

enum {
    PARE_CALIB_MINMAX = 0,   /* always: exact min, max and per-column max |x| */
    PARE_CALIB_HIST = 1,     /* + the histogram (second pass) */
    PARE_CALIB_HESSIAN = 2,  /* + the GPTQ Hessian 2/n Σ x xᵀ (K×K) */
};

#define PARE_CALIB_BINS 4096

typedef struct pare_calib_stats {
    int64_t node;         /* index of the Linear node */
    int64_t K;            /* input features */
    int64_t rows;         /* token rows observed */
    float min, max;       /* over everything observed */
    float *col_absmax;    /* (K) max |x[:, j]| */
    int64_t *hist;        /* (PARE_CALIB_BINS) over [-absmax, absmax], or NULL */
    pare_gptq_hessian H;  /* with PARE_CALIB_HESSIAN */
} pare_calib_stats;

typedef struct pare_calib {
    int64_t n;
    pare_calib_stats *s; /* one per observed node, in the order given */
} pare_calib;

/* Observe the inputs of nodes[0..n) over the first `samples` examples of d, `batch` at a time.
 * Errors: an empty set, samples < 1 or more than the set holds (naming calib_samples), a node that is
 * not a Linear, NaN/Inf in an observed activation (naming the layer). */
pare_status pare_calibrate(pare_calib *c, pare_model *m, const pare_dataset *d, int64_t samples, int64_t batch,
                           const int64_t *nodes, int64_t n, unsigned what);
void pare_calib_free(pare_calib *c); /* safe twice */
/* Run m (inference) over the first `samples` examples of d, `batch` at a time, with fn as the executor's observer
 * (graph/exec.h: called after each node with user). Labels are not bound. What pare_calibrate runs, for passes that
 * gather their own statistics (outlier_suppression's token-wise clipping); the caller checks samples and vocab. */
pare_status pare_calib_run(pare_model *m, const pare_dataset *d, int64_t samples, int64_t batch,
                           pare_status (*fn)(void *user, const pare_exec *x, int64_t node), void *user);
/* The stats of a node, NULL if it was not observed. */
const pare_calib_stats *pare_calib_find(const pare_calib *c, int64_t node);
/* Is row r of value v (an activation observed during calibration) a real, unpadded position? After token pruning a
 * sequence has T' rows, of which min(length, T') are tokens (graph.h: pare_value.keep). */
int pare_calib_row_valid(const pare_exec *x, const pare_value *v, int64_t r);

typedef enum pare_calib_method {
    PARE_CALIB_M_MINMAX = 0, /* [min, max] (asymmetric) or [-a, a] */
    PARE_CALIB_M_PERCENTILE, /* the p-th percentile of |x| (or the (100-p)-th and p-th of x) */
    PARE_CALIB_M_KL,         /* TensorRT's entropy calibration: the threshold minimising KL(P‖Q) */
    PARE_CALIB_M_MSE,        /* the threshold minimising the expected squared quantization error */
    PARE_CALIB_M_COUNT
} pare_calib_method;
const char *pare_calib_method_name(pare_calib_method m); /* "minmax", "percentile", "kl", "mse" */
pare_status pare_calib_method_parse(const char *s, pare_calib_method *m);

/* The clipping range [lo, hi] for a `bits`-bit grid (symmetric: lo = -hi). Methods other than min-max
 * need the histogram. mse_out (may be NULL): the expected squared error per element of quantizing the
 * observed distribution with that range, from the histogram (NAN without it). */
pare_status pare_calib_range(float *lo, float *hi, const pare_calib_stats *s, pare_calib_method method,
                             double percentile, int bits, int symmetric, double *mse_out);

#endif
