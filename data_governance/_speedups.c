/* Compiled inner loops of the fast curation path (data_governance.quality and data_governance.dedup).

   Each function computes, from the arrays the Python code builds, exactly what its numpy reference
   computes: the same 64-bit hashes, the same tie-breaking, the same early exits. The numpy code stays
   the reference (the tests compare the two) and the fallback where this module is not built.

   Word n-gram hashes (quality.WordGrams): h1[i] = (ids[i] + 1) * MIX and, for n > 1,
   h_n[i] = h_{n-1}[i] * ROLL + h1[i + n - 1] (mod 2^64). Two n-grams are "the same" when their
   hashes are equal, as in the numpy code, so even a hash collision gives the same answer on both.

   MinHash (dedup.signature): word 5-gram g[i] = polynomial in POLY over the words' CRC-32s, plus the
   number of words, through splitmix64's finaliser; signature value k = (min over shingles of
   a_k * g + b_k mod 2^64) >> 32.

   Hash tables are per call, open addressing with linear probing, in a grow-only scratch area that is
   never cleared: a slot belongs to the current call only if it carries the call's stamp. The GIL is
   held for the whole of every function and no Python code runs while a table is in use, so one
   scratch area serves all calls.

   Text passes (quality's Gopher quality, C4 and FineWeb blocks): the text is read as UCS4 once, then
   split, stripped and lower-cased exactly as str.splitlines(), str.strip(), str.split() and
   str.lower() do for what the rules test (Py_UNICODE_ISSPACE and Py_UNICODE_ISLINEBREAK are the
   interpreter's own tables); each has a Python reference in quality.py that the tests compare. */

#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE /* memmem */
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define NGRAM_MIX 0x9E3779B97F4A7C15ULL  /* quality._MIX */
#define NGRAM_ROLL 0xBF58476D1CE4E5B9ULL /* quality._ROLL */
#define SPLITMIX_1 0xBF58476D1CE4E5B9ULL /* dedup._mix */
#define SPLITMIX_2 0x94D049BB133111EBULL

/* ------------------------------------------------------------------ scratch memory */

/* 16 bytes: a table for a text of a thousand words stays in the L1 cache. */
typedef struct {
    uint64_t key;
    uint32_t stamp;
    uint32_t count; /* occurrences so far */
} Slot;

/* Positions and counts are 32-bit: texts of more words are refused (words_get). */
#define MAX_WORDS ((Py_ssize_t)UINT32_MAX - 1)

static Slot *table = NULL;
static uint32_t *table_first = NULL; /* per slot: the first position of its key */
static Py_ssize_t table_cap = 0; /* slots allocated */
static uint32_t table_stamp = 0;
static Py_ssize_t table_mask = 0; /* slots in use by the current call, minus one */
static int table_shift = 64;

static uint64_t *u64_scratch[3] = {NULL, NULL, NULL};
static Py_ssize_t u64_cap[3] = {0, 0, 0};

/* A scratch array of at least n uint64 (0, 1 or 2: three may be in use at once). */
static uint64_t *scratch(int which, Py_ssize_t n) {
    if (n < 1)
        n = 1;
    if (n > u64_cap[which]) {
        uint64_t *p = PyMem_Realloc(u64_scratch[which], (size_t)n * sizeof(uint64_t));
        if (p == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        u64_scratch[which] = p;
        u64_cap[which] = n;
    }
    return u64_scratch[which];
}

/* Starts a table for up to `items` keys (load factor at most 1/2). */
static int table_start(Py_ssize_t items) {
    Py_ssize_t size = 16;
    int bits = 4;
    while (size < 2 * items) {
        size <<= 1;
        bits++;
    }
    if (size > table_cap) {
        Slot *p = PyMem_Realloc(table, (size_t)size * sizeof(Slot));
        if (p == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        table = p;
        uint32_t *f = PyMem_Realloc(table_first, (size_t)size * sizeof(uint32_t));
        if (f == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        table_first = f;
        memset(table, 0, (size_t)size * sizeof(Slot));
        table_cap = size;
        table_stamp = 0;
    }
    if (++table_stamp == 0) { /* the stamp wrapped: forget every old slot */
        memset(table, 0, (size_t)table_cap * sizeof(Slot));
        table_stamp = 1;
    }
    table_mask = size - 1;
    table_shift = 64 - bits;
    return 0;
}

/* The slot of `key`, or the empty slot where it goes (its stamp is not the current one). */
static inline Slot *table_find(uint64_t key) {
    Py_ssize_t i = (Py_ssize_t)((key * NGRAM_MIX) >> table_shift);
    for (;;) {
        Slot *s = &table[i];
        if (s->stamp != table_stamp || s->key == key)
            return s;
        i = (i + 1) & table_mask;
    }
}

/* Inserts `key` seen at `pos`; returns 1 if it was already there (its count grows), else 0. */
static inline int table_add(uint64_t key, Py_ssize_t pos, Slot **out) {
    Slot *s = table_find(key);
    *out = s;
    if (s->stamp == table_stamp) {
        s->count++;
        return 1;
    }
    s->stamp = table_stamp;
    s->key = key;
    s->count = 1;
    table_first[s - table] = (uint32_t)pos;
    return 0;
}

/* Whether `key` is in the table; inserts it if not. */
static inline int table_seen(uint64_t key) {
    Slot *s = table_find(key);
    if (s->stamp == table_stamp)
        return 1;
    s->stamp = table_stamp;
    s->key = key;
    return 0;
}

/* ------------------------------------------------------------------ buffers of 64-bit integers */

typedef struct {
    Py_buffer view;
    const unsigned char *data;
    Py_ssize_t len; /* items */
} Array64;

/* A read-only (or, with `writable`, writable) C-contiguous buffer of 8-byte items: a numpy array of
   int64/uint64, bytes, bytearray or array.array('q'/'Q'). */
static int array64_get(PyObject *obj, Array64 *a, const char *what, int writable) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, &a->view, flags) < 0) {
        PyErr_Format(PyExc_TypeError, "%s: expected a C-contiguous%s buffer of 64-bit integers, got %.80s",
                     what, writable ? " writable" : "", Py_TYPE(obj)->tp_name);
        return -1;
    }
    if ((a->view.itemsize != 8 && a->view.itemsize != 1) || a->view.len % 8 != 0) {
        PyErr_Format(PyExc_ValueError,
                     "%s: expected 64-bit integers (item size 8, e.g. numpy uint64/int64), got item size "
                     "%zd and %zd bytes",
                     what, a->view.itemsize, a->view.len);
        PyBuffer_Release(&a->view);
        return -1;
    }
    a->data = (const unsigned char *)a->view.buf;
    a->len = a->view.len / 8;
    return 0;
}

static inline uint64_t load64(const unsigned char *p, Py_ssize_t i) {
    uint64_t v;
    memcpy(&v, p + 8 * i, 8);
    return v;
}

/* ------------------------------------------------------------------ word n-grams (quality) */

/* Parses (ids, lengths, n) into h1 (`len` items), cum (len + 1 items: cum[i] = characters of the
   first i words) and the n-gram hashes (`m` items): from the cache of the last text for bytes (what
   quality.CompiledGrams passes), else in scratch 0, 1 and 2. */
typedef struct {
    Py_ssize_t len;
    Py_ssize_t n;
    Py_ssize_t m; /* n-grams: 0 where the text has fewer than n words */
    uint64_t *h1;
    int64_t *cum;
    uint64_t *grams;
} Words;

/* The arrays of the last text, kept across calls: the Gopher block asks for several statistics of
   one text (top 2-, 3- and 4-grams, the cover and the scan of 5..10-grams), each a call with the
   same two bytes objects (immutable; the references held keep their addresses from being reused).
   Rows: 0 h1, 1 cum, n = 2..CACHED_N the n-gram hashes, each from row n - 1 by the recurrence
   h_n[i] = h_{n-1}[i] * ROLL + h1[i + n - 1] (one multiply per n-gram, no dependency chain). */
#define CACHED_N 12

static struct {
    PyObject *ids, *lengths;
    Py_ssize_t cap; /* items per row */
    uint64_t *rows;
    unsigned have; /* bit n: row n is filled */
} grams_cache = {NULL, NULL, 0, NULL, 0};

static int words_cached(PyObject *ids_obj, PyObject *lengths_obj, const Array64 *ids, const Array64 *lengths,
                        Words *w) {
    Py_ssize_t len = ids->len, n = w->n;
    if (grams_cache.ids != ids_obj || grams_cache.lengths != lengths_obj) {
        if (len + 1 > grams_cache.cap) {
            Py_ssize_t cap = 64;
            while (cap < len + 1)
                cap <<= 1;
            uint64_t *p = PyMem_Realloc(grams_cache.rows, (size_t)(CACHED_N + 1) * (size_t)cap * sizeof(uint64_t));
            if (p == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            grams_cache.rows = p;
            grams_cache.cap = cap;
        }
        uint64_t *h1 = grams_cache.rows;
        int64_t *cum = (int64_t *)(grams_cache.rows + grams_cache.cap);
        cum[0] = 0;
        for (Py_ssize_t i = 0; i < len; i++) {
            h1[i] = (load64(ids->data, i) + 1) * NGRAM_MIX;
            cum[i + 1] = cum[i] + (int64_t)load64(lengths->data, i);
        }
        Py_INCREF(ids_obj);
        Py_INCREF(lengths_obj);
        Py_XDECREF(grams_cache.ids); /* (bytes: freeing one runs no Python code) */
        Py_XDECREF(grams_cache.lengths);
        grams_cache.ids = ids_obj;
        grams_cache.lengths = lengths_obj;
        grams_cache.have = 0;
    }
    Py_ssize_t cap = grams_cache.cap;
    uint64_t *h1 = grams_cache.rows;
    w->h1 = h1;
    w->cum = (int64_t *)(grams_cache.rows + cap);
    for (Py_ssize_t k = 2; k <= n; k++) {
        if (grams_cache.have & (1U << k))
            continue;
        const uint64_t *prev = k == 2 ? h1 : grams_cache.rows + (k - 1) * cap;
        uint64_t *row = grams_cache.rows + k * cap;
        for (Py_ssize_t i = 0; i + k <= len; i++)
            row[i] = prev[i] * NGRAM_ROLL + h1[i + k - 1];
        grams_cache.have |= 1U << k;
    }
    w->grams = n == 1 ? h1 : grams_cache.rows + n * cap;
    return 0;
}

static int words_get(PyObject *ids_obj, PyObject *lengths_obj, Py_ssize_t n, Words *w) {
    Array64 ids, lengths;
    if (n < 1) {
        PyErr_Format(PyExc_ValueError, "n must be at least 1, got %zd", n);
        return -1;
    }
    if (array64_get(ids_obj, &ids, "ids", 0) < 0)
        return -1;
    if (array64_get(lengths_obj, &lengths, "lengths", 0) < 0) {
        PyBuffer_Release(&ids.view);
        return -1;
    }
    int rc = -1;
    if (ids.len != lengths.len) {
        PyErr_Format(PyExc_ValueError, "ids and lengths differ in length (%zd and %zd words)", ids.len,
                     lengths.len);
        goto done;
    }
    if (ids.len > MAX_WORDS) {
        PyErr_Format(PyExc_ValueError, "texts of more than %zd words are not supported (got %zd)", MAX_WORDS,
                     ids.len);
        goto done;
    }
    w->len = ids.len;
    w->n = n;
    w->m = ids.len >= n ? ids.len - n + 1 : 0;
    if (PyBytes_CheckExact(ids_obj) && PyBytes_CheckExact(lengths_obj) && n <= CACHED_N) {
        rc = words_cached(ids_obj, lengths_obj, &ids, &lengths, w);
        goto done;
    }
    w->h1 = scratch(0, ids.len);
    w->cum = (int64_t *)scratch(1, ids.len + 1);
    w->grams = scratch(2, w->m);
    if (w->h1 == NULL || w->cum == NULL || w->grams == NULL)
        goto done;
    w->cum[0] = 0;
    for (Py_ssize_t i = 0; i < ids.len; i++) {
        w->h1[i] = (load64(ids.data, i) + 1) * NGRAM_MIX;
        w->cum[i + 1] = w->cum[i] + (int64_t)load64(lengths.data, i);
    }
    if (w->m > 0) {
        /* The first n-gram by Horner's rule, as the numpy recurrence h_n = h_{n-1} * ROLL + h1
           computes it; then each next one by rolling the window: drop the first word's term
           (h1 * ROLL^(n-1)), shift, add the new word (exact in arithmetic mod 2^64). */
        uint64_t h = w->h1[0], top = 1;
        for (Py_ssize_t k = 1; k < n; k++) {
            h = h * NGRAM_ROLL + w->h1[k];
            top *= NGRAM_ROLL;
        }
        w->grams[0] = h;
        for (Py_ssize_t p = 1; p < w->m; p++) {
            h = (h - w->h1[p - 1] * top) * NGRAM_ROLL + w->h1[p + n - 1];
            w->grams[p] = h;
        }
    }
    rc = 0;
done:
    PyBuffer_Release(&ids.view);
    PyBuffer_Release(&lengths.view);
    return rc;
}


PyDoc_STRVAR(top_ngram_doc,
             "top_ngram(ids, lengths, n) -> (chars, count)\n\n"
             "The most frequent word n-gram (the first seen among equally frequent ones): its length with\n"
             "the words joined by single spaces times its count, and its count; (0, 0) without n-grams.\n"
             "As quality.WordGrams._top.");

static PyObject *top_ngram(PyObject *self, PyObject *args) {
    PyObject *ids, *lengths;
    Py_ssize_t n;
    Words w;
    if (!PyArg_ParseTuple(args, "OOn:top_ngram", &ids, &lengths, &n) || words_get(ids, lengths, n, &w) < 0)
        return NULL;
    Py_ssize_t m = w.m;
    if (m == 0)
        return Py_BuildValue("(nn)", (Py_ssize_t)0, (Py_ssize_t)0);
    if (table_start(m) < 0)
        return NULL;
    Py_ssize_t best = 0, at = 0;
    for (Py_ssize_t p = 0; p < m; p++) {
        Slot *s;
        table_add(w.grams[p], p, &s);
        Py_ssize_t count = s->count;
        if (count >= best) {
            Py_ssize_t first = table_first[s - table];
            if (count > best || first < at) {
                best = count;
                at = first;
            }
        }
    }
    int64_t chars = w.cum[at + n] - w.cum[at] + (int64_t)(n - 1);
    return Py_BuildValue("(Ln)", (long long)(chars * (int64_t)best), best);
}

PyDoc_STRVAR(longest_ngram_doc,
             "longest_ngram(lengths, n) -> int\n\n"
             "Characters of the longest word n-gram, without separators (0 without n-grams).");

static PyObject *longest_ngram(PyObject *self, PyObject *args) {
    PyObject *lengths_obj;
    Py_ssize_t n;
    Array64 lengths;
    if (!PyArg_ParseTuple(args, "On:longest_ngram", &lengths_obj, &n))
        return NULL;
    if (n < 1) {
        PyErr_Format(PyExc_ValueError, "n must be at least 1, got %zd", n);
        return NULL;
    }
    if (array64_get(lengths_obj, &lengths, "lengths", 0) < 0)
        return NULL;
    int64_t window = 0, best = 0;
    for (Py_ssize_t i = 0; i < lengths.len; i++) {
        window += (int64_t)load64(lengths.data, i);
        if (i >= n)
            window -= (int64_t)load64(lengths.data, i - n);
        if (i >= n - 1 && window > best)
            best = window;
    }
    PyBuffer_Release(&lengths.view);
    return PyLong_FromLongLong(best);
}

PyDoc_STRVAR(repeat_cover_doc,
             "repeat_cover(ids, lengths, n) -> int\n\n"
             "Characters (no separators) of the words covered by some word n-gram that repeats an earlier\n"
             "one: an upper bound of duplicated_chars(m) for every m >= n. As\n"
             "quality.WordGrams.covered_by_repeats.");

static PyObject *repeat_cover(PyObject *self, PyObject *args) {
    PyObject *ids, *lengths;
    Py_ssize_t n;
    Words w;
    if (!PyArg_ParseTuple(args, "OOn:repeat_cover", &ids, &lengths, &n) || words_get(ids, lengths, n, &w) < 0)
        return NULL;
    Py_ssize_t m = w.m;
    if (m == 0)
        return PyLong_FromLong(0);
    if (table_start(m) < 0)
        return NULL;
    int64_t total = 0;
    Py_ssize_t end = 0; /* words before `end` are counted */
    for (Py_ssize_t p = 0; p < m; p++) {
        if (table_seen(w.grams[p])) {
            total += w.cum[p + n] - w.cum[p > end ? p : end];
            end = p + n;
        }
    }
    return PyLong_FromLongLong(total);
}

PyDoc_STRVAR(duplicated_chars_doc,
             "duplicated_chars(ids, lengths, n, size=0, limit=0.0) -> int\n\n"
             "Characters (no separators) in repeated word n-grams, by the greedy left-to-right scan: on an\n"
             "n-gram seen earlier in the scan, count its characters and jump n words; otherwise remember\n"
             "it and move one word. With size > 0 the scan stops as soon as count / size > limit and\n"
             "returns that partial count. As quality.WordGrams._scan.");

static PyObject *duplicated_chars(PyObject *self, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"ids", "lengths", "n", "size", "limit", NULL};
    PyObject *ids, *lengths;
    Py_ssize_t n, size = 0;
    double limit = 0.0;
    Words w;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOn|nd:duplicated_chars", kwlist, &ids, &lengths, &n, &size,
                                     &limit) ||
        words_get(ids, lengths, n, &w) < 0)
        return NULL;
    Py_ssize_t m = w.m;
    if (m == 0)
        return PyLong_FromLong(0);
    if (table_start(m) < 0)
        return NULL;
    int64_t total = 0;
    Py_ssize_t p = 0;
    while (p < m) {
        if (table_seen(w.grams[p])) {
            total += w.cum[p + n] - w.cum[p];
            /* the comparison Python makes: both integers are exact as doubles below 2^53 */
            if (size > 0 && (double)total / (double)size > limit)
                break;
            p += n;
        } else {
            p += 1;
        }
    }
    return PyLong_FromLongLong(total);
}

PyDoc_STRVAR(word_ids_doc,
             "word_ids(words) -> (ids, lengths, chars)\n\n"
             "Per word, Python's hash() as a uint64 and len(), as two bytes objects of 64-bit integers (the\n"
             "arrays quality.WordGrams builds with numpy), and the sum of the lengths.");

static PyObject *word_ids(PyObject *self, PyObject *words) {
    PyObject *seq = PySequence_Fast(words, "word_ids: expected a list of words");
    if (seq == NULL)
        return NULL;
    Py_ssize_t len = PySequence_Fast_GET_SIZE(seq);
    PyObject *ids = PyBytes_FromStringAndSize(NULL, len * 8);
    PyObject *lengths = PyBytes_FromStringAndSize(NULL, len * 8);
    if (ids == NULL || lengths == NULL)
        goto fail;
    unsigned char *pi = (unsigned char *)PyBytes_AS_STRING(ids);
    unsigned char *pl = (unsigned char *)PyBytes_AS_STRING(lengths);
    long long chars = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        if (i >= PySequence_Fast_GET_SIZE(seq)) {
            PyErr_SetString(PyExc_RuntimeError, "word_ids: the list changed size while it was read");
            goto fail;
        }
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        Py_hash_t h;
        Py_ssize_t size;
        if (PyUnicode_CheckExact(item)) { /* no Python code can run: no reference needed */
            h = PyObject_Hash(item);
            size = PyUnicode_GET_LENGTH(item);
        } else {
            Py_INCREF(item);
            h = PyObject_Hash(item);
            size = h == -1 ? -1 : PyObject_Length(item);
            Py_DECREF(item);
        }
        if (h == -1 || size < 0)
            goto fail;
        uint64_t hu = (uint64_t)(int64_t)h;
        int64_t sz = (int64_t)size;
        memcpy(pi + 8 * i, &hu, 8);
        memcpy(pl + 8 * i, &sz, 8);
        chars += sz;
    }
    Py_DECREF(seq);
    return Py_BuildValue("(NNL)", ids, lengths, chars);
fail:
    Py_DECREF(seq);
    Py_XDECREF(ids);
    Py_XDECREF(lengths);
    return NULL;
}

/* ------------------------------------------------------------------ str arguments */

/* A str argument's length, character width and characters; a TypeError naming `fn` otherwise. */
typedef struct {
    Py_ssize_t len;
    int kind;
    const void *data;
} Text;

static int text_get(PyObject *obj, const char *fn, Text *t) {
    if (!PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: expected str, got %.80s", fn, Py_TYPE(obj)->tp_name);
        return -1;
    }
    if (PyUnicode_READY(obj) < 0)
        return -1;
    t->len = PyUnicode_GET_LENGTH(obj);
    t->kind = PyUnicode_KIND(obj);
    t->data = PyUnicode_DATA(obj);
    return 0;
}

/* ------------------------------------------------------------------ words (quality.tokens) */

/* What the pattern's classes are made of, as Python's re module decides them for str patterns:
   `[^\W_]` is Py_UNICODE_ISALNUM, `\s` Py_UNICODE_ISSPACE (str.split()'s white space too). */
static inline int is_alnum(Py_UCS4 c) {
    if (c < 128)
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    return Py_UNICODE_ISALNUM(c);
}

static inline int is_space(Py_UCS4 c) { return Py_UNICODE_ISSPACE(c); }

/* Characters that may join two runs of letters and digits into one token: ' ’ . , */
static inline int is_joiner(Py_UCS4 c) { return c == '\'' || c == 0x2019 || c == '.' || c == ','; }

/* A new str of the `n` characters at `start`: what slicing gives, made directly (slicing a text that
   is not all ASCII would scan each slice once more for its widest character). */
static PyObject *make_token(int kind, const void *data, Py_ssize_t start, Py_ssize_t n) {
    Py_UCS4 widest = 0;
    for (Py_ssize_t j = 0; j < n; j++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, start + j);
        widest = c > widest ? c : widest;
    }
    if (n == 1 && widest < 256)
        return PyUnicode_FromOrdinal(widest); /* one of the interpreter's cached one-character strings */
    PyObject *token = PyUnicode_New(n, widest);
    if (token == NULL)
        return NULL;
    int tkind = PyUnicode_KIND(token);
    void *tdata = PyUnicode_DATA(token);
    if (tkind == kind) {
        memcpy(tdata, (const char *)data + start * kind, (size_t)(n * kind));
    } else {
        for (Py_ssize_t j = 0; j < n; j++)
            PyUnicode_WRITE(tkind, tdata, j, PyUnicode_READ(kind, data, start + j));
    }
    return token;
}

PyDoc_STRVAR(tokens_doc,
             "tokens(text) -> list[str]\n\n"
             "quality._TOKEN.findall(text): runs of letters and digits (joined by inner ' ’ . ,), runs of\n"
             "underscores, runs of two or more periods or hyphens, and every other mark that is not white\n"
             "space on its own; in text order. As quality.tokens.");

/* Called with each token's place in the text (tokens_counted counts them as they are made). */
typedef void (*TokenSink)(int kind, const void *data, Py_ssize_t start, Py_ssize_t n, void *state);

static PyObject *tokenize(PyObject *text, const char *fn, TokenSink sink, void *state) {
    Text t;
    if (text_get(text, fn, &t) < 0)
        return NULL;
    Py_ssize_t len = t.len;
    int kind = t.kind;
    const void *data = t.data;
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    Py_ssize_t i = 0;
    while (i < len) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        Py_ssize_t start = i;
        if (is_alnum(c)) {
            i++;
            for (;;) {
                while (i < len && is_alnum(PyUnicode_READ(kind, data, i)))
                    i++;
                if (i + 1 < len && is_joiner(PyUnicode_READ(kind, data, i)) &&
                    is_alnum(PyUnicode_READ(kind, data, i + 1)))
                    i += 2;
                else
                    break;
            }
        } else if (c == '_' || c == '.' || c == '-') {
            i++;
            while (i < len && PyUnicode_READ(kind, data, i) == c)
                i++;
            if (c != '_' && i - start < 2) /* one period or hyphen: a mark on its own */
                i = start + 1;
        } else if (is_space(c)) {
            i++;
            continue;
        } else {
            i++;
        }
        PyObject *token = make_token(kind, data, start, i - start);
        if (token == NULL || PyList_Append(out, token) < 0) {
            Py_XDECREF(token);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(token);
        if (sink != NULL)
            sink(kind, data, start, i - start, state);
    }
    return out;
}

static PyObject *tokens(PyObject *self, PyObject *text) { return tokenize(text, "tokens", NULL, NULL); }

PyDoc_STRVAR(count_chunks_doc,
             "count_chunks(text) -> int\n\n"
             "len(text.split()): the white-space separated chunks of the text, counted without making them.");

static PyObject *count_chunks(PyObject *self, PyObject *text) {
    Text t;
    if (text_get(text, "count_chunks", &t) < 0)
        return NULL;
    Py_ssize_t len = t.len, count = 0;
    int kind = t.kind;
    const void *data = t.data;
    int in_chunk = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        int space = is_space(PyUnicode_READ(kind, data, i));
        count += !space && !in_chunk;
        in_chunk = !space;
    }
    return PyLong_FromSsize_t(count);
}

/* ------------------------------------------------------------------ PII hints (pii.redact) */

/* `\d` of Python's re for str patterns: a Unicode decimal digit. */
static inline int is_decimal(Py_UCS4 c) { return c < 128 ? (c >= '0' && c <= '9') : Py_UNICODE_ISDECIMAL(c); }

PyDoc_STRVAR(pii_hints_doc,
             "pii_hints(text) -> (iban, ipv4, phone)\n\n"
             "Whether the text holds what every match of each pattern holds, in one pass: a capital A-Z and\n"
             "two digits ([A-Z]\\d\\d), a digit, a period and a digit (\\d\\.\\d), a digit, one of ' .-' and a\n"
             "digit (\\d[ .-]\\d); digits as re's \\d (Unicode decimal). As pii._IBAN_HINT, _IPV4_HINT and\n"
             "_PHONE_HINT.");

static PyObject *pii_hints(PyObject *self, PyObject *text) {
    Text t;
    if (text_get(text, "pii_hints", &t) < 0)
        return NULL;
    Py_ssize_t len = t.len;
    int kind = t.kind;
    const void *data = t.data;
    int iban = 0, ipv4 = 0, phone = 0;
    for (Py_ssize_t i = 0; i + 2 < len && !(iban && ipv4 && phone); i++) {
        Py_UCS4 a = PyUnicode_READ(kind, data, i), b = PyUnicode_READ(kind, data, i + 1);
        if (a >= 'A' && a <= 'Z') {
            if (!iban && is_decimal(b) && is_decimal(PyUnicode_READ(kind, data, i + 2)))
                iban = 1;
        } else if ((b == '.' || b == ' ' || b == '-') && is_decimal(a) &&
                   is_decimal(PyUnicode_READ(kind, data, i + 2))) {
            phone = 1;
            ipv4 |= b == '.';
        }
    }
    return Py_BuildValue("(OOO)", iban ? Py_True : Py_False, ipv4 ? Py_True : Py_False,
                         phone ? Py_True : Py_False);
}

/* ------------------------------------------------------------------ HTML hints (signals.evidence) */

PyDoc_STRVAR(html_hints_doc,
             "html_hints(html) -> (meta, licence, cc)\n\n"
             "Whether the page source, lower-cased, holds 'robots' or 'tdm' (meta), 'licen',\n"
             "'creativecommons' or '.rights' (licence), and whether the source holds 'CC' (cc). As\n"
             "signals._hints_reference's substring tests.");

static PyObject *html_hints(PyObject *self, PyObject *html) {
    static const char *meta_needles[] = {"robots", "tdm", NULL};
    static const char *licence_needles[] = {"licen", "creativecommons", ".rights", NULL};
    Text t;
    if (text_get(html, "html_hints", &t) < 0)
        return NULL;
    Py_ssize_t len = t.len;
    int kind = t.kind;
    const void *data = t.data;
    /* The text folded to one byte per character: ASCII lower-cased, anything else 0x80 (no needle
       holds it). Only ASCII folds here, but for these needles that is what str.lower() gives too:
       the two non-ASCII characters that lower to ASCII letters are KELVIN SIGN (k, in no needle) and
       LATIN CAPITAL I WITH DOT ABOVE (i plus a combining dot, which no needle's next letter matches). */
    unsigned char *low = (unsigned char *)scratch(0, len / 8 + 1);
    if (low == NULL)
        return NULL;
    int cc = 0;
    /* One loop per character width, so that the compiler sees plain arrays. */
#define FOLD_LOOP(T)                                                                                   \
    do {                                                                                               \
        const T *src = (const T *)data;                                                                \
        T prev = 0;                                                                                    \
        for (Py_ssize_t i = 0; i < len; i++) {                                                         \
            T c = src[i];                                                                              \
            cc |= c == 'C' && prev == 'C';                                                             \
            prev = c;                                                                                  \
            low[i] = c < 128 ? (unsigned char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c) : 0x80;     \
        }                                                                                              \
    } while (0)
    if (kind == PyUnicode_1BYTE_KIND) {
        /* (most pages: without the pair test the loop vectorises, and "CC" is one memmem) */
        const Py_UCS1 *src = (const Py_UCS1 *)data;
        for (Py_ssize_t i = 0; i < len; i++) {
            Py_UCS1 c = src[i];
            low[i] = c < 128 ? (unsigned char)(c + ((unsigned char)(c - 'A') < 26 ? 'a' - 'A' : 0)) : 0x80;
        }
        cc = memmem(src, (size_t)len, "CC", 2) != NULL;
    } else if (kind == PyUnicode_2BYTE_KIND)
        FOLD_LOOP(Py_UCS2);
    else
        FOLD_LOOP(Py_UCS4);
#undef FOLD_LOOP
    int found[2] = {0, 0};
    const char **needles[2] = {meta_needles, licence_needles};
    for (int g = 0; g < 2; g++)
        for (const char **n = needles[g]; *n != NULL && !found[g]; n++)
            found[g] = memmem(low, (size_t)len, *n, strlen(*n)) != NULL;
    return Py_BuildValue("(OOO)", found[0] ? Py_True : Py_False, found[1] ? Py_True : Py_False,
                         cc ? Py_True : Py_False);
}

/* ------------------------------------------------------------------ line and word counts (quality) */

/* Where the line from `i` ends: the next line break or the end of the text. */
static inline Py_ssize_t line_end(const Py_UCS4 *u, Py_ssize_t len, Py_ssize_t i) {
    while (i < len && (u[i] < 128 ? !(u[i] <= '\r' ? u[i] >= '\n' : u[i] >= 0x1C && u[i] <= 0x1E)
                                  : !Py_UNICODE_ISLINEBREAK(u[i])))
        i++;
    return i;
}

/* The next line from *next as str.splitlines() cuts it, then as str.strip() trims it: [*s, *e).
   Advances *next past the line break (CR LF counts as one). */
static inline void next_stripped_line(const Py_UCS4 *u, Py_ssize_t len, Py_ssize_t *next, Py_ssize_t *s,
                                      Py_ssize_t *e) {
    Py_ssize_t a = *next, b = line_end(u, len, a);
    *next = b + 1 + (b + 1 < len && u[b] == '\r' && u[b + 1] == '\n');
    while (a < b && is_space(u[a]))
        a++;
    while (b > a && is_space(u[b - 1]))
        b--;
    *s = a;
    *e = b;
}

/* A set of code points given as a str (datatrove's PUNCTUATION_SET): a bitmap for ASCII, a sorted
   array for the rest. The last set parsed is kept with a reference to its str, so the module-level
   constant the caller passes on every call is parsed once. */
typedef struct {
    PyObject *source;
    uint64_t ascii[2];
    Py_UCS4 *other;
    Py_ssize_t n_other;
} CodeSet;

static CodeSet punct = {NULL, {0, 0}, NULL, 0};

static int cmp_ucs4(const void *a, const void *b) {
    Py_UCS4 x = *(const Py_UCS4 *)a, y = *(const Py_UCS4 *)b;
    return (x > y) - (x < y);
}

static int codeset_get(PyObject *chars, CodeSet *set) {
    if (set->source == chars)
        return 0;
    Text t;
    if (text_get(chars, "punctuation", &t) < 0)
        return -1;
    Py_UCS4 *other = PyMem_Malloc((size_t)(t.len + 1) * sizeof(Py_UCS4));
    if (other == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    uint64_t ascii[2] = {0, 0};
    Py_ssize_t n = 0;
    for (Py_ssize_t i = 0; i < t.len; i++) {
        Py_UCS4 c = PyUnicode_READ(t.kind, t.data, i);
        if (c < 128)
            ascii[c >> 6] |= 1ULL << (c & 63);
        else
            other[n++] = c;
    }
    qsort(other, (size_t)n, sizeof(Py_UCS4), cmp_ucs4);
    PyMem_Free(set->other);
    Py_XDECREF(set->source);
    Py_INCREF(chars);
    set->source = chars;
    set->ascii[0] = ascii[0];
    set->ascii[1] = ascii[1];
    set->other = other;
    set->n_other = n;
    return 0;
}

static inline int codeset_has(const CodeSet *set, Py_UCS4 c) {
    if (c < 128)
        return (int)((set->ascii[c >> 6] >> (c & 63)) & 1);
    Py_ssize_t lo = 0, hi = set->n_other;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (set->other[mid] < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < set->n_other && set->other[lo] == c;
}

/* `[^\W\d_]` of Python's re for str patterns: a letter (or a digit that is not decimal, e.g. "²"). */
static inline int is_letterish(Py_UCS4 c) {
    if (c < 128)
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    return Py_UNICODE_ISALNUM(c) && !Py_UNICODE_ISDECIMAL(c);
}

/* The characters of a str as UCS4 in scratch area `which` (one pass, then plain array reads). */
static Py_UCS4 *as_ucs4(PyObject *text, Py_ssize_t len, int which) {
    Py_UCS4 *buf = (Py_UCS4 *)scratch(which, len / 2 + 1);
    if (buf == NULL || PyUnicode_AsUCS4(text, buf, len + 1, 0) == NULL)
        return NULL;
    return buf;
}

/* Per ASCII character: in the punctuation set (1), a letter for quality._HAS_ALPHA (2). */
static unsigned char ascii_class[128];

static void ascii_class_init(void) {
    for (int c = 0; c < 128; c++)
        ascii_class[c] = (unsigned char)((codeset_has(&punct, (Py_UCS4)c) ? 1 : 0) | (is_letterish((Py_UCS4)c) ? 2 : 0));
}

#if defined(__GNUC__) || defined(__clang__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#endif

/* A word's class for gopher_counts (bit 0: punctuation only, bit 1: has a letter) and its length;
   -1 with a TypeError for what is not a str. */
static NOINLINE Py_ssize_t word_class(PyObject *item, Py_ssize_t *n) {
    Text word;
    if (text_get(item, "gopher_counts", &word) < 0)
        return -1;
    int all_punct = 1, letter = 0;
    for (Py_ssize_t i = 0; i < word.len && (all_punct || !letter); i++) {
        Py_UCS4 c = PyUnicode_READ(word.kind, word.data, i);
        all_punct = all_punct && codeset_has(&punct, c);
        letter = letter || is_letterish(c);
    }
    *n = word.len;
    return all_punct | (letter << 1);
}

/* Per token: its class as word_class gives it, added up. */
typedef struct {
    Py_ssize_t symbols, symbol_chars, with_letter;
} WordCounts;

static inline unsigned char char_class(Py_UCS4 c) {
    return c < 128 ? ascii_class[c] : (unsigned char)(codeset_has(&punct, c) | (is_letterish(c) << 1));
}

static void count_token(int kind, const void *data, Py_ssize_t start, Py_ssize_t n, void *state) {
    WordCounts *wc = (WordCounts *)state;
    unsigned all = 3, any = 0;
    if (kind == PyUnicode_1BYTE_KIND) {
        const Py_UCS1 *p = (const Py_UCS1 *)data + start;
        for (Py_ssize_t i = 0; i < n; i++) {
            unsigned char cls = char_class(p[i]);
            all &= cls;
            any |= cls;
        }
    } else {
        for (Py_ssize_t i = 0; i < n; i++) {
            unsigned char cls = char_class(PyUnicode_READ(kind, data, start + i));
            all &= cls;
            any |= cls;
        }
    }
    wc->symbols += all & 1;
    wc->symbol_chars += (all & 1) * n;
    wc->with_letter += (any >> 1) & 1;
}

PyDoc_STRVAR(tokens_counted_doc,
             "tokens_counted(text, punctuation) -> (tokens, symbols, symbol_chars, with_letter)\n\n"
             "tokens(text), and the first three counts gopher_counts gives for them, taken while the\n"
             "tokens are made.");

static PyObject *tokens_counted(PyObject *self, PyObject *args) {
    PyObject *text, *chars;
    if (!PyArg_ParseTuple(args, "OO:tokens_counted", &text, &chars))
        return NULL;
    if (punct.source != chars) {
        if (codeset_get(chars, &punct) < 0)
            return NULL;
        ascii_class_init();
    }
    WordCounts wc = {0, 0, 0};
    PyObject *words = tokenize(text, "tokens_counted", count_token, &wc);
    if (words == NULL)
        return NULL;
    return Py_BuildValue("(Nnnn)", words, wc.symbols, wc.symbol_chars, wc.with_letter);
}

PyDoc_STRVAR(gopher_counts_doc,
             "gopher_counts(text, words, punctuation) -> (symbols, symbol_chars, with_letter, hashes,\n"
             "                                           ellipses, lines, bullet_lines, ellipsis_lines)\n\n"
             "The counts of the Gopher quality block in one pass over the words and one over the text: words\n"
             "made of `punctuation` characters only and their characters, words with a letter (quality.\n"
             "_HAS_ALPHA), text.count('#'), text.count('...') + text.count('…'), the lines of\n"
             "text.splitlines() (at least 1), those whose first character after leading white space is '•'\n"
             "or '-', and those that end, before trailing white space, in '...' or '…'. As\n"
             "quality.gopher_counts_reference.");

static PyObject *gopher_counts(PyObject *self, PyObject *args) {
    PyObject *text, *words, *chars;
    if (!PyArg_ParseTuple(args, "OOO:gopher_counts", &text, &words, &chars))
        return NULL;
    Text t;
    if (text_get(text, "gopher_counts", &t) < 0)
        return NULL;
    if (punct.source != chars) {
        if (codeset_get(chars, &punct) < 0)
            return NULL;
        ascii_class_init();
    }
    PyObject *seq = PySequence_Fast(words, "gopher_counts: expected a list of words");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n_words = PySequence_Fast_GET_SIZE(seq), symbols = 0, symbol_chars = 0, with_letter = 0;
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t w = 0; w < n_words; w++) {
        PyObject *item = items[w];
        Py_ssize_t n, cls; /* bit 0: punctuation only, bit 1: has a letter */
        if (PyUnicode_CheckExact(item) && PyUnicode_IS_ASCII(item)) { /* (the hot loop: no calls) */
            const unsigned char *p = PyUnicode_1BYTE_DATA(item);
            n = PyUnicode_GET_LENGTH(item);
            unsigned all = 1, any = 0;
            for (Py_ssize_t i = 0; i < n; i++) {
                all &= ascii_class[p[i]];
                any |= ascii_class[p[i]];
            }
            cls = (all & 1) | (any & 2);
        } else {
            cls = word_class(item, &n);
            if (cls < 0) {
                Py_DECREF(seq);
                return NULL;
            }
        }
        symbols += cls & 1;
        symbol_chars += (cls & 1) * n;
        with_letter += cls >> 1;
    }
    Py_DECREF(seq);

    const Py_UCS4 *u = as_ucs4(text, t.len, 2);
    if (u == NULL)
        return NULL;
    Py_ssize_t len = t.len, hashes = 0, ellipses = 0, lines = 0, bullets = 0, trailing = 0;
    /* (separate simple loops: the first one vectorises, and none keeps its counters in memory) */
    for (Py_ssize_t i = 0; i < len; i++) {
        hashes += u[i] == '#';
        ellipses += u[i] == 0x2026;
    }
    for (Py_ssize_t i = 0; i < len;) { /* "..." as str.count counts it: a run of k periods holds k / 3 */
        if (u[i] != '.') {
            i++;
            continue;
        }
        Py_ssize_t j = i;
        while (j < len && u[j] == '.')
            j++;
        ellipses += (j - i) / 3;
        i = j;
    }
    for (Py_ssize_t next = 0, s, e; next < len;) {
        next_stripped_line(u, len, &next, &s, &e);
        lines++;
        if (s == e)
            continue;
        bullets += u[s] == 0x2022 || u[s] == '-';
        trailing += u[e - 1] == 0x2026 || (e - s >= 3 && u[e - 1] == '.' && u[e - 2] == '.' && u[e - 3] == '.');
    }
    return Py_BuildValue("(nnnnnnnn)", symbols, symbol_chars, with_letter, hashes, ellipses, lines ? lines : 1,
                         bullets, trailing);
}

/* A line folded to one byte per character for substring tests on its str.lower(): ASCII lower-cased,
   anything else 0x80, except the two characters whose lower case holds ASCII: KELVIN SIGN lowers to
   'k', and LATIN CAPITAL I WITH DOT ABOVE to 'i' and a combining dot (two bytes here too). Returns
   the folded length (at most 2n). */
static Py_ssize_t fold_lower(const Py_UCS4 *line, Py_ssize_t n, unsigned char *low) {
    Py_ssize_t o = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = line[i];
        if (c < 128) {
            low[o++] = (unsigned char)(c - 'A' < 26 ? c + ('a' - 'A') : c);
        } else {
            low[o++] = c == 0x212A ? 'k' : c == 0x130 ? 'i' : 0x80;
            if (c == 0x130)
                low[o++] = 0x80;
        }
    }
    return o;
}

static inline int has(const unsigned char *low, Py_ssize_t n, const char *needle) {
    return memmem(low, (size_t)n, needle, strlen(needle)) != NULL;
}

#define C4_LOREM 1
#define C4_JAVASCRIPT 2
#define C4_CURLY 4
#define C4_POLICY 8

/* Which of C4's substrings a folded line holds: "lorem ipsum", "javascript", "{" and the phrases
   of quality._POLICY ("terms of use", "privacy policy", "cookie policy", "uses cookies",
   "use of cookies", "use cookies": each holds "polic", "cookie" or "terms of use", tested first). */
static int c4_marks(const unsigned char *low, Py_ssize_t n) {
    int found = 0;
    found |= has(low, n, "lorem ipsum") ? C4_LOREM : 0;
    found |= has(low, n, "javascript") ? C4_JAVASCRIPT : 0;
    found |= memchr(low, '{', (size_t)n) != NULL ? C4_CURLY : 0;
    if (has(low, n, "polic") || has(low, n, "cookie") || has(low, n, "terms of use"))
        found |= has(low, n, "terms of use") || has(low, n, "privacy policy") || has(low, n, "cookie policy") ||
                         has(low, n, "uses cookies") || has(low, n, "use of cookies") || has(low, n, "use cookies")
                     ? C4_POLICY
                     : 0;
    return found;
}

/* Sentence ends in a kept line, as len(quality._SENTENCE_END.findall(line)): a run of . ! ? and
   closing quotes or brackets, then white space, then more text. */
static Py_ssize_t sentence_ends(const Py_UCS4 *s, Py_ssize_t n) {
    Py_ssize_t count = 0, i = 0;
    while (i < n) {
        Py_UCS4 c = s[i];
        if (c != '.' && c != '!' && c != '?') {
            i++;
            continue;
        }
        Py_ssize_t j = i;
        while (j < n && (s[j] == '.' || s[j] == '!' || s[j] == '?'))
            j++;
        while (j < n && (s[j] == '"' || s[j] == '\'' || s[j] == 0x201D || s[j] == 0x2019 || s[j] == ')' ||
                         s[j] == ']'))
            j++;
        Py_ssize_t k = j;
        while (k < n && is_space(s[k]))
            k++;
        if (k > j && k < n) {
            count++;
            i = k; /* the match ends before the text that follows (a look-ahead) */
        } else {
            i = j; /* a match starting inside the run would fail the same way */
        }
    }
    return count;
}

/* Copies line[s, e) to `out` without C4's citation marks (quality._CITATION: "[" digits "]", "[edit]",
   "[citation needed]", left to right without overlaps); returns the characters written. */
static Py_ssize_t copy_without_citations(const Py_UCS4 *u, Py_ssize_t s, Py_ssize_t e, Py_UCS4 *out) {
    static const char *marks[] = {"edit]", "citation needed]"};
    Py_ssize_t o = 0, i = s;
    while (i < e) {
        Py_UCS4 c = u[i];
        if (c == '[') {
            Py_ssize_t j = i + 1;
            while (j < e && is_decimal(u[j]))
                j++;
            if (j < e && u[j] == ']') {
                i = j + 1;
                continue;
            }
            int skipped = 0;
            for (int m = 0; m < 2 && !skipped; m++) {
                Py_ssize_t k = (Py_ssize_t)strlen(marks[m]), q = 0;
                while (q < k && i + 1 + q < e && u[i + 1 + q] == (Py_UCS4)(unsigned char)marks[m][q])
                    q++;
                if (q == k) {
                    i += 1 + k;
                    skipped = 1;
                }
            }
            if (skipped)
                continue;
        }
        out[o++] = c;
        i++;
    }
    return o;
}

PyDoc_STRVAR(c4_filter_doc,
             "c4_filter(text, max_word_length, min_words, enough) -> (kept, sentences, lorem_at, curly_at)\n\n"
             "C4's line filter: the lines it keeps joined by line breaks and stripped, the sentences in\n"
             "them (lines are counted while fewer than `enough`, where enough >= 0), and the index of the\n"
             "line where 'lorem ipsum' and '{' were first found in a line that gets that far (-1 if never):\n"
             "the text and counts of quality.c4_lines, without making a str per line.");

static PyObject *c4_filter(PyObject *self, PyObject *args) {
    PyObject *text;
    Py_ssize_t max_word, min_words, enough;
    if (!PyArg_ParseTuple(args, "Onnn:c4_filter", &text, &max_word, &min_words, &enough))
        return NULL;
    Text t;
    if (text_get(text, "c4_filter", &t) < 0)
        return NULL;
    Py_ssize_t len = t.len;
    /* the text as UCS4, and the kept text (never longer than the text: each kept line but the first
       takes the place of a line break before it) */
    const Py_UCS4 *u = as_ucs4(text, len, 2);
    Py_UCS4 *out = (Py_UCS4 *)scratch(0, len / 2 + 1);
    unsigned char *low = (unsigned char *)scratch(1, len / 4 + 1); /* one line, folded */
    if (u == NULL || out == NULL || low == NULL)
        return NULL;
    Py_ssize_t o = 0, sentences = 0, lorem_at = -1, curly_at = -1, index = -1;
    for (Py_ssize_t next = 0, s, e; next < len;) {
        next_stripped_line(u, len, &next, &s, &e);
        index++;
        /* words (before the citations go): one too long is looked for only in a line that long, and
           words are counted only up to `min_words` */
        if (e - s > max_word) {
            Py_ssize_t run = 0, longest = 0;
            for (Py_ssize_t i = s; i < e; i++) {
                run = is_space(u[i]) ? 0 : run + 1;
                longest = run > longest ? run : longest;
            }
            if (longest > max_word)
                continue;
        }
        Py_ssize_t words = 0;
        for (Py_ssize_t i = s; i < e && words < min_words;) {
            while (i < e && is_space(u[i]))
                i++;
            words += i < e;
            while (i < e && !is_space(u[i]))
                i++;
        }
        /* (the tests below that skip a line have no other effect, so their order does not matter) */
        if (words < min_words)
            continue;
        int bracket = 0;
        for (Py_ssize_t i = s; i < e; i++)
            bracket |= u[i] == '[';
        Py_UCS4 *line = out + o + (o > 0); /* after the line break that joins it to the kept text */
        Py_ssize_t n = e - s;
        if (bracket)
            n = copy_without_citations(u, s, e, line);
        else
            memcpy(line, u + s, (size_t)n * sizeof(Py_UCS4));
        if (n == 0)
            continue;
        Py_UCS4 last = line[n - 1];
        if (last != '.' && last != '?' && last != '!' && last != '"' && last != '\'')
            continue;
        if (n >= 3 && line[n - 2] == '.' && line[n - 3] == '.' && last == '.')
            continue;
        int marks = c4_marks(low, fold_lower(line, n, low));
        if (lorem_at < 0 && (marks & C4_LOREM))
            lorem_at = index;
        if (marks & C4_JAVASCRIPT)
            continue;
        if (curly_at < 0 && (marks & C4_CURLY))
            curly_at = index;
        if (marks & C4_POLICY)
            continue;
        if (enough < 0 || sentences < enough)
            sentences += 1 + sentence_ends(line, n);
        if (o > 0)
            out[o++] = '\n';
        o += n;
    }
    Py_ssize_t a = 0;
    while (a < o && is_space(out[a]))
        a++;
    while (o > a && is_space(out[o - 1]))
        o--;
    PyObject *kept = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, out + a, o - a);
    if (kept == NULL)
        return NULL;
    return Py_BuildValue("(Nnnn)", kept, sentences, lorem_at, curly_at);
}

static CodeSet terminal = {NULL, {0, 0}, NULL, 0};

PyDoc_STRVAR(fineweb_counts_doc,
             "fineweb_counts(text, terminal, short) -> (lines, punct_lines, short_lines, dup_chars)\n\n"
             "Over the lines of text.split('\\n') that hold more than white space: their number, those\n"
             "ending in a character of `terminal`, those of at most `short` characters, and the characters\n"
             "of the lines equal to an earlier one. As quality.fineweb_counts_reference.");

static PyObject *fineweb_counts(PyObject *self, PyObject *args) {
    PyObject *text, *stops;
    Py_ssize_t short_line;
    if (!PyArg_ParseTuple(args, "OOn:fineweb_counts", &text, &stops, &short_line))
        return NULL;
    Text t;
    if (text_get(text, "fineweb_counts", &t) < 0 || codeset_get(stops, &terminal) < 0)
        return NULL;
    Py_ssize_t len = t.len;
    if (len > (Py_ssize_t)UINT32_MAX) {
        PyErr_Format(PyExc_ValueError, "fineweb_counts: texts over %zd characters are not supported",
                     (Py_ssize_t)UINT32_MAX);
        return NULL;
    }
    const Py_UCS4 *u = as_ucs4(text, len, 2);
    uint64_t *spans = scratch(0, len + 1); /* per line kept: start << 32 | length */
    if (u == NULL || spans == NULL)
        return NULL;
    Py_ssize_t lines = 0, punct_lines = 0, short_lines = 0, dup_chars = 0;
    for (Py_ssize_t s = 0; s <= len;) {
        Py_ssize_t e = s;
        while (e < len && u[e] != '\n')
            e++;
        Py_ssize_t i = s;
        while (i < e && is_space(u[i]))
            i++;
        if (i < e) {
            punct_lines += codeset_has(&terminal, u[e - 1]);
            short_lines += e - s <= short_line;
            spans[lines++] = (uint64_t)s << 32 | (uint64_t)(e - s);
        }
        s = e + 1;
    }
    if (lines > 1) { /* duplicates: a table of line hashes, contents compared on equal hashes */
        if (table_start(lines) < 0)
            return NULL;
        for (Py_ssize_t k = 0; k < lines; k++) {
            Py_ssize_t s = (Py_ssize_t)(spans[k] >> 32), n = (Py_ssize_t)(spans[k] & 0xFFFFFFFFU);
            /* (the length and at most 16 characters at each end: contents are compared anyway) */
            uint64_t h = 0xCBF29CE484222325ULL ^ (uint64_t)n;
            for (Py_ssize_t i = 0; i < n && i < 16; i++)
                h = (h ^ u[s + i]) * 0x100000001B3ULL;
            for (Py_ssize_t i = n > 32 ? n - 16 : 16; i < n; i++)
                h = (h ^ u[s + i]) * 0x100000001B3ULL;
            Py_ssize_t slot = (Py_ssize_t)((h * NGRAM_MIX) >> table_shift);
            for (;;) {
                Slot *sl = &table[slot];
                if (sl->stamp != table_stamp) {
                    sl->stamp = table_stamp;
                    sl->key = h;
                    table_first[slot] = (uint32_t)k;
                    break;
                }
                uint64_t other = spans[table_first[slot]];
                if (sl->key == h && (Py_ssize_t)(other & 0xFFFFFFFFU) == n &&
                    memcmp(u + (other >> 32), u + s, (size_t)n * sizeof(Py_UCS4)) == 0) {
                    dup_chars += n;
                    break;
                }
                slot = (slot + 1) & table_mask;
            }
        }
    }
    return Py_BuildValue("(nnnn)", lines, punct_lines, short_lines, dup_chars);
}

/* ------------------------------------------------------------------ MinHash (dedup) */

static uint32_t crc_table[256];
static uint32_t crc_slice[4][256]; /* slicing by four: crc_slice[k][b] = b's CRC moved k bytes on */

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320U ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
    for (int i = 0; i < 256; i++) {
        crc_slice[0][i] = crc_table[i];
        for (int k = 1; k < 4; k++)
            crc_slice[k][i] = crc_table[crc_slice[k - 1][i] & 0xFF] ^ (crc_slice[k - 1][i] >> 8);
    }
}

/* CRC-32 (ISO-HDLC, as zlib.crc32 with its default start value). */
static inline uint32_t crc32_of(const unsigned char *p, Py_ssize_t len) {
    uint32_t c = 0xFFFFFFFFU;
    for (Py_ssize_t i = 0; i < len; i++)
        c = crc_table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFU;
}

PyDoc_STRVAR(word_crc32_doc,
             "word_crc32(words) -> bytes\n\n"
             "Per word, zlib.crc32 of its UTF-8 encoding as a uint64 (the array dedup.word_hashes builds).");

static PyObject *word_crc32(PyObject *self, PyObject *words) {
    PyObject *seq = PySequence_Fast(words, "word_crc32: expected a list of words");
    if (seq == NULL)
        return NULL;
    Py_ssize_t len = PySequence_Fast_GET_SIZE(seq);
    PyObject *out = PyBytes_FromStringAndSize(NULL, len * 8);
    if (out == NULL) {
        Py_DECREF(seq);
        return NULL;
    }
    unsigned char *po = (unsigned char *)PyBytes_AS_STRING(out);
    for (Py_ssize_t i = 0; i < len; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyUnicode_Check(item)) {
            PyErr_Format(PyExc_TypeError, "word_crc32: word %zd is %.80s, not str", i, Py_TYPE(item)->tp_name);
            goto fail;
        }
        Py_ssize_t size;
        const char *utf8 = PyUnicode_AsUTF8AndSize(item, &size); /* raises on lone surrogates, as encode() */
        if (utf8 == NULL)
            goto fail;
        uint64_t c = crc32_of((const unsigned char *)utf8, size);
        memcpy(po + 8 * i, &c, 8);
    }
    Py_DECREF(seq);
    return out;
fail:
    Py_DECREF(seq);
    Py_DECREF(out);
    return NULL;
}

static inline uint32_t crc32_byte(uint32_t c, unsigned char b) { return crc_table[(c ^ b) & 0xFF] ^ (c >> 8); }

/* A small set of code points: a bitmap for ASCII, a list for the rest. */
typedef struct {
    uint64_t ascii[2];
    Py_UCS4 other[64];
    int n_other;
} CharSet;

static int charset_make(PyObject *chars, CharSet *set) {
    memset(set, 0, sizeof(*set));
    if (PyUnicode_READY(chars) < 0)
        return -1;
    Py_ssize_t len = PyUnicode_GET_LENGTH(chars);
    int kind = PyUnicode_KIND(chars);
    const void *data = PyUnicode_DATA(chars);
    for (Py_ssize_t i = 0; i < len; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c < 128) {
            set->ascii[c >> 6] |= 1ULL << (c & 63);
        } else if (set->n_other < 64) {
            set->other[set->n_other++] = c;
        } else {
            PyErr_SetString(PyExc_ValueError, "text_crc32: at most 64 characters beyond ASCII to strip");
            return -1;
        }
    }
    return 0;
}

static inline int charset_has(const CharSet *set, Py_UCS4 c) {
    if (c < 128)
        return (int)((set->ascii[c >> 6] >> (c & 63)) & 1);
    for (int i = 0; i < set->n_other; i++)
        if (set->other[i] == c)
            return 1;
    return 0;
}

PyDoc_STRVAR(text_crc32_doc,
             "text_crc32(text, strip) -> bytes\n\n"
             "Per white-space token of `text` (as str.split() cuts it) with the characters of `strip`\n"
             "removed from both ends (as str.strip(strip); tokens left empty are dropped), zlib.crc32 of\n"
             "its UTF-8 encoding as a uint64: word_crc32 of those tokens, without making them. Lone\n"
             "surrogates raise UnicodeEncodeError, as str.encode() does.");

/* The CRC of the UTF-8 encoding of u[start, end) continued from `c` (not inverted): four ASCII
   characters at a time where they come in a row, else byte by byte. -1 for a lone surrogate. */
static int64_t crc_utf8(const Py_UCS4 *u, Py_ssize_t start, Py_ssize_t end, uint32_t c) {
    Py_ssize_t j = start;
    while (j < end) {
        if (j + 4 <= end && (u[j] | u[j + 1] | u[j + 2] | u[j + 3]) < 0x80) {
            c ^= u[j] | u[j + 1] << 8 | u[j + 2] << 16 | u[j + 3] << 24;
            c = crc_slice[3][c & 0xFF] ^ crc_slice[2][(c >> 8) & 0xFF] ^ crc_slice[1][(c >> 16) & 0xFF] ^
                crc_slice[0][c >> 24];
            j += 4;
            continue;
        }
        Py_UCS4 ch = u[j++];
        if (ch < 0x80) {
            c = crc32_byte(c, (unsigned char)ch);
        } else if (ch < 0x800) {
            c = crc32_byte(c, (unsigned char)(0xC0 | (ch >> 6)));
            c = crc32_byte(c, (unsigned char)(0x80 | (ch & 0x3F)));
        } else if (ch < 0x10000) {
            if (ch >= 0xD800 && ch <= 0xDFFF)
                return -1;
            c = crc32_byte(c, (unsigned char)(0xE0 | (ch >> 12)));
            c = crc32_byte(c, (unsigned char)(0x80 | ((ch >> 6) & 0x3F)));
            c = crc32_byte(c, (unsigned char)(0x80 | (ch & 0x3F)));
        } else {
            c = crc32_byte(c, (unsigned char)(0xF0 | (ch >> 18)));
            c = crc32_byte(c, (unsigned char)(0x80 | ((ch >> 12) & 0x3F)));
            c = crc32_byte(c, (unsigned char)(0x80 | ((ch >> 6) & 0x3F)));
            c = crc32_byte(c, (unsigned char)(0x80 | (ch & 0x3F)));
        }
    }
    return (int64_t)c;
}

static PyObject *text_crc32(PyObject *self, PyObject *args) {
    PyObject *text, *strip;
    CharSet set;
    if (!PyArg_ParseTuple(args, "UU:text_crc32", &text, &strip) || charset_make(strip, &set) < 0 ||
        PyUnicode_READY(text) < 0)
        return NULL;
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    uint64_t *out = scratch(0, len / 2 + 1); /* tokens are separated: at most (len + 1) / 2 */
    const Py_UCS4 *u = as_ucs4(text, len, 1); /* (one pass, then plain array reads) */
    if (out == NULL || u == NULL)
        return NULL;
    Py_ssize_t count = 0, i = 0;
    while (i < len) {
        while (i < len && is_space(u[i]))
            i++;
        Py_ssize_t start = i;
        while (i < len && !is_space(u[i]))
            i++;
        Py_ssize_t end = i;
        while (start < end && charset_has(&set, u[start]))
            start++;
        while (end > start && charset_has(&set, u[end - 1]))
            end--;
        if (start == end)
            continue;
        int64_t c = crc_utf8(u, start, end, 0xFFFFFFFFU);
        if (c < 0) { /* a lone surrogate: let the codec raise its own error */
            PyObject *word = PyUnicode_Substring(text, start, end);
            PyObject *encoded = word == NULL ? NULL : PyUnicode_AsUTF8String(word);
            Py_XDECREF(word);
            Py_XDECREF(encoded);
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_UnicodeEncodeError, "text_crc32: a surrogate in the text");
            return NULL;
        }
        out[count++] = (uint64_t)((uint32_t)c ^ 0xFFFFFFFFU);
    }
    return PyBytes_FromStringAndSize((const char *)out, count * 8);
}

static inline uint64_t splitmix(uint64_t x) {
    x = (x ^ (x >> 30)) * SPLITMIX_1;
    x = (x ^ (x >> 27)) * SPLITMIX_2;
    return x ^ (x >> 31);
}

/* mins[k] = min(mins[k], a[k] * x + b[k]) over the shingles: the hot loop, vectorised where the
   compiler can (64-bit lane multiplies and unsigned minima: AVX-512 on x86-64, chosen at load time). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
__attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#endif
static void minhash_loop(const uint64_t *restrict xs, Py_ssize_t m, const uint64_t *restrict a,
                         const uint64_t *restrict b, uint64_t *restrict mins, Py_ssize_t k) {
    for (Py_ssize_t j = 0; j < k; j++)
        mins[j] = UINT64_MAX;
    for (Py_ssize_t i = 0; i < m; i++) {
        const uint64_t x = xs[i];
        for (Py_ssize_t j = 0; j < k; j++) {
            const uint64_t v = a[j] * x + b[j];
            mins[j] = v < mins[j] ? v : mins[j];
        }
    }
}

PyDoc_STRVAR(minhash_doc,
             "minhash(hashes, a, b, out, ngram, poly) -> None\n\n"
             "Fills `out` (writable, len(a) uint64) with the MinHash signature of the word hashes: shingles\n"
             "are the polynomial (base `poly`) of each `ngram` consecutive hashes (one shingle of all of\n"
             "them for fewer words) plus their number, through splitmix64's finaliser; out[k] = (min of\n"
             "a[k] * shingle + b[k] mod 2^64) >> 32, or 2^32 - 1 without words. As dedup.signature.");

static PyObject *minhash(PyObject *self, PyObject *args) {
    PyObject *h_obj, *a_obj, *b_obj, *out_obj;
    Py_ssize_t ngram;
    unsigned long long poly;
    Array64 h, a, b, out;
    if (!PyArg_ParseTuple(args, "OOOOnK:minhash", &h_obj, &a_obj, &b_obj, &out_obj, &ngram, &poly))
        return NULL;
    if (ngram < 1) {
        PyErr_Format(PyExc_ValueError, "ngram must be at least 1, got %zd", ngram);
        return NULL;
    }
    if (array64_get(h_obj, &h, "hashes", 0) < 0)
        return NULL;
    if (array64_get(a_obj, &a, "a", 0) < 0) {
        PyBuffer_Release(&h.view);
        return NULL;
    }
    if (array64_get(b_obj, &b, "b", 0) < 0) {
        PyBuffer_Release(&h.view);
        PyBuffer_Release(&a.view);
        return NULL;
    }
    if (array64_get(out_obj, &out, "out", 1) < 0) {
        PyBuffer_Release(&h.view);
        PyBuffer_Release(&a.view);
        PyBuffer_Release(&b.view);
        return NULL;
    }
    PyObject *result = NULL;
    Py_ssize_t k = a.len;
    if (b.len != k || out.len != k) {
        PyErr_Format(PyExc_ValueError, "a, b and out must have the same length (got %zd, %zd and %zd)", a.len,
                     b.len, out.len);
        goto done;
    }
    unsigned char *po = (unsigned char *)out.view.buf;
    if (h.len == 0) {
        for (Py_ssize_t j = 0; j < k; j++) {
            uint64_t v = 0xFFFFFFFFULL;
            memcpy(po + 8 * j, &v, 8);
        }
        result = Py_None;
        Py_INCREF(result);
        goto done;
    }
    Py_ssize_t n = ngram < h.len ? ngram : h.len;
    Py_ssize_t m = h.len - n + 1;
    uint64_t *xs = scratch(0, m);
    uint64_t *ab = scratch(1, 3 * k); /* aligned copies of a, b and the minima */
    if (xs == NULL || ab == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < m; i++) {
        uint64_t g = load64(h.data, i);
        for (Py_ssize_t j = 1; j < n; j++)
            g = g * (uint64_t)poly + load64(h.data, i + j);
        xs[i] = splitmix(g + (uint64_t)n);
    }
    memcpy(ab, a.data, (size_t)k * 8);
    memcpy(ab + k, b.data, (size_t)k * 8);
    minhash_loop(xs, m, ab, ab + k, ab + 2 * k, k);
    for (Py_ssize_t j = 0; j < k; j++) {
        uint64_t v = ab[2 * k + j] >> 32;
        memcpy(po + 8 * j, &v, 8);
    }
    result = Py_None;
    Py_INCREF(result);
done:
    PyBuffer_Release(&h.view);
    PyBuffer_Release(&a.view);
    PyBuffer_Release(&b.view);
    PyBuffer_Release(&out.view);
    return result;
}

/* ------------------------------------------------------------------ module */

static PyMethodDef methods[] = {
    {"tokens", (PyCFunction)tokens, METH_O, tokens_doc},
    {"tokens_counted", (PyCFunction)tokens_counted, METH_VARARGS, tokens_counted_doc},
    {"count_chunks", (PyCFunction)count_chunks, METH_O, count_chunks_doc},
    {"word_ids", (PyCFunction)word_ids, METH_O, word_ids_doc},
    {"top_ngram", (PyCFunction)top_ngram, METH_VARARGS, top_ngram_doc},
    {"longest_ngram", (PyCFunction)longest_ngram, METH_VARARGS, longest_ngram_doc},
    {"repeat_cover", (PyCFunction)repeat_cover, METH_VARARGS, repeat_cover_doc},
    {"duplicated_chars", (PyCFunction)(void (*)(void))duplicated_chars, METH_VARARGS | METH_KEYWORDS,
     duplicated_chars_doc},
    {"pii_hints", (PyCFunction)pii_hints, METH_O, pii_hints_doc},
    {"html_hints", (PyCFunction)html_hints, METH_O, html_hints_doc},
    {"gopher_counts", (PyCFunction)gopher_counts, METH_VARARGS, gopher_counts_doc},
    {"c4_filter", (PyCFunction)c4_filter, METH_VARARGS, c4_filter_doc},
    {"fineweb_counts", (PyCFunction)fineweb_counts, METH_VARARGS, fineweb_counts_doc},
    {"word_crc32", (PyCFunction)word_crc32, METH_O, word_crc32_doc},
    {"text_crc32", (PyCFunction)text_crc32, METH_VARARGS, text_crc32_doc},
    {"minhash", (PyCFunction)minhash, METH_VARARGS, minhash_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "data_governance._speedups",
    "Compiled n-gram statistics, text passes and MinHash for the fast curation path; the Python and\n"
    "numpy code in data_governance.quality and data_governance.dedup is the reference they equal.",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__speedups(void) {
    crc_init();
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObject(m, "NGRAM_MIX", PyLong_FromUnsignedLongLong(NGRAM_MIX)) < 0 ||
        PyModule_AddObject(m, "NGRAM_ROLL", PyLong_FromUnsignedLongLong(NGRAM_ROLL)) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
