/*
 * Hashed n-gram and lexicon features and their weight sums for the offline default model, in
 * one pass.
 *
 * Why C: the numpy implementation in hashing.py builds some twenty temporary arrays per
 * batch and then gathers one weight row per n-gram through np.take and six bincounts; in the
 * pipeline that is the largest part of the sentiment stage's CPU per mention. This file
 * computes the same features in the same order and sums the same float32 products in double
 * precision in the same order as np.bincount, so the logits are equal bit for bit
 * (tests/unit/test_native_features.py compares both on real tweets and random texts).
 * hashing.py stays the reference and what training uses; this is only a faster route to its
 * numbers, used when tools/build_native.py has compiled it.
 *
 * Called through ctypes (no Python headers needed, and ctypes releases the GIL for the call,
 * so the event loop keeps running while a batch is scored). Build flags must keep IEEE
 * semantics: no -ffast-math, and -ffp-contract=off so a multiply and an add are never fused.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SW_BASE 0x100000001B3ULL
#define SW_M1 0xBF58476D1CE4E5B9ULL
#define SW_M2 0x94D049BB133111EBULL
#define SW_PAIR 0x9E3779B97F4A7C15ULL
#define SW_SEP 10u
#define SW_SPACE 32u
#define SW_BLOCKS 4
#define SW_PREFETCH 16

/* The splitmix64 finaliser of hashing._mix, then the top `bits` bits. */
static inline int64_t sw_mix(uint64_t x, uint64_t salt, int bits) {
    x ^= salt;
    x ^= x >> 30;
    x *= SW_M1;
    x ^= x >> 27;
    x *= SW_M2;
    x ^= x >> 31;
    return (int64_t)(x >> (64 - bits));
}

static int sw_member(const uint64_t *sorted, int64_t n, uint64_t value) {
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (sorted[mid] < value) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < n && sorted[lo] == value;
}

/*
 * The polarity lexicon of lexicon.py in C: exact string tables (open addressing over code
 * points, compared in full, so no hash collision can change a result) and the same lookup:
 * the word itself, else for words of five or more code points the first suffix of the list
 * that the word ends with and whose stem is in the lexicon.
 */
typedef struct {
    int64_t n_slots; /* a power of two, at least twice the entries */
    int64_t *slot;   /* entry index or -1 */
    uint64_t *hash;  /* sw_fnv of the entry in each used slot: most probes end on it */
    uint32_t *chars;
    int64_t *offset; /* entry i is chars[offset[i] .. offset[i + 1]) */
    signed char *value;
} sw_table;

typedef struct {
    sw_table polarity; /* word -> polarity bin 0..3 */
    sw_table negation; /* words that open a negation's reach */
    uint32_t *suffix_chars;
    int64_t *suffix_offset;
    int64_t n_suffix;
    uint32_t clause_end[32];
    int64_t n_clause_end;
} sw_lexicon;

static uint64_t sw_fnv(const uint32_t *w, int64_t len) {
    uint64_t h = 0xCBF29CE484222325ULL;
    for (int64_t k = 0; k < len; k++) {
        h ^= w[k];
        h *= 0x100000001B3ULL;
    }
    return h;
}

static void sw_table_free(sw_table *t) {
    free(t->slot);
    free(t->hash);
    free(t->chars);
    free(t->offset);
    free(t->value);
}

static int sw_table_init(sw_table *t, const uint32_t *chars, const int64_t *offset,
                         const signed char *value, int64_t n) {
    memset(t, 0, sizeof(*t));
    int64_t slots = 16;
    while (slots < 2 * n + 1) {
        slots *= 2;
    }
    int64_t n_chars = offset[n];
    t->n_slots = slots;
    t->slot = malloc(sizeof(int64_t) * (size_t)slots);
    t->hash = calloc((size_t)slots, sizeof(uint64_t));
    t->chars = malloc(sizeof(uint32_t) * (size_t)(n_chars > 0 ? n_chars : 1));
    t->offset = malloc(sizeof(int64_t) * (size_t)(n + 1));
    t->value = malloc((size_t)(n > 0 ? n : 1));
    if (t->slot == NULL || t->hash == NULL || t->chars == NULL || t->offset == NULL ||
        t->value == NULL) {
        sw_table_free(t);
        return -2;
    }
    memcpy(t->chars, chars, sizeof(uint32_t) * (size_t)n_chars);
    memcpy(t->offset, offset, sizeof(int64_t) * (size_t)(n + 1));
    memcpy(t->value, value, (size_t)n);
    for (int64_t i = 0; i < slots; i++) {
        t->slot[i] = -1;
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t len = offset[i + 1] - offset[i];
        uint64_t h = sw_fnv(chars + offset[i], len);
        int64_t at = (int64_t)(h & (uint64_t)(slots - 1));
        while (t->slot[at] >= 0) {
            at = (at + 1) & (slots - 1);
        }
        t->slot[at] = i; /* the words are a dict's keys: each comes once */
        t->hash[at] = h;
    }
    return 0;
}

/* The entry's value, or -1 when the word is not in the table. */
/* ``h`` is sw_fnv(w, len): a word looked up in both tables is hashed once, and a slot whose
 * hash differs is passed without reading its entry (the words are still compared in full,
 * so a hash collision changes no result). Lookups were 19 % of sw_hashed_sums (perf,
 * 2026-12-04). */
static int sw_table_find_h(const sw_table *t, const uint32_t *w, int64_t len, uint64_t h) {
    int64_t at = (int64_t)(h & (uint64_t)(t->n_slots - 1));
    for (;;) {
        int64_t i = t->slot[at];
        if (i < 0) {
            return -1;
        }
        if (t->hash[at] == h && t->offset[i + 1] - t->offset[i] == len) {
            const uint32_t *e = t->chars + t->offset[i];
            int64_t k = 0;
            while (k < len && e[k] == w[k]) {
                k++;
            }
            if (k == len) {
                return t->value[i];
            }
        }
        at = (at + 1) & (t->n_slots - 1);
    }
}

static int sw_table_find(const sw_table *t, const uint32_t *w, int64_t len) {
    return sw_table_find_h(t, w, len, sw_fnv(w, len));
}

void sw_lexicon_free(void *handle) {
    sw_lexicon *lx = handle;
    if (lx == NULL) {
        return;
    }
    sw_table_free(&lx->polarity);
    sw_table_free(&lx->negation);
    free(lx->suffix_chars);
    free(lx->suffix_offset);
    free(lx);
}

void *sw_lexicon_new(const uint32_t *pol_chars, const int64_t *pol_offset,
                     const signed char *pol_bin, int64_t n_pol, const uint32_t *neg_chars,
                     const int64_t *neg_offset, int64_t n_neg, const uint32_t *suffix_chars,
                     const int64_t *suffix_offset, int64_t n_suffix, const uint32_t *clause_end,
                     int64_t n_clause_end) {
    if (n_clause_end > 32 || n_pol < 0 || n_neg < 0 || n_suffix < 0) {
        return NULL;
    }
    sw_lexicon *lx = calloc(1, sizeof(sw_lexicon));
    if (lx == NULL) {
        return NULL;
    }
    signed char *ones = malloc((size_t)(n_neg > 0 ? n_neg : 1));
    int64_t n_suffix_chars = suffix_offset[n_suffix];
    lx->suffix_chars = malloc(sizeof(uint32_t) * (size_t)(n_suffix_chars > 0 ? n_suffix_chars : 1));
    lx->suffix_offset = malloc(sizeof(int64_t) * (size_t)(n_suffix + 1));
    if (ones == NULL || lx->suffix_chars == NULL || lx->suffix_offset == NULL) {
        free(ones);
        sw_lexicon_free(lx);
        return NULL;
    }
    memset(ones, 1, (size_t)(n_neg > 0 ? n_neg : 1));
    int bad = sw_table_init(&lx->polarity, pol_chars, pol_offset, pol_bin, n_pol);
    bad = bad || sw_table_init(&lx->negation, neg_chars, neg_offset, ones, n_neg);
    free(ones);
    if (bad) {
        sw_lexicon_free(lx);
        return NULL;
    }
    memcpy(lx->suffix_chars, suffix_chars, sizeof(uint32_t) * (size_t)n_suffix_chars);
    memcpy(lx->suffix_offset, suffix_offset, sizeof(int64_t) * (size_t)(n_suffix + 1));
    lx->n_suffix = n_suffix;
    memcpy(lx->clause_end, clause_end, sizeof(uint32_t) * (size_t)n_clause_end);
    lx->n_clause_end = n_clause_end;
    return lx;
}

/* Lexicon.lookup then _bin: the polarity bin of a word, or -1. */
static int sw_lexicon_bin(const sw_lexicon *lx, const uint32_t *w, int64_t len, uint64_t h) {
    int bin = sw_table_find_h(&lx->polarity, w, len, h);
    if (bin >= 0 || len < 5) {
        return bin;
    }
    for (int64_t s = 0; s < lx->n_suffix; s++) {
        int64_t slen = lx->suffix_offset[s + 1] - lx->suffix_offset[s];
        if (slen > len || memcmp(w + len - slen, lx->suffix_chars + lx->suffix_offset[s],
                                 sizeof(uint32_t) * (size_t)slen) != 0) {
            continue;
        }
        bin = sw_table_find(&lx->polarity, w, len - slen);
        if (bin >= 0) {
            return bin;
        }
    }
    return -1;
}

static int sw_is_clause_end(const sw_lexicon *lx, const uint32_t *w, int64_t len) {
    if (len != 1) {
        return 0;
    }
    for (int64_t k = 0; k < lx->n_clause_end; k++) {
        if (lx->clause_end[k] == w[0]) {
            return 1;
        }
    }
    return 0;
}

int sw_version(void) { return 4; }

/*
 * codes: the batch's canonical texts joined by "\n", as UTF-32 code points.
 * lex_doc, lex_code: the lexicon features as Lexicon.codes gives them, used when lexicon is
 * NULL; with a lexicon from sw_lexicon_new they are computed here instead.
 * out: n_docs * width floats, the per-text sums before the bias (row-major).
 * Returns 0, or -1 when the texts do not split into n_docs (a "\n" inside a text, which
 * canonical() never emits), -2 when memory runs out, -3 for unsupported arguments.
 */
int sw_hashed_sums(const uint32_t *codes, int64_t length, int64_t n_docs, int bits, int char_min,
                   int char_max, int char_within_words, int word_bigrams, int negation_scope,
                   const uint64_t *neg_h, int64_t n_neg, const uint64_t *end_h, int64_t n_end,
                   const int64_t *lex_doc, const int64_t *lex_code, int64_t n_lex,
                   const void *lexicon, const float *weights, int64_t n_rows, int width,
                   float *out) {
    const sw_lexicon *lx = lexicon;
    int rc = -2; /* what the clean-up at the end returns */
    if (bits < 1 || bits > 62 || n_rows != ((int64_t)1 << bits) || width < 1 || width > 64 ||
        char_max < 1 || n_docs < 0 || length < 0) {
        return -3;
    }
    memset(out, 0, sizeof(float) * (size_t)(n_docs * width));
    if (n_docs == 0) {
        return 0;
    }
    int64_t n_sep = 0;
    for (int64_t i = 0; i < length; i++) {
        n_sep += codes[i] == SW_SEP;
    }
    if (n_sep != n_docs - 1) {
        return -1;
    }

    /* Words of the whole batch, as hashing._word_spans finds them: spans between two
     * delimiters (a space or the separator), hashed position-independently. */
    int64_t n_delim = 0;
    for (int64_t i = 0; i < length; i++) {
        n_delim += codes[i] == SW_SEP || codes[i] == SW_SPACE;
    }
    int64_t cap_words = n_delim > 0 ? n_delim : 1;
    uint64_t *word_h = malloc(sizeof(uint64_t) * (size_t)cap_words);
    int64_t *word_doc = malloc(sizeof(int64_t) * (size_t)cap_words);
    int64_t *word_start = malloc(sizeof(int64_t) * (size_t)cap_words);
    int64_t max_doc_len = 0, doc_len = 0;
    for (int64_t i = 0; i < length; i++) {
        if (codes[i] == SW_SEP) {
            doc_len = 0;
        } else if (++doc_len > max_doc_len) {
            max_doc_len = doc_len;
        }
    }
    int n_char = char_max >= 2 ? char_max - 1 : 0; /* n = 2 .. char_max are hashed */
    int64_t cap_feat = (int64_t)(n_char + 3) * (max_doc_len + 1) + 16;
    int64_t *feat_bucket = NULL;
    unsigned char *feat_block = NULL;
    uint64_t *rolling = malloc(sizeof(uint64_t) * (size_t)(max_doc_len + 1));
    int64_t *spaces = malloc(sizeof(int64_t) * (size_t)(max_doc_len + 2));
    if (word_h == NULL || word_doc == NULL || word_start == NULL || rolling == NULL ||
        spaces == NULL) {
        goto oom;
    }
    int64_t n_words = 0;
    {
        int64_t doc = 0, prev_delim = -1;
        for (int64_t i = 0; i < length; i++) {
            uint32_t c = codes[i];
            if (c != SW_SEP && c != SW_SPACE) {
                continue;
            }
            if (prev_delim >= 0 && i > prev_delim + 1) {
                uint64_t h = 0, power = 1;
                for (int64_t k = prev_delim + 1; k < i; k++) {
                    h += (uint64_t)codes[k] * power;
                    power *= SW_BASE;
                }
                word_h[n_words] = h;
                word_start[n_words] = prev_delim + 1; /* ends at the next delimiter */
                word_doc[n_words] = doc; /* the start's text; a word never spans a "\n" */
                n_words++;
            }
            if (c == SW_SEP) {
                doc++;
            }
            prev_delim = i;
        }
    }

    int64_t lex_i = 0, word_i = 0, start = 0;
    int64_t last_neg = -1, last_end = -1; /* running maxima over word positions */
    for (int64_t d = 0; d < n_docs; d++) {
        int64_t end = start;
        while (end < length && codes[end] != SW_SEP) {
            end++;
        }
        int64_t len = end - start;
        int64_t words_lo = word_i;
        while (word_i < n_words && word_doc[word_i] == d) {
            word_i++;
        }
        int64_t words_hi = word_i;
        int64_t lex_lo = lex_i;
        while (lex_i < n_lex && lex_doc[lex_i] == d) {
            lex_i++;
        }
        int64_t need = (int64_t)n_char * len + 4 * (words_hi - words_lo) + (lex_i - lex_lo) + 1;
        if (need > cap_feat || feat_bucket == NULL) {
            cap_feat = need > cap_feat ? need : cap_feat;
            free(feat_bucket);
            free(feat_block);
            feat_bucket = malloc(sizeof(int64_t) * (size_t)cap_feat);
            feat_block = malloc((size_t)cap_feat);
            if (feat_bucket == NULL || feat_block == NULL) {
                goto oom;
            }
        }
        int64_t nf = 0;

        /* Character n-grams, n = 2 .. char_max, in the order the numpy code concatenates
         * them (all 2-grams, then all 3-grams, ...), never across the separator. */
        if (char_within_words) {
            spaces[0] = 0;
            for (int64_t k = 0; k < len; k++) {
                spaces[k + 1] = spaces[k] + (codes[start + k] == SW_SPACE);
            }
        }
        for (int64_t k = 0; k < len; k++) {
            rolling[k] = codes[start + k];
        }
        for (int n = 2; n <= char_max; n++) {
            int64_t width_n = len - n + 1;
            for (int64_t k = 0; k < width_n; k++) {
                rolling[k] = rolling[k] * SW_BASE + codes[start + k + n - 1];
            }
            if (n < char_min) {
                continue;
            }
            for (int64_t k = 0; k < width_n; k++) {
                if (char_within_words && n > 2 && spaces[k + n - 1] != spaces[k + 1]) {
                    continue;
                }
                feat_bucket[nf] = sw_mix(rolling[k], 0x1000u + (uint64_t)n, bits);
                feat_block[nf++] = 1;
            }
        }
        /* Words, then word bigrams, then words inside a negation's scope. */
        for (int64_t w = words_lo; w < words_hi; w++) {
            feat_bucket[nf] = sw_mix(word_h[w], 0x2001u, bits);
            feat_block[nf++] = 0;
        }
        if (word_bigrams) {
            for (int64_t w = words_lo; w + 1 < words_hi; w++) {
                feat_bucket[nf] = sw_mix(word_h[w] * SW_PAIR + word_h[w + 1], 0x2002u, bits);
                feat_block[nf++] = 0;
            }
        }
        if (negation_scope > 0) {
            for (int64_t w = words_lo; w < words_hi; w++) {
                int64_t prev_neg = last_neg;
                int is_neg = sw_member(neg_h, n_neg, word_h[w]);
                int is_end = sw_member(end_h, n_end, word_h[w]);
                if (is_neg) {
                    last_neg = w;
                }
                if (is_end) {
                    last_end = w;
                }
                if (!is_end && prev_neg >= words_lo && prev_neg > last_end &&
                    w - prev_neg <= negation_scope) {
                    feat_bucket[nf] = sw_mix(word_h[w], 0x4001u, bits);
                    feat_block[nf++] = 3;
                }
            }
        }
        if (lx != NULL) { /* Lexicon.codes: bins, +4 within three words after a negation */
            int reach = 0;
            for (int64_t w = words_lo; w < words_hi; w++) {
                const uint32_t *word = codes + word_start[w];
                int64_t wlen = 0;
                while (word_start[w] + wlen < length && word[wlen] != SW_SPACE &&
                       word[wlen] != SW_SEP) {
                    wlen++;
                }
                uint64_t h = sw_fnv(word, wlen);
                int bin = sw_lexicon_bin(lx, word, wlen, h);
                if (bin >= 0) {
                    feat_bucket[nf] = sw_mix((uint64_t)(bin + (reach ? 4 : 0)), 0x3001u, bits);
                    feat_block[nf++] = 2;
                }
                if (sw_table_find_h(&lx->negation, word, wlen, h) >= 0) {
                    reach = 3;
                } else if (sw_is_clause_end(lx, word, wlen)) {
                    reach = 0;
                } else if (reach) {
                    reach--;
                }
            }
        } else {
            for (int64_t j = lex_lo; j < lex_i; j++) {
                feat_bucket[nf] = sw_mix((uint64_t)lex_code[j], 0x3001u, bits);
                feat_block[nf++] = 2;
            }
        }

        /* Each block scaled by 1/sqrt(its count), as Features.values (float32). */
        /* Counted in four locals, not as count[feat_block[f]]++: every increment of the
         * array waited for the store of the one before to the same slot, 13 % of this
         * function on the bench tweets (perf, 2026-12-04). */
        int64_t c0 = 0, c1 = 0, c2 = 0, c3 = 0;
        for (int64_t f = 0; f < nf; f++) {
            unsigned b = feat_block[f];
            c0 += b == 0;
            c1 += b == 1;
            c2 += b == 2;
            c3 += b == 3;
        }
        int64_t count[SW_BLOCKS] = {c0, c1, c2, c3};
        float scale[SW_BLOCKS];
        for (int b = 0; b < SW_BLOCKS; b++) {
            float root = (float)sqrt((double)(count[b] > 1 ? count[b] : 1));
            scale[b] = 1.0f / root;
        }
        double acc[64];
        for (int c = 0; c < width; c++) {
            acc[c] = 0.0;
        }
        if (width == 6) {
            /* The default model (two heads of three classes): the same products and sums
             * in the same order, in six registers, which the compiler turns into vector
             * operations. With ``acc`` in memory every add waited for the store of the
             * previous feature's add to the same slot. Features and sums of a bench tweet:
             * 8.3 -> 7.1 us (medians of six alternated passes, identical sums, 2026-12-03);
             * the row loads are now the larger part of this loop. */
            double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0, a4 = 0.0, a5 = 0.0;
            for (int64_t f = 0; f < nf; f++) {
                if (f + SW_PREFETCH < nf) {
                    __builtin_prefetch(weights + feat_bucket[f + SW_PREFETCH] * 6);
                }
                const float *row = weights + feat_bucket[f] * 6;
                float v = scale[feat_block[f]];
                a0 += (double)(row[0] * v);
                a1 += (double)(row[1] * v);
                a2 += (double)(row[2] * v);
                a3 += (double)(row[3] * v);
                a4 += (double)(row[4] * v);
                a5 += (double)(row[5] * v);
            }
            acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3, acc[4] = a4, acc[5] = a5;
        } else {
            for (int64_t f = 0; f < nf; f++) {
                /* The rows are scattered over a table far larger than the caches; asking
                 * for the row 16 features ahead halved this loop (11 -> 6 us per tweet,
                 * measured 2026-12-02). A prefetch changes no result. */
                if (f + SW_PREFETCH < nf) {
                    __builtin_prefetch(weights + feat_bucket[f + SW_PREFETCH] * (int64_t)width);
                }
                const float *row = weights + feat_bucket[f] * (int64_t)width;
                float v = scale[feat_block[f]];
                for (int c = 0; c < width; c++) {
                    float product = row[c] * v;
                    acc[c] += (double)product;
                }
            }
        }
        for (int c = 0; c < width; c++) {
            out[d * width + c] = (float)acc[c];
        }
        start = end + 1;
    }
    rc = 0;
    goto done;
oom:
    rc = -2;
done:
    free(word_h);
    free(word_doc);
    free(word_start);
    free(rolling);
    free(spaces);
    free(feat_bucket);
    free(feat_block);
    return rc;
}

/*
 * The rest of text.canonical after lower(): the URL and mention rewrites, runs of a character
 * cut to two, the tokens, joined by single spaces and padded. In the pipeline the regular
 * expressions of text.py were the largest Python part of the sentiment stage left after the
 * features moved here. text.py stays the reference (tests/unit/test_native_canonical.py
 * compares both on real tweets, random texts and every code point).
 *
 * Why the order differs from text.normalize and still gives the same text: normalize rewrites
 * URLs (case-insensitively) before lower(); here the input is already lowered. The two agree
 * because lower() maps each code point to one code point of the same class (word, space,
 * other) and matches the URL letters exactly when the case-insensitive pattern does, with
 * U+017F (long s) standing for "s". The code points where that is not so (U+0130, whose lower
 * case is two code points, and U+03A3, whose lower case depends on the next letter) never
 * come here: text.lowered() sends those texts to the Python route.
 */
#define SW_WORD 1u
#define SW_WHITE 2u

typedef struct {
    const uint8_t *cls;
    int64_t n_cls;
} sw_classes;

static inline unsigned sw_class(const sw_classes *k, uint32_t c) {
    return (int64_t)c < k->n_cls ? k->cls[c] : 0u;
}

static inline int sw_is_word(const sw_classes *k, uint32_t c) {
    return (sw_class(k, c) & SW_WORD) != 0;
}

static inline int sw_is_white(const sw_classes *k, uint32_t c) {
    return (sw_class(k, c) & SW_WHITE) != 0;
}

static int sw_starts(const uint32_t *s, int64_t n, int64_t i, const char *lit) {
    for (int64_t k = 0; lit[k] != 0; k++) {
        if (i + k >= n || s[i + k] != (uint32_t)(unsigned char)lit[k]) {
            return 0;
        }
    }
    return 1;
}

static inline int sw_is_s(uint32_t c) { return c == 's' || c == 0x17Fu; }

/* Length of the URL match of text._URL at i, 0 for none (alternatives in the regex's order). */
static int64_t sw_url_at(const sw_classes *k, const uint32_t *s, int64_t n, int64_t i) {
    int http = sw_starts(s, n, i, "http");
    int64_t j = -1;
    if (http) {
        int64_t after = i + 4 + (i + 4 < n && sw_is_s(s[i + 4]));
        if (sw_starts(s, n, after, "://")) { /* without the s, "://" cannot follow an s */
            j = after + 3;
        }
    } else if (sw_starts(s, n, i, "www.")) {
        j = i + 4;
    }
    if (j >= 0) {
        while (j < n && !sw_is_white(k, s[j])) {
            j++;
        }
        return j - i;
    }
    /* \bhttps?\b: "h" is a word character, so the boundary before it needs a non-word one */
    if (!http || (i > 0 && sw_is_word(k, s[i - 1]))) {
        return 0;
    }
    if (i + 4 < n && sw_is_s(s[i + 4]) && (i + 5 == n || !sw_is_word(k, s[i + 5]))) {
        return 5;
    }
    if (i + 4 == n || !sw_is_word(k, s[i + 4])) {
        return 4;
    }
    return 0;
}

typedef struct {
    uint32_t *p;
    int64_t len, cap;
} sw_buf;

static inline int sw_put(sw_buf *b, uint32_t c) {
    if (b->len >= b->cap) {
        return -1;
    }
    b->p[b->len++] = c;
    return 0;
}

static int sw_put_lit(sw_buf *b, const char *lit) {
    for (int64_t k = 0; lit[k] != 0; k++) {
        if (sw_put(b, (uint32_t)(unsigned char)lit[k]) != 0) {
            return -1;
        }
    }
    return 0;
}

static int sw_put_span(sw_buf *b, const uint32_t *s, int64_t lo, int64_t hi) {
    if (b->len + (hi - lo) > b->cap) {
        return -1;
    }
    memcpy(b->p + b->len, s + lo, sizeof(uint32_t) * (size_t)(hi - lo));
    b->len += hi - lo;
    return 0;
}

static int sw_pass_urls(const sw_classes *k, const uint32_t *s, int64_t n, sw_buf *out) {
    for (int64_t i = 0; i < n;) {
        uint32_t c = s[i];
        int64_t m = (c == 'h' || c == 'w') ? sw_url_at(k, s, n, i) : 0;
        if (m > 0) {
            if (sw_put_lit(out, " http ") != 0) {
                return -1;
            }
            i += m;
        } else {
            if (sw_put(out, c) != 0) {
                return -1;
            }
            i++;
        }
    }
    return 0;
}

static int sw_pass_mentions(const sw_classes *k, const uint32_t *s, int64_t n, sw_buf *out) {
    for (int64_t i = 0; i < n;) {
        if (s[i] == '@' && i + 1 < n && sw_is_word(k, s[i + 1])) {
            if (sw_put_lit(out, "@user") != 0) {
                return -1;
            }
            i += 2;
            while (i < n && sw_is_word(k, s[i])) {
                i++;
            }
        } else {
            if (sw_put(out, s[i]) != 0) {
                return -1;
            }
            i++;
        }
    }
    return 0;
}

/* (\S)\1\1+ -> \1\1: each run of three or more of one non-space code point becomes two. */
static int sw_pass_repeats(const sw_classes *k, const uint32_t *s, int64_t n, sw_buf *out) {
    for (int64_t i = 0; i < n;) {
        uint32_t c = s[i];
        int64_t j = i + 1;
        while (j < n && s[j] == c) {
            j++;
        }
        int64_t run = j - i;
        if (run >= 3 && !sw_is_white(k, c)) {
            run = 2;
        }
        for (int64_t r = 0; r < run; r++) {
            if (sw_put(out, c) != 0) {
                return -1;
            }
        }
        i = j;
    }
    return 0;
}

static inline int sw_is_emo_mouth(uint32_t c) {
    switch (c) {
    case '(': case ')': case '[': case ']': case 'd': case 'D':
    case 'p': case 'P': case '/': case '|': case '*': case '3':
        return 1;
    default:
        return 0;
    }
}

/* End of the text._TOKEN match at i (i itself when nothing matches: white space). */
static int64_t sw_token_end(const sw_classes *k, const uint32_t *s, int64_t n, int64_t i) {
    uint32_t c = s[i];
    if (sw_is_word(k, c)) {
        int64_t j = i + 1;
        while (j < n && sw_is_word(k, s[j])) {
            j++;
        }
        if (j + 1 < n && (s[j] == '\'' || s[j] == 0x2019u) && sw_is_word(k, s[j + 1])) {
            j += 2;
            while (j < n && sw_is_word(k, s[j])) {
                j++;
            }
        }
        return j;
    }
    if (sw_is_white(k, c)) {
        return i;
    }
    if (sw_starts(s, n, i, "@user")) {
        return i + 5;
    }
    if (sw_starts(s, n, i, "<3")) {
        return i + 2;
    }
    if (c == ':' || c == ';' || c == '=') {
        int64_t j = i + 1;
        if (j < n && (s[j] == '-' || s[j] == 'o' || s[j] == '\'' || s[j] == '^')) {
            j++;
        }
        int64_t run = 0;
        while (j + run < n && sw_is_emo_mouth(s[j + run])) {
            run++;
        }
        /* greedy, then back off until no word character follows, as (?!\w) makes the
         * regex do; without the optional nose no mouth can start where the nose was */
        for (int64_t len = run; len >= 1; len--) {
            if (j + len == n || !sw_is_word(k, s[j + len])) {
                return j + len;
            }
        }
    }
    return i + 1; /* "#" and any other single non-word, non-space code point */
}

static int sw_pass_tokens(const sw_classes *k, const uint32_t *s, int64_t n, sw_buf *out) {
    if (sw_put(out, SW_SPACE) != 0) {
        return -1;
    }
    int first = 1;
    for (int64_t i = 0; i < n;) {
        int64_t j = sw_token_end(k, s, n, i);
        if (j == i) {
            i++;
            continue;
        }
        if ((!first && sw_put(out, SW_SPACE) != 0) || sw_put_span(out, s, i, j) != 0) {
            return -1;
        }
        first = 0;
        i = j;
    }
    return sw_put(out, SW_SPACE);
}

/*
 * texts: lowered texts as UTF-32, text d at offsets[d] .. offsets[d + 1].
 * process[d]: 1 to canonicalise text d, 0 when it is canonical already (copied).
 * classes: per code point SW_WORD for \w and SW_WHITE for \s, as Python's re sees them.
 * out: the canonical texts joined by "\n" (the input of sw_hashed_sums).
 * Returns the length written, -1 when out_cap is too small, -2 when memory runs out.
 */
int64_t sw_canonical(const uint32_t *texts, const int64_t *offsets, const uint8_t *process,
                     int64_t n_docs, const uint8_t *classes, int64_t n_classes, uint32_t *out,
                     int64_t out_cap) {
    sw_classes k = {classes, n_classes};
    int64_t longest = 0;
    for (int64_t d = 0; d < n_docs; d++) {
        int64_t len = offsets[d + 1] - offsets[d];
        longest = len > longest ? len : longest;
    }
    /* the URL rewrite grows a text by at most 1.5 (" http " for four code points or more),
     * the mention rewrite by at most 2.5 ("@user" for two): 3.75 in all */
    int64_t cap = 5 * longest + 16;
    uint32_t *a = malloc(sizeof(uint32_t) * (size_t)cap);
    uint32_t *b = malloc(sizeof(uint32_t) * (size_t)cap);
    int64_t rc = -2;
    if (a == NULL || b == NULL) {
        goto done;
    }
    sw_buf dst = {out, 0, out_cap};
    rc = -1;
    for (int64_t d = 0; d < n_docs; d++) {
        const uint32_t *s = texts + offsets[d];
        int64_t n = offsets[d + 1] - offsets[d];
        if (d > 0 && sw_put(&dst, SW_SEP) != 0) {
            goto done;
        }
        if (!process[d]) {
            if (sw_put_span(&dst, s, 0, n) != 0) {
                goto done;
            }
            continue;
        }
        sw_buf one = {a, 0, cap}, two = {b, 0, cap}, three = {a, 0, cap};
        if (sw_pass_urls(&k, s, n, &one) != 0 || sw_pass_mentions(&k, a, one.len, &two) != 0) {
            goto done;
        }
        if (sw_pass_repeats(&k, b, two.len, &three) != 0) {
            goto done;
        }
        if (sw_pass_tokens(&k, a, three.len, &dst) != 0) {
            goto done;
        }
    }
    rc = dst.len;
done:
    free(a);
    free(b);
    return rc;
}

/*
 * Whether a text holds any of a set of needles: the topic tagger's pre-check
 * (domain/topics.py) for a whole batch in one call.
 *
 * Why: the tagger scans every lowered text with pyahocorasick, about 17 ns per character
 * (3 us per bench tweet, the largest Python-side piece of the sentiment stage after the
 * model), and only about one text in ten holds a needle at all. A deterministic automaton
 * over the needles' own code points answers "any needle?" at a table lookup per character;
 * the tagger then runs its exact route (automaton, patterns) on the texts that hold one.
 *
 * The automaton is Aho-Corasick made total: next[state * n_sym + symbol], symbol 0 for every
 * code point no needle has (it leads back to the root), accept[state] when a needle ends
 * there or on its failure chain.
 */
typedef struct {
    int64_t n_sym;
    int32_t *next;
    uint8_t *accept;
    uint16_t latin[256]; /* symbol of code points below 256 */
    uint32_t *wide;      /* needle code points from 256 up, sorted; symbol wide_sym[i] */
    uint16_t *wide_sym;
    int64_t n_wide;
} sw_needles;

static int64_t sw_needle_symbol(const sw_needles *nd, uint32_t c) {
    if (c < 256) {
        return nd->latin[c];
    }
    int64_t lo = 0, hi = nd->n_wide;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (nd->wide[mid] < c) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < nd->n_wide && nd->wide[lo] == c ? nd->wide_sym[lo] : 0;
}

void sw_needles_free(void *handle) {
    sw_needles *nd = handle;
    if (nd != NULL) {
        free(nd->next);
        free(nd->accept);
        free(nd->wide);
        free(nd->wide_sym);
        free(nd);
    }
}

static int sw_cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* needles: n strings, needle i is chars[offsets[i] .. offsets[i + 1]). NULL when memory
 * runs out or the automaton would be too large (the caller keeps the exact route). */
void *sw_needles_new(const uint32_t *chars, const int64_t *offsets, int64_t n) {
    int64_t total = offsets[n] - offsets[0];
    sw_needles *nd = calloc(1, sizeof(sw_needles));
    int32_t *trie = NULL, *fail = NULL, *queue = NULL;
    if (nd == NULL) {
        return NULL;
    }
    /* the alphabet: every distinct code point of the needles gets a symbol from 1 */
    nd->wide = malloc(sizeof(uint32_t) * (size_t)(total + 1));
    nd->wide_sym = malloc(sizeof(uint16_t) * (size_t)(total + 1));
    if (nd->wide == NULL || nd->wide_sym == NULL) {
        goto fail;
    }
    int64_t n_sym = 1;
    for (int64_t k = 0; k < total; k++) {
        uint32_t c = chars[offsets[0] + k];
        if (c < 256) {
            if (nd->latin[c] == 0) {
                nd->latin[c] = (uint16_t)n_sym++;
            }
        } else {
            nd->wide[nd->n_wide++] = c;
        }
    }
    qsort(nd->wide, (size_t)nd->n_wide, sizeof(uint32_t), sw_cmp_u32);
    int64_t kept = 0;
    for (int64_t k = 0; k < nd->n_wide; k++) {
        if (kept == 0 || nd->wide[kept - 1] != nd->wide[k]) {
            nd->wide[kept] = nd->wide[k];
            nd->wide_sym[kept++] = (uint16_t)n_sym++;
        }
    }
    nd->n_wide = kept;
    if (n_sym > 4096 || total > 1000000) {
        goto fail;
    }
    nd->n_sym = n_sym;
    /* the trie: at most one state per needle character, plus the root */
    int64_t cap = total + 1;
    if (cap * n_sym > ((int64_t)1 << 24)) { /* 64 MB of transitions: not for a pre-check */
        goto fail;
    }
    trie = malloc(sizeof(int32_t) * (size_t)(cap * n_sym));
    nd->accept = calloc((size_t)cap, 1);
    if (trie == NULL || nd->accept == NULL) {
        goto fail;
    }
    for (int64_t k = 0; k < cap * n_sym; k++) {
        trie[k] = -1;
    }
    int64_t states = 1;
    for (int64_t i = 0; i < n; i++) {
        int64_t s = 0;
        for (int64_t k = offsets[i]; k < offsets[i + 1]; k++) {
            int64_t a = sw_needle_symbol(nd, chars[k]);
            if (trie[s * n_sym + a] < 0) {
                trie[s * n_sym + a] = (int32_t)states++;
            }
            s = trie[s * n_sym + a];
        }
        nd->accept[s] = 1;
    }
    /* breadth first: a state's failure is the longest proper suffix that is a trie state;
     * its missing transitions are its failure's, computed before it */
    fail = calloc((size_t)states, sizeof(int32_t));
    queue = malloc(sizeof(int32_t) * (size_t)states);
    if (fail == NULL || queue == NULL) {
        goto fail;
    }
    int64_t head = 0, tail = 0;
    for (int64_t a = 0; a < n_sym; a++) {
        int32_t t = trie[a];
        if (t < 0) {
            trie[a] = 0;
        } else {
            fail[t] = 0;
            queue[tail++] = t;
        }
    }
    while (head < tail) {
        int32_t s = queue[head++];
        nd->accept[s] |= nd->accept[fail[s]];
        for (int64_t a = 0; a < n_sym; a++) {
            int32_t t = trie[s * n_sym + a];
            if (t < 0) {
                trie[s * n_sym + a] = trie[fail[s] * n_sym + a];
            } else {
                fail[t] = trie[fail[s] * n_sym + a];
                queue[tail++] = t;
            }
        }
    }
    free(fail);
    free(queue);
    nd->next = trie;
    return nd;
fail:
    free(trie);
    free(fail);
    free(queue);
    sw_needles_free(nd);
    return NULL;
}

/* out[d] = 1 when text d (texts[offsets[d] .. offsets[d + 1])) holds a needle, else 0. */
void sw_needles_scan(const void *handle, const uint32_t *texts, const int64_t *offsets,
                     int64_t n_texts, uint8_t *out) {
    const sw_needles *nd = handle;
    const int32_t *next = nd->next;
    const int64_t n_sym = nd->n_sym;
    for (int64_t d = 0; d < n_texts; d++) {
        int64_t s = 0;
        uint8_t hit = nd->accept[0];
        for (int64_t k = offsets[d]; k < offsets[d + 1] && !hit; k++) {
            uint32_t c = texts[k];
            int64_t a = c < 256 ? nd->latin[c] : sw_needle_symbol(nd, c);
            s = next[s * n_sym + a];
            hit = nd->accept[s];
        }
        out[d] = hit;
    }
}
