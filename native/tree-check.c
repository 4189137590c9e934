// Recorded package tree walks checked again (package-tree.ts's isTreeUnchanged): one walk on the
// calling thread (checkTree), or a build's walks on threads of their own while the build does
// other work (checkTrees), each verdict read when the build needs it. The stats are the kernel's
// work; threads run them side by side, and each entry is statted relative to its directory,
// opened once, rather than resolving its whole path again.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tree-stat.h"

/** Threads a checkTrees starts at most, besides the caller's, which takes part. */
#define MAX_CHECK_THREADS 3

/** One open directory of a check: its path relative to the tree's root, and an O_PATH fd. */
typedef struct {
  char *rel;
  size_t rel_length;
  size_t rel_capacity;
  int fd;
} parent_t;

/** The directory `rel` (relative to `root`, an O_PATH fd) as `parent`, reusing the open one. */
static int open_parent(parent_t *parent, int root, const char *rel,
                       size_t rel_length) {
  if (parent->fd >= 0 && parent->rel_length == rel_length &&
      (rel_length == 0 || memcmp(parent->rel, rel, rel_length) == 0))
    return parent->fd;
  if (parent->fd >= 0 && parent->fd != root) close(parent->fd);
  parent->fd = -1;
  if (rel_length == 0) {
    parent->rel_length = 0;
    return parent->fd = root;
  }
  if (rel_length + 1 > parent->rel_capacity) {
    size_t capacity = rel_length * 2 + 256;
    char *grown = realloc(parent->rel, capacity);
    if (grown == NULL) {
      errno = ENOMEM;
      return -1;
    }
    parent->rel = grown;
    parent->rel_capacity = capacity;
  }
  memcpy(parent->rel, rel, rel_length);
  parent->rel[rel_length] = 0;
  parent->rel_length = rel_length;
  /* Intermediate links are followed, as a path's resolution for lstat follows them. */
  return parent->fd =
             openat(root, parent->rel, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

/**
 * isTreeUnchanged for `dir` and a walk's lines: each line is a path relative to `dir` (`.`: `dir`
 * itself, followed through a link), NUL, and the fields strict_fields writes. 1 when every path
 * still has them, 0 at the first that does not or is missing, -1 when JavaScript must decide (an
 * error other than a missing path, a number past 2^53).
 */
static int check_lines(const char *dir, const char *lines,
                       size_t lines_length) {
  int verdict = 1;
  int root = -1;
  parent_t parent = {NULL, 0, 0, -1};
  size_t at = 0;
  while (verdict == 1 && at < lines_length) {
    const char *line = lines + at;
    const char *nul = memchr(line, 0, lines_length - at);
    if (nul == NULL) {
      verdict = 0;
      break;
    }
    size_t rel_length = (size_t)(nul - line);
    struct stat info;
    int failed;
    if (rel_length == 1 && line[0] == '.') {
      failed = stat(dir, &info) != 0;
    } else {
      if (root < 0) root = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
      const char *slash = memrchr(line, '/', rel_length);
      size_t parent_length = slash == NULL ? 0 : (size_t)(slash - line);
      int fd = root < 0 ? -1
                        : open_parent(&parent, root, line, parent_length);
      if (fd < 0) {
        failed = 1;
      } else {
        /* The name alone, NUL-terminated: lines hold NUL right after it. */
        const char *name = slash == NULL ? line : slash + 1;
        failed = fstatat(fd, name, &info, AT_SYMLINK_NOFOLLOW) != 0;
      }
    }
    if (failed) {
      verdict = errno == ENOENT || errno == ENOTDIR ? 0 : -1;
      break;
    }
    char fields[128];
    int length = strict_fields(&info, fields, sizeof fields);
    if (length < 0) {
      verdict = -1;
      break;
    }
    size_t fields_at = at + rel_length;
    if (lines_length - fields_at < (size_t)length ||
        memcmp(lines + fields_at, fields, (size_t)length) != 0) {
      verdict = 0;
      break;
    }
    at = fields_at + (size_t)length;
  }
  if (parent.fd >= 0 && parent.fd != root) close(parent.fd);
  if (root >= 0) close(root);
  free(parent.rel);
  return verdict;
}

/**
 * checkTree(dir, lines): check_lines' verdict, undefined when JavaScript must decide (also for a
 * path with a NUL in it, which is Node's error to give).
 */
napi_value check_tree(napi_env env, napi_callback_info callback) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, callback, &argc, argv, NULL, NULL);
  if (argc < 2) return undefined_value(env);
  size_t dir_length = 0, lines_length = 0;
  char *dir = string_arg(env, argv[0], &dir_length);
  char *lines = string_arg(env, argv[1], &lines_length);
  int verdict = dir == NULL || lines == NULL || strlen(dir) != dir_length
                    ? -1
                    : check_lines(dir, lines, lines_length);
  free(dir);
  free(lines);
  return verdict < 0 ? undefined_value(env) : boolean_value(env, verdict);
}

enum { JOB_WAITING, JOB_RUNNING, JOB_DONE };

/** One walk of a checkTrees, checked by whichever thread claims it first. */
typedef struct {
  char *dir; /* NULL: not a string JavaScript can hand over (undecided) */
  char *lines;
  size_t lines_length;
  int verdict;
  atomic_int state;
} tree_job_t;

typedef struct {
  tree_job_t *jobs;
  uint32_t count;
  /** Jobs handed to the threads so far (they take them from the last). */
  atomic_uint taken;
  /** Set when the verdicts are no longer wanted: threads start no new job. */
  atomic_int stop;
  pthread_mutex_t mutex;
  pthread_cond_t done;
  pthread_t threads[MAX_CHECK_THREADS];
  int thread_count;
} tree_checks_t;

static int claim(tree_job_t *job) {
  int waiting = JOB_WAITING;
  return atomic_compare_exchange_strong(&job->state, &waiting, JOB_RUNNING);
}

static void run_job(tree_checks_t *checks, tree_job_t *job) {
  job->verdict = job->dir == NULL
                     ? -1
                     : check_lines(job->dir, job->lines, job->lines_length);
  pthread_mutex_lock(&checks->mutex);
  atomic_store(&job->state, JOB_DONE);
  pthread_cond_broadcast(&checks->done);
  pthread_mutex_unlock(&checks->mutex);
}

/** A thread's loop: jobs from the last backwards, while the caller asks from wherever it is. */
static void *check_thread(void *data) {
  tree_checks_t *checks = data;
  while (!atomic_load(&checks->stop)) {
    unsigned taken = atomic_fetch_add(&checks->taken, 1);
    if (taken >= checks->count) break;
    tree_job_t *job = &checks->jobs[checks->count - 1 - taken];
    if (claim(job)) run_job(checks, job);
  }
  return NULL;
}

static void free_checks(tree_checks_t *checks) {
  atomic_store(&checks->stop, 1);
  for (int i = 0; i < checks->thread_count; i++)
    pthread_join(checks->threads[i], NULL);
  for (uint32_t i = 0; i < checks->count; i++) {
    free(checks->jobs[i].dir);
    free(checks->jobs[i].lines);
  }
  free(checks->jobs);
  pthread_mutex_destroy(&checks->mutex);
  pthread_cond_destroy(&checks->done);
  free(checks);
}

static void finalize_checks(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free_checks(data);
}

/**
 * The verdict function checkTrees hands back: verdict(index) is check_tree's answer for that
 * walk, taken from the thread that checked it (waiting for it while one is at it) or checked
 * here when no thread has begun it.
 */
static napi_value tree_verdict(napi_env env, napi_callback_info callback) {
  size_t argc = 1;
  napi_value argv[1];
  void *data;
  napi_get_cb_info(env, callback, &argc, argv, NULL, &data);
  tree_checks_t *checks = data;
  uint32_t index;
  if (argc < 1 || napi_get_value_uint32(env, argv[0], &index) != napi_ok ||
      index >= checks->count)
    return undefined_value(env);
  tree_job_t *job = &checks->jobs[index];
  if (claim(job)) {
    run_job(checks, job);
  } else if (atomic_load(&job->state) != JOB_DONE) {
    pthread_mutex_lock(&checks->mutex);
    while (atomic_load(&job->state) != JOB_DONE)
      pthread_cond_wait(&checks->done, &checks->mutex);
    pthread_mutex_unlock(&checks->mutex);
  }
  return job->verdict < 0 ? undefined_value(env)
                          : boolean_value(env, job->verdict);
}

/** Threads to start for `count` walks: one per core but the caller's, at most MAX_CHECK_THREADS. */
static int thread_count_for(uint32_t count) {
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  long threads = cores - 1;
  if (threads > MAX_CHECK_THREADS) threads = MAX_CHECK_THREADS;
  if (threads > (long)count - 1) threads = (long)count - 1;
  return threads < 0 ? 0 : (int)threads;
}

/**
 * checkTrees(dirs, lines): starts checking each walk (`dirs[i]` with `lines[i]`, as checkTree
 * takes them) on threads of its own and returns verdict(index), or undefined when the arrays do
 * not match. The threads stop once the function is collected.
 */
napi_value check_trees(napi_env env, napi_callback_info callback) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, callback, &argc, argv, NULL, NULL);
  uint32_t count = 0, lines_count = 0;
  if (argc < 2 || napi_get_array_length(env, argv[0], &count) != napi_ok ||
      napi_get_array_length(env, argv[1], &lines_count) != napi_ok ||
      count != lines_count)
    return undefined_value(env);
  tree_checks_t *checks = calloc(1, sizeof *checks);
  if (checks == NULL) return undefined_value(env);
  checks->jobs = calloc(count == 0 ? 1 : count, sizeof *checks->jobs);
  if (checks->jobs == NULL) {
    free(checks);
    return undefined_value(env);
  }
  checks->count = count;
  pthread_mutex_init(&checks->mutex, NULL);
  pthread_cond_init(&checks->done, NULL);
  for (uint32_t i = 0; i < count; i++) {
    tree_job_t *job = &checks->jobs[i];
    atomic_init(&job->state, JOB_WAITING);
    napi_value dir, lines;
    size_t dir_length = 0;
    if (napi_get_element(env, argv[0], i, &dir) != napi_ok ||
        napi_get_element(env, argv[1], i, &lines) != napi_ok)
      continue;
    job->dir = string_arg(env, dir, &dir_length);
    job->lines = string_arg(env, lines, &job->lines_length);
    if (job->dir == NULL || job->lines == NULL ||
        strlen(job->dir) != dir_length) {
      free(job->dir);
      free(job->lines);
      job->dir = job->lines = NULL;
    }
  }
  napi_value verdict;
  if (napi_create_function(env, "verdict", NAPI_AUTO_LENGTH, tree_verdict,
                           checks, &verdict) != napi_ok ||
      napi_add_finalizer(env, verdict, checks, finalize_checks, NULL, NULL) !=
          napi_ok) {
    free_checks(checks);
    return undefined_value(env);
  }
  int threads = thread_count_for(count);
  // The threads take no signal: Node's own threads handle them, as before they existed.
  sigset_t all, before;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &before);
  for (int i = 0; i < threads; i++)
    if (pthread_create(&checks->threads[checks->thread_count], NULL,
                       check_thread, checks) == 0)
      checks->thread_count++;
  pthread_sigmask(SIG_SETMASK, &before, NULL);
  return verdict;
}
