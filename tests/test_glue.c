/* test_glue.c — the GLUE readers on small files written here in each task's distributed format
 * (headers, CoLA without one, unlabeled test files, MNLI matched/mismatched, STS-B scores, string
 * labels, stray quotes, CRLF, a byte order mark, empty fields, UTF-8, malformed rows named file:line);
 * datasets built through the encoder interface (padding, pair layout with types, truncation,
 * regression targets, a byte encoder written here); the word encoder; the registry task glue; and
 * the local tasks fortune_topic / fortune_pair (determinism, balance, disjoint splits). Tests needing
 * the installed `fortunes` package are skipped (TAP SKIP) when it is missing.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/status.h"
#include "data/glue.h"
#include "data/lra_files.h"
#include "data/task.h"
#include "data/text_encoder.h"
#include "tap.h"

static char tmpdir[64];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(text, 1, strlen(text), f) != strlen(text)) perror(path), exit(2);
    fclose(f);
}

/* <tmpdir>/<sub>/<name> with text; returns the path (static buffer, one at a time). */
static const char *put(const char *sub, const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, sub);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/%s/%s", tmpdir, sub, name);
    write_file(path, text);
    return path;
}

static pare_status make(pare_dataset *tr, pare_dataset *te, const char *task, const char *const *kv_words, int n)
{
    pare_kv kv[PARE_MAX_OPTS];
    for (int i = 0; i < n; i++) kv[i] = (pare_kv){.key = kv_words[2 * i], .kind = PARE_KV_STR, .str = kv_words[2 * i + 1]};
    return pare_task_make_kv(tr, te, task, kv, n);
}

static int has_fortunes(void) { return access(PARE_FORTUNE_DIR "/computers", R_OK) == 0; }
static void skip(const char *what) { ok(1, "%s # SKIP fortunes not installed (apt-get install fortunes)", what); }

/* ---- the GLUE directory written by the test ---- */

#define MNLI_TRAIN_HDR "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t" \
                       "sentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label\n"
#define MNLI_DEV_HDR "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t" \
                     "sentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label\n"
#define STSB_HDR "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"

static void write_glue(void)
{
    put("CoLA", "train.tsv",
        "gj04\t1\t\tOur friends won't buy this analysis, let alone the next one we propose.\n"
        "gj04\t0\t*\tOne more pseudo generalization and I'm giving up.\n"
        "clc95\t1\t\tThe \"quoted\" word stays, verbatim.\n");
    put("CoLA", "dev.tsv", "gj04\t1\t\tThe sailors rode the breeze clear of the rocks.\n"
                           "gj04\t0\t*\tThe more you eat, the less want you.\n");
    put("CoLA", "test.tsv", "index\tsentence\n0\tBill whistled past the house.\n1\tThe car honked its way down the road.\n");
    put("SST-2", "train.tsv", "sentence\tlabel\nhide new secretions from the parental units \t0\n"
                              "contains no wit , only labored gags \t0\n"
                              "that loves its characters and communicates something rather beautiful \t1\n"
                              "\t1\n");                                              /* an empty sentence */
    put("SST-2", "dev.tsv", "\xEF\xBB\xBFsentence\tlabel\r\nit 's a charming and often affecting journey . \t1\r\n"
                            "\r\nunflinchingly bleak and desperate \t0\r\n"); /* BOM, CRLF, an empty line */
    put("SST-2", "test.tsv", "index\tsentence\n0\tuneasy mishmash of styles and genres .\n1\tcaf\xC3\xA9 na\xC3\xAFve \n");
    put("MRPC", "train.tsv",
        "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
        "1\t702876\t702977\tAmrozi accused his brother , whom he called \" the witness \" , of deliberately distorting "
        "his evidence .\tReferring to him as only \" the witness \" , Amrozi accused his brother of deliberately "
        "distorting his evidence .\n"
        "0\t2108705\t2108831\tYucaipa owned Dominick 's before selling the chain to Safeway in 1998 for $ 2.5 billion "
        ".\tYucaipa bought Dominick 's in 1995 for $ 693 million and sold it to Safeway for $ 1.8 billion in 1998 .\n");
    put("MRPC", "dev.tsv", "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
                           "1\t1355540\t1355592\tHe said the foodservice pie business doesn 't fit .\tThe foodservice pie "
                           "business does not fit , he said .\n");
    put("MRPC", "test.tsv", "index\t#1 ID\t#2 ID\t#1 String\t#2 String\n0\t1089874\t1089925\tPCCW 's chief .\tThe chief .\n");
    put("QQP", "train.tsv",
        "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
        "133273\t213221\t213222\tHow is the life of a math student? Could you describe your own experiences?\tWhich "
        "level of prepration is enough for the exam jlpt5?\t0\n"
        "402555\t536040\t536041\tHow do I control my horny emotions?\tHow do you control your horniness?\t1\n"
        "201841\t303951\t174364\tWhat is \"the\" best \"way\tWhat's the \"best\" way?\t1\n" /* stray quotes */
        "363962\t\tHow to\n"                                                                  /* malformed: line 5 */
        "150662\t155721\t7256\tWhat do Indians think?\tWhy do Indians think?\t0\n");
    put("QQP", "dev.tsv", "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
                          "40066\t263238\t263239\tWhat is the best way?\tHow is the best way?\t1\n"
                          "40067\t263240\t263241\tWhy?\tWhen?\t0\n");
    put("QQP", "test.tsv", "id\tquestion1\tquestion2\n0\tWhy am I mentally very lonely?\tHow do I cure loneliness?\n");
    put("STS-B", "train.tsv", STSB_HDR
        "0\tmain-captions\tMSRvid\t2012test\t0001\tnone\tnone\tA plane is taking off.\tAn air plane is taking off.\t5.000\n"
        "1\tmain-captions\tMSRvid\t2012test\t0004\tnone\tnone\tA man is playing a large flute.\tA man is playing a flute.\t3.800\n"
        "2\tmain-captions\tMSRvid\t2012test\t0005\tnone\tnone\tA man is spreading cheese.\tA man is spreading cheese on a pizza.\t3.8\n"
        "3\tmain-captions\tMSRvid\t2012test\t0006\tnone\tnone\tThree men.\tTwo men.\t6.1\n"); /* out of range: line 5 */
    put("STS-B", "dev.tsv", STSB_HDR "0\tmain-captions\tMSRvid\t2012test\t0000\tnone\tnone\tA man with a hard hat is "
                            "dancing.\tA man wearing a hard hat is dancing.\t5.000\n"
                            "1\tmain-captions\tMSRvid\t2012test\t0002\tnone\tnone\tA young child.\tA child.\t0.000\n");
    put("STS-B", "test.tsv", "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\n"
                             "0\tmain-news\theadlines\t2016\t0001\tnone\tnone\tGirl.\tBoy.\n");
    put("MNLI", "train.tsv", MNLI_TRAIN_HDR
        "0\t31193\t31193n\tgovernment\t( ( Conceptually ...\t( ...\t(ROOT ...)\t(ROOT ...)\tConceptually cream "
        "skimming has two basic dimensions - product and geography.\tProduct and geography are what make cream "
        "skimming work. \tneutral\tneutral\n"
        "1\t101457\t101457e\ttelephone\t( you ...\t( ...\t(ROOT ...)\t(ROOT ...)\tyou know during the season and i "
        "guess at at your level uh you lose them to the next level\tYou lose the things to the following level if the "
        "people recall.\tentailment\tentailment\n"
        "2\t134793\t134793e\tfiction\t( ...\t( ...\t(ROOT ...)\t(ROOT ...)\tOne of our number will carry out your "
        "instructions minutely.\tA member of my team will execute your orders with immense precision.\tentailment\tcontradiction\n");
    put("MNLI", "dev_matched.tsv", MNLI_DEV_HDR
        "0\t63735\t63735n\tslate\t(...)\t(...)\t(...)\t(...)\tThe new rights are nice enough\tEveryone really likes "
        "the newest benefits \tneutral\tentailment\tneutral\tneutral\tneutral\tneutral\n");
    put("MNLI", "dev_mismatched.tsv", MNLI_DEV_HDR
        "0\t75290\t75290c\tletters\t(...)\t(...)\t(...)\t(...)\tYour contribution helped make it possible.\tYour "
        "contributions were of no help.\tcontradiction\tcontradiction\tcontradiction\tcontradiction\tcontradiction\tcontradiction\n"
        "1\t133794\t133794c\tverbatim\t(...)\t(...)\t(...)\t(...)\tThe answer?\tThere is no answer.\tneutral\tneutral"
        "\tneutral\tentailment\tneutral\tneutral\n");
    put("MNLI", "test_matched.tsv", "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
                                    "sentence1_parse\tsentence2_parse\tsentence1\tsentence2\n"
                                    "0\t31493\t31493\ttravel\t(...)\t(...)\t(...)\t(...)\tHierbas.\tHerbs.\n");
    put("QNLI", "train.tsv", "index\tquestion\tsentence\tlabel\n"
                             "0\tWhen did the third Digimon series begin?\tUnlike the two seasons before it, it was "
                             "set in Tokyo.\tnot_entailment\n"
                             "1\tWhat is the Grotto at Notre Dame?\tThe Grotto is a Marian place of prayer.\tentailment\n");
    put("QNLI", "dev.tsv", "index\tquestion\tsentence\tlabel\n0\tWhat came into force?\tThe Treaty came into force.\tentailment\n");
    put("RTE", "train.tsv", "index\tsentence1\tsentence2\tlabel\n"
                            "0\tNo Weapons of Mass Destruction Found in Iraq Yet.\tWeapons of Mass Destruction Found in "
                            "Iraq.\tnot_entailment\n"
                            "1\tA place of sorrow, after Pope John Paul II died.\tPope John Paul II died.\tentailment\n"
                            "2\tHe is tall.\tHe is short.\tmaybe\n"); /* an unknown label: line 4 */
    put("RTE", "dev.tsv", "index\tsentence1\tsentence2\tlabel\n0\tDana Reeve died.\tChristopher Reeve had an accident.\tnot_entailment\n");
    put("WNLI", "train.tsv", "index\tsentence1\tsentence2\tlabel\n"
                             "0\tI stuck a pin through a carrot. When I pulled the pin out, it had a hole.\tThe carrot "
                             "had a hole.\t1\n"
                             "1\tJohn couldn't see the stage with Billy in front of him because he is so short.\tJohn is so short.\t1\n"
                             "2\tThe police arrested all of the gang members.\tThe police were trying to stop the gang.\t0\n");
    put("WNLI", "dev.tsv", "index\tsentence1\tsentence2\tlabel\n0\tThe drain is clogged with hair.\tThe hair has to be removed.\t1\n");
}

static void test_readers(void)
{
    pare_glue_set s;
    pare_glue_task t;
    ok(pare_glue_parse(&t, "SST-2") == PARE_OK && t == PARE_GLUE_SST2 && pare_glue_parse(&t, "sts-b") == PARE_OK &&
           t == PARE_GLUE_STSB && pare_glue_parse(&t, "mnli") == PARE_OK && t == PARE_GLUE_MNLI,
       "task names: sst2, SST-2, sts-b (any case)");
    ok(pare_glue_parse(&t, "squad") == PARE_EINVAL && strstr(pare_errmsg(), "squad") && strstr(pare_errmsg(), "cola, sst2"),
       "an unknown task lists the valid ones (%s)", pare_errmsg());

    /* CoLA: no header, 4 columns, label in column 1, sentence in column 3; test has a header */
    pare_status st = pare_glue_read_dir(&s, tmpdir, PARE_GLUE_COLA, "train", 1);
    ok(st == PARE_OK && s.n == 3 && s.labeled && s.ex[0].label == 1 && s.ex[1].label == 0 && !s.ex[0].b &&
           !strcmp(s.ex[1].a, "One more pseudo generalization and I'm giving up.") &&
           !strcmp(s.ex[2].a, "The \"quoted\" word stays, verbatim."),
       "CoLA train: no header, label column 1, sentence column 3, quotes verbatim (%s)", pare_errmsg());
    pare_glue_set_free(&s);
    st = pare_glue_read_dir(&s, tmpdir, PARE_GLUE_COLA, "test", 1);
    ok(st == PARE_OK && s.n == 2 && !s.labeled && s.ex[0].label == -1 && !strcmp(s.ex[1].a, "The car honked its way down the road."),
       "CoLA test: header index/sentence, unlabeled (label -1)");
    pare_glue_set_free(&s);

    /* SST-2: header, empty sentence, BOM + CRLF + empty line in dev, UTF-8 in test */
    st = pare_glue_read_dir(&s, tmpdir, PARE_GLUE_SST2, "train", 1);
    ok(st == PARE_OK && s.n == 4 && s.ex[2].label == 1 && !strcmp(s.ex[0].a, "hide new secretions from the parental units ") &&
           !strcmp(s.ex[3].a, ""),
       "SST-2 train: header, trailing space kept, an empty sentence is an example");
    pare_glue_set_free(&s);
    st = pare_glue_read_dir(&s, tmpdir, PARE_GLUE_SST2, "dev", 1);
    ok(st == PARE_OK && s.n == 2 && s.ex[1].label == 0 && !strcmp(s.ex[1].a, "unflinchingly bleak and desperate "),
       "SST-2 dev: byte order mark, CRLF line ends and an empty line (%s)", st ? pare_errmsg() : "");
    pare_glue_set_free(&s);
    st = pare_glue_read_dir(&s, tmpdir, PARE_GLUE_SST2, "test", 1);
    ok(st == PARE_OK && !s.labeled && s.n == 2 && !strcmp(s.ex[1].a, "caf\xC3\xA9 na\xC3\xAFve "),
       "SST-2 test: unlabeled, UTF-8 bytes verbatim");
    pare_glue_set_free(&s);

    st = pare_glue_read_dir(&s, tmpdir, PARE_GLUE_MRPC, "train", 1);
    ok(st == PARE_OK && s.n == 2 && s.ex[0].label == 1 && s.ex[1].label == 0 && s.ex[0].b &&
           !strncmp(s.ex[0].b, "Referring to him as only \" the witness \"", 40),
       "MRPC train: Quality, #1 String, #2 String");
    pare_glue_set_free(&s);
    st = pare_glue_read_dir(&s, tmpdir, PARE_GLUE_MRPC, "test", 1);
    ok(st == PARE_OK && !s.labeled && s.n == 1 && !strcmp(s.ex[0].b, "The chief ."), "MRPC test: index header, unlabeled");
    pare_glue_set_free(&s);

    /* QQP: stray quotes verbatim; a short row skipped and named, or an error with strict */
    st = pare_glue_read_dir(&s, tmpdir, PARE_GLUE_QQP, "train", 0);
    ok(st == PARE_OK && s.n == 4 && s.rows == 5 && s.skipped == 1 && strstr(s.first_skipped, "QQP/train.tsv:5:") &&
           strstr(s.first_skipped, "expected 6") && !strcmp(s.ex[2].a, "What is \"the\" best \"way") &&
           !strcmp(s.ex[2].b, "What's the \"best\" way?") && s.ex[3].label == 0,
       "QQP train: stray quotes verbatim, the malformed row skipped and named (%s)", s.first_skipped);
    pare_glue_set_free(&s);
    st = pare_glue_read_dir(&s, tmpdir, PARE_GLUE_QQP, "train", 1);
    ok(st == PARE_EFORMAT && strstr(pare_errmsg(), "QQP/train.tsv:5: expected 6 tab-separated columns") && s.n == 0,
       "QQP train, strict: the malformed row is an error naming file:line (%s)", pare_errmsg());
    st = pare_glue_read_dir(&s, tmpdir, PARE_GLUE_QQP, "test", 1);
    ok(st == PARE_OK && !s.labeled && s.n == 1 && !strcmp(s.ex[0].b, "How do I cure loneliness?"),
       "QQP test: id, question1, question2");
    pare_glue_set_free(&s);

    /* STS-B: float scores in column 9 (score), sentences in 7 and 8 */
    st = pare_glue_read_dir(&s, tmpdir, PARE_GLUE_STSB, "train", 0);
    ok(st == PARE_OK && s.n == 3 && s.skipped == 1 && fabsf(s.ex[1].score - 3.8f) < 1e-6f && s.ex[0].score == 5.0f &&
           s.ex[0].label == 0 && !strcmp(s.ex[1].b, "A man is playing a flute.") && strstr(s.first_skipped, ":5: score '6.1'"),
       "STS-B train: scores, sentence1/sentence2; a score outside [0, 5] skipped (%s)", s.first_skipped);
    pare_glue_set_free(&s);
    st = pare_glue_read_dir(&s, tmpdir, PARE_GLUE_STSB, "test", 1);
    ok(st == PARE_OK && !s.labeled && isnan(s.ex[0].score), "STS-B test: no score column, score NAN");
    pare_glue_set_free(&s);

    /* MNLI: 12 columns in train, 16 in dev, 10 in test; gold_label last; dev matched / mismatched */
    st = pare_glue_read_dir(&s, tmpdir, PARE_GLUE_MNLI, "train", 1);
    ok(st == PARE_OK && s.n == 3 && s.ex[0].label == 2 && s.ex[1].label == 1 && s.ex[2].label == 0 &&
           !strcmp(s.ex[2].a, "One of our number will carry out your instructions minutely."),
       "MNLI train: sentence1/2 at columns 8, 9, gold_label (not label1) last");
    pare_glue_set_free(&s);
    st = pare_glue_read_dir(&s, tmpdir, PARE_GLUE_MNLI, "dev_mismatched", 1);
    ok(st == PARE_OK && s.n == 2 && s.ex[0].label == 0 && s.ex[1].label == 2, "MNLI dev_mismatched: 16 columns");
    pare_glue_set_free(&s);
    st = pare_glue_read_dir(&s, tmpdir, PARE_GLUE_MNLI, "dev_matched", 1);
    ok(st == PARE_OK && s.n == 1 && s.ex[0].label == 2, "MNLI dev_matched");
    pare_glue_set_free(&s);
    st = pare_glue_read_dir(&s, tmpdir, PARE_GLUE_MNLI, "test_matched", 1);
    ok(st == PARE_OK && !s.labeled && !strcmp(s.ex[0].b, "Herbs."), "MNLI test_matched: 10 columns, unlabeled");
    pare_glue_set_free(&s);
    st = pare_glue_read_dir(&s, tmpdir, PARE_GLUE_MNLI, "dev", 1);
    ok(st == PARE_EINVAL && strstr(pare_errmsg(), "dev_matched|dev_mismatched"), "MNLI has no plain dev: the splits are listed (%s)",
       pare_errmsg());

    st = pare_glue_read_dir(&s, tmpdir, PARE_GLUE_QNLI, "train", 1);
    ok(st == PARE_OK && s.n == 2 && s.ex[0].label == 1 && s.ex[1].label == 0 && !strcmp(s.ex[1].a, "What is the Grotto at Notre Dame?"),
       "QNLI: question, sentence, string labels (entailment = 0)");
    pare_glue_set_free(&s);
    st = pare_glue_read_dir(&s, tmpdir, PARE_GLUE_RTE, "train", 1);
    ok(st == PARE_EFORMAT && strstr(pare_errmsg(), "RTE/train.tsv:4: label 'maybe' is not one of entailment, not_entailment"),
       "RTE strict: an unknown label names file:line and the labels (%s)", pare_errmsg());
    st = pare_glue_read_dir(&s, tmpdir, PARE_GLUE_RTE, "train", 0);
    ok(st == PARE_OK && s.n == 2 && s.skipped == 1 && s.ex[0].label == 1, "RTE: the unknown label skipped and counted");
    pare_glue_set_free(&s);
    st = pare_glue_read_dir(&s, tmpdir, PARE_GLUE_WNLI, "train", 1);
    ok(st == PARE_OK && s.n == 3 && s.ex[2].label == 0 && s.ex[0].label == 1, "WNLI: labels 0/1");
    pare_glue_set_free(&s);

    /* errors */
    char p[512];
    snprintf(p, sizeof p, "%s/SST-2/train.tsv", tmpdir);
    st = pare_glue_read(&s, p, PARE_GLUE_QNLI, 0);
    ok(st == PARE_EFORMAT && strstr(pare_errmsg(), "train.tsv:1: not a GLUE qnli file") &&
           strstr(pare_errmsg(), "(sentence, label)") && strstr(pare_errmsg(), "'question'"),
       "a file of another task: the header and the missing column are named (%s)", pare_errmsg());
    st = pare_glue_read_dir(&s, tmpdir, PARE_GLUE_QNLI, "test", 0);
    ok(st == PARE_EIO && strstr(pare_errmsg(), "QNLI/test.tsv: cannot open"), "a missing file: PARE_EIO with its path (%s)",
       pare_errmsg());
    /* many malformed rows: an error even when skipping */
    char big[8192];
    size_t used = (size_t)snprintf(big, sizeof big, "sentence\tlabel\n");
    for (int i = 0; i < 30; i++) used += (size_t)snprintf(big + used, sizeof big - used, "row %d\t%s\n", i, i % 2 ? "1" : "yes");
    const char *bad = put("bad", "sst.tsv", big);
    st = pare_glue_read(&s, bad, PARE_GLUE_SST2, 0);
    ok(st == PARE_EFORMAT && strstr(pare_errmsg(), "15 of 30 rows are malformed") && strstr(pare_errmsg(), "sst.tsv:2: label 'yes'"),
       "more than 1%% of rows malformed is an error even when skipping (%s)", pare_errmsg());
    bad = put("bad", "nul.tsv", "sentence\tlabel\nab\0c\t1\n");
    st = pare_glue_read(&s, bad, PARE_GLUE_SST2, 0);
    ok(st == PARE_OK || st == PARE_EFORMAT, "a file cut at a NUL byte does not crash");
    pare_glue_set_free(&s);
    bad = put("bad", "header_only.tsv", "sentence\tlabel\n");
    st = pare_glue_read(&s, bad, PARE_GLUE_SST2, 0);
    ok(st == PARE_EFORMAT && strstr(pare_errmsg(), "no examples"), "a header without rows is an error (%s)", pare_errmsg());
    bad = put("bad", "empty.tsv", "");
    st = pare_glue_read(&s, bad, PARE_GLUE_COLA, 0);
    ok(st == PARE_EFORMAT && strstr(pare_errmsg(), "no examples"), "an empty file is an error");
}

/* ---- a byte encoder written here: [CLS]=1 bytes... [SEP]=2 (bytes as 3 + b), cut at max_len ---- */

static int byte_calls;
static pare_status byte_encode(void *self, const char *a, const char *b, int64_t max_len, int32_t *ids, int32_t *types,
                               int64_t *len)
{
    (void)self;
    byte_calls++;
    int64_t k = 0;
    ids[k] = 1, types[k++] = 0;
    for (const char *p = a; *p && k < max_len; p++) ids[k] = 3 + (unsigned char)*p, types[k++] = 0;
    if (b && k < max_len) ids[k] = 2, types[k++] = 0;
    for (const char *p = b; b && *p && k < max_len; p++) ids[k] = 3 + (unsigned char)*p, types[k++] = 1;
    *len = k;
    return PARE_OK;
}
static pare_status bad_encode(void *self, const char *a, const char *b, int64_t max_len, int32_t *ids, int32_t *types,
                              int64_t *len)
{
    (void)self, (void)a, (void)b, (void)max_len;
    ids[0] = 1, ids[1] = 999, types[0] = types[1] = 0;
    *len = 2;
    return PARE_OK;
}
static const pare_text_encoder byte_enc = {NULL, byte_encode, NULL, 259, 0, 0, 0, 0};

static void test_dataset(void)
{
    pare_text_example ex[] = {{"ab", NULL, 1, NAN}, {"hello", NULL, 0, NAN}, {"", NULL, 1, NAN}};
    pare_dataset d;
    pare_status st = pare_text_dataset(&d, "t/train", ex, 3, 2, &byte_enc, 16);
    ok(st == PARE_OK && d.n == 3 && d.T == 6 && d.lengths[0] == 3 && d.lengths[1] == 6 && d.lengths[2] == 1 &&
           d.tokens[0] == 1 && d.tokens[1] == 3 + 'a' && d.tokens[3] == 0 && d.tokens[5] == 0 && d.labels[0] == 1 &&
           !d.types && !d.targets && pare_dataset_check(&d) == PARE_OK && !strcmp(d.vocab_names[3 + 'a'], "#100"),
       "single segments: T = longest row, PAD after each length, labels, no types or targets, names #id");
    pare_dataset_free(&d);
    pare_text_example px[] = {{"ab", "xyz", 0, NAN}, {"a", "b", 1, NAN}};
    st = pare_text_dataset(&d, "t/pairs", px, 2, 2, &byte_enc, 16);
    const int32_t want_types[] = {0, 0, 0, 0, 1, 1, 1};
    ok(st == PARE_OK && d.T == 7 && d.types && !memcmp(d.types, want_types, sizeof want_types) && d.tokens[3] == 2 &&
           d.types[7 + 3] == 1 && d.types[7 + 4] == 0 && pare_dataset_check(&d) == PARE_OK,
       "pairs: types 0 for the first segment, 1 for the second, 0 after the length");
    int64_t idx[] = {1};
    int32_t ty[7];
    float tg;
    pare_dataset_gather_extra(&d, idx, 1, ty, &tg);
    ok(!memcmp(ty, d.types + 7, sizeof ty) && isnan(tg), "gather_extra copies types; targets NAN when absent");
    ok(pare_dataset_repad(&d, 10) == PARE_OK && d.T == 10 && d.types[10 + 3] == 1 && d.types[10 + 4] == 0 &&
           d.types[8] == 0 && pare_dataset_check(&d) == PARE_OK,
       "repad keeps the types");
    pare_dataset_free(&d);
    pare_dataset_free(&d);
    st = pare_text_dataset(&d, "t/cut", px, 2, 2, &byte_enc, 4);
    ok(st == PARE_OK && d.T == 4 && d.lengths[0] == 4, "max_len truncates (the encoder's policy)");
    pare_dataset_free(&d);
    pare_text_example sx[] = {{"a", "b", 0, 4.5f}, {"c", "d", 0, 0.25f}};
    st = pare_text_dataset(&d, "t/reg", sx, 2, 1, &byte_enc, 8);
    ok(st == PARE_OK && d.nclass == 1 && d.targets && d.targets[0] == 4.5f && d.targets[1] == 0.25f && d.labels[1] == 0 &&
           pare_dataset_check(&d) == PARE_OK,
       "regression (nclass 1): targets hold the scores, labels 0");
    ok(pare_dataset_repad(&d, 9) == PARE_OK && d.targets[1] == 0.25f, "repad keeps the targets");
    pare_dataset_free(&d);
    sx[1].score = NAN;
    st = pare_text_dataset(&d, "t/reg", sx, 2, 1, &byte_enc, 8);
    ok(st == PARE_EINVAL && strstr(pare_errmsg(), "example 1 has no score"), "regression: a missing score is an error");
    pare_text_example ux[] = {{"a", NULL, -1, NAN}};
    st = pare_text_dataset(&d, "t/unlab", ux, 1, 2, &byte_enc, 8);
    ok(st == PARE_OK && d.labels[0] == -1 && pare_dataset_check(&d) == PARE_EFORMAT,
       "an unlabeled split packs with label -1, which pare_dataset_check rejects");
    pare_dataset_free(&d);
    pare_text_encoder e = byte_enc;
    e.pad_id = 3;
    ok(pare_text_dataset(&d, "t/x", ex, 3, 2, &e, 8) == PARE_EINVAL && strstr(pare_errmsg(), "pad_id 0"),
       "an encoder whose pad is not 0 is rejected (%s)", pare_errmsg());
    e = byte_enc;
    e.encode = bad_encode;
    ok(pare_text_dataset(&d, "t/x", ex, 3, 2, &e, 8) == PARE_EINVAL && strstr(pare_errmsg(), "example 0 token 999"),
       "an encoder giving an id outside the vocabulary is named (%s)", pare_errmsg());
    ex[1].label = 2;
    ok(pare_text_dataset(&d, "t/x", ex, 3, 2, &byte_enc, 8) == PARE_EINVAL && strstr(pare_errmsg(), "example 1 has label 2"),
       "a label outside [-1, nclass) is an error");
}

static void test_word_encoder(void)
{
    pare_text_example ex[] = {{"The cat sat.", "the DOG sat!", 0, NAN}, {"the end", NULL, 1, NAN}, {"Zebra's café", NULL, 0, NAN}};
    const char *w[8];
    char buf[128];
    int64_t k = pare_word_split("The cat's  Café,ok", buf, sizeof buf, w, 8);
    ok(k == 5 && !strcmp(w[0], "the") && !strcmp(w[1], "cat's") && !strcmp(w[2], "caf\xC3\xA9") && !strcmp(w[3], ",") &&
           !strcmp(w[4], "ok"),
       "word split: lower-cased ASCII, apostrophes and UTF-8 inside words, punctuation alone");
    pare_word_encoder *we;
    ok(pare_word_encoder_build(&we, ex, 3, 100, 1) == PARE_OK, "word encoder builds");
    pare_text_encoder e = pare_word_encoder_iface(we);
    /* counts: the 4, sat 2, then 1 each in byte order: ! . café cat dog end zebra's */
    ok(e.vocab == 4 + 9 && !strcmp(e.token_name(we, 4), "the") && !strcmp(e.token_name(we, 5), "sat") &&
           !strcmp(e.token_name(we, 6), "!") && !strcmp(e.token_name(we, 12), "zebra's") &&
           !strcmp(e.token_name(we, 1), "[CLS]") && !strcmp(e.token_name(we, 3), "[UNK]"),
       "vocabulary: specials, then by count, ties in byte order (vocab %d)", e.vocab);
    int32_t ids[16], ty[16];
    int64_t len;
    e.encode(we, "the cat", "a dog", 16, ids, ty, &len);
    ok(len == 7 && ids[0] == 1 && ids[1] == 4 && ids[3] == 2 && ids[4] == 3 && ids[6] == 2 && ty[3] == 0 && ty[4] == 1 &&
           ty[6] == 1,
       "pair row [CLS] the cat [SEP] [UNK] dog [SEP], types 0 then 1");
    e.encode(we, "the the the the the the", "cat dog", 8, ids, ty, &len);
    ok(len == 8 && ids[3] == 4 && ids[4] == 2 && ids[5] == 4 + 5 && ids[7] == 2,
       "longest_first truncation: the longer segment is cut (3 + 2 words in 8 tokens)");
    pare_word_encoder_free(we);
    ok(pare_word_encoder_build(&we, ex, 3, 6, 1) == PARE_OK && pare_word_encoder_iface(we).vocab == 6,
       "max_vocab caps the vocabulary");
    pare_word_encoder_free(we);
    ok(pare_word_encoder_build(&we, ex, 3, 100, 2) == PARE_OK && pare_word_encoder_iface(we).vocab == 6,
       "min_count drops rare words");
    pare_word_encoder_free(we);
    ok(pare_word_encoder_build(&we, ex, 3, 4, 1) == PARE_EINVAL, "vocab < 5 is an error");
}

static int same(const pare_dataset *a, const pare_dataset *b)
{
    return a->n == b->n && a->T == b->T && a->vocab == b->vocab && !memcmp(a->tokens, b->tokens, (size_t)(a->n * a->T) * 4) &&
           !memcmp(a->lengths, b->lengths, (size_t)a->n * 4) && !memcmp(a->labels, b->labels, (size_t)a->n * 4) &&
           (!a->types) == (!b->types) && (!a->types || !memcmp(a->types, b->types, (size_t)(a->n * a->T) * 4));
}

static void test_glue_task(void)
{
    pare_dataset tr, te;
    const char *kv[] = {"name", "mrpc", "dir", tmpdir, "min_count", "1"};
    pare_status st = make(&tr, &te, "glue", kv, 3);
    ok(st == PARE_OK && tr.n == 2 && te.n == 1 && tr.T == te.T && tr.types && te.types && tr.nclass == 2 &&
           pare_dataset_check(&tr) == PARE_OK && pare_dataset_check(&te) == PARE_OK && !strcmp(tr.name, "glue_mrpc/train") &&
           !strcmp(tr.vocab_names[tr.tokens[1]], "amrozi"),
       "glue mrpc from a glue_data directory: train + dev, pairs with types, one T (%s)", st ? pare_errmsg() : "");
    pare_dataset_free(&tr), pare_dataset_free(&te);
    const char *kv2[] = {"name", "mnli", "dir", tmpdir, "test_split", "dev_mismatched", "max_len", "8"};
    st = make(&tr, &te, "glue", kv2, 4);
    ok(st == PARE_OK && tr.nclass == 3 && te.n == 2 && te.labels[0] == 0 && tr.T == 8, "glue mnli on dev_mismatched, truncated to 8");
    pare_dataset_free(&tr), pare_dataset_free(&te);
    const char *kv3[] = {"name", "stsb", "dir", tmpdir};
    st = make(&tr, &te, "glue", kv3, 2);
    ok(st == PARE_OK && tr.nclass == 1 && tr.targets && tr.targets[1] == 3.8f && te.targets[1] == 0.0f,
       "glue stsb: regression targets");
    pare_dataset_free(&tr), pare_dataset_free(&te);
    const char *kv4[] = {"name", "sst2", "dir", tmpdir, "test_split", "test"};
    st = make(&tr, &te, "glue", kv4, 3);
    ok(st == PARE_EINVAL && strstr(pare_errmsg(), "SST-2/test.tsv has no labels"), "glue on an unlabeled test file: an error (%s)",
       pare_errmsg());
    const char *kv5[] = {"name", "cola"};
    st = make(&tr, &te, "glue", kv5, 1);
    ok(st == PARE_EINVAL && strstr(pare_errmsg(), "option dir"), "glue without dir names the option (%s)", pare_errmsg());
    char trp[512], tep[512];
    snprintf(trp, sizeof trp, "%s/CoLA/train.tsv", tmpdir), snprintf(tep, sizeof tep, "%s/CoLA/dev.tsv", tmpdir);
    const char *kv6[] = {"name", "cola", "train_path", trp, "test_path", tep};
    st = make(&tr, &te, "glue", kv6, 3);
    ok(st == PARE_OK && tr.n == 3 && te.n == 2 && !tr.types, "glue cola from explicit paths; single sentences have no types");
    pare_dataset_free(&tr), pare_dataset_free(&te);
    const char *kv7[] = {"name", "qqp", "dir", tmpdir, "strict", "true"};
    st = make(&tr, &te, "glue", kv7, 3);
    ok(st == PARE_EFORMAT && strstr(pare_errmsg(), "train.tsv:5:"), "glue strict=true: the malformed QQP row is an error");
    const char *kv8[] = {"name", "glue"};
    st = make(&tr, &te, "glue", kv8, 1);
    ok(st == PARE_EINVAL && strstr(pare_errmsg(), "cola|sst2"), "glue name=glue lists the valid names (%s)", pare_errmsg());
    /* a caller's encoder */
    pare_kv kvs[] = {{"name", PARE_KV_STR, 0, "rte"}, {"dir", PARE_KV_STR, 0, tmpdir}};
    pare_options o;
    ok(pare_opts_resolve(&o, pare_task_schema("glue"), kvs, 2) == PARE_OK, "glue options resolve");
    st = pare_text_task_make(&tr, &te, "glue", &o, &byte_enc);
    ok(st == PARE_OK && tr.vocab == 259 && tr.n == 2 && tr.tokens[1] == 3 + 'N' && pare_dataset_check(&tr) == PARE_OK,
       "pare_text_task_make with a caller's encoder (bytes)");
    pare_dataset_free(&tr), pare_dataset_free(&te);
    ok(pare_text_task_make(&tr, &te, "recall", NULL, &byte_enc) == PARE_EINVAL && strstr(pare_errmsg(), "fortune_pair"),
       "pare_text_task_make on a non-text task lists the text tasks");
}

static int64_t count_label(const pare_dataset *d, int32_t c)
{
    int64_t k = 0;
    for (int64_t i = 0; i < d->n; i++) k += d->labels[i] == c;
    return k;
}

static uint64_t row_hash(const int32_t *t, int64_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (int64_t i = 0; i < n; i++) h = (h ^ (uint32_t)t[i]) * 1099511628211ull;
    return h;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* How many of b's hashes are in a's (both sorted in place). */
static int64_t overlap(uint64_t *a, int64_t na, uint64_t *b, int64_t nb)
{
    qsort(a, (size_t)na, 8, cmp_u64), qsort(b, (size_t)nb, 8, cmp_u64);
    int64_t k = 0;
    for (int64_t i = 0, j = 0; i < na && j < nb;)
        if (a[i] < b[j]) i++;
        else if (a[i] > b[j]) j++;
        else k++, j++;
    return k;
}

static void test_fortune_topic(void)
{
    if (!has_fortunes()) return skip("fortune_topic on the installed corpus");
    pare_dataset tr, te, tr2, te2;
    pare_status st = pare_task_make_kv(&tr, &te, "fortune_topic", NULL, 0);
    ok(st == PARE_OK && tr.nclass == 5 && te.n % 5 == 0 && tr.n % 5 == 0 && tr.T == te.T && tr.T <= 64 &&
           pare_dataset_check(&tr) == PARE_OK && pare_dataset_check(&te) == PARE_OK && !tr.types,
       "fortune_topic defaults: 5 classes, %lld train / %lld test, T %lld, vocab %d (%s)", (long long)tr.n, (long long)te.n,
       (long long)tr.T, tr.vocab, st ? pare_errmsg() : "");
    int bal = 1;
    for (int c = 0; c < 5; c++) bal &= count_label(&tr, c) == tr.n / 5 && count_label(&te, c) == te.n / 5;
    ok(bal, "fortune_topic: both splits exactly balanced");
    ok(!strcmp(tr.vocab_names[1], "[CLS]") && tr.tokens[0] == 1 && tr.tokens[tr.lengths[0] - 1] == 2,
       "fortune_topic rows: [CLS] ... [SEP]");
    char buf[256];
    diag("fortune_topic train 0 (label %d): %s", tr.labels[0], pare_dataset_decode(&tr, 0, buf, sizeof buf));
    st = pare_task_make_kv(&tr2, &te2, "fortune_topic", NULL, 0);
    ok(st == PARE_OK && same(&tr, &tr2) && same(&te, &te2), "fortune_topic: same seed, same bytes");
    pare_dataset_free(&tr2), pare_dataset_free(&te2);
    pare_kv seed2[] = {{"seed", PARE_KV_NUM, 2, NULL}};
    st = pare_task_make_kv(&tr2, &te2, "fortune_topic", seed2, 1);
    ok(st == PARE_OK && !same(&te, &te2), "fortune_topic: another seed, another split");
    pare_dataset_free(&tr2), pare_dataset_free(&te2);
    pare_dataset_free(&tr), pare_dataset_free(&te);
    /* disjoint: through the byte encoder, each row is the fortune's first bytes */
    pare_kv kv[] = {{"max_len", PARE_KV_NUM, 4096, NULL}};
    pare_options o;
    pare_opts_resolve(&o, pare_task_schema("fortune_topic"), kv, 1);
    st = pare_text_task_make(&tr, &te, "fortune_topic", &o, &byte_enc);
    uint64_t *ha = malloc((size_t)(tr.n + 1) * 8), *hb = malloc((size_t)(te.n + 1) * 8);
    for (int64_t i = 0; st == PARE_OK && i < tr.n; i++) ha[i] = row_hash(tr.tokens + i * tr.T, tr.lengths[i]);
    for (int64_t i = 0; st == PARE_OK && i < te.n; i++) hb[i] = row_hash(te.tokens + i * te.T, te.lengths[i]);
    ok(st == PARE_OK && overlap(ha, tr.n, hb, te.n) == 0, "fortune_topic: no test fortune is in the train split");
    free(ha), free(hb);
    pare_dataset_free(&tr), pare_dataset_free(&te);
    pare_kv badc[] = {{"categories", PARE_KV_STR, 0, "computers,nonesuch"}};
    st = pare_task_make_kv(&tr, &te, "fortune_topic", badc, 1);
    ok(st == PARE_EINVAL && strstr(pare_errmsg(), "nonesuch") && strstr(pare_errmsg(), "available"),
       "fortune_topic: an unknown category lists the available ones");
}

static void test_fortune_pair(void)
{
    if (!has_fortunes()) return skip("fortune_pair on the installed corpus");
    pare_dataset tr, te, tr2, te2;
    pare_kv kv[] = {{"n_train", PARE_KV_NUM, 1000, NULL}, {"n_test", PARE_KV_NUM, 400, NULL}};
    pare_status st = pare_task_make_kv(&tr, &te, "fortune_pair", kv, 2);
    ok(st == PARE_OK && tr.n == 1000 && te.n == 400 && tr.types && te.types && pare_dataset_check(&tr) == PARE_OK &&
           pare_dataset_check(&te) == PARE_OK && count_label(&tr, 1) == 500 && count_label(&te, 1) == 200,
       "fortune_pair: sizes, exactly balanced, types present (%s)", st ? pare_errmsg() : "");
    char buf[512];
    diag("fortune_pair train 0 (label %d): %s", tr.labels[0], pare_dataset_decode(&tr, 0, buf, sizeof buf));
    /* the pair layout: [CLS] a [SEP] b [SEP], types 0 up to the first [SEP], then 1 */
    int layout = 1;
    for (int64_t i = 0; i < tr.n && layout; i++) {
        const int32_t *t = tr.tokens + i * tr.T, *y = tr.types + i * tr.T;
        int64_t L = tr.lengths[i], sep = -1;
        for (int64_t j = 0; j < L && sep < 0; j++)
            if (t[j] == 2) sep = j;
        layout &= t[0] == 1 && sep > 0 && t[L - 1] == 2 && y[sep] == 0 && y[L - 1] == 1 && (sep + 1 >= L || y[sep + 1] == 1);
    }
    ok(layout, "fortune_pair rows: [CLS] a [SEP] b [SEP] with types 0 then 1");
    st = pare_task_make_kv(&tr2, &te2, "fortune_pair", kv, 2);
    ok(st == PARE_OK && same(&tr, &tr2) && same(&te, &te2), "fortune_pair: same seed, same bytes");
    pare_dataset_free(&tr2), pare_dataset_free(&te2);
    pare_dataset_free(&tr), pare_dataset_free(&te);
    /* disjoint fortunes: through the byte encoder, the sentences of test pairs vs those of train pairs
     * (a short sentence such as "I don't know." may occur in two different fortunes, hence a tolerance) */
    pare_kv kb[] = {{"n_train", PARE_KV_NUM, 2000, NULL}, {"n_test", PARE_KV_NUM, 500, NULL}, {"max_len", PARE_KV_NUM, 4096, NULL}};
    pare_options o;
    pare_opts_resolve(&o, pare_task_schema("fortune_pair"), kb, 3);
    st = pare_text_task_make(&tr, &te, "fortune_pair", &o, &byte_enc);
    uint64_t *ha = malloc((size_t)tr.n * 2 * 8), *hb = malloc((size_t)te.n * 2 * 8);
    for (int side = 0; side < 2 && st == PARE_OK; side++) {
        const pare_dataset *d = side ? &te : &tr;
        uint64_t *h = side ? hb : ha;
        for (int64_t i = 0; i < d->n; i++) {
            const int32_t *t = d->tokens + i * d->T;
            int64_t L = d->lengths[i], sep = 1;
            while (sep < L && t[sep] != 2) sep++;
            h[2 * i] = row_hash(t + 1, sep - 1), h[2 * i + 1] = row_hash(t + sep + 1, L - sep - 1);
        }
    }
    int64_t shared = st == PARE_OK ? overlap(ha, tr.n * 2, hb, te.n * 2) : -1;
    ok(st == PARE_OK && shared >= 0 && shared * 50 <= te.n * 2, "fortune_pair: under 2%% of test sentences in train pairs "
       "(%lld of %lld: sentences repeated across fortunes)", (long long)shared, (long long)te.n * 2);
    free(ha), free(hb);
    pare_dataset_free(&tr), pare_dataset_free(&te);
    pare_kv tiny[] = {{"categories", PARE_KV_STR, 0, "computers"}, {"min_words", PARE_KV_NUM, 200, NULL}};
    st = pare_task_make_kv(&tr, &te, "fortune_pair", tiny, 2);
    ok(st == PARE_EINVAL && strstr(pare_errmsg(), "min_words=200"), "fortune_pair: too few usable fortunes names the options (%s)",
       pare_errmsg());
}

/* fortune_sts: a regression task whose score is the share of sentence1's words that sentence2 keeps. Checked
 * from the rows alone: the share of b's tokens found in a (a set overlap, blind to positions) must follow
 * the score closely (a replaced word can, rarely, be a word of a too). */
static void test_fortune_sts(void)
{
    if (!has_fortunes()) return skip("fortune_sts on the installed corpus");
    pare_dataset tr, te, tr2, te2;
    pare_kv kv[] = {{"n_train", PARE_KV_NUM, 600, NULL}, {"n_test", PARE_KV_NUM, 200, NULL},
                    {"min_count", PARE_KV_NUM, 1, NULL}, {"max_len", PARE_KV_NUM, 512, NULL}};
    pare_status st = pare_task_make_kv(&tr, &te, "fortune_sts", kv, 4);
    if (!ok(st == PARE_OK && tr.n == 600 && te.n == 200 && tr.nclass == 1 && tr.targets && te.targets && tr.types &&
                pare_dataset_check(&tr) == PARE_OK && pare_dataset_check(&te) == PARE_OK,
            "fortune_sts: a regression pair task (nclass 1, targets, types) (%s)", st ? pare_errmsg() : "")) return;
    char buf[512];
    diag("fortune_sts train 0 (score %.2f): %s", (double)tr.targets[0], pare_dataset_decode(&tr, 0, buf, sizeof buf));
    double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0, lo = 5, hi = 0;
    int64_t n = 0;
    for (int64_t i = 0; i < tr.n; i++) {
        const int32_t *t = tr.tokens + i * tr.T;
        int64_t L = tr.lengths[i], sep = 1, inb = 0, nb = 0;
        while (sep < L && t[sep] != 2) sep++;
        for (int64_t j = sep + 1; j < L - 1; j++, nb++)
            for (int64_t k = 1; k < sep; k++)
                if (t[k] == t[j]) { inb++; break; }
        if (nb == 0) continue;
        double x = 5.0 * (double)inb / (double)nb, y = tr.targets[i];
        sx += x, sy += y, sxx += x * x, syy += y * y, sxy += x * y, n++;
        lo = y < lo ? y : lo, hi = y > hi ? y : hi;
    }
    double r = (sxy - sx * sy / n) / sqrt((sxx - sx * sx / n) * (syy - sy * sy / n));
    ok(r > 0.9 && lo == 0 && hi == 5, "fortune_sts: scores span [%.1f, %.1f] and follow the words sentence2 shares with "
       "sentence1 (Pearson %.3f over %lld pairs)", lo, hi, r, (long long)n);
    st = pare_task_make_kv(&tr2, &te2, "fortune_sts", kv, 4);
    ok(st == PARE_OK && same(&tr, &tr2) && same(&te, &te2) && !memcmp(tr.targets, tr2.targets, (size_t)tr.n * 4) &&
           !memcmp(te.targets, te2.targets, (size_t)te.n * 4),
       "fortune_sts: same seed, same bytes and scores");
    pare_dataset_free(&tr2), pare_dataset_free(&te2);
    pare_dataset_free(&tr), pare_dataset_free(&te);
}

int main(void)
{
    tap_plan_lazy();
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pare_test_glue_XXXXXX");
    if (!mkdtemp(tmpdir)) return perror("mkdtemp"), 2;
    write_glue();
    test_readers();
    test_dataset();
    test_word_encoder();
    test_glue_task();
    test_fortune_topic();
    test_fortune_pair();
    test_fortune_sts();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) diag("could not remove %s", tmpdir);
    return tap_done();
}
