package gauge

import (
	"slices"
	"testing"

	"github.com/tuxtape/tuxtape/internal/model/profile"
	"github.com/tuxtape/tuxtape/internal/model/vulns"
)

// Real .dyad files from the CNA repository (bundle 2026-08-19).
var dyads = map[string]string{
	// Introduced and fixed within 6.1.178 on the 6.1 branch; unfixed on 6.5.
	"CVE-2024-42133": `6.1.178:f7e83f2278f06b577e3c92ea2f4e8e8c6fc72a8f:6.1.178:a06a8cc80fa203fde828a8429583f7e4fe27eca4
6.6.2:84cb0143fb8a03bf941c7aaedd56c938c99dafad:6.6.39:38263088b845abeeeb98dda5b87c0de3063b6dbb
6.7:181a42edddf51d5d9697ecdf365d72ebeab5afb0:6.9.9:dad0003ccc68457baf005a6ed75b4d321463fe3d
6.7:181a42edddf51d5d9697ecdf365d72ebeab5afb0:6.10:015d79c96d62cd8a4a359fcf5be40d58088c936b
6.5.12:e9f708beada55426c8d678e2f46af659eb5bf4f0:0:0
`,
	"CVE-2026-64479": `5.15.212:6389f2c135311c4ce7c08c3b29145c8f95aacf1f:5.15.212:d7649aa11089a93ea2285c210397aa67e5800766
6.1.178:d7e2ce72833bb23a82b4201fbed7214cc04a4a8c:6.1.178:a224c84e5d3d35708c082c84ad12d81d90762195
6.5:46397622a3fa8372b8fda0f04b33d16923b03b1b:6.6.145:ea672a9f6cc38f06fe69dd2c257ef8a3d4db179a
6.5:46397622a3fa8372b8fda0f04b33d16923b03b1b:6.12.96:fb1aa5082847b98f44f9c6272aee9d0dca9244f0
6.5:46397622a3fa8372b8fda0f04b33d16923b03b1b:6.18.39:651ba82fe2a144bc7356d940bfd235c3810b0549
6.5:46397622a3fa8372b8fda0f04b33d16923b03b1b:7.1.4:6ded42615fa1f4949925afd0a8a9e1ab3bf96202
6.5:46397622a3fa8372b8fda0f04b33d16923b03b1b:7.2:435990e25bf1f4af3e6df12a6fbfd1f7ba4a97d4
`,
	// Several branches; a mainline introducer with stable and mainline fixes;
	// 6.4 unfixed.
	"CVE-2024-26581": `4.19.316:8284a79136c384059e85e278da2210b809730287:4.19.316:c60d252949caf9aba537525195edae6bbabc35eb
5.4.262:acaee227cf79c45a5d2d49c3e9a66333a462802c:5.4.269:10e9cb39313627f2eae4cd70c4b742074e998fd8
5.10.190:893cb3c3513cf661a0ff45fe0cfa83fe27131f76:5.10.210:4cee42fcf54fec46b344681e7cc4f234bb22f85a
5.15.124:50cbb9d195c197af671869c8cadce3bd483735a0:5.15.149:2bab493a5624444ec6e648ad0d55a362bcb4c003
6.1.43:89a4d1a89751a0fbd520e64091873e19cc0979e8:6.1.78:1296c110c5a0b45a8fcf58e7d18bc5da61a565cb
6.5:f718863aca469a109895cb855e6b81fff4827d71:6.6.17:b734f7a47aeb32a5ba298e4ccc16bb0c52b6dbf7
6.5:f718863aca469a109895cb855e6b81fff4827d71:6.7.5:6eb14441f10602fa1cf691da9d685718b68b78a9
6.5:f718863aca469a109895cb855e6b81fff4827d71:6.8:60c0c230c6f046da536d3df8b39a20b9a9fd6af0
6.4.8:cd66733932399475fe933cb3ec03e687ed401462:0:0
`,
	// Unknown introducer ("0:0") on every branch.
	"CVE-2024-38635": `0:0:5.4.278:002364b2d594a9afc0385c09e00994c510b1d089
0:0:5.10.219:fd4bcb991ebaf0d1813d81d9983cfa99f9ef5328
0:0:5.15.161:902f6d656441a511ac25c6cffce74496db10a078
0:0:6.1.93:2ebcaa0e5db9b6044bb487ae1cf41bc601761567
0:0:6.6.33:7eeef1e935d23db5265233d92395bd5c648a4021
0:0:6.9.4:4e99103f757cdf636c6ee860994a19a346a11785
0:0:6.10:8ee1b439b1540ae543149b15a2a61b9dff937d91
`,
	// Unfixed ("…:0:0") on several older branches.
	"CVE-2025-21629": `6.1.116:a84978a9cda68f0afe3f01d476c68db21526baf1:6.1.124:ac9cfef69565021c9e1022a493a9c40b03e2caf9
6.6.60:c69bc67c1cb211aa390bea6e512bb01b1241fefb:6.6.70:95ccf006bbc8b59044313b8c309dcf29c546abd4
6.12:04c20a9356f283da623903e81e7c6d5df7e4dc3c:6.12.9:d3b7a9c7597b779039a51d7b34116fbe424bf2b7
6.12:04c20a9356f283da623903e81e7c6d5df7e4dc3c:6.13:68e068cabd2c6c533ef934c2e5151609cf6ecc6d
4.19.323:bcefc3cd7f592a70fcbbbfd7ad1fbc69172ea78b:0:0
5.4.285:477b35d94a21530046fe91589960732fcf2b29ed:0:0
5.10.229:a27a5c40ee4cbe00294e2c76160de5f2589061ba:0:0
5.15.171:9f605135a5c0fe614c2b15197b9ced1e217eca59:0:0
6.11.7:705350fbd6ed4b5d89ee045fa57a0594a72b17d7:0:0
`,
}

func record(t testing.TB, id string, files ...string) *vulns.Record {
	t.Helper()
	bs, err := vulns.ParseDyad([]byte(dyads[id]))
	if err != nil {
		t.Fatalf("%s: %v", id, err)
	}
	return &vulns.Record{ID: id, Status: vulns.StatusPublished, Branches: bs, ProgramFiles: files}
}

func mustVersion(t testing.TB, s string) vulns.Version {
	t.Helper()
	v, err := vulns.ParseVersion(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVersionSemantics(t *testing.T) {
	tests := []struct {
		cve, kernel string
		status      Status
		reason      Reason
	}{
		// Introduced and fixed within 6.1.178: never in 6.1.176 or 6.1.177.
		{"CVE-2024-42133", "6.1.176", NotAffected, NotInRange},
		{"CVE-2024-42133", "6.1.177", NotAffected, NotInRange},
		{"CVE-2024-42133", "6.1.178", NotAffected, FixedInVersion},
		{"CVE-2024-42133", "6.6.1", NotAffected, NotInRange},
		{"CVE-2024-42133", "6.6.2", Affected, InRangeNoProfile},
		{"CVE-2024-42133", "6.6.39", NotAffected, FixedInVersion},
		{"CVE-2024-42133", "6.5.12", Affected, InRangeNoProfile}, // 6.5 never fixed
		{"CVE-2024-42133", "6.5.11", NotAffected, NotInRange},
		{"CVE-2024-42133", "6.8.3", Affected, InRangeNoProfile}, // mainline 6.7 bug, no 6.8 fix
		{"CVE-2024-42133", "6.9.9", NotAffected, FixedInVersion},
		{"CVE-2024-42133", "6.10", NotAffected, FixedInVersion},
		{"CVE-2024-42133", "6.12.40", NotAffected, FixedInVersion}, // newer than any fix
		{"CVE-2026-64479", "6.1.176", NotAffected, NotInRange},
		{"CVE-2026-64479", "6.1.178", NotAffected, FixedInVersion},
		{"CVE-2026-64479", "6.6.144", Affected, InRangeNoProfile},
		{"CVE-2026-64479", "7.1.3", Affected, InRangeNoProfile},
		{"CVE-2026-64479", "7.2", NotAffected, FixedInVersion},
		{"CVE-2026-64479", "5.15.211", NotAffected, NotInRange},
		{"CVE-2024-26581", "6.1.42", NotAffected, NotInRange},
		{"CVE-2024-26581", "6.1.43", Affected, InRangeNoProfile},
		{"CVE-2024-26581", "6.1.77", Affected, InRangeNoProfile},
		{"CVE-2024-26581", "6.1.78", NotAffected, FixedInVersion},
		{"CVE-2024-26581", "6.1.176", NotAffected, FixedInVersion},
		{"CVE-2024-26581", "6.4.16", Affected, InRangeNoProfile}, // 6.4 unfixed
		{"CVE-2024-26581", "6.5", Affected, InRangeNoProfile},    // mainline introducer
		{"CVE-2024-26581", "6.7.4", Affected, InRangeNoProfile},
		{"CVE-2024-26581", "6.7.5", NotAffected, FixedInVersion},
		{"CVE-2024-26581", "6.8-rc3", Affected, InRangeNoProfile},
		{"CVE-2024-26581", "6.8", NotAffected, FixedInVersion},
		{"CVE-2024-26581", "4.19.316", NotAffected, FixedInVersion},
		{"CVE-2024-26581", "4.14.300", NotAffected, NotInRange},
		{"CVE-2024-38635", "6.1.92", Affected, InRangeNoProfile}, // unknown introducer
		{"CVE-2024-38635", "6.1.93", NotAffected, FixedInVersion},
		{"CVE-2024-38635", "4.19.300", Affected, InRangeNoProfile}, // no 4.19 fix listed
		{"CVE-2024-38635", "6.11.1", NotAffected, FixedInVersion},  // after mainline 6.10
		{"CVE-2025-21629", "5.10.300", Affected, InRangeNoProfile}, // unfixed branch
		{"CVE-2025-21629", "5.10.228", NotAffected, NotInRange},
		{"CVE-2025-21629", "6.1.176", NotAffected, FixedInVersion},
		{"CVE-2025-21629", "6.11.7", Affected, InRangeNoProfile},
		{"CVE-2025-21629", "6.14.2", NotAffected, FixedInVersion},
	}
	for _, tt := range tests {
		g, err := New(Kernel{Name: "k", Version: mustVersion(t, tt.kernel)})
		if err != nil {
			t.Fatal(err)
		}
		v := g.Judge(record(t, tt.cve, "fs/x.c"))
		if v.Status != tt.status || v.Reason != tt.reason {
			t.Errorf("%s on %s: %s/%s, want %s/%s (%v)", tt.cve, tt.kernel, v.Status, v.Reason, tt.status, tt.reason, v.Evidence)
		}
		if len(v.Evidence) == 0 {
			t.Errorf("%s on %s: no evidence", tt.cve, tt.kernel)
		}
	}
}

func TestDeclaredFixes(t *testing.T) {
	r := record(t, "CVE-2025-21629", "net/core/dev.c")
	for _, k := range []Kernel{
		{Name: "by-cve", FixedCVEs: map[string]bool{"CVE-2025-21629": true}},
		{Name: "by-commit", FixedCommits: []string{"9f605135a5c0"}[:0]},
		{Name: "by-stable-commit", FixedCommits: []string{"f587c1ac6895", "ac9cfef69565"}},
	} {
		k.Version = mustVersion(t, "6.1.120")
		g, _ := New(k)
		v := g.Judge(r)
		want := NotAffected
		if k.Name == "by-commit" {
			want = Affected // nothing declared
		}
		if v.Status != want {
			t.Errorf("%s: %s/%s, want %s", k.Name, v.Status, v.Reason, want)
		}
	}
}

func TestBuildCheck(t *testing.T) {
	p := &profile.Profile{Kind: profile.KindReal, Units: []profile.Unit{
		{Source: "kernel/locking/rtmutex_api.c", Object: "kernel/locking/rtmutex_api.o", Target: "vmlinux"},
		{Source: "net/sched/sch_netem.c", Object: "net/sched/sch_netem.o", Target: "sch_netem"},
		{Source: "fs/ext4/inode.c", Object: "fs/ext4/inode.o", Target: "ext4"},
	}}
	p.Sort()
	idx := func(src string) int32 {
		for i, u := range p.Units {
			if u.Source == src {
				return int32(i)
			}
		}
		t.Fatalf("no unit %s", src)
		return -1
	}
	p.Deps = map[string][]int32{
		"kernel/locking/rtmutex.c": {idx("kernel/locking/rtmutex_api.c")},
		"include/linux/fs.h":       {idx("fs/ext4/inode.c"), idx("kernel/locking/rtmutex_api.c")},
	}
	static := &profile.Profile{Kind: profile.KindStatic, Units: p.Units}
	// A static profile with the include graph knows which units read a
	// header, as a real one does.
	withHeaders := &profile.Profile{Kind: profile.KindStatic, Units: p.Units, Deps: p.Deps, Headers: true}
	tests := []struct {
		profile *profile.Profile
		files   []string
		status  Status
		reason  Reason
		where   []string
	}{
		{p, []string{"net/sched/sch_netem.c"}, Affected, InRangeCompiled, []string{"sch_netem"}},
		{p, []string{"kernel/locking/rtmutex.c"}, Affected, InRangeCompiled, []string{"vmlinux"}},
		{p, []string{"include/linux/fs.h"}, Affected, InRangeCompiled, []string{"vmlinux", "ext4"}},
		{p, []string{"include/linux/other.h"}, NotAffected, CodeNotCompiled, nil},
		{p, []string{"drivers/gpu/drm/i915/i915_drv.c", "fs/ext4/inode.c"}, Affected, InRangeCompiled, []string{"ext4"}},
		{p, []string{"drivers/gpu/drm/i915/i915_drv.c"}, NotAffected, CodeNotCompiled, nil},
		{p, []string{"tools/perf/builtin-top.c"}, NotAffected, NotSourceFiles, nil},
		{p, nil, Unknown, NoProgramFiles, nil},
		{static, []string{"include/linux/other.h"}, Unknown, HeaderUnresolved, nil},
		{static, []string{"fs/ext4/inode.c"}, Affected, InRangeCompiled, []string{"ext4"}},
		{withHeaders, []string{"include/linux/fs.h"}, Affected, InRangeCompiled, []string{"vmlinux", "ext4"}},
		{withHeaders, []string{"include/linux/other.h"}, NotAffected, CodeNotCompiled, nil},
	}
	for _, tt := range tests {
		g, _ := New(Kernel{Name: "k", Version: mustVersion(t, "6.1.50"), Profile: profile.NewIndex(tt.profile)})
		v := g.Judge(record(t, "CVE-2024-26581", tt.files...))
		if v.Status != tt.status || v.Reason != tt.reason || !slices.Equal(v.Where, tt.where) {
			t.Errorf("%v (%s): %s/%s %v, want %s/%s %v; %v", tt.files, tt.profile.Kind, v.Status, v.Reason, v.Where, tt.status, tt.reason, tt.where, v.Evidence)
		}
		if v.Status == Unknown && !v.TreatAsAffected {
			t.Errorf("%v: unknown but not treated as affected", tt.files)
		}
	}
}

func TestNoVersionData(t *testing.T) {
	g, _ := New(Kernel{Name: "k", Version: mustVersion(t, "6.1.50")})
	v := g.Judge(&vulns.Record{ID: "CVE-2099-1", Status: vulns.StatusPublished})
	if v.Status != Unknown || !v.TreatAsAffected {
		t.Errorf("no dyad: %+v", v)
	}
	v = g.Judge(&vulns.Record{ID: "CVE-2099-2", Status: vulns.StatusRejected})
	if v.Status != NotAffected || v.Reason != RejectedCVE {
		t.Errorf("rejected: %+v", v)
	}
}
