/* fuzz_h5struct.c — the HDF5 table reader (src/io/h5table.c) on well-formed HDF5 files of every shape
 * pare did not write: the input does not become the file's bytes (fuzz_h5table does that, and mostly
 * finds libhdf5's own crashes); it chooses what a valid file holds, written with HDF5's API:
 *   - datasets named like tables (or not), compound or not, of rank 0 to 2, from 0 to 2^62 rows
 *     (chunked, mostly unwritten: HDF5 returns fill values), members of many HDF5 types (integers and
 *     floats of every size, fixed and variable strings, enums of other values and sizes, arrays,
 *     nested compounds, bitfields, opaque), duplicate and odd member names;
 *   - attributes on "/" and on the datasets (unit:<col>, label:<col>, others) of every type, scalar,
 *     arrays of several elements, or with a null dataspace.
 * Then the same reads as `pare table` (pare_h5_open READ, table_names, table_info, table_read,
 * attr_names, attr_get), with the same checks as fuzz_h5table: statuses, shapes, no NULL string, no
 * HDF5 identifier left open. pare may refuse a file it cannot read as results (a status and a
 * message); any crash here is pare's: the files are valid. */
#include <hdf5.h>

#include "fuzz_util.h"
#include "io/h5table.h"

/* pare_h5_open checks a file in a forked child first, so that a crash inside libhdf5 cannot take the
 * caller down; a crash there, pare's or HDF5's, would be invisible to libFuzzer. This definition
 * makes fork fail, and pare then checks the file in its own process (its documented fallback), where
 * the sanitizers and libFuzzer see everything. */
pid_t fork(void)
{
    errno = EAGAIN;
    return -1;
}

static const char *const names[] = {"sweep", "t", "empty", "a.b", "-x", "x y", "unit:acc", "sweep"};
static const char *const members[] = {"bits", "acc", "method", "ok", "x", "bits", "a:b", ""};
static const char *const strings[] = {"", "abc", NULL, "ünïcödé", "a\nb"};
static const hsize_t sizes[] = {0, 1, 2, 3, 1000, (hsize_t)1 << 31, (hsize_t)1 << 40, (hsize_t)1 << 62};

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define PICK(a, in) ((a)[fuzz_byte(in) % NELEMS(a)])

/* A datatype from the pool; *vlen set if it holds variable-length strings (written from pointers). */
static hid_t make_type(fuzz_in *in, int depth, int *vlen)
{
    unsigned k = fuzz_byte(in) % 16;
    hid_t t;
    switch (k) {
    case 0: return H5Tcopy(H5T_STD_I8LE);
    case 1: return H5Tcopy(H5T_STD_I16BE);
    case 2: return H5Tcopy(H5T_STD_U32LE);
    case 3: return H5Tcopy(H5T_STD_I64LE);
    case 4: return H5Tcopy(H5T_STD_U64LE);
    case 5: return H5Tcopy(H5T_IEEE_F32LE);
    case 6: return H5Tcopy(H5T_IEEE_F64BE);
    case 7:
        t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, H5T_VARIABLE);
        H5Tset_cset(t, H5T_CSET_UTF8);
        *vlen = 1;
        return t;
    case 8:
        t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, 1 + fuzz_byte(in) % 8);
        return t;
    case 9:
    case 10: { /* an int8 enum: pare's bool {FALSE=0, TRUE=1}, or other values */
        t = H5Tenum_create(H5T_NATIVE_INT8);
        int8_t a = 0, b = k == 9 ? 1 : (int8_t)fuzz_byte(in);
        H5Tenum_insert(t, "FALSE", &a);
        if (b != a) H5Tenum_insert(t, "TRUE", &b);
        return t;
    }
    case 11: {
        t = H5Tenum_create(H5T_NATIVE_INT16);
        int16_t a = 0, b = 1;
        H5Tenum_insert(t, "FALSE", &a);
        H5Tenum_insert(t, "TRUE", &b);
        return t;
    }
    case 12: {
        hsize_t d = 1 + fuzz_byte(in) % 3;
        return H5Tarray_create2(H5T_STD_I32LE, 1, &d);
    }
    case 13:
        if (depth < 2) {
            int v = 0;
            hid_t m = make_type(in, depth + 1, &v);
            if (v) { /* keep vlen data at the top level, where it is written from pointers */
                H5Tclose(m);
                m = H5Tcopy(H5T_STD_I32LE);
            }
            t = H5Tcreate(H5T_COMPOUND, H5Tget_size(m));
            H5Tinsert(t, "inner", 0, m);
            H5Tclose(m);
            return t;
        }
        return H5Tcopy(H5T_STD_I32LE);
    case 14: return H5Tcopy(H5T_STD_B8LE);
    default:
        t = H5Tcreate(H5T_OPAQUE, 4);
        H5Tset_tag(t, "pare-fuzz");
        return t;
    }
}

/* Fill n elements of type t (size sz) from the input; vlen strings point into `strings`. */
static void fill(void *buf, hid_t t, size_t sz, hsize_t n, fuzz_in *in)
{
    unsigned char *b = buf;
    for (hsize_t e = 0; e < n; e++, b += sz) {
        for (size_t i = 0; i < sz; i++) b[i] = (unsigned char)fuzz_byte(in);
        if (H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) > 0) {
            const char *s = PICK(strings, in);
            memcpy(b, &s, sizeof s);
        } else if (H5Tget_class(t) == H5T_COMPOUND) {
            for (int m = 0; m < H5Tget_nmembers(t); m++) {
                hid_t mt = H5Tget_member_type(t, (unsigned)m);
                if (H5Tget_class(mt) == H5T_STRING && H5Tis_variable_str(mt) > 0) {
                    const char *s = PICK(strings, in);
                    memcpy(b + H5Tget_member_offset(t, (unsigned)m), &s, sizeof s);
                }
                H5Tclose(mt);
            }
        }
    }
}

/* A dataspace: null, scalar, or simple of rank 1..2 (dims from `sizes`, unlimited when chunked). */
static hid_t make_space(fuzz_in *in, int allow_big, hsize_t *nelem, int *chunked)
{
    unsigned k = fuzz_byte(in) % 4;
    *chunked = 0;
    *nelem = k == 0 ? 0 : 1;
    if (k == 0) return H5Screate(H5S_NULL);
    if (k == 1) return H5Screate(H5S_SCALAR);
    int rank = k == 2 ? 1 : 2;
    hsize_t dims[2], maxd[2];
    for (int i = 0; i < rank; i++) {
        dims[i] = allow_big ? PICK(sizes, in) : fuzz_byte(in) % 4;
        maxd[i] = H5S_UNLIMITED;
        *nelem *= dims[i];
        if (dims[i] > 1000) *chunked = 1;
    }
    if (fuzz_byte(in) & 1) *chunked = 1;
    return H5Screate_simple(rank, dims, *chunked ? maxd : NULL);
}

static void make_attr(hid_t obj, const char *name, fuzz_in *in)
{
    int vlen = 0, chunked;
    hsize_t n;
    hid_t t = make_type(in, 0, &vlen), sp = make_space(in, 0, &n, &chunked);
    if (chunked) { /* attributes have no chunks: make it fixed-size */
        H5Sclose(sp);
        hsize_t d = 2;
        sp = H5Screate_simple(1, &d, NULL);
        n = 2;
    }
    hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0) {
        size_t sz = H5Tget_size(t);
        void *buf = calloc(n ? n : 1, sz);
        if (buf && n) {
            fill(buf, t, sz, n, in);
            H5Awrite(a, t, buf);
        }
        free(buf);
        H5Aclose(a);
    }
    H5Sclose(sp);
    H5Tclose(t);
}

static void make_dataset(hid_t file, fuzz_in *in)
{
    const char *name = PICK(names, in);
    int vlen = 0, chunked;
    hid_t t;
    if (fuzz_byte(in) % 8 == 0) {
        t = make_type(in, 0, &vlen); /* not a compound: not a table */
    } else {
        int nm = (int)(fuzz_byte(in) % 6);
        hid_t mt[8];
        size_t off = 0;
        for (int m = 0; m < nm; m++) {
            mt[m] = make_type(in, 1, &vlen);
            off += H5Tget_size(mt[m]);
        }
        t = H5Tcreate(H5T_COMPOUND, off ? off : 1);
        off = 0;
        for (int m = 0; m < nm; m++) {
            H5Tinsert(t, PICK(members, in), off, mt[m]); /* a repeated name fails: that member is absent */
            off += H5Tget_size(mt[m]);
            H5Tclose(mt[m]);
        }
    }
    hsize_t n;
    hid_t sp = make_space(in, 1, &n, &chunked);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (chunked && H5Sget_simple_extent_ndims(sp) > 0) {
        hsize_t c[2] = {1 + fuzz_byte(in) % 4, 1 + fuzz_byte(in) % 4};
        H5Pset_chunk(dcpl, H5Sget_simple_extent_ndims(sp), c);
    }
    hid_t d = H5Dcreate2(file, name, t, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (d >= 0) {
        size_t sz = H5Tget_size(t);
        if (n > 0 && n <= 64) { /* small ones are written; big ones stay fill values */
            void *buf = calloc(n, sz);
            if (buf) {
                fill(buf, t, sz, n, in);
                H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
            }
            free(buf);
        }
        int na = (int)(fuzz_byte(in) % 4);
        for (int i = 0; i < na; i++) {
            char an[80];
            unsigned k = fuzz_byte(in) % 3;
            snprintf(an, sizeof an, "%s%s", k == 0 ? "unit:" : k == 1 ? "label:" : "", PICK(members, in));
            if (H5Aexists(d, an) <= 0) make_attr(d, an, in);
        }
        H5Dclose(d);
    }
    H5Pclose(dcpl);
    H5Sclose(sp);
    H5Tclose(t);
}

static const H5I_type_t id_types[] = {H5I_FILE, H5I_GROUP, H5I_DATATYPE, H5I_DATASPACE, H5I_DATASET, H5I_ATTR,
                                      H5I_GENPROP_LST};
#define NTYPES NELEMS(id_types)

static void count_ids(hsize_t *n)
{
    for (size_t i = 0; i < NTYPES; i++) {
        n[i] = 0;
        H5Inmembers(id_types[i], &n[i]);
    }
}

static void read_attrs(pare_h5_file *f, const char *obj)
{
    char **an = NULL;
    int n = 0;
    if (pare_h5_attr_names(f, obj, &an, &n) != PARE_OK) return;
    for (int i = 0; i < n; i++) {
        char *v = NULL;
        if (pare_h5_attr_get(f, obj, an[i], &v) == PARE_OK) FUZZ_ASSERT(v != NULL);
        free(v);
    }
    free(an);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) H5open(), H5Eset_auto2(H5E_DEFAULT, NULL, NULL), init = 1;
    char path[512];
    fuzz_path(path, sizeof path, "gen.h5");
    fuzz_in in = {data, size};

    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    FUZZ_ASSERT(file >= 0);
    int nroot = (int)(fuzz_byte(&in) % 4);
    for (int i = 0; i < nroot; i++) {
        const char *an = PICK(members, &in);
        if (H5Aexists(file, an) <= 0) make_attr(file, an, &in);
    }
    int nd = 1 + (int)(fuzz_byte(&in) % 3);
    for (int i = 0; i < nd; i++) make_dataset(file, &in); /* a repeated name is not created */
    if (fuzz_byte(&in) & 1) {
        hid_t g = H5Gcreate2(file, "group", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (g >= 0) H5Gclose(g);
    }
    H5Fclose(file);

    hsize_t before[NTYPES], after[NTYPES];
    count_ids(before);
    pare_h5_file *f = NULL;
    /* pare may refuse a valid file it cannot read as a results file, with a message; never crash */
    if (pare_h5_open(&f, path, PARE_H5_READ) != PARE_OK) {
        FUZZ_ASSERT(f == NULL && pare_errmsg()[0]);
        count_ids(after);
        for (size_t i = 0; i < NTYPES; i++) FUZZ_ASSERT(after[i] == before[i]);
        return 0;
    }
    read_attrs(f, "/");
    char **tn = NULL;
    int n = 0;
    if (pare_h5_table_names(f, &tn, &n) == PARE_OK) {
        for (int i = 0; i < n; i++) {
            pare_col *cols = NULL;
            int ncols = 0;
            int64_t nrows = 0;
            if (pare_h5_table_info(f, tn[i], &cols, &ncols, &nrows) == PARE_OK)
                FUZZ_ASSERT(ncols >= 1 && ncols <= PARE_TABLE_MAX_COLS && nrows >= 0);
            free(cols);
            pare_table t;
            if (pare_h5_table_read(f, tn[i], &t) == PARE_OK) {
                FUZZ_ASSERT(t.ncols >= 1 && t.nrows >= 0 && (t.nrows == 0 || t.cells));
                for (int64_t r = 0; r < t.nrows; r++)
                    for (int j = 0; j < t.ncols; j++)
                        if (t.cols[j].type == PARE_COL_STR) FUZZ_ASSERT(t.cells[r * t.ncols + j].s != NULL);
                pare_table_free(&t);
            }
            read_attrs(f, tn[i]);
        }
        free(tn);
    }
    pare_h5_close(f);
    count_ids(after);
    for (size_t i = 0; i < NTYPES; i++) FUZZ_ASSERT(after[i] == before[i]);
    return 0;
}
