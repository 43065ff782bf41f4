package refusal

import "testing"

func TestClass(t *testing.T) {
	tests := []struct {
		code Code
		want Class
	}{
		{NotCompiled, ClassNotCompiled},
		{OtherArch, ClassNotCompiled},
		{NoChange, ClassNoChange},
		{FixDoesNotApply, ClassFixDoesNotApply},
		{FixDoesNotCompile, ClassFixDoesNotCompile},
		{BuildFailed, ClassFailed},
		{ChangedData, ClassNotLivepatchable},
		{KthreadMain, ClassNotLivepatchable},
		{Code("made_up"), ClassFailed},
	}
	for _, tt := range tests {
		if got := tt.code.Class(); got != tt.want {
			t.Errorf("Code(%q).Class() = %q, want %q", tt.code, got, tt.want)
		}
	}
	seen := map[Code]bool{}
	for _, c := range Codes() {
		if seen[c] {
			t.Errorf("Codes() lists %q twice", c)
		}
		seen[c] = true
		if c != BadFix && c != BuildFailed && c.Class() == ClassFailed {
			t.Errorf("Code(%q) has no class", c)
		}
	}
}

func TestAction(t *testing.T) {
	for _, tt := range []struct {
		code Code
		want string
	}{
		{FixDoesNotCompile, ActionPrerequisites},
		{ChangedData, ActionHandWritten},
		{InitExit, ActionHandWritten},
		{HeaderTooWide, ActionHandWritten},
		{Code("made_up"), ActionHandWritten},
	} {
		if got := tt.code.Action(); got != tt.want {
			t.Errorf("Code(%q).Action() = %q, want %q", tt.code, got, tt.want)
		}
	}
}
