""".cortexignore rules with the CLI's semantics (src/bundle/ignore_rules.cc): gitignore syntax
(comments, negation, directory-only and anchored patterns, "**"); a path inside an ignored
directory stays ignored whatever later rules say, as in git."""

from fnmatch import fnmatchcase


class IgnoreRules:
    def __init__(self, text=""):
        self._rules = []  # (pattern, negate, dir_only, anchored)
        for line in text.split("\n"):
            if line.endswith("\r"):
                line = line[:-1]
            while line.endswith(" ") and not line.endswith("\\ "):
                line = line[:-1]  # trailing spaces, unless escaped
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            if negate:
                line = line[1:]
            elif line.startswith(("\\!", "\\#")):
                line = line[1:]
            dir_only = line.endswith("/")
            line = line.rstrip("/")
            anchored = "/" in line
            if anchored:
                line = line.lstrip("/")
            if line:
                self._rules.append((line, negate, dir_only, anchored))

    def ignored(self, path, is_dir):
        """`path` relative to the project root, '/'-separated."""
        if not self._rules:
            return False
        segments = [s for s in path.split("/") if s]
        for depth in range(1, len(segments) + 1):
            prefix = segments[:depth]
            prefix_is_dir = depth < len(segments) or is_dir
            ignored = False
            for pattern, negate, dir_only, anchored in self._rules:
                if dir_only and not prefix_is_dir:
                    continue
                if anchored:
                    matches = _match_segments([s for s in pattern.split("/") if s], prefix)
                else:
                    matches = fnmatchcase(prefix[-1], pattern)
                if matches:
                    ignored = not negate
            if ignored:
                return True
        return False


def _match_segments(pattern, path):
    """'/'-separated segments; "**" spans any number of them, except that a trailing one needs
    at least one ("dir/**" is what is inside dir, not dir itself)."""
    if not pattern:
        return not path
    if pattern[0] == "**":
        if len(pattern) == 1:
            return bool(path)
        return any(_match_segments(pattern[1:], path[k:]) for k in range(len(path) + 1))
    return bool(path) and fnmatchcase(path[0], pattern[0]) and \
        _match_segments(pattern[1:], path[1:])
