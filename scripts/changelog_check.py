"""Check that a release's changelog holds every changelog fragment's text.

Usage: changelog_check.py FRAGMENTS_DIR CHANGELOG_MD TRIVIAL_SECTION

Run by scripts/changelog_check.sh with antsibull-changelog's venv (PyYAML) on
the CHANGELOG.md that a trial release made in a throwaway copy. The Markdown
escapes punctuation and turns ``code`` into <code>code</code>; both sides are
brought to plain text with single spaces before comparing. Entries of the
trivial section are left out of the changelog by design.
"""
import html
import pathlib
import re
import sys

import yaml


def plain_markdown(text):
    text = re.sub(r'</?code>', '', text)
    text = re.sub(r'\\(.)', r'\1', text)
    return ' '.join(html.unescape(text).split())


def plain_rst(text):
    return ' '.join(re.sub(r'``(.+?)``', r'\1', str(text)).split())


def main(fragments_dir, changelog, trivial):
    rendered = plain_markdown(pathlib.Path(changelog).read_text(encoding='utf-8'))
    total = missing = 0
    for path in sorted(pathlib.Path(fragments_dir).glob('*.y*ml')):
        sections = yaml.safe_load(path.read_text(encoding='utf-8')) or {}
        for section, entries in sections.items():
            if section == trivial:
                continue
            for entry in entries if isinstance(entries, list) else [entries]:
                total += 1
                # "add object.role" and the like: a new role's or playbook's name and description.
                texts = [entry['name'], entry['description']] if isinstance(entry, dict) else [entry]
                if not all(plain_rst(text) in rendered for text in texts):
                    missing += 1
                    print('%s: %s: not in %s: %.100s...' % (path.name, section, changelog, entry))
    print('%d of %d fragment entries are in %s' % (total - missing, total, changelog))
    return 1 if missing or not total else 0


if __name__ == '__main__':
    sys.exit(main(*sys.argv[1:]))
