package configs_test

import (
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/configs"
)

// FORGETMENOT_RETENTION is said in years or days; off by default; a period
// shorter than a day is refused with the variable named.
func TestRetentionVariable(t *testing.T) {
	for in, want := range map[string]time.Duration{"2y": 730 * 24 * time.Hour, "0.5y": 4380 * time.Hour, "730d": 730 * 24 * time.Hour, "0": 0} {
		var d configs.Duration
		if err := d.Decode(in); err != nil || d.D() != want {
			t.Errorf("Decode(%q) = %v, %v; want %v", in, d.D(), err, want)
		}
	}
	var d configs.Duration
	if err := d.Decode("twoy"); err == nil || !strings.Contains(err.Error(), "2y") {
		t.Errorf("Decode(twoy): %v, want an error showing 2y", err)
	}
	t.Setenv("FORGETMENOT_RETENTION", "")
	cfg, err := configs.FromEnv()
	if err != nil || cfg.Retention != 0 {
		t.Fatalf("default retention %v, %v; want off", cfg.Retention, err)
	}
	t.Setenv("FORGETMENOT_RETENTION", "2h")
	if _, err := configs.FromEnv(); err == nil || !strings.Contains(err.Error(), "RETENTION") {
		t.Errorf("a retention of 2h: %v, want a refusal naming RETENTION", err)
	}
}
