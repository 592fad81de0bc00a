package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

const (
	exampleModel    = "../../docs/examples/model.yaml"
	examplePolicies = "../../docs/examples/policies"
)

func TestExpectJSONCoversEveryServedCell(t *testing.T) {
	code, out, errOut := runCLI(t, "expect", "--model", exampleModel, "--policies", examplePolicies, "--output", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var doc struct {
		Cells []struct {
			From, To, Protocol string
			Port               int
			Allowed            bool
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	// 4 sources x (4 destinations on 80/TCP + 1 on 53/UDP)
	if len(doc.Cells) != 20 {
		t.Fatalf("%d cells, want 20", len(doc.Cells))
	}
	allowed := map[string]bool{}
	for _, c := range doc.Cells {
		allowed[c.From+">"+c.To+"/"+c.Protocol] = c.Allowed
	}
	for key, want := range map[string]bool{
		"x/b>x/a/TCP": true, "y/a>x/a/TCP": false, "x/a>internet/TCP": false,
		"x/b>internet/TCP": true, "internet>y/a/TCP": true, "x/a>x/a/UDP": true, "x/b>x/a/UDP": false,
	} {
		if got, ok := allowed[key]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", key, got, ok, want)
		}
	}
}

func TestExpectTable(t *testing.T) {
	code, out, _ := runCLI(t, "expect", "--model", exampleModel, "--policies", examplePolicies)
	if code != 0 || !strings.Contains(out, "80/TCP   x/a x/b y/a internet\nx/a      .   .   X   X\n") || !strings.Contains(out, "20 cells, 11 allowed, 9 denied") {
		t.Errorf("exit %d, output:\n%s", code, out)
	}
}

func TestExplainCell(t *testing.T) {
	code, out, errOut := runCLI(t, "explain", "--model", exampleModel, "--policies", examplePolicies,
		"--from", "x/b", "--to", "x/a", "--port", "80")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "x/b -> x/a 80/TCP: allowed") || !strings.Contains(out, "+ x/web-from-same-namespace ingress[0]: from[0] (podSelector), ports[0]") {
		t.Errorf("output:\n%s", out)
	}
	code, out, _ = runCLI(t, "explain", "--model", exampleModel, "--policies", examplePolicies,
		"--from", "x/b", "--to", "x/a", "--port", "80", "--output", "json")
	if code != 0 || !strings.Contains(out, `"policy": "x/web-from-same-namespace"`) {
		t.Errorf("exit %d, output:\n%s", code, out)
	}
}

func TestErrorsAndExitCodes(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\nspec:\n  podSelector: {}\n  egress:\n  - to:\n    - ports: [{port: 53}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"nope"}, 2, `unknown command "nope"`},
		{[]string{"expect"}, 2, "missing required flags: --model, --policies"},
		{[]string{"expect", "--model", exampleModel, "--policies", examplePolicies, "--output", "xml"}, 2, "--output must be table or json"},
		{[]string{"expect", "--model", exampleModel, "--policies", bad}, 1, bad + `: document 1: spec.egress[0].to[0].ports (line 8): unknown field "ports"`},
		{[]string{"explain", "--model", exampleModel, "--policies", examplePolicies, "--from", "x/a", "--to", "x/b", "--port", "http"}, 2, "--port must be a number"},
		{[]string{"explain", "--model", exampleModel, "--policies", examplePolicies, "--from", "x/a", "--to", "x/b", "--port", "53", "--protocol", "UDP"}, 1, "x/b does not serve 53/UDP"},
	} {
		code, _, errOut := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
}
