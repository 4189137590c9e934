// sourceHash(path, key, c, d): a Python source file read and hashed as importlib.util.source_hash
// does (SipHash-c-d keyed by (key, 0)), for the pack worker's hash-based .pyc
// (packer/conda/hash-based-pyc.mjs, whose JavaScript SipHash is the fallback and the reference).
// Answers 24 bytes, all little-endian: the hash (8), the file's length (8) and its mtime as a
// timestamp .pyc's header holds it (4: int(st_mtime) modulo 2**32) then 4 zero bytes; or
// undefined on any error or a size that changed while it was read, for JavaScript to do it.

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <node_api.h>
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

napi_value source_hash(napi_env env, napi_callback_info callback) {
  size_t argc = 4;
  napi_value argv[4], result;
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
  // importlib's int(st_mtime): os.stat's double of seconds and nanoseconds, truncated; the header
  // keeps its low 32 bits (two's complement for times before 1970, as `& 0xFFFFFFFF` does).
  double seconds =
      (double)st.st_mtim.tv_sec + (double)st.st_mtim.tv_nsec * 1e-9;
  uint32_t mtime = (uint32_t)(uint64_t)(int64_t)seconds;
  uint8_t out[24] = {0};
  for (int i = 0; i < 8; i++) {
    out[i] = (uint8_t)(hash >> (8 * i));
    out[8 + i] = (uint8_t)((uint64_t)length >> (8 * i));
  }
  for (int i = 0; i < 4; i++) out[16 + i] = (uint8_t)(mtime >> (8 * i));
  napi_create_buffer_copy(env, sizeof out, out, NULL, &result);
  return result;
}
