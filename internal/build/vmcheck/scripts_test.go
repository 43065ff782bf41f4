package vmcheck

import (
	"os/exec"
	"strings"
	"testing"
)

// TestScripts runs the exercise Scripts makes in a real shell: each
// script gets the phase, runs in order, passes through unexpanded (even a
// line equal to the here-document's first delimiter), and a failing one
// is reported without stopping the next.
func TestScripts(t *testing.T) {
	tests := []struct {
		name    string
		scripts []string
		want    string
	}{
		{"default", nil, ""},
		{"two", []string{"echo one:$1", "echo 'two:$HOME'\nexit 3"}, "one:patched\ntwo:$HOME\nexercise 2 (patched) exited 3\n"},
		{"delimiter inside", []string{"cat <<'TUXTAPE_EXERCISE_0'\nx\nTUXTAPE_EXERCISE_0\necho after:$1"}, "x\nafter:patched\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inner, body := Scripts(tt.scripts)
			if tt.scripts == nil {
				if inner != "default_exercise" || body != DefaultExercise {
					t.Fatalf("no scripts: got %q, want the default exercise", inner)
				}
				return
			}
			out, err := exec.Command("sh", "-ec", body+"\n"+inner+" patched\necho end").CombinedOutput()
			if err != nil {
				t.Fatalf("sh: %v\n%s", err, out)
			}
			if got := strings.TrimSuffix(string(out), "end\n"); got != tt.want {
				t.Errorf("output %q, want %q", got, tt.want)
			}
		})
	}
}
