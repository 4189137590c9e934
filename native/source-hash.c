// sourceHash(path, key, c, d, withBytes): a Python source file read and hashed as
// importlib.util.source_hash does (SipHash-c-d keyed by (key, 0)), for the pack worker's
// hash-based .pyc (packer/conda/hash-based-pyc.mjs, whose JavaScript SipHash is the fallback and
// the reference). Answers 24 bytes, all little-endian: the hash (8), the file's length (8) and its
// mtime as a timestamp .pyc's header holds it (4: int(st_mtime) modulo 2**32) then 4 zero bytes;
// with `withBytes` true, 32 bytes (those 24, its st_mode (4), 4 zero bytes) then the bytes hashed,
// so the packer packs the source from them instead of reading it again. Undefined on any error or
// a size that changed while it was read, for JavaScript to do it.

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t rotl(uint64_t x, int bits) {
  return (x << bits) | (x >> (64 - bits));
}

static void sip_rounds(uint64_t v[4], int rounds) {
  for (int r = 0; r < rounds; r++) {
    v[0] += v[1];
    v[1] = rotl(v[1], 13) ^ v[0];
    v[0] = rotl(v[0], 32);
    v[2] += v[3];
    v[3] = rotl(v[3], 16) ^ v[2];
    v[0] += v[3];
    v[3] = rotl(v[3], 21) ^ v[0];
    v[2] += v[1];
    v[1] = rotl(v[1], 17) ^ v[2];
    v[2] = rotl(v[2], 32);
  }
}

static uint64_t load_le(const uint8_t *bytes, size_t count) {
  uint64_t word = 0;
  for (size_t i = 0; i < count; i++) word |= (uint64_t)bytes[i] << (8 * i);
  return word;
}

static uint64_t sip_hash(const uint8_t *bytes, size_t length, uint64_t k0,
                         uint64_t k1, int c, int d) {
  uint64_t v[4] = {0x736f6d6570736575ULL ^ k0, 0x646f72616e646f6dULL ^ k1,
                   0x6c7967656e657261ULL ^ k0, 0x7465646279746573ULL ^ k1};
  size_t whole = length - length % 8;
  for (size_t at = 0; at < whole; at += 8) {
    uint64_t m = load_le(bytes + at, 8);
    v[3] ^= m;
    sip_rounds(v, c);
    v[0] ^= m;
  }
  uint64_t last = load_le(bytes + whole, length - whole) |
                  ((uint64_t)(length & 0xff) << 56);
  v[3] ^= last;
  sip_rounds(v, c);
  v[0] ^= last;
  v[2] ^= 0xff;
  sip_rounds(v, d);
  return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/**
 * The whole file at `path` in a malloc'd buffer (its length in *length, its stat before the read
 * in *st), or NULL.
 */
static uint8_t *read_whole(const char *path, size_t *length, struct stat *st) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  if (fstat(fd, st) != 0) {
    close(fd);
    return NULL;
  }
  size_t capacity = 1 << 16, used = 0;
  uint8_t *data = malloc(capacity);
  while (data != NULL) {
    if (used == capacity) {
      uint8_t *grown = realloc(data, capacity * 2);
      if (grown == NULL) break;
      data = grown;
      capacity *= 2;
    }
    ssize_t got = read(fd, data + used, capacity - used);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) break;
    if (got == 0) {
      close(fd);
      *length = used;
      return data;
    }
    used += (size_t)got;
  }
  free(data);
  close(fd);
  return NULL;
}

/**
 * Reads exactly `length` bytes of the open `fd` into `data` and checks that the file ends there:
 * 0, or -1 on an error or a file shorter or longer than `length`.
 */
static int read_exact(int fd, uint8_t *data, size_t length) {
  for (size_t used = 0;;) {
    uint8_t probe;
    // Past the size, one byte is asked for: a read that gets it finds the file grew.
    uint8_t *into = used < length ? data + used : &probe;
    size_t want = used < length ? length - used : 1;
    ssize_t got = read(fd, into, want);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return -1;
    if (got == 0) return used == length ? 0 : -1;
    if (used == length) return -1;
    used += (size_t)got;
  }
}

/** The 24-byte answer's fields (see the top of this file) written into `out`. */
static void put_stamp(uint8_t *out, uint64_t hash, size_t length,
                      const struct stat *st) {
  // importlib's int(st_mtime): os.stat's double of seconds and nanoseconds, truncated; the header
  // keeps its low 32 bits (two's complement for times before 1970, as `& 0xFFFFFFFF` does).
  double seconds =
      (double)st->st_mtim.tv_sec + (double)st->st_mtim.tv_nsec * 1e-9;
  uint32_t mtime = (uint32_t)(uint64_t)(int64_t)seconds;
  for (int i = 0; i < 8; i++) {
    out[i] = (uint8_t)(hash >> (8 * i));
    out[8 + i] = (uint8_t)((uint64_t)length >> (8 * i));
  }
  for (int i = 0; i < 4; i++) out[16 + i] = (uint8_t)(mtime >> (8 * i));
  for (int i = 20; i < 24; i++) out[i] = 0;
}

/**
 * The 32-byte answer then the file's bytes, read straight into the buffer answered (its size from
 * fstat, the file held to it), or undefined.
 */
static napi_value source_hash_with_bytes(napi_env env, const char *path,
                                         uint32_t key, uint32_t c,
                                         uint32_t d) {
  napi_value result;
  napi_get_undefined(env, &result);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return result;
  struct stat st;
  void *raw = NULL;
  napi_value buffer;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0 ||
      (uint64_t)st.st_size > SIZE_MAX - 32 ||
      napi_create_buffer(env, 32 + (size_t)st.st_size, &raw, &buffer) !=
          napi_ok) {
    close(fd);
    return result;
  }
  uint8_t *out = raw;
  size_t length = (size_t)st.st_size;
  int failed = read_exact(fd, out + 32, length);
  close(fd);
  if (failed) return result;
  put_stamp(out, sip_hash(out + 32, length, key, 0, (int)c, (int)d), length,
            &st);
  uint32_t mode = (uint32_t)st.st_mode;
  for (int i = 0; i < 4; i++) {
    out[24 + i] = (uint8_t)(mode >> (8 * i));
    out[28 + i] = 0;
  }
  return buffer;
}

napi_value source_hash(napi_env env, napi_callback_info callback) {
  size_t argc = 5;
  napi_value argv[5], result;
  napi_get_undefined(env, &result);
  if (napi_get_cb_info(env, callback, &argc, argv, NULL, NULL) != napi_ok ||
      argc < 4)
    return result;
  char path[PATH_MAX];
  size_t path_length;
  uint32_t key, c, d;
  if (napi_get_value_string_utf8(env, argv[0], path, sizeof path,
                                 &path_length) != napi_ok ||
      path_length + 1 >= sizeof path || strlen(path) != path_length ||
      napi_get_value_uint32(env, argv[1], &key) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &c) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &d) != napi_ok || c > 8 || d > 8)
    return result;
  bool with_bytes = false;
  if (argc >= 5 && napi_get_value_bool(env, argv[4], &with_bytes) != napi_ok)
    with_bytes = false;
  if (with_bytes) return source_hash_with_bytes(env, path, key, c, d);
  size_t length;
  struct stat st;
  uint8_t *bytes = read_whole(path, &length, &st);
  if (bytes == NULL) return result;
  if ((uint64_t)st.st_size != (uint64_t)length) {
    free(bytes);
    return result;
  }
  uint64_t hash = sip_hash(bytes, length, key, 0, (int)c, (int)d);
  free(bytes);
  uint8_t out[24];
  put_stamp(out, hash, length, &st);
  napi_create_buffer_copy(env, sizeof out, out, NULL, &result);
  return result;
}
