{
  "targets": [
    {
      "target_name": "tree_stat",
      "sources": [
        "native/tree-stat.c",
        "native/tree-check.c",
        "native/source-hash.c",
        "native/pack-read.c"
      ],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
