/* test_corpus.c — the pretraining corpus (data/corpus.h) and the tasks mlm_corpus / clm_corpus
 * (lm_corpus.c): the corpus is non-empty and identical on two reads of this machine; BERT's masking
 * statistics (15% chosen, 80/10/10) within bounds a wrong rule would break; labels -1 off the chosen
 * positions; determinism by seed; CLM targets are the next token. Skipped when Debian's fortunes are
 * not installed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/corpus.h"
#include "data/glue.h"
#include "data/task.h"
#include "data/task_impl.h"
#include "data/text_encoder.h"
#include "tap.h"
#include "text/tokenizer.h"

#define FORTUNES "/usr/share/games/fortunes"

static void test_corpus(void)
{
    pare_corpus_opts o = pare_corpus_defaults();
    pare_docs a, b;
    pare_corpus_stats sa, sb;
    if (!ok(pare_corpus_read(&a, &o, &sa) == PARE_OK, "corpus: read")) return;
    if (!ok(pare_corpus_read(&b, &o, &sb) == PARE_OK, "corpus: read again")) return pare_docs_free(&a);
    ok(a.n > 10000 && a.nbytes > 2000000, "corpus: %lld documents, %zu bytes (fortunes %lld, copyright %lld, readme %lld, "
       "licenses %lld documents)", (long long)a.n, a.nbytes, (long long)sa.docs[0], (long long)sa.docs[1],
       (long long)sa.docs[2], (long long)sa.docs[3]);
    ok(a.n == b.n && a.nbytes == b.nbytes && !memcmp(a.bytes, b.bytes, a.nbytes) &&
       !memcmp(a.label, b.label, (size_t)a.n * sizeof *a.label), "corpus: two reads give the same bytes, in the same order");
    struct stat st;
    if (stat("/usr/share/doc", &st) == 0)
        ok(sa.docs[PARE_CORPUS_COPYRIGHT] > 0 && sa.dup_paragraphs > 0,
           "corpus: copyright files read (%lld of %lld kept), %lld repeated paragraphs dropped",
           (long long)sa.docs[PARE_CORPUS_COPYRIGHT], (long long)sa.files[PARE_CORPUS_COPYRIGHT], (long long)sa.dup_paragraphs);
    int64_t at = 0, urls = 0;
    for (int64_t i = 0; i < a.n; i++) {
        if (a.label[i] == PARE_CORPUS_FORTUNES) continue;
        size_t len;
        const char *s = pare_docs_at(&a, i, &len);
        at += memchr(s, '@', len) != NULL;
        for (size_t k = 0; k + 3 <= len; k++) urls += !memcmp(s + k, "://", 3);
    }
    ok(at == 0 && urls == 0, "corpus: file documents keep no e-mail address or URL (%lld, %lld)", (long long)at, (long long)urls);
    pare_docs_free(&b);
    pare_corpus_opts few = o;
    few.max_bytes = 100000, few.sources = "fortunes";
    pare_status rs = pare_corpus_read(&b, &few, &sb);
    ok(rs == PARE_OK && b.nbytes >= 100000 && b.nbytes < 110000 && sb.docs[1] == 0,
       "corpus: max_bytes stops early (%zu bytes), sources picks", b.nbytes);
    pare_docs_free(&b);
    few.sources = "fortunes,manpages";
    ok(pare_corpus_read(&b, &few, &sb) == PARE_EINVAL && strstr(pare_errmsg(), "manpages") &&
       strstr(pare_errmsg(), "copyright"), "corpus: an unknown source is named with the valid ones: %s", pare_errmsg());
    int64_t *order, nte;
    rs = pare_corpus_split(&order, &nte, a.n, 1, 0.02);
    ok(rs == PARE_OK && nte == (int64_t)(0.02 * (double)a.n),
       "corpus: split holds out 2%% of the documents (%lld)", (long long)nte);
    free(order);
    pare_docs_free(&a);
}

static pare_status make(pare_dataset *tr, pare_dataset *te, const char *task, pare_text_encoder *enc, const pare_kv *kv, int n)
{
    pare_options o;
    PARE_TRY(pare_opts_resolve(&o, pare_task_schema(task), kv, n));
    return pare_text_task_make(tr, te, task, &o, enc);
}

static void test_mlm(pare_tokenizer *tok)
{
    pare_text_encoder enc;
    if (!ok(pare_tokenizer_text_encoder(&enc, tok) == PARE_OK && enc.mask_id > 0, "mlm: a WordPiece encoder with [MASK]"))
        return;
    pare_kv kv[] = {{"sources", PARE_KV_STR, 0, "fortunes"}, {"max_bytes", PARE_KV_NUM, 400000, NULL},
                    {"max_len", PARE_KV_NUM, 64, NULL}, {"seed", PARE_KV_NUM, 3, NULL}};
    pare_dataset tr, te, tr2, te2;
    if (!ok(make(&tr, &te, "mlm_corpus", &enc, kv, 4) == PARE_OK, "mlm: built")) return;
    ok(tr.kind == PARE_TASK_LM && tr.nclass == tr.vocab && tr.T <= 64 && te.n > 0 && pare_dataset_check(&tr) == PARE_OK,
       "mlm: an LM-kind dataset, %lld train / %lld test rows of T = %lld", (long long)tr.n, (long long)te.n, (long long)tr.T);
    int64_t eligible = 0, chosen = 0, masked = 0, kept = 0, randomized = 0, bad_label = 0, rows_without = 0, fill = 0;
    for (int64_t i = 0; i < tr.n; i++) {
        const int32_t *row = tr.tokens + i * tr.T, *lab = tr.labels + i * tr.T;
        int64_t in_row = 0;
        fill += tr.lengths[i];
        for (int64_t j = 0; j < tr.T; j++) {
            int special = row[j] == enc.cls_id || row[j] == enc.sep_id;
            if (j >= tr.lengths[i] || special) {
                bad_label += lab[j] != -1;
                continue;
            }
            eligible++;
            if (lab[j] < 0) continue;
            chosen++, in_row++;
            if (row[j] == enc.mask_id) masked++;
            else if (row[j] == lab[j]) kept++;
            else randomized++;
        }
        rows_without += in_row == 0;
    }
    double pc = (double)chosen / (double)eligible;
    ok(pc > 0.14 && pc < 0.16, "mlm: %.4f of %lld positions chosen (15%%)", pc, (long long)eligible);
    double pm = (double)masked / (double)chosen, pr = (double)randomized / (double)chosen, pk = (double)kept / (double)chosen;
    ok(pm > 0.78 && pm < 0.82 && pr > 0.085 && pr < 0.115 && pk > 0.085 && pk < 0.115,
       "mlm: of %lld chosen, %.4f [MASK], %.4f random, %.4f kept (80/10/10)", (long long)chosen, pm, pr, pk);
    ok(bad_label == 0 && rows_without == 0, "mlm: labels -1 off the chosen positions, [CLS]/[SEP] never chosen, every row "
       "scores a token");
    ok((double)fill / (double)(tr.n * tr.T) > 0.8, "mlm: rows are packed (%.2f of the positions hold tokens)",
       (double)fill / (double)(tr.n * tr.T));
    if (ok(make(&tr2, &te2, "mlm_corpus", &enc, kv, 4) == PARE_OK, "mlm: built again")) {
        ok(tr.n == tr2.n && !memcmp(tr.tokens, tr2.tokens, sizeof(int32_t) * (size_t)(tr.n * tr.T)) &&
           !memcmp(tr.labels, tr2.labels, sizeof(int32_t) * (size_t)(tr.n * tr.T)) &&
           !memcmp(te.labels, te2.labels, sizeof(int32_t) * (size_t)(te.n * te.T)), "mlm: the same seed gives the same rows and masks");
        pare_dataset_free(&tr2), pare_dataset_free(&te2);
    }
    pare_kv kv2[] = {{"sources", PARE_KV_STR, 0, "fortunes"}, {"max_bytes", PARE_KV_NUM, 400000, NULL},
                     {"max_len", PARE_KV_NUM, 64, NULL}, {"seed", PARE_KV_NUM, 3, NULL}, {"dupe", PARE_KV_NUM, 2, NULL}};
    if (ok(make(&tr2, &te2, "mlm_corpus", &enc, kv2, 5) == PARE_OK, "mlm: dupe = 2")) {
        int64_t n = tr.n, same_masks = !memcmp(tr2.labels, tr2.labels + n * tr.T, sizeof(int32_t) * (size_t)(n * tr.T));
        ok(tr2.n == 2 * n && !same_masks && !memcmp(te.tokens, te2.tokens, sizeof(int32_t) * (size_t)(te.n * te.T)),
           "mlm: dupe = 2 doubles the training rows with other masks; the test split is unchanged");
        pare_dataset_free(&tr2), pare_dataset_free(&te2);
    }
    pare_dataset_free(&tr), pare_dataset_free(&te);
    ok(pare_task_make_kv(&tr, &te, "mlm_corpus", kv, 4) == PARE_EINVAL && strstr(pare_errmsg(), "tokenizer"),
       "mlm: without a tokenizer, the error says to give one: %s", pare_errmsg());
}

static void test_clm(pare_tokenizer *bpe)
{
    pare_text_encoder enc;
    if (!ok(pare_tokenizer_text_encoder(&enc, bpe) == PARE_OK, "clm: a GPT-2-style BPE (no pad token) is an encoder")) return;
    pare_kv kv[] = {{"sources", PARE_KV_STR, 0, "fortunes"}, {"max_bytes", PARE_KV_NUM, 200000, NULL},
                    {"max_len", PARE_KV_NUM, 32, NULL}};
    pare_dataset tr, te;
    if (!ok(make(&tr, &te, "clm_corpus", &enc, kv, 3) == PARE_OK, "clm: built")) return;
    int64_t wrong = 0, T = tr.T;
    for (int64_t i = 0; i < tr.n; i++)
        for (int64_t t = 0; t < T; t++) {
            int32_t want = t + 1 < T ? tr.tokens[i * T + t + 1] : i + 1 < tr.n ? tr.tokens[(i + 1) * T] : tr.labels[i * T + t];
            wrong += tr.labels[i * T + t] != want || tr.lengths[i] != T;
        }
    ok(tr.kind == PARE_TASK_LM && T == 32 && wrong == 0 && pare_dataset_check(&tr) == PARE_OK && pare_dataset_check(&te) == PARE_OK,
       "clm: %lld windows of 32, every target the next token of the stream (%lld wrong)", (long long)tr.n, (long long)wrong);
    pare_dataset_free(&tr), pare_dataset_free(&te);
    pare_status rs = pare_task_make_kv(&tr, &te, "clm_corpus", kv, 3);
    if (ok(rs == PARE_OK && tr.vocab > 100,
           "clm: without a tokenizer, the built-in word encoder (vocab %d)", tr.vocab))
        pare_dataset_free(&tr), pare_dataset_free(&te);
}

int main(void)
{
    tap_plan_lazy();
    struct stat st;
    if (stat(FORTUNES, &st) != 0) {
        printf("1..0 # SKIP Debian's fortunes are not installed (apt-get install fortunes)\n");
        return 0;
    }
    test_corpus();
    const char *files[] = {FORTUNES "/computers", FORTUNES "/science", FORTUNES "/work"};
    pare_train_opts o = pare_train_defaults(PARE_TOK_WORDPIECE);
    o.vocab_size = 2000;
    pare_tokenizer wp = {0}, bpe = {0};
    if (ok(pare_tokenizer_train(&wp, &o, files, 3, NULL, 0) == PARE_OK, "a WordPiece vocabulary of 2000")) test_mlm(&wp);
    o = pare_train_defaults(PARE_TOK_BPE);
    o.vocab_size = 800;
    if (ok(pare_tokenizer_train(&bpe, &o, files, 3, NULL, 0) == PARE_OK, "a byte-level BPE of 800")) test_clm(&bpe);
    pare_tokenizer_free(&wp), pare_tokenizer_free(&bpe);
    return tap_done();
}
