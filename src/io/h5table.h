/* h5table.h — HDF5 result tables: one file per experiment, one extendable compound dataset per table.
 *
 * A results file holds provenance attributes on its root group ("/") and one dataset per table at
 * "/<table>": a 1-D, chunked, unlimited dataset of a compound type whose members are the table's
 * columns.
 *
 * Durability: a writer works on an in-memory image of the file (HDF5's core driver) and commits it
 * whole after every row, table and drop (io/atomic.h: a temporary file, fsync, rename). So the file
 * on disk is always a complete HDF5 file: a run killed at any point (kill -9 included, in the first
 * milliseconds of a new file too) leaves the last committed file, a rerun resumes from it, and
 * readers (`pare table`, h5py) never see a torn write. A failed commit (a full disk) leaves the file
 * as it was and rolls the image back, so the failed row is not recorded anywhere. Attribute changes
 * are committed with the next row or table, by pare_h5_commit, or at close.
 * Writers hold a lock of pare's own (io/atomic.h), so a second writer of the same file gets an
 * error naming the first one's pid; readers take no lock.
 *
 * Column types on disk (all read cleanly by h5py and h5dump):
 *     PARE_COL_INT    64-bit signed integer (H5T_STD_I64LE)        missing: INT64_MIN
 *     PARE_COL_FLOAT  64-bit IEEE float (H5T_IEEE_F64LE)           missing: NaN
 *     PARE_COL_STR    variable-length UTF-8 string                 missing: ""
 *     PARE_COL_BOOL   enum of int8 {FALSE=0, TRUE=1} (h5py: bool)  missing: FALSE
 * Each column may carry a unit and a label; they are stored as string attributes on the dataset,
 * "unit:<col>" and "label:<col>" (h5py: d.attrs["unit:latency"]).
 *
 * What this does not do: it knows nothing about Lua or plots, and it never interprets values.
 *
 *     pare_h5_file *f;
 *     PARE_TRY(pare_h5_open(&f, "results/x.h5", PARE_H5_APPEND));
 *     pare_col cols[2] = {{"bits", PARE_COL_INT, "", "weight bits"}, {"acc", PARE_COL_FLOAT, "", ""}};
 *     PARE_TRY(pare_h5_table_create(f, "sweep", cols, 2));
 *     pare_cell row[2] = {{.i = 4}, {.f = 0.91}};
 *     PARE_TRY(pare_h5_append(f, "sweep", row));      // written and flushed
 *     pare_table t;  PARE_TRY(pare_h5_table_read(f, "sweep", &t));  ...  pare_table_free(&t);
 *     pare_h5_close(f);
 */
#ifndef PARE_H5TABLE_H
#define PARE_H5TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef enum pare_col_type { PARE_COL_INT = 0, PARE_COL_FLOAT, PARE_COL_STR, PARE_COL_BOOL, PARE_COL_TYPE_COUNT } pare_col_type;

#define PARE_COL_NAME_MAX 64
#define PARE_COL_UNIT_MAX 32
#define PARE_COL_LABEL_MAX 128
#define PARE_TABLE_MAX_COLS 256

typedef struct pare_col {
    char name[PARE_COL_NAME_MAX];
    pare_col_type type;
    char unit[PARE_COL_UNIT_MAX];   /* "" if none */
    char label[PARE_COL_LABEL_MAX]; /* "" if none */
} pare_col;

/* One value; which member is meaningful is given by its column's type. */
typedef union pare_cell {
    int64_t i; /* PARE_COL_INT */
    double f;  /* PARE_COL_FLOAT */
    char *s;   /* PARE_COL_STR (NUL-terminated UTF-8; never NULL in a table read back) */
    int8_t b;  /* PARE_COL_BOOL (0 or 1) */
} pare_cell;

/* A table held in memory: cells (nrows, ncols), row-major. Strings are owned by the table. */
typedef struct pare_table {
    char name[PARE_COL_NAME_MAX];
    int ncols;
    pare_col *cols;   /* (ncols) */
    int64_t nrows;
    pare_cell *cells; /* (nrows, ncols) */
} pare_table;

typedef struct pare_h5_file pare_h5_file;

typedef enum pare_h5_mode {
    PARE_H5_READ = 0, /* existing file, read-only (no file lock, so a running experiment's file can be read) */
    PARE_H5_APPEND,   /* read-write; created (with missing parent directories) if absent */
    PARE_H5_FRESH,    /* read-write, starting empty: an existing file is replaced (atomically) at open */
} pare_h5_mode;

/* Open a results file. A missing file (READ), a file that is not HDF5 or is damaged, unreadable,
 * read-only (for writing) or locked by another writer: PARE_EIO / PARE_EFORMAT with a message naming
 * the path and the reason. A writer's file is checked whole at open. HDF5's own error printing is
 * silenced. */
pare_status pare_h5_open(pare_h5_file **out, const char *path, pare_h5_mode mode);
/* Commit pending attribute changes (a no-op when there are none). */
pare_status pare_h5_commit(pare_h5_file *f);
/* Commit what is pending, close, release the lock. NULL is fine. The status is that of the commit. */
pare_status pare_h5_close(pare_h5_file *f);
const char *pare_h5_path(const pare_h5_file *f);

/* Table names of the file, sorted; *names is one malloc'd block (free(*names) frees all). */
pare_status pare_h5_table_names(pare_h5_file *f, char ***names, int *n);
/* 1 if the table exists, 0 if not. */
int pare_h5_table_exists(pare_h5_file *f, const char *table);
/* Create an empty table. PARE_EINVAL if it exists, if a name is invalid or repeated, or ncols is 0. */
pare_status pare_h5_table_create(pare_h5_file *f, const char *table, const pare_col *cols, int ncols);
/* Remove a table (a derived summary rewritten on every run). PARE_EINVAL if it does not exist or the
 * file is read-only. HDF5 does not shrink the file; the space is reused by later writes. */
pare_status pare_h5_table_drop(pare_h5_file *f, const char *table);
/* Columns and row count of an existing table. *cols is malloc'd (free it). */
pare_status pare_h5_table_info(pare_h5_file *f, const char *table, pare_col **cols, int *ncols, int64_t *nrows);
/* Append one row (cells in column order; a NULL string is written as "") and commit the file. */
pare_status pare_h5_append(pare_h5_file *f, const char *table, const pare_cell *row);
/* Read a whole table. Free with pare_table_free. */
pare_status pare_h5_table_read(pare_h5_file *f, const char *table, pare_table *out);
void pare_table_free(pare_table *t); /* safe twice */
/* Index of a column by name, or -1. */
int pare_table_col(const pare_table *t, const char *name);
/* 1 if the cell holds the missing marker of its type (INT64_MIN, NaN, ""); booleans are never missing. */
int pare_cell_is_missing(pare_col_type type, pare_cell c);
/* The missing marker of a type. */
pare_cell pare_cell_missing(pare_col_type type);
/* "int64", "float64", "string", "bool". */
const char *pare_col_type_name(pare_col_type t);

/* Names of tables, columns, experiments and plots: 1..63 characters of [A-Za-z0-9_.+-], not
 * starting with '.' or '-' (they become HDF5 link names, file names and gnuplot columns). */
int pare_name_ok(const char *name);

/* Attributes on an object ("/" for the file, or a table name). Strings are variable-length UTF-8. */
pare_status pare_h5_attr_set_str(pare_h5_file *f, const char *obj, const char *key, const char *value);
pare_status pare_h5_attr_set_i64(pare_h5_file *f, const char *obj, const char *key, int64_t value);
pare_status pare_h5_attr_set_f64(pare_h5_file *f, const char *obj, const char *key, double value);
/* Read an attribute of any scalar type as text ("42", "0.5", "abc") into a malloc'd string.
 * PARE_EINVAL if absent. */
pare_status pare_h5_attr_get(pare_h5_file *f, const char *obj, const char *key, char **value);
/* Attribute names of an object, in creation order; one malloc'd block like pare_h5_table_names. */
pare_status pare_h5_attr_names(pare_h5_file *f, const char *obj, char ***names, int *n);

/* mkdir -p of the directory part of path ("plots/x.gp" creates plots/). */
pare_status pare_make_parent_dirs(const char *path);

/* HDF5 library version "1.10.8". */
const char *pare_h5_libversion(char *buf, size_t n);

#endif
