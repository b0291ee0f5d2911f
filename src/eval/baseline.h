/* baseline.h — reference accuracies a trained model must beat on a classification task: the majority
 * class and a bag-of-words classifier, both fitted on the train split and scored on the test split.
 *
 *   majority  predict the most frequent training label (ties: the smallest class id);
 *   bow       multinomial naive Bayes over the bag of token ids of each row (positions [0, length),
 *             add-one smoothing, class priors from the train split; ties: the smallest class id).
 *             Token order is ignored, so it measures how much of a task word identity alone solves.
 *
 *     double acc;
 *     PARE_TRY(pare_baseline_accuracy(&acc, &train, &test, PARE_BASELINE_BOW));
 *
 * Deliberately not here: trained linear models (logistic regression needs an optimiser loop; naive
 * Bayes is closed-form and deterministic), LM tasks.
 */
#ifndef PARE_BASELINE_H
#define PARE_BASELINE_H

#include "core/status.h"
#include "data/task.h"

typedef enum pare_baseline { PARE_BASELINE_MAJORITY = 0, PARE_BASELINE_BOW, PARE_BASELINE_COUNT } pare_baseline;

/* "majority" | "bow" → kind; PARE_EINVAL listing them otherwise. */
pare_status pare_baseline_parse(pare_baseline *kind, const char *name);
/* Test accuracy of the baseline fitted on train. Both splits CLASSIFY with labels in [0, nclass) and
 * the same vocab and nclass; PARE_EINVAL naming the mismatch otherwise. */
pare_status pare_baseline_accuracy(double *acc, const pare_dataset *train, const pare_dataset *test, pare_baseline kind);

#endif
