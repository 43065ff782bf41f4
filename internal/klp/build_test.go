package klp

import (
	"reflect"
	"testing"
)

func TestCompilerErrors(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want []string
	}{
		{"none", "make: *** [Makefile:2050: .] Error 2", nil},
		{
			// Cut from a real run: CVE-2026-72052's ip6_gre.c needs a
			// helper its diff does not add.
			"implicit declaration",
			"  CC [M]  net/ipv6/ip6_gre.o\nnet/ipv6/ip6_gre.c: In function ‘ip6gre_changelink’:\n" +
				"net/ipv6/ip6_gre.c:2115:14: error: implicit declaration of function ‘rtnl_dev_link_net_capable’; did you mean ‘netlink_net_capable’? [-Werror=implicit-function-declaration]\n" +
				" 2115 |         if (!rtnl_dev_link_net_capable(dev, t->net))\ncc1: some warnings being treated as errors\n",
			[]string{"net/ipv6/ip6_gre.c:2115: implicit declaration of function ‘rtnl_dev_link_net_capable’; did you mean ‘netlink_net_capable’? [-Werror=implicit-function-declaration]"},
		},
		{
			"repeats and limit",
			"a.c:1:2: error: x\na.c:9:2: error: x\nb.h:3:4: error: y\nc.c:5:6: error: z\nd.c:7:8: error: w\n",
			[]string{"a.c:1: x", "b.h:3: y", "c.c:5: z"},
		},
		{"warning only", "a.c:1:2: warning: unused variable\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := compilerErrors(tt.out); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("compilerErrors = %q, want %q", got, tt.want)
			}
		})
	}
}
