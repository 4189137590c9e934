// envpack's batch stats (Node-API): walks a package tree and stamps watched paths (a recorded
// walk is checked in tree-check.c), thousands of stats per call with no JavaScript object per
// entry. Each function gives exactly what src/scan/npm/package-tree.ts and
// src/api/build-fingerprint.ts compute in JavaScript, or `undefined` when it cannot be sure to (an
// error other than a missing path, a name that is not ASCII, a number JavaScript would print
// otherwise): the caller then computes it in JavaScript, which also throws the error as Node would.

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tree-stat.h"

/** The API's version: the JavaScript side loads only the one it was written for. */
#define TREE_STAT_VERSION 2

/** Integers a JavaScript number prints digit for digit (below 2^53). */
#define EXACT_LIMIT 9007199254740992.0

typedef struct {
  char *data;
  size_t length;
  size_t capacity;
} text_t;

static int text_reserve(text_t *text, size_t more) {
  if (text->length + more <= text->capacity) return 1;
  size_t capacity = text->capacity == 0 ? 4096 : text->capacity;
  while (capacity < text->length + more) capacity *= 2;
  char *data = realloc(text->data, capacity);
  if (data == NULL) return 0;
  text->data = data;
  text->capacity = capacity;
  return 1;
}

static int text_append(text_t *text, const char *bytes, size_t length) {
  if (!text_reserve(text, length)) return 0;
  memcpy(text->data + text->length, bytes, length);
  text->length += length;
  return 1;
}

/** Node 20's `mtimeMs`: seconds and nanoseconds as JavaScript adds them (lib/internal/fs/utils.js). */
static double mtime_ms(const struct stat *info) {
  return (double)info->st_mtim.tv_sec * 1000.0 +
         (double)info->st_mtim.tv_nsec / 1000000.0;
}

/** JavaScript's Math.round: the nearest integer, halves towards +Infinity. */
static double js_round(double x) {
  double down = floor(x);
  return x - down >= 0.5 ? down + 1.0 : down;
}

/** Whether a number prints in JavaScript as the C integer it holds. */
static int is_exact(double x) { return x > -EXACT_LIMIT && x < EXACT_LIMIT; }

/**
 * An entry's fields as package-tree.ts's strictFields writes them:
 * `\0mode\0size\0ino\0round(mtimeMs)\n`. Returns the length, or -1 when JavaScript would print a
 * number differently (beyond 2^53).
 */
int strict_fields(const struct stat *info, char *out, size_t size) {
  double ms = js_round(mtime_ms(info));
  if (!is_exact((double)info->st_size) || !is_exact((double)info->st_ino) ||
      !is_exact(ms))
    return -1;
  return snprintf(out, size, "%c%u%c%lld%c%llu%c%lld\n", 0,
                  (unsigned)info->st_mode, 0, (long long)info->st_size, 0,
                  (unsigned long long)info->st_ino, 0, (long long)ms);
}

char *string_arg(napi_env env, napi_value value, size_t *length) {
  size_t size;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &size) != napi_ok)
    return NULL;
  char *bytes = malloc(size + 1);
  if (bytes == NULL) return NULL;
  napi_get_value_string_utf8(env, value, bytes, size + 1, &size);
  *length = size;
  return bytes;
}

napi_value undefined_value(napi_env env) {
  napi_value result;
  napi_get_undefined(env, &result);
  return result;
}

napi_value boolean_value(napi_env env, int value) {
  napi_value result;
  napi_get_boolean(env, value, &result);
  return result;
}

typedef struct {
  text_t lines;  /* PackageTreeWalk.lines */
  text_t stamps; /* what packageTreeStamp hashes */
  char *rel;     /* the current directory's path relative to the root */
  size_t rel_length;
  size_t rel_capacity;
} walk_t;

static int compare_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_ascii(const char *name) {
  for (; *name != 0; name++)
    if ((unsigned char)*name >= 0x80) return 0;
  return 1;
}

/**
 * Adds one directory's entries (sorted; `node_modules` left out; directories entered, links not
 * followed) to the walk. Returns 0 for anything JavaScript must redo: an error, a name that is not
 * ASCII (JavaScript sorts UTF-16 units), a number past 2^53.
 */
static int walk_directory(walk_t *walk, int dir_fd) {
  DIR *dir = fdopendir(dir_fd);
  if (dir == NULL) {
    close(dir_fd);
    return 0;
  }
  char **names = NULL;
  size_t count = 0, capacity = 0;
  int ok = 1;
  struct dirent *entry;
  errno = 0;
  while (ok && (entry = readdir(dir)) != NULL) {
    const char *name = entry->d_name;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) continue;
    if (!is_ascii(name)) {
      ok = 0;
      break;
    }
    if (count == capacity) {
      capacity = capacity == 0 ? 32 : capacity * 2;
      char **grown = realloc(names, capacity * sizeof *names);
      if (grown == NULL) {
        ok = 0;
        break;
      }
      names = grown;
    }
    names[count] = strdup(name);
    if (names[count] == NULL) ok = 0;
    else count++;
  }
  if (ok && errno != 0) ok = 0;
  if (ok) qsort(names, count, sizeof *names, compare_names);
  size_t base_length = walk->rel_length;
  for (size_t i = 0; ok && i < count; i++) {
    const char *name = names[i];
    if (strcmp(name, "node_modules") == 0) continue;
    size_t name_length = strlen(name);
    size_t need = base_length + 1 + name_length + 1;
    if (need > walk->rel_capacity) {
      walk->rel_capacity = need * 2 + 256;
      char *grown = realloc(walk->rel, walk->rel_capacity);
      if (grown == NULL) {
        ok = 0;
        break;
      }
      walk->rel = grown;
    }
    size_t rel_length = base_length;
    if (base_length > 0) walk->rel[rel_length++] = '/';
    memcpy(walk->rel + rel_length, name, name_length);
    rel_length += name_length;
    walk->rel[rel_length] = 0;
    struct stat info;
    if (fstatat(dirfd(dir), name, &info, AT_SYMLINK_NOFOLLOW) != 0) {
      ok = 0;
      break;
    }
    char fields[128], stamp[128];
    int fields_length = strict_fields(&info, fields, sizeof fields);
    /* packageTreeStamp: `\0mode\0size\0floor(mtimeMs / 1000)\0ino\n`. */
    double seconds = floor(mtime_ms(&info) / 1000.0);
    int stamp_length =
        snprintf(stamp, sizeof stamp, "%c%u%c%lld%c%lld%c%llu\n", 0,
                 (unsigned)info.st_mode, 0, (long long)info.st_size, 0,
                 (long long)seconds, 0, (unsigned long long)info.st_ino);
    if (fields_length < 0 || !is_exact(seconds) ||
        !text_append(&walk->stamps, walk->rel, rel_length) ||
        !text_append(&walk->stamps, stamp, (size_t)stamp_length) ||
        !text_append(&walk->lines, walk->rel, rel_length) ||
        !text_append(&walk->lines, fields, (size_t)fields_length)) {
      ok = 0;
      break;
    }
    if (S_ISDIR(info.st_mode)) {
      int child = openat(dirfd(dir), name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      walk->rel_length = rel_length;
      ok = child >= 0 && walk_directory(walk, child);
      walk->rel_length = base_length;
    }
  }
  for (size_t i = 0; i < count; i++) free(names[i]);
  free(names);
  closedir(dir);
  return ok;
}

/**
 * walkTree(dir): [lines, stampText] as package-tree.ts's walkPackageTree builds them (the first
 * line, `.` and `dir`'s own fields through a link, included), or undefined for JavaScript to walk.
 */
static napi_value walk_tree(napi_env env, napi_callback_info callback) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, callback, &argc, argv, NULL, NULL);
  if (argc < 1) return undefined_value(env);
  size_t dir_length;
  char *dir = string_arg(env, argv[0], &dir_length);
  if (dir == NULL || strlen(dir) != dir_length) {
    free(dir);
    return undefined_value(env);
  }
  walk_t walk = {0};
  int ok = 0;
  struct stat info;
  char fields[128];
  int fields_length;
  if (stat(dir, &info) == 0 &&
      (fields_length = strict_fields(&info, fields, sizeof fields)) >= 0 &&
      text_append(&walk.lines, ".", 1) &&
      text_append(&walk.lines, fields, (size_t)fields_length) &&
      text_reserve(&walk.stamps, 1)) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ok = fd >= 0 && walk_directory(&walk, fd);
  }
  napi_value result = undefined_value(env);
  if (ok) {
    napi_value lines, stamps;
    /* Every name is ASCII: Latin-1 makes the same string, without decoding UTF-8. */
    napi_create_string_latin1(env, walk.lines.data, walk.lines.length, &lines);
    napi_create_string_latin1(env, walk.stamps.data, walk.stamps.length,
                              &stamps);
    napi_create_array_with_length(env, 2, &result);
    napi_set_element(env, result, 0, lines);
    napi_set_element(env, result, 1, stamps);
  }
  free(walk.lines.data);
  free(walk.stamps.data);
  free(walk.rel);
  free(dir);
  return result;
}

/**
 * stamps(paths): build-fingerprint.ts's stampOf for each path (stat through links, bigint:
 * `ino:size:mtimeNs:ctimeNs`, `missing`, `denied`), an array with a hole where JavaScript must
 * stat it itself (any other error).
 */
static napi_value stamp_paths(napi_env env, napi_callback_info callback) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, callback, &argc, argv, NULL, NULL);
  uint32_t count = 0;
  if (argc < 1 || napi_get_array_length(env, argv[0], &count) != napi_ok)
    return undefined_value(env);
  napi_value result;
  napi_create_array_with_length(env, count, &result);
  char *path = NULL;
  size_t path_capacity = 0;
  for (uint32_t i = 0; i < count; i++) {
    napi_value item;
    size_t length;
    if (napi_get_element(env, argv[0], i, &item) != napi_ok ||
        napi_get_value_string_utf8(env, item, NULL, 0, &length) != napi_ok)
      continue;
    if (length + 1 > path_capacity) {
      path_capacity = length * 2 + 256;
      char *grown = realloc(path, path_capacity);
      if (grown == NULL) break;
      path = grown;
    }
    napi_get_value_string_utf8(env, item, path, path_capacity, &length);
    if (strlen(path) != length) continue;
    struct stat info;
    char stamp[160];
    int stamp_length;
    if (stat(path, &info) == 0) {
      /* Node's bigint stats are signed 64-bit; nanoseconds as its BigInt arithmetic adds them. */
      stamp_length = snprintf(
          stamp, sizeof stamp, "%lld:%lld:%lld:%lld", (long long)info.st_ino,
          (long long)info.st_size,
          (long long)info.st_mtim.tv_sec * 1000000000LL + info.st_mtim.tv_nsec,
          (long long)info.st_ctim.tv_sec * 1000000000LL +
              info.st_ctim.tv_nsec);
    } else if (errno == ENOENT || errno == ENOTDIR) {
      stamp_length = snprintf(stamp, sizeof stamp, "missing");
    } else if (errno == EACCES) {
      stamp_length = snprintf(stamp, sizeof stamp, "denied");
    } else {
      continue;
    }
    napi_value value;
    napi_create_string_latin1(env, stamp, (size_t)stamp_length, &value);
    napi_set_element(env, result, i, value);
  }
  free(path);
  return result;
}

/** native/tree-check.c: recorded walks checked again, one at a time or on threads. */
napi_value check_tree(napi_env env, napi_callback_info callback);
napi_value check_trees(napi_env env, napi_callback_info callback);

/** native/source-hash.c: a Python source read and hashed for a hash-based .pyc. */
napi_value source_hash(napi_env env, napi_callback_info callback);

/** native/pack-read.c: a small file opened, stated and read for the pack worker. */
napi_value read_file(napi_env env, napi_callback_info callback);

static napi_value init(napi_env env, napi_value exports) {
  napi_value version;
  napi_create_uint32(env, TREE_STAT_VERSION, &version);
  napi_property_descriptor properties[] = {
      {"version", NULL, NULL, NULL, NULL, version, napi_enumerable, NULL},
      {"checkTree", NULL, check_tree, NULL, NULL, NULL, napi_enumerable, NULL},
      {"checkTrees", NULL, check_trees, NULL, NULL, NULL, napi_enumerable,
       NULL},
      {"walkTree", NULL, walk_tree, NULL, NULL, NULL, napi_enumerable, NULL},
      {"stamps", NULL, stamp_paths, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sourceHash", NULL, source_hash, NULL, NULL, NULL, napi_enumerable,
       NULL},
      {"readFile", NULL, read_file, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof properties / sizeof *properties,
                         properties);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
