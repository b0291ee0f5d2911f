/* pretokenize.c — the splitters that run before the subword models: GPT-2's pattern and BERT's basic
 * tokenizer, and GPT-2's byte alphabet.
 *
 * GPT-2 (encoder.py) splits with the regular expression
 *     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * implemented here by hand, alternative by alternative, with the Unicode classes of unicode.h (whole
 * Unicode 14, not only some scripts). The one non-obvious part is \s+(?!\S): a run of whitespace
 * followed by a non-space gives back its last character, which then prefixes the next word (" ok").
 * Invalid UTF-8 bytes are kept as one-byte "other" symbols so that any byte string round-trips.
 *
 * BERT's basic tokenizer (tokenization.py; HF BertNormalizer + BertPreTokenizer): drop NUL, U+FFFD
 * and control characters, whitespace separates (BERT's ' ', \t, \n, \r, Zs, and then str.split()'s
 * White_Space, which adds U+2028/U+2029), CJK ideographs become words of their own, then lower case
 * and accent stripping (NFD minus Mn), then every punctuation character is a word of its own.
 * Lower-casing is per character (as HF's Rust tokenizer; Python's str.lower() additionally applies
 * the Greek final-sigma rule).
 */
#include <stdlib.h>
#include <string.h>

#include "text/text_internal.h"
#include "text/unicode.h"

/* ------------------------------------------------------------------------------------------------ */
/* GPT-2's byte alphabet: printable Latin-1 bytes map to themselves, the other 68 to U+0100.. in order */

static int byte_printable(unsigned b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); }

/* The 68 others in byte order: 0..32 -> U+0100..U+0120, 127..160 -> U+0121..U+0142, 173 -> U+0143. */
uint32_t pare_bpe_byte_cp(unsigned b)
{
    if (byte_printable(b)) return b;
    return b <= 32 ? 256 + b : b <= 160 ? 256 + 33 + (b - 127) : 256 + 67;
}

int pare_bpe_cp_byte(uint32_t cp)
{
    if (cp < 256) return byte_printable(cp) ? (int)cp : -1;
    if (cp >= 256 + 68) return -1;
    uint32_t k = cp - 256;
    return k <= 32 ? (int)k : k <= 66 ? (int)(127 + k - 33) : 173;
}

void pare_bpe_to_symbols(pare_buf *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char u[4];
        pare_buf_add(out, u, (size_t)pare_utf8_encode(pare_bpe_byte_cp((unsigned char)s[i]), u));
    }
}

/* ------------------------------------------------------------------------------------------------ */
/* GPT-2 pattern */

typedef struct cps { uint32_t *cp; size_t *off; size_t n; } cps; /* code points and their byte offsets (n + 1) */

static int cps_make(cps *c, const char *s, size_t n)
{
    c->cp = malloc((n + 1) * sizeof *c->cp), c->off = malloc((n + 1) * sizeof *c->off), c->n = 0;
    if (!c->cp || !c->off) return free(c->cp), free(c->off), -1;
    for (size_t i = 0; i < n;) {
        int len;
        c->cp[c->n] = pare_utf8_decode((const unsigned char *)s + i, n - i, &len);
        c->off[c->n++] = i;
        i += (size_t)len;
    }
    c->off[c->n] = n;
    return 0;
}

static int is_other(uint32_t c) { return !pare_u_is_white(c) && !pare_u_is_letter(c) && !pare_u_is_number(c); }

int pare_gpt2_split(const char *s, size_t n, pare_piece_fn emit, void *ctx)
{
    cps c;
    if (cps_make(&c, s, n)) return -1;
    const uint32_t *cp = c.cp;
    size_t N = c.n, i = 0;
    int r = 0;
    while (i < N && !r) {
        size_t k = i + 1;
        uint32_t c0 = cp[i];
        uint32_t c1 = i + 1 < N ? cp[i + 1] : 0, c2 = i + 2 < N ? cp[i + 2] : 0;
        if (c0 == '\'' && (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd')) k = i + 2;
        else if (c0 == '\'' && ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l'))) k = i + 3;
        else {
            size_t j = c0 == ' ' && i + 1 < N ? i + 1 : i; /* the optional leading space */
            uint32_t d = cp[j];
            int (*cls)(uint32_t) = pare_u_is_letter(d) ? pare_u_is_letter : pare_u_is_number(d) ? pare_u_is_number
                                                       : is_other(d)         ? is_other
                                                                             : NULL;
            if (cls) {
                for (k = j + 1; k < N && cls(cp[k]);) k++;
            } else { /* whitespace at i: \s+(?!\S) then \s+ */
                for (k = i + 1; k < N && pare_u_is_white(cp[k]);) k++;
                if (k < N && k - i >= 2) k--;
            }
        }
        r = emit(ctx, s + c.off[i], c.off[k] - c.off[i]);
        i = k;
    }
    free(c.cp), free(c.off);
    return r;
}

/* ------------------------------------------------------------------------------------------------ */
/* BERT basic tokenizer */

static int flush(pare_buf *w, pare_piece_fn emit, void *ctx)
{
    int r = 0;
    if (w->n) r = emit(ctx, w->p, w->n);
    w->n = 0;
    return r;
}

static int emit_one(pare_buf *w, uint32_t cp, pare_piece_fn emit, void *ctx)
{
    char u[4];
    int r = flush(w, emit, ctx);
    if (!r) r = emit(ctx, u, (size_t)pare_utf8_encode(cp, u));
    return r;
}

int pare_bert_split(const char *s, size_t n, const pare_wordpiece_opts *o, pare_piece_fn emit, void *ctx)
{
    pare_buf w = {0};
    int strip = o->strip_accents < 0 ? o->do_lower_case : o->strip_accents, r = 0;
    for (size_t i = 0; i < n && !r && !w.err;) {
        int len;
        uint32_t cp = pare_utf8_decode((const unsigned char *)s + i, n - i, &len);
        i += (size_t)len;
        if (cp == 0 || cp == 0xFFFD || cp == PARE_U_BAD || pare_u_bert_control(cp)) continue;
        if (pare_u_bert_space(cp) || pare_u_is_white(cp)) { /* Zs -> ' ', then split() also cuts at U+2028/9 */
            r = flush(&w, emit, ctx);
            continue;
        }
        int cjk = o->tokenize_chinese_chars && pare_u_bert_cjk(cp);
        if (cjk) r = flush(&w, emit, ctx); /* a word of its own, still normalised (NFD maps U+F900.. to unified ideographs) */
        uint32_t out[3];
        int k = 1;
        out[0] = o->do_lower_case ? pare_u_lower1(cp) : cp;
        if (strip) k = pare_u_strip_accents(out[0], out);
        for (int q = 0; q < k && !r; q++) {
            if (cjk) {
                char u[4];
                pare_buf_add(&w, u, (size_t)pare_utf8_encode(out[q], u));
            } else
            if (pare_u_bert_punct(out[q])) r = emit_one(&w, out[q], emit, ctx);
            else {
                char u[4];
                pare_buf_add(&w, u, (size_t)pare_utf8_encode(out[q], u));
            }
        }
        if (cjk && !r) r = flush(&w, emit, ctx);
    }
    if (!r && !w.err) r = flush(&w, emit, ctx);
    if (w.err) r = -1;
    pare_buf_free(&w);
    return r;
}
