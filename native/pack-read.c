// The pack worker's read of a small file (Node-API): open, stat and read into the caller's buffer
// in one call, with no JavaScript object per file (pack-worker.mjs packs thousands of package
// files, and Node's openSync/fstatSync/readSync/closeSync cost more than their system calls). Any
// failure is left to the caller, which reads the file in JavaScript and throws as Node would.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tree-stat.h"

/** readFile's answers other than a read file (see there). */
#define READ_ELSEWHERE -1
#define READ_TOO_LARGE -2
#define READ_CHANGED -3

static napi_value number_value(napi_env env, double value) {
  napi_value result;
  napi_create_double(env, value, &result);
  return result;
}

/**
 * readFile(path, buffer, offset, room): opens `path` (through links), stats what it opened and,
 * if it is a regular file of fewer than `room` bytes, reads it whole into `buffer` at `offset`,
 * asking for one byte past its size (a read that gets it means the file grew). Returns
 * `size * 2 + executable` (any execute bit of the mode) for a file read as its size says, -2 for
 * a file of `room` bytes or more, -3 for one whose bytes are not its size, -1 for anything else
 * (an error, not a regular file, bad arguments): the caller reads that file itself.
 */
napi_value read_file(napi_env env, napi_callback_info callback) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, callback, &argc, argv, NULL, NULL);
  if (argc < 4) return number_value(env, READ_ELSEWHERE);
  void *data;
  size_t length;
  uint32_t offset, room;
  if (napi_get_buffer_info(env, argv[1], &data, &length) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &offset) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &room) != napi_ok ||
      (size_t)offset + room > length)
    return number_value(env, READ_ELSEWHERE);
  size_t path_length;
  char *path = string_arg(env, argv[0], &path_length);
  if (path == NULL) return number_value(env, READ_ELSEWHERE);
  if (strlen(path) != path_length) {
    free(path);
    return number_value(env, READ_ELSEWHERE);
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  free(path);
  if (fd < 0) return number_value(env, READ_ELSEWHERE);
  double answer;
  struct stat info;
  if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    answer = READ_ELSEWHERE;
  } else if (info.st_size >= (off_t)room) {
    answer = READ_TOO_LARGE;
  } else {
    size_t size = (size_t)info.st_size;
    char *into = (char *)data + offset;
    size_t got = 0;
    answer = READ_ELSEWHERE;
    for (;;) {
      size_t asked = size + 1 - got;
      ssize_t n = pread(fd, into + got, asked, (off_t)got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) break;
      got += (size_t)n;
      /* As pack-worker.mjs's readInto: a read short of what was asked, at the size, is the end. */
      if (got > size || (n == 0 && got < size)) {
        answer = READ_CHANGED;
        break;
      }
      if (got == size && (size_t)n < asked) {
        answer = (double)size * 2 + ((info.st_mode & 0111) != 0 ? 1 : 0);
        break;
      }
    }
  }
  close(fd);
  return number_value(env, answer);
}
