/* unicode.h — the few Unicode properties the tokenizers need, over UTF-8 (internal to src/text).
 *
 * Tables are generated from Python's unicodedata (Unicode 14.0) by tools/gen_unicode.py into
 * unicode_tables.c and cover the whole code space: general categories L*, N*, P*, Mn, control
 * (Cc, Cf, Co, Cs), Zs, the White_Space property, the simple one-to-one lower-case mapping and the
 * canonical decomposition with non-spacing marks removed (what BERT's accent stripping leaves).
 * Not here: full (one-to-many) case mapping except U+0130, Unicode normalisation forms as such,
 * grapheme clusters, the final-sigma rule.
 */
#ifndef PARE_TEXT_UNICODE_H
#define PARE_TEXT_UNICODE_H

#include <stddef.h>
#include <stdint.h>

typedef struct pare_u_range { uint32_t lo, hi; } pare_u_range;
typedef struct pare_u_case_run { uint32_t first, last; int32_t stride, delta; } pare_u_case_run;
typedef struct pare_u_decomp { uint32_t cp; uint32_t to[3]; } pare_u_decomp;

extern const pare_u_range pare_u_letter[], pare_u_number[], pare_u_punct[], pare_u_mark_nonspacing[],
    pare_u_control[], pare_u_space_sep[], pare_u_white_space[];
extern const int pare_u_letter_n, pare_u_number_n, pare_u_punct_n, pare_u_mark_nonspacing_n, pare_u_control_n,
    pare_u_space_sep_n, pare_u_white_space_n;
extern const pare_u_case_run pare_u_lower[];
extern const int pare_u_lower_n;
extern const pare_u_decomp pare_u_strip[];
extern const int pare_u_strip_n;

#define PARE_U_BAD 0xFFFFFFFFu /* an invalid UTF-8 sequence: decode returns it and consumes one byte */

/* Decode one code point from s[0..n) (n >= 1); *len = bytes consumed (1..4). Overlong forms,
 * surrogates and values above U+10FFFF are invalid (PARE_U_BAD, one byte). */
uint32_t pare_utf8_decode(const unsigned char *s, size_t n, int *len);
/* Encode cp into out (4 bytes room); returns the byte count. */
int pare_utf8_encode(uint32_t cp, char *out);

int pare_u_is_letter(uint32_t cp);     /* \p{L} */
int pare_u_is_number(uint32_t cp);     /* \p{N} */
int pare_u_is_white(uint32_t cp);      /* \s: the White_Space property */
int pare_u_is_mn(uint32_t cp);         /* Mn, non-spacing mark */
/* BERT's definitions (tokenization.py / HF BasicTokenizer): */
int pare_u_bert_space(uint32_t cp);    /* ' ', \t, \n, \r or Zs */
int pare_u_bert_control(uint32_t cp);  /* category C* except \t \n \r */
int pare_u_bert_punct(uint32_t cp);    /* ASCII 33-47, 58-64, 91-96, 123-126, or P* */
int pare_u_bert_cjk(uint32_t cp);      /* the CJK Unified Ideograph blocks BERT isolates */
uint32_t pare_u_lower1(uint32_t cp);   /* simple lower case (U+0130 -> 'i'; the dot is a mark stripped later) */
/* NFD of cp minus the non-spacing marks into out (3 code points room); returns the count (0: cp is Mn). */
int pare_u_strip_accents(uint32_t cp, uint32_t *out);

#endif
