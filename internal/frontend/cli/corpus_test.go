package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tuxtape/tuxtape/internal/service"
)

func TestPrintCorpusSummary(t *testing.T) {
	entries := []service.CorpusEntry{
		{ID: "A", Class: service.ClassLoaded, Objects: []string{"vmlinux", "vmlinux"}, Seconds: 10, Base: true},
		{ID: "B", Class: service.ClassLoaded, Objects: []string{"isofs"}, Seconds: 20, Base: true},
		{ID: "C", Class: service.ClassNotLivepatchable, Reason: "changed data", Base: true},
		{ID: "D", Class: service.ClassFixIncomplete, Reason: "x.c:1: undeclared", Base: true},
		{ID: "E", Class: service.ClassNotCompiled},
		{ID: "F", Class: service.ClassVMFailed, Seconds: 40},
	}
	var out bytes.Buffer
	printCorpus(&Globals{Stdout: &out}, entries, true)
	s := out.String()
	for _, want := range []string{
		"A  ", "vmlinux  ", // objects listed once
		"median build time of built modules: 20.0s (3 modules)",
		"fixes that change only .c files this kernel compiles (by its build profile): 4",
		"loaded, transitioned, clean:           2   50.0%",
		"fix does not compile:                  1   25.0%",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "vmlinux,vmlinux") {
		t.Errorf("objects repeated:\n%s", s)
	}
}
