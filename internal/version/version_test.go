package version

import (
	"runtime/debug"
	"testing"
)

func TestDescribe(t *testing.T) {
	tests := []struct {
		name string
		info debug.BuildInfo
		want string
	}{
		{"released module", debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}, "v1.4.0"},
		{"go run without VCS", debug.BuildInfo{}, "(devel)"},
		{"built in a checkout with changes", debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "8531b74e0c1f5d2a9b7e3c4d5e6f708192a3b4c5"}, {Key: "vcs.time", Value: "2026-12-02T02:01:44Z"}, {Key: "vcs.modified", Value: "true"}}},
			"(devel) 8531b74e0c1f+dirty 2026-12-02T02:01:44Z"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := describe(&tc.info); got != tc.want {
				t.Errorf("describe = %q, want %q", got, tc.want)
			}
		})
	}
}

// What must hold: a build named at link time (the Docker image, built
// without .git) says that name.
func TestBuildNamedAtLinkTime(t *testing.T) {
	defer func(b string) { Build = b }(Build)
	Build = "v1.5.0-3-g8531b74"
	if got := String(); got != "v1.5.0-3-g8531b74" {
		t.Errorf("String = %q, want the name given at link time", got)
	}
}
