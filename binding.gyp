{
  "targets": [
    {
      "target_name": "tree_stat",
      "sources": ["native/tree-stat.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
