#!/usr/bin/env bash
# Installs what kvmrpa needs (Debian packages when missing, a virtual environment,
# the package with its test extras), then runs the requested job.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${KVMRPA_VENV:-$ROOT/.venv}

# Debian packages the lab, OCR fonts and browser tests need. Installed only when missing.
APT_PACKAGES=(
  xvfb x11vnc xdotool x11-utils python3-tk python3-gi python3-venv
  gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp gstreamer1.0-tools gstreamer1.0-x
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly ffmpeg fonts-noto-cjk chromium
  tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim
)

log() { printf '[setup] %s\n' "$*" >&2; }

install_apt() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null; then
    log "missing Debian packages (${missing[*]}) and no apt-get here; install them by hand"
    return 1
  fi
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
  $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

pick_python() {
  for cand in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
    [ -n "$cand" ] || continue
    if command -v "$cand" >/dev/null && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$cand"; return 0
    fi
  done
  log "Python 3.11 or newer is required"; return 1
}

install_venv() {
  local py stamp want
  if [ ! -x "$VENV/bin/python" ]; then
    py=$(pick_python)
    log "creating virtual environment in $VENV with $py"
    "$py" -m venv "$VENV"
  fi
  stamp="$VENV/.kvmrpa-stamp"
  want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    log "installing kvmrpa and its test extras into $VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e ".[test]"
    echo "$want" > "$stamp"
  fi
}

setup() {
  install_apt
  install_venv
}

# JupyterLab on notebooks/, on loopback, with nothing fetched from the internet (no news
# feed, no update check); root (containers) needs --allow-root.
lab() {
  local extra=()
  [ "$(id -u)" -eq 0 ] && extra+=(--allow-root)
  cd "$ROOT/notebooks"
  exec "$VENV/bin/jupyter" lab --ServerApp.ip=127.0.0.1 --ServerApp.root_dir="$ROOT/notebooks" \
    --LabApp.news_url=None --LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate \
    "${extra[@]}" "$@"
}

# The FlowCanvas JavaScript bundle (widgets/_flowcanvas.bundle.js, React Flow): the npm
# packages exactly as in widgets/canvas/package-lock.json, then esbuild. Only for changing
# the canvas's JavaScript; the bundle is committed, so installing kvmrpa needs no Node.js.
bundle() {
  if ! command -v npm >/dev/null; then
    log "./dev bundle needs Node.js and npm (apt-get install nodejs npm)"; return 1
  fi
  cd "$ROOT/widgets/canvas"
  npm ci --no-audit --no-fund --loglevel=error
  npm run build
}

cmd=${1:-help}
shift || true
case "$cmd" in
  setup) setup ;;
  serve) setup; exec "$VENV/bin/kvmrpa" serve "$@" ;;
  lab)   setup; lab "$@" ;;
  test)  setup; exec "$VENV/bin/python" -m pytest "$@" ;;
  bench) setup; exec "$VENV/bin/kvmrpa" bench "$@" ;;
  bundle) bundle ;;
  *) echo "usage: ./dev {serve|test|lab|bench|bundle|setup} [args...]" >&2; exit 2 ;;
esac
