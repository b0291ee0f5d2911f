/* unicode.c — UTF-8 coding and the property look-ups of unicode.h (bisection over the generated
 * range tables of unicode_tables.c; ASCII answered without a search, since it is most of the text).
 */
#include "text/unicode.h"

uint32_t pare_utf8_decode(const unsigned char *s, size_t n, int *len)
{
    unsigned c = s[0];
    *len = 1;
    if (c < 0x80) return c;
    int k;
    uint32_t cp, min;
    if ((c & 0xE0) == 0xC0) k = 1, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0) k = 2, cp = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0) k = 3, cp = c & 0x07, min = 0x10000;
    else return PARE_U_BAD;
    if ((size_t)k >= n) return PARE_U_BAD;
    for (int i = 1; i <= k; i++) {
        if ((s[i] & 0xC0) != 0x80) return PARE_U_BAD;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return PARE_U_BAD;
    *len = k + 1;
    return cp;
}

int pare_utf8_encode(uint32_t cp, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) return o[0] = (unsigned char)cp, 1;
    if (cp < 0x800) return o[0] = (unsigned char)(0xC0 | cp >> 6), o[1] = (unsigned char)(0x80 | (cp & 0x3F)), 2;
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | cp >> 12), o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | cp >> 18), o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F)), o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

static int in_ranges(const pare_u_range *r, int n, uint32_t cp)
{
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < r[mid].lo) hi = mid - 1;
        else if (cp > r[mid].hi) lo = mid + 1;
        else return 1;
    }
    return 0;
}

int pare_u_is_letter(uint32_t cp)
{
    if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
    return in_ranges(pare_u_letter, pare_u_letter_n, cp);
}
int pare_u_is_number(uint32_t cp)
{
    if (cp < 0x80) return cp >= '0' && cp <= '9';
    return in_ranges(pare_u_number, pare_u_number_n, cp);
}
int pare_u_is_white(uint32_t cp) { return in_ranges(pare_u_white_space, pare_u_white_space_n, cp); }
int pare_u_is_mn(uint32_t cp) { return cp >= 0x300 && in_ranges(pare_u_mark_nonspacing, pare_u_mark_nonspacing_n, cp); }

int pare_u_bert_space(uint32_t cp)
{
    return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || in_ranges(pare_u_space_sep, pare_u_space_sep_n, cp);
}
int pare_u_bert_control(uint32_t cp)
{
    if (cp == '\t' || cp == '\n' || cp == '\r') return 0;
    return in_ranges(pare_u_control, pare_u_control_n, cp);
}
int pare_u_bert_punct(uint32_t cp)
{
    /* BERT counts all non-alphanumeric ASCII as punctuation, e.g. $ ^ ` which are not P* */
    if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126)) return 1;
    return cp >= 0x80 && in_ranges(pare_u_punct, pare_u_punct_n, cp);
}
int pare_u_bert_cjk(uint32_t cp)
{
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
           (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

uint32_t pare_u_lower1(uint32_t cp)
{
    if (cp < 0x80) return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
    if (cp == 0x130) return 'i'; /* full mapping "i\u0307"; the dot is a mark that accent stripping drops */
    int lo = 0, hi = pare_u_lower_n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const pare_u_case_run *r = &pare_u_lower[mid];
        if (cp < r->first) hi = mid - 1;
        else if (cp > r->last) lo = mid + 1;
        else return (cp - r->first) % (uint32_t)r->stride == 0 ? (uint32_t)((int32_t)cp + r->delta) : cp;
    }
    return cp;
}

int pare_u_strip_accents(uint32_t cp, uint32_t *out)
{
    if (cp < 0xC0) return out[0] = cp, 1;
    if (cp >= 0xAC00 && cp <= 0xD7A3) { /* Hangul syllables decompose algorithmically into jamo (Unicode 3.12) */
        uint32_t s = cp - 0xAC00, t = s % 28;
        out[0] = 0x1100 + s / 588, out[1] = 0x1161 + (s % 588) / 28;
        if (t) out[2] = 0x11A7 + t;
        return t ? 3 : 2;
    }
    if (pare_u_is_mn(cp)) return 0;
    int lo = 0, hi = pare_u_strip_n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < pare_u_strip[mid].cp) hi = mid - 1;
        else if (cp > pare_u_strip[mid].cp) lo = mid + 1;
        else {
            int k = 0;
            while (k < 3 && pare_u_strip[mid].to[k]) out[k] = pare_u_strip[mid].to[k], k++;
            return k;
        }
    }
    return out[0] = cp, 1;
}
