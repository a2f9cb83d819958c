# Where the skill's venv lives, shared by scripts/install and scripts/test (sourced, not run).
#
#   as a user (sudo for the system packages)   ~/.local/share/voice-skill/venv, for that user
#   sudo scripts/install                       the same, for the user who ran sudo (SUDO_USER)
#   as root, without sudo                      /opt/voice-skill/venv, for every user
#   VOICE_SKILL_VENV=PATH                      there, for whoever may read it
#
# Sets venv_owner (the user the venv is made for) and venv (its folder).
if [ "$(id -u)" -eq 0 ] && [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
  venv_owner="$SUDO_USER"
  venv_owner_home="$(getent passwd "$SUDO_USER" | cut -d: -f6)"
  default_venv="$venv_owner_home/.local/share/voice-skill/venv"
elif [ "$(id -u)" -eq 0 ]; then
  venv_owner=root
  default_venv=/opt/voice-skill/venv
else
  venv_owner="$(id -un)"
  default_venv="$HOME/.local/share/voice-skill/venv"
fi
venv="${VOICE_SKILL_VENV:-$default_venv}"
