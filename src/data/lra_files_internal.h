/* lra_files_internal.h — private to the files of lra_files.h (lra_files.c, fortunes.c, lra_text.c,
 * lra_retrieval.c, lra_image.c, lra_pathfinder.c): the small file utilities they share, defined in
 * lra_files.c. They were one file (lra_files.c) and are split along its sections. Not for tasks
 * outside these files (they use lra_files.h) nor for tests.
 */
#ifndef PARE_LRA_FILES_INTERNAL_H
#define PARE_LRA_FILES_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "data/lra_files.h"
#include "data/task_impl.h"

/* A list of file names (each strdup'ed; free with pare_lra_names_free_). */
typedef struct pare_name_list { char **v; int64_t n, cap; } pare_name_list;

int pare_lra_is_dir_(const char *p);  /* p names a directory (following links) */
int pare_lra_is_file_(const char *p); /* p names a regular file (following links) */
int pare_lra_ends_with_(const char *s, const char *suf);
/* Free the names and zero the list. */
void pare_lra_names_free_(pare_name_list *l);
/* Regular files in dir whose names end with suffix (not starting with '.'), in version order, filtered
 * by keep when not NULL. PARE_EIO if dir cannot be opened (errno kept in *err), nothing reported then. */
pare_status pare_lra_list_files_(pare_name_list *out, const char *dir, const char *suffix, int (*keep)(const char *),
                                 int *err);
/* The whole file into *buf (pare_free; NUL-terminated, *len without it). */
pare_status pare_lra_read_all_(char **buf, size_t *len, const char *path);
/* 1-based line number of byte offset off in s. */
long long pare_lra_line_of_(const char *s, size_t off);
/* PARE_EINVAL naming the task and what option path should name when it is empty, else PARE_OK. */
pare_status pare_lra_need_path_(const pare_options *o, const char *task, const char *what);

#endif
