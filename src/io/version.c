/* version.c — version strings (kept in one object so only it depends on -DPARE_GIT_COMMIT). */
#include "io/version.h"

#ifndef PARE_GIT_COMMIT
#define PARE_GIT_COMMIT "unknown"
#endif

const char *pare_version(void) { return PARE_VERSION; }
const char *pare_git_commit(void) { return PARE_GIT_COMMIT[0] ? PARE_GIT_COMMIT : "unknown"; }
