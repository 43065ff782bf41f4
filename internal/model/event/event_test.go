package event

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestValidate(t *testing.T) {
	now := time.Now()
	tests := []struct {
		e    Event
		want string // "" when valid
	}{
		{Event{Kind: SyncFinished, At: now}, ""},
		{Event{Kind: "fleet.rolled_back", At: now, Subject: "host-1"}, ""},
		{Event{Kind: "sync", At: now}, "want area.what"},
		{Event{Kind: ".x", At: now}, "want area.what"},
		{Event{Kind: "x.", At: now}, "want area.what"},
		{Event{Kind: Kind("a." + strings.Repeat("b", 70)), At: now}, "want area.what"},
		{Event{Kind: SyncStarted}, "no time"},
		{Event{Kind: SyncStarted, At: now, Subject: strings.Repeat("s", 300)}, "subject"},
	}
	for _, tt := range tests {
		err := tt.e.Validate()
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%q: %v, want %q", tt.e.Kind, err, tt.want)
		}
	}
}

func TestMatches(t *testing.T) {
	e := Event{Kind: "fleet.applied"}
	tests := []struct {
		kinds []string
		want  bool
	}{
		{nil, true},
		{[]string{"fleet."}, true},
		{[]string{"fleet.applied"}, true},
		{[]string{"fleet"}, false},
		{[]string{"fleet.app"}, false},
		{[]string{"sync.", "fleet.applied"}, true},
		{[]string{"sync."}, false},
	}
	for _, tt := range tests {
		if got := e.Matches(tt.kinds); got != tt.want {
			t.Errorf("Matches(%q) = %v", tt.kinds, got)
		}
	}
}

func TestClip(t *testing.T) {
	if s := Clip("short"); s != "short" {
		t.Errorf("Clip(short) = %q", s)
	}
	long := strings.Repeat("é", MaxDetail) // two bytes each
	c := Clip(long)
	if len(c) > MaxDetail+len("…") || !utf8.ValidString(c) || !strings.HasSuffix(c, "…") {
		t.Errorf("Clip of %d bytes: %d bytes, valid %v", len(long), len(c), utf8.ValidString(c))
	}
}
