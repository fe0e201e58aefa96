#!/usr/bin/env bash
# The console's catalogues (docs/console.md, "Languages"):
#   scripts/i18n.sh update        extract every translatable text into messages.pot and merge
#                                 it into each language's messages.po (new texts: empty msgstr)
#   scripts/i18n.sh init LOCALE   start a new language's catalogue (e.g. ja)
#   scripts/i18n.sh check         fail when a marked text has no translation, or an entry is
#                                 empty or fuzzy (tests/console/test_i18n.py's catalogue tests)
# The app compiles the .po files when it starts: there is no .mo to build or commit.
set -euo pipefail
cd "$(dirname "$0")/.."
PYBABEL=.venv/bin/pybabel
LOCALES=src/modelyard/console/locale
POT=$LOCALES/messages.pot

extract() {
  "$PYBABEL" extract -F babel.cfg -k N_ -k phrase -k pN_:1c,2 --sort-by-file --no-wrap \
    --project=modelyard --copyright-holder="the modelyard authors" -o "$POT" src/modelyard/console
}

case "${1:-}" in
  update)
    extract
    "$PYBABEL" update -i "$POT" -d "$LOCALES" -D messages --no-wrap --ignore-obsolete
    ;;
  init)
    extract
    "$PYBABEL" init -i "$POT" -d "$LOCALES" -D messages -l "${2:?a locale, e.g. ja}" --no-wrap
    ;;
  check)
    .venv/bin/python -m pytest -q -p no:cacheprovider tests/console/test_i18n.py \
      -k "marked_text or catalogue"
    ;;
  *)
    sed -n 2,8p "$0"
    exit 2
    ;;
esac
