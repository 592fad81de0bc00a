package nodefs

import (
	"reflect"
	"strings"
	"testing"
)

func TestPlan(t *testing.T) {
	const node = "/run/netpolcheck/local/nodes/node1"
	own := func(root string) []Bind {
		var binds []Bind
		for _, d := range OwnDirs() {
			binds = append(binds, Bind{Source: root + "/root" + d, Target: d, Recursive: true})
		}
		return binds
	}
	for _, tc := range []struct {
		name    string
		nodeDir string
		keep    []string
		want    []Bind
		wantErr string
	}{
		{name: "nothing to keep", nodeDir: "/tmp/state/nodes/node1", want: own("/tmp/state/nodes/node1")},
		{name: "kept paths outside every own directory need no bind", nodeDir: "/tmp/s/nodes/n", keep: []string{"/tmp/s", "/work/bin"}, want: own("/tmp/s/nodes/n")},
		{
			name: "a state dir under /run stays visible at its path", nodeDir: node, keep: []string{"/run/netpolcheck/local", "/work/bin"},
			want: append([]Bind{{Source: "/run/netpolcheck/local", Target: node + "/root/run/netpolcheck/local", Recursive: true}}, own(node)...),
		},
		{
			name: "a kept path inside another is kept by the outer one", nodeDir: node, keep: []string{"/run/netpolcheck/local/nodes", "/run/netpolcheck/local/", "/run/netpolcheck/local"},
			want: append([]Bind{{Source: "/run/netpolcheck/local", Target: node + "/root/run/netpolcheck/local", Recursive: true}}, own(node)...),
		},
		{
			name: "kept paths under two own directories", nodeDir: "/tmp/n", keep: []string{"/var/lib/netpolcheck", "/run/x"},
			want: append([]Bind{
				{Source: "/run/x", Target: "/tmp/n/root/run/x", Recursive: true},
				{Source: "/var/lib/netpolcheck", Target: "/tmp/n/root/var/lib/netpolcheck", Recursive: true},
			}, own("/tmp/n")...),
		},
		{name: "a kept own directory cannot stay visible", nodeDir: "/tmp/n", keep: []string{"/run"}, wantErr: "/run must stay visible"},
		{name: "a kept path holding an own directory cannot stay visible", nodeDir: "/tmp/n", keep: []string{"/var"}, wantErr: "/var must stay visible"},
		{name: "a node directory must be absolute", nodeDir: "nodes/n", wantErr: "not absolute"},
		{name: "a sibling with a common prefix is not inside", nodeDir: "/tmp/n", keep: []string{"/runx/state", "/var/library"}, want: own("/tmp/n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Plan(tc.nodeDir, tc.keep)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Plan: err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Plan =\n%v\nwant\n%v", got, tc.want)
			}
		})
	}
}
