/* fuzz_h5table.c — the HDF5 results-table reader behind `pare table` and pare.table (src/io/h5table.c),
 * through its public API only (src/io/h5table.h): open READ, table_names, table_exists, table_info,
 * table_read, attr_names, attr_get, close.
 *
 * The input is the whole file. HDF5 parses it (libhdf5 is not instrumented; the interceptors of
 * memcpy, malloc and friends still check what it writes into pare's buffers); pare must turn every
 * failure into a status. A table read back has its declared shape and no NULL string, and after
 * pare_h5_close no HDF5 identifier pare opened is left open (files, groups, datasets, attributes,
 * datatypes, dataspaces, property lists — counted with H5Inmembers: a handle leak LSan cannot see,
 * since HDF5 keeps every open identifier reachable).
 * A crash whose stack is inside libhdf5 alone is an upstream HDF5 bug: docs/testing.md says how to
 * tell and what to do. The seeds (fuzz/corpus/h5table/) are written by fuzz/gen_seeds.c. */
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

static const H5I_type_t id_types[] = {H5I_FILE, H5I_GROUP, H5I_DATATYPE, H5I_DATASPACE, H5I_DATASET, H5I_ATTR,
                                      H5I_GENPROP_LST};
#define NTYPES (sizeof id_types / sizeof id_types[0])

static void count_ids(hsize_t *n)
{
    for (size_t i = 0; i < NTYPES; i++) {
        n[i] = 0;
        H5Inmembers(id_types[i], &n[i]);
    }
}

static void read_attrs(pare_h5_file *f, const char *obj)
{
    char **names = NULL;
    int n = 0;
    if (pare_h5_attr_names(f, obj, &names, &n) != PARE_OK) return;
    for (int i = 0; i < n; i++) {
        char *v = NULL;
        if (pare_h5_attr_get(f, obj, names[i], &v) == PARE_OK) FUZZ_ASSERT(v != NULL);
        free(v);
    }
    FUZZ_ASSERT(names[n] == NULL);
    free(names);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512];
    fuzz_write(fuzz_path(path, sizeof path, "in.h5"), data, size);
    static int init;
    if (!init) H5open(), init = 1; /* the library's own identifiers (predefined types) exist before counting */
    hsize_t before[NTYPES], after[NTYPES];
    count_ids(before);
    pare_h5_file *f = NULL;
    if (pare_h5_open(&f, path, PARE_H5_READ) != PARE_OK) {
        FUZZ_ASSERT(f == NULL);
        count_ids(after);
        for (size_t i = 0; i < NTYPES; i++) FUZZ_ASSERT(after[i] == before[i]);
        return 0;
    }
    read_attrs(f, "/");
    char **names = NULL;
    int n = 0;
    if (pare_h5_table_names(f, &names, &n) == PARE_OK) {
        for (int i = 0; i < n; i++) {
            (void)pare_h5_table_exists(f, names[i]);
            pare_col *cols = NULL;
            int ncols = 0;
            int64_t nrows = 0;
            if (pare_h5_table_info(f, names[i], &cols, &ncols, &nrows) == PARE_OK)
                FUZZ_ASSERT(ncols >= 1 && ncols <= PARE_TABLE_MAX_COLS && nrows >= 0);
            free(cols);
            pare_table t;
            if (pare_h5_table_read(f, names[i], &t) == PARE_OK) {
                FUZZ_ASSERT(t.ncols >= 1 && t.nrows >= 0 && (t.nrows == 0 || t.cells));
                for (int64_t r = 0; r < t.nrows; r++)
                    for (int j = 0; j < t.ncols; j++) {
                        pare_cell c = t.cells[r * t.ncols + j];
                        if (t.cols[j].type == PARE_COL_STR) FUZZ_ASSERT(c.s != NULL);
                        (void)pare_cell_is_missing(t.cols[j].type, c);
                    }
                pare_table_free(&t);
            }
            read_attrs(f, names[i]);
        }
        free(names);
    }
    pare_h5_close(f);
    count_ids(after);
    for (size_t i = 0; i < NTYPES; i++) {
        if (after[i] != before[i]) fprintf(stderr, "HDF5 identifiers of type %d: %llu open before, %llu after\n",
                                           (int)id_types[i], (unsigned long long)before[i], (unsigned long long)after[i]);
        FUZZ_ASSERT(after[i] == before[i]);
    }
    return 0;
}
