package cli

import (
	"strings"
	"testing"
	"time"
)

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 8, 19, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"", time.Time{}, true},
		{"2026-08-01", time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC), true},
		{"30d", now.AddDate(0, 0, -30), true},
		{"0d", now, true},
		{"72h", now.Add(-72 * time.Hour), true},
		{"106751d", now.Add(-106751 * 24 * time.Hour), true}, // the most a time.Duration holds
		{"2562047h", now.Add(-2562047 * time.Hour), true},
		{"106752d", time.Time{}, false}, // wrapped to a future date: no rows
		{"300000d", time.Time{}, false}, // wrapped to the far past: every row
		{"99999999999999999999d", time.Time{}, false},
		{"2562048h", time.Time{}, false},
		{"9999999999999999999ns", time.Time{}, false},
		{"-1d", time.Time{}, false},
		{"-5h", time.Time{}, false},
		{"yesterday", time.Time{}, false},
	}
	for _, tt := range tests {
		got, err := parseSince(tt.in, now)
		if (err == nil) != tt.ok || !got.Equal(tt.want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil {
			if _, usage := err.(usageError); !usage {
				t.Errorf("parseSince(%q): %v is not a usage error", tt.in, err)
			}
		}
	}
	if _, err := parseSince("106752d", now); err == nil || !strings.Contains(err.Error(), "at most 106751d") {
		t.Errorf("parseSince(106752d) error %v does not give the limit", err)
	}
}
