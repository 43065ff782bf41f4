package kernelsrc

import (
	"testing"

	"github.com/tuxtape/tuxtape/internal/model/kernel"
)

func TestSourceKey(t *testing.T) {
	a, _ := kernel.ParseSource("/srv/linux", "v6.1.176")
	b, _ := kernel.ParseSource("/srv/linux", "v6.1.177")
	if sourceKey(a) == sourceKey(b) {
		t.Error("two refs share a cache key")
	}
}
