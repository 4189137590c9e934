// What native/tree-stat.c shares with native/tree-check.c: an entry's recorded fields and the
// Node-API values both hand back.

#ifndef ENVPACK_TREE_STAT_H
#define ENVPACK_TREE_STAT_H

#include <node_api.h>
#include <stddef.h>
#include <sys/stat.h>

/**
 * An entry's fields as package-tree.ts's strictFields writes them (`\0mode\0size\0ino\0ms\n`).
 * Returns the length, or -1 when JavaScript would print a number differently (beyond 2^53).
 */
int strict_fields(const struct stat *info, char *out, size_t size);

/** A string argument as UTF-8 (malloc'd, NUL-terminated; `length` without the NUL), or NULL. */
char *string_arg(napi_env env, napi_value value, size_t *length);

napi_value undefined_value(napi_env env);
napi_value boolean_value(napi_env env, int value);

#endif
