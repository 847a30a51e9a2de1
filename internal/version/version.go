// Package version says which build of forgetmenot is running, from what the
// Go toolchain records in the binary (module version, VCS revision), so an
// operator can tell replicas of an old and a new version apart.
package version

import (
	"runtime/debug"
	"strings"
)

// String is the module version and, when the binary was built from a git
// checkout, the commit (with "+dirty" for uncommitted changes) and its time:
// "(devel) 8531b74e0c1f+dirty 2026-12-02T02:01:44Z".
func String() string {
	if Build != "" {
		return Build
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	return describe(info)
}

// Build, when set at link time (-ldflags "-X
// github.com/forgetmenot/forgetmenot/internal/version.Build=..."), names the
// build: an image built without the repository's .git (the Dockerfile's
// VERSION argument) has no commit recorded otherwise.
var Build string

func describe(info *debug.BuildInfo) string {
	parts := []string{info.Main.Version}
	if parts[0] == "" {
		parts[0] = "(devel)"
	}
	var rev, at string
	dirty := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if dirty {
			rev += "+dirty"
		}
		parts = append(parts, rev)
	}
	if at != "" {
		parts = append(parts, at)
	}
	return strings.Join(parts, " ")
}
