#!/usr/bin/env bash
# Installs the Debian packages the test suite and benchmarks need, when they are missing.
# Run by `npm test` (pretest) and .ci/run; a no-op when everything is present.
set -euo pipefail

# command → Debian package
declare -A needed=(
  [zstd]=zstd
  # a path, since `time` alone is the shell keyword: peak RSS in the unpack tests
  [/usr/bin/time]=time
  [readelf]=binutils
  [docker-registry]=docker-registry
  [htpasswd]=apache2-utils
  [work_queue_worker]=coop-computing-tools
  [resource_monitor]=coop-computing-tools
  [catalog_server]=coop-computing-tools
  [work_queue_factory]=coop-computing-tools
  [work_queue_status]=coop-computing-tools
  # fault injection: a worker whose setpgid fails (a task that leads no process group)
  [strace]=strace
  [dask-scheduler]=python3-distributed
  # headless browser the report tests open pages in (driven by playwright-core, no download)
  [chromium]=chromium
)

missing=()
for cmd in "${!needed[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 && continue
  # a package that provides several commands is listed once
  [[ " ${missing[*]} " == *" ${needed[$cmd]} "* ]] || missing+=("${needed[$cmd]}")
done
# python3-workqueue has no command: the C manager's Python bindings, for Debian's interpreter
# (the bench:wq peer).
if ! /usr/bin/python3 -c 'import work_queue' >/dev/null 2>&1; then
  missing+=(python3-workqueue)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
  echo "envpack tests need these Debian packages: ${missing[*]}" >&2
  echo "install them with: apt-get install -y ${missing[*]}" >&2
  exit 1
fi
as_root=()
[ "$(id -u)" -ne 0 ] && as_root=(sudo)
echo "installing Debian packages: ${missing[*]}" >&2
"${as_root[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq "${missing[@]}" >&2
